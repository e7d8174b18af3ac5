/**
 * MIO's claims as runnable experiments (registered with the lab app): `mio.staged` (the staged
 * schedule against a single stage at the final mix, equal compute; issue 16 experiment 1) and
 * `mio.speech-layout` (sequential vs alternating output speech, content-only vs full ASR input;
 * experiment 2). Still to come: the any-to-any tasks (brief §2.7). The toy world from @mmlm/data and
 * its tokenization: toy_corpus.ts; the codec's tone-speech helpers: codec.ts.
 */
import type { Experiment } from '@mmlm/core/experiment';
import { speechLayoutExperiment } from './speech_layout.js';
import { stagedExperiment } from './staged.js';

export const experiments: Experiment[] = [stagedExperiment, speechLayoutExperiment];
export {
  evaluateToneCodec,
  type ToneCodecDataOptions,
  type ToneCodecEvaluation,
  toneCodecExample,
  toneUtterances,
} from './codec.js';
export {
  type CodedUtterance,
  evaluateSpeechLayoutArm,
  memoriserWer,
  SPEECH_LAYOUT_ARMS,
  SPEECH_LAYOUT_SETTINGS,
  type SpeechLayoutArm,
  type SpeechLayoutEval,
  type SpeechLayoutEvalKit,
  type SpeechLayoutSample,
  type SpeechLayoutSetEval,
  type SpeechLayoutSettings,
  type SpeechLayoutSettingsInput,
  type SpeechLayoutSplit,
  type SpeechLayoutSplitOptions,
  speechLayoutExperiment,
  speechLayoutSample,
  speechLayoutSchedule,
  speechLayoutSettings,
  speechLayoutSplit,
  speechLayoutTaskData,
} from './speech_layout.js';
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
