/**
 * The SEED image tokenizer (Ge et al. 2023, arXiv 2307.08041), laid out as the reference
 * AILab-CVC/SEED `SEED_Tokenizer/lavis/models/blip2_models/` (brief sec. 1.2-1.3):
 *
 *   images [B, S, S, 3] -> visual_encoder (a ViT standing in for the frozen EVA-CLIP ViT-g/14) -> ln_vision
 *     -> Causal Q-Former: query_tokens [1, Q, H], self-attention with a lower-triangular mask among
 *        the queries, cross-attention to every ViT token every 2nd layer      -> causal embeddings [B, Q, H]
 *   Stage I:  vision_proj(last query) vs text_proj(text CLS of the Q-Former's own text branch), symmetric
 *             InfoNCE with label smoothing 0.1 and a learnable temperature (init 0.07)
 *   Stage II (Q-Former frozen): encode_task_layer -> quantize (VectorQuantizer2, legacy) -> decode_task_layer
 *             -> pos_embed + blocks         -> 1 - cos against the causal embeddings
 *             -> pos_embed_image + blocks_image -> image_down -> distill_image_proj -> MSE against a
 *                generation embedding (SEED-2: the unCLIP image embedding)
 *             L = 5 L_vq + 2 L_rec + 0.5 L_gen
 *
 * Names follow the reference where core's blocks allow: core's attention fuses BERT's
 * query/key/value into `qkv` (and `q` + `kv` for cross-attention) and holds the output dense as
 * `proj`; the Q-Former drops BLIP-2's `bert.encoder.` prefix (README has the map).
 */
import {
  type AdamW,
  cosineLoss,
  Embedding,
  EXTENDED_MASK_VALUE,
  extendedAttentionMask,
  infoNCE,
  LayerNorm,
  Linear,
  MLP,
  Module,
  ModuleList,
  MultiHeadAttention,
  mse,
  patchify,
  QFormerLayer,
  Rng,
  stopGradient,
  tf,
  VectorQuantizer,
  type VQOutput,
  valueAndGrads,
} from '@mmlm/core';
import {
  crossAttentionLayers,
  numVisionTokens,
  type QFormerConfig,
  queryMaskIsCausal,
  type SeedConfig,
  seedConfig,
  type VitConfig,
} from './config.js';

/** The additive value of a masked position in the reference's extended attention mask (fp16-safe, not -inf); core's EXTENDED_MASK_VALUE. */
export const MASK_VALUE = EXTENDED_MASK_VALUE;

/** BertModel.get_extended_attention_mask of Qformer_casual.py, now in core (shared with @mmlm/mio). */
export { extendedAttentionMask };

/** CLIP's normalisation (OpenAI mean / std), applied to pixels in [0, 1] before the ViT (brief pitfall 1.7.8). */
export const CLIP_MEAN: readonly number[] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly number[] = [0.26862954, 0.26130258, 0.27577711];

const bertInit = { kind: 'normal', std: 0.02 } as const;

function checkImages(where: string, images: tf.Tensor, c: VitConfig): void {
  const ok = images.rank === 4 && images.shape[1] === c.imageSize && images.shape[2] === c.imageSize && images.shape[3] === c.inChannels;
  if (!ok)
    throw new Error(`${where}: images must be [B, ${c.imageSize}, ${c.imageSize}, ${c.inChannels}] (NHWC), got shape [${images.shape}]`);
  if (images.dtype !== 'float32') throw new Error(`${where}: images must be float32, got ${images.dtype}`);
}

/** lavis.models.vit.Block (timm): x + attn(norm1(x)), then x + mlp(norm2(x)); pre-LN, exact GELU. */
export class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: MultiHeadAttention;
  readonly norm2: LayerNorm;
  readonly mlp: MLP;

  constructor(dim: number, numHeads: number, mlpHidden: number, lnEps: number, rng: Rng) {
    super();
    this.norm1 = this.module('norm1', new LayerNorm(dim, { eps: lnEps }));
    this.attn = this.module('attn', new MultiHeadAttention({ dim, numHeads, init: bertInit, rng }));
    this.norm2 = this.module('norm2', new LayerNorm(dim, { eps: lnEps }));
    this.mlp = this.module('mlp', new MLP(dim, mlpHidden, { activation: 'gelu', init: bertInit, rng }));
  }

  forward(x: tf.Tensor /* [B, T, D] */): tf.Tensor /* [B, T, D] */ {
    return tf.tidy(() => {
      const h = x.add(this.attn.forward(this.norm1.forward(x)));
      return h.add(this.mlp.forward(this.norm2.forward(h)));
    });
  }
}

/** `patch_embed.proj`: the reference's stride-p Conv2d as a Linear over flattened (py, px, c) patches. */
class PatchEmbed extends Module {
  readonly proj: Linear;
  constructor(
    readonly patchSize: number,
    inChannels: number,
    dim: number,
    rng: Rng,
  ) {
    super();
    this.proj = this.module('proj', new Linear(patchSize * patchSize * inChannels, dim, { init: bertInit, rng }));
  }

  forward(images: tf.Tensor /* [B, S, S, C] */): tf.Tensor /* [B, P, D] */ {
    return tf.tidy(() => this.proj.forward(patchify(images, this.patchSize))); // [B, P, p p C], raster order of patches
  }
}

/**
 * The image encoder standing in for BLIP-2's EVA-CLIP ViT-g/14 (frozen in SEED): patch embedding,
 * CLS token, learned positions, pre-LN blocks; no final norm (`ln_vision` follows in the tokenizer).
 * Input: CLIP-normalised images [B, S, S, C]; output: [B, 1 + P, D] tokens, CLS first.
 */
export class VisionTransformer extends Module {
  readonly patch_embed: PatchEmbed;
  readonly cls_token: tf.Variable; // [1, 1, D]
  readonly pos_embed: tf.Variable; // [1, 1 + P, D]
  readonly blocks: ModuleList<Block>;

  constructor(
    readonly config: VitConfig,
    rng: Rng = new Rng(0),
  ) {
    super();
    const D = config.width;
    this.patch_embed = this.module('patch_embed', new PatchEmbed(config.patchSize, config.inChannels, D, rng));
    this.cls_token = this.param('cls_token', rng.truncatedNormal([1, 1, D], 0, 0.02));
    this.pos_embed = this.param('pos_embed', rng.truncatedNormal([1, numVisionTokens(config), D], 0, 0.02));
    const hidden = config.mlpHidden ?? 4 * D;
    this.blocks = this.module(
      'blocks',
      new ModuleList(Array.from({ length: config.depth }, () => new Block(D, config.numHeads, hidden, config.lnEps, rng))),
    );
  }

  /** Width of the output tokens (EVA ViT `num_features`). */
  get numFeatures(): number {
    return this.config.width;
  }

  forward(images: tf.Tensor /* [B, S, S, C] */): tf.Tensor /* [B, 1 + P, D] */ {
    checkImages('VisionTransformer.forward', images, this.config);
    return tf.tidy(() => {
      const B = images.shape[0] as number;
      const patches = this.patch_embed.forward(images); // [B, P, D]
      const cls = this.cls_token.tile([B, 1, 1]); // [B, 1, D]
      let x = tf.concat([cls, patches], 1).add(this.pos_embed); // [B, 1 + P, D]
      for (const blk of this.blocks) x = blk.forward(x);
      return x;
    });
  }
}

/** BERT embeddings of the Q-Former: word + position embeddings for text, LayerNorm for both text and queries. */
class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;

  constructor(c: QFormerConfig, rng: Rng) {
    super();
    this.word_embeddings = this.module('word_embeddings', new Embedding(c.vocabSize, c.hiddenSize, { init: bertInit, rng }));
    this.position_embeddings = this.module('position_embeddings', new Embedding(c.maxTextLen, c.hiddenSize, { init: bertInit, rng }));
    this.LayerNorm = this.module('LayerNorm', new LayerNorm(c.hiddenSize, { eps: c.lnEps }));
  }

  text(ids: tf.Tensor /* [B, L] int32 */): tf.Tensor /* [B, L, H] */ {
    return tf.tidy(() => {
      const L = ids.shape[1] as number;
      const pos = this.position_embeddings.forward(tf.range(0, L, 1, 'int32').reshape([1, L])); // [1, L, H]
      return this.LayerNorm.forward(this.word_embeddings.forward(ids).add(pos));
    });
  }
}

/**
 * The Causal Q-Former (SEED, brief 1.2): BLIP-2's BERT Q-Former whose learnable queries
 * `query_tokens` ~ N(0, 0.02) carry no position embedding (only the embeddings' LayerNorm) and
 * see each other through the lower-triangular extended mask (query i attends to j <= i, -1e4
 * above the diagonal), while every query cross-attends to all ViT tokens. The text branch
 * (`encodeText`) shares the self-attention and has its own FFN, for the stage-I contrastive loss.
 */
export class CausalQFormer extends Module {
  readonly embeddings: BertEmbeddings;
  readonly layer: ModuleList<QFormerLayer>;
  readonly query_tokens: tf.Variable; // [1, Q, H]
  /** Whether the query self-attention is causal (always, or per the reference's 32-query rule). */
  readonly causal: boolean;

  constructor(
    readonly config: QFormerConfig,
    readonly visionWidth: number,
    rng: Rng = new Rng(0),
  ) {
    super();
    const cross = new Set(crossAttentionLayers(config));
    this.embeddings = this.module('embeddings', new BertEmbeddings(config, rng));
    this.layer = this.module(
      'layer',
      new ModuleList(
        Array.from(
          { length: config.numLayers },
          (_, i) =>
            new QFormerLayer({
              hiddenSize: config.hiddenSize,
              numHeads: config.numHeads,
              intermediateSize: config.intermediateSize,
              lnEps: config.lnEps,
              contextDim: cross.has(i) ? visionWidth : undefined,
              textBranch: true,
              rng,
            }),
        ),
      ),
    );
    this.query_tokens = this.param('query_tokens', rng.randn([1, config.numQueries, config.hiddenSize], 0, config.queryInitStd));
    this.causal = queryMaskIsCausal(config);
  }

  /** The self-attention mask of the queries: [1, 1, Q, Q] (0 / -1e4), or null when not causal. */
  queryMask(): tf.Tensor4D | null {
    return this.causal ? tf.tidy(() => extendedAttentionMask(tf.ones([1, this.config.numQueries]), true)) : null;
  }

  /** Causal embeddings of the learned queries: image tokens [B, N, Dv] -> [B, Q, H]. */
  forward(image: tf.Tensor): tf.Tensor {
    this.checkImage(image);
    return tf.tidy(() => this.forwardQueries(this.query_tokens.tile([image.shape[0] as number, 1, 1]), image));
  }

  /** The query stream from given query embeddings [B, Q, H] (the learned ones in forward) and image tokens [B, N, Dv]. */
  forwardQueries(queryEmbeds: tf.Tensor, image: tf.Tensor): tf.Tensor /* [B, Q, H] */ {
    this.checkImage(image);
    const { numQueries: Q, hiddenSize: H } = this.config;
    const B = image.shape[0] as number;
    if (queryEmbeds.rank !== 3 || queryEmbeds.shape[0] !== B || queryEmbeds.shape[1] !== Q || queryEmbeds.shape[2] !== H)
      throw new Error(`CausalQFormer: query embeddings must be [${B}, ${Q}, ${H}] (numQueries ${Q}), got shape [${queryEmbeds.shape}]`);
    return tf.tidy(() => {
      const mask = this.queryMask();
      let x = this.embeddings.LayerNorm.forward(queryEmbeds); // no position embedding for queries
      for (const l of this.layer) x = l.queries(x, mask, image);
      return x;
    });
  }

  /** The text branch: token ids [B, L] (CLS first) and keep-mask [B, L] (1 = token, 0 = pad) -> [B, L, H]. */
  encodeText(ids: tf.Tensor, keep?: tf.Tensor): tf.Tensor {
    const { maxTextLen, vocabSize } = this.config;
    if (ids.rank !== 2 || ids.dtype !== 'int32' || (ids.shape[1] as number) < 1 || (ids.shape[1] as number) > maxTextLen)
      throw new Error(`CausalQFormer.encodeText: ids must be int32 [B, L] with 1 <= L <= ${maxTextLen}, got ${ids.dtype} [${ids.shape}]`);
    if (keep && keep.shape.join() !== ids.shape.join())
      throw new Error(`CausalQFormer.encodeText: keep mask must be [${ids.shape}] like the ids, got [${keep.shape}]`);
    const v = ids.dataSync();
    for (let i = 0; i < v.length; i++)
      if ((v[i] as number) < 0 || (v[i] as number) >= vocabSize)
        throw new Error(`CausalQFormer.encodeText: token id ${v[i]} at flat index ${i} is out of range [0, ${vocabSize})`);
    return tf.tidy(() => {
      const mask = extendedAttentionMask(keep ?? tf.onesLike(ids), false); // [B, 1, 1, L]
      let x = this.embeddings.text(ids);
      for (const l of this.layer) x = l.text(x, mask);
      return x;
    });
  }

  private checkImage(image: tf.Tensor): void {
    if (image.rank !== 3 || image.shape[2] !== this.visionWidth)
      throw new Error(`CausalQFormer: image tokens must be [B, N, ${this.visionWidth}], got shape [${image.shape}]`);
  }
}

/** torch nn.Sequential of Linear layers with an activation between them, children named 0, 2, 4, ... */
export class LinearStack extends Module {
  readonly layers: Linear[] = [];
  constructor(
    widths: number[],
    readonly act: 'tanh' | 'relu',
    bias: boolean,
    rng: Rng,
  ) {
    super();
    for (let i = 0; i + 1 < widths.length; i++)
      this.layers.push(this.module(String(2 * i), new Linear(widths[i] as number, widths[i + 1] as number, { bias, rng })));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = x;
      this.layers.forEach((l, i) => {
        h = l.forward(h);
        if (i + 1 < this.layers.length) h = this.act === 'tanh' ? tf.tanh(h) : tf.relu(h);
      });
      return h;
    });
  }
}

/** A stack of de-tokenizer blocks with its learned position embedding (`pos_embed` + `blocks`). */
function runBlocks(x: tf.Tensor, pos: tf.Variable, blocks: ModuleList<Block>): tf.Tensor {
  return tf.tidy(() => {
    let h = x.add(pos);
    for (const b of blocks) h = b.forward(h);
    return h;
  });
}

export type Stage = 1 | 2;

/** Top-level children trained in each stage (brief 1.3): the ViT is frozen throughout. */
const STAGE_PARAMS: Record<Stage, ReadonlySet<string>> = {
  1: new Set(['ln_vision', 'Qformer', 'vision_proj', 'text_proj', 'temp']),
  2: new Set([
    'encode_task_layer',
    'quantize',
    'decode_task_layer',
    'pos_embed',
    'blocks',
    'pos_embed_image',
    'blocks_image',
    'image_down',
    'distill_image_proj',
  ]),
};

export interface Detokenized {
  /** The reconstructed causal embeddings (`blocks` output). [B, Q, H] */
  causal: tf.Tensor3D;
  /** The generation embedding (`distill_image_proj` output). [B, genDim] */
  gen: tf.Tensor2D;
}

/** The whole SEED tokenizer, stage I and stage II parts together (the reference's two model classes). */
export class SeedTokenizer extends Module {
  readonly config: SeedConfig;
  readonly visual_encoder: VisionTransformer;
  readonly ln_vision: LayerNorm;
  readonly Qformer: CausalQFormer;
  readonly vision_proj: Linear;
  readonly text_proj: Linear;
  /** Learnable temperature tau of the contrastive loss. [] */
  readonly temp: tf.Variable;
  readonly encode_task_layer: LinearStack;
  readonly quantize: VectorQuantizer;
  readonly decode_task_layer: LinearStack;
  readonly pos_embed: tf.Variable; // [1, Q, H]
  readonly blocks: ModuleList<Block>;
  readonly pos_embed_image: tf.Variable; // [1, Q, H]
  readonly blocks_image: ModuleList<Block>;
  readonly image_down: LinearStack;
  readonly distill_image_proj: Linear;
  private _stage: Stage = 1;

  constructor(input: SeedConfig | Parameters<typeof seedConfig>[0] = {}) {
    super();
    const c = seedConfig(input);
    this.config = c;
    const rng = new Rng(c.seed);
    const { qformer: q, decoder: d, quantizer: vq } = c;
    const H = q.hiddenSize;
    this.visual_encoder = this.module('visual_encoder', new VisionTransformer(c.vit, rng.fork('visual_encoder')));
    this.ln_vision = this.module('ln_vision', new LayerNorm(c.vit.width));
    const qr = rng.fork('Qformer');
    this.Qformer = this.module('Qformer', new CausalQFormer(q, c.vit.width, qr));
    this.vision_proj = this.module('vision_proj', new Linear(H, c.contrastive.embedDim, { rng: qr }));
    this.text_proj = this.module('text_proj', new Linear(H, c.contrastive.embedDim, { rng: qr }));
    this.temp = this.param('temp', tf.scalar(c.contrastive.tempInit));
    const r2 = rng.fork('stage2');
    this.encode_task_layer = this.module('encode_task_layer', new LinearStack([H, H, vq.codeDim], 'tanh', true, r2));
    this.quantize = this.module(
      'quantize',
      new VectorQuantizer(vq.numCodes, vq.codeDim, {
        beta: vq.beta,
        legacy: vq.legacy,
        kmeansInit: vq.kmeansInit,
        emaDecay: vq.emaDecay,
        deadCodeSteps: vq.deadCodeSteps,
        rng: r2.fork('quantize'),
      }),
    );
    this.decode_task_layer = this.module('decode_task_layer', new LinearStack([vq.codeDim, vq.codeDim, H], 'tanh', true, r2));
    const hidden = Math.trunc(H * d.mlpRatio);
    const stack = () => new ModuleList(Array.from({ length: d.depth }, () => new Block(H, d.numHeads, hidden, 1e-6, r2)));
    this.pos_embed = this.param('pos_embed', tf.zeros([1, q.numQueries, H]));
    this.blocks = this.module('blocks', stack());
    this.pos_embed_image = this.param('pos_embed_image', tf.zeros([1, q.numQueries, H]));
    this.blocks_image = this.module('blocks_image', stack());
    this.image_down = this.module('image_down', new LinearStack([H, ...d.imageDown], 'relu', false, r2));
    const downOut = d.imageDown[d.imageDown.length - 1] as number;
    this.distill_image_proj = this.module('distill_image_proj', new Linear(q.numQueries * downOut, d.genDim, { rng: r2 }));
    this.setStage(1);
  }

  get stage(): Stage {
    return this._stage;
  }

  /** Make only the given stage's parameters trainable (brief 1.3); build the optimizer after this. */
  setStage(stage: Stage): this {
    if (stage !== 1 && stage !== 2) throw new Error(`SeedTokenizer.setStage: stage must be 1 or 2, got ${String(stage)}`);
    this._stage = stage;
    const on = STAGE_PARAMS[stage];
    for (const [path, v] of this.namedParameters()) v.trainable = on.has(path.split('.')[0] as string);
    return this;
  }

  /** Tokens per image, Q. */
  get numQueries(): number {
    return this.config.qformer.numQueries;
  }

  /** ln_vision(visual_encoder(CLIP-normalised images)): pixels in [0, 1], [B, S, S, 3] -> [B, N, Dv]. */
  imageEmbeds(images: tf.Tensor): tf.Tensor {
    checkImages('SeedTokenizer', images, this.config.vit);
    return tf.tidy(() => {
      const C = this.config.vit.inChannels;
      const mean = C === 3 ? tf.tensor1d(CLIP_MEAN as number[]) : tf.scalar(0.5);
      const std = C === 3 ? tf.tensor1d(CLIP_STD as number[]) : tf.scalar(0.5);
      return this.ln_vision.forward(this.visual_encoder.forward(images.sub(mean).div(std)));
    });
  }

  /** The Causal Q-Former's output, the "causal embeddings": [B, S, S, 3] -> [B, Q, H]. */
  causalEmbeddings(images: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.Qformer.forward(this.imageEmbeds(images)) as tf.Tensor3D);
  }

  /** Stage I image feature: vision_proj of the last query only (brief pitfall 1.7.5), unnormalised. [B, E] */
  imageFeature(causal: tf.Tensor /* [B, Q, H] */): tf.Tensor2D {
    return tf.tidy(() => {
      const [B, Q, H] = causal.shape as [number, number, number];
      return this.vision_proj.forward(causal.slice([0, Q - 1, 0], [B, 1, H]).reshape([B, H])) as tf.Tensor2D;
    });
  }

  /** Stage I text feature: text_proj of the text branch's first (CLS) token, unnormalised. [B, E] */
  textFeature(ids: tf.Tensor, keep?: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const h = this.Qformer.encodeText(ids, keep); // [B, L, H]
      const [B, , H] = h.shape as [number, number, number];
      return this.text_proj.forward(h.slice([0, 0, 0], [B, 1, H]).reshape([B, H])) as tf.Tensor2D;
    });
  }

  /** Stage II: causal embeddings [B, Q, H] -> encode_task_layer -> quantize (training updates in train mode). */
  quantizeEmbeddings(causal: tf.Tensor): VQOutput {
    return tf.tidy(() => this.quantize.forward(this.encode_task_layer.forward(causal))); // z: [B, Q, codeDim]
  }

  /** The de-tokenizer: quantized codes [B, Q, codeDim] -> reconstructed causal embeddings and the generation embedding. */
  detokenize(zq: tf.Tensor): Detokenized {
    const Q = this.config.qformer.numQueries;
    const D = this.config.quantizer.codeDim;
    if (zq.rank !== 3 || zq.shape[1] !== Q || zq.shape[2] !== D)
      throw new Error(`SeedTokenizer.detokenize: codes must be [B, ${Q}, ${D}], got shape [${zq.shape}]`);
    return tf.tidy(() => {
      const B = zq.shape[0] as number;
      const up = this.decode_task_layer.forward(zq); // [B, Q, H]
      const causal = runBlocks(up, this.pos_embed, this.blocks) as tf.Tensor3D; // [B, Q, H]
      const img = this.image_down.forward(runBlocks(up, this.pos_embed_image, this.blocks_image)); // [B, Q, d_out]
      const gen = this.distill_image_proj.forward(img.reshape([B, -1])) as tf.Tensor2D; // [B, genDim]
      return { causal, gen };
    });
  }

  /** Code indices of images, no training updates: Int32Array of N x Q, row n = image n's Q codes in query order. */
  encodeCodes(images: tf.Tensor): Int32Array {
    const idx = tf.tidy(() => {
      const z = this.encode_task_layer.forward(this.causalEmbeddings(images)); // [N, Q, codeDim]
      return this.quantize.nearest(z.reshape([-1, this.config.quantizer.codeDim]) as tf.Tensor2D); // [N Q]
    });
    const out = idx.dataSync() as Int32Array;
    idx.dispose();
    return Int32Array.from(out);
  }

  /** De-tokenize code indices (N x Q, flat) to the causal embeddings [N, Q, H] and the generation embedding [N, genDim]. */
  decodeCodes(codes: Int32Array | number[]): Detokenized {
    const Q = this.numQueries;
    if (codes.length === 0 || codes.length % Q !== 0)
      throw new Error(`SeedTokenizer.decodeCodes: expected N x ${Q} codes (numQueries ${Q}), got ${codes.length}`);
    const t = tf.tensor2d(Int32Array.from(codes), [codes.length / Q, Q], 'int32');
    try {
      const e = this.quantize.decode(t); // [N, Q, codeDim], throws on an index out of [0, K)
      try {
        return this.detokenize(e);
      } finally {
        e.dispose();
      }
    } finally {
      t.dispose();
    }
  }
}

/**
 * Stage I contrastive loss (BLIP-2 ITC as SEED uses it, brief 1.3): rows L2-normalised,
 * s = v t^T / tau, L = (CE(s, arange B) + CE(s^T, arange B)) / 2 with label smoothing.
 */
export function contrastiveLoss(imageFeat: tf.Tensor, textFeat: tf.Tensor, temp: number | tf.Tensor, labelSmoothing = 0.1): tf.Scalar {
  return infoNCE(imageFeat, textFeat, { temperature: temp, labelSmoothing });
}

export interface Stage1Batch {
  /** Pixels in [0, 1]. [B, S, S, 3] */
  images: tf.Tensor;
  /** Caption token ids, CLS first, int32. [B, L] */
  textIds: tf.Tensor;
  /** 1 = token, 0 = padding. [B, L]; default all ones. */
  textKeep?: tf.Tensor;
}

/** Clamp the learnable temperature to [0.001, 0.5] in place, as BLIP-2 does before each ITC loss. */
export function clampTemperature(model: SeedTokenizer): void {
  tf.tidy(() => model.temp.assign(tf.clipByValue(model.temp, 0.001, 0.5)));
}

/** Stage I loss: the last query's feature against the text CLS feature, symmetric InfoNCE (smoothing 0.1, learnable tau). */
export function stage1Loss(model: SeedTokenizer, batch: Stage1Batch): tf.Scalar {
  const B = batch.images.shape[0];
  if (batch.textIds.shape[0] !== B)
    throw new Error(`stage1Loss: textIds must have one row per image (${B}), got shape [${batch.textIds.shape}]`);
  return tf.tidy(() => {
    const v = model.imageFeature(model.causalEmbeddings(batch.images)); // [B, E]
    const t = model.textFeature(batch.textIds, batch.textKeep); // [B, E]
    return contrastiveLoss(v, t, model.temp, model.config.contrastive.labelSmoothing);
  });
}

export interface Stage2Batch {
  /** Pixels in [0, 1]. [B, S, S, 3] */
  images: tf.Tensor;
  /** The generation target embedding (SEED-2: unCLIP image_embeds). [B, genDim] */
  target: tf.Tensor;
}

export interface Stage2Losses {
  /** 5 vq + 2 rec + 0.5 gen (weights from the config). */
  loss: tf.Scalar;
  /** VectorQuantizer2's loss (legacy: commitment + 0.25 codebook), unweighted. */
  vq: tf.Scalar;
  /** mean over tokens of 1 - cos(reconstruction, causal embedding), unweighted. */
  rec: tf.Scalar;
  /** MSE of the generation embedding, unweighted. */
  gen: tf.Scalar;
  perplexity: tf.Scalar;
  usage: tf.Scalar;
}

/**
 * Stage II losses (blip2_qformer_codebook_all_image.py): the frozen causal embeddings q (no
 * gradient), z = encode_task_layer(q), VQ with straight-through, the de-tokenizer, and
 * L = 5 L_vq + 2 (1 - cos(blocks(D(z_q)) + ..., q)) + 0.5 MSE(head(D(z_q)), target).
 */
export function stage2Losses(model: SeedTokenizer, batch: Stage2Batch): Stage2Losses {
  const B = batch.images.shape[0];
  const G = model.config.decoder.genDim;
  if (batch.target.rank !== 2 || batch.target.shape[0] !== B || batch.target.shape[1] !== G)
    throw new Error(`stage2Loss: target must be [${B}, ${G}] (genDim ${G}), got shape [${batch.target.shape}]`);
  return tf.tidy(() => {
    const q = stopGradient(model.causalEmbeddings(batch.images)); // [B, Q, H], frozen Q-Former
    const vq = model.quantizeEmbeddings(q);
    const out = model.detokenize(vq.zq);
    const rec = cosineLoss(out.causal, q);
    const gen = mse(out.gen, batch.target);
    const w = model.config.loss;
    const loss = vq.loss.mul(w.vq).add(rec.mul(w.rec)).add(gen.mul(w.gen)) as tf.Scalar;
    return { loss, vq: vq.loss, rec, gen, perplexity: vq.perplexity, usage: vq.usage };
  });
}

export function stage2Loss(model: SeedTokenizer, batch: Stage2Batch): tf.Scalar {
  return tf.tidy(() => stage2Losses(model, batch).loss);
}

export interface StepResult {
  loss: number;
}

function step(model: SeedTokenizer, opt: AdamW, lossFn: () => tf.Scalar): number {
  const { loss, grads } = valueAndGrads(model, lossFn);
  try {
    opt.step(grads);
    return loss.dataSync()[0] as number;
  } finally {
    loss.dispose();
    for (const g of grads.values()) g.dispose();
  }
}

/** One stage-I update (clamp tau, ITC loss, AdamW); the model must be in stage 1. */
export function stage1Step(model: SeedTokenizer, opt: AdamW, batch: Stage1Batch): StepResult {
  if (model.stage !== 1) throw new Error(`stage1Step: the model is in stage ${model.stage}, expected 1 (call setStage(1))`);
  clampTemperature(model);
  return { loss: step(model, opt, () => stage1Loss(model, batch)) };
}

/** One stage-II update (VQ + reconstruction + generation loss, AdamW); the model must be in stage 2. */
export function stage2Step(model: SeedTokenizer, opt: AdamW, batch: Stage2Batch): StepResult {
  if (model.stage !== 2) throw new Error(`stage2Step: the model is in stage ${model.stage}, expected 2 (call setStage(2))`);
  return { loss: step(model, opt, () => stage2Loss(model, batch)) };
}
