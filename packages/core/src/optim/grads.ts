/**
 * Gradients of a module's loss by parameter path (tf.variableGrads), and global-norm clipping as
 * torch.nn.utils.clip_grad_norm_ (norm_type 2): total = ||(||g_1||, ..., ||g_n||)||_2,
 * g <- g * min(1, maxNorm / (total + 1e-6)).
 */
import { SCALE_KERNEL, SUM_SQUARES_KERNEL } from '../backend/kernels/fused.js';
import type { Module } from '../nn/module.js';
import { tf } from '../tf.js';

/**
 * The loss and d loss / d p for every trainable parameter p of `module`, keyed by dotted path.
 * Parameters the loss does not reach get no entry. The returned tensors belong to the enclosing
 * tf.tidy scope when there is one, to the caller otherwise (dispose them).
 */
export function valueAndGrads(module: Module, lossFn: () => tf.Scalar): { loss: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const named = module.namedTrainableParameters();
  if (named.length === 0) throw new Error(`valueAndGrads: ${module.constructor.name} has no trainable parameters`);
  const { value, grads } = tf.variableGrads(
    lossFn,
    named.map(([, v]) => v),
  );
  const out = new Map<string, tf.Tensor>();
  for (const [p, v] of named) {
    const g = grads[v.name];
    if (g) out.set(p, g);
  }
  return { loss: value, grads: out };
}

/**
 * tf.addN, within the WebGPU limit on inputs per kernel: tfjs-backend-webgpu binds every input of
 * AddN as a storage buffer and does not split a call with more than
 * `maxStorageBuffersPerShaderStage - 1` (7 at WebGPU's default limits) inputs, so the pipeline is
 * invalid and the result silently wrong (seen on SwiftShader: a clipped training step's loss moved
 * from 4.5949 to 4.8706). On webgpu a longer list is summed in consecutive chunks, each chunk added
 * to the running sum (the same left-to-right order); other backends take one addN as before, so
 * their float32 digits do not change.
 */
function addNBounded(xs: tf.Tensor[]): tf.Tensor {
  const backend = tf.backend() as unknown as { device?: { limits?: { maxStorageBuffersPerShaderStage?: number } } };
  // WebGPU guarantees at least 8 storage buffers per stage; at least 2 inputs keep the loop moving
  const perStage = backend.device?.limits?.maxStorageBuffersPerShaderStage ?? 8;
  const limit = tf.getBackend() === 'webgpu' ? Math.max(2, perStage - 1) : Number.POSITIVE_INFINITY;
  if (xs.length <= limit) return tf.addN(xs);
  let acc = tf.addN(xs.slice(0, limit));
  for (let i = limit; i < xs.length; i += limit - 1) acc = tf.addN([acc, ...xs.slice(i, i + limit - 1)]);
  return acc;
}

/**
 * Scale the gradients in place (each entry of the Map or Record is replaced by the scaled tensor
 * and the old one is disposed) so their global L2 norm is at most maxNorm. Returns the norm before
 * clipping as a scalar tensor (the enclosing tf.tidy's, or the caller's to dispose); no host read.
 * No gradients give norm 0.
 */
export function clipGradNorm<K>(grads: Map<K, tf.Tensor> | Record<string, tf.Tensor>, maxNorm: number): tf.Scalar {
  if (!(typeof maxNorm === 'number' && maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be a number > 0, got ${maxNorm}`);
  const gs: [unknown, tf.Tensor][] = grads instanceof Map ? [...grads.entries()] : Object.entries(grads);
  for (const [k, g] of gs)
    if (!(g instanceof tf.Tensor)) throw new Error(`clipGradNorm: gradient "${String(k)}" must be a tensor, got ${typeof g}`);
  if (gs.length === 0) return tf.scalar(0);
  // core's two list kernels where the backend has them (wasm): two kernel calls instead of about
  // three per gradient, bit-identical to the composite (tests/kernels)
  const backend = tf.getBackend();
  const fused =
    tf.getKernel(SUM_SQUARES_KERNEL, backend) !== undefined &&
    tf.getKernel(SCALE_KERNEL, backend) !== undefined &&
    gs.every(([, g]) => g.dtype === 'float32');
  const [total, ...scaled] = tf.tidy(() => {
    const xs: tf.NamedTensorMap = {};
    if (fused) gs.forEach(([, g], i) => (xs[`x${i}`] = g));
    const attrs = { n: gs.length } as unknown as tf.NamedAttrMap;
    const sumSq = fused
      ? (tf.engine().runKernel(SUM_SQUARES_KERNEL, xs, attrs) as tf.Tensor)
      : addNBounded(gs.map(([, g]) => tf.sum(tf.square(g))));
    const total = tf.sqrt(sumSq); // []
    const clipCoef = tf.minimum(tf.div(maxNorm, total.add(1e-6)), 1); // []
    const out = fused
      ? (tf.engine().runKernel(SCALE_KERNEL, { coef: clipCoef, ...xs }, attrs) as tf.Tensor[])
      : gs.map(([, g]) => g.mul(clipCoef));
    return [total, ...out];
  });
  gs.forEach(([k, g], i) => {
    if (grads instanceof Map) grads.set(k as K, scaled[i]!);
    else grads[k as string] = scaled[i]!;
    g.dispose();
  });
  return total as tf.Scalar;
}
