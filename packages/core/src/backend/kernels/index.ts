/** Kernels core supplies on top of the stock backends, registered by initBackend. */
import type { BackendName } from '../init.js';
import { registerWasmGapKernels } from './wasm_gaps.js';

const done = new Set<string>();

export function registerCoreKernels(backend: BackendName): void {
  if (done.has(backend)) return;
  done.add(backend);
  if (backend === 'wasm') registerWasmGapKernels();
}
