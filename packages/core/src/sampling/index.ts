/** Seeded sampling from logits and the pure logit filters it applies. */
export {
  type AllowedIds,
  cfgLogits,
  repetitionPenalty,
  softmax,
  topKFilter,
  topPFilter,
  vocabMask,
} from './filters.js';
export { filterLogits, type SampleOptions, sample, sampleAsync } from './sample.js';
export {
  type CachedDecoder,
  type LeftPadded,
  leftPadRows,
  type SpanSamplingOptions,
  sampleSpan,
  sampleUntil,
  type UntilSamplingOptions,
} from './span.js';
