/**
 * Liquid (Wu et al. 2024, "Liquid: Language Models are Scalable and Unified Multi-modal Generators",
 * arXiv 2412.04332), top to bottom:
 *   1. The image tokenizer: a VQGAN (taming-transformers / Chameleon `vqgan.py` layout without
 *      attention blocks): Encoder -> quant_conv -> VectorQuantizer (nearest code by
 *      ||z||^2 + ||e||^2 - 2 z.e, straight-through) -> post_quant_conv -> Decoder. Pixels in [-1, 1].
 *      Codes are read in raster order (row-major over the h x w grid), as Chameleon's tokenizer.
 *   2. The unified vocabulary (brief 2.3): text ids [0, V), image code k at id V + k (V =
 *      len(tokenizer), `inference_t2i.py`), then `<boi>`, `<eoi>`, `<unconditional>`.
 *   3. The language model: core's TransformerDecoder (RoPE, RMSNorm, gated MLP, as Gemma), first a
 *      text LM over V ids, then extended by K + 3 rows of embedding and head initialised at the
 *      mean of the old rows (train.py's `smart_tokenizer_and_embedding_resize`; HF's
 *      `resize_token_embeddings(mean_resizing=True)` draws them from N(mean, 1e-9 cov) instead).
 */
import {
  type DecoderCall,
  extendDecoderVocabulary,
  type KVCache,
  Module,
  ModuleList,
  Rng,
  SpanPositionEmbedding,
  silu,
  TransformerDecoder,
  tf,
  VectorQuantizer,
  type VQOutput,
} from '@mmlm/core';
import {
  downsampleFactor,
  extendedVocabSize,
  type ImageTokenizerConfig,
  type ImageTokenizerConfigInput,
  imageTokenizerConfig,
  type LMConfig,
  tokensPerImage,
} from './config.js';
import { Conv2d, Downsample, GroupNorm, groupsFor, ResnetBlock, Upsample } from './conv.js';

// ---------------------------------------------------------------------------------------------
// 1. Image tokenizer

/** One encoder resolution: ResnetBlocks, then a Downsample (except at the last level). */
class DownLevel extends Module {
  readonly block: ModuleList<ResnetBlock>;
  readonly downsample: Downsample | null;
  constructor(blockIn: number, blockOut: number, n: number, last: boolean, rng: Rng) {
    super();
    this.block = this.module('block', new ModuleList<ResnetBlock>());
    for (let j = 0; j < n; j++) this.block.push(new ResnetBlock(j === 0 ? blockIn : blockOut, blockOut, rng));
    this.downsample = last ? null : this.module('downsample', new Downsample(blockOut, rng));
  }
}

/** One decoder resolution: ResnetBlocks, then an Upsample (except at level 0). */
class UpLevel extends Module {
  readonly block: ModuleList<ResnetBlock>;
  readonly upsample: Upsample | null;
  constructor(blockIn: number, blockOut: number, n: number, first: boolean, rng: Rng) {
    super();
    this.block = this.module('block', new ModuleList<ResnetBlock>());
    for (let j = 0; j < n; j++) this.block.push(new ResnetBlock(j === 0 ? blockIn : blockOut, blockOut, rng));
    this.upsample = first ? null : this.module('upsample', new Upsample(blockOut, rng));
  }
}

class Mid extends Module {
  readonly block_1: ResnetBlock;
  readonly block_2: ResnetBlock;
  constructor(ch: number, rng: Rng) {
    super();
    this.block_1 = this.module('block_1', new ResnetBlock(ch, ch, rng));
    this.block_2 = this.module('block_2', new ResnetBlock(ch, ch, rng));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.block_2.forward(this.block_1.forward(x)));
  }
}

/** taming Encoder: x [B, S, S, 3] -> z [B, S/f, S/f, zChannels]. */
class Encoder extends Module {
  readonly conv_in: Conv2d;
  readonly down: ModuleList<DownLevel>;
  readonly mid: Mid;
  readonly norm_out: GroupNorm;
  readonly conv_out: Conv2d;

  constructor(c: ImageTokenizerConfig, rng: Rng) {
    super();
    this.conv_in = this.module('conv_in', new Conv2d(c.inChannels, c.ch, 3, { rng }));
    this.down = this.module('down', new ModuleList<DownLevel>());
    const inMult = [1, ...c.chMult];
    let blockIn = c.ch;
    c.chMult.forEach((m, i) => {
      blockIn = c.ch * (inMult[i] as number);
      const blockOut = c.ch * m;
      this.down.push(new DownLevel(blockIn, blockOut, c.numResBlocks, i === c.chMult.length - 1, rng));
      blockIn = blockOut;
    });
    this.mid = this.module('mid', new Mid(blockIn, rng));
    this.norm_out = this.module('norm_out', new GroupNorm(groupsFor(blockIn), blockIn));
    this.conv_out = this.module('conv_out', new Conv2d(blockIn, c.zChannels, 3, { rng }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = this.conv_in.forward(x);
      for (const level of this.down) {
        for (const b of level.block) h = b.forward(h);
        if (level.downsample) h = level.downsample.forward(h);
      }
      h = this.mid.forward(h);
      return this.conv_out.forward(silu(this.norm_out.forward(h)));
    });
  }
}

/** taming Decoder: z [B, h, w, zChannels] -> x [B, h f, w f, 3] (levels run from the lowest resolution up). */
class Decoder extends Module {
  readonly conv_in: Conv2d;
  readonly mid: Mid;
  /** up[i] is resolution level i (as taming stores it), applied from the last to the first. */
  readonly up: ModuleList<UpLevel>;
  readonly norm_out: GroupNorm;
  readonly conv_out: Conv2d;

  constructor(c: ImageTokenizerConfig, rng: Rng) {
    super();
    const L = c.chMult.length;
    let blockIn = c.ch * (c.chMult[L - 1] as number);
    this.conv_in = this.module('conv_in', new Conv2d(c.zChannels, blockIn, 3, { rng }));
    this.mid = this.module('mid', new Mid(blockIn, rng));
    const levels: UpLevel[] = new Array(L);
    for (let i = L - 1; i >= 0; i--) {
      const blockOut = c.ch * (c.chMult[i] as number);
      levels[i] = new UpLevel(blockIn, blockOut, c.numResBlocks + 1, i === 0, rng);
      blockIn = blockOut;
    }
    this.up = this.module('up', new ModuleList<UpLevel>());
    for (const l of levels) this.up.push(l);
    this.norm_out = this.module('norm_out', new GroupNorm(groupsFor(blockIn), blockIn));
    this.conv_out = this.module('conv_out', new Conv2d(blockIn, c.inChannels, 3, { rng }));
  }

  forward(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = this.mid.forward(this.conv_in.forward(z));
      for (let i = this.up.length - 1; i >= 0; i--) {
        const level = this.up.at(i);
        for (const b of level.block) h = b.forward(h);
        if (level.upsample) h = level.upsample.forward(h);
      }
      return this.conv_out.forward(silu(this.norm_out.forward(h)));
    });
  }
}

export interface TokenizerOutput {
  /** Reconstruction in [-1, 1] scale (unclamped), [B, S, S, C]. */
  xRec: tf.Tensor;
  /** The quantizer's output: codes [B, h, w], losses, usage, perplexity. */
  vq: VQOutput;
}

/**
 * The VQ image tokenizer (VQGAN without its adversarial and perceptual terms): images [B, S, S, C]
 * in [-1, 1] <-> codes [B, (S/f)^2] in [0, K).
 */
export class VQTokenizer extends Module {
  readonly config: ImageTokenizerConfig;
  readonly encoder: Encoder;
  readonly quant_conv: Conv2d;
  readonly quantize: VectorQuantizer;
  readonly post_quant_conv: Conv2d;
  readonly decoder: Decoder;
  /** Side of the code grid, S / f. */
  readonly gridSize: number;
  /** Codes per image, (S / f)^2. */
  readonly tokensPerImage: number;

  constructor(config: ImageTokenizerConfigInput | ImageTokenizerConfig = {}) {
    super();
    const c = imageTokenizerConfig(config);
    this.config = c;
    const rng = new Rng(c.seed);
    this.encoder = this.module('encoder', new Encoder(c, rng));
    this.quant_conv = this.module('quant_conv', new Conv2d(c.zChannels, c.codeDim, 1, { rng }));
    this.quantize = this.module(
      'quantize',
      new VectorQuantizer(c.numCodes, c.codeDim, {
        beta: c.beta,
        legacy: c.legacyLoss,
        deadCodeSteps: c.deadCodeSteps,
        emaDecay: c.emaDecay,
        cosine: c.cosine,
        ...(c.kmeansInit ? { kmeansInit: {} } : {}),
        rng: rng.fork('vq'),
      }),
    );
    this.post_quant_conv = this.module('post_quant_conv', new Conv2d(c.codeDim, c.zChannels, 1, { rng }));
    this.decoder = this.module('decoder', new Decoder(c, rng));
    this.gridSize = c.imageSize / downsampleFactor(c);
    this.tokensPerImage = tokensPerImage(c);
  }

  get numCodes(): number {
    return this.config.numCodes;
  }

  private checkImages(who: string, x: tf.Tensor): void {
    const S = this.config.imageSize;
    const C = this.config.inChannels;
    if (x.rank !== 4 || x.shape[1] !== S || x.shape[2] !== S || x.shape[3] !== C)
      throw new Error(`VQTokenizer.${who}: images must be [B, ${S}, ${S}, ${C}], got shape [${x.shape}]`);
    if (x.dtype !== 'float32') throw new Error(`VQTokenizer.${who}: images must be float32, got ${x.dtype}`);
  }

  /** x [B, S, S, C] in [-1, 1] -> quantizer output on the code grid [B, h, w, codeDim]. */
  encode(x: tf.Tensor): VQOutput {
    this.checkImages('encode', x);
    return tidyObject(() => this.quantize.forward(this.quant_conv.forward(this.encoder.forward(x)))); // codes on [B, h, w]
  }

  /** Code vectors [B, h, w, codeDim] -> images [B, S, S, C] (unclamped). */
  decodeLatents(zq: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.decoder.forward(this.post_quant_conv.forward(zq)));
  }

  /** Reconstruction and quantizer output (the training forward). */
  forward(x: tf.Tensor): TokenizerOutput {
    return tidyObject(() => {
      const vq = this.encode(x);
      return { xRec: this.decodeLatents(vq.zq), vq };
    });
  }

  /** Images [B, S, S, C] in [-1, 1] -> codes int32 [B, (S/f)^2] in raster order (no training updates). */
  tokenize(x: tf.Tensor): tf.Tensor2D {
    const wasTraining = this.quantize.training;
    this.quantize.training = false;
    try {
      return tf.tidy(() => {
        const vq = this.encode(x);
        return vq.indices.reshape([x.shape[0] as number, this.tokensPerImage]) as tf.Tensor2D;
      });
    } finally {
      this.quantize.training = wasTraining;
    }
  }

  /** Codes [B, (S/f)^2] (or [B, h, w]) int32 in [0, K) -> images [B, S, S, C] (unclamped, [-1, 1] scale). */
  decodeCodes(codes: tf.Tensor): tf.Tensor4D {
    const B = codes.shape[0] as number;
    const n = codes.size / Math.max(1, B);
    if (codes.dtype !== 'int32') throw new Error(`VQTokenizer.decodeCodes: codes must be int32, got ${codes.dtype}`);
    if ((codes.rank !== 2 && codes.rank !== 3) || n !== this.tokensPerImage)
      throw new Error(
        `VQTokenizer.decodeCodes: codes must be [B, ${this.tokensPerImage}] or [B, ${this.gridSize}, ${this.gridSize}], got shape [${codes.shape}]`,
      );
    checkCodeRange('VQTokenizer.decodeCodes', codes.dataSync(), this.numCodes);
    return tf.tidy(() => {
      const g = this.gridSize;
      const zq = this.quantize.decode(codes.reshape([B, g, g])); // [B, g, g, codeDim]
      return this.decodeLatents(zq) as tf.Tensor4D;
    });
  }
}

/** tf.tidy for a function returning an object of tensors (kept), typed as that object. */
function tidyObject<T extends object>(f: () => T): T {
  return tf.tidy(() => f() as unknown as tf.TensorContainer) as unknown as T;
}

/** Throws unless every code is an integer in [0, K). */
export function checkCodeRange(who: string, codes: ArrayLike<number>, numCodes: number): void {
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i] as number;
    if (!Number.isInteger(c) || c < 0 || c >= numCodes)
      throw new Error(`${who}: code ${c} at index ${i} must be an integer in [0, ${numCodes})`);
  }
}

/** Pixels in [0, 1] -> the tokenizer's [-1, 1] (Chameleon: np_img / 255 * 2 - 1). */
export function toModelRange(x01: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x01.mul(2).sub(1));
}

/** The tokenizer's output -> pixels in [0, 1]: clamp to [-1, 1], then (x + 1) / 2 (Chameleon `_pil_from_chw_tensor`). */
export function fromModelRange(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.clipByValue(-1, 1).add(1).div(2));
}

/** Model-range pixels -> uint8 as Chameleon: floor(((clamp(x, -1, 1) + 1) / 2) * 255) (numpy astype truncates). */
export function toUint8(x: Float32Array | number[]): Uint8Array {
  return Uint8Array.from(x, (v) => Math.floor(((Math.min(1, Math.max(-1, v)) + 1) / 2) * 255));
}

// ---------------------------------------------------------------------------------------------
// 2. Unified vocabulary

/** Token ids of the unified model. */
export interface LiquidVocab {
  /** V, the text tokenizer's size. */
  textVocabSize: number;
  /** K, the codebook size. */
  numCodes: number;
  /** Codes per image (exactly this many between `<boi>` and `<eoi>`). */
  tokensPerImage: number;
  /** Id of code 0 (= V, as Liquid's len(tokenizer) offset). */
  codeOffset: number;
  boi: number;
  eoi: number;
  unconditional: number;
  /** Text tokenizer ids. */
  bos: number;
  eos: number;
  pad: number;
  /** V + K + 3. */
  size: number;
}

export interface VocabSpec {
  textVocabSize: number;
  numCodes: number;
  tokensPerImage: number;
  bos: number;
  eos: number;
  pad: number;
}

/** The unified vocabulary: text [0, V), codes [V, V + K), then `<boi>`, `<eoi>`, `<unconditional>`. */
export function liquidVocab(s: VocabSpec): LiquidVocab {
  const bad: string[] = [];
  for (const k of ['textVocabSize', 'numCodes', 'tokensPerImage'] as const)
    if (!Number.isInteger(s[k]) || s[k] < 1) bad.push(`${k} must be a positive integer, got ${s[k]}`);
  for (const k of ['bos', 'eos', 'pad'] as const)
    if (!Number.isInteger(s[k]) || s[k] < 0 || s[k] >= s.textVocabSize)
      bad.push(`${k} must be a text id in [0, ${s.textVocabSize}), got ${s[k]}`);
  if (bad.length) throw new Error(`liquidVocab: ${bad.join('; ')}`);
  const V = s.textVocabSize;
  const K = s.numCodes;
  return {
    ...s,
    codeOffset: V,
    boi: V + K,
    eoi: V + K + 1,
    unconditional: V + K + 2,
    size: extendedVocabSize(V, K),
  };
}

// ---------------------------------------------------------------------------------------------
// 3. Language model

/** core's TransformerDecoder config of an LM config (RoPE, no biases) over `vocabSize` ids. */
function decoderConfig(c: LMConfig, vocabSize: number, seed: number): ConstructorParameters<typeof TransformerDecoder>[0] {
  if (c.headDim !== undefined && c.headDim * c.numHeads !== c.dim)
    throw new Error(
      `buildLM: core's decoder needs headDim * numHeads = dim, got headDim ${c.headDim} x ${c.numHeads} heads vs dim ${c.dim} (the paper preset is counted, not built)`,
    );
  return {
    vocabSize,
    dim: c.dim,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    maxSeqLen: c.maxSeqLen,
    mlp: c.mlp,
    mlpHidden: c.mlpHidden,
    norm: c.norm,
    bias: false,
    pos: 'rope',
    tieEmbeddings: c.tieEmbeddings,
    initStd: c.initStd,
    dropout: c.dropout,
    seed,
  };
}

/** The text LM (or any LM over `vocabSize` ids) of an LM config: core's TransformerDecoder with RoPE. */
export function buildLM(c: LMConfig, vocabSize: number, seed = c.seed): TransformerDecoder {
  return new TransformerDecoder(decoderConfig(c, vocabSize, seed));
}

/**
 * An LM that also knows where in the image grid its next code goes: a learned embedding of the
 * index j of the code a position predicts (j = 0 at `<boi>`, j = i + 1 after code i, none outside
 * an image or after the last code) is added to the token embedding. Not in Liquid (its LM has
 * only the LLM's 1-D RoPE); a deviation for the toy scale, where a small LM learns slowly which
 * grid cell the k-th code of a raster sequence falls in (lab.image-tokens-sweep small-liquid-pos).
 * The index comes from the ids themselves (a `<boi>` opens an image, codes count, anything else
 * closes it), so training (right-padded), captioning prefixes and KV-cached generation (left-padded,
 * one token per call: the per-row state is kept with the cache) all see the same index.
 * Parameters: those of TransformerDecoder plus image_pos [tokensPerImage, dim].
 */
export class ImagePositionLM extends TransformerDecoder {
  readonly image_pos: SpanPositionEmbedding; // [N, D]

  constructor(
    config: ConstructorParameters<typeof TransformerDecoder>[0],
    readonly vocab: Pick<LiquidVocab, 'boi' | 'codeOffset' | 'numCodes' | 'tokensPerImage'>,
  ) {
    super(config);
    const { boi, codeOffset, numCodes } = vocab;
    this.image_pos = this.module(
      'image_pos',
      new SpanPositionEmbedding(
        vocab.tokensPerImage,
        config.dim,
        { isStart: (id) => id === boi, isInside: (id) => id >= codeOffset && id < codeOffset + numCodes },
        { init: { kind: 'normal', std: config.initStd ?? 0.02 }, rng: new Rng(config.seed ?? 0).fork('image_pos') },
      ),
    );
  }

  /** Index of the code each position predicts, or -1 (host side; ids [B, T] row-major). */
  imageIndex(ids: Int32Array, B: number, T: number, cache?: KVCache): Int32Array {
    return this.image_pos.index(ids, B, T, cache);
  }

  override forward(ids: tf.Tensor, call: DecoderCall = {}): tf.Tensor {
    if (ids.rank !== 2) throw new Error(`ImagePositionLM.forward: ids must be [B, T], got shape [${ids.shape}]`);
    // the span index [B, T, D] joins the token embedding at image positions
    return tf.tidy(() => this.logits(this.forwardHidden(this.embed(ids).add(this.image_pos.embedSpans(ids, call.cache)), call)));
  }
}

/** buildLM's decoder with ImagePositionLM's image-position embedding (same config and seed). */
export function buildImagePositionLM(c: LMConfig, vocab: LiquidVocab, seed = c.seed): ImagePositionLM {
  return new ImagePositionLM(decoderConfig(c, vocab.size, seed), vocab);
}

export interface ExtendOptions {
  /** 'mean' (Liquid: every new row is the mean of the old rows) or 'normal' (N(0, std^2), the ablation). */
  init?: 'mean' | 'normal';
  /** Std of the 'normal' init (default the model's initStd, else 0.02). */
  std?: number;
  /** Seed of the 'normal' init. */
  seed?: number;
}

/**
 * A copy of `model` whose vocabulary is extended by `newRows` ids: every weight copied, the token
 * embedding [V, D] and the LM head [V, D] (when untied) get newRows more rows, initialised at the
 * mean of the old rows (default) or at random; trainable flags, train/eval mode and random streams
 * carried over (core's `extendDecoderVocabulary`). The old model is left as it was (dispose it when
 * done). A model with unmerged LoRA layers is refused.
 */
export function extendVocabulary(model: TransformerDecoder, newRows: number, opts: ExtendOptions = {}): TransformerDecoder {
  if (!Number.isInteger(newRows) || newRows < 1) throw new Error(`extendVocabulary: newRows must be a positive integer, got ${newRows}`);
  const init = opts.init ?? 'mean'; // core checks it
  // core's resize_token_embeddings (shared with SEED and MIO); the 'normal' rows come from
  // Rng(opts.seed), embedding first, then the head, as this function always drew them
  return extendDecoderVocabulary(model, model.config.vocabSize + newRows, {
    init,
    ...(opts.std === undefined ? {} : { std: opts.std }),
    rng: new Rng(opts.seed ?? 0),
  });
}

/** Head rows per id [V, D]: the LM head, or the token embedding when tied. */
export function headWeight(model: TransformerDecoder): tf.Tensor {
  if (model.head) return model.head.weight;
  if (model.tok_embed) return model.tok_embed.weight;
  throw new Error('headWeight: the model has no LM head');
}
