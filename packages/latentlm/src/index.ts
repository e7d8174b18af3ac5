/**
 * @mmlm/latentlm: LatentLM (Sun et al. 2024, arXiv 2412.08635). sigma-VAE tokenizers for images and
 * speech, the cosine noise schedule and DPM-Solver++, the zero-initialised diffusion head, and
 * next-token diffusion over mixed discrete/continuous sequences on one causal Transformer.
 * Experiments: '@mmlm/latentlm/experiments'. Exports are listed by name (the layers inside the
 * tokenizers and the head's condition layer stay inside their modules).
 */
export {
  type DiffusionConfig,
  hopLength,
  type ImageVaeConfig,
  type ImageVaeConfigInput,
  imageVaeConfig,
  type LatentLMConfig,
  type LatentLMConfigInput,
  latentlmConfig,
  type ModelConfig,
  type ModelConfigInput,
  PAPER_SIZES,
  type PaperSize,
  type ParameterCount,
  PRESETS,
  paperConfig,
  parameterCount,
  preset,
  resolveModelConfig,
  type SpeechVaeConfig,
  type SpeechVaeConfigInput,
  speechVaeConfig,
  type TrainConfig,
} from './config.js';
export { type LatentLMArmRecipe, type LatentLMArmRecipeInput, LatentLMArmRecipeSchema, latentlmArmRecipe } from './experiments/recipe.js';
export { DiffusionHead, FinalLayer, forwardWithCfg, LatentLM, type LatentStats, MLPBlock } from './model.js';
export { type GenerateOptions, type GenerateResult, generate, type HeadSampleOptions, sampleLatents } from './sample.js';
export {
  type BetaSchedule,
  type DenoiseFn,
  DPMSolverMultistep,
  type DpmSolverOptions,
  NoiseSchedule,
  type NoiseScheduleOptions,
  type PredictionType,
} from './schedule.js';
export {
  type BuildBatchOptions,
  buildMixedBatch,
  IGNORE_INDEX,
  type LossOptions,
  type LossParts,
  latentLMLoss,
  type MixedBatch,
  type MixedSequence,
  type SpanInfo,
  type StepResult,
  trainStep,
  validateMixedSequence,
} from './train.js';
export {
  gaussianKl,
  ImageVAE,
  type LatentTokenizer,
  type Posterior,
  SpeechVAE,
  Stft,
  samplePosterior,
  sigmaVaeKl,
  sigmaVaeSample,
  type VaeLoss,
} from './vae.js';
