/**
 * Node-only half of native_blas.ts: finds and loads the native addon (a `.node` file, through
 * `require`). Imported only by the Node platform module (src/platform/node.ts), so a browser
 * bundle never sees `node:fs` / `node:module`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { env } from '../../runtime.js';
import type { NativeBlas } from './native_blas.js';

function candidates(): string[] {
  const rel = ['./native/build/mmlm_blas.node', '../../../src/backend/kernels/native/build/mmlm_blas.node'];
  const override = env('MMLM_NATIVE_BLAS_PATH');
  return [...(override ? [override] : []), ...rel.map((r) => fileURLToPath(new URL(r, import.meta.url)))];
}

/** The built addon and its path, or why there is none. */
export function loadNativeBlas(): { blas: NativeBlas; path: string } | { error: string } {
  const path = candidates().find((p) => existsSync(p));
  if (!path) return { error: 'not built (run `pnpm --filter @mmlm/core build:native`)' };
  // OpenBLAS' idle threads spin 2^28 cycles (about 0.1 s) after each threaded GEMM before they sleep,
  // and on two cores that spinning takes the core the addon's own pool (convolution, SiLU, GroupNorm,
  // Add) needs next: the 32 px tokenizer step on two threads went from 62-81 ms (median of 40 steps,
  // runs alternating) to 65 ms at 2^20 cycles (0.3 ms), with its slowest decile 85-90 -> 73 ms, and the
  // decoder steps unchanged within their noise (bench/records/elementwise-threads-2026-12-06). Read by
  // OpenBLAS when the addon loads it; a value the user set is kept.
  if (process.env.OPENBLAS_THREAD_TIMEOUT === undefined) process.env.OPENBLAS_THREAD_TIMEOUT = '20';
  try {
    return { blas: createRequire(import.meta.url)(path) as NativeBlas, path };
  } catch (e) {
    return { error: `failed to load ${path}: ${String((e as Error).message).split('\n')[0]}` };
  }
}
