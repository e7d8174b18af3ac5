/**
 * SEED's claims as runnable experiments (registered with the lab app): `seed.retrieval` (Table 1,
 * retrieval from the causal embeddings vs from the codes, on the toy tokenizer of brief 1.8.2);
 * `seed.lora-vs-full` (SEED-LLaMA's LoRA + modules_to_save vs full fine-tuning of the LM on the codes).
 * The tokenizer recipe on Shapes (ViT pre-training, stage I, stage II) is in `common.ts`; the image
 * decoder back to pixels and its ShapeAnalyzer read-back in `pixels.ts`; SEED's arm of the lab's image-token
 * comparison (`seedArm`, an ImageTokenArmFactory) in `imageTokenArm.ts`.
 */
import type { Experiment } from '@mmlm/core/experiment';
import { loraVsFullExperiment } from './loraVsFull.js';
import { retrievalExperiment } from './retrieval.js';

export {
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
  type TrainedTokenizer,
  trainTokenizer,
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
  captionAccuracy,
  captionAttributes,
  LORA_FLOORS,
  LORA_VS_FULL_SETTINGS,
  type LoraVsFullSettings,
  loraVsFullExperiment,
  memoriserCeiling,
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
  CODE_R1_FLOOR,
  PAPER_TABLE1,
  RETRIEVAL_SETTINGS,
  type RetrievalFeatures,
  type RetrievalSettings,
  retrievalExperiment,
  retrievalFeatures,
} from './retrieval.js';

export const experiments: Experiment[] = [retrievalExperiment, loraVsFullExperiment];
