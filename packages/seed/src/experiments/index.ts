/**
 * SEED's claims as runnable experiments (registered with the lab app): `seed.retrieval` (Table 1,
 * retrieval from the causal embeddings vs from the codes, on the toy tokenizer of brief 1.8.2);
 * `seed.lora-vs-full` (SEED-LLaMA's LoRA + modules_to_save vs full fine-tuning of the LM on the codes);
 * `seed.causal-vs-bidirectional` (section 4.3: causal vs bidirectional Q-Former codes under one LM);
 * `seed.semantic-vs-pixel` (the pilot of section 3.1: SEED's semantic codes vs patch VQ-VAE pixel codes).
 * The tokenizer recipe on Shapes (ViT pre-training, stage I, stage II) is in `common.ts`; the image
 * decoder back to pixels and its ShapeAnalyzer read-back in `pixels.ts`; SEED's arm of the lab's image-token
 * comparison (`seedArm`, an ImageTokenArmFactory) in `imageTokenArm.ts`.
 */
import type { Experiment } from '@mmlm/core/experiment';
import { causalVsBidirectionalExperiment } from './causalVsBidirectional.js';
import { loraVsFullExperiment } from './loraVsFull.js';
import { retrievalExperiment } from './retrieval.js';
import { semanticVsPixelExperiment } from './semanticVsPixel.js';

export {
  CAUSAL_VS_BIDIRECTIONAL_SETTINGS,
  type CausalVsBidirectionalSettings,
  causalVsBidirectionalExperiment,
  type FreeRunStats,
  freeRunCap,
  freeRunStats,
  MASK_ARMS,
} from './causalVsBidirectional.js';
export {
  armContext,
  armFigures,
  type CodeLMEval,
  type CodeLMSettings,
  CodeLMSettingsSchema,
  captionAccuracy,
  captionAttributes,
  captionCodes,
  disposeTextLM,
  EVAL_SETS,
  type EvalSet,
  encodeItemCodes,
  evaluateCodeLM,
  generateForCaptions,
  memoriserCeiling,
  memoriserCeilings,
  type Phase,
  type PhaseResult,
  PhaseSchema,
  phaseOptimizer,
  type Recipe,
  RecipeSchema,
  type SeedData,
  type SeedItem,
  seedData,
  seedTokenizerConfig,
  type TextLM,
  type TrainedTokenizer,
  tailMean,
  textPretrainedLM,
  trainTokenizer,
  tuneLMOnCodes,
} from './common.js';
export {
  captionLabels,
  type SeedArmRecipe,
  type SeedArmRecipeInput,
  SeedArmRecipeSchema,
  type SeedArmVocab,
  seedArm,
  seedArmRecipe,
  splitSteps,
} from './imageTokenArm.js';
export {
  LORA_FLOORS,
  LORA_VS_FULL_SETTINGS,
  type LoraVsFullSettings,
  loraVsFullExperiment,
} from './loraVsFull.js';
export { buildPools, type CodeStats, codeStats, poolRanks, recallAt } from './metrics.js';
export {
  backToPixels,
  evaluatePixels,
  nearestRows,
  objectsByAttributes,
  PIXEL_READBACK_FLOOR,
  type PixelRecipe,
  PixelRecipeSchema,
  type PixelResult,
  type PixelSetEval,
  pixelEmbeddings,
  pixelReadBack,
  type ReadBack,
  type TrainedPixelDecoder,
  trainPixelDecoder,
  writePixelGrid,
} from './pixels.js';
export {
  type PixelVQConfig,
  type PixelVQConfigInput,
  type PixelVQOutput,
  PixelVQVAE,
  patchGrid,
  pixelVQConfig,
  pixelVQStep,
  trainPixelVQ,
} from './pixelVq.js';
export {
  CODE_R1_FLOOR,
  PAPER_TABLE1,
  RETRIEVAL_SETTINGS,
  type RetrievalFeatures,
  type RetrievalSettings,
  retrievalExperiment,
  retrievalFeatures,
} from './retrieval.js';
export {
  CODE_ARMS,
  PAPER_PILOT,
  SEMANTIC_VS_PIXEL_SETTINGS,
  type SemanticVsPixelSettings,
  semanticVsPixelExperiment,
} from './semanticVsPixel.js';

export const experiments: Experiment[] = [
  retrievalExperiment,
  loraVsFullExperiment,
  causalVsBidirectionalExperiment,
  semanticVsPixelExperiment,
];
