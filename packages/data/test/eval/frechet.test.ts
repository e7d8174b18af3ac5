import { Rng, tf } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import {
  ConvFeatureNet,
  frechetDistance,
  frechetDistanceFromFeatures,
  frechetDistanceFromStats,
  type GaussianStats,
  gaussianStats,
  imageFeatures,
  sqrtmPsd,
  symmetricEigen,
} from '../../src/eval/index.js';
import { addGaussianNoise, ShapesDataset } from '../../src/images/index.js';

function randomSpd(n: number, rng: Rng): Float64Array {
  const m = Array.from({ length: n * n }, () => rng.normal());
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = i === j ? 0.1 : 0;
      for (let k = 0; k < n; k++) s += m[i * n + k]! * m[j * n + k]!;
      out[i * n + j] = s;
    }
  return out;
}

function randomRotation(n: number, rng: Rng): Float64Array {
  const { vectors } = symmetricEigen(randomSpd(n, rng), n);
  return vectors;
}

function stats(mean: number[], cov: Float64Array): GaussianStats {
  return { mean: Float64Array.from(mean), cov, dim: mean.length, n: 100 };
}

function diag(xs: number[]): Float64Array {
  const n = xs.length;
  const out = new Float64Array(n * n);
  xs.forEach((x, i) => {
    out[i * n + i] = x;
  });
  return out;
}

/** R diag(xs) R^T */
function rotated(r: Float64Array, xs: number[]): Float64Array {
  const n = xs.length;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) out[i * n + j]! += r[i * n + k]! * xs[k]! * r[j * n + k]!;
  return out;
}

describe('symmetricEigen / sqrtmPsd', () => {
  it('matches the 2x2 closed form and reconstructs random matrices', () => {
    const [a, b, c] = [2, 1, 3];
    const { values } = symmetricEigen([a, b, b, c], 2);
    const m = (a + c) / 2;
    const r = Math.sqrt(((a - c) / 2) ** 2 + b * b);
    expect(values[0]).toBeCloseTo(m - r, 12);
    expect(values[1]).toBeCloseTo(m + r, 12);
    const rng = new Rng(3);
    for (const n of [1, 3, 8, 20]) {
      const A = randomSpd(n, rng);
      const { values: l, vectors: V } = symmetricEigen(A, n);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let rec = 0;
          let orth = 0;
          for (let k = 0; k < n; k++) {
            rec += V[i * n + k]! * l[k]! * V[j * n + k]!;
            orth += V[k * n + i]! * V[k * n + j]!;
          }
          expect(rec).toBeCloseTo(A[i * n + j]!, 9);
          expect(orth).toBeCloseTo(i === j ? 1 : 0, 12);
        }
      const S = sqrtmPsd(A, n);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let sq = 0;
          for (let k = 0; k < n; k++) sq += S[i * n + k]! * S[k * n + j]!;
          expect(sq).toBeCloseTo(A[i * n + j]!, 8);
        }
    }
  });

  it('rejects non-square and non-finite input', () => {
    expect(() => symmetricEigen([1, 2, 3], 2)).toThrow(/expected an n x n matrix with n = 2 \(4 values\), got 3/);
    expect(() => symmetricEigen([1, Number.NaN, Number.NaN, 1], 2)).toThrow(/non-finite entry/);
  });
});

describe('Fréchet distance closed forms', () => {
  it('1-D Gaussians: (mu1 - mu2)^2 + (sigma1 - sigma2)^2', () => {
    const d = frechetDistanceFromStats(stats([1], diag([4])), stats([-2], diag([0.25])));
    expect(d).toBeCloseTo(9 + (2 - 0.5) ** 2, 12);
  });

  it('diagonal and commuting covariances: sum (sqrt(a_i) - sqrt(b_i))^2', () => {
    const a = [1, 4, 9, 0.5];
    const b = [2, 1, 9, 3];
    const want = a.reduce((s, x, i) => s + (Math.sqrt(x) - Math.sqrt(b[i]!)) ** 2, 0);
    const mu1 = [0, 1, 2, 3];
    const mu2 = [1, 1, 2, 1];
    expect(frechetDistanceFromStats(stats(mu1, diag(a)), stats(mu2, diag(b)))).toBeCloseTo(1 + 4 + want, 10);
    const R = randomRotation(4, new Rng(5));
    expect(frechetDistanceFromStats(stats(mu1, rotated(R, a)), stats(mu2, rotated(R, b)))).toBeCloseTo(1 + 4 + want, 9);
  });

  it('non-commuting 2x2: Tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2))', () => {
    const s1 = Float64Array.from([2, 0.7, 0.7, 1]);
    const s2 = Float64Array.from([1, -0.4, -0.4, 3]);
    const trP = s1[0]! * s2[0]! + s1[1]! * s2[2]! + s1[2]! * s2[1]! + s1[3]! * s2[3]!;
    const det = (m: Float64Array) => m[0]! * m[3]! - m[1]! * m[2]!;
    const trSqrt = Math.sqrt(trP + 2 * Math.sqrt(det(s1) * det(s2)));
    const want = 2 + 1 + 1 + 3 - 2 * trSqrt;
    expect(frechetDistanceFromStats(stats([0, 0], s1), stats([0, 0], s2))).toBeCloseTo(want, 12);
  });

  it('gaussianStats gives the unbiased covariance', () => {
    const s = gaussianStats([
      [1, 2],
      [3, 2],
      [5, 8],
    ]);
    expect(Array.from(s.mean)).toEqual([3, 4]);
    expect(Array.from(s.cov)).toEqual([4, 6, 6, 12]);
    expect(() => gaussianStats([[1]])).toThrow(/at least 2 feature vectors, got 1/);
    expect(() => gaussianStats([[1, 2], [1]])).toThrow(/vector 1 has length 1, expected 2/);
    expect(() =>
      frechetDistanceFromFeatures(
        [[1], [2]],
        [
          [1, 2],
          [3, 4],
        ],
      ),
    ).toThrow(/dimensions differ: 1 and 2/);
  });
});

describe('frechetDistance on Shapes images', () => {
  const real = new ShapesDataset({ seed: 1, imageSize: 16, split: 'all' }).batch(0, 48).samples.map((s) => s.image);
  const other = new ShapesDataset({ seed: 2, imageSize: 16, split: 'all' }).batch(0, 48).samples.map((s) => s.image);
  const noisy = (std: number) => other.map((img, i) => addGaussianNoise(img, std, new Rng(i)));
  const redOnly = new ShapesDataset({ seed: 2, imageSize: 16, split: 'all', colours: ['red'], heldOut: [] })
    .batch(0, 48)
    .samples.map((s) => s.image);

  it('is ~0 for identical sets and grows with the shift (conv features)', () => {
    const before = tf.memory().numTensors;
    const same = frechetDistance(real, real);
    const fresh = frechetDistance(real, other);
    const noise2 = frechetDistance(real, noisy(0.2));
    const noise3 = frechetDistance(real, noisy(0.3));
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(same)).toBeLessThan(1e-6);
    expect(fresh).toBeGreaterThan(0);
    expect(noise2).toBeGreaterThan(fresh);
    expect(noise3).toBeGreaterThan(noise2);
  });

  it('is ~0 for identical sets and grows with the shift (analyzer features)', () => {
    const opts = { features: 'analyzer' as const, analyzer: { imageSize: 16 } };
    expect(Math.abs(frechetDistance(real, real, opts))).toBeLessThan(1e-6);
    expect(frechetDistance(real, redOnly, opts)).toBeGreaterThan(3 * frechetDistance(real, other, opts));
  });

  it('conv features are deterministic by seed and differ across seeds', () => {
    const a = imageFeatures(real.slice(0, 4), { seed: 7 });
    const b = imageFeatures(real.slice(0, 4), { seed: 7, batchSize: 3 });
    const c = imageFeatures(real.slice(0, 4), { seed: 8 });
    expect(a[0]!.length).toBe(128);
    for (let i = 0; i < 4; i++) for (let k = 0; k < 128; k++) expect(b[i]![k]).toBeCloseTo(a[i]![k]!, 5);
    expect(Array.from(a[0]!)).not.toEqual(Array.from(c[0]!));
  });

  it('rejects bad input', () => {
    expect(() => frechetDistance(real.slice(0, 1), real)).toThrow(/at least 2 images per set, got 1 real and 48 generated/);
    expect(() => imageFeatures([real[0]!, new Float32Array(5)])).toThrow(/image 1 has 5 values, expected 768 \(16x16x3\)/);
    expect(() => imageFeatures(real, { features: 'pixels' as never })).toThrow(
      /features must be 'analyzer', 'conv' or a function, got "pixels"/,
    );
    const net = new ConvFeatureNet(0);
    const bad = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
    expect(() => net.features(bad)).toThrow(/expected images \[B, H, W, 3\], got \[1, 4, 4, 1\]/);
    bad.dispose();
    net.dispose();
  });
});
