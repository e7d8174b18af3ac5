import type { Experiment } from '@mmlm/core';
import { tinyGpt } from './tinyGpt.js';

/** Experiments that belong to the lab itself (the paper packages register theirs). */
export const labExperiments: Experiment[] = [tinyGpt];
