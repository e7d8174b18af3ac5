/**
 * Regression losses: mean squared error (torch.nn.functional.mse_loss) and the cosine loss
 * 1 - cos(a, b) along the last axis with torch.nn.functional.cosine_similarity's clamp,
 * cos = a.b / (max(|a|, eps) max(|b|, eps)) (SEED's reconstruction loss, sec. 1.3 of the brief).
 */
import { tf } from '../tf.js';
import { checkReduction, type Reduction } from './cross_entropy.js';

function checkPair(who: string, a: tf.Tensor, b: tf.Tensor): void {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') throw new Error(`${who}: inputs must be float32, got ${a.dtype} and ${b.dtype}`);
  if (a.shape.join() !== b.shape.join() || a.rank !== b.rank) throw new Error(`${who}: shapes differ: [${a.shape}] vs [${b.shape}]`);
}

function reduce(x: tf.Tensor, r: Reduction): tf.Tensor {
  return r === 'none' ? x : r === 'sum' ? x.sum() : x.mean();
}

/** (a - b)^2, reduced over every element ('mean' default, 'sum', or 'none' elementwise). */
export function mse(a: tf.Tensor, b: tf.Tensor, opts?: { reduction?: 'mean' | 'sum' }): tf.Scalar;
export function mse(a: tf.Tensor, b: tf.Tensor, opts: { reduction: Reduction }): tf.Tensor;
export function mse(a: tf.Tensor, b: tf.Tensor, opts: { reduction?: Reduction } = {}): tf.Tensor {
  const r = checkReduction('mse', opts.reduction ?? 'mean');
  checkPair('mse', a, b);
  return tf.tidy(() => reduce(a.sub(b).square(), r));
}

/** max(|x|, eps) along the last axis as sqrt(max(|x|^2, eps^2)): same value, finite gradient at x = 0. */
export function clampedNorm(x: tf.Tensor, eps: number, keepDims = false): tf.Tensor {
  return tf.tidy(() => tf.sqrt(tf.maximum(x.square().sum(-1, keepDims), eps * eps)));
}

/** 1 - cos(a, b) along the last axis: [..., D] -> [...] ('none'), or its mean ('mean', default) or sum. */
export function cosineLoss(a: tf.Tensor, b: tf.Tensor, opts?: { eps?: number; reduction?: 'mean' | 'sum' }): tf.Scalar;
export function cosineLoss(a: tf.Tensor, b: tf.Tensor, opts: { eps?: number; reduction: Reduction }): tf.Tensor;
export function cosineLoss(a: tf.Tensor, b: tf.Tensor, opts: { eps?: number; reduction?: Reduction } = {}): tf.Tensor {
  const r = checkReduction('cosineLoss', opts.reduction ?? 'mean');
  const eps = opts.eps ?? 1e-8;
  checkPair('cosineLoss', a, b);
  if (a.rank < 1) throw new Error(`cosineLoss: inputs need a feature axis, got shape [${a.shape}]`);
  if (!(eps > 0)) throw new Error(`cosineLoss: eps must be > 0, got ${eps}`);
  return tf.tidy(() => {
    const cos = a
      .mul(b)
      .sum(-1)
      .div(clampedNorm(a, eps).mul(clampedNorm(b, eps))); // [...]
    return reduce(tf.sub(1, cos), r);
  });
}
