/** LayerNorm (Ba et al. 2016) and RMSNorm (Zhang & Sennrich 2019), over the last dimension. */
import { LAYER_NORM_KERNEL, NORM_GRAD_KERNEL, NORM_TRAIN_KERNEL, oneTapeRecording, RMS_NORM_KERNEL } from '../backend/kernels/fused.js';
import { coreKernelsActive } from '../backend/kernels/index.js';
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
      const fused =
        fusedNorm(LAYER_NORM_KERNEL, x, this.weight, this.bias, this.eps) ?? trainNorm(true, x, this.weight, this.bias, this.eps);
      return fused ?? layerNormComposite(x, this.weight, this.bias, this.eps);
    });
  }
}

/**
 * LayerNorm as tfjs ops, differentiated by tfjs's autodiff: what LayerNorm computes on backends
 * without core's norm kernels, and the reference the wasm kernels reproduce bit for bit.
 */
export function layerNormComposite(
  x: tf.Tensor /* [..., D] */,
  weight: tf.Tensor | null /* [D] */,
  bias: tf.Tensor | null /* [D] */,
  eps: number,
): tf.Tensor /* [..., D] */ {
  return tf.tidy(() => {
    const mean = x.mean(-1, true); // [..., 1]
    const xc = x.sub(mean);
    const variance = xc.square().mean(-1, true); // [..., 1]
    let y = xc.mul(tf.rsqrt(variance.add(eps)));
    if (weight) y = y.mul(weight);
    if (bias) y = y.add(bias);
    return y;
  });
}

/** RMSNorm as tfjs ops (see layerNormComposite). */
export function rmsNormComposite(x: tf.Tensor /* [..., D] */, weight: tf.Tensor | null /* [D] */, eps: number): tf.Tensor /* [..., D] */ {
  return tf.tidy(() => {
    const y = x.mul(tf.rsqrt(x.square().mean(-1, true).add(eps)));
    return weight ? y.mul(weight) : y;
  });
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
      const fused = fusedNorm(RMS_NORM_KERNEL, x, this.weight, null, this.eps) ?? trainNorm(false, x, this.weight, null, this.eps);
      return fused ?? rmsNormComposite(x, this.weight, this.eps);
    });
  }
}

/**
 * The one-call forward of core's kernels (wasm) while no gradient tape records (inference,
 * evaluation, generation): bit-identical to the composite. null where the backend has no such kernel or x is not float32.
 */
function fusedNorm(kernel: string, x: tf.Tensor, weight: tf.Tensor | null, bias: tf.Tensor | null, eps: number): tf.Tensor | null {
  if (x.dtype !== 'float32' || tf.engine().isTapeOn() || tf.getKernel(kernel, tf.getBackend()) === undefined) return null;
  const inputs: tf.NamedTensorMap = { x };
  if (weight) inputs.weight = weight;
  if (bias) inputs.bias = bias;
  return tf.engine().runKernel(kernel, inputs, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

type NormGradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
type NormCustom = (...inputs: tf.Tensor[]) => tf.Tensor;

function makeTrainNorm(layer: boolean, hasW: boolean, hasB: boolean, eps: number): NormCustom {
  return tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    // x comes twice (inputs 0 and 1): its gradient goes to the tape as the composite's two
    // contributions, which the tape adds to x's other gradients one after the other, as it does
    // for the composite (float32 addition is not associative, so one summed dx would move bits)
    const [x, , ...rest] = args as tf.Tensor[];
    const inputs: tf.NamedTensorMap = { x: x! };
    if (hasW) inputs.weight = rest[0]!;
    if (hasB) inputs.bias = rest[hasW ? 1 : 0]!;
    // stats [3, rows]: each row's mean, 1 / sqrt(ve) and pow(ve, 1.5) (Rsqrt's gradient's factor)
    const [y, stats] = tf.engine().runKernel(NORM_TRAIN_KERNEL, inputs, { eps, layer } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    save([x!, stats!, ...(hasW ? [inputs.weight!] : [])]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, st, w] = saved as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
        const gin: tf.NamedTensorMap = { dy, x: xs, stats: st };
        if (w) gin.weight = w;
        return tf.engine().runKernel(NORM_GRAD_KERNEL, gin, { layer, hasBias: hasB } as unknown as tf.NamedAttrMap) as tf.Tensor[];
      },
    };
  }) as unknown as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: NormGradFunc }) as unknown as NormCustom;
}

const trainNormByKey = new Map<string, NormCustom>();

/**
 * The training path of core's kernels (wasm) while a gradient tape records: the forward and its
 * backward one kernel call each, bit-identical to the
 * composite and tfjs's autodiff of it (about 9 forward and 30 backward kernel calls a LayerNorm).
 * null where the backend lacks the kernels, x is not float32 or D is not a multiple of 4.
 */
function trainNorm(layer: boolean, x: tf.Tensor, weight: tf.Tensor | null, bias: tf.Tensor | null, eps: number): tf.Tensor | null {
  const D = x.shape[x.shape.length - 1] as number;
  if (x.dtype !== 'float32' || !oneTapeRecording() || D % 4 !== 0) return null;
  const be = tf.getBackend();
  // the backward reproduces core's Sum kernel, so not while the stock kernels stand in (A/B runs)
  if (!coreKernelsActive(be) || tf.getKernel(NORM_TRAIN_KERNEL, be) === undefined || tf.getKernel(NORM_GRAD_KERNEL, be) === undefined)
    return null;
  const key = `${layer}/${!!weight}/${!!bias}/${eps}`;
  let f = trainNormByKey.get(key);
  if (!f) {
    f = makeTrainNorm(layer, !!weight, !!bias, eps);
    trainNormByKey.set(key, f);
  }
  return f(x, x, ...(weight ? [weight] : []), ...(bias ? [bias] : []));
}

export function checkLastDim(what: string, x: tf.Tensor, dim: number): void {
  const last = x.shape[x.shape.length - 1];
  if (last !== dim) throw new Error(`${what}.forward: input last dim must be ${dim}, got shape [${x.shape}]`);
}
