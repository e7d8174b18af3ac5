/**
 * The lab's comparative experiment "image tokens: discrete vs continuous" (apps/lab
 * src/experiments/imageTokens.ts + imageEval.ts), in memory for the page.
 *
 * The CLI builds each arm with its paper package's `imageTokenArm` (packages/liquid and
 * packages/latentlm, src/experiments), which checkpoint into a folder with node:fs, so they cannot be
 * bundled for a browser. The two arms are re-composed here from the packages' browser-safe main
 * entries, following each arm's recipe defaults (LiquidArmRecipeSchema, LatentLMArmRecipeSchema), the
 * same random streams and the same order of draws, so that a page run at the `quick` preset measures
 * what `pnpm lab run lab.image-tokens --preset quick` measures:
 *   - liquid-vq: a VQ tokenizer (16 px -> 4x4 codes of K = 64, k-means init, EMA codebook, dead-code
 *     restart) trained then frozen; one LM over words + codes trained on text-to-image and captioning
 *     examples (LiquidCollator); CFG 1.5, temperature 0.5; greedy captions.
 *   - latentlm-sigma-vae: a ViT sigma-VAE (4x4 latents of 8 dims at 16 px, C_sigma 0.1) trained then
 *     frozen; LatentLM with a diffusion head (v-prediction, DPM-Solver++ 10 steps, CFG 2, head
 *     temperature 0.5); greedy captions from the posterior means.
 * Every figure is measured with @mmlm/data's instruments on seen and held-out prompt sets, next to the
 * memoriser ceiling, as imageEval.ts does. No DOM here: results come back as tables and image grids.
 */

import { AdamW, clipGradNorm, paramGroups, Rng, type TransformerDecoder, tf, valueAndGrads, warmupCosine } from '@mmlm/core';
import type { ImageTokenArm } from '@mmlm/core/experiment';
import {
  analyzerAgreement,
  captionScore,
  frechetDistance,
  type GenerationScore,
  generationScore,
  type ImageTextEvalSet,
  loadImageTextData,
  type PromptSet,
  ShapeAnalyzer,
  tokenF1,
  WordTokenizer,
} from '@mmlm/data';
import {
  buildMixedBatch,
  ImageVAE,
  LatentLM,
  generate as latentGenerate,
  latentlmArmRecipe,
  latentlmConfig,
  parameterCount as latentParameterCount,
  trainStep as latentTrainStep,
  type MixedSequence,
  NoiseSchedule,
} from '@mmlm/latentlm';
import {
  armTokenizerConfig,
  buildImagePositionLM,
  buildLM,
  CAPTION_INSTRUCTION,
  CollatorConfigSchema,
  captionImages,
  decodeCodesToImages,
  EVAL_T2I_SUFFIX,
  type Example,
  extractCodes,
  generateImageCodes,
  headWeight,
  LiquidCollator,
  liquidArmRecipe,
  liquidVocab,
  lmConfig,
  lmTrainStep,
  makeOptimizer,
  T2I_SUFFIXES,
  type TrainPhase,
  TrainPhaseSchema,
  tokenizerTrainStep,
  VQTokenizer,
} from '@mmlm/liquid';
import type { GridCell, ImageGrid, PageExperiment, RunHooks, Table } from './experiments.js';

// ---------------------------------------------------------------------------------------------
// presets: the CLI's tiny and quick (apps/lab/src/experiments/imageTokens.ts), plus a Liquid-only quick

export interface ImageTokensPreset {
  description: string;
  imageSize: number;
  maxObjects: number;
  trainImages: number;
  /** Size of each of the seen and held-out prompt sets. */
  evalImages: number;
  dim: number;
  numLayers: number;
  numHeads: number;
  tokenizerSteps: number;
  backboneSteps: number;
  batchSize: number;
  captionFraction: number;
  /** Both arms' recipe `backbone.imagePositions` (the CLI's quick preset sets it; its tiny one does not). */
  imagePositions: boolean;
  arms: ArmName[];
}

type ArmName = 'liquid-vq' | 'latentlm-sigma-vae';

const QUICK: ImageTokensPreset = {
  description:
    "the CLI's quick budget: 16 px, 1,000 training images, 256 seen + 256 held-out prompts, 2x64 backbone with learned image positions, 1,000 tokenizer + 1,000 backbone steps per arm (about 3.5 minutes on wasm)",
  imageSize: 16,
  maxObjects: 1,
  trainImages: 1000,
  evalImages: 256,
  dim: 64,
  numLayers: 2,
  numHeads: 4,
  tokenizerSteps: 1000,
  backboneSteps: 1000,
  batchSize: 16,
  captionFraction: 0.3,
  imagePositions: true,
  arms: ['liquid-vq', 'latentlm-sigma-vae'],
};

export const IMAGE_TOKENS_PRESETS: Record<string, ImageTokensPreset> = {
  tiny: {
    description: "the CLI's tiny preset: 2 + 2 steps of microscopic arms, 4 + 4 prompts (seconds; plumbing and metrics only)",
    imageSize: 16,
    maxObjects: 1,
    trainImages: 16,
    evalImages: 4,
    dim: 16,
    numLayers: 1,
    numHeads: 2,
    tokenizerSteps: 2,
    backboneSteps: 2,
    batchSize: 4,
    captionFraction: 0.3,
    imagePositions: false,
    arms: ['liquid-vq', 'latentlm-sigma-vae'],
  },
  quick: QUICK,
  'quick-liquid': { ...QUICK, description: 'the quick budget, the Liquid arm only (about half the time)', arms: ['liquid-vq'] },
};

// ---------------------------------------------------------------------------------------------
// data (@mmlm/data loadImageTextData, as apps/lab imageEval.ts)

/** The comparison's data: @mmlm/data's loadImageTextData, the function the CLI's lab.image-tokens calls. */
export type EvalSet = ImageTextEvalSet;

export function loadData(p: ImageTokensPreset, seed: number): EvalSet {
  return loadImageTextData({
    imageSize: p.imageSize,
    maxObjects: p.maxObjects,
    trainImages: p.trainImages,
    evalImages: p.evalImages,
    seed,
  });
}

/** What an arm is trained with (the CLI's ImageTokenArmOptions, without dir and progress). */
export interface ArmBudget {
  data: EvalSet;
  backbone: { dim: number; numLayers: number; numHeads: number };
  tokenizerSteps: number;
  backboneSteps: number;
  batchSize: number;
  captionFraction: number;
  /** The recipes' `backbone.imagePositions`: core's SpanPositionEmbedding in both backbones. */
  imagePositions: boolean;
  seed: number;
}

/** Images [n * per] of a list of HWC arrays. */
function stackImages(images: readonly Float32Array[], per: number): Float32Array {
  const out = new Float32Array(images.length * per);
  images.forEach((im, i) => {
    if (!(im instanceof Float32Array) || im.length !== per)
      throw new Error(`image-tokens: image ${i} must be a Float32Array of ${per} values, got ${im?.length ?? typeof im}`);
    out.set(im, i * per);
  });
  return out;
}

function split(flat: Float32Array, n: number, per: number): Float32Array[] {
  return Array.from({ length: n }, (_, i) => flat.slice(i * per, (i + 1) * per));
}

/** Throws a NaN / infinite loss the way core's trainLoop does (with the phase and the step). */
function finite(what: string, step: number, loss: number): number {
  if (!Number.isFinite(loss)) throw new Error(`${what}: step ${step} returned the loss ${loss}, expected a finite number`);
  return loss;
}

// ---------------------------------------------------------------------------------------------
// the Liquid arm (packages/liquid/src/experiments/arm.ts, recipe defaults), in memory

/** A phase's warmup and cosine decay at the arm's budget (arm.ts phaseOf). */
function liquidPhase(steps: number, batchSize: number, lr: number, weightDecay = 0, warmupFraction = 0.1): TrainPhase {
  return TrainPhaseSchema.parse({
    steps,
    batchSize,
    lr,
    warmup: Math.min(100, Math.floor(steps * warmupFraction)),
    minLrRatio: 0.1,
    weightDecay,
  });
}

export async function liquidArm(o: ArmBudget, hooks: RunHooks): Promise<ImageTokenArm> {
  const { data, seed } = o;
  // the arm's own recipe schema (browser-safe, from @mmlm/liquid's main entry): its defaults, as the CLI
  const R = liquidArmRecipe({ backbone: { imagePositions: o.imagePositions } });
  const S = data.imageSize;
  const per = S * S * 3;
  const nTrain = data.train.images.length;

  // ---- 1. the VQ tokenizer, trained then frozen; codes of the training images extracted once
  const vq = new VQTokenizer(armTokenizerConfig(S, seed, R));
  let model: TransformerDecoder | null = null;
  try {
    const N = vq.tokensPerImage;
    const tPhase = liquidPhase(o.tokenizerSteps, o.batchSize, R.tokenizer.lr);
    {
      const opt = makeOptimizer(vq, tPhase);
      const rng = new Rng(seed).fork('liquid-arm-tokenizer-batches');
      const buf = new Float32Array(o.batchSize * per);
      vq.train();
      try {
        for (let t = 1; t <= tPhase.steps; t++) {
          const s0 = performance.now();
          for (let b = 0; b < o.batchSize; b++) buf.set(data.train.images[rng.int(0, nTrain)]!, b * per);
          const x = tf.tidy(() => tf.tensor4d(buf, [o.batchSize, S, S, 3]).mul(2).sub(1)); // [B, S, S, 3] in [-1, 1]
          let loss: number;
          try {
            loss = finite('liquid-vq tokenizer', t, tokenizerTrainStep(vq, opt, x, t - 1, tPhase).loss);
          } finally {
            x.dispose();
          }
          hooks.step('liquid-vq tokenizer', t, tPhase.steps, loss, performance.now() - s0);
          await hooks.yieldToPage();
        }
      } finally {
        opt.dispose();
      }
    }
    vq.eval();
    const codesTrain = extractCodes(vq, stackImages(data.train.images, per)); // [nTrain * N]
    await hooks.yieldToPage();

    // ---- 2. the word vocabulary and the unified LM
    const words = WordTokenizer.fromText([...data.train.captions, ...data.evalCaptions, ...T2I_SUFFIXES, CAPTION_INSTRUCTION]);
    const vocab = liquidVocab({
      textVocabSize: words.vocabSize,
      numCodes: vq.numCodes,
      tokensPerImage: N,
      bos: words.specialId('<bos>'),
      eos: words.specialId('<eos>'),
      pad: words.specialId('<pad>'),
    });
    const instruction = words.encode(CAPTION_INSTRUCTION);
    const longestSuffix = Math.max(...T2I_SUFFIXES.map((s) => words.encode(s).length));
    const maxCaption = Math.max(...[...data.train.captions, ...data.evalCaptions].map((c) => words.encode(c).length));
    const maxNewTokens = maxCaption + 1;
    const t2iLen = 1 + maxCaption + longestSuffix + 1 + N + 2;
    const i2tLen = 2 + N + 1 + instruction.length + maxCaption + 1;
    const lm = lmConfig({
      textVocabSize: words.vocabSize,
      dim: o.backbone.dim,
      numLayers: o.backbone.numLayers,
      numHeads: o.backbone.numHeads,
      maxSeqLen: Math.max(t2iLen, i2tLen + 1),
      dropout: R.backbone.dropout,
      seed,
    });
    const bPhase = liquidPhase(o.backboneSteps, o.batchSize, R.backbone.lr, R.backbone.weightDecay, R.backbone.warmupFraction);
    model = R.backbone.imagePositions ? buildImagePositionLM(lm, vocab, seed) : buildLM(lm, vocab.size, seed);
    const m = model;
    {
      const rng = new Rng(seed).fork('liquid-arm-backbone-batches');
      const collator = new LiquidCollator(
        words,
        vocab,
        CollatorConfigSchema.parse({}),
        lm.maxSeqLen,
        new Rng(seed).fork('liquid-arm-collator'),
      );
      const opt = makeOptimizer(m, bPhase);
      m.train();
      try {
        for (let t = 1; t <= bPhase.steps; t++) {
          const s0 = performance.now();
          const examples: Example[] = [];
          for (let b = 0; b < o.batchSize; b++) {
            const i = rng.int(0, nTrain);
            const codes = codesTrain.subarray(i * N, (i + 1) * N);
            const caption = data.train.captions[i]!;
            examples.push(rng.uniform() < o.captionFraction ? collator.i2t(caption, codes) : collator.t2i(caption, codes));
          }
          const loss = finite('liquid-vq backbone', t, lmTrainStep(m, opt, collator.collate(examples), t - 1, bPhase).loss);
          hooks.step('liquid-vq backbone', t, bPhase.steps, loss, performance.now() - s0);
          await hooks.yieldToPage();
        }
      } finally {
        opt.dispose();
      }
    }
    m.eval();

    const headParams = headWeight(m).size;
    const CHUNK = 32;
    return {
      name: 'liquid-vq',
      tokensPerImage: N,
      description: `Liquid: VQ tokenizer (${S} px -> ${vq.gridSize}x${vq.gridSize} codes of K = ${vq.numCodes}, conv encoder/decoder, k-means init, EMA codebook), one LM over words + codes with a softmax head (dropout ${R.backbone.dropout}, weight decay ${R.backbone.weightDecay}); CFG s = ${R.sampling.cfgScale}, temperature ${R.sampling.temperature}`,
      parameterCounts: { tokenizer: vq.numParameters(), backbone: m.numParameters() - headParams, head: headParams },
      async reconstruct(images) {
        if (images.length === 0) return [];
        const codes = extractCodes(vq, stackImages(images, per));
        return split(decodeCodesToImages(vq, codes), images.length, per);
      },
      async generate(captions, g) {
        const cfgScale = g.cfgScale ?? R.sampling.cfgScale;
        // with CFG every step runs a conditional and an unconditional row (batched): 2 head evaluations per code
        const headEvalsPerImage = cfgScale === 1 ? N : 2 * N;
        const rng = new Rng(g.seed);
        const images: Float32Array[] = [];
        // the CLI's one call with batchSize 32, cut at the same batches so the page can repaint between them
        for (let i = 0; i < captions.length; i += CHUNK) {
          const prompts = captions.slice(i, i + CHUNK).map((c) => words.encode(c + EVAL_T2I_SUFFIX));
          const codes = generateImageCodes(m, vocab, prompts, {
            cfgScale,
            temperature: g.temperature ?? R.sampling.temperature,
            topK: R.sampling.topK,
            topP: R.sampling.topP,
            rng,
            batchSize: CHUNK,
          });
          const flat = new Int32Array(codes.length * N);
          codes.forEach((c, j) => flat.set(c, j * N));
          images.push(...split(decodeCodesToImages(vq, flat), codes.length, per));
          await hooks.yieldToPage();
        }
        return { images, backboneStepsPerImage: N, headEvalsPerImage };
      },
      async caption(images) {
        if (images.length === 0) return [];
        const codes = extractCodes(vq, stackImages(images, per));
        const out: string[] = [];
        for (let i = 0; i < images.length; i += CHUNK) {
          const chunk = Array.from({ length: Math.min(CHUNK, images.length - i) }, (_, j) => codes.subarray((i + j) * N, (i + j + 1) * N));
          for (const ids of captionImages(m, vocab, chunk, instruction, { maxNewTokens }))
            out.push(words.decode(ids, { skipSpecial: true }));
          await hooks.yieldToPage();
        }
        return out;
      },
      dispose() {
        vq.dispose();
        m.dispose();
      },
    };
  } catch (e) {
    vq.dispose();
    model?.dispose();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// the LatentLM arm (packages/latentlm/src/experiments/imageTokenArm.ts, recipe defaults), in memory

/** The LatentLM arm's fixed settings (imageTokenArm.ts ARM_SETTINGS; not part of its recipe). */
const LATENT_FIXED = { grid: 4, condDropout: 0.1 } as const;

const SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>', '<null>', '<BOD>', '<EOD>', '<LAT>'] as const;

export async function latentArm(o: ArmBudget, hooks: RunHooks): Promise<ImageTokenArm> {
  const R = { ...latentlmArmRecipe({ backbone: { imagePositions: o.imagePositions } }), ...LATENT_FIXED };
  const S = o.data.imageSize;
  const per = S * S * 3;
  const patchSize = S / R.grid;
  const latentDim = R.tokenizer.latentDim ?? Math.min(16, Math.max(4, (patchSize * patchSize * 3) / 6));
  /** Images and captions processed per tensor batch at inference (the arm's CHUNK). */
  const CHUNK = 64;
  const stack = (images: readonly Float32Array[]) => tf.tensor4d(stackImages(images, per), [images.length, S, S, 3]);
  const unstack = (t: tf.Tensor): Float32Array[] => split(t.dataSync() as Float32Array, t.shape[0] as number, (t.size / t.shape[0]!) | 0);

  // --- stage 1: the sigma-VAE tokenizer
  const vae = new ImageVAE({
    imageSize: S,
    patchSize,
    latentDim,
    dim: o.backbone.dim,
    depth: Math.min(2, o.backbone.numLayers),
    numHeads: o.backbone.numHeads,
    posterior: 'sigma',
    cSigma: R.tokenizer.cSigma,
    klWeight: R.tokenizer.klWeight,
    seed: o.seed,
  });
  let model: LatentLM | null = null;
  try {
    const images = o.data.train.images;
    {
      const rng = new Rng(o.seed + 1);
      const opt = new AdamW(paramGroups(vae), { beta1: 0.9, beta2: 0.99, weightDecay: 0.01 });
      const lr = warmupCosine({ peak: R.tokenizer.lr, warmup: Math.min(50, Math.ceil(o.tokenizerSteps / 10)), total: o.tokenizerSteps });
      try {
        for (let s = 1; s <= o.tokenizerSteps; s++) {
          const s0 = performance.now();
          const x = tf.tidy(() => stack(Array.from({ length: o.batchSize }, () => images[rng.int(0, images.length)]!)));
          const { loss, grads } = valueAndGrads(vae, () => vae.loss(x, rng).loss);
          clipGradNorm(grads, 1).dispose();
          opt.setLr(lr(s - 1));
          opt.step(grads);
          const v = loss.dataSync()[0] as number;
          tf.dispose([x, loss, ...grads.values()]);
          hooks.step('latentlm sigma-VAE', s, o.tokenizerSteps, finite('latentlm sigma-VAE', s, v), performance.now() - s0);
          await hooks.yieldToPage();
        }
      } finally {
        opt.dispose();
      }
    }

    // posterior means of the training images, once; z is re-drawn at every step
    const N = vae.numTokens;
    const C = latentDim;
    const encodeMeans = (ims: readonly Float32Array[]): Float32Array[] => {
      const out: Float32Array[] = [];
      for (let i = 0; i < ims.length; i += CHUNK) {
        const x = stack(ims.slice(i, i + CHUNK));
        const p = vae.encode(x);
        out.push(...unstack(p.mu));
        tf.dispose([x, p.mu]);
      }
      return out;
    };
    const mus = encodeMeans(images);
    const sampleZ = (mu: Float32Array, rng: Rng): Float32Array => {
      const sigma = (rng.normal() * R.tokenizer.cSigma) / 0.8;
      return Float32Array.from(mu, (m) => m + sigma * rng.normal());
    };

    // --- vocabulary and sequences
    const tok = WordTokenizer.fromText([...o.data.train.captions, ...o.data.evalCaptions], { specialTokens: SPECIALS });
    const [PAD, BOS, EOS, , NULL, BOD, EOD, LAT] = SPECIALS.map((t) => tok.specialId(t)) as number[];
    const captionIds = o.data.train.captions.map((c) => tok.encode(c));
    const maxWords = Math.max(1, ...captionIds.map((c) => c.length), ...o.data.evalCaptions.map((c) => tok.encode(c).length));
    const B = R.backbone;
    const cfg = latentlmConfig({
      model: {
        vocabSize: tok.vocabSize,
        latentDim: C,
        dim: o.backbone.dim,
        numLayers: o.backbone.numLayers,
        numHeads: o.backbone.numHeads,
        diffusionDepth: B.diffusionDepth,
        dropout: B.dropout,
        imagePositions: B.imagePositions ? N : 0,
        maxSeqLen: maxWords + N + 4,
        bodId: BOD!,
        eodId: EOD!,
        latId: LAT!,
        padId: PAD!,
        seed: o.seed,
      },
      diffusion: {
        headSteps: R.sampling.headSteps,
        cfgScale: R.sampling.cfgScale,
        lambdaMinClipped: R.sampling.lambdaMinClipped,
        condDropout: R.condDropout,
        batchMul: B.batchMul,
        predictionType: B.predictionType,
      },
      train: {
        steps: o.backboneSteps,
        batchSize: o.batchSize,
        lr: B.lr,
        weightDecay: B.weightDecay,
        warmupSteps: Math.min(100, Math.ceil(o.backboneSteps * B.warmupFraction)),
      },
    });
    model = new LatentLM(cfg.model);
    const lm = model;
    {
      // latents standardised with the statistics of the first batch of sampled z
      const r0 = new Rng(o.seed + 2);
      const first = Array.from({ length: Math.min(32, mus.length) }, (_, i) => sampleZ(mus[i]!, r0));
      const all = Float32Array.from(first.flatMap((z) => Array.from(z)));
      let mean = 0;
      for (const v of all) mean += v;
      mean /= all.length;
      let v2 = 0;
      for (const v of all) v2 += (v - mean) ** 2;
      lm.setLatentStats({ shift: -mean, scale: 1 / Math.sqrt(v2 / all.length) });
    }
    const { shift, scale } = lm.latentStats();
    const imageSpan = [BOD!, ...Array<number>(N).fill(LAT!), EOD!];
    const example = (rng: Rng): MixedSequence => {
      const i = rng.int(0, images.length);
      const z = sampleZ(mus[i]!, rng).map((v) => (v + shift) * scale);
      if (rng.uniform() < o.captionFraction) {
        const tokens = [BOS!, ...imageSpan, ...captionIds[i]!, EOS!];
        const start = 1 + imageSpan.length;
        return { tokens, latents: z, lossMask: tokens.map((_, j) => (j >= start ? 1 : 0)) };
      }
      const prompt = rng.uniform() < cfg.diffusion.condDropout ? [NULL!] : captionIds[i]!;
      const tokens = [BOS!, ...prompt, ...imageSpan];
      const start = 1 + prompt.length + 1;
      return { tokens, latents: z, lossMask: tokens.map((_, j) => (j >= start ? 1 : 0)) };
    };

    // --- stage 2: the backbone and diffusion head
    const schedule = new NoiseSchedule({ numTrainTimesteps: cfg.diffusion.numTrainTimesteps });
    {
      const t = cfg.train;
      const rng = new Rng(o.seed + 3);
      const opt = new AdamW(paramGroups(lm), { beta1: t.beta1, beta2: t.beta2, weightDecay: t.weightDecay });
      const lr = warmupCosine({ peak: t.lr, warmup: t.warmupSteps, total: t.steps });
      try {
        for (let s = 1; s <= t.steps; s++) {
          const s0 = performance.now();
          const batch = buildMixedBatch(
            Array.from({ length: t.batchSize }, () => example(rng)),
            lm.config,
          );
          const res = latentTrainStep(lm, opt, batch, { schedule, diffusion: cfg.diffusion, rng, lr: lr(s - 1), gradClip: t.gradClip });
          hooks.step('latentlm backbone', s, t.steps, finite('latentlm backbone', s, res.loss), performance.now() - s0);
          await hooks.yieldToPage();
        }
      } finally {
        opt.dispose();
      }
    }

    const pc = latentParameterCount(lm.config);
    const wordIds = Array.from({ length: tok.vocabSize - SPECIALS.length }, (_, k) => SPECIALS.length + k);
    const decodeImages = (zStd: Float32Array, n: number): Float32Array[] =>
      tf.tidy(() => unstack(vae.decode(lm.denormalizeLatents(tf.tensor3d(zStd, [n, N, C]))).clipByValue(0, 1)));
    const A = R.sampling;

    return {
      name: 'latentlm-sigma-vae',
      tokensPerImage: N,
      description: `sigma-VAE (C_sigma ${R.tokenizer.cSigma}): ${S} px -> ${R.grid}x${R.grid} latents of ${C} dims; next-token diffusion head (${B.diffusionDepth} adaLN blocks, DPM-Solver++ ${A.headSteps} steps, CFG ${A.cfgScale}: head evaluations count the conditional and unconditional passes)`,
      parameterCounts: { tokenizer: vae.numParameters(), backbone: pc.backbone + pc.embeddings, head: pc.head },
      async reconstruct(ims) {
        const mu = encodeMeans(ims);
        const out: Float32Array[] = [];
        for (let i = 0; i < mu.length; i += CHUNK) {
          const part = mu.slice(i, i + CHUNK);
          const z = Float32Array.from(part.flatMap((m) => Array.from(m)));
          out.push(...tf.tidy(() => unstack(vae.decode(tf.tensor3d(z, [part.length, N, C])).clipByValue(0, 1))));
        }
        return out;
      },
      async generate(captions, g) {
        const w = g.cfgScale ?? A.cfgScale;
        const tau = g.temperature ?? A.temperature;
        const out: Float32Array[] = [];
        for (let i = 0; i < captions.length; i += CHUNK) {
          const part = captions.slice(i, i + CHUNK);
          const res = latentGenerate(lm, {
            prompts: part.map((c) => ({ tokens: [BOS!, ...tok.encode(c), BOD!] })),
            uncondPrompts: w === 1 ? undefined : part.map(() => ({ tokens: [BOS!, NULL!, BOD!] })),
            schedule,
            headSteps: A.headSteps,
            predictionType: B.predictionType,
            cfgScale: w,
            lambdaMinClipped: A.lambdaMinClipped,
            noiseScale: tau,
            spanLength: N,
            maxNewTokens: N + 1,
            stopAfterSpan: true,
            seed: g.seed + i,
          });
          out.push(...decodeImages(Float32Array.from(res.spans.flatMap((s) => Array.from(s[0]!))), part.length));
          await hooks.yieldToPage();
        }
        // per image: the prompt's forward, then one step per fed-back latent (the last is not fed back)
        return { images: out, backboneStepsPerImage: N, headEvalsPerImage: N * A.headSteps * (w === 1 ? 1 : 2) };
      },
      async caption(ims, c) {
        const mu = encodeMeans(ims);
        const out: string[] = [];
        for (let i = 0; i < mu.length; i += CHUNK) {
          const part = mu.slice(i, i + CHUNK);
          const res = latentGenerate(lm, {
            prompts: part.map((m) => ({ tokens: [BOS!, ...imageSpan], latents: m.map((v) => (v + shift) * scale) })),
            schedule,
            headSteps: 1,
            maxNewTokens: maxWords + 1,
            stopIds: [EOS!],
            allowedIds: [EOS!, ...wordIds],
            seed: c.seed + i,
          });
          out.push(
            ...res.outputs.map((r) =>
              tok.decode(
                Array.from(r.tokens).filter((t) => t !== EOS),
                { skipSpecial: true },
              ),
            ),
          );
          await hooks.yieldToPage();
        }
        return out;
      },
      dispose() {
        lm.dispose();
        vae.dispose();
      },
    };
  } catch (e) {
    model?.dispose();
    vae.dispose();
    throw e;
  }
}

const ARMS: Record<ArmName, { paper: string; build: (o: ArmBudget, hooks: RunHooks) => Promise<ImageTokenArm> }> = {
  'liquid-vq': { paper: 'Liquid: VQ codes + softmax', build: liquidArm },
  'latentlm-sigma-vae': { paper: 'LatentLM: sigma-VAE latents + diffusion head', build: latentArm },
};

// ---------------------------------------------------------------------------------------------
// measuring (imageEval.ts evaluateArm), in memory

/** The agreement below which a tokenizer does not read back well enough to judge its downstream arm. */
const AGREEMENT_FLOOR = 0.95;

interface ArmEvaluation {
  arm: string;
  description: string;
  tokensPerImage: number;
  generationScoreSeen: number;
  genShapeSeen: number;
  genColourSeen: number;
  genSizeSeen: number;
  genPositionSeen: number;
  generationScoreHeldOut: number;
  generationCeilingHeldOut: number;
  genShapeHeldOut: number;
  genColourHeldOut: number;
  frechetSeen: number;
  captionAccuracySeen: number;
  captionAccuracyHeldOut: number;
  captionCeilingHeldOut: number;
  captionParsedSeen: number;
  captionTokenF1Seen: number;
  reconPsnr: number;
  reconAnalyzerAgreement: number;
  backboneStepsPerImage: number;
  headEvalsPerImage: number;
  generateMsPerImage: number;
  trainSeconds: number;
  tokenizerParams: number;
  backboneParams: number;
  headParams: number;
}

/** Peak signal-to-noise ratio of images in [0, 1], over the whole set (imageEval.ts psnr). */
function psnr(a: Float32Array[], b: Float32Array[]): number {
  let se = 0;
  let n = 0;
  for (const [i, x] of a.entries()) {
    const y = b[i]!;
    if (y.length !== x.length) throw new Error(`psnr: image ${i} has ${y.length} values, expected ${x.length}`);
    for (let j = 0; j < x.length; j++) se += (x[j]! - y[j]!) ** 2;
    n += x.length;
  }
  return -10 * Math.log10(se / n);
}

/** One line for a sample grid: what the analyzer saw, and which attributes failed (imageEval.ts verdict). */
function verdict(p: GenerationScore['pairs'][number]): string {
  const seen = p.detected.map((d) => `${d.colour} ${d.shape}`).join(', ') || 'nothing';
  if (p.match.overall) return `ok: ${seen}`;
  const bad = Object.entries(p.match)
    .filter(([k, v]) => k !== 'overall' && v === false)
    .map(([k]) => k);
  return `saw ${seen} (${bad.join(', ')} wrong)`;
}

async function evaluateArm(
  name: ArmName,
  data: EvalSet,
  budget: ArmBudget,
  hooks: RunHooks,
): Promise<{ e: ArmEvaluation; grids: ImageGrid[] }> {
  const t0 = performance.now();
  const seed = budget.seed;
  hooks.log(`${name} (${ARMS[name].paper}): training the tokenizer, then the backbone`);
  const arm = await ARMS[name].build(budget, hooks);
  const trainSeconds = (performance.now() - t0) / 1000;
  try {
    hooks.log(`${name}: trained in ${trainSeconds.toFixed(1)} s; measuring reconstruction, generation and captions`);
    const analyzer = new ShapeAnalyzer(data.config);
    const originals = [...data.seen.images, ...data.heldOut.images];
    const recon = await arm.reconstruct(originals);
    const reconPsnr = psnr(originals, recon);
    const agree = analyzerAgreement(originals, recon, analyzer);
    if (agree < AGREEMENT_FLOOR)
      hooks.log(
        `WARNING ${name}: tokenizer reconstruction agreement ${agree.toFixed(3)} < ${AGREEMENT_FLOOR}: its downstream figures cannot judge the method`,
      );
    await hooks.yieldToPage();

    const t1 = performance.now();
    const genSeen = await arm.generate(data.seen.captions, { seed });
    const genHeld = await arm.generate(data.heldOut.captions, { seed: seed + 1 });
    const generateMsPerImage = (performance.now() - t1) / (data.seen.captions.length + data.heldOut.captions.length);
    const score = (set: PromptSet, images: Float32Array[]) =>
      generationScore(
        set.captions.map((caption, i) => ({ caption, image: images[i]! })),
        analyzer,
      );
    const sSeen = score(data.seen, genSeen.images);
    const sHeld = score(data.heldOut, genHeld.images);
    const frechetSeen = frechetDistance(data.seen.images, genSeen.images, { imageSize: data.imageSize, seed: 0 });
    await hooks.yieldToPage();

    const captionSet = async (set: PromptSet) => {
      const caps = await arm.caption(set.images, { seed });
      const s = captionScore(caps.map((caption, i) => ({ caption, scene: set.scenes[i]! })));
      return { s, f1: caps.reduce((a, c, i) => a + tokenF1(c, set.references[i]!), 0) / caps.length };
    };
    const cSeen = await captionSet(data.seen);
    const cHeld = await captionSet(data.heldOut);

    const S = data.imageSize;
    const k = Math.min(16, data.seen.captions.length);
    const sampleGrid = (set: PromptSet, images: Float32Array[], sc: GenerationScore, what: string): ImageGrid => ({
      title: `${name}: generated from ${what} prompts (seed ${seed})`,
      cols: 4,
      cells: images.slice(0, k).map((image, i) => ({
        image,
        size: S,
        lines: [set.captions[i]!, verdict(sc.pairs[i]!)],
        ok: sc.pairs[i]!.match.overall,
      })),
    });
    const reconCells: GridCell[] = originals.slice(0, 8).flatMap((image, i) => [
      { image, size: S, lines: ['original'] },
      { image: recon[i]!, size: S, lines: [`${name} reconstruction`] },
    ]);
    const grids: ImageGrid[] = [
      sampleGrid(data.seen, genSeen.images, sSeen, 'seen'),
      sampleGrid(data.heldOut, genHeld.images, sHeld, 'held-out'),
      { title: `${name}: tokenizer round trip on seen images`, cols: 4, cells: reconCells },
    ];
    const a = (s: GenerationScore, key: keyof GenerationScore['attributes']) => s.attributes[key].accuracy;
    return {
      grids,
      e: {
        arm: name,
        description: arm.description,
        tokensPerImage: arm.tokensPerImage,
        generationScoreSeen: sSeen.overall,
        genShapeSeen: a(sSeen, 'objects'),
        genColourSeen: a(sSeen, 'colour'),
        genSizeSeen: a(sSeen, 'size'),
        genPositionSeen: a(sSeen, 'position'),
        generationScoreHeldOut: sHeld.overall,
        generationCeilingHeldOut: data.ceilings.generationHeldOut,
        genShapeHeldOut: a(sHeld, 'objects'),
        genColourHeldOut: a(sHeld, 'colour'),
        frechetSeen,
        captionAccuracySeen: cSeen.s.overall,
        captionAccuracyHeldOut: cHeld.s.overall,
        captionCeilingHeldOut: data.ceilings.captionHeldOut,
        captionParsedSeen: cSeen.s.parsed,
        captionTokenF1Seen: cSeen.f1,
        reconPsnr,
        reconAnalyzerAgreement: agree,
        backboneStepsPerImage: genSeen.backboneStepsPerImage,
        headEvalsPerImage: genSeen.headEvalsPerImage,
        generateMsPerImage,
        trainSeconds,
        tokenizerParams: arm.parameterCounts.tokenizer,
        backboneParams: arm.parameterCounts.backbone,
        headParams: arm.parameterCounts.head,
      },
    };
  } finally {
    arm.dispose();
  }
}

/** The CLI table's rows (imageTokens.ts ROWS) and which direction is better. */
const ROWS: { key: Exclude<keyof ArmEvaluation, 'arm' | 'description'>; label: string; better: 'higher' | 'lower' | null }[] = [
  { key: 'generationScoreSeen', label: 'generation score, seen prompts (all attributes)', better: 'higher' },
  { key: 'genShapeSeen', label: '  shape correct (seen)', better: 'higher' },
  { key: 'genColourSeen', label: '  colour correct (seen)', better: 'higher' },
  { key: 'genSizeSeen', label: '  size correct (seen)', better: 'higher' },
  { key: 'genPositionSeen', label: '  position correct (seen)', better: 'higher' },
  { key: 'generationScoreHeldOut', label: 'generation score, held-out prompts', better: 'higher' },
  { key: 'generationCeilingHeldOut', label: '  memoriser ceiling (best training image)', better: null },
  { key: 'genShapeHeldOut', label: '  shape correct (held-out)', better: 'higher' },
  { key: 'genColourHeldOut', label: '  colour correct (held-out)', better: 'higher' },
  { key: 'frechetSeen', label: 'Fréchet distance to real images (seen prompts)', better: 'lower' },
  { key: 'captionAccuracySeen', label: 'caption accuracy, seen images', better: 'higher' },
  { key: 'captionAccuracyHeldOut', label: 'caption accuracy, held-out images', better: 'higher' },
  { key: 'captionCeilingHeldOut', label: '  memoriser ceiling (best training caption)', better: null },
  { key: 'captionParsedSeen', label: '  captions in the caption grammar (seen)', better: 'higher' },
  { key: 'captionTokenF1Seen', label: 'caption token F1 (seen)', better: 'higher' },
  { key: 'reconPsnr', label: 'tokenizer reconstruction PSNR (dB)', better: 'higher' },
  { key: 'reconAnalyzerAgreement', label: 'reconstructions the analyzer reads like the original', better: 'higher' },
  { key: 'tokensPerImage', label: 'tokens per image', better: null },
  { key: 'backboneStepsPerImage', label: 'backbone forward steps per image', better: 'lower' },
  { key: 'headEvalsPerImage', label: 'head evaluations per image', better: 'lower' },
  { key: 'generateMsPerImage', label: 'generation wall time per image (ms)', better: 'lower' },
  { key: 'trainSeconds', label: 'training wall time (s)', better: 'lower' },
  { key: 'tokenizerParams', label: 'tokenizer parameters', better: null },
  { key: 'backboneParams', label: 'backbone parameters', better: null },
  { key: 'headParams', label: 'output head parameters', better: null },
];

/** Index of the best value (higher or lower is better), or null when the best is shared. */
function bestIndex(vals: readonly number[], better: 'higher' | 'lower'): number | null {
  let best = 0;
  for (let i = 1; i < vals.length; i++) if (better === 'higher' ? vals[i]! > vals[best]! : vals[i]! < vals[best]!) best = i;
  return vals.filter((v) => v === vals[best]).length > 1 ? null : best;
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

export const imageTokens: PageExperiment = {
  id: 'lab.image-tokens',
  title: 'Image tokens: discrete (Liquid) vs continuous (LatentLM)',
  claim:
    'Discrete image tokens (Liquid: VQ codes + softmax) vs continuous ones (LatentLM: sigma-VAE latents + diffusion head) at equal data, backbone and budget: which wins on generation, understanding, reconstruction and cost.',
  presets: Object.fromEntries(Object.entries(IMAGE_TOKENS_PRESETS).map(([k, v]) => [k, v.description])),
  async run(presetName, seed, hooks, overrides = {}) {
    const base = IMAGE_TOKENS_PRESETS[presetName];
    if (!base)
      throw new Error(`lab.image-tokens: unknown preset "${presetName}"; expected ${Object.keys(IMAGE_TOKENS_PRESETS).join(', ')}`);
    const p: ImageTokensPreset = {
      ...base,
      tokenizerSteps: overrides.steps ?? base.tokenizerSteps,
      backboneSteps: overrides.steps ?? base.backboneSteps,
    };
    const t0 = performance.now();
    const tensorsBefore = tf.memory().numTensors;
    const data = loadData(p, seed);
    hooks.log(
      `data: ${p.trainImages} train Shapes images (${data.trainKeys} distinct scenes), ${p.evalImages} seen + ${p.evalImages} held-out prompts, ${p.imageSize} px, up to ${p.maxObjects} object(s); backbone ${p.numLayers}x${p.dim}, ${p.numHeads} heads; memoriser ceilings on held-out: generation ${data.ceilings.generationHeldOut.toFixed(3)}, caption ${data.ceilings.captionHeldOut.toFixed(3)}`,
    );
    await hooks.yieldToPage();
    const budget: ArmBudget = {
      data,
      backbone: { dim: p.dim, numLayers: p.numLayers, numHeads: p.numHeads },
      tokenizerSteps: p.tokenizerSteps,
      backboneSteps: p.backboneSteps,
      batchSize: p.batchSize,
      captionFraction: p.captionFraction,
      imagePositions: p.imagePositions,
      seed,
    };
    const results: ArmEvaluation[] = [];
    const grids: ImageGrid[] = [];
    for (const name of p.arms) {
      const r = await evaluateArm(name, data, budget, hooks);
      results.push(r.e);
      grids.push(...r.grids);
      hooks.log(
        `${name}: generation ${f3(r.e.generationScoreSeen)} seen / ${f3(r.e.generationScoreHeldOut)} held-out; captions ${f3(r.e.captionAccuracySeen)} / ${f3(r.e.captionAccuracyHeldOut)}; reconstruction agreement ${f3(r.e.reconAnalyzerAgreement)}`,
      );
    }
    const seconds = (performance.now() - t0) / 1000;
    // every arm is disposed by now: what is left is a leak
    const tensorsLeaked = tf.memory().numTensors - tensorsBefore;
    if (tensorsLeaked !== 0) hooks.log(`WARNING lab.image-tokens: ${tensorsLeaked} tensors outlived the run`);

    const names = results.map((r) => r.arm);
    const wins: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, []]));
    const rows: Table['rows'] = ROWS.map((row) => {
      const vals = results.map((r) => r[row.key] as number);
      let winner = '';
      const i = row.better && names.length > 1 && vals.every(Number.isFinite) ? bestIndex(vals, row.better) : null;
      if (row.better && i !== null) {
        winner = names[i]!;
        if (!row.label.startsWith('  ')) wins[winner]!.push(row.label);
      } else if (row.better && names.length > 1 && vals.some(Number.isFinite)) winner = 'tie';
      // NaN (an attribute no prompt asked for) shows as a dash
      return [row.label, ...vals.map((v) => (Number.isFinite(v) ? v : null)), winner];
    });
    const n = data.seen.captions.length;
    const broken = results.filter((r) => r.reconAnalyzerAgreement < AGREEMENT_FLOOR);
    const metrics: Record<string, number> = { seconds, prompts_per_set: n, tensors_leaked: tensorsLeaked };
    for (const r of results) for (const row of ROWS) metrics[`${r.arm}.${row.key}`] = r[row.key] as number;

    const tables: Table[] = [
      {
        title: `Discrete VQ codes vs continuous sigma-VAE latents (same data, backbone and budget)`,
        columns: ['metric', ...names, 'better'],
        rows,
        note:
          `Seen prompts: ${n} new renders of scenes present among the ${p.trainImages} training images; held-out prompts: ${data.heldOut.captions.length} scenes no training image has (val split and held-out (shape, colour) pairs). ` +
          `The memoriser ceiling is the score of the best-matching training image (or caption): a held-out score above it is composition, at or below it may be retrieval. One seed's binomial standard error is at most ${(0.5 / Math.sqrt(n)).toFixed(3)} per score. ` +
          (broken.length
            ? `⚠ Reconstruction agreement below ${AGREEMENT_FLOOR} (${broken.map((r) => `${r.arm} ${f3(r.reconAnalyzerAgreement)}`).join(', ')}): that tokenizer does not read back, so its generation and caption figures cannot judge the method. `
            : '') +
          'Liquid claims a VQ tokenizer plus plain next-token prediction suffices and scales; LatentLM claims continuous latents with a diffusion head beat discrete codes on quality at fewer decoding steps. The two papers never compare on the same data; this table does, at toy scale.',
      },
      {
        title: 'Where the page deviates from `pnpm lab run lab.image-tokens`',
        columns: ['aspect', 'CLI', 'page'],
        rows: [
          [
            'arms',
            "each paper package's imageTokenArm (src/experiments)",
            'the same recipes re-composed in memory from the main entries (apps/web/src/imageTokens.ts)',
          ],
          [
            'recipe',
            "each arm's recipe schema defaults; quick adds backbone.imagePositions to both arms",
            'the same schemas (liquidArmRecipe / latentlmArmRecipe from the main entries), and the same imagePositions per preset',
          ],
          [
            'checkpoints',
            'every 100 steps into the run folder; a finished phase is loaded, not rerun',
            'none: everything in memory, a reload starts over',
          ],
          ['training loop', "core's trainLoop", 'the same steps and random streams in a plain loop that yields to the page'],
          ['sample grids', 'PNG files (resvg)', 'canvases on the page (the same 16 seen, 16 held-out and 8 round trips per arm)'],
          [
            'backend',
            'tfjs-node where it loads, else wasm',
            `the backend picked on the page${presetName === 'quick-liquid' ? '; quick-liquid runs the Liquid arm only' : ''}`,
          ],
          ['wall times', 'Node on a 2-core machine', 'this browser tab (not comparable)'],
        ],
        note: "Same seed, same data, the same random streams and order of draws. Checked at the tiny preset on wasm (seed 0): every score, count and ceiling equals the CLI's; PSNR and Fréchet distance agree to 1e-8 (float rounding between Node's and the browser's kernels). Over the quick preset's 2,000 steps per arm and its sampling such last-bit differences grow: expect quick scores near the CLI's, not equal to them.",
      },
    ];
    const summary = [
      `At the \`${presetName}\` preset (${p.imageSize} px Shapes, ${p.numLayers}x${p.dim} backbone, ${p.tokenizerSteps} tokenizer + ${p.backboneSteps} backbone steps per arm), ${seconds.toFixed(1)} s:`,
      ...results.map(
        (r) =>
          `${r.arm}: generation ${f3(r.generationScoreSeen)} seen / ${f3(r.generationScoreHeldOut)} held-out (memoriser ceiling ${f3(r.generationCeilingHeldOut)}); captions ${f3(r.captionAccuracySeen)} seen / ${f3(r.captionAccuracyHeldOut)} held-out (ceiling ${f3(r.captionCeilingHeldOut)}); reconstruction agreement ${f3(r.reconAnalyzerAgreement)}.`,
      ),
      ...(names.length > 1
        ? names.map((nm) => `${nm} is better on: ${wins[nm]!.length ? wins[nm]!.join('; ') : 'nothing measured here'}.`)
        : []),
    ].join(' ');
    return { metrics, tables, grids, summary };
  },
};
