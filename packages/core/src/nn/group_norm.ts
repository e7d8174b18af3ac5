/**
 * GroupNorm (Wu & He 2018, "Group Normalization") over NHWC: the C channels split into G groups of
 * C/G, statistics per sample and group over (H, W, C/G), biased variance, as torch.nn.GroupNorm:
 *   y = (x - mean_bg) / sqrt(var_bg + eps) * weight[c] + bias[c]
 * Where the backend has core's kernels (wasm), forward and backward are one pass each over the
 * activations (fused.ts, wasm_ops.ts); elsewhere the composite formula below, whose gradient
 * tfjs derives. The backward pass of the fused kernel:
 *   xhat = (x - mean) rstd,  g = dy weight[c],  over each (sample, group) of N = H W C/G elements:
 *   dx = rstd (g - mean(g) - xhat mean(g xhat));  dweight[c] = sum_bhw dy xhat;  dbias[c] = sum_bhw dy.
 */
import { GROUP_NORM_GRAD_KERNEL, GROUP_NORM_KERNEL, nestedTapes } from '../backend/kernels/fused.js';
import { tf } from '../tf.js';
import { checkPositiveInt } from './linear.js';
import { Module } from './module.js';

function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

function groupNormComposite(x: tf.Tensor4D, weight: tf.Tensor, bias: tf.Tensor, G: number, eps: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, W, C] = x.shape;
    const xg = x.reshape([B, H, W, G, C / G]); // [B, H, W, G, C/G]
    const { mean, variance } = tf.moments(xg, [1, 2, 4], true); // [B, 1, 1, G, 1]
    const y = xg
      .sub(mean)
      .mul(tf.rsqrt(variance.add(eps)))
      .reshape([B, H, W, C]);
    return y.mul(weight).add(bias) as tf.Tensor4D;
  });
}

type Attrs = { numGroups: number; eps: number };

function fusedGroupNorm(G: number, eps: number) {
  return tf.customGrad(((x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, save: tf.GradSaveFunc) => {
    const attrs: Attrs = { numGroups: G, eps };
    const [y, mean, rstd] = tf
      .engine()
      .runKernel(GROUP_NORM_KERNEL, { x, weight, bias }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    save([x, weight, mean!, rstd!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, w, m, r] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        return tf
          .engine()
          .runKernel(
            GROUP_NORM_GRAD_KERNEL,
            { dy, x: xs, weight: w, mean: m, rstd: r },
            attrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor[];
      },
    };
  }) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] });
}

const fusedByKey = new Map<string, ReturnType<typeof fusedGroupNorm>>();

/**
 * GroupNorm of x [B, H, W, C] with G groups, weight and bias [C]; returns [B, H, W, C]. One fused
 * kernel forward and one backward where the backend has core's kernels (wasm), the composite
 * formula elsewhere.
 */
export function groupNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, numGroups: number, eps = 1e-6): tf.Tensor4D {
  checkPositiveInt('groupNorm: numGroups', numGroups);
  if (x.rank !== 4) throw new Error(`groupNorm: x must be NHWC [B, H, W, C], got shape [${x.shape}]`);
  const C = x.shape[3] as number;
  if (C % numGroups !== 0) throw new Error(`groupNorm: channels (${C}) must be divisible by numGroups (${numGroups})`);
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const)
    if (t.rank !== 1 || t.shape[0] !== C) throw new Error(`groupNorm: ${name} must have shape [${C}], got [${t.shape}]`);
  if (!(eps > 0 && Number.isFinite(eps))) throw new Error(`groupNorm: eps must be a finite number > 0, got ${eps}`);
  const fused = x.dtype === 'float32' && hasKernel(GROUP_NORM_KERNEL) && hasKernel(GROUP_NORM_GRAD_KERNEL);
  // nested tapes (a gradient of a gradient): the composite, whose gradient is differentiable again
  if (!fused || nestedTapes()) return groupNormComposite(x as tf.Tensor4D, weight, bias, numGroups, eps);
  const key = `${numGroups}/${eps}`;
  let f = fusedByKey.get(key);
  if (!f) {
    f = fusedGroupNorm(numGroups, eps);
    fusedByKey.set(key, f);
  }
  return f(x, weight, bias) as tf.Tensor4D;
}

/** GroupNorm over NHWC: G groups of C/G channels, statistics over (H, W, C/G) per sample. */
export class GroupNorm extends Module {
  readonly weight: tf.Variable; // [C]
  readonly bias: tf.Variable; // [C]

  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly eps = 1e-6,
  ) {
    super();
    checkPositiveInt('GroupNorm: numGroups', numGroups);
    checkPositiveInt('GroupNorm: numChannels', numChannels);
    if (numChannels % numGroups !== 0)
      throw new Error(`GroupNorm: numChannels (${numChannels}) must be divisible by numGroups (${numGroups})`);
    this.weight = this.param('weight', tf.ones([numChannels]));
    this.bias = this.param('bias', tf.zeros([numChannels]));
  }

  forward(x: tf.Tensor /* [B, H, W, C] */): tf.Tensor /* [B, H, W, C] */ {
    if (x.rank !== 4 || x.shape[3] !== this.numChannels)
      throw new Error(`GroupNorm: input must be NHWC [B, H, W, ${this.numChannels}], got shape [${x.shape}]`);
    return groupNorm(x, this.weight, this.bias, this.numGroups, this.eps);
  }
}
