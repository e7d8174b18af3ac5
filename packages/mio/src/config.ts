/**
 * Configuration of MIO (Wang et al. 2024, arXiv 2409.17692): the extended vocabulary and the
 * four-stage schedule, with presets `tiny` (tests), `small` (CPU reproductions in minutes) and
 * `paper` (Yi-6B + SEED-2 + SpeechTokenizer levels 1-4: 76,292 ids; Table 9's schedule).
 */
import { parseConfig } from '@mmlm/core';
import { z } from 'zod';
import { SCHEDULE_PRESETS, ScheduleSchema } from './schedule.js';
import { PAPER_VOCAB_CONFIG, VocabConfigSchema } from './vocab.js';

export const MioConfigSchema = z.object({
  /** The extended vocabulary (text + image codes + speech levels + 4 specials). */
  vocab: VocabConfigSchema.default(() => VocabConfigSchema.parse({})),
  /** The four training stages. */
  schedule: ScheduleSchema.default(() => structuredClone(SCHEDULE_PRESETS.tiny)),
});
export type MioConfigInput = z.input<typeof MioConfigSchema>;
export type MioConfig = z.infer<typeof MioConfigSchema>;

/** A validated config; errors name each bad field, its expected and its actual value. */
export function mioConfig(input: MioConfigInput = {}): MioConfig {
  return parseConfig('MIO', MioConfigSchema, input);
}

export const PRESETS = {
  /** 64 text ids, 16 image codes x 4 per image, 4 speech levels of 8 codes; a few steps per stage. */
  tiny: mioConfig({}),
  /** Toy RVQ of K = 16 per level (brief §2.7), 64 image codes x 16 per image; 1% of the paper's steps. */
  small: mioConfig({
    vocab: { textVocabSize: 256, imageCodes: 64, tokensPerImage: 16, speechCodebookSize: 16, speechLevels: 4 },
    schedule: SCHEDULE_PRESETS.small,
  }),
  /** The paper's sizes. */
  paper: mioConfig({ vocab: PAPER_VOCAB_CONFIG, schedule: SCHEDULE_PRESETS.paper }),
} as const;
export type PresetName = keyof typeof PRESETS;

/** A deep copy of a preset. */
export function preset(name: string): MioConfig {
  // own keys only: `constructor` or `__proto__` are not presets
  const p = Object.hasOwn(PRESETS, name) ? (PRESETS as Record<string, MioConfig>)[name] : undefined;
  if (!p) throw new Error(`MIO: unknown preset "${name}"; expected one of ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(p);
}
