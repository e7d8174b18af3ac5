/**
 * Symmetric contrastive loss (InfoNCE; CLIP, Radford et al. 2021; BLIP / BLIP-2 ITC as SEED's
 * stage I uses it, brief sec. 1.3): rows of a and b are L2-normalised (F.normalize, eps 1e-12),
 *   s = a b^T / tau   (or s = logitScale * a b^T, CLIP's exp(learned log-scale))      [B, B]
 *   L = (CE(s, arange(B)) + CE(s^T, arange(B))) / 2
 * with optional label smoothing of both cross-entropies (BLIP: 0.1).
 */
import { tf } from '../tf.js';
import { crossEntropy } from './cross_entropy.js';
import { clampedNorm } from './regression.js';

export interface InfoNCEOptions {
  /** tau in s = cos / tau; a number or a scalar tensor (a learnable variable). Default 0.07. */
  temperature?: number | tf.Tensor;
  /** Multiplier in s = logitScale * cos (instead of temperature); a number or a scalar tensor. */
  logitScale?: number | tf.Tensor;
  /** Label smoothing of both cross-entropies. Default 0. */
  labelSmoothing?: number;
  /** L2-normalise the rows of a and b first. Default true. */
  normalize?: boolean;
}

function checkScale(name: string, x: number | tf.Tensor): void {
  if (x instanceof tf.Tensor) {
    if (x.size !== 1 || x.dtype !== 'float32')
      throw new Error(`infoNCE: ${name} must be a float32 scalar tensor, got ${x.dtype} [${x.shape}]`);
  } else if (!(typeof x === 'number' && x > 0 && Number.isFinite(x)))
    throw new Error(`infoNCE: ${name} must be a finite number > 0, got ${x}`);
}

/** a, b [B, D] (row i of a pairs with row i of b) -> scalar loss. */
export function infoNCE(a: tf.Tensor, b: tf.Tensor, opts: InfoNCEOptions = {}): tf.Scalar {
  if (a.rank !== 2 || b.rank !== 2 || a.shape.join() !== b.shape.join())
    throw new Error(`infoNCE: a and b must both be [B, D] with the same shape, got [${a.shape}] and [${b.shape}]`);
  if (a.dtype !== 'float32' || b.dtype !== 'float32') throw new Error(`infoNCE: a and b must be float32, got ${a.dtype} and ${b.dtype}`);
  if (opts.temperature !== undefined && opts.logitScale !== undefined) throw new Error('infoNCE: give temperature or logitScale, not both');
  if (opts.temperature !== undefined) checkScale('temperature', opts.temperature);
  if (opts.logitScale !== undefined) checkScale('logitScale', opts.logitScale);
  const ls = opts.labelSmoothing ?? 0;
  if (!(ls >= 0 && ls < 1)) throw new Error(`infoNCE: labelSmoothing must be in [0, 1), got ${ls}`);
  const B = a.shape[0];
  return tf.tidy(() => {
    const normalize = opts.normalize ?? true;
    const an = normalize ? a.div(clampedNorm(a, 1e-12, true)) : a; // [B, D]
    const bn = normalize ? b.div(clampedNorm(b, 1e-12, true)) : b; // [B, D]
    const sim = tf.matMul(an, bn, false, true); // [B, B]
    const s = opts.logitScale !== undefined ? sim.mul(opts.logitScale) : sim.div(opts.temperature ?? 0.07); // [B, B]
    const y = tf.range(0, B, 1, 'int32'); // [B]
    const a2b = crossEntropy(s, y, { labelSmoothing: ls });
    const b2a = crossEntropy(s.transpose(), y, { labelSmoothing: ls });
    return a2b.add(b2a).div(2) as tf.Scalar;
  });
}
