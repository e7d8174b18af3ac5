import type { Experiment } from '@mmlm/core/experiment';
import { imageTokens } from './imageTokens.js';
import { imageTokensSweep } from './imageTokensSweep.js';
import { tinyGpt } from './tinyGpt.js';
import { tokenizerReadback } from './tokenizerReadback.js';

/** Experiments that belong to the lab itself: the comparative ones and the tiny-GPT smoke run (the paper packages register theirs). */
export const labExperiments: Experiment[] = [imageTokens, imageTokensSweep, tokenizerReadback, tinyGpt];
