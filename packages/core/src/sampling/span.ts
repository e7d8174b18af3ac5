/**
 * Drawing a fixed-length span of tokens after a batch of prompts with a KV cache and optional
 * classifier-free guidance: the image-code loop that Liquid (`<boi>` + N VQ codes), SEED
 * (`<img>` + Q causal codes) and their lab arms share.
 *
 *   rows     the conditional prompts, then (with guidance) one unconditional prompt per prompt,
 *            left-padded with `padId` to one length L; `keep` [R, L] is 1 on tokens, 0 on padding
 *            and becomes the attention's padding mask (core's `paddingMask`), grown by one column
 *            per drawn token.
 *   step i   logits of the last position [R, V]; with guidance
 *            l = cfgLogits(l[0:N], l[N:2N], s) = l_u + s (l_c - l_u); then `sample` (temperature,
 *            top-k, top-p, the allowed ids); the drawn id is fed to both halves, so the
 *            unconditional rows continue with the conditional sample (as Liquid's reference).
 * Exactly `steps` ids are drawn per prompt; the forward after the last draw is skipped. Left
 * padding leaves a row's logits as they would be unpadded when positions are relative (RoPE); with a
 * learned absolute position table the padding shifts the positions (as in any left-padded batch).
 */
import type { KVCache } from '../nn/attention.js';
import { paddingMask } from '../nn/masks.js';
import { tf } from '../tf.js';
import { cfgLogits } from './filters.js';
import { type SampleOptions, sample } from './sample.js';

/** A decoder the span sampler can drive: ids [R, T] -> logits [R, T, V] with a KV cache and a [R, L] padding mask. */
export interface CachedDecoder {
  forward(ids: tf.Tensor, opts: { cache: KVCache; mask?: tf.Tensor }): tf.Tensor;
  newCache(): KVCache;
}

export interface LeftPadded {
  /** [R, L] row-major, rows right-aligned, `pad` before them. */
  ids: Int32Array;
  /** [R, L], 1 at real tokens, 0 at padding. */
  keep: Float32Array;
  rows: number;
  length: number;
}

/** Rows of token ids right-aligned to one length L (the longest row), padded on the left with `pad`. */
export function leftPadRows(rows: readonly (readonly number[])[], pad: number): LeftPadded {
  if (rows.length === 0) throw new Error('leftPadRows: no rows');
  const L = Math.max(...rows.map((r) => r.length));
  if (L === 0) throw new Error('leftPadRows: every row is empty');
  const R = rows.length;
  const ids = new Int32Array(R * L).fill(pad);
  const keep = new Float32Array(R * L);
  rows.forEach((r, i) => {
    ids.set(r, i * L + L - r.length);
    keep.fill(1, i * L + L - r.length, (i + 1) * L);
  });
  return { ids, keep, rows: R, length: L };
}

export interface SpanSamplingOptions {
  /** Tokens drawn per prompt (>= 1). */
  steps: number;
  /** Left-padding id (masked out by the padding mask). */
  padId: number;
  /**
   * One unconditional prompt per prompt, for classifier-free guidance with `cfgScale`; omit (or
   * give cfgScale 1) for no guidance: the unconditional rows are then not run.
   */
  uncond?: readonly (readonly number[])[];
  /** s of l_u + s (l_c - l_u) (default 1: no guidance). */
  cfgScale?: number;
  /** Per-token sampling: temperature, top-k, top-p, allowed ids, rng (core's `sample`). */
  sample: SampleOptions;
}

function lastRow(logits: tf.Tensor /* [R, T, V] */): tf.Tensor2D /* [R, V] */ {
  const [R, T, V] = logits.shape as [number, number, number];
  return logits.slice([0, T - 1, 0], [R, 1, V]).reshape([R, V]) as tf.Tensor2D;
}

/**
 * Draw exactly `opts.steps` token ids after each prompt (one batched pass, KV cache, optional CFG).
 * Returns one Int32Array of drawn ids per prompt. The model's train / eval mode is the caller's.
 */
export function sampleSpan(model: CachedDecoder, prompts: readonly (readonly number[])[], opts: SpanSamplingOptions): Int32Array[] {
  const N = prompts.length;
  const { steps } = opts;
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`sampleSpan: steps must be an integer >= 1, got ${steps}`);
  const s = opts.cfgScale ?? 1;
  if (!(Number.isFinite(s) && s > 0)) throw new Error(`sampleSpan: cfgScale must be a finite number > 0, got ${s}`);
  if (N === 0) return [];
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`sampleSpan: prompts[${i}] is empty; every prompt needs at least one token`);
  });
  const guided = s !== 1;
  if (guided && (!opts.uncond || opts.uncond.length !== N))
    throw new Error(
      `sampleSpan: guidance (cfgScale ${s}) needs one unconditional prompt per prompt: expected ${N}, got ${opts.uncond?.length ?? 'none'}`,
    );
  const layout = leftPadRows(guided ? [...prompts, ...(opts.uncond as (readonly number[])[])] : prompts, opts.padId);
  const R = layout.rows;
  const out = prompts.map(() => new Int32Array(steps));
  const cache = model.newCache();
  let keep: tf.Tensor = tf.tensor2d(layout.keep, [R, layout.length]);
  let last: tf.Tensor | null = null;
  try {
    last = tf.tidy(() => lastRow(model.forward(tf.tensor2d(layout.ids, [R, layout.length], 'int32'), { cache, mask: paddingMask(keep) })));
    for (let i = 0; i < steps; i++) {
      const cur: tf.Tensor = last;
      const next = tf.tidy(() => {
        const cond = guided ? cur.slice([0, 0], [N, -1]) : cur; // [N, V]
        return sample(guided ? cfgLogits(cond, cur.slice([N, 0], [N, -1]), s) : cond, opts.sample); // [N]
      });
      next.forEach((id, b) => {
        (out[b] as Int32Array)[i] = id;
      });
      if (i === steps - 1) break;
      const ids = guided ? Int32Array.from([...next, ...next]) : next; // the same token for both halves
      const grown = tf.tidy(() => tf.concat([keep, tf.ones([R, 1])], 1)); // [R, L + i + 1]
      keep.dispose();
      keep = grown;
      last = tf.tidy(() => lastRow(model.forward(tf.tensor2d(ids, [R, 1], 'int32'), { cache, mask: paddingMask(keep) })));
      cur.dispose();
    }
  } finally {
    last?.dispose();
    keep.dispose();
    cache.dispose();
  }
  return out;
}

export interface UntilSamplingOptions {
  /** Most tokens drawn per prompt (>= 1). */
  maxNewTokens: number;
  /** The id that ends a row (not included in its output). */
  stopId: number;
  /** Per-token sampling (core's `sample`; temperature 0 = greedy). */
  sample: SampleOptions;
}

/**
 * Draw tokens after prompts of equal length (one batched pass, KV cache, no padding) until each row
 * has drawn `stopId` or `maxNewTokens` tokens. Returns each row's ids before its stop id. Rows that
 * have stopped keep being fed (their later draws are ignored) so the batch stays rectangular; the
 * loop ends when every row has stopped. The model's train / eval mode is the caller's.
 */
export function sampleUntil(model: CachedDecoder, prompts: readonly (readonly number[])[], opts: UntilSamplingOptions): number[][] {
  const N = prompts.length;
  const { maxNewTokens } = opts;
  if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 1))
    throw new Error(`sampleUntil: maxNewTokens must be an integer >= 1, got ${maxNewTokens}`);
  if (N === 0) return [];
  const L = (prompts[0] as readonly number[]).length;
  prompts.forEach((p, i) => {
    if (p.length !== L || L === 0)
      throw new Error(`sampleUntil: prompts must share one non-zero length: prompts[0] has ${L} tokens, prompts[${i}] has ${p.length}`);
  });
  const out: number[][] = prompts.map(() => []);
  const done = new Array<boolean>(N).fill(false);
  const cache = model.newCache();
  let last: tf.Tensor | null = null;
  try {
    last = tf.tidy(() => lastRow(model.forward(tf.tensor2d(Int32Array.from(prompts.flat()), [N, L], 'int32'), { cache })));
    for (let t = 0; t < maxNewTokens; t++) {
      const cur: tf.Tensor = last;
      const next = sample(cur, opts.sample); // [N]
      next.forEach((id, b) => {
        if (done[b]) return;
        if (id === opts.stopId) done[b] = true;
        else (out[b] as number[]).push(id);
      });
      if (done.every(Boolean) || t === maxNewTokens - 1) break;
      last = tf.tidy(() => lastRow(model.forward(tf.tensor2d(next, [N, 1], 'int32'), { cache })));
      cur.dispose();
    }
  } finally {
    last?.dispose();
    cache.dispose();
  }
  return out;
}
