/** LayerNorm (Ba et al. 2016) and RMSNorm (Zhang & Sennrich 2019), over the last dimension. */
import { LAYER_NORM_KERNEL, RMS_NORM_KERNEL } from '../backend/kernels/fused.js';
import { tf } from '../tf.js';
import { checkPositiveInt } from './linear.js';
import { Module } from './module.js';

export interface LayerNormOptions {
  /** Added to the variance inside the square root (default 1e-5, as nn.LayerNorm). */
  eps?: number;
  /** Learnable gain `weight` (default true). */
  elementwiseAffine?: boolean;
  /** Learnable `bias` (default true; false for bias-free models). */
  bias?: boolean;
}

/** y = (x - mean) / sqrt(var + eps) * weight + bias; var is the biased variance. */
export class LayerNorm extends Module {
  readonly weight: tf.Variable | null; // [dim]
  readonly bias: tf.Variable | null; // [dim]
  readonly eps: number;

  constructor(
    readonly dim: number,
    opts: LayerNormOptions = {},
  ) {
    super();
    checkPositiveInt('LayerNorm dim', dim);
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? this.param('weight', tf.ones([dim])) : null;
    this.bias = affine && (opts.bias ?? true) ? this.param('bias', tf.zeros([dim])) : null;
  }

  forward(x: tf.Tensor /* [..., dim] */): tf.Tensor /* [..., dim] */ {
    return tf.tidy(() => {
      checkLastDim('LayerNorm', x, this.dim);
      const fused = fusedNorm(LAYER_NORM_KERNEL, x, this.weight, this.bias, this.eps);
      if (fused) return fused;
      const mean = x.mean(-1, true); // [..., 1]
      const xc = x.sub(mean);
      const variance = xc.square().mean(-1, true); // [..., 1]
      let y = xc.mul(tf.rsqrt(variance.add(this.eps)));
      if (this.weight) y = y.mul(this.weight);
      if (this.bias) y = y.add(this.bias);
      return y;
    });
  }
}

export interface RMSNormOptions {
  /** Inside the rsqrt (default 1e-6, as LatentLM / LLaMA). */
  eps?: number;
  /** Learnable gain `weight` (default true; LatentLM's backbone norm has none). */
  elementwiseAffine?: boolean;
}

/** y = x * rsqrt(mean(x^2) + eps) * weight. */
export class RMSNorm extends Module {
  readonly weight: tf.Variable | null; // [dim]
  readonly eps: number;

  constructor(
    readonly dim: number,
    opts: RMSNormOptions = {},
  ) {
    super();
    checkPositiveInt('RMSNorm dim', dim);
    this.eps = opts.eps ?? 1e-6;
    this.weight = (opts.elementwiseAffine ?? true) ? this.param('weight', tf.ones([dim])) : null;
  }

  forward(x: tf.Tensor /* [..., dim] */): tf.Tensor /* [..., dim] */ {
    return tf.tidy(() => {
      checkLastDim('RMSNorm', x, this.dim);
      const fused = fusedNorm(RMS_NORM_KERNEL, x, this.weight, null, this.eps);
      if (fused) return fused;
      const y = x.mul(tf.rsqrt(x.square().mean(-1, true).add(this.eps)));
      return this.weight ? y.mul(this.weight) : y;
    });
  }
}

/**
 * The one-call forward of core's kernels (wasm) while no gradient tape records (inference,
 * evaluation, generation): bit-identical to the composite below it, which training keeps so that
 * tfjs derives its gradient as before. null where the backend has no such kernel or x is not float32.
 */
function fusedNorm(kernel: string, x: tf.Tensor, weight: tf.Tensor | null, bias: tf.Tensor | null, eps: number): tf.Tensor | null {
  if (x.dtype !== 'float32' || tf.engine().isTapeOn() || tf.getKernel(kernel, tf.getBackend()) === undefined) return null;
  const inputs: tf.NamedTensorMap = { x };
  if (weight) inputs.weight = weight;
  if (bias) inputs.bias = bias;
  return tf.engine().runKernel(kernel, inputs, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

export function checkLastDim(what: string, x: tf.Tensor, dim: number): void {
  const last = x.shape[x.shape.length - 1];
  if (last !== dim) throw new Error(`${what}.forward: input last dim must be ${dim}, got shape [${x.shape}]`);
}
