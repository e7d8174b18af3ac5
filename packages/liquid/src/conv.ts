/**
 * Convolutional layers of a VQGAN (Esser et al. 2021, taming-transformers `diffusionmodules/model.py`;
 * the same blocks as Chameleon's `vqgan.py` that Liquid uses frozen), on NHWC tensors with tf.conv2d:
 *   Conv2d          y = conv(x, W) + b, W [kh, kw, in, out] (TF layout; a PyTorch [out, in, kh, kw]
 *                   weight maps by permute(2, 3, 1, 0)); PyTorch's default U(+-1/sqrt(in kh kw)) init.
 *                   Stride-1 'same' convolutions run through a kernel of this package whose
 *                   gradient computes dx as a forward convolution with the flipped, transposed filter
 *                   (dx = conv(dy, rot180(W)^T), 'same'), and dW with the backend's
 *                   Conv2DBackpropFilter: on the wasm backend, tf.conv2d's own input gradient
 *                   (Conv2DBackpropInput) is a direct loop about 10x slower than its forward Conv2D.
 *   GroupNorm       (Wu & He 2018) per-sample statistics over H, W and C/G channels of each group.
 *   ResnetBlock     x' = shortcut(x) + conv2(swish(norm2(conv1(swish(norm1(x)))))) (swish: core's silu,
 *                   taming's `nonlinearity`).
 *   Downsample      zero-pad (0, 1, 0, 1), 3x3 conv stride 2 (taming's asymmetric padding); TF's
 *                   'same' padding at stride 2 on an even size pads exactly (0, 1), so it is used.
 *   Upsample        nearest x2 (as F.interpolate(mode='nearest')), then a 3x3 conv.
 * Candidates to move into @mmlm/core (LatentLM's conv VAE needs the same).
 */
import { checkPositiveInt, defaultRng, GroupNorm, Module, type Rng, silu, tf } from '@mmlm/core';

/** GroupNorm moved to @mmlm/core (one fused kernel forward and backward on wasm); re-exported here for existing imports. */
export { GroupNorm };

function checkNHWC(who: string, x: tf.Tensor, channels: number): void {
  if (x.rank !== 4 || x.shape[3] !== channels) throw new Error(`${who}: input must be NHWC [B, H, W, ${channels}], got shape [${x.shape}]`);
}

export interface Conv2dOptions {
  stride?: number;
  /** 'same' (PyTorch padding = k // 2 for odd k at stride 1) or 'valid'. Default 'same'. */
  padding?: 'same' | 'valid';
  bias?: boolean;
  rng?: Rng;
}

/** 2-D convolution, NHWC. */
export class Conv2d extends Module {
  readonly weight: tf.Variable; // [kh, kw, in, out]
  readonly bias: tf.Variable | null; // [out]
  readonly stride: number;
  readonly padding: 'same' | 'valid';

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    super();
    checkPositiveInt('Conv2d: inChannels', inChannels);
    checkPositiveInt('Conv2d: outChannels', outChannels);
    checkPositiveInt('Conv2d: kernelSize', kernelSize);
    this.stride = opts.stride ?? 1;
    checkPositiveInt('Conv2d: stride', this.stride);
    this.padding = opts.padding ?? 'same';
    const rng = opts.rng ?? defaultRng();
    const b = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
    this.weight = this.param('weight', rng.rand([kernelSize, kernelSize, inChannels, outChannels], -b, b));
    this.bias = opts.bias === false ? null : this.param('bias', rng.rand([outChannels], -b, b));
  }

  forward(x: tf.Tensor /* [B, H, W, in] */): tf.Tensor /* [B, H', W', out] */ {
    return tf.tidy(() => {
      checkNHWC('Conv2d', x, this.inChannels);
      const k = this.kernelSize;
      let y: tf.Tensor;
      if (k === 1 && this.stride === 1) {
        const [B, H, W] = x.shape as [number, number, number, number];
        y = tf
          .matMul(x.reshape([B * H * W, this.inChannels]), this.weight.reshape([this.inChannels, this.outChannels]))
          .reshape([B, H, W, this.outChannels]); // [B, H, W, out]
      } else if (this.stride === 1 && this.padding === 'same' && k % 2 === 1) y = conv2dSame(x as tf.Tensor4D, this.weight as tf.Tensor4D);
      else y = tf.conv2d(x as tf.Tensor4D, this.weight as tf.Tensor4D, this.stride, this.padding);
      return this.bias ? y.add(this.bias) : y;
    });
  }
}

const CONV_SAME = 'MmlmLiquidConv2DSame';
let convSameGradient = false;

function convSameAttrs(filterShape?: number[]) {
  return {
    strides: [1, 1],
    pad: 'same',
    dataFormat: 'NHWC',
    dilations: [1, 1],
    dimRoundingMode: undefined,
    ...(filterShape ? { filterShape } : {}),
  } as unknown as tf.NamedAttrMap;
}

/** Registers the stride-1 'same' convolution kernel for the active backend (forward: the backend's Conv2D). */
function ensureConvSameKernel(): void {
  const backend = tf.getBackend();
  if (!tf.getKernel(CONV_SAME, backend)) {
    if (!tf.getKernel('Conv2D', backend)) throw new Error(`conv2dSame: backend "${backend}" has no Conv2D kernel`);
    tf.registerKernel({
      kernelName: CONV_SAME,
      backendName: backend,
      // the backend's Conv2D as registered at call time (core may swap it: its GEMM kernel or the stock one)
      kernelFunc: ({ inputs, backend: b }) => {
        const conv = tf.getKernel('Conv2D', backend);
        if (!conv) throw new Error(`conv2dSame: backend "${backend}" has no Conv2D kernel`);
        return conv.kernelFunc({ inputs, backend: b, attrs: convSameAttrs() });
      },
    });
  }
  if (!convSameGradient) {
    tf.registerGradient({
      kernelName: CONV_SAME,
      inputsToSave: ['x', 'filter'],
      gradFunc: (dy, saved) => {
        const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
        const g = dy as tf.Tensor4D;
        return {
          x: () => tf.conv2d(g, tf.reverse(filter, [0, 1]).transpose([0, 1, 3, 2]) as tf.Tensor4D, 1, 'same'),
          filter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: g }, convSameAttrs(filter.shape)) as tf.Tensor4D,
        };
      },
    });
    convSameGradient = true;
  }
}

/** Stride-1 convolution with 'same' padding and an odd kernel: x [B, H, W, C], w [k, k, C, O] -> [B, H, W, O]. */
export function conv2dSame(x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  const k = w.shape[0];
  if (k % 2 !== 1 || w.shape[1] !== k) throw new Error(`conv2dSame: the kernel must be square with an odd size, got [${w.shape}]`);
  if (x.shape[3] !== w.shape[2]) throw new Error(`conv2dSame: x has ${x.shape[3]} channels, the filter expects ${w.shape[2]}`);
  ensureConvSameKernel();
  return tf.engine().runKernel(CONV_SAME, { x, filter: w }, {}) as tf.Tensor4D;
}

/**
 * Groups for a GroupNorm of C channels: taming uses 32 groups at widths >= 128, i.e. at least 4
 * channels per group; smaller widths keep that minimum (the largest divisor of C that is <= 32 and
 * <= C / 4). One channel per group would be instance norm, which erases each channel's mean
 * (an object's colour) on the small maps of a small tokenizer.
 */
export function groupsFor(channels: number, preferred = 32): number {
  for (let g = Math.min(preferred, Math.floor(channels / 4)); g > 1; g--) if (channels % g === 0) return g;
  return 1;
}

/** taming ResnetBlock without the timestep projection and dropout. */
export class ResnetBlock extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly nin_shortcut: Conv2d | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    rng: Rng,
  ) {
    super();
    this.norm1 = this.module('norm1', new GroupNorm(groupsFor(inChannels), inChannels));
    this.conv1 = this.module('conv1', new Conv2d(inChannels, outChannels, 3, { rng }));
    this.norm2 = this.module('norm2', new GroupNorm(groupsFor(outChannels), outChannels));
    this.conv2 = this.module('conv2', new Conv2d(outChannels, outChannels, 3, { rng }));
    this.nin_shortcut = inChannels !== outChannels ? this.module('nin_shortcut', new Conv2d(inChannels, outChannels, 1, { rng })) : null;
  }

  forward(x: tf.Tensor /* [B, H, W, in] */): tf.Tensor /* [B, H, W, out] */ {
    return tf.tidy(() => {
      const h = this.conv2.forward(silu(this.norm2.forward(this.conv1.forward(silu(this.norm1.forward(x))))));
      return (this.nin_shortcut ? this.nin_shortcut.forward(x) : x).add(h);
    });
  }
}

/** Halves H and W: pad (0, 1, 0, 1) and a 3x3 conv at stride 2. */
export class Downsample extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, rng: Rng) {
    super();
    this.conv = this.module('conv', new Conv2d(channels, channels, 3, { stride: 2, padding: 'valid', rng }));
  }

  forward(x: tf.Tensor /* [B, H, W, C] */): tf.Tensor /* [B, H/2, W/2, C] */ {
    return tf.tidy(() => {
      if (x.rank !== 4 || (x.shape[1] as number) % 2 !== 0 || (x.shape[2] as number) % 2 !== 0)
        throw new Error(`Downsample: input must be NHWC with even H and W, got shape [${x.shape}]`);
      const xp = tf.pad(x, [
        [0, 0],
        [0, 1],
        [0, 1],
        [0, 0],
      ]); // [B, H+1, W+1, C]
      return this.conv.forward(xp);
    });
  }
}

/** Nearest-neighbour x2 upsampling of NHWC (each pixel becomes a 2x2 block). */
export function upsampleNearest2x(x: tf.Tensor /* [B, H, W, C] */): tf.Tensor /* [B, 2H, 2W, C] */ {
  return tf.tidy(() => {
    const [B, H, W, C] = x.shape as [number, number, number, number];
    const two = tf.ones([1, 1, 2, 1]);
    return x
      .reshape([B * H, W, 1, C])
      .mul(two) // [B H, W, 2, C] by broadcasting (its gradient is a sum, not a Tile gradient)
      .reshape([B, H, 1, 2 * W * C])
      .mul(two) // [B, H, 2, 2 W C]
      .reshape([B, 2 * H, 2 * W, C]);
  });
}

/** Doubles H and W: nearest x2, then a 3x3 conv. */
export class Upsample extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, rng: Rng) {
    super();
    this.conv = this.module('conv', new Conv2d(channels, channels, 3, { rng }));
  }

  forward(x: tf.Tensor /* [B, H, W, C] */): tf.Tensor /* [B, 2H, 2W, C] */ {
    return tf.tidy(() => this.conv.forward(upsampleNearest2x(x)));
  }
}
