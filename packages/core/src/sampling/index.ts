/**
 * Seeded sampling from logits: greedy, temperature, top-k, top-p (nucleus), repetition penalty,
 * classifier-free guidance, vocabulary masks. Filters are pure functions on logits (returning
 * -Infinity for removed tokens) so they can be golden-tested; `sample` draws with an Rng.
 */
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';

/** CFG on logits: l_u + s (l_c - l_u). */
export function cfgLogits(cond: tf.Tensor, uncond: tf.Tensor, scale: number): tf.Tensor {
  return tf.tidy(() => uncond.add(cond.sub(uncond).mul(scale)));
}

/** Keep the k largest logits of each row (ties at the k-th value are kept, as HF's `< kth` rule). */
export function topKFilter(logits: Float32Array, k: number): Float32Array {
  if (!Number.isInteger(k) || k < 1) throw new Error(`topKFilter: k must be an integer >= 1, got ${k}`);
  if (k >= logits.length) return logits.slice();
  const kth = [...logits].sort((a, b) => b - a)[k - 1] as number;
  return logits.map((x) => (x < kth ? Number.NEGATIVE_INFINITY : x));
}

/**
 * Nucleus filter with HF `top_k_top_p_filtering`'s rule: sort descending, cumulative softmax
 * probabilities, remove tokens whose cumulative probability exceeds p, shifted right by one so the
 * token that crosses p is kept (and the top token always is).
 */
export function topPFilter(logits: Float32Array, p: number): Float32Array {
  if (!(p > 0 && p <= 1)) throw new Error(`topPFilter: p must be in (0, 1], got ${p}`);
  if (p >= 1) return logits.slice();
  const order = [...logits.keys()].sort((a, b) => (logits[b] as number) - (logits[a] as number));
  const max = logits[order[0]!] as number;
  const e = order.map((i) => Math.exp((logits[i] as number) - max));
  const z = e.reduce((a, b) => a + b, 0);
  const out = logits.slice();
  let cum = 0;
  for (let r = 0; r < order.length; r++) {
    const removeThis = r > 0 && cum > p; // shifted: decided by the cumulative mass before this token
    cum += (e[r] as number) / z;
    if (removeThis) out[order[r]!] = Number.NEGATIVE_INFINITY;
  }
  return out;
}

/** CTRL / HF repetition penalty: for previously generated ids, logit / pen if > 0 else logit * pen. */
export function repetitionPenalty(logits: Float32Array, prevIds: Iterable<number>, penalty: number): Float32Array {
  if (!(penalty > 0)) throw new Error(`repetitionPenalty: penalty must be > 0, got ${penalty}`);
  const out = logits.slice();
  for (const id of new Set(prevIds)) {
    const x = out[id];
    if (x === undefined) continue;
    out[id] = x > 0 ? x / penalty : x * penalty;
  }
  return out;
}

/** Only ids in [lo, hi) ranges or in a set survive. */
export function vocabMask(logits: Float32Array, allowed: { ranges?: [number, number][]; ids?: Iterable<number> }): Float32Array {
  const keep = new Uint8Array(logits.length);
  for (const [lo, hi] of allowed.ranges ?? []) for (let i = Math.max(0, lo); i < Math.min(hi, logits.length); i++) keep[i] = 1;
  for (const i of allowed.ids ?? []) if (i >= 0 && i < logits.length) keep[i] = 1;
  if (!keep.some((x) => x)) throw new Error('vocabMask: the allowed set is empty');
  return logits.map((x, i) => (keep[i] ? x : Number.NEGATIVE_INFINITY));
}

export function softmax(logits: Float32Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const x of logits) if (x > max) max = x;
  const e = Float64Array.from(logits, (x) => (x === Number.NEGATIVE_INFINITY ? 0 : Math.exp(x - max)));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

export interface SampleOptions {
  /** 0 means greedy. Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  /** Previously generated ids per row (for the repetition penalty). */
  prevIds?: number[][];
  allowed?: { ranges?: [number, number][]; ids?: Iterable<number> };
  rng?: Rng;
}

/** The filtered logits of one row, in the order: vocabulary mask, repetition penalty, temperature, top-k, top-p. */
export function filterLogits(row: Float32Array, opts: SampleOptions, prev: number[] = []): Float32Array {
  let x = row;
  if (opts.allowed) x = vocabMask(x, opts.allowed);
  if (opts.repetitionPenalty && opts.repetitionPenalty !== 1) x = repetitionPenalty(x, prev, opts.repetitionPenalty);
  const t = opts.temperature ?? 1;
  if (t > 0 && t !== 1) x = x.map((v) => v / t);
  if (opts.topK) x = topKFilter(x, opts.topK);
  if (opts.topP !== undefined && opts.topP < 1) x = topPFilter(x, opts.topP);
  return x;
}

/** Sample one id per row of logits [B, V] (or [V]); reads logits to the host. */
export function sample(logits: tf.Tensor, opts: SampleOptions = {}): Int32Array {
  if (logits.rank !== 1 && logits.rank !== 2) throw new Error(`sample: logits must be [V] or [B, V], got [${logits.shape}]`);
  const t = opts.temperature ?? 1;
  if (!(t >= 0)) throw new Error(`sample: temperature must be >= 0, got ${t}`);
  const V = logits.shape[logits.rank - 1] as number;
  const B = logits.rank === 2 ? (logits.shape[0] as number) : 1;
  const all = logits.dataSync() as Float32Array;
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const row = filterLogits(all.subarray(b * V, (b + 1) * V), opts, opts.prevIds?.[b]);
    if (t === 0) {
      let best = 0;
      for (let i = 1; i < V; i++) if ((row[i] as number) > (row[best] as number)) best = i;
      out[b] = best;
      continue;
    }
    if (!opts.rng) throw new Error('sample: an rng is required when temperature > 0 (sampling is seeded)');
    const p = softmax(row);
    const u = opts.rng.uniform();
    let cum = 0;
    let pick = V - 1;
    for (let i = 0; i < V; i++) {
      cum += p[i] as number;
      if (u < cum) {
        pick = i;
        break;
      }
    }
    while (p[pick] === 0 && pick > 0) pick--; // u landed in round-off past the last kept token
    out[b] = pick;
  }
  return out;
}
