/**
 * @mmlm/latentlm: LatentLM (Sun et al. 2024, arXiv 2412.08635). sigma-VAE tokenizers for images and
 * speech, the cosine noise schedule and DPM-Solver++, the zero-initialised diffusion head, and
 * next-token diffusion over mixed discrete/continuous sequences on one causal Transformer.
 * Experiments: '@mmlm/latentlm/experiments'.
 */
export * from './config.js';
export * from './model.js';
export * from './sample.js';
export * from './schedule.js';
export * from './train.js';
export * from './vae.js';
