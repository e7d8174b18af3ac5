/** LatentLM's claims as runnable experiments (registered with the lab app). */
import type { Experiment } from '@mmlm/core/experiment';
import { headStepsExperiment, varianceCollapseExperiment } from './images.js';
import { ARM_SETTINGS, imageTokenArm } from './imageTokenArm.js';
import { mixedExperiment } from './mixed.js';
import { ttsExperiment } from './tts.js';

export { ARM_SETTINGS, headStepsExperiment, imageTokenArm, mixedExperiment, ttsExperiment, varianceCollapseExperiment };
export const experiments: Experiment[] = [varianceCollapseExperiment, headStepsExperiment, ttsExperiment, mixedExperiment];
export { type LatentLMArmRecipe, type LatentLMArmRecipeInput, LatentLMArmRecipeSchema, latentlmArmRecipe } from './imageTokenArm.js';
