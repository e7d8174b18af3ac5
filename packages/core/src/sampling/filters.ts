/**
 * Logit filters for autoregressive sampling, each a pure function returning new logits with
 * removed tokens at -Infinity (HF's filter_value), so surviving sets and renormalised
 * probabilities can be golden-tested:
 *   top-k and top-p: HF transformers v3 `top_k_top_p_filtering` (as Liquid's genaibench sampling
 *     uses it, brief sec. 2.6/2.11): top-k removes logits < the k-th largest (ties kept); top-p sorts
 *     descending, takes cumulative softmax probabilities, removes tokens whose cumulative
 *     probability exceeds p, shifted right by one so the token that crosses p and the top token stay.
 *   repetition penalty: CTRL (Keskar et al. 2019) as HF's RepetitionPenaltyLogitsProcessor:
 *     for each previously generated id, logit / penalty if logit > 0, else logit * penalty.
 *   classifier-free guidance on logits (Liquid, brief sec. 2.6): l = l_u + s (l_c - l_u).
 *   vocabulary masks: ids outside allowed ranges / sets get -Infinity.
 * Each filter takes one row (Float32Array [V], host) or a tensor [V] / [B, V] (read to the host
 * row by row and returned as a new tensor of the same shape).
 */
import { readSync } from '../backend/read.js';
import { tf } from '../tf.js';

const NEG_INF = Number.NEGATIVE_INFINITY;

/** Allowed ids: half-open ranges [lo, hi) and/or explicit ids. */
export interface AllowedIds {
  ranges?: [number, number][];
  ids?: Iterable<number>;
}

/** Apply `f` to each row of a host row or a [V] / [B, V] tensor. */
export function mapRows(
  who: string,
  logits: Float32Array | tf.Tensor,
  f: (row: Float32Array, b: number) => Float32Array,
): Float32Array | tf.Tensor {
  if (logits instanceof Float32Array) return f(logits, 0);
  const { B, V } = checkLogitsTensor(who, logits);
  const data = readSync(logits, who, 'read the logits first (await logits.data()) and pass the Float32Array rows') as Float32Array;
  const out = new Float32Array(B * V);
  for (let b = 0; b < B; b++) out.set(f(data.subarray(b * V, (b + 1) * V), b), b * V);
  return tf.tensor(out, logits.shape, 'float32');
}

/** B and V of logits [V] (B = 1) or [B, V], checked to be float32. */
export function checkLogitsTensor(who: string, logits: tf.Tensor): { B: number; V: number } {
  if (!(logits instanceof tf.Tensor)) throw new Error(`${who}: logits must be a Float32Array row or a tensor, got ${typeof logits}`);
  if (logits.rank !== 1 && logits.rank !== 2) throw new Error(`${who}: logits must be [V] or [B, V], got [${logits.shape}]`);
  if (logits.dtype !== 'float32') throw new Error(`${who}: logits must be float32, got ${logits.dtype}`);
  const V = logits.shape[logits.rank - 1] as number;
  if (V < 1) throw new Error(`${who}: logits need at least one token, got [${logits.shape}]`);
  return { B: logits.rank === 2 ? (logits.shape[0] as number) : 1, V };
}

export function checkTopK(who: string, k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`${who}: k must be an integer >= 1, got ${k}`);
}

export function checkTopP(who: string, p: number): void {
  if (!(typeof p === 'number' && p > 0 && p <= 1)) throw new Error(`${who}: p must be in (0, 1], got ${p}`);
}

export function checkPenalty(who: string, penalty: number): void {
  if (!(typeof penalty === 'number' && penalty > 0 && Number.isFinite(penalty)))
    throw new Error(`${who}: penalty must be a finite number > 0, got ${penalty}`);
}

/** Keep the k largest logits of each row; logits equal to the k-th largest are kept too. */
export function topKFilter(logits: Float32Array, k: number): Float32Array;
export function topKFilter<T extends tf.Tensor>(logits: T, k: number): T;
export function topKFilter(logits: Float32Array | tf.Tensor, k: number): Float32Array | tf.Tensor {
  checkTopK('topKFilter', k);
  return mapRows('topKFilter', logits, (row) => topKInPlace(row.slice(), k));
}

/** Nucleus filter (HF v3 rule, see the file comment). p = 1 keeps everything. */
export function topPFilter(logits: Float32Array, p: number): Float32Array;
export function topPFilter<T extends tf.Tensor>(logits: T, p: number): T;
export function topPFilter(logits: Float32Array | tf.Tensor, p: number): Float32Array | tf.Tensor {
  checkTopP('topPFilter', p);
  return mapRows('topPFilter', logits, (row) => (p >= 1 ? row.slice() : topPInPlace(row.slice(), p)));
}

// The row filters below work in place on a row the caller owns, in plain loops: sample() runs them
// on every row of every generated position (about a fifth of a small model's generation time when
// they were written with map / from / reduce callbacks). Their arithmetic and its order are the
// pure filters' (tests compare them with the earlier callback versions bit for bit).

/** top-k in place: logits below the k-th largest become -Infinity. */
export function topKInPlace(x: Float32Array, k: number): Float32Array {
  const V = x.length;
  if (k >= V) return x;
  const kth = Float32Array.from(x).sort()[V - k] as number; // ascending
  for (let i = 0; i < V; i++) if ((x[i] as number) < kth) x[i] = NEG_INF;
  return x;
}

/** Ids up to this many are sorted by packed float64 keys (id in the low 21 bits); larger vocabularies by a comparator. */
const KEY_ID_BITS = 21;
const KEY_ID_SPAN = 2 ** KEY_ID_BITS;
const f32View = new Float32Array(1);
const u32View = new Uint32Array(f32View.buffer);

/**
 * The ids of the finite-or-+Infinity logits of x (those > -Infinity), most likely first, ties by
 * ascending id: the order of `sort((a, b) => x[b] - x[a] || a - b)` for every row without NaN or
 * +Infinity, got by one numeric sort of float64 keys (value rank in the high bits, id in the low).
 */
export function descendingOrder(x: Float32Array): Int32Array {
  const V = x.length;
  let n = 0;
  for (let i = 0; i < V; i++) if ((x[i] as number) > NEG_INF) n++;
  const order = new Int32Array(n);
  if (V > KEY_ID_SPAN) {
    const ids: number[] = [];
    for (let i = 0; i < V; i++) if ((x[i] as number) > NEG_INF) ids.push(i);
    ids.sort((a, b) => (x[b] as number) - (x[a] as number) || a - b);
    order.set(ids);
    return order;
  }
  const keys = new Float64Array(n);
  let j = 0;
  for (let i = 0; i < V; i++) {
    const v = x[i] as number;
    if (!(v > NEG_INF)) continue;
    f32View[0] = v === 0 ? 0 : v; // -0 ranks with +0, as the comparator's x[b] - x[a] = 0
    const bits = u32View[0] as number;
    const asc = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0; // monotone in v
    keys[j++] = (0xffffffff - asc) * KEY_ID_SPAN + i; // < 2^53: exact
  }
  keys.sort();
  for (let r = 0; r < n; r++) order[r] = (keys[r] as number) % KEY_ID_SPAN;
  return order;
}

/** top-p in place (HF v3 rule): p < 1. */
export function topPInPlace(x: Float32Array, p: number): Float32Array {
  const order = descendingOrder(x);
  const n = order.length;
  if (n === 0) return x;
  const max = x[order[0] as number] as number;
  const e = new Float64Array(n);
  let z = 0;
  for (let r = 0; r < n; r++) {
    const v = Math.exp((x[order[r] as number] as number) - max);
    e[r] = v;
    z += v;
  }
  let cum = 0; // probability of the tokens ranked before r
  for (let r = 0; r < n; r++) {
    if (r > 0 && cum > p) x[order[r] as number] = NEG_INF;
    cum += (e[r] as number) / z;
  }
  return x;
}

/**
 * CTRL repetition penalty for the ids in `prevIds` (duplicates count once). For a [B, V] tensor
 * prevIds holds one id list per row.
 */
export function repetitionPenalty(logits: Float32Array, prevIds: Iterable<number>, penalty: number): Float32Array;
export function repetitionPenalty<T extends tf.Tensor>(logits: T, prevIds: Iterable<number> | number[][], penalty: number): T;
export function repetitionPenalty(
  logits: Float32Array | tf.Tensor,
  prevIds: Iterable<number> | number[][],
  penalty: number,
): Float32Array | tf.Tensor {
  checkPenalty('repetitionPenalty', penalty);
  const perRow = perRowIds('repetitionPenalty', logits, prevIds);
  return mapRows('repetitionPenalty', logits, (row, b) => penalizeRow(row, perRow[b] ?? [], penalty, 'repetitionPenalty'));
}

export function penalizeRow(row: Float32Array, prev: Iterable<number>, penalty: number, who: string): Float32Array {
  return penalizeInPlace(row.slice(), prev, penalty, who);
}

/** The CTRL penalty in place on a row the caller owns. */
export function penalizeInPlace(out: Float32Array, prev: Iterable<number>, penalty: number, who: string): Float32Array {
  for (const id of new Set(prev)) {
    if (!Number.isInteger(id) || id < 0 || id >= out.length)
      throw new Error(`${who}: previous id ${id} must be an integer in [0, ${out.length})`);
    const x = out[id] as number;
    out[id] = x > 0 ? x / penalty : x * penalty;
  }
  return out;
}

function perRowIds(who: string, logits: Float32Array | tf.Tensor, prevIds: Iterable<number> | number[][]): Iterable<number>[] {
  if (logits instanceof tf.Tensor && logits.rank === 2) {
    const B = logits.shape[0] as number;
    if (!Array.isArray(prevIds) || prevIds.length !== B || !prevIds.every((r) => Array.isArray(r)))
      throw new Error(`${who}: prevIds for logits [${logits.shape}] must be ${B} id lists (one per row), got ${describeIds(prevIds)}`);
    return prevIds as number[][];
  }
  return [prevIds as Iterable<number>];
}

function describeIds(x: unknown): string {
  return Array.isArray(x) ? `an array of ${x.length}${x.length && !Array.isArray(x[0]) ? ' ids' : ' lists'}` : typeof x;
}

/** Only ids in `allowed` survive (e.g. Liquid's image codes: ranges [[256000, 264192]]). */
export function vocabMask(logits: Float32Array, allowed: AllowedIds): Float32Array;
export function vocabMask<T extends tf.Tensor>(logits: T, allowed: AllowedIds): T;
export function vocabMask(logits: Float32Array | tf.Tensor, allowed: AllowedIds): Float32Array | tf.Tensor {
  const V = logits instanceof Float32Array ? logits.length : checkLogitsTensor('vocabMask', logits).V;
  const keep = allowedMask('vocabMask', V, allowed);
  return mapRows('vocabMask', logits, (row) => maskInto(new Float32Array(row.length), row, keep));
}

/** out[i] = row[i] where keep[i], else -Infinity. */
export function maskInto(out: Float32Array, row: Float32Array, keep: Uint8Array): Float32Array {
  for (let i = 0; i < row.length; i++) out[i] = keep[i] ? (row[i] as number) : NEG_INF;
  return out;
}

/** 1 for allowed ids of a vocabulary of V, checked: integer ids and ranges inside [0, V], not empty. */
export function allowedMask(who: string, V: number, allowed: AllowedIds): Uint8Array {
  const keep = new Uint8Array(V);
  for (const r of allowed.ranges ?? []) {
    const [lo, hi] = Array.isArray(r) ? r : [Number.NaN, Number.NaN];
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > V || lo > hi)
      throw new Error(`${who}: range ${JSON.stringify(r)} must be [lo, hi) with integers 0 <= lo <= hi <= ${V}`);
    keep.fill(1, lo, hi);
  }
  for (const i of allowed.ids ?? []) {
    if (!Number.isInteger(i) || i < 0 || i >= V) throw new Error(`${who}: allowed id ${i} must be an integer in [0, ${V})`);
    keep[i] = 1;
  }
  if (!keep.includes(1)) throw new Error(`${who}: the allowed set is empty (vocabulary of ${V})`);
  return keep;
}

/** Classifier-free guidance on logits: l_u + s (l_c - l_u), for any matching shapes. */
export function cfgLogits(cond: tf.Tensor, uncond: tf.Tensor, scale: number): tf.Tensor {
  if (cond.shape.join() !== uncond.shape.join() || cond.rank !== uncond.rank)
    throw new Error(`cfgLogits: cond [${cond.shape}] and uncond [${uncond.shape}] must have the same shape`);
  if (!(typeof scale === 'number' && Number.isFinite(scale))) throw new Error(`cfgLogits: scale must be a finite number, got ${scale}`);
  return tf.tidy(() => uncond.add(cond.sub(uncond).mul(scale)));
}

/** Softmax of one row in float64 (-Infinity gives probability 0). */
export function softmax(logits: Float32Array): Float64Array {
  const V = logits.length;
  let max = NEG_INF;
  for (let i = 0; i < V; i++) if ((logits[i] as number) > max) max = logits[i] as number;
  if (max === NEG_INF) throw new Error('softmax: every logit is -Infinity');
  const e = new Float64Array(V);
  let z = 0;
  for (let i = 0; i < V; i++) {
    const x = logits[i] as number;
    const v = x === NEG_INF ? 0 : Math.exp(x - max);
    e[i] = v;
    z += v;
  }
  for (let i = 0; i < V; i++) e[i] = (e[i] as number) / z;
  return e;
}
