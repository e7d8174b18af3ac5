/** Activation functions used by the layers (tfjs-core has no GELU or SiLU op). */
import { tf } from '../tf.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation (GPT-2 / PyTorch approximate='tanh'). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = x.add(x.pow(3).mul(0.044715)).mul(SQRT_2_OVER_PI);
    return x.mul(0.5).mul(tf.tanh(inner).add(1));
  });
}

/** GELU, exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(0.5).mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)));
}

/** SiLU / swish: x * sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(tf.sigmoid(x)));
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
