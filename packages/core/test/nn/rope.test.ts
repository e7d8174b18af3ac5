/**
 * RoPE's fused rotation (MmlmRope on wasm) against the composite x cos + rot(x) sin on cpu, for both
 * layouts: values and gradients bit for bit (each product is rounded to float32 before the sum in
 * both), a closed form, the inverse rotation, leaks and bad input.
 *
 * Closed form: position 1, headDim 2, base 10000: theta_0 = 1, so (1, 0) rotates to (cos 1, sin 1)
 * = (0.5403023059, 0.8414709848).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ROPE_KERNEL } from '../../src/backend/kernels/fused.js';
import { RotaryEmbedding, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, randn } from '../kernels/helpers.js';

afterAll(async () => useBackend('cpu'));

describe('RoPE (fused on wasm)', () => {
  it('rotates (1, 0) at position 1 by 1 radian on wasm and cpu', async () => {
    for (const b of ['wasm', 'cpu'] as const) {
      const y = await on(b, () =>
        tf.tidy(() =>
          Array.from(new RotaryEmbedding({ headDim: 2, style: 'interleaved' }).apply(tf.tensor4d([1, 0], [1, 1, 1, 2]), 1).dataSync()),
        ),
      );
      expect(y[0]).toBeCloseTo(0.5403023059, 6);
      expect(y[1]).toBeCloseTo(0.8414709848, 6);
    }
  });

  for (const style of ['interleaved', 'half'] as const)
    for (const d of [8, 6, 12, 32]) // half layout: f32x4 pairs only, a scalar tail only, both
      it(`${style}, d ${d}: values and gradients equal the cpu composite bit for bit, offsets included`, async () => {
        const [B, H, T] = [2, 3, 7];
        const x = randn(1, B * H * T * d);
        const dy = randn(2, B * H * T * d);
        const run = () =>
          tf.tidy(() => {
            const rope = new RotaryEmbedding({ headDim: d, style, freqs: 'linspace', base: 100 });
            const xt = tf.tensor4d(x, [B, H, T, d]);
            const w = tf.tensor4d(dy, [B, H, T, d]);
            const y = rope.apply(xt, 3);
            const g = tf.grad((u: tf.Tensor) => rope.apply(u, 3).mul(w).sum())(xt);
            return [Array.from(y.dataSync()), Array.from(g.dataSync())];
          });
        const fused = await on('wasm', run);
        expect(tf.getKernel(ROPE_KERNEL, 'wasm')).toBeDefined();
        const ref = await on('cpu', run);
        expect(fused[0]).toEqual(ref[0]);
        expect(fused[1]).toEqual(ref[1]);
      });

  it('the inverse rotation undoes the rotation; no tensors left behind; bad tables rejected', async () => {
    await useBackend('wasm');
    const rope = new RotaryEmbedding({ headDim: 4 });
    const x = tf.tensor4d(randn(3, 40), [1, 2, 5, 4]);
    const { cos, sin } = rope.tables(5);
    const before = tf.memory().numTensors;
    const back = tf.tidy(() => {
      const y = tf.engine().runKernel(ROPE_KERNEL, { x, cos, sin }, { interleaved: false, inverse: false }) as tf.Tensor;
      return Array.from(
        (tf.engine().runKernel(ROPE_KERNEL, { x: y, cos, sin }, { interleaved: false, inverse: true }) as tf.Tensor).dataSync(),
      );
    });
    expect(tf.memory().numTensors).toBe(before);
    const x0 = Array.from(x.dataSync());
    back.forEach((v, i) => expect(v).toBeCloseTo(x0[i]!, 5));
    tf.tidy(() => {
      tf.grad((u: tf.Tensor) => rope.apply(u).sum())(x);
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(() => tf.engine().runKernel(ROPE_KERNEL, { x, cos: tf.zeros([4, 4]), sin }, { interleaved: false, inverse: false })).toThrow(
      /cos, sin \[T, d\], got \[1,2,5,4\], \[4,4\], \[5,4\]/,
    );
    tf.dispose([x, cos, sin]);
  });
});
