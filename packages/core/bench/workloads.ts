/**
 * Experiment-shaped workloads (issue 17): the training steps and the generation loop that the lab's
 * experiments spend their time in, at batch 16, each mirrored in PyTorch by bench/peers/workloads_torch.py
 * with the same shapes, parameter count and optimizer.
 *
 *   liquid-vq-tokenizer  Liquid's conv VQ tokenizer step as its lab arm trains it (16 px RGB, ch 16,
 *                        chMult [1, 1, 1], no encoder ResnetBlocks, zChannels 16, codeDim 8, K 64, EMA
 *                        codebook 0.99, dead-code restart 20, k-means init on the first (warm-up) step;
 *                        loss mse + VQ loss, grad clip 1, AdamW lr 2e-3 betas 0.9/0.95 eps 1e-8 wd 0).
 *                        Core has no convolution modules (they live in @mmlm/liquid's conv.ts), and core
 *                        must not depend on liquid, so this one workload imports @mmlm/liquid's TypeScript
 *                        source dynamically, from the bench only (see loadLiquid), and runs liquid's own
 *                        VQTokenizer and tokenizerTrainStep.
 *   liquid-vq-tokenizer-32px  the same at the lab's small preset (lab.image-tokens small): 32 px, ch 32
 *                        (GroupNorm of 8 groups), still batch 16.
 *   lm-<L>x<D>-T<T>      core TransformerDecoder shaped as Liquid's LM (buildLM: RoPE, RMSNorm, SwiGLU with
 *                        core's hidden rule, no biases, untied head, 4 heads, dropout 0.1 as the arm),
 *                        vocabulary 128, one step on random tokens: cross-entropy, grad clip 1, AdamW
 *                        lr 3e-3 betas 0.9/0.95 eps 1e-8, weight decay 0.1 on matrices only (paramGroups).
 *   gen-2x64-cfg         the 2 x 64 LM in eval mode generating 16 tokens for 16 prompts of 12 tokens with
 *                        classifier-free guidance batched as 2B = 32 rows (cond rows, then uncond rows),
 *                        KV cache, padding mask, CFG scale 1.5, temperature 0.5, top-p 0.96, codes-only
 *                        allowed range (ids 64..127) as Liquid's generateImageCodes. One "step" = one full
 *                        generation (prefill + 16 tokens); tokens/s counts the 16 x 16 new tokens.
 */
import { register } from 'node:module';
import {
  AdamW,
  cfgLogits,
  clipGradNorm,
  crossEntropy,
  type Module,
  paddingMask,
  paramGroups,
  Rng,
  sample,
  TransformerDecoder,
  tf,
  valueAndGrads,
} from '../src/index.js';

export const WORKLOAD_BATCH = 16;

export interface WorkloadInfo {
  name: string;
  /** What one timed step is. */
  unit: 'train step' | 'generation';
  /** Tokens (or images) a step processes, for tokens/s; images for the tokenizer. */
  items: number;
  itemName: 'tokens' | 'images' | 'new tokens';
  description: string;
}

export interface LmShape {
  layers: number;
  dim: number;
  T: number;
}

const LM_VOCAB = 128;
const LM_HEADS = 4;
export const LM_SHAPES: LmShape[] = [
  { layers: 2, dim: 64, T: 20 },
  { layers: 2, dim: 64, T: 60 },
  { layers: 4, dim: 128, T: 20 },
  { layers: 4, dim: 128, T: 60 },
];
export const GEN = { prompt: 12, newTokens: 16, cfgScale: 1.5, temperature: 0.5, topP: 0.96, codes: [64, 128] as [number, number] };

export const WORKLOADS: WorkloadInfo[] = [
  {
    name: 'liquid-vq-tokenizer',
    unit: 'train step',
    items: WORKLOAD_BATCH,
    itemName: 'images',
    description: 'Liquid VQ tokenizer, 16 px, ch 16, K 64 (via @mmlm/liquid)',
  },
  {
    name: 'liquid-vq-tokenizer-32px',
    unit: 'train step',
    items: WORKLOAD_BATCH,
    itemName: 'images',
    description: 'Liquid VQ tokenizer, 32 px, ch 32, K 64 (the small preset; via @mmlm/liquid)',
  },
  ...LM_SHAPES.map(
    (s): WorkloadInfo => ({
      name: `lm-${s.layers}x${s.dim}-T${s.T}`,
      unit: 'train step',
      items: WORKLOAD_BATCH * s.T,
      itemName: 'tokens',
      description: `decoder ${s.layers} x ${s.dim}, vocab ${LM_VOCAB}, T ${s.T}`,
    }),
  ),
  {
    name: 'gen-2x64-cfg',
    unit: 'generation',
    items: WORKLOAD_BATCH * GEN.newTokens,
    itemName: 'new tokens',
    description: `2 x 64 decoder, ${2 * WORKLOAD_BATCH} CFG rows, ${GEN.newTokens} new tokens, KV cache`,
  },
];

export interface Workload extends WorkloadInfo {
  params: number;
  /** One timed unit; returns the loss (training) or a checksum of the generated ids. */
  step(): number;
  dispose(): void;
}

/** The parts of @mmlm/liquid this bench uses (typed here so that core's typecheck never reads liquid). */
interface LiquidModule {
  VQTokenizer: new (c: Record<string, unknown>) => Module & { numParameters(): number };
  makeOptimizer(m: Module, phase: Record<string, unknown>): AdamW;
  tokenizerTrainStep(vq: Module, opt: AdamW, x: tf.Tensor, t: number, phase: Record<string, unknown>): { loss: number };
  TrainPhaseSchema: { parse(x: unknown): Record<string, unknown> };
}

let liquid: Promise<LiquidModule> | null = null;

/**
 * @mmlm/liquid from its TypeScript source. Core does not depend on liquid, so the bench imports it by
 * path; a resolve hook adds the workspace's `@mmlm/source` export condition so that liquid's own
 * `import ... from '@mmlm/core'` lands on the same core source module as the bench (one Module class,
 * one set of registered kernels) instead of core's built dist.
 */
export function loadLiquid(): Promise<LiquidModule> {
  if (!liquid) {
    const hook =
      'export async function resolve(s, c, next) { return next(s, { ...c, conditions: [...new Set([...(c.conditions ?? []), "@mmlm/source"])] }); }';
    register(`data:text/javascript,${encodeURIComponent(hook)}`);
    const spec = new URL('../../liquid/src/index.ts', import.meta.url).href;
    liquid = import(spec) as Promise<LiquidModule>;
  }
  return liquid;
}

/** The arm's tokenizer config (liquid's armTokenizerConfig(16, 0) with its recipe defaults). */
export const TOKENIZER_CONFIG = {
  imageSize: 16,
  ch: 16,
  chMult: [1, 1, 1],
  numResBlocks: 0,
  zChannels: 16,
  codeDim: 8,
  numCodes: 64,
  deadCodeSteps: 20,
  emaDecay: 0.99,
  kmeansInit: true,
  seed: 0,
};

async function makeTokenizer(info: WorkloadInfo, shape: { imageSize: number; ch: number } = TOKENIZER_CONFIG): Promise<Workload> {
  const L = await loadLiquid();
  const vq = new L.VQTokenizer({ ...TOKENIZER_CONFIG, ...shape });
  // The arm's phaseOf(steps, 16, 2e-3): warmup 10% of the steps, cosine to 0.1 lr, clip 1, wd 0.
  const phase = L.TrainPhaseSchema.parse({
    steps: 1000,
    batchSize: WORKLOAD_BATCH,
    lr: 2e-3,
    warmup: 100,
    minLrRatio: 0.1,
    weightDecay: 0,
  });
  const opt = L.makeOptimizer(vq, phase);
  vq.train();
  const S = shape.imageSize;
  const x = tf.tidy(() => new Rng(1).rand([WORKLOAD_BATCH, S, S, 3], -1, 1)); // [B, S, S, 3] in [-1, 1]
  let t = 0;
  return {
    ...info,
    params: vq.numParameters(),
    step: () => L.tokenizerTrainStep(vq, opt, x, 200 + t++, phase).loss,
    dispose: () => {
      opt.dispose();
      vq.dispose();
      x.dispose();
    },
  };
}

function lmModel(layers: number, dim: number, maxSeqLen: number): TransformerDecoder {
  return new TransformerDecoder({
    vocabSize: LM_VOCAB,
    dim,
    numLayers: layers,
    numHeads: LM_HEADS,
    maxSeqLen,
    mlp: 'swiglu',
    norm: 'rmsnorm',
    bias: false,
    pos: 'rope',
    tieEmbeddings: false,
    dropout: 0.1,
    seed: 0,
  });
}

function makeLm(info: WorkloadInfo, s: LmShape): Workload {
  const model = lmModel(s.layers, s.dim, s.T);
  const opt = new AdamW(paramGroups(model), { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(1);
  const x = rng.randint([WORKLOAD_BATCH, s.T], 0, LM_VOCAB); // [B, T] int32
  const y = rng.randint([WORKLOAD_BATCH, s.T], 0, LM_VOCAB);
  model.train();
  return {
    ...info,
    params: model.numParameters(),
    step: () => {
      const { loss, grads } = valueAndGrads(model, () => crossEntropy(model.forward(x), y) as tf.Scalar);
      const norm = clipGradNorm(grads, 1);
      opt.step(grads);
      const value = loss.dataSync()[0] as number;
      loss.dispose();
      norm.dispose();
      for (const g of grads.values()) g.dispose();
      return value;
    },
    dispose: () => {
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    },
  };
}

function makeGeneration(info: WorkloadInfo): Workload {
  const B = WORKLOAD_BATCH;
  const R = 2 * B;
  const P = GEN.prompt;
  const model = lmModel(2, 64, 64);
  model.eval();
  const rng = new Rng(2);
  const promptIds = rng.randint([R, P], 0, GEN.codes[0]); // [2B, P]: cond rows then uncond rows
  const sampleOpts = { temperature: GEN.temperature, topK: 4096, topP: GEN.topP, allowed: { ranges: [GEN.codes] }, rng };
  const step = (): number => {
    const cache = model.newCache();
    let keep: tf.Tensor = tf.ones([R, P]);
    let sum = 0;
    try {
      let last = tf.tidy(() => {
        const logits = model.forward(promptIds, { cache, mask: paddingMask(keep) }); // [R, P, V]
        return logits.slice([0, P - 1, 0], [R, 1, LM_VOCAB]).reshape([R, LM_VOCAB]);
      });
      for (let i = 0; i < GEN.newTokens; i++) {
        const next = tf.tidy(() => sample(cfgLogits(last.slice([0, 0], [B, -1]), last.slice([B, 0], [B, -1]), GEN.cfgScale), sampleOpts)); // [B]
        for (const id of next) sum += id;
        if (i === GEN.newTokens - 1) break;
        const grown = tf.tidy(() => tf.concat([keep, tf.ones([R, 1])], 1));
        keep.dispose();
        keep = grown;
        const prev = last;
        last = tf.tidy(() => {
          const ids = tf.tensor2d(Int32Array.from([...next, ...next]), [R, 1], 'int32');
          return model.forward(ids, { cache, mask: paddingMask(keep) }).reshape([R, LM_VOCAB]);
        });
        prev.dispose();
      }
      last.dispose();
    } finally {
      keep.dispose();
      cache.dispose();
    }
    return sum;
  };
  return {
    ...info,
    params: model.numParameters(),
    step,
    dispose: () => {
      model.dispose();
      promptIds.dispose();
    },
  };
}

/** Build one workload on the current backend. */
export async function makeWorkload(name: string): Promise<Workload> {
  const info = WORKLOADS.find((w) => w.name === name);
  if (!info) throw new Error(`unknown workload "${name}"; expected one of ${WORKLOADS.map((w) => w.name).join(', ')}`);
  if (name === 'liquid-vq-tokenizer') return makeTokenizer(info);
  if (name === 'liquid-vq-tokenizer-32px') return makeTokenizer(info, { imageSize: 32, ch: 32 });
  if (name === 'gen-2x64-cfg') return makeGeneration(info);
  const s = LM_SHAPES.find((x) => `lm-${x.layers}x${x.dim}-T${x.T}` === name)!;
  return makeLm(info, s);
}
