/**
 * @mmlm/maskllm: MaskLLM (Fang et al., NeurIPS 2024) learnable N:M sparsity for @mmlm/core
 * decoders, one-shot baselines (magnitude, Wanda, SparseGPT), compact mask storage, and a
 * compressed N:M weight format with a sparse matmul.
 */
export * from './config.js';
export * from './model.js';
export * from './prune.js';
export * from './sample.js';
export * from './sparse.js';
export * from './storage.js';
export * from './train.js';
