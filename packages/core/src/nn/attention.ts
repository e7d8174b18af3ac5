/**
 * Multi-head attention (Vaswani et al. 2017): self or cross, causal or not, optional grouped KV
 * heads (GQA, Ainslie et al. 2023), optional RoPE, with a KV cache for incremental decoding.
 */
import { ATTENTION_GRAD_KERNEL, ATTENTION_KERNEL, oneTapeRecording } from '../backend/kernels/fused.js';
import { coreKernelsActive } from '../backend/kernels/index.js';
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import type { Init } from './init.js';
import { Linear } from './linear.js';
import { causalMask } from './masks.js';
import { Module } from './module.js';
import type { RotaryEmbedding } from './rope.js';

export interface AttentionOptions {
  dim: number;
  numHeads: number;
  /** Key/value heads (GQA); must divide numHeads. Default numHeads. */
  numKvHeads?: number;
  /** Causal self-attention (default false). */
  causal?: boolean;
  /** Width of the cross-attention context; omitted for self-attention. */
  contextDim?: number;
  bias?: boolean;
  init?: Init;
  /** Init of the output projection. Default: `init`. */
  outInit?: Init;
  rope?: RotaryEmbedding | null;
  rng?: Rng;
}

/** Keys and values cached for one attention layer: [B, Hkv, S, hs] each. */
export interface LayerKV {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/**
 * KV cache for a stack of attention layers. Holds kept tensors; call dispose() when done.
 * `length` is the number of positions already cached (the next position's offset).
 */
export class KVCache {
  readonly layers: (LayerKV | null)[];

  constructor(numLayers: number) {
    this.layers = Array.from({ length: numLayers }, () => null);
  }

  get length(): number {
    return this.layers[0]?.k.shape[2] ?? 0;
  }

  /** Append new keys/values for layer i; returns the full cached k, v. */
  append(i: number, k: tf.Tensor4D, v: tf.Tensor4D): LayerKV {
    const old = this.layers[i];
    const next: LayerKV = old ? { k: tf.concat([old.k, k], 2), v: tf.concat([old.v, v], 2) } : { k: k.clone(), v: v.clone() };
    tf.keep(next.k);
    tf.keep(next.v);
    if (old) {
      old.k.dispose();
      old.v.dispose();
    }
    this.layers[i] = next;
    return next;
  }

  dispose(): void {
    for (const l of this.layers) {
      l?.k.dispose();
      l?.v.dispose();
    }
    this.layers.fill(null);
  }
}

export interface AttentionCall {
  /** Additive mask broadcastable to [B, H, T, S] (see masks.ts). */
  mask?: tf.Tensor | null;
  /** Cross-attention context [B, S, contextDim]. */
  context?: tf.Tensor;
  /** Cache and this layer's index in it (self-attention only). */
  cache?: KVCache;
  layer?: number;
}

export class MultiHeadAttention extends Module {
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly causal: boolean;
  readonly isCross: boolean;
  /** Fused q,k,v projection for self-attention: [(H + 2 Hkv) hs, dim]. */
  readonly qkv: Linear | null;
  /** Cross-attention: q from x, fused k,v from the context. */
  readonly q: Linear | null;
  readonly kv: Linear | null;
  readonly proj: Linear;
  private readonly rope: RotaryEmbedding | null;

  constructor(opts: AttentionOptions) {
    super();
    const { dim, numHeads } = opts;
    const numKvHeads = opts.numKvHeads ?? numHeads;
    if (!Number.isInteger(numHeads) || numHeads <= 0 || dim % numHeads !== 0)
      throw new Error(`MultiHeadAttention: dim ${dim} must be divisible by numHeads ${numHeads}`);
    if (!Number.isInteger(numKvHeads) || numKvHeads <= 0 || numHeads % numKvHeads !== 0)
      throw new Error(`MultiHeadAttention: numKvHeads ${numKvHeads} must divide numHeads ${numHeads}`);
    const rng = opts.rng ?? defaultRng();
    const bias = opts.bias ?? true;
    this.numHeads = numHeads;
    this.numKvHeads = numKvHeads;
    this.headDim = dim / numHeads;
    this.causal = opts.causal ?? false;
    this.isCross = opts.contextDim !== undefined;
    this.rope = opts.rope ?? null;
    const kvOut = 2 * numKvHeads * this.headDim;
    if (this.isCross) {
      this.qkv = null;
      this.q = this.module('q', new Linear(dim, dim, { bias, init: opts.init, rng }));
      this.kv = this.module('kv', new Linear(opts.contextDim as number, kvOut, { bias, init: opts.init, rng }));
    } else {
      this.q = null;
      this.kv = null;
      this.qkv = this.module('qkv', new Linear(dim, dim + kvOut, { bias, init: opts.init, rng }));
    }
    this.proj = this.module('proj', new Linear(dim, dim, { bias, init: opts.outInit ?? opts.init, rng }));
  }

  /** x [B, T, dim] -> [B, T, dim]. */
  forward(x: tf.Tensor, call: AttentionCall = {}): tf.Tensor {
    return tf.tidy(() => {
      if (x.rank !== 3) throw new Error(`MultiHeadAttention.forward: x must be [B, T, dim], got shape [${x.shape}]`);
      const [B, T] = x.shape as [number, number, number];
      const H = this.numHeads;
      const Hkv = this.numKvHeads;
      const hs = this.headDim;
      let q: tf.Tensor;
      let k: tf.Tensor;
      let v: tf.Tensor;
      const heads = (t: tf.Tensor, n: number, len: number) => t.reshape([B, len, n, hs]).transpose([0, 2, 1, 3]); // [B, n, len, hs]
      if (this.isCross) {
        const ctx = call.context;
        if (ctx?.rank !== 3 || ctx.shape[0] !== B)
          throw new Error(
            `MultiHeadAttention: cross-attention needs context [${B}, S, ${this.kv!.inFeatures}], got ${ctx ? `[${ctx.shape}]` : 'none'}`,
          );
        const S = ctx.shape[1] as number;
        q = heads(this.q!.forward(x), H, T);
        const [kk, vv] = tf.split(this.kv!.forward(ctx), 2, 2);
        k = heads(kk!, Hkv, S);
        v = heads(vv!, Hkv, S);
      } else {
        const qkv = this.qkv!.forward(x); // [B, T, (H + 2 Hkv) hs]
        const [qq, kk, vv] = tf.split(qkv, [H * hs, Hkv * hs, Hkv * hs], 2);
        q = heads(qq!, H, T); // [B, H, T, hs]
        k = heads(kk!, Hkv, T); // [B, Hkv, T, hs]
        v = heads(vv!, Hkv, T);
        const offset = call.cache ? (call.cache.layers[call.layer ?? 0]?.k.shape[2] ?? 0) : 0;
        if (this.rope) {
          q = this.rope.apply(q, offset);
          k = this.rope.apply(k, offset);
        }
        if (call.cache) {
          const full = call.cache.append(call.layer ?? 0, k as tf.Tensor4D, v as tf.Tensor4D);
          k = full.k;
          v = full.v;
        }
      }
      const S = k.shape[2] as number;
      if (Hkv !== H) {
        const g = H / Hkv; // [B, Hkv, S, hs] -> [B, H, S, hs], each kv head shared by g query heads
        const rep = (t: tf.Tensor) =>
          t
            .reshape([B * Hkv, 1, S * hs])
            .tile([1, g, 1])
            .reshape([B, H, S, hs]); // rank-3 tile has a gradient
        k = rep(k);
        v = rep(v);
      }
      const o = scaledDotProductAttention(q, k, v, { causal: this.causal && !this.isCross, mask: call.mask }); // [B, H, T, hs]
      const y = o.transpose([0, 2, 1, 3]).reshape([B, T, H * hs]); // [B, T, dim]
      return this.proj.forward(y);
    });
  }
}

export interface SdpaOptions {
  /** Add causalMask(T, S) (query i sees keys j <= i + S - T). Default false. */
  causal?: boolean;
  /** An additive mask broadcastable to [B, H, T, S] (e.g. paddingMask). */
  mask?: tf.Tensor | null;
  /** Default 1 / sqrt(hs). */
  scale?: number;
}

/**
 * softmax(q k^T scale + causal mask + mask) v as tfjs ops, differentiated by tfjs's autodiff:
 * q [B, H, T, hs], k and v [B, H, S, hs] -> [B, H, T, hs]. What attention computes without core's
 * kernels (or with an extra mask), and the reference its fused kernels reproduce bit for bit.
 */
export function attentionComposite(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, opts: SdpaOptions = {}): tf.Tensor /* [B, H, T, hs] */ {
  return tf.tidy(() => {
    const [T, S, hs] = [q.shape[2] as number, k.shape[2] as number, q.shape[3] as number];
    let att = tf.matMul(q, k, false, true).mul(opts.scale ?? 1 / Math.sqrt(hs)); // [B, H, T, S]
    if (opts.causal) att = att.add(causalMask(T, S));
    if (opts.mask) att = att.add(opts.mask);
    att = tf.softmax(att, -1);
    return tf.matMul(att, v);
  });
}

/**
 * Scaled dot-product attention (PyTorch's F.scaled_dot_product_attention): q [B, H, T, hs], k and
 * v [B, H, S, hs] -> [B, H, T, hs]. On core's wasm kernels without an extra mask, one kernel call
 * forward and one backward, bit-identical to attentionComposite; the composite elsewhere.
 */
export function scaledDotProductAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, opts: SdpaOptions = {}): tf.Tensor {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new Error(`scaledDotProductAttention: q, k, v must be [B, H, T|S, hs], got [${q.shape}], [${k.shape}], [${v.shape}]`);
  const scale = opts.scale ?? 1 / Math.sqrt(q.shape[3] as number);
  if (!Number.isFinite(scale)) throw new Error(`scaledDotProductAttention: scale must be a finite number, got ${scale}`);
  return (opts.mask ? null : fusedAttention(q, k, v, scale, !!opts.causal)) ?? attentionComposite(q, k, v, { ...opts, scale });
}

type AttentionCustom = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor;
const attentionByKey = new Map<string, AttentionCustom>();

function makeFusedAttention(scale: number, causal: boolean): AttentionCustom {
  const attrs = { scale, causal } as unknown as tf.NamedAttrMap;
  return tf.customGrad(((q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, save: tf.GradSaveFunc) => {
    const [o, p] = tf.engine().runKernel(ATTENTION_KERNEL, { q, k, v }, attrs) as tf.Tensor[];
    save([q, k, v, p!]);
    return {
      value: o!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [qs, ks, vs, ps] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.engine().runKernel(ATTENTION_GRAD_KERNEL, { dy, q: qs, k: ks, v: vs, p: ps }, attrs) as tf.Tensor[];
      },
    };
  }) as unknown as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    value: tf.Tensor;
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
  }) as unknown as AttentionCustom;
}

/**
 * Core's wasm attention kernels (one call forward, one backward while a tape records) where they
 * apply: float32, core's kernels active, no extra mask. Bit-identical to attentionComposite. While
 * no tape records, the forward alone (its probabilities are dropped). null elsewhere.
 */
function fusedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number, causal: boolean): tf.Tensor | null {
  const be = tf.getBackend();
  if (q.dtype !== 'float32' || k.dtype !== 'float32' || v.dtype !== 'float32' || !coreKernelsActive(be)) return null;
  // the kernels take q [B, H, T, hs] and k, v [B, H, S, hs] as they are; broadcast batch dimensions keep the composite
  const [B, H, , hs] = q.shape;
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== hs || v.shape.join() !== k.shape.join()) return null;
  if (tf.getKernel(ATTENTION_KERNEL, be) === undefined || tf.getKernel(ATTENTION_GRAD_KERNEL, be) === undefined) return null;
  if (!tf.engine().isTapeOn()) {
    const [o, p] = tf.engine().runKernel(ATTENTION_KERNEL, { q, k, v }, { scale, causal } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    p!.dispose();
    return o!;
  }
  if (!oneTapeRecording()) return null; // nested tapes: the composite (the fused backward is first order)
  const key = `${scale}/${causal}`;
  let f = attentionByKey.get(key);
  if (!f) {
    f = makeFusedAttention(scale, causal);
    attentionByKey.set(key, f);
  }
  return f(q, k, v);
}
