/**
 * Finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made
 * Simple", sec. 3 and App. A), as in EMOVA's speech tokenizer (my_scripts/fsq.py, a port of the
 * Google FSQ notebook), per channel d with L = levels[d]:
 *   h = (L - 1)(1 - eps) / 2,  offset = 0.5 for even L else 0,  shift = tan(offset / h)
 *   bound(z) = tanh(z + shift) h - offset
 *   codes = round_ste(bound(z)) / floor(L / 2)                        in [-1, 1]
 *   index = sum_d (code_d hw_d + hw_d) basis_d,  hw = floor(L / 2),  basis = [1, L_0, L_0 L_1, ...]
 * With eps = 1e-3 and L = 8: h = 3.4965, shift = 0.14398, codes in {-1, -0.75, ..., 0.75}.
 *
 * tan vs atanh: the Google notebook and EMOVA compute shift = tan(offset / h); lucidrains'
 * finite_scalar_quantization.py computes atanh(offset / h), the exact inverse, for which
 * bound(0) = 0. The two shifts differ by 8e-6 at L = 8 (0.143982 vs 0.143990), so they agree on
 * the brief's golden indices and differ only within ~3e-5 of a rounding boundary. The default is
 * 'tan', to reproduce EMOVA's units exactly; `shift: 'atanh'` gives lucidrains'.
 */
import { hostValuesIfReady } from '../backend/read.js';
import { Module } from '../nn/module.js';
import { straightThrough } from '../nn/ops.js';
import { tf } from '../tf.js';
import { l2Normalize } from './vq.js';

export interface FSQOptions {
  /** Shrinks h = (L - 1)(1 - eps) / 2 so tanh never reaches a half-integer (default 1e-3). */
  eps?: number;
  /** How the even-level shift is computed (default 'tan', EMOVA / Google; 'atanh', lucidrains). */
  shift?: 'tan' | 'atanh';
  /** l2-normalise z before bounding (EMOVA's `l2_norm` flag). Default false. */
  l2Norm?: boolean;
}

export class FSQ extends Module {
  readonly levels: number[];
  readonly dim: number;
  readonly codebookSize: number;
  readonly eps: number;
  readonly shiftKind: 'tan' | 'atanh';
  readonly l2Norm: boolean;
  /** [1, L_0, L_0 L_1, ...] */
  readonly basis: number[];
  /** floor(L / 2) */
  readonly halfWidth: number[];

  constructor(levels: number[], opts: FSQOptions = {}) {
    super();
    if (!Array.isArray(levels) || levels.length === 0 || !levels.every((l) => Number.isInteger(l) && l >= 2))
      throw new Error(`FSQ: levels must be a non-empty array of integers >= 2, got ${JSON.stringify(levels)}`);
    const size = levels.reduce((a, b) => a * b, 1);
    if (size > 2 ** 31 - 1) throw new Error(`FSQ: codebook size prod(levels) must fit int32 (< 2^31), got ${size}`);
    this.eps = opts.eps ?? 1e-3;
    if (!(this.eps >= 0 && this.eps < 1)) throw new Error(`FSQ: eps must be in [0, 1), got ${this.eps}`);
    this.shiftKind = opts.shift ?? 'tan';
    if (this.shiftKind !== 'tan' && this.shiftKind !== 'atanh')
      throw new Error(`FSQ: shift must be 'tan' or 'atanh', got ${JSON.stringify(this.shiftKind)}`);
    this.l2Norm = opts.l2Norm ?? false;
    this.levels = [...levels];
    this.dim = levels.length;
    this.codebookSize = size;
    this.halfWidth = levels.map((l) => Math.floor(l / 2));
    this.basis = levels.map((_, i) => levels.slice(0, i).reduce((a, b) => a * b, 1));
  }

  /** Per-channel constants [h, offset, shift] of the bound. */
  boundConstants(): { h: number[]; offset: number[]; shift: number[] } {
    const h = this.levels.map((l) => ((l - 1) * (1 - this.eps)) / 2);
    const offset = this.levels.map((l) => (l % 2 === 0 ? 0.5 : 0));
    const f = this.shiftKind === 'tan' ? Math.tan : Math.atanh;
    return { h, offset, shift: offset.map((o, i) => f(o / (h[i] as number))) };
  }

  /** bound(z) = tanh(z + shift) h - offset; z [..., d] -> [..., d]. */
  bound(z: tf.Tensor): tf.Tensor {
    this.checkLastDim('bound', z);
    const { h, offset, shift } = this.boundConstants();
    return tf.tidy(() =>
      tf
        .tanh(z.add(tf.tensor1d(shift)))
        .mul(tf.tensor1d(h))
        .sub(tf.tensor1d(offset)),
    );
  }

  /** Quantized codes in [-1, 1] with a straight-through round; z [..., d] -> [..., d]. */
  quantize(z: tf.Tensor): tf.Tensor {
    this.checkLastDim('quantize', z);
    return tf.tidy(() => {
      const b = this.bound(this.l2Norm ? l2Normalize(z) : z);
      return straightThrough(b, tf.round(b)).div(tf.tensor1d(this.halfWidth));
    });
  }

  /** codes [..., d] in [-1, 1] -> int32 indices [...]. */
  codesToIndices(codes: tf.Tensor): tf.Tensor {
    this.checkLastDim('codesToIndices', codes);
    return tf.tidy(() => {
      const hw = tf.tensor1d(this.halfWidth);
      const digits = tf.round(codes.mul(hw).add(hw)).toInt(); // [..., d] in 0..L-1
      return digits.mul(tf.tensor1d(this.basis, 'int32')).sum(-1);
    });
  }

  /**
   * int32 indices [...] -> codes [..., d] (reads the indices to check their range; on webgpu only
   * while they are host data: indices already on the GPU cannot be read synchronously, and go unchecked).
   */
  indicesToCodes(indices: tf.Tensor): tf.Tensor {
    if (indices.dtype !== 'int32') throw new Error(`FSQ.indicesToCodes: indices must be int32, got ${indices.dtype}`);
    const v = hostValuesIfReady(indices) ?? [];
    for (let i = 0; i < v.length; i++) {
      const x = v[i] as number;
      if (x < 0 || x >= this.codebookSize)
        throw new Error(`FSQ.indicesToCodes: index ${x} at flat position ${i} is out of range [0, ${this.codebookSize})`);
    }
    return tf.tidy(() => {
      const idx = indices.expandDims(-1); // [..., 1]
      const digits = tf.mod(tf.floorDiv(idx, tf.tensor1d(this.basis, 'int32')), tf.tensor1d(this.levels, 'int32')).toFloat(); // [..., d]
      const hw = tf.tensor1d(this.halfWidth);
      return digits.sub(hw).div(hw);
    });
  }

  /** Every code, in index order: [prod(levels), d]. */
  implicitCodebook(): tf.Tensor2D {
    return tf.tidy(() => this.indicesToCodes(tf.range(0, this.codebookSize, 1, 'int32')) as tf.Tensor2D);
  }

  /** z [..., d] -> { codes (straight-through), indices int32 [...] }. */
  forward(z: tf.Tensor): { codes: tf.Tensor; indices: tf.Tensor } {
    return tf.tidy(() => {
      const codes = this.quantize(z);
      return { codes, indices: this.codesToIndices(codes) };
    });
  }

  private checkLastDim(what: string, x: tf.Tensor): void {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.dim)
      throw new Error(`FSQ.${what}: last dim must be ${this.dim} (levels ${JSON.stringify(this.levels)}), got shape [${x.shape}]`);
  }
}
