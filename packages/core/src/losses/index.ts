/** Losses: token cross-entropy (HF causal-LM semantics, z-loss, smoothing), MSE, cosine, symmetric InfoNCE. */
export { type InfoNCEOptions, infoNCE } from './contrastive.js';
export { type CrossEntropyOptions, crossEntropy, type Reduction } from './cross_entropy.js';
export { cosineLoss, mse } from './regression.js';
