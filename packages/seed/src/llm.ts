/**
 * The LLM side of SEED: SEED-LLaMA (Ge et al. 2023, arXiv 2310.01218; brief 1.4) at toy scale.
 *
 *   1. `SeedLM`: a decoder-only LM (core's TransformerDecoder: RoPE, RMSNorm, SwiGLU, no biases, as
 *      LLaMA) over a text vocabulary, pre-trained on text first (the reference starts from LLaMA);
 *   2. `extendVocabulary`: HF's `resize_token_embeddings` to the K code tokens plus `<img>` /
 *      `</img>` (vocab.ts): the embedding and the output head grow, their old rows kept bit-identical;
 *      the new rows are N(0, initStd) (`init: 'normal'`, what `_init_weights` gives the resized rows
 *      of LLaMA in the transformers versions SEED-LLaMA used) or the mean of the old rows (`'mean'`,
 *      the mean part of newer transformers' `mean_resizing`);
 *   3. `applySeedLoRA`: PEFT LoRA (r, alpha, dropout; reference r 16, alpha 32, dropout 0.05) on every
 *      Linear of the transformer blocks (q, k, v, o and the MLP), with `modules_to_save` (token
 *      embedding, LM head, every norm) fully trained; `mergeSeedLoRA` = merge_and_unload;
 *   4. `lmLoss` / `lmStep`: next-token cross-entropy on the labelled positions (vocab.ts's sequences);
 *   5. `generateImageCodes`: after `<img>`, exactly Q codes (every non-code id masked), then `</img>`
 *      forced; KV cache, classifier-free guidance on logits (`cfgLogits`, the null prompt is the
 *      same template with an empty caption), temperature / top-k / top-p (`sample`);
 *      `generateImages` decodes them to pixels through the de-tokenizer and the pixel decoder
 *      (`imageFromCodes`); `generateCaptions`: greedy text (code and image ids masked) to `<eos>`;
 *   6. `trainSeedLM`: the phases text pre-training -> vocabulary extension -> multimodal
 *      pre-training (loss on all non-pad tokens, order reversed with probability 0.5) -> SFT (loss on
 *      the assistant's tokens), each tuned with LoRA (merged after the phase; SFT gets a new LoRA on
 *      the merged model, as the reference) or fully.
 *
 * Deviations from the reference, for the toy scale: the LM is a few layers trained from scratch on
 * the Shapes grammar (not LLaMA-2 / Vicuna); the text tokenizer is a word tokenizer, so the SFT
 * markers are the words "user :" and "assistant :"; CFG is optional (SEED-LLaMA samples without it).
 */
import {
  AdamW,
  applyLoRA,
  clipGradNorm,
  crossEntropy,
  type DecoderCall,
  type ExtendVocabularyOptions,
  extendDecoderVocabulary,
  type KVCache,
  LayerNorm,
  type LoRALinear,
  loraLayers,
  Module,
  mergeAndUnloadLoRA,
  type NewRowInit,
  paramGroups,
  parseConfig,
  RMSNorm,
  Rng,
  sampleSpan,
  sampleUntil,
  swigluHidden,
  TransformerDecoder,
  type TransformerDecoderConfig,
  tf,
  trainLoop,
  valueAndGrads,
  warmupCosine,
} from '@mmlm/core';
import { z } from 'zod';
import { type ImageDecoder, imageFromCodes } from './decoder.js';
import type { SeedTokenizer } from './tokenizer.js';
import {
  type ChatTemplate,
  captionPrompt,
  checkTextIds,
  generationPrompt,
  IGNORE_INDEX,
  imageSpan,
  padSequences,
  pairSequence,
  type SeedVocab,
  type SftTask,
  samplePairOrder,
  seedVocab,
  sftSequence,
  type TokenBatch,
  textSequence,
} from './vocab.js';

// ---------------------------------------------------------------------------------------------
// config

export const SeedLMConfigSchema = z.object({
  /** Ids of the text tokenizer, specials included (the vocabulary before extension). */
  textVocabSize: z.number().int().positive(),
  /** Ids of the text tokenizer's specials (WordTokenizer's defaults: pad 0, bos 1, eos 2). */
  pad: z.number().int().nonnegative().default(0),
  bos: z.number().int().nonnegative().default(1),
  eos: z.number().int().nonnegative().default(2),
  /** Width (LLaMA-7B: 4096). */
  dim: z.number().int().positive().default(64),
  /** Blocks (LLaMA-7B: 32). */
  numLayers: z.number().int().positive().default(2),
  /** Attention heads (dim / heads must be even for RoPE). */
  numHeads: z.number().int().positive().default(4),
  /** SwiGLU hidden width (LLaMA-7B: 11008); unset: core's rule, 2/3 of 4 dim rounded down to 64. */
  mlpHidden: z.number().int().positive().optional(),
  /** Longest sequence (SEED-LLaMA: 200 for caption data). */
  maxSeqLen: z.number().int().positive().default(48),
  /** Dropout on attention and MLP outputs in training mode (LLaMA: 0). */
  dropout: z.number().min(0).lt(1).default(0),
  /** Std of the normal init, also of the new vocabulary rows (LLaMA's initializer_range 0.02). */
  initStd: z.number().positive().default(0.02),
  /** Seed of the init and dropout streams. */
  seed: z.number().int().default(0),
});
export type SeedLMConfigInput = z.input<typeof SeedLMConfigSchema>;
export type SeedLMConfig = z.infer<typeof SeedLMConfigSchema>;

/** The LM config with defaults filled in; errors name the field, the expectation and the value. */
export function seedLMConfig(input: SeedLMConfigInput): SeedLMConfig {
  const c = parseConfig('SeedLM config', SeedLMConfigSchema, input);
  for (const k of ['pad', 'bos', 'eos'] as const)
    if (c[k] >= c.textVocabSize) throw new Error(`SeedLM config: ${k} must be a text id in [0, ${c.textVocabSize}), got ${c[k]}`);
  if (c.dim % c.numHeads !== 0 || (c.dim / c.numHeads) % 2 !== 0)
    throw new Error(`SeedLM config: dim must be numHeads x an even head width (RoPE), got dim ${c.dim} with ${c.numHeads} heads`);
  return c;
}

function decoderConfig(c: SeedLMConfig, vocabSize: number): TransformerDecoderConfig {
  return {
    vocabSize,
    dim: c.dim,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    maxSeqLen: c.maxSeqLen,
    mlp: 'swiglu',
    ...(c.mlpHidden === undefined ? {} : { mlpHidden: c.mlpHidden }),
    norm: 'rmsnorm',
    bias: false,
    pos: 'rope',
    tieEmbeddings: false,
    initStd: c.initStd,
    dropout: c.dropout,
    seed: c.seed,
  };
}

// ---------------------------------------------------------------------------------------------
// vocabulary extension

export type { ExtendVocabularyOptions, NewRowInit };
// core's extendDecoderVocabulary (Liquid and MIO grow their LMs the same way), re-exported under the
// names this package has always had
export { extendDecoderVocabulary };

// ---------------------------------------------------------------------------------------------
// the model

/**
 * SEED-LLaMA's LM: a TransformerDecoder (child `lm`) over the text vocabulary, extended once by
 * `extendVocabulary` to codes + `<img>` / `</img>`. Parameter names: `lm.tok_embed.weight`,
 * `lm.blocks.{i}.attn.qkv.weight`, ..., `lm.norm.weight`, `lm.head.weight` (HF LLaMA's
 * `model.embed_tokens`, `model.layers.{i}.self_attn.{q,k,v}_proj` (fused here), `model.norm`,
 * `lm_head`).
 */
export class SeedLM extends Module {
  readonly config: SeedLMConfig;
  /** The decoder; replaced by a larger one when the vocabulary is extended. */
  lm: TransformerDecoder;
  /** The extended vocabulary, null until `extendVocabulary`. */
  vocab: SeedVocab | null = null;

  constructor(config: SeedLMConfigInput) {
    super();
    this.config = seedLMConfig(config);
    this.lm = this.module('lm', new TransformerDecoder(decoderConfig(this.config, this.config.textVocabSize)));
  }

  /** Current number of ids (V before extension, V + K + 2 after). */
  get vocabSize(): number {
    return this.lm.config.vocabSize;
  }

  get maxSeqLen(): number {
    return this.config.maxSeqLen;
  }

  /** The extended vocabulary; an error before `extendVocabulary`. */
  requireVocab(who: string): SeedVocab {
    if (!this.vocab) throw new Error(`${who}: the LM's vocabulary is text-only; call extendVocabulary(numCodes, tokensPerImage) first`);
    return this.vocab;
  }

  /** Token ids [B, T] int32 -> logits [B, T, vocabSize]. */
  forward(ids: tf.Tensor, call: DecoderCall = {}): tf.Tensor {
    return this.lm.forward(ids, call);
  }

  newCache(): KVCache {
    return this.lm.newCache();
  }

  /** Random streams by path (dropout), for trainLoop. */
  rngs(): Record<string, Rng> {
    return Object.fromEntries(this.namedRngs());
  }

  /**
   * Grow the vocabulary by K code tokens + `<img>` + `</img>` (ids as vocab.ts); old embedding and
   * head rows stay bit-identical, so text-only logits of the old ids are unchanged. Once only.
   */
  extendVocabulary(numCodes: number, tokensPerImage: number, opts: ExtendVocabularyOptions = {}): SeedVocab {
    if (this.vocab) throw new Error(`SeedLM.extendVocabulary: the vocabulary is already extended (${this.vocab.size} ids)`);
    const { textVocabSize, bos, eos, pad } = this.config;
    const v = seedVocab({ textVocabSize, numCodes, tokensPerImage, bos, eos, pad });
    const old = this.lm;
    this.replaceChild('lm', extendDecoderVocabulary(old, v.size, opts));
    old.dispose();
    this.vocab = v;
    return v;
  }
}

/**
 * SEED-LLaMA 8B's LM (brief 1.4): Vicuna-7B, i.e. LLaMA-7B's shapes (32 blocks, 4096 wide, 32
 * heads, SwiGLU 11008, RMSNorm, RoPE, untied head, 32,000 text ids), extended by 8,192 codes plus
 * `<img>` / `</img>`. Counted by `seedLMParameterCount`, never built here (about 27 GB of float32).
 */
export const SEED_LM_PAPER: SeedLMConfigInput & { numCodes: number } = {
  textVocabSize: 32000,
  pad: 0,
  bos: 1,
  eos: 2,
  dim: 4096,
  numLayers: 32,
  numHeads: 32,
  mlpHidden: 11008,
  maxSeqLen: 2048,
  numCodes: 8192,
};

export interface SeedLMParameterCount {
  /** Every parameter before the extension (the text LM). */
  text: number;
  /** Every parameter after the vocabulary grew by `numCodes` + 2 (no LoRA). */
  extended: number;
  /** LoRA's A and B (PEFT's count on q, k, v, o, gate, up, down), 0 without `lora`. */
  lora: number;
  /** What trains under LoRA: A, B and the modules to save (token embedding, head, every norm). */
  trainable: number;
}

/**
 * Parameters of a SeedLM counted from its config without building it (shapes of core's
 * TransformerDecoder with SwiGLU, RMSNorm, RoPE, no biases, untied head), after extending the
 * vocabulary by `numCodes` + 2 and, with `lora`, applying `applySeedLoRA` of rank r. The tests
 * check it against built models and the `SEED_LM_PAPER` count against LLaMA-7B's and PEFT's
 * published figures.
 */
export function seedLMParameterCount(input: SeedLMConfigInput, ext: { numCodes: number; lora?: { r: number } }): SeedLMParameterCount {
  const c = seedLMConfig(input);
  if (!Number.isInteger(ext?.numCodes) || ext.numCodes < 1)
    throw new Error(`seedLMParameterCount: numCodes must be a positive integer, got ${ext?.numCodes}`);
  const D = c.dim;
  const H = c.mlpHidden ?? swigluHidden(D);
  const L = c.numLayers;
  const block = 2 * D + D * 3 * D + D * D + 3 * D * H; // norm1, norm2, qkv, proj, fc1 / gate / fc2
  const body = L * block + D; // + the final norm
  const text = body + 2 * c.textVocabSize * D;
  const V = c.textVocabSize + ext.numCodes + 2;
  const extended = body + 2 * V * D;
  let lora = 0;
  if (ext.lora) {
    const r = ext.lora.r;
    if (!Number.isInteger(r) || r < 1 || r > Math.min(D, H))
      throw new Error(`seedLMParameterCount: lora.r must be an integer in [1, ${Math.min(D, H)}], got ${r}`);
    // q, k, v (the fused qkv's three parts), o: r (D + D) each; gate, up: r (D + H); down: r (H + D)
    lora = L * (4 * r * 2 * D + 3 * r * (D + H));
  }
  const trainable = ext.lora ? lora + 2 * V * D + (2 * L + 1) * D : extended;
  return { text, extended, lora, trainable };
}

// ---------------------------------------------------------------------------------------------
// LoRA with modules_to_save

/** SEED-LLaMA's LoRA: r 16, alpha 32, dropout 0.05 on q, k, v, o, gate, up, down. */
export const SEED_LLAMA_LORA = { r: 16, alpha: 32, dropout: 0.05 } as const;

export interface SeedLoRAOptions {
  r: number;
  /** Default 2 r (the reference's alpha / r = 2). */
  alpha?: number;
  dropout?: number;
  rng?: Rng;
}

export interface LoRAReport {
  /** Paths of the wrapped Linear layers. */
  wrapped: string[];
  /** Paths of the fully trained modules (token embedding, head, norms). */
  modulesToSave: string[];
  /** Scalars that train: LoRA A and B plus the modules to save. */
  trainableParameters: number;
  /** Every scalar of the model (base weights included). */
  totalParameters: number;
}

/** Output widths of a fused q / k / v projection of width dim -> dim + 2 kv (q, then k and v). */
function qkvSplits(dim: number, out: number): number[] {
  const kv = (out - dim) / 2;
  if (!(Number.isInteger(kv) && kv > 0))
    throw new Error(`applySeedLoRA: a fused qkv of ${dim} -> ${out} is not q (${dim}) + k + v of equal widths`);
  return [dim, kv, kv];
}

/** The reference's `modules_to_save`: the token embedding, the LM head and every norm (paths). */
export function modulesToSave(model: SeedLM): string[] {
  return model
    .namedModules()
    .filter(([p, m]) => p === 'lm.tok_embed' || p === 'lm.head' || m instanceof RMSNorm || m instanceof LayerNorm)
    .map(([p]) => p);
}

/**
 * LoRA on every Linear of the transformer blocks (attention qkv / proj, MLP), the head excluded (it
 * is a module to save); every parameter frozen but LoRA's A, B and the modules to save. The fused
 * attention `qkv` gets three independent rank-r updates (core's LoRA `splits`), as PEFT's LoRA on
 * LLaMA's separate q_proj, k_proj and v_proj: the trainable count is PEFT's.
 */
export function applySeedLoRA(model: SeedLM, opts: SeedLoRAOptions): LoRAReport {
  const wrapped = applyLoRA(model, {
    r: opts.r,
    alpha: opts.alpha ?? 2 * opts.r,
    dropout: opts.dropout ?? 0,
    rng: opts.rng ?? new Rng(model.config.seed).fork('lora'),
    targets: (path) => path.startsWith('lm.blocks.'),
    splits: (path, layer) => (path.endsWith('.attn.qkv') ? qkvSplits(layer.inFeatures, layer.outFeatures) : undefined),
  });
  const save = modulesToSave(model);
  model.unfreeze((p) => save.some((m) => p.startsWith(`${m}.`)));
  return {
    wrapped,
    modulesToSave: save,
    trainableParameters: model.numParameters({ trainableOnly: true }),
    totalParameters: model.numParameters(),
  };
}

/** PEFT's merge_and_unload, then every parameter trainable again. Returns the unloaded paths. */
export function mergeSeedLoRA(model: SeedLM): string[] {
  const done = mergeAndUnloadLoRA(model);
  model.unfreeze();
  return done;
}

/** The LoRA layers of the model (path, layer). */
export function seedLoRALayers(model: SeedLM): [string, LoRALinear][] {
  return loraLayers(model);
}

// ---------------------------------------------------------------------------------------------
// loss and step

function checkBatch(who: string, model: SeedLM, b: TokenBatch): void {
  if (!b || !(b.ids instanceof Int32Array) || !(b.labels instanceof Int32Array))
    throw new Error(`${who}: batch must be {ids: Int32Array, labels: Int32Array, batch, length} (padSequences)`);
  if (b.ids.length !== b.batch * b.length || b.labels.length !== b.batch * b.length)
    throw new Error(
      `${who}: ids and labels must hold batch x length = ${b.batch * b.length} values, got ${b.ids.length} and ${b.labels.length}`,
    );
  if (b.length < 2) throw new Error(`${who}: sequences need at least 2 tokens, got length ${b.length}`);
  if (b.length - 1 > model.maxSeqLen)
    throw new Error(`${who}: sequences of ${b.length} tokens need ${b.length - 1} positions, more than maxSeqLen ${model.maxSeqLen}`);
  const V = model.vocabSize;
  for (let i = 0; i < b.ids.length; i++) {
    const id = b.ids[i] as number;
    if (id < 0 || id >= V) throw new Error(`${who}: token id ${id} at flat index ${i} must be in [0, ${V}) (the LM's vocabulary)`);
  }
}

/**
 * Next-token cross-entropy, mean over the labelled targets: logits of ids[:, :-1] [B, T-1, V]
 * against labels[:, 1:] [B, T-1] (IGNORE_INDEX skipped).
 */
export function lmLoss(model: SeedLM, batch: TokenBatch): tf.Scalar {
  checkBatch('lmLoss', model, batch);
  const { batch: B, length: T } = batch;
  return tf.tidy(() => {
    const ids = tf.tensor2d(batch.ids, [B, T], 'int32');
    const labels = tf.tensor2d(batch.labels, [B, T], 'int32');
    const logits = model.forward(ids.slice([0, 0], [B, T - 1])); // [B, T-1, V]
    return crossEntropy(logits, labels.slice([0, 1], [B, T - 1]), { ignoreIndex: IGNORE_INDEX });
  });
}

/** One AdamW update of the trainable parameters (global-norm clip `gradClip`); returns the loss. */
export function lmStep(model: SeedLM, opt: AdamW, batch: TokenBatch, gradClip = 1): number {
  return tf.tidy(() => {
    const { loss, grads } = valueAndGrads(model, () => lmLoss(model, batch));
    clipGradNorm(grads, gradClip);
    opt.step(grads);
    return loss.dataSync()[0] as number;
  });
}

// ---------------------------------------------------------------------------------------------
// generation

export interface ImageSamplingOptions {
  /** CFG scale s of l_u + s (l_c - l_u); 1 (default) is no guidance, no unconditional rows. */
  cfgScale?: number;
  /** 0 is greedy. Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Required when temperature > 0. */
  rng?: Rng;
  /** SFT prompt template; null (default) is the pre-training format. */
  template?: ChatTemplate | null;
}

export interface GeneratedImages {
  /** Q codes per prompt, flat [N * Q] in query order (as SeedTokenizer.encodeCodes). */
  codes: Int32Array;
  /** Each prompt's image span `<img> c_1 .. c_Q </img>` (`</img>` forced, never sampled). */
  spans: number[][];
}

/**
 * Images for captions (text ids each): the prompt ends with `<img>`, then exactly Q codes are drawn
 * with every non-code id masked, and `</img>` closes the span. One batched pass with a KV cache
 * (left padding under a padding mask); with cfgScale != 1 the unconditional prompts (an empty
 * caption, same template) run as extra rows and the logits are guided by `cfgLogits`.
 */
export function generateImageCodes(
  model: SeedLM,
  captions: readonly (readonly number[])[],
  opts: ImageSamplingOptions = {},
): GeneratedImages {
  const v = model.requireVocab('generateImageCodes');
  const Q = v.tokensPerImage;
  if (!Array.isArray(captions)) throw new Error(`generateImageCodes: captions must be an array of text-id arrays, got ${typeof captions}`);
  const s = opts.cfgScale ?? 1;
  if (!(Number.isFinite(s) && s > 0)) throw new Error(`generateImageCodes: cfgScale must be a finite number > 0, got ${s}`);
  const temperature = opts.temperature ?? 1;
  if (temperature > 0 && !opts.rng) throw new Error('generateImageCodes: an rng is required when temperature > 0 (sampling is seeded)');
  const N = captions.length;
  if (N === 0) return { codes: new Int32Array(0), spans: [] };
  const template = opts.template ?? null;
  const prompts = captions.map((c, i) => {
    checkTextIds(v, `generateImageCodes (captions[${i}])`, c);
    const p = generationPrompt(v, c, template);
    if (p.length + Q - 1 > model.maxSeqLen)
      throw new Error(
        `generateImageCodes: captions[${i}] needs ${p.length} prompt tokens + ${Q} codes = ${p.length + Q} positions, more than maxSeqLen ${model.maxSeqLen}`,
      );
    return p;
  });
  const wasTraining = model.training;
  model.eval();
  let drawn: Int32Array[];
  try {
    drawn = sampleSpan(model, prompts, {
      steps: Q,
      padId: v.pad,
      cfgScale: s,
      uncond: prompts.map(() => generationPrompt(v, [], template)),
      sample: {
        temperature,
        topK: opts.topK,
        topP: opts.topP,
        allowed: { ranges: [[v.codeOffset, v.codeOffset + v.numCodes]] },
        rng: opts.rng,
      },
    });
  } finally {
    model.train(wasTraining);
  }
  const codes = new Int32Array(N * Q);
  drawn.forEach((row, b) => {
    for (let i = 0; i < Q; i++) codes[b * Q + i] = (row[i] as number) - v.codeOffset;
  });
  const spans = Array.from({ length: N }, (_, b) => imageSpan(v, codes.subarray(b * Q, (b + 1) * Q)));
  return { codes, spans };
}

/** Images [N, S, S, C] in (0, 1) for captions: generateImageCodes, then the de-tokenizer and the pixel decoder. */
export function generateImages(
  model: SeedLM,
  tokenizer: SeedTokenizer,
  decoder: ImageDecoder,
  captions: readonly (readonly number[])[],
  opts: ImageSamplingOptions = {},
): GeneratedImages & { images: tf.Tensor4D } {
  const v = model.requireVocab('generateImages');
  if (tokenizer.numQueries !== v.tokensPerImage || tokenizer.config.quantizer.numCodes !== v.numCodes)
    throw new Error(
      `generateImages: the LM has ${v.tokensPerImage} codes per image of K = ${v.numCodes}, the tokenizer ${tokenizer.numQueries} of K = ${tokenizer.config.quantizer.numCodes}`,
    );
  if (captions.length === 0) throw new Error('generateImages: expected at least one caption, got 0');
  const g = generateImageCodes(model, captions, opts);
  return { ...g, images: imageFromCodes(tokenizer, decoder, g.codes) };
}

export interface FreeImageSpanOptions {
  /** SFT prompt template; null (default) is the pre-training format. */
  template?: ChatTemplate | null;
  /** Most ids drawn after `<img>` per prompt (default 2 Q + 2); a row that has not drawn `</img>` by then is cut. */
  maxTokens?: number;
  /** 0 is greedy. Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Required when temperature > 0. */
  rng?: Rng;
}

export interface FreeImageSpans {
  /** Per prompt: the ids drawn after `<img>`, `</img>` excluded. */
  tokens: number[][];
  /** Per prompt: whether `</img>` was drawn within maxTokens. */
  closed: boolean[];
  /** Per prompt: how many of the drawn ids are code ids. */
  codeCounts: number[];
  /** Per prompt: closed, every drawn id a code, and exactly Q of them (a well-formed image span). */
  exact: boolean[];
}

/**
 * Free-running image spans (SEED section 4.3's test of whether the LM "emits exactly 32 image
 * tokens"): the prompt ends with `<img>`, then the LM draws **any** id (nothing masked, nothing
 * forced) until it draws `</img>` or `maxTokens` ids; the drawn ids are then counted. Contrast
 * `generateImageCodes`, which masks every non-code id and forces `</img>` after exactly Q codes.
 * No guidance (core's `sampleUntil`, KV cache); prompts of equal length run as one batch.
 */
export function generateFreeImageSpans(
  model: SeedLM,
  captions: readonly (readonly number[])[],
  opts: FreeImageSpanOptions = {},
): FreeImageSpans {
  const v = model.requireVocab('generateFreeImageSpans');
  const Q = v.tokensPerImage;
  if (!Array.isArray(captions))
    throw new Error(`generateFreeImageSpans: captions must be an array of text-id arrays, got ${typeof captions}`);
  const maxTokens = opts.maxTokens ?? 2 * Q + 2;
  if (!Number.isInteger(maxTokens) || maxTokens < 1)
    throw new Error(`generateFreeImageSpans: maxTokens must be an integer >= 1, got ${opts.maxTokens}`);
  const temperature = opts.temperature ?? 1;
  if (temperature > 0 && !opts.rng) throw new Error('generateFreeImageSpans: an rng is required when temperature > 0 (sampling is seeded)');
  const template = opts.template ?? null;
  const prompts = captions.map((c, i) => {
    checkTextIds(v, `generateFreeImageSpans (captions[${i}])`, c);
    const p = generationPrompt(v, c, template);
    if (p.length + maxTokens > model.maxSeqLen)
      throw new Error(
        `generateFreeImageSpans: captions[${i}] needs ${p.length} prompt tokens + ${maxTokens} drawn ids (+ </img>) = ${p.length + maxTokens} positions, more than maxSeqLen ${model.maxSeqLen}`,
      );
    return p;
  });
  const byLength = new Map<number, number[]>();
  prompts.forEach((p, i) => byLength.set(p.length, [...(byLength.get(p.length) ?? []), i]));
  const tokens: number[][] = prompts.map(() => []);
  const closed: boolean[] = prompts.map(() => false);
  const wasTraining = model.training;
  model.eval();
  try {
    for (const [, rows] of [...byLength.entries()].sort((a, b) => a[0] - b[0])) {
      // one extra draw: a row that draws Q codes then `</img>` needs Q + 1 draws
      const out = sampleUntil(
        model,
        rows.map((i) => prompts[i] as number[]),
        {
          maxNewTokens: maxTokens + 1,
          stopId: v.endImg,
          sample: { temperature, topK: opts.topK, topP: opts.topP, rng: opts.rng },
        },
      );
      rows.forEach((i, r) => {
        const drawn = out[r] as number[];
        closed[i] = drawn.length <= maxTokens;
        tokens[i] = drawn.slice(0, maxTokens);
      });
    }
  } finally {
    model.train(wasTraining);
  }
  const codeCounts = tokens.map((t) => t.filter((id) => id >= v.codeOffset && id < v.codeOffset + v.numCodes).length);
  const exact = tokens.map((t, i) => closed[i] === true && t.length === Q && codeCounts[i] === Q);
  return { tokens, closed, codeCounts, exact };
}

export interface CaptionOptions {
  template?: ChatTemplate | null;
  /** Most text tokens per caption (default: until maxSeqLen). */
  maxNewTokens?: number;
}

/**
 * Greedy captions (text ids, `<eos>` excluded) of images given as codes (flat [N * Q]): the prompt
 * `<bos> <img> codes </img>` (or the template's), then text ids only (codes, `<img>`, `</img>`, pad
 * and bos masked) until `<eos>` or maxNewTokens; KV cache.
 */
export function generateCaptions(model: SeedLM, codes: ArrayLike<number>, opts: CaptionOptions = {}): number[][] {
  const v = model.requireVocab('generateCaptions');
  const Q = v.tokensPerImage;
  if (!codes || codes.length % Q !== 0)
    throw new Error(`generateCaptions: expected N x ${Q} codes (tokensPerImage ${Q}), got ${codes?.length}`);
  const N = codes.length / Q;
  if (N === 0) return [];
  const template = opts.template ?? null;
  const prompts = Array.from({ length: N }, (_, b) => captionPrompt(v, Array.from(codes).slice(b * Q, (b + 1) * Q), template));
  const L = (prompts[0] as number[]).length;
  const room = model.maxSeqLen - L + 1;
  if (room < 1) throw new Error(`generateCaptions: the prompt of ${L} tokens leaves no room in maxSeqLen ${model.maxSeqLen}`);
  const maxNew = Math.min(opts.maxNewTokens ?? room, room);
  if (!Number.isInteger(maxNew) || maxNew < 1)
    throw new Error(`generateCaptions: maxNewTokens must be an integer >= 1, got ${opts.maxNewTokens}`);
  const allowedIds: number[] = [];
  for (let id = 0; id < v.textVocabSize; id++) if (id !== v.pad && id !== v.bos) allowedIds.push(id);
  const so = { temperature: 0, allowed: { ids: allowedIds } };
  const wasTraining = model.training;
  model.eval();
  try {
    return sampleUntil(model, prompts, { maxNewTokens: maxNew, stopId: v.eos, sample: so });
  } finally {
    model.train(wasTraining);
  }
}

// ---------------------------------------------------------------------------------------------
// training phases

export const LMPhaseSchema = z.object({
  steps: z.number().int().nonnegative(),
  batchSize: z.number().int().positive().default(16),
  /** Peak lr (SEED-LLaMA: 1.5e-4 pre-training, 1e-4 SFT, at 7B). */
  lr: z.number().positive().default(3e-3),
  /** Warmup as a fraction of the steps (SEED-LLaMA: 0.03 pre-training, 0.07 SFT). */
  warmupFraction: z.number().min(0).max(1).default(0.05),
  /** Cosine floor as a fraction of the peak (SEED-LLaMA: 0.05). */
  minLrRatio: z.number().min(0).max(1).default(0.05),
  /** AdamW weight decay (SEED-LLaMA: 0.05), not on norms (rank < 2). */
  weightDecay: z.number().nonnegative().default(0.05),
  /** Global gradient-norm clip (SEED-LLaMA: 1.0). */
  gradClip: z.number().positive().default(1),
});
export type LMPhase = z.infer<typeof LMPhaseSchema>;

export const SeedLMRecipeSchema = z.object({
  /** Phase 1: text-only pre-training of the LM (stands in for LLaMA's pre-training). */
  text: LMPhaseSchema.prefault({ steps: 0 }),
  /** Phase 2: multimodal pre-training, caption <-> image pairs, loss on all non-pad tokens. */
  pretrain: LMPhaseSchema.prefault({ steps: 0 }),
  /** Phase 3: SFT with the chat template, loss on the assistant's tokens. */
  sft: LMPhaseSchema.prefault({ steps: 0 }),
  /** Probability that a pre-training pair is image-first (SEED-LLaMA's reverse ratio 0.5). */
  reverseRatio: z.number().min(0).max(1).default(0.5),
  /** Probability that a text-first caption is dropped (the null prompt of CFG); 0 = no CFG training. */
  uncondProb: z.number().min(0).max(1).default(0.1),
  /** Share of SFT examples that are captioning (the rest are generation). */
  captionFraction: z.number().min(0).max(1).default(0.5),
  /** 'lora': LoRA + modules_to_save in phases 2 and 3 (merged after each), as SEED-LLaMA; 'full': every parameter. */
  tuning: z.enum(['lora', 'full']).default('lora'),
  lora: z
    .object({
      r: z.number().int().positive().default(4),
      alpha: z.number().positive().default(8),
      dropout: z.number().min(0).lt(1).default(0.05),
    })
    .prefault({}),
  /** Init of the new vocabulary rows. */
  newRowInit: z.enum(['normal', 'mean']).default('normal'),
});
export type SeedLMRecipeInput = z.input<typeof SeedLMRecipeSchema>;
export type SeedLMRecipe = z.infer<typeof SeedLMRecipeSchema>;

export function seedLMRecipe(input: SeedLMRecipeInput = {}): SeedLMRecipe {
  return parseConfig('SeedLM recipe', SeedLMRecipeSchema, input ?? {});
}

export interface PhaseReport {
  steps: number;
  losses: number[];
  seconds: number;
  /** Scalars that trained in this phase. */
  trainableParameters: number;
}

/**
 * Train the trainable parameters of `model` for `phase.steps` AdamW steps (betas 0.9 / 0.95, eps
 * 1e-5, as SEED-LLaMA; linear warmup, cosine to minLrRatio x lr) with core's trainLoop; `batch(rng)`
 * builds each step's batch on the host, the step itself runs in one tf.tidy.
 */
export async function trainPhase(
  model: SeedLM,
  phase: LMPhase,
  batch: (rng: Rng) => TokenBatch,
  o: { seed: number; name: string; log?: (line: string) => void; onStep?: (step: number, loss: number) => void },
): Promise<PhaseReport> {
  const trainable = model.numParameters({ trainableOnly: true });
  if (phase.steps === 0) return { steps: 0, losses: [], seconds: 0, trainableParameters: trainable };
  const t0 = performance.now();
  const rng = new Rng(o.seed).fork(`seed-lm-${o.name}`);
  const warmup = Math.min(phase.steps, Math.floor(phase.steps * phase.warmupFraction));
  const lrOf = warmupCosine({ peak: phase.lr, min: phase.lr * phase.minLrRatio, warmup, total: phase.steps });
  const opt = new AdamW(paramGroups(model), { lr: phase.lr, beta1: 0.9, beta2: 0.95, eps: 1e-5, weightDecay: phase.weightDecay });
  model.train();
  try {
    const r = await trainLoop({
      steps: phase.steps,
      model,
      optimizer: opt,
      rng,
      progress: 'none',
      name: `seed-lm ${o.name}`,
      log: o.log ?? (() => {}),
      lr: (t) => lrOf(t - 1),
      step: (t) => {
        opt.setLr(lrOf(t - 1));
        return lmStep(model, opt, batch(rng), phase.gradClip);
      },
      onStep: o.onStep ? (t, loss) => o.onStep?.(t, loss) : undefined,
    });
    // SIGINT stops trainLoop after a step (no checkpoint here): a phase cut short is an error, never a result
    if (r.interrupted) throw new Error(`seed-lm ${o.name}: training interrupted after step ${r.step} of ${phase.steps}`);
    return { steps: phase.steps, losses: r.losses, seconds: (performance.now() - t0) / 1000, trainableParameters: trainable };
  } finally {
    opt.dispose();
    model.eval();
  }
}

/** One caption (text ids) and its image's Q codes. */
export interface CaptionedCodes {
  caption: readonly number[];
  codes: ArrayLike<number>;
}

export interface SeedLMTrainOptions {
  /** A fresh, text-only SeedLM; extended in place. */
  model: SeedLM;
  /** Text pre-training sentences (text ids, no bos / eos). */
  text: readonly (readonly number[])[];
  /** Caption-image pairs of multimodal pre-training and SFT. */
  pairs: readonly CaptionedCodes[];
  numCodes: number;
  tokensPerImage: number;
  template: ChatTemplate;
  recipe?: SeedLMRecipeInput;
  seed: number;
  log?: (line: string) => void;
}

export interface SeedLMTrainResult {
  vocab: SeedVocab;
  recipe: SeedLMRecipe;
  text: PhaseReport;
  pretrain: PhaseReport & { lora: LoRAReport | null };
  sft: PhaseReport & { lora: LoRAReport | null };
}

/**
 * SEED-LLaMA's schedule at toy scale: text pre-training (every parameter) -> extendVocabulary ->
 * multimodal pre-training (pairs in either order, loss on all non-pad tokens) -> SFT (the chat
 * template, loss on the assistant's tokens). With `tuning: 'lora'` phases 2 and 3 each train a new
 * LoRA + modules_to_save, merged at the end of the phase, so the model returns plain.
 */
export async function trainSeedLM(o: SeedLMTrainOptions): Promise<SeedLMTrainResult> {
  const recipe = seedLMRecipe(o.recipe);
  const { model, seed } = o;
  const log = o.log ?? (() => {});
  if (model.vocab) throw new Error('trainSeedLM: the model must be text-only (fresh); its vocabulary is already extended');
  if (!Array.isArray(o.pairs) || o.pairs.length === 0)
    throw new Error(`trainSeedLM: expected at least one caption-code pair, got ${o.pairs?.length}`);
  if (recipe.text.steps > 0 && (!Array.isArray(o.text) || o.text.length === 0))
    throw new Error(`trainSeedLM: text pre-training of ${recipe.text.steps} steps needs at least one sentence, got ${o.text?.length}`);

  // 1. text pre-training (the text vocabulary only)
  const textVocab = seedVocab({ textVocabSize: model.config.textVocabSize, numCodes: 1, tokensPerImage: 1, ...specials(model) });
  const textSeqs = o.text.map((s) => textSequence(textVocab, s));
  const sampleRows = <T>(rng: Rng, xs: readonly T[], n: number): T[] => Array.from({ length: n }, () => xs[rng.int(0, xs.length)] as T);
  const text = await trainPhase(model, recipe.text, (rng) => padSequences(textVocab, sampleRows(rng, textSeqs, recipe.text.batchSize)), {
    seed,
    name: 'text',
    log,
  });
  log(
    text.steps > 0
      ? `seed-lm: text pre-training ${text.steps} steps, final loss ${text.losses.at(-1)?.toFixed(3) ?? '-'}`
      : 'seed-lm: no text pre-training here (recipe text.steps 0: the model comes text pre-trained or starts from scratch)',
  );

  // 2. the vocabulary grows by the codes and <img>, </img>
  const v = model.extendVocabulary(o.numCodes, o.tokensPerImage, { init: recipe.newRowInit });
  o.pairs.forEach((p, i) => {
    checkTextIds(v, `trainSeedLM (pairs[${i}].caption)`, p.caption);
    imageSpan(v, p.codes);
  });

  const tuned = async (phase: LMPhase, name: string, make: (rng: Rng) => TokenBatch) => {
    const lora =
      recipe.tuning === 'lora' && phase.steps > 0
        ? applySeedLoRA(model, { ...recipe.lora, rng: new Rng(seed).fork(`seed-lm-lora-${name}`) })
        : null;
    try {
      const r = await trainPhase(model, phase, make, { seed, name, log });
      return { ...r, lora };
    } finally {
      if (lora) mergeSeedLoRA(model);
    }
  };

  // 3. multimodal pre-training: every non-pad token, order reversed with probability reverseRatio
  const pretrain = await tuned(recipe.pretrain, 'pretrain', (rng) =>
    padSequences(
      v,
      sampleRows(rng, o.pairs, recipe.pretrain.batchSize).map((p) => {
        const order = samplePairOrder(rng, recipe.reverseRatio);
        const drop = order === 'text-first' && rng.uniform() < recipe.uncondProb;
        return pairSequence(v, drop ? [] : p.caption, p.codes, order);
      }),
    ),
  );
  log(
    `seed-lm: multimodal pre-training ${pretrain.steps} steps (${recipe.tuning}), final loss ${pretrain.losses.at(-1)?.toFixed(3) ?? '-'}`,
  );

  // 4. SFT: the assistant's tokens only
  const sft = await tuned(recipe.sft, 'sft', (rng) =>
    padSequences(
      v,
      sampleRows(rng, o.pairs, recipe.sft.batchSize).map((p) => {
        const task: SftTask = rng.uniform() < recipe.captionFraction ? 'caption' : 'generate';
        const drop = task === 'generate' && rng.uniform() < recipe.uncondProb;
        return sftSequence(v, o.template, drop ? [] : p.caption, p.codes, task);
      }),
    ),
  );
  log(`seed-lm: SFT ${sft.steps} steps (${recipe.tuning}), final loss ${sft.losses.at(-1)?.toFixed(3) ?? '-'}`);
  return { vocab: v, recipe, text, pretrain, sft };
}

function specials(model: SeedLM): { bos: number; eos: number; pad: number } {
  const { bos, eos, pad } = model.config;
  return { bos, eos, pad };
}
