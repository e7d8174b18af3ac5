/**
 * simd_norm.ts: the WebAssembly SIMD GroupNorm passes are bit-identical to the float64 JavaScript
 * kernels they replace (wasm_ops.ts's groupNormForward / groupNormBackward, run here on a plain
 * Float32Array standing in for the heap), forward and backward, at the widths the conv tokenizers
 * use and at odd ones. Values against the cpu composite and finite differences are in
 * test/nn/group_norm.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { GROUP_NORM_GRAD_KERNEL, GROUP_NORM_KERNEL } from '../../src/backend/kernels/fused.js';
import { GroupNormSimd } from '../../src/backend/kernels/simd_norm.js';
import { groupNormBackward, groupNormForward } from '../../src/backend/kernels/wasm_ops.js';
import { tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { randn } from './helpers.js';

afterAll(async () => useBackend('cpu'));

/** Lay out arrays one after another in one Float32Array; returns it and each one's offset (floats). */
function heapOf(parts: Record<string, Float32Array | number>): { h: Float32Array; at: Record<string, number> } {
  const at: Record<string, number> = {};
  let n = 0;
  for (const [k, v] of Object.entries(parts)) {
    at[k] = n;
    n += typeof v === 'number' ? v : v.length;
  }
  const h = new Float32Array(n);
  for (const [k, v] of Object.entries(parts)) if (typeof v !== 'number') h.set(v, at[k]);
  return { h, at };
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('GroupNorm SIMD passes', () => {
  it('takes widths that are multiples of 4 only', () => {
    expect([4, 8, 32, 128].map(GroupNormSimd.supports)).toEqual([true, true, true, true]);
    expect([0, 2, 6, 30].map(GroupNormSimd.supports)).toEqual([false, false, false, false]);
  });

  for (const [B, HW, C, G, shift] of [
    [2, 16, 4, 1, 0],
    [3, 9, 8, 2, 40],
    [2, 64, 16, 4, -3],
    [4, 100, 32, 8, 40],
    [1, 1, 32, 8, 0],
    [2, 7, 128, 32, 5],
    [2, 5, 6, 3, 1], // not a multiple of 4: the JavaScript path on both sides
  ] as const) {
    it(`forward and backward equal the float64 JavaScript kernels bit for bit: B ${B}, HW ${HW}, C ${C}, G ${G}, offset ${shift}`, async () => {
      await useBackend('wasm');
      const n = B * HW * C;
      // an offset against a spread of about 3 (a cancelling formula would show here)
      const x = randn(11 + C, n).map((v, i) => 3 * v + (i % 5) + shift);
      const w = randn(12 + C, C);
      const bias = randn(13 + C, C);
      const dy = randn(14 + C, n);
      const eps = 1e-6;

      const [y, mean, rstd, dx, dw, db] = tf.tidy(() => {
        const xt = tf.tensor4d(x, [B, HW, 1, C]);
        const wt = tf.tensor1d(w);
        const bt = tf.tensor1d(bias);
        const fwd = tf.engine().runKernel(GROUP_NORM_KERNEL, { x: xt, weight: wt, bias: bt }, { numGroups: G, eps }) as tf.Tensor[];
        const bwd = tf.engine().runKernel(
          GROUP_NORM_GRAD_KERNEL,
          { dy: tf.tensor4d(dy, [B, HW, 1, C]), x: xt, weight: wt, mean: fwd[1]!, rstd: fwd[2]! },
          {
            numGroups: G,
          },
        ) as tf.Tensor[];
        return [...fwd, ...bwd].map((t) => Float32Array.from(t.dataSync()));
      });

      const f = heapOf({ x, w, b: bias, y: n, mean: B * G, rstd: B * G });
      groupNormForward(f.h, { x: f.at.x!, w: f.at.w!, b: f.at.b!, y: f.at.y!, mean: f.at.mean!, rstd: f.at.rstd! }, B, HW, C, G, eps);
      const slice = (h: Float32Array, at: number, len: number) => h.slice(at, at + len);
      expect(bits(y!)).toEqual(bits(slice(f.h, f.at.y!, n)));
      expect(bits(mean!)).toEqual(bits(slice(f.h, f.at.mean!, B * G)));
      expect(bits(rstd!)).toEqual(bits(slice(f.h, f.at.rstd!, B * G)));

      const g = heapOf({ dy, x, w, mean: slice(f.h, f.at.mean!, B * G), rstd: slice(f.h, f.at.rstd!, B * G), dx: n, dw: C, db: C });
      groupNormBackward(
        g.h,
        { dy: g.at.dy!, x: g.at.x!, w: g.at.w!, mean: g.at.mean!, rstd: g.at.rstd!, dx: g.at.dx!, dw: g.at.dw!, db: g.at.db! },
        B,
        HW,
        C,
        G,
      );
      expect(bits(dx!)).toEqual(bits(slice(g.h, g.at.dx!, n)));
      expect(bits(dw!)).toEqual(bits(slice(g.h, g.at.dw!, C)));
      expect(bits(db!)).toEqual(bits(slice(g.h, g.at.db!, C)));
      // and the outputs are not trivially equal (a kernel that wrote nothing would fail above only if the reference were non-zero)
      expect(y!.some((v) => v !== 0) && dx!.some((v) => v !== 0)).toBe(true);
    });
  }

  it('keeps working after the heap grows between calls (scratch and views retaken)', async () => {
    await useBackend('wasm');
    const run = (C: number) =>
      tf.tidy(() => {
        const x = tf.tensor4d(randn(C, 2 * 9 * C), [2, 3, 3, C]);
        const [y] = tf
          .engine()
          .runKernel(GROUP_NORM_KERNEL, { x, weight: tf.ones([C]), bias: tf.zeros([C]) }, { numGroups: 4, eps: 1e-6 }) as tf.Tensor[];
        return Float32Array.from(y!.dataSync());
      });
    const before = run(8);
    const big = tf.zeros([(64 * 1024 * 1024) / 4]); // 64 MB: forces the wasm heap to grow
    const wide = run(64); // a wider C than before: the scratch is reallocated after growth
    big.dispose();
    expect(bits(run(8))).toEqual(bits(before));
    expect(wide.every(Number.isFinite)).toBe(true);
  });
});
