/**
 * Fused ops with their own kernels where core supplies them (wasm) and the composite tfjs formula
 * elsewhere, so they are drop-in on every backend:
 * - geluTanh: GELU, tanh approximation (Hendrycks & Gimpel 2016, "Gaussian Error Linear Units",
 *   eq. 2; GPT-2 / PyTorch approximate='tanh'): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 *   Forward and backward are one pass each instead of about 8 and 15 elementwise ops.
 * - silu: SiLU / swish x sigmoid(x) (Elfwing et al. 2018; Ramachandran et al. 2017); forward and
 *   backward one pass each instead of 2 and about 6 ops.
 *
 * Gradients are defined with tf.customGrad (first order; the fused backward has no gradient of
 * its own).
 */
import { tf } from '../../tf.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
export const GELU_KERNEL = 'MmlmGeluTanh';
export const GELU_GRAD_KERNEL = 'MmlmGeluTanhGrad';
export const SILU_KERNEL = 'MmlmSilu';
/**
 * RoPE rotation of x [..., T, d] by cos / sin tables [T, d] (inputs x, cos, sin; attrs
 * interleaved, inverse): y = R(theta) x, or R(-theta) x when inverse, its own gradient.
 */
export const ROPE_KERNEL = 'MmlmRope';
/** GroupNorm NHWC (inputs x, weight, bias; outputs y, mean [B, G], rstd [B, G]) and its gradient; see nn/group_norm.ts. */
export const GROUP_NORM_KERNEL = 'MmlmGroupNorm';
export const GROUP_NORM_GRAD_KERNEL = 'MmlmGroupNormGrad';
export const SILU_GRAD_KERNEL = 'MmlmSiluGrad';
/** One AdamW update of one parameter (inputs p, m, v, g; outputs p', m', v'); see wasm_ops.ts. */
export const ADAMW_KERNEL = 'MmlmAdamW';

function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

function geluComposite(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(0.5).mul(tf.tanh(x.add(x.mul(x).mul(x).mul(0.044715)).mul(SQRT_2_OVER_PI)).add(1)));
}

function geluGradComposite(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const x2 = x.square();
    const t = tf.tanh(x.add(x2.mul(x).mul(0.044715)).mul(SQRT_2_OVER_PI));
    const dt = tf
      .scalar(1)
      .sub(t.square())
      .mul(x2.mul(3 * 0.044715).add(1))
      .mul(x.mul(0.5 * SQRT_2_OVER_PI));
    return dy.mul(t.add(1).mul(0.5).add(dt));
  });
}

const geluCustom = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  const fused = x.dtype === 'float32' && hasKernel(GELU_KERNEL);
  const value = fused ? (tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor) : geluComposite(x);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const xs = saved[0] as tf.Tensor;
      return dy.dtype === 'float32' && hasKernel(GELU_GRAD_KERNEL)
        ? (tf.engine().runKernel(GELU_GRAD_KERNEL, { dy, x: xs }) as tf.Tensor)
        : geluGradComposite(dy, xs);
    },
  };
}) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor });

/** GELU (tanh form), fused where the backend has core's kernel. */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`geluTanh: x must be float32, got ${x.dtype}`);
  return geluCustom(x);
}

function siluComposite(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(tf.sigmoid(x)));
}

function siluGradComposite(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const s = tf.sigmoid(x);
    return dy.mul(s.mul(x.mul(tf.scalar(1).sub(s)).add(1)));
  });
}

const siluCustom = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  const fused = x.dtype === 'float32' && hasKernel(SILU_KERNEL);
  const value = fused ? (tf.engine().runKernel(SILU_KERNEL, { x }) as tf.Tensor) : siluComposite(x);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const xs = saved[0] as tf.Tensor;
      return dy.dtype === 'float32' && hasKernel(SILU_GRAD_KERNEL)
        ? (tf.engine().runKernel(SILU_GRAD_KERNEL, { dy, x: xs }) as tf.Tensor)
        : siluGradComposite(dy, xs);
    },
  };
}) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor });

/** SiLU / swish x sigmoid(x), fused where the backend has core's kernel. */
export function silu(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`silu: x must be float32, got ${x.dtype}`);
  return siluCustom(x);
}
