import { beforeAll, describe, expect, it } from 'vitest';
import { nearestCode, Rng, tf, VectorQuantizer, vectorQuantize, vqLossWeights } from '../../src/index.js';
import { checkGradients, TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const rows = (t: tf.Tensor): number[][] => t.arraySync() as number[][];
const sqDist = (a: number[], b: number[]) => a.reduce((s, x, i) => s + (x - (b[i] as number)) ** 2, 0);
/** Brute-force nearest code in float64: first index of the minimum. */
const bruteNearest = (z: number[][], e: number[][]) =>
  z.map((r) => {
    const d = e.map((c) => sqDist(r, c));
    return d.indexOf(Math.min(...d));
  });

/** Well-separated codes and inputs near them, so finite differences never change an assignment. */
function separated(seed: number, K: number, D: number, N: number) {
  const rng = new Rng(seed);
  const e = rng.randn([K, D], 0, 3);
  const assign = Array.from({ length: N }, () => rng.int(0, K));
  const z = tf.tidy(() => tf.gather(e, tf.tensor1d(assign, 'int32')).add(rng.randn([N, D], 0, 0.1)));
  return { e, z, assign };
}

for (const backend of TEST_BACKENDS) {
  describe(`VectorQuantizer on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('nearestCode (expanded distance) agrees with a float64 brute-force argmin; ties go to the first index', () => {
      const rng = new Rng(11);
      const z = rng.randn([64, 5]) as tf.Tensor2D;
      const e = rng.randn([37, 5]) as tf.Tensor2D;
      const got = Array.from(nearestCode(z, e).dataSync());
      const zz = rows(z);
      const ee = rows(e);
      const want = bruteNearest(zz, ee);
      zz.forEach((r, n) => {
        const d = ee.map((c) => sqDist(r, c));
        const sorted = [...d].sort((a, b) => a - b);
        // the chosen code is a nearest one up to fp32 round-off; where the gap is clear it is the same index
        expect(d[got[n] as number]).toBeCloseTo(sorted[0] as number, 4);
        if ((sorted[1] as number) - (sorted[0] as number) > 1e-3) expect(got[n]).toBe(want[n]);
      });
      const dup = tf.tensor2d([
        [1, 1],
        [0, 0],
        [0, 0],
        [1, 1],
      ]);
      expect(
        Array.from(
          nearestCode(
            tf.tensor2d([
              [0.1, 0],
              [0.9, 1],
            ]),
            dup,
          ).dataSync(),
        ),
      ).toEqual([1, 0]);
      // an exact half-way point between codes 0 and 1 goes to code 0, as torch.argmin
      expect(Array.from(nearestCode(tf.tensor2d([[0.5, 0.5]]), dup.slice(0, 2)).dataSync())).toEqual([0]);
    });

    it('golden loss and gradients of VectorQuantizer2 (legacy: dL/dz = 2(z - zq)/N, dL/de_k = 2 beta sum(e_k - z)/N)', () => {
      const rng = new Rng(3);
      const beta = 0.25;
      const vq = new VectorQuantizer(6, 3, { beta, rng });
      vq.embedding.weight.assign(rng.randn([6, 3]));
      vq.eval();
      const z = rng.randn([2, 4, 3]); // N = 24 elements
      const w = rng.randn([2, 4, 3]); // downstream weights on zq
      const zz = (z.arraySync() as number[][][]).flat();
      const ee = rows(vq.embedding.weight);
      const assign = bruteNearest(zz, ee);
      const q = assign.map((k) => ee[k] as number[]);
      const N = 24; // elements; 8 rows
      const mse = zz.reduce((s, r, n) => s + sqDist(r, q[n] as number[]), 0) / N;

      const o = vq.forward(z);
      expect(Array.from(o.indices.dataSync())).toEqual(assign);
      expect(o.indices.shape).toEqual([2, 4]);
      expect(o.commitLoss.dataSync()[0]).toBeCloseTo(mse, 5);
      expect(o.codebookLoss.dataSync()[0]).toBeCloseTo(mse, 5);
      expect(o.loss.dataSync()[0]).toBeCloseTo((1 + beta) * mse, 5);
      rows(o.zq.reshape([8, 3])).forEach((r, n) => r.forEach((v, c) => expect(v).toBeCloseTo((q[n] as number[])[c] as number, 6)));

      const total = (zv: tf.Tensor) => {
        const out = vq.forward(zv);
        return out.loss.add(out.zq.mul(w).sum()) as tf.Scalar;
      };
      const gz = rows(tf.grad(total)(z).reshape([8, 3]));
      const ww = (w.arraySync() as number[][][]).flat();
      zz.forEach((r, n) =>
        r.forEach((x, c) => {
          const expected = (2 * (x - (q[n] as number[])[c]!)) / N + (ww[n] as number[])[c]!;
          expect(gz[n]![c]!).toBeCloseTo(expected, 5);
        }),
      );
      const { value, grads } = tf.variableGrads(() => vq.forward(z).loss);
      expect(value.dataSync()[0]).toBeCloseTo((1 + beta) * mse, 5);
      const ge = rows(grads[vq.embedding.weight.name] as tf.Tensor);
      ee.forEach((ek, k) =>
        ek.forEach((v, c) => {
          const s = zz.reduce((a, r, n) => (assign[n] === k ? a + (v - r[c]!) : a), 0);
          expect(ge[k]![c]!).toBeCloseTo((2 * beta * s) / N, 5);
        }),
      );
    });

    it('non-legacy weights put beta on the commitment term; the terms match finite differences', () => {
      expect(vqLossWeights()).toEqual([1, 0.25]);
      expect(vqLossWeights({ beta: 0.5, legacy: false })).toEqual([0.5, 1]);
      expect(vqLossWeights({ beta: 0.5, ema: true })).toEqual([0.5, 0]);
      const { e, z, assign } = separated(5, 4, 3, 6);
      const ee = rows(e);
      const zz = rows(z);
      const N = 18;
      const gz = rows(tf.grad((zv: tf.Tensor) => vectorQuantize(zv, e, { beta: 0.5, legacy: false }).loss)(z));
      zz.forEach((r, n) => r.forEach((x, c) => expect(gz[n]![c]!).toBeCloseTo((0.5 * 2 * (x - ee[assign[n]!]![c]!)) / N, 5)));
      const ge = rows(tf.grad((ev: tf.Tensor) => vectorQuantize(z, ev, { beta: 0.5, legacy: false }).loss)(e));
      ee.forEach((ek, k) =>
        ek.forEach((v, c) => {
          const s = zz.reduce((a, r, n) => (assign[n] === k ? a + (v - r[c]!) : a), 0);
          expect(ge[k]![c]!).toBeCloseTo((2 * s) / N, 5);
        }),
      );
      // finite differences see each term's live argument: commitLoss in z, codebookLoss in the codebook
      checkGradients(([zv, ev]) => vectorQuantize(zv!, ev!).commitLoss, [z, e], { wrt: [0], eps: 1e-2, atol: 1e-4 });
      checkGradients(([zv, ev]) => vectorQuantize(zv!, ev!).codebookLoss, [z, e], { wrt: [1], eps: 1e-2, atol: 1e-4 });
      // and the stop-gradients: no commitment gradient reaches the codebook, no codebook gradient reaches z
      const g0 = tf.grad((ev: tf.Tensor) => vectorQuantize(z, ev).commitLoss)(e);
      expect(tf.abs(g0).max().dataSync()[0]).toBe(0);
      const g1 = tf.grad((zv: tf.Tensor) => vectorQuantize(zv, e).codebookLoss)(z);
      expect(tf.abs(g1).max().dataSync()[0]).toBe(0);
    });

    it('straight-through: downstream gradients pass to z unchanged', () => {
      const rng = new Rng(4);
      const vq = new VectorQuantizer(4, 3, { rng });
      const z = rng.randn([5, 3]);
      const w = rng.randn([5, 3]);
      const g = tf.grad((zz: tf.Tensor) => vq.forward(zz).zq.mul(w).sum())(z);
      Array.from(g.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(w.dataSync()[i]!, 6));
    });

    it('trains on this backend: SGD on the codebook lowers the loss; unused codes get zero gradient', () => {
      const { e, z } = separated(8, 5, 4, 12);
      const vq = new VectorQuantizer(6, 4, { rng: new Rng(1) });
      vq.embedding.weight.assign(tf.concat([e.mul(0.5), tf.fill([1, 4], 100)])); // code 5 is never chosen
      vq.eval();
      const losses: number[] = [];
      for (let s = 0; s < 5; s++) {
        const { value, grads } = tf.variableGrads(() => vq.forward(z).loss);
        losses.push(value.dataSync()[0] as number);
        const g = grads[vq.embedding.weight.name] as tf.Tensor;
        expect(Array.from(g.slice([5, 0], [1, 4]).dataSync())).toEqual([0, 0, 0, 0]);
        tf.tidy(() => vq.embedding.weight.assign(vq.embedding.weight.sub(g.mul(4))));
        tf.dispose([value, g]);
      }
      for (let i = 1; i < losses.length; i++) expect(losses[i]!).toBeLessThan(losses[i - 1]!);
    });

    it('EMA: Laplace-smoothed running means (hand values); codebook is a buffer; unused codes stay put', () => {
      const vq = new VectorQuantizer(2, 1, { emaDecay: 0.5, emaEps: 0.1, beta: 0.5 });
      expect(vq.trainableParameters()).toHaveLength(0);
      expect(Object.keys(vq.stateDict()).sort()).toEqual(['cluster_size', 'embed_avg', 'embedding.weight']);
      vq.loadStateDict({ 'embedding.weight': tf.tensor2d([[0], [10]]), embed_avg: tf.tensor2d([[0], [10]]), cluster_size: tf.ones([2]) });
      const o = vq.forward(tf.tensor2d([[1], [1]]));
      // loss = beta * commit = 0.5 * mean((1 - 0)^2); no codebook term
      expect(o.loss.dataSync()[0]).toBeCloseTo(0.5, 6);
      expect(o.codebookLoss.dataSync()[0]).toBe(0);
      // cluster = [1,1]*.5 + [2,0]*.5 = [1.5, .5]; embed_avg = [0,10]*.5 + [2,0]*.5 = [1, 5]
      // smoothed = (cluster + .1) / (2 + .2) * 2 = [1.6/1.1, .6/1.1]
      const sd = vq.stateDict();
      expect(Array.from(sd.cluster_size!.dataSync())).toEqual([1.5, 0.5].map((x) => expect.closeTo(x, 6)));
      const w = vq.embedding.weight.dataSync();
      expect(w[0]).toBeCloseTo(1 / (1.6 / 1.1), 5);
      expect(w[1]).toBeCloseTo(5 / (0.6 / 1.1), 4);
      const plain = new VectorQuantizer(2, 1, { emaDecay: 0.9, emaEps: 0 });
      plain.embedding.weight.assign(tf.tensor2d([[0], [10]]));
      plain.loadStateDict({
        'embedding.weight': tf.tensor2d([[0], [10]]),
        embed_avg: tf.tensor2d([[0], [10]]),
        cluster_size: tf.ones([2]),
      });
      plain.forward(tf.tensor2d([[1], [2]]));
      expect(plain.embedding.weight.dataSync()[1]).toBeCloseTo(10, 5); // 9 / 0.9
      plain.eval();
      plain.forward(tf.tensor2d([[7], [7]]));
      expect(plain.embedding.weight.dataSync()[1]).toBeCloseTo(10, 5); // no update in eval mode
    });

    it('dead-code restart: codes unused for N steps take distinct batch vectors, the same for the same seed', () => {
      const make = () => {
        const v = new VectorQuantizer(4, 2, { deadCodeSteps: 2, rng: new Rng(5), emaDecay: 0.5 });
        const e = () => tf.tensor2d([0, 0, 50, 50, 60, 60, 70, 70], [4, 2]);
        v.loadStateDict({ 'embedding.weight': e(), embed_avg: e(), cluster_size: tf.ones([4]) });
        return v;
      };
      const batch = tf.tensor2d([
        [1, 2],
        [3, 4],
        [-1, 0],
      ]);
      const a = make();
      a.forward(batch);
      rows(a.embedding.weight)[3]!.forEach((v) => expect(v).toBeCloseTo(70, 2)); // unused once: kept (up to the Laplace smoothing)
      a.forward(batch);
      const ea = rows(a.embedding.weight);
      const batchRows = rows(batch).map((r) => JSON.stringify(r));
      const restarted = [1, 2, 3].map((k) => JSON.stringify(ea[k]));
      for (const r of restarted) expect(batchRows).toContain(r);
      expect(new Set(restarted).size).toBe(3);
      expect(Array.from(a.stateDict().cluster_size!.dataSync().slice(1))).toEqual([1, 1, 1]);
      expect(rows(a.stateDict().embed_avg!).slice(1)).toEqual(ea.slice(1));
      const b = make();
      b.forward(batch);
      b.forward(batch);
      expect(rows(b.embedding.weight)).toEqual(ea);
      expect(a.forward(batch).usage.dataSync()[0]).toBeGreaterThan(0.25);
    });

    it('cosine codes: unit-norm outputs and a cosine-similarity argmax', () => {
      const rng = new Rng(9);
      const vq = new VectorQuantizer(8, 3, { cosine: true, init: { kind: 'normal', std: 1 }, rng });
      vq.eval();
      const z = rng.randn([10, 3]);
      const o = vq.forward(z);
      const norms = tf.norm(o.zq, 'euclidean', -1).dataSync();
      for (const n of norms) expect(n).toBeCloseTo(1, 5);
      const ee = rows(vq.embedding.weight).map((r) => r.map((x) => x / Math.hypot(...r)));
      const idx = o.indices.dataSync();
      rows(z).forEach((r, n) => {
        const cos = ee.map((c) => c.reduce((s, x, i) => s + x * r[i]!, 0));
        expect(cos[idx[n]!]).toBeCloseTo(Math.max(...cos), 5);
      });
      expect(tf.abs(vq.decode(o.indices).sub(o.zq)).max().dataSync()[0]).toBeLessThan(1e-6);
      // the normalisation is differentiated too: commitLoss in z against finite differences
      const sep = separated(12, 4, 3, 5);
      checkGradients(([zv]) => vectorQuantize(zv!, sep.e, { cosine: true }).commitLoss, [sep.z], { eps: 1e-3, atol: 1e-4 });
    });

    it('perplexity, usage, names, default init, no leak', () => {
      const vq = new VectorQuantizer(4, 1);
      expect(vq.namedParameters().map(([n]) => n)).toEqual(['embedding.weight']);
      expect(tf.abs(vq.embedding.weight).max().dataSync()[0]).toBeLessThanOrEqual(1 / 4);
      vq.embedding.weight.assign(tf.tensor2d([[0], [1], [2], [3]]));
      vq.eval();
      const o = vq.forward(tf.tensor2d([[0], [1], [2], [3.1]]));
      expect(o.perplexity.dataSync()[0]).toBeCloseTo(4, 3);
      expect(o.usage.dataSync()[0]).toBe(1);
      const o2 = vq.forward(tf.tensor2d([[0], [0], [0], [1]])); // p = [3/4, 1/4]
      expect(o2.perplexity.dataSync()[0]).toBeCloseTo(Math.exp(-(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25))), 4);
      expect(o2.usage.dataSync()[0]).toBe(0.5);
      const z = tf.randomNormal([8, 1], 0, 1, 'float32', 1);
      const ema = new VectorQuantizer(4, 1, { emaDecay: 0.9, deadCodeSteps: 1 });
      for (const m of [vq.train(), ema]) {
        const step = () => tf.dispose(tf.grads((zz: tf.Tensor) => m.forward(zz).loss)([z]));
        step();
        const n = tf.memory().numTensors;
        step();
        tf.dispose(m.forward(z));
        expect(tf.memory().numTensors).toBe(n);
      }
    });
  });
}

describe('VectorQuantizer bad input', () => {
  beforeAll(async () => useBackend('cpu'));
  it('names the problem', () => {
    const vq = new VectorQuantizer(4, 1);
    expect(() => vq.forward(tf.zeros([2, 3]))).toThrow(/VectorQuantizer.forward: last dim must be 1, got shape \[2,3\]/);
    expect(() => vq.decode(tf.tensor1d([0]))).toThrow(/indices must be int32, got float32/);
    expect(() => vq.decode(tf.tensor1d([0, 4], 'int32'))).toThrow(/index 4 at flat position 1 is out of range \[0, 4\)/);
    expect(() => vq.nearest(tf.zeros([2, 2]) as tf.Tensor2D)).toThrow(/expected \[N, 1\], got shape \[2,2\]/);
    expect(() => nearestCode(tf.zeros([2, 2]) as tf.Tensor2D, tf.zeros([3, 3]) as tf.Tensor2D)).toThrow(/equal D, got \[2,2\] and \[3,3\]/);
    expect(() => vectorQuantize(tf.zeros([2, 2]), tf.zeros([3]))).toThrow(/codebook must be \[K, D\], got shape \[3\]/);
    expect(() => vectorQuantize(tf.zeros([2, 2]), tf.zeros([3, 4]))).toThrow(/last dim must be 4 \(codebook dim\), got shape \[2,2\]/);
    expect(() => new VectorQuantizer(0, 2)).toThrow(/numCodes must be a positive integer, got 0/);
    expect(() => new VectorQuantizer(2, 1.5)).toThrow(/dim must be a positive integer, got 1.5/);
    expect(() => new VectorQuantizer(2, 2, { beta: -1 })).toThrow(/beta must be a finite number >= 0, got -1/);
    expect(() => new VectorQuantizer(2, 2, { emaDecay: 1 })).toThrow(/emaDecay must be in \(0, 1\), got 1/);
    expect(() => new VectorQuantizer(2, 2, { emaDecay: 0.9, emaEps: -1 })).toThrow(/emaEps must be a finite number >= 0, got -1/);
    expect(() => new VectorQuantizer(2, 2, { deadCodeSteps: 1.5 })).toThrow(/deadCodeSteps must be an integer >= 0, got 1.5/);
  });
});
