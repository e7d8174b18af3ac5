import { beforeAll, describe, expect, it } from 'vitest';
import { FSQ, tf } from '../../src/index.js';
import { TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const close = (got: ArrayLike<number>, want: number[], tol: number) => {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => expect(Math.abs((got[i] as number) - w)).toBeLessThanOrEqual(tol));
};

for (const backend of TEST_BACKENDS) {
  describe(`FSQ on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('golden codes and indices from the EMOVA brief (levels [8,8,8,8]), with either shift', () => {
      const cases: [number[], number[], number][] = [
        [[0, 0, 0, 0], [0, 0, 0, 0], 2340],
        [[-5, -0.3, 0.4, 5], [-1, -0.25, 0.25, 0.75], 3928],
        [[0.1, 0.9, -1.2, 2.0], [0, 0.5, -0.75, 0.75], 3700],
      ];
      for (const shift of ['tan', 'atanh'] as const) {
        const fsq = new FSQ([8, 8, 8, 8], { shift });
        expect(fsq.codebookSize).toBe(4096);
        expect(fsq.basis).toEqual([1, 8, 64, 512]);
        const { codes, indices } = fsq.forward(tf.tensor2d(cases.map((c) => c[0])));
        expect(indices.dtype).toBe('int32');
        expect(Array.from(indices.dataSync())).toEqual(cases.map((c) => c[2]));
        close(
          codes.dataSync(),
          cases.flatMap((c) => c[1]),
          1e-5,
        );
        close(
          fsq.indicesToCodes(indices).dataSync(),
          cases.flatMap((c) => c[1]),
          1e-6,
        );
      }
      // the brief's constants: h = 7 * 0.999 / 2 = 3.4965, shift = tan(0.5 / h) = 0.14398
      const { h, offset, shift } = new FSQ([8]).boundConstants();
      expect(h[0]).toBeCloseTo(3.4965, 10);
      expect(offset[0]).toBe(0.5);
      expect(shift[0]).toBeCloseTo(0.14398, 5);
      expect(new FSQ([8], { shift: 'atanh' }).boundConstants().shift[0]).toBeCloseTo(0.14399, 5);
    });

    it('tan (EMOVA) and atanh (lucidrains) differ only next to a rounding boundary; bound(0) = 0 exactly with atanh', () => {
      const h = (7 * 0.999) / 2;
      // bound_atanh(z) = 0.5 + 1e-5 (rounds up); tan's shift is 8e-6 smaller, so bound_tan(z) ~ 0.49998 (rounds down)
      const z = Math.atanh((1 + 1e-5) / h) - Math.atanh(0.5 / h);
      const ref = (s: number) => Math.round(Math.tanh(z + s) * h - 0.5) / 4;
      expect(ref(Math.tan(0.5 / h))).toBe(0);
      expect(ref(Math.atanh(0.5 / h))).toBe(0.25);
      const x = tf.tensor2d([[z]]);
      expect(new FSQ([8]).quantize(x).dataSync()[0]).toBe(0);
      expect(new FSQ([8], { shift: 'atanh' }).quantize(x).dataSync()[0]).toBe(0.25);
      expect(Math.abs(new FSQ([8], { shift: 'atanh' }).bound(tf.zeros([1, 1])).dataSync()[0]!)).toBeLessThan(1e-6);
      // tan: tanh(tan(0.5/h)) h - 0.5 = -2.7e-5
      expect(new FSQ([8]).bound(tf.zeros([1, 1])).dataSync()[0]).toBeCloseTo(Math.tanh(Math.tan(0.5 / h)) * h - 0.5, 6);
    });

    it('odd and mixed levels: every index round-trips, codes span [-1, 1], bound(0) = 0', () => {
      for (const levels of [
        [5, 5, 5],
        [5, 3, 4],
        [7, 2],
      ]) {
        const fsq = new FSQ(levels);
        const n = levels.reduce((a, b) => a * b, 1);
        const all = tf.range(0, n, 1, 'int32');
        const cb = fsq.implicitCodebook();
        expect(cb.shape).toEqual([n, levels.length]);
        expect(Array.from(fsq.codesToIndices(cb).dataSync())).toEqual(Array.from(all.dataSync()));
        // index 0 is the all-lowest code -1; the top code is 1 for odd L, 1 - 1/hw for even L
        close(
          cb.slice([0, 0], [1, -1]).dataSync(),
          levels.map(() => -1),
          1e-7,
        );
        close(
          cb.slice([n - 1, 0], [1, -1]).dataSync(),
          levels.map((l) => (l % 2 ? 1 : 1 - 1 / Math.floor(l / 2))),
          1e-7,
        );
        // quantize lands exactly on the codebook
        const q = fsq.quantize(tf.tensor2d([levels.map((_, i) => (i % 2 ? 3 : -3)), levels.map(() => 0.3)]));
        expect(Array.from(fsq.indicesToCodes(fsq.codesToIndices(q)).dataSync())).toEqual(Array.from(q.dataSync()));
      }
      const odd = new FSQ([5, 5, 5]);
      expect(Array.from(odd.bound(tf.zeros([1, 3])).dataSync())).toEqual([0, 0, 0]);
      expect(Array.from(odd.forward(tf.tensor2d([[-9, 0, 9]])).codes.dataSync())).toEqual([-1, 0, 1]);
      expect(odd.forward(tf.zeros([2, 6, 3])).indices.shape).toEqual([2, 6]);
      expect(odd.numParameters()).toBe(0);
    });

    it('straight-through gradient: d codes / dz = h (1 - tanh^2(z + shift)) / floor(L/2)', () => {
      const fsq = new FSQ([8, 5]);
      const zv = [0.2, -0.7];
      const g = tf
        .grad((z: tf.Tensor) => fsq.quantize(z).sum())(tf.tensor2d([zv]))
        .dataSync();
      const { h, shift } = fsq.boundConstants();
      zv.forEach((z, i) => {
        const t = Math.tanh(z + shift[i]!);
        expect(g[i]).toBeCloseTo((h[i]! * (1 - t * t)) / fsq.halfWidth[i]!, 5);
      });
      const z = tf.randomNormal([3, 2], 0, 1, 'float32', 1);
      tf.dispose(fsq.forward(z));
      const n = tf.memory().numTensors;
      tf.dispose(fsq.forward(z));
      tf.dispose(tf.grad((zz: tf.Tensor) => fsq.quantize(zz).sum())(z));
      expect(tf.memory().numTensors).toBe(n);
    });

    it('l2Norm normalises z first (EMOVA flag)', () => {
      const a = new FSQ([8, 8], { l2Norm: true });
      const b = new FSQ([8, 8]);
      const z = tf.tensor2d([[3, 4]]);
      expect(Array.from(a.quantize(z).dataSync())).toEqual(Array.from(b.quantize(tf.tensor2d([[0.6, 0.8]])).dataSync()));
    });
  });
}

describe('FSQ bad input', () => {
  beforeAll(async () => useBackend('cpu'));
  it('names the problem', () => {
    const fsq = new FSQ([5, 3, 4]);
    expect(() => fsq.quantize(tf.zeros([2, 4]))).toThrow(/FSQ.quantize: last dim must be 3 \(levels \[5,3,4\]\), got shape \[2,4\]/);
    expect(() => fsq.codesToIndices(tf.zeros([2]))).toThrow(/FSQ.codesToIndices: last dim must be 3/);
    expect(() => fsq.indicesToCodes(tf.tensor1d([0, 60], 'int32'))).toThrow(/index 60 at flat position 1 is out of range \[0, 60\)/);
    expect(() => fsq.indicesToCodes(tf.tensor1d([1]))).toThrow(/indices must be int32, got float32/);
    expect(() => new FSQ([8, 1])).toThrow(/levels must be a non-empty array of integers >= 2, got \[8,1\]/);
    expect(() => new FSQ([])).toThrow(/got \[\]/);
    expect(() => new FSQ([2.5])).toThrow(/got \[2.5\]/);
    expect(() => new FSQ([65536, 65536])).toThrow(/must fit int32 \(< 2\^31\), got 4294967296/);
    expect(() => new FSQ([8], { eps: 1 })).toThrow(/eps must be in \[0, 1\), got 1/);
    expect(() => new FSQ([8], { shift: 'tanh' as 'tan' })).toThrow(/shift must be 'tan' or 'atanh', got "tanh"/);
  });
});
