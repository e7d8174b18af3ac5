/** Backends every model and kernel test runs on. */
import { type BackendName, initBackend, KNOWN_BACKENDS } from '../backend/init.js';
import { env } from '../runtime.js';

/**
 * cpu and wasm; `MMLM_TEST_BACKENDS` (a comma list, e.g. `cpu,webgpu`) replaces the list. Tests
 * that read values synchronously (`dataSync`) cannot run on webgpu in Node; the model contract
 * reads asynchronously and does.
 */
export const TEST_BACKENDS: readonly BackendName[] = testBackends(env('MMLM_TEST_BACKENDS'));

function testBackends(list: string | undefined): readonly BackendName[] {
  if (!list?.trim()) return ['cpu', 'wasm'];
  const names = list.split(',').map((s) => s.trim().toLowerCase());
  const bad = names.filter((n) => !KNOWN_BACKENDS.includes(n as BackendName));
  if (bad.length)
    throw new Error(`MMLM_TEST_BACKENDS: unknown backend ${bad.join(', ')}; expected a comma list of ${KNOWN_BACKENDS.join(', ')}`);
  return names as BackendName[];
}

/** Activate `backend` quietly (for tests and benchmarks). */
export async function useBackend(backend: BackendName): Promise<void> {
  await initBackend({ backend, log: false });
}
