/**
 * Rotary position embedding (RoFormer, Su et al. 2021). Two layouts:
 * - 'interleaved' (GPT-J; LatentLM's apply_rotary_pos_emb): pairs (x0,x1), (x2,x3), ...
 * - 'half' (GPT-NeoX / HF LLaMA rotate_half): pairs (x_i, x_{i+d/2}).
 * Two frequency rules: 'standard' theta_k = base^(-2k/d), and LatentLM's 'linspace'
 * theta_k = base^(-linspace(0, 1, d/2)_k).
 */
import { ROPE_KERNEL } from '../backend/kernels/fused.js';
import { tf } from '../tf.js';

let ropeGradientRegistered = false;

/**
 * The fused rotation (core's kernel where the backend has it: wasm). Its gradient is the inverse
 * rotation of dy (R(theta)^T = R(-theta)); the tables get none (they are constants).
 */
function fusedRotate(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, interleaved: boolean): tf.Tensor {
  if (!ropeGradientRegistered) {
    tf.registerGradient({
      kernelName: ROPE_KERNEL,
      inputsToSave: ['cos', 'sin'],
      gradFunc: (dy, saved, attrs) => {
        const [c, s] = saved as [tf.Tensor, tf.Tensor];
        const a = attrs as unknown as { interleaved: boolean; inverse: boolean };
        return {
          x: () =>
            tf
              .engine()
              .runKernel(
                ROPE_KERNEL,
                { x: dy as tf.Tensor, cos: c, sin: s },
                { interleaved: a.interleaved, inverse: !a.inverse },
              ) as tf.Tensor,
          cos: () => tf.zerosLike(c),
          sin: () => tf.zerosLike(s),
        };
      },
    });
    ropeGradientRegistered = true;
  }
  return tf.engine().runKernel(ROPE_KERNEL, { x, cos, sin }, { interleaved, inverse: false }) as tf.Tensor;
}

export type RopeStyle = 'interleaved' | 'half';
export type RopeFreqs = 'standard' | 'linspace';

export interface RopeOptions {
  headDim: number;
  /** Default 10000. */
  base?: number;
  style?: RopeStyle;
  freqs?: RopeFreqs;
}

/** Inverse frequencies theta_k, k = 0 .. headDim/2 - 1. */
export function ropeInvFreq(headDim: number, base = 10000, freqs: RopeFreqs = 'standard'): Float32Array {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0)
    throw new Error(`RoPE: headDim must be a positive even integer, got ${headDim}`);
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let k = 0; k < half; k++) {
    const e = freqs === 'standard' ? (2 * k) / headDim : half === 1 ? 0 : k / (half - 1);
    out[k] = 1 / base ** e;
  }
  return out;
}

export class RotaryEmbedding {
  readonly headDim: number;
  readonly style: RopeStyle;
  private readonly invFreq: Float32Array;

  constructor(opts: RopeOptions) {
    this.headDim = opts.headDim;
    this.style = opts.style ?? 'half';
    this.invFreq = ropeInvFreq(opts.headDim, opts.base ?? 10000, opts.freqs ?? 'standard');
  }

  /** cos and sin tables [T, headDim] for positions offset .. offset+T-1, laid out for `style`. */
  tables(T: number, offset = 0): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
    const d = this.headDim;
    const half = d / 2;
    const cos = new Float32Array(T * d);
    const sin = new Float32Array(T * d);
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < half; k++) {
        const a = (t + offset) * (this.invFreq[k] as number);
        const c = Math.cos(a);
        const s = Math.sin(a);
        const [i0, i1] = this.style === 'interleaved' ? [2 * k, 2 * k + 1] : [k, k + half];
        cos[t * d + i0] = c;
        cos[t * d + i1] = c;
        sin[t * d + i0] = s;
        sin[t * d + i1] = s;
      }
    }
    return { cos: tf.tensor2d(cos, [T, d]), sin: tf.tensor2d(sin, [T, d]) };
  }

  /** Rotate x [B, H, T, headDim] as positions offset .. offset+T-1. */
  apply(x: tf.Tensor /* [B, H, T, d] */, offset = 0): tf.Tensor /* [B, H, T, d] */ {
    return tf.tidy(() => {
      const [B, H, T, d] = x.shape as [number, number, number, number];
      if (d !== this.headDim) throw new Error(`RoPE.apply: head dim must be ${this.headDim}, got shape [${x.shape}]`);
      const { cos, sin } = this.tables(T, offset); // [T, d]
      if (x.dtype === 'float32' && tf.getKernel(ROPE_KERNEL, tf.getBackend()) !== undefined)
        return fusedRotate(x, cos, sin, this.style === 'interleaved');
      let rot: tf.Tensor;
      if (this.style === 'interleaved') {
        const pairs = x.reshape([B, H, T, d / 2, 2]);
        const [even, odd] = tf.split(pairs, 2, 4); // [B, H, T, d/2, 1] each
        rot = tf.concat([odd!.neg(), even!], 4).reshape([B, H, T, d]); // (-x1, x0, -x3, x2, ...)
      } else {
        const [a, b] = tf.split(x, 2, 3);
        rot = tf.concat([b!.neg(), a!], 3); // (-x2, x1)
      }
      return x.mul(cos).add(rot.mul(sin));
    });
  }
}
