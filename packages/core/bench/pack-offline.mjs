/**
 * `node packages/core/bench/pack-offline.mjs [outDir]` (after `pnpm --filter @mmlm/core build`): a
 * self-contained folder and `<outDir>/gpu-bench.tar.xz` that run bench/gpu.ts on a machine with
 * Node >= 20 and no package registry (a GPU machine behind a firewall): core's dist, its runtime
 * packages as real copies (tfjs-core and its cpu / wasm / webgpu backends pruned to their Node entry
 * files and .wasm binaries, the `webgpu` package with the linux-x64 dawn.node only, cli-progress and
 * pure-rand with their dependencies), the bench bundled by esbuild against '@mmlm/core', and the
 * torch peer script. There: `tar -xJf gpu-bench.tar.xz && node gpu-bench/bench/gpu.mjs`, with a
 * Vulkan loader (libvulkan1) and the GPU's Vulkan ICD (VK_ICD_FILENAMES); see the README's GPU section.
 * Written by hand: pnpm deploy copies every platform's dawn.node (132 MB) and the typings, and does
 * not bundle the bench.
 */
import { execSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const core = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// esbuild comes with tsx (a devDependency of core)
const { build } = createRequire(require.resolve('tsx/package.json'))('esbuild');
const outDir = resolve(process.argv[2] ?? join(core, 'bench', 'results'));
if (!existsSync(join(core, 'dist', 'index.js'))) throw new Error('pack-offline: build core first (pnpm --filter @mmlm/core build)');
const app = join(outDir, 'gpu-bench');
rmSync(app, { recursive: true, force: true });
const nm = join(app, 'node_modules');
mkdirSync(nm, { recursive: true });
// @mmlm/core: package.json, dist (no maps / d.ts), vendor
const coreOut = join(nm, '@mmlm/core');
mkdirSync(coreOut, { recursive: true });
cpSync(join(core, 'package.json'), join(coreOut, 'package.json'));
cpSync(join(core, 'dist'), join(coreOut, 'dist'), { recursive: true, filter: (s) => !s.endsWith('.map') && !s.endsWith('.d.ts') });
cpSync(join(core, 'vendor'), join(coreOut, 'vendor'), { recursive: true });
// runtime packages: resolve from core's node_modules (pnpm links), copy package.json + main + extras
const resolveDir = (pkg, from) => realpathSync(join(from, 'node_modules', pkg));
function copyPkg(pkg, from, extras = []) {
  const dir = resolveDir(pkg, from);
  const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const out = join(nm, pkg);
  mkdirSync(out, { recursive: true });
  cpSync(join(dir, 'package.json'), join(out, 'package.json'));
  const files = [pj.main ?? 'index.js', ...extras];
  for (const f of files) {
    const src = join(dir, f);
    if (!existsSync(src) && existsSync(src + '.js')) {
      cpSync(src + '.js', join(out, f + '.js'), { recursive: true });
      continue;
    }
    cpSync(src, join(out, f), { recursive: true });
  }
  return dir;
}
const tfCore = copyPkg('@tensorflow/tfjs-core', core);
copyPkg('@tensorflow/tfjs-backend-cpu', core);
copyPkg('@tensorflow/tfjs-backend-wasm', core, [
  'dist/tfjs-backend-wasm.wasm',
  'dist/tfjs-backend-wasm-simd.wasm',
  'dist/tfjs-backend-wasm-threaded-simd.wasm',
]);
copyPkg('@tensorflow/tfjs-backend-webgpu', core);
// a package and its dependencies, recursively (resolved as Node would from each package's folder)
function copyTree(dir) {
  const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const out = join(nm, pj.name);
  if (existsSync(out)) return;
  cpSync(dir, out, { recursive: true, dereference: true });
  const req = createRequire(join(dir, 'package.json'));
  for (const dep of Object.keys(pj.dependencies ?? {})) {
    let pjPath;
    try {
      pjPath = req.resolve(`${dep}/package.json`);
    } catch {
      pjPath = join(dirname(dirname(req.resolve(dep))), 'package.json');
    }
    copyTree(realpathSync(dirname(pjPath)));
  }
}
// tfjs-core's own runtime dependencies (its Node build requires long, seedrandom, node-fetch)
const tfCoreReq = createRequire(join(tfCore, 'package.json'));
for (const d of Object.keys(JSON.parse(readFileSync(join(tfCore, 'package.json'), 'utf8')).dependencies ?? {}))
  if (!d.startsWith('@types/') && !d.startsWith('@webgpu/')) copyTree(realpathSync(dirname(tfCoreReq.resolve(`${d}/package.json`))));
for (const d of ['cli-progress', 'pure-rand']) copyTree(resolveDir(d, core));
// webgpu with the linux-x64 dawn.node only
const wg = resolveDir('webgpu', core);
mkdirSync(join(nm, 'webgpu/dist/linux-x64'), { recursive: true });
for (const f of ['package.json', 'index.js', 'cjs', 'wrapper.js', 'webgpu.js', 'index.mjs'])
  if (existsSync(join(wg, f))) cpSync(join(wg, f), join(nm, 'webgpu', f), { recursive: true });
cpSync(join(wg, 'dist/linux-x64/dawn.node'), join(nm, 'webgpu/dist/linux-x64/dawn.node'));
for (const f of ['index.js', 'index.d.ts']) if (existsSync(join(wg, 'dist', f))) cpSync(join(wg, 'dist', f), join(nm, 'webgpu/dist', f));
// the bench, bundled; its imports of core's source become '@mmlm/core'
await build({
  entryPoints: [join(core, 'bench/gpu.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: join(app, 'bench/gpu.mjs'),
  plugins: [
    {
      name: 'core',
      setup(b) {
        b.onResolve({ filter: /\/src\/index\.js$/ }, () => ({ path: '@mmlm/core', external: true }));
      },
    },
  ],
  external: ['@mmlm/core', '@tensorflow/*'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
// the torch peer beside the bundle (gpu.ts finds it at <bench>/peers/)
mkdirSync(join(app, 'bench/peers'), { recursive: true });
cpSync(join(core, 'bench/peers/workloads_torch.py'), join(app, 'bench/peers/workloads_torch.py'));
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'mmlm-gpu-bench', private: true, type: 'module' }));
execSync(`tar -C ${outDir} -cJf ${join(outDir, 'gpu-bench.tar.xz')} gpu-bench`, { stdio: 'inherit' });
console.log(`pack-offline: ${app} and ${join(outDir, 'gpu-bench.tar.xz')}`);
