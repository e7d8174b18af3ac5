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
  try {
    return { blas: createRequire(import.meta.url)(path) as NativeBlas, path };
  } catch (e) {
    return { error: `failed to load ${path}: ${String((e as Error).message).split('\n')[0]}` };
  }
}
