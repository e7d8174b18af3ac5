/**
 * The causal query block of SEED's Causal Q-Former (Ge et al. 2023, arXiv 2307.08041; BLIP-2's BERT
 * Q-Former, Li et al. 2023, with a lower-triangular mask among the learnable queries), shared by
 * `@mmlm/seed` (its tokenizer) and `@mmlm/mio` (its 1-D causal image codes). Names follow the
 * reference `lavis/models/blip2_models/Qformer_casual.py`: `attention.self`, `crossattention`,
 * `intermediate_query` / `output_query` (the query FFN) and `intermediate` / `output` (the text FFN).
 *
 *   queries x [B, Q, H] -> attention:      LayerNorm(x + SelfAttn(x, mask))          (mask: 0 / -1e4, j <= i)
 *                       -> crossattention: LayerNorm(h + CrossAttn(h, context))      (every token of the context)
 *                       -> query FFN:      LayerNorm(h + dense(GELU(dense(h))))      post-LN, as BERT
 */

import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import { gelu } from './activations.js';
import { MultiHeadAttention } from './attention.js';
import type { Init } from './init.js';
import { Linear } from './linear.js';
import { Module, ModuleList } from './module.js';
import { LayerNorm } from './norm.js';

/** The additive value of a masked position in BERT's extended attention mask (fp16-safe, not -inf). */
export const EXTENDED_MASK_VALUE = -10000;

/** BERT's N(0, 0.02) init of every dense and embedding weight. */
const bertInit: Init = { kind: 'normal', std: 0.02 };

/**
 * BertModel.get_extended_attention_mask of Qformer_casual.py for a keep-mask [B, S] (1 = attend):
 * causal: keep[b, j] * [j <= i] -> [B, 1, S, S]; otherwise keep -> [B, 1, 1, S]; then
 * (1 - mask) * -10000, i.e. 0 where attention is allowed and -1e4 where it is not.
 */
export function extendedAttentionMask(keep: tf.Tensor, causal: boolean): tf.Tensor4D {
  if (keep.rank !== 2) throw new Error(`extendedAttentionMask: keep must be [B, S], got shape [${keep.shape}]`);
  return tf.tidy(() => {
    const [B, S] = keep.shape as [number, number];
    const k = keep.toFloat();
    let m: tf.Tensor; // 1 = attend
    if (causal) {
      const seq = tf.range(0, S, 1, 'int32');
      const tril = tf.lessEqual(seq.reshape([1, S]), seq.reshape([S, 1])).toFloat(); // [S, S], [i, j] = j <= i
      m = tril.reshape([1, 1, S, S]).mul(k.reshape([B, 1, 1, S])); // [B, 1, S, S]
    } else m = k.reshape([B, 1, 1, S]); // [B, 1, 1, S]
    return m.sub(1).mul(-EXTENDED_MASK_VALUE) as tf.Tensor4D; // (m - 1) * 1e4 == (1 - m) * -1e4, without a -0
  });
}

/** The width options of one Q-Former layer (BERT config names in comments). */
export interface QFormerLayerOptions {
  /** H, `hidden_size`. */
  hiddenSize: number;
  /** `num_attention_heads`; must divide H. */
  numHeads: number;
  /** `intermediate_size`, the FFN width. */
  intermediateSize: number;
  /** `layer_norm_eps` (BERT: 1e-12). */
  lnEps?: number;
  /** Width of the context this layer cross-attends to (`encoder_width`); omitted: no cross-attention. */
  contextDim?: number;
  /** Also build the text FFN (`intermediate`, `output`) for a text branch sharing the self-attention. Default false. */
  textBranch?: boolean;
  rng?: Rng;
}

/** BertAttention (self or cross): LayerNorm(x + proj(attention)), post-LN as BERT. */
export class QFormerAttention extends Module {
  readonly self: MultiHeadAttention;
  readonly LayerNorm: LayerNorm;

  constructor(hiddenSize: number, numHeads: number, lnEps: number, contextDim: number | undefined, rng: Rng) {
    super();
    this.self = this.module('self', new MultiHeadAttention({ dim: hiddenSize, numHeads, contextDim, init: bertInit, rng }));
    this.LayerNorm = this.module('LayerNorm', new LayerNorm(hiddenSize, { eps: lnEps }));
  }

  /** x [B, T, H], additive mask broadcastable to [B, heads, T, S] or null, context [B, S, Dc] for cross-attention -> [B, T, H]. */
  forward(x: tf.Tensor, mask: tf.Tensor | null, context?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.LayerNorm.forward(x.add(this.self.forward(x, { mask, context }))));
  }
}

/** BertIntermediate: the FFN's first dense (GELU follows in the layer). */
export class QFormerIntermediate extends Module {
  readonly dense: Linear;
  constructor(hiddenSize: number, intermediateSize: number, rng: Rng) {
    super();
    this.dense = this.module('dense', new Linear(hiddenSize, intermediateSize, { init: bertInit, rng }));
  }
}

/** BertOutput: the FFN's second dense and its post-LN. */
export class QFormerOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  constructor(hiddenSize: number, intermediateSize: number, lnEps: number, rng: Rng) {
    super();
    this.dense = this.module('dense', new Linear(intermediateSize, hiddenSize, { init: bertInit, rng }));
    this.LayerNorm = this.module('LayerNorm', new LayerNorm(hiddenSize, { eps: lnEps }));
  }
}

/** LayerNorm(x + dense(GELU(dense(x)))), BERT's FFN with exact GELU. [B, T, H] -> [B, T, H] */
function ffn(x: tf.Tensor, inter: QFormerIntermediate, out: QFormerOutput): tf.Tensor {
  return tf.tidy(() => out.LayerNorm.forward(x.add(out.dense.forward(gelu(inter.dense.forward(x))))));
}

/**
 * One Q-Former layer (BLIP-2 BertLayer): the self-attention, cross-attention of the queries to the
 * context when `contextDim` is given, the query FFN (`intermediate_query`, `output_query`) and,
 * with `textBranch`, the text FFN (`intermediate`, `output`). Children are registered in the
 * reference's order, so parameter paths and the draws of a shared rng match it.
 */
export class QFormerLayer extends Module {
  readonly attention: QFormerAttention;
  readonly crossattention: QFormerAttention | null;
  readonly intermediate: QFormerIntermediate | null;
  readonly output: QFormerOutput | null;
  readonly intermediate_query: QFormerIntermediate;
  readonly output_query: QFormerOutput;

  constructor(opts: QFormerLayerOptions) {
    super();
    const { hiddenSize: H, numHeads, intermediateSize: I } = opts;
    const eps = opts.lnEps ?? 1e-12;
    const rng = opts.rng ?? defaultRng();
    if (opts.contextDim !== undefined && !(Number.isInteger(opts.contextDim) && opts.contextDim > 0))
      throw new Error(`QFormerLayer: contextDim must be a positive integer, got ${opts.contextDim}`);
    this.attention = this.module('attention', new QFormerAttention(H, numHeads, eps, undefined, rng));
    this.crossattention =
      opts.contextDim !== undefined ? this.module('crossattention', new QFormerAttention(H, numHeads, eps, opts.contextDim, rng)) : null;
    this.intermediate = opts.textBranch ? this.module('intermediate', new QFormerIntermediate(H, I, rng)) : null;
    this.output = opts.textBranch ? this.module('output', new QFormerOutput(H, I, eps, rng)) : null;
    this.intermediate_query = this.module('intermediate_query', new QFormerIntermediate(H, I, rng));
    this.output_query = this.module('output_query', new QFormerOutput(H, I, eps, rng));
  }

  /** The query stream: x [B, Q, H], self-attention mask or null, context [B, S, Dc] -> [B, Q, H]. */
  queries(x: tf.Tensor, mask: tf.Tensor | null, context: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = this.attention.forward(x, mask);
      if (this.crossattention) h = this.crossattention.forward(h, null, context);
      return ffn(h, this.intermediate_query, this.output_query);
    });
  }

  /** The text stream (no cross-attention): x [B, L, H], padding mask -> [B, L, H]. Needs `textBranch`. */
  text(x: tf.Tensor, mask: tf.Tensor | null): tf.Tensor {
    if (!this.intermediate || !this.output) throw new Error('QFormerLayer.text: this layer was built without textBranch');
    const inter = this.intermediate;
    const out = this.output;
    return tf.tidy(() => ffn(this.attention.forward(x, mask), inter, out));
  }
}

/** Options of a CausalQueryEncoder. */
export interface CausalQueryEncoderOptions {
  /** Q, the learnable queries = output tokens (SEED: 32). */
  numQueries: number;
  /** H, the width of the queries. */
  hiddenSize: number;
  numHeads: number;
  numLayers: number;
  intermediateSize: number;
  /** Width of the context tokens the queries cross-attend to. */
  contextDim: number;
  /** Layers with index % freq == 0 cross-attend (BLIP-2 / SEED: 2). Default 2. */
  crossAttentionFreq?: number;
  /** Lower-triangular mask among the queries (query i sees j <= i). Default true. */
  causal?: boolean;
  /** Std of the N(0, std) query init (BLIP-2: 0.02). */
  queryInitStd?: number;
  lnEps?: number;
  rng?: Rng;
}

/**
 * The query side of SEED's Causal Q-Former without its text branch: learnable `query_tokens`
 * [1, Q, H] (no position embedding), a LayerNorm, and `numLayers` QFormerLayers whose
 * self-attention is masked lower-triangular (-1e4 above the diagonal), each `crossAttentionFreq`-th
 * layer cross-attending to every context token. Query i's output depends on queries j <= i only,
 * and on the whole context: context [B, S, Dc] -> causal embeddings [B, Q, H].
 */
export class CausalQueryEncoder extends Module {
  readonly numQueries: number;
  readonly hiddenSize: number;
  readonly contextDim: number;
  readonly causal: boolean;
  readonly query_tokens: tf.Variable; // [1, Q, H]
  readonly LayerNorm: LayerNorm;
  readonly layer: ModuleList<QFormerLayer>;

  constructor(opts: CausalQueryEncoderOptions) {
    super();
    const need = (name: keyof CausalQueryEncoderOptions, v: unknown) => {
      if (!(Number.isInteger(v) && (v as number) > 0))
        throw new Error(`CausalQueryEncoder: ${name} must be a positive integer, got ${String(v)}`);
    };
    for (const k of ['numQueries', 'hiddenSize', 'numHeads', 'numLayers', 'intermediateSize', 'contextDim'] as const) need(k, opts[k]);
    const freq = opts.crossAttentionFreq ?? 2;
    need('crossAttentionFreq', freq);
    const rng = opts.rng ?? defaultRng();
    const eps = opts.lnEps ?? 1e-12;
    this.numQueries = opts.numQueries;
    this.hiddenSize = opts.hiddenSize;
    this.contextDim = opts.contextDim;
    this.causal = opts.causal ?? true;
    this.query_tokens = this.param('query_tokens', rng.randn([1, opts.numQueries, opts.hiddenSize], 0, opts.queryInitStd ?? 0.02));
    this.LayerNorm = this.module('LayerNorm', new LayerNorm(opts.hiddenSize, { eps }));
    this.layer = this.module(
      'layer',
      new ModuleList(
        Array.from(
          { length: opts.numLayers },
          (_, i) =>
            new QFormerLayer({
              hiddenSize: opts.hiddenSize,
              numHeads: opts.numHeads,
              intermediateSize: opts.intermediateSize,
              lnEps: eps,
              contextDim: i % freq === 0 ? opts.contextDim : undefined,
              rng,
            }),
        ),
      ),
    );
  }

  /** The self-attention mask among the queries: [1, 1, Q, Q] (0 / -1e4), or null when not causal. */
  queryMask(): tf.Tensor4D | null {
    return this.causal ? tf.tidy(() => extendedAttentionMask(tf.ones([1, this.numQueries]), true)) : null;
  }

  /** Causal embeddings of the learned queries: context [B, S, Dc] -> [B, Q, H]. */
  forward(context: tf.Tensor): tf.Tensor3D {
    this.checkContext(context);
    return tf.tidy(() => this.forwardQueries(this.query_tokens.tile([context.shape[0] as number, 1, 1]), context));
  }

  /** The query stream from given query embeddings [B, Q, H] (the learned ones in forward) and context [B, S, Dc]. */
  forwardQueries(queryEmbeds: tf.Tensor, context: tf.Tensor): tf.Tensor3D {
    this.checkContext(context);
    const B = context.shape[0] as number;
    const { numQueries: Q, hiddenSize: H } = this;
    if (queryEmbeds.rank !== 3 || queryEmbeds.shape[0] !== B || queryEmbeds.shape[1] !== Q || queryEmbeds.shape[2] !== H)
      throw new Error(`CausalQueryEncoder: query embeddings must be [${B}, ${Q}, ${H}], got shape [${queryEmbeds.shape}]`);
    return tf.tidy(() => {
      const mask = this.queryMask();
      let x = this.LayerNorm.forward(queryEmbeds); // no position embedding for the queries
      for (const l of this.layer) x = l.queries(x, mask, context);
      return x as tf.Tensor3D;
    });
  }

  private checkContext(context: tf.Tensor): void {
    if (context.rank !== 3 || context.shape[2] !== this.contextDim || (context.shape[0] as number) < 1 || (context.shape[1] as number) < 1)
      throw new Error(`CausalQueryEncoder: context must be [B, S, ${this.contextDim}] with B, S >= 1, got shape [${context.shape}]`);
    if (context.dtype !== 'float32') throw new Error(`CausalQueryEncoder: context must be float32, got ${context.dtype}`);
  }
}
