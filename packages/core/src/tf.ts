/**
 * The only door to TensorFlow.js in mmlm. Every package imports `tf` from `@mmlm/core`, so the
 * whole workspace shares one engine (tfjs keeps its kernel, gradient and backend registries in
 * globals; two copies would split them silently).
 *
 * `@tensorflow/tfjs` (not bare tfjs-core) is imported because its Node bundle is the one that
 * registers the gradients and the chained tensor methods against the CommonJS tfjs-core that the
 * cpu, wasm and tfjs-node backends also load.
 */
import * as tf from '@tensorflow/tfjs';

export type { DataType, Rank, Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, TensorLike, Variable } from '@tensorflow/tfjs';
export { tf };
