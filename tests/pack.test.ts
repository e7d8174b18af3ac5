/**
 * Per-package npm installs: `pnpm pack` every publishable workspace package, install the tarballs
 * into an empty temp project with npm (as a user would, from the registry for third-party deps),
 * import each package and run a tiny forward.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

interface Pkg {
  name: string;
  dir: string;
  private?: boolean;
}

function publishable(): Pkg[] {
  const out: Pkg[] = [];
  for (const group of ['packages']) {
    for (const d of readdirSync(join(root, group))) {
      const dir = join(root, group, d);
      const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Pkg;
      if (!pj.private) out.push({ name: pj.name, dir });
    }
  }
  return out;
}

/** A smoke script per package: import it from the installed tarball and run a tiny forward. */
const SMOKE: Record<string, string> = {
  '@mmlm/core': `
    import { initBackend, TransformerDecoder, tf, saveSafetensors, loadSafetensors } from '@mmlm/core';
    const choice = await initBackend({ log: false });
    const m = new TransformerDecoder({ vocabSize: 7, dim: 8, numLayers: 1, numHeads: 2, maxSeqLen: 4, seed: 1 });
    const y = m.forward(tf.tensor2d([[1, 2, 3]], undefined, 'int32'));
    if (y.shape.join() !== '1,3,7') throw new Error('bad shape ' + y.shape);
    if (typeof saveSafetensors !== 'function' || typeof loadSafetensors !== 'function') throw new Error('io missing');
    console.log('ok', choice.backend, y.shape.join('x'));
  `,
};

describe('pack and install', () => {
  const pkgs = publishable();

  /** Packages without a dedicated smoke script: import it and check it exports something. */
  const generic = (name: string) => `
    import { initBackend } from '@mmlm/core';
    await initBackend({ log: false });
    const m = await import('${name}');
    if (Object.keys(m).length === 0) throw new Error('${name} exports nothing');
    console.log('ok', Object.keys(m).length, 'exports');
  `;

  it(
    'installs each tarball with npm into an empty project and runs it',
    () => {
      const work = mkdtempSync(join(tmpdir(), 'mmlm-pack-'));
      const tarballs = pkgs.map((p) => {
        const out = execFileSync('pnpm', ['pack', '--pack-destination', work], { cwd: p.dir, encoding: 'utf8' });
        const tgz = out.trim().split('\n').pop()!.trim();
        return tgz.startsWith('/') ? tgz : join(work, tgz);
      });
      // every tarball ships the license and the images its README links to (tests/packaging.test.ts)
      for (const [i, p] of pkgs.entries()) {
        const listing = execFileSync('tar', ['-tzf', tarballs[i]!], { encoding: 'utf8' }).split('\n');
        expect(listing, p.name).toContain('package/LICENSE');
        const readme = readFileSync(join(p.dir, 'README.md'), 'utf8');
        for (const m of readme.matchAll(/\(https:\/\/cdn\.jsdelivr\.net\/npm\/@mmlm\/[a-z]+\/([^)\s]+)\)/g))
          expect(listing, p.name).toContain(`package/${m[1]}`);
      }
      const proj = join(work, 'project');
      execFileSync('mkdir', ['-p', proj]);
      writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'smoke', private: true, type: 'module' }));
      // All our tarballs at once, so inter-package deps resolve to them, not to the registry.
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: proj, stdio: 'inherit' });
      for (const p of pkgs) {
        const f = join(proj, `smoke-${p.name.replace(/\W/g, '_')}.mjs`);
        writeFileSync(f, SMOKE[p.name] ?? generic(p.name));
        const out = execFileSync('node', [f], { cwd: proj, encoding: 'utf8', env: { ...process.env, MMLM_BACKEND: 'wasm' } });
        expect(out).toMatch(/^ok /m);
      }
    },
    15 * 60_000,
  );
});
