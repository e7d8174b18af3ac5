import { beforeAll, describe, expect, it } from 'vitest';
import {
  cfgLogits,
  filterLogits,
  Rng,
  repetitionPenalty,
  sample,
  softmax,
  tf,
  topKFilter,
  topPFilter,
  useBackend,
  vocabMask,
} from '../../src/index.js';

const NI = Number.NEGATIVE_INFINITY;

describe('sampling', () => {
  beforeAll(async () => useBackend('cpu'));

  it('top-k keeps the k largest (ties at the k-th kept)', () => {
    expect(Array.from(topKFilter(Float32Array.from([1, 5, 3, 5, 0]), 2))).toEqual([NI, 5, NI, 5, NI]);
    expect(Array.from(topKFilter(Float32Array.from([1, 4, 3]), 2))).toEqual([NI, 4, 3]);
    expect(() => topKFilter(Float32Array.from([1]), 0)).toThrow(/k must be an integer >= 1, got 0/);
  });

  it('top-p keeps the token that crosses p (HF shift-by-one rule)', () => {
    // probs of log([0.5, 0.3, 0.15, 0.05]): cumulative 0.5, 0.8, 0.95, 1.0
    const l = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    expect(Array.from(topPFilter(l, 0.7)).map(Number.isFinite)).toEqual([true, true, false, false]);
    expect(Array.from(topPFilter(l, 0.5)).map(Number.isFinite)).toEqual([true, false, false, false]);
    expect(Array.from(topPFilter(l, 0.81)).map(Number.isFinite)).toEqual([true, true, true, false]);
    expect(Array.from(topPFilter(l, 0.01)).map(Number.isFinite)).toEqual([true, false, false, false]);
    const kept = softmax(topPFilter(l, 0.7));
    expect(kept[0]).toBeCloseTo(0.5 / 0.8, 6);
    expect(kept[1]).toBeCloseTo(0.3 / 0.8, 6);
  });

  it('repetition penalty, vocabulary mask and CFG', () => {
    expect(Array.from(repetitionPenalty(Float32Array.from([2, -2, 1]), [0, 1, 1], 2))).toEqual([1, -4, 1]);
    expect(Array.from(vocabMask(Float32Array.from([1, 2, 3, 4]), { ranges: [[2, 4]] }))).toEqual([NI, NI, 3, 4]);
    expect(() => vocabMask(Float32Array.from([1]), { ids: [] })).toThrow(/allowed set is empty/);
    const c = cfgLogits(tf.tensor1d([2, 0]), tf.tensor1d([1, 1]), 3).dataSync();
    expect(Array.from(c)).toEqual([1 + 3 * (2 - 1), 1 + 3 * (0 - 1)]);
  });

  it('order: mask, then temperature, then top-k, then top-p (Liquid reference)', () => {
    const row = Float32Array.from([4, 3, 2, 1, 10]);
    const f = filterLogits(row, { allowed: { ranges: [[0, 4]] }, temperature: 0.5, topK: 3, topP: 0.9 });
    expect(Number.isFinite(f[4]!)).toBe(false);
    expect(f[0]).toBeCloseTo(8, 6);
    expect(Number.isFinite(f[3]!)).toBe(false);
  });

  it('greedy, and seeded sampling is deterministic and follows the probabilities', () => {
    const logits = tf.tensor2d([
      [0, 3, 1],
      [2, 0, 0],
    ]);
    expect(Array.from(sample(logits, { temperature: 0 }))).toEqual([1, 0]);
    const a = sample(logits, { rng: new Rng(7) });
    const b = sample(logits, { rng: new Rng(7) });
    expect(Array.from(a)).toEqual(Array.from(b));
    const p = softmax(Float32Array.from([0, Math.log(3), Math.log(6)])); // 0.1, 0.3, 0.6
    const rng = new Rng(1);
    const counts = [0, 0, 0];
    const row = tf.tensor1d([0, Math.log(3), Math.log(6)]);
    const N = 4000;
    for (let i = 0; i < N; i++) counts[sample(row, { rng })[0]!]!++;
    // 5 standard deviations of a binomial proportion: fails with probability < 1e-6
    counts.forEach((c, i) => expect(Math.abs(c / N - p[i]!)).toBeLessThan(5 * Math.sqrt((p[i]! * (1 - p[i]!)) / N)));
    expect(() => sample(logits)).toThrow(/an rng is required/);
    expect(() => sample(tf.zeros([1, 2, 3]))).toThrow(/logits must be \[V\] or \[B, V\], got \[1,2,3\]/);
  });
});
