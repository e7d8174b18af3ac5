/**
 * Masked packing (MIO §2.2): samples are concatenated up to the context window, and a block-diagonal
 * causal mask stops attention across samples, so one packed row costs the same loss as its samples
 * run one by one. Position ids restart at 0 in every sample (the paper does not say whether they
 * do; with RoPE the result is the same up to round-off, with learned positions it is not).
 *
 * Core's `TransformerDecoder.forward` takes an additive mask (used here, from core's
 * `blockDiagonalMask`) but no position ids: with learned positions `packedLogits` adds the
 * per-sample position rows itself and runs the blocks; with RoPE it relies on RoPE's relative
 * positions (core rotates by the absolute index in the row).
 */
import { blockDiagonalMask, crossEntropy, type TransformerDecoder, tf } from '@mmlm/core';

/** Label value that carries no loss (core's crossEntropy ignore index). */
export const IGNORE_INDEX = -100;

/** One training sample: ids and per-token labels (IGNORE_INDEX = no loss; default the ids, MIO's Eq. 1). */
export interface PackSample {
  ids: ArrayLike<number>;
  labels?: ArrayLike<number>;
}

export interface PackOptions {
  /** Row length, the context window (MIO: 2,800). */
  rowLength: number;
  /** Id written into padding positions (they carry no loss and attend only to padding). Default 0. */
  padId?: number;
}

/** Where sample i went. */
export interface Placement {
  row: number;
  start: number;
  length: number;
}

/** Packed rows [B][T]. */
export interface PackedBatch {
  rowLength: number;
  ids: Int32Array[];
  /** Next-token targets, shifted inside each sample: targets[t] = labels[t + 1]; a sample's last position and padding get IGNORE_INDEX. */
  targets: Int32Array[];
  /** Sample index per position; -1 on padding. */
  segmentIds: Int32Array[];
  /** Position inside the sample, restarting at 0; 0 on padding. */
  positionIds: Int32Array[];
  placements: Placement[];
}

/**
 * Packs samples in order, starting a new row when the next sample does not fit (MIO concatenates
 * samples up to the window). A sample longer than the row, or empty, is an error.
 */
export function packSamples(samples: readonly PackSample[], opts: PackOptions): PackedBatch {
  const T = opts.rowLength;
  if (!Number.isInteger(T) || T < 2) throw new Error(`packSamples: rowLength must be an integer >= 2, got ${T}`);
  const padId = opts.padId ?? 0;
  const rows: { ids: Int32Array; targets: Int32Array; seg: Int32Array; pos: Int32Array; used: number }[] = [];
  const newRow = () => {
    const r = {
      ids: new Int32Array(T).fill(padId),
      targets: new Int32Array(T).fill(IGNORE_INDEX),
      seg: new Int32Array(T).fill(-1),
      pos: new Int32Array(T),
      used: 0,
    };
    rows.push(r);
    return r;
  };
  const placements: Placement[] = [];
  samples.forEach((s, i) => {
    const n = s.ids.length;
    if (n === 0) throw new Error(`packSamples: sample ${i} is empty`);
    if (n > T) throw new Error(`packSamples: sample ${i} has ${n} tokens, more than rowLength ${T}`);
    const labels = s.labels ?? s.ids;
    if (labels.length !== n) throw new Error(`packSamples: sample ${i} has ${n} ids but ${labels.length} labels`);
    let row = rows[rows.length - 1];
    if (!row || row.used + n > T) row = newRow();
    const o = row.used;
    for (let t = 0; t < n; t++) {
      row.ids[o + t] = s.ids[t]!;
      row.targets[o + t] = t + 1 < n ? labels[t + 1]! : IGNORE_INDEX;
      row.seg[o + t] = i;
      row.pos[o + t] = t;
    }
    row.used += n;
    placements.push({ row: rows.length - 1, start: o, length: n });
  });
  return {
    rowLength: T,
    ids: rows.map((r) => r.ids),
    targets: rows.map((r) => r.targets),
    segmentIds: rows.map((r) => r.seg),
    positionIds: rows.map((r) => r.pos),
    placements,
  };
}

/** The additive mask [B, 1, T, T] of a packed batch: 0 where position i may see j (same sample, j <= i), NEG_INF elsewhere. */
export function packedMask(batch: PackedBatch): tf.Tensor4D {
  return blockDiagonalMask(batch.segmentIds, true);
}

/** Logits [B, T, V] of a packed batch through core's decoder, samples isolated by the block-diagonal mask. */
export function packedLogits(model: TransformerDecoder, batch: PackedBatch): tf.Tensor3D {
  return tf.tidy(() => {
    const B = batch.ids.length;
    const T = batch.rowLength;
    const ids = tf.tensor2d(concat(batch.ids), [B, T], 'int32');
    const mask = packedMask(batch);
    const x = model.embed(ids); // [B, T, D]
    if (!model.pos_embed) return model.logits(model.forwardHidden(x, { mask })) as tf.Tensor3D;
    const pos = tf.gather(model.pos_embed.weight, tf.tensor2d(concat(batch.positionIds), [B, T], 'int32')); // [B, T, D]
    let h = x.add(pos);
    model.blocks.items.forEach((b, i) => {
      h = b.forward(h, { mask, layer: i });
    });
    return model.logits(model.norm.forward(h)) as tf.Tensor3D;
  });
}

/** Next-token cross-entropy of a packed batch (sum over target tokens by default, or their mean). */
export function packedLoss(model: TransformerDecoder, batch: PackedBatch, reduction: 'sum' | 'mean' = 'sum'): tf.Scalar {
  return tf.tidy(() => {
    const logits = packedLogits(model, batch);
    const targets = tf.tensor2d(concat(batch.targets), [batch.ids.length, batch.rowLength], 'int32');
    return crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX, reduction });
  });
}

function concat(rows: Int32Array[]): Int32Array {
  const out = new Int32Array(rows.reduce((n, r) => n + r.length, 0));
  let o = 0;
  for (const r of rows) {
    out.set(r, o);
    o += r.length;
  }
  return out;
}
