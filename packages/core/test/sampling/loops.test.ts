/**
 * The loop-written row filters (sample()'s hot path) against the callback versions they replaced,
 * kept here as the reference: the same filtered logits and the same drawn ids, bit for bit, on rows
 * with ties, signed zeros, -Infinity, +Infinity and NaN, and through the comparator path of
 * vocabularies above 2^21 ids.
 */
import { describe, expect, it } from 'vitest';
import { filterLogits, Rng, sample, softmax, tf } from '../../src/index.js';
import { descendingOrder, topKInPlace, topPInPlace } from '../../src/sampling/filters.js';

const NI = Number.NEGATIVE_INFINITY;

// --- the earlier implementations (callbacks, copies), verbatim in their arithmetic ---
function refTopK(row: Float32Array, k: number): Float32Array {
  if (k >= row.length) return row.slice();
  const kth = Float32Array.from(row).sort()[row.length - k] as number;
  return row.map((x) => (x < kth ? NI : x));
}
function refOrder(row: Float32Array): number[] {
  const order: number[] = [];
  for (let i = 0; i < row.length; i++) if ((row[i] as number) > NI) order.push(i);
  return order.sort((a, b) => (row[b] as number) - (row[a] as number) || a - b);
}
function refTopP(row: Float32Array, p: number): Float32Array {
  const out = row.slice();
  if (p >= 1) return out;
  const order = refOrder(row);
  if (order.length === 0) return out;
  const max = row[order[0]!] as number;
  const e = order.map((i) => Math.exp((row[i] as number) - max));
  const z = e.reduce((a, b) => a + b, 0);
  let cum = 0;
  for (let r = 0; r < order.length; r++) {
    if (r > 0 && cum > p) out[order[r]!] = NI;
    cum += (e[r] as number) / z;
  }
  return out;
}
function refSoftmax(logits: Float32Array): Float64Array {
  let max = NI;
  for (const x of logits) if (x > max) max = x;
  const e = Float64Array.from(logits, (x) => (x === NI ? 0 : Math.exp(x - max)));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}
interface Opts {
  temperature: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  allowed?: [number, number];
}
function refFilter(row: Float32Array, o: Opts, prev: number[]): Float32Array {
  let x = o.allowed ? row.map((v, i) => (i >= o.allowed![0] && i < o.allowed![1] ? v : NI)) : row;
  if (o.repetitionPenalty !== undefined && o.repetitionPenalty !== 1 && prev.length) {
    const out = x.slice();
    for (const id of new Set(prev)) {
      const v = out[id] as number;
      out[id] = v > 0 ? v / o.repetitionPenalty : v * o.repetitionPenalty;
    }
    x = out;
  }
  const t = o.temperature;
  if (t > 0 && t !== 1) x = x.map((v) => v / t);
  if (o.topK) x = refTopK(x, o.topK);
  if (o.topP !== undefined && o.topP < 1) x = refTopP(x, o.topP);
  return x === row ? row.slice() : x;
}
function refDraw(p: Float64Array, u: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] as number;
    if (pi === 0) continue;
    cum += pi;
    last = i;
    if (u < cum) return i;
  }
  return last;
}

/** A row with many ties (values on a coarse grid), signed zeros and -Infinity. */
function craftedRow(rng: Rng, V: number, special: boolean): Float32Array {
  const x = new Float32Array(V);
  for (let i = 0; i < V; i++) {
    const r = rng.uniform();
    const g = rng.normal();
    x[i] = r < 0.3 ? Math.round(g * 2) / 2 : g * 3; // ties on a 0.5 grid
    if (special && r > 0.9) x[i] = NI;
    else if (special && r > 0.85) x[i] = r > 0.875 ? 0 : -0;
  }
  return x;
}

const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));

describe('loop-written sampling filters equal the callback versions', () => {
  it('order, top-k, top-p and softmax on crafted rows, bit for bit', () => {
    const rng = new Rng(17);
    for (let trial = 0; trial < 200; trial++) {
      const V = 1 + (trial % 37) * 7;
      const row = craftedRow(rng, V, trial % 2 === 0);
      if (trial % 10 === 3) row[trial % V] = Number.POSITIVE_INFINITY;
      if (trial % 10 === 5) row[(trial * 3) % V] = Number.NaN;
      expect(Array.from(descendingOrder(row))).toEqual(refOrder(row));
      for (const k of [1, 2, 5, V, V + 3]) expect(bits(topKInPlace(row.slice(), k))).toEqual(bits(refTopK(row, k)));
      for (const p of [0.01, 0.3, 0.9, 0.999]) expect(bits(topPInPlace(row.slice(), p))).toEqual(bits(refTopP(row, p)));
      if (row.some((x) => x > NI)) {
        const a = softmax(row);
        const b = refSoftmax(row);
        expect(Array.from(new Uint32Array(a.buffer))).toEqual(Array.from(new Uint32Array(b.buffer)));
      }
    }
  });

  it('the order over 2^21 ids (comparator path) matches too', () => {
    const V = 2 ** 21 + 5;
    const row = new Float32Array(V).fill(NI);
    const ids = [0, 7, 2 ** 21 - 1, 2 ** 21, 2 ** 21 + 4, 12345];
    const vals = [0.5, 2, 2, -0, 0, 1];
    ids.forEach((id, i) => {
      row[id] = vals[i] as number;
    });
    expect(Array.from(descendingOrder(row))).toEqual(refOrder(row));
    expect(Array.from(descendingOrder(row))).toEqual([7, 2 ** 21 - 1, 12345, 0, 2 ** 21, 2 ** 21 + 4]);
  });

  it('filterLogits and sample draw what the callback pipeline draws', () => {
    const settings: Opts[] = [
      { temperature: 1 },
      { temperature: 0.5, topP: 0.96, allowed: [8, 40] },
      { temperature: 0.7, topK: 5, topP: 0.9, repetitionPenalty: 1.3 },
      { temperature: 1.3, topK: 50, repetitionPenalty: 0.8, allowed: [0, 20] },
      { temperature: 0, topP: 0.5 },
    ];
    const data = new Rng(5);
    for (const o of settings) {
      const B = 6;
      const V = 48;
      const rows = Array.from({ length: B }, (_, b) => craftedRow(data, V, b % 2 === 1));
      for (const r of rows) r[3] = 1.25; // an allowed finite logit in every row, for every mask
      for (const r of rows) r[10] = 1.25;
      const prevIds = rows.map((_, b) => [b, 3, 3, 10 + b]);
      const flat = new Float32Array(B * V);
      rows.forEach((r, b) => flat.set(r, b * V));
      const logits = tf.tensor2d(flat, [B, V]);
      const opts = {
        temperature: o.temperature,
        topK: o.topK,
        topP: o.topP,
        repetitionPenalty: o.repetitionPenalty,
        prevIds,
        allowed: o.allowed ? { ranges: [o.allowed] } : undefined,
      };
      const filtered = filterLogits(logits, opts);
      const want = rows.map((r, b) => refFilter(r, o, prevIds[b]!));
      expect(bits(filtered.dataSync())).toEqual(bits(want.flatMap((w) => Array.from(w))));
      filtered.dispose();
      const ids = sample(logits, { ...opts, rng: new Rng(9) });
      const u = new Rng(9);
      const expected = want.map((w) => {
        if (o.temperature === 0) {
          let best = 0;
          for (let i = 1; i < w.length; i++) if ((w[i] as number) > (w[best] as number)) best = i;
          return best;
        }
        return refDraw(refSoftmax(w), u.uniform());
      });
      expect(Array.from(ids)).toEqual(expected);
      logits.dispose();
    }
  });
});
