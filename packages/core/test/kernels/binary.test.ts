/**
 * core's Add / Sub / Multiply on wasm (wasm_ops.ts binaryFast): bit for bit against the stock wasm
 * kernels and the cpu backend in every layout it takes (equal shapes, a scalar on either side, a bias
 * row [C] and [T, C], a column [..., 1], leading ones), odd sizes (SIMD lanes and the scalar tail),
 * IEEE specials (NaN, +-Infinity, -0, subnormals); the layouts it leaves to the stock kernel (int32,
 * a broadcast first operand of Sub, two-sided broadcasts) still give the stock result; gradients
 * through it are unchanged; no leaks.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { replacedKernels, useStockKernels } from '../../src/backend/kernels/index.js';
import { tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, randn, size } from './helpers.js';

afterAll(async () => useBackend('cpu'));

const bits = (a: Float32Array | Int32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** Random data with IEEE specials sprinkled in (canonical NaN only: payloads are not compared). */
function data(seed: number, shape: number[]): Float32Array {
  const x = randn(seed, size(shape)).map((v) => v * 3);
  const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 1e-40, -3e-39, 3.4e38];
  for (let i = 0; i < x.length; i += 7) x[i] = specials[(i / 7 + seed) % specials.length]!;
  return x;
}

const LAYOUTS: [string, number[], number[]][] = [
  ['equal shapes', [3, 5, 7], [3, 5, 7]],
  ['equal shapes, multiple of 4', [16, 64], [16, 64]],
  ['scalar b', [4, 9], []],
  ['scalar a', [], [4, 9]],
  ['one-element b [1, 1]', [2, 3, 5], [1, 1]],
  ['bias row [C]', [6, 4, 13], [13]],
  ['bias row [1, C]', [6, 13], [1, 13]],
  ['row block [T, C]', [3, 5, 6], [5, 6]],
  ['bias row as the first operand', [11], [7, 11]],
  ['column [.., 1]', [4, 6, 9], [4, 6, 1]],
  ['column as the first operand', [5, 1], [5, 8]],
  ['leading ones on a', [1, 1, 6, 4], [6, 4]],
  ['empty', [0, 4], [4]],
  // left to the stock kernel
  ['two-sided broadcast', [4, 1], [1, 5]],
  ['inner broadcast', [2, 1, 3], [2, 4, 3]],
];

function runAll(): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  LAYOUTS.forEach(([name, sa, sb], i) => {
    const a = tf.tensor(data(10 + i, sa), sa);
    const b = tf.tensor(data(50 + i, sb), sb);
    for (const [op, f] of [
      ['add', tf.add],
      ['sub', tf.sub],
      ['mul', tf.mul],
    ] as const) {
      const y = f(a, b);
      out[`${name} ${op} [${y.shape}]`] = Float32Array.from(y.dataSync());
      y.dispose();
    }
    tf.dispose([a, b]);
  });
  return out;
}

describe('wasm Add / Sub / Multiply (core)', () => {
  it('replace the stock kernels on wasm', async () => {
    await useBackend('wasm');
    expect(replacedKernels('wasm')).toEqual(expect.arrayContaining(['Add', 'Sub', 'Multiply']));
  });

  it('equal the stock kernels and cpu bit for bit in every layout, leak nothing', async () => {
    await useBackend('wasm');
    const before = tf.memory().numTensors;
    const ours = runAll();
    expect(tf.memory().numTensors).toBe(before);
    useStockKernels('wasm', true);
    let stock: Record<string, Float32Array>;
    try {
      stock = runAll();
    } finally {
      useStockKernels('wasm', false);
    }
    const cpu = await on('cpu', runAll);
    expect(Object.keys(ours)).toEqual(Object.keys(stock));
    for (const k of Object.keys(ours)) {
      expect(bits(ours[k]!), `${k} vs stock`).toEqual(bits(stock[k]!));
      expect(bits(ours[k]!), `${k} vs cpu`).toEqual(bits(cpu[k]!));
    }
  });

  it('int32 goes to the stock kernel', async () => {
    await useBackend('wasm');
    const a = tf.tensor1d([1, -2, 3, 2147483647], 'int32');
    const b = tf.tensor1d([5, 6, -7, 1], 'int32');
    const y = tf.add(a, b);
    expect(y.dtype).toBe('int32');
    expect(Array.from(y.dataSync())).toEqual([6, 4, -4, -2147483648]);
    expect(Array.from(tf.mul(a, b).dataSync())).toEqual([5, -12, -21, 2147483647]);
    tf.dispose([a, b, y]);
  });

  it('gradients through Add / Sub / Multiply with broadcasting match cpu', async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor(randn(1, 4 * 6 * 5), [4, 6, 5]);
        const w = tf.tensor(randn(2, 5), [5]);
        const c = tf.tensor(randn(3, 24), [4, 6, 1]);
        const [gx, gw, gc] = tf.grads((p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) => p.mul(q).add(q).sub(r).mul(r).sum())([x, w, c]);
        return [gx!, gw!, gc!].map((g) => Float32Array.from(g.dataSync()));
      });
    const w = await on('wasm', run);
    const c = await on('cpu', run);
    w.forEach((g, i) => {
      const ref = c[i]!;
      const err = Math.max(...g.map((v, j) => Math.abs(v - ref[j]!))) / Math.max(...ref.map(Math.abs));
      expect(err).toBeLessThan(1e-6);
    });
  });
});
