/**
 * Linear's training path on wasm (one _FusedMatMul forward, one MmlmLinearGrad backward while a
 * gradient tape records): output and every gradient (x, weight, bias) bit for bit equal to tfjs's
 * autodiff of the composite (linearComposite: reshape, matMul, add, reshape) on the same backend and
 * GEMM, alone and inside a block where x feeds other ops too, for inputs of rank 2-4, with and without
 * bias, on each GEMM (WebAssembly SIMD on one thread, split over a worker for every matmul, the
 * native addon when built); a weight computed from other tensors (MaskLLM's W * M) gets its gradient
 * through; a frozen weight keeps the composite; gradients against float64 finite differences; no
 * leak; bad input to the kernel.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LINEAR_GRAD_KERNEL } from '../../src/backend/kernels/fused.js';
import { nativeBlasInfo, setNativeBlasEnabled, setWasmGemmThreads } from '../../src/backend/kernels/index.js';
import { Linear, linearComposite, Rng, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { bits, kernelsOf } from '../kernels/helpers.js';

afterAll(async () => {
  setNativeBlasEnabled(true);
  setWasmGemmThreads(1, 1 << 26);
  await useBackend('cpu');
});

/** The output and the gradients of sum(f(x) dy) with respect to x and every parameter of m. */
function yAndGrads(m: Linear, x: tf.Variable, dy: tf.Tensor, f: (a: tf.Tensor) => tf.Tensor): tf.Tensor[] {
  let y: tf.Tensor | undefined;
  const vars = [x, ...m.parameters()] as tf.Variable[];
  const { value, grads } = tf.variableGrads(() => {
    y = tf.keep(f(x));
    return y.mul(dy).sum() as tf.Scalar;
  }, vars);
  value.dispose();
  return [y!, ...vars.map((v) => grads[v.name]!)];
}

const GEMMS = ['simd', 'simd-2-threads', ...(nativeBlasInfo().available ? ['native'] : [])];

describe('Linear training kernels (wasm)', () => {
  for (const gemm of GEMMS)
    it(`give the composite autodiff bits on the ${gemm} GEMM: y, dx, dweight, dbias`, async () => {
      await useBackend('wasm');
      setNativeBlasEnabled(gemm === 'native');
      setWasmGemmThreads(gemm === 'simd-2-threads' ? 2 : 1, gemm === 'simd-2-threads' ? 0 : 1 << 26);
      const rng = new Rng(21);
      const n0 = tf.memory().numTensors;
      // the kernels' own temporaries (scores, ve, the Pow output) are freed too: the backend's buffers stay level
      const ids0 = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
      let cases = 0;
      for (const [xShape, out] of [
        [[5, 7], 3],
        [[2, 9, 16], 24],
        [[2, 3, 4, 12], 5],
        [[64, 130], 260],
      ] as [number[], number][]) {
        const inF = xShape[xShape.length - 1] as number;
        for (const bias of [true, false]) {
          const m = new Linear(inF, out, { bias, rng });
          const x0 = rng.randn(xShape);
          const x = tf.variable(x0);
          x0.dispose();
          const dy = rng.randn([...xShape.slice(0, -1), out]);
          for (const inBlock of [false, true]) {
            const block = (lin: (a: tf.Tensor) => tf.Tensor) => (a: tf.Tensor) => {
              if (!inBlock) return lin(a);
              const before = a.square().sum(-1, true); // [..., 1]
              return lin(a.mul(0.5)).add(lin(a)).add(before);
            };
            const fused = yAndGrads(
              m,
              x,
              dy,
              block((a) => m.forward(a)),
            );
            const ref = yAndGrads(
              m,
              x,
              dy,
              block((a) => linearComposite(a, m.weight, m.bias)),
            );
            const what = `${gemm} x [${xShape}] out ${out} bias ${bias} in block ${inBlock}`;
            expect(fused.length, what).toBe(ref.length);
            fused.forEach((t, i) => {
              expect(t.shape, `${what} output ${i}`).toEqual(ref[i]!.shape);
              expect(bits(t), `${what} output ${i}`).toEqual(bits(ref[i]!));
            });
            tf.dispose([...fused, ...ref]);
            cases++;
          }
          tf.dispose([x, dy]);
          m.dispose();
        }
      }
      expect(cases).toBe(16);
      expect(tf.memory().numTensors).toBe(n0);
      expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(ids0);
    });

  it('run as MmlmLinearGrad while training; a frozen weight keeps the composite; a computed weight gets its gradient', async () => {
    await useBackend('wasm');
    const m = new Linear(8, 4);
    const x = tf.variable(tf.randomNormal([3, 8], 0, 1, 'float32', 1));
    const train = (f: () => tf.Tensor, vars: tf.Variable[]) =>
      kernelsOf(() => {
        const { value, grads } = tf.variableGrads(() => f().square().sum() as tf.Scalar, vars);
        tf.dispose([value, ...Object.values(grads)]);
      });
    expect(train(() => m.forward(x), [x, m.weight, m.bias!]).has(LINEAR_GRAD_KERNEL)).toBe(true);
    m.weight.trainable = false;
    const frozen = train(() => m.forward(x), [x, m.bias!]);
    expect(frozen.has(LINEAR_GRAD_KERNEL)).toBe(false);
    expect(frozen.has('BatchMatMul')).toBe(true);
    m.weight.trainable = true;
    // W = V * mask (MaskLLM's MaskedLinear): the gradient reaches V through the fused backward
    class Masked extends Linear {
      readonly v = this.param('v', tf.randomNormal([4, 8], 0, 1, 'float32', 2));
      override effectiveWeight(): tf.Tensor {
        return tf.tidy(() => this.v.mul(tf.tensor2d([1, 0, 1, 0, 0, 1, 0, 1], [1, 8])));
      }
    }
    const mm = new Masked(8, 4);
    const gradOfV = (f: () => tf.Tensor) => {
      const { value, grads } = tf.variableGrads(() => f().square().sum() as tf.Scalar, [mm.v]);
      value.dispose();
      return grads[mm.v.name]!;
    };
    const gFused = gradOfV(() => mm.forward(x));
    const gRef = gradOfV(() => linearComposite(x, mm.effectiveWeight(), mm.bias));
    expect(bits(gFused)).toEqual(bits(gRef));
    expect(Array.from(gFused.dataSync()).filter((v, i) => i % 8 === 1 && v !== 0)).toEqual([]); // masked inputs get 0
    tf.dispose([gFused, gRef, x]);
    m.dispose();
    mm.dispose();
  });

  it('gradients match float64 central differences', async () => {
    await useBackend('wasm');
    const rng = new Rng(4);
    const m = new Linear(5, 3, { rng });
    const x0 = Array.from(rng.randn([2, 2, 5]).dataSync());
    const dy = Array.from(rng.randn([2, 2, 3]).dataSync());
    const W = Array.from(m.weight.dataSync());
    const b = Array.from(m.bias!.dataSync());
    const loss = (xs: number[], ws: number[], bs: number[]) => {
      let s = 0;
      for (let r = 0; r < 4; r++)
        for (let o = 0; o < 3; o++) {
          let y = bs[o]!;
          for (let i = 0; i < 5; i++) y += xs[r * 5 + i]! * ws[o * 5 + i]!;
          s += y * dy[r * 3 + o]!;
        }
      return s;
    };
    const x = tf.variable(tf.tensor3d(x0, [2, 2, 5]));
    const dyT = tf.tensor3d(dy, [2, 2, 3]);
    const [, gx, gw, gb] = yAndGrads(m, x, dyT, (a) => m.forward(a));
    const h = 1e-6;
    const fd = (f: (d: number) => number) => (f(h) - f(-h)) / (2 * h);
    const bump = (a: number[], i: number, d: number) => a.map((v, j) => (j === i ? v + d : v));
    const close = (got: ArrayLike<number>, want: number[]) =>
      want.forEach((v, i) => {
        expect(Math.abs((got[i] as number) - v)).toBeLessThan(1e-4 * (1 + Math.abs(v)));
      });
    close(
      gx!.dataSync(),
      x0.map((_, i) => fd((d) => loss(bump(x0, i, d), W, b))),
    );
    close(
      gw!.dataSync(),
      W.map((_, i) => fd((d) => loss(x0, bump(W, i, d), b))),
    );
    close(
      gb!.dataSync(),
      b.map((_, i) => fd((d) => loss(x0, W, bump(b, i, d)))),
    );
    tf.dispose([x, dyT, gx!, gw!, gb!]);
    m.dispose();
  });

  it('the kernel names bad input', async () => {
    await useBackend('wasm');
    const run = (inputs: tf.NamedTensorMap) =>
      tf.tidy(() => tf.engine().runKernel(LINEAR_GRAD_KERNEL, inputs, { hasBias: true } as unknown as tf.NamedAttrMap));
    const x = tf.ones([2, 3, 4]);
    const w = tf.ones([5, 4]);
    expect(() => run({ dy: tf.ones([2, 3, 6]), x, weight: w })).toThrow(
      /MmlmLinearGrad \(wasm\): expected float32 x \[\.\.\., in\] \(rank >= 2\), weight \[out, in\] and dy \[\.\.\., out\] with x's leading dimensions, got dy float32 \[2,3,6\], x float32 \[2,3,4\], weight float32 \[5,4\]/,
    );
    expect(() => run({ dy: tf.ones([3, 2, 5]), x, weight: w })).toThrow(/dy float32 \[3,2,5\]/);
    expect(() => run({ dy: tf.ones([5]), x: tf.ones([4]), weight: w })).toThrow(/x float32 \[4\]/);
    expect(() => run({ dy: tf.ones([2, 3, 5]), x, weight: tf.ones([5, 3]) })).toThrow(/weight float32 \[5,3\]/);
    expect(() => run({ dy: tf.ones([2, 3, 5], 'int32'), x, weight: w })).toThrow(/dy int32/);
    tf.dispose([x, w]);
  });
});
