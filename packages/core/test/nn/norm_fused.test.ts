/**
 * The one-call inference forwards of LayerNorm and RMSNorm (wasm kernels MmlmLayerNorm /
 * MmlmRmsNorm, used while no gradient tape records) against the composite formula the modules
 * train with: bit for bit on wasm over odd widths, with and without weight / bias, large and tiny
 * scales; the composite itself checked against a float64 evaluation; bad input to the kernels.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LAYER_NORM_KERNEL, RMS_NORM_KERNEL } from '../../src/backend/kernels/fused.js';
import { LayerNorm, RMSNorm, Rng, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { bits, tapedForward } from '../kernels/helpers.js';

afterAll(async () => useBackend('cpu'));

/** Rows of the float64 formula, for the composite's own accuracy. */
function f64(x: Float32Array, D: number, kind: 'ln' | 'rms', w: Float32Array | null, b: Float32Array | null, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    const row = Array.from(x.subarray(r * D, (r + 1) * D));
    const mean = kind === 'ln' ? row.reduce((a, v) => a + v, 0) / D : 0;
    const ms = row.reduce((a, v) => a + (v - mean) ** 2, 0) / D;
    row.forEach((v, i) => {
      out[r * D + i] = ((v - mean) / Math.sqrt(ms + eps)) * (w ? (w[i] as number) : 1) + (b ? (b[i] as number) : 0);
    });
  }
  return out;
}

describe('fused norm forwards (wasm)', () => {
  it('equal the taped composite bit for bit, and the composite is the formula to float32 rounding', async () => {
    await useBackend('wasm');
    expect(tf.getKernel(RMS_NORM_KERNEL, 'wasm')).toBeDefined();
    const rng = new Rng(3);
    const n0 = tf.memory().numTensors;
    for (const D of [1, 3, 7, 64, 129]) {
      for (const scale of [1e-3, 1, 300]) {
        const shape = [2, 5, D];
        const x = tf.tidy(() =>
          rng
            .randn(shape)
            .mul(scale)
            .add(rng.randn([D]).mul(scale)),
        );
        const mods: { m: LayerNorm | RMSNorm; kind: 'ln' | 'rms' }[] = [
          { m: new LayerNorm(D), kind: 'ln' },
          { m: new LayerNorm(D, { bias: false }), kind: 'ln' },
          { m: new LayerNorm(D, { elementwiseAffine: false, eps: 1e-3 }), kind: 'ln' },
          { m: new RMSNorm(D), kind: 'rms' },
          { m: new RMSNorm(D, { elementwiseAffine: false, eps: 1e-2 }), kind: 'rms' },
        ];
        for (const { m, kind } of mods) {
          // non-trivial weight and bias
          for (const p of m.parameters()) tf.tidy(() => p.assign(rng.randn(p.shape).add(1)));
          const fused = m.forward(x);
          const composite = tapedForward(m, x);
          expect(bits(fused), `${kind} D ${D} scale ${scale}`).toEqual(bits(composite));
          const w = m.weight ? (m.weight.dataSync() as Float32Array) : null;
          const b = m instanceof LayerNorm && m.bias ? (m.bias.dataSync() as Float32Array) : null;
          const ref = f64(x.dataSync() as Float32Array, D, kind, w, b, m.eps);
          const got = fused.dataSync();
          let maxRel = 0;
          ref.forEach((v, i) => {
            maxRel = Math.max(maxRel, Math.abs((got[i] as number) - v) / (Math.abs(v) + 1e-3));
          });
          expect(maxRel, `${kind} D ${D} scale ${scale}`).toBeLessThan(1e-4);
          fused.dispose();
          composite.dispose();
          m.dispose();
        }
        x.dispose();
      }
    }
    expect(tf.memory().numTensors).toBe(n0);
  });

  it('the kernels name bad input', async () => {
    await useBackend('wasm');
    const run = (k: string, inputs: tf.NamedTensorMap, eps = 1e-5) =>
      tf.tidy(() => tf.engine().runKernel(k, inputs, { eps } as unknown as tf.NamedAttrMap));
    const x = tf.ones([2, 4]);
    expect(() => run(RMS_NORM_KERNEL, { x, weight: tf.ones([3]) })).toThrow(
      /MmlmRmsNorm \(wasm\): expected float32 x \[\.\.\., D\] and weight \[D\] or none, got x float32 \[2,4\], weight float32 \[3\]/,
    );
    expect(() => run(RMS_NORM_KERNEL, { x: tf.ones([2, 4], 'int32') })).toThrow(/got x int32 \[2,4\]/);
    expect(() => run(RMS_NORM_KERNEL, { x, bias: tf.ones([4]) })).toThrow(/weight \[D\] or none/);
    expect(() => run(LAYER_NORM_KERNEL, { x, bias: tf.ones([4], 'int32') })).toThrow(/bias int32 \[4\]/);
    expect(() => run(LAYER_NORM_KERNEL, { x }, Number.NaN)).toThrow(/eps must be a finite number >= 0, got NaN/);
    x.dispose();
  });
});
