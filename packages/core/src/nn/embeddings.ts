/** Sinusoidal timestep embedding (DDPM / DiT) and adaLN modulation (DiT, Peebles & Xie 2023). */
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import { silu } from './activations.js';
import type { Init } from './init.js';
import { Linear } from './linear.js';
import { Module } from './module.js';

/**
 * emb[n] = [cos(t_n f_0..f_{h-1}), sin(t_n f_0..f_{h-1})] with f_k = maxPeriod^(-k/h), h = dim/2
 * ('cos_sin', LatentLM/DiT order; 'sin_cos' for the other convention). t may be fractional.
 * Odd dim gets one zero column at the end.
 */
export function timestepEmbedding(
  t: tf.Tensor /* [N] */,
  dim: number,
  opts: { maxPeriod?: number; order?: 'cos_sin' | 'sin_cos' } = {},
): tf.Tensor2D /* [N, dim] */ {
  return tf.tidy(() => {
    if (t.rank !== 1) throw new Error(`timestepEmbedding: t must be 1-D [N], got shape [${t.shape}]`);
    const half = Math.floor(dim / 2);
    const maxPeriod = opts.maxPeriod ?? 10000;
    const f = new Float32Array(half);
    for (let k = 0; k < half; k++) f[k] = Math.exp((-Math.log(maxPeriod) * k) / half);
    const args = t
      .toFloat()
      .reshape([-1, 1])
      .mul(tf.tensor2d(f, [1, half])); // [N, half]
    const parts = opts.order === 'sin_cos' ? [tf.sin(args), tf.cos(args)] : [tf.cos(args), tf.sin(args)];
    let emb = tf.concat(parts, 1); // [N, 2*half]
    if (dim % 2 === 1) emb = tf.concat([emb, tf.zeros([t.shape[0] as number, 1])], 1);
    return emb as tf.Tensor2D;
  });
}

/** t -> Linear(freqDim -> dim) -> SiLU -> Linear(dim -> dim) (DiT's TimestepEmbedder). */
export class TimestepEmbedder extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(
    readonly dim: number,
    readonly freqDim = 256,
    opts: { bias?: boolean; init?: Init; rng?: Rng } = {},
  ) {
    super();
    const rng = opts.rng ?? defaultRng();
    const init = opts.init ?? { kind: 'normal', std: 0.02 };
    this.fc1 = this.module('fc1', new Linear(freqDim, dim, { bias: opts.bias ?? true, init, rng }));
    this.fc2 = this.module('fc2', new Linear(dim, dim, { bias: opts.bias ?? true, init, rng }));
  }

  forward(t: tf.Tensor /* [N] */): tf.Tensor2D /* [N, dim] */ {
    return tf.tidy(() => this.fc2.forward(silu(this.fc1.forward(timestepEmbedding(t, this.freqDim)))) as tf.Tensor2D);
  }
}

/** x * (1 + scale) + shift; shift/scale broadcast over the token axis. */
export function modulate(x: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(scale.add(1)).add(shift));
}

/**
 * adaLN modulation: Linear(SiLU(c)) split into `chunks` vectors of size dim (e.g. shift, scale,
 * gate). Zero-initialised (adaLN-Zero) so a block starts as the identity.
 */
export class AdaLNModulation extends Module {
  readonly linear: Linear;

  constructor(
    readonly condDim: number,
    readonly dim: number,
    readonly chunks: number,
    opts: { bias?: boolean; zeroInit?: boolean; rng?: Rng } = {},
  ) {
    super();
    const init: Init = opts.zeroInit === false ? { kind: 'torch_default' } : { kind: 'zeros' };
    this.linear = this.module('linear', new Linear(condDim, dim * chunks, { bias: opts.bias ?? true, init, rng: opts.rng }));
  }

  forward(c: tf.Tensor /* [..., condDim] */): tf.Tensor[] /* chunks x [..., dim] */ {
    return tf.tidy(() => tf.split(this.linear.forward(silu(c)), this.chunks, -1));
  }
}
