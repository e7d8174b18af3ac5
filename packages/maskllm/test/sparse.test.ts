/** Compressed N:M weights and the sparse matmul: round trips, equality with the dense masked matmul, sizes, bad input. */
import { initBackend, Rng, TransformerDecoder, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  blockLinears,
  compressedBytes,
  compressNM,
  decompressNM,
  densify,
  magnitudeMask,
  packBits,
  SparseLinear,
  sparseMatMul,
  sparsify,
  swapChild,
  unpackBits,
} from '../src/index.js';

function randomMasked(rows: number, cols: number, n: number, m: number, seed: number) {
  const rng = new Rng(seed);
  const W = Float32Array.from({ length: rows * cols }, () => rng.normal());
  const mask = magnitudeMask(W, rows, cols, n, m);
  return { W: W.map((v, i) => (mask[i] ? v : 0)), mask };
}

describe('compressed N:M format', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });

  it('bit packing round trip (LSB first) and a hand-checked byte', () => {
    expect(Array.from(packBits([1, 2, 3, 0], 2))).toEqual([0b00111001]);
    const vals = [5, 0, 7, 3, 1, 6, 2];
    expect(Array.from(unpackBits(packBits(vals, 3), 3, vals.length))).toEqual(vals);
    expect(() => packBits([4], 2)).toThrow(/value 4 at index 0 does not fit in 2 bits/);
    expect(() => unpackBits(new Uint8Array(1), 3, 4)).toThrow(/need 2 bytes, got 1/);
  });

  it('2:4 stores kept values + 2-bit positions: 53.125% of the dense fp32 bytes', () => {
    const { W, mask } = randomMasked(8, 16, 2, 4, 1);
    const c = compressNM(W, 8, 16, 2, 4, mask);
    expect(c.bits).toBe(2);
    expect(c.values.length).toBe(64);
    expect(c.positions.length).toBe(16); // 64 positions x 2 bits
    const b = compressedBytes(c);
    expect(b.compressed / b.dense).toBe(0.53125); // (32/2 + 2) / 32 bits per weight
    expect(Array.from(decompressNM(c))).toEqual(Array.from(W));
  });

  it('hand-checked row: values and positions', () => {
    const c = compressNM([0, 3, 0, -2, 5, 0, 0, 0], 1, 8, 2, 4);
    expect(Array.from(c.values)).toEqual([3, -2, 5, 0]);
    // group 0 positions 1, 3; group 1 has one non-zero (position 0) and is padded with position 1
    expect(Array.from(unpackBits(c.positions, 2, 4))).toEqual([1, 3, 0, 1]);
  });

  for (const [n, m] of [
    [2, 4],
    [1, 4],
    [2, 8],
    [4, 8],
  ] as const)
    it(`sparseMatMul equals the dense masked matmul (${n}:${m})`, () => {
      const rows = 12;
      const cols = 32;
      const { W, mask } = randomMasked(rows, cols, n, m, 3);
      const c = compressNM(W, rows, cols, n, m, mask);
      for (const T of [1, 3, 7]) {
        // T <= FUSED_MAX_TOKENS takes the inline-decoding 2:4 path, T = 7 the index-buffer path
        const x = Float32Array.from({ length: T * cols }, (_, i) => Math.sin(i * 0.37));
        const y = sparseMatMul(x, T, c);
        const ref = tf.tidy(() => tf.matMul(tf.tensor2d(x, [T, cols]), tf.tensor2d(W, [rows, cols]), false, true).dataSync());
        for (let i = 0; i < y.length; i++) expect(Math.abs(y[i]! - ref[i]!), `T=${T} i=${i}`).toBeLessThan(1e-4);
      }
    });

  it('SparseLinear in a decoder gives the densified model output', () => {
    const dec = new TransformerDecoder({ vocabSize: 9, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 6, seed: 4 });
    sparsify(dec, { seed: 1, initStd: 1 });
    densify(dec);
    const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6]], [1, 6], 'int32');
    const dense = tf.tidy(() => dec.forward(ids).dataSync());
    for (const [path, l] of blockLinears(dec)) {
      const c = compressNM(l.weight.dataSync(), l.outFeatures, l.inFeatures);
      const sl = new SparseLinear(c, l.bias ? Float32Array.from(l.bias.dataSync()) : null);
      const parts = path.split('.');
      const parent = dec.namedModules().find(([p]) => p === parts.slice(0, -1).join('.'))![1];
      swapChild(parent, parts.at(-1)!, sl);
    }
    const sparse = tf.tidy(() => dec.forward(ids).dataSync());
    for (let i = 0; i < dense.length; i++) expect(sparse[i]).toBeCloseTo(dense[i] as number, 4);
    ids.dispose();
    dec.dispose();
  });

  it('bad input', () => {
    expect(() => compressNM([1, 1, 1, 0], 1, 4)).toThrow(/group 0 \(row 0, columns 0\.\.3\) has more than N=2 non-zero weights/);
    expect(() => compressNM([1, 1, 1, 0], 1, 4, 2, 4, [1, 0, 0, 0])).toThrow(/mask group 0 has 1 ones, expected exactly N=2/);
    expect(() => compressNM([1, 1, 0, 0, 0, 0], 1, 6)).toThrow(/input dimension 6 must be divisible by M=4/);
    const c = compressNM([1, 1, 0, 0], 1, 4);
    expect(() => sparseMatMul(new Float32Array(3), 1, c)).toThrow(/x must be \[1, 4\] \(4 entries\), got 3/);
    expect(() => new SparseLinear(c, new Float32Array(2))).toThrow(/bias must have 1 entries, got 2/);
    expect(() => new SparseLinear(c).forward(tf.zeros([2, 5]))).toThrow(/input last dim must be 4/);
  });
});
