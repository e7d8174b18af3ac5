/**
 * LatentLM's arm of the lab's "Image tokens: discrete vs continuous" comparison (the
 * `ImageTokenArmFactory` contract of @mmlm/core): continuous image tokens from a sigma-VAE (paper
 * §2.3) predicted by next-token diffusion (§2.2) on one causal Transformer that also reads and
 * writes caption words (§2.4, mixed sequences with <BOD> / <EOD>).
 *
 * - Tokenizer: a ViT sigma-VAE, S px -> a 4x4 grid of latent vectors (patch S/4; 8 dims at 16 px,
 *   16 at 32 px), mean-only encoder, z = mu + sigma eps with one sigma ~ N(0, (0.75/0.8)^2) per image.
 * - Backbone: LatentLM of the lab's size (RMSNorm, SwiGLU, RoPE) with a 3-block adaLN-Zero diffusion
 *   head predicting v (recipe default; the reference's default is eps); latents standardised with
 *   first-batch statistics; L = L_LM + 5 L_Diff, 4 noise draws per latent; the sampled z (not mu) is
 *   both input and diffusion target (reference train_hf.py).
 * - Examples: text-to-image [<bos> caption <BOD> z_1..z_16 <EOD>] (10% of captions replaced by
 *   <null> for classifier-free guidance; loss on the image span and <EOD>) and image-to-text
 *   [<bos> <BOD> z_1..z_16 <EOD> caption <eos>] (loss on the caption), the latter with probability
 *   `captionFraction`.
 * - Generation: KV-cached backbone steps, DPM-Solver++(2M) with 10 head steps per latent, CFG 2 on
 *   the head's output (v, or eps with predictionType 'epsilon') against the <null> prompt. Captioning: greedy words from the posterior means.
 *
 * Both training stages run in core's trainLoop with checkpoints under `opts.dir`, so an interrupted
 * run resumes where it stopped and a finished one is loaded without training.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW, clipGradNorm, latestCheckpoint, paramGroups, Rng, tf, trainLoop, valueAndGrads, warmupCosine } from '@mmlm/core';
import type { ImageTokenArm, ImageTokenArmFactory, ImageTokenArmOptions, ProgressHandle } from '@mmlm/core/experiment';
import { WordTokenizer } from '@mmlm/data';
import { type LatentLMConfig, latentlmConfig, parameterCount } from '../config.js';
import { LatentLM } from '../model.js';
import { generate } from '../sample.js';
import { NoiseSchedule } from '../schedule.js';
import { buildMixedBatch, type MixedSequence, trainStep } from '../train.js';
import { ImageVAE } from '../vae.js';
import { type LatentLMArmRecipe, type LatentLMArmRecipeInput, LatentLMArmRecipeSchema, latentlmArmRecipe } from './recipe.js';

/** Fixed settings of the arm (not part of the recipe). */
const ARM_SETTINGS = {
  /** Latent grid side: 16 continuous tokens per image. */
  grid: 4,
  condDropout: 0.1,
  checkpointEvery: 100,
} as const;

const SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>', '<null>', '<BOD>', '<EOD>', '<LAT>'] as const;
/** Images and captions processed per tensor batch at inference. */
const CHUNK = 64;

function positiveInt(what: string, v: unknown): void {
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1))
    throw new Error(`imageTokenArm: ${what} must be an integer >= 1, got ${v}`);
}

function validate(o: ImageTokenArmOptions): void {
  const d = o.data;
  positiveInt('data.imageSize', d?.imageSize);
  if (d.imageSize % ARM_SETTINGS.grid !== 0)
    throw new Error(`imageTokenArm: data.imageSize must be divisible by ${ARM_SETTINGS.grid} (the latent grid), got ${d.imageSize}`);
  const n = d.train?.images?.length ?? 0;
  if (n === 0) throw new Error('imageTokenArm: data.train.images must hold at least one image, got 0');
  if (d.train.captions?.length !== n)
    throw new Error(`imageTokenArm: data.train.captions must have one caption per image (${n}), got ${d.train.captions?.length}`);
  const size = d.imageSize * d.imageSize * 3;
  d.train.images.forEach((im, i) => {
    if (!(im instanceof Float32Array) || im.length !== size)
      throw new Error(
        `imageTokenArm: data.train.images[${i}] must be a Float32Array of ${size} values (${d.imageSize}x${d.imageSize}x3), got ${im?.length}`,
      );
  });
  if (!Array.isArray(d.evalCaptions)) throw new Error(`imageTokenArm: data.evalCaptions must be an array, got ${typeof d.evalCaptions}`);
  positiveInt('backbone.dim', o.backbone?.dim);
  positiveInt('backbone.numLayers', o.backbone.numLayers);
  positiveInt('backbone.numHeads', o.backbone.numHeads);
  positiveInt('tokenizerSteps', o.tokenizerSteps);
  positiveInt('backboneSteps', o.backboneSteps);
  positiveInt('batchSize', o.batchSize);
  if (o.backboneBatchSize !== undefined) positiveInt('backboneBatchSize', o.backboneBatchSize);
  if (!(typeof o.captionFraction === 'number' && o.captionFraction >= 0 && o.captionFraction <= 1))
    throw new Error(`imageTokenArm: captionFraction must be in [0, 1], got ${o.captionFraction}`);
  if (!Number.isInteger(o.seed)) throw new Error(`imageTokenArm: seed must be an integer, got ${o.seed}`);
  if (typeof o.dir !== 'string' || o.dir.length === 0)
    throw new Error(`imageTokenArm: dir must be a folder path, got ${JSON.stringify(o.dir)}`);
}

/**
 * A checkpoint folder may only be resumed by the run that wrote it: a different config (data,
 * vocabulary, sizes, steps) would silently load mismatched weights (e.g. permuted word ids).
 */
function checkResumable(dir: string, config: unknown): void {
  const latest = latestCheckpoint(dir);
  if (!latest) return;
  const saved = (JSON.parse(readFileSync(join(latest, 'state.json'), 'utf8')) as { config?: unknown }).config;
  if (JSON.stringify(saved ?? null) !== JSON.stringify(config))
    throw new Error(
      `imageTokenArm: ${dir} holds checkpoints of a different run (its config differs from this one's: data, vocabulary, sizes or steps); use an empty dir`,
    );
}

/** A cheap fingerprint of the training images and captions (part of the checkpoint config). */
function fingerprint(images: readonly Float32Array[], captions: readonly string[]): number {
  let h = 0;
  for (const [i, im] of images.entries()) for (let j = i % 7; j < im.length; j += 97) h = (h * 31 + Math.round(im[j]! * 255)) % 2147483647;
  for (const c of captions) for (let j = 0; j < c.length; j++) h = (h * 31 + c.charCodeAt(j)) % 2147483647;
  return h;
}

/** Images [B, S, S, 3] of a list of HWC arrays. */
function stack(images: readonly Float32Array[], S: number, what: string): tf.Tensor4D {
  const n = S * S * 3;
  const buf = new Float32Array(images.length * n);
  images.forEach((im, i) => {
    if (!(im instanceof Float32Array) || im.length !== n)
      throw new Error(`imageTokenArm.${what}: image ${i} must be a Float32Array of ${n} values (${S}x${S}x3), got ${im?.length}`);
    buf.set(im, i * n);
  });
  return tf.tensor4d(buf, [images.length, S, S, 3]);
}

function unstack(t: tf.Tensor): Float32Array[] {
  const d = t.dataSync() as Float32Array;
  const B = t.shape[0] as number;
  const n = d.length / B;
  return Array.from({ length: B }, (_, i) => d.slice(i * n, (i + 1) * n));
}

function omitLatentDim<T extends { latentDim?: unknown }>(t: T): Omit<T, 'latentDim'> {
  const { latentDim: _l, ...rest } = t;
  return rest;
}

/** Progress for trainLoop: the lab's handle when given, otherwise nothing. */
function progressOf(o: ImageTokenArmOptions, name: string, total: number): ProgressHandle | null {
  return o.progress ? o.progress(name, total) : null;
}

export const imageTokenArm: ImageTokenArmFactory = async (o: ImageTokenArmOptions): Promise<ImageTokenArm> => {
  validate(o);
  const recipe = latentlmArmRecipe(o.recipe);
  const S = o.data.imageSize;
  const A = { ...ARM_SETTINGS, ...recipe.tokenizer, ...recipe.sampling };
  const B = recipe.backbone;
  const patchSize = S / A.grid;
  const latentDim = recipe.tokenizer.latentDim ?? Math.min(16, Math.max(4, (patchSize * patchSize * 3) / 6));
  const log = o.log ?? (() => {});

  // --- stage 1: the sigma-VAE tokenizer
  const vae = new ImageVAE({
    imageSize: S,
    patchSize,
    latentDim,
    dim: recipe.tokenizer.dim ?? o.backbone.dim,
    depth: Math.min(2, o.backbone.numLayers),
    numHeads: o.backbone.numHeads,
    posterior: 'sigma',
    cSigma: recipe.tokenizer.cSigma,
    klWeight: recipe.tokenizer.klWeight,
    seed: o.seed,
  });
  let model: LatentLM | null = null;
  // each stage's seconds over every call (trainLoop keeps them in its checkpoints; null: not recorded)
  const stageSeconds: (number | null)[] = [];
  try {
    const images = o.data.train.images;
    {
      const rng = new Rng(o.seed + 1);
      const config = {
        tokenizer: vae.config,
        steps: o.tokenizerSteps,
        batchSize: o.batchSize,
        images: images.length,
        data: fingerprint(images, o.data.train.captions),
        // latentDim is in vae.config already; left out here so the keys of earlier runs still match
        settings: { ...ARM_SETTINGS, ...omitLatentDim(recipe.tokenizer) },
      };
      checkResumable(join(o.dir, 'tokenizer'), config);
      const opt = new AdamW(paramGroups(vae), { beta1: 0.9, beta2: 0.99, weightDecay: 0.01 });
      const lr = warmupCosine({
        peak: recipe.tokenizer.lr,
        warmup: Math.min(50, Math.ceil(o.tokenizerSteps / 10)),
        total: o.tokenizerSteps,
      });
      const prog = progressOf(o, 'sigma-VAE', o.tokenizerSteps);
      try {
        const r = await trainLoop({
          steps: o.tokenizerSteps,
          model: vae,
          optimizer: opt,
          rng,
          config,
          checkpointDir: join(o.dir, 'tokenizer'),
          checkpointEvery: A.checkpointEvery,
          resume: true,
          progress: 'none',
          name: 'latentlm sigma-VAE',
          log,
          lr: (s) => lr(s - 1),
          step: (s) => {
            const x = tf.tidy(() =>
              stack(
                Array.from({ length: o.batchSize }, () => images[rng.int(0, images.length)]!),
                S,
                'train',
              ),
            );
            const { loss, grads } = valueAndGrads(vae, () => vae.loss(x, rng).loss);
            clipGradNorm(grads, 1).dispose();
            opt.setLr(lr(s - 1));
            opt.step(grads);
            const v = loss.dataSync()[0] as number;
            tf.dispose([x, loss, ...grads.values()]);
            return v;
          },
          onStep: (s: number, loss: number) => prog?.tick(s, { loss }),
        });
        if (r.interrupted)
          throw new Error(`imageTokenArm: tokenizer training interrupted at step ${r.step}; run again to resume from ${o.dir}`);
        stageSeconds.push(r.trainSeconds);
      } finally {
        prog?.done();
        opt.dispose();
      }
    }

    // posterior means of the training images, once; z is re-drawn at every step
    const N = vae.numTokens;
    const C = latentDim;
    const encodeMeans = (ims: readonly Float32Array[], what: string): Float32Array[] => {
      const out: Float32Array[] = [];
      for (let i = 0; i < ims.length; i += CHUNK) {
        const x = stack(ims.slice(i, i + CHUNK), S, what);
        const p = vae.encode(x);
        out.push(...unstack(p.mu));
        tf.dispose([x, p.mu]);
      }
      return out;
    };
    const mus = encodeMeans(images, 'train');
    const sampleZ = (mu: Float32Array, rng: Rng): Float32Array => {
      const sigma = (rng.normal() * A.cSigma) / 0.8;
      return Float32Array.from(mu, (m) => m + sigma * rng.normal());
    };

    // --- vocabulary and sequences
    const tok = WordTokenizer.fromText([...o.data.train.captions, ...o.data.evalCaptions], { specialTokens: SPECIALS });
    const [PAD, BOS, EOS, , NULL, BOD, EOD, LAT] = SPECIALS.map((t) => tok.specialId(t)) as number[];
    const captionIds = o.data.train.captions.map((c) => tok.encode(c));
    const maxWords = Math.max(1, ...captionIds.map((c) => c.length), ...o.data.evalCaptions.map((c) => tok.encode(c).length));
    const cfg: LatentLMConfig = latentlmConfig({
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
        headSteps: A.headSteps,
        cfgScale: A.cfgScale,
        lambdaMinClipped: A.lambdaMinClipped,
        condDropout: A.condDropout,
        batchMul: B.batchMul,
        predictionType: B.predictionType,
      },
      train: {
        steps: o.backboneSteps,
        batchSize: o.backboneBatchSize ?? o.batchSize,
        lr: B.lr,
        weightDecay: B.weightDecay,
        warmupSteps: Math.min(100, Math.ceil(o.backboneSteps * B.warmupFraction)),
      },
    });
    model = new LatentLM(cfg.model);
    const lm = model;
    {
      const r0 = new Rng(o.seed + 2);
      const first = Array.from({ length: Math.min(32, mus.length) }, (_, i) => sampleZ(mus[i]!, r0));
      const all = Float32Array.from(first.flatMap((z) => Array.from(z)));
      let m = 0;
      for (const v of all) m += v;
      m /= all.length;
      let v2 = 0;
      for (const v of all) v2 += (v - m) ** 2;
      lm.setLatentStats({ shift: -m, scale: 1 / Math.sqrt(v2 / all.length) });
    }
    const { shift, scale } = lm.latentStats();
    {
      let m2 = 0;
      for (const mu of mus) for (const v of mu) m2 += v * v;
      log(
        `latentlm arm: ${images.length} images -> ${N} x ${C} latents, rms(mu) ${Math.sqrt(m2 / (mus.length * N * C)).toFixed(3)}, E|sigma| ${((A.cSigma / 0.8) * Math.sqrt(2 / Math.PI)).toFixed(3)}, standardisation shift ${shift.toFixed(3)} scale ${scale.toFixed(3)}`,
      );
    }
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
      // imagePositions joins the checkpoint key only when on, so the checkpoints of earlier runs still match
      const { imagePositions, ...modelKey } = cfg.model;
      const config = {
        model: imagePositions > 0 ? cfg.model : modelKey,
        train: cfg.train,
        diffusion: cfg.diffusion,
        captionFraction: o.captionFraction,
        words: tok.words,
      };
      checkResumable(join(o.dir, 'backbone'), config);
      const opt = new AdamW(paramGroups(lm), { beta1: t.beta1, beta2: t.beta2, weightDecay: t.weightDecay });
      const lr = warmupCosine({ peak: t.lr, warmup: t.warmupSteps, total: t.steps });
      const prog = progressOf(o, 'LatentLM', t.steps);
      try {
        const r = await trainLoop({
          steps: t.steps,
          model: lm,
          optimizer: opt,
          rng,
          rngs: lm.backbone.rngs(),
          config,
          checkpointDir: join(o.dir, 'backbone'),
          checkpointEvery: A.checkpointEvery,
          resume: true,
          progress: 'none',
          name: 'latentlm backbone',
          log,
          lr: (s) => lr(s - 1),
          step: (s) => {
            const batch = buildMixedBatch(
              Array.from({ length: t.batchSize }, () => example(rng)),
              lm.config,
            );
            const res = trainStep(lm, opt, batch, { schedule, diffusion: cfg.diffusion, rng, lr: lr(s - 1), gradClip: t.gradClip });
            return res.loss;
          },
          onStep: (s: number, loss: number) => prog?.tick(s, { loss }),
        });
        if (r.interrupted)
          throw new Error(`imageTokenArm: backbone training interrupted at step ${r.step}; run again to resume from ${o.dir}`);
        stageSeconds.push(r.trainSeconds);
      } finally {
        prog?.done();
        opt.dispose();
      }
    }

    const pc = parameterCount(lm.config);
    const wordIds = Array.from({ length: tok.vocabSize - SPECIALS.length }, (_, k) => SPECIALS.length + k);
    const decodeImages = (zStd: Float32Array, B: number): Float32Array[] =>
      tf.tidy(() => unstack(vae.decode(lm.denormalizeLatents(tf.tensor3d(zStd, [B, N, C]))).clipByValue(0, 1)));

    return {
      name: 'latentlm-sigma-vae',
      tokensPerImage: N,
      description: `sigma-VAE (C_sigma ${A.cSigma}): ${S} px -> ${A.grid}x${A.grid} latents of ${C} dims; ${B.imagePositions ? 'learned image-position embeddings, ' : ''}next-token diffusion head (${B.diffusionDepth} adaLN blocks, DPM-Solver++ ${A.headSteps} steps, CFG ${A.cfgScale}: head evaluations count the conditional and unconditional passes)`,
      parameterCounts: { tokenizer: vae.numParameters(), backbone: pc.backbone + pc.embeddings, head: pc.head },
      trainSeconds: stageSeconds.some((x) => x === null) ? null : stageSeconds.reduce<number>((t, x) => t + x!, 0),

      async reconstruct(ims) {
        const mu = encodeMeans(ims, 'reconstruct');
        const out: Float32Array[] = [];
        for (let i = 0; i < mu.length; i += CHUNK) {
          const part = mu.slice(i, i + CHUNK);
          const z = Float32Array.from(part.flatMap((m) => Array.from(m)));
          out.push(...tf.tidy(() => unstack(vae.decode(tf.tensor3d(z, [part.length, N, C])).clipByValue(0, 1))));
        }
        return out;
      },

      async generate(captions, g) {
        if (!Number.isInteger(g?.seed)) throw new Error(`imageTokenArm.generate: seed must be an integer, got ${g?.seed}`);
        const w = g.cfgScale ?? A.cfgScale;
        const tau = g.temperature ?? A.temperature;
        if (!(tau > 0)) throw new Error(`imageTokenArm.generate: temperature (the head's noise scale) must be > 0, got ${tau}`);
        if (!(w > 0)) throw new Error(`imageTokenArm.generate: cfgScale must be > 0, got ${w}`);
        const out: Float32Array[] = [];
        for (let i = 0; i < captions.length; i += CHUNK) {
          const part = captions.slice(i, i + CHUNK);
          const res = generate(lm, {
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
        }
        // per image: the prompt's forward, then one step per fed-back latent (the last is not fed back)
        return { images: out, backboneStepsPerImage: N, headEvalsPerImage: N * A.headSteps * (w === 1 ? 1 : 2) };
      },

      async caption(ims, c) {
        if (!Number.isInteger(c?.seed)) throw new Error(`imageTokenArm.caption: seed must be an integer, got ${c?.seed}`);
        const mu = encodeMeans(ims, 'caption');
        const out: string[] = [];
        for (let i = 0; i < mu.length; i += CHUNK) {
          const part = mu.slice(i, i + CHUNK);
          const res = generate(lm, {
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
};

export { type LatentLMArmRecipe, type LatentLMArmRecipeInput, LatentLMArmRecipeSchema, latentlmArmRecipe };
