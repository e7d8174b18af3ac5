/**
 * SwiGLU's gate product silu(a) * b as one kernel each way on wasm (MmlmSwiGlu / MmlmSwiGluGrad):
 * the value and the gradients of a and b bit for bit tfjs's autodiff of the composite silu(a).mul(b)
 * on the same backend (lengths with and without a tail of four, large |a|), the SwiGLU module's
 * output and parameter gradients bit for bit a module on the composite, the gradients against
 * float64 finite differences, one kernel each way, the composite under nested tapes and on cpu, bad
 * input named, no leak.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SWIGLU_GRAD_KERNEL, SWIGLU_KERNEL } from '../../src/backend/kernels/fused.js';
import { nativeBlasInfo, setNativeBlasEnabled } from '../../src/backend/kernels/index.js';
import { Rng, SwiGLU, silu, swiglu, tf, valueAndGrads } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { bits, kernelsOf } from '../kernels/helpers.js';

afterAll(async () => {
  setNativeBlasEnabled(true);
  await useBackend('cpu');
});

// the SIMD kernels; with the optional addon built, also its path (the composite's kernels in one call)
const PATHS = ['simd', ...(nativeBlasInfo().available ? ['addon'] : [])];

/** y = f(a, b) and the gradients of sum(y dy) with respect to a and b. */
function yAndGrads(a: tf.Tensor, b: tf.Tensor, dy: tf.Tensor, f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): tf.Tensor[] {
  let y: tf.Tensor | undefined;
  const g = tf.grads((x: tf.Tensor, z: tf.Tensor) => {
    y = tf.keep(f(x, z));
    return y.mul(dy).sum();
  });
  const grads = g([a, b]); // before reading y: the closure sets it
  return [y!, ...grads];
}

describe('swiglu (wasm kernels)', () => {
  for (const path of PATHS)
    it(`gives the composite autodiff bits on the ${path} path: y, da, db`, async () => {
      await useBackend('wasm');
      setNativeBlasEnabled(path === 'addon');
      const rng = new Rng(5);
      const n0 = tf.memory().numTensors;
      for (const shape of [[7], [3, 8], [2, 5, 13], [16, 320]]) {
        for (const scale of [1, 12]) {
          const a = tf.tidy(() => rng.randn(shape).mul(scale));
          const b = rng.randn(shape);
          const dy = rng.randn(shape);
          const fused = yAndGrads(a, b, dy, swiglu);
          const ref = yAndGrads(a, b, dy, (x, z) => silu(x).mul(z));
          fused.forEach((t, i) => expect(bits(t), `[${shape}] x${scale} output ${i}`).toEqual(bits(ref[i]!)));
          const inf = swiglu(a, b); // no tape: the forward alone
          expect(bits(inf)).toEqual(bits(ref[0]!));
          tf.dispose([...fused, ...ref, inf, a, b, dy]);
        }
      }
      expect(tf.memory().numTensors).toBe(n0);
    });

  it('runs as one kernel each way; the SwiGLU module trains to the same bits as on the composite', async () => {
    await useBackend('wasm');
    setNativeBlasEnabled(false);
    const a = tf.randomNormal([4, 6], 0, 1, 'float32', 1);
    const seen = kernelsOf(() => {
      const g = tf.grads((x: tf.Tensor, z: tf.Tensor) => swiglu(x, z).sum());
      tf.dispose(g([a, a.add(1)]));
    });
    expect(seen.has(SWIGLU_KERNEL) && seen.has(SWIGLU_GRAD_KERNEL)).toBe(true);
    expect(seen.has('MmlmSilu') || seen.has('MmlmSiluGrad')).toBe(false);
    a.dispose();
    // the module: fc2(swiglu(fc1 x, gate x)) against the same weights through the composite
    const m = new SwiGLU(8, 24, { rng: new Rng(3) });
    const x = new Rng(4).randn([2, 5, 8]);
    const run = (useFused: boolean) => {
      const { loss, grads } = valueAndGrads(
        m,
        () => (useFused ? m.forward(x) : m.fc2.forward(silu(m.fc1.forward(x)).mul(m.gate.forward(x)))).square().mean() as tf.Scalar,
      );
      const out = [loss, ...[...grads.keys()].sort().map((k) => grads.get(k)!)];
      return out;
    };
    const f = run(true);
    const r = run(false);
    f.forEach((t, i) => expect(bits(t), `module output ${i}`).toEqual(bits(r[i]!)));
    tf.dispose([...f, ...r, x]);
    m.dispose();
  });

  it('gradients match float64 central differences', async () => {
    await useBackend('wasm');
    setNativeBlasEnabled(false);
    const a0 = [-3.1, -0.7, 0.2, 1.4, 2.9];
    const b0 = [0.5, -1.2, 2.0, 0.3, -0.8];
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const loss = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * sig(v) * b[i]! * (i + 1), 0);
    const w = tf.tensor1d([1, 2, 3, 4, 5]);
    const [, ga, gb] = yAndGrads(tf.tensor1d(a0), tf.tensor1d(b0), w, swiglu);
    const h = 1e-6;
    const fd = (f: (d: number) => number) => (f(h) - f(-h)) / (2 * h);
    const bump = (v: number[], i: number, d: number) => v.map((x, j) => (j === i ? x + d : x));
    a0.forEach((_, i) => {
      expect(Math.abs(ga!.dataSync()[i]! - fd((d) => loss(bump(a0, i, d), b0)))).toBeLessThan(1e-4);
      expect(Math.abs(gb!.dataSync()[i]! - fd((d) => loss(a0, bump(b0, i, d))))).toBeLessThan(1e-4);
    });
    tf.dispose([w, ga!, gb!]);
  });

  it('takes the composite under nested tapes, on cpu and for broadcast shapes; names bad input', async () => {
    await useBackend('wasm');
    // second order: d/da of d/da sum(swiglu(a, b))
    const a = tf.tensor1d([0.3, -1.1, 2.2]);
    const b = tf.tensor1d([1.5, 0.5, -2]);
    const g2 = tf.grad((x: tf.Tensor) =>
      tf
        .grad((z: tf.Tensor) => swiglu(z, b).sum())(x)
        .sum(),
    )(a);
    const r2 = tf.grad((x: tf.Tensor) =>
      tf
        .grad((z: tf.Tensor) => silu(z).mul(b).sum())(x)
        .sum(),
    )(a);
    expect(bits(g2)).toEqual(bits(r2));
    const bc = swiglu(tf.ones([2, 3]), b); // [2, 3] * [3]: the composite broadcasts
    expect(bc.shape).toEqual([2, 3]);
    expect(() => swiglu(a.toInt(), b)).toThrow(/swiglu: a and b must be float32, got int32 and float32/);
    expect(() => tf.engine().runKernel(SWIGLU_KERNEL, { a, b: tf.ones([2]) })).toThrow(
      /MmlmSwiGlu \(wasm\): expected float32 a and b of one shape, got float32 \[3\] and float32 \[2\]/,
    );
    expect(() => tf.engine().runKernel(SWIGLU_GRAD_KERNEL, { dy: tf.ones([2]), a, b })).toThrow(
      /MmlmSwiGluGrad \(wasm\): .*dy float32 \[2\]/,
    );
    tf.dispose([a, b, g2, r2, bc]);
    await useBackend('cpu');
    const c = swiglu(tf.tensor1d([1, -1]), tf.tensor1d([2, 3]));
    const ref = silu(tf.tensor1d([1, -1])).mul(tf.tensor1d([2, 3]));
    expect(Array.from(c.dataSync())).toEqual(Array.from(ref.dataSync()));
  });
});
