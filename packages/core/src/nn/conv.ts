/**
 * Conv1d: 1-D convolution over the time axis of [B, N, C] tensors, stride 1, 'same' or 'causal'
 * padding, any dilation. Shared by MIO's speech codec ('same', SEANet-style residual units) and
 * LatentLM's speech VAE ('causal').
 *
 * Weight layout [k, cin, cout] (tf.conv1d's; a PyTorch nn.Conv1d weight [cout, cin, k] maps by
 * permute(2, 1, 0)). Computed as im2col + one matmul: the k dilated shifts of the padded input side
 * by side, [B N, k cin] @ [k cin, cout]. On the wasm backend tf.conv1d's input gradient is a direct
 * loop several times slower than the matmul's, and im2col gives causal and dilated convolutions
 * without a second code path.
 *
 * Padding: 'same' pads floor((k - 1) d / 2) on the left and the rest on the right (PyTorch's
 * padding='same'); 'causal' pads (k - 1) d on the left, so output t sees inputs <= t only.
 * Init: PyTorch's U(+-1/sqrt(cin k)) for the weight; the bias is drawn from the same law ('uniform',
 * nn.Conv1d's default) or zeros (the convention of Vocos-style speech VAEs), chosen by `biasInit`.
 */
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import { checkPositiveInt } from './linear.js';
import { Module } from './module.js';

export interface Conv1dOptions {
  /** 'same' (default) or 'causal'. */
  padding?: 'same' | 'causal';
  /** Dilation (default 1). */
  dilation?: number;
  /** Bias init: 'uniform' U(+-1/sqrt(cin k)) as nn.Conv1d (default) or 'zeros'. */
  biasInit?: 'uniform' | 'zeros';
  rng?: Rng;
}

/** Left and right padding of a stride-1 convolution of kernel k and dilation d. */
export function conv1dPadding(kernelSize: number, dilation: number, padding: 'same' | 'causal'): [number, number] {
  const span = (kernelSize - 1) * dilation;
  if (padding === 'causal') return [span, 0];
  const left = Math.floor(span / 2);
  return [left, span - left];
}

/** 1-D convolution, stride 1: x [B, N, cin] -> [B, N, cout]. */
export class Conv1d extends Module {
  readonly weight: tf.Variable; // [k, cin, cout]
  readonly bias: tf.Variable; // [cout]
  readonly padding: 'same' | 'causal';
  readonly dilation: number;

  constructor(
    readonly cin: number,
    readonly cout: number,
    readonly kernelSize: number,
    opts: Conv1dOptions = {},
  ) {
    super();
    checkPositiveInt('Conv1d: cin', cin);
    checkPositiveInt('Conv1d: cout', cout);
    checkPositiveInt('Conv1d: kernelSize', kernelSize);
    this.dilation = opts.dilation ?? 1;
    checkPositiveInt('Conv1d: dilation', this.dilation);
    this.padding = opts.padding ?? 'same';
    if (this.padding !== 'same' && this.padding !== 'causal')
      throw new Error(`Conv1d: padding must be 'same' or 'causal', got ${JSON.stringify(this.padding)}`);
    const biasInit = opts.biasInit ?? 'uniform';
    if (biasInit !== 'uniform' && biasInit !== 'zeros')
      throw new Error(`Conv1d: biasInit must be 'uniform' or 'zeros', got ${JSON.stringify(biasInit)}`);
    const rng = opts.rng ?? defaultRng();
    const b = 1 / Math.sqrt(cin * kernelSize);
    this.weight = this.param('weight', rng.rand([kernelSize, cin, cout], -b, b));
    this.bias = this.param('bias', biasInit === 'zeros' ? tf.zeros([cout]) : rng.rand([cout], -b, b));
  }

  forward(x: tf.Tensor /* [B, N, cin] */): tf.Tensor /* [B, N, cout] */ {
    if (x.rank !== 3 || x.shape[2] !== this.cin) throw new Error(`Conv1d: input must be [B, N, ${this.cin}], got shape [${x.shape}]`);
    return tf.tidy(() => {
      const [B, N] = x.shape as [number, number, number];
      const k = this.kernelSize;
      const d = this.dilation;
      let cols: tf.Tensor = x; // [B, N, k cin]
      if (k > 1) {
        const [left, right] = conv1dPadding(k, d, this.padding);
        const xp = tf.pad(x, [
          [0, 0],
          [left, right],
          [0, 0],
        ]); // [B, N + (k-1) d, cin]
        cols = tf.concat(
          Array.from({ length: k }, (_, i) => xp.slice([0, i * d, 0], [B, N, this.cin])),
          2,
        );
      }
      const y = tf.matMul(cols.reshape([B * N, k * this.cin]), this.weight.reshape([k * this.cin, this.cout])); // [B N, cout]
      return y.add(this.bias).reshape([B, N, this.cout]);
    });
  }
}
