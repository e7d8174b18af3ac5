import { beforeAll, describe, expect, it } from 'vitest';
import { FSQ, manualSeed, ResidualVQ, Rng, stopGradient, TEST_BACKENDS, tf, useBackend, VectorQuantizer } from '../../src/index.js';

describe('FSQ', () => {
  beforeAll(async () => useBackend('cpu'));

  it('golden indices and codes from the EMOVA brief (levels [8,8,8,8])', () => {
    const fsq = new FSQ([8, 8, 8, 8]);
    expect(fsq.codebookSize).toBe(4096);
    const cases: [number[], number[], number][] = [
      [[0, 0, 0, 0], [0, 0, 0, 0], 2340],
      [[-5, -0.3, 0.4, 5], [-1, -0.25, 0.25, 0.75], 3928],
      [[0.1, 0.9, -1.2, 2.0], [0, 0.5, -0.75, 0.75], 3700],
    ];
    for (const [z, codes, index] of cases) {
      const { codes: c, indices } = fsq.forward(tf.tensor2d([z]));
      Array.from(c.dataSync()).forEach((v, i) => expect(Math.abs(v - codes[i]!)).toBeLessThanOrEqual(1e-5));
      expect(indices.dataSync()[0]).toBe(index);
    }
    // the bound: h = 3.4965, shift = atanh(0.5 / h) = 0.14399, bound(0) = 0
    expect(fsq.bound(tf.tensor2d([[0, 0, 0, 0]])).dataSync()[0]).toBeCloseTo(0, 6);
  });

  it('indices <-> codes round trip, odd levels, straight-through gradient, bad input', () => {
    const fsq = new FSQ([5, 3, 4]);
    const all = tf.range(0, 60, 1, 'int32');
    expect(Array.from(fsq.codesToIndices(fsq.indicesToCodes(all)).dataSync())).toEqual(Array.from(all.dataSync()));
    const g = tf.grad((z: tf.Tensor) => fsq.quantize(z).sum())(tf.tensor2d([[0.2, -0.1, 0.3]]));
    expect(Array.from(g.dataSync()).every((v) => v > 0)).toBe(true); // gradient of tanh-bound / halfwidth, not zero
    expect(() => fsq.quantize(tf.zeros([2, 4]))).toThrow(/last dim must be 3 \(levels \[5,3,4\]\), got shape \[2,4\]/);
    expect(() => fsq.indicesToCodes(tf.tensor1d([60], 'int32'))).toThrow(/index 60 out of range \[0, 60\)/);
    expect(() => new FSQ([8, 1])).toThrow(/integers >= 2/);
  });
});

for (const backend of TEST_BACKENDS) {
  describe(`VectorQuantizer on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('argmin equals a brute-force nearest code', () => {
      manualSeed(1);
      const vq = new VectorQuantizer(37, 5, { init: { kind: 'normal', std: 1 } });
      const z = tf.randomNormal([64, 5], 0, 1, 'float32', 2);
      const got = vq.nearest(z as tf.Tensor2D).dataSync();
      const zz = z.arraySync() as number[][];
      const e = vq.embedding.weight.arraySync() as number[][];
      zz.forEach((row, n) => {
        const d = e.map((c) => c.reduce((a, x, i) => a + (x - row[i]!) ** 2, 0));
        expect(d[got[n]!]!).toBeCloseTo(Math.min(...d), 4);
      });
    });

    it('loss value and gradients match VectorQuantizer2 (legacy: commit 1, codebook beta)', () => {
      const vq = new VectorQuantizer(2, 2, { beta: 0.25 });
      vq.embedding.weight.assign(
        tf.tensor2d([
          [0, 0],
          [1, 1],
        ]),
      );
      const zv = [
        [0.1, 0.2],
        [0.9, 1.3],
        [0.3, -0.1],
      ]; // codes 0, 1, 0
      const z = tf.tensor2d(zv);
      const o = vq.forward(z);
      expect(Array.from(o.indices.dataSync())).toEqual([0, 1, 0]);
      const q = [
        [0, 0],
        [1, 1],
        [0, 0],
      ];
      const N = 6; // elements
      const sq = zv.flat().reduce((a, x, i) => a + (x - q.flat()[i]!) ** 2, 0) / N;
      expect(o.commitLoss.dataSync()[0]).toBeCloseTo(sq, 6);
      expect(o.loss.dataSync()[0]).toBeCloseTo(sq * 1.25, 6);
      Array.from(o.zq.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(q.flat()[i]!, 6));
      // d loss / d z = 2 (z - zq) / N (commitment, weight 1); d loss / d e_k = beta * 2 * sum_{z -> k} (e_k - z) / N
      const gz = tf.grad((zz: tf.Tensor) => vq.forward(zz).loss)(z);
      const ge = tf.variableGrads(() => vq.forward(z).loss, [vq.embedding.weight]).grads[vq.embedding.weight.name];
      const eg = (k: number, dch: number) =>
        (0.25 * 2 * zv.filter((_, n) => [0, 1, 0][n] === k).reduce((a, r) => a + (q[[0, 1, 0].indexOf(k)]![dch]! - r[dch]!), 0)) / N;
      const gzv = gz!.arraySync() as number[][];
      zv.forEach((r, n) => r.forEach((x, c) => expect(gzv[n]![c]!).toBeCloseTo((2 * (x - q[n]![c]!)) / N, 5)));
      const gev = ge!.arraySync() as number[][];
      for (const k of [0, 1]) for (const c of [0, 1]) expect(gev[k]![c]!).toBeCloseTo(eg(k, c), 5);
    });

    it('straight-through: downstream gradients pass to z unchanged', () => {
      const vq = new VectorQuantizer(4, 3);
      const z = tf.randomNormal([5, 3], 0, 1, 'float32', 3);
      const w = tf.randomNormal([5, 3], 0, 1, 'float32', 4);
      const g = tf.grad((zz: tf.Tensor) => vq.forward(zz).zq.mul(w).sum())(z);
      Array.from(g.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(w.dataSync()[i]!, 6));
      expect(stopGradient).toBeTypeOf('function');
    });

    it('EMA codebook moves toward assigned vectors; dead codes restart from the batch', () => {
      const vq = new VectorQuantizer(2, 1, { emaDecay: 0.5, emaEps: 0 });
      vq.loadStateDict({ 'embedding.weight': tf.tensor2d([[0], [10]]), embed_avg: tf.tensor2d([[0], [10]]), cluster_size: tf.ones([2]) });
      expect(vq.trainableParameters()).toHaveLength(0); // codebook is a buffer with EMA
      vq.forward(tf.tensor2d([[1], [1]])); // both to code 0; cluster [1,1]*0.5+[2,0]*0.5 = [1.5, 0.5]; sum [0,10]*.5+[2,0]*.5 = [1, 5]
      const w = vq.embedding.weight.dataSync();
      // Laplace smoothing with eps 0 leaves sizes as they are: e = sum / size
      expect(w[0]).toBeCloseTo(1 / 1.5, 5);
      expect(w[1]).toBeCloseTo(5 / 0.5, 5);
      const dead = new VectorQuantizer(3, 2, { deadCodeSteps: 2, rng: new Rng(5), init: { kind: 'constant', value: 0 } });
      dead.embedding.weight.assign(
        tf.tensor2d([
          [0, 0],
          [50, 50],
          [60, 60],
        ]),
      );
      const batch = tf.tensor2d([
        [1, 2],
        [3, 4],
      ]);
      dead.forward(batch);
      dead.forward(batch); // codes 1 and 2 unused twice -> replaced by batch vectors
      const e = dead.embedding.weight.arraySync() as number[][];
      for (const k of [1, 2]) expect([JSON.stringify([1, 2]), JSON.stringify([3, 4])]).toContain(JSON.stringify(e[k]));
      const o = dead.forward(batch);
      expect(o.usage.dataSync()[0]).toBeGreaterThan(1 / 3);
    });

    it('perplexity, usage, no leak, bad input', () => {
      const vq = new VectorQuantizer(4, 1);
      vq.embedding.weight.assign(tf.tensor2d([[0], [1], [2], [3]]));
      vq.eval();
      const o = vq.forward(tf.tensor2d([[0], [1], [2], [3.1]]));
      expect(o.perplexity.dataSync()[0]).toBeCloseTo(4, 3);
      expect(o.usage.dataSync()[0]).toBe(1);
      const z = tf.randomNormal([8, 1], 0, 1, 'float32', 1);
      vq.train();
      const step = () => tf.dispose(tf.grads((zz: tf.Tensor) => vq.forward(zz).loss)([z]));
      step();
      const n = tf.memory().numTensors;
      step();
      expect(tf.memory().numTensors).toBe(n);
      expect(() => vq.forward(tf.zeros([2, 3]))).toThrow(/last dim must be 1, got shape \[2,3\]/);
      expect(() => vq.decode(tf.tensor1d([0]))).toThrow(/indices must be int32/);
    });

    it('ResidualVQ: decode(indices) equals zq, and the residual shrinks', () => {
      manualSeed(7);
      const rvq = new ResidualVQ(3, 16, 4, { init: { kind: 'normal', std: 1 } });
      rvq.eval();
      const z = tf.randomNormal([10, 4], 0, 1, 'float32', 8);
      const { zq, indices } = rvq.forward(z);
      expect(indices.shape).toEqual([10, 3]);
      const d = tf.abs(rvq.decode(indices).sub(zq)).max().dataSync()[0]!;
      expect(d).toBeLessThan(1e-5);
      expect(rvq.namedParameters().map(([n]) => n)).toEqual([
        'layers.0.embedding.weight',
        'layers.1.embedding.weight',
        'layers.2.embedding.weight',
      ]);
    });
  });
}
