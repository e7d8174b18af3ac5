/**
 * Builds the optional native GEMM addon (mmlm_blas.c) against a system CBLAS (Debian/Ubuntu:
 * `apt-get install libopenblas-dev`) with the C compiler and Node's own headers; no node-gyp and no
 * download. Never fails: when anything is missing it says what and exits 0, and core keeps using its
 * WebAssembly SIMD GEMM.
 *
 * usage: node src/backend/kernels/native/build.mjs   (pnpm --filter @mmlm/core build:native)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'build', 'mmlm_blas.node');
const say = (s) => console.error(`[mmlm native] ${s}`);

function nodeIncludeDir() {
  const candidates = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
    process.env.npm_config_nodedir ? join(process.env.npm_config_nodedir, 'include', 'node') : null,
  ].filter(Boolean);
  return candidates.find((d) => existsSync(join(d, 'node_api.h'))) ?? null;
}

function main() {
  if (process.platform === 'win32') return say('skipped: the native addon is built on Linux and macOS only');
  const inc = nodeIncludeDir();
  if (!inc) return say("skipped: Node's headers (node_api.h) were not found next to the node binary or in /usr/include/node");
  const cc = process.env.CC || 'cc';
  mkdirSync(dirname(out), { recursive: true });
  const blasLibs = process.env.MMLM_BLAS_LIBS ? [process.env.MMLM_BLAS_LIBS.split(' ')] : [['-lopenblas'], ['-lcblas'], ['-lblas']];
  const extraInc = ['/usr/include/openblas', '/usr/local/opt/openblas/include'].filter((d) => existsSync(d)).map((d) => `-I${d}`);
  const errors = [];
  for (const libs of blasLibs) {
    const args = [
      '-O3',
      // one IEEE operation per float operation (no fused multiply-adds): the SiLU and GroupNorm kernels
      // match core's WebAssembly ones bit for bit
      '-ffp-contract=off',
      '-fno-math-errno',
      '-shared',
      '-fPIC',
      '-pthread',
      '-DNAPI_VERSION=8',
      `-I${inc}`,
      ...extraInc,
      join(here, 'mmlm_blas.c'),
      '-o',
      out,
      ...libs,
      '-lm',
    ];
    if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
    const r = spawnSync(cc, args, { encoding: 'utf8' });
    if (r.status === 0) {
      say(`built ${out} (${cc} ... ${libs.join(' ')})`);
      return;
    }
    errors.push(`${libs.join(' ')}: ${(r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-2).join(' ')}`);
  }
  rmSync(out, { force: true });
  say(`skipped: could not compile against a CBLAS (${errors.join('; ')}); install libopenblas-dev to enable it`);
}

main();
