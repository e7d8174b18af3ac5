/**
 * Back to pixels: a small conditional image decoder standing in for SEED-2's SD-unCLIP
 * (`stable-diffusion-2-1-unclip`, brief 1.1), the generator whose conditioning embedding is the
 * de-tokenizer's generation target (`distill_image_proj`'s output; here a fixed random projection
 * of the pixels, brief 1.8.2, see `generationTarget` in the experiments).
 *
 *   codes [N, Q] -> SeedTokenizer.decodeCodes -> generation embedding e [N, genDim]
 *     -> ImageDecoder: layers.0 (Lin genDim -> h0, act) ... layers.k (Lin, act) -> out (Lin -> S S C)
 *     -> sigmoid -> image [N, S, S, C] in (0, 1)
 *
 * **Deviation from SEED.** SEED renders with a diffusion model (SD-unCLIP, about 1B parameters,
 * conditioned on the 1024-d CLIP-H image embedding and sampled with noise level 0). Here the
 * decoder is a **deterministic regression MLP** trained with per-pixel MSE (plus an optional L1
 * term): 16 px Shapes images are 768 numbers, an MLP trains in seconds on a CPU, and read-back by
 * the ShapeAnalyzer needs one sharp image per embedding, not a distribution. A regression decoder
 * draws the mean of the images that share an embedding; where the embedding does not fix the
 * object's exact position (the codes are semantic and carry little of the renderer's jitter), that
 * mean is blurred. `decoderLoss`'s `maxShift` makes the loss tolerant to small translations of the
 * target (the per-image minimum over integer shifts of at most `maxShift` pixels), so the decoder
 * can draw a sharp object at one position instead of the blur of all positions.
 */
import {
  type Activation,
  type AdamW,
  activation,
  Linear,
  Module,
  ModuleList,
  parseConfig,
  Rng,
  stopGradient,
  tf,
  valueAndGrads,
} from '@mmlm/core';
import { z } from 'zod';
import { PRESETS } from './config.js';
import type { SeedTokenizer } from './tokenizer.js';

const DECODER_ACTIVATIONS = ['relu', 'gelu', 'silu'] as const;

const ImageDecoderConfigSchema = z.object({
  /** Width of the conditioning embedding: the tokenizer's `decoder.genDim` (SEED-2: 1024, CLIP-H's image embedding). */
  genDim: z.number().int().positive().default(16),
  /** Side of the square output image in pixels (the tokenizer's `vit.imageSize`). */
  imageSize: z.number().int().positive().default(16),
  /** Output channels (RGB). */
  channels: z.number().int().positive().default(3),
  /** Widths of the hidden layers (Linear + activation each); the output layer maps the last one to S S C. */
  hidden: z.array(z.number().int().positive()).min(1).default([256, 256]),
  /** Activation of the hidden layers. */
  activation: z.enum(DECODER_ACTIVATIONS).default('relu'),
  /** Seed of the parameter init. */
  seed: z.number().int().default(0),
});
export type ImageDecoderConfigInput = z.input<typeof ImageDecoderConfigSchema>;
export type ImageDecoderConfig = z.infer<typeof ImageDecoderConfigSchema>;

/** Parse and validate an image-decoder config; errors name the field, the expectation and the value. */
export function imageDecoderConfig(input: ImageDecoderConfigInput = {}): ImageDecoderConfig {
  return parseConfig('SEED image decoder', ImageDecoderConfigSchema, input);
}

export const IMAGE_DECODER_PRESETS = {
  /** Tests: conditioned on the `tiny` tokenizer's 8-d generation embedding, two hidden layers of 32. */
  tiny: imageDecoderConfig({ genDim: PRESETS.tiny.decoder.genDim, imageSize: PRESETS.tiny.vit.imageSize, hidden: [32, 32] }),
  /**
   * Reproductions: conditioned on the `small` tokenizer's 32-d generation embedding, three hidden
   * layers of 512 (936,192 weights); chosen among widths / depths by the read-back of training
   * images, not of the evaluation sets (README, "Back to pixels").
   */
  small: imageDecoderConfig({ genDim: PRESETS.small.decoder.genDim, imageSize: PRESETS.small.vit.imageSize, hidden: [512, 512, 512] }),
} as const satisfies Record<string, ImageDecoderConfig>;
export type ImageDecoderPresetName = keyof typeof IMAGE_DECODER_PRESETS;

/** The image-decoder config of a preset (no `paper` preset: SEED's decoder is SD-unCLIP, not built here). */
export function imageDecoderPreset(name: string): ImageDecoderConfig {
  const p = Object.hasOwn(IMAGE_DECODER_PRESETS, name) ? (IMAGE_DECODER_PRESETS as Record<string, ImageDecoderConfig>)[name] : undefined;
  if (!p) throw new Error(`SEED image decoder: unknown preset "${name}"; expected one of ${Object.keys(IMAGE_DECODER_PRESETS).join(', ')}`);
  return structuredClone(p);
}

/** The conditional image decoder (the SD-unCLIP stand-in): generation embedding [B, genDim] -> image [B, S, S, C] in (0, 1). */
export class ImageDecoder extends Module {
  readonly config: ImageDecoderConfig;
  readonly layers: ModuleList<Linear>;
  readonly out: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(input: ImageDecoderConfig | ImageDecoderConfigInput = {}) {
    super();
    const c = imageDecoderConfig(input);
    this.config = c;
    const rng = new Rng(c.seed).fork('image-decoder');
    const widths = [c.genDim, ...c.hidden];
    this.layers = this.module('layers', new ModuleList(c.hidden.map((h, i) => new Linear(widths[i] as number, h, { rng }))));
    this.out = this.module('out', new Linear(c.hidden[c.hidden.length - 1] as number, c.imageSize * c.imageSize * c.channels, { rng }));
    this.act = activation(c.activation as Activation);
  }

  /** Pixels of one image, S * S * C. */
  get pixels(): number {
    return this.config.imageSize * this.config.imageSize * this.config.channels;
  }

  forward(embedding: tf.Tensor /* [B, genDim] */): tf.Tensor4D /* [B, S, S, C] */ {
    const { genDim: G, imageSize: S, channels: C } = this.config;
    if (embedding.rank !== 2 || embedding.shape[1] !== G)
      throw new Error(`ImageDecoder.forward: embedding must be [B, ${G}] (genDim ${G}), got shape [${embedding.shape}]`);
    if (embedding.dtype !== 'float32') throw new Error(`ImageDecoder.forward: embedding must be float32, got ${embedding.dtype}`);
    return tf.tidy(() => {
      let h: tf.Tensor = embedding; // [B, genDim]
      for (const l of this.layers) h = this.act(l.forward(h)); // [B, h_i]
      const B = embedding.shape[0] as number;
      return tf.sigmoid(this.out.forward(h)).reshape([B, S, S, C]) as tf.Tensor4D; // [B, S, S, C]
    });
  }
}

export interface DecoderBatch {
  /** The conditioning embeddings (ground-truth generation targets or the de-tokenizer's predictions). [B, genDim] */
  embedding: tf.Tensor;
  /** The images to draw, pixels in [0, 1]. [B, S, S, C] */
  images: tf.Tensor;
}

export interface DecoderLossOptions {
  /** Weight of the mean absolute error added to the MSE (default 0). */
  l1?: number;
  /**
   * Translation tolerance in pixels (default 0): each image's error is the minimum over the target
   * shifted by dy, dx in [-maxShift, maxShift] (borders mirrored), so a decoder may draw the object
   * at any of those offsets. At most imageSize / 4.
   */
  maxShift?: number;
}

function checkBatch(where: string, decoder: ImageDecoder, batch: DecoderBatch): void {
  const { genDim: G, imageSize: S, channels: C } = decoder.config;
  const e = batch.embedding;
  if (e.rank !== 2 || e.shape[1] !== G) throw new Error(`${where}: embedding must be [B, ${G}] (genDim ${G}), got shape [${e.shape}]`);
  const B = e.shape[0] as number;
  const x = batch.images;
  if (x.rank !== 4 || x.shape[0] !== B || x.shape[1] !== S || x.shape[2] !== S || x.shape[3] !== C)
    throw new Error(`${where}: images must be [${B}, ${S}, ${S}, ${C}] (one per embedding), got shape [${x.shape}]`);
  if (x.dtype !== 'float32') throw new Error(`${where}: images must be float32, got ${x.dtype}`);
}

/**
 * Per-image reconstruction error [B] of `pred` against `target` (both [B, S, S, C]): mean squared
 * error + l1 * mean absolute error, minimised over integer translations of the target within
 * +-maxShift pixels when maxShift > 0.
 */
export function pixelError(pred: tf.Tensor, target: tf.Tensor, opts: DecoderLossOptions = {}): tf.Tensor1D {
  if (pred.rank !== 4 || target.rank !== 4 || pred.shape.some((d, i) => d !== target.shape[i]))
    throw new Error(`pixelError: pred and target must be [B, S, S, C] of one shape, got [${pred.shape}] and [${target.shape}]`);
  const [B, S, W, C] = target.shape as [number, number, number, number];
  const l1 = opts.l1 ?? 0;
  const J = opts.maxShift ?? 0;
  if (!(l1 >= 0)) throw new Error(`pixelError: l1 must be a number >= 0, got ${l1}`);
  if (!Number.isInteger(J) || J < 0 || 4 * J > Math.min(S, W))
    throw new Error(`pixelError: maxShift must be an integer in [0, ${Math.floor(Math.min(S, W) / 4)}] (imageSize / 4), got ${J}`);
  return tf.tidy(() => {
    const err = (t: tf.Tensor): tf.Tensor => {
      const d = pred.sub(t).reshape([B, -1]); // [B, S S C]
      const e = d.square().mean(1); // [B]
      return l1 > 0 ? e.add(d.abs().mean(1).mul(l1)) : e;
    };
    if (J === 0) return err(target) as tf.Tensor1D;
    const padded = tf.mirrorPad(
      target as tf.Tensor4D,
      [
        [0, 0],
        [J, J],
        [J, J],
        [0, 0],
      ],
      'symmetric',
    ); // [B, S + 2J, S + 2J, C]
    const errs: tf.Tensor[] = [];
    for (let dy = 0; dy <= 2 * J; dy++) for (let dx = 0; dx <= 2 * J; dx++) errs.push(err(padded.slice([0, dy, dx, 0], [B, S, W, C])));
    return tf.stack(errs, 0).min(0) as tf.Tensor1D; // [B], the best of (2J + 1)^2 shifts
  });
}

/** The decoder's training loss: mean over the batch of `pixelError(decoder(embedding), images)`; no gradient reaches the embedding. */
export function decoderLoss(decoder: ImageDecoder, batch: DecoderBatch, opts: DecoderLossOptions = {}): tf.Scalar {
  checkBatch('decoderLoss', decoder, batch);
  return tf.tidy(() => pixelError(decoder.forward(stopGradient(batch.embedding)), batch.images, opts).mean() as tf.Scalar);
}

/** One AdamW update of the decoder (only its trainable parameters) on `decoderLoss`; the loss as a number. */
export function decoderStep(decoder: ImageDecoder, opt: AdamW, batch: DecoderBatch, opts: DecoderLossOptions = {}): { loss: number } {
  checkBatch('decoderStep', decoder, batch);
  const { loss, grads } = valueAndGrads(decoder, () => decoderLoss(decoder, batch, opts));
  try {
    opt.step(grads);
    return { loss: loss.dataSync()[0] as number };
  } finally {
    loss.dispose();
    for (const g of grads.values()) g.dispose();
  }
}

function checkPair(where: string, tokenizer: SeedTokenizer, decoder: ImageDecoder): void {
  const t = tokenizer.config;
  const d = decoder.config;
  if (d.genDim !== t.decoder.genDim)
    throw new Error(`${where}: the decoder takes ${d.genDim}-d embeddings (genDim), the tokenizer makes ${t.decoder.genDim}-d ones`);
  if (d.imageSize !== t.vit.imageSize || d.channels !== t.vit.inChannels)
    throw new Error(
      `${where}: the decoder draws ${d.imageSize} px x ${d.channels} channels, the tokenizer reads ${t.vit.imageSize} px x ${t.vit.inChannels}`,
    );
}

/**
 * Codes back to pixels: code indices (N x Q flat, query order, as `encodeCodes` returns them) ->
 * the de-tokenizer's generation embedding [N, genDim] -> the decoder -> images [N, S, S, C] in (0, 1).
 */
export function imageFromCodes(tokenizer: SeedTokenizer, decoder: ImageDecoder, codes: Int32Array | number[]): tf.Tensor4D {
  checkPair('imageFromCodes', tokenizer, decoder);
  const { causal, gen } = tokenizer.decodeCodes(codes); // [N, Q, H], [N, genDim]
  try {
    return decoder.forward(gen);
  } finally {
    causal.dispose();
    gen.dispose();
  }
}

/** The full round trip image -> codes -> generation embedding -> image: [N, S, S, C] in [0, 1] to [N, S, S, C] in (0, 1). */
export function reconstruct(tokenizer: SeedTokenizer, decoder: ImageDecoder, images: tf.Tensor): tf.Tensor4D {
  checkPair('reconstruct', tokenizer, decoder);
  return imageFromCodes(tokenizer, decoder, tokenizer.encodeCodes(images));
}
