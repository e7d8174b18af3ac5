/**
 * Property tests of core's wasm BatchMatMul / _FusedMatMul (src/backend/kernels/wasm_matmul.ts)
 * against the cpu backend and a float64 host reference, over random shapes: odd sizes, sizes that
 * cross the GEMM's register tile (4 x 8) and cache blocks (K > 256, M > 128), broadcast batch
 * dimensions, every transpose combination, fused bias and activations; values and gradients.
 *
 * Tolerance: norm-wise relative error 1e-5. Each output is a sum of K float32 products; the GEMM
 * accumulates in float32 in a different order than the cpu kernel (which accumulates in float64),
 * so differences grow like sqrt(K) * 2^-24 ~ 1e-6 for the K <= 300 used here; 1e-5 leaves room
 * without hiding an indexing error (which gives O(1) errors).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  nativeBlasInfo,
  replacedKernels,
  setNativeBlasEnabled,
  setWasmGemmThreads,
  useStockKernels,
} from '../../src/backend/kernels/index.js';
import { gemmDescription, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, randn, relErr, seedOf, size, take } from './helpers.js';

const TOL = 1e-5;

/** C = op(A) op(B) in float64 with numpy broadcasting of the batch dims. */
function hostMatMul(
  a: Float32Array,
  as: number[],
  b: Float32Array,
  bs: number[],
  ta: boolean,
  tb: boolean,
): { v: Float64Array; shape: number[] } {
  const M = as[as.length - (ta ? 1 : 2)] as number;
  const K = as[as.length - (ta ? 2 : 1)] as number;
  const N = bs[bs.length - (tb ? 2 : 1)] as number;
  const ab = as.slice(0, -2);
  const bb = bs.slice(0, -2);
  const n = Math.max(ab.length, bb.length);
  const ob: number[] = [];
  for (let i = 0; i < n; i++) ob.push(Math.max(ab[ab.length - n + i] ?? 1, bb[bb.length - n + i] ?? 1));
  const nb = size(ob);
  const v = new Float64Array(nb * M * N);
  const flatIndex = (shape: number[], coord: number[]) => {
    let idx = 0;
    for (let i = 0; i < shape.length; i++)
      idx = idx * (shape[i] as number) + ((shape[i] as number) === 1 ? 0 : (coord[n - shape.length + i] as number));
    return idx;
  };
  for (let o = 0; o < nb; o++) {
    const coord: number[] = [];
    let r = o;
    for (let i = n - 1; i >= 0; i--) {
      coord[i] = r % (ob[i] as number);
      r = Math.floor(r / (ob[i] as number));
    }
    const ao = flatIndex(ab, coord) * M * K;
    const bo = flatIndex(bb, coord) * K * N;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++)
          s += (a[ao + (ta ? k * M + i : i * K + k)] as number) * (b[bo + (tb ? j * K + k : k * N + j)] as number);
        v[(o * M + i) * N + j] = s;
      }
  }
  return { v, shape: [...ob, M, N] };
}

interface Case {
  aBatch: number[];
  bBatch: number[];
  M: number;
  K: number;
  N: number;
  ta: boolean;
  tb: boolean;
}

const shapeA = (c: Case) => [...c.aBatch, ...(c.ta ? [c.K, c.M] : [c.M, c.K])];
const shapeB = (c: Case) => [...c.bBatch, ...(c.tb ? [c.N, c.K] : [c.K, c.N])];

/**
 * Value of matMul(a, b) and gradients of sum(matMul(a', b') * w) w.r.t. a and b on the current
 * backend, where a', b' are a, b broadcast to the output's batch shape explicitly (tfjs'
 * BatchMatMul gradient does not reduce broadcast batch dimensions; broadcastTo's gradient does).
 */
function run(c: Case, a: Float32Array, b: Float32Array, w: Float32Array, outShape: number[]) {
  return tf.tidy(() => {
    const ta = tf.tensor(a, shapeA(c));
    const tb = tf.tensor(b, shapeB(c));
    const tw = tf.tensor(w, outShape);
    const batch = outShape.slice(0, -2);
    const y = tf.matMul(ta, tb, c.ta, c.tb);
    const f = (x: tf.Tensor, z: tf.Tensor) =>
      tf.matMul(tf.broadcastTo(x, [...batch, ...shapeA(c).slice(-2)]), tf.broadcastTo(z, [...batch, ...shapeB(c).slice(-2)]), c.ta, c.tb);
    const [ga, gb] = tf.grads((x: tf.Tensor, z: tf.Tensor) => f(x, z).mul(tw).sum())([ta, tb]) as [tf.Tensor, tf.Tensor];
    return {
      y: Float32Array.from(y.dataSync()),
      shape: y.shape,
      ga: Float32Array.from(ga.dataSync()),
      gb: Float32Array.from(gb.dataSync()),
    };
  });
}

const DIMS = [1, 3, 4, 5, 8, 9, 17, 33];

function randomCases(seed: number, n: number): Case[] {
  const r = randn(seed, 8 * n);
  const pick = (i: number, xs: number[]) => xs[Math.floor(Math.abs(r[i] as number) * 1000) % xs.length] as number;
  const batches: [number[], number[]][] = [
    [[], []],
    [[2], [2]],
    [[3], []],
    [[], [2]],
    [
      [2, 3],
      [2, 3],
    ],
    [
      [2, 3],
      [1, 3],
    ],
    [
      [1, 2],
      [3, 1],
    ],
    [[4, 1], [1]],
  ];
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const [aBatch, bBatch] = batches[pick(8 * i, [0, 1, 2, 3, 4, 5, 6, 7])] as [number[], number[]];
    cases.push({
      aBatch,
      bBatch,
      M: pick(8 * i + 1, DIMS),
      K: pick(8 * i + 2, DIMS),
      N: pick(8 * i + 3, DIMS),
      ta: (r[8 * i + 4] as number) > 0,
      tb: (r[8 * i + 5] as number) > 0,
    });
  }
  return cases;
}

/** cpu indexes batches as bi % batchSize: right only when one side's batch is 1 or both are equal. */
const cpuCanBroadcast = (c: Case) => size(c.aBatch) === 1 || size(c.bBatch) === 1 || c.aBatch.join() === c.bBatch.join();

const FIXED: Case[] = [
  { aBatch: [], bBatch: [], M: 1, K: 1, N: 1, ta: false, tb: false },
  { aBatch: [], bBatch: [], M: 130, K: 300, N: 9, ta: false, tb: true }, // K blocks of 256, M blocks of 128
  { aBatch: [], bBatch: [], M: 7, K: 257, N: 1030, ta: true, tb: false }, // N blocks of 1024
  { aBatch: [2], bBatch: [2], M: 5, K: 3, N: 7, ta: true, tb: true },
  { aBatch: [2, 1], bBatch: [3], M: 4, K: 6, N: 8, ta: false, tb: false }, // general broadcast
  { aBatch: [3], bBatch: [], M: 9, K: 17, N: 5, ta: false, tb: false }, // shared B folded into M
  { aBatch: [2, 4], bBatch: [2, 4], M: 16, K: 8, N: 16, ta: false, tb: true }, // attention-like
];

/**
 * The GEMM behind the kernels: the WebAssembly SIMD one on the calling thread and split over a
 * worker thread (every matmul, however small), and the native one when it is built.
 */
const GEMMS = ['simd', 'simd-2-threads', ...(nativeBlasInfo().available ? ['native'] : [])];

for (const gemm of GEMMS)
  describe(`wasm BatchMatMul (${gemm} GEMM) vs cpu and a float64 reference`, () => {
    beforeAll(() => {
      setNativeBlasEnabled(gemm === 'native');
      setWasmGemmThreads(gemm === 'simd-2-threads' ? 2 : 1, gemm === 'simd-2-threads' ? 0 : 1 << 26);
    });
    afterAll(async () => {
      setNativeBlasEnabled(true);
      setWasmGemmThreads(1, 1 << 26); // the default threshold
      await useBackend('cpu');
    });

    for (const c of [...FIXED, ...randomCases(7, 24)]) {
      const name = `[${shapeA(c)}]${c.ta ? '^T' : ''} x [${shapeB(c)}]${c.tb ? '^T' : ''}`;
      it(name, async () => {
        const s = seedOf(c.M, c.K, c.N, c.ta, c.tb, c.aBatch.join(), c.bBatch.join());
        const a = randn(s, size(shapeA(c)));
        const b = randn(s + 1, size(shapeB(c)));
        const ref = hostMatMul(a, shapeA(c), b, shapeB(c), c.ta, c.tb);
        const w = randn(s + 2, ref.v.length);
        const wasm = await on('wasm', () => run(c, a, b, w, ref.shape));
        expect(wasm.shape).toEqual(ref.shape);
        expect(relErr(wasm.y, ref.v)).toBeLessThanOrEqual(TOL);
        const cpu = await on('cpu', () => run(c, a, b, w, ref.shape));
        if (cpuCanBroadcast(c)) expect(relErr(wasm.y, cpu.y)).toBeLessThanOrEqual(TOL);
        expect(relErr(wasm.ga, cpu.ga)).toBeLessThanOrEqual(TOL);
        expect(relErr(wasm.gb, cpu.gb)).toBeLessThanOrEqual(TOL);
      });
    }
  });

describe('wasm BatchMatMul', () => {
  afterAll(async () => useBackend('cpu'));

  it('leaves no tensors behind over a forward and backward pass', async () => {
    await useBackend('wasm');
    const a = tf.randomNormal([2, 5, 7], 0, 1, 'float32', 1);
    const b = tf.randomNormal([2, 7, 3], 0, 1, 'float32', 2);
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    for (let i = 0; i < 3; i++) take(tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y).square().sum())([a, b]));
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
    a.dispose();
    b.dispose();
  });

  it('replaces both BatchMatMul and _FusedMatMul, and the stock kernels can be switched back', async () => {
    await useBackend('wasm');
    expect(replacedKernels('wasm')).toEqual(expect.arrayContaining(['BatchMatMul', '_FusedMatMul']));
    const ours = tf.getKernel('BatchMatMul', 'wasm');
    useStockKernels('wasm', true);
    expect(tf.getKernel('BatchMatMul', 'wasm')).not.toBe(ours);
    const stock = take(tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])))[0];
    useStockKernels('wasm', false);
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(ours);
    expect(Array.from(stock as Float32Array)).toEqual([11]);
  });

  it('rejects non-float32 inputs, mismatched inner dimensions and batches that do not broadcast', async () => {
    await useBackend('wasm');
    const k = tf.getKernel('BatchMatMul', 'wasm')!;
    const be = tf.backend();
    const call = (a: tf.Tensor, b: tf.Tensor, ta = false, tb = false) =>
      k.kernelFunc({ inputs: { a, b }, backend: be, attrs: { transposeA: ta, transposeB: tb } } as never);
    const i32 = tf.tensor2d([[1, 2]], [1, 2], 'int32');
    const f = tf.ones([2, 3]);
    expect(() => call(i32, f)).toThrow(/only float32 is supported, got a int32 and b float32/);
    expect(() => call(f, f)).toThrow(/inner dimensions must match, got 3 .* and 2/);
    const a3 = tf.ones([2, 3, 3]);
    const b3 = tf.ones([4, 3, 3]);
    expect(() => call(a3, b3)).toThrow(/batch dimensions \[2\] and \[4\] do not broadcast/);
    tf.dispose([i32, f, a3, b3]);
  });
});

describe('wasm _FusedMatMul vs cpu', () => {
  afterAll(async () => useBackend('cpu'));

  const fusedCases: { M: number; K: number; N: number; ta: boolean; tb: boolean; batch: number[]; bias: number[] | null; act: string }[] = [
    { M: 5, K: 7, N: 9, ta: false, tb: false, batch: [], bias: [9], act: 'linear' },
    { M: 5, K: 7, N: 9, ta: true, tb: true, batch: [2], bias: [1, 9], act: 'relu' },
    { M: 6, K: 3, N: 4, ta: false, tb: true, batch: [3], bias: [6, 4], act: 'elu' },
    { M: 4, K: 5, N: 3, ta: true, tb: false, batch: [], bias: [1], act: 'relu6' },
    { M: 3, K: 4, N: 5, ta: false, tb: false, batch: [2], bias: null, act: 'sigmoid' },
    { M: 3, K: 4, N: 5, ta: false, tb: false, batch: [], bias: [5], act: 'leakyrelu' },
    { M: 3, K: 4, N: 5, ta: false, tb: false, batch: [], bias: [5], act: 'prelu' },
  ];
  for (const c of fusedCases) {
    it(`${c.act} bias [${c.bias ?? 'none'}] ${c.ta ? 'T' : 'N'}${c.tb ? 'T' : 'N'} batch [${c.batch}]`, async () => {
      const s = seedOf(c.M, c.K, c.N, c.act, c.ta, c.tb);
      const as = [...c.batch, ...(c.ta ? [c.K, c.M] : [c.M, c.K])];
      const bs = [...c.batch, ...(c.tb ? [c.N, c.K] : [c.K, c.N])];
      const a = randn(s, size(as));
      const b = randn(s + 1, size(bs));
      const bias = c.bias ? randn(s + 2, size(c.bias)) : null;
      const alpha = randn(s + 3, c.N);
      const w = randn(s + 4, size([...c.batch, c.M, c.N]));
      const go = () =>
        tf.tidy(() => {
          const args = (x: tf.Tensor, y: tf.Tensor, z?: tf.Tensor) => ({
            a: x,
            b: y,
            transposeA: c.ta,
            transposeB: c.tb,
            bias: z,
            activation: c.act as 'linear',
            preluActivationWeights: c.act === 'prelu' ? tf.tensor1d(alpha) : undefined,
            leakyreluAlpha: 0.1,
          });
          const ta = tf.tensor(a, as);
          const tb = tf.tensor(b, bs);
          const tz = bias ? tf.tensor(bias, c.bias as number[]) : undefined;
          const y = Float32Array.from(tf.fused.matMul(args(ta, tb, tz)).dataSync());
          if (c.act !== 'linear' && c.act !== 'relu') return { y, g: [] as Float32Array[] };
          const tw = tf.tensor(w, [...c.batch, c.M, c.N]);
          const xs = tz ? [ta, tb, tz] : [ta, tb];
          const gs = tf.grads((...v: tf.Tensor[]) =>
            tf.fused
              .matMul(args(v[0] as tf.Tensor, v[1] as tf.Tensor, v[2]))
              .mul(tw)
              .sum(),
          )(xs);
          return { y, g: gs.map((t) => Float32Array.from(t.dataSync())) };
        });
      const wasm = await on('wasm', go);
      const cpu = await on('cpu', go);
      expect(relErr(wasm.y, cpu.y)).toBeLessThanOrEqual(TOL);
      expect(wasm.g.length).toBe(cpu.g.length);
      wasm.g.forEach((g, i) => expect(relErr(g, cpu.g[i] as Float32Array)).toBeLessThanOrEqual(TOL));
    });
  }

  it('rejects an unknown activation and prelu without weights', async () => {
    await useBackend('wasm');
    const k = tf.getKernel('_FusedMatMul', 'wasm')!;
    const a = tf.ones([1, 2, 2]);
    const call = (activation: string) =>
      k.kernelFunc({ inputs: { a, b: a }, backend: tf.backend(), attrs: { transposeA: false, transposeB: false, activation } } as never);
    expect(() => call('swish')).toThrow(/unknown activation "swish"/);
    expect(() => call('prelu')).toThrow(/needs preluActivationWeights/);
    a.dispose();
  });
});

describe('gemmDescription (what run records name)', () => {
  afterAll(async () => {
    setNativeBlasEnabled(true);
    setWasmGemmThreads(1, 1 << 26);
    await useBackend('cpu');
  });
  it('names the SIMD GEMM with its threads, the native one when it runs, and other backends as such', async () => {
    await useBackend('wasm');
    setNativeBlasEnabled(false);
    setWasmGemmThreads(1, 1 << 26);
    expect(gemmDescription()).toBe('WebAssembly SIMD (1 thread)');
    setWasmGemmThreads(2, 1 << 26);
    expect(gemmDescription()).toBe('WebAssembly SIMD (2 threads)');
    setNativeBlasEnabled(true);
    if (nativeBlasInfo().available) expect(gemmDescription()).toMatch(/^native OpenBLAS [\d.]+ \(\d+ threads\)$/);
    await useBackend('cpu');
    expect(gemmDescription()).toBe('cpu backend kernels');
  });
});
