/**
 * Finite scalar quantization (Mentzer et al. 2023, "FSQ: Finite Scalar Quantization: VQ-VAE Made
 * Simple"), as in EMOVA's fsq.py / lucidrains' finite_scalar_quantization.py:
 *   bound(z) = tanh(z + shift) * h - offset,  h = (L - 1)(1 - 1e-3) / 2,
 *   offset = 0.5 for even L else 0,  shift = atanh(offset / h)
 *   codes = round_ste(bound(z)) / floor(L / 2)                       in [-1, 1]
 *   index = sum_d (code_d * hw_d + hw_d) * basis_d,  hw = floor(L/2), basis = cumprod([1, L_0, ...])
 * The brief writes shift = tan(offset / h); the reference computes atanh. The two agree to 1e-5 at
 * these levels (0.14398 vs 0.14399) and give the same golden indices; atanh is what makes
 * bound(0) = 0 exactly, so we follow it.
 */
import { straightThrough } from '../nn/ops.js';
import { tf } from '../tf.js';

export class FSQ {
  readonly levels: number[];
  readonly dim: number;
  readonly codebookSize: number;
  private readonly basis: number[];
  private readonly halfWidth: number[];

  constructor(levels: number[]) {
    if (!Array.isArray(levels) || levels.length === 0 || !levels.every((l) => Number.isInteger(l) && l >= 2))
      throw new Error(`FSQ: levels must be a non-empty array of integers >= 2, got ${JSON.stringify(levels)}`);
    this.levels = [...levels];
    this.dim = levels.length;
    this.halfWidth = levels.map((l) => Math.floor(l / 2));
    this.basis = levels.map((_, i) => levels.slice(0, i).reduce((a, b) => a * b, 1));
    this.codebookSize = levels.reduce((a, b) => a * b, 1);
  }

  /** bound(z) per the formula above; z [..., d]. */
  bound(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = this.levels.map((l) => ((l - 1) * (1 - 1e-3)) / 2);
      const offset = this.levels.map((l) => (l % 2 === 0 ? 0.5 : 0));
      const shift = offset.map((o, i) => Math.atanh(o / (h[i] as number)));
      return tf
        .tanh(z.add(tf.tensor1d(shift)))
        .mul(tf.tensor1d(h))
        .sub(tf.tensor1d(offset));
    });
  }

  /** Quantized codes in [-1, 1] with a straight-through gradient; z [..., d] -> [..., d]. */
  quantize(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      if (z.shape[z.rank - 1] !== this.dim)
        throw new Error(`FSQ.quantize: last dim must be ${this.dim} (levels ${JSON.stringify(this.levels)}), got shape [${z.shape}]`);
      const b = this.bound(z);
      return straightThrough(b, tf.round(b)).div(tf.tensor1d(this.halfWidth));
    });
  }

  /** codes [..., d] in [-1, 1] -> int32 indices [...]. */
  codesToIndices(codes: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const hw = tf.tensor1d(this.halfWidth);
      const digits = tf.round(codes.mul(hw).add(hw)); // [..., d] in 0..L-1
      return digits.mul(tf.tensor1d(this.basis)).sum(-1).toInt();
    });
  }

  /** int32 indices [...] -> codes [..., d]. */
  indicesToCodes(indices: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      if (indices.dtype !== 'int32') throw new Error(`FSQ.indicesToCodes: indices must be int32, got ${indices.dtype}`);
      const v = indices.dataSync();
      for (const x of v)
        if (x < 0 || x >= this.codebookSize) throw new Error(`FSQ.indicesToCodes: index ${x} out of range [0, ${this.codebookSize})`);
      const idx = indices.expandDims(-1).toFloat();
      const digits = tf.floor(idx.div(tf.tensor1d(this.basis))).mod(tf.tensor1d(this.levels)); // [..., d]
      const hw = tf.tensor1d(this.halfWidth);
      return digits.sub(hw).div(hw);
    });
  }

  /** z [..., d] -> { codes, indices }. */
  forward(z: tf.Tensor): { codes: tf.Tensor; indices: tf.Tensor } {
    return tf.tidy(() => {
      const codes = this.quantize(z);
      return { codes, indices: this.codesToIndices(codes) };
    });
  }
}
