/**
 * A small image tokenizer giving MIO its image codes at toy scale: an image becomes N discrete codes
 * of K, a 1-D sequence with no spatial grid, as SEED-2's 32 causal codes of 8,192 are (brief §2.1),
 * and a decoder turns codes back into pixels so generated codes can be read by @mmlm/data's
 * ShapeAnalyzer (the stand-in for SEED's SD-unCLIP de-tokenizer).
 *
 *   image [B, S*S*3] in [0, 1] (HWC, flattened)
 *   -> encoder   Linear(S*S*3, H), GELU, Linear(H, H), GELU, Linear(H, N D): z [B, N, D]
 *   -> VQ        core VectorQuantizer (K codes of D; k-means init from a sample of encoder outputs,
 *                dead-code restart, optional EMA codebook): indices [B, N], zq = z + sg(e - z)
 *   -> decoder   Linear(N D, H), GELU, Linear(H, H), GELU, Linear(H, S*S*3), sigmoid: image [B, S*S*3]
 *   loss = sum_px w (x_hat - x)^2 / sum_px w + vqWeight * VQ loss,
 *          w = 1 + foregroundWeight where the pixel differs from the corner (background) pixel by > 0.1
 *
 * What stands in for SEED, and what differs:
 * - SEED tokenizes with a Causal Q-Former over frozen ViT features (query i attends to queries < i
 *   and to the whole image), trained for image-text contrast, then quantizes and decodes to a
 *   generation embedding for SD-unCLIP. Here an MLP reads the whole image and writes all N code
 *   vectors at once: the codes are 1-D (not a spatial grid, so the LM sees N tokens per image as in
 *   MIO) but not causal among themselves, and the objective is pixel reconstruction instead of
 *   contrast + embedding regression. It matches what MIO needs from the tokenizer (fixed-length
 *   discrete codes wrapped `<image>…</image>`, decodable to pixels) without @mmlm/seed, which paper
 *   packages may not import. A shared causal image tokenizer would belong in @mmlm/core.
 * - The pixel decoder is deterministic (no diffusion), so a code sequence has one image.
 */
import {
  AdamW,
  clipGradNorm,
  gelu,
  Linear,
  Module,
  paramGroups,
  parseConfig,
  Rng,
  tf,
  VectorQuantizer,
  type VectorQuantizerOptions,
  valueAndGrads,
  warmupCosine,
} from '@mmlm/core';
import { z } from 'zod';

const int = (min: number) => z.number().int().min(min);

export const ImageCodesConfigSchema = z.object({
  /** Side S of the square RGB images (Shapes at 16 px holds one object, as SEED's toy runs use). */
  imageSize: int(4).default(16),
  /** N, codes per image (SEED-2: 32); must equal the vocabulary's tokensPerImage. */
  tokens: int(1).default(8),
  /** K, codebook size (SEED-2: 8,192); must equal the vocabulary's imageCodes. */
  codes: int(2).default(64),
  /** D, width of one code vector. */
  dim: int(1).default(16),
  /** H, hidden width of the encoder and decoder MLPs. */
  hidden: int(1).default(256),
  /** Commitment weight beta of core's VectorQuantizer (legacy layout). */
  beta: z.number().nonnegative().default(0.25),
  /** EMA codebook with this decay (null: codebook learned by gradient). */
  emaDecay: z.number().gt(0).lt(1).nullable().default(null),
  /** k-means codebook init from encoder outputs before the first step (core kmeansInit / initFromData). */
  kmeansInit: z.boolean().default(true),
  /** Restart a code unused for this many training steps with a batch vector (0 = off). */
  deadCodeSteps: int(0).default(20),
  /** Weight of the VQ loss. */
  vqWeight: z.number().nonnegative().default(1),
  /** Extra weight of foreground pixels in the reconstruction loss (objects are a small part of the image). */
  foregroundWeight: z.number().nonnegative().default(4),
  /** Seed of the initial weights and of the quantizer's random stream. */
  seed: z.number().int().default(0),
});
export type ImageCodesConfigInput = z.input<typeof ImageCodesConfigSchema>;
export type ImageCodesConfig = z.infer<typeof ImageCodesConfigSchema>;

/** A validated config; errors name each bad field, its expected and its actual value. */
export function imageCodesConfig(input: ImageCodesConfigInput = {}): ImageCodesConfig {
  return parseConfig('ImageCodes', ImageCodesConfigSchema, input);
}

export const IMAGE_CODES_PRESETS = {
  /** Tests: 4 codes of 16 per image (the `tiny` vocabulary), width 8, hidden 32. */
  tiny: imageCodesConfig({ tokens: 4, codes: 16, dim: 8, hidden: 32 }),
  /** 8 codes of 64 per image, width 16, hidden 256. */
  small: imageCodesConfig({}),
} as const;

/** The losses of one batch. */
export interface ImageCodesLosses {
  loss: tf.Scalar;
  /** Foreground-weighted MSE of the reconstruction. */
  rec: tf.Scalar;
  vq: tf.Scalar;
  /** exp(entropy) of the batch's code distribution, and the fraction of the K codes used. */
  perplexity: tf.Scalar;
  usage: tf.Scalar;
}

export class ImageCodes extends Module {
  readonly config: ImageCodesConfig;
  readonly enc1: Linear;
  readonly enc2: Linear;
  readonly enc3: Linear;
  readonly quantizer: VectorQuantizer;
  readonly dec1: Linear;
  readonly dec2: Linear;
  readonly dec3: Linear;

  constructor(input: ImageCodesConfigInput | ImageCodesConfig = {}) {
    super();
    this.config = imageCodesConfig(input);
    const c = this.config;
    const P = this.pixels;
    const rng = new Rng(c.seed);
    this.enc1 = this.module('enc1', new Linear(P, c.hidden, { rng: rng.fork('enc1') }));
    this.enc2 = this.module('enc2', new Linear(c.hidden, c.hidden, { rng: rng.fork('enc2') }));
    this.enc3 = this.module('enc3', new Linear(c.hidden, c.tokens * c.dim, { rng: rng.fork('enc3') }));
    const vq: VectorQuantizerOptions = {
      beta: c.beta,
      kmeansInit: c.kmeansInit,
      deadCodeSteps: c.deadCodeSteps,
      rng: this.rngStream('quantizer', rng.fork('quantizer')),
      ...(c.emaDecay !== null ? { emaDecay: c.emaDecay } : {}),
    };
    this.quantizer = this.module('quantizer', new VectorQuantizer(c.codes, c.dim, vq));
    this.dec1 = this.module('dec1', new Linear(c.tokens * c.dim, c.hidden, { rng: rng.fork('dec1') }));
    this.dec2 = this.module('dec2', new Linear(c.hidden, c.hidden, { rng: rng.fork('dec2') }));
    this.dec3 = this.module('dec3', new Linear(c.hidden, P, { rng: rng.fork('dec3') }));
  }

  /** Values per image: S * S * 3. */
  get pixels(): number {
    return this.config.imageSize * this.config.imageSize * 3;
  }

  private checkBatch(who: string, x: tf.Tensor): number {
    if (x.rank !== 2 || x.shape[1] !== this.pixels || x.dtype !== 'float32')
      throw new Error(
        `ImageCodes.${who}: expected float32 images [B, ${this.pixels}] (${this.config.imageSize}x${this.config.imageSize}x3, flattened), got ${x.dtype} [${x.shape}]`,
      );
    return x.shape[0] as number;
  }

  /** Encoder: images [B, S*S*3] -> z [B, N, D]. */
  encodeLatents(x: tf.Tensor): tf.Tensor3D {
    const B = this.checkBatch('encodeLatents', x);
    return tf.tidy(() => {
      const h = gelu(this.enc2.forward(gelu(this.enc1.forward(x)))); // [B, H]
      return this.enc3.forward(h).reshape([B, this.config.tokens, this.config.dim]) as tf.Tensor3D; // [B, N, D]
    });
  }

  /** Decoder: code vectors [B, N, D] -> images [B, S*S*3] in (0, 1). */
  decodeLatents(zq: tf.Tensor): tf.Tensor2D {
    const { tokens: N, dim: D } = this.config;
    if (zq.rank !== 3 || zq.shape[1] !== N || zq.shape[2] !== D)
      throw new Error(`ImageCodes.decodeLatents: expected code vectors [B, ${N}, ${D}], got [${zq.shape}]`);
    return tf.tidy(() => {
      const B = zq.shape[0] as number;
      const h = gelu(this.dec2.forward(gelu(this.dec1.forward(zq.reshape([B, N * D]))))); // [B, H]
      return tf.sigmoid(this.dec3.forward(h)) as tf.Tensor2D; // [B, S*S*3]
    });
  }

  /** Training losses of images [B, S*S*3] (in training mode the quantizer updates its codebook state). */
  losses(x: tf.Tensor): ImageCodesLosses {
    const B = this.checkBatch('losses', x);
    return tf.tidy(() => {
      const q = this.quantizer.forward(this.encodeLatents(x)); // zq [B, N, D]
      const y = this.decodeLatents(q.zq); // [B, P]
      const S = this.config.imageSize;
      const img = x.reshape([B, S * S, 3]);
      const corner = img.slice([0, 0, 0], [B, 1, 3]); // [B, 1, 3] background
      const fg = img.sub(corner).abs().max(-1).greater(0.1).toFloat(); // [B, S*S]
      const w = fg.mul(this.config.foregroundWeight).add(1).expandDims(-1).tile([1, 1, 3]).reshape([B, -1]); // [B, P]
      const rec = y.sub(x).square().mul(w).sum().div(w.sum()) as tf.Scalar;
      const loss = rec.add(q.loss.mul(this.config.vqWeight)) as tf.Scalar;
      return { loss, rec, vq: q.loss, perplexity: q.perplexity, usage: q.usage };
    });
  }

  /** Stacks images (each S*S*3 values) into [B, S*S*3], naming the first one of the wrong size. */
  imagesTensor(images: readonly Float32Array[], firstIndex = 0): tf.Tensor2D {
    if (!Array.isArray(images) || images.length === 0) throw new Error('ImageCodes: expected at least one image, got none');
    const P = this.pixels;
    const S = this.config.imageSize;
    const flat = new Float32Array(images.length * P);
    images.forEach((im, i) => {
      if (!(im instanceof Float32Array) || im.length !== P)
        throw new Error(
          `ImageCodes: image ${firstIndex + i} has ${im instanceof Float32Array ? im.length : typeof im} values, expected ${P} (${S}x${S}x3 HWC in [0, 1])`,
        );
      flat.set(im, i * P);
    });
    return tf.tensor2d(flat, [images.length, P]);
  }

  /** Codes of images: N code indices in [0, K) per image. No state changes (eval-mode lookup). */
  encode(images: readonly Float32Array[]): number[][] {
    const N = this.config.tokens;
    if (!Array.isArray(images) || images.length === 0) throw new Error('ImageCodes.encode: expected at least one image, got none');
    const out: number[][] = [];
    for (let i = 0; i < images.length; i += 256) {
      const x = this.imagesTensor(images.slice(i, i + 256), i);
      const idx = tf.tidy(() => {
        const z = this.encodeLatents(x); // [b, N, D]
        return this.quantizer.nearest(z.reshape([-1, this.config.dim]) as tf.Tensor2D); // [b N]
      });
      const v = idx.dataSync() as Int32Array;
      tf.dispose([x, idx]);
      for (let b = 0; b < v.length / N; b++) out.push(Array.from(v.subarray(b * N, (b + 1) * N)));
    }
    return out;
  }

  /** Images of code sequences (each N codes in [0, K)): S*S*3 values in (0, 1) per sequence. */
  decode(codes: readonly (readonly number[])[]): Float32Array[] {
    const { tokens: N, codes: K } = this.config;
    if (!Array.isArray(codes) || codes.length === 0) throw new Error('ImageCodes.decode: expected at least one code sequence, got none');
    const flat = new Int32Array(codes.length * N);
    codes.forEach((c, i) => {
      if (!Array.isArray(c) || c.length !== N)
        throw new Error(`ImageCodes.decode: code sequence ${i} has ${Array.isArray(c) ? c.length : typeof c} codes, expected ${N}`);
      c.forEach((k, j) => {
        if (!Number.isInteger(k) || k < 0 || k >= K)
          throw new Error(`ImageCodes.decode: code sequence ${i}: code ${k} at index ${j} is outside [0, ${K})`);
        flat[i * N + j] = k;
      });
    });
    const idx = tf.tensor2d(flat, [codes.length, N], 'int32');
    const y = tf.tidy(() => this.decodeLatents(this.quantizer.decode(idx))); // [B, P]
    const v = y.dataSync() as Float32Array;
    tf.dispose([idx, y]);
    const P = this.pixels;
    return codes.map((_, i) => v.slice(i * P, (i + 1) * P));
  }
}

// ---------------------------------------------------------------------------------------------
// Training

export const ImageCodesTrainSchema = z.object({
  steps: int(1).default(1500),
  batchSize: int(1).default(64),
  /** Peak lr, after `warmup` steps, then cosine to lr / 10. */
  lr: z.number().positive().default(2e-3),
  warmup: int(0).default(50),
  gradClip: z.number().positive().default(1),
  /** Images of the k-means init sample (encoder outputs of that many images, N rows each). */
  initImages: int(1).default(512),
  /** Seed of the batch order. */
  seed: z.number().int().default(0),
  /** A record of the running means every this many steps. */
  logEvery: int(1).default(50),
});
export type ImageCodesTrainInput = z.input<typeof ImageCodesTrainSchema>;
export type ImageCodesTrainConfig = z.infer<typeof ImageCodesTrainSchema>;

/** Running means over one logging window. */
export interface ImageCodesTrainRecord {
  step: number;
  loss: number;
  rec: number;
  vq: number;
  perplexity: number;
  usage: number;
}

/**
 * Trains `model` on `images` (each S*S*3 values): the k-means codebook init on the encoder outputs
 * of `initImages` images (when the config asks for it and the codebook is not initialised yet),
 * then AdamW with warmup + cosine and global-norm clipping on random batches. Not resumable (a
 * run of minutes); save the weights with core's saveModule.
 */
export function trainImageCodes(
  model: ImageCodes,
  images: readonly Float32Array[],
  train: ImageCodesTrainInput = {},
  opts: { log?: (line: string) => void; onRecord?: (r: ImageCodesTrainRecord) => void } = {},
): ImageCodesTrainRecord[] {
  const cfg = parseConfig('ImageCodes training', ImageCodesTrainSchema, train);
  if (!Array.isArray(images) || images.length === 0) throw new Error('trainImageCodes: expected at least one training image, got none');
  const rng = new Rng(cfg.seed).fork('image-codes-batches');
  model.train();
  if (model.quantizer.needsInit) {
    const pick = Array.from({ length: Math.min(cfg.initImages, images.length) }, () => images[rng.int(0, images.length)]!);
    const x = model.imagesTensor(pick);
    const zs = model.encodeLatents(x);
    model.quantizer.initFromData(zs);
    tf.dispose([x, zs]);
  }
  const schedule = warmupCosine({ peak: cfg.lr, min: cfg.lr / 10, warmup: Math.min(cfg.warmup, cfg.steps), total: cfg.steps });
  const optimizer = new AdamW(paramGroups(model), { lr: schedule(0), weightDecay: 0 });
  const records: ImageCodesTrainRecord[] = [];
  let sums = [0, 0, 0, 0, 0];
  let n = 0;
  try {
    for (let step = 1; step <= cfg.steps; step++) {
      const batch = Array.from({ length: cfg.batchSize }, () => images[rng.int(0, images.length)]!);
      const x = model.imagesTensor(batch);
      optimizer.setLr(schedule(step - 1));
      const parts = tf.tidy(() => {
        let keep: tf.Tensor | null = null;
        const { grads } = valueAndGrads(model, () => {
          const l = model.losses(x);
          keep = tf.keep(tf.stack([l.loss, l.rec, l.vq, l.perplexity, l.usage]));
          return l.loss;
        });
        clipGradNorm(grads, cfg.gradClip);
        optimizer.step(grads);
        const v = Array.from((keep as tf.Tensor | null)!.dataSync());
        (keep as tf.Tensor | null)!.dispose();
        return v;
      });
      x.dispose();
      if (!parts.every(Number.isFinite)) throw new Error(`trainImageCodes: non-finite loss ${parts[0]} at step ${step}`);
      sums = sums.map((s, i) => s + parts[i]!);
      n++;
      if (step % cfg.logEvery === 0 || step === cfg.steps) {
        const m = sums.map((s) => s / n);
        const r: ImageCodesTrainRecord = { step, loss: m[0]!, rec: m[1]!, vq: m[2]!, perplexity: m[3]!, usage: m[4]! };
        records.push(r);
        opts.onRecord?.(r);
        opts.log?.(
          `image codes step ${step}/${cfg.steps}: loss ${r.loss.toFixed(4)} rec ${r.rec.toFixed(4)} vq ${r.vq.toFixed(4)} usage ${r.usage.toFixed(2)}`,
        );
        sums = [0, 0, 0, 0, 0];
        n = 0;
      }
    }
  } finally {
    optimizer.dispose();
    model.eval();
  }
  return records;
}
