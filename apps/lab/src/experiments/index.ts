import type { Experiment } from '@mmlm/core';
export const labExperiments: Experiment[] = [];
