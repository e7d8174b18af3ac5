/**
 * Cheaper saved tensors for one level of gradients.
 *
 * tfjs-core's engine keeps every tensor a kernel's gradient needs (its inputs or outputs, and what a
 * customGrad saves) as `engine.clone(t)`: an Identity kernel call through the full kernel path
 * (scope, profiler and leak-check bookkeeping, its own tape node) plus one more tape node, so that a
 * gradient of the gradient can flow through the copy. A training step of the 16 px VQ tokenizer
 * makes 287 of them. Where only one gradient tape is recording (`gradientDepth` 1: no gradient of
 * a gradient can see the saved tensor), the clone's tape nodes connect nothing that backpropagation
 * visits, and core's Identity on wasm and the cpu backend's share the data anyway; so there the saved
 * tensor is made directly as a new tensor on the same data (the backend's reference count raised, as
 * those Identity kernels do). Values, gradients and tensor counts are unchanged; nested tapes,
 * other backends and string / complex tensors keep tfjs' clone. `MMLM_SAVED_CLONES=1` keeps the
 * clone everywhere (A/B runs).
 */
import { env } from '../runtime.js';
import { tf } from '../tf.js';

type EngineInternals = {
  state: { gradientDepth: number; tensorInfo: Map<unknown, { backend: { incRef?: (dataId: unknown) => void } }> };
  backendName: string;
  backend: unknown;
  clone(x: tf.Tensor): tf.Tensor;
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend?: unknown): tf.Tensor;
};

const ALIAS_BACKENDS = new Set(['wasm', 'cpu']);
let installed = false;

/** Install the alias path on tfjs' engine (idempotent; MMLM_SAVED_CLONES=1: not installed). */
export function installSavedTensorAliases(): void {
  if (installed) return;
  installed = true;
  if (env('MMLM_SAVED_CLONES') === '1') return;
  setSavedTensorAliases(true);
}

/**
 * Turn the alias path on or off (off: tfjs' own clone); returns the previous setting. For tests and
 * A/B runs; a no-op (false) where the engine's layout is not the one this was written against.
 */
export function setSavedTensorAliases(on: boolean): boolean {
  const eng = tf.engine() as unknown as EngineInternals;
  const was = savedTensorAliasesActive();
  const clone = Object.getPrototypeOf(eng).clone as (this: EngineInternals, x: tf.Tensor) => tf.Tensor;
  if (typeof clone !== 'function' || typeof eng.makeTensorFromTensorInfo !== 'function') return false;
  if (!on) {
    delete (eng as { clone?: unknown }).clone; // the prototype's again
    return was;
  }
  eng.clone = function (this: EngineInternals, x: tf.Tensor): tf.Tensor {
    const backend = this.state.tensorInfo.get(x.dataId)?.backend;
    if (
      this.state.gradientDepth !== 1 ||
      !ALIAS_BACKENDS.has(this.backendName) ||
      x.dtype === 'string' ||
      x.dtype === 'complex64' ||
      !backend ||
      backend !== this.backend || // data left on another backend: tfjs' clone moves it
      typeof backend.incRef !== 'function'
    )
      return clone.call(this, x);
    backend.incRef(x.dataId);
    return this.makeTensorFromTensorInfo({ dataId: x.dataId, shape: x.shape, dtype: x.dtype }, backend);
  };
  return was;
}

/** Whether saved tensors take the alias path now. */
export function savedTensorAliasesActive(): boolean {
  return Object.hasOwn(tf.engine() as object, 'clone');
}
