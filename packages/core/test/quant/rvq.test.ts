import { beforeAll, describe, expect, it } from 'vitest';
import { ResidualVQ, Rng, tf } from '../../src/index.js';
import { TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.abs(a.sub(b)).max().dataSync()[0] as number;

for (const backend of TEST_BACKENDS) {
  describe(`ResidualVQ on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('stage i quantizes the residual left by stages < i; zq = decode(indices); losses are the stage sums', () => {
      const rng = new Rng(7);
      const rvq = new ResidualVQ(3, 16, 4, { init: { kind: 'normal', std: 1 }, rng });
      rvq.eval();
      expect(rvq.namedParameters().map(([n]) => n)).toEqual([
        'layers.0.embedding.weight',
        'layers.1.embedding.weight',
        'layers.2.embedding.weight',
      ]);
      const z = rng.randn([2, 5, 4]);
      const o = rvq.forward(z);
      expect(o.indices.shape).toEqual([2, 5, 3]);
      expect(o.indices.dtype).toBe('int32');
      expect(maxAbs(rvq.decode(o.indices), o.zq)).toBeLessThan(1e-5);
      // the same thing stage by stage
      let r = z;
      let sum = tf.zerosLike(z);
      let loss = 0;
      let commit = 0;
      rvq.layers.items.forEach((q, i) => {
        const s = q.forward(r);
        expect(Array.from(s.indices.dataSync())).toEqual(Array.from(o.indices.slice([0, 0, i], [2, 5, 1]).dataSync()));
        sum = sum.add(s.zq);
        r = r.sub(s.zq);
        loss += s.loss.dataSync()[0] as number;
        commit += s.commitLoss.dataSync()[0] as number;
      });
      expect(maxAbs(sum, o.zq)).toBeLessThan(1e-5);
      expect(o.loss.dataSync()[0]).toBeCloseTo(loss, 5);
      expect(o.commitLoss.dataSync()[0]).toBeCloseTo(commit, 5);
      expect(o.codebookLoss.dataSync()[0]).toBeCloseTo(commit, 5); // the two terms have equal values
    });

    it('one straight-through estimator: d sum(zq w) / dz = w; the codebooks get gradients and train', () => {
      const rng = new Rng(3);
      const rvq = new ResidualVQ(2, 8, 3, { init: { kind: 'normal', std: 1 }, rng });
      rvq.eval();
      const z = rng.randn([6, 3]);
      const w = rng.randn([6, 3]);
      const g = tf.grad((zz: tf.Tensor) => rvq.forward(zz).zq.mul(w).sum())(z);
      expect(maxAbs(g, w)).toBeLessThan(1e-6);
      const { value, grads } = tf.variableGrads(() => rvq.forward(z).loss);
      expect(Object.keys(grads)).toHaveLength(2);
      for (const v of rvq.parameters()) tf.tidy(() => v.assign(v.sub((grads[v.name] as tf.Tensor).mul(2))));
      expect(rvq.forward(z).loss.dataSync()[0]).toBeLessThan(value.dataSync()[0] as number);
      rvq.train();
      const step = () => tf.dispose(tf.variableGrads(() => rvq.forward(z).loss));
      step();
      const n = tf.memory().numTensors;
      step();
      expect(tf.memory().numTensors).toBe(n);
    });
  });
}

describe('ResidualVQ bad input', () => {
  beforeAll(async () => useBackend('cpu'));
  it('names the problem', () => {
    const rvq = new ResidualVQ(2, 4, 3);
    expect(() => rvq.decode(tf.zeros([5, 3], 'int32'))).toThrow(
      /ResidualVQ.decode: last dim must be 2 \(numQuantizers\), got shape \[5,3\]/,
    );
    expect(() => rvq.decode(tf.tensor2d([[0, 4]], undefined, 'int32'))).toThrow(/index 4 at flat position 0 is out of range \[0, 4\)/);
    expect(() => rvq.forward(tf.zeros([5, 2]))).toThrow(/ResidualVQ.forward: last dim must be 3, got shape \[5,2\]/);
    expect(() => new ResidualVQ(0, 4, 3)).toThrow(/numQuantizers must be a positive integer, got 0/);
  });
});
