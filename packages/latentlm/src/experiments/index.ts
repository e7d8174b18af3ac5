/** LatentLM's claims as runnable experiments (registered with the lab app). */
import type { Experiment } from '@mmlm/core';
import { headStepsExperiment, varianceCollapseExperiment } from './images.js';
import { mixedExperiment } from './mixed.js';
import { ttsExperiment } from './tts.js';

export { headStepsExperiment, mixedExperiment, ttsExperiment, varianceCollapseExperiment };
export const experiments: Experiment[] = [varianceCollapseExperiment, headStepsExperiment, ttsExperiment, mixedExperiment];
