/**
 * Back to pixels on Shapes: the conditional image decoder (`ImageDecoder`, the SD-unCLIP stand-in)
 * trained on the toy tokenizer's generation embedding, and the read-back measure that judges it.
 *
 *   phase 3  `decoder`: the decoder learns ground-truth generation target -> image on the training
 *            images (the targets stage II regresses: `generationTarget`, a fixed random pixel
 *            projection), plain per-pixel MSE, as an unCLIP decoder is trained on real CLIP embeddings.
 *   phase 4  `decoder-finetune`: the same decoder fine-tuned on the de-tokenizer's **predicted**
 *            embeddings of the same images (codes -> `decodeCodes(...).gen`), closing the
 *            teacher-forcing gap, with a translation-tolerant loss (`maxShift`): the codes fix the
 *            object but not its exact position, so the plain MSE's optimum is a blur.
 *
 * Read-back: the @mmlm/data ShapeAnalyzer reads the original and the reconstruction; an image reads
 * back when both give the same objects by shape, colour and size (`pixelReadBack`). The cell is
 * left out: at 16 px the Shapes grid has one cell, so this equals the lab's `analyzerAgreement`.
 * Beside it, the **memoriser**: a "decoder" that returns the training image whose predicted
 * embedding is nearest (squared Euclidean), i.e. the best a copy of the training set does from the
 * same embedding; it cannot draw a combination it never saw.
 */
import { join } from 'node:path';
import { loadModule, Rng, saveModule, tf } from '@mmlm/core';
import { type ExperimentContext, type Figure, runSteps } from '@mmlm/core/experiment';
import { type ShapeAnalysis, ShapeAnalyzer, writeImageGrid } from '@mmlm/data';
import { z } from 'zod';
import { decoderStep, ImageDecoder, type ImageDecoderConfig, imageFromCodes } from '../decoder.js';
import type { SeedTokenizer } from '../tokenizer.js';
import {
  generationTarget,
  imageBatch,
  type PhaseResult,
  PhaseSchema,
  phaseOptimizer,
  phaseResult,
  type SeedData,
  type SeedItem,
} from './common.js';

export const PixelRecipeSchema = z.strictObject({
  /** Phase 3: the decoder on the ground-truth generation targets (plain MSE). */
  decoder: PhaseSchema,
  /** Phase 4: fine-tuned on the de-tokenizer's predicted embeddings, translation-tolerant. */
  finetune: PhaseSchema,
  /** Translation tolerance of the fine-tuning loss in pixels (`pixelError`'s maxShift; the renderer jitters small objects by up to 2.7 px at 16 px). */
  maxShift: z.number().int().nonnegative(),
  /** Weight of the L1 term added to the MSE in both phases. */
  l1: z.number().nonnegative().default(0),
});
export type PixelRecipe = z.infer<typeof PixelRecipeSchema>;

/** The floor of the issue: image -> codes -> image read back as the same object on seen combinations (small preset). */
export const PIXEL_READBACK_FLOOR = 0.9;

const DECODER_FILE = 'decoder.safetensors';
const BATCH = 256;

/** The objects an analysis reads, by shape, colour and size (sorted; the cell left out). */
export function objectsByAttributes(a: ShapeAnalysis): string {
  return a.objects
    .map((o) => `${o.shape}/${o.colour}/${o.size}`)
    .sort()
    .join(',');
}

export interface ReadBack {
  /** Fraction of reconstructions read as the same objects as their originals. */
  fraction: number;
  /** Per image: read back or not. */
  same: boolean[];
  /** Per image: what the analyzer reads in the original and in the reconstruction. */
  original: string[];
  reconstruction: string[];
}

/**
 * Pixel read-back: the fraction of reconstructions the ShapeAnalyzer reads as the same objects
 * (shape, colour and size of every object; `objectsByAttributes`) as their originals.
 */
export function pixelReadBack(originals: readonly Float32Array[], recon: readonly Float32Array[], analyzer: ShapeAnalyzer): ReadBack {
  if (originals.length !== recon.length || originals.length === 0)
    throw new Error(`pixelReadBack: expected equal non-empty lists, got ${originals.length} originals and ${recon.length} reconstructions`);
  const original = originals.map((x) => objectsByAttributes(analyzer.analyze(x)));
  const reconstruction = recon.map((x) => objectsByAttributes(analyzer.analyze(x)));
  const same = original.map((o, i) => o === reconstruction[i]);
  return { fraction: same.filter(Boolean).length / same.length, same, original, reconstruction };
}

/** Rows of a [N, S, S, C] tensor as images (S * S * C each). */
function toImages(t: tf.Tensor): Float32Array[] {
  const n = t.shape[0] as number;
  const per = t.size / n;
  const flat = t.dataSync() as Float32Array;
  return Array.from({ length: n }, (_, i) => flat.slice(i * per, (i + 1) * per));
}

/** Codes, ground-truth generation targets and the de-tokenizer's predicted embeddings of items, in batches. */
export function pixelEmbeddings(
  tokenizer: SeedTokenizer,
  data: SeedData,
  items: readonly SeedItem[],
  seed: number,
): { codes: Int32Array; target: tf.Tensor2D; predicted: tf.Tensor2D } {
  const S = data.imageSize;
  const G = tokenizer.config.decoder.genDim;
  const Q = tokenizer.numQueries;
  const codes = new Int32Array(items.length * Q);
  const targets: tf.Tensor[] = [];
  const preds: tf.Tensor[] = [];
  for (let i = 0; i < items.length; i += BATCH) {
    const x = imageBatch(items.slice(i, i + BATCH), S);
    const c = tokenizer.encodeCodes(x);
    codes.set(c, i * Q);
    targets.push(generationTarget(x, G, seed)); // [n, G]
    const d = tokenizer.decodeCodes(c);
    d.causal.dispose();
    preds.push(d.gen); // [n, G]
    x.dispose();
  }
  const target = tf.concat(targets, 0) as tf.Tensor2D;
  const predicted = tf.concat(preds, 0) as tf.Tensor2D;
  tf.dispose([...targets, ...preds]);
  return { codes, target, predicted };
}

export interface TrainedPixelDecoder {
  /** The decoder after both phases (ground truth, then fine-tuned on predicted embeddings). */
  decoder: ImageDecoder;
  /** The decoder after phase 3 only (ground-truth targets). */
  groundTruthDecoder: ImageDecoder;
  decoderPhase: PhaseResult;
  finetunePhase: PhaseResult;
}

/**
 * Train the image decoder on the training images in two resumable sub-runs, `decoder` (ground-truth
 * targets) and `decoder-finetune` (the de-tokenizer's predicted embeddings), each saving the
 * decoder's weights. The tokenizer is only read (no parameter of it changes).
 */
export async function trainPixelDecoder(
  ctx: ExperimentContext,
  data: SeedData,
  tokenizer: SeedTokenizer,
  cfg: ImageDecoderConfig,
  recipe: PixelRecipe,
  seed: number,
  /** The training images' `pixelEmbeddings` when the caller has them (not disposed here); computed otherwise. */
  trainEmbeddings?: { target: tf.Tensor2D; predicted: tf.Tensor2D },
): Promise<TrainedPixelDecoder> {
  const S = data.imageSize;
  const N = data.train.length;
  const rng = new Rng(seed).fork('pixel-decoder');
  const emb = trainEmbeddings ?? pixelEmbeddings(tokenizer, data, data.train, seed);
  const images = imageBatch(data.train, S); // [N, S, S, 3]
  const decoder = new ImageDecoder(cfg);
  const file = (name: string) => join(ctx.outDir, 'subruns', name, DECODER_FILE);
  const phase = (name: string, embedding: tf.Tensor2D, p: PixelRecipe['decoder'], maxShift: number) =>
    ctx.subrun(name, async (dir, sub): Promise<PhaseResult> => {
      const { opt, lr } = phaseOptimizer(decoder, p);
      const r = rng.fork(name);
      decoder.train();
      const s = runSteps({
        name: sub.name,
        steps: p.steps,
        step: (t) => {
          opt.lr = lr(t);
          const idx = tf.tensor1d(
            Array.from({ length: p.batchSize }, () => r.int(0, N)),
            'int32',
          );
          const e = tf.gather(embedding, idx); // [B, genDim]
          const x = tf.gather(images, idx); // [B, S, S, 3]
          try {
            return { ...decoderStep(decoder, opt, { embedding: e, images: x }, { l1: recipe.l1, maxShift }), lr: opt.lr };
          } finally {
            tf.dispose([idx, e, x]);
          }
        },
        progress: sub.progress(sub.name, p.steps),
        metric: (rec) => sub.metric(rec),
      });
      opt.dispose();
      decoder.eval();
      await saveModule(join(dir, DECODER_FILE), decoder);
      return { ...phaseResult(p.steps, s, {}), file: DECODER_FILE };
    });
  try {
    const decoderPhase = await phase('decoder', emb.target, recipe.decoder, 0);
    await loadModule(file('decoder'), decoder);
    const groundTruthDecoder = new ImageDecoder(cfg);
    await loadModule(file('decoder'), groundTruthDecoder);
    const finetunePhase = await phase('decoder-finetune', emb.predicted, recipe.finetune, recipe.maxShift);
    await loadModule(file('decoder-finetune'), decoder);
    decoder.eval();
    groundTruthDecoder.eval();
    return { decoder, groundTruthDecoder, decoderPhase, finetunePhase };
  } finally {
    images.dispose();
    if (!trainEmbeddings) tf.dispose([emb.target, emb.predicted]);
  }
}

export interface PixelSetEval {
  /** image -> codes -> predicted embedding -> the fine-tuned decoder (the round trip). */
  readBack: ReadBack;
  /** The same through the decoder trained on ground-truth targets only (before fine-tuning). */
  readBackGroundTruthDecoder: number;
  /** The ground-truth-trained decoder on the ground-truth targets (the decoder alone, no tokenizer). */
  readBackFromTarget: number;
  /** The memoriser: the training image with the nearest predicted embedding (null without a memory). */
  readBackMemoriser: number | null;
  /** Pixel MSE of the round trip's reconstructions. */
  mse: number;
  originals: Float32Array[];
  reconstructions: Float32Array[];
}

/** Index of the nearest row of `memory` [M, G] for each row of `query` [N, G] (squared Euclidean). */
export function nearestRows(query: tf.Tensor2D, memory: tf.Tensor2D): Int32Array {
  const t = tf.tidy(() => {
    const d = memory
      .square()
      .sum(1)
      .reshape([1, -1])
      .sub(tf.matMul(query, memory, false, true).mul(2)); // [N, M], ||m||^2 - 2 q.m
    return d.argMin(1);
  });
  const out = Int32Array.from(t.dataSync());
  t.dispose();
  return out;
}

/**
 * Read-back of one evaluation set through both decoders and from the ground-truth targets; with
 * `memory` (the training images and their predicted embeddings) also the memoriser's.
 */
export function evaluatePixels(
  tokenizer: SeedTokenizer,
  trained: Pick<TrainedPixelDecoder, 'decoder' | 'groundTruthDecoder'>,
  data: SeedData,
  items: readonly SeedItem[],
  seed: number,
  analyzer: ShapeAnalyzer,
  memory?: { predicted: tf.Tensor2D; images: readonly Float32Array[] },
): PixelSetEval {
  const emb = pixelEmbeddings(tokenizer, data, items, seed);
  const Q = tokenizer.numQueries;
  const recon: Float32Array[] = [];
  const viaGt: Float32Array[] = [];
  const fromTarget: Float32Array[] = [];
  let nearest: Float32Array[] | null = null;
  try {
    for (let i = 0; i < items.length; i += BATCH) {
      const n = Math.min(BATCH, items.length - i);
      const codes = emb.codes.subarray(i * Q, (i + n) * Q);
      for (const [out, dec] of [
        [recon, trained.decoder],
        [viaGt, trained.groundTruthDecoder],
      ] as const) {
        const y = imageFromCodes(tokenizer, dec, codes);
        out.push(...toImages(y));
        y.dispose();
      }
      const y = tf.tidy(() => trained.groundTruthDecoder.forward(emb.target.slice([i, 0], [n, -1])));
      fromTarget.push(...toImages(y));
      y.dispose();
    }
    if (memory) {
      if (memory.predicted.shape[0] !== memory.images.length)
        throw new Error(`evaluatePixels: memory has ${memory.predicted.shape[0]} embeddings and ${memory.images.length} images`);
      nearest = Array.from(nearestRows(emb.predicted, memory.predicted), (j) => memory.images[j] as Float32Array);
    }
  } finally {
    tf.dispose([emb.target, emb.predicted]);
  }
  const originals = items.map((d) => d.image);
  let se = 0;
  recon.forEach((r, i) => {
    const o = originals[i] as Float32Array;
    for (let j = 0; j < r.length; j++) se += ((r[j] as number) - (o[j] as number)) ** 2;
  });
  return {
    readBack: pixelReadBack(originals, recon, analyzer),
    readBackGroundTruthDecoder: pixelReadBack(originals, viaGt, analyzer).fraction,
    readBackFromTarget: pixelReadBack(originals, fromTarget, analyzer).fraction,
    readBackMemoriser: nearest ? pixelReadBack(originals, nearest, analyzer).fraction : null,
    mse: se / (recon.length * (recon[0]?.length ?? 1)),
    originals,
    reconstructions: recon,
  };
}

/** A sample grid PNG of original | reconstruction pairs (first `pairs` items), written to `path`. */
export function writePixelGrid(path: string, ev: Pick<PixelSetEval, 'originals' | 'reconstructions'>, S: number, pairs = 24): void {
  const n = Math.min(pairs, ev.originals.length);
  const cells: Float32Array[] = [];
  for (let i = 0; i < n; i++) cells.push(ev.originals[i] as Float32Array, ev.reconstructions[i] as Float32Array);
  writeImageGrid(path, cells, { size: S, cols: 12, scale: 4 });
}

export interface PixelResult {
  seen: PixelSetEval;
  heldOut: PixelSetEval;
  decoderPhase: PhaseResult;
  finetunePhase: PhaseResult;
  figures: Figure[];
  decoderParameters: number;
}

/**
 * Train the decoder (two sub-runs), measure the read-back on seen and held-out images, write the
 * sample grids. With `keepDecoder` the fine-tuned decoder is returned (the caller disposes it).
 */
export async function backToPixels(
  ctx: ExperimentContext,
  data: SeedData,
  tokenizer: SeedTokenizer,
  cfg: ImageDecoderConfig,
  recipe: PixelRecipe,
  seed: number,
  opts: { keepDecoder?: boolean } = {},
): Promise<PixelResult & { decoder?: ImageDecoder }> {
  const trainEmb = pixelEmbeddings(tokenizer, data, data.train, seed);
  let trained: TrainedPixelDecoder | null = null;
  let handedOver = false;
  try {
    trained = await trainPixelDecoder(ctx, data, tokenizer, cfg, recipe, seed, trainEmb);
    const analyzer = new ShapeAnalyzer(data.config);
    const memory = { predicted: trainEmb.predicted, images: data.train.map((d) => d.image) };
    const seen = evaluatePixels(tokenizer, trained, data, data.seen, seed, analyzer, memory);
    const heldOut = evaluatePixels(tokenizer, trained, data, data.heldOut, seed, analyzer, memory);
    const figures: Figure[] = [];
    for (const [set, ev, label] of [
      ['seen', seen, 'seen'],
      ['heldout', heldOut, 'held-out'],
    ] as const) {
      const path = `pixels-${set}.png`;
      writePixelGrid(join(ctx.outDir, path), ev, data.imageSize);
      figures.push({
        title: `Back to pixels, ${label} combinations: original | reconstruction`,
        path,
        caption: `Pairs of an original ${label} image and its round trip image -> ${tokenizer.numQueries} codes -> generation embedding -> image decoder, 6 pairs a row.`,
      });
    }
    const result: PixelResult = {
      seen,
      heldOut,
      decoderPhase: trained.decoderPhase,
      finetunePhase: trained.finetunePhase,
      figures,
      decoderParameters: trained.decoder.numParameters(),
    };
    handedOver = opts.keepDecoder === true;
    return handedOver ? { ...result, decoder: trained.decoder } : result;
  } finally {
    tf.dispose([trainEmb.target, trainEmb.predicted]);
    if (!handedOver) trained?.decoder.dispose();
    trained?.groundTruthDecoder.dispose();
  }
}
