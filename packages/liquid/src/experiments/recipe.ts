/** The Liquid image-token arm's recipe (browser-safe: zod only; the arm itself, arm.ts, needs node:fs). */
import { parseConfig } from '@mmlm/core';
import { z } from 'zod';
import { type ImageTokenizerConfig, imageTokenizerConfig } from '../config.js';

/**
 * The arm's recipe (ImageTokenArmOptions.recipe), chosen by the `lab.image-tokens-sweep` experiment
 * (apps/lab; its table is in docs/papers/comparative.md). Deviations from Liquid's reference recipe,
 * all for the toy scale (K = 64 codes, 1,000-4,000 images, minutes of CPU):
 * - the VQ codebook is initialised by k-means over the first batch of encoder outputs and updated by
 *   EMA (VQ-VAE-2), with dead-code restart; the reference (taming VectorQuantizer2) learns a
 *   uniformly initialised codebook by gradient, which at this budget leaves most codes unused and
 *   the reconstructions unreadable;
 * - the LM has dropout 0.1 and AdamW weight decay 0.1 (Liquid's script: 0 and 0): the model sees the
 *   same few hundred scene keys many times and memorises noise without them.
 */
export const LiquidArmRecipeSchema = z.object({
  tokenizer: z
    .object({
      /**
       * Codebook size K. Tokenizer read-back (analyzer agreement) at 16 px by seed: K 64 after 1,000
       * steps 0.980 / 0.979 (seeds 1, 2; 0.984 for seed 0 at 1,200); K 128 after 1,000 steps 0.936 /
       * 0.979, after 600 steps 0.961 / 0.768 / 0.879 (seeds 0-2); 256 x 16-d codes 0.898 (seed 0).
       */
      numCodes: z.number().int().min(2).default(64),
      /** Code vector size. */
      codeDim: z.number().int().positive().default(8),
      /** Conv width of the encoder / decoder. */
      ch: z.number().int().positive().default(16),
      lr: z.number().positive().default(2e-3),
      /** EMA decay of the codebook; null learns it by gradient as taming's VectorQuantizer2. */
      emaDecay: z.number().gt(0).lt(1).nullable().default(0.99),
      /** k-means codebook init on the first training batch (lucidrains' kmeans_init). */
      kmeansInit: z.boolean().default(true),
      /** Restart codes unused for this many batches (0 = off). */
      deadCodeSteps: z.number().int().nonnegative().default(20),
      /**
       * Downsampling factor f (a power of two >= 2): an S px image becomes (S / f)^2 codes. Default 4
       * (16 codes at 16 px, 64 at 32 px); 8 at 32 px gives 16 codes, the LatentLM arm's latent count.
       */
      downsample: z
        .number()
        .int()
        .min(2)
        .refine((f) => (f & (f - 1)) === 0, { message: 'must be a power of two' })
        .default(4),
    })
    .prefault({}),
  backbone: z
    .object({
      /** Peak learning rate (sweep: 3e-3 beat 1e-3 at 1,000 steps, seen score 0.54 vs 0.39 at CFG 3). */
      lr: z.number().positive().default(3e-3),
      /** AdamW weight decay; with dropout it doubled the seen score at 2,000 steps (0.64 vs 0.34 at CFG 3, T 0.5). */
      weightDecay: z.number().nonnegative().default(0.1),
      dropout: z.number().min(0).lt(1).default(0.1),
      /** Warmup steps as a fraction of the phase (capped at 100 steps). */
      warmupFraction: z.number().min(0).max(1).default(0.1),
      /**
       * Add a learned embedding of the grid index of the code each position predicts (model.ts
       * ImagePositionLM; not in Liquid, whose LM has only RoPE).
       */
      imagePositions: z.boolean().default(false),
    })
    .prefault({}),
  sampling: z
    .object({
      /**
       * CFG scale s of l_u + s (l_c - l_u) (Liquid's evaluation: 7). The sweep (seen score, T 0.5):
       * s = 1 0.80, 1.5 0.81, 3 0.64, 5 0.41 at 2,000 steps (K 128, seed 0); s = 1 0.57, 1.5 0.68 at
       * the quick budget (K 64, seed 1). Strong guidance pushes a small model's samples apart (one
       * stray code is an extra blob); liquid.cfg-sweep measures the paper's CFG claim itself.
       */
      cfgScale: z.number().positive().default(1.5),
      /** Temperature (Liquid's evaluation: 0.99; the sweep: 0.5 beat 0.99 at every CFG scale). */
      temperature: z.number().nonnegative().default(0.5),
      topK: z.number().int().nonnegative().default(4096),
      topP: z.number().positive().max(1).default(0.96),
    })
    .prefault({}),
});
export type LiquidArmRecipeInput = z.input<typeof LiquidArmRecipeSchema>;
export type LiquidArmRecipe = z.infer<typeof LiquidArmRecipeSchema>;

/** The arm's recipe with defaults filled in; errors name the field, the expectation and the value. */
export function liquidArmRecipe(input: unknown = {}): LiquidArmRecipe {
  return parseConfig('liquid imageTokenArm recipe', LiquidArmRecipeSchema, input ?? {});
}

/**
 * The arm's tokenizer: f x downsampling (recipe `downsample`, default 4: a 16 px image is 4 x 4 = 16
 * codes), a constant conv width,
 * no ResnetBlock in the encoder levels (the two mid blocks remain, and one block per decoder level):
 * the lab's quick budget leaves no room for more. One block per encoder level took about twice the
 * tokenizer time for no better PSNR on 16 px Shapes (16.8 vs 16.9 dB at the quick budget, README);
 * `scripts/tokenizer-sweep.ts` compares such variants.
 */
export function armTokenizerConfig(imageSize: number, seed: number, recipe: LiquidArmRecipe = liquidArmRecipe()): ImageTokenizerConfig {
  const t = recipe.tokenizer;
  return imageTokenizerConfig({
    imageSize,
    ch: t.ch,
    chMult: new Array(Math.log2(t.downsample) + 1).fill(1), // constant width, log2(f) downsamplings
    numResBlocks: 0,
    zChannels: 16,
    codeDim: t.codeDim,
    numCodes: t.numCodes,
    deadCodeSteps: t.deadCodeSteps,
    ...(t.emaDecay === null ? {} : { emaDecay: t.emaDecay }),
    kmeansInit: t.kmeansInit,
    seed,
  });
}
