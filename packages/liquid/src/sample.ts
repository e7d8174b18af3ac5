/**
 * Liquid's generation (evaluation/T2I_Eval/genaibench_generation.py, brief 2.6) and the
 * evaluations the experiments read:
 *   text-to-image  rows [cond_1 .. cond_B, uncond_1 .. uncond_B], left-padded (padding_side='left')
 *                  with an attention mask; cond = [BOS] prompt+suffix <boi>, uncond = [BOS]
 *                  <unconditional> <boi>. Per step: l = l_u + s (l_c - l_u) on the last logits;
 *                  every non-code id masked to -inf -> temperature -> top-k -> top-p (HF-v3 keep
 *                  rule) -> multinomial; the sampled code is appended to both halves; exactly N codes;
 *                  KV cache. s = 1 runs the conditional rows only (as the reference's cfg_scale > 1 test).
 *                  With RoPE and masked padding keys, left padding leaves the logits of every row
 *                  unchanged (attention depends on relative positions only).
 *   captioning     [BOS] <boi> codes <eoi> "The caption of this image is:" then greedy text ids
 *                  (image ids masked) until <eos>.
 *   text loss      mean next-token NLL of [BOS] + text windows (perplexity = exp).
 */
import {
  cfgLogits,
  filterLogits,
  leftPadRows,
  type Rng,
  type SampleOptions,
  sampleSpan,
  sampleUntil,
  type TransformerDecoder,
  tf,
} from '@mmlm/core';
import type { LiquidVocab } from './model.js';

export interface ImageSamplingOptions {
  /** s of l_u + s (l_c - l_u) (default 7). */
  cfgScale?: number;
  /** Default 0.99; 0 = greedy. */
  temperature?: number;
  /** Default 4096 (0 disables). */
  topK?: number;
  /** Default 0.96. */
  topP?: number;
  /** Required unless temperature is 0. */
  rng?: Rng;
  /** Prompts per forward batch (each uses two rows with CFG). Default all. */
  batchSize?: number;
}

export interface CfgLayout {
  /** [R, L] row-major, left-padded with vocab.pad; R = 2B with CFG (cond rows, then uncond rows), else B. */
  ids: Int32Array;
  /** [R, L], 1 at real tokens. */
  keep: Float32Array;
  rows: number;
  length: number;
}

/** The reference's prompt rows: cond [BOS] p <boi> for each prompt, then (s != 1) B uncond rows, left-padded. */
export function cfgLayout(vocab: LiquidVocab, prompts: readonly (readonly number[])[], cfgScale: number): CfgLayout {
  const cond = prompts.map((p) => [vocab.bos, ...p, vocab.boi]);
  const rowsIds = cfgScale !== 1 ? [...cond, ...prompts.map(() => [vocab.bos, vocab.unconditional, vocab.boi])] : cond;
  return leftPadRows(rowsIds, vocab.pad);
}

/**
 * The logits one image token is drawn from: CFG-combined rows [B, V] (cond [B, V], uncond [B, V]
 * or null for s = 1), every non-code id at -inf, then temperature, top-k, top-p.
 */
export function imageTokenLogits(
  vocab: LiquidVocab,
  cond: tf.Tensor,
  uncond: tf.Tensor | null,
  opts: Omit<ImageSamplingOptions, 'rng' | 'batchSize'> = {},
): tf.Tensor {
  return tf.tidy(() => {
    const l = uncond ? cfgLogits(cond, uncond, opts.cfgScale ?? 7) : cond;
    return filterLogits(l, imageSampleOptions(vocab, opts));
  });
}

/** The per-token sampling options of image generation: codes only, temperature, top-k, top-p. */
function imageSampleOptions(vocab: LiquidVocab, opts: Omit<ImageSamplingOptions, 'batchSize'>): SampleOptions {
  return {
    temperature: opts.temperature ?? 0.99,
    topK: opts.topK ?? 4096,
    topP: opts.topP ?? 0.96,
    allowed: { ranges: [[vocab.codeOffset, vocab.codeOffset + vocab.numCodes]] },
    rng: opts.rng,
  };
}

function checkTextPrompt(who: string, vocab: LiquidVocab, p: readonly number[], i: number): void {
  p.forEach((id, j) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab.textVocabSize)
      throw new Error(`${who}: prompt ${i} has id ${id} at index ${j}; prompt ids must be text ids in [0, ${vocab.textVocabSize})`);
  });
}

/**
 * Generate exactly vocab.tokensPerImage codes for each prompt (text ids of caption + suffix, without
 * BOS and <boi>). Returns one Int32Array of codes in [0, K) per prompt.
 */
export function generateImageCodes(
  model: TransformerDecoder,
  vocab: LiquidVocab,
  prompts: readonly (readonly number[])[],
  opts: ImageSamplingOptions = {},
): Int32Array[] {
  const who = 'generateImageCodes';
  if (model.config.vocabSize !== vocab.size)
    throw new Error(`${who}: the model's vocabulary is ${model.config.vocabSize}, the unified vocabulary is ${vocab.size}`);
  const s = opts.cfgScale ?? 7;
  if (!(typeof s === 'number' && Number.isFinite(s) && s > 0)) throw new Error(`${who}: cfgScale must be a finite number > 0, got ${s}`);
  const N = vocab.tokensPerImage;
  const ctx = model.config.maxSeqLen;
  prompts.forEach((p, i) => {
    checkTextPrompt(who, vocab, p, i);
    const need = p.length + 2 + N; // [BOS] p <boi> + N codes
    if (need > ctx)
      throw new Error(
        `${who}: prompt ${i} has ${p.length} tokens; with [BOS], <boi> and ${N} image codes it needs ${need} positions, more than the context of ${ctx}`,
      );
  });
  const bs = opts.batchSize ?? Math.max(1, prompts.length);
  const out: Int32Array[] = [];
  for (let b0 = 0; b0 < prompts.length; b0 += bs) out.push(...generateBatch(model, vocab, prompts.slice(b0, b0 + bs), s, opts));
  return out;
}

function generateBatch(
  model: TransformerDecoder,
  vocab: LiquidVocab,
  prompts: readonly (readonly number[])[],
  s: number,
  opts: ImageSamplingOptions,
): Int32Array[] {
  const wasTraining = model.training;
  model.eval();
  try {
    // the reference's rows: cond [BOS] p <boi>, then (s != 1) uncond [BOS] <uncond> <boi> (cfgLayout)
    const ids = sampleSpan(
      model,
      prompts.map((p) => [vocab.bos, ...p, vocab.boi]),
      {
        steps: vocab.tokensPerImage,
        padId: vocab.pad,
        cfgScale: s,
        uncond: prompts.map(() => [vocab.bos, vocab.unconditional, vocab.boi]),
        sample: imageSampleOptions(vocab, opts),
      },
    );
    return ids.map((row) => row.map((id) => id - vocab.codeOffset));
  } finally {
    model.train(wasTraining);
  }
}

export interface CaptionOptions {
  /** Longest caption in tokens (default 24). */
  maxNewTokens?: number;
  /** Default 0 (greedy). */
  temperature?: number;
  rng?: Rng;
}

/**
 * Caption images: [BOS] <boi> codes <eoi> instruction, then text ids (image and extra ids masked)
 * until <eos>. Returns the caption ids (without <eos>) per image.
 */
export function captionImages(
  model: TransformerDecoder,
  vocab: LiquidVocab,
  codes: readonly ArrayLike<number>[],
  instructionIds: readonly number[],
  opts: CaptionOptions = {},
): number[][] {
  const who = 'captionImages';
  if (model.config.vocabSize !== vocab.size)
    throw new Error(`${who}: the model's vocabulary is ${model.config.vocabSize}, the unified vocabulary is ${vocab.size}`);
  const maxNew = opts.maxNewTokens ?? 24;
  const N = vocab.tokensPerImage;
  const prefix = (c: ArrayLike<number>, i: number) => {
    if (c.length !== N) throw new Error(`${who}: image ${i} must hold exactly ${N} codes, got ${c.length}`);
    for (let j = 0; j < c.length; j++) {
      const k = c[j] as number;
      if (!Number.isInteger(k) || k < 0 || k >= vocab.numCodes)
        throw new Error(`${who}: image ${i} has code ${k} at index ${j}; codes must be integers in [0, ${vocab.numCodes})`);
    }
    return [vocab.bos, vocab.boi, ...Array.from(c, (k) => vocab.codeOffset + k), vocab.eoi, ...instructionIds];
  };
  const rows = codes.map(prefix);
  const B = rows.length;
  if (B === 0) return [];
  const L = (rows[0] as number[]).length;
  if (L + maxNew - 1 > model.config.maxSeqLen)
    throw new Error(
      `${who}: the captioning prefix of ${L} tokens plus ${maxNew} new tokens needs ${L + maxNew - 1} positions, more than the context of ${model.config.maxSeqLen}`,
    );
  const wasTraining = model.training;
  model.eval();
  try {
    return sampleUntil(model, rows, {
      maxNewTokens: maxNew,
      stopId: vocab.eos,
      sample: { temperature: opts.temperature ?? 0, rng: opts.rng, allowed: { ranges: [[0, vocab.textVocabSize]] } },
    });
  } finally {
    model.train(wasTraining);
  }
}

/**
 * Mean next-token NLL (nats) of text sequences, each scored as [BOS] + ids (the text format) in
 * batches; targets are every id of each sequence. Perplexity = exp(loss).
 */
export function textLoss(
  model: TransformerDecoder,
  vocab: Pick<LiquidVocab, 'bos' | 'pad'>,
  sequences: readonly (readonly number[])[],
  batchSize = 16,
): number {
  if (sequences.length === 0) throw new Error('textLoss: need at least one sequence, got 0');
  const wasTraining = model.training;
  model.eval();
  let sum = 0;
  let count = 0;
  try {
    for (let b0 = 0; b0 < sequences.length; b0 += batchSize) {
      const chunk = sequences.slice(b0, b0 + batchSize);
      const T = Math.max(...chunk.map((s) => s.length + 1));
      if (T > model.config.maxSeqLen)
        throw new Error(`textLoss: a sequence of ${T - 1} tokens plus [BOS] exceeds the context of ${model.config.maxSeqLen}`);
      const ids = new Int32Array(chunk.length * T).fill(vocab.pad);
      const labels = new Int32Array(chunk.length * T).fill(-100);
      chunk.forEach((s, i) => {
        ids.set([vocab.bos, ...s], i * T);
        labels.set([vocab.bos, ...s], i * T);
      });
      const n = chunk.reduce((a, s) => a + s.length, 0);
      const l = tf.tidy(() => {
        const x = tf.tensor2d(ids, [chunk.length, T], 'int32');
        const y = tf.tensor2d(labels, [chunk.length, T], 'int32');
        const logits = model.forward(x.slice([0, 0], [chunk.length, T - 1]));
        return tf
          .sum(
            tf.tidy(() => {
              const yy = y.slice([0, 1], [chunk.length, T - 1]);
              const logp = tf.logSoftmax(logits); // [b, T-1, V]
              const valid = tf.notEqual(yy, -100);
              const safe = tf.where(valid, yy, tf.zerosLike(yy));
              const picked = tf.sum(logp.mul(tf.oneHot(safe, logits.shape[2] as number)), -1); // [b, T-1]
              return tf.where(valid, picked.neg(), tf.zerosLike(picked));
            }),
          )
          .dataSync()[0] as number;
      });
      sum += l;
      count += n;
    }
  } finally {
    model.train(wasTraining);
  }
  return sum / count;
}
