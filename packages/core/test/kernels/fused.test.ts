/**
 * The fused GELU op (src/backend/kernels/fused.ts): the wasm kernels against the composite tanh-form
 * formula on cpu and against closed-form values, gradients against finite differences, and leaks.
 *
 * GELU_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) = 0.8411919906 (hand-computed); the derivative
 * at 0 is 0.5.
 *
 * The exact GELU: Phi(1) = 0.5 (1 + erf(1 / sqrt 2)) = 0.8413447461 (normal table), so GELU(1) =
 * 0.8413447461, GELU(-1) = -(1 - Phi(1)) = -0.1586552539, and GELU'(1) = Phi(1) + phi(1) =
 * 0.8413447461 + 0.2419707245 = 1.0833154706; GELU'(0) = 0.5.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  ADAMW_KERNEL,
  ADAMW_N_KERNEL,
  GELU_ERF_GRAD_KERNEL,
  GELU_KERNEL,
  geluErfComposite,
  SILU_GRAD_KERNEL,
  SILU_KERNEL,
} from '../../src/backend/kernels/fused.js';
import { geluErf, geluTanh, silu, useStockKernels } from '../../src/backend/kernels/index.js';
import { AdamW, tf } from '../../src/index.js';
import { checkGradients, useBackend } from '../../src/testing/index.js';
import { on, randn, relErr, size, take } from './helpers.js';

afterAll(async () => useBackend('cpu'));

type Op = (x: tf.Tensor) => tf.Tensor;

/** op(x) and d sum(op(x) dy) / dx on wasm and on cpu, for 1037 (odd) inputs x = scale N(0, 1). */
async function valueAndGradBoth(op: Op, seed: number, scale: number): Promise<{ w: Float32Array[]; c: Float32Array[]; x: Float32Array }> {
  const x = randn(seed, 1037).map((v) => scale * v);
  const dy = randn(seed + 1, 1037);
  const run = () =>
    tf.tidy(() => {
      const t = tf.tensor1d(x);
      const w = tf.tensor1d(dy);
      return [
        Float32Array.from(op(t).dataSync()),
        Float32Array.from(
          tf
            .grad((u: tf.Tensor) => op(u).mul(w).sum())(t)
            .dataSync(),
        ),
      ];
    });
  const w = await on('wasm', run);
  const c = await on('cpu', run);
  expect(relErr(w[0]!, c[0]!)).toBeLessThanOrEqual(1e-6);
  expect(relErr(w[1]!, c[1]!)).toBeLessThanOrEqual(1e-6);
  return { w, c, x };
}

/** On wasm: the gradient of sum(op(x)^2) against finite differences, no tensors left behind, int32 rejected naming `name`. */
async function fusedContract(name: string, op: Op, x: tf.Tensor): Promise<void> {
  await useBackend('wasm');
  checkGradients(([u]) => op(u!).square().sum() as tf.Scalar, [x], { eps: 1e-2, rtol: 2e-2, atol: 1e-3 });
  const before = tf.memory().numTensors;
  take(tf.grad((u: tf.Tensor) => op(u).sum())(x));
  take(op(x));
  expect(tf.memory().numTensors).toBe(before);
  x.dispose();
  const i = tf.tensor1d([1, 2], 'int32');
  expect(() => op(i)).toThrow(new RegExp(`${name}: x must be float32, got int32`));
  i.dispose();
}

describe('geluErf (fused exact GELU)', () => {
  it('matches closed-form values and derivatives on wasm and cpu', async () => {
    for (const b of ['wasm', 'cpu'] as const) {
      const y = await on(b, () => take(geluErf(tf.tensor1d([1, 0, -1, 30, -30])))[0] as Float32Array);
      expect(y[0]).toBeCloseTo(0.8413447461, 6);
      expect(y[1]).toBe(0);
      expect(y[2]).toBeCloseTo(-0.1586552539, 6);
      expect(y[3]).toBe(30);
      expect(y[4]).toBe(-0);
      const g = await on(b, () => take(tf.grad((u: tf.Tensor) => geluErf(u).sum())(tf.tensor1d([1, 0, -1])))[0] as Float32Array);
      expect(g[0]).toBeCloseTo(1.0833154706, 6);
      expect(g[1]).toBeCloseTo(0.5, 6); // erf(0) by A & S 7.1.26 is 1.2e-7 in float32 (its error bound: 1.5e-7)
      expect(g[2]).toBeCloseTo(1 - 1.0833154706, 6); // GELU'(-x) = 1 - GELU'(x)
    }
  });

  it('wasm kernels match the cpu composite (tfjs Erf + autodiff) in value and gradient (odd length)', async () => {
    const { c, x } = await valueAndGradBoth(geluErf, 5, 3);
    // on cpu (no fused kernel) it is the composite itself, digit for digit
    const composite = await on('cpu', () => take(geluErfComposite(tf.tensor1d(x)))[0] as Float32Array);
    expect(Array.from(c[0] as Float32Array)).toEqual(Array.from(composite));
  });

  it('gradient matches finite differences on wasm; no tensors left behind; int32 rejected', async () => {
    await fusedContract('geluErf', geluErf, tf.tensor2d(Array.from(randn(7, 12)), [3, 4]));
  });
});

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
    await valueAndGradBoth(geluTanh, 1, 3);
    const g0 = await on('wasm', () => take(tf.grad((u: tf.Tensor) => geluTanh(u).sum())(tf.tensor1d([0])))[0] as Float32Array);
    expect(g0[0]).toBeCloseTo(0.5, 7);
  });

  it('gradient matches finite differences on wasm; no tensors left behind; int32 rejected', async () => {
    await fusedContract('geluTanh', geluTanh, tf.tensor2d(Array.from(randn(3, 12)), [3, 4]));
  });
});

describe('AdamW update kernel (MmlmAdamW, wasm)', () => {
  // Four parameters (odd sizes: the SIMD lanes plus the scalar tail; a scalar: the tail alone; a
  // multiple of 4: the lanes alone; one with an lr multiplier and one without decay), four steps
  // with changing learning rates; the fused wasm update against the composite on cpu and the
  // composite on wasm (stock kernels, where MmlmAdamW is not registered): bit for bit.
  const shapes = [[37, 5], [1], [129], [16, 64]];
  const run = () => {
    const vars = shapes.map((s, i) => tf.variable(tf.tensor(randn(10 + i, size(s)), s), true, `adamw_fused_${i}_${Math.random()}`));
    const opt = new AdamW(
      [
        { params: [['a', vars[0]!]], lrMultiplier: 3 },
        {
          params: [
            ['b', vars[1]!],
            ['c', vars[2]!],
            ['d', vars[3]!],
          ],
          weightDecay: 0,
        },
      ],
      { lr: 1e-2, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 },
    );
    const before = tf.memory().numTensors;
    for (let t = 0; t < 4; t++) {
      opt.setLr(1e-2 * (t + 1));
      tf.tidy(() => {
        const grads = new Map<string, tf.Tensor>(
          shapes.map((s, i) => [
            ['a', 'b', 'c', 'd'][i]!,
            tf.tensor(
              randn(100 * t + i, size(s)).map((x) => x * 10 ** (i - 1)),
              s,
            ),
          ]),
        );
        opt.step(grads);
      });
    }
    const leaked = tf.memory().numTensors - before;
    const out = vars.map((v) => Float32Array.from(v.dataSync()));
    const state = Object.values(opt.stateDict().tensors).map((x) => Float32Array.from(x.dataSync()));
    opt.dispose();
    for (const v of vars) v.dispose();
    return { out, state, leaked };
  };

  it('equals the composite update bit for bit, leaks nothing', async () => {
    await useBackend('wasm');
    expect(tf.getKernel(ADAMW_KERNEL, 'wasm')).toBeDefined();
    const list = tf.getKernel(ADAMW_N_KERNEL, 'wasm');
    expect(list).toBeDefined();
    const fused = run(); // every parameter in one MmlmAdamWN call
    tf.unregisterKernel(ADAMW_N_KERNEL, 'wasm');
    let single: ReturnType<typeof run>;
    try {
      single = run(); // one MmlmAdamW call per parameter
    } finally {
      tf.registerKernel(list!);
    }
    useStockKernels('wasm', true);
    let stock: ReturnType<typeof run>;
    try {
      expect(tf.getKernel(ADAMW_KERNEL, 'wasm')).toBeUndefined();
      stock = run();
    } finally {
      useStockKernels('wasm', false);
    }
    const cpu = await on('cpu', run);
    expect(fused.leaked).toBe(0);
    expect(single.leaked).toBe(0);
    for (const other of [single, stock, cpu]) {
      expect(other.out.length).toBe(fused.out.length);
      fused.out.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(other.out[i]!)));
      fused.state.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(other.state[i]!)));
    }
    // the update moved every parameter
    const init = shapes.map((s, i) => randn(10 + i, size(s)));
    fused.out.forEach((a, i) => expect(a.some((x, j) => x !== init[i]![j])).toBe(true));
  });

  it('rejects mismatched shapes and dtypes naming the input', async () => {
    await useBackend('wasm');
    const p = tf.zeros([3]);
    const bad = tf.zeros([4]);
    const ints = tf.zeros([3], 'int32');
    const attrs = { decay: 1, beta1: 0.9, oneMinusBeta1: 0.1, beta2: 0.999, oneMinusBeta2: 0.001, bc2Sqrt: 1, eps: 1e-8, stepSize: 1e-3 };
    expect(() => tf.engine().runKernel(ADAMW_KERNEL, { p, m: p, v: p, g: bad }, attrs)).toThrow(
      /g has shape \[4\], expected the parameter's \[3\]/,
    );
    expect(() => tf.engine().runKernel(ADAMW_KERNEL, { p, m: ints, v: p, g: p }, attrs)).toThrow(/m must be float32, got int32/);
    const scalars = Object.values(attrs);
    const one = { p0: p, m0: p, v0: p, g0: p };
    expect(() =>
      tf.engine().runKernel(ADAMW_N_KERNEL, { ...one, p1: p, m1: p, v1: p, g1: bad }, { n: 2, scalars: [...scalars, ...scalars] }),
    ).toThrow(/g1 has shape \[4\], expected the parameter's \[3\]/);
    expect(() => tf.engine().runKernel(ADAMW_N_KERNEL, one, { n: 2, scalars: [...scalars, ...scalars] })).toThrow(
      /input p1 of 2 is missing/,
    );
    expect(() => tf.engine().runKernel(ADAMW_N_KERNEL, one, { n: 1, scalars: scalars.slice(1) })).toThrow(
      /scalars must hold 8 numbers per parameter \(8\), got 7/,
    );
    tf.dispose([p, bad, ints]);
  });
});

describe('silu (fused)', () => {
  it('matches closed-form values on wasm and cpu', async () => {
    for (const b of ['wasm', 'cpu'] as const) {
      // silu(1) = 1 / (1 + e^-1) = 0.7310585786; silu(-1) = -1 / (1 + e) = -0.2689414214
      const y = await on(b, () => take(silu(tf.tensor1d([1, 0, -1, 100, -100, -200])))[0] as Float32Array);
      expect(y[0]).toBeCloseTo(0.7310585786, 6);
      expect(y[1]).toBe(0);
      expect(y[2]).toBeCloseTo(-0.2689414214, 6);
      expect(y[3]).toBe(100);
      expect(Math.abs(y[4]!)).toBeLessThan(1e-38);
      expect(y[5]).toBeCloseTo(0, 30);
    }
  });

  it('wasm kernels match the cpu composite in value and gradient (odd length)', async () => {
    await valueAndGradBoth(silu, 3, 6);
    // silu'(0) = 1/2; silu'(x) = s (1 + x (1 - s)) at x = 2: 0.8807970780 (1 + 2 * 0.1192029220) = 1.0907842211
    const g = await on('wasm', () => take(tf.grad((u: tf.Tensor) => silu(u).sum())(tf.tensor1d([0, 2])))[0] as Float32Array);
    expect(g[0]).toBeCloseTo(0.5, 7);
    expect(g[1]).toBeCloseTo(1.0907842211, 6);
  });

  it('gradient matches finite differences on wasm; no tensors left behind; int32 rejected', async () => {
    await fusedContract('silu', silu, tf.tensor1d([-3, -0.5, 0.25, 1.5, 4]));
  });
});

describe('fused activation kernels (wasm) reject bad inputs naming them', () => {
  it('non-float32 x, and dy / x of different shapes or dtypes', async () => {
    await useBackend('wasm');
    const ints = tf.tensor1d([1, 2, 3], 'int32');
    const a = tf.zeros([3]);
    const b = tf.zeros([4]);
    for (const name of [GELU_KERNEL, SILU_KERNEL])
      expect(() => tf.engine().runKernel(name, { x: ints })).toThrow(new RegExp(`${name} \\(wasm\\): x must be float32, got int32`));
    for (const name of [GELU_ERF_GRAD_KERNEL, SILU_GRAD_KERNEL]) {
      expect(() => tf.engine().runKernel(name, { dy: a, x: b })).toThrow(/dy shape \[3\] must equal x shape \[4\]/);
      expect(() => tf.engine().runKernel(name, { dy: ints, x: a })).toThrow(/dy and x must be float32, got int32 and float32/);
    }
    tf.dispose([ints, a, b]);
  });
});
