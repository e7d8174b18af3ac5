/**
 * LatentLM's objective and one training step (Sun et al. 2024, §2.2 and §3.1; reference
 * `train_hf.py`). A mixed sequence is teacher-forced: the output state at position i predicts the
 * element at i + 1. Routing by that target:
 *
 * - a discrete target (text, <BOD>, <EOD>, ...) gets cross-entropy from the softmax head (L_LM);
 * - a continuous target (a <LAT> position inside <BOD> ... <EOD>) gets the diffusion loss: the
 *   clean latent x_0 is repeated `batchMul` (= 4) times, each copy with its own t ~ U{0..T-1} and
 *   eps ~ N(0, I), and L_Diff = mean ||eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t, h_i)||^2
 *   (or the v target with v-prediction);
 * - L = L_LM + alpha L_Diff (§3.1; alpha about 5 in the revision).
 *
 * With `spanStop`, positions whose target is a latent also get cross-entropy towards <LAT>, so the
 * softmax head learns where a span ends (<EOD> vs <LAT>) for variable-length spans such as speech.
 * This is our choice: the paper does not say how span length is decided.
 */
import { type AdamW, clipGradNorm, crossEntropy, type Rng, tf, valueAndGrads } from '@mmlm/core';
import type { DiffusionConfig, ModelConfig } from './config.js';
import type { LatentLM } from './model.js';
import type { NoiseSchedule } from './schedule.js';

/** Targets that get no cross-entropy (PyTorch / HF convention). */
export const IGNORE_INDEX = -100;

/** One mixed sequence: token ids with <LAT> at continuous positions, and the latents in order. */
export interface MixedSequence {
  tokens: ArrayLike<number>;
  /** The latent vectors of the <LAT> positions, in order: [numLat * C] (already standardised). */
  latents?: Float32Array;
  /** Per position: 0 = no loss when this element is the target. Default: loss everywhere. */
  lossMask?: ArrayLike<number>;
}

export interface SpanInfo {
  /** Number of <LAT> positions. */
  numLatents: number;
  /** True when the sequence ends inside a span (a generation prompt ending with <BOD> or latents). */
  openSpan: boolean;
  /** Latents in the open span so far. */
  openSpanLength: number;
}

/**
 * Checks the span grammar: <LAT> only between <BOD> and <EOD>, only <LAT> inside a span, every
 * span closed (unless `allowOpenSpan`), and one latent vector of size C per <LAT>.
 */
export function validateMixedSequence(
  seq: MixedSequence,
  cfg: Pick<ModelConfig, 'vocabSize' | 'latentDim' | 'bodId' | 'eodId' | 'latId'>,
  opts: { allowOpenSpan?: boolean; what?: string } = {},
): SpanInfo {
  const what = opts.what ?? 'mixed sequence';
  const { bodId, eodId, latId, vocabSize, latentDim } = cfg;
  let inside = false;
  let openedAt = -1;
  let numLatents = 0;
  let spanLen = 0;
  for (let j = 0; j < seq.tokens.length; j++) {
    const id = seq.tokens[j] as number;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new Error(`${what}: token ${j} must be an integer id in [0, ${vocabSize}), got ${id}`);
    if (inside) {
      if (id === latId) {
        numLatents++;
        spanLen++;
      } else if (id === eodId) inside = false;
      else
        throw new Error(
          `${what}: token ${j} (id ${id}) inside the span opened by <BOD> at ${openedAt}; only <LAT> (${latId}) or <EOD> (${eodId}) may follow`,
        );
    } else if (id === latId) throw new Error(`${what}: <LAT> (${latId}) at position ${j} is outside a <BOD> ... <EOD> span`);
    else if (id === eodId) throw new Error(`${what}: <EOD> (${eodId}) at position ${j} closes no span`);
    else if (id === bodId) {
      inside = true;
      openedAt = j;
      spanLen = 0;
    }
  }
  if (inside && !opts.allowOpenSpan) throw new Error(`${what}: the span opened by <BOD> at position ${openedAt} has no <EOD>`);
  const got = seq.latents?.length ?? 0;
  if (got !== numLatents * latentDim)
    throw new Error(
      `${what}: ${numLatents} <LAT> positions need ${numLatents * latentDim} latent values (latent dim ${latentDim}), got ${got}`,
    );
  if (seq.lossMask && seq.lossMask.length !== seq.tokens.length)
    throw new Error(`${what}: lossMask must have one entry per token (${seq.tokens.length}), got ${seq.lossMask.length}`);
  return { numLatents, openSpan: inside, openSpanLength: inside ? spanLen : 0 };
}

/** A teacher-forced batch: inputs are positions 0..L-2, targets 1..L-1, right-padded to T. */
export interface MixedBatch {
  B: number;
  T: number;
  C: number;
  /** Input ids [B * T] (<PAD> after each row's end). */
  ids: Int32Array;
  /** Input latents [B * T * C] (zero except at <LAT> inputs). */
  latents: Float32Array;
  /** Cross-entropy targets [B * T]: the next token id, or IGNORE_INDEX (-100). */
  ceTargets: Int32Array;
  /** Flat positions b * T + j whose target is a latent (diffusion loss), in order. */
  diffIndex: Int32Array;
  /** The clean target latents of diffIndex: [N * C]. */
  diffTargets: Float32Array;
}

export interface BuildBatchOptions {
  /** Also train the softmax head towards <LAT> where the target is a latent (span-end prediction). */
  spanStop?: boolean;
}

/** Teacher-forcing batch of well-formed mixed sequences (see validateMixedSequence). */
export function buildMixedBatch(seqs: readonly MixedSequence[], cfg: ModelConfig, opts: BuildBatchOptions = {}): MixedBatch {
  if (seqs.length === 0) throw new Error('buildMixedBatch: need at least one sequence, got 0');
  const C = cfg.latentDim;
  seqs.forEach((s, b) => {
    validateMixedSequence(s, cfg, { what: `buildMixedBatch: sequence ${b}` });
    if (s.tokens.length < 2) throw new Error(`buildMixedBatch: sequence ${b} needs at least 2 tokens, got ${s.tokens.length}`);
  });
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.tokens.length)) - 1;
  if (T > cfg.maxSeqLen) throw new Error(`buildMixedBatch: sequences of ${T + 1} tokens exceed maxSeqLen ${cfg.maxSeqLen} + 1`);
  const ids = new Int32Array(B * T).fill(cfg.padId);
  const latents = new Float32Array(B * T * C);
  const ceTargets = new Int32Array(B * T).fill(IGNORE_INDEX);
  const diffIndex: number[] = [];
  const diffTargets: number[] = [];
  for (let b = 0; b < B; b++) {
    const s = seqs[b]!;
    const L = s.tokens.length;
    const latAt = new Int32Array(L).fill(-1); // latent index of each <LAT> position
    let k = 0;
    for (let j = 0; j < L; j++) if (s.tokens[j] === cfg.latId) latAt[j] = k++;
    for (let j = 0; j < L - 1; j++) {
      const p = b * T + j;
      ids[p] = s.tokens[j] as number;
      if (latAt[j]! >= 0) latents.set(s.latents!.subarray(latAt[j]! * C, (latAt[j]! + 1) * C), p * C);
      const target = s.tokens[j + 1] as number;
      if (s.lossMask && !s.lossMask[j + 1]) continue;
      if (target === cfg.latId) {
        diffIndex.push(p);
        for (let c = 0; c < C; c++) diffTargets.push(s.latents![latAt[j + 1]! * C + c] as number);
        if (opts.spanStop) ceTargets[p] = cfg.latId;
      } else ceTargets[p] = target;
    }
  }
  return { B, T, C, ids, latents, ceTargets, diffIndex: Int32Array.from(diffIndex), diffTargets: Float32Array.from(diffTargets) };
}

export interface LossOptions {
  schedule: NoiseSchedule;
  /** alpha, batchMul and predictionType are read from here. */
  diffusion: Pick<DiffusionConfig, 'alpha' | 'batchMul' | 'predictionType'>;
  /** Draws t and eps (same rng state, same loss). */
  rng: Rng;
}

export interface LossParts {
  loss: tf.Scalar;
  /** L_LM: mean cross-entropy over discrete targets (0 when there are none). */
  lm: tf.Scalar;
  /** L_Diff: mean squared error over diffusion targets (0 when there are none). */
  diff: tf.Scalar;
}

/**
 * Noised copies of the clean latents: each of N rows repeated batchMul times (row-major, as
 * repeat_interleave), an independent t per copy, eps ~ N(0, I).
 */
export function drawDiffusionTargets(
  N: number,
  C: number,
  batchMul: number,
  schedule: NoiseSchedule,
  rng: Rng,
): { rows: Int32Array; t: Int32Array; eps: tf.Tensor2D } {
  const rows = new Int32Array(N * batchMul);
  for (let i = 0; i < rows.length; i++) rows[i] = Math.floor(i / batchMul);
  const t = new Int32Array(N * batchMul);
  for (let i = 0; i < t.length; i++) t[i] = rng.int(0, schedule.numTrainTimesteps);
  const eps = rng.randn([N * batchMul, C]) as tf.Tensor2D;
  return { rows, t, eps };
}

/** L = L_LM + alpha L_Diff on a teacher-forced mixed batch. */
export function latentLMLoss(model: LatentLM, batch: MixedBatch, opts: LossOptions): LossParts {
  return tf.tidy(() => {
    const { B, T, C } = batch;
    const D = model.config.dim;
    if (C !== model.config.latentDim)
      throw new Error(`latentLMLoss: batch latent dim ${C} does not match the model's latentDim ${model.config.latentDim}`);
    const ids = tf.tensor2d(batch.ids, [B, T], 'int32');
    const lat = tf.tensor3d(batch.latents, [B, T, C]);
    const h = model.forwardHidden(ids, lat); // [B, T, D]
    const logits = model.lmLogits(h).reshape([B * T, model.config.vocabSize]); // [B*T, V]
    const lm = crossEntropy(logits, tf.tensor1d(batch.ceTargets, 'int32'), { ignoreIndex: IGNORE_INDEX }) as tf.Scalar;
    let diff: tf.Scalar = tf.scalar(0);
    const N = batch.diffIndex.length;
    if (N > 0) {
      const M = opts.diffusion.batchMul;
      const cond = tf.gather(model.condition(h).reshape([B * T, D]), tf.tensor1d(batch.diffIndex, 'int32')); // [N, D]
      const x0 = tf.tensor2d(batch.diffTargets, [N, C]); // [N, C]
      const { rows, t, eps } = drawDiffusionTargets(N, C, M, opts.schedule, opts.rng);
      const rowIdx = tf.tensor1d(rows, 'int32');
      const condM = tf.gather(cond, rowIdx); // [N*M, D]
      const x0M = tf.gather(x0, rowIdx); // [N*M, C]
      const xt = opts.schedule.addNoise(x0M, eps, t); // [N*M, C]
      const target = opts.diffusion.predictionType === 'epsilon' ? eps : opts.schedule.getVelocity(x0M, eps, t);
      const pred = model.diffusion.forward(xt, tf.tensor1d(Float32Array.from(t)), condM); // [N*M, C]
      diff = pred.sub(target).square().mean() as tf.Scalar;
    }
    const loss = lm.add(diff.mul(opts.diffusion.alpha)) as tf.Scalar;
    return { loss, lm, diff };
  });
}

export interface StepResult {
  loss: number;
  lm: number;
  diff: number;
  gradNorm: number;
}

/** One AdamW step on L at learning rate `lr`, gradients clipped to global norm `gradClip` (reference: 1.0; 0 disables). */
export function trainStep(
  model: LatentLM,
  opt: AdamW,
  batch: MixedBatch,
  opts: LossOptions & { lr: number; gradClip: number },
): StepResult {
  let parts = { lm: 0, diff: 0 };
  const { loss, grads } = valueAndGrads(model, () => {
    const p = latentLMLoss(model, batch, opts);
    parts = { lm: p.lm.dataSync()[0] as number, diff: p.diff.dataSync()[0] as number };
    return p.loss;
  });
  let gradNorm = Number.NaN;
  if (opts.gradClip > 0) {
    const norm = clipGradNorm(grads, opts.gradClip);
    gradNorm = norm.dataSync()[0] as number;
    norm.dispose();
  }
  opt.setLr(opts.lr);
  opt.step(grads);
  const value = loss.dataSync()[0] as number;
  loss.dispose();
  for (const g of grads.values()) g.dispose();
  return { loss: value, lm: parts.lm, diff: parts.diff, gradNorm };
}
