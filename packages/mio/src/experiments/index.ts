/**
 * MIO's claims as runnable experiments (registered with the lab app): `mio.staged` (the staged
 * schedule against a single stage at the final mix, equal compute; issue 16 experiment 1) and
 * `mio.speech-layout` (sequential vs alternating output speech, content-only vs full ASR input;
 * experiment 2) and `mio.any-to-any` (interleaved stories, instructional editing and clip description
 * from one SFT decoder, seen vs held-out with memoriser ceilings; experiment 3). The toy world from
 * @mmlm/data and its tokenization: toy_corpus.ts; the codec's tone-speech helpers: codec.ts.
 */
import type { Experiment } from '@mmlm/core/experiment';
import { anyToAnyExperiment } from './any_to_any.js';
import { speechLayoutExperiment } from './speech_layout.js';
import { stagedExperiment } from './staged.js';

export const experiments: Experiment[] = [stagedExperiment, speechLayoutExperiment, anyToAnyExperiment];
export {
  ANY_TO_ANY_SETTINGS,
  ANY_TO_ANY_TASKS,
  type AnyToAnyEval,
  type AnyToAnyEvalKit,
  type AnyToAnySetEval,
  type AnyToAnySettings,
  type AnyToAnySettingsInput,
  type AnyToAnyWorld,
  anyToAnyExperiment,
  anyToAnySchedule,
  anyToAnySettings,
  anyToAnySetup,
  anyToAnyWorld,
  type ClipItem,
  clipOutcome,
  type EditItem,
  type EditKind3,
  type EditOutcome,
  type EditRequest,
  type EditScores,
  editOutcome,
  editScores,
  evaluateAnyToAny,
  type ObjectAttrs,
  parseClipDescription,
  parseNarration,
  type StoryItem,
  type StoryOutcome,
  type StorySegment,
  scoreEdit,
  scoreStory,
  sentenceWords,
} from './any_to_any.js';
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
  textPretrainSchedule,
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
