/**
 * A small image tokenizer giving MIO its image codes at toy scale: an image becomes N discrete codes
 * of K, a 1-D causal sequence as SEED-2's 32 causal codes of 8,192 are (brief §2.1), and a decoder
 * turns codes back into pixels so generated codes can be read by @mmlm/data's ShapeAnalyzer (the
 * stand-in for SEED's SD-unCLIP de-tokenizer).
 *
 *   image [B, S*S*3] in [0, 1] (HWC, flattened)
 *   -> encoder 'causal' (default; SEED's Causal Q-Former through core's CausalQueryEncoder):
 *        patches [B, P, p*p*3] (raster order) -> patch_embed1, GELU, patch_embed2, + pos_embed, ln_context: [B, P, W]
 *        -> N learnable queries, lower-triangular self-attention (-1e4 above the diagonal), cross-attention
 *           to every patch token, BERT post-LN layers -> causal embeddings [B, N, W] -> code_proj: z [B, N, D]
 *      encoder 'mlp' (the first stand-in): Linear(S*S*3, H), GELU, Linear(H, H), GELU, Linear(H, N D): z [B, N, D]
 *   -> VQ        core VectorQuantizer (K codes of D; k-means init from a sample of encoder outputs,
 *                dead-code restart, optional EMA codebook): indices [B, N], zq = z + sg(e - z)
 *   -> decoder   Linear(N D, H), GELU, Linear(H, H), GELU, Linear(H, S*S*3), sigmoid: image [B, S*S*3]
 *   loss = sum_px w (x_hat - x)^2 / sum_px w + vqWeight * VQ loss,
 *          w = 1 + foregroundWeight where the pixel differs from the corner (background) pixel by > 0.1
 *
 * What follows SEED, and what differs:
 * - As SEED, code i comes from query i of a Causal Q-Former: it depends on the queries j <= i and on
 *   the whole image (tested: the gradient of z_i w.r.t. query j > i is exactly zero). The layer is
 *   core's QFormerLayer, the one @mmlm/seed's tokenizer is built of (paper packages share it through core).
 * - SEED's Q-Former reads a frozen EVA-CLIP ViT and is trained for image-text contrast (stage I),
 *   then quantized and decoded to a generation embedding for SD-unCLIP (stage II). Here a patch MLP
 *   stands in for the ViT, and the whole tokenizer is trained end to end for pixel reconstruction
 *   (foreground-weighted MSE), one stage, no text; the pixel decoder reads all N codes at once
 *   and is deterministic (no diffusion), so a code sequence has one image.
 */
import {
  AdamW,
  CausalQueryEncoder,
  clipGradNorm,
  gelu,
  LayerNorm,
  Linear,
  Module,
  paramGroups,
  parseConfig,
  patchify,
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
  /**
   * The encoder: 'causal' (default), SEED's causal 1-D codes: patch tokens read by core's
   * CausalQueryEncoder (N learnable queries, lower-triangular self-attention, cross-attention to
   * every patch), code i depending on queries <= i only; 'mlp', the first stand-in: one MLP reads
   * the whole image and writes all N code vectors at once (codes not causal among themselves).
   */
  encoder: z.enum(['causal', 'mlp']).default('causal'),
  /** H, hidden width of the decoder MLP (and of the encoder MLP when encoder = 'mlp'). */
  hidden: int(1).default(256),
  /** Causal encoder: side of the square patches (S must be a multiple). */
  patchSize: int(1).default(4),
  /** Causal encoder: width of the patch tokens and of the queries. */
  qformerWidth: int(1).default(128),
  /** Causal encoder: Q-Former layers, heads, FFN width, and cross-attention in layers i % freq == 0 (SEED: 2). */
  qformerLayers: int(1).default(2),
  qformerHeads: int(1).default(4),
  qformerFfn: int(1).default(256),
  crossAttentionFreq: int(1).default(1),
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
  const c = parseConfig('ImageCodes', ImageCodesConfigSchema, input);
  if (c.encoder === 'causal') {
    if (c.imageSize % c.patchSize !== 0)
      throw new Error(`ImageCodes config: imageSize ${c.imageSize} must be a multiple of patchSize ${c.patchSize}`);
    if (c.qformerWidth % c.qformerHeads !== 0)
      throw new Error(`ImageCodes config: qformerWidth ${c.qformerWidth} must be divisible by qformerHeads ${c.qformerHeads}`);
  }
  return c;
}

/**
 * The experiments' causal image codes (mio.staged and mio.any-to-any at `small`): 8 codes of 64,
 * width 16, a 2-layer width-128 Q-Former over 4 px patches with cross-attention in every layer,
 * decoder hidden 512 (trained 6,000 steps there). Read-back with scripts/image-codes-recipe.ts
 * (seed 0; train / seen / held-out): 1.000 / 0.957 / 0.453, against the MLP encoder's 1.000 / 0.996 / 0.863.
 */
export const CAUSAL_IMAGE_CODES = {
  encoder: 'causal',
  tokens: 8,
  codes: 64,
  dim: 16,
  hidden: 512,
  patchSize: 4,
  qformerWidth: 128,
  qformerLayers: 2,
  qformerHeads: 4,
  qformerFfn: 256,
  crossAttentionFreq: 1,
} as const satisfies ImageCodesConfigInput;

export const IMAGE_CODES_PRESETS = {
  /** Tests: 4 causal codes of 16 per image (the `tiny` vocabulary), width 8, a 1-layer width-16 Q-Former, decoder hidden 32. */
  tiny: imageCodesConfig({ tokens: 4, codes: 16, dim: 8, hidden: 32, qformerWidth: 16, qformerLayers: 1, qformerHeads: 2, qformerFfn: 32 }),
  /** 8 causal codes of 64 per image, width 16; a 2-layer width-128 Q-Former over 4 px patches; decoder hidden 256. */
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
  /** encoder 'mlp': the three encoder layers (null for 'causal'). */
  readonly enc1: Linear | null;
  readonly enc2: Linear | null;
  readonly enc3: Linear | null;
  /** encoder 'causal': patch MLP, learned patch positions [1, P, W], context LayerNorm, the causal Q-Former, code projection. */
  readonly patch_embed1: Linear | null;
  readonly patch_embed2: Linear | null;
  readonly pos_embed: tf.Variable | null;
  readonly ln_context: LayerNorm | null;
  readonly qformer: CausalQueryEncoder | null;
  readonly code_proj: Linear | null;
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
    const mlp = c.encoder === 'mlp';
    this.enc1 = mlp ? this.module('enc1', new Linear(P, c.hidden, { rng: rng.fork('enc1') })) : null;
    this.enc2 = mlp ? this.module('enc2', new Linear(c.hidden, c.hidden, { rng: rng.fork('enc2') })) : null;
    this.enc3 = mlp ? this.module('enc3', new Linear(c.hidden, c.tokens * c.dim, { rng: rng.fork('enc3') })) : null;
    const W = c.qformerWidth;
    const patchValues = c.patchSize * c.patchSize * 3;
    this.patch_embed1 = mlp ? null : this.module('patch_embed1', new Linear(patchValues, W, { rng: rng.fork('patch_embed1') }));
    this.patch_embed2 = mlp ? null : this.module('patch_embed2', new Linear(W, W, { rng: rng.fork('patch_embed2') }));
    this.pos_embed = mlp ? null : this.param('pos_embed', rng.fork('pos_embed').randn([1, this.numPatches, W], 0, 0.02));
    this.ln_context = mlp ? null : this.module('ln_context', new LayerNorm(W));
    this.qformer = mlp
      ? null
      : this.module(
          'qformer',
          new CausalQueryEncoder({
            numQueries: c.tokens,
            hiddenSize: W,
            numHeads: c.qformerHeads,
            numLayers: c.qformerLayers,
            intermediateSize: c.qformerFfn,
            contextDim: W,
            crossAttentionFreq: c.crossAttentionFreq,
            rng: rng.fork('qformer'),
          }),
        );
    this.code_proj = mlp ? null : this.module('code_proj', new Linear(W, c.dim, { rng: rng.fork('code_proj') }));
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

  /** Patches per image, (S / patchSize)^2 (causal encoder). */
  get numPatches(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2;
  }

  /** Encoder: images [B, S*S*3] -> z [B, N, D]. */
  encodeLatents(x: tf.Tensor): tf.Tensor3D {
    const B = this.checkBatch('encodeLatents', x);
    if (this.qformer) return tf.tidy(() => this.code_proj!.forward(this.qformer!.forward(this.patchTokens(x))) as tf.Tensor3D); // [B, N, D]
    return tf.tidy(() => {
      const h = gelu(this.enc2!.forward(gelu(this.enc1!.forward(x)))); // [B, H]
      return this.enc3!.forward(h).reshape([B, this.config.tokens, this.config.dim]) as tf.Tensor3D; // [B, N, D]
    });
  }

  /** Causal encoder: images [B, S*S*3] -> the patch tokens the queries cross-attend to [B, P, W] (raster order). */
  patchTokens(x: tf.Tensor): tf.Tensor3D {
    const B = this.checkBatch('patchTokens', x);
    if (!this.patch_embed1 || !this.patch_embed2 || !this.pos_embed || !this.ln_context)
      throw new Error("ImageCodes.patchTokens: this model's encoder is 'mlp', not 'causal'");
    const pe1 = this.patch_embed1;
    const pe2 = this.patch_embed2;
    const pos = this.pos_embed;
    const ln = this.ln_context;
    return tf.tidy(() => {
      const { imageSize: S, patchSize: p } = this.config;
      const patches = patchify(x.reshape([B, S, S, 3]), p); // [B, P, p p 3], raster order
      return ln.forward(pe2.forward(gelu(pe1.forward(patches))).add(pos)) as tf.Tensor3D; // [B, P, W]
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
