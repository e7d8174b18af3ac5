import { beforeAll, describe, expect, it } from 'vitest';
import { kmeans, ResidualVQ, Rng, tf, VectorQuantizer } from '../../src/index.js';
import { TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const rows = (t: tf.Tensor): number[][] => t.arraySync() as number[][];
const sqDist = (a: number[], b: number[]) => a.reduce((s, x, i) => s + (x - (b[i] as number)) ** 2, 0);
const nearest = (r: number[], cs: number[][]) => {
  const d = cs.map((c) => sqDist(r, c));
  return d.indexOf(Math.min(...d));
};

/**
 * K well-separated clusters of `per` rows each (shuffled), built on the host. Returns the float32
 * rows and the host (float64) mean and within-cluster sum of squares of each cluster.
 */
function clusters(seed: number, K: number, D: number, per: number, spread = 0.05, offset = 0) {
  const rng = new Rng(seed);
  const centres = Array.from({ length: K }, (_, k) =>
    Array.from({ length: D }, (_, d) => offset + 10 * (((k >> d) & 1) * 2 - 1) + rng.normal()),
  );
  const label: number[] = [];
  for (let k = 0; k < K; k++) for (let i = 0; i < per; i++) label.push(k);
  rng.shuffle(label);
  const x = label.map((k) => centres[k]!.map((c) => Math.fround(c + spread * rng.normal())));
  const means = centres.map((_, k) => {
    const m = x.filter((_, n) => label[n] === k);
    return Array.from({ length: D }, (_, d) => m.reduce((s, r) => s + r[d]!, 0) / m.length);
  });
  const wcss = x.reduce((s, r, n) => s + sqDist(r, means[label[n]!]!), 0);
  return { x, label, means, wcss, tensor: () => tf.tensor2d(x) };
}

for (const backend of TEST_BACKENDS) {
  describe(`kmeans and k-means codebook init on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('kmeans recovers the centres of well-separated clusters (host means to 1e-3), their counts and inertia', () => {
      const K = 8; // 3 sign bits in D = 3, so the true centres are >= ~15 apart
      const c = clusters(1, K, 3, 20);
      const { centres, counts, inertia, inertias } = kmeans(c.tensor(), K, { iters: 10, rng: new Rng(2) });
      expect(centres.shape).toEqual([K, 3]);
      const got = rows(centres);
      const match = got.map((r) => nearest(r, c.means));
      expect(new Set(match).size).toBe(K); // one centre per cluster
      got.forEach((r, k) => r.forEach((v, d) => expect(Math.abs(v - c.means[match[k]!]![d]!)).toBeLessThan(1e-3)));
      expect(Array.from(counts)).toEqual(new Array(K).fill(20));
      expect(inertia).toBeCloseTo(c.wcss, 3);
      expect(inertias).toHaveLength(11);
      expect(inertias[10]).toBe(inertia);
    });

    it("Lloyd's inertia never increases; counts and inertia agree with a host argmin over the returned centres", () => {
      const rng = new Rng(3);
      const x = rng.randn([300, 2]) as tf.Tensor2D; // one blob: Lloyd needs several steps
      const { centres, counts, inertia, inertias } = kmeans(x, 8, { iters: 15, rng: new Rng(4) });
      for (let t = 1; t < inertias.length; t++) expect(inertias[t]!).toBeLessThanOrEqual(inertias[t - 1]! * (1 + 1e-6));
      expect(inertias[15]!).toBeLessThan(inertias[0]! * 0.95);
      const xx = rows(x);
      const cc = rows(centres);
      const host = new Array(8).fill(0);
      let j = 0;
      for (const r of xx) {
        const k = nearest(r, cc);
        host[k]++;
        j += sqDist(r, cc[k]!);
      }
      expect(Array.from(counts)).toEqual(host);
      expect(Math.abs(inertia - j) / j).toBeLessThan(1e-4);
    });

    it('fewer distinct rows than k: the rest are distinct noisy copies of rows; k > N works; same seed, same centres', () => {
      const base = [
        [1, 2],
        [-3, 0.5],
        [4, -4],
      ];
      const x = tf.tensor2d([...base, ...base, ...base, ...base]); // 12 rows, 3 distinct
      const run = () => kmeans(x, 8, { iters: 5, rng: new Rng(9) });
      const a = run();
      const got = rows(a.centres);
      for (const b of base) expect(got.some((r) => sqDist(r, b) < 1e-10)).toBe(true);
      for (const r of got) expect(Math.min(...base.map((b) => sqDist(r, b)))).toBeLessThan(0.05 ** 2); // noise ~ 1e-3 rms
      for (let i = 0; i < 8; i++) for (let j = 0; j < i; j++) expect(sqDist(got[i]!, got[j]!)).toBeGreaterThan(0);
      expect([...a.counts].sort((p, q) => q - p)).toEqual([4, 4, 4, 0, 0, 0, 0, 0]);
      expect(a.inertia).toBeLessThan(1e-9);
      expect(rows(run().centres)).toEqual(got);
      expect(rows(kmeans(x, 8, { iters: 5, rng: new Rng(10) }).centres)).not.toEqual(got);
      const two = kmeans(tf.tensor2d([[0], [1]]), 5, { rng: new Rng(1) });
      expect(two.centres.shape).toEqual([5, 1]);
      expect(two.counts.reduce((s, v) => s + v, 0)).toBe(2);
    });

    it('cosine: spherical k-means gives unit centres along the cluster directions', () => {
      const dirs = [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [-1, -1, 0],
      ];
      const rng = new Rng(5);
      const x: number[][] = [];
      for (let i = 0; i < 40; i++) {
        const d = dirs[i % 4]!;
        const scale = 0.5 + 3 * rng.uniform(); // the norm must not matter
        x.push(d.map((v) => scale * (v + 0.01 * rng.normal())));
      }
      const { centres, counts } = kmeans(tf.tensor2d(x), 4, { rng: new Rng(6), cosine: true });
      const got = rows(centres);
      for (const r of got) expect(Math.hypot(...r)).toBeCloseTo(1, 5);
      const unit = dirs.map((d) => d.map((v) => v / Math.hypot(...d)));
      expect(new Set(got.map((r) => nearest(r, unit))).size).toBe(4);
      got.forEach((r) => expect(Math.sqrt(sqDist(r, unit[nearest(r, unit)]!))).toBeLessThan(0.02));
      expect(Array.from(counts)).toEqual([10, 10, 10, 10]);
    });

    it('kmeansInit: the first training forward uses every code on K clusters; a default-init quantizer uses few', () => {
      const K = 8;
      const c = clusters(7, K, 3, 16, 0.05, 20); // clusters around (20, 20, 20): far from the U(-1/K, 1/K) codes
      const z = c.tensor().reshape([8, 16, 3]);
      const vq = new VectorQuantizer(K, 3, { kmeansInit: { iters: 10 }, rng: new Rng(1) });
      expect(vq.needsInit).toBe(true);
      const o = vq.forward(z);
      expect(vq.needsInit).toBe(false);
      expect(o.usage.dataSync()[0]).toBe(1);
      expect(o.perplexity.dataSync()[0]).toBeCloseTo(K, 3);
      expect(o.commitLoss.dataSync()[0]).toBeLessThan(0.01);
      const cb = rows(vq.embedding.weight);
      cb.forEach((r) => r.forEach((v, d) => expect(Math.abs(v - c.means[nearest(r, c.means)]![d]!)).toBeLessThan(1e-3)));
      const plain = new VectorQuantizer(K, 3, { rng: new Rng(1) });
      const p = plain.forward(z);
      expect(p.usage.dataSync()[0]).toBeLessThanOrEqual(0.5); // 3 of 8 codes here
      expect(p.commitLoss.dataSync()[0]).toBeGreaterThan(100);
      // eval mode never initialises
      const ev = new VectorQuantizer(K, 3, { kmeansInit: true, rng: new Rng(1) }).eval();
      ev.forward(z);
      expect(ev.needsInit).toBe(true);
    });

    it('with EMA: cluster_size = max(counts, 1), embed_avg = centres * cluster_size; the first update keeps the centres', () => {
      const c = clusters(8, 4, 2, 10);
      const x = tf.concat([c.tensor(), tf.tensor2d([[50, 50]])]); // a far outlier: k = 6 leaves an empty cluster or a singleton
      const vq = new VectorQuantizer(6, 2, { kmeansInit: {}, emaDecay: 0.9, emaEps: 0, rng: new Rng(2) });
      expect(Object.keys(vq.stateDict()).sort()).toEqual(['cluster_size', 'embed_avg', 'embedding.weight', 'initted']);
      const { counts, inertia } = vq.initFromData(x);
      expect(counts.reduce((s, v) => s + v, 0)).toBe(41);
      expect(inertia).toBeGreaterThan(0);
      const sd = vq.stateDict();
      expect(Array.from(sd.initted!.dataSync())).toEqual([1]);
      expect(Array.from(sd.cluster_size!.dataSync())).toEqual(Array.from(counts, (v) => Math.max(v, 1)));
      const w = rows(sd['embedding.weight']!);
      rows(sd.embed_avg!).forEach((r, k) => r.forEach((v, d) => expect(v).toBeCloseTo(w[k]![d]! * Math.max(counts[k]!, 1), 3)));
      vq.forward(x); // already initialised: no second k-means; the EMA step on the same batch leaves converged centres put
      rows(vq.embedding.weight).forEach((r, k) => r.forEach((v, d) => expect(Math.abs(v - w[k]![d]!)).toBeLessThan(1e-3)));
    });

    it('initted survives a state-dict round trip: the loaded quantizer does not re-initialise', () => {
      const a1 = clusters(10, 4, 2, 8);
      const a2 = clusters(11, 4, 2, 8, 0.05, 7);
      for (const emaDecay of [undefined, 0.9]) {
        const a = new VectorQuantizer(4, 2, { kmeansInit: true, emaDecay, rng: new Rng(1) });
        a.forward(a1.tensor());
        const b = new VectorQuantizer(4, 2, { kmeansInit: true, emaDecay, rng: new Rng(2) });
        expect(b.needsInit).toBe(true);
        b.loadStateDict(a.stateDict());
        expect(b.needsInit).toBe(false);
        const before = rows(b.embedding.weight);
        expect(before).toEqual(rows(a.embedding.weight));
        b.forward(a2.tensor()); // other data: a re-init would move the codes to a2's clusters
        a.forward(a2.tensor());
        if (emaDecay === undefined) expect(rows(b.embedding.weight)).toEqual(before);
        expect(rows(b.embedding.weight)).toEqual(rows(a.embedding.weight));
      }
    });

    it('determinism: the same Rng seed gives the same codebook; sample caps the rows used', () => {
      const c = clusters(12, 6, 4, 30, 1); // overlapping clusters, so the seeding matters
      const make = (seed: number, sample?: number) => {
        const vq = new VectorQuantizer(6, 4, { kmeansInit: { iters: 3, sample }, rng: new Rng(seed) });
        vq.forward(c.tensor());
        return rows(vq.embedding.weight);
      };
      expect(make(3)).toEqual(make(3));
      expect(make(3)).not.toEqual(make(4));
      expect(make(3, 20)).toEqual(make(3, 20));
      expect(make(3, 20)).not.toEqual(make(3));
      const vq = new VectorQuantizer(6, 4, { rng: new Rng(1) });
      expect(vq.initFromData(c.tensor(), { sample: 20 }).counts.reduce((s, v) => s + v, 0)).toBe(20);
      expect(vq.initFromData(c.tensor()).counts.reduce((s, v) => s + v, 0)).toBe(180);
      expect(Object.keys(vq.stateDict())).toEqual(['embedding.weight']); // no initted without kmeansInit
    });

    it('cosine quantizer: kmeansInit on the normalised rows gives unit codes and full usage', () => {
      const rng = new Rng(13);
      const dirs = [
        [1, 0],
        [0, 1],
        [-1, 0],
        [0, -1],
      ];
      const z = tf.tensor2d(Array.from({ length: 32 }, (_, i) => dirs[i % 4]!.map((v) => (1 + rng.uniform()) * v + 0.01 * rng.normal())));
      const vq = new VectorQuantizer(4, 2, { cosine: true, kmeansInit: true, rng: new Rng(1) });
      const o = vq.forward(z);
      expect(o.usage.dataSync()[0]).toBe(1);
      for (const r of rows(vq.embedding.weight)) expect(Math.hypot(...r)).toBeCloseTo(1, 5);
    });

    it('ResidualVQ passes kmeansInit to every stage: one training forward initialises each on its residual', () => {
      const c = clusters(14, 8, 3, 12, 0.5, 5);
      const z = c.tensor();
      const rvq = new ResidualVQ(3, 8, 3, { kmeansInit: { iters: 5 }, rng: new Rng(1) });
      const before = rvq.layers.items.map((q) => rows(q.embedding.weight));
      expect(rvq.layers.items.every((q) => q.needsInit)).toBe(true);
      const o = rvq.forward(z);
      expect(rvq.layers.items.every((q) => !q.needsInit)).toBe(true);
      rvq.layers.items.forEach((q, i) => expect(rows(q.embedding.weight)).not.toEqual(before[i]));
      expect(Object.keys(rvq.stateDict())).toContain('layers.2.initted');
      // stage i's codes are the k-means centres of the residuals left by stages < i: the error shrinks stage by stage
      let r = z;
      const errs: number[] = [];
      for (const q of rvq.layers) {
        r = r.sub(tf.gather(q.codebook(), q.nearest(r as tf.Tensor2D)));
        errs.push(r.square().mean().dataSync()[0] as number);
      }
      expect(errs[1]!).toBeLessThan(errs[0]!);
      expect(errs[2]!).toBeLessThan(errs[1]!);
      const plain = new ResidualVQ(3, 8, 3, { rng: new Rng(1) });
      expect(o.commitLoss.dataSync()[0]!).toBeLessThan(plain.forward(z).commitLoss.dataSync()[0]! / 10);
      // explicit init, stage by stage, and then no re-init in training
      const ex = new ResidualVQ(2, 8, 3, { kmeansInit: true, rng: new Rng(2) });
      expect(ex.initFromData(z).map((s) => s.counts.reduce((a, v) => a + v, 0))).toEqual([96, 96]);
      const cb = ex.layers.items.map((q) => rows(q.embedding.weight));
      ex.forward(z);
      expect(ex.layers.items.map((q) => rows(q.embedding.weight))).toEqual(cb);
    });

    it('no tensor leak over training steps with kmeansInit + EMA + dead-code restart (the first step included)', () => {
      const z = tf.randomNormal([32, 4], 0, 1, 'float32', 1);
      const vq = new VectorQuantizer(8, 4, { kmeansInit: { iters: 3 }, emaDecay: 0.9, deadCodeSteps: 1, rng: new Rng(1) });
      const rvq = new ResidualVQ(2, 8, 4, { kmeansInit: { iters: 3 }, emaDecay: 0.9, deadCodeSteps: 1, rng: new Rng(1) });
      for (const m of [vq, rvq]) {
        const step = () => tf.dispose(tf.grads((zz: tf.Tensor) => m.forward(zz).loss)([z]));
        const n = tf.memory().numTensors;
        for (let s = 0; s < 3; s++) {
          step();
          expect(tf.memory().numTensors).toBe(n);
        }
      }
      const n = tf.memory().numTensors;
      tf.dispose(kmeans(z as tf.Tensor2D, 5, { iters: 2, rng: new Rng(1) }).centres);
      vq.initFromData(z);
      rvq.initFromData(z, { sample: 16 });
      expect(tf.memory().numTensors).toBe(n);
    });
  });
}

describe('kmeans init bad input', () => {
  beforeAll(async () => useBackend('cpu'));
  it('names the argument, the expected and the actual value', () => {
    const x = tf.zeros([4, 2]) as tf.Tensor2D;
    expect(() => kmeans(tf.zeros([2, 3, 4]) as unknown as tf.Tensor2D, 2)).toThrow(/kmeans: x must be 2-D \[N, D\], got shape \[2,3,4\]/);
    expect(() => kmeans(tf.zeros([0, 3]) as tf.Tensor2D, 2)).toThrow(
      /kmeans: x must have at least one row and one column, got shape \[0,3\]/,
    );
    expect(() => kmeans(tf.zeros([4, 2], 'int32') as tf.Tensor2D, 2)).toThrow(/kmeans: x must be float32, got int32/);
    expect(() => kmeans(tf.tensor2d([[0, Number.NaN]]), 1)).toThrow(/kmeans: x must be finite, got NaN at flat position 1/);
    expect(() => kmeans(x, 0)).toThrow(/kmeans: k must be a positive integer, got 0/);
    expect(() => kmeans(x, 2, { iters: 0 })).toThrow(/kmeans: iters must be an integer >= 1, got 0/);
    expect(() => kmeans(x, 2, { iters: 2.5 })).toThrow(/kmeans: iters must be an integer >= 1, got 2.5/);
    expect(() => new VectorQuantizer(4, 2, { kmeansInit: { iters: 0 } })).toThrow(
      /VectorQuantizer: kmeansInit.iters must be an integer >= 1, got 0/,
    );
    expect(() => new VectorQuantizer(4, 2, { kmeansInit: { sample: 0 } })).toThrow(
      /VectorQuantizer: kmeansInit.sample must be an integer >= 1, got 0/,
    );
    const vq = new VectorQuantizer(4, 2, { kmeansInit: true });
    expect(() => vq.initFromData(tf.zeros([5, 3]))).toThrow(/VectorQuantizer.initFromData: z's last dim must be 2, got shape \[5,3\]/);
    expect(() => vq.forward(tf.zeros([5, 3]))).toThrow(/VectorQuantizer.forward: last dim must be 2, got shape \[5,3\]/);
    expect(() => vq.initFromData(tf.zeros([0, 2]))).toThrow(
      /VectorQuantizer.initFromData: z must hold at least one row, got shape \[0,2\]/,
    );
    expect(() => vq.initFromData(x, { iters: -1 })).toThrow(
      /VectorQuantizer.initFromData: kmeansInit.iters must be an integer >= 1, got -1/,
    );
    expect(vq.needsInit).toBe(true); // nothing was changed by the failed calls
    expect(() => new ResidualVQ(2, 4, 3).initFromData(tf.zeros([5, 2]))).toThrow(
      /ResidualVQ.initFromData: z's last dim must be 3, got shape \[5,2\]/,
    );
  });
});
