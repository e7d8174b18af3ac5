/**
 * Compressed N:M weights and a sparse matmul for inference (the storage of NVIDIA's 2:4 sparse
 * tensor cores, Mishra et al. 2021 "Accelerating Sparse Deep Neural Networks", §3: per group of M
 * inputs only the N kept values are stored, plus ceil(log2 M)-bit positions, 2 bits for 2:4).
 * A 2:4 weight keeps 50% of the values plus 2 bits per kept value: 53.125% of the dense bytes in
 * fp32 (56.25% in fp16, the sparse-tensor-core case).
 *
 * `sparseMatMul` computes y = x W^T from the compressed form with half the multiply-adds of the
 * dense product. It runs in plain JavaScript (no tfjs kernel), so its speed is compared with the
 * tfjs backends honestly in the package README (scripts/bench-sparse.ts).
 */
import { Module, tf } from '@mmlm/core';
import { validateNM } from './model.js';

export interface CompressedNM {
  n: number;
  m: number;
  /** Output features (rows of W). */
  rows: number;
  /** Input features (columns of W). */
  cols: number;
  /** Kept values [rows, cols / m * n], in column order within each group. */
  values: Float32Array;
  /** Positions (0..m-1) of the kept values within their group, `bits` each, LSB-first bit-packed. */
  positions: Uint8Array;
  /** Bits per position: ceil(log2 m) (2 for 2:4). */
  bits: number;
}

/** Bits per stored position within a group of M. */
function positionBits(m: number): number {
  return Math.max(1, Math.ceil(Math.log2(m)));
}

/** Write `count` values of `bits` bits each into a fresh LSB-first bit stream. */
export function packBits(vals: ArrayLike<number>, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((vals.length * bits) / 8));
  let bit = 0;
  for (let i = 0; i < vals.length; i++) {
    const v = vals[i] as number;
    if (v < 0 || v >= 2 ** bits || !Number.isInteger(v)) throw new Error(`packBits: value ${v} at index ${i} does not fit in ${bits} bits`);
    for (let b = 0; b < bits; b++, bit++) if ((v >> b) & 1) out[bit >> 3] = (out[bit >> 3] as number) | (1 << (bit & 7));
  }
  return out;
}

/** Read `count` values of `bits` bits each from an LSB-first bit stream. */
export function unpackBits(bytes: Uint8Array, bits: number, count: number): Int32Array {
  if (bytes.length * 8 < count * bits)
    throw new Error(`unpackBits: ${count} values of ${bits} bits need ${Math.ceil((count * bits) / 8)} bytes, got ${bytes.length}`);
  const out = new Int32Array(count);
  let bit = 0;
  for (let i = 0; i < count; i++) {
    let v = 0;
    for (let b = 0; b < bits; b++, bit++) v |= (((bytes[bit >> 3] as number) >> (bit & 7)) & 1) << b;
    out[i] = v;
  }
  return out;
}

/**
 * Compress W [rows, cols] (row-major) to N:M form. The kept entries are `mask`'s ones when given
 * (exactly N per group), else the non-zeros of W (at most N per group; groups with fewer are
 * completed with zero-valued entries).
 */
export function compressNM(W: ArrayLike<number>, rows: number, cols: number, n = 2, m = 4, mask?: ArrayLike<number>): CompressedNM {
  validateNM(n, m);
  if (m > 65536) throw new Error(`compressNM: M must be at most 65536 (16-bit positions), got ${m}`);
  if (cols % m !== 0) throw new Error(`compressNM: the input dimension ${cols} must be divisible by M=${m}`);
  if (W.length !== rows * cols) throw new Error(`compressNM: W must have ${rows * cols} entries ([${rows}, ${cols}]), got ${W.length}`);
  if (mask && mask.length !== rows * cols)
    throw new Error(`compressNM: mask must have ${rows * cols} entries ([${rows}, ${cols}]), got ${mask.length}`);
  const G = (rows * cols) / m;
  const values = new Float32Array(G * n);
  const pos = new Int32Array(G * n);
  for (let g = 0; g < G; g++) {
    const base = g * m;
    let k = 0;
    for (let j = 0; j < m; j++) {
      const keep = mask ? mask[base + j] !== 0 : W[base + j] !== 0;
      if (!keep) continue;
      if (k === n) {
        const r = Math.floor(base / cols);
        const c = base % cols;
        throw new Error(
          `compressNM: group ${g} (row ${r}, columns ${c}..${c + m - 1}) has more than N=${n} ${mask ? 'ones in the mask' : 'non-zero weights'}`,
        );
      }
      values[g * n + k] = W[base + j] as number;
      pos[g * n + k] = j;
      k++;
    }
    if (mask && k !== n) throw new Error(`compressNM: mask group ${g} has ${k} ones, expected exactly N=${n}`);
    for (let j = 0; k < n; j++) {
      // pad with zero-valued entries at unused positions, keeping positions ascending
      let used = false;
      for (let q = 0; q < k; q++) if (pos[g * n + q] === j) used = true;
      if (used) continue;
      let q = k;
      while (q > 0 && (pos[g * n + q - 1] as number) > j) {
        pos[g * n + q] = pos[g * n + q - 1] as number;
        values[g * n + q] = values[g * n + q - 1] as number;
        q--;
      }
      pos[g * n + q] = j;
      values[g * n + q] = 0;
      k++;
    }
  }
  const bits = positionBits(m);
  return { n, m, rows, cols, values, positions: packBits(pos, bits), bits };
}

/** The dense W [rows, cols] of a compressed weight. */
export function decompressNM(c: CompressedNM): Float32Array {
  const G = (c.rows * c.cols) / c.m;
  const pos = unpackBits(c.positions, c.bits, G * c.n);
  const W = new Float32Array(c.rows * c.cols);
  for (let g = 0; g < G; g++) for (let k = 0; k < c.n; k++) W[g * c.m + (pos[g * c.n + k] as number)] = c.values[g * c.n + k] as number;
  return W;
}

/** Bytes of the compressed form (values + positions) and of the dense fp32 weight. */
export function compressedBytes(c: CompressedNM): { compressed: number; dense: number } {
  return { compressed: c.values.byteLength + c.positions.byteLength, dense: 4 * c.rows * c.cols };
}

/** Up to this many tokens the 2:4 kernel decodes positions inline (no per-row index buffer). */
const FUSED_MAX_TOKENS = 4;

/**
 * y = x W^T from the compressed weight: x [T, cols] -> y [T, rows] (row-major Float32Arrays).
 * Per output row the positions are decoded once and reused for every token.
 */
export function sparseMatMul(x: Float32Array, T: number, c: CompressedNM, out?: Float32Array): Float32Array {
  const { rows, cols, n, m } = c;
  if (x.length !== T * cols) throw new Error(`sparseMatMul: x must be [${T}, ${cols}] (${T * cols} entries), got ${x.length}`);
  const y = out ?? new Float32Array(T * rows);
  if (y.length !== T * rows) throw new Error(`sparseMatMul: out must have ${T * rows} entries, got ${y.length}`);
  const kPerRow = (cols / m) * n;
  const { values, positions, bits } = c;
  if (n === 2 && m === 4 && T <= FUSED_MAX_TOKENS) {
    // 2:4 with few tokens: a group's two 2-bit positions are one nibble (a row is `cols` bits, so
    // every row starts on a nibble), decoded inline for every token instead of into colIdx.
    for (let r = 0; r < rows; r++) {
      const bitRow = r * cols;
      const vOff = r * kPerRow;
      for (let t = 0; t < T; t++) {
        const xOff = t * cols;
        let acc = 0;
        for (let g = 0, base = 0; base < cols; g++, base += 4) {
          const bit = bitRow + 4 * g;
          const nib = ((positions[bit >> 3] as number) >> (bit & 7)) & 15;
          acc +=
            (values[vOff + 2 * g] as number) * (x[xOff + base + (nib & 3)] as number) +
            (values[vOff + 2 * g + 1] as number) * (x[xOff + base + (nib >> 2)] as number);
        }
        y[t * rows + r] = acc;
      }
    }
    return y;
  }
  const colIdx = new Int32Array(kPerRow);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) {
    let bit = r * kPerRow * bits;
    for (let k = 0; k < kPerRow; k++, bit += bits) {
      const b = bit >> 3;
      const sh = bit & 7;
      const word = (positions[b] ?? 0) | ((positions[b + 1] ?? 0) << 8) | ((positions[b + 2] ?? 0) << 16);
      colIdx[k] = Math.floor(k / n) * m + ((word >> sh) & mask);
    }
    const vOff = r * kPerRow;
    for (let t = 0; t < T; t++) {
      const xOff = t * cols;
      let acc = 0;
      for (let k = 0; k < kPerRow; k++) acc += (values[vOff + k] as number) * (x[xOff + (colIdx[k] as number)] as number);
      y[t * rows + r] = acc;
    }
  }
  return y;
}

/**
 * Inference-only linear layer over a compressed N:M weight: forward(x [..., in]) -> [..., out],
 * equal to the dense masked Linear. Reads x to the host (no gradient).
 */
export class SparseLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: Float32Array | null;

  constructor(
    readonly weight: CompressedNM,
    bias: Float32Array | null = null,
  ) {
    super();
    this.inFeatures = weight.cols;
    this.outFeatures = weight.rows;
    if (bias && bias.length !== weight.rows) throw new Error(`SparseLinear: bias must have ${weight.rows} entries, got ${bias.length}`);
    this.bias = bias;
  }

  forward(x: tf.Tensor /* [..., in] */): tf.Tensor /* [..., out] */ {
    const last = x.shape[x.shape.length - 1];
    if (last !== this.inFeatures)
      throw new Error(`SparseLinear.forward: input last dim must be ${this.inFeatures} (in_features), got shape [${x.shape}]`);
    const T = x.size / this.inFeatures;
    const y = sparseMatMul(x.dataSync() as Float32Array, T, this.weight);
    const b = this.bias;
    if (b)
      for (let t = 0; t < T; t++)
        for (let r = 0; r < this.outFeatures; r++) y[t * this.outFeatures + r] = (y[t * this.outFeatures + r] as number) + (b[r] as number);
    return tf.tensor(y, [...x.shape.slice(0, -1), this.outFeatures]);
  }
}
