/**
 * Residual VQ (Zeghidour et al. 2021, SoundStream, Algorithm 1): quantizer i codes the residual
 * z - sum_{j<i} q_j. As in EnCodec/audiocraft's ResidualVectorQuantization, each stage's output
 * is detached before it is subtracted and one straight-through estimator z + sg(sum_i q_i - z)
 * covers the sum, so dzq/dz = I; stage i's losses are computed on its own residual (whose
 * gradient reaches z) and summed.
 *
 * The options go to every stage's VectorQuantizer; with `kmeansInit` each stage initialises its
 * codebook on its own residual on the first training forward (as lucidrains' ResidualVQ), and
 * initFromData does the same explicitly, stage by stage.
 */
import { Module, ModuleList } from '../nn/module.js';
import { stopGradient } from '../nn/ops.js';
import { defaultRng } from '../rng/global.js';
import { tf } from '../tf.js';
import { type KMeansInitOptions, VectorQuantizer, type VectorQuantizerOptions } from './vq.js';

export type RVQOutput = {
  /** Straight-through sum of the Nq quantized residuals, same shape as z. */
  zq: tf.Tensor;
  /** int32 [..., Nq]. */
  indices: tf.Tensor;
  /** Sums over the quantizers. */
  loss: tf.Scalar;
  commitLoss: tf.Scalar;
  codebookLoss: tf.Scalar;
};

export class ResidualVQ extends Module {
  readonly layers: ModuleList<VectorQuantizer>;

  constructor(
    readonly numQuantizers: number,
    readonly numCodes: number,
    readonly dim: number,
    opts: VectorQuantizerOptions = {},
  ) {
    super();
    if (!Number.isInteger(numQuantizers) || numQuantizers < 1)
      throw new Error(`ResidualVQ: numQuantizers must be a positive integer, got ${numQuantizers}`);
    const rng = opts.rng ?? defaultRng(); // shared: the layers draw their codebooks in turn
    this.layers = this.module('layers', new ModuleList<VectorQuantizer>());
    for (let i = 0; i < numQuantizers; i++) this.layers.push(new VectorQuantizer(numCodes, dim, { ...opts, rng }));
  }

  /** z [..., D] -> summed straight-through zq, indices [..., Nq], summed losses. */
  forward(z: tf.Tensor): RVQOutput {
    if (z.shape[z.rank - 1] !== this.dim) throw new Error(`ResidualVQ.forward: last dim must be ${this.dim}, got shape [${z.shape}]`);
    return tf.tidy(() => {
      let residual = z;
      let total = tf.zerosLike(z);
      let loss = tf.scalar(0);
      let commitLoss = tf.scalar(0);
      let codebookLoss = tf.scalar(0);
      const idx: tf.Tensor[] = [];
      for (const q of this.layers) {
        const o = q.forward(residual);
        const qi = stopGradient(o.zq);
        total = total.add(qi);
        residual = residual.sub(qi);
        loss = loss.add(o.loss);
        commitLoss = commitLoss.add(o.commitLoss);
        codebookLoss = codebookLoss.add(o.codebookLoss);
        idx.push(o.indices);
      }
      return {
        zq: z.add(stopGradient(total.sub(z))),
        indices: tf.stack(idx, -1),
        loss: loss as tf.Scalar,
        commitLoss: commitLoss as tf.Scalar,
        codebookLoss: codebookLoss as tf.Scalar,
      };
    });
  }

  /**
   * k-means init of every stage's codebook (VectorQuantizer.initFromData): stage i on the residuals
   * of z [..., D] left by stages < i after their init. Returns each stage's counts and inertia.
   */
  initFromData(z: tf.Tensor, opts: KMeansInitOptions = {}): { counts: Int32Array; inertia: number }[] {
    if (z.rank < 1 || z.shape[z.rank - 1] !== this.dim)
      throw new Error(`ResidualVQ.initFromData: z's last dim must be ${this.dim}, got shape [${z.shape}]`);
    return tf.tidy(() => {
      let residual = stopGradient(z.reshape([-1, this.dim])) as tf.Tensor2D; // [N, D]
      return this.layers.items.map((q) => {
        const r = q.initFromData(residual, opts);
        residual = residual.sub(tf.gather(q.codebook(), q.nearest(residual))) as tf.Tensor2D;
        return r;
      });
    });
  }

  /** indices int32 [..., Nq] -> sum of the codes [..., D]. */
  decode(indices: tf.Tensor): tf.Tensor {
    if (indices.rank < 1 || indices.shape[indices.rank - 1] !== this.numQuantizers)
      throw new Error(`ResidualVQ.decode: last dim must be ${this.numQuantizers} (numQuantizers), got shape [${indices.shape}]`);
    return tf.tidy(() => {
      const parts = tf.unstack(indices, indices.rank - 1);
      return parts.map((p, i) => this.layers.at(i).decode(p)).reduce((a, b) => a.add(b));
    });
  }
}
