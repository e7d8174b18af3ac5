/**
 * The convolutional layers: the 'same' convolution kernel (forward and both gradients) against
 * tf.conv2d and its stock gradients on cpu and wasm, 1x1 convolutions as matmuls, nearest x2
 * upsampling by hand, GroupNorm against a float64 computation, and Downsample's (0, 1, 0, 1) padding.
 */
import { Rng, tf } from '@mmlm/core';
import { checkGradients, TEST_BACKENDS, useBackend } from '@mmlm/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { Conv2d, conv2dSame, Downsample, GroupNorm, groupsFor, upsampleNearest2x } from '../src/index.js';

afterAll(async () => {
  await useBackend('cpu');
});

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(a.sub(b))).dataSync()[0] as number);
}

describe.each(TEST_BACKENDS)('conv2dSame on %s', (backend) => {
  it('matches tf.conv2d(same) and its gradients for k = 3 and k = 5', async () => {
    await useBackend(backend);
    for (const k of [3, 5]) {
      const rng = new Rng(k);
      const x = rng.randn([2, 6, 5, 3]) as tf.Tensor4D;
      const w = rng.randn([k, k, 3, 4], 0, 0.3) as tf.Tensor4D;
      const before = tf.memory().numTensors;
      const ours = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        conv2dSame(a as tf.Tensor4D, b as tf.Tensor4D)
          .square()
          .sum(),
      );
      const ref = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf
          .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')
          .square()
          .sum(),
      );
      const y1 = conv2dSame(x, w);
      const y2 = tf.conv2d(x, w, 1, 'same');
      expect(maxDiff(y1, y2)).toBeLessThan(1e-4);
      const [g1x, g1w] = ours([x, w]);
      const [g2x, g2w] = ref([x, w]);
      expect(maxDiff(g1x!, g2x!)).toBeLessThan(1e-3);
      expect(maxDiff(g1w!, g2w!)).toBeLessThan(1e-3);
      for (const t of [y1, y2, g1x!, g1w!, g2x!, g2w!]) t.dispose();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      w.dispose();
    }
  });

  it('conv2dSame and the Conv2d module (1x1, 3x3) pass finite-difference gradient checks', async () => {
    await useBackend(backend);
    const x = new Rng(9).randn([1, 4, 4, 2]);
    const w = new Rng(8).randn([3, 3, 2, 3], 0, 0.5);
    checkGradients(
      (xs) =>
        conv2dSame(xs[0] as tf.Tensor4D, xs[1] as tf.Tensor4D)
          .square()
          .sum() as tf.Scalar,
      [x, w],
      {
        rtol: 2e-2,
        atol: 2e-3,
      },
    );
    for (const k of [1, 3]) {
      const conv = new Conv2d(2, 3, k, { rng: new Rng(k) });
      checkGradients((xs) => conv.forward(xs[0]!).square().sum() as tf.Scalar, [x], { rtol: 2e-2, atol: 2e-3 });
      conv.dispose();
    }
    x.dispose();
    w.dispose();
  });
});

describe('layers', () => {
  it('GroupNorm groups: taming 32 at width >= 128, at least 4 channels per group below', () => {
    expect([4, 8, 12, 16, 32, 64, 128, 256, 512].map((c) => groupsFor(c))).toEqual([1, 2, 3, 4, 8, 16, 32, 32, 32]);
  });

  it('nearest x2 upsampling copies each pixel to a 2x2 block', async () => {
    await useBackend('cpu');
    const x = tf.tensor4d([1, 10, 2, 20, 3, 30, 4, 40], [1, 2, 2, 2]);
    const y = upsampleNearest2x(x);
    expect(y.shape).toEqual([1, 4, 4, 2]);
    const ch0 = (y.arraySync() as number[][][][])[0]!.map((r) => r.map((p) => p[0]));
    expect(ch0).toEqual([
      [1, 1, 2, 2],
      [1, 1, 2, 2],
      [3, 3, 4, 4],
      [3, 3, 4, 4],
    ]);
    x.dispose();
    y.dispose();
  });

  it('GroupNorm normalises each group of channels over H, W (float64 reference)', async () => {
    await useBackend('cpu');
    const gn = new GroupNorm(2, 4, 1e-6);
    const x = new Rng(4).randn([2, 3, 3, 4], 1, 2);
    const y = gn.forward(x).arraySync() as number[][][][];
    const xs = x.arraySync() as number[][][][];
    for (let b = 0; b < 2; b++)
      for (let g = 0; g < 2; g++) {
        const vals: number[] = [];
        for (const row of xs[b]!) for (const px of row) vals.push(px[2 * g]!, px[2 * g + 1]!);
        const mean = vals.reduce((a, v) => a + v, 0) / vals.length;
        const variance = vals.reduce((a, v) => a + (v - mean) ** 2, 0) / vals.length;
        const h = 1,
          w = 2,
          c = 2 * g + 1;
        expect(y[b]![h]![w]![c]).toBeCloseTo((xs[b]![h]![w]![c]! - mean) / Math.sqrt(variance + 1e-6), 4);
      }
    expect(() => new GroupNorm(3, 4)).toThrow('numChannels (4) must be divisible by numGroups (3)');
    x.dispose();
    gn.dispose();
  });

  it('Downsample pads (0, 1, 0, 1) then convolves at stride 2 (taming)', async () => {
    await useBackend('cpu');
    const d = new Downsample(2, new Rng(1));
    const x = new Rng(2).randn([1, 4, 4, 2]) as tf.Tensor4D;
    const y = d.forward(x);
    expect(y.shape).toEqual([1, 2, 2, 2]);
    const ref = tf.tidy(() =>
      tf
        .conv2d(
          tf.pad(x, [
            [0, 0],
            [0, 1],
            [0, 1],
            [0, 0],
          ]),
          d.conv.weight as tf.Tensor4D,
          2,
          'valid',
        )
        .add(d.conv.bias!),
    );
    expect(maxDiff(y, ref)).toBeLessThan(1e-6);
    const odd = tf.zeros([1, 3, 4, 2]);
    expect(() => d.forward(odd)).toThrow('input must be NHWC with even H and W, got shape [1,3,4,2]');
    [x, y, ref, odd].forEach((t) => t.dispose());
  });
});
