/**
 * core's dropout (src/backend/kernels/fused.ts): the counter-based mask against an independent
 * re-statement of MurmurHash3's fmix32 (BigInt arithmetic, not Math.imul), the wasm SIMD kernel
 * against the cpu composite (identical values, including the n mod 4 tail), the kept fraction and
 * scale, the gradient (the same mask applied to dy), bad input, and no leak.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { DROPOUT_KERNEL, dropoutHash, dropoutKey, dropoutMask } from '../../src/backend/kernels/fused.js';
import { dropout, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { fmix, on, randn } from './helpers.js';

afterAll(async () => useBackend('cpu'));

describe('dropout', () => {
  it('the hash is fmix32 of i * 0x9e3779b9 + key (mod 2^32), the key fmix32 of seed ^ 0x9e3779b9', () => {
    for (const seed of [0, 1, 12345, 2 ** 31 - 1]) {
      const key = fmix(BigInt(seed) ^ 0x9e3779b9n);
      expect(dropoutKey(seed)).toBe(Number(key));
      for (const i of [0, 1, 2, 3, 4, 1000, 2 ** 20 + 7])
        expect(dropoutHash(dropoutKey(seed), i)).toBe(Number(fmix(BigInt(i) * 0x9e3779b9n + key)));
    }
  });

  it('keeps 1 - rate of the elements, scaled by 1 / (1 - rate)', () => {
    for (const rate of [0.1, 0.5]) {
      const m = dropoutMask(200_000, rate, 7);
      const kept = m.filter((v) => v !== 0);
      // binomial standard error of the kept fraction: sqrt(p (1 - p) / n) < 0.0012
      expect(Math.abs(kept.length / m.length - (1 - rate))).toBeLessThan(0.005);
      expect(new Set(kept)).toEqual(new Set([Math.fround(1 / (1 - rate))]));
      // another seed gives another mask
      const m2 = dropoutMask(200_000, rate, 8);
      expect(m.some((v, i) => v !== m2[i])).toBe(true);
    }
  });

  for (const shape of [[4, 5, 8], [3, 7], [1]]) {
    it(`wasm kernel = cpu composite, values and gradient, x [${shape}]`, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = randn(3, n);
      const dyv = randn(4, n);
      const run = () =>
        tf.tidy(() => {
          const tx = tf.tensor(x, shape);
          const dy = tf.tensor(dyv, shape);
          const y = dropout(tx, 0.3, 99);
          const g = tf.grad((a: tf.Tensor) => dropout(a, 0.3, 99).mul(dy).sum())(tx);
          return [Array.from(y.dataSync()), Array.from(g.dataSync())];
        });
      const w = await on('wasm', run);
      expect(tf.getKernel(DROPOUT_KERNEL, 'wasm')).toBeDefined();
      const c = await on('cpu', run);
      expect(w).toEqual(c);
      // y = x * mask, dy/dx = dy * mask, with the host mask
      const m = dropoutMask(n, 0.3, 99);
      expect(c[0]).toEqual(Array.from(x, (v, i) => Math.fround(v * m[i]!)));
      expect(c[1]).toEqual(Array.from(dyv, (v, i) => Math.fround(v * m[i]!)));
    });
  }

  it('rate 0 is the identity; bad rate, seed and dtype are refused; no leak', async () => {
    await on('wasm', () => {
      const x = tf.tensor([1, 2, 3]);
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        expect(Array.from(dropout(x, 0, 1).dataSync())).toEqual([1, 2, 3]);
        tf.grad((a: tf.Tensor) => dropout(a, 0.5, 3).sum())(x).dataSync();
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(() => dropout(x, 1, 1)).toThrow('dropout: rate must be in [0, 1), got 1');
      expect(() => dropout(x, -0.1, 1)).toThrow(/rate must be in \[0, 1\)/);
      expect(() => dropout(x, 0.1, 1.5)).toThrow('dropout: seed must be an integer, got 1.5');
      expect(() => dropout(tf.tensor([1], [1], 'int32'), 0.1, 1)).toThrow('dropout: x must be float32, got int32');
      x.dispose();
    });
  });
});
