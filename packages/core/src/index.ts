/**
 * @mmlm/core: the shared tensor core of mmlm. The only door to TensorFlow.js.
 */

export * from './backend/init.js';
export * from './config.js';
export * from './experiment/index.js';
export {
  compareSeeds,
  formatMeanStd,
  type MeanStd,
  meanStd,
  type SeedComparison,
  type SeedVerdict,
  seedCell,
  seedsHeader,
  seedValues,
  seedVerdict,
} from './experiment/stats.js';
export * from './io/index.js';
export * from './lora/index.js';
export * from './losses/index.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './quant/index.js';
export * from './rng/global.js';
export * from './rng/index.js';
export * from './sampling/index.js';
export * from './testing/index.js';
export type { DataType, Rank, Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, TensorLike, Variable } from './tf.js';
export { tf } from './tf.js';
export * from './train/index.js';
