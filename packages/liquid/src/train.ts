/**
 * Liquid's objectives and one training step of each (no framework):
 *   tokenizer   L = ||x - x_rec||^2 (mean) + VQ loss (codebook + beta commitment, VectorQuantizer2),
 *               straight-through gradients into the encoder (van den Oord et al. 2017; VQGAN without
 *               its perceptual and adversarial terms).
 *   language    the HF causal-LM loss (transformers `ForCausalLMLoss`): logits[:, :-1] against
 *               labels[:, 1:], labels -100 ignored, mean over the remaining targets. The same plain
 *               next-token cross-entropy serves text, text-to-image and captioning (paper sec. 3).
 * One step = loss, gradients of every trainable parameter, global-norm clip, AdamW at the step's
 * learning rate (linear warmup, cosine decay to minLrRatio * lr).
 */

import type { Module } from '@mmlm/core';
import { AdamW, clipGradNorm, crossEntropy, paramGroups, type TransformerDecoder, tf, valueAndGrads, warmupCosine } from '@mmlm/core';
import type { Batch } from './collate.js';
import type { TrainPhase } from './config.js';
import type { VQTokenizer } from './model.js';

/** HF causal-LM loss of input ids [B, T] with labels [B, T] (unshifted; -100 = ignore). */
export function causalLMLoss(model: TransformerDecoder, inputIds: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (inputIds.rank !== 2 || inputIds.dtype !== 'int32')
    throw new Error(`causalLMLoss: inputIds must be int32 [B, T], got ${inputIds.dtype} [${inputIds.shape}]`);
  if (labels.shape.join() !== inputIds.shape.join() || labels.dtype !== 'int32')
    throw new Error(`causalLMLoss: labels must be int32 [${inputIds.shape}], got ${labels.dtype} [${labels.shape}]`);
  const [B, T] = inputIds.shape as [number, number];
  if (T < 2) throw new Error(`causalLMLoss: need at least 2 positions, got T = ${T}`);
  return tf.tidy(() => {
    const x = tf.slice(inputIds, [0, 0], [B, T - 1]); // [B, T-1]
    const y = tf.slice(labels, [0, 1], [B, T - 1]); // [B, T-1]
    const logits = model.forward(x); // [B, T-1, V]
    return crossEntropy(logits, y, { ignoreIndex: -100 });
  });
}

/** Tensors of a collated batch (the caller disposes them). */
function batchTensors(batch: Batch): { inputIds: tf.Tensor2D; labels: tf.Tensor2D } {
  return {
    inputIds: tf.tensor2d(batch.inputIds, batch.shape, 'int32'),
    labels: tf.tensor2d(batch.labels, batch.shape, 'int32'),
  };
}

interface TokenizerLosses {
  loss: tf.Scalar;
  rec: tf.Scalar;
  vq: tf.Scalar;
  usage: tf.Scalar;
  perplexity: tf.Scalar;
}

/** Tokenizer objective on images x [B, S, S, C] in [-1, 1]. */
function tokenizerLoss(vq: VQTokenizer, x: tf.Tensor): TokenizerLosses {
  return tf.tidy(() => {
    const out = vq.forward(x);
    const rec = out.xRec.sub(x).square().mean() as tf.Scalar;
    return { loss: rec.add(out.vq.loss) as tf.Scalar, rec, vq: out.vq.loss, usage: out.vq.usage, perplexity: out.vq.perplexity };
  });
}

/** AdamW over a module's trainable parameters: no weight decay on vectors (norm gains, biases). */
export function makeOptimizer(module: Module, phase: TrainPhase): AdamW {
  return new AdamW(paramGroups(module), { lr: phase.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: phase.weightDecay });
}

/** The learning rate of a phase at 0-based step t (linear warmup, cosine decay to minLrRatio * lr). */
export function lrAt(phase: TrainPhase, t: number): number {
  const total = Math.max(1, phase.steps);
  return warmupCosine({ peak: phase.lr, min: phase.lr * phase.minLrRatio, warmup: Math.min(phase.warmup, total), total })(t);
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  lr: number;
}

function applyStep(module: Module, opt: AdamW, lossFn: () => tf.Scalar, lr: number, gradClip: number, extra?: () => void): StepResult {
  const { loss, grads } = valueAndGrads(module, lossFn);
  const norm = clipGradNorm(grads, gradClip);
  opt.setLr(lr);
  opt.step(grads);
  extra?.();
  const [l, n] = [loss.dataSync()[0] as number, norm.dataSync()[0] as number];
  loss.dispose();
  norm.dispose();
  for (const g of grads.values()) g.dispose();
  return { loss: l, gradNorm: n, lr };
}

/** One LM step on a collated batch at step t of the phase. */
export function lmTrainStep(model: TransformerDecoder, opt: AdamW, batch: Batch, t: number, phase: TrainPhase): StepResult {
  const { inputIds, labels } = batchTensors(batch);
  try {
    return applyStep(model, opt, () => causalLMLoss(model, inputIds, labels), lrAt(phase, t), phase.gradClip);
  } finally {
    inputIds.dispose();
    labels.dispose();
  }
}

export interface TokenizerStepResult extends StepResult {
  rec: number;
  usage: number;
  perplexity: number;
}

/** One tokenizer step on images x [B, S, S, C] in [-1, 1] at step t of the phase. */
export function tokenizerTrainStep(vq: VQTokenizer, opt: AdamW, x: tf.Tensor, t: number, phase: TrainPhase): TokenizerStepResult {
  let rec = 0;
  let usage = 0;
  let perplexity = 0;
  const r = applyStep(
    vq,
    opt,
    () => {
      const o = tokenizerLoss(vq, x);
      rec = o.rec.dataSync()[0] as number;
      usage = o.usage.dataSync()[0] as number;
      perplexity = o.perplexity.dataSync()[0] as number;
      return o.loss;
    },
    lrAt(phase, t),
    phase.gradClip,
  );
  return { ...r, rec, usage, perplexity };
}
