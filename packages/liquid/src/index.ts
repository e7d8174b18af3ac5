/** @mmlm/liquid: Liquid (Wu et al. 2024), one language model over text and VQ image codes. */

export * from './codes.js';
export * from './collate.js';
export * from './config.js';
export * from './conv.js';
export * from './model.js';
export * from './sample.js';
export * from './train.js';
