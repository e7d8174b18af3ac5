/**
 * The pixel-code baseline of SEED's pilot study (paper section 3.1: OPT-2.7B aligned on CC3M reaches
 * COCO CIDEr 34.0 from VQ-VAE codes vs 42.0 from BEiT-v2's semantic VQ-KD codes): a small **patch
 * VQ-VAE** trained on pixel reconstruction only, with the same number of codes per image and the
 * same codebook size as the SEED tokenizer it is compared with.
 *
 *   images [B, S, S, C] -> patchify to a gh x gw grid of ph x pw patches  -> [B, Q, ph pw C], Q = gh gw
 *     -> encoder (per patch: Lin, ReLU, Lin to codeDim; code q depends on patch q's pixels only) -> z [B, Q, D]
 *     -> VectorQuantizer (core; legacy loss, k-means init, dead-code restart)          -> z_q [B, Q, D]
 *     -> decoder (z_q + pos_embed, flattened to Q D; Lin, ReLU, ..., Lin to S S C, sigmoid) -> [B, S, S, C]
 *   L = MSE(recon, images) + L_vq
 *
 * Codes are in raster order over the grid (row-major, as VQGAN / Liquid feed their codes to an LM).
 * Built here from core's VectorQuantizer and Linear (paper packages never import each other, so not
 * from @mmlm/liquid). A conv encoder would be closer to a VQ-VAE; core has no Conv2d module, and at
 * 16 px a per-patch MLP sees as much of the image as a 2-layer conv stack with stride 2 would.
 */
import { join } from 'node:path';
import {
  type AdamW,
  loadModule,
  Module,
  mse,
  parseConfig,
  patchify,
  Rng,
  saveModule,
  tf,
  VectorQuantizer,
  valueAndGrads,
} from '@mmlm/core';
import { type ExperimentContext, runSteps } from '@mmlm/core/experiment';
import { z } from 'zod';
import { LinearStack } from '../tokenizer.js';
import { imageBatch, type Phase, type PhaseResult, phaseOptimizer, phaseResult, type SeedData, type SeedItem } from './common.js';

const PixelVQConfigSchema = z.strictObject({
  /** Side of the square RGB input (the SEED tokenizer's `vit.imageSize`). */
  imageSize: z.number().int().positive().default(16),
  channels: z.number().int().positive().default(3),
  /** Grid rows x columns of patches: Q = rows x cols codes per image (match the SEED tokenizer's query count). */
  grid: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([2, 4]),
  /** Hidden width of the per-patch encoder MLP. */
  encoderHidden: z.number().int().positive().default(128),
  /** Code dimension (match the SEED tokenizer's `quantizer.codeDim`). */
  codeDim: z.number().int().positive().default(8),
  /** K (match the SEED tokenizer's `quantizer.numCodes`). */
  numCodes: z.number().int().min(2).default(256),
  /** VectorQuantizer2 beta and legacy ordering, as SEED's quantizer. */
  beta: z.number().nonnegative().default(0.25),
  legacy: z.boolean().default(true),
  /** k-means codebook init on the first training batch. */
  kmeansInit: z.boolean().default(true),
  /** Restart codes unused for this many training forwards (0 = off). */
  deadCodeSteps: z.number().int().nonnegative().default(20),
  /** Hidden widths of the decoder MLP. */
  decoderHidden: z.array(z.number().int().positive()).min(1).default([512, 512]),
  seed: z.number().int().default(0),
});
export type PixelVQConfigInput = z.input<typeof PixelVQConfigSchema>;
export type PixelVQConfig = z.infer<typeof PixelVQConfigSchema>;

/** Parse and validate a pixel VQ-VAE config; errors name the field, the expectation and the value. */
export function pixelVQConfig(input: PixelVQConfigInput = {}): PixelVQConfig {
  const c = parseConfig('pixel VQ-VAE', PixelVQConfigSchema, input);
  const [gh, gw] = c.grid;
  if (c.imageSize % gh !== 0 || c.imageSize % gw !== 0)
    throw new Error(`pixel VQ-VAE config: grid [${gh}, ${gw}] must divide imageSize ${c.imageSize} on both sides`);
  return c;
}

/** The most square grid gh x gw with gh gw = Q and both dividing S (gh <= gw), or an error naming Q and S. */
export function patchGrid(Q: number, S: number): [number, number] {
  for (let gh = Math.floor(Math.sqrt(Q)); gh >= 1; gh--) if (Q % gh === 0 && S % gh === 0 && S % (Q / gh) === 0) return [gh, Q / gh];
  throw new Error(`patchGrid: no grid of ${Q} patches tiles a ${S} px image (rows and columns must divide ${S})`);
}

export interface PixelVQOutput {
  /** Reconstruction in (0, 1). [B, S, S, C] */
  recon: tf.Tensor4D;
  loss: tf.Scalar;
  rec: tf.Scalar;
  vq: tf.Scalar;
  usage: tf.Scalar;
  perplexity: tf.Scalar;
}

/** A patch VQ-VAE: local per-patch codes, a global MLP decoder (file comment). */
export class PixelVQVAE extends Module {
  readonly config: PixelVQConfig;
  readonly encoder: LinearStack;
  readonly quantize: VectorQuantizer;
  readonly pos_embed: tf.Variable; // [1, Q, D]
  readonly decoder: LinearStack;

  constructor(input: PixelVQConfigInput = {}) {
    super();
    const c = pixelVQConfig(input);
    this.config = c;
    const rng = new Rng(c.seed).fork('pixel-vq');
    const [gh, gw] = c.grid;
    const patch = (c.imageSize / gh) * (c.imageSize / gw) * c.channels;
    this.encoder = this.module('encoder', new LinearStack([patch, c.encoderHidden, c.codeDim], 'relu', true, rng));
    this.quantize = this.module(
      'quantize',
      new VectorQuantizer(c.numCodes, c.codeDim, {
        beta: c.beta,
        legacy: c.legacy,
        kmeansInit: c.kmeansInit,
        deadCodeSteps: c.deadCodeSteps,
        rng: rng.fork('vq'),
      }),
    );
    this.pos_embed = this.param('pos_embed', rng.randn([1, gh * gw, c.codeDim], 0, 0.02));
    const S = c.imageSize;
    this.decoder = this.module(
      'decoder',
      new LinearStack([gh * gw * c.codeDim, ...c.decoderHidden, S * S * c.channels], 'relu', true, rng),
    );
  }

  /** Q, the codes per image. */
  get numCodesPerImage(): number {
    return this.config.grid[0] * this.config.grid[1];
  }

  private checkImages(who: string, images: tf.Tensor): void {
    const { imageSize: S, channels: C } = this.config;
    if (images.rank !== 4 || images.shape[1] !== S || images.shape[2] !== S || images.shape[3] !== C)
      throw new Error(`PixelVQVAE.${who}: images must be [B, ${S}, ${S}, ${C}], got shape [${images.shape}]`);
  }

  /** Images [B, S, S, C] -> patches [B, Q, ph pw C] in raster order. */
  patchify(images: tf.Tensor): tf.Tensor3D {
    this.checkImages('patchify', images);
    const { imageSize: S, grid } = this.config;
    const [gh, gw] = grid;
    return patchify(images, S / gh, S / gw); // [B, gh gw, ph pw C], raster order
  }

  /** The pre-quantization vectors z: [B, S, S, C] -> [B, Q, D]. */
  encode(images: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.encoder.forward(this.patchify(images)) as tf.Tensor3D);
  }

  /** Quantized vectors [B, Q, D] -> image [B, S, S, C] in (0, 1). */
  decode(zq: tf.Tensor): tf.Tensor4D {
    const Q = this.numCodesPerImage;
    const { codeDim: D, imageSize: S, channels: C } = this.config;
    if (zq.rank !== 3 || zq.shape[1] !== Q || zq.shape[2] !== D)
      throw new Error(`PixelVQVAE.decode: codes must be [B, ${Q}, ${D}], got shape [${zq.shape}]`);
    const B = zq.shape[0] as number;
    return tf.tidy(() => tf.sigmoid(this.decoder.forward(zq.add(this.pos_embed).reshape([B, Q * D]))).reshape([B, S, S, C]) as tf.Tensor4D);
  }

  /** Training forward: reconstruction and losses (VQ training updates in train mode). */
  forward(images: tf.Tensor): PixelVQOutput {
    this.checkImages('forward', images);
    return tf.tidy(() => {
      const vq = this.quantize.forward(this.encode(images));
      const recon = this.decode(vq.zq);
      const rec = mse(recon, images);
      return { recon, loss: rec.add(vq.loss) as tf.Scalar, rec, vq: vq.loss, usage: vq.usage, perplexity: vq.perplexity };
    });
  }

  /** Code indices of images (no training updates): Int32Array N x Q, raster order. */
  encodeCodes(images: tf.Tensor): Int32Array {
    const idx = tf.tidy(() => this.quantize.nearest(this.encode(images).reshape([-1, this.config.codeDim]) as tf.Tensor2D)); // [N Q]
    const out = Int32Array.from(idx.dataSync() as Int32Array);
    idx.dispose();
    return out;
  }

  /** Images [N, S, S, C] in (0, 1) of code indices (N x Q, flat). */
  decodeCodes(codes: Int32Array | number[]): tf.Tensor4D {
    const Q = this.numCodesPerImage;
    if (codes.length === 0 || codes.length % Q !== 0)
      throw new Error(`PixelVQVAE.decodeCodes: expected N x ${Q} codes (grid ${this.config.grid.join(' x ')}), got ${codes.length}`);
    return tf.tidy(() => this.decode(this.quantize.decode(tf.tensor2d(Int32Array.from(codes), [codes.length / Q, Q], 'int32'))));
  }
}

/** One AdamW update of the VQ-VAE on a batch; the losses as numbers. */
export function pixelVQStep(model: PixelVQVAE, opt: AdamW, images: tf.Tensor): { loss: number; rec: number; vq: number; usage: number } {
  const parts = { rec: 0, vq: 0, usage: 0 };
  const { loss, grads } = valueAndGrads(model, () => {
    const o = model.forward(images);
    parts.rec = o.rec.dataSync()[0] as number;
    parts.vq = o.vq.dataSync()[0] as number;
    parts.usage = o.usage.dataSync()[0] as number;
    return o.loss;
  });
  try {
    opt.step(grads);
    return { loss: loss.dataSync()[0] as number, ...parts };
  } finally {
    loss.dispose();
    for (const g of grads.values()) g.dispose();
  }
}

const FILE = 'pixel-vq.safetensors';

/** Train the pixel VQ-VAE on the training images (resumable sub-run `pixel-vq`); returned in eval mode. */
export async function trainPixelVQ(
  ctx: ExperimentContext,
  data: SeedData,
  cfg: PixelVQConfigInput,
  p: Phase,
  seed: number,
): Promise<{ model: PixelVQVAE; phase: PhaseResult }> {
  const model = new PixelVQVAE(cfg);
  const S = data.imageSize;
  const rng = new Rng(seed).fork('pixel-vq-batches');
  const phase = await ctx.subrun('pixel-vq', async (dir, sub) => {
    const { opt, lr } = phaseOptimizer(model, p);
    model.train();
    const s = runSteps({
      name: sub.name,
      steps: p.steps,
      step: (t) => {
        opt.lr = lr(t);
        const x = imageBatch(
          Array.from({ length: p.batchSize }, () => data.train[rng.int(0, data.train.length)] as SeedItem),
          S,
        );
        try {
          return { ...pixelVQStep(model, opt, x), lr: opt.lr };
        } finally {
          x.dispose();
        }
      },
      progress: sub.progress(sub.name, p.steps),
      show: (v, ema) => ({ loss: ema, usage: v.usage ?? 0 }),
      metric: (rec) => sub.metric(rec),
    });
    opt.dispose();
    model.eval();
    await saveModule(join(dir, FILE), model);
    const m = s.mean;
    return { ...phaseResult(p.steps, s, m ? { rec: m.rec, vq: m.vq, usage: m.usage } : {}), file: FILE };
  });
  await loadModule(join(ctx.outDir, 'subruns', 'pixel-vq', FILE), model);
  model.eval();
  return { model, phase };
}
