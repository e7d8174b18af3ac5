/**
 * Seeded token sampling from logits [V] or [B, V], per row in the order of Liquid's reference
 * (brief sec. 2.6) with HF's repetition processor before the warpers:
 *   vocabulary mask -> repetition penalty -> temperature (x / t) -> top-k -> top-p -> draw.
 * temperature 0 is greedy (argmax of the filtered logits, first index on ties). The draw is the
 * inverse CDF of the float64 softmax at one Rng.uniform() per row, so a seed fixes the ids.
 */
import { readSync } from '../backend/read.js';
import type { Rng } from '../rng/index.js';
import type { tf } from '../tf.js';
import {
  type AllowedIds,
  allowedMask,
  checkLogitsTensor,
  checkPenalty,
  checkTopK,
  checkTopP,
  mapRows,
  maskInto,
  penalizeInPlace,
  softmax,
  topKInPlace,
  topPInPlace,
} from './filters.js';

export interface SampleOptions {
  /** Divides the logits; 0 means greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 or undefined disables. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 or undefined disables. */
  topP?: number;
  /** CTRL penalty (> 0; 1 disables) on the ids in prevIds. */
  repetitionPenalty?: number;
  /** Previously generated ids, one list per row. */
  prevIds?: number[][];
  /** Only these ids can be drawn. */
  allowed?: AllowedIds;
  /** Required unless temperature is 0. */
  rng?: Rng;
}

function checkOptions(who: string, o: SampleOptions, B: number | undefined): void {
  const t = o.temperature ?? 1;
  if (!(typeof t === 'number' && t >= 0 && Number.isFinite(t)))
    throw new Error(`${who}: temperature must be a finite number >= 0, got ${t}`);
  if (o.topK !== undefined && o.topK !== 0) checkTopK(`${who} (topK)`, o.topK);
  if (o.topP !== undefined) checkTopP(`${who} (topP)`, o.topP);
  if (o.repetitionPenalty !== undefined) checkPenalty(`${who} (repetitionPenalty)`, o.repetitionPenalty);
  if (o.prevIds !== undefined) {
    if (!Array.isArray(o.prevIds) || !o.prevIds.every((r) => Array.isArray(r)))
      throw new Error(`${who}: prevIds must be one id list per row (number[][])`);
    if (B !== undefined && o.prevIds.length !== B)
      throw new Error(`${who}: prevIds must have ${B} rows (one per logits row), got ${o.prevIds.length}`);
  }
}

/** The filters in sample()'s order on a copy of row (row is never written). */
function filterRow(row: Float32Array, o: SampleOptions, keep: Uint8Array | undefined, prev: number[] | undefined): Float32Array {
  const x = keep ? maskInto(new Float32Array(row.length), row, keep) : row.slice();
  if (o.repetitionPenalty !== undefined && o.repetitionPenalty !== 1 && prev?.length)
    penalizeInPlace(x, prev, o.repetitionPenalty, 'repetitionPenalty');
  const t = o.temperature ?? 1;
  if (t > 0 && t !== 1) for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) / t;
  if (o.topK) topKInPlace(x, o.topK);
  if (o.topP !== undefined && o.topP < 1) topPInPlace(x, o.topP);
  return x;
}

/**
 * The filtered logits sample() draws from: a host row (with its previous ids as `prev`, default
 * opts.prevIds[0]) or a tensor [V] / [B, V] (previous ids from opts.prevIds).
 */
export function filterLogits(logits: Float32Array, opts: SampleOptions, prev?: number[]): Float32Array;
export function filterLogits<T extends tf.Tensor>(logits: T, opts: SampleOptions): T;
export function filterLogits(logits: Float32Array | tf.Tensor, opts: SampleOptions, prev?: number[]): Float32Array | tf.Tensor {
  const isRow = logits instanceof Float32Array;
  const { B, V } = isRow ? { B: 1, V: logits.length } : checkLogitsTensor('filterLogits', logits);
  checkOptions('filterLogits', opts, isRow ? undefined : B);
  const keep = opts.allowed ? allowedMask('filterLogits', V, opts.allowed) : undefined;
  return mapRows('filterLogits', logits, (row, b) => filterRow(row, opts, keep, isRow ? (prev ?? opts.prevIds?.[0]) : opts.prevIds?.[b]));
}

/**
 * One id per row of logits [B, V] (or [V] -> one id); reads the logits to the host synchronously
 * (on webgpu, logits on the GPU cannot be: use sampleAsync there).
 */
export function sample(logits: tf.Tensor, opts: SampleOptions = {}): Int32Array {
  const { B, V, keep } = checkSample(logits, opts);
  return sampleRows(readSync(logits, 'sample', 'use await sampleAsync(logits, opts)') as Float32Array, B, V, opts, keep);
}

/** sample() with an asynchronous read of the logits: the same ids, on every backend (webgpu included). */
export async function sampleAsync(logits: tf.Tensor, opts: SampleOptions = {}): Promise<Int32Array> {
  const { B, V, keep } = checkSample(logits, opts);
  return sampleRows((await logits.data()) as Float32Array, B, V, opts, keep);
}

function checkSample(logits: tf.Tensor, opts: SampleOptions): { B: number; V: number; keep: Uint8Array | undefined } {
  const { B, V } = checkLogitsTensor('sample', logits);
  checkOptions('sample', opts, B);
  const t = opts.temperature ?? 1;
  if (t > 0 && !opts.rng) throw new Error('sample: an rng is required when temperature > 0 (sampling is seeded)');
  return { B, V, keep: opts.allowed ? allowedMask('sample', V, opts.allowed) : undefined };
}

function sampleRows(all: Float32Array, B: number, V: number, opts: SampleOptions, keep: Uint8Array | undefined): Int32Array {
  const t = opts.temperature ?? 1;
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const row = filterRow(all.subarray(b * V, (b + 1) * V), opts, keep, opts.prevIds?.[b]);
    out[b] = t === 0 ? argmax(row) : draw(softmax(row), opts.rng!.uniform());
  }
  return out;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}

/** Inverse CDF: the first i with u < p_0 + ... + p_i (never a zero-probability id). */
function draw(p: Float64Array, u: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] as number;
    if (pi === 0) continue;
    cum += pi;
    last = i;
    if (u < cum) return i;
  }
  return last; // u fell in the round-off above the total
}
