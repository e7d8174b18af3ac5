/**
 * core's wasm replacements of Identity, Cast, Slice, SplitV, Concat, Reverse, Sum, Pow and Tanh
 * (src/backend/kernels/wasm_ops.ts, simd_ops.ts) against the cpu backend: values, gradients and
 * edge cases, plus the tanh approximation against Math.tanh on a dense grid.
 *
 * Tolerances: 1e-6 relative for single elementwise results (tanh is accurate to ~2e-7 relative,
 * integer powers to ~2 ulp); 1e-5 norm-wise for sums of up to a few hundred float32 terms (the
 * cpu backend accumulates in float64, ours in float32).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, randn, relErr, size, take } from './helpers.js';

afterAll(async () => useBackend('cpu'));

async function both<T>(fn: () => T): Promise<[T, T]> {
  const w = await on('wasm', fn);
  const c = await on('cpu', fn);
  return [w, c];
}

describe('wasm Identity / Cast / Slice / SplitV', () => {
  it('identity and same-dtype cast share data safely (dispose order does not matter)', async () => {
    await useBackend('wasm');
    const before = tf.memory().numTensors;
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    const z = tf.cast(x, 'float32');
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    y.dispose();
    expect(Array.from(z.dataSync())).toEqual([1, 2, 3]);
    z.dispose();
    expect(Array.from(take(tf.tidy(() => tf.cast(tf.tensor1d([1.7, -2.2]), 'int32')))[0] as Float32Array)).toEqual([1, -2]);
    expect(tf.memory().numTensors).toBe(before);
  });

  const sliceCases: [number[], number[], number[]][] = [
    [[7], [2], [3]],
    [
      [5, 6],
      [1, 2],
      [3, 4],
    ],
    [
      [5, 6],
      [0, 0],
      [5, -1],
    ],
    [
      [4, 5, 6],
      [1, 0, 2],
      [2, 5, 3],
    ],
    [
      [3, 4, 5, 6],
      [1, 1, 0, 0],
      [2, 2, 5, 6],
    ],
    [
      [2, 3, 4, 5, 3],
      [1, 0, 1, 2, 0],
      [1, 3, 2, 3, 2],
    ],
    [
      [4, 5],
      [4, 0],
      [0, 5],
    ],
  ];
  for (const [shape, begin, sz] of sliceCases) {
    it(`slice [${shape}] begin [${begin}] size [${sz}] with gradient`, async () => {
      const x = randn(size(shape), size(shape));
      const [w, c] = await both(() =>
        tf.tidy(() => {
          const t = tf.tensor(x, shape);
          const y = tf.slice(t, begin, sz);
          const g = tf.grad((v: tf.Tensor) => tf.slice(v, begin, sz).square().sum())(t);
          return [Float32Array.from(y.dataSync()), y.shape, Float32Array.from(g.dataSync())] as const;
        }),
      );
      expect(w[1]).toEqual(c[1]);
      expect(Array.from(w[0])).toEqual(Array.from(c[0]));
      expect(Array.from(w[2])).toEqual(Array.from(c[2]));
    });
  }

  it('slices int32 and bool tensors', async () => {
    const [w, c] = await both(() =>
      tf.tidy(() => [
        Array.from(tf.slice(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), [0, 1], [2, 2]).dataSync()),
        Array.from(tf.slice(tf.tensor2d([1, 0, 1, 1, 0, 0], [2, 3], 'bool'), [1, 0], [1, 3]).dataSync()),
      ]),
    );
    expect(w).toEqual(c);
  });

  it('splits along any axis (count, sizes, -1) with gradient', async () => {
    const x = randn(5, 4 * 9 * 3);
    const [w, c] = await both(() =>
      tf.tidy(() => {
        const t = tf.tensor(x, [4, 9, 3]);
        const parts = [...tf.split(t, [2, -1, 4], 1), ...tf.split(t, 2, 0), ...tf.split(t, 3, -1)];
        const g = tf.grad((v: tf.Tensor) => {
          const [a, b, d] = tf.split(v, [2, 3, 4], 1) as [tf.Tensor, tf.Tensor, tf.Tensor];
          return a.sum().add(b.square().sum()).add(d.mul(3).sum());
        })(t);
        return [...parts.map((p) => Array.from(p.dataSync())), Array.from(g.dataSync())];
      }),
    );
    expect(w).toEqual(c);
  });

  it('concatenates along any axis (short and long runs, empty parts, int32, bool) with gradient', async () => {
    const x = randn(6, 200 + 4 * 9 * 70);
    const [w, c] = await both(() =>
      tf.tidy(() => {
        const a = tf.tensor(x.subarray(0, 4 * 9 * 3), [4, 9, 3]);
        const b = tf.tensor(x.subarray(200, 200 + 4 * 9 * 70), [4, 9, 70]);
        const e = tf.zeros([4, 9, 0]);
        const outs = [
          tf.concat([a, b, e, a], 2),
          tf.concat([a, a.neg()], 0),
          tf.concat([a, a.mul(2), a], 1),
          tf.concat([a.toInt(), a.mul(3).toInt()], -1),
          tf.concat([a.greater(0), a.less(0)], 2),
          tf.concat([b.reshape([4, 9, 35, 2]), b.reshape([4, 9, 35, 2])], 3), // runs of 2 (RoPE pairs)
        ];
        const g = tf.grad((v: tf.Tensor) =>
          tf
            .concat([v.neg(), v, v.square()], 2)
            .mul(tf.range(0, 9, 1).reshape([1, 1, 9]))
            .sum(),
        )(a);
        return [...outs.map((o) => [o.shape, o.dtype, Array.from(o.dataSync())]), Array.from(g.dataSync())];
      }),
    );
    expect(w).toEqual(c);
  });

  it('reverses along any set of axes (long and short runs, the last axis, none, empty, int32, bool) with gradient', async () => {
    const x = randn(7, 3 * 3 * 8 * 40);
    const [w, c] = await both(() =>
      tf.tidy(() => {
        const f = tf.tensor(x, [3, 3, 8, 40]); // a conv filter: runs of 320 values
        const outs = [
          tf.reverse(f, [0, 1]),
          tf.reverse(f, [1]),
          tf.reverse(f, -1), // the last axis: element by element
          tf.reverse(f, [0, 2, 3]),
          tf.reverse(f, [1, 0, 1]), // axis 1 named twice
          tf.reverse(f, []), // nothing reversed: a copy
          tf.reverse(tf.tensor(x.subarray(0, 5), [5]), 0),
          tf.reverse(f.reshape([9, 320]).slice([0, 0], [9, 0]), 0), // empty
          tf.reverse(f.toInt(), [0, 3]),
          tf.reverse(f.greater(0), [1, 2]),
        ];
        const g = tf.grad((v: tf.Tensor) =>
          tf
            .reverse(v, [0, 1])
            .mul(tf.range(0, 40, 1))
            .sum(),
        )(f);
        return [...outs.map((o) => [o.shape, o.dtype, Array.from(o.dataSync())]), Array.from(g.dataSync())];
      }),
    );
    expect(w).toEqual(c);
  });

  it('transposes with runs of the last axis (attention heads, merged axes, size-1 axes, int32) and the stock kernel elsewhere, with gradient', async () => {
    const x = randn(11, 2 * 5 * 3 * 6);
    const [w, c] = await both(() =>
      tf.tidy(() => {
        const f = tf.tensor(x, [2, 5, 3, 6]); // [B, T, H, hs]
        const outs = [
          tf.transpose(f, [0, 2, 1, 3]), // heads: runs of 6
          tf.transpose(f, [2, 0, 1, 3]), // H first: a three-axis grid, runs of 6
          tf.transpose(f, [1, 0, 2, 3]), // H and hs merge: runs of 18
          tf.transpose(f, [0, 1, 2, 3]), // the identity: one run
          tf.transpose(f, [3, 2, 1, 0]), // the last axis moves: the stock kernel
          tf.transpose(f.reshape([2, 5, 1, 3, 6]), [2, 0, 3, 1, 4]), // a size-1 axis anywhere
          tf.transpose(f.reshape([2, 5, 3, 6, 1]), [1, 0, 2, 3, 4]), // a trailing size-1 axis
          tf.transpose(f.reshape([2, 5, 3, 3, 2]), [4, 3, 2, 1, 0]), // four grid axes would be needed: stock
          tf.transpose(f.reshape([2, 5, 3, 2, 3]), [1, 3, 0, 2, 4]), // four grid axes, runs of 3: stock
          tf.transpose(f.reshape([5, 2, 9, 2]), [2, 1, 0, 3]), // runs of 2 (no full vector)
          tf.transpose(f.toInt(), [0, 2, 1, 3]),
          tf.transpose(tf.zeros([2, 0, 3, 6]), [0, 2, 1, 3]), // empty
        ];
        const g = tf.grad((v: tf.Tensor) =>
          tf
            .transpose(v, [0, 2, 1, 3])
            .mul(tf.range(0, 6, 1))
            .mul(tf.range(0, 5, 1).reshape([5, 1]))
            .sum(),
        )(f);
        return [...outs.map((o) => [o.shape, o.dtype, Array.from(o.dataSync())]), Array.from(g.dataSync())];
      }),
    );
    expect(w).toEqual(c);
  });

  it('plans transposes as runs only where the last axis stays last', async () => {
    const { transposeRuns } = await import('../../src/backend/kernels/wasm_ops.js');
    expect(transposeRuns([16, 128, 4, 64], [0, 2, 1, 3])).toEqual({ run: 64, extent: [16, 4, 128], strides: [32768, 64, 256] });
    expect(transposeRuns([2, 5, 3, 6], [1, 0, 2, 3])).toEqual({ run: 18, extent: [1, 5, 2], strides: [0, 18, 90] });
    expect(transposeRuns([2, 5, 3, 6], [0, 1, 2, 3])).toEqual({ run: 180, extent: [1, 1, 1], strides: [0, 0, 0] });
    expect(transposeRuns([2, 5, 3, 6], [3, 2, 1, 0])).toBeNull();
    expect(transposeRuns([2, 5, 3, 3, 2], [4, 3, 2, 1, 0])).toBeNull();
    expect(transposeRuns([2, 5, 3, 2, 3], [1, 3, 0, 2, 4])).toBeNull();
    expect(transposeRuns([2, 5, 1, 3, 6], [2, 0, 3, 1, 4])).toEqual({ run: 6, extent: [2, 3, 5], strides: [90, 6, 18] });
  });

  it('rejects splits that do not add up', async () => {
    await useBackend('wasm');
    const t = tf.ones([6, 2]);
    expect(() => tf.split(t, 4, 0)).toThrow();
    const k = tf.getKernel('SplitV', 'wasm')!;
    expect(() => k.kernelFunc({ inputs: { x: t }, backend: tf.backend(), attrs: { numOrSizeSplits: [2, 2], axis: 0 } } as never)).toThrow(
      /split sizes \[2,2\] sum to 4, expected 6/,
    );
    expect(() => k.kernelFunc({ inputs: { x: t }, backend: tf.backend(), attrs: { numOrSizeSplits: 4, axis: 0 } } as never)).toThrow(
      /4 splits do not divide axis 0 of size 6/,
    );
    t.dispose();
  });
});

describe('wasm Sum', () => {
  const cases: [number[], number | number[] | null, boolean][] = [
    [[7], null, false],
    [[5, 6], 0, false],
    [[5, 6], 1, true],
    [[5, 6], -1, false],
    [[3, 4, 5], [1, 2], false],
    [[3, 4, 5], [0, 1], true],
    [[3, 4, 5], [0, 2], false], // not contiguous: stock path
    [[2, 300, 3], 1, false],
    [[2, 3, 4, 5], [1, 2], true],
    [[4, 0, 3], 1, false],
    [[4, 0, 3], 0, false],
  ];
  for (const [shape, axis, keepDims] of cases) {
    it(`sum [${shape}] axis ${JSON.stringify(axis)} keepDims ${keepDims} with gradient`, async () => {
      const x = randn(size(shape) + 3, size(shape));
      const [w, c] = await both(() =>
        tf.tidy(() => {
          const t = tf.tensor(x, shape);
          const y = tf.sum(t, axis ?? undefined, keepDims);
          const g = tf.grad((v: tf.Tensor) =>
            tf
              .sum(v, axis ?? undefined, keepDims)
              .square()
              .sum(),
          )(t);
          return [Float32Array.from(y.dataSync()), y.shape, Float32Array.from(g.dataSync())] as const;
        }),
      );
      expect(w[1]).toEqual(c[1]);
      expect(relErr(w[0], c[0])).toBeLessThanOrEqual(1e-5);
      expect(relErr(w[2], c[2])).toBeLessThanOrEqual(1e-5);
    });
  }

  it('sums int32 through the stock kernel', async () => {
    const [w, c] = await both(() => Array.from(take(tf.sum(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), 0))[0] as Float32Array));
    expect(w).toEqual(c);
  });
});

describe('wasm Pow', () => {
  const x = Float32Array.from([...randn(11, 37), 0, -0, 2, -3, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-20]);
  for (const e of [1, 2, 3, 4, 7, 8, -1, -2, 0, 0.5, 9]) {
    it(`x^${e} matches cpu (integer fast path or stock fallback)`, async () => {
      const [w, c] = await both(() => Array.from(take(tf.pow(tf.tensor1d(x), tf.scalar(e)))[0] as Float32Array));
      for (let i = 0; i < x.length; i++) {
        const a = w[i] as number;
        const b = c[i] as number;
        if (Number.isNaN(b)) expect(a).toBeNaN();
        else if (!Number.isFinite(b) || b === 0) expect(a).toBe(b);
        else expect(Math.abs(a - b) / Math.abs(b)).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  it('gradient of x^3 (GELU) matches cpu', async () => {
    const v = randn(3, 64);
    const [w, c] = await both(() => Array.from(take(tf.grad((t: tf.Tensor) => t.pow(3).sum())(tf.tensor1d(v)))[0] as Float32Array));
    expect(relErr(w, c)).toBeLessThanOrEqual(1e-6);
  });

  it('broadcasts a [1, 1] exponent and leaves tensor exponents to the stock kernel', async () => {
    const v = randn(4, 6);
    const [w, c] = await both(() =>
      tf.tidy(() => [
        Array.from(tf.pow(tf.tensor2d(v, [2, 3]), tf.tensor2d([[2]])).dataSync()),
        Array.from(tf.pow(tf.tensor2d(v, [2, 3]).abs(), tf.tensor1d([1, 2, 3])).dataSync()),
      ]),
    );
    expect(relErr(w[0] as number[], c[0] as number[])).toBeLessThanOrEqual(1e-6);
    expect(relErr(w[1] as number[], c[1] as number[])).toBeLessThanOrEqual(1e-6);
  });
});

describe('wasm Tanh', () => {
  it('is within 3e-7 relative of Math.tanh over [-12, 12] and exact at the special values', async () => {
    await useBackend('wasm');
    const n = 200_003;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i / (n - 1) - 0.5) * 24;
    const extra = Float32Array.from([
      0,
      -0,
      1e-30,
      -1e-6,
      0.5,
      -0.5,
      9,
      20,
      1e30,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
    ]);
    const y = take(tf.tanh(tf.tensor1d(x)))[0] as Float32Array;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const r = Math.tanh(x[i] as number);
      worst = Math.max(worst, Math.abs((y[i] as number) - r) / Math.max(Math.abs(r), 1e-38));
    }
    expect(worst).toBeLessThanOrEqual(3e-7);
    const ye = take(tf.tanh(tf.tensor1d(extra)))[0] as Float32Array;
    expect(Array.from(ye.slice(0, 2))).toEqual([0, -0]);
    expect(ye[2]).toBe(Math.fround(1e-30));
    expect(Math.abs((ye[3] as number) - Math.tanh(-1e-6)) / 1e-6).toBeLessThanOrEqual(3e-7);
    expect(Array.from(ye.slice(6, 11))).toEqual([Math.fround(Math.tanh(9)), 1, 1, 1, -1]);
    expect(ye[11]).toBeNaN();
  });

  it('odd lengths and gradients match cpu', async () => {
    const v = randn(9, 13);
    const [w, c] = await both(() =>
      tf.tidy(() => {
        const t = tf.tensor(v, [13]);
        return [
          Array.from(tf.tanh(t).dataSync()),
          Array.from(
            tf
              .grad((u: tf.Tensor) => tf.tanh(u).mul(u).sum())(t)
              .dataSync(),
          ),
        ];
      }),
    );
    expect(relErr(w[0] as number[], c[0] as number[])).toBeLessThanOrEqual(1e-6);
    expect(relErr(w[1] as number[], c[1] as number[])).toBeLessThanOrEqual(1e-6);
  });
});

describe('wasm Exp and Sqrt', () => {
  it('exp is within 4e-7 relative of Math.exp over [-87, 88], and right at the ends of the float32 range', async () => {
    await useBackend('wasm');
    const n = 100_001;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = -87 + (175 * i) / (n - 1);
    const y = take(tf.exp(tf.tensor1d(x)))[0] as Float32Array;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const r = Math.exp(x[i] as number);
      worst = Math.max(worst, Math.abs((y[i] as number) - r) / r);
    }
    expect(worst).toBeLessThanOrEqual(4e-7);
    const special = Float32Array.from([
      0,
      -0,
      88.7,
      89,
      1000,
      -95,
      -103.5,
      -200,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
    ]);
    const ys = take(tf.exp(tf.tensor1d(special)))[0] as Float32Array;
    expect(Array.from(ys.slice(0, 2))).toEqual([1, 1]);
    expect(Math.abs((ys[2] as number) / Math.exp(Math.fround(88.7)) - 1)).toBeLessThanOrEqual(1e-6);
    expect(Array.from(ys.slice(3, 5))).toEqual([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
    expect(Math.abs((ys[5] as number) - Math.fround(Math.exp(-95)))).toBeLessThanOrEqual(2 ** -149); // subnormal
    expect(ys[6] as number).toBeLessThanOrEqual(2 ** -148);
    expect(Array.from(ys.slice(7, 10))).toEqual([0, Number.POSITIVE_INFINITY, 0]);
    expect(ys[10]).toBeNaN();
  });

  it('exp and sqrt match cpu on odd lengths, with gradients', async () => {
    const v = randn(21, 11);
    const [w, c] = await both(() =>
      tf.tidy(() => {
        const t = tf.tensor1d(v);
        const s = t.abs();
        return [
          Array.from(tf.exp(t).dataSync()),
          Array.from(tf.sqrt(s).dataSync()),
          Array.from(
            tf
              .grad((u: tf.Tensor) => tf.exp(u).sum())(t)
              .dataSync(),
          ),
          Array.from(
            tf
              .grad((u: tf.Tensor) => tf.sqrt(u).sum())(s.add(0.1))
              .dataSync(),
          ),
          Array.from(tf.sqrt(tf.tensor1d([-1, 0, 4, Number.POSITIVE_INFINITY])).dataSync()),
        ];
      }),
    );
    for (let i = 0; i < 4; i++) expect(relErr(w[i] as number[], c[i] as number[])).toBeLessThanOrEqual(1e-6);
    expect(w[4]).toEqual(c[4]);
  });
});

describe('wasm GatherV2', () => {
  const cases: { x: number[]; dtype: 'float32' | 'int32' | 'bool'; ids: number[]; idsShape: number[]; axis: number; batchDims?: number }[] =
    [
      { x: [6, 20], dtype: 'float32', ids: [5, 0, 5, 2], idsShape: [4], axis: 0 },
      { x: [3, 5, 2], dtype: 'float32', ids: [4, 4, 1, 0, 2, 3], idsShape: [2, 3], axis: 1 },
      { x: [4, 3], dtype: 'int32', ids: [2, 0], idsShape: [2], axis: -1 },
      { x: [5, 2], dtype: 'bool', ids: [1, 4, 4], idsShape: [3], axis: 0 },
      { x: [2, 5, 3], dtype: 'float32', ids: [0, 4, 3, 1], idsShape: [2, 2], axis: 1, batchDims: 1 },
    ];
  for (const c of cases) {
    it(`gather ${c.dtype} [${c.x}] ids [${c.ids}] axis ${c.axis} batchDims ${c.batchDims ?? 0}`, async () => {
      const xv = Array.from(randn(size(c.x), size(c.x)), (v) =>
        c.dtype === 'float32' ? v : c.dtype === 'int32' ? Math.round(10 * v) : v > 0 ? 1 : 0,
      );
      const [w, cpu] = await both(() =>
        tf.tidy(() => {
          const y = tf.gather(tf.tensor(xv, c.x, c.dtype), tf.tensor(c.ids, c.idsShape, 'int32'), c.axis, c.batchDims);
          return [Array.from(y.dataSync()), y.shape];
        }),
      );
      expect(w).toEqual(cpu);
    });
  }

  it('rejects an out-of-range index', async () => {
    await useBackend('wasm');
    const x = tf.ones([3, 2]);
    const ids = tf.tensor1d([0, 3], 'int32');
    expect(() => tf.gather(x, ids)).toThrow(/GatherV2: the index value 3 is not in \[0, 2\]/);
    tf.dispose([x, ids]);
  });
});
