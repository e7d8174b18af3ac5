/**
 * The fused GELU op (src/backend/kernels/fused.ts): the wasm kernels against the composite tanh-form
 * formula on cpu and against closed-form values, gradients against finite differences, and leaks.
 *
 * GELU_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) = 0.8411919906 (hand-computed); the derivative
 * at 0 is 0.5.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { geluTanh } from '../../src/backend/kernels/index.js';
import { tf } from '../../src/index.js';
import { checkGradients, useBackend } from '../../src/testing/index.js';
import { on, randn, relErr, take } from './helpers.js';

afterAll(async () => useBackend('cpu'));

describe('geluTanh (fused)', () => {
  it('matches closed-form values on wasm and cpu', async () => {
    for (const b of ['wasm', 'cpu'] as const) {
      const y = await on(b, () => take(geluTanh(tf.tensor1d([1, 0, -1, 30, -30])))[0] as Float32Array);
      expect(y[0]).toBeCloseTo(0.8411919906, 6);
      expect(y[1]).toBe(0);
      expect(y[2]).toBeCloseTo(0.8411919906 - 1, 6);
      expect(y[3]).toBe(30);
      expect(y[4]).toBe(-0);
    }
  });

  it('wasm kernels match the cpu composite in value and gradient (odd length)', async () => {
    const x = randn(1, 1037).map((v) => 3 * v);
    const dy = randn(2, 1037);
    const run = () =>
      tf.tidy(() => {
        const t = tf.tensor1d(x);
        const w = tf.tensor1d(dy);
        return [
          Float32Array.from(geluTanh(t).dataSync()),
          Float32Array.from(
            tf
              .grad((u: tf.Tensor) => geluTanh(u).mul(w).sum())(t)
              .dataSync(),
          ),
        ];
      });
    const w = await on('wasm', run);
    const c = await on('cpu', run);
    expect(relErr(w[0] as Float32Array, c[0] as Float32Array)).toBeLessThanOrEqual(1e-6);
    expect(relErr(w[1] as Float32Array, c[1] as Float32Array)).toBeLessThanOrEqual(1e-6);
    const g0 = await on('wasm', () => take(tf.grad((u: tf.Tensor) => geluTanh(u).sum())(tf.tensor1d([0])))[0] as Float32Array);
    expect(g0[0]).toBeCloseTo(0.5, 7);
  });

  it('gradient matches finite differences on wasm', async () => {
    await useBackend('wasm');
    const x = tf.tensor2d(Array.from(randn(3, 12)), [3, 4]);
    checkGradients(
      (xs) =>
        geluTanh(xs[0] as tf.Tensor)
          .square()
          .sum() as tf.Scalar,
      [x],
      { eps: 1e-2, rtol: 2e-2, atol: 1e-3 },
    );
    x.dispose();
  });

  it('leaves no tensors behind and rejects non-float32 input', async () => {
    await useBackend('wasm');
    const x = tf.randomNormal([5, 7], 0, 1, 'float32', 4);
    const before = tf.memory().numTensors;
    take(tf.grad((u: tf.Tensor) => geluTanh(u).sum())(x));
    take(geluTanh(x));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    const i = tf.tensor1d([1, 2], 'int32');
    expect(() => geluTanh(i)).toThrow(/geluTanh: x must be float32, got int32/);
    i.dispose();
  });
});
