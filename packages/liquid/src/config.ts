/**
 * Configuration of Liquid (Wu et al. 2024, arXiv 2412.04332; reference FoundationVision/Liquid at
 * 4609c47): the VQ image tokenizer (a small taming/Chameleon-style VQGAN), the language model whose
 * vocabulary is extended by the image codes, the sequence formats of `DataCollatorForSupervisedDataset`,
 * the sampling settings of `evaluation/T2I_Eval/genaibench_generation.py`, and the training recipe.
 *
 * Presets: `tiny` (tests, < 1 s), `small` (reproductions on a 2-core CPU in minutes), `paper`
 * (Liquid-7B: Gemma-7B with 256,000 text tokens + 8,192 image codes; its LM is counted by
 * `parameterCount`, never instantiated: 34 GB of float32 weights, and core's decoder has no head
 * width apart from dim / numHeads; its tokenizer is constructible).
 */
import { parseConfig, swigluHidden } from '@mmlm/core';
import { z } from 'zod';

/** The ten T2I instruction suffixes of `random_choice_t2iprompt_from_list` (train.py), verbatim. */
export const T2I_SUFFIXES: readonly string[] = [
  ' Generate an image based on this description.',
  ' Create an image that captures the provided description.',
  ' Based on the previous text, produce a corresponding image.',
  ' Please illustrate the above text with a picture.',
  ' Translate the given description into a image.',
  ' Construct a visual representation of the above description.',
  ' Create a image that matches the text.',
  ' Formulate a visual expression that reflects the narrative just provided.',
  ' Give a visual depiction based on the above sentences.',
  ' Create an image using the information mentioned above as guidance.',
];

/** The suffix the evaluation scripts append to every generation prompt (genaibench_generation.py). */
export const EVAL_T2I_SUFFIX = ' Generate an image based on this description.';

/** The captioning instruction that follows `<eoi>` in the caption format (train.py). */
export const CAPTION_INSTRUCTION = 'The caption of this image is:';

const ImageTokenizerConfigSchema = z.object({
  /** Side of the square RGB input in pixels (Liquid/Chameleon: 512). */
  imageSize: z.number().int().positive().default(32),
  /** Input channels (RGB). */
  inChannels: z.number().int().positive().default(3),
  /** Base width, taming `ch`. */
  ch: z.number().int().positive().default(32),
  /** Width multiplier per resolution, taming `ch_mult`; downsampling is 2^(length - 1) (Chameleon: 16x). */
  chMult: z.array(z.number().int().positive()).min(1).default([1, 2, 2]),
  /** ResnetBlocks per resolution, taming `num_res_blocks` (the decoder has one more); 0 needs a constant chMult. */
  numResBlocks: z.number().int().nonnegative().default(1),
  /** Encoder output channels, taming `z_channels`. */
  zChannels: z.number().int().positive().default(16),
  /** Codebook vector size, taming `embed_dim` (quant_conv maps z_channels to it). */
  codeDim: z.number().int().positive().default(16),
  /** K, the codebook size (Liquid/Chameleon: 8192). */
  numCodes: z.number().int().min(2).default(64),
  /** Commitment weight beta of VectorQuantizer2. */
  beta: z.number().nonnegative().default(0.25),
  /** VectorQuantizer2's `legacy` form puts beta on the codebook term (a known bug); false is VQ-VAE's form. */
  legacyLoss: z.boolean().default(false),
  /** Restart codes unused for this many training batches from batch vectors (0 = off); keeps usage up at small K. */
  deadCodeSteps: z.number().int().nonnegative().default(20),
  /** EMA codebook updates with this decay (VQ-VAE-2); unset: the codebook learns by gradient, as taming. */
  emaDecay: z.number().gt(0).lt(1).optional(),
  /** l2-normalised codes and encoder outputs (ViT-VQGAN's cosine lookup); taming: false. */
  cosine: z.boolean().default(false),
  /**
   * k-means codebook init on the first training batch of encoder outputs (lucidrains' kmeans_init;
   * Łańcucki et al. 2020); taming: false (uniform init).
   */
  kmeansInit: z.boolean().default(false),
  /** Seed of the parameter init. */
  seed: z.number().int().default(0),
});
export type ImageTokenizerConfigInput = z.input<typeof ImageTokenizerConfigSchema>;
export type ImageTokenizerConfig = z.infer<typeof ImageTokenizerConfigSchema>;

const LMConfigSchema = z.object({
  /** Size of the text tokenizer (Gemma: 256,000); image code k gets id textVocabSize + k. */
  textVocabSize: z.number().int().min(4).default(64),
  /** Model width (Gemma-7B: 3072). */
  dim: z.number().int().positive().default(64),
  numLayers: z.number().int().positive().default(2),
  numHeads: z.number().int().positive().default(4),
  /** GQA key/value heads (Gemma-7B: 16, i.e. plain multi-head); default numHeads. */
  numKvHeads: z.number().int().positive().optional(),
  /** Per-head width when it is not dim / numHeads (Gemma-7B: 256 with dim 3072); only parameterCount reads it. */
  headDim: z.number().int().positive().optional(),
  /** Gated MLP as Gemma's GeGLU (three matrices); core's SwiGLU has the same shapes. */
  mlp: z.enum(['swiglu', 'gelu']).default('swiglu'),
  /** MLP hidden width (Gemma-7B: 24,576); default core's rule. */
  mlpHidden: z.number().int().positive().optional(),
  /** Gemma uses RMSNorm. */
  norm: z.enum(['rmsnorm', 'layernorm']).default('rmsnorm'),
  /** Context length: bounds training sequences (truncation) and generation (Liquid trains at 2048). */
  maxSeqLen: z.number().int().positive().default(128),
  /** Share the token embedding with the LM head (Gemma ties them). */
  tieEmbeddings: z.boolean().default(false),
  /** Std of the normal init (GPT-2 / Gemma 0.02). */
  initStd: z.number().positive().default(0.02),
  /** Dropout after attention and MLP (Gemma pre-training: 0); a regulariser at toy scale. */
  dropout: z.number().min(0).lt(1).default(0),
  /** Seed of the parameter init. */
  seed: z.number().int().default(0),
});
export type LMConfigInput = z.input<typeof LMConfigSchema>;
export type LMConfig = z.infer<typeof LMConfigSchema>;

const MixSchema = z.object({
  /** Weight of plain text examples (LM loss on every token). */
  text: z.number().nonnegative().default(2),
  /** Weight of text-to-image examples (loss on codes, `<eoi>`, `<eos>`). */
  t2i: z.number().nonnegative().default(0.8),
  /** Weight of image-to-text (caption) examples (loss on the caption and `<eos>`). */
  i2t: z.number().nonnegative().default(0.2),
});
export type Mix = z.infer<typeof MixSchema>;

export const CollatorConfigSchema = z.object({
  /** Probability that a T2I caption is replaced by `<unconditional>` (train.py: rand > 0.9). */
  uncondProb: z.number().min(0).max(1).default(0.1),
  /** Truncation length of every sequence (train.py: model_max_length 2048); default the LM context. */
  maxLength: z.number().int().positive().optional(),
  /** The T2I instruction suffixes, one drawn uniformly per example. */
  t2iSuffixes: z
    .array(z.string())
    .min(1)
    .default([...T2I_SUFFIXES]),
  /** Text between `<eoi>` and the caption in the captioning format. */
  captionInstruction: z.string().default(CAPTION_INSTRUCTION),
});
export type CollatorConfig = z.infer<typeof CollatorConfigSchema>;

const SamplingConfigSchema = z.object({
  /** CFG scale s of l_u + s (l_c - l_u) (evaluation default 7; s = 1 runs no unconditional rows). */
  cfgScale: z.number().positive().default(7),
  /** Temperature tau (evaluation default 0.99). */
  temperature: z.number().nonnegative().default(0.99),
  /** Top-k over the full vocabulary (evaluation default 4096; no-op when K is smaller). */
  topK: z.number().int().nonnegative().default(4096),
  /** Nucleus mass with the HF-v3 keep rule (evaluation default 0.96). */
  topP: z.number().positive().max(1).default(0.96),
  /** Prompts per generation batch (each uses two rows with CFG). */
  batchSize: z.number().int().positive().default(16),
});
export type SamplingConfig = z.infer<typeof SamplingConfigSchema>;

export const TrainPhaseSchema = z.object({
  steps: z.number().int().nonnegative().default(100),
  batchSize: z.number().int().positive().default(16),
  /** Peak learning rate (Liquid continued pre-training: 2e-5 at batch 1024). */
  lr: z.number().positive().default(1e-3),
  /** Final learning rate of the cosine decay as a fraction of lr (the scaling runs use a constant lr: 1). */
  minLrRatio: z.number().min(0).max(1).default(0.1),
  /** Linear warmup steps (script: warmup_ratio 0.03). */
  warmup: z.number().int().nonnegative().default(10),
  /** AdamW decoupled weight decay (script: 0). */
  weightDecay: z.number().nonnegative().default(0),
  /** Global gradient-norm clip (paper: 0.5 for >= 7B; HF default 1). */
  gradClip: z.number().positive().default(1),
});
export type TrainPhase = z.infer<typeof TrainPhaseSchema>;

const LiquidConfigSchema = z.object({
  tokenizer: ImageTokenizerConfigSchema.default(ImageTokenizerConfigSchema.parse({})),
  lm: LMConfigSchema.default(LMConfigSchema.parse({})),
  collator: CollatorConfigSchema.default(CollatorConfigSchema.parse({})),
  sampling: SamplingConfigSchema.default(SamplingConfigSchema.parse({})),
  train: z
    .object({
      /** The VQ tokenizer (reconstruction + codebook + commitment), then frozen. */
      tokenizer: TrainPhaseSchema.default(TrainPhaseSchema.parse({ lr: 2e-3 })),
      /** The text LM, before the vocabulary is extended. */
      text: TrainPhaseSchema.default(TrainPhaseSchema.parse({})),
      /** Continued training of the extended model on the mix. */
      unified: TrainPhaseSchema.default(TrainPhaseSchema.parse({})),
    })
    .default({
      tokenizer: TrainPhaseSchema.parse({ lr: 2e-3 }),
      text: TrainPhaseSchema.parse({}),
      unified: TrainPhaseSchema.parse({}),
    }),
  /** Example mix of the continued training (brief 2.10: text : T2I : caption = 2 : 0.8 : 0.2). */
  mix: MixSchema.default(MixSchema.parse({})),
});
export type LiquidConfigInput = z.input<typeof LiquidConfigSchema>;
export type LiquidConfig = z.infer<typeof LiquidConfigSchema>;

/** Parse and validate a full config; errors name the field, the expectation and the value. */
export function liquidConfig(input: LiquidConfigInput = {}): LiquidConfig {
  const c = parseConfig('Liquid', LiquidConfigSchema, input);
  validateTokenizerConfig(c.tokenizer);
  validateLMConfig(c.lm);
  const mixTotal = c.mix.text + c.mix.t2i + c.mix.i2t;
  if (!(mixTotal > 0)) throw new Error(`Liquid config: mix weights must not all be 0, got ${JSON.stringify(c.mix)}`);
  return c;
}

export function imageTokenizerConfig(input: ImageTokenizerConfigInput = {}): ImageTokenizerConfig {
  const c = parseConfig('Liquid image tokenizer', ImageTokenizerConfigSchema, input);
  validateTokenizerConfig(c);
  return c;
}

export function lmConfig(input: LMConfigInput = {}): LMConfig {
  const c = parseConfig('Liquid LM', LMConfigSchema, input);
  validateLMConfig(c);
  return c;
}

function validateTokenizerConfig(c: ImageTokenizerConfig): void {
  if (c.numResBlocks === 0 && c.chMult.some((m) => m !== c.chMult[0]))
    throw new Error(
      `Liquid image tokenizer config: numResBlocks 0 leaves no block to change the width, so chMult must be constant, got [${c.chMult}]`,
    );
  const f = downsampleFactor(c);
  if (c.imageSize % f !== 0)
    throw new Error(
      `Liquid image tokenizer config: imageSize (${c.imageSize}) must be divisible by the downsampling factor ${f} (chMult [${c.chMult}])`,
    );
}

function validateLMConfig(c: LMConfig): void {
  const bad: string[] = [];
  const hd = c.headDim ?? c.dim / c.numHeads;
  if (c.headDim === undefined && c.dim % c.numHeads !== 0) bad.push(`dim (${c.dim}) must be divisible by numHeads (${c.numHeads})`);
  else if (hd % 2 !== 0) bad.push(`head dim must be even for RoPE, got ${hd}`);
  if (c.numKvHeads !== undefined && c.numHeads % c.numKvHeads !== 0)
    bad.push(`numKvHeads (${c.numKvHeads}) must divide numHeads (${c.numHeads})`);
  if (bad.length) throw new Error(`Liquid LM config: ${bad.join('; ')}`);
}

/** Downsampling factor f = 2^(len(chMult) - 1): an image of side S becomes (S / f)^2 codes. */
export function downsampleFactor(c: Pick<ImageTokenizerConfig, 'chMult'>): number {
  return 2 ** (c.chMult.length - 1);
}

/** Codes per image, (imageSize / f)^2 (Liquid: (512 / 16)^2 = 1024). */
export function tokensPerImage(c: Pick<ImageTokenizerConfig, 'chMult' | 'imageSize'>): number {
  const side = c.imageSize / downsampleFactor(c);
  return side * side;
}

/** The three special tokens Liquid adds beside the codes (renamed `<unused0..2>` of Gemma, TRAIN.md). */
const IMAGE_SPECIAL_TOKENS = ['<boi>', '<eoi>', '<unconditional>'] as const;

/** Size of the extended vocabulary: text + K codes + `<boi>`, `<eoi>`, `<unconditional>`. */
export function extendedVocabSize(textVocabSize: number, numCodes: number): number {
  return textVocabSize + numCodes + IMAGE_SPECIAL_TOKENS.length;
}

/** MLP hidden width of the LM (core's SwiGLU rule `swigluHidden`, or 4 dim for GELU, unless given). */
function mlpHiddenOf(c: Pick<LMConfig, 'dim' | 'mlp' | 'mlpHidden'>): number {
  if (c.mlpHidden !== undefined) return c.mlpHidden;
  return c.mlp === 'swiglu' ? swigluHidden(c.dim) : 4 * c.dim;
}

export interface ParameterCount {
  /** Token embedding rows (and the LM head when untied). */
  embeddings: number;
  /** Transformer blocks and the final norm. */
  blocks: number;
  total: number;
}

/**
 * Parameters of the LM over a vocabulary of `vocabSize` without building it (bias-free, RMSNorm
 * gains, gated MLP). Matches `TransformerDecoder.numParameters()` when headDim = dim / numHeads, and
 * Gemma-7B's 8,537,680,896 at the `paper` preset with vocabSize 256,000.
 */
export function parameterCount(c: LMConfig, vocabSize: number): ParameterCount {
  const D = c.dim;
  const hd = c.headDim ?? D / c.numHeads;
  const q = c.numHeads * hd;
  const kv = (c.numKvHeads ?? c.numHeads) * hd;
  const F = mlpHiddenOf(c);
  const mlp = c.mlp === 'swiglu' ? 3 * D * F : 2 * D * F;
  const normParams = c.norm === 'rmsnorm' ? D : 2 * D;
  const block = 2 * normParams + D * (q + 2 * kv) + q * D + mlp;
  const blocks = c.numLayers * block + normParams;
  const embeddings = vocabSize * D * (c.tieEmbeddings ? 1 : 2);
  return { embeddings, blocks, total: embeddings + blocks };
}

/** Gemma-7B (Liquid-7B's base) text vocabulary. */
const GEMMA_VOCAB = 256_000;
/** Chameleon VQGAN codebook size. */
const CHAMELEON_CODES = 8192;

export const PRESETS = {
  /** Tests: 16x16 images to 4x4 = 16 codes of K = 16; a width-32 two-block LM. Well under a second per step. */
  tiny: liquidConfig({
    tokenizer: { imageSize: 16, ch: 8, chMult: [1, 2, 2], zChannels: 8, codeDim: 8, numCodes: 16, deadCodeSteps: 5 },
    lm: { textVocabSize: 64, dim: 32, numLayers: 2, numHeads: 2, maxSeqLen: 64 },
    sampling: { batchSize: 4 },
    train: {
      tokenizer: { steps: 4, batchSize: 4, lr: 2e-3, warmup: 1 },
      text: { steps: 4, batchSize: 4, warmup: 1 },
      unified: { steps: 4, batchSize: 4, warmup: 1 },
    },
  }),
  /**
   * 2-core CPU reproductions in minutes: 16x16 images to 4x4 = 16 codes of K = 64 (a
   * width-16 VQGAN with one block per level, trained once and shared by every experiment), a width-64 three-block LM.
   */
  small: liquidConfig({
    // the lab arm's tokenizer (armTokenizerConfig): no encoder ResnetBlocks, 1,000 steps; 400 steps with
    // one block per level read back 0.46 of the images (liquid.tradeoff small, 3 seeds)
    tokenizer: { imageSize: 16, ch: 16, chMult: [1, 1, 1], numResBlocks: 0, zChannels: 16, codeDim: 8, numCodes: 64, deadCodeSteps: 20 },
    lm: { textVocabSize: 128, dim: 64, numLayers: 3, numHeads: 4, maxSeqLen: 64 },
    sampling: { batchSize: 64 },
    train: {
      tokenizer: { steps: 1000, batchSize: 16, lr: 2e-3, warmup: 100 },
      text: { steps: 300, batchSize: 16, lr: 2e-3, warmup: 30 },
      // experiments take lr and warmup from the arm recipe (withArmRecipe): 3e-3, 10% capped at 100
      unified: { steps: 6000, batchSize: 16, lr: 1e-3, warmup: 50 },
    },
  }),
  /**
   * Liquid-7B: Gemma-7B (28 blocks, width 3072, 16 heads of 256, GeGLU 24,576, tied embeddings,
   * RMSNorm) over 256,000 text tokens; Chameleon's VQGAN (512 px, 16x, K = 8192; its ch/chMult are
   * assumed, the yaml is not in the Liquid repo); lr 2e-5, batch 1024, context 2048, cosine,
   * gradient clip 0.5 (paper only). The LM is counted by parameterCount, never instantiated (memory,
   * and Gemma's 16 x 256 heads at width 3072, which core's decoder cannot express; README).
   */
  paper: liquidConfig({
    tokenizer: {
      imageSize: 512,
      ch: 128,
      chMult: [1, 1, 2, 2, 4],
      numResBlocks: 2,
      zChannels: 256,
      codeDim: 256,
      numCodes: CHAMELEON_CODES,
    },
    lm: {
      textVocabSize: GEMMA_VOCAB,
      dim: 3072,
      numLayers: 28,
      numHeads: 16,
      numKvHeads: 16,
      headDim: 256,
      mlp: 'swiglu',
      mlpHidden: 24_576,
      norm: 'rmsnorm',
      maxSeqLen: 2048,
      tieEmbeddings: true,
    },
    sampling: { cfgScale: 7, temperature: 0.99, topK: 4096, topP: 0.96, batchSize: 4 },
    train: {
      tokenizer: { steps: 0 },
      text: { steps: 0 },
      unified: { steps: 58_594, batchSize: 1024, lr: 2e-5, minLrRatio: 0, warmup: 1758, gradClip: 0.5 },
    },
    /** 30M text + 30M pairs of which 20% reversed to captions (paper sec. 4.1). */
    mix: { text: 30, t2i: 24, i2t: 6 },
  }),
} as const satisfies Record<string, LiquidConfig>;
export type PresetName = keyof typeof PRESETS;

export function preset(name: string): LiquidConfig {
  // own keys only: `constructor` or `__proto__` are not presets
  const p = Object.hasOwn(PRESETS, name) ? (PRESETS as Record<string, LiquidConfig>)[name] : undefined;
  if (!p) throw new Error(`Liquid: unknown preset "${name}"; expected one of ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(p);
}
