/**
 * Configuration of the SEED image tokenizer (Ge et al. 2023, arXiv 2307.08041; reference
 * AILab-CVC/SEED, `SEED_Tokenizer/lavis/models/blip2_models/`): a ViT standing in for the frozen
 * EVA-CLIP ViT-g/14, the Causal Q-Former (BLIP-2's BERT Q-Former with a causal mask among the
 * queries) with its stage-I contrastive head, and the stage-II quantizer, de-tokenizer and
 * generation-embedding head (brief `shared/papers/seed-mio.md` sec. 1.2-1.3).
 *
 * Presets: `tiny` (tests, well under a second per step), `small` (16 px Shapes reproductions on a
 * 2-core CPU), `paper` (SEED-1's sizes; counted by `parameterCount`, never instantiated: about
 * 1.2 B float32 weights with the ViT-g).
 */
import { parseConfig } from '@mmlm/core';
import { z } from 'zod';

const VitConfigSchema = z.object({
  /** Side of the square RGB input in pixels (SEED: 224). */
  imageSize: z.number().int().positive().default(16),
  /** Patch side (EVA-CLIP ViT-g/14: 14, so 16 x 16 patches at 224 px). */
  patchSize: z.number().int().positive().default(4),
  /** Input channels (RGB). */
  inChannels: z.number().int().positive().default(3),
  /** Token width (ViT-g: 1408). */
  width: z.number().int().positive().default(32),
  /** Blocks (BLIP-2's ViT-g: 39 of EVA-CLIP's 40). */
  depth: z.number().int().positive().default(2),
  /** Attention heads (ViT-g: 16). */
  numHeads: z.number().int().positive().default(2),
  /** MLP hidden width (ViT-g: 6144, EVA's mlp_ratio 4.3637); default 4 x width. */
  mlpHidden: z.number().int().positive().optional(),
  /** LayerNorm epsilon of the blocks and of ln_vision (EVA / BLIP-2: 1e-6 in the blocks, 1e-5 for ln_vision). */
  lnEps: z.number().positive().default(1e-6),
});
export type VitConfigInput = z.input<typeof VitConfigSchema>;
export type VitConfig = z.infer<typeof VitConfigSchema>;

export const CAUSAL_MASK_MODES = ['always', 'reference', 'bidirectional'] as const;
export type CausalMaskMode = (typeof CAUSAL_MASK_MODES)[number];

/** The query count at which the reference's Causal Q-Former turns its causal mask on (Qformer_casual.py). */
export const REFERENCE_CAUSAL_QUERIES = 32;

const QFormerConfigSchema = z.object({
  /** Learnable queries = tokens per image (SEED: 32). */
  numQueries: z.number().int().positive().default(8),
  /** Width, BERT `hidden_size` (BERT-base: 768). */
  hiddenSize: z.number().int().positive().default(32),
  /** Layers, BERT `num_hidden_layers` (12). */
  numLayers: z.number().int().positive().default(2),
  /** Heads (12). */
  numHeads: z.number().int().positive().default(2),
  /** FFN width, BERT `intermediate_size` (3072). */
  intermediateSize: z.number().int().positive().default(64),
  /** Cross-attention to the ViT tokens in layers with index % freq == 0 (BLIP-2 / SEED: 2). */
  crossAttentionFreq: z.number().int().positive().default(2),
  /** BERT `layer_norm_eps`. */
  lnEps: z.number().positive().default(1e-12),
  /** Std of the N(0, std) query init (`query_tokens`: 0.02). */
  queryInitStd: z.number().positive().default(0.02),
  /** Text vocabulary of the Q-Former's text branch (BLIP-2's BERT tokenizer + [DEC]: 30523). */
  vocabSize: z.number().int().min(2).default(64),
  /** Text positions, BERT `max_position_embeddings` (512; SEED truncates captions to 32 tokens). */
  maxTextLen: z.number().int().positive().default(16),
  /**
   * 'always': the lower-triangular query mask at any query count; 'reference': only at exactly 32
   * queries, as Qformer_casual.py hard-codes it (brief pitfall 1.7.1); 'bidirectional': never (every
   * query sees every query: BLIP-2's Q-Former, the "bilateral" arm of SEED's section 4.3 ablation).
   */
  causalMask: z.enum(CAUSAL_MASK_MODES).default('always'),
});
export type QFormerConfigInput = z.input<typeof QFormerConfigSchema>;
export type QFormerConfig = z.infer<typeof QFormerConfigSchema>;

const ContrastiveConfigSchema = z.object({
  /** Width of vision_proj / text_proj (BLIP-2 `embed_dim`: 256). */
  embedDim: z.number().int().positive().default(16),
  /** Initial learnable temperature `temp` (0.07); clamped to [0.001, 0.5] before each loss, as BLIP-2. */
  tempInit: z.number().positive().default(0.07),
  /** Label smoothing of both cross-entropies (0.1). */
  labelSmoothing: z.number().min(0).lt(1).default(0.1),
});
export type ContrastiveConfig = z.infer<typeof ContrastiveConfigSchema>;

const QuantizerConfigSchema = z.object({
  /** K, the codebook size (SEED: 8192). */
  numCodes: z.number().int().min(2).default(32),
  /** Code dimension, the width of the bottleneck (SEED: 32). */
  codeDim: z.number().int().positive().default(8),
  /** VectorQuantizer2 beta (0.25). */
  beta: z.number().nonnegative().default(0.25),
  /** VectorQuantizer2 `legacy=True` (SEED): beta multiplies the codebook term, the commitment term has weight 1. */
  legacy: z.boolean().default(true),
  /** k-means codebook init on the first training batch (not in SEED; keeps a small K from collapsing onto the U(+-1/K) init). */
  kmeansInit: z.boolean().default(false),
  /** EMA codebook with this decay (not in SEED: its EMA class is unused); unset: gradient-trained codebook. */
  emaDecay: z.number().gt(0).lt(1).optional(),
  /** Restart codes unused for this many training forwards (not in SEED; 0 = off). */
  deadCodeSteps: z.number().int().nonnegative().default(0),
});
export type QuantizerConfig = z.infer<typeof QuantizerConfigSchema>;

const DecoderConfigSchema = z.object({
  /** ViT blocks of each de-tokenizer stack, `blocks` and `blocks_image` (4). */
  depth: z.number().int().positive().default(1),
  /** Heads of those blocks (12). */
  numHeads: z.number().int().positive().default(2),
  /** MLP ratio of those blocks (4). */
  mlpRatio: z.number().positive().default(4),
  /** Widths of `image_down` (bias-free Linear + ReLU; released SEED-2 checkpoint: 256, 128, 32). */
  imageDown: z.array(z.number().int().positive()).min(1).default([16, 4]),
  /** Width of the generation target (SEED-2: 1024-d unCLIP image embedding of OpenCLIP ViT-H/14). */
  genDim: z.number().int().positive().default(16),
});
export type DecoderConfig = z.infer<typeof DecoderConfigSchema>;

const LossWeightsSchema = z.object({
  /** Weight of the VQ loss (5). */
  vq: z.number().nonnegative().default(5),
  /** Weight of the 1 - cos reconstruction of the causal embeddings (2). */
  rec: z.number().nonnegative().default(2),
  /** Weight of the generation-embedding MSE (0.5). */
  gen: z.number().nonnegative().default(0.5),
});
export type LossWeights = z.infer<typeof LossWeightsSchema>;

const SeedConfigSchema = z.object({
  vit: VitConfigSchema.default(VitConfigSchema.parse({})),
  qformer: QFormerConfigSchema.default(QFormerConfigSchema.parse({})),
  contrastive: ContrastiveConfigSchema.default(ContrastiveConfigSchema.parse({})),
  quantizer: QuantizerConfigSchema.default(QuantizerConfigSchema.parse({})),
  decoder: DecoderConfigSchema.default(DecoderConfigSchema.parse({})),
  loss: LossWeightsSchema.default(LossWeightsSchema.parse({})),
  /** Seed of the parameter init. */
  seed: z.number().int().default(0),
});
export type SeedConfigInput = z.input<typeof SeedConfigSchema>;
export type SeedConfig = z.infer<typeof SeedConfigSchema>;

/** Parse and validate a full config; errors name the field, the expectation and the value. */
export function seedConfig(input: SeedConfigInput = {}): SeedConfig {
  const c = parseConfig('SEED', SeedConfigSchema, input);
  const bad: string[] = [];
  if (c.vit.imageSize % c.vit.patchSize !== 0)
    bad.push(`vit.imageSize (${c.vit.imageSize}) must be divisible by vit.patchSize (${c.vit.patchSize})`);
  if (c.vit.width % c.vit.numHeads !== 0) bad.push(`vit.width (${c.vit.width}) must be divisible by vit.numHeads (${c.vit.numHeads})`);
  if (c.qformer.hiddenSize % c.qformer.numHeads !== 0)
    bad.push(`qformer.hiddenSize (${c.qformer.hiddenSize}) must be divisible by qformer.numHeads (${c.qformer.numHeads})`);
  if (c.qformer.hiddenSize % c.decoder.numHeads !== 0)
    bad.push(`decoder.numHeads (${c.decoder.numHeads}) must divide qformer.hiddenSize (${c.qformer.hiddenSize})`);
  if (bad.length) throw new Error(`SEED config: ${bad.join('; ')}`);
  return c;
}

/** ViT tokens per image: (imageSize / patchSize)^2 patches + CLS (ViT-g/14 at 224 px: 257). */
export function numVisionTokens(c: Pick<VitConfig, 'imageSize' | 'patchSize'>): number {
  const side = c.imageSize / c.patchSize;
  return side * side + 1;
}

/** Whether the query self-attention gets the causal mask (mode 'reference': only at 32 queries; 'bidirectional': never). */
export function queryMaskIsCausal(c: Pick<QFormerConfig, 'numQueries' | 'causalMask'>): boolean {
  if (c.causalMask === 'bidirectional') return false;
  return c.causalMask === 'always' || c.numQueries === REFERENCE_CAUSAL_QUERIES;
}

/** Layer indices of the Q-Former that cross-attend to the ViT tokens (layer % freq == 0). */
export function crossAttentionLayers(c: Pick<QFormerConfig, 'numLayers' | 'crossAttentionFreq'>): number[] {
  return Array.from({ length: c.numLayers }, (_, i) => i).filter((i) => i % c.crossAttentionFreq === 0);
}

export interface ParameterCount {
  /** The ViT standing in for EVA-CLIP (patch embedding, CLS, positions, blocks). */
  vit: number;
  /** `ln_vision`. */
  lnVision: number;
  /** The Causal Q-Former: text embeddings, layers (with the text and the query FFNs) and `query_tokens`. */
  qformer: number;
  /** Stage I head: `vision_proj`, `text_proj`, `temp`. */
  contrastive: number;
  /** `encode_task_layer` (Lin, tanh, Lin to the code space). */
  encodeTaskLayer: number;
  /** The codebook, K x codeDim. */
  codebook: number;
  /** `decode_task_layer` (Lin, tanh, Lin back to the Q-Former width). */
  decodeTaskLayer: number;
  /** `pos_embed` + `blocks`: the reconstruction of the causal embeddings (training only). */
  reconstruction: number;
  /** `pos_embed_image` + `blocks_image` + `image_down` + `distill_image_proj`: the generation embedding. */
  generation: number;
  /** Stage II's trained parameters: encodeTaskLayer + codebook + decodeTaskLayer + reconstruction + generation. */
  stage2: number;
  total: number;
}

const linear = (i: number, o: number, bias = true) => i * o + (bias ? o : 0);
const layerNorm = (d: number) => 2 * d;
/** lavis / timm ViT Block: norm1, attn (qkv with bias, proj), norm2, mlp (fc1, fc2). */
const vitBlock = (d: number, hidden: number) => 2 * layerNorm(d) + linear(d, 3 * d) + linear(d, d) + linear(d, hidden) + linear(hidden, d);

/**
 * Parameters of the tokenizer without building it, matching `SeedTokenizer.numParameters()` part
 * by part. The ViT counts qkv biases on q, k and v (EVA-CLIP has q and v biases only: 1408 fewer
 * per block at ViT-g).
 */
export function parameterCount(c: SeedConfig): ParameterCount {
  const { vit: v, qformer: q, contrastive: ct, quantizer: vq, decoder: d } = c;
  const vitHidden = v.mlpHidden ?? 4 * v.width;
  const patchIn = v.patchSize * v.patchSize * v.inChannels;
  const vit = linear(patchIn, v.width) + v.width + numVisionTokens(v) * v.width + v.depth * vitBlock(v.width, vitHidden);
  const H = q.hiddenSize;
  const ffn = linear(H, q.intermediateSize) + linear(q.intermediateSize, H) + layerNorm(H);
  const selfAttn = linear(H, 3 * H) + linear(H, H) + layerNorm(H);
  const crossAttn = linear(H, H) + linear(v.width, 2 * H) + linear(H, H) + layerNorm(H);
  const layers = q.numLayers * (selfAttn + 2 * ffn) + crossAttentionLayers(q).length * crossAttn;
  const embeddings = q.vocabSize * H + q.maxTextLen * H + layerNorm(H);
  const qformer = embeddings + layers + q.numQueries * H;
  const contrastive = 2 * linear(H, ct.embedDim) + 1;
  const encodeTaskLayer = linear(H, H) + linear(H, vq.codeDim);
  const codebook = vq.numCodes * vq.codeDim;
  const decodeTaskLayer = linear(vq.codeDim, vq.codeDim) + linear(vq.codeDim, H);
  const block = vitBlock(H, Math.trunc(H * d.mlpRatio));
  const reconstruction = q.numQueries * H + d.depth * block;
  let downIn = H;
  let down = 0;
  for (const w of d.imageDown) {
    down += linear(downIn, w, false);
    downIn = w;
  }
  const generation = q.numQueries * H + d.depth * block + down + linear(q.numQueries * downIn, d.genDim);
  const stage2 = encodeTaskLayer + codebook + decodeTaskLayer + reconstruction + generation;
  const lnVision = layerNorm(v.width);
  return {
    vit,
    lnVision,
    qformer,
    contrastive,
    encodeTaskLayer,
    codebook,
    decodeTaskLayer,
    reconstruction,
    generation,
    stage2,
    total: vit + lnVision + qformer + contrastive + stage2,
  };
}

export const PRESETS = {
  /** Tests: 16 px images in 4 x 4 patches, a width-16 ViT block, a 2-layer width-16 Q-Former with 4 queries, K = 16 codes of 4. */
  tiny: seedConfig({
    vit: { imageSize: 16, patchSize: 4, width: 16, depth: 1, numHeads: 2 },
    qformer: { numQueries: 4, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 32, vocabSize: 32, maxTextLen: 8 },
    contrastive: { embedDim: 8 },
    quantizer: { numCodes: 16, codeDim: 4 },
    decoder: { depth: 1, numHeads: 2, imageDown: [8, 4], genDim: 8 },
  }),
  /**
   * 2-core CPU reproductions: 16 px Shapes in 4 x 4 patches, a frozen width-32 ViT, a 4-layer
   * width-64 Causal Q-Former with 8 queries, K = 256 codes of 8 (brief 1.8 suggests d = 8, K = 64).
   * k-means init and dead-code restarts are on: with SEED's U(+-1/K) init a small codebook
   * collapses onto a handful of codes at toy scale (README).
   */
  small: seedConfig({
    vit: { imageSize: 16, patchSize: 4, width: 32, depth: 2, numHeads: 2 },
    qformer: { numQueries: 8, hiddenSize: 64, numLayers: 4, numHeads: 4, intermediateSize: 128, vocabSize: 128, maxTextLen: 16 },
    contrastive: { embedDim: 32 },
    quantizer: { numCodes: 256, codeDim: 8, kmeansInit: true, deadCodeSteps: 20 },
    decoder: { depth: 2, numHeads: 4, imageDown: [32, 8], genDim: 32 },
  }),
  /**
   * SEED-1 (brief 1.1-1.3): EVA-CLIP ViT-g/14 (224 px, 39 blocks, width 1408, 16 heads, MLP 6144),
   * BERT-base Causal Q-Former (12 layers, 768, 12 heads, FFN 3072, cross-attention every 2nd
   * layer, 32 queries, BLIP-2's 30523-token vocabulary, 512 positions), 256-d contrastive head,
   * 8192 codes of 32, 4-block de-tokenizer stacks, the released SEED-2 MLP generation head
   * (image_down 256/128/32 to a 1024-d embedding). Counted, never instantiated. Unverified in the
   * brief (taken from EVA-CLIP / BLIP-2 configs): the ViT's 16 heads and MLP 6144, the vocabulary
   * and position counts, the 256-d contrastive width.
   */
  paper: seedConfig({
    vit: { imageSize: 224, patchSize: 14, width: 1408, depth: 39, numHeads: 16, mlpHidden: 6144 },
    qformer: {
      numQueries: 32,
      hiddenSize: 768,
      numLayers: 12,
      numHeads: 12,
      intermediateSize: 3072,
      crossAttentionFreq: 2,
      vocabSize: 30523,
      maxTextLen: 512,
      causalMask: 'reference',
    },
    contrastive: { embedDim: 256, tempInit: 0.07, labelSmoothing: 0.1 },
    quantizer: { numCodes: 8192, codeDim: 32, beta: 0.25, legacy: true },
    decoder: { depth: 4, numHeads: 12, mlpRatio: 4, imageDown: [256, 128, 32], genDim: 1024 },
  }),
} as const satisfies Record<string, SeedConfig>;
export type PresetName = keyof typeof PRESETS;

export function preset(name: string): SeedConfig {
  const p = Object.hasOwn(PRESETS, name) ? (PRESETS as Record<string, SeedConfig>)[name] : undefined;
  if (!p) throw new Error(`SEED: unknown preset "${name}"; expected one of ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(p);
}
