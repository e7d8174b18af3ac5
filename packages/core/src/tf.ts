/**
 * The only door to TensorFlow.js in mmlm. Every package imports `tf` from `@mmlm/core`, so the
 * whole workspace shares one engine (tfjs keeps its kernel, gradient and backend registries in
 * globals; two copies would split them silently).
 *
 * tfjs comes in as `@tensorflow/tfjs-core` plus the backends core uses (cpu here, always
 * registered; wasm loaded by initBackend; tfjs-node as an optional peer), not the
 * `@tensorflow/tfjs` union package (layers, converter, data, webgl: unused, most of the install).
 * The gradients and chained tensor methods (`x.square()`), which tfjs-core's main module leaves out,
 * are registered by `#platform`: in Node from a CommonJS bundle of them (vendor/tfjs-core-ops.cjs),
 * in a bundler from tfjs-core's own ESM modules.
 *
 * The reference below brings the chained methods' types (declared by the module that registers
 * them) into tf.d.ts too, for dependents.
 */
/// <reference types="@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops" resolution-mode="require" preserve="true" />
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '#platform';

export type { DataType, Rank, Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, TensorLike, Variable } from '@tensorflow/tfjs-core';
export { tf };
