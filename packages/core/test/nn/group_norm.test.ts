/**
 * GroupNorm over NHWC (src/nn/group_norm.ts): the fused wasm kernels against the composite formula
 * on cpu (values and the gradients of x, weight and bias), a hand-computed case, finite
 * differences, leaks and bad input.
 *
 * Hand-computed: one sample, one pixel, C = 4 in G = 1 group, x = [1, 2, 3, 4]: mean 2.5, biased
 * variance 1.25, so y = (x - 2.5) / sqrt(1.25 + 1e-6) = [-1.3416402, -0.4472134, 0.4472134, 1.3416402].
 */
import { afterAll, describe, expect, it } from 'vitest';
import { GROUP_NORM_GRAD_KERNEL, GROUP_NORM_KERNEL } from '../../src/backend/kernels/fused.js';
import { GroupNorm, groupNorm, tf } from '../../src/index.js';
import { checkGradients, useBackend } from '../../src/testing/index.js';
import { on, randn, relErr } from '../kernels/helpers.js';

afterAll(async () => useBackend('cpu'));

describe('groupNorm', () => {
  it('matches the hand-computed case on wasm and cpu, with weight and bias', async () => {
    for (const b of ['wasm', 'cpu'] as const) {
      const y = await on(b, () =>
        tf.tidy(() =>
          Array.from(
            groupNorm(tf.tensor4d([1, 2, 3, 4], [1, 1, 1, 4]), tf.tensor1d([1, 1, 2, 1]), tf.tensor1d([0, 0, 0, 10]), 1).dataSync(),
          ),
        ),
      );
      const s = Math.sqrt(1.25 + 1e-6);
      [-1.5 / s, -0.5 / s, (2 * 0.5) / s, 1.5 / s + 10].forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
    }
  });

  for (const [B, H, W, C, G] of [
    [2, 3, 5, 8, 4],
    [3, 4, 4, 6, 1],
    [1, 2, 3, 6, 6],
    [2, 8, 8, 16, 8],
    [2, 5, 3, 32, 8],
  ] as const) {
    it(`fused wasm matches the cpu composite: x [${B}, ${H}, ${W}, ${C}], ${G} groups, values and gradients`, async () => {
      const n = B * H * W * C;
      // an offset of 40 against a spread of about 3: a formula that cancels x a - mean a would lose digits
      const x = randn(1 + C, n).map((v, i) => 3 * v + (i % 7) + (C === 32 ? 40 : -2));
      const w = randn(2 + C, C);
      const bias = randn(3 + C, C);
      const dy = randn(4 + C, n);
      const run = () =>
        tf.tidy(() => {
          const xt = tf.tensor4d(x, [B, H, W, C]);
          const wt = tf.tensor1d(w);
          const bt = tf.tensor1d(bias);
          const dyt = tf.tensor4d(dy, [B, H, W, C]);
          const y = groupNorm(xt, wt, bt, G);
          const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => groupNorm(a, b, c, G).mul(dyt).sum())([xt, wt, bt]);
          return [y, ...grads].map((t) => Float32Array.from(t.dataSync()));
        });
      const fused = await on('wasm', run);
      expect(tf.getKernel(GROUP_NORM_KERNEL, 'wasm') && tf.getKernel(GROUP_NORM_GRAD_KERNEL, 'wasm')).toBeDefined();
      const ref = await on('cpu', run);
      expect(fused.map((a) => a.length)).toEqual([n, n, C, C]);
      for (let i = 0; i < 4; i++) expect(relErr(fused[i]!, ref[i]!)).toBeLessThanOrEqual(2e-5);
    });
  }

  it('gradients match finite differences on wasm', async () => {
    await useBackend('wasm');
    const x = tf.tensor4d(randn(9, 2 * 2 * 3 * 4), [2, 2, 3, 4]);
    const w = tf.tensor1d([0.5, -1, 2, 1.5]);
    const b = tf.tensor1d([0.1, 0.2, -0.3, 0]);
    const probe = tf.tensor4d(randn(10, 48), [2, 2, 3, 4]);
    checkGradients(([a, c, d]) => groupNorm(a!, c!, d!, 2).mul(probe).sum() as tf.Scalar, [x, w, b], { eps: 1e-2, rtol: 2e-2, atol: 2e-3 });
    tf.dispose([x, w, b, probe]);
  });

  it('the module trains without leaking tensors', async () => {
    await useBackend('wasm');
    const gn = new GroupNorm(2, 4);
    const x = tf.randomNormal([2, 3, 3, 4], 0, 1, 'float32', 1);
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => gn.forward(x).square().mean() as tf.Scalar, [gn.weight, gn.bias]);
        return Object.values(grads).map((g) => g.dataSync()[0]);
      });
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    gn.dispose();
  });

  it('bad input names what is wrong, the expected and the actual', async () => {
    await useBackend('wasm');
    const x = tf.zeros([1, 2, 2, 6]);
    const w = tf.ones([6]);
    expect(() => groupNorm(x, w, w, 4)).toThrow(/channels \(6\) must be divisible by numGroups \(4\)/);
    expect(() => groupNorm(x.reshape([4, 6]), w, w, 2)).toThrow(/x must be NHWC \[B, H, W, C\], got shape \[4,6\]/);
    expect(() => groupNorm(x, tf.ones([5]), w, 2)).toThrow(/weight must have shape \[6\], got \[5\]/);
    expect(() => groupNorm(x, w, w, 2, 0)).toThrow(/eps must be a finite number > 0, got 0/);
    expect(() => new GroupNorm(4, 6)).toThrow(/numChannels \(6\) must be divisible by numGroups \(4\)/);
    expect(() => new GroupNorm(2, 6).forward(tf.zeros([1, 2, 2, 4]))).toThrow(/input must be NHWC \[B, H, W, 6\], got shape \[1,2,2,4\]/);
    tf.dispose([x, w]);
  });
});
