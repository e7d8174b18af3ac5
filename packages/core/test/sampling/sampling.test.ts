/**
 * Sampling filters against hand-derived surviving sets and renormalised probabilities (HF v3
 * `top_k_top_p_filtering` as Liquid's reference uses it), and seeded draws against their
 * probabilities.
 */
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
  vocabMask,
} from '../../src/index.js';
import { TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const NI = Number.NEGATIVE_INFINITY;
const row = (xs: number[]) => Float32Array.from(xs);
const kept = (xs: ArrayLike<number>) => Array.from(xs).map((x) => x > NI);

for (const backend of TEST_BACKENDS) {
  describe(`sampling on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('top-k keeps the k largest (ties at the k-th value kept); k >= V keeps all', () => {
      expect(Array.from(topKFilter(row([1, 5, 3, 5, 0]), 2))).toEqual([NI, 5, NI, 5, NI]);
      expect(Array.from(topKFilter(row([1, 4, 3]), 2))).toEqual([NI, 4, 3]);
      expect(Array.from(topKFilter(row([1, 4, 3]), 9))).toEqual([1, 4, 3]);
      const t = topKFilter(
        tf.tensor2d([
          [1, 2, 3],
          [3, 2, 1],
        ]),
        1,
      );
      expect(t.shape).toEqual([2, 3]);
      expect(Array.from(t.dataSync())).toEqual([NI, NI, 3, 3, NI, NI]);
    });

    it('top-p keeps the token that crosses p and always the top token (shift-by-one rule)', () => {
      // probabilities [0.5, 0.3, 0.15, 0.05]: cumulative 0.5, 0.8, 0.95, 1.0
      const l = row([0.5, 0.3, 0.15, 0.05].map(Math.log));
      expect(kept(topPFilter(l, 0.7))).toEqual([true, true, false, false]); // 0.5 <= 0.7 keeps rank 1
      expect(kept(topPFilter(l, 0.5))).toEqual([true, false, false, false]); // removal needs cum > p
      expect(kept(topPFilter(l, 0.81))).toEqual([true, true, true, false]);
      expect(kept(topPFilter(l, 0.01))).toEqual([true, false, false, false]);
      expect(kept(topPFilter(l, 1))).toEqual([true, true, true, true]);
      // order in the vocabulary does not matter
      expect(kept(topPFilter(row([0.05, 0.3, 0.5, 0.15].map(Math.log)), 0.7))).toEqual([false, true, true, false]);
      const p = softmax(topPFilter(l, 0.7));
      expect(p[0]).toBeCloseTo(0.5 / 0.8, 6);
      expect(p[1]).toBeCloseTo(0.3 / 0.8, 6);
      const t = topPFilter(tf.tensor1d([0.5, 0.3, 0.15, 0.05].map(Math.log)), 0.7);
      expect(kept(t.dataSync())).toEqual([true, true, false, false]);
    });

    it("Liquid's chain: text mask -> temperature -> top-k -> top-p on renormalised top-k probabilities", () => {
      // V = 8, text ids 0..2 (large logits, masked), image ids 3..7 with q = [0.4, 0.3, 0.2, 0.06, 0.04].
      // Raw logits 0.5 ln q with temperature 0.5 give ln q. top-k 4 drops 0.04; renormalised
      // cumulative 0.4/0.96, 0.7/0.96, 0.9/0.96 = 0.9375, 1. top-p 0.92: 0.9375 > 0.92 removes the
      // 0.06 token (without renormalising after top-k, 0.9 <= 0.92 would keep it).
      // Survivors {3, 4, 5} with probabilities [0.4, 0.3, 0.2] / 0.9.
      const q = [0.4, 0.3, 0.2, 0.06, 0.04];
      const logits = row([10, 9, 8, ...q.map((x) => 0.5 * Math.log(x))]);
      const opts = { allowed: { ranges: [[3, 8]] as [number, number][] }, temperature: 0.5, topK: 4, topP: 0.92 };
      const f = filterLogits(logits, opts);
      expect(kept(f)).toEqual([false, false, false, true, true, true, false, false]);
      const p = softmax(f);
      [0, 0, 0, 0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9, 0, 0].forEach((x, i) => expect(p[i]).toBeCloseTo(x, 6));
      // the same on a [B, V] tensor, second row unfiltered by top-p
      const t = filterLogits(tf.tensor2d([Array.from(logits), Array.from(logits)]), { ...opts, topP: 1 });
      expect(kept(t.dataSync().subarray(8))).toEqual([false, false, false, true, true, true, true, false]);
    });

    it('repetition penalty (CTRL / HF), vocabulary mask, CFG', () => {
      expect(Array.from(repetitionPenalty(row([2, -2, 1]), [0, 1, 1], 2))).toEqual([1, -4, 1]);
      const rp = repetitionPenalty(
        tf.tensor2d([
          [2, -2],
          [2, -2],
        ]),
        [[0], [1]],
        4,
      );
      expect(Array.from(rp.dataSync())).toEqual([0.5, -2, 2, -8]);
      expect(Array.from(vocabMask(row([1, 2, 3, 4]), { ranges: [[2, 4]] }))).toEqual([NI, NI, 3, 4]);
      expect(Array.from(vocabMask(row([1, 2, 3, 4]), { ranges: [[3, 4]], ids: new Set([0]) }))).toEqual([1, NI, NI, 4]);
      expect(Array.from(vocabMask(tf.tensor1d([1, 2, 3]), { ids: [1] }).dataSync())).toEqual([NI, 2, NI]);
      // l_u + s (l_c - l_u) with s = 3: [1 + 3 (2 - 1), 1 + 3 (0 - 1)] = [4, -2]
      expect(Array.from(cfgLogits(tf.tensor1d([2, 0]), tf.tensor1d([1, 1]), 3).dataSync())).toEqual([4, -2]);
      expect(Array.from(cfgLogits(tf.tensor1d([2, 0]), tf.tensor1d([1, 1]), 1).dataSync())).toEqual([2, 0]); // s = 1: conditional
    });

    it('greedy follows the mask and the penalty', () => {
      const logits = tf.tensor2d([
        [0, 3, 1],
        [2, 0, 0],
      ]);
      expect(Array.from(sample(logits, { temperature: 0 }))).toEqual([1, 0]);
      expect(Array.from(sample(logits, { temperature: 0, allowed: { ids: [0, 2] } }))).toEqual([2, 0]);
      expect(Array.from(sample(logits, { temperature: 0, repetitionPenalty: 4, prevIds: [[1], [0]] }))).toEqual([2, 0]);
      expect(Array.from(sample(tf.tensor1d([1, 1, 0]), { temperature: 0 }))).toEqual([0]); // first index on ties
    });

    it('seeded draws: same seed same ids, and frequencies follow the probabilities', () => {
      const N = 4000;
      const probs = [0.1, 0.3, 0.6];
      const logits = tf.tile(tf.tensor2d([probs.map(Math.log)]), [N, 1]); // [N, 3]
      const a = sample(logits, { rng: new Rng(1) });
      expect(Array.from(sample(logits, { rng: new Rng(1) }))).toEqual(Array.from(a));
      expect(Array.from(sample(logits, { rng: new Rng(2) }))).not.toEqual(Array.from(a));
      const freq = (ids: Int32Array, k: number) => ids.filter((i) => i === k).length / ids.length;
      // the seed fixes the draws, so this never flakes; 5 binomial standard deviations would hold
      // for almost every seed (p < 1e-6)
      probs.forEach((p, i) => expect(Math.abs(freq(a, i) - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N)));
      // with top-k 2 the 0.1 token is never drawn and the others follow 0.3 / 0.9, 0.6 / 0.9
      const b = sample(logits, { rng: new Rng(3), topK: 2 });
      expect(freq(b, 0)).toBe(0);
      expect(Math.abs(freq(b, 1) - 1 / 3)).toBeLessThan(5 * Math.sqrt(2 / 9 / N));
      // temperature 2 flattens: p ~ sqrt(probs)
      const s = probs.map(Math.sqrt);
      const z = s.reduce((x, y) => x + y);
      const c = sample(logits, { rng: new Rng(4), temperature: 2 });
      s.forEach((x, i) => expect(Math.abs(freq(c, i) - x / z)).toBeLessThan(5 * Math.sqrt(((x / z) * (1 - x / z)) / N)));
    });

    it('bad input names the thing, the expected and the actual value', () => {
      const l = tf.tensor2d([[0, 1, 2]]);
      expect(() => topKFilter(row([1]), 0)).toThrow(/topKFilter: k must be an integer >= 1, got 0/);
      expect(() => topPFilter(row([1]), 0)).toThrow(/topPFilter: p must be in \(0, 1\], got 0/);
      expect(() => topPFilter(row([1]), 1.5)).toThrow(/p must be in \(0, 1\], got 1.5/);
      expect(() => repetitionPenalty(row([1, 2]), [2], 1.2)).toThrow(/previous id 2 must be an integer in \[0, 2\)/);
      expect(() => repetitionPenalty(row([1, 2]), [0], 0)).toThrow(/penalty must be a finite number > 0, got 0/);
      expect(() => repetitionPenalty(l, [0], 1.2)).toThrow(
        /prevIds for logits \[1,3\] must be 1 id lists \(one per row\), got an array of 1 ids/,
      );
      expect(() => vocabMask(row([1]), { ids: [] })).toThrow(/the allowed set is empty \(vocabulary of 1\)/);
      expect(() => vocabMask(row([1, 2]), { ranges: [[0, 5]] })).toThrow(
        /range \[0,5\] must be \[lo, hi\) with integers 0 <= lo <= hi <= 2/,
      );
      expect(() => vocabMask(row([1, 2]), { ids: [2] })).toThrow(/allowed id 2 must be an integer in \[0, 2\)/);
      expect(() => cfgLogits(tf.zeros([2]), tf.zeros([3]), 2)).toThrow(/cond \[2\] and uncond \[3\] must have the same shape/);
      expect(() => cfgLogits(tf.zeros([2]), tf.zeros([2]), Number.NaN)).toThrow(/scale must be a finite number, got NaN/);
      expect(() => sample(l)).toThrow(/an rng is required when temperature > 0/);
      expect(() => sample(l, { temperature: -1 })).toThrow(/temperature must be a finite number >= 0, got -1/);
      expect(() => sample(l, { temperature: 0, topK: 1.5 })).toThrow(/k must be an integer >= 1, got 1.5/);
      expect(() => sample(l, { temperature: 0, prevIds: [[0], [1]] })).toThrow(/prevIds must have 1 rows \(one per logits row\), got 2/);
      expect(() => sample(tf.zeros([1, 2, 3]), { temperature: 0 })).toThrow(/logits must be \[V\] or \[B, V\], got \[1,2,3\]/);
      expect(() => sample(tf.zeros([3], 'int32'), { temperature: 0 })).toThrow(/logits must be float32, got int32/);
      expect(() => softmax(row([NI, NI]))).toThrow(/every logit is -Infinity/);
    });

    it('filters on tensors leak nothing beyond their result', () => {
      const l = tf.tensor2d([[0, 1, 2, 3]]);
      const n = tf.memory().numTensors;
      const outs = [topKFilter(l, 2), topPFilter(l, 0.5), filterLogits(l, { topK: 3, temperature: 0.7 }), cfgLogits(l, l, 2)];
      expect(tf.memory().numTensors).toBe(n + outs.length);
      for (const o of outs) o.dispose();
      sample(l, { rng: new Rng(0), topP: 0.9 });
      expect(tf.memory().numTensors).toBe(n);
    });
  });
}
