/**
 * The recipe sweep behind lab.image-tokens: each arm at the comparison's data and budget under a few
 * recipes (codebook init and updates, regularisation, learning rate, steps, backbone size) and
 * sampling settings (CFG scale, temperature), measured exactly as lab.image-tokens measures it (seen
 * and held-out prompts, the memoriser ceiling, the tokenizer's analyzer agreement). The defaults of
 * each arm's recipe and the comparison's presets are read off this table; it is kept as an
 * experiment so the choice can be rerun and challenged.
 */
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stableHash32 } from '@mmlm/core';
import type { Experiment, ExperimentContext, PresetInfo, Table } from '@mmlm/core/experiment';
import { presetSettings } from '../util.js';
import { type ArmBudget, type ArmEvaluation, evaluateArm, loadImageTextData } from './imageEval.js';
import { fmt, IMAGE_TOKEN_ARMS, SMALL_BUDGET } from './imageTokens.js';

/** One trained configuration of one arm, evaluated at one or more sampling settings. */
export interface SweepVariant {
  arm: string;
  label: string;
  /** Overrides of the preset's budget. */
  tokenizerSteps?: number;
  backboneSteps?: number;
  /** Batch size of the backbone phase (default: the preset's batchSize, which the tokenizer keeps). */
  backboneBatchSize?: number;
  backbone?: { dim: number; numLayers: number; numHeads: number };
  recipe?: unknown;
  /** Override of the preset's share of image-to-text (captioning) examples in the backbone's batches. */
  captionFraction?: number;
  /** Sampling settings to evaluate (default: the arm's recipe). */
  sampling?: { cfgScale?: number; temperature?: number }[];
}

/**
 * What each arm writes for its finished tokenizer phase inside its sub-run folder (the arm loads it
 * instead of training when the settings it was written for match; both arms check that themselves:
 * Liquid's `tokenizer.json` marker and LatentLM's checkpoint config refuse other settings).
 */
const TOKENIZER_ARTIFACTS: Record<string, string[]> = {
  'liquid-vq': ['tokenizer.json', 'tokenizer.safetensors', 'codes-train.safetensors'],
  'latentlm-sigma-vae': ['tokenizer'],
};

/**
 * The folder, beside this run's, where a variant's trained tokenizer is kept for the other variants
 * and presets of the sweep that train the same tokenizer (same arm, tokenizer recipe, steps, batch,
 * data and seed) and differ only in the backbone or sampling: they copy it instead of training it
 * again. Null for an arm without a known tokenizer phase.
 */
export function tokenizerCacheDir(
  outDir: string,
  v: Pick<SweepVariant, 'arm' | 'recipe'>,
  key: { tokenizerSteps: number; batchSize: number; imageSize: number; trainImages: number; seed: number },
): string | null {
  if (!TOKENIZER_ARTIFACTS[v.arm]) return null;
  const tok = (v.recipe as { tokenizer?: unknown } | undefined)?.tokenizer ?? {};
  const h = stableHash32(JSON.stringify({ arm: v.arm, tokenizer: tok, ...key })).toString(16);
  return join(dirname(outDir), 'tokenizer-cache', `${v.arm}-seed${key.seed}-${h}`);
}

/** Copies a cached tokenizer into a variant's empty sub-run folder; true when it did. */
function restoreTokenizer(cache: string | null, arm: string, dir: string): boolean {
  const files = TOKENIZER_ARTIFACTS[arm];
  if (!cache || !files || !existsSync(join(cache, 'complete'))) return false;
  if (files.some((f) => existsSync(join(dir, f)))) return false; // the variant has its own (an interrupted run)
  for (const f of files) cpSync(join(cache, f), join(dir, f), { recursive: true });
  return true;
}

/** Publishes a variant's trained tokenizer to the cache (a temporary folder renamed into place). */
function publishTokenizer(cache: string | null, arm: string, dir: string): void {
  const files = TOKENIZER_ARTIFACTS[arm];
  if (!cache || !files || existsSync(join(cache, 'complete')) || files.some((f) => !existsSync(join(dir, f)))) return;
  const tmp = `${cache}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const f of files) cpSync(join(dir, f), join(tmp, f), { recursive: true });
  writeFileSync(join(tmp, 'complete'), `${dir}\n`);
  rmSync(cache, { recursive: true, force: true });
  renameSync(tmp, cache);
}

interface SweepPreset extends PresetInfo {
  imageSize: number;
  trainImages: number;
  evalImages: number;
  dim: number;
  numLayers: number;
  numHeads: number;
  tokenizerSteps: number;
  backboneSteps: number;
  batchSize: number;
  captionFraction: number;
  variants: SweepVariant[];
}

const QUICK_BASE = {
  imageSize: 16,
  trainImages: 1000,
  evalImages: 256,
  dim: 64,
  numLayers: 2,
  numHeads: 4,
  tokenizerSteps: 600,
  backboneSteps: 1000,
  batchSize: 16,
  captionFraction: 0.3,
};

const PRESETS: Record<string, SweepPreset> = {
  tiny: {
    description: 'two microscopic variants (tests: plumbing only)',
    expectedMinutes: 0.3,
    imageSize: 16,
    trainImages: 16,
    evalImages: 4,
    dim: 16,
    numLayers: 1,
    numHeads: 2,
    tokenizerSteps: 2,
    backboneSteps: 2,
    batchSize: 4,
    captionFraction: 0.3,
    variants: [
      { arm: 'liquid-vq', label: 'reference codebook', recipe: { tokenizer: { kmeansInit: false, emaDecay: null } } },
      { arm: 'liquid-vq', label: 'k-means + EMA', sampling: [{ cfgScale: 1 }, { cfgScale: 3, temperature: 0.5 }] },
      { arm: 'latentlm-sigma-vae', label: 'default' },
      // the tokenizers of the two variants above, reused (only the backbone differs)
      {
        arm: 'liquid-vq',
        label: 'k-means + EMA, backbone lr 1e-3, image positions',
        recipe: { backbone: { lr: 1e-3, imagePositions: true } },
      },
      { arm: 'latentlm-sigma-vae', label: 'backbone lr 1e-3', recipe: { backbone: { lr: 1e-3 } } },
    ],
  },
  quick: {
    description:
      'the quick comparison (16 px, 1,000 images, 2x64 backbone, 256 seen + 256 held-out prompts) under the recipe variants that chose the arms defaults; one seed',
    // measured: 2,650 s in one process on the 2-core machine shared with another run (commit 71d7989);
    // retimed: 635 s with --jobs 2 on the idle 2-core AMD EPYC, default backend (2026-12-07, commit
    // 4ec6245; every row within a few hundredths of the docs' run, the same reading)
    expectedMinutes: 11,
    ...QUICK_BASE,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'reference: uniform-init gradient codebook K 64, lr 1e-3, no dropout / weight decay (the old quick preset)',
        recipe: {
          tokenizer: { kmeansInit: false, emaDecay: null, numCodes: 64 },
          backbone: { lr: 1e-3, dropout: 0, weightDecay: 0 },
        },
        tokenizerSteps: 300,
        backboneSteps: 600,
        sampling: [{ cfgScale: 3, temperature: 0.99 }],
      },
      {
        arm: 'liquid-vq',
        label: 'EMA codebook K 64, lr 1e-3, dropout + weight decay 0.1',
        recipe: { tokenizer: { kmeansInit: false, numCodes: 64 }, backbone: { lr: 1e-3 } },
        sampling: [
          { cfgScale: 1, temperature: 0.99 },
          { cfgScale: 3, temperature: 0.99 },
        ],
      },
      {
        arm: 'liquid-vq',
        label: 'k-means + EMA codebook K 128, lr 1e-3',
        recipe: { tokenizer: { numCodes: 128 }, backbone: { lr: 1e-3 } },
        sampling: [{ cfgScale: 3, temperature: 0.99 }],
      },
      {
        arm: 'liquid-vq',
        label: 'k-means + EMA K 128, lr 3e-3',
        recipe: { tokenizer: { numCodes: 128 } },
        sampling: [
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.99 },
          { cfgScale: 3, temperature: 0.5 },
        ],
      },
      {
        arm: 'liquid-vq',
        label: 'K 128, lr 3e-3, without dropout / weight decay, 2,000 backbone steps',
        recipe: { tokenizer: { numCodes: 128 }, backbone: { dropout: 0, weightDecay: 0 } },
        backboneSteps: 2000,
        sampling: [{ cfgScale: 3, temperature: 0.5 }],
      },
      {
        arm: 'liquid-vq',
        label: 'K 128, lr 3e-3, 2,000 backbone steps',
        recipe: { tokenizer: { numCodes: 128 } },
        backboneSteps: 2000,
        sampling: [
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 1.5, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.5 },
          { cfgScale: 5, temperature: 0.5 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'reference-like: C_sigma 0.75, no dropout, weight decay 0.01 (the old quick preset)',
        recipe: { tokenizer: { cSigma: 0.75 }, backbone: { predictionType: 'epsilon', lr: 3e-3, dropout: 0, weightDecay: 0.01 } },
        tokenizerSteps: 300,
        backboneSteps: 600,
        sampling: [
          { cfgScale: 1, temperature: 1 },
          { cfgScale: 2, temperature: 1 },
          { cfgScale: 4, temperature: 1 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'C_sigma 0.75, dropout + weight decay 0.1, lr 3e-3, 1,500 steps',
        recipe: { tokenizer: { cSigma: 0.75 }, backbone: { predictionType: 'epsilon', lr: 3e-3 } },
        tokenizerSteps: 300,
        backboneSteps: 1500,
        sampling: [
          { cfgScale: 1, temperature: 1 },
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 1, temperature: 0.2 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'C_sigma 0.25, lr 3e-3, 1,500 steps',
        recipe: { tokenizer: { cSigma: 0.25 }, backbone: { predictionType: 'epsilon', lr: 3e-3 } },
        tokenizerSteps: 300,
        backboneSteps: 1500,
        sampling: [
          { cfgScale: 1, temperature: 1 },
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.7 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'C_sigma 0.25, lr 3e-3, 3,000 steps',
        recipe: { tokenizer: { cSigma: 0.25 }, backbone: { predictionType: 'epsilon', lr: 3e-3 } },
        tokenizerSteps: 300,
        backboneSteps: 3000,
        sampling: [
          { cfgScale: 1, temperature: 1 },
          { cfgScale: 1, temperature: 0.5 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'C_sigma 0.1, lr 3e-3, 1,500 steps',
        recipe: { backbone: { predictionType: 'epsilon', lr: 3e-3 } },
        tokenizerSteps: 300,
        backboneSteps: 1500,
        sampling: [
          { cfgScale: 1, temperature: 1 },
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.5 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'C_sigma 0.1, lr 6e-3 (the default recipe), 1,500 steps',
        recipe: { backbone: { predictionType: 'epsilon', lr: 6e-3 } },
        tokenizerSteps: 300,
        backboneSteps: 1500,
        sampling: [
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.5 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'C_sigma 0.1, lr 1e-3, 1,500 steps',
        recipe: { backbone: { predictionType: 'epsilon', lr: 1e-3 } },
        tokenizerSteps: 300,
        backboneSteps: 1500,
        sampling: [
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.5 },
        ],
      },
      {
        arm: 'liquid-vq',
        label: 'the default recipe (K 64) at the quick budget: 1,000 + 1,000 steps',
        tokenizerSteps: 1000,
        sampling: [
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 1.5, temperature: 0.5 },
        ],
      },
    ],
  },
  'quick-latent': {
    description:
      "the continuous arm's step efficiency at the quick budget (1,000 + 1,000 steps): noise draws per latent, v-prediction, learning rate, head depth, regularisation, head temperature and CFG; one seed",
    // measured: 1,941 s on the 2-core machine shared with two other jobs (2026-12-03), one process;
    // retimed: 344 s with --jobs 2 on the idle 2-core AMD EPYC, default backend (2026-12-07, commit
    // 4ec6245; v-prediction 0.656 / 0.707 seen at T 0.5 / 0.3, every other row 0.16-0.38)
    expectedMinutes: 6,
    ...QUICK_BASE,
    tokenizerSteps: 1000,
    variants: [
      {
        arm: 'latentlm-sigma-vae',
        label: 'eps-prediction (the arm default before this sweep; C_sigma 0.1, lr 6e-3, 4 noise draws)',
        recipe: { backbone: { predictionType: 'epsilon' } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.3 },
          { cfgScale: 1, temperature: 0.3 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: '16 noise draws per latent',
        recipe: { backbone: { predictionType: 'epsilon', batchMul: 16 } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.3 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'v-prediction (the arm default since this sweep)',
        recipe: { backbone: { predictionType: 'v_prediction' } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.3 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'lr 1e-2',
        recipe: { backbone: { predictionType: 'epsilon', lr: 1e-2 } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.3 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'no dropout, weight decay 0.01',
        recipe: { backbone: { predictionType: 'epsilon', dropout: 0, weightDecay: 0.01 } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.3 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'diffusion head of 6 blocks',
        recipe: { backbone: { predictionType: 'epsilon', diffusionDepth: 6 } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 2, temperature: 0.3 },
        ],
      },
    ],
  },
  'quick-pos': {
    description:
      "learned image positions (core's SpanPositionEmbedding: the grid index of the token each position predicts) in each arm at the quickstart's exact budget (lab.image-tokens quick: 1,000 + 1,000 steps), with and without; the two tokenizers are trained once and reused; one seed",
    // retimed: 149 s for seed 0 with --jobs 2 on the idle 2-core AMD EPYC, default backend (2026-12-06,
    // commit 0011531; the rows with positions are the quickstart's table digit for digit); 6 min listed before
    expectedMinutes: 2.5,
    ...QUICK_BASE,
    tokenizerSteps: 1000,
    variants: [
      { arm: 'liquid-vq', label: 'the quick preset (no image positions)' },
      { arm: 'liquid-vq', label: 'learned image positions', recipe: { backbone: { imagePositions: true } } },
      { arm: 'latentlm-sigma-vae', label: 'the quick preset (no image positions)' },
      { arm: 'latentlm-sigma-vae', label: 'learned image positions', recipe: { backbone: { imagePositions: true } } },
    ],
  },
  'small-latent': {
    description:
      "the continuous arm at the small comparison's data and budget (32 px, 4,000 images, 4x128 backbone, 1,500 + 3,000 steps; lab.image-tokens small: 0.223 seen with lr 6e-3 and 16 latent channels) under a lower backbone learning rate and fewer latent channels; one seed",
    // measured: 1,733 s and 1,512 s of training for the first two variants at 96326e9, on the 2-core
    // machine shared with another run; retimed: 1,967 s with --jobs 2 on the idle 2-core AMD EPYC,
    // default backend (2026-12-07, commit 2bec620; lr 3e-3 0.496 seen, docs 0.531)
    expectedMinutes: 33,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'latentlm-sigma-vae',
        label: "backbone lr 3e-3 (the Liquid arm's), 16 latent channels",
        recipe: { backbone: { lr: 3e-3 } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 1, temperature: 0.3 },
          { cfgScale: 3, temperature: 0.3 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: "8 latent channels (the quick preset's), lr 6e-3",
        recipe: { tokenizer: { latentDim: 8 } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 1, temperature: 0.3 },
          { cfgScale: 3, temperature: 0.3 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'backbone lr 1.5e-3, 16 latent channels',
        recipe: { backbone: { lr: 1.5e-3 } },
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 1, temperature: 0.3 },
          { cfgScale: 3, temperature: 0.3 },
        ],
      },
    ],
  },
  'small-liquid-w32': {
    description:
      "the discrete arm at the small comparison's data and budget (32 px, 4,000 images, 4x128 backbone, 1,500 + 3,000 steps) with a width-32 tokenizer at 4x downsampling (64 codes), the tokenizer that reads back in lab.tokenizer-readback small-liquid; one seed",
    // retimed: 1,822 s with one GEMM thread on the 2-core AMD EPYC, default backend, alone but for its
    // first three minutes (2026-12-07, commit fefeebb; 0.605 seen, docs 0.590); 90 min listed
    // before, from a shared machine
    expectedMinutes: 31,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'conv width 32, downsample 4 (64 codes per image)',
        recipe: { tokenizer: { ch: 32 } },
        sampling: [
          { cfgScale: 1.5, temperature: 0.5 },
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.5 },
        ],
      },
    ],
  },
  'small-liquid-long': {
    description:
      'the discrete arm of small-liquid-w32 (width-32 tokenizer, 64 codes per image; its tokenizer reused from the tokenizer cache when that run is in the same --out folder) with twice the backbone steps (6,000): is the missing grid cell a matter of steps?; one seed',
    // retimed: 3,087 s with one GEMM thread beside another one-thread run on the 2-core AMD EPYC,
    // default backend, tokenizer trained in the run (2026-12-07, commit 2bec620; 0.781 seen, docs
    // 0.707); 60 min listed before, from a shared machine
    expectedMinutes: 52,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'conv width 32, downsample 4 (64 codes per image), 6,000 backbone steps',
        recipe: { tokenizer: { ch: 32 } },
        backboneSteps: 6000,
        sampling: [
          { cfgScale: 1.5, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.5 },
        ],
      },
    ],
  },
  'small-liquid-pos': {
    description:
      'the discrete arm of small-liquid-w32 (width-32 tokenizer, 64 codes per image, 3,000 backbone steps; its tokenizer reused from the tokenizer cache when that run is in the same --out folder) with a learned embedding of the grid index each position predicts (not in Liquid): does the LM then put the object in the named cell?; one seed',
    // retimed: 2,105 s with one GEMM thread beside another one-thread run on the 2-core AMD EPYC,
    // default backend, tokenizer trained in the run (2026-12-07, commit fefeebb; 0.742 seen, docs
    // 0.781); 40 min listed before, from a shared machine
    expectedMinutes: 36,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'conv width 32, downsample 4 (64 codes per image), learned image positions',
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        sampling: [
          { cfgScale: 1.5, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.5 },
        ],
      },
    ],
  },
  'small-liquid-pos-long': {
    description:
      'small-liquid-pos (learned image positions, width-32 tokenizer reused from the cache) with 6,000 backbone steps, the step count at which the continuous arm reached 0.84 seen (small-latent-long); one seed',
    // retimed: 3,145 s with one GEMM thread beside another one-thread run on the 2-core AMD EPYC,
    // default backend, tokenizer trained in the run (2026-12-07, commit 2bec620; 0.898 seen, docs
    // three seeds 0.840 +- 0.021); 60 min listed before, from a shared machine
    expectedMinutes: 53,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'conv width 32, downsample 4 (64 codes per image), learned image positions, 6,000 backbone steps',
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        backboneSteps: 6000,
        sampling: [
          { cfgScale: 1.5, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.5 },
        ],
      },
    ],
  },
  'small-latent-long': {
    description:
      "the continuous arm of small-latent's best variant (backbone lr 3e-3, 16 latent channels; its tokenizer reused from the tokenizer cache when that run is in the same --out folder) with twice the backbone steps (6,000); one seed",
    // retimed: 2,064 s with one GEMM thread beside another one-thread run on the 2-core AMD EPYC,
    // default backend, sigma-VAE trained in the run (2026-12-07, commit fefeebb; 0.777 seen, within
    // the recorded three seeds' 0.810 +- 0.033); 50 min listed before, from a shared machine
    expectedMinutes: 35,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'latentlm-sigma-vae',
        label: 'backbone lr 3e-3, 16 latent channels, 6,000 backbone steps',
        recipe: { backbone: { lr: 3e-3 } },
        backboneSteps: 6000,
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.3 },
        ],
      },
    ],
  },
  'small-latent-pos-long': {
    description:
      "small-latent-long (backbone lr 3e-3, 16 latent channels, 6,000 backbone steps; tokenizer reused from the cache) with learned image positions, the small preset's continuous arm; one seed",
    // retimed: 2,178 s with one GEMM thread beside another one-thread run on the 2-core AMD EPYC,
    // default backend, sigma-VAE trained in the run (2026-12-07, commit fefeebb; 0.855 seen / 0.801
    // held-out, docs 0.777 / 0.816); 60 min listed before, from a shared machine
    expectedMinutes: 37,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'latentlm-sigma-vae',
        label: 'backbone lr 3e-3, 16 latent channels, learned image positions, 6,000 backbone steps',
        recipe: { backbone: { lr: 3e-3, imagePositions: true } },
        backboneSteps: 6000,
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.3 },
        ],
      },
    ],
  },
  'small-2x64': {
    description:
      "both arms of the small preset (width-32 VQ tokenizer / sigma-VAE, learned image positions, 6,000 backbone steps, backbone lr 3e-3 for the continuous arm) on a 2x64 backbone instead of 4x128: can the comparison fit the issue's 30 minutes a seed with --jobs 2 (latentlm.variance-collapse small-arm-long's 2x64 sigma-VAE arm reached 0.879 seen at 32 px)?; one seed",
    // measured: 1,599 s for seed 0 with --jobs 2 (2026-12-04): inside the budget, but 0.590 / 0.559
    // seen (4x128: 0.840 / 0.785), captions 0.418 / 0.879; the continuous arm's tokenizer took the
    // backbone width 64 and read back 0.883 (recipe.tokenizer.dim now decouples it); retimed: 1,225 s
    // with --jobs 2 on the idle 2-core AMD EPYC, default backend (2026-12-07, commit 4ec6245; the
    // discrete arm digit for digit, the continuous one 0.551 seen, read-back 0.885)
    expectedMinutes: 21,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'conv width 32, downsample 4 (64 codes per image), learned image positions, 2x64 backbone, 6,000 steps',
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        backbone: { dim: 64, numLayers: 2, numHeads: 4 },
        backboneSteps: 6000,
        sampling: [
          { cfgScale: 1.5, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.5 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'backbone lr 3e-3, 16 latent channels, learned image positions, 2x64 backbone, 6,000 steps',
        recipe: { backbone: { lr: 3e-3, imagePositions: true } },
        backbone: { dim: 64, numLayers: 2, numHeads: 4 },
        backboneSteps: 6000,
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.3 },
        ],
      },
    ],
  },
  'small-2x64-wide': {
    description:
      "small-2x64's continuous arm with a 128-wide ViT tokenizer (recipe.tokenizer.dim; small-2x64's took the backbone width 64 and read back 0.883): the 2x64 backbone's own figure for the continuous arm; one seed",
    // measured: 697 s for seed 0 on one core (2026-12-04): read-back 0.984, 0.617 seen, captions 0.957;
    // retimed: 722 s with --jobs 2 on the idle 2-core AMD EPYC, default backend (2026-12-06, commit
    // 0011531: read-back 0.982, 0.590 seen, captions 0.957)
    expectedMinutes: 12,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'latentlm-sigma-vae',
        label: 'backbone lr 3e-3, 16 latent channels, learned image positions, 2x64 backbone, 6,000 steps, 128-wide tokenizer',
        recipe: { tokenizer: { dim: 128 }, backbone: { lr: 3e-3, imagePositions: true } },
        backbone: { dim: 64, numLayers: 2, numHeads: 4 },
        backboneSteps: 6000,
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 3, temperature: 0.3 },
        ],
      },
    ],
  },
  'small-9k': {
    description:
      "both arms of the small preset (width-32 VQ tokenizer / sigma-VAE, learned image positions, backbone lr 3e-3 for the continuous arm) with 9,000 backbone steps instead of 6,000, each at three sampling settings: are issue 13's seen floors (0.85; 0.840 / 0.785 at 6,000 steps over three seeds) a matter of steps or of sampling?; one seed",
    // measured: 5,784 s for seed 0 with --jobs 2 on the 2-core machine shared with tests and a
    // benchmark (2026-12-04): discrete 0.883 seen, captions 0.871; continuous 0.883 seen (0.914 at
    // CFG 1.5, T 0.7), captions 0.988. Seeds 0-2 (docs/papers/comparative.md): discrete 0.872 +-
    // 0.015 seen, captions 0.855 +- 0.024; continuous 0.884 +- 0.022, captions 0.988 +- 0.004; the
    // `small` preset of lab.image-tokens took this budget; retimed on the default backend (no addon):
    // seed 0 into a fresh folder, 4,918 s with --jobs 2 alone on the idle 2-core AMD EPYC (commit
    // 2bec620, 2026-12-07): the discrete arm digit for digit (0.883 seen, captions 0.871, read-back
    // 0.969), continuous 0.875 seen (0.859 at CFG 1.5, T 0.7), captions 1.000, read-back 0.982
    expectedMinutes: 82,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'conv width 32, downsample 4 (64 codes per image), learned image positions, 9,000 backbone steps',
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        backboneSteps: 9000,
        sampling: [
          { cfgScale: 1.5, temperature: 0.5 },
          { cfgScale: 1, temperature: 0.5 },
          { cfgScale: 1.5, temperature: 0.3 },
        ],
      },
      {
        arm: 'latentlm-sigma-vae',
        label: 'backbone lr 3e-3, 16 latent channels, learned image positions, 9,000 backbone steps',
        recipe: { backbone: { lr: 3e-3, imagePositions: true } },
        backboneSteps: 9000,
        sampling: [
          { cfgScale: 2, temperature: 0.5 },
          { cfgScale: 1.5, temperature: 0.7 },
          { cfgScale: 3, temperature: 0.5 },
        ],
      },
    ],
  },
  'small-30min': {
    description:
      "small's two arms (32 px, 4,000 images, 4x128 backbone, 40% captioning, small's recipes, tokenizers 1,500 steps of 32) with smaller backbone batches, sized so each arm fits issue 13's 30 minutes a seed on one thread of the default backend: batch 8 x 9,000 steps and batch 16 x 5,000 steps (small: 32 x 9,000, 75-82 min a seed); does either learn as well?; run it with --jobs 2",
    // measured: 2,733 s for seed 0 with --jobs 2 alone on the idle 2-core AMD EPYC, default backend
    // (2026-12-07, commit f82beed; each worker trained its own copy of the VQ tokenizer): the discrete
    // arm 1,677 s (batch 8) and 1,769 s (batch 16) of training, the continuous arm 917 / 912 s; neither
    // learns the task (generation seen 0.500 / 0.555 discrete, 0.219 / 0.461 continuous; small's batch
    // 32 x 9,000 in the same seed: 0.871 / 0.910); docs/papers/comparative.md
    expectedMinutes: 46,
    ...SMALL_BUDGET,
    captionFraction: 0.4,
    variants: [
      {
        arm: 'liquid-vq',
        label: "small's recipe, backbone batch 8, 9,000 steps",
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        backboneSteps: 9000,
        backboneBatchSize: 8,
      },
      {
        arm: 'liquid-vq',
        label: "small's recipe, backbone batch 16, 5,000 steps",
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        backboneSteps: 5000,
        backboneBatchSize: 16,
      },
      {
        arm: 'latentlm-sigma-vae',
        label: "small's recipe, backbone batch 8, 9,000 steps",
        recipe: { backbone: { lr: 3e-3, imagePositions: true } },
        backboneSteps: 9000,
        backboneBatchSize: 8,
      },
      {
        arm: 'latentlm-sigma-vae',
        label: "small's recipe, backbone batch 16, 5,000 steps",
        recipe: { backbone: { lr: 3e-3, imagePositions: true } },
        backboneSteps: 5000,
        backboneBatchSize: 16,
      },
    ],
  },
  'small-liquid': {
    description:
      "the discrete arm at the small comparison's data and budget (32 px, 4,000 images, 4x128 backbone, 1,500 + 3,000 steps) with 8x downsampling: 16 codes per image, the LatentLM arm's latent count, and a quarter of the backbone's sequence; one seed",
    // measured: 2,057 s at aee83ec on the 2-core machine shared with another run (2026-12-03):
    // read-back 0.213, generation 0.281 seen: 16 codes of K = 64 are too few at 32 px; retimed: 874 s
    // in one process on the idle 2-core AMD EPYC, default backend (2026-12-07, commit 4ec6245;
    // read-back 0.281, generation 0.395 seen: the same reading)
    expectedMinutes: 15,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'downsample 8 (16 codes per image)',
        recipe: { tokenizer: { downsample: 8 } },
      },
    ],
  },
  'small-9k-cap50': {
    description:
      "small-9k's discrete arm with half of its backbone examples captioning (image -> text) instead of 30%: small-9k's discrete captions (0.855 +- 0.024 seen, 0.828 in seed 1) fail on small objects' shapes; does more captioning fix them, and what does generation lose?; one seed (the tokenizer is small-9k's when run into the same --out)",
    // measured: 6,555 s for seed 1 (backbone + evaluation; tokenizer reused) beside 3-4 other runs
    // (2026-12-05): captions 0.906 seen (0.828 at 30%), generation 0.824 seen (0.855); seed 0 into a
    // fresh folder (tokenizer trained too): 4,771 s on the 2-core AMD EPYC, default backend, one GEMM
    // thread beside small-9k-cap40's seed 0 (commit 2bec620, 2026-12-07): generation 0.875 seen,
    // captions 0.906 seen (40% in the same seed: 0.871, 0.906)
    expectedMinutes: 80,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'conv width 32, downsample 4 (64 codes per image), learned image positions, 9,000 backbone steps, half captioning',
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        backboneSteps: 9000,
        captionFraction: 0.5,
      },
    ],
  },
  'small-9k-cap40': {
    description:
      "small-9k's discrete arm with 40% of its backbone examples captioning, between small-9k's 30% (seed 1: captions 0.828, generation 0.855 seen) and small-9k-cap50's 50% (0.906, 0.824): is there a share that meets both seen floors (0.85) in that seed?; one seed (the tokenizer is small-9k's when run into the same --out)",
    // measured: 4,149 s for seed 1 (backbone + evaluation; tokenizer reused; OpenBLAS addon, one
    // thread) beside 1-3 other processes (2026-12-05): generation 0.852 seen, captions 0.887 seen;
    // seeds 0 and 2 into a fresh folder (tokenizer trained too, addon, the two seeds side by side on
    // the 2-core Intel machine): 3,422 / 3,427 s, generation 0.914 / 0.887, captions 0.902 / 0.914;
    // retimed on the default backend (no addon): seed 0 into a fresh folder, 4,797 s on the 2-core AMD
    // EPYC with one GEMM thread beside small-9k-cap50's seed 0 (commit 2bec620, 2026-12-07):
    // generation 0.871, captions 0.906 seen, read-back 0.969 (lab.image-tokens small seed 0's
    // discrete arm digit for digit)
    expectedMinutes: 80,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label: 'conv width 32, downsample 4 (64 codes per image), learned image positions, 9,000 backbone steps, 40% captioning',
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        backboneSteps: 9000,
        captionFraction: 0.4,
      },
    ],
  },
  'small-9k-cap40-tok3k': {
    description:
      "small-9k-cap40's discrete arm (the small preset's) with its tokenizer trained 3,000 steps instead of 1,500: lab.tokenizer-readback small-liquid-steps read the tokenizer back at 0.986 at 3,000 steps in seeds 0 and 1 (1,500: 0.980 / 0.932), where small's read-back missed the 0.95 floor (0.948 +- 0.013); do generation and captions hold with it?",
    // measured: 3,639-3,711 s a seed (backbone and evaluation; tokenizer copied from
    // lab.tokenizer-readback small-liquid-steps; three seeds side by side, OpenBLAS addon, 2026-12-06):
    // read-back 0.988 +- 0.003, generation seen 0.874 +- 0.039 (seed 1 0.844), captions 0.885 +- 0.023;
    // retimed: seed 0 into a fresh folder (tokenizer trained in the run), alone on the idle 2-core AMD
    // EPYC, default backend with two GEMM threads (commit 2bec620, 2026-12-07): 4,272 s, read-back
    // 0.990, generation 0.820 seen, captions 0.848 seen (both under the floors in this draw)
    expectedMinutes: 71,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'liquid-vq',
        label:
          'conv width 32, downsample 4 (64 codes per image), 3,000 tokenizer steps, learned image positions, 9,000 backbone steps, 40% captioning',
        recipe: { tokenizer: { ch: 32 }, backbone: { imagePositions: true } },
        tokenizerSteps: 3000,
        backboneSteps: 9000,
        captionFraction: 0.4,
      },
    ],
  },
  'small-9k-cap40-latent': {
    description:
      "small-9k's continuous arm with 40% of its backbone examples captioning (the discrete arm's small-9k-cap40 asks for a share that meets both of its seen floors; both arms must share the mix): what do the continuous arm's generation and captions do?; one seed (the tokenizer is small-9k's when run into the same --out)",
    // measured: 3,092 s for seed 1 (tokenizer reused; OpenBLAS addon) beside 1-3 other processes
    // (2026-12-05): generation 0.879 seen, 0.793 held-out, captions 0.996 seen; retimed: 2,658 s for
    // seed 0 with one GEMM thread beside another one-thread run on the 2-core AMD EPYC, default
    // backend, sigma-VAE trained in the run (2026-12-07, commit 2bec620; 0.910 seen, 0.863 held-out)
    expectedMinutes: 45,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'latentlm-sigma-vae',
        label: 'backbone lr 3e-3, 16 latent channels, learned image positions, 9,000 backbone steps, 40% captioning',
        recipe: { backbone: { lr: 3e-3, imagePositions: true } },
        backboneSteps: 9000,
        captionFraction: 0.4,
      },
    ],
  },
  'small-9k-cap50-latent': {
    description:
      "small-9k's continuous arm with half of its backbone examples captioning instead of 30% (the discrete arm's small-9k-cap50 asks whether more captioning fixes its small objects' shapes; both arms must share the mix): what do the continuous arm's generation and captions do?; one seed (the tokenizer is small-9k's when run into the same --out)",
    // measured: 4,242 s for seed 1 (tokenizer reused) beside 2-4 other runs (2026-12-05): generation
    // 0.867 seen (0.906 at 30%), 0.746 held-out (0.836), captions 0.996 seen; retimed: 2,501 s for
    // seed 0 with one GEMM thread beside another one-thread run on the 2-core AMD EPYC, default
    // backend, sigma-VAE trained in the run (2026-12-07, commit 2bec620; 0.863 seen, 0.840 held-out)
    expectedMinutes: 42,
    ...SMALL_BUDGET,
    variants: [
      {
        arm: 'latentlm-sigma-vae',
        label: 'backbone lr 3e-3, 16 latent channels, learned image positions, 9,000 backbone steps, half captioning',
        recipe: { backbone: { lr: 3e-3, imagePositions: true } },
        backboneSteps: 9000,
        captionFraction: 0.5,
      },
    ],
  },
};

async function run(ctx: ExperimentContext) {
  const p = PRESETS[ctx.preset]!;
  const data = loadImageTextData({
    imageSize: p.imageSize,
    maxObjects: 1,
    trainImages: p.trainImages,
    evalImages: p.evalImages,
    seed: ctx.seed,
  });
  // every variant's sub-run first, then the table: under --jobs a worker's skipped sub-runs resolve to
  // undefined, so it must reach every sub-run before reading any result
  const trained: {
    v: SweepVariant;
    budget: ArmBudget;
    settings: NonNullable<SweepVariant['sampling']>;
    evals: (Omit<ArmEvaluation, 'figures'> & { tokenizerReused: boolean })[];
  }[] = [];
  for (const [vi, v] of p.variants.entries()) {
    const arm = IMAGE_TOKEN_ARMS.find((a) => a.name === v.arm);
    if (!arm) throw new Error(`lab.image-tokens-sweep: variant ${vi} names an unknown arm "${v.arm}"`);
    const budget = {
      backbone: v.backbone ?? { dim: p.dim, numLayers: p.numLayers, numHeads: p.numHeads },
      tokenizerSteps: v.tokenizerSteps ?? p.tokenizerSteps,
      backboneSteps: v.backboneSteps ?? p.backboneSteps,
      batchSize: p.batchSize,
      ...(v.backboneBatchSize === undefined ? {} : { backboneBatchSize: v.backboneBatchSize }),
      captionFraction: v.captionFraction ?? p.captionFraction,
      recipe: v.recipe,
    };
    const settings = v.sampling ?? [{}];
    const cache = tokenizerCacheDir(ctx.outDir, v, {
      tokenizerSteps: budget.tokenizerSteps,
      batchSize: p.batchSize,
      imageSize: p.imageSize,
      trainImages: p.trainImages,
      seed: ctx.seed,
    });
    // keyed by the variant's content and the preset's data and budget, so an edited variant or preset
    // never reuses another's finished sub-run
    const budgetKey = {
      imageSize: p.imageSize,
      trainImages: p.trainImages,
      evalImages: p.evalImages,
      dim: p.dim,
      numLayers: p.numLayers,
      numHeads: p.numHeads,
      tokenizerSteps: p.tokenizerSteps,
      backboneSteps: p.backboneSteps,
      batchSize: p.batchSize,
      captionFraction: p.captionFraction,
    };
    const evals = await ctx.subrun(`v${vi}-${v.arm}-${stableHash32(JSON.stringify({ v, budgetKey })).toString(16)}`, async (dir) => {
      const reused = restoreTokenizer(cache, v.arm, dir);
      if (reused) ctx.log(`variant ${vi}: the tokenizer is the one trained for the same settings in ${cache}`);
      const out: ArmEvaluation[] = [];
      for (const s of settings) out.push(await evaluateArm(v.arm, arm.factory, data, ctx, dir, { ...budget, ...s }));
      publishTokenizer(cache, v.arm, dir);
      return out.map(({ figures: _f, ...r }) => ({ ...r, tokenizerReused: reused }));
    });
    trained.push({ v, budget, settings, evals });
  }
  const rows: Table['rows'] = [];
  const metrics: Record<string, number> = {};
  for (const [vi, { v, budget, settings, evals }] of trained.entries()) {
    for (const [si, r] of evals.entries()) {
      const s = settings[si]!;
      const sampling = [s.cfgScale === undefined ? '' : `cfg ${s.cfgScale}`, s.temperature === undefined ? '' : `T ${s.temperature}`]
        .filter(Boolean)
        .join(', ');
      rows.push([
        v.arm,
        v.label,
        `${budget.tokenizerSteps} + ${budget.backboneSteps}, ${budget.backbone.numLayers}x${budget.backbone.dim}${budget.backboneBatchSize === undefined ? '' : `, backbone batch ${budget.backboneBatchSize}`}${budget.captionFraction === p.captionFraction ? '' : `, caption share ${budget.captionFraction}`}`,
        sampling || 'recipe default',
        // a reused tokenizer's seconds (trained once for several variants) are in each variant's time
        r.tokenizerReused ? `${fmt(r.trainSeconds, 0)} (tokenizer shared)` : fmt(r.trainSeconds, 0),
        fmt(r.reconAnalyzerAgreement),
        fmt(r.generationScoreSeen),
        `${fmt(r.generationScoreHeldOut)} (${fmt(r.generationCeilingHeldOut)})`,
        fmt(r.captionAccuracySeen),
        `${fmt(r.captionAccuracyHeldOut)} (${fmt(r.captionCeilingHeldOut)})`,
      ]);
      metrics[`v${vi}.s${si}.generationScoreSeen`] = r.generationScoreSeen;
      metrics[`v${vi}.s${si}.generationScoreHeldOut`] = r.generationScoreHeldOut;
      metrics[`v${vi}.s${si}.captionAccuracySeen`] = r.captionAccuracySeen;
      metrics[`v${vi}.reconAnalyzerAgreement`] = r.reconAnalyzerAgreement;
    }
  }
  const table: Table = {
    title: 'Recipe sweep of the image-token arms (one seed)',
    columns: [
      'arm',
      'recipe',
      'steps (tokenizer + backbone), backbone',
      'sampling',
      'train s',
      'tokenizer agreement',
      'generation seen',
      'generation held-out (ceiling)',
      'caption seen',
      'caption held-out (ceiling)',
    ],
    rows,
    note: `${p.evalImages} seen and ${p.evalImages} held-out prompts per row (binomial standard error <= ${fmt(0.5 / Math.sqrt(p.evalImages))}); train seconds on this run's machine, over every call that trained the variant (resumed phases included; n/a where a reused phase was trained by a version that did not record its seconds), sampling rows of one variant share its training.`,
  };
  return {
    metrics,
    tables: [table],
    summary:
      'Each row is one trained variant at one sampling setting, measured as lab.image-tokens measures. The recipe defaults of the arms are the best rows that fit the preset budgets; see docs/papers/comparative.md for the reading.',
  };
}

export const imageTokensSweep: Experiment = {
  id: 'lab.image-tokens-sweep',
  settings: (preset: string) => presetSettings(PRESETS[preset]),
  paper: 'Comparative',
  claim:
    'Which recipe makes each image-token arm read back and learn its prompts at the comparison budget (the evidence for the arms defaults).',
  presets: PRESETS,
  // one top-level sub-run per variant, each from the seed and the shared (read-only) data; a variant
  // in a parallel worker trains its own tokenizer when the cache is not ready yet (the same tokenizer:
  // the cache only saves time)
  parallelSubruns: true,
  run,
};
