/**
 * Building blocks shared by the LatentLM experiments: tokenizer training (sigma-VAE or the
 * learned-variance baseline), LatentLM training on mixed sequences with the reference recipe
 * (AdamW 0.9/0.98, weight decay 0.01, clip 1.0, warm-up then cosine), latent statistics, and
 * safetensors checkpoints that keep the latent standardisation with the weights.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdamW,
  clipGradNorm,
  loadModule,
  type Module,
  paramGroups,
  Rng,
  saveModule,
  tf,
  valueAndGrads,
  warmupCosine,
  writeFileAtomicSync,
} from '@mmlm/core';
import { seedCell as coreSeedCell, type ExperimentContext, type ExperimentResult, formatFixed, runSteps } from '@mmlm/core/experiment';
import { z } from 'zod';
import type { LatentLMConfig } from '../config.js';
import type { LatentLM } from '../model.js';
import { NoiseSchedule } from '../schedule.js';
import { buildMixedBatch, type MixedSequence, trainStep } from '../train.js';
import type { LatentTokenizer, Posterior } from '../vae.js';

interface TokenizerTrainOptions {
  steps: number;
  lr: number;
  warmup?: number;
  /** A training batch for step `step` (the caller owns the rng). */
  batch: (rng: Rng, step: number) => tf.Tensor;
  seed: number;
  /** The training phase's name, e.g. 'sigma/vae': its metrics are tagged `subrun: name` (one loss curve). */
  name: string;
  ctx: ExperimentContext;
}

/** Trains a tokenizer with AdamW (0.9, 0.99), clip 1.0, warm-up then cosine; returns the mean loss parts of the last 10% of steps. */
export function trainTokenizer(vae: LatentTokenizer & Module, o: TokenizerTrainOptions): { rec: number; kl: number } {
  const rng = new Rng(o.seed);
  const opt = new AdamW(paramGroups(vae), { beta1: 0.9, beta2: 0.99, weightDecay: 0.01 });
  const lr = warmupCosine({ peak: o.lr, warmup: o.warmup ?? Math.min(50, Math.ceil(o.steps / 10)), total: o.steps });
  try {
    const r = runSteps({
      name: o.name,
      steps: o.steps,
      step: (s) => {
        const x = o.batch(rng, s);
        let parts = { rec: 0, kl: 0 };
        const { loss: value, grads } = valueAndGrads(vae, () => {
          const l = vae.loss(x, rng);
          parts = { rec: l.rec.dataSync()[0] as number, kl: l.kl.dataSync()[0] as number };
          return l.loss;
        });
        clipGradNorm(grads, 1).dispose();
        opt.setLr(lr(s));
        opt.step(grads);
        const loss = value.dataSync()[0] as number;
        tf.dispose([x, value, ...grads.values()]);
        return { loss, ...parts };
      },
      progress: o.ctx.progress(o.name, o.steps),
      metric: (m) => o.ctx.metric({ subrun: o.name, ...m }),
    });
    return { rec: r.mean?.rec ?? 0, kl: r.mean?.kl ?? 0 };
  } finally {
    opt.dispose();
  }
}

/** Posterior means [B, N, C] of a batch, as a host array, disposing the posterior. */
export function posteriorMeans(vae: LatentTokenizer, x: tf.Tensor): { mu: Float32Array; logvar: Float32Array | null; shape: number[] } {
  const p: Posterior = vae.encode(x);
  const out = { mu: p.mu.dataSync() as Float32Array, logvar: p.logvar ? (p.logvar.dataSync() as Float32Array) : null, shape: p.mu.shape };
  p.mu.dispose();
  p.logvar?.dispose();
  return out;
}

interface LMTrainOptions {
  /** The training sequences of one step (already standardised latents). */
  batch: (rng: Rng, step: number) => MixedSequence[];
  spanStop?: boolean;
  seed: number;
  /** The training phase's name, e.g. 'sigma/lm': its metrics are tagged `subrun: name` (one loss curve). */
  name: string;
  ctx: ExperimentContext;
}

/** Trains LatentLM with cfg.train (the reference recipe); returns the mean loss parts of the last 10% of steps. */
export function trainLatentLM(model: LatentLM, cfg: LatentLMConfig, o: LMTrainOptions): { loss: number; lm: number; diff: number } {
  const t = cfg.train;
  const schedule = new NoiseSchedule({ numTrainTimesteps: cfg.diffusion.numTrainTimesteps });
  const rng = new Rng(o.seed);
  const opt = new AdamW(paramGroups(model), { beta1: t.beta1, beta2: t.beta2, weightDecay: t.weightDecay });
  const lr = warmupCosine({ peak: t.lr, warmup: Math.min(t.warmupSteps, t.steps), total: t.steps });
  try {
    const r = runSteps({
      name: o.name,
      steps: t.steps,
      step: (s) =>
        trainStep(model, opt, buildMixedBatch(o.batch(rng, s), model.config, { spanStop: o.spanStop }), {
          schedule,
          diffusion: cfg.diffusion,
          rng,
          lr: lr(s),
          gradClip: t.gradClip,
        }),
      progress: o.ctx.progress(o.name, t.steps),
      show: (m) => ({ loss: m.loss, lm: m.lm, diff: m.diff }),
      metric: (m) => o.ctx.metric({ subrun: o.name, ...m }),
    });
    return { loss: r.mean?.loss ?? 0, lm: r.mean?.lm ?? 0, diff: r.mean?.diff ?? 0 };
  } finally {
    opt.dispose();
  }
}

/**
 * Resumable training inside a sub-run folder: when `<name>.safetensors` and `<name>.json` exist
 * (an interrupted run trained this model already), load the weights and return the saved fit;
 * otherwise train, then save both (the JSON last, atomically, so a partial save is never trusted).
 */
export async function trainOrLoad<T>(m: Module, dir: string, name: string, config: unknown, train: () => T): Promise<T> {
  const weights = join(dir, `${name}.safetensors`);
  const meta = join(dir, `${name}.json`);
  if (existsSync(weights) && existsSync(meta)) {
    const saved = JSON.parse(readFileSync(meta, 'utf8')) as { config: unknown; fit: T };
    if (JSON.stringify(saved.config) === JSON.stringify(config)) {
      await loadModule(weights, m);
      return saved.fit;
    }
  }
  const fit = train();
  await saveModule(weights, m, { config: JSON.stringify(config) });
  writeFileAtomicSync(meta, JSON.stringify({ config, fit }));
  return fit;
}

/** The part of a LatentLM config that determines training (sampling settings excluded), the cache key of trainOrLoad. */
export function trainingKey(cfg: LatentLMConfig): unknown {
  const { headSteps: _h, cfgScale: _c, lambdaMinClipped: _l, ...diffusion } = cfg.diffusion;
  return { model: cfg.model, train: cfg.train, diffusion };
}

/** A LatentLM config's copy with the vocabulary, latent size and sequence length of an experiment. */
export function withData(cfg: LatentLMConfig, o: { vocabSize: number; latentDim: number; maxSeqLen: number }): LatentLMConfig {
  const c = structuredClone(cfg);
  c.model = { ...c.model, ...o, bodId: o.vocabSize - 4, eodId: o.vocabSize - 3, latId: o.vocabSize - 2, padId: o.vocabSize - 1 };
  return c;
}

/** A preset's LatentLM: `base` with the experiment's backbone size, training recipe and sampler settings. */
function sizedConfig(
  base: LatentLMConfig,
  o: {
    dim: number;
    numLayers: number;
    numHeads: number;
    /** Head depth (default: the base preset's). */
    diffusionDepth?: number;
    steps: number;
    batchSize: number;
    lr: number;
    headSteps: number;
    cfgScale: number;
    /** What the head predicts (default: the base preset's). */
    predictionType?: 'epsilon' | 'v_prediction';
    /** Backbone dropout and AdamW weight decay (default: the base preset's). */
    dropout?: number;
    weightDecay?: number;
  },
): LatentLMConfig {
  const c = structuredClone(base);
  c.model = {
    ...c.model,
    dim: o.dim,
    numLayers: o.numLayers,
    numHeads: o.numHeads,
    diffusionDepth: o.diffusionDepth ?? c.model.diffusionDepth,
    dropout: o.dropout ?? c.model.dropout,
  };
  c.train = { ...c.train, steps: o.steps, batchSize: o.batchSize, lr: o.lr, weightDecay: o.weightDecay ?? c.train.weightDecay };
  c.diffusion = {
    ...c.diffusion,
    headSteps: o.headSteps,
    cfgScale: o.cfgScale,
    predictionType: o.predictionType ?? c.diffusion.predictionType,
  };
  return c;
}

/**
 * The experiment-sized LM of a settings table: `sizedConfig(base, ...)` where every field defaults to
 * the config preset `base`'s own value, so a table names only what it changes.
 */
export function lmSizeSchema(base: LatentLMConfig) {
  return z
    .strictObject({
      dim: z.number().int().positive().default(base.model.dim),
      numLayers: z.number().int().positive().default(base.model.numLayers),
      numHeads: z.number().int().positive().default(base.model.numHeads),
      diffusionDepth: z.number().int().positive().default(base.model.diffusionDepth),
      steps: z.number().int().positive().default(base.train.steps),
      batchSize: z.number().int().positive().default(base.train.batchSize),
      lr: z.number().positive().default(base.train.lr),
      headSteps: z.number().int().positive().default(base.diffusion.headSteps),
      cfgScale: z.number().positive().default(base.diffusion.cfgScale),
      predictionType: z.enum(['epsilon', 'v_prediction']).default(base.diffusion.predictionType),
      dropout: z.number().min(0).lt(1).default(base.model.dropout),
      weightDecay: z.number().nonnegative().default(base.train.weightDecay),
    })
    .transform((o) => sizedConfig(base, o));
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** The model standardises its own training latents: shift = -mean, scale = 1 / std from a first batch (reference train_hf.py). */
export function standardiseFrom(model: LatentLM, firstBatch: Float32Array): void {
  let m = 0;
  for (const v of firstBatch) m += v;
  m /= firstBatch.length;
  let v2 = 0;
  for (const v of firstBatch) v2 += (v - m) ** 2;
  const sd = Math.sqrt(v2 / firstBatch.length);
  model.setLatentStats({ shift: -m, scale: 1 / sd });
}

/** Below this analyzer agreement a tokenizer does not read back well enough to judge what is built on it. */
export const AGREEMENT_FLOOR = 0.95;

/** A red warning (HTML span in the markdown summary) when a tokenizer's agreement is below AGREEMENT_FLOOR, else ''. */
export function agreementWarning(what: string, agreement: number): string {
  if (agreement >= AGREEMENT_FLOOR) return '';
  return `<span style="color:#c00">**${what} does not read back**: analyzer agreement ${formatFixed(agreement)} is below ${AGREEMENT_FLOOR}, so the figures built on it cannot judge the method (they are reported all the same).</span>`;
}

/** The line a single-seed summary ends with. */
export function oneSeedNote(seed: number): string {
  return `One seed (seed ${seed}): no standard deviation, and no difference is judged; \`--seeds 0,1,2\` gives mean ± std and verdicts beyond two standard errors.`;
}

/** "mean ± std" of metric `key` over the seeds ('n/a' when no seed has a finite value); `scale` multiplies each value first. */
export function seedCell(results: readonly Pick<ExperimentResult, 'metrics'>[], key: string, scale = 1): string {
  return coreSeedCell(results, key, scale) ?? 'n/a';
}
