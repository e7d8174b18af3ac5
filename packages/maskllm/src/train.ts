/**
 * MaskLLM objectives and one training step (Fang et al. 2024, §3.2-3.4 and §4.1):
 *   L = L_LM(W * M~) - lambda_t * sum_l ||W_l * M~_l||_F^2,   lambda_t = lambda (1 - t/T),
 * with M~ a Gumbel-softmax sample per layer (tau_t, kappa_t linear in t), W frozen and only the
 * mask logits trained by AdamW (lr x lrMult, cosine decay, global-norm clipping). The regulariser
 * keeps the surviving weights large so gradients keep flowing (§3.4). Also the plain dense LM step
 * used to train the models that are then sparsified.
 */
import { AdamW, clipGradNorm, crossEntropy, paramGroups, type TransformerDecoder, tf, valueAndGrads, warmupCosine } from '@mmlm/core';
import type { MaskConfig, MaskTrainConfig } from './config.js';
import { linearSchedule, maskedLinears, setMaskSchedule } from './model.js';

/** Megatron's cosine decay without warmup: lrMin + (lr - lrMin) (1 + cos(pi t / T)) / 2. */
export function cosineLr(lr: number, lrMin: number, t: number, T: number): number {
  return warmupCosine({ peak: lr, min: lrMin, warmup: 0, total: T })(Math.max(0, t));
}

/** Next-token cross-entropy (nats per token) of ids [B, T+1]: inputs ids[:, :T], targets ids[:, 1:]. */
export function lmLoss(decoder: TransformerDecoder, ids: tf.Tensor /* [B, T+1] int32 */): tf.Scalar {
  return tf.tidy(() => {
    if (ids.rank !== 2 || ids.dtype !== 'int32') throw new Error(`lmLoss: ids must be int32 [B, T+1], got ${ids.dtype} [${ids.shape}]`);
    const [B, T1] = ids.shape as [number, number];
    const T = T1 - 1;
    if (T < 1) throw new Error(`lmLoss: need at least 2 tokens per sequence, got ${T1}`);
    const x = tf.slice(ids, [0, 0], [B, T]); // [B, T]
    const y = tf.slice(ids, [0, 1], [B, T]); // [B, T]
    const logits = decoder.forward(x); // [B, T, V]
    return crossEntropy(logits, y); // logits [B, T, V], targets [B, T]
  });
}

/**
 * Draw one mask sample per masked layer for this step (MaskedLinear.sampled), so the LM loss and
 * the regulariser see the same M~. Call inside the step's gradient scope; clearSampledMasks after.
 */
export function sampleMasks(decoder: TransformerDecoder): void {
  for (const [, l] of maskedLinears(decoder)) l.sampled = l.diff_mask.forward();
}

export function clearSampledMasks(decoder: TransformerDecoder): void {
  for (const [, l] of maskedLinears(decoder)) l.sampled = null;
}

/** R = sum over masked layers of ||W * M||_F^2 (W constant: gradient only into the mask). */
export function sparseWeightReg(decoder: TransformerDecoder): tf.Scalar {
  return tf.tidy(() => {
    const terms = maskedLinears(decoder).map(([, l]) => l.weight.mul(l.mask()).square().reshape([-1]).sum());
    return terms.reduce((a, b) => a.add(b), tf.scalar(0)) as tf.Scalar;
  });
}

export interface MaskSchedule {
  tau: number;
  kappa: number;
  /** lambda_t of the regulariser. */
  lambda: number;
  lr: number;
}

/** tau_t, kappa_t, lambda_t and the gate learning rate at step t of T (§4.1). */
export function maskSchedule(mask: MaskConfig, train: MaskTrainConfig, t: number): MaskSchedule {
  const T = train.steps;
  return {
    tau: linearSchedule(mask.tauStart, mask.tauEnd, t, T),
    kappa: linearSchedule(mask.kappaStart, mask.kappaEnd, t, T),
    lambda: mask.weightReg * (1 - Math.min(Math.max(t / T, 0), 1)),
    lr: cosineLr(train.lr, train.lrMin, t, T) * train.lrMult,
  };
}

/** AdamW over the mask logits of a sparsified decoder, with the recipe's betas, eps and weight decay. */
export function maskOptimizer(decoder: TransformerDecoder, train: MaskTrainConfig): AdamW {
  const gates = maskedLinears(decoder).map(([p, l]): [string, tf.Variable] => [`${p}.diff_mask.gate`, l.diff_mask.gate]);
  if (!gates.length) throw new Error('maskOptimizer: the decoder has no masked layers; call sparsify(decoder) first');
  return new AdamW([{ params: gates, weightDecay: train.weightDecay }], {
    lr: train.lr,
    beta1: train.beta1,
    beta2: train.beta2,
    eps: train.eps,
    weightDecay: train.weightDecay,
  });
}

export interface MaskStepResult extends MaskSchedule {
  step: number;
  /** Total loss L_LM - lambda_t R. */
  loss: number;
  /** L_LM (nats per token). */
  lm: number;
  /** R = sum ||W * M~||^2. */
  reg: number;
  gradNorm: number;
}

/**
 * One MaskLLM step at step index t (0-based) on ids [B, T+1]: schedules, one mask sample per layer,
 * loss, gradients into the gates only, clipping, AdamW. The decoder must be in training mode.
 */
export function maskTrainStep(
  decoder: TransformerDecoder,
  opt: AdamW,
  ids: tf.Tensor,
  t: number,
  cfg: { mask: MaskConfig; train: MaskTrainConfig },
): MaskStepResult {
  const s = maskSchedule(cfg.mask, cfg.train, t);
  setMaskSchedule(decoder, s.kappa, s.tau);
  const gates = maskedLinears(decoder).map(([, l]) => l.diff_mask.gate);
  let lm = 0;
  let reg = 0;
  const { value, grads } = tf.variableGrads(() => {
    sampleMasks(decoder);
    const l = lmLoss(decoder, ids);
    const r = sparseWeightReg(decoder);
    lm = l.dataSync()[0] as number;
    reg = r.dataSync()[0] as number;
    return l.sub(r.mul(s.lambda)) as tf.Scalar;
  }, gates);
  clearSampledMasks(decoder);
  const loss = value.dataSync()[0] as number;
  value.dispose();
  const norm = clipGradNorm(grads, cfg.train.gradClip > 0 ? cfg.train.gradClip : Number.POSITIVE_INFINITY);
  const gradNorm = norm.dataSync()[0] as number;
  norm.dispose();
  opt.setLr(s.lr);
  opt.step(grads);
  Object.values(grads).forEach((g) => g.dispose());
  return { ...s, step: t, loss, lm, reg, gradNorm };
}

export interface DenseTrainConfig {
  steps: number;
  lr: number;
  lrMin: number;
  weightDecay: number;
  gradClip: number;
}

/** AdamW over every trainable parameter (dense pretraining; GPT-style betas 0.9/0.95). */
export function denseOptimizer(decoder: TransformerDecoder, weightDecay: number): AdamW {
  return new AdamW(paramGroups(decoder), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay });
}

/** One dense LM step at step t of cfg.steps (cosine learning rate); returns the loss. */
export function denseTrainStep(decoder: TransformerDecoder, opt: AdamW, ids: tf.Tensor, t: number, cfg: DenseTrainConfig): number {
  const { loss: value, grads } = valueAndGrads(decoder, () => lmLoss(decoder, ids));
  const loss = value.dataSync()[0] as number;
  value.dispose();
  clipGradNorm(grads, cfg.gradClip > 0 ? cfg.gradClip : Number.POSITIVE_INFINITY).dispose();
  opt.setLr(cosineLr(cfg.lr, cfg.lrMin, t, cfg.steps));
  opt.step(grads);
  grads.forEach((g) => g.dispose());
  return loss;
}
