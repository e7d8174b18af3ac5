/**
 * Additive attention masks: 0 where attention is allowed, NEG_INF where it is not. Shapes
 * broadcast against scores [B, H, T, S].
 */
import { tf } from '../tf.js';

/** Large negative instead of -Infinity, so a fully masked row gives a uniform softmax, not NaN. */
export const NEG_INF = -1e9;

/**
 * Causal mask [T, S]: query i (absolute position offset + i) sees keys 0 .. offset + i.
 * offset defaults to S - T (queries are the last T of S positions, as with a KV cache).
 */
export function causalMask(T: number, S = T, offset = S - T): tf.Tensor2D {
  const m = new Float32Array(T * S);
  for (let i = 0; i < T; i++) for (let j = 0; j < S; j++) m[i * S + j] = j <= offset + i ? 0 : NEG_INF;
  return tf.tensor2d(m, [T, S]);
}

/** Padding mask [B, 1, 1, S] from a keep-mask [B, S] (1 = real token, 0 = padding). */
export function paddingMask(keep: tf.Tensor /* [B, S] */): tf.Tensor4D {
  return tf.tidy(() => {
    if (keep.rank !== 2) throw new Error(`paddingMask: keep must be [B, S], got shape [${keep.shape}]`);
    const [B, S] = keep.shape as [number, number];
    return keep.toFloat().sub(1).mul(-NEG_INF).reshape([B, 1, 1, S]) as tf.Tensor4D;
  });
}

/**
 * Block-diagonal mask [B, 1, T, T] for packed samples: position i sees j only when both carry the
 * same segment id (and j <= i when causal).
 */
export function blockDiagonalMask(segmentIds: number[][] | Int32Array[], causal = true): tf.Tensor4D {
  const B = segmentIds.length;
  const T = segmentIds[0]?.length ?? 0;
  const m = new Float32Array(B * T * T);
  for (let b = 0; b < B; b++) {
    const seg = segmentIds[b]!;
    if (seg.length !== T) throw new Error(`blockDiagonalMask: row ${b} has length ${seg.length}, expected ${T}`);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) m[(b * T + i) * T + j] = seg[i] === seg[j] && (!causal || j <= i) ? 0 : NEG_INF;
  }
  return tf.tensor4d(m, [B, 1, T, T]);
}
