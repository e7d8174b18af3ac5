/**
 * @mmlm/data: procedural multimodal datasets, tokenizers, file IO and evaluators. Nothing is
 * downloaded; everything is deterministic by seed.
 */
export * from './audio/index.js';
export * from './eval/index.js';
export * from './images/index.js';
export * from './io/index.js';
export * from './text/index.js';
export * from './tokenizers/index.js';
