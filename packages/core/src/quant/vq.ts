/**
 * Vector quantizer (van den Oord et al. 2017, "Neural Discrete Representation Learning", eq. 3),
 * laid out as taming-transformers' VectorQuantizer2 (the quantizer of SEED and of Liquid's VQGAN):
 * codebook `embedding.weight` [K, D], nearest code by the expanded squared distance
 * ||z||^2 + ||e||^2 - 2 z.e (first index on ties, as torch.argmin), straight-through output
 * z_q = z + sg(e - z).
 *
 *   commitLoss   = mean (z - sg(e))^2        codebookLoss = mean (sg(z) - e)^2   (means over elements)
 *   legacy (VectorQuantizer2 default): loss = commitLoss + beta * codebookLoss   (beta on the codebook term)
 *   legacy = false (the paper's eq. 3): loss = beta * commitLoss + codebookLoss
 *   EMA codebook:                       loss = beta * commitLoss                  (codebook term dropped)
 *
 * Hence with legacy, dL/dz = 2 (z - sg(z_q)) / N and dL/de_k = 2 beta sum_{z -> k} (e_k - z) / N
 * (N = number of elements of z), the SEED brief's golden gradients.
 *
 * Options:
 * - EMA codebook (VQ-VAE-2, Razavi et al. 2019, App. A; lucidrains' EuclideanCodebook): with n_k the
 *   batch count and s_k the batch sum of code k, N_k <- d N_k + (1 - d) n_k, m_k <- d m_k + (1 - d) s_k,
 *   e_k = m_k / N~_k with Laplace smoothing N~_k = (N_k + eps) / (sum N + K eps) * sum N. The codebook is
 *   then a buffer (`embedding.weight`, with `cluster_size` and `embed_avg`). Cluster sizes start at 1
 *   and `embed_avg` at the codebook, so e = m / N holds at init and an unused code decays towards
 *   itself instead of being divided by ~eps.
 * - Dead-code restart (Jukebox / lucidrains' `threshold_ema_dead_code`, counted in steps here): a code
 *   unused for `deadCodeSteps` consecutive training forwards is replaced by a batch vector drawn with
 *   the module's Rng (distinct vectors while the batch has enough).
 * - Cosine codes (ViT-VQGAN, Yu et al. 2022, sec. 3.2): z and the codes are l2-normalised before the
 *   lookup, the losses and the output.
 * - k-means codebook init (`kmeansInit`; Łańcucki et al. 2020, "Robust training of vector quantized
 *   bottleneck models"; lucidrains' `kmeans_init`): on the first training forward, before the lookup,
 *   the codebook becomes the k-means centres (kmeans.ts: k-means++ seeds from the module's Rng, then
 *   Lloyd) of at most `sample` rows of the batch (l2-normalised with `cosine`). With EMA the statistics
 *   start as if the codebook had seen that batch: cluster_size = max(n_k, 1) (lucidrains' bins, with
 *   empty clusters at 1 as at the default init) and embed_avg = c_k * cluster_size (lucidrains'
 *   embed_sum), so e = m / N still holds. The float32 buffer `initted` [1] (0 = not yet, as lucidrains)
 *   is in the state dict, so a loaded checkpoint is not re-initialised; it exists only with
 *   `kmeansInit`, so checkpoints of the default quantizer keep their keys. `initFromData` does the same
 *   on demand (e.g. from a large sample of encoder outputs). Inside a gradient scope (tf.grad,
 *   optimizer.minimize) tfjs keeps the Lloyd steps' [N, K] intermediates on its tape until the scope
 *   ends; for a large sample x K call initFromData before training instead.
 *
 * The code lookup is a gather whose indices are copied off the autodiff tape (tfjs differentiates
 * gather with respect to its indices and fails on int32 otherwise); the codebook gradient is then
 * UnsortedSegmentSum, which initBackend registers for wasm.
 */
import { hostValuesIfReady, readSync } from '../backend/read.js';
import { type Init, initTensor } from '../nn/init.js';
import { Module } from '../nn/module.js';
import { stopGradient } from '../nn/ops.js';
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import { kmeans } from './kmeans.js';

export interface VectorQuantizeOptions {
  /** Weight of the commitment or codebook term, as VectorQuantizer2's beta (default 0.25). */
  beta?: number;
  /** VectorQuantizer2 `legacy` (default true): beta multiplies the codebook term; false: the commitment term. */
  legacy?: boolean;
  /** The codebook is EMA-updated: the loss is beta * commitLoss only. */
  ema?: boolean;
  /** l2-normalise z and the codes (cosine-similarity lookup). */
  cosine?: boolean;
}

export type VQOutput = {
  /** Straight-through quantized vectors, same shape as z. */
  zq: tf.Tensor;
  /** Code indices, int32, z's shape without the last axis. */
  indices: tf.Tensor;
  /** The weighted sum of the two terms (see the file comment). */
  loss: tf.Scalar;
  /** mean (z - sg(e))^2, unweighted. */
  commitLoss: tf.Scalar;
  /** mean (sg(z) - e)^2, unweighted; 0 with an EMA codebook. */
  codebookLoss: tf.Scalar;
  /** exp(entropy) of the batch's average one-hot code distribution. */
  perplexity: tf.Scalar;
  /** Fraction of the K codes used in the batch. */
  usage: tf.Scalar;
};

/** Weights [commit, codebook] of the two loss terms. */
export function vqLossWeights(opts: VectorQuantizeOptions = {}): [number, number] {
  const beta = opts.beta ?? 0.25;
  if (opts.ema) return [beta, 0];
  return (opts.legacy ?? true) ? [1, beta] : [beta, 1];
}

/** Rows scaled to unit l2 norm (F.normalize, eps 1e-12). */
export function l2Normalize(x: tf.Tensor, axis = -1): tf.Tensor {
  return tf.tidy(() => x.div(tf.maximum(tf.norm(x, 'euclidean', axis, true), 1e-12)));
}

/**
 * Index of the nearest code of each row by ||z||^2 + ||e||^2 - 2 z.e (first index on ties).
 * flat [N, D], codebook [K, D] -> int32 [N], a fresh tensor with no autodiff history.
 */
export function nearestCode(flat: tf.Tensor2D, codebook: tf.Tensor2D): tf.Tensor1D {
  if (flat.rank !== 2 || codebook.rank !== 2 || flat.shape[1] !== codebook.shape[1])
    throw new Error(`nearestCode: expected z [N, D] and codebook [K, D] with equal D, got [${flat.shape}] and [${codebook.shape}]`);
  const idx = tf.tidy(() => {
    const d = flat
      .square()
      .sum(1, true) // [N, 1]
      .add(codebook.square().sum(1).reshape([1, -1])) // [N, K]
      .sub(tf.matMul(flat, codebook, false, true).mul(2)); // [N, K]
    return tf.argMin(d, 1); // [N]
  });
  // A host copy has no autodiff history (the tape then holds no [N, K] distances); on webgpu, whose
  // GPU data cannot be read synchronously, argMin's output is returned as it is (its gradient is zero).
  const values = hostValuesIfReady(idx);
  if (!values) return idx as tf.Tensor1D;
  idx.dispose();
  return tf.tensor1d(values as Int32Array, 'int32');
}

interface QuantizeParts {
  out: VQOutput;
  /** Vectors as looked up (normalised with cosine), no gradient. [N, D] */
  flat: tf.Tensor2D;
  idx: tf.Tensor1D;
  /** Batch count of each code. [K] */
  counts: tf.Tensor1D;
}

function quantizeParts(z: tf.Tensor, codebook: tf.Tensor2D, opts: VectorQuantizeOptions): QuantizeParts {
  const [K, D] = codebook.shape;
  if (z.shape[z.rank - 1] !== D) throw new Error(`vectorQuantize: z's last dim must be ${D} (codebook dim), got shape [${z.shape}]`);
  let flat = z.reshape([-1, D]) as tf.Tensor2D; // [N, D]
  let e = codebook; // [K, D]
  if (opts.cosine) {
    flat = l2Normalize(flat) as tf.Tensor2D;
    e = l2Normalize(e) as tf.Tensor2D;
  }
  const idx = nearestCode(flat, e); // [N], off the tape
  const q = tf.gather(e, idx); // [N, D]
  const commitLoss = flat.sub(stopGradient(q)).square().mean() as tf.Scalar;
  const codebookLoss = (opts.ema ? tf.scalar(0) : q.sub(stopGradient(flat)).square().mean()) as tf.Scalar;
  const [wc, wb] = vqLossWeights(opts);
  const loss = commitLoss.mul(wc).add(codebookLoss.mul(wb)) as tf.Scalar;
  const zq = flat.add(stopGradient(q.sub(flat))).reshape(z.shape); // [..., D]
  const N = idx.shape[0];
  const counts = tf.unsortedSegmentSum(tf.ones([N]), idx, K) as tf.Tensor1D; // [K]
  const p = counts.div(Math.max(N, 1));
  const perplexity = tf.exp(
    p
      .mul(tf.log(p.add(1e-10)))
      .sum()
      .neg(),
  ) as tf.Scalar;
  const usage = tf.greater(counts, 0).toFloat().mean() as tf.Scalar;
  const indices = idx.reshape(z.shape.slice(0, -1));
  return {
    out: { zq, indices, loss, commitLoss, codebookLoss, perplexity, usage },
    flat: stopGradient(flat) as tf.Tensor2D,
    idx,
    counts,
  };
}

/** Quantize z [..., D] with a codebook [K, D] (no state, no updates): VectorQuantizer's forward as a function. */
export function vectorQuantize(z: tf.Tensor, codebook: tf.Tensor, opts: VectorQuantizeOptions = {}): VQOutput {
  if (codebook.rank !== 2) throw new Error(`vectorQuantize: codebook must be [K, D], got shape [${codebook.shape}]`);
  return tf.tidy(() => quantizeParts(z, codebook as tf.Tensor2D, opts).out);
}

export interface VectorQuantizerOptions {
  /** Weight of the commitment or codebook term, as VectorQuantizer2's beta (default 0.25). */
  beta?: number;
  /** VectorQuantizer2 `legacy` (default true): beta multiplies the codebook term; false: the commitment term. */
  legacy?: boolean;
  /** EMA codebook updates with this decay in (0, 1) (e.g. 0.99); the codebook is then a buffer. */
  emaDecay?: number;
  /** Laplace smoothing epsilon of the EMA cluster sizes (default 1e-5). */
  emaEps?: number;
  /** Restart codes unused for this many consecutive training forwards (default 0 = off). */
  deadCodeSteps?: number;
  /** l2-normalised codes and inputs (cosine lookup). Default false. */
  cosine?: boolean;
  /** Codebook init; default U(-1/K, 1/K) as VectorQuantizer2. */
  init?: Init;
  /**
   * k-means codebook init on the first training forward (default off; `true` = `{}`). The state dict
   * then holds the float32 flag `initted` [1].
   */
  kmeansInit?: boolean | KMeansInitOptions;
  rng?: Rng;
}

export interface KMeansInitOptions {
  /** Lloyd iterations, an integer >= 1 (default 10). */
  iters?: number;
  /** At most this many rows (drawn without replacement with the module's Rng) go into k-means (default 4096). */
  sample?: number;
}

function checkKMeansInit(where: string, o: KMeansInitOptions): Required<KMeansInitOptions> {
  const iters = o.iters ?? 10;
  if (!Number.isInteger(iters) || iters < 1) throw new Error(`${where}: kmeansInit.iters must be an integer >= 1, got ${iters}`);
  const sample = o.sample ?? 4096;
  if (!Number.isInteger(sample) || sample < 1) throw new Error(`${where}: kmeansInit.sample must be an integer >= 1, got ${sample}`);
  return { iters, sample };
}

/** Holds the codebook under the name `embedding.weight` (a parameter, or a buffer with EMA). */
export class CodebookHolder extends Module {
  readonly weight: tf.Variable; // [K, D]
  constructor(init: tf.Tensor, trainable: boolean) {
    super();
    this.weight = trainable ? this.param('weight', init) : this.buffer('weight', init);
  }
}

export class VectorQuantizer extends Module {
  readonly embedding: CodebookHolder;
  readonly beta: number;
  readonly legacy: boolean;
  readonly cosine: boolean;
  readonly emaDecay: number | null;
  readonly emaEps: number;
  readonly deadCodeSteps: number;
  /** k-means init settings, or null when off. */
  readonly kmeansInit: Required<KMeansInitOptions> | null;
  /** 1 once the codebook was initialised from data (only with kmeansInit). [1] */
  private readonly initted: tf.Variable | null;
  private readonly clusterSize: tf.Variable | null; // [K]
  private readonly embedAvg: tf.Variable | null; // [K, D]
  /** Consecutive training forwards each code went unused (host-side; not in the state dict). */
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
    this.beta = opts.beta ?? 0.25;
    if (!(Number.isFinite(this.beta) && this.beta >= 0))
      throw new Error(`VectorQuantizer: beta must be a finite number >= 0, got ${this.beta}`);
    this.legacy = opts.legacy ?? true;
    this.cosine = opts.cosine ?? false;
    this.emaDecay = opts.emaDecay ?? null;
    if (this.emaDecay !== null && !(this.emaDecay > 0 && this.emaDecay < 1))
      throw new Error(`VectorQuantizer: emaDecay must be in (0, 1), got ${this.emaDecay}`);
    this.emaEps = opts.emaEps ?? 1e-5;
    if (!(Number.isFinite(this.emaEps) && this.emaEps >= 0))
      throw new Error(`VectorQuantizer: emaEps must be a finite number >= 0, got ${this.emaEps}`);
    this.deadCodeSteps = opts.deadCodeSteps ?? 0;
    if (!Number.isInteger(this.deadCodeSteps) || this.deadCodeSteps < 0)
      throw new Error(`VectorQuantizer: deadCodeSteps must be an integer >= 0, got ${this.deadCodeSteps}`);
    const km = opts.kmeansInit ?? false;
    this.kmeansInit = km === false ? null : checkKMeansInit('VectorQuantizer', km === true ? {} : km);
    this.rng = opts.rng ?? defaultRng();
    const init = initTensor([numCodes, dim], opts.init ?? { kind: 'uniform', bound: 1 / numCodes }, this.rng, dim, numCodes);
    this.embedding = this.module('embedding', new CodebookHolder(init, this.emaDecay === null));
    if (this.emaDecay !== null) {
      this.clusterSize = this.buffer('cluster_size', tf.ones([numCodes]));
      this.embedAvg = this.buffer('embed_avg', this.embedding.weight.clone());
    } else {
      this.clusterSize = null;
      this.embedAvg = null;
    }
    this.initted = this.kmeansInit ? this.buffer('initted', tf.zeros([1])) : null;
    this.unusedFor = new Int32Array(numCodes);
  }

  /** The options of the stateless vectorQuantize() this module applies. */
  get quantizeOptions(): VectorQuantizeOptions {
    return { beta: this.beta, legacy: this.legacy, ema: this.emaDecay !== null, cosine: this.cosine };
  }

  /** Weights [commit, codebook] of the loss terms. */
  get lossWeights(): [number, number] {
    return vqLossWeights(this.quantizeOptions);
  }

  /** The codes as used in the lookup (l2-normalised with `cosine`). [K, D] */
  codebook(): tf.Tensor2D {
    return tf.tidy(() => (this.cosine ? l2Normalize(this.embedding.weight) : this.embedding.weight.clone()) as tf.Tensor2D);
  }

  /** Nearest-code indices of rows [N, D] (int32 [N], no autodiff history). */
  nearest(flat: tf.Tensor2D): tf.Tensor1D {
    if (flat.rank !== 2 || flat.shape[1] !== this.dim)
      throw new Error(`VectorQuantizer.nearest: expected [N, ${this.dim}], got shape [${flat.shape}]`);
    return tf.tidy(() => nearestCode((this.cosine ? l2Normalize(flat) : flat) as tf.Tensor2D, this.codebook()));
  }

  /**
   * Code vectors of int32 indices [...] -> [..., D] (reads the indices to check their range; on
   * webgpu only while they are host data: indices already on the GPU go unchecked).
   */
  decode(indices: tf.Tensor): tf.Tensor {
    if (indices.dtype !== 'int32') throw new Error(`VectorQuantizer.decode: indices must be int32, got ${indices.dtype}`);
    const v = hostValuesIfReady(indices) ?? [];
    for (let i = 0; i < v.length; i++) {
      const k = v[i] as number;
      if (k < 0 || k >= this.numCodes)
        throw new Error(`VectorQuantizer.decode: index ${k} at flat position ${i} is out of range [0, ${this.numCodes})`);
    }
    return tf.tidy(() => tf.gather(this.codebook(), indices.reshape([-1])).reshape([...indices.shape, this.dim]));
  }

  /** Whether the first training forward will initialise the codebook by k-means. */
  get needsInit(): boolean {
    return (
      this.initted !== null &&
      readSync(
        this.initted,
        'VectorQuantizer.needsInit',
        'k-means initialisation needs a backend with synchronous reads (cpu, wasm)',
      )[0] === 0
    );
  }

  /**
   * Set the codebook to the k-means centres of the rows of z [..., D] (at most `sample` rows, drawn with
   * the module's Rng; see the file comment), set the EMA statistics from the cluster counts and mark
   * the module initialised. Options default to the module's kmeansInit, else iters 10, sample 4096.
   */
  initFromData(z: tf.Tensor, opts: KMeansInitOptions = {}): { counts: Int32Array; inertia: number } {
    const where = 'VectorQuantizer.initFromData';
    if (z.rank < 1 || z.shape[z.rank - 1] !== this.dim)
      throw new Error(`${where}: z's last dim must be ${this.dim}, got shape [${z.shape}]`);
    const { iters, sample } = checkKMeansInit(where, { ...this.kmeansInit, ...opts });
    const N = z.size / this.dim;
    if (N < 1) throw new Error(`${where}: z must hold at least one row, got shape [${z.shape}]`);
    let rows: number[] | null = null;
    if (N > sample) {
      const pool = Int32Array.from({ length: N }, (_, i) => i);
      for (let j = 0; j < sample; j++) {
        const r = this.rng.int(j, N);
        [pool[j], pool[r]] = [pool[r] as number, pool[j] as number];
      }
      rows = Array.from(pool.subarray(0, sample)).sort((a, b) => a - b);
    }
    return tf.tidy(() => {
      let flat = stopGradient(z.reshape([-1, this.dim])) as tf.Tensor2D; // [N, D]
      if (rows) flat = tf.gather(flat, tf.tensor1d(rows, 'int32')); // [sample, D]
      const { centres, counts, inertia } = kmeans(flat, this.numCodes, { iters, rng: this.rng, cosine: this.cosine });
      this.embedding.weight.assign(centres);
      if (this.clusterSize && this.embedAvg) {
        const n = tf.tensor1d(Array.from(counts, (c) => Math.max(c, 1))); // [K]
        this.clusterSize.assign(n);
        this.embedAvg.assign(centres.mul(n.expandDims(1)));
      }
      this.initted?.assign(tf.ones([1]));
      this.unusedFor.fill(0);
      return { counts, inertia };
    });
  }

  /**
   * z [..., D] -> VQOutput. In training mode also applies the k-means init (first forward, with
   * kmeansInit), the EMA update and dead-code restart.
   */
  forward(z: tf.Tensor): VQOutput {
    if (z.shape[z.rank - 1] !== this.dim) throw new Error(`VectorQuantizer.forward: last dim must be ${this.dim}, got shape [${z.shape}]`);
    if (this.training && this.needsInit) this.initFromData(z);
    return tf.tidy(() => {
      const parts = quantizeParts(z, this.embedding.weight as tf.Tensor2D, this.quantizeOptions);
      if (this.training) this.trainUpdates(parts.flat, parts.idx, parts.counts);
      return parts.out;
    });
  }

  /** EMA codebook update and dead-code restart (no gradient). */
  private trainUpdates(flat: tf.Tensor2D, idx: tf.Tensor1D, counts: tf.Tensor1D): void {
    const K = this.numCodes;
    if (this.emaDecay !== null && this.clusterSize && this.embedAvg) {
      const d = this.emaDecay;
      this.clusterSize.assign(this.clusterSize.mul(d).add(counts.mul(1 - d)));
      const sums = tf.unsortedSegmentSum(flat, idx, K); // [K, D]
      this.embedAvg.assign(this.embedAvg.mul(d).add(sums.mul(1 - d)));
      const n = this.clusterSize.sum();
      const smoothed = this.clusterSize
        .add(this.emaEps)
        .div(n.add(K * this.emaEps))
        .mul(n); // [K]
      this.embedding.weight.assign(this.embedAvg.div(smoothed.expandDims(1)));
    }
    if (this.deadCodeSteps > 0) {
      const c = readSync(counts, 'VectorQuantizer dead-code restart', 'train with deadCodeSteps 0 on webgpu, or on cpu / wasm');
      const dead: number[] = [];
      for (let k = 0; k < K; k++) {
        this.unusedFor[k] = (c[k] as number) > 0 ? 0 : (this.unusedFor[k] as number) + 1;
        if ((this.unusedFor[k] as number) >= this.deadCodeSteps) dead.push(k);
      }
      if (dead.length) this.restart(dead, flat);
    }
  }

  /** Replace codes `dead` with batch vectors drawn by the Rng (distinct rows while N >= dead.length). */
  private restart(dead: number[], flat: tf.Tensor2D): void {
    const N = flat.shape[0];
    const pool = Array.from({ length: N }, (_, i) => i);
    const pick = dead.map((_, j) => {
      if (N >= dead.length) {
        const r = this.rng.int(j, N);
        [pool[j], pool[r]] = [pool[r] as number, pool[j] as number];
        return pool[j] as number;
      }
      return this.rng.int(0, N);
    });
    const deadIdx = tf.tensor1d(dead, 'int32');
    const fresh = tf.unsortedSegmentSum(tf.gather(flat, tf.tensor1d(pick, 'int32')), deadIdx, this.numCodes); // [K, D]
    const keep = tf.sub(1, tf.unsortedSegmentSum(tf.ones([dead.length]), deadIdx, this.numCodes)); // [K]
    const w = this.embedding.weight;
    w.assign(w.mul(keep.expandDims(1)).add(fresh));
    if (this.embedAvg && this.clusterSize) {
      this.embedAvg.assign(this.embedAvg.mul(keep.expandDims(1)).add(fresh));
      this.clusterSize.assign(this.clusterSize.mul(keep).add(tf.sub(1, keep)));
    }
    for (const k of dead) this.unusedFor[k] = 0;
  }
}
