/**
 * LatentLM's claims as runnable experiments (registered with the lab app), and LatentLM's arm of the
 * lab's image-token comparison with its recipe.
 */
import type { Experiment } from '@mmlm/core/experiment';
import { headStepsExperiment, varianceCollapseExperiment } from './images.js';
import { mixedExperiment } from './mixed.js';
import { ttsExperiment } from './tts.js';

export { headStepsExperiment, varianceCollapseExperiment } from './images.js';
export {
  imageTokenArm,
  type LatentLMArmRecipe,
  type LatentLMArmRecipeInput,
  LatentLMArmRecipeSchema,
  latentlmArmRecipe,
} from './imageTokenArm.js';
export { mixedExperiment } from './mixed.js';
export { ttsExperiment } from './tts.js';

/** Every LatentLM experiment, registered with the lab app. */
export const experiments: Experiment[] = [varianceCollapseExperiment, headStepsExperiment, ttsExperiment, mixedExperiment];
