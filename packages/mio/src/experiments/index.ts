/**
 * MIO's claims as runnable experiments (registered with the lab app). None yet: this first slice is
 * the foundation (vocabulary, packing, schedule). The reproductions come next: the speech-layout
 * ablation (sequential vs alternating, content-only ASR input), the staged mixture against a single
 * stage at the final mix, masked-packing equivalence and the new-row init (brief §2.7).
 */
import type { Experiment } from '@mmlm/core/experiment';

export const experiments: Experiment[] = [];
export {
  evaluateToneCodec,
  type ToneCodecDataOptions,
  type ToneCodecEvaluation,
  toneCodecExample,
  toneUtterances,
} from './codec.js';
