/** Kernels core supplies on top of the stock backends, registered by initBackend. */
import { tf } from '../../tf.js';
import type { BackendName } from '../init.js';
import { registerCoreGradients } from './grads.js';
import { registerWasmGapKernels } from './wasm_gaps.js';
import { type WasmBackendInternals, wasmHeapUsable, wasmMatMulKernels } from './wasm_matmul.js';
import { makeWasmOpsKernels, type StockLookup } from './wasm_ops.js';

const done = new Set<string>();
/** Stock kernels that core replaced, by backend, so benchmarks can compare against them. */
const stockByBackend = new Map<string, Map<string, tf.KernelConfig | null>>();
const replacementsByBackend = new Map<string, tf.KernelConfig[]>();
/** Backends whose registered kernels are core's replacements now (not swapped back by useStockKernels). */
const coreActive = new Set<string>();

function replacements(backend: BackendName, stock: StockLookup): tf.KernelConfig[] {
  // The replacements run their own WebAssembly on the backend's heap; if this tfjs-backend-wasm
  // build does not let them (no exported memory, a shared memory), the stock kernels stay.
  if (backend === 'wasm' && wasmHeapUsable(tf.findBackend('wasm') as unknown as WasmBackendInternals))
    return [...wasmMatMulKernels, ...makeWasmOpsKernels(stock)];
  return [];
}

function swap(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

export function registerCoreKernels(backend: BackendName): void {
  registerCoreGradients();
  if (done.has(backend)) return;
  done.add(backend);
  if (backend === 'wasm') registerWasmGapKernels();
  const saved = new Map<string, tf.KernelConfig | null>();
  const repl = replacements(backend, (name) => saved.get(name) ?? null);
  for (const k of repl) {
    saved.set(k.kernelName, tf.getKernel(k.kernelName, backend) ?? null);
    swap(k);
  }
  stockByBackend.set(backend, saved);
  replacementsByBackend.set(backend, repl);
  if (repl.length) coreActive.add(backend);
}

/**
 * Whether core's replacement kernels serve `backend` now (wasm after initBackend, unless
 * useStockKernels swapped the stock ones back): layers take shortcuts that rely on their semantics
 * (e.g. Linear's one-call inference matmul with a rank-3 input) only then.
 */
export function coreKernelsActive(backend: string): boolean {
  return coreActive.has(backend);
}

/**
 * Switch between core's replacement kernels (default) and the stock ones they replaced, for
 * A/B benchmarks and parity checks. Kernels core adds where the backend has none stay registered.
 */
export function useStockKernels(backend: BackendName, useStock: boolean): void {
  const saved = stockByBackend.get(backend);
  if (!saved) throw new Error(`useStockKernels: core kernels were never registered for backend "${backend}" (call initBackend first)`);
  for (const k of replacementsByBackend.get(backend) ?? []) {
    const orig = saved.get(k.kernelName);
    if (useStock) {
      if (orig) swap(orig);
      else tf.unregisterKernel(k.kernelName, backend);
    } else swap(k);
  }
  if (useStock) coreActive.delete(backend);
  else if ((replacementsByBackend.get(backend) ?? []).length) coreActive.add(backend);
}

/** Names of the stock kernels core replaces on `backend` (empty before initBackend chose it). */
export function replacedKernels(backend: BackendName): string[] {
  return (replacementsByBackend.get(backend) ?? []).map((k) => k.kernelName);
}

export { geluErf, geluTanh, silu } from './fused.js';
export {
  NATIVE_CONV_THREAD_MIN,
  nativeBlasInfo,
  setNativeBlasEnabled,
  setNativeBlasThreads,
  setNativeConvEnabled,
  setNativeConvThreads,
  setNativeElementwiseEnabled,
} from './native_blas.js';
export { causalStripRowsSetting, setCausalStripRows, setWasmGemmThreads, wasmGemmThreads } from './wasm_matmul.js';
