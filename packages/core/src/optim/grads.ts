/** Gradients of a module's loss by parameter path, and global-norm clipping. */
import type { Module } from '../nn/module.js';
import { tf } from '../tf.js';

/**
 * loss and d loss / d p for every trainable parameter p of `module`, keyed by dotted path. The
 * returned tensors are the caller's (dispose them, or call inside tf.tidy).
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
 * Scale gradients in place so their global L2 norm is at most maxNorm (torch.nn.utils.
 * clip_grad_norm_: factor maxNorm / (norm + 1e-6), applied only when < 1). Returns the norm
 * before clipping as a scalar tensor (read it when you need it; no host sync here).
 */
export function clipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): tf.Scalar {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const gs = [...grads.entries()];
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.addN(gs.map(([, g]) => g.square().sum()))) as tf.Scalar;
    const factor = tf.minimum(tf.scalar(1), tf.scalar(maxNorm).div(norm.add(1e-6)));
    for (const [k, g] of gs) {
      grads.set(k, tf.keep(g.mul(factor)));
      g.dispose();
    }
    return norm;
  });
}
