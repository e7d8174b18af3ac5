import { crossEntropy, initBackend, NEG_INF, TransformerDecoder, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { IGNORE_INDEX, type PackSample, packedLogits, packedLoss, packedMask, packSamples } from '../src/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

const samples: PackSample[] = [
  { ids: [1, 2, 3, 4, 5] },
  { ids: [6, 7, 8, 9], labels: [6, IGNORE_INDEX, 8, 9] },
  { ids: [10, 11, 12] },
  { ids: [13, 14, 15, 16, 17, 18] },
];

describe('packSamples', () => {
  it('concatenates in order, restarts positions, shifts targets inside each sample and pads', () => {
    const p = packSamples(samples, { rowLength: 12, padId: 0 });
    expect(p.placements).toEqual([
      { row: 0, start: 0, length: 5 },
      { row: 0, start: 5, length: 4 },
      { row: 0, start: 9, length: 3 },
      { row: 1, start: 0, length: 6 },
    ]);
    expect([...p.ids[0]!]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect([...p.segmentIds[0]!]).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
    expect([...p.positionIds[0]!]).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2]);
    const I = IGNORE_INDEX;
    // no target crosses a sample boundary; sample 1's masked label stays masked
    expect([...p.targets[0]!]).toEqual([2, 3, 4, 5, I, I, 8, 9, I, 11, 12, I]);
    expect([...p.ids[1]!]).toEqual([13, 14, 15, 16, 17, 18, 0, 0, 0, 0, 0, 0]);
    expect([...p.segmentIds[1]!].slice(6)).toEqual([-1, -1, -1, -1, -1, -1]);
    expect([...p.targets[1]!].slice(5)).toEqual([I, I, I, I, I, I, I]);
  });

  it('builds the block-diagonal causal mask (core blockDiagonalMask)', () => {
    const p = packSamples(samples.slice(0, 2), { rowLength: 10 });
    const m = packedMask(p);
    expect(m.shape).toEqual([1, 1, 10, 10]);
    const a = m.arraySync()[0]![0]!;
    expect(a[6]![5]).toBe(0); // sample 1 sees its own first token
    expect(a[6]![4]).toBe(NEG_INF); // not sample 0
    expect(a[4]![5]).toBe(NEG_INF); // nor the future
    expect(a[4]![0]).toBe(0);
    m.dispose();
  });

  it('rejects samples that are too long or empty, naming the sample', () => {
    expect(() => packSamples([{ ids: [1, 2, 3] }], { rowLength: 2 })).toThrow('sample 0 has 3 tokens, more than rowLength 2');
    expect(() => packSamples([{ ids: [1] }, { ids: [] }], { rowLength: 4 })).toThrow('sample 1 is empty');
    expect(() => packSamples([{ ids: [1, 2], labels: [1] }], { rowLength: 4 })).toThrow('sample 0 has 2 ids but 1 labels');
  });
});

describe('packed loss = sum of per-sample losses', () => {
  const perSample = (model: TransformerDecoder, s: PackSample) =>
    tf.tidy(() => {
      const n = s.ids.length;
      const labels = s.labels ?? s.ids;
      const targets = Array.from({ length: n }, (_, t) => (t + 1 < n ? labels[t + 1]! : IGNORE_INDEX));
      const logits = model.forward(tf.tensor2d([Array.from(s.ids)], [1, n], 'int32'));
      return crossEntropy(logits, tf.tensor2d([targets], [1, n], 'int32'), { reduction: 'sum' }).dataSync()[0]!;
    });

  for (const pos of ['learned', 'rope'] as const) {
    it(`with ${pos} positions (3 samples in one row, 1 in the next)`, () => {
      const model = new TransformerDecoder({ vocabSize: 20, dim: 16, numLayers: 2, numHeads: 2, maxSeqLen: 12, pos, seed: 3 });
      const p = packSamples(samples, { rowLength: 12 });
      const before = tf.memory().numTensors;
      const packed = packedLoss(model, p);
      const got = packed.dataSync()[0]!;
      packed.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const want = samples.reduce((a, s) => a + perSample(model, s), 0);
      expect(Math.abs(got - want)).toBeLessThan(1e-4 * want);
      // without the mask, samples see each other and the loss differs
      const leak = tf.tidy(() => {
        const ids = tf.tensor2d([...p.ids[0]!], [1, 12], 'int32');
        return crossEntropy(model.forward(ids), tf.tensor2d([...p.targets[0]!], [1, 12], 'int32'), { reduction: 'sum' }).dataSync()[0]!;
      });
      const want0 = samples.slice(0, 3).reduce((a, s) => a + perSample(model, s), 0);
      expect(Math.abs(leak - want0)).toBeGreaterThan(1e-3);
      model.dispose();
    });
  }

  it('a sample cannot see its neighbours: changing sample 0 leaves the logits of sample 1 unchanged', () => {
    const model = new TransformerDecoder({ vocabSize: 20, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 12, seed: 4 });
    const a = packSamples(samples.slice(0, 2), { rowLength: 12 });
    const b = packSamples([{ ids: [19, 18, 17, 16, 15] }, samples[1]!], { rowLength: 12 });
    const la = packedLogits(model, a);
    const lb = packedLogits(model, b);
    const sa = la.slice([0, 5, 0], [1, 4, 20]);
    const sb = lb.slice([0, 5, 0], [1, 4, 20]);
    expect(tf.max(tf.abs(sa.sub(sb))).dataSync()[0]).toBeLessThan(1e-6);
    tf.dispose([la, lb, sa, sb]);
    model.dispose();
  });
});
