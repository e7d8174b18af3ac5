/**
 * Reading tensor values to the host on every backend. cpu, wasm and tensorflow read synchronously
 * (`dataSync`); webgpu cannot read data that sits on the GPU synchronously: tfjs-backend-webgpu's
 * `dataSync` goes through an OffscreenCanvas, which Node has not (it throws) and which Chromium
 * fills only with --enable-unsafe-webgpu (zeros otherwise). Core therefore reads with `await
 * t.data()` wherever its API is async, and its sync APIs go through the two helpers below.
 */
import { tf } from '../tf.js';

type HostValues = Float32Array | Int32Array | Uint8Array;

interface WebGpuTensorData {
  values?: unknown;
  dtype?: string;
}

/** The backend holding t's data (its tensorInfo in the engine), else the active backend. */
function backendOf(t: tf.Tensor): tf.KernelBackend {
  const engine = tf.engine() as unknown as { state: { tensorInfo: WeakMap<object, { backend: tf.KernelBackend }> } };
  return engine.state.tensorInfo.get(t.dataId)?.backend ?? tf.backend();
}

/** Whether `backend` is the registered webgpu backend. */
export function isWebGpuBackend(backend: tf.KernelBackend): boolean {
  const registry = (tf.engine() as unknown as { registry: Record<string, tf.KernelBackend> }).registry;
  return registry.webgpu != null && registry.webgpu === backend;
}

/**
 * t's values when they can be read without waiting for a GPU: always on cpu / wasm / tensorflow;
 * on webgpu only while the data still sits on the CPU side (a tensor made from host values and not
 * yet used by a GPU kernel, or a small result tfjs computed on the CPU). null otherwise.
 */
export function hostValuesIfReady(t: tf.Tensor): HostValues | null {
  const b = backendOf(t);
  if (isWebGpuBackend(b)) {
    const d = (b as unknown as { tensorMap: { get(id: object): WebGpuTensorData | undefined } }).tensorMap.get(t.dataId);
    if (d?.values == null) return null;
  }
  return t.dataSync() as HostValues;
}

/**
 * t's values, read synchronously by `who` (a sync API). Where the backend cannot (webgpu, data on
 * the GPU) it throws an error that names `who` and the async way (`instead`).
 */
export function readSync(t: tf.Tensor, who: string, instead: string): HostValues {
  const v = hostValuesIfReady(t);
  if (v) return v;
  throw new Error(
    `${who} reads tensor values synchronously, which the webgpu backend cannot do for data on the GPU ` +
      `(tfjs-backend-webgpu's dataSync throws in Node and needs --enable-unsafe-webgpu in Chromium); ${instead}`,
  );
}
