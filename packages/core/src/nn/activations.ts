/** Activation functions used by the layers (tfjs-core has no GELU or SiLU op). */
import { geluTanh as fusedGeluTanh, silu as fusedSilu, geluErf } from '../backend/kernels/fused.js';
import { tf } from '../tf.js';

/**
 * GELU, tanh approximation (GPT-2 / PyTorch approximate='tanh'): one fused kernel forward and one
 * backward where the backend has core's kernel (wasm), the composite formula elsewhere.
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return fusedGeluTanh(x);
}

/**
 * GELU, exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)): one fused kernel forward and one backward
 * where the backend has core's kernel (wasm), the composite formula and its autodiff elsewhere.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  return geluErf(x);
}

/**
 * SiLU / swish: x * sigmoid(x): one fused kernel forward and one backward where the backend has
 * core's kernel (wasm), the composite formula elsewhere.
 */
export function silu(x: tf.Tensor): tf.Tensor {
  return fusedSilu(x);
}

export type Activation = 'gelu' | 'gelu_tanh' | 'relu' | 'silu';

export function activation(name: Activation): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu':
      return gelu;
    case 'gelu_tanh':
      return geluTanh;
    case 'relu':
      return (x) => tf.relu(x);
    case 'silu':
      return silu;
    default:
      throw new Error(`unknown activation "${name as string}"; expected gelu, gelu_tanh, relu or silu`);
  }
}

export { dropout, flushToZero, gumbelNoise } from '../backend/kernels/fused.js';
