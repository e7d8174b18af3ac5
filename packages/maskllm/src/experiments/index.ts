/** MaskLLM's claims as runnable experiments (registered with the lab app). */
import type { Experiment } from '@mmlm/core/experiment';
import { ablationsExperiment } from './ablations.js';
import { ladderExperiment } from './ladder.js';
import { transferExperiment } from './transfer.js';

export { ablationsExperiment, ladderExperiment, transferExperiment };
export const experiments: Experiment[] = [ladderExperiment, transferExperiment, ablationsExperiment];
