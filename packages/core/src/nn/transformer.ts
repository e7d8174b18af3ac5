/**
 * A pre-norm decoder-only Transformer (GPT-2 / LLaMA family) with a KV cache for incremental
 * decoding. Configurable to the gpt-bench model (LayerNorm, GELU MLP, learned positions, biases)
 * and to LLaMA/LatentLM-style backbones (RMSNorm, SwiGLU, RoPE, no biases, GQA).
 *
 * Parameter names: tok_embed, pos_embed, blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.*}, norm, head.
 */
import { dropout } from '../backend/kernels/fused.js';
import { defaultRng } from '../rng/global.js';
import { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import type { Activation } from './activations.js';
import { type AttentionCall, KVCache, MultiHeadAttention } from './attention.js';
import type { Init } from './init.js';
import { Embedding, Linear } from './linear.js';
import { MLP, SwiGLU, swigluHidden } from './mlp.js';
import { Module, ModuleList } from './module.js';
import { LayerNorm, RMSNorm } from './norm.js';
import { type RopeFreqs, type RopeStyle, RotaryEmbedding } from './rope.js';

export interface TransformerDecoderConfig {
  /** Token vocabulary; 0 means no token embedding and no LM head (inputs are embeddings). */
  vocabSize: number;
  dim: number;
  numLayers: number;
  numHeads: number;
  /** GQA key/value heads; default numHeads. */
  numKvHeads?: number;
  /** Longest sequence (learned positions and the KV cache are bounded by it). */
  maxSeqLen: number;
  /** 'gelu' MLP (GPT-2) or 'swiglu' (LLaMA/LatentLM). Default 'gelu'. */
  mlp?: 'gelu' | 'swiglu';
  /** Activation of the 'gelu' MLP. Default 'gelu_tanh' (GPT-2). */
  activation?: Activation;
  /** Hidden width of the MLP. Default 4*dim (gelu) or LatentLM's SwiGLU rule (swiglu). */
  mlpHidden?: number;
  /** Default 'layernorm'. */
  norm?: 'layernorm' | 'rmsnorm';
  /** Default 1e-5 (LayerNorm) or 1e-6 (RMSNorm). */
  normEps?: number;
  /** Biases in attention and MLP linears (and LayerNorm). Default true. */
  bias?: boolean;
  /** Positions: learned table (GPT-2), RoPE, or none. Default 'learned'. */
  pos?: 'learned' | 'rope' | 'none';
  ropeBase?: number;
  ropeStyle?: RopeStyle;
  ropeFreqs?: RopeFreqs;
  /** Share the token embedding with the LM head. Default false. */
  tieEmbeddings?: boolean;
  /** Dropout on attention and MLP outputs in training mode. Default 0. */
  dropout?: number;
  /** Std of the normal init (GPT-2: 0.02); output projections get std/sqrt(2*numLayers). */
  initStd?: number;
  /** Add a cross-attention sublayer over a context of this width. */
  contextDim?: number;
  /** Seed of the parameter init and dropout streams. Default: the global stream. */
  seed?: number;
}

export class DecoderBlock extends Module {
  readonly norm1: LayerNorm | RMSNorm;
  readonly attn: MultiHeadAttention;
  readonly normCross: LayerNorm | RMSNorm | null;
  readonly crossAttn: MultiHeadAttention | null;
  readonly norm2: LayerNorm | RMSNorm;
  readonly mlp: MLP | SwiGLU;

  constructor(
    cfg: Required<Pick<TransformerDecoderConfig, 'dim' | 'numHeads'>> & TransformerDecoderConfig,
    rope: RotaryEmbedding | null,
    private readonly rng: Rng,
  ) {
    super();
    this.rngStream('dropout', rng);
    const bias = cfg.bias ?? true;
    const init: Init = { kind: 'normal', std: cfg.initStd ?? 0.02 };
    const outInit: Init = { kind: 'normal', std: (cfg.initStd ?? 0.02) / Math.sqrt(2 * cfg.numLayers) };
    const norm = () =>
      cfg.norm === 'rmsnorm'
        ? new RMSNorm(cfg.dim, { eps: cfg.normEps ?? 1e-6 })
        : new LayerNorm(cfg.dim, { eps: cfg.normEps ?? 1e-5, bias });
    this.norm1 = this.module('norm1', norm());
    this.attn = this.module(
      'attn',
      new MultiHeadAttention({
        dim: cfg.dim,
        numHeads: cfg.numHeads,
        numKvHeads: cfg.numKvHeads,
        causal: true,
        bias,
        init,
        outInit,
        rope,
        rng,
      }),
    );
    if (cfg.contextDim !== undefined) {
      this.normCross = this.module('norm_cross', norm());
      this.crossAttn = this.module(
        'cross_attn',
        new MultiHeadAttention({ dim: cfg.dim, numHeads: cfg.numHeads, contextDim: cfg.contextDim, bias, init, outInit, rng }),
      );
    } else {
      this.normCross = null;
      this.crossAttn = null;
    }
    this.norm2 = this.module('norm2', norm());
    this.mlp =
      cfg.mlp === 'swiglu'
        ? this.module('mlp', new SwiGLU(cfg.dim, cfg.mlpHidden ?? swigluHidden(cfg.dim), { bias, init, outInit, rng }))
        : this.module(
            'mlp',
            new MLP(cfg.dim, cfg.mlpHidden ?? 4 * cfg.dim, { activation: cfg.activation ?? 'gelu_tanh', bias, init, outInit, rng }),
          );
    this.dropoutRate = cfg.dropout ?? 0;
  }

  private readonly dropoutRate: number;

  private drop(x: tf.Tensor): tf.Tensor {
    return this.training && this.dropoutRate > 0 ? dropout(x, this.dropoutRate, this.rng.nextSeed()) : x;
  }

  forward(x: tf.Tensor /* [B, T, D] */, call: AttentionCall & { context?: tf.Tensor } = {}): tf.Tensor /* [B, T, D] */ {
    return tf.tidy(() => {
      let h = x.add(this.drop(this.attn.forward(this.norm1.forward(x), { mask: call.mask, cache: call.cache, layer: call.layer })));
      if (this.crossAttn && this.normCross)
        h = h.add(this.drop(this.crossAttn.forward(this.normCross.forward(h), { context: call.context })));
      return h.add(this.drop(this.mlp.forward(this.norm2.forward(h))));
    });
  }
}

export interface DecoderCall {
  /** Additive mask broadcastable to [B, H, T, S] on top of the causal mask (padding, packing). */
  mask?: tf.Tensor | null;
  /** KV cache for incremental decoding (see newCache()). */
  cache?: KVCache;
  /** Cross-attention context [B, S, contextDim]. */
  context?: tf.Tensor;
}

export class TransformerDecoder extends Module {
  readonly config: TransformerDecoderConfig;
  readonly tok_embed: Embedding | null;
  readonly pos_embed: Embedding | null;
  readonly blocks: ModuleList<DecoderBlock>;
  readonly norm: LayerNorm | RMSNorm;
  readonly head: Linear | null;

  constructor(config: TransformerDecoderConfig) {
    super();
    validateDecoderConfig(config);
    this.config = { ...config };
    const rng = config.seed !== undefined ? new Rng(config.seed) : defaultRng();
    const std = config.initStd ?? 0.02;
    const { vocabSize, dim } = config;
    this.tok_embed = vocabSize > 0 ? this.module('tok_embed', new Embedding(vocabSize, dim, { init: { kind: 'normal', std }, rng })) : null;
    const pos = config.pos ?? 'learned';
    this.pos_embed =
      pos === 'learned' ? this.module('pos_embed', new Embedding(config.maxSeqLen, dim, { init: { kind: 'normal', std }, rng })) : null;
    const rope =
      pos === 'rope'
        ? new RotaryEmbedding({ headDim: dim / config.numHeads, base: config.ropeBase, style: config.ropeStyle, freqs: config.ropeFreqs })
        : null;
    const dropRng = rng.fork('dropout');
    this.blocks = this.module('blocks', new ModuleList<DecoderBlock>());
    for (let i = 0; i < config.numLayers; i++) {
      const r = dropRng.fork(i);
      this.blocks.push(new DecoderBlock(config, rope, r));
    }
    this.norm = this.module(
      'norm',
      config.norm === 'rmsnorm'
        ? new RMSNorm(dim, { eps: config.normEps ?? 1e-6 })
        : new LayerNorm(dim, { eps: config.normEps ?? 1e-5, bias: config.bias ?? true }),
    );
    this.head =
      vocabSize > 0 && !config.tieEmbeddings
        ? this.module('head', new Linear(dim, vocabSize, { bias: false, init: { kind: 'normal', std }, rng }))
        : null;
  }

  /**
   * Every random stream of the model by path (`blocks.<i>.dropout`, and those of modules swapped in,
   * e.g. MaskLLM's Gumbel noise): `namedRngs()` as a record. trainLoop resumes them by default.
   */
  rngs(): Record<string, Rng> {
    return Object.fromEntries(this.namedRngs());
  }

  /** A fresh KV cache for this model (dispose it when done). */
  newCache(): KVCache {
    return new KVCache(this.config.numLayers);
  }

  /** Token ids [B, T] -> embeddings [B, T, D] (no positions). */
  embed(ids: tf.Tensor): tf.Tensor {
    if (!this.tok_embed) throw new Error('TransformerDecoder.embed: this model has vocabSize 0 (no token embedding)');
    return this.tok_embed.forward(ids);
  }

  /**
   * Embeddings [B, T, D] -> final hidden states [B, T, D] (after the final norm). With a cache,
   * the T inputs are positions cache.length .. cache.length + T - 1.
   */
  forwardHidden(x: tf.Tensor, call: DecoderCall = {}): tf.Tensor {
    return tf.tidy(() => {
      if (x.rank !== 3 || x.shape[2] !== this.config.dim)
        throw new Error(`TransformerDecoder: input must be [B, T, ${this.config.dim}], got shape [${x.shape}]`);
      const T = x.shape[1] as number;
      const offset = call.cache?.length ?? 0;
      if (offset + T > this.config.maxSeqLen)
        throw new Error(
          `TransformerDecoder: sequence of ${offset + T} positions (cached ${offset} + new ${T}) exceeds maxSeqLen ${this.config.maxSeqLen}`,
        );
      let h = x;
      if (this.pos_embed) h = h.add(tf.slice(this.pos_embed.weight, [offset, 0], [T, this.config.dim])); // [B, T, D]
      this.blocks.items.forEach((b, i) => {
        h = b.forward(h, { mask: call.mask, cache: call.cache, layer: i, context: call.context });
      });
      return this.norm.forward(h);
    });
  }

  /** Hidden states [B, T, D] -> logits [B, T, V]. */
  logits(h: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      if (this.head) return this.head.forward(h);
      if (!this.tok_embed) throw new Error('TransformerDecoder.logits: this model has vocabSize 0 (no LM head)');
      const [B, T, D] = h.shape as [number, number, number];
      return tf.matMul(h.reshape([B * T, D]), this.tok_embed.weight, false, true).reshape([B, T, this.config.vocabSize]);
    });
  }

  /** Token ids [B, T] int32 -> logits [B, T, V]. */
  forward(ids: tf.Tensor, call: DecoderCall = {}): tf.Tensor {
    return tf.tidy(() => {
      if (ids.rank !== 2) throw new Error(`TransformerDecoder.forward: ids must be [B, T], got shape [${ids.shape}]`);
      return this.logits(this.forwardHidden(this.embed(ids), call));
    });
  }
}

export function validateDecoderConfig(c: TransformerDecoderConfig): void {
  const bad: string[] = [];
  const posInt = (k: keyof TransformerDecoderConfig, allowZero = false) => {
    const v = c[k] as number;
    if (!Number.isInteger(v) || v < (allowZero ? 0 : 1))
      bad.push(`${k} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${v}`);
  };
  posInt('vocabSize', true);
  posInt('dim');
  posInt('numLayers');
  posInt('numHeads');
  posInt('maxSeqLen');
  if (Number.isInteger(c.dim) && Number.isInteger(c.numHeads) && c.numHeads > 0 && c.dim % c.numHeads !== 0)
    bad.push(`dim (${c.dim}) must be divisible by numHeads (${c.numHeads})`);
  if (c.numKvHeads !== undefined && (c.numKvHeads <= 0 || c.numHeads % c.numKvHeads !== 0))
    bad.push(`numKvHeads (${c.numKvHeads}) must divide numHeads (${c.numHeads})`);
  if (c.pos === 'rope' && (c.dim / c.numHeads) % 2 !== 0) bad.push(`RoPE needs an even head dim, got ${c.dim / c.numHeads}`);
  if (c.dropout !== undefined && !(c.dropout >= 0 && c.dropout < 1)) bad.push(`dropout must be in [0, 1), got ${c.dropout}`);
  if (c.tieEmbeddings && c.vocabSize === 0) bad.push('tieEmbeddings needs vocabSize > 0');
  if (bad.length) throw new Error(`TransformerDecoder config: ${bad.join('; ')}`);
}
