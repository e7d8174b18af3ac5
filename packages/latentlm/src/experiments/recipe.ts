/** The LatentLM image-token arm's recipe (browser-safe: zod only; the arm itself, imageTokenArm.ts, needs node:fs). */
import { parseConfig } from '@mmlm/core';
import { z } from 'zod';

/**
 * The arm's recipe (ImageTokenArmOptions.recipe): every setting the lab does not fix, with the
 * defaults chosen by the `lab.image-tokens-sweep` experiment (apps/lab; table in
 * docs/papers/comparative.md). Deviations from the reference recipe are named at each field.
 */
export const LatentLMArmRecipeSchema = z.object({
  tokenizer: z
    .object({
      lr: z.number().positive().default(2e-3),
      /**
       * sigma-VAE beta. At the lab's quick budget (16 px, 300 + 600 steps, seed 0), 1e-3 against 1e-4:
       * rms(mu) 2.0 vs 3.3 (E|sigma| 0.75), equal reconstruction (PSNR 20.0 dB), captions naming the
       * right shape and colour 21/32 vs 5/32 (the reference's 1e-2 blurred 32 px reconstructions).
       */
      klWeight: z.number().nonnegative().default(1e-3),
      /**
       * C_sigma of sigma ~ N(0, (C_sigma / 0.8)^2) (the reference's image default 0.75). The sweep
       * (16 px, 1,500 backbone steps, no CFG, head temperature 1): 0.75 -> generation 0.07 seen,
       * 0.25 -> 0.18, 0.1 -> 0.20 (0.33 at temperature 0.5); captions 0.87 / 0.91 / 0.96. At this
       * scale less latent noise generates better, against the paper's argument for sigma-VAE noise
       * (latentlm.variance-collapse tests that claim).
       */
      cSigma: z.number().nonnegative().default(0.1),
      /**
       * Channels per latent; null: min(16, max(4, p^2 3 / 6)) for patch side p = imageSize / 4 (8 at
       * 16 px, 16 at 32 px: each latent compresses its patch six-fold).
       */
      latentDim: z.number().int().positive().nullable().default(null),
      /**
       * Width of the ViT encoder and decoder; null: the backbone's width (the arm's default). At
       * 32 px a width-64 tokenizer read back 0.88-0.92 and width 128 0.97-0.98 (the lab's small
       * sweeps, latentlm.variance-collapse small-arm-wide), so a narrow backbone can keep a
       * width-128 tokenizer.
       */
      dim: z.number().int().positive().nullable().default(null),
    })
    .prefault({}),
  backbone: z
    .object({
      /**
       * Peak learning rate (reference: 5e-4 at large batch). The sweep at C_sigma 0.1, 1,500 steps,
       * batch 16 (seen score, CFG 2, head temperature 0.5): 1e-3 0.08, 3e-3 0.37, 6e-3 0.52.
       */
      lr: z.number().positive().default(6e-3),
      /** AdamW decoupled weight decay (reference: 0.01; 0.1 as the Liquid arm). */
      weightDecay: z.number().nonnegative().default(0.1),
      /** Dropout in the backbone blocks (reference: 0; 0.1 as the Liquid arm, for the equal recipe). */
      dropout: z.number().min(0).lt(1).default(0.1),
      /** Warmup steps as a fraction of the phase (capped at 100, the reference's count). */
      warmupFraction: z.number().min(0).max(1).default(0.1),
      /** adaLN-Zero blocks of the diffusion head (reference default 3). */
      diffusionDepth: z.number().int().positive().default(3),
      /** Noise draws per latent (reference ddpm_batch_mul 4). */
      batchMul: z.number().int().positive().default(4),
      /**
       * What the head is trained to predict (the reference's default is eps; v-prediction is its
       * option). The `quick-latent` sweep (16 px, 1,000 + 1,000 steps, seed 0, CFG 2, temperature
       * 0.5): eps 0.25 seen / 0.16 held-out, v 0.71 / 0.50 (above the 0.29 memoriser ceiling),
       * equal training time. With eps, x0 = (x_t - sqrt(1 - a) eps) / sqrt(a) magnifies the small
       * head's errors at high noise, where each latent's content is decided.
       */
      predictionType: z.enum(['epsilon', 'v_prediction']).default('v_prediction'),
      /**
       * A learned embedding of the index of the latent each position predicts (LatentLM's
       * `imagePositions`; not in LatentLM, whose backbone has RoPE only). The Liquid arm's
       * ImagePositionLM is the same block; with both on, the arms compare on equal terms.
       */
      imagePositions: z.boolean().default(false),
    })
    .prefault({}),
  sampling: z
    .object({
      /** DPM-Solver++(2M) steps per latent. */
      headSteps: z.number().int().positive().default(10),
      /** CFG scale on the head's output (reference ImageNet: 1.65, eps; the sweep: 2 gave 0.37 seen vs 0.33 unguided at C_sigma 0.1). */
      cfgScale: z.number().positive().default(2),
      /** Log-SNR floor of the head solver's timestep grid (the `small` preset's; see config.ts). */
      lambdaMinClipped: z.number().default(-3),
      /**
       * Head temperature tau: x_T ~ N(0, tau^2 I) (MAR's diffusion temperature; the reference has
       * none, i.e. 1; the sweep: 0.5 gave 0.33 seen vs 0.20 at 1). `generate({ temperature })` overrides it.
       */
      temperature: z.number().positive().default(0.5),
    })
    .prefault({}),
});
export type LatentLMArmRecipeInput = z.input<typeof LatentLMArmRecipeSchema>;
export type LatentLMArmRecipe = z.infer<typeof LatentLMArmRecipeSchema>;

/** The arm's recipe with defaults filled in; errors name the field, the expectation and the value. */
export function latentlmArmRecipe(input: unknown = {}): LatentLMArmRecipe {
  return parseConfig('latentlm imageTokenArm recipe', LatentLMArmRecipeSchema, input ?? {});
}
