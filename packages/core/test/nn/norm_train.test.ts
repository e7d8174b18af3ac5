/**
 * The training path of LayerNorm and RMSNorm on wasm (kernels MmlmNormTrain / MmlmNormGrad, used
 * while a gradient tape records): output and every gradient (x, weight, bias) bit for bit equal to
 * tfjs's autodiff of the composite formula (layerNormComposite / rmsNormComposite) on the same
 * backend, alone and inside a residual block (x's gradient then sums several contributions, which
 * must arrive in the composite's order), over 2-D and 3-D inputs, widths that are multiples of 4, with and without weight / bias,
 * tiny to large scales; widths that are not multiples of 4 keep the composite; gradients checked
 * against central finite differences in float64; no tensor leak; bad input to the kernels.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NORM_GRAD_KERNEL, NORM_TRAIN_KERNEL } from '../../src/backend/kernels/fused.js';
import { useStockKernels } from '../../src/backend/kernels/index.js';
import { LayerNorm, layerNormComposite, RMSNorm, Rng, rmsNormComposite, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { bits, kernelsOf } from '../kernels/helpers.js';

afterAll(async () => useBackend('cpu'));

type Norm = LayerNorm | RMSNorm;
const composite = (m: Norm, x: tf.Tensor) =>
  m instanceof LayerNorm ? layerNormComposite(x, m.weight, m.bias, m.eps) : rmsNormComposite(x, m.weight, m.eps);

/** y and the gradients of sum(y dy) with respect to x and every parameter of m. */
function yAndGrads(m: Norm, x: tf.Variable, dy: tf.Tensor, fn: (x: tf.Tensor) => tf.Tensor): tf.Tensor[] {
  let y: tf.Tensor | undefined;
  const vars = [x, ...m.parameters()] as tf.Variable[];
  const { value, grads } = tf.variableGrads(() => {
    y = tf.keep(fn(x));
    return y.mul(dy).sum() as tf.Scalar;
  }, vars);
  value.dispose();
  return [y!, ...vars.map((v) => grads[v.name]!)];
}

describe('LayerNorm / RMSNorm training kernels (wasm)', () => {
  it('give the composite autodiff bits: y, dx, dweight, dbias', async () => {
    await useBackend('wasm');
    expect(tf.getKernel(NORM_TRAIN_KERNEL, 'wasm')).toBeDefined();
    const rng = new Rng(11);
    const n0 = tf.memory().numTensors;
    // the kernels' own temporaries (scores, ve, the Pow output) are freed too: the backend's buffers stay level
    const ids0 = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    let cases = 0;
    for (const shape of [
      [7, 4],
      [3, 5, 64],
      [2, 16, 128],
      [1, 3, 132],
    ]) {
      const D = shape[shape.length - 1] as number;
      for (const scale of [1e-3, 1, 300]) {
        const mods: Norm[] = [
          new LayerNorm(D),
          new LayerNorm(D, { bias: false }),
          new LayerNorm(D, { elementwiseAffine: false, eps: 1e-3 }),
          new RMSNorm(D),
          new RMSNorm(D, { elementwiseAffine: false, eps: 1e-2 }),
        ];
        const x0 = tf.tidy(() =>
          rng
            .randn(shape)
            .mul(scale)
            .add(rng.randn([D]).mul(scale)),
        );
        const x = tf.variable(x0);
        x0.dispose();
        const dy = tf.tidy(() => rng.randn(shape));
        for (const m of mods) {
          for (const p of m.parameters()) tf.tidy(() => p.assign(rng.randn(p.shape).mul(0.5).add(1)));
          // alone, and inside a residual block whose input also feeds ops before and after the
          // norm (x's gradient then sums several contributions, in the tape's order)
          for (const inBlock of [false, true]) {
            const block = (norm: (a: tf.Tensor) => tf.Tensor) => (a: tf.Tensor) => {
              if (!inBlock) return norm(a);
              const before = a.square().mul(0.3);
              return norm(a).add(a).add(before);
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
              block((a) => composite(m, a)),
            );
            const what = `${m.constructor.name} [${shape}] scale ${scale} params ${m.parameters().length} in block ${inBlock}`;
            expect(fused.length, what).toBe(ref.length);
            fused.forEach((t, i) => {
              expect(bits(t), `${what} output ${i}`).toEqual(bits(ref[i]!));
            });
            tf.dispose([...fused, ...ref]);
            cases++;
          }
          m.dispose();
        }
        x.dispose();
        dy.dispose();
      }
    }
    expect(cases).toBe(120);
    expect(tf.memory().numTensors).toBe(n0);
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(ids0);
  });

  it('run as one kernel each way where D is a multiple of 4, the composite otherwise', async () => {
    await useBackend('wasm');
    for (const [D, fusedExpected] of [
      [8, true],
      [6, false],
    ] as const) {
      const m = new LayerNorm(D);
      const x = tf.variable(tf.randomNormal([3, D], 0, 1, 'float32', 5));
      const names = kernelsOf(() => {
        const { value, grads } = tf.variableGrads(() => m.forward(x).square().sum() as tf.Scalar, [x, ...m.parameters()] as tf.Variable[]);
        tf.dispose([value, ...Object.values(grads)]);
      });
      expect(names.has(NORM_TRAIN_KERNEL), `D ${D}`).toBe(fusedExpected);
      expect(names.has(NORM_GRAD_KERNEL), `D ${D}`).toBe(fusedExpected);
      expect(names.has('Rsqrt'), `D ${D}`).toBe(!fusedExpected);
      // with the stock kernels standing in (A/B runs), the composite: the backward reproduces core's Sum
      useStockKernels('wasm', true);
      try {
        const stockNames = kernelsOf(() => {
          const { value, grads } = tf.variableGrads(() => m.forward(x).square().sum() as tf.Scalar, [
            x,
            ...m.parameters(),
          ] as tf.Variable[]);
          tf.dispose([value, ...Object.values(grads)]);
        });
        expect(stockNames.has(NORM_TRAIN_KERNEL), `D ${D}, stock kernels`).toBe(false);
      } finally {
        useStockKernels('wasm', false);
      }
      m.dispose();
      x.dispose();
    }
  });

  it('a frozen weight (trainable false) gets no gradient and x keeps the composite bits, without a leak', async () => {
    await useBackend('wasm');
    const rng = new Rng(9);
    const m = new LayerNorm(16);
    for (const p of m.parameters()) tf.tidy(() => p.assign(rng.randn(p.shape).add(1)));
    m.weight!.trainable = false;
    const x0 = rng.randn([4, 16]);
    const x = tf.variable(x0);
    x0.dispose();
    const n0 = tf.memory().numTensors;
    const run = (fn: (a: tf.Tensor) => tf.Tensor) => {
      const { value, grads } = tf.variableGrads(() => fn(x).square().sum() as tf.Scalar, [x, m.bias!]);
      value.dispose();
      return grads;
    };
    const fused = run((a) => m.forward(a));
    const ref = run((a) => layerNormComposite(a, m.weight, m.bias, m.eps));
    expect(Object.keys(fused).sort()).toEqual(Object.keys(ref).sort());
    expect(fused[m.weight!.name]).toBeUndefined();
    expect(bits(fused[x.name]!)).toEqual(bits(ref[x.name]!));
    expect(bits(fused[m.bias!.name]!)).toEqual(bits(ref[m.bias!.name]!));
    tf.dispose([...Object.values(fused), ...Object.values(ref)]);
    expect(tf.memory().numTensors).toBe(n0);
    x.dispose();
    m.dispose();
  });

  it('gradients match float64 central differences', async () => {
    await useBackend('wasm');
    const rng = new Rng(5);
    const m = new LayerNorm(8);
    for (const p of m.parameters()) tf.tidy(() => p.assign(rng.randn(p.shape).add(1)));
    const x0 = Array.from(rng.randn([2, 8]).dataSync());
    const dy = Array.from(rng.randn([2, 8]).dataSync());
    const w = Array.from(m.weight!.dataSync());
    const b = Array.from(m.bias!.dataSync());
    const loss = (xs: number[], ws: number[], bs: number[]) => {
      let s = 0;
      for (let r = 0; r < 2; r++) {
        const row = xs.slice(r * 8, r * 8 + 8);
        const mu = row.reduce((a, v) => a + v, 0) / 8;
        const va = row.reduce((a, v) => a + (v - mu) ** 2, 0) / 8;
        row.forEach((v, c) => {
          s += (((v - mu) / Math.sqrt(va + m.eps)) * ws[c]! + bs[c]!) * dy[r * 8 + c]!;
        });
      }
      return s;
    };
    const x = tf.variable(tf.tensor2d(x0, [2, 8]));
    const [, gx, gw, gb] = yAndGrads(m, x, tf.tensor2d(dy, [2, 8]), (a) => m.forward(a));
    const h = 1e-6;
    const fd = (f: (d: number) => number) => (f(h) - f(-h)) / (2 * h);
    const close = (got: ArrayLike<number>, want: number[]) =>
      want.forEach((v, i) => {
        expect(Math.abs((got[i] as number) - v)).toBeLessThan(2e-4 * (1 + Math.abs(v)));
      });
    close(
      gx!.dataSync(),
      x0.map((_, i) =>
        fd((d) =>
          loss(
            x0.map((v, j) => (j === i ? v + d : v)),
            w,
            b,
          ),
        ),
      ),
    );
    close(
      gw!.dataSync(),
      w.map((_, i) =>
        fd((d) =>
          loss(
            x0,
            w.map((v, j) => (j === i ? v + d : v)),
            b,
          ),
        ),
      ),
    );
    close(
      gb!.dataSync(),
      b.map((_, i) =>
        fd((d) =>
          loss(
            x0,
            w,
            b.map((v, j) => (j === i ? v + d : v)),
          ),
        ),
      ),
    );
    tf.dispose([x, gx!, gw!, gb!]);
    m.dispose();
  });

  it('the kernels name bad input', async () => {
    await useBackend('wasm');
    const run = (k: string, inputs: tf.NamedTensorMap, attrs: Record<string, unknown>) =>
      tf.tidy(() => tf.engine().runKernel(k, inputs, attrs as unknown as tf.NamedAttrMap));
    const x = tf.ones([2, 4]);
    const st = tf.ones([3, 2]);
    expect(() => run(NORM_TRAIN_KERNEL, { x, bias: tf.ones([4]) }, { eps: 1e-5, layer: false })).toThrow(
      /MmlmNormTrain \(wasm\): expected float32 x \[\.\.\., D\] and weight \[D\] or none, got x float32 \[2,4\], bias float32 \[4\]/,
    );
    expect(() => run(NORM_TRAIN_KERNEL, { x, weight: tf.ones([3]) }, { eps: 1e-5, layer: true })).toThrow(/weight float32 \[3\]/);
    expect(() => run(NORM_TRAIN_KERNEL, { x }, { eps: -1, layer: true })).toThrow(/eps must be a finite number >= 0, got -1/);
    expect(() => run(NORM_GRAD_KERNEL, { dy: tf.ones([2, 6]), x: tf.ones([2, 6]), stats: st }, { layer: true })).toThrow(
      /MmlmNormGrad \(wasm\): expected .* D a multiple of 4.*got dy float32 \[2,6\], x float32 \[2,6\], weight none, stats float32 \[3,2\]/,
    );
    expect(() => run(NORM_GRAD_KERNEL, { dy: tf.ones([2, 4]), x, stats: tf.ones([3, 3]) }, { layer: true })).toThrow(
      /stats float32 \[3,3\]/,
    );
    expect(() => run(NORM_GRAD_KERNEL, { dy: tf.ones([4, 2]), x, stats: st }, { layer: true })).toThrow(/dy float32 \[4,2\]/);
    tf.dispose([x, st]);
  });
});
