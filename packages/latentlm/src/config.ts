/**
 * Configuration of LatentLM (Sun et al. 2024, arXiv 2412.08635; reference microsoft/unilm
 * `LatentLM/models/Transformer.py`, `train_hf.py`, `tokenizer_models/modeling_sigma_vae.py`): the
 * causal backbone over mixed sequences, the diffusion head, the diffusion process, the training
 * recipe, and the sigma-VAE tokenizers for images and speech.
 *
 * Presets: `tiny` (tests, < 1 s), `small` (reproductions on a 2-core CPU in minutes), `paper`
 * (LatentLM-L of the reference code; B / L / H in `PAPER_SIZES`, counted by `parameterCount`,
 * never instantiated in tests).
 */
import { parseConfig, swigluHidden } from '@mmlm/core';
import { z } from 'zod';

const ModelConfigSchema = z.object({
  /** Discrete vocabulary, special tokens included (ImageNet class-conditional: 1000 classes + the null class). */
  vocabSize: z.number().int().positive().default(32),
  /** C, the latent vector size fed in by the linear input projection and sampled by the head (reference default 16). */
  latentDim: z.number().int().positive().default(16),
  /** D, width of backbone and head (the reference head shares the backbone width). */
  dim: z.number().int().positive().default(64),
  /** Backbone depth. */
  numLayers: z.number().int().positive().default(2),
  numHeads: z.number().int().positive().default(4),
  /** GQA key/value heads (reference `num_kv_heads`); default numHeads. */
  numKvHeads: z.number().int().positive().optional(),
  /** SwiGLU width rule int(D * mlpRatio * 2/3 / 64) * 64, shared by backbone and head blocks. */
  mlpRatio: z.number().positive().default(4),
  /** Explicit SwiGLU width (the paper's L quotes about 2730; the code's rule gives 2688). Overrides mlpRatio. */
  mlpHidden: z.number().int().positive().optional(),
  /** Number of adaLN-Zero MLP blocks in the diffusion head (reference default 3; B/L/H: 6/8/12; TTS: 3). */
  diffusionDepth: z.number().int().positive().default(3),
  /** Longest mixed sequence (bounds the KV cache). */
  maxSeqLen: z.number().int().positive().default(64),
  /** RoPE base is 10000 * posiScale with LatentLM's linspace exponent (reference `posi_scale`). */
  posiScale: z.number().positive().default(1),
  /** Sinusoidal timestep embedding size before the head's timestep MLP (DiT/LatentLM: 256). */
  freqDim: z.number().int().positive().default(256),
  /** Share token embedding and LM head; the class-conditional paper count has no LM head, which tying reproduces. */
  tieEmbeddings: z.boolean().default(false),
  /** Special token ids; default the last four ids of the vocabulary (<BOD>, <EOD>, <LAT>, <PAD>). */
  bodId: z.number().int().nonnegative().optional(),
  eodId: z.number().int().nonnegative().optional(),
  /** Placeholder id at continuous positions (its embedding is replaced by the projected latent). */
  latId: z.number().int().nonnegative().optional(),
  padId: z.number().int().nonnegative().optional(),
  /**
   * N > 0 adds a learned embedding of the index of the latent each position predicts inside an
   * image span (<BOD> then N <LAT>) to the backbone input, [N, D] parameters (core's
   * SpanPositionEmbedding). Not in LatentLM (RoPE only, the reference); 0 (default) is the reference.
   */
  imagePositions: z.number().int().nonnegative().default(0),
  /** Dropout in the backbone blocks (reference: none); a regulariser at toy scale. */
  dropout: z.number().min(0).lt(1).default(0),
  /** Seed of the parameter init. */
  seed: z.number().int().default(0),
});
export type ModelConfigInput = z.input<typeof ModelConfigSchema>;
export type ModelConfig = z.infer<typeof ModelConfigSchema> & { bodId: number; eodId: number; latId: number; padId: number };

const DiffusionConfigSchema = z.object({
  /** T of the cosine schedule (reference: 1000). */
  numTrainTimesteps: z.number().int().positive().default(1000),
  /** GLIDE cosine (diffusers squaredcos_cap_v2), the reference's only schedule. */
  schedule: z.literal('cosine').default('cosine'),
  /** eps-prediction is the reference default; v-prediction is its option. */
  predictionType: z.enum(['epsilon', 'v_prediction']).default('epsilon'),
  /** Noise draws per clean latent, each with its own t (reference `ddpm_batch_mul` = 4). */
  batchMul: z.number().int().positive().default(4),
  /** alpha of L = L_LM + alpha * L_Diff (the revision: about 5; CE unaffected over 1-10). */
  alpha: z.number().nonnegative().default(5),
  /** Condition dropout for classifier-free guidance (reference LabelEmbedder: 10%). */
  condDropout: z.number().min(0).max(1).default(0.1),
  /** DPM-Solver++ head steps at sampling (ImageNet 20; TTS saturates near 5). */
  headSteps: z.number().int().positive().default(20),
  /** CFG scale w in eps = eps_u + w (eps_c - eps_u) (ImageNet 1.65; TTS 4). */
  cfgScale: z.number().positive().default(1.65),
  /**
   * diffusers' lambda_min_clipped for the head solver: -Infinity (the reference) starts at t = 999,
   * where alpha = 5e-5 and eps-prediction errors are amplified 2e4-fold into x0.
   */
  lambdaMinClipped: z.number().default(Number.NEGATIVE_INFINITY),
});
export type DiffusionConfig = z.infer<typeof DiffusionConfigSchema>;

const TrainConfigSchema = z.object({
  steps: z.number().int().positive().default(1000),
  batchSize: z.number().int().positive().default(16),
  /** Peak learning rate (paper ImageNet: 5e-4). */
  lr: z.number().positive().default(5e-4),
  /** AdamW betas (reference: 0.9, 0.98). */
  beta1: z.number().min(0).max(1).default(0.9),
  beta2: z.number().min(0).max(1).default(0.98),
  /** Decoupled weight decay (reference: 0.01). */
  weightDecay: z.number().nonnegative().default(0.01),
  /** Global gradient-norm clip (reference: 1.0; 0 disables). */
  gradClip: z.number().nonnegative().default(1),
  /** Linear warm-up then cosine decay (reference: 100 warm-up steps). */
  warmupSteps: z.number().int().nonnegative().default(100),
});
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

const LatentLMConfigSchema = z.object({
  model: ModelConfigSchema.default(ModelConfigSchema.parse({})),
  diffusion: DiffusionConfigSchema.default(DiffusionConfigSchema.parse({})),
  train: TrainConfigSchema.default(TrainConfigSchema.parse({})),
});
export type LatentLMConfigInput = z.input<typeof LatentLMConfigSchema>;
export interface LatentLMConfig {
  model: ModelConfig;
  diffusion: DiffusionConfig;
  train: TrainConfig;
}

/** Resolve the special token ids and check them against the vocabulary. */
export function resolveModelConfig(input: ModelConfigInput = {}): ModelConfig {
  const m = parseConfig('LatentLM model', ModelConfigSchema, input);
  const V = m.vocabSize;
  const out: ModelConfig = {
    ...m,
    bodId: m.bodId ?? V - 4,
    eodId: m.eodId ?? V - 3,
    latId: m.latId ?? V - 2,
    padId: m.padId ?? V - 1,
  };
  const bad: string[] = [];
  if (V < 5) bad.push(`vocabSize must be >= 5 (four special tokens and one more), got ${V}`);
  const specials = { bodId: out.bodId, eodId: out.eodId, latId: out.latId, padId: out.padId };
  for (const [k, v] of Object.entries(specials)) if (v >= V) bad.push(`${k} must be < vocabSize ${V}, got ${v}`);
  if (new Set(Object.values(specials)).size !== 4) bad.push(`bodId, eodId, latId, padId must be distinct, got ${JSON.stringify(specials)}`);
  if (out.dim % out.numHeads !== 0) bad.push(`dim (${out.dim}) must be divisible by numHeads (${out.numHeads})`);
  else if ((out.dim / out.numHeads) % 2 !== 0) bad.push(`head dim dim/numHeads must be even for RoPE, got ${out.dim / out.numHeads}`);
  if (out.numKvHeads !== undefined && out.numHeads % out.numKvHeads !== 0)
    bad.push(`numKvHeads (${out.numKvHeads}) must divide numHeads (${out.numHeads})`);
  if (bad.length) throw new Error(`LatentLM model config: ${bad.join('; ')}`);
  return out;
}

/** Parse and validate a full config; errors name the field, the expectation and the value. */
export function latentlmConfig(input: LatentLMConfigInput = {}): LatentLMConfig {
  const c = parseConfig('LatentLM', LatentLMConfigSchema, input);
  return { model: resolveModelConfig(input.model ?? {}), diffusion: c.diffusion, train: c.train };
}

/** SwiGLU width of backbone and head blocks: `mlpHidden`, else core's swigluHidden (reference: int(D * mlp_ratio * 2 / 3 / 64) * 64). */
export function mlpHiddenOf(m: Pick<ModelConfig, 'dim' | 'mlpRatio' | 'mlpHidden'>): number {
  return m.mlpHidden ?? swigluHidden(m.dim, m.mlpRatio);
}

/** Parameter count by part, without building the model (matches `LatentLM.numParameters()`). */
export interface ParameterCount {
  /** Causal Transformer blocks and final norm. */
  backbone: number;
  /** Diffusion head: noisy-latent embedder, timestep MLP, adaLN MLP blocks, final layer, condition layer. */
  head: number;
  /** Token embedding, LM head (0 when tied) and the latent input projection. */
  embeddings: number;
  total: number;
}

export function parameterCount(m: ModelConfig): ParameterCount {
  const D = m.dim;
  const C = m.latentDim;
  const F = mlpHiddenOf(m);
  const hs = D / m.numHeads;
  const kv = (m.numKvHeads ?? m.numHeads) * hs;
  const swiglu = 3 * D * F;
  // RMSNorm in core's decoder has a gain vector (the reference's has none).
  const block = D + (D * (D + 2 * kv) + D * D) + D + swiglu;
  const backbone = m.numLayers * block + D;
  const mlpBlock = swiglu + D * 3 * D;
  const head = C * D + (m.freqDim * D + D * D) + m.diffusionDepth * mlpBlock + (D * 2 * D + D * C) + D * D;
  const embeddings = m.vocabSize * D + (m.tieEmbeddings ? 0 : m.vocabSize * D) + C * D + m.imagePositions * D;
  return { backbone, head, embeddings, total: backbone + head + embeddings };
}

// ---------------------------------------------------------------------------------------------
// Tokenizers

const ImageVaeConfigSchema = z.object({
  /** Square input images (Shapes: 32 px). */
  imageSize: z.number().int().positive().default(32),
  channels: z.number().int().positive().default(3),
  /** ViT patch size = spatial downsampling (reference: 16 on 256 px; 8 gives a 4x4 grid at 32 px). */
  patchSize: z.number().int().positive().default(8),
  /** Latent channels per patch (reference default 16). */
  latentDim: z.number().int().positive().default(16),
  /** Width of the ViT encoder and decoder. */
  dim: z.number().int().positive().default(64),
  /** Transformer blocks in each of encoder and decoder (reference: 12 each). */
  depth: z.number().int().positive().default(2),
  numHeads: z.number().int().positive().default(4),
  /** 'sigma': mean-only encoder, one noise scale per example; 'gaussian': learned log-variance (the baseline). */
  posterior: z.enum(['sigma', 'gaussian']).default('sigma'),
  /** C_sigma: sigma ~ N(0, (C_sigma / 0.8)^2) per example (paper and code: 0.75). */
  cSigma: z.number().nonnegative().default(0.75),
  /** Fixed sigma instead of the per-example draw (reference `sampling_std`; the paper's ablation: 0.75). */
  fixedStd: z.number().nonnegative().optional(),
  /** Weight of the KL term: mean(mu^2) for sigma, the Gaussian KL (per element) for the baseline (code: 1e-2). */
  klWeight: z.number().nonnegative().default(1e-2),
  seed: z.number().int().default(0),
});
export type ImageVaeConfigInput = z.input<typeof ImageVaeConfigSchema>;
export type ImageVaeConfig = z.infer<typeof ImageVaeConfigSchema>;

export function imageVaeConfig(input: ImageVaeConfigInput = {}): ImageVaeConfig {
  const c = parseConfig('image VAE', ImageVaeConfigSchema, input);
  const bad: string[] = [];
  if (c.imageSize % c.patchSize !== 0) bad.push(`imageSize (${c.imageSize}) must be divisible by patchSize (${c.patchSize})`);
  if (c.dim % c.numHeads !== 0) bad.push(`dim (${c.dim}) must be divisible by numHeads (${c.numHeads})`);
  if (bad.length) throw new Error(`image VAE config: ${bad.join('; ')}`);
  return c;
}

const SpeechVaeConfigSchema = z.object({
  /** Waveform rate (tone speech renders at any rate >= 8 kHz; its content lies below 2.5 kHz). */
  sampleRate: z.number().int().positive().default(8000),
  /** STFT size (32 ms at 8 kHz resolves harmonics of f0 >= 95 Hz). */
  nFft: z.number().int().positive().default(256),
  /** STFT hop in samples (the encoder's input frame rate is sampleRate / stftHop). */
  stftHop: z.number().int().positive().default(64),
  /** Downsampling strides over STFT frames; the latent hop is stftHop * prod(strides) (256 -> 31.25 Hz at 8 kHz). */
  strides: z.array(z.number().int().positive()).min(1).default([2, 2]),
  /** Channels after the input conv; doubled at every downsampling. */
  channels: z.number().int().positive().default(64),
  /** Latent channels per frame (paper: 32 / 64 / 128 at 15 / 7.5 / 3.75 Hz). */
  latentDim: z.number().int().positive().default(8),
  /** Kernel of the input, output and depthwise causal convs. */
  kernelSize: z.number().int().positive().default(5),
  posterior: z.enum(['sigma', 'gaussian']).default('sigma'),
  cSigma: z.number().nonnegative().default(0.75),
  fixedStd: z.number().nonnegative().optional(),
  klWeight: z.number().nonnegative().default(1e-2),
  /** Floor inside log(|STFT| + floor): keeps silence from dominating the L1 loss. */
  logFloor: z.number().positive().default(1e-2),
  /** Griffin-Lim iterations when rendering waveforms. */
  glIters: z.number().int().nonnegative().default(32),
  seed: z.number().int().default(0),
});
export type SpeechVaeConfigInput = z.input<typeof SpeechVaeConfigSchema>;
export type SpeechVaeConfig = z.infer<typeof SpeechVaeConfigSchema>;

export function speechVaeConfig(input: SpeechVaeConfigInput = {}): SpeechVaeConfig {
  const c = parseConfig('speech VAE', SpeechVaeConfigSchema, input);
  const bad: string[] = [];
  if ((c.nFft & (c.nFft - 1)) !== 0 || c.nFft < 8) bad.push(`nFft must be a power of two >= 8, got ${c.nFft}`);
  if (c.stftHop > c.nFft) bad.push(`stftHop (${c.stftHop}) must be <= nFft (${c.nFft})`);
  if (bad.length) throw new Error(`speech VAE config: ${bad.join('; ')}`);
  return c;
}

/** Waveform samples per latent frame: stftHop * prod(strides). */
export function hopLength(c: Pick<SpeechVaeConfig, 'strides' | 'stftHop'>): number {
  return c.strides.reduce((a, b) => a * b, c.stftHop);
}

// ---------------------------------------------------------------------------------------------
// Presets

/** The reference code's size presets (`Transformer.py`): depth / width / heads / diffusion depth, mlp_ratio 4. */
export const PAPER_SIZES = {
  B: { numLayers: 24, dim: 768, numHeads: 12, diffusionDepth: 6 },
  L: { numLayers: 32, dim: 1024, numHeads: 16, diffusionDepth: 8 },
  H: { numLayers: 40, dim: 1280, numHeads: 20, diffusionDepth: 12 },
  /** The revision's LatentLM-L (479M): FFN about 2730 and a 6-layer head. */
  'L-rev': { numLayers: 32, dim: 1024, numHeads: 16, diffusionDepth: 6, mlpHidden: 2730 },
} as const;
export type PaperSize = keyof typeof PAPER_SIZES;

/** ImageNet class-conditional model of a paper size: 1000 classes + the null class, 16-channel latents, 256 tokens + the class token. */
export function paperConfig(size: PaperSize = 'L'): LatentLMConfig {
  const s = PAPER_SIZES[size];
  if (!s) throw new Error(`LatentLM: unknown paper size "${size}"; expected one of ${Object.keys(PAPER_SIZES).join(', ')}`);
  return latentlmConfig({
    // 1001 labels + 4 special ids (unused by the class-conditional model); tied, as the reference has no LM head.
    model: { vocabSize: 1005, latentDim: 16, maxSeqLen: 257, tieEmbeddings: true, ...s },
    diffusion: { headSteps: 20, cfgScale: 1.65 },
    train: { lr: 5e-4, batchSize: 2048, steps: 250_000, warmupSteps: 100 },
  });
}

export const PRESETS = {
  /** Tests: width 32, one block, a 2-block head; well under a second per step. */
  tiny: latentlmConfig({
    model: { vocabSize: 16, latentDim: 4, dim: 32, numLayers: 1, numHeads: 2, diffusionDepth: 2, maxSeqLen: 32, freqDim: 32 },
    diffusion: { headSteps: 5, lambdaMinClipped: -3 },
    train: { steps: 4, batchSize: 2, lr: 1e-3, warmupSteps: 1 },
  }),
  /**
   * 2-core CPU reproductions: a 2-block width-64 backbone with a 3-block head (brief §1.8). The head
   * solver skips timesteps with log-SNR below -3 (t > 967): a small, briefly trained eps-head is not
   * accurate enough at t = 999, where x0 = (x - sigma eps) / alpha divides by alpha = 5e-5 (measured:
   * first TTS latents with |z| ~ 5000 unclipped, ~110 at -5.1, ~3 at -3).
   */
  small: latentlmConfig({
    model: { vocabSize: 64, latentDim: 16, dim: 64, numLayers: 2, numHeads: 4, diffusionDepth: 3, maxSeqLen: 96, freqDim: 64 },
    diffusion: { headSteps: 10, lambdaMinClipped: -3 },
    train: { steps: 1500, batchSize: 32, lr: 1e-3, warmupSteps: 50 },
  }),
  /** LatentLM-L of the reference code (counted by parameterCount; never instantiated in tests). */
  paper: paperConfig('L'),
} as const satisfies Record<string, LatentLMConfig>;

export function preset(name: string): LatentLMConfig {
  // own keys only: `constructor` or `__proto__` are not presets
  const p = Object.hasOwn(PRESETS, name) ? (PRESETS as Record<string, LatentLMConfig>)[name] : undefined;
  if (!p) throw new Error(`LatentLM: unknown preset "${name}"; expected one of ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(p);
}
