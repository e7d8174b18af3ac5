/**
 * Losses. Cross-entropy follows the HF causal-LM convention (targets equal to ignoreIndex, -100 by
 * default, contribute nothing; the mean is over the remaining targets; an all-ignored batch gives
 * 0, not NaN), with PaLM's optional z-loss (coef * log(Z)^2).
 */
import { tf } from '../tf.js';

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  ignoreIndex?: number;
  /** Coefficient of the z-loss term log(Z)^2 (PaLM uses 1e-4). Default 0. */
  zLoss?: number;
  /** Label smoothing epsilon (target mass 1 - eps on the label, eps spread uniformly). Default 0. */
  labelSmoothing?: number;
  reduction?: Reduction;
}

/** logits [..., V], targets int32 [...] -> scalar (mean/sum) or [...] (none). */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor, opts: CrossEntropyOptions = {}): tf.Tensor {
  return tf.tidy(() => {
    const ignore = opts.ignoreIndex ?? -100;
    const eps = opts.labelSmoothing ?? 0;
    if (targets.dtype !== 'int32') throw new Error(`crossEntropy: targets must be int32, got ${targets.dtype}`);
    if (logits.rank !== targets.rank + 1 || logits.shape.slice(0, -1).join() !== targets.shape.join())
      throw new Error(`crossEntropy: logits [${logits.shape}] must be targets [${targets.shape}] plus a class axis`);
    if (!(eps >= 0 && eps < 1)) throw new Error(`crossEntropy: labelSmoothing must be in [0, 1), got ${eps}`);
    const V = logits.shape[logits.rank - 1] as number;
    const x = logits.reshape([-1, V]); // [N, V]
    const y = targets.reshape([-1]); // [N]
    const valid = tf.notEqual(y, ignore); // [N]
    const yc = tf.where(valid, y, tf.zerosLike(y));
    const lse = tf.logSumExp(x, 1); // [N], log Z
    const logp = x.sub(lse.expandDims(1)); // [N, V]
    let nll = tf.neg(logp.mul(tf.oneHot(yc, V)).sum(1)); // [N]
    if (eps > 0) nll = nll.mul(1 - eps).add(tf.neg(logp.mean(1)).mul(eps));
    if (opts.zLoss) nll = nll.add(lse.square().mul(opts.zLoss));
    const mask = valid.toFloat();
    nll = nll.mul(mask);
    const red = opts.reduction ?? 'mean';
    if (red === 'none') return nll.reshape(targets.shape);
    if (red === 'sum') return nll.sum();
    return nll.sum().div(tf.maximum(mask.sum(), 1));
  });
}

/** Mean squared error. */
export function mse(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (a.shape.join() !== b.shape.join()) throw new Error(`mse: shapes differ: [${a.shape}] vs [${b.shape}]`);
    return a.sub(b).square().mean() as tf.Scalar;
  });
}

/** mean(1 - cos(a, b)) along the last axis. */
export function cosineLoss(a: tf.Tensor, b: tf.Tensor, eps = 1e-8): tf.Scalar {
  return tf.tidy(() => {
    if (a.shape.join() !== b.shape.join()) throw new Error(`cosineLoss: shapes differ: [${a.shape}] vs [${b.shape}]`);
    const dot = a.mul(b).sum(-1);
    const n = tf.maximum(a.norm('euclidean', -1).mul(b.norm('euclidean', -1)), eps);
    return tf.sub(1, dot.div(n)).mean() as tf.Scalar;
  });
}

export interface InfoNCEOptions {
  /** Fixed temperature tau (logits = cos / tau). Default 0.07. */
  temperature?: number | tf.Tensor;
  /** Label smoothing of both cross-entropies (BLIP uses 0.1). Default 0. */
  labelSmoothing?: number;
}

/**
 * Symmetric contrastive loss (CLIP / BLIP ITC): rows of a and b are L2-normalised, logits =
 * a b^T / tau, and the loss is the mean of CE(a -> b) and CE(b -> a) with targets arange(B).
 * A learnable temperature is a variable passed as `temperature`.
 */
export function infoNCE(a: tf.Tensor2D, b: tf.Tensor2D, opts: InfoNCEOptions = {}): tf.Scalar {
  return tf.tidy(() => {
    if (a.rank !== 2 || a.shape.join() !== b.shape.join())
      throw new Error(`infoNCE: a and b must both be [B, D], got [${a.shape}] and [${b.shape}]`);
    const B = a.shape[0];
    const an = a.div(tf.maximum(a.norm('euclidean', 1, true), 1e-12));
    const bn = b.div(tf.maximum(b.norm('euclidean', 1, true), 1e-12));
    const t = opts.temperature ?? 0.07;
    const logits = tf.matMul(an, bn, false, true).div(t); // [B, B]
    const y = tf.range(0, B, 1, 'int32');
    const ls = opts.labelSmoothing ?? 0;
    const l1 = crossEntropy(logits, y, { labelSmoothing: ls });
    const l2 = crossEntropy(logits.transpose(), y, { labelSmoothing: ls });
    return l1.add(l2).div(2) as tf.Scalar;
  });
}
