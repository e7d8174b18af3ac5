/**
 * The sparsity ladder's preset settings, method labels and the paper's Table 1, as plain data with
 * no Node import, so the CLI experiment (`maskllm.ladder` in `@mmlm/maskllm/experiments`) and the
 * browser page (apps/web) read the same numbers.
 */

/** The one-shot priors a ladder preset can learn masks from. */
export type LadderPrior = 'none' | 'magnitude' | 'wanda' | 'sparsegpt';

export interface LadderPresetInput {
  /** Characters of the procedural corpus (ignored with --data). */
  chars: number;
  /** At most this many characters of a --data file. */
  maxDataChars: number;
  dense: { steps: number; batchSize: number; lr: number; lrMin: number; weightDecay: number; evalWindows: number };
  /** Calibration sequences for Wanda and SparseGPT (reference: 128 of 4096 tokens). */
  calib: number;
  maskllm: { evalWindows: number };
  priors: LadderPrior[];
}

/** The ladder's tiny, quick and small settings (the model, mask and train config is the config.ts preset of the same name). */
export const LADDER_PRESET_INPUTS: Record<'tiny' | 'quick' | 'small', LadderPresetInput> = {
  tiny: {
    chars: 6000,
    maxDataChars: 6000,
    dense: { steps: 30, batchSize: 4, lr: 3e-3, lrMin: 3e-4, weightDecay: 0.1, evalWindows: 4 },
    calib: 4,
    maskllm: { evalWindows: 4 },
    priors: ['none', 'magnitude', 'sparsegpt'],
  },
  quick: {
    chars: 150_000,
    maxDataChars: 300_000,
    dense: { steps: 400, batchSize: 16, lr: 3e-3, lrMin: 3e-4, weightDecay: 0.1, evalWindows: 100 },
    calib: 32,
    maskllm: { evalWindows: 100 },
    priors: ['none', 'magnitude', 'sparsegpt'],
  },
  small: {
    chars: 400_000,
    maxDataChars: 1_200_000,
    dense: { steps: 1000, batchSize: 16, lr: 2e-3, lrMin: 2e-4, weightDecay: 0.1, evalWindows: 300 },
    calib: 64,
    maskllm: { evalWindows: 300 },
    priors: ['none', 'magnitude', 'wanda', 'sparsegpt'],
  },
};

/** Display names of the ladder's rows. */
export const LADDER_LABELS: Record<string, string> = {
  dense: 'Dense',
  magnitude: 'Magnitude',
  wanda: 'Wanda',
  sparsegpt: 'SparseGPT (no weight update)',
  sparsegpt_update: 'SparseGPT (weight update)',
  maskllm_none: 'MaskLLM, no prior',
  maskllm_magnitude: 'MaskLLM, magnitude prior',
  maskllm_wanda: 'MaskLLM, Wanda prior',
  maskllm_sparsegpt: 'MaskLLM, SparseGPT prior',
};

/** Paper Table 1 (2:4, frozen weights, Wikitext-2 PPL) for two of its models, by ladder row. */
export const PAPER_TABLE1: Record<string, { llama7b: number | null; gpt843m: number | null }> = {
  dense: { llama7b: 5.12, gpt843m: 12.42 },
  magnitude: { llama7b: 54.71, gpt843m: 1.15e4 },
  wanda: { llama7b: 11.29, gpt843m: 51.37 },
  sparsegpt: { llama7b: 10.46, gpt843m: 79.84 },
  sparsegpt_update: { llama7b: 10.42, gpt843m: 38.78 },
  maskllm_none: { llama7b: 9.12, gpt843m: 18.62 },
  maskllm_magnitude: { llama7b: 6.77, gpt843m: 16.07 },
  maskllm_wanda: { llama7b: 6.8, gpt843m: 16.39 },
  maskllm_sparsegpt: { llama7b: 6.72, gpt843m: 15.39 },
};
