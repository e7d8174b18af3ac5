/**
 * Global-norm gradient clipping's list kernels (MmlmSumSquaresN, MmlmScaleN; wasm_ops.ts) through
 * clipGradNorm: bit for bit against clipGradNorm's composite on wasm with core's other kernels (the
 * two list kernels unregistered for the comparison run), against a float64 closed form and the cpu
 * backend to float32 rounding, for odd sizes (SIMD lanes plus the scalar tail), a scalar, an empty
 * tensor and a single gradient; no leaks; bad inputs named.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SCALE_KERNEL, SUM_SQUARES_KERNEL } from '../../src/backend/kernels/fused.js';
import { clipGradNorm, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, randn, relErr, size } from './helpers.js';

afterAll(async () => useBackend('cpu'));

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** Host gradients: shapes with lanes and tails, a scalar, an empty tensor; scales spread over 1e-3 .. 10. */
function hostGrads(shapes: number[][]): { shape: number[]; data: Float32Array }[] {
  return shapes.map((shape, i) => ({ shape, data: randn(40 + i, size(shape)).map((x) => x * 10 ** ((i % 5) - 3)) }));
}

/** clipGradNorm on the current backend: the norm and the clipped gradients as host arrays, and tensors leaked. */
function clip(grads: { shape: number[]; data: Float32Array }[], maxNorm: number) {
  const before = tf.memory().numTensors;
  const m = new Map(grads.map((g, i) => [`p${i}`, tf.tensor(g.data, g.shape)]));
  const norm = clipGradNorm(m, maxNorm);
  const out = [...m.values()].map((t) => Float32Array.from(t.dataSync()));
  const shapes = [...m.values()].map((t) => t.shape);
  const total = Float32Array.from(norm.dataSync());
  tf.dispose([norm, ...m.values()]);
  return { total, out, shapes, leaked: tf.memory().numTensors - before };
}

/** Run fn on wasm with the two list kernels unregistered (clipGradNorm's composite, core's Sum). */
function withoutListKernels<T>(fn: () => T): T {
  const saved = [SUM_SQUARES_KERNEL, SCALE_KERNEL].map((k) => tf.getKernel(k, 'wasm'));
  for (const k of saved) if (k) tf.unregisterKernel(k.kernelName, 'wasm');
  try {
    expect(tf.getKernel(SUM_SQUARES_KERNEL, 'wasm')).toBeUndefined();
    return fn();
  } finally {
    for (const k of saved) if (k) tf.registerKernel(k);
  }
}

const CASES: [string, number[][]][] = [
  ['odd sizes, a scalar and an empty tensor', [[37, 5], [], [129], [16, 64], [0], [3]]],
  ['one gradient', [[1031]]],
  ['many small gradients', Array.from({ length: 70 }, (_, i) => [1 + (i % 9)])],
];

describe('clipGradNorm list kernels (wasm)', () => {
  for (const [name, shapes] of CASES)
    it(`equal the composite bit for bit and the float64 norm to rounding: ${name}`, async () => {
      await useBackend('wasm');
      expect(tf.getKernel(SUM_SQUARES_KERNEL, 'wasm')).toBeDefined();
      const g = hostGrads(shapes);
      let ref = 0;
      for (const { data } of g) for (const x of data) ref += x * x;
      ref = Math.sqrt(ref);
      for (const maxNorm of [ref / 7, ref * 2]) {
        const fused = clip(g, maxNorm);
        const composite = withoutListKernels(() => clip(g, maxNorm));
        const cpu = await on('cpu', () => clip(g, maxNorm));
        await useBackend('wasm');
        expect(fused.leaked).toBe(0);
        expect(fused.shapes).toEqual(shapes);
        expect(bits(fused.total)).toEqual(bits(composite.total));
        fused.out.forEach((a, i) => expect(bits(a)).toEqual(bits(composite.out[i]!)));
        expect(Math.abs(fused.total[0]! - ref) / ref).toBeLessThan(1e-6);
        expect(relErr(fused.total, cpu.total)).toBeLessThan(1e-6);
        // clipped to maxNorm when above it, untouched (coefficient 1) below
        const coef = Math.min(1, maxNorm / (ref + 1e-6));
        fused.out.forEach((a, i) => {
          const want = g[i]!.data.map((x) => x * coef);
          expect(relErr(a, want)).toBeLessThan(2e-6);
        });
        if (coef === 1) fused.out.forEach((a, i) => expect(bits(a)).toEqual(bits(g[i]!.data)));
      }
    });

  it('reject bad inputs naming them', async () => {
    await useBackend('wasm');
    const a = tf.zeros([3]);
    const ints = tf.zeros([3], 'int32');
    const c = tf.scalar(0.5);
    expect(() => tf.engine().runKernel(SUM_SQUARES_KERNEL, { x0: a, x1: ints }, { n: 2 })).toThrow(/input x1 must be float32, got int32/);
    expect(() => tf.engine().runKernel(SUM_SQUARES_KERNEL, { x0: a }, { n: 2 })).toThrow(/input x1 of 2 is missing/);
    expect(() => tf.engine().runKernel(SCALE_KERNEL, { x0: a }, { n: 1 })).toThrow(
      /coef must be a float32 tensor of one element, got none/,
    );
    expect(() => tf.engine().runKernel(SCALE_KERNEL, { coef: a, x0: a }, { n: 1 })).toThrow(/got float32 \[3\]/);
    expect(() => tf.engine().runKernel(SCALE_KERNEL, { coef: c, x0: a }, { n: -1 })).toThrow(/attr n must be an integer >= 0, got -1/);
    tf.dispose([a, ints, c]);
  });
});
