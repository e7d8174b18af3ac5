/** Small differentiable helpers tfjs lacks. */
import { tf } from '../tf.js';

const STOP_GRADIENT = 'MmlmStopGradient';
let gradientRegistered = false;

/**
 * A kernel that forwards like Identity and has a zero gradient. (tf.customGrad would do, but it
 * leaks one tensor per backward pass in tfjs 4.22.) The forward reuses each backend's own
 * Identity kernel, registered on first use for the active backend.
 */
function ensureStopGradientKernel(): void {
  const backend = tf.getBackend();
  if (!tf.getKernel(STOP_GRADIENT, backend)) {
    const identity = tf.getKernel('Identity', backend);
    if (!identity) throw new Error(`stopGradient: backend "${backend}" has no Identity kernel`);
    tf.registerKernel({ kernelName: STOP_GRADIENT, backendName: backend, kernelFunc: identity.kernelFunc });
  }
  if (!gradientRegistered) {
    tf.registerGradient({ kernelName: STOP_GRADIENT, inputsToSave: [], gradFunc: (dy) => ({ x: () => tf.zerosLike(dy as tf.Tensor) }) });
    gradientRegistered = true;
  }
}

/** Identity in the forward pass, zero gradient (PyTorch's .detach() / JAX stop_gradient). */
export function stopGradient(x: tf.Tensor): tf.Tensor {
  ensureStopGradientKernel();
  return tf.engine().runKernel(STOP_GRADIENT, { x }, {}) as tf.Tensor;
}

/** Straight-through estimator: forward value of `hard`, gradient of `soft` (soft + sg(hard - soft)). */
export function straightThrough(soft: tf.Tensor, hard: tf.Tensor): tf.Tensor {
  return tf.tidy(() => soft.add(stopGradient(hard.sub(soft))));
}
