/** Backends every model and kernel test runs on. */
import { type BackendName, initBackend } from '../backend/init.js';

export const TEST_BACKENDS: readonly BackendName[] = ['cpu', 'wasm'];

/** Activate `backend` quietly (for tests and benchmarks). */
export async function useBackend(backend: BackendName): Promise<void> {
  await initBackend({ backend, log: false });
}
