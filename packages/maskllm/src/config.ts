/**
 * Configuration of MaskLLM (Fang et al., NeurIPS 2024, arXiv 2409.17481): the dense decoder whose
 * linears are sparsified, the differentiable N:M mask (§3.1-3.2, eq. 3-5), and the mask-only
 * training recipe (§4.1; NVlabs/MaskLLM `scripts/learnable_sparsity/llama2_7b_mask_only_tp8_c4.sh`).
 *
 * Presets: `tiny` (tests, < 1 s), `quick` (the lab quickstart's ladder, about a minute), `small` (a
 * character-level decoder trained and sparsified on a 2-core CPU in minutes), `paper` (LLaMA-2 7B with the paper's recipe; only counted, never built).
 */
import { parseConfig, swigluHidden } from '@mmlm/core';
import { z } from 'zod';

const DecoderConfigSchema = z.object({
  /** Vocabulary; experiments overwrite it with the tokenizer's size. */
  vocabSize: z.number().int().positive().default(64),
  /** Model width; must be divisible by M so every linear's input splits into groups of M. */
  dim: z.number().int().positive().default(128),
  /** Decoder blocks; every linear inside them is sparsified, the LM head and embeddings are not. */
  numLayers: z.number().int().positive().default(2),
  /** Attention heads (dim / numHeads is the head size). */
  numHeads: z.number().int().positive().default(4),
  /** Context length of training and evaluation windows. */
  maxSeqLen: z.number().int().positive().default(64),
  /** 'gelu' (GPT-2 MLP, as the paper's GPT-3 models) or 'swiglu' (LLaMA-2). */
  mlp: z.enum(['gelu', 'swiglu']).default('gelu'),
  /** MLP hidden width; default 4*dim (gelu) or core's SwiGLU rule; LLaMA-2 7B uses 11008. */
  mlpHidden: z.number().int().positive().optional(),
  /** 'layernorm' (GPT) or 'rmsnorm' (LLaMA). */
  norm: z.enum(['layernorm', 'rmsnorm']).default('layernorm'),
  /** Positions: learned table (GPT) or RoPE (LLaMA). */
  pos: z.enum(['learned', 'rope']).default('learned'),
  /** Biases in the block linears (GPT yes, LLaMA no); biases are never masked. */
  bias: z.boolean().default(true),
  /** Share embedding and LM head (off: the LM head is a separate dense linear, as in LLaMA-2). */
  tieEmbeddings: z.boolean().default(false),
});
export type DecoderConfig = z.infer<typeof DecoderConfigSchema>;

export const MaskConfigSchema = z.object({
  /** N of N:M: weights kept per group (2 for the 2:4 pattern of sparse tensor cores). */
  n: z.number().int().positive().default(2),
  /** M of N:M: group size along the input dimension of each output row. */
  m: z.number().int().positive().default(4),
  /** Gumbel-softmax temperature tau at step 0 (§3.2; linear schedule, reference script: 4). */
  tauStart: z.number().positive().default(4),
  /** tau at the last step (reference: 0.05, so late samples are almost one-hot). */
  tauEnd: z.number().positive().default(0.05),
  /** Logit scale kappa at step 0 (paper and LLaMA script: 1e2). */
  kappaStart: z.number().positive().default(100),
  /** kappa at the last step (paper and LLaMA script: 5e2). */
  kappaEnd: z.number().positive().default(500),
  /** Straight-through one-hot samples instead of soft ones (reference flag --hard; default soft). */
  hard: z.boolean().default(false),
  /** Std of the N(0, std^2) logit init (Megatron reference: 0.01). */
  gateInitStd: z.number().positive().default(0.01),
  /** Prior strength alpha in logits += alpha * std * (overlap - N/2) (all released scripts: 3). */
  priorStrength: z.number().nonnegative().default(3),
  /** lambda of the sparse weight regulariser -lambda (1 - t/T) sum ||W * M||^2 (reference: 1e-5). */
  weightReg: z.number().nonnegative().default(1e-5),
});
export type MaskConfig = z.infer<typeof MaskConfigSchema>;

export const MaskTrainConfigSchema = z.object({
  /** Training iterations T; tau, kappa and the regulariser weight are scheduled over them. */
  steps: z.number().int().positive().default(2000),
  /** Sequences per step (reference: global batch 256). */
  batchSize: z.number().int().positive().default(256),
  /** Base learning rate; the gate logits get lr * lrMult (reference: 5e-5 x 10). */
  lr: z.number().positive().default(5e-5),
  /** Final learning rate of the cosine decay (reference: 5e-6, no warmup). */
  lrMin: z.number().nonnegative().default(5e-6),
  /** Learning-rate multiplier of the gate logits (reference: --lr-mult 10). */
  lrMult: z.number().positive().default(10),
  /** AdamW decoupled weight decay, also applied to the 2-D gate tensors in the reference. */
  weightDecay: z.number().nonnegative().default(0.1),
  /** AdamW beta1. */
  beta1: z.number().min(0).max(1).default(0.9),
  /** AdamW beta2 (Megatron recipe: 0.95). */
  beta2: z.number().min(0).max(1).default(0.95),
  /** AdamW epsilon (Megatron recipe: 1e-5). */
  eps: z.number().positive().default(1e-5),
  /** Global gradient-norm clip (reference: 1.0; 0 disables). */
  gradClip: z.number().nonnegative().default(1),
});
export type MaskTrainConfig = z.infer<typeof MaskTrainConfigSchema>;

const MaskLLMConfigSchema = z.object({
  model: DecoderConfigSchema.default(DecoderConfigSchema.parse({})),
  mask: MaskConfigSchema.default(MaskConfigSchema.parse({})),
  train: MaskTrainConfigSchema.default(MaskTrainConfigSchema.parse({})),
});
export type MaskLLMConfig = z.infer<typeof MaskLLMConfigSchema>;
export type MaskLLMConfigInput = z.input<typeof MaskLLMConfigSchema>;

/**
 * Parse and validate a config (defaults filled in): core's parseConfig, then the checks across
 * fields. Errors name the field, what it expects and the value it got.
 */
export function maskllmConfig(input: MaskLLMConfigInput = {}): MaskLLMConfig {
  const c = parseConfig('MaskLLM', MaskLLMConfigSchema, input);
  const { model: d, mask } = c;
  const bad: string[] = [];
  if (mask.n >= mask.m) bad.push(`mask.n: must be < mask.m (${mask.m}) (got ${mask.n})`);
  if (d.dim % d.numHeads !== 0) bad.push(`model.dim: must be divisible by model.numHeads (${d.numHeads}) (got ${d.dim})`);
  if (d.dim % mask.m !== 0) bad.push(`model.dim: must be divisible by mask.m (${mask.m}) (got ${d.dim})`);
  const hidden = mlpHiddenOf(d);
  if (hidden % mask.m !== 0)
    bad.push(
      d.mlpHidden !== undefined
        ? `model.mlpHidden: must be divisible by mask.m (${mask.m}) (got ${hidden})`
        : `model.mlpHidden: unset, core's SwiGLU rule gives ${hidden} for dim ${d.dim}, which must be divisible by mask.m (${mask.m}); set model.mlpHidden`,
    );
  if (bad.length) throw new Error(`MaskLLM config: ${bad.join('; ')}`);
  return c;
}

/** The named presets. */
export const PRESETS = {
  /** Tests: a 1-block decoder of width 16, a handful of steps. */
  tiny: maskllmConfig({
    model: { vocabSize: 16, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 16 },
    mask: { weightReg: 1e-3 },
    train: { steps: 4, batchSize: 2, lr: 1e-2, lrMin: 1e-3, lrMult: 1, weightDecay: 0 },
  }),
  /**
   * 2-core CPU reproduction: a 2-block character decoder of width 128 (0.4M parameters, 0.39M of
   * them in the sparsified linears). Mask learning gets far fewer steps than the paper (hundreds
   * instead of 2,000 x 256 x 4096 tokens), so the gate learning rate is raised (5e-3 -> 5e-4) and
   * lambda re-tuned so the regulariser is a few percent of the loss (the brief: "re-tune lambda
   * for tiny models"; the paper's 1e-5 is for a 7B sum).
   */
  small: maskllmConfig({
    model: { dim: 128, numLayers: 2, numHeads: 4, maxSeqLen: 64 },
    mask: { weightReg: 2e-3 },
    train: { steps: 300, batchSize: 8, lr: 5e-3, lrMin: 5e-4, lrMult: 1, weightDecay: 0.1 },
  }),
  /**
   * The lab quickstart's sparsity ladder (about a minute on 2 cores): a 2-block character decoder
   * of width 64 (0.1M parameters), with the small preset's mask recipe and fewer steps.
   */
  quick: maskllmConfig({
    model: { dim: 64, numLayers: 2, numHeads: 4, maxSeqLen: 64 },
    mask: { weightReg: 2e-3 },
    train: { steps: 150, batchSize: 8, lr: 5e-3, lrMin: 5e-4, lrMult: 1, weightDecay: 0.1 },
  }),
  /** LLaMA-2 7B with the reference recipe (counted by parameterCount; never instantiated). */
  paper: maskllmConfig({
    model: {
      vocabSize: 32000,
      dim: 4096,
      numLayers: 32,
      numHeads: 32,
      maxSeqLen: 4096,
      mlp: 'swiglu',
      mlpHidden: 11008,
      norm: 'rmsnorm',
      pos: 'rope',
      bias: false,
    },
    mask: {},
    train: {},
  }),
} as const satisfies Record<string, MaskLLMConfig>;

/** A preset by name, with a clear error for an unknown one. */
export function preset(name: string): MaskLLMConfig {
  // own keys only: `constructor` or `__proto__` are not presets
  const p = Object.hasOwn(PRESETS, name) ? (PRESETS as Record<string, MaskLLMConfig>)[name] : undefined;
  if (!p) throw new Error(`MaskLLM: unknown preset "${name}"; expected one of ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(p);
}

/** MLP hidden width as core's TransformerDecoder resolves it: 4*dim (gelu) or core's swigluHidden. */
function mlpHiddenOf(c: DecoderConfig): number {
  return c.mlpHidden ?? (c.mlp === 'swiglu' ? swigluHidden(c.dim) : 4 * c.dim);
}

/** Shapes [out, in] of the linears of one decoder block, in module order (all of them are sparsified). */
export function blockLinearShapes(c: DecoderConfig): [number, number][] {
  const h = mlpHiddenOf(c);
  const mlp: [number, number][] =
    c.mlp === 'swiglu'
      ? [
          [h, c.dim],
          [h, c.dim],
          [c.dim, h],
        ]
      : [
          [h, c.dim],
          [c.dim, h],
        ];
  return [[3 * c.dim, c.dim], [c.dim, c.dim], ...mlp];
}

export interface ParameterCount {
  /** Every parameter of the dense decoder. */
  total: number;
  /** Weights of the block linears: the ones MaskLLM masks (biases excluded). */
  sparsifiable: number;
  /** Learnable mask logits: sparsifiable / M * C(M, N). */
  gates: number;
}

/**
 * Parameter counts of the decoder a config describes, without building it (LLaMA-2 7B:
 * 6,738,415,616 parameters, 6,476,005,376 of them in the sparsified linears).
 */
export function parameterCount(c: MaskLLMConfig): ParameterCount {
  const d = c.model;
  const normParams = d.norm === 'rmsnorm' || !d.bias ? d.dim : 2 * d.dim;
  let perBlock = 2 * normParams;
  let sparsePerBlock = 0;
  for (const [o, i] of blockLinearShapes(d)) {
    sparsePerBlock += o * i;
    perBlock += o * i + (d.bias ? o : 0);
  }
  const embed = d.vocabSize * d.dim + (d.pos === 'learned' ? d.maxSeqLen * d.dim : 0);
  const head = d.tieEmbeddings ? 0 : d.vocabSize * d.dim;
  const sparsifiable = d.numLayers * sparsePerBlock;
  return {
    total: embed + d.numLayers * perBlock + normParams + head,
    sparsifiable,
    gates: (sparsifiable / c.mask.m) * binomial(c.mask.m, c.mask.n),
  };
}

/** C(m, n). */
export function binomial(m: number, n: number): number {
  let r = 1;
  for (let i = 1; i <= n; i++) r = (r * (m - n + i)) / i;
  return Math.round(r);
}
