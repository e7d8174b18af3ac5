/**
 * core's Gumbel noise (src/backend/kernels/fused.ts): the counter-based uniform against an
 * independent re-statement of the hash (BigInt), the wasm SIMD kernel (its ln: simd_ops.ts's logVec)
 * against -ln(-ln u) of the same u in float64, the cpu path against the same, the distribution
 * (Kolmogorov-Smirnov distance to exp(-exp(-g)), mean and variance), the eps clamp, Rng.gumbel's
 * stream, bad input, and no leak.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { GUMBEL_KERNEL, gumbelBounds, gumbelKey, gumbelUniform } from '../../src/backend/kernels/fused.js';
import { gumbelNoise, Rng, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { fmix, on } from './helpers.js';

afterAll(async () => useBackend('cpu'));

/** u_i in exact arithmetic: (floor(h / 2^9) + 1/2) / 2^23 with h = fmix32(i 0x9e3779b9 + key). */
function uniformRef(seed: number, i: number): number {
  const key = fmix(BigInt(seed) ^ 0x2545f491n);
  const h = fmix(BigInt(i) * 0x9e3779b9n + key);
  return (Number(h >> 9n) + 0.5) / 2 ** 23;
}

/** One float32 ulp at |x|. */
const ulp = (x: number) => 2 ** (Math.floor(Math.log2(Math.max(Math.abs(x), 2 ** -126))) - 23);

/** Largest error of g against -ln(-ln u) in float64 of the same clamped u, in float32 ulps of g plus the conditioning of the inner ln. */
function worstError(g: Float32Array, seed: number, eps: number): number {
  const [lo, hi] = gumbelBounds(eps);
  let worst = 0;
  for (let i = 0; i < g.length; i++) {
    const u = Math.min(Math.max(uniformRef(seed, i), lo), hi);
    const a = -Math.log(u);
    const ref = -Math.log(a);
    // rounding a to float32 moves g by up to ulp(a) / (2 a); allow 2 ulps of a's ln and 2 of g's
    const tol = (2 * ulp(a)) / a + 2 * ulp(ref);
    worst = Math.max(worst, Math.abs((g[i] as number) - ref) / tol);
  }
  return worst;
}

describe('gumbelNoise', () => {
  it('the uniform is ((fmix32(i 0x9e3779b9 + key) >>> 9) + 1/2) 2^-23 with key = fmix32(seed ^ 0x2545f491), inside (0, 1)', () => {
    for (const seed of [0, 1, 12345, 2 ** 31 - 1, -7]) {
      expect(gumbelKey(seed)).toBe(Number(fmix(BigInt(seed >>> 0) ^ 0x2545f491n)));
      for (const i of [0, 1, 2, 3, 1000, 2 ** 20 + 7]) {
        const u = gumbelUniform(gumbelKey(seed), i);
        expect(u).toBe(uniformRef(seed >>> 0, i));
        expect(Math.fround(u)).toBe(u);
        expect(u > 0 && u < 1).toBe(true);
      }
    }
  });

  for (const n of [4099, 3, 8]) {
    it(`wasm SIMD and cpu: within 2 ulp of -ln(-ln u) in float64, the n mod 4 tail too (n ${n})`, async () => {
      const run = () => tf.tidy(() => gumbelNoise([n], 4242, 1e-7).dataSync() as Float32Array);
      const w = await on('wasm', run);
      expect(tf.getKernel(GUMBEL_KERNEL, 'wasm')).toBeDefined();
      const c = await on('cpu', run);
      expect(worstError(w, 4242, 1e-7)).toBeLessThanOrEqual(1);
      expect(worstError(c, 4242, 1e-7)).toBeLessThanOrEqual(1);
      // the same seed gives the same noise
      expect(Array.from(await on('wasm', run))).toEqual(Array.from(w));
    });
  }

  it('the clamp: u at its extremes 2^-24 and 1 - 2^-24 gives finite noise for eps 0; eps bounds u', async () => {
    // the smallest and largest u (h >>> 9 = 0 and 2^23 - 1) written out: -ln(-ln u) at both ends
    const lowest = -Math.log(-Math.log(2 ** -24));
    const highest = -Math.log(-Math.log(1 - 2 ** -24));
    expect(Number.isFinite(lowest) && Number.isFinite(highest)).toBe(true);
    for (const backend of ['wasm', 'cpu'] as const) {
      const g = await on(backend, () => tf.tidy(() => gumbelNoise([1 << 16], 9, 0).dataSync() as Float32Array));
      expect(g.every((v) => Number.isFinite(v) && v >= lowest - 1e-5 && v <= highest + 1e-5)).toBe(true);
      // eps 0.25: u in [0.25, 0.75], g in [-ln(-ln 0.25), -ln(-ln 0.75)]
      const h = await on(backend, () => tf.tidy(() => gumbelNoise([1 << 12], 9, 0.25).dataSync() as Float32Array));
      const [a, b] = [-Math.log(-Math.log(0.25)), -Math.log(-Math.log(0.75))];
      expect(h.every((v) => v >= a - 1e-6 && v <= b + 1e-6)).toBe(true);
      expect(h.some((v) => Math.abs(v - a) < 1e-6) && h.some((v) => Math.abs(v - b) < 1e-6)).toBe(true);
      expect(worstError(h, 9, 0.25)).toBeLessThanOrEqual(1);
    }
  });

  it('is Gumbel(0, 1): Kolmogorov-Smirnov distance to exp(-exp(-g)), mean (Euler gamma) and variance (pi^2 / 6) over seeds', async () => {
    const n = 200_000;
    for (const seed of [1, 2, 3]) {
      const g = await on('wasm', () => tf.tidy(() => gumbelNoise([n], seed, 1e-7).dataSync() as Float32Array));
      const s = Float64Array.from(g).sort();
      let d = 0;
      for (let i = 0; i < n; i++) {
        const F = Math.exp(-Math.exp(-(s[i] as number)));
        d = Math.max(d, Math.abs(F - i / n), Math.abs(F - (i + 1) / n));
      }
      // KS critical value at the 0.001 level: 1.95 / sqrt(n) = 0.0044
      expect(d).toBeLessThan(1.95 / Math.sqrt(n));
      let m = 0;
      for (const v of s) m += v;
      m /= n;
      let v2 = 0;
      for (const v of s) v2 += (v - m) ** 2;
      v2 /= n - 1;
      // standard errors: sqrt(pi^2/6 / n) = 0.0029 for the mean, about 0.0077 for the variance; 4 of each
      expect(Math.abs(m - 0.5772156649)).toBeLessThan(4 * 0.0029);
      expect(Math.abs(v2 - Math.PI ** 2 / 6)).toBeLessThan(4 * 0.0077);
    }
  });

  it('Rng.gumbel draws one seed of its stream per call (a fresh stream repeats it); bad input is refused; no leak', async () => {
    await on('wasm', () => {
      const before = tf.memory().numTensors;
      const a = new Rng(5);
      const b = new Rng(5);
      tf.tidy(() => {
        const g1 = a.gumbel([3, 6], 1e-7).dataSync();
        const g2 = a.gumbel([3, 6], 1e-7).dataSync();
        expect(Array.from(b.gumbel([3, 6], 1e-7).dataSync())).toEqual(Array.from(g1));
        expect(Array.from(g2)).not.toEqual(Array.from(g1));
        expect(gumbelNoise([2, 0, 3], 1).shape).toEqual([2, 0, 3]);
      });
      expect(() => gumbelNoise([2, -1], 1)).toThrow(/shape must be non-negative integers, got \[2,-1\]/);
      expect(() => gumbelNoise([2], 1.5)).toThrow(/seed must be an integer, got 1.5/);
      expect(() => gumbelNoise([2], 1, 0.5)).toThrow(/eps must be in \[0, 0.5\), got 0.5/);
      expect(() => gumbelNoise([2], 1, Number.NaN)).toThrow(/eps must be in/);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
