/** Transformer feed-forward blocks: a two-layer MLP and SwiGLU (Shazeer 2020). */
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import { type Activation, activation, silu } from './activations.js';
import type { Init } from './init.js';
import { Linear } from './linear.js';
import { Module } from './module.js';

export interface MLPOptions {
  /** Default 'gelu_tanh' (GPT-2). */
  activation?: Activation;
  bias?: boolean;
  init?: Init;
  /** Init of the output projection (e.g. GPT-2's residual scaling). Default: `init`. */
  outInit?: Init;
  rng?: Rng;
}

/** fc2(act(fc1(x))): dim -> hidden -> dim. */
export class MLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(dim: number, hidden: number, opts: MLPOptions = {}) {
    super();
    const rng = opts.rng ?? defaultRng();
    this.act = activation(opts.activation ?? 'gelu_tanh');
    this.fc1 = this.module('fc1', new Linear(dim, hidden, { bias: opts.bias ?? true, init: opts.init, rng }));
    this.fc2 = this.module('fc2', new Linear(hidden, dim, { bias: opts.bias ?? true, init: opts.outInit ?? opts.init, rng }));
  }

  forward(x: tf.Tensor /* [..., dim] */): tf.Tensor /* [..., dim] */ {
    return tf.tidy(() => this.fc2.forward(this.act(this.fc1.forward(x))));
  }
}

/** fc2(silu(fc1(x)) * gate(x)) (LatentLM's naming: fc1 is the activated branch). */
export class SwiGLU extends Module {
  readonly fc1: Linear;
  readonly gate: Linear;
  readonly fc2: Linear;

  constructor(dim: number, hidden: number, opts: Omit<MLPOptions, 'activation'> = {}) {
    super();
    const rng = opts.rng ?? defaultRng();
    const bias = opts.bias ?? false;
    this.fc1 = this.module('fc1', new Linear(dim, hidden, { bias, init: opts.init, rng }));
    this.gate = this.module('gate', new Linear(dim, hidden, { bias, init: opts.init, rng }));
    this.fc2 = this.module('fc2', new Linear(hidden, dim, { bias, init: opts.outInit ?? opts.init, rng }));
  }

  forward(x: tf.Tensor /* [..., dim] */): tf.Tensor /* [..., dim] */ {
    return tf.tidy(() => this.fc2.forward(silu(this.fc1.forward(x)).mul(this.gate.forward(x))));
  }
}

/** LatentLM's SwiGLU width: int(dim * mlpRatio * 2/3 / 64) * 64 (min 64). */
export function swigluHidden(dim: number, mlpRatio = 4, multiple = 64): number {
  return Math.max(multiple, Math.floor((dim * mlpRatio * 2) / 3 / multiple) * multiple);
}
