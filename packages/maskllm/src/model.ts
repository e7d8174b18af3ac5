/**
 * MaskLLM: learnable semi-structured (N:M) sparsity (Fang et al., NeurIPS 2024, arXiv 2409.17481).
 *
 * Every group of M consecutive weights along the input dimension of an output row gets a
 * categorical distribution over the C(M, N) admissible masks (§3.1, the candidate set S). A mask
 * is drawn with Gumbel-softmax so the draw is differentiable (§3.2, eq. 3-4):
 *   y = softmax((kappa * pi + g) / tau),  M~ = y @ S,
 * the weights stay frozen and only the logits pi are trained. At inference the most likely
 * candidate S[argmax pi] is the mask. Logits start at N(0, 0.01^2) plus an optional prior from a
 * one-shot mask (§3.3): pi_i += alpha * std(pi) * (overlap_i - N/2).
 * Names follow NVlabs/MaskLLM (`DifferentiableMask`, `gate`, `diff_mask`) so state dicts map.
 *
 * Top to bottom: candidate set, soft and hard masks, prior, schedules, DifferentiableMask,
 * MaskedLinear, the decoder surgery (sparsify / densify), and the dense decoder a config describes
 * (buildDecoder / loadDecoder).
 */
import { flushToZero, Linear, type LinearOptions, loadModule, Module, Rng, TransformerDecoder, tf } from '@mmlm/core';
import { binomial, type MaskLLMConfig } from './config.js';

/** Largest candidate set accepted (C(M, N) logits per group of M weights). */
const MAX_CANDIDATES = 1024;

/** Throws unless N:M is a valid pattern (1 <= N < M, C(M, N) <= MAX_CANDIDATES). */
export function validateNM(n: number, m: number): void {
  if (!Number.isInteger(n) || !Number.isInteger(m) || n < 1 || m < 2 || n >= m)
    throw new Error(`N:M sparsity: expected integers with 1 <= N < M, got N=${n}, M=${m}`);
  const k = binomial(m, n);
  if (k > MAX_CANDIDATES)
    throw new Error(`N:M sparsity: ${n}:${m} has C(${m}, ${n}) = ${k} candidate masks per group, more than ${MAX_CANDIDATES}`);
}

/**
 * The candidate set S (§3.1): all 0/1 rows of length M with N ones, in `itertools.combinations`
 * order. 2:4 gives 1100, 1010, 1001, 0110, 0101, 0011 (the reference's order); 1:4 the one-hots.
 */
export function candidateMasks(n: number, m: number): number[][] {
  validateNM(n, m);
  const rows: number[][] = [];
  const pick = (start: number, chosen: number[]) => {
    if (chosen.length === n) {
      const row = new Array<number>(m).fill(0);
      for (const j of chosen) row[j] = 1;
      rows.push(row);
      return;
    }
    for (let j = start; j <= m - (n - chosen.length); j++) pick(j + 1, [...chosen, j]);
  };
  pick(0, []);
  return rows;
}

/** S as a tensor [K, M], K = C(M, N). */
export function candidateTensor(n: number, m: number): tf.Tensor2D {
  const rows = candidateMasks(n, m);
  return tf.tensor2d(rows, [rows.length, m]);
}

/** Straight-through one-hot: forward onehot(argmax y), backward identity (torch gumbel_softmax(hard=True)). */
const straightThroughOneHot = tf.customGrad(((y: tf.Tensor) => ({
  value: tf.oneHot(tf.argMax(y, -1), y.shape[y.rank - 1] as number).toFloat(),
  gradFunc: (dy: tf.Tensor | tf.Tensor[]) => dy as tf.Tensor,
})) as unknown as Parameters<typeof tf.customGrad>[0]) as (y: tf.Tensor) => tf.Tensor;

/** Probabilities below this are set to exactly 0 by softmaxFlushed. */
export const PROB_FLOOR = 1e-20;

/**
 * softmax along the last axis with probabilities below PROB_FLOOR set to exactly 0, and its gradient
 * taken with those zeros: dz = y (dy - sum(dy y)). Late in the schedule (tau -> 0.05, kappa -> 500)
 * most probabilities of a row are far below 1e-20 (tiny normal numbers or subnormals); their products
 * in the masked weights, the GEMMs and the backward fall into float32's subnormal range, which
 * WebAssembly cannot flush to zero and x86 computes with microcode assists: the mask step ran about
 * 15x slower on wasm at steps 275-295 of 300 (130 ms with this, 1.85 s without; Intel Xeon). A
 * probability below 1e-20 changes no float32 sum it enters beside the row's largest (rows sum to 1),
 * so the forward values are softmax's to rounding, and the zeros keep subnormals out downstream.
 */
export const softmaxFlushed = tf.customGrad(((z: tf.Tensor, save: tf.GradSaveFunc) => {
  const y = tf.tidy(() => flushToZero(tf.softmax(z, -1), PROB_FLOOR)); // one SIMD pass on wasm (core)
  save([y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const ys = saved[0] as tf.Tensor;
      const dyy = dy.mul(ys);
      return dyy.sub(dyy.sum(-1, true).mul(ys));
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (z: tf.Tensor) => tf.Tensor;

/**
 * Differentiable mask of MaskLLM eq. 3-4: M~ = softmax((kappa * pi + g) / tau) @ S (softmaxFlushed:
 * probabilities below 1e-20 exactly 0).
 * With `hard`, the forward pass uses the one-hot of the sample (straight-through gradient).
 */
export function softMask(
  logits: tf.Tensor2D /* [G, K] */,
  gumbel: tf.Tensor2D | null /* [G, K] */,
  kappa: number,
  tau: number,
  S: tf.Tensor2D /* [K, M] */,
  hard = false,
): tf.Tensor2D /* [G, M] */ {
  return tf.tidy(() => {
    if (logits.rank !== 2 || logits.shape[1] !== S.shape[0])
      throw new Error(`softMask: logits must be [G, ${S.shape[0]}] (one logit per candidate), got shape [${logits.shape}]`);
    if (gumbel && gumbel.shape.join(',') !== logits.shape.join(','))
      throw new Error(`softMask: gumbel noise must have the logits' shape [${logits.shape}], got [${gumbel.shape}]`);
    if (!(tau > 0)) throw new Error(`softMask: tau must be > 0, got ${tau}`);
    let z = logits.mul(kappa); // [G, K]
    if (gumbel) z = z.add(gumbel);
    let y = softmaxFlushed(z.div(tau)); // [G, K], rows sum to 1 (entries < 1e-20 exactly 0)
    if (hard) y = straightThroughOneHot(y);
    return tf.matMul(y, S) as tf.Tensor2D; // [G, M], rows sum to N
  });
}

/** Inference mask: the most likely candidate per group, S[argmax pi]. */
export function hardMask(logits: tf.Tensor2D /* [G, K] */, S: tf.Tensor2D /* [K, M] */): tf.Tensor2D /* [G, M] */ {
  return tf.tidy(() => {
    if (logits.rank !== 2 || logits.shape[1] !== S.shape[0])
      throw new Error(`hardMask: logits must be [G, ${S.shape[0]}], got shape [${logits.shape}]`);
    return tf.gather(S, tf.argMax(logits, 1)) as tf.Tensor2D; // [G, M]
  });
}

/** Smallest uniform draw kept away from 0 and 1 so Gumbel noise stays finite in float32 (1 - 1e-7 < 1). */
const GUMBEL_EPS = 1e-7;

/**
 * Gumbel(0, 1) noise g = -log(-log u), u ~ U(eps, 1 - eps), from a seeded stream (core's
 * Rng.gumbel with eps = GUMBEL_EPS). eps must be representable next to 1 in float32: with
 * eps = 1e-10 (torch's default for float64) u rounds to 1 and g to +Infinity, which turns the
 * softmax into NaN.
 */
export function gumbelNoise(rng: Rng, shape: number[]): tf.Tensor {
  return rng.gumbel(shape, GUMBEL_EPS);
}

/** Unbiased standard deviation of all entries (torch.std). */
function unbiasedStd(x: tf.Tensor): number {
  const v = x.dataSync();
  const n = v.length;
  if (n < 2) return 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += v[i] as number;
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += ((v[i] as number) - mean) ** 2;
  return Math.sqrt(ss / (n - 1));
}

export interface PriorOptions {
  /** Prior strength alpha (reference: 3). */
  alpha: number;
  /** N of N:M (the centre N/2 of the overlap). */
  n: number;
  /** Scale sigma; default the unbiased std of `logits` (the reference's std over the layer's gate). */
  sigma?: number;
}

/**
 * Mask prior (§3.3, reference `init_diff_mask_from_prior`): overlap_i = <S_i, M0> per group, then
 * pi_i + alpha * sigma * (overlap_i - N/2). For 2:4 the prior's own candidate gets +alpha*sigma,
 * its complement -alpha*sigma, the four half-overlapping candidates nothing.
 */
export function priorLogits(
  logits: tf.Tensor2D /* [G, K] */,
  prior: tf.Tensor /* [G, M] 0/1 */,
  S: tf.Tensor2D /* [K, M] */,
  opts: PriorOptions,
): tf.Tensor2D /* [G, K] */ {
  const [G, K] = logits.shape;
  const M = S.shape[1];
  if (prior.size !== G * M)
    throw new Error(`priorLogits: prior mask must have ${G * M} entries (${G} groups of ${M}), got ${prior.size} (shape [${prior.shape}])`);
  if (S.shape[0] !== K) throw new Error(`priorLogits: logits must be [G, ${S.shape[0]}], got [${logits.shape}]`);
  const sigma = opts.sigma ?? unbiasedStd(logits);
  return tf.tidy(() => {
    const overlap = tf.matMul(prior.reshape([G, M]).toFloat(), S, false, true); // [G, K], in {0..N}
    return logits.add(overlap.sub(opts.n / 2).mul(opts.alpha * sigma)) as tf.Tensor2D;
  });
}

/** Linear schedule x_t = x0 + (x1 - x0) * t / T (tau and kappa, §4.1). */
export function linearSchedule(start: number, end: number, t: number, T: number): number {
  if (!(T > 0)) throw new Error(`linearSchedule: T must be > 0, got ${T}`);
  const r = Math.min(Math.max(t / T, 0), 1);
  return start + (end - start) * r;
}

export interface DifferentiableMaskOptions {
  /** N of N:M (default 2). */
  n?: number;
  /** M of N:M (default 4). */
  m?: number;
  /** Std of the N(0, std^2) logit init (default 0.01). */
  initStd?: number;
  /** Initial scale kappa and temperature tau (set per step with setSchedule). */
  kappa?: number;
  tau?: number;
  /** Straight-through hard samples (default false: soft). */
  hard?: boolean;
  /** Stream of the logit init and the Gumbel noise. */
  rng?: Rng;
  /** Name used in error messages (the layer's path). */
  name?: string;
}

/**
 * The learnable mask of one weight [out, in]: logits `gate` [out*in/M, C(M,N)], one row per group
 * of M consecutive inputs of one output row (row-major, as the reference's `view(-1, 1, 4)`).
 * forward(): a Gumbel-softmax sample in training mode, the hard argmax mask in eval mode.
 */
export class DifferentiableMask extends Module {
  readonly gate: tf.Variable; // [G, K]
  readonly n: number;
  readonly m: number;
  readonly shape: [number, number];
  readonly numGroups: number;
  kappa: number;
  tau: number;
  hard: boolean;
  readonly rng: Rng;
  /** The candidate set S [K, M]. */
  readonly S: tf.Tensor2D;

  constructor(shape: [number, number], opts: DifferentiableMaskOptions = {}) {
    super();
    const n = opts.n ?? 2;
    const m = opts.m ?? 4;
    validateNM(n, m);
    const [out, inF] = shape;
    const where = opts.name ? ` (${opts.name})` : '';
    if (!Number.isInteger(out) || !Number.isInteger(inF) || out < 1 || inF < 1)
      throw new Error(`DifferentiableMask${where}: shape must be [out, in] positive integers, got [${shape}]`);
    if (inF % m !== 0)
      throw new Error(`DifferentiableMask${where}: input dimension ${inF} must be divisible by M=${m} (groups of ${m} inputs)`);
    this.n = n;
    this.m = m;
    this.shape = [out, inF];
    this.numGroups = (out * inF) / m;
    this.kappa = opts.kappa ?? 100;
    this.tau = opts.tau ?? 4;
    this.hard = opts.hard ?? false;
    // the Gumbel noise stream: registered, so trainLoop checkpoints and resumes it with the gates
    this.rng = this.rngStream('gumbel', opts.rng ?? new Rng(0));
    this.S = tf.keep(candidateTensor(n, m));
    const K = this.S.shape[0];
    this.gate = this.param('gate', this.rng.randn([this.numGroups, K], 0, opts.initStd ?? 0.01));
  }

  /** Number of candidates K = C(M, N). */
  get numCandidates(): number {
    return this.S.shape[0];
  }

  /** Set kappa and tau (the schedules of §4.1). */
  setSchedule(kappa: number, tau: number): void {
    this.kappa = kappa;
    this.tau = tau;
  }

  /** A Gumbel-softmax sample of the mask [out, in] (fresh noise from this mask's stream). */
  sample(): tf.Tensor2D {
    return tf.tidy(() => {
      const g = gumbelNoise(this.rng, [this.numGroups, this.numCandidates]) as tf.Tensor2D; // [G, K]
      return softMask(this.gate as unknown as tf.Tensor2D, g, this.kappa, this.tau, this.S, this.hard).reshape(this.shape) as tf.Tensor2D;
    });
  }

  /** The hard mask S[argmax gate] as [out, in]. */
  hardMask(): tf.Tensor2D {
    return tf.tidy(() => hardMask(this.gate as unknown as tf.Tensor2D, this.S).reshape(this.shape) as tf.Tensor2D);
  }

  /** The mask for the forward pass: a sample in training mode, the hard mask in eval mode. */
  forward(): tf.Tensor2D /* [out, in] */ {
    return this.training ? this.sample() : this.hardMask();
  }

  /** Index of the most likely candidate per group [G] (the compact form of the hard mask). */
  candidateIndex(): Int32Array {
    return tf.tidy(() => tf.argMax(this.gate, 1).dataSync() as Int32Array);
  }

  /**
   * Inject a prior mask [out, in] (0/1) into the logits (§3.3): gate += alpha*std(gate)*(overlap - N/2).
   * `sigma` overrides std(gate) (the reference takes it from the freshly initialised gate).
   */
  initFromPrior(prior: tf.Tensor | Uint8Array | Float32Array, alpha: number, sigma?: number): void {
    const size = prior instanceof tf.Tensor ? prior.size : prior.length;
    if (size !== this.shape[0] * this.shape[1]) {
      const got = prior instanceof tf.Tensor ? `shape [${prior.shape}]` : `${size} entries`;
      throw new Error(
        `DifferentiableMask.initFromPrior: prior mask must have shape [${this.shape}] (${this.shape[0] * this.shape[1]} entries), got ${got}`,
      );
    }
    const p = prior instanceof tf.Tensor ? prior : tf.tensor(prior, this.shape, 'float32');
    try {
      tf.tidy(() => {
        const next = priorLogits(this.gate as unknown as tf.Tensor2D, p.reshape([this.numGroups, this.m]), this.S, {
          alpha,
          n: this.n,
          sigma,
        });
        this.gate.assign(next);
      });
    } finally {
      if (p !== prior) p.dispose();
    }
  }

  override dispose(): void {
    super.dispose();
    this.S.dispose();
  }
}

export interface MaskedLinearOptions extends DifferentiableMaskOptions {
  bias?: boolean;
}

/**
 * A Linear whose forward weight is W * M (the reference's sparse linear with `diff_mask`). The
 * weight and bias are frozen; only `diff_mask.gate` is trainable. `sampled`, when set (by
 * sampleMasks), is used instead of drawing a new mask, so the loss and the regulariser of one step
 * see the same sample.
 */
export class MaskedLinear extends Linear {
  readonly diff_mask: DifferentiableMask;
  sampled: tf.Tensor | null = null;

  constructor(inFeatures: number, outFeatures: number, opts: MaskedLinearOptions = {}) {
    const where = opts.name ? ` ${opts.name}` : '';
    const m = opts.m ?? 4;
    validateNM(opts.n ?? 2, m);
    if (Number.isInteger(inFeatures) && inFeatures % m !== 0)
      throw new Error(`MaskedLinear${where}: input dimension ${inFeatures} must be divisible by M=${m} (groups of ${m} inputs)`);
    const lin: LinearOptions = { bias: opts.bias ?? true, init: { kind: 'zeros' } };
    super(inFeatures, outFeatures, lin);
    this.weight.trainable = false;
    if (this.bias) this.bias.trainable = false;
    this.diff_mask = this.module('diff_mask', new DifferentiableMask([outFeatures, inFeatures], opts));
  }

  /** A masked copy of a dense Linear (its weight and bias are copied, the Linear is left intact). */
  static fromLinear(lin: Linear, opts: MaskedLinearOptions = {}): MaskedLinear {
    const ml = new MaskedLinear(lin.inFeatures, lin.outFeatures, { ...opts, bias: lin.bias !== null });
    ml.weight.assign(lin.weight);
    if (lin.bias && ml.bias) ml.bias.assign(lin.bias);
    return ml;
  }

  /** The current mask [out, in]: the step's sample if set, else a fresh sample (train) or the hard mask (eval). */
  mask(): tf.Tensor {
    return this.sampled ?? this.diff_mask.forward();
  }

  override effectiveWeight(): tf.Tensor {
    return tf.tidy(() => this.weight.mul(this.mask())); // [out, in]
  }
}

// ---------------------------------------------------------------------------------------------
// Decoder surgery: sparsify every Linear inside the blocks; the LM head and embeddings stay dense.

/** Every Linear inside the decoder's blocks, with its dotted path (`blocks.0.attn.qkv`), in module order. */
export function blockLinears(decoder: TransformerDecoder): [string, Linear][] {
  return decoder.blocks
    .namedModules('blocks')
    .filter((e): e is [string, Linear] => e[1] instanceof Linear)
    .filter(([p]) => !p.split('.').includes('diff_mask'));
}

/** The MaskedLinear layers of a sparsified decoder, with their paths. */
export function maskedLinears(decoder: TransformerDecoder): [string, MaskedLinear][] {
  return decoder.namedModules().filter((e): e is [string, MaskedLinear] => e[1] instanceof MaskedLinear);
}

/**
 * Replace the child `name` of `parent` by `m`: in the child registry (state-dict paths stay the
 * same) and in any field of `parent` that referenced the old child (core's blocks call their
 * linears through fields such as `attn.qkv`).
 */
export function swapChild(parent: Module, name: string, m: Module): Module {
  const old = parent.replaceChild(name, m);
  const rec = parent as unknown as Record<string, unknown>;
  for (const key of Object.keys(rec)) if (rec[key] === old) rec[key] = m;
  return old;
}

function parentOf(root: Module, path: string): [Module, string] {
  const i = path.lastIndexOf('.');
  const parentPath = path.slice(0, i);
  const name = path.slice(i + 1);
  const parent = root.namedModules().find(([p]) => p === parentPath)?.[1];
  if (!parent) throw new Error(`no module at "${parentPath}"`);
  return [parent, name];
}

export interface SparsifyOptions {
  n?: number;
  m?: number;
  initStd?: number;
  hard?: boolean;
  kappa?: number;
  tau?: number;
  /** Seed of the logit init and Gumbel streams (each layer forks its own stream by path). */
  seed?: number;
}

/**
 * Turn every Linear of the decoder's blocks into a MaskedLinear (in place; paths unchanged), freeze
 * every parameter except the mask logits, and return the masked layers. Throws, naming the layer,
 * when an input dimension is not divisible by M.
 */
export function sparsify(decoder: TransformerDecoder, opts: SparsifyOptions = {}): [string, MaskedLinear][] {
  const n = opts.n ?? 2;
  const m = opts.m ?? 4;
  validateNM(n, m);
  const targets = blockLinears(decoder).filter(([, l]) => !(l instanceof MaskedLinear));
  for (const [path, l] of targets)
    if (l.inFeatures % m !== 0)
      throw new Error(`sparsify: layer ${path} has input dimension ${l.inFeatures}, which is not divisible by M=${m}`);
  const root = new Rng(opts.seed ?? 0);
  decoder.freeze();
  for (const [path, lin] of targets) {
    const ml = MaskedLinear.fromLinear(lin, {
      n,
      m,
      initStd: opts.initStd,
      hard: opts.hard,
      kappa: opts.kappa,
      tau: opts.tau,
      rng: root.fork(path),
      name: path,
    });
    const [parent, name] = parentOf(decoder, path);
    swapChild(parent, name, ml);
    lin.dispose();
  }
  return maskedLinears(decoder);
}

/** Set kappa_t and tau_t on every mask of the decoder. */
export function setMaskSchedule(decoder: TransformerDecoder, kappa: number, tau: number): void {
  for (const [, l] of maskedLinears(decoder)) l.diff_mask.setSchedule(kappa, tau);
}

/** The hard masks [out, in] of every masked layer, as 0/1 bytes by path. */
export function hardMasks(decoder: TransformerDecoder): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [p, l] of maskedLinears(decoder)) {
    const v = tf.tidy(() => l.diff_mask.hardMask().dataSync());
    out.set(p, Uint8Array.from(v));
  }
  return out;
}

/**
 * Export: replace every MaskedLinear by a plain Linear with weight W * S[argmax pi] (in place) and
 * return the masks used. The result is a dense-format model with exactly N non-zero weights per
 * group of M wherever the original weights were non-zero.
 */
export function densify(decoder: TransformerDecoder): Map<string, Uint8Array> {
  const masks = hardMasks(decoder);
  for (const [path, ml] of maskedLinears(decoder)) {
    const lin = new Linear(ml.inFeatures, ml.outFeatures, { bias: ml.bias !== null, init: { kind: 'zeros' } });
    tf.tidy(() => lin.weight.assign(ml.weight.mul(ml.diff_mask.hardMask())));
    if (ml.bias && lin.bias) lin.bias.assign(ml.bias);
    lin.weight.trainable = false;
    if (lin.bias) lin.bias.trainable = false;
    const [parent, name] = parentOf(decoder, path);
    swapChild(parent, name, lin);
    ml.dispose();
  }
  return masks;
}

/**
 * Apply fixed 0/1 masks [out, in] to the block linears of a dense decoder in place (W <- W * M),
 * e.g. one-shot baselines or a mask file. Errors name the layer and the expected shape.
 */
export function applyMasks(decoder: TransformerDecoder, masks: Map<string, Uint8Array>): void {
  const layers = new Map(blockLinears(decoder));
  for (const [path, mask] of masks) {
    const l = layers.get(path);
    if (!l) throw new Error(`applyMasks: the model has no block linear "${path}"; it has ${[...layers.keys()].join(', ')}`);
    const size = l.inFeatures * l.outFeatures;
    if (mask.length !== size)
      throw new Error(`applyMasks: mask for ${path} has ${mask.length} entries, expected ${size} ([${l.outFeatures}, ${l.inFeatures}])`);
    tf.tidy(() => l.weight.assign(l.weight.mul(tf.tensor2d(mask, [l.outFeatures, l.inFeatures], 'float32'))));
  }
}

/**
 * Inject prior masks (by layer path) into the logits of a sparsified decoder (§3.3). Every masked
 * layer must have a prior.
 */
export function injectPrior(decoder: TransformerDecoder, priors: Map<string, Uint8Array>, alpha: number): void {
  for (const [path, l] of maskedLinears(decoder)) {
    const p = priors.get(path);
    if (!p) throw new Error(`injectPrior: no prior mask for layer ${path}; priors given for ${[...priors.keys()].join(', ')}`);
    l.diff_mask.initFromPrior(new Float32Array(p), alpha);
  }
}

/** Count of groups whose mask does not have exactly N ones (0 for a valid N:M mask). */
export function invalidGroups(mask: ArrayLike<number>, n: number, m: number): number {
  let bad = 0;
  for (let g = 0; g < mask.length / m; g++) {
    let c = 0;
    for (let j = 0; j < m; j++) c += mask[g * m + j] !== 0 ? 1 : 0;
    if (c !== n) bad++;
  }
  return bad;
}

// ---------------------------------------------------------------------------------------------
// The dense decoder a config describes.

/** The core TransformerDecoder of `cfg.model` (dense; sparsify it to learn masks), initialised from `seed`. */
export function buildDecoder(cfg: MaskLLMConfig, seed = 0): TransformerDecoder {
  const m = cfg.model;
  return new TransformerDecoder({
    vocabSize: m.vocabSize,
    dim: m.dim,
    numLayers: m.numLayers,
    numHeads: m.numHeads,
    maxSeqLen: m.maxSeqLen,
    mlp: m.mlp,
    mlpHidden: m.mlpHidden,
    norm: m.norm,
    pos: m.pos,
    bias: m.bias,
    tieEmbeddings: m.tieEmbeddings,
    seed,
  });
}

/**
 * A fresh dense decoder of `cfg` with the weights saved at `path` (core's saveModule; strict: every
 * key and shape must match, and errors name them).
 */
export async function loadDecoder(cfg: MaskLLMConfig, path: string): Promise<TransformerDecoder> {
  const dec = buildDecoder(cfg);
  try {
    await loadModule(path, dec);
  } catch (e) {
    dec.dispose();
    throw e;
  }
  return dec;
}
