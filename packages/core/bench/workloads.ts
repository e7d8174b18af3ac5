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
 *                        must not depend on liquid, so this workload imports @mmlm/liquid's TypeScript
 *                        source dynamically, from the bench only (see loadWorkspacePackage), and runs liquid's own
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
 *   latentlm-vae-32px    LatentLM's ViT sigma-VAE tokenizer step as its lab arm trains it at the lab's small
 *                        preset (stage 1 of imageTokenArm.ts): 32 px RGB in [0, 1], patch 8 (4 x 4 grid),
 *                        latent 16, width 128, 2 pre-norm ViT blocks (LayerNorm, bidirectional attention,
 *                        exact GELU, biases) in each of encoder and decoder, 4 heads, one sigma per image
 *                        (C_sigma 0.1), loss mse + 1e-3 mean(mu^2), grad clip 1, AdamW lr 2e-3 (warmup-cosine)
 *                        betas 0.9/0.99 eps 1e-8, weight decay 0.01 on matrices only. All parameters trainable.
 *   latentlm-lm-4x128    LatentLM's backbone + diffusion-head step as the arm's stage 2 at small: 4 x 128, 4
 *                        heads, RMSNorm / SwiGLU 320 / interleaved linspace RoPE / no biases, dropout 0.1,
 *                        learned image positions (16), vocabulary 36 (the small run's caption words and
 *                        specials), 3 adaLN-Zero head blocks, 4 noise draws per latent, v-prediction,
 *                        L = CE + 5 MSE; a fixed batch of 16 text-to-image sequences [<bos> 8 words <BOD>
 *                        16 <LAT> <EOD>] (the longest caption: T = 26 inputs), 16 latents of 16 dims per row;
 *                        grad clip 1, AdamW lr 3e-3 (warmup-cosine) betas 0.9/0.98 eps 1e-8, weight decay
 *                        0.1 on matrices only. All parameters trainable. Runs latentlm's LatentLM and trainStep.
 *   maskllm-mask-step    MaskLLM's mask-only step (maskTrainStep) on its `small` decoder (maskllm.ladder small:
 *                        2 x 128, 4 heads, LayerNorm, GELU-tanh MLP 512, learned positions, biases, vocabulary
 *                        35, the ladder corpus' characters) with every block linear 2:4-masked: frozen
 *                        weights and biases, trainable Gumbel-softmax logits [out * in / 4, 6] per linear,
 *                        loss CE - lambda_t sum ||W * M~||^2, grad clip 1, AdamW (gates only) lr 5e-3 cosine,
 *                        betas 0.9/0.95 eps 1e-5 wd 0.1; ids [16, 65] (T = 64), step 150 of 300. Counted
 *                        parameters: all of them, frozen weights included (Module.numParameters()).
 *
 * The three latentlm / maskllm workloads and the two liquid ones import the paper package's TypeScript
 * source dynamically from the bench only (loadWorkspacePackage): core does not depend on them.
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
  sampleAsync,
  TransformerDecoder,
  tf,
  valueAndGrads,
  warmupCosine,
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
  /** Rows a step (default WORKLOAD_BATCH); named in the workload's name as `-bN` when it differs. */
  batch?: number;
}

/** `lm-LxD-TT`, with `-bN` when the shape has its own batch. */
export function lmWorkloadName(s: LmShape): string {
  return `lm-${s.layers}x${s.dim}-T${s.T}${s.batch === undefined ? '' : `-b${s.batch}`}`;
}

const LM_VOCAB = 128;
const LM_HEADS = 4;
export const LM_SHAPES: LmShape[] = [
  { layers: 2, dim: 64, T: 20 },
  { layers: 2, dim: 64, T: 60 },
  { layers: 4, dim: 128, T: 20 },
  { layers: 4, dim: 128, T: 60 },
  // lab.image-tokens small's discrete arm: batch 32, 64 codes + caption and markers (t2i rows ~80)
  { layers: 4, dim: 128, T: 80, batch: 32 },
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
      name: lmWorkloadName(s),
      unit: 'train step',
      items: (s.batch ?? WORKLOAD_BATCH) * s.T,
      itemName: 'tokens',
      description: `decoder ${s.layers} x ${s.dim}, vocab ${LM_VOCAB}, T ${s.T}${s.batch === undefined ? '' : `, batch ${s.batch}`}`,
    }),
  ),
  {
    name: 'gen-2x64-cfg',
    unit: 'generation',
    items: WORKLOAD_BATCH * GEN.newTokens,
    itemName: 'new tokens',
    description: `2 x 64 decoder, ${2 * WORKLOAD_BATCH} CFG rows, ${GEN.newTokens} new tokens, KV cache`,
  },
  {
    name: 'latentlm-vae-32px',
    unit: 'train step',
    items: WORKLOAD_BATCH,
    itemName: 'images',
    description: 'LatentLM ViT sigma-VAE, 32 px, patch 8, latent 16, 2 + 2 blocks x 128 (the small preset; via @mmlm/latentlm)',
  },
  {
    name: 'latentlm-lm-4x128',
    unit: 'train step',
    items: WORKLOAD_BATCH * 26, // T = 26 inputs: <bos>, 8 words, <BOD>, 16 <LAT> (makeLatentLm)
    itemName: 'tokens',
    description: 'LatentLM 4 x 128 + 3-block diffusion head, T 26 (16 latents), v-prediction (via @mmlm/latentlm)',
  },
  {
    name: 'maskllm-mask-step',
    unit: 'train step',
    items: WORKLOAD_BATCH * 64,
    itemName: 'tokens',
    description: 'MaskLLM 2:4 mask logits on a frozen 2 x 128 decoder, T 64 (the small preset; via @mmlm/maskllm)',
  },
];

export interface Workload extends WorkloadInfo {
  params: number;
  /** One timed unit; returns the loss (training) or a checksum of the generated ids. */
  step(): number;
  /**
   * The same unit with every read-back awaited (`data()`, sampleAsync): what a GPU backend runs
   * (webgpu cannot read synchronously in Node). Absent where the step is a paper package's own
   * training step, which reads its loss synchronously.
   */
  stepAsync?: () => Promise<number>;
  dispose(): void;
}

/** The parts of @mmlm/liquid this bench uses (typed here so that core's typecheck never reads liquid). */
interface LiquidModule {
  VQTokenizer: new (c: Record<string, unknown>) => Module & { numParameters(): number };
  makeOptimizer(m: Module, phase: Record<string, unknown>): AdamW;
  tokenizerTrainStep(vq: Module, opt: AdamW, x: tf.Tensor, t: number, phase: Record<string, unknown>): { loss: number };
  TrainPhaseSchema: { parse(x: unknown): Record<string, unknown> };
}

/** The parts of @mmlm/latentlm this bench uses (typed here, as LiquidModule). */
interface LatentLMModule {
  ImageVAE: new (c: Record<string, unknown>) => Module & { loss(x: tf.Tensor, rng: Rng): { loss: tf.Scalar } };
  LatentLM: new (c: Record<string, unknown>) => Module & { config: Record<string, unknown> };
  NoiseSchedule: new (o: { numTrainTimesteps: number }) => object;
  latentlmArmRecipe(input: unknown): LatentLMRecipe;
  latentlmConfig(input: Record<string, unknown>): LatentLMConfig;
  buildMixedBatch(seqs: { tokens: number[]; latents: Float32Array; lossMask: number[] }[], cfg: Record<string, unknown>): object;
  trainStep(
    model: Module,
    opt: AdamW,
    batch: object,
    opts: { schedule: object; diffusion: Record<string, unknown>; rng: Rng; lr: number; gradClip: number },
  ): { loss: number };
}

interface LatentLMRecipe {
  tokenizer: { lr: number; klWeight: number; cSigma: number };
  backbone: {
    lr: number;
    weightDecay: number;
    dropout: number;
    warmupFraction: number;
    diffusionDepth: number;
    batchMul: number;
    predictionType: string;
    imagePositions: boolean;
  };
  sampling: { headSteps: number; cfgScale: number; lambdaMinClipped: number };
}

interface LatentLMConfig {
  model: Record<string, unknown>;
  diffusion: Record<string, unknown> & { numTrainTimesteps: number };
  train: { steps: number; lr: number; beta1: number; beta2: number; weightDecay: number; gradClip: number; warmupSteps: number };
}

/** The parts of @mmlm/maskllm this bench uses (typed here, as LiquidModule). */
interface MaskLLMModule {
  preset(name: string): MaskLLMConfig;
  buildDecoder(cfg: MaskLLMConfig, seed: number): TransformerDecoder;
  sparsify(decoder: TransformerDecoder, opts: { n: number; m: number; initStd: number; hard: boolean; seed: number }): unknown;
  maskOptimizer(decoder: TransformerDecoder, train: MaskLLMConfig['train']): AdamW;
  maskTrainStep(decoder: TransformerDecoder, opt: AdamW, ids: tf.Tensor, t: number, cfg: MaskLLMConfig): { loss: number };
}

interface MaskLLMConfig {
  model: { vocabSize: number; maxSeqLen: number } & Record<string, unknown>;
  mask: { n: number; m: number; gateInitStd: number; hard: boolean } & Record<string, unknown>;
  train: { steps: number } & Record<string, unknown>;
}

/** The paper packages the bench may load, by folder under packages/. */
type WorkspacePackage = 'liquid' | 'latentlm' | 'maskllm';

const loaded = new Map<WorkspacePackage, Promise<unknown>>();
let sourceHook = false;

/**
 * A paper package (@mmlm/<name>) from its TypeScript source. Core does not depend on the paper
 * packages, so the bench imports them by path; a resolve hook (registered once) adds the workspace's
 * `@mmlm/source` export condition so that the package's own `import ... from '@mmlm/core'` lands on
 * the same core source module as the bench (one Module class, one set of registered kernels)
 * instead of core's built dist.
 */
function loadWorkspacePackage<T>(name: WorkspacePackage): Promise<T> {
  if (!sourceHook) {
    const hook =
      'export async function resolve(s, c, next) { return next(s, { ...c, conditions: [...new Set([...(c.conditions ?? []), "@mmlm/source"])] }); }';
    register(`data:text/javascript,${encodeURIComponent(hook)}`);
    sourceHook = true;
  }
  let p = loaded.get(name);
  if (!p) {
    p = import(new URL(`../../${name}/src/index.ts`, import.meta.url).href);
    loaded.set(name, p);
  }
  return p as Promise<T>;
}

export const loadLiquid = (): Promise<LiquidModule> => loadWorkspacePackage<LiquidModule>('liquid');
export const loadLatentLM = (): Promise<LatentLMModule> => loadWorkspacePackage<LatentLMModule>('latentlm');
export const loadMaskLLM = (): Promise<MaskLLMModule> => loadWorkspacePackage<MaskLLMModule>('maskllm');

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
  const B = s.batch ?? WORKLOAD_BATCH;
  const x = rng.randint([B, s.T], 0, LM_VOCAB); // [B, T] int32
  const y = rng.randint([B, s.T], 0, LM_VOCAB);
  model.train();
  // the step without its read-back: returns the loss tensor
  const run = (): tf.Scalar => {
    const { loss, grads } = valueAndGrads(model, () => crossEntropy(model.forward(x), y) as tf.Scalar);
    const norm = clipGradNorm(grads, 1);
    opt.step(grads);
    norm.dispose();
    for (const g of grads.values()) g.dispose();
    return loss;
  };
  return {
    ...info,
    params: model.numParameters(),
    step: () => {
      const loss = run();
      const value = loss.dataSync()[0] as number;
      loss.dispose();
      return value;
    },
    stepAsync: async () => {
      const loss = run();
      const value = (await loss.data())[0] as number;
      loss.dispose();
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
  // One generation as a coroutine: it yields the guided logits [B, V] of each new position (owned by
  // the caller) and is resumed with the B sampled ids, so the loop runs once for the synchronous
  // `sample` and the awaited `sampleAsync`. Returns the sum of the ids (a checksum).
  function* generation(): Generator<tf.Tensor, number, Int32Array> {
    const cache = model.newCache();
    let keep: tf.Tensor = tf.ones([R, P]);
    let sum = 0;
    try {
      let last = tf.tidy(() => {
        const logits = model.forward(promptIds, { cache, mask: paddingMask(keep) }); // [R, P, V]
        return logits.slice([0, P - 1, 0], [R, 1, LM_VOCAB]).reshape([R, LM_VOCAB]);
      });
      for (let i = 0; i < GEN.newTokens; i++) {
        const next = yield tf.tidy(() => cfgLogits(last.slice([0, 0], [B, -1]), last.slice([B, 0], [B, -1]), GEN.cfgScale)); // [B]
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
  }
  const step = (): number => {
    const g = generation();
    try {
      let r = g.next(new Int32Array(0));
      while (!r.done) {
        const guided = r.value;
        try {
          r = g.next(sample(guided, sampleOpts));
        } finally {
          guided.dispose();
        }
      }
      return r.value;
    } finally {
      g.return(0); // a sampler that threw: the generation's finally disposes its cache (no-op once done)
    }
  };
  const stepAsync = async (): Promise<number> => {
    const g = generation();
    try {
      let r = g.next(new Int32Array(0));
      while (!r.done) {
        const guided = r.value;
        try {
          r = g.next(await sampleAsync(guided, sampleOpts));
        } finally {
          guided.dispose();
        }
      }
      return r.value;
    } finally {
      g.return(0); // a sampler that threw: the generation's finally disposes its cache (no-op once done)
    }
  };
  return {
    ...info,
    params: model.numParameters(),
    step,
    stepAsync,
    dispose: () => {
      model.dispose();
      promptIds.dispose();
    },
  };
}

/**
 * The LatentLM arm at the lab's small preset (apps/lab lab.image-tokens `small`): 32 px images, a
 * 4-layer 128-wide backbone with 4 heads, 1,500 tokenizer and 6,000 backbone steps, and the preset's
 * recipe override (backbone lr 3e-3, learned image positions) over the recipe defaults.
 */
export const LATENT_ARM = {
  imageSize: 32,
  grid: 4,
  dim: 128,
  numLayers: 4,
  numHeads: 4,
  tokenizerSteps: 1500,
  backboneSteps: 6000,
  recipe: { backbone: { lr: 3e-3, imagePositions: true } },
  /** The small run's WordTokenizer: 8 specials (ids 0..7, the arm's SPECIALS order) + 28 caption words. */
  vocabSize: 36,
  specials: { pad: 0, bos: 1, bod: 5, eod: 6, lat: 7 },
  /** Longest caption (maxSeqLen = maxWords + 16 + 4 = 28 in the small run). */
  maxWords: 8,
} as const;

/** Stage 1 of the arm: ImageVAE as it builds it, and its tokenizer step (imageTokenArm.ts). */
async function makeLatentVae(info: WorkloadInfo): Promise<Workload> {
  const L = await loadLatentLM();
  const A = LATENT_ARM;
  const recipe = L.latentlmArmRecipe(A.recipe);
  const patchSize = A.imageSize / A.grid; // 8
  const vae = new L.ImageVAE({
    imageSize: A.imageSize,
    patchSize,
    latentDim: Math.min(16, Math.max(4, (patchSize * patchSize * 3) / 6)), // 16
    dim: A.dim,
    depth: Math.min(2, A.numLayers),
    numHeads: A.numHeads,
    posterior: 'sigma',
    cSigma: recipe.tokenizer.cSigma,
    klWeight: recipe.tokenizer.klWeight,
    seed: 0,
  });
  const opt = new AdamW(paramGroups(vae), { beta1: 0.9, beta2: 0.99, weightDecay: 0.01 });
  const lr = warmupCosine({ peak: recipe.tokenizer.lr, warmup: Math.min(50, Math.ceil(A.tokenizerSteps / 10)), total: A.tokenizerSteps });
  const rng = new Rng(1);
  const x = tf.tidy(() => rng.rand([WORKLOAD_BATCH, A.imageSize, A.imageSize, 3], 0, 1)); // [B, 32, 32, 3] in [0, 1]
  vae.train();
  let t = 200;
  return {
    ...info,
    params: vae.numParameters(),
    step: () => {
      // the arm's step body (its trainLoop callback), on a fixed batch
      const { loss, grads } = valueAndGrads(vae, () => vae.loss(x, rng).loss);
      clipGradNorm(grads, 1).dispose();
      opt.setLr(lr(t++));
      opt.step(grads);
      const v = loss.dataSync()[0] as number;
      tf.dispose([loss, ...grads.values()]);
      return v;
    },
    dispose: () => {
      opt.dispose();
      vae.dispose();
      x.dispose();
    },
  };
}

/** Stage 2 of the arm: LatentLM as it configures it, buildMixedBatch and latentlm's trainStep. */
async function makeLatentLm(info: WorkloadInfo): Promise<Workload> {
  const L = await loadLatentLM();
  const A = LATENT_ARM;
  const recipe = L.latentlmArmRecipe(A.recipe);
  const b = recipe.backbone;
  const N = A.grid * A.grid; // 16 latents per image
  const C = 16;
  const sp = A.specials;
  const cfg = L.latentlmConfig({
    model: {
      vocabSize: A.vocabSize,
      latentDim: C,
      dim: A.dim,
      numLayers: A.numLayers,
      numHeads: A.numHeads,
      diffusionDepth: b.diffusionDepth,
      dropout: b.dropout,
      imagePositions: b.imagePositions ? N : 0,
      maxSeqLen: A.maxWords + N + 4,
      bodId: sp.bod,
      eodId: sp.eod,
      latId: sp.lat,
      padId: sp.pad,
      seed: 0,
    },
    diffusion: {
      headSteps: recipe.sampling.headSteps,
      cfgScale: recipe.sampling.cfgScale,
      lambdaMinClipped: recipe.sampling.lambdaMinClipped,
      condDropout: 0.1,
      batchMul: b.batchMul,
      predictionType: b.predictionType,
    },
    train: {
      steps: A.backboneSteps,
      batchSize: WORKLOAD_BATCH,
      lr: b.lr,
      weightDecay: b.weightDecay,
      warmupSteps: Math.min(100, Math.ceil(A.backboneSteps * b.warmupFraction)),
    },
  });
  const lm = new L.LatentLM(cfg.model);
  const schedule = new L.NoiseSchedule({ numTrainTimesteps: cfg.diffusion.numTrainTimesteps });
  const tc = cfg.train;
  const opt = new AdamW(paramGroups(lm), { beta1: tc.beta1, beta2: tc.beta2, weightDecay: tc.weightDecay });
  const lr = warmupCosine({ peak: tc.lr, warmup: tc.warmupSteps, total: tc.steps });
  // the arm's text-to-image example: [<bos> caption <BOD> <LAT> x 16 <EOD>], loss on the image span and <EOD>
  const rng = new Rng(1);
  const seqs = Array.from({ length: WORKLOAD_BATCH }, () => {
    const caption = Array.from({ length: A.maxWords }, () => rng.int(8, A.vocabSize)); // word ids
    const tokens = [sp.bos, ...caption, sp.bod, ...Array<number>(N).fill(sp.lat), sp.eod]; // 27 tokens
    const start = 1 + caption.length + 1;
    const latents = Float32Array.from({ length: N * C }, () => rng.normal()); // standardised latents
    return { tokens, latents, lossMask: tokens.map((_, j) => (j >= start ? 1 : 0)) };
  });
  const batch = L.buildMixedBatch(seqs, lm.config); // T = 26; 16 diffusion targets and 1 CE target per row
  lm.train();
  let t = 200;
  return {
    ...info,
    params: lm.numParameters(),
    step: () => L.trainStep(lm, opt, batch, { schedule, diffusion: cfg.diffusion, rng, lr: lr(t++), gradClip: tc.gradClip }).loss,
    dispose: () => {
      opt.dispose();
      lm.dispose();
    },
  };
}

/** maskllm.ladder's small preset: vocabulary of its 400k-character `shapes` corpus (35 characters). */
export const MASKLLM_VOCAB = 35;

/** MaskLLM's mask-only run (experiments/common.ts runMaskLLM, no prior) on a random dense decoder. */
async function makeMaskStep(info: WorkloadInfo): Promise<Workload> {
  const M = await loadMaskLLM();
  const cfg = M.preset('small');
  cfg.model.vocabSize = MASKLLM_VOCAB;
  const dec = M.buildDecoder(cfg, 0); // random weights: a trained dense model costs the same
  const { mask } = cfg;
  M.sparsify(dec, { n: mask.n, m: mask.m, initStd: mask.gateInitStd, hard: mask.hard, seed: 1 });
  dec.train();
  const opt = M.maskOptimizer(dec, cfg.train);
  const ids = new Rng(1).randint([WORKLOAD_BATCH, cfg.model.maxSeqLen + 1], 0, MASKLLM_VOCAB); // [B, T+1] int32
  let t = cfg.train.steps / 2;
  return {
    ...info,
    params: dec.numParameters(), // frozen weights + trainable mask logits
    step: () => M.maskTrainStep(dec, opt, ids, t++, cfg).loss,
    dispose: () => {
      opt.dispose();
      dec.dispose();
      ids.dispose();
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
  if (name === 'latentlm-vae-32px') return makeLatentVae(info);
  if (name === 'latentlm-lm-4x128') return makeLatentLm(info);
  if (name === 'maskllm-mask-step') return makeMaskStep(info);
  const s = LM_SHAPES.find((x) => lmWorkloadName(x) === name)!;
  return makeLm(info, s);
}
