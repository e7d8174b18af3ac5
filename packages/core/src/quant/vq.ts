/**
 * Vector quantizer (VQ-VAE, van den Oord et al. 2017), laid out as taming-transformers'
 * VectorQuantizer2 (used by SEED and Liquid's VQGAN): codebook `embedding.weight` [K, D], nearest
 * code by the expanded squared distance ||z||^2 + ||e||^2 - 2 z.e, straight-through z_q.
 *   loss = ||sg(z_q) - z||^2 * commit + ||z_q - sg(z)||^2 * codebook   (means over elements)
 * with VectorQuantizer2's `legacy` default (commit 1, codebook beta) or the non-legacy form
 * (commit beta, codebook 1). Optional EMA codebook updates (VQ-VAE-2: decay, Laplace smoothing;
 * the codebook term is then dropped), dead-code restart from batch vectors, and usage/perplexity.
 */
import { type Init, initTensor } from '../nn/init.js';
import { Module, ModuleList } from '../nn/module.js';
import { stopGradient } from '../nn/ops.js';
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';

export interface VectorQuantizerOptions {
  /** Weight of the commitment/codebook terms, as VectorQuantizer2's beta (default 0.25). */
  beta?: number;
  /** VectorQuantizer2 `legacy` (default true): beta multiplies the codebook term; false: the commitment term. */
  legacy?: boolean;
  /** EMA codebook updates with this decay (e.g. 0.99); the codebook is then a buffer. */
  emaDecay?: number;
  /** Laplace smoothing epsilon of the EMA cluster sizes (default 1e-5). */
  emaEps?: number;
  /** Restart codes unused for this many training forwards with random batch vectors (0 = off). */
  deadCodeSteps?: number;
  /** Default U(-1/K, 1/K) as VectorQuantizer2. */
  init?: Init;
  rng?: Rng;
}

export interface VQOutput {
  /** Straight-through quantized vectors, same shape as z. */
  zq: tf.Tensor;
  /** Code indices, int32, z's shape without the last axis. */
  indices: tf.Tensor;
  loss: tf.Scalar;
  commitLoss: tf.Scalar;
  codebookLoss: tf.Scalar;
  /** exp(entropy) of the batch's code distribution. */
  perplexity: tf.Scalar;
  /** Fraction of codes used in the batch. */
  usage: tf.Scalar;
}

export class VectorQuantizer extends Module {
  readonly embedding: CodebookHolder;
  readonly beta: number;
  readonly legacy: boolean;
  private readonly emaDecay: number | null;
  private readonly emaEps: number;
  private readonly clusterSize: tf.Variable | null; // [K]
  private readonly embedSum: tf.Variable | null; // [K, D]
  private readonly deadCodeSteps: number;
  private readonly unusedFor: Int32Array;
  private readonly rng: Rng;

  constructor(
    readonly numCodes: number,
    readonly dim: number,
    opts: VectorQuantizerOptions = {},
  ) {
    super();
    if (!Number.isInteger(numCodes) || numCodes < 1)
      throw new Error(`VectorQuantizer: numCodes must be a positive integer, got ${numCodes}`);
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`VectorQuantizer: dim must be a positive integer, got ${dim}`);
    this.rng = opts.rng ?? defaultRng();
    this.beta = opts.beta ?? 0.25;
    this.legacy = opts.legacy ?? true;
    this.emaDecay = opts.emaDecay ?? null;
    if (this.emaDecay !== null && !(this.emaDecay > 0 && this.emaDecay < 1))
      throw new Error(`VectorQuantizer: emaDecay must be in (0, 1), got ${this.emaDecay}`);
    this.emaEps = opts.emaEps ?? 1e-5;
    const init = initTensor([numCodes, dim], opts.init ?? { kind: 'uniform', bound: 1 / numCodes }, this.rng, dim, numCodes);
    this.embedding = this.module('embedding', new CodebookHolder(init, this.emaDecay === null));
    if (this.emaDecay !== null) {
      this.clusterSize = this.buffer('cluster_size', tf.ones([numCodes]));
      this.embedSum = this.buffer('embed_avg', this.embedding.weight.clone());
    } else {
      this.clusterSize = null;
      this.embedSum = null;
    }
    this.deadCodeSteps = opts.deadCodeSteps ?? 0;
    this.unusedFor = new Int32Array(numCodes);
  }

  /** Nearest-code indices of flat vectors [N, D] by the expanded squared distance. */
  nearest(flat: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const e = this.embedding.weight; // [K, D]
      const d = flat
        .square()
        .sum(1, true)
        .add(e.square().sum(1).reshape([1, -1]))
        .sub(tf.matMul(flat, e, false, true).mul(2)); // [N, K]
      return tf.argMin(d, 1).toInt() as tf.Tensor1D;
    });
  }

  /** Code vectors of indices [...] -> [..., D]. */
  decode(indices: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      if (indices.dtype !== 'int32') throw new Error(`VectorQuantizer.decode: indices must be int32, got ${indices.dtype}`);
      return tf.gather(this.embedding.weight, indices.reshape([-1])).reshape([...indices.shape, this.dim]);
    });
  }

  forward(z: tf.Tensor /* [..., D] */): VQOutput {
    if (z.shape[z.rank - 1] !== this.dim) throw new Error(`VectorQuantizer.forward: last dim must be ${this.dim}, got shape [${z.shape}]`);
    const out = tf.tidy(() => {
      const flat = z.reshape([-1, this.dim]) as tf.Tensor2D; // [N, D]
      const idx = this.nearest(stopGradient(flat) as tf.Tensor2D); // [N]
      // one-hot @ codebook rather than gather: gather's gradient rejects int indices that sit on the
      // tape, and the codebook gradient becomes one matmul (no UnsortedSegmentSum)
      const q = tf.matMul(tf.oneHot(idx, this.numCodes).toFloat(), this.embedding.weight); // [N, D]
      const commitLoss = stopGradient(q).sub(flat).square().mean() as tf.Scalar;
      const codebookLoss = (this.emaDecay === null ? q.sub(stopGradient(flat)).square().mean() : tf.scalar(0)) as tf.Scalar;
      const [wc, wb] = this.legacy ? [1, this.beta] : [this.beta, 1];
      const loss = commitLoss.mul(wc).add(codebookLoss.mul(wb)) as tf.Scalar;
      const zq = flat.add(stopGradient(q.sub(flat))).reshape(z.shape); // straight-through
      const counts = tf.oneHot(idx, this.numCodes).sum(0); // [K]
      const p = counts.div(idx.shape[0]);
      const perplexity = tf.exp(tf.neg(p.mul(tf.log(p.add(1e-10))).sum())) as tf.Scalar;
      const usage = tf.greater(counts, 0).toFloat().mean() as tf.Scalar;
      if (this.training) this.trainUpdates(stopGradient(flat) as tf.Tensor2D, idx, counts);
      return { zq, indices: idx.reshape(z.shape.slice(0, -1)), loss, commitLoss, codebookLoss, perplexity, usage };
    });
    return out;
  }

  /** EMA codebook update and dead-code restart (training mode only; no gradient). */
  private trainUpdates(flat: tf.Tensor2D, idx: tf.Tensor1D, counts: tf.Tensor): void {
    if (this.emaDecay !== null && this.clusterSize && this.embedSum) {
      const d = this.emaDecay;
      const onehot = tf.oneHot(idx, this.numCodes).toFloat(); // [N, K]
      this.clusterSize.assign(this.clusterSize.mul(d).add(counts.mul(1 - d)));
      this.embedSum.assign(this.embedSum.mul(d).add(tf.matMul(onehot, flat, true, false).mul(1 - d))); // [K, D]
      const n = this.clusterSize.sum();
      const smoothed = this.clusterSize
        .add(this.emaEps)
        .div(n.add(this.numCodes * this.emaEps))
        .mul(n); // Laplace
      this.embedding.weight.assign(this.embedSum.div(smoothed.expandDims(1)));
    }
    if (this.deadCodeSteps > 0) {
      const c = counts.dataSync();
      const dead: number[] = [];
      for (let k = 0; k < this.numCodes; k++) {
        this.unusedFor[k] = (c[k] as number) > 0 ? 0 : (this.unusedFor[k] as number) + 1;
        if ((this.unusedFor[k] as number) >= this.deadCodeSteps) dead.push(k);
      }
      if (dead.length) {
        const N = flat.shape[0];
        const pick = tf.tensor1d(
          dead.map(() => this.rng.int(0, N)),
          'int32',
        );
        const fresh = tf.gather(flat, pick); // [dead, D]
        const w = this.embedding.weight;
        const mask = tf.oneHot(tf.tensor1d(dead, 'int32'), this.numCodes).sum(0).reshape([-1, 1]); // [K, 1]
        const scattered = tf.matMul(tf.oneHot(tf.tensor1d(dead, 'int32'), this.numCodes).toFloat(), fresh, true, false); // [K, D]
        w.assign(w.mul(tf.sub(1, mask)).add(scattered));
        if (this.embedSum && this.clusterSize) {
          this.embedSum.assign(this.embedSum.mul(tf.sub(1, mask)).add(scattered));
          this.clusterSize.assign(this.clusterSize.mul(tf.sub(1, mask.reshape([-1]))).add(mask.reshape([-1])));
        }
        for (const k of dead) this.unusedFor[k] = 0;
      }
    }
  }
}

/** Holds the codebook under the name `embedding.weight` (trainable, or a buffer with EMA). */
export class CodebookHolder extends Module {
  readonly weight: tf.Variable;
  constructor(init: tf.Tensor, trainable: boolean) {
    super();
    this.weight = trainable ? this.param('weight', init) : this.buffer('weight', init);
  }
}

/** Residual VQ (SoundStream): quantizer q_i codes the residual left by q_1..q_{i-1}. */
export class ResidualVQ extends Module {
  readonly layers: ModuleList<VectorQuantizer>;

  constructor(
    readonly numQuantizers: number,
    numCodes: number,
    readonly dim: number,
    opts: VectorQuantizerOptions = {},
  ) {
    super();
    if (!Number.isInteger(numQuantizers) || numQuantizers < 1)
      throw new Error(`ResidualVQ: numQuantizers must be a positive integer, got ${numQuantizers}`);
    this.layers = this.module('layers', new ModuleList<VectorQuantizer>());
    for (let i = 0; i < numQuantizers; i++) this.layers.push(new VectorQuantizer(numCodes, dim, opts));
  }

  /** z [..., D] -> summed straight-through zq, indices [..., Nq], summed losses. */
  forward(z: tf.Tensor): { zq: tf.Tensor; indices: tf.Tensor; loss: tf.Scalar } {
    return tf.tidy(() => {
      let residual = z;
      let total = tf.zerosLike(z);
      let loss = tf.scalar(0);
      const idx: tf.Tensor[] = [];
      for (const q of this.layers) {
        const o = q.forward(residual);
        total = total.add(o.zq);
        residual = residual.sub(stopGradient(o.zq));
        loss = loss.add(o.loss);
        idx.push(o.indices);
      }
      return { zq: z.add(stopGradient(total.sub(z))), indices: tf.stack(idx, -1), loss: loss as tf.Scalar };
    });
  }

  /** indices [..., Nq] -> sum of the codes [..., D]. */
  decode(indices: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      if (indices.shape[indices.rank - 1] !== this.numQuantizers)
        throw new Error(`ResidualVQ.decode: last dim must be ${this.numQuantizers}, got shape [${indices.shape}]`);
      const parts = tf.unstack(indices, indices.rank - 1);
      return parts.map((p, i) => this.layers.at(i).decode(p)).reduce((a, b) => a.add(b));
    });
  }
}
