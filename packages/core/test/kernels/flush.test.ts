/**
 * core's flushToZero (src/backend/kernels/fused.ts): the wasm SIMD kernel against the cpu composite
 * and a host loop (bit for bit, the n mod 4 tail too), NaN / infinities / signed zeros / subnormals,
 * the gradient (dy where kept, 0 where flushed), bad input, and no leak.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { FLUSH_KERNEL } from '../../src/backend/kernels/fused.js';
import { flushToZero, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, randn } from './helpers.js';

afterAll(async () => useBackend('cpu'));

const SUB = 1e-40; // subnormal in float32
const special = [
  0,
  -0,
  SUB,
  -SUB,
  1e-30,
  -1e-25,
  1e-20,
  2e-20,
  -3e-20,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0.5,
  -7,
];

/** The host's flush of float32 values: +0 where |v| < below. */
const hostFlush = (v: Float32Array, below: number) => Float32Array.from(v, (x) => (Math.abs(x) < Math.fround(below) ? 0 : x));

/** Bit patterns, so +0 / -0 and NaN compare exactly. */
const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer.slice(0)));

describe('flushToZero', () => {
  for (const n of [special.length, 4099, 3]) {
    it(`wasm kernel = cpu composite = host loop, bit for bit (n ${n}, specials, subnormals, the n mod 4 tail)`, async () => {
      const x = new Float32Array(n);
      const r = randn(7, n);
      for (let i = 0; i < n; i++) x[i] = i < special.length ? (special[i] as number) : (r[i] as number) * 10 ** (((i * 7) % 50) - 40);
      for (const below of [1e-20, 0, 1]) {
        const run = () => tf.tidy(() => flushToZero(tf.tensor(x, [n]), below).dataSync() as Float32Array);
        const w = await on('wasm', run);
        expect(tf.getKernel(FLUSH_KERNEL, 'wasm')).toBeDefined();
        const c = await on('cpu', run);
        const want = hostFlush(x, below);
        expect(bits(w)).toEqual(bits(want));
        expect(bits(c)).toEqual(bits(want));
      }
    });
  }

  it('keeps NaN and infinities, flushes subnormals and -0 to +0 below 1e-20, keeps 1e-20 itself', async () => {
    const y = await on('wasm', () => tf.tidy(() => flushToZero(tf.tensor(special), 1e-20).dataSync() as Float32Array));
    expect(Number.isNaN(y[9])).toBe(true);
    expect([y[10], y[11]]).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    expect(Object.is(y[1], 0) && Object.is(y[2], 0) && Object.is(y[3], 0) && Object.is(y[4], 0)).toBe(true);
    expect(y[6]).toBe(Math.fround(1e-20));
    expect(y[8]).toBe(Math.fround(-3e-20));
  });

  it('gradient: dy where kept, 0 where flushed, on both backends', async () => {
    const x = [1e-30, 0.5, -2e-25, 3, Number.NaN, -1];
    const dy = [1, 2, 3, 4, 5, 6];
    for (const backend of ['wasm', 'cpu'] as const) {
      const g = await on(backend, () =>
        tf.tidy(() =>
          tf
            .grad((a: tf.Tensor) => flushToZero(a, 1e-20).mul(tf.tensor(dy)).sum())(tf.tensor(x))
            .dataSync(),
        ),
      );
      expect(Array.from(g)).toEqual([0, 2, 0, 4, 5, 6]);
    }
  });

  it('bad input is refused with what was expected; no leak', async () => {
    await on('wasm', () => {
      const x = tf.tensor([1, 2, 3]);
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        flushToZero(x, 1e-20).dataSync();
        tf.grad((a: tf.Tensor) => flushToZero(a, 1).sum())(x).dataSync();
        expect(flushToZero(tf.zeros([0, 4]), 1).shape).toEqual([0, 4]);
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(() => flushToZero(x, -1)).toThrow(/below must be a finite number >= 0, got -1/);
      expect(() => flushToZero(x, Number.NaN)).toThrow(/below must be a finite number >= 0, got NaN/);
      expect(() => flushToZero(x, Number.POSITIVE_INFINITY)).toThrow(/got Infinity/);
      expect(() => flushToZero(x.toInt(), 1)).toThrow(/x must be float32, got int32/);
      x.dispose();
    });
  });
});
