/**
 * Builds the lab page into dist/: index.html, the bundles of src/main.ts and of the Web Worker
 * src/worker.ts (esbuild's JS API, ESM
 * with code splitting, so tfjs's WebGPU backend is a chunk loaded only when picked) and the
 * tfjs-backend-wasm binaries next to it (the page points `setWasmPaths` at them). Workspace
 * packages are bundled from their TypeScript sources (the "@mmlm/source" condition), so no other
 * package needs building first. `node scripts/build.mjs` or `pnpm --filter @mmlm/web build`.
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const app = join(here, '..');
const require = createRequire(import.meta.url);
// esbuild comes with tsx (a devDependency), as in core's browser-bundle test.
const esbuild = createRequire(require.resolve('tsx/package.json'))('esbuild');

/** Build the page into `outDir` (default apps/web/dist); returns the files written. */
export async function build(outDir = join(app, 'dist')) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: { main: join(app, 'src/main.ts'), worker: join(app, 'src/worker.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: outDir,
    conditions: ['@mmlm/source'],
    sourcemap: true,
    minify: true,
    logLevel: 'warning',
    absWorkingDir: app,
  });
  copyFileSync(join(app, 'src/index.html'), join(outDir, 'index.html'));
  const wasmDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  for (const f of readdirSync(wasmDir)) if (f.endsWith('.wasm')) copyFileSync(join(wasmDir, f), join(outDir, f));
  return readdirSync(outDir).sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  const files = await build();
  console.log(`@mmlm/web: built ${files.length} files into dist/ in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
