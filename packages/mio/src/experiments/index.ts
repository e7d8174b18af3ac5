/**
 * MIO's claims as runnable experiments (registered with the lab app): `mio.staged` (the staged
 * schedule against a single stage at the final mix, equal compute; issue 16 experiment 1). Still to
 * come: the speech-layout ablation (sequential vs alternating, content-only ASR input) and the
 * any-to-any tasks (brief §2.7). The toy world from @mmlm/data and its tokenization: toy_corpus.ts;
 * the codec's tone-speech helpers: codec.ts.
 */
import type { Experiment } from '@mmlm/core/experiment';
import { stagedExperiment } from './staged.js';

export const experiments: Experiment[] = [stagedExperiment];
export {
  evaluateToneCodec,
  type ToneCodecDataOptions,
  type ToneCodecEvaluation,
  toneCodecExample,
  toneUtterances,
} from './codec.js';
export {
  lossJump,
  STAGED_SETTINGS,
  type StagedEval,
  type StagedSettings,
  stagedExperiment,
  stagedSchedules,
} from './staged.js';
export {
  buildToyWorld,
  sizesCaption,
  TOY_SPECIAL_TOKENS,
  type ToyWorld,
  type ToyWorldOptions,
  toyCorpus,
  toyTextTokenizer,
} from './toy_corpus.js';
