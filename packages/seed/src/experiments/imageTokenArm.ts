/**
 * SEED's arm of the lab's "image tokens" comparison (core's ImageTokenArmFactory): SEED's causal
 * codes at the lab's budget.
 *   1. The SEED tokenizer (`trainTokenizer`: `vit` attribute-classifier pre-training, then frozen;
 *      `stage1` Causal Q-Former ITC; `stage2` VQ + de-tokenizer) and the pixel decoder
 *      (`trainPixelDecoder`: `decoder` on ground-truth generation targets, `decoder-finetune` on the
 *      de-tokenizer's predicted embeddings), all on data.train, splitting `tokenizerSteps` across the
 *      five phases in the recipe's proportions (default 0.2 / 0.2 / 0.3 / 0.15 / 0.15). Each phase is
 *      a resumable sub-run under `dir/subruns/`. An image becomes Q codes (Q = the preset's query
 *      count: 8 at `small`, 4 at `tiny`; the Liquid and LatentLM arms use 16 tokens per image).
 *   2. One decoder-only LM (core's TransformerDecoder of the lab's backbone size, RoPE, RMSNorm,
 *      SwiGLU) over one vocabulary: caption words (with `<bos>`, `<eos>`, `<pad>`) + K code tokens +
 *      `<img>`, `</img>`, `<uncond>`. Text-to-image: `<bos> caption <img> c_1..c_Q </img> <eos>`
 *      (loss on the codes, `</img>`, `<eos>`; the caption replaced by `<uncond>` with probability
 *      0.1); image-to-text, with probability `captionFraction`: `<bos> <img> c_1..c_Q </img> caption
 *      <eos>` (loss on the caption and `<eos>`). As SEED-LLaMA, codes are ordinary vocabulary ids
 *      predicted by the softmax head.
 *   3. generate: CFG on logits with a `<uncond>` prompt, every non-code id masked, temperature,
 *      top-k, top-p, KV cache; exactly Q codes after `<img>`, drawn by the pixel decoder
 *      (`imageFromCodes`). caption: greedy word ids (code and image ids masked) until `<eos>`.
 *      reconstruct: image -> codes -> generation embedding -> pixel decoder.
 *
 * Attribute labels for the ViT classifier. The lab's ImageTextData has images and captions only, so
 * the labels are parsed from the captions (@mmlm/data `parseCaption`, the first object): shape and
 * colour (every Shapes caption names them) and size, with one extra class "size not named" for the
 * captions that leave it out (about 40% of the lab's captions). The stage-I batches group images by
 * the parsed (shape, colour, size-or-unnamed) key, so a "red triangle" and a "large red triangle"
 * can meet as in-batch negatives (a false negative SEED's web-scale data also has).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdamW,
  clipGradNorm,
  crossEntropy,
  loadModule,
  paramGroups,
  parseConfig,
  Rng,
  sampleSpan,
  sampleUntil,
  saveModule,
  stableHash32,
  TransformerDecoder,
  tf,
  trainLoop,
  valueAndGrads,
  warmupCosine,
  writeFileAtomicSync,
} from '@mmlm/core';
import {
  type ExperimentContext,
  type ImageTextData,
  type ImageTokenArm,
  type ImageTokenArmFactory,
  type ImageTokenArmOptions,
  makeSubrun,
  type ProgressHandle,
} from '@mmlm/core/experiment';
import { COLOUR_NAMES, parseCaption, SHAPE_NAMES, type ShapesConfig, SIZE_NAMES, WordTokenizer } from '@mmlm/data';
import { z } from 'zod';
import { type SeedConfig, seedConfig, preset as seedPreset } from '../config.js';
import { type ImageDecoder, imageDecoderConfig, imageDecoderPreset, imageFromCodes } from '../decoder.js';
import type { SeedTokenizer } from '../tokenizer.js';
import { IGNORE_LABEL, type Recipe, type SeedData, type SeedItem, trainTokenizer } from './common.js';
import { type PixelRecipe, pixelEmbeddings, trainPixelDecoder } from './pixels.js';

const PHASES = ['vit', 'stage1', 'stage2', 'decoder', 'finetune'] as const;

/**
 * The arm's recipe (ImageTokenArmOptions.recipe). Deviations from SEED's reference, all for the
 * lab's toy budget (16 px Shapes, about a thousand tokenizer steps in all):
 * - the tokenizer is the `small` preset (ViT 2 x 32, Q-Former 4 x 64, 8 queries, K = 256 codes of
 *   8, k-means codebook init and dead-code restarts), not EVA-CLIP + BLIP-2 with 32 x 8192 codes;
 * - every phase runs at the lab's batch size (SEED's retrieval recipe: 48-64) and its steps are a
 *   fixed share of `tokenizerSteps` (the retrieval recipe runs 8,000 steps over the five phases);
 * - pixels come from the regression MLP of "Back to pixels" (README), not SD-unCLIP;
 * - the LM is trained from scratch (SEED-LLaMA tunes a pre-trained LLaMA), with Liquid's arm's
 *   regularisation (dropout 0.1, AdamW weight decay 0.1) so the backbones differ only in the tokens.
 */
export const SeedArmRecipeSchema = z.object({
  tokenizer: z
    .object({
      /** Tokenizer and decoder size: `small` (8 codes of K = 256) or `tiny` (4 codes of K = 16, tests). */
      preset: z.enum(['tiny', 'small']).default('small'),
      /** Shares of `tokenizerSteps` for vit / stage1 / stage2 / decoder / decoder-finetune (normalised). */
      split: z.array(z.number().nonnegative()).length(5).default([0.2, 0.2, 0.3, 0.15, 0.15]),
      /** Peak lr of each phase (the retrieval recipe's: 2e-3 / 1e-3 / 1e-3 / 2e-3 / 1e-3). */
      lr: z.array(z.number().positive()).length(5).default([2e-3, 1e-3, 1e-3, 2e-3, 1e-3]),
      /** Warmup steps as a fraction of each phase (capped at 100 steps). */
      warmupFraction: z.number().min(0).max(1).default(0.05),
      /** Batch size of the tokenizer phases; null = the lab's batchSize (equal budget across arms). */
      batchSize: z.number().int().min(2).nullable().default(null),
      /** Translation tolerance (px) of the decoder's fine-tuning loss (README, "Back to pixels"). */
      maxShift: z.number().int().nonnegative().default(2),
      /**
       * The ViT's size label for a caption that names no size (about 40% of the lab's captions):
       * `class` = one more class "not named" (the first recipe; the ViT must then guess the caption's
       * wording from the pixels), `ignore` = no size loss for that image (cross-entropy ignoreIndex).
       */
      unnamedSize: z.enum(['class', 'ignore']).default('class'),
    })
    .prefault({}),
  backbone: z
    .object({
      /** Peak lr (the Liquid arm's). */
      lr: z.number().positive().default(3e-3),
      /** AdamW weight decay (the Liquid arm's; SEED-LLaMA's LoRA tuning: 0.05). */
      weightDecay: z.number().nonnegative().default(0.1),
      dropout: z.number().min(0).lt(1).default(0.1),
      warmupFraction: z.number().min(0).max(1).default(0.1),
      /** Probability that a text-to-image caption is replaced by `<uncond>` (CFG's null prompt). */
      uncondProb: z.number().min(0).max(1).default(0.1),
      /** Global gradient-norm clip. */
      gradClip: z.number().positive().default(1),
    })
    .prefault({}),
  sampling: z
    .object({
      /** CFG scale s of l_u + s (l_c - l_u) (the Liquid arm's default; SEED-LLaMA samples without CFG). */
      cfgScale: z.number().positive().default(1.5),
      temperature: z.number().nonnegative().default(0.5),
      topK: z.number().int().nonnegative().default(0),
      topP: z.number().positive().max(1).default(0.96),
    })
    .prefault({}),
});
export type SeedArmRecipeInput = z.input<typeof SeedArmRecipeSchema>;
export type SeedArmRecipe = z.infer<typeof SeedArmRecipeSchema>;

/** The arm's recipe with defaults filled in; errors name the field, the expectation and the value. */
export function seedArmRecipe(input: unknown = {}): SeedArmRecipe {
  return parseConfig('seed imageTokenArm recipe', SeedArmRecipeSchema, input ?? {});
}

/** Steps of each of the five tokenizer phases: shares of `total` (largest remainders, so they sum to it). */
export function splitSteps(total: number, split: readonly number[]): number[] {
  const sum = split.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new Error(`seed imageTokenArm: tokenizer.split must have a positive sum, got [${split.join(', ')}]`);
  const exact = split.map((s) => (total * s) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    out[i] = (out[i] as number) + 1;
    left--;
  }
  return out;
}

/**
 * Attribute labels [shape, colour, size] parsed from a caption. A size the caption does not name is
 * SIZE_NAMES.length (one more class, `unnamedSize` 'class') or IGNORE_LABEL (no size loss, 'ignore').
 */
export function captionLabels(caption: string, unnamedSize: 'class' | 'ignore' = 'class'): [number, number, number] {
  const q = parseCaption(caption);
  const o = q.objects[0];
  if (!o?.shape || !o.colour)
    throw new Error(
      `seed imageTokenArm: caption "${caption}" must name a shape and a colour (the ViT's attribute labels), got ${JSON.stringify(o ?? null)}`,
    );
  const unnamed = unnamedSize === 'ignore' ? IGNORE_LABEL : SIZE_NAMES.length;
  return [SHAPE_NAMES.indexOf(o.shape), COLOUR_NAMES.indexOf(o.colour), o.size ? SIZE_NAMES.indexOf(o.size) : unnamed];
}

function fail(msg: string): never {
  throw new Error(`seed imageTokenArm: ${msg}`);
}

function checkOptions(o: ImageTokenArmOptions): void {
  if (!o || typeof o !== 'object') fail(`options must be an object, got ${typeof o}`);
  const d = o.data as ImageTextData | undefined;
  if (!d || typeof d !== 'object') fail(`data must be {imageSize, train, evalCaptions}, got ${typeof d}`);
  const S = d.imageSize;
  if (!Number.isInteger(S) || S < 4 || S % 4 !== 0)
    fail(`data.imageSize must be a positive multiple of 4 (the ViT's 4 px patches), got ${S}`);
  const { images, captions } = d.train ?? {};
  if (!Array.isArray(images) || !Array.isArray(captions) || images.length === 0)
    fail(`data.train must hold at least one image and caption, got ${Array.isArray(images) ? images.length : typeof images} images`);
  if (images.length !== captions.length)
    fail(`data.train has ${images.length} images but ${captions.length} captions (expected one caption per image)`);
  images.forEach((im, i) => {
    if (!(im instanceof Float32Array) || im.length !== S * S * 3)
      fail(`data.train.images[${i}] must be a Float32Array of ${S} x ${S} x 3 = ${S * S * 3} values, got ${im?.length ?? typeof im}`);
  });
  captions.forEach((c, i) => {
    if (typeof c !== 'string' || c.trim() === '') fail(`data.train.captions[${i}] must be a non-empty string, got ${JSON.stringify(c)}`);
  });
  if (!Array.isArray(d.evalCaptions)) fail(`data.evalCaptions must be an array of strings, got ${typeof d.evalCaptions}`);
  const b = o.backbone;
  for (const k of ['dim', 'numLayers', 'numHeads'] as const)
    if (!Number.isInteger(b?.[k]) || (b[k] as number) < 1) fail(`backbone.${k} must be a positive integer, got ${b?.[k]}`);
  if (b.dim % b.numHeads !== 0 || (b.dim / b.numHeads) % 2 !== 0)
    fail(`backbone.dim must be numHeads x an even head width (RoPE), got dim ${b.dim} with ${b.numHeads} heads`);
  for (const k of ['tokenizerSteps', 'backboneSteps'] as const)
    if (!Number.isInteger(o[k]) || o[k] < 0) fail(`${k} must be an integer >= 0, got ${o[k]}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 2) fail(`batchSize must be an integer >= 2, got ${o.batchSize}`);
  if (o.backboneBatchSize !== undefined && (!Number.isInteger(o.backboneBatchSize) || o.backboneBatchSize < 1))
    fail(`backboneBatchSize must be a positive integer, got ${o.backboneBatchSize}`);
  if (!(o.captionFraction >= 0 && o.captionFraction <= 1)) fail(`captionFraction must be in [0, 1], got ${o.captionFraction}`);
  if (!Number.isInteger(o.seed)) fail(`seed must be an integer, got ${o.seed}`);
  if (typeof o.dir !== 'string' || o.dir === '') fail(`dir must be a folder path, got ${JSON.stringify(o.dir)}`);
}

/** Token ids of the arm's LM: words [0, V), codes [V, V + K), then `<img>`, `</img>`, `<uncond>`. */
export interface SeedArmVocab {
  textVocabSize: number;
  numCodes: number;
  tokensPerImage: number;
  codeOffset: number;
  img: number;
  endImg: number;
  uncond: number;
  bos: number;
  eos: number;
  pad: number;
  size: number;
}

const IGNORE = -100;

/** One training sequence and its (unshifted) labels. */
function t2iSequence(v: SeedArmVocab, caption: number[] | null, codes: ArrayLike<number>): { ids: number[]; labels: number[] } {
  const prompt = [v.bos, ...(caption ?? [v.uncond]), v.img];
  const target = [...Array.from(codes, (k) => v.codeOffset + k), v.endImg, v.eos];
  return { ids: [...prompt, ...target], labels: [...prompt.map(() => IGNORE), ...target] };
}

function i2tSequence(v: SeedArmVocab, caption: number[], codes: ArrayLike<number>): { ids: number[]; labels: number[] } {
  const prompt = [v.bos, v.img, ...Array.from(codes, (k) => v.codeOffset + k), v.endImg];
  const target = [...caption, v.eos];
  return { ids: [...prompt, ...target], labels: [...prompt.map(() => IGNORE), ...target] };
}

function fingerprint(x: unknown): string {
  return stableHash32(JSON.stringify(x)).toString(16);
}

/**
 * Reads a finished phase's marker (null: not finished); a marker written for other settings is an
 * error. `trainSeconds` is null in a marker written before it was recorded.
 */
function finished(path: string, key: string): { trainSeconds: number | null } | null {
  if (!existsSync(path)) return null;
  const m = JSON.parse(readFileSync(path, 'utf8')) as { key?: string; trainSeconds?: unknown };
  if (m.key !== key)
    fail(`${path} was written for other settings (fingerprint ${m.key}, expected ${key}); use an empty dir for a new configuration`);
  return { trainSeconds: typeof m.trainSeconds === 'number' ? m.trainSeconds : null };
}

function stack(images: readonly Float32Array[], S: number): tf.Tensor4D {
  const per = S * S * 3;
  const buf = new Float32Array(images.length * per);
  images.forEach((im, i) => buf.set(im, i * per));
  return tf.tensor4d(buf, [images.length, S, S, 3]);
}

/** Codes of images (Q per image, query order), in batches of 256. */
function encodeAll(tok: SeedTokenizer, images: readonly Float32Array[], S: number): Int32Array {
  const Q = tok.numQueries;
  const out = new Int32Array(images.length * Q);
  for (let i = 0; i < images.length; i += 256) {
    const x = stack(images.slice(i, i + 256), S);
    try {
      out.set(tok.encodeCodes(x), i * Q);
    } finally {
      x.dispose();
    }
  }
  return out;
}

/** Images of codes through the de-tokenizer's generation embedding and the pixel decoder, clipped to [0, 1]. */
function drawCodes(tok: SeedTokenizer, dec: ImageDecoder, codes: Int32Array, n: number, S: number): Float32Array[] {
  const Q = tok.numQueries;
  const per = S * S * 3;
  const out: Float32Array[] = [];
  for (let i = 0; i < n; i += 256) {
    const m = Math.min(256, n - i);
    const t = tf.tidy(() => imageFromCodes(tok, dec, codes.subarray(i * Q, (i + m) * Q)).clipByValue(0, 1));
    const flat = t.dataSync() as Float32Array;
    t.dispose();
    for (let j = 0; j < m; j++) out.push(flat.slice(j * per, (j + 1) * per));
  }
  return out;
}

/** SEED's arm: the causal-code tokenizer + pixel decoder, and one LM over words + codes, at the lab's budget. */
export const seedArm: ImageTokenArmFactory = async (opts: ImageTokenArmOptions): Promise<ImageTokenArm> => {
  checkOptions(opts);
  const recipe = seedArmRecipe(opts.recipe);
  const { data, seed, dir } = opts;
  const log = opts.log ?? (() => {});
  const S = data.imageSize;
  const per = S * S * 3;
  mkdirSync(dir, { recursive: true });

  // ---- 0. data: attribute labels parsed from the captions, one word tokenizer for the Q-Former and the LM
  const words = WordTokenizer.fromText([...data.train.captions, ...data.evalCaptions]);
  const ignoreUnnamed = recipe.tokenizer.unnamedSize === 'ignore';
  const train: SeedItem[] = data.train.images.map((image, i) => {
    const caption = data.train.captions[i] as string;
    // the stage-I key keeps "not named" apart either way (the same in-batch negatives)
    const key = captionLabels(caption).join('/');
    return { image, caption, key, labels: captionLabels(caption, recipe.tokenizer.unnamedSize) };
  });
  const allCaps = [...data.train.captions, ...data.evalCaptions];
  const textLen = 1 + Math.max(...allCaps.map((c) => words.encode(c).length));
  // Only the class counts of this config are read (trainTokenizer): with unnamedSize 'class' the
  // size head gets one more class, "not named".
  const config = {
    imageSize: S,
    shapes: [...SHAPE_NAMES],
    colours: [...COLOUR_NAMES],
    sizes: ignoreUnnamed ? [...SIZE_NAMES] : [...SIZE_NAMES, 'unnamed'],
  } as unknown as ShapesConfig;
  const seedData: SeedData = {
    imageSize: S,
    config,
    train,
    seen: [],
    heldOut: [],
    trainKeys: new Set(train.map((d) => d.key)).size,
    tokenizer: words,
    textLen,
  };

  // ---- 1. the SEED tokenizer and the pixel decoder
  const base = seedPreset(recipe.tokenizer.preset);
  const cfg: SeedConfig = seedConfig({
    ...base,
    vit: { ...base.vit, imageSize: S },
    qformer: { ...base.qformer, vocabSize: words.vocabSize, maxTextLen: Math.max(base.qformer.maxTextLen, textLen) },
    seed,
  });
  const decCfg = imageDecoderConfig({ ...imageDecoderPreset(recipe.tokenizer.preset), imageSize: S });
  const steps = splitSteps(opts.tokenizerSteps, recipe.tokenizer.split);
  const B = recipe.tokenizer.batchSize ?? opts.batchSize;
  const phase = (i: number) => {
    const n = steps[i] as number;
    return {
      steps: n,
      batchSize: B,
      lr: recipe.tokenizer.lr[i] as number,
      warmup: Math.min(100, Math.floor(n * recipe.tokenizer.warmupFraction)),
      weightDecay: 0.05,
    };
  };
  const tRecipe: Recipe = { vit: phase(0), stage1: phase(1), stage2: phase(2) };
  const pRecipe: PixelRecipe = { decoder: phase(3), finetune: phase(4), maxShift: recipe.tokenizer.maxShift, l1: 0 };
  const nTrain = train.length;
  const tKey = fingerprint({
    cfg,
    decCfg,
    tRecipe,
    pRecipe,
    nTrain,
    seed,
    first: Array.from(data.train.images[0]!.subarray(0, 16)),
    cap: data.train.captions[0],
  });
  const tMarker = join(dir, 'tokenizer.json');
  if (!finished(tMarker, tKey)) {
    // an interrupted run resumes its sub-runs only when it was started with the same settings
    const pending = join(dir, 'tokenizer.pending.json');
    if (existsSync(pending)) finished(pending, tKey);
    else if (existsSync(join(dir, 'subruns'))) fail(`${dir}/subruns holds a tokenizer run of unknown settings; use an empty dir`);
    writeFileAtomicSync(pending, JSON.stringify({ key: tKey }));
  }
  const metricsPath = join(dir, 'metrics.jsonl');
  const silent = (): ProgressHandle => ({ tick: () => {}, done: () => {} });
  const ctx: ExperimentContext = {
    experimentId: 'seed.image-token-arm',
    preset: recipe.tokenizer.preset,
    seed,
    backend: tf.getBackend(),
    outDir: dir,
    log,
    progress: opts.progress ?? silent,
    metric: (r) => appendFileSync(metricsPath, `${JSON.stringify(r)}\n`),
    subrun: makeSubrun({
      dir,
      log,
      progress: (name, total) => (total > 0 && opts.progress ? opts.progress(name, total) : silent()),
      metric: (r) => appendFileSync(metricsPath, `${JSON.stringify(r)}\n`),
    }),
  };
  const trained = await trainTokenizer(ctx, seedData, cfg, tRecipe, seed);
  const tok = trained.model;
  let dec: ImageDecoder;
  let codesTrain: Int32Array;
  // the tokenizer phases are sub-runs: a reused one carries the seconds it took when it ran
  let tSeconds = trained.vit.seconds + trained.stage1.seconds + trained.stage2.seconds;
  try {
    const emb = pixelEmbeddings(tok, seedData, train, seed);
    codesTrain = emb.codes;
    try {
      const px = await trainPixelDecoder(ctx, seedData, tok, decCfg, pRecipe, seed, emb);
      px.groundTruthDecoder.dispose();
      dec = px.decoder;
      tSeconds += px.decoderPhase.seconds + px.finetunePhase.seconds;
    } finally {
      tf.dispose([emb.target, emb.predicted]);
    }
    writeFileAtomicSync(tMarker, JSON.stringify({ key: tKey, steps }));
  } catch (e) {
    tok.dispose();
    throw e;
  }
  const Q = tok.numQueries;
  const K = cfg.quantizer.numCodes;
  log(
    `seed-causal-codes: tokenizer phases ${PHASES.map((p, i) => `${p} ${steps[i]}`).join(', ')} steps; ViT attribute accuracy (train) ${trained.vit.extra.accuracyTrain?.toFixed(3)}; ${Q} codes of K = ${K} per image`,
  );

  // ---- 2. the unified LM
  const V = words.vocabSize;
  const vocab: SeedArmVocab = {
    textVocabSize: V,
    numCodes: K,
    tokensPerImage: Q,
    codeOffset: V,
    img: V + K,
    endImg: V + K + 1,
    uncond: V + K + 2,
    bos: words.specialId('<bos>'),
    eos: words.specialId('<eos>'),
    pad: words.specialId('<pad>'),
    size: V + K + 3,
  };
  const maxCaption = Math.max(...allCaps.map((c) => words.encode(c).length));
  const maxNewTokens = maxCaption + 1;
  const seqLen = 1 + maxCaption + 1 + Q + 2; // the longest training sequence (either direction)
  const bb = recipe.backbone;
  const lmCfg = {
    vocabSize: vocab.size,
    dim: opts.backbone.dim,
    numLayers: opts.backbone.numLayers,
    numHeads: opts.backbone.numHeads,
    maxSeqLen: seqLen + 1,
    mlp: 'swiglu' as const,
    norm: 'rmsnorm' as const,
    bias: false,
    pos: 'rope' as const,
    tieEmbeddings: false,
    initStd: 0.02,
    dropout: bb.dropout,
    seed,
  };
  let model: TransformerDecoder;
  try {
    model = new TransformerDecoder(lmCfg);
  } catch (e) {
    tok.dispose();
    dec.dispose();
    throw e;
  }
  const bSteps = opts.backboneSteps;
  const warmup = Math.min(100, Math.floor(bSteps * bb.warmupFraction));
  const lrOf = warmupCosine({ peak: bb.lr, min: bb.lr * 0.1, warmup: Math.min(warmup, Math.max(1, bSteps)), total: Math.max(1, bSteps) });
  const bBatch = opts.backboneBatchSize ?? opts.batchSize;
  const bKey = fingerprint({ tKey, lmCfg, bSteps, bb, batch: bBatch, captionFraction: opts.captionFraction });
  const bMarker = join(dir, 'backbone.json');
  let bSeconds: number | null;
  try {
    const done = finished(bMarker, bKey);
    if (done) {
      bSeconds = done.trainSeconds;
      await loadModule(join(dir, 'backbone.safetensors'), model);
      log(`seed-causal-codes: loaded the trained backbone from ${dir}`);
    } else {
      const rng = new Rng(seed).fork('seed-arm-backbone-batches');
      const opt = new AdamW(paramGroups(model), { lr: bb.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: bb.weightDecay });
      const bar = bSteps > 0 && opts.progress ? opts.progress('backbone', bSteps) : null;
      const capIds = data.train.captions.map((c) => words.encode(c));
      model.train();
      const bRun =
        bSteps > 0
          ? await trainLoop({
              steps: bSteps,
              model,
              optimizer: opt,
              rng,
              rngs: model.rngs(),
              checkpointDir: join(dir, 'backbone-ckpt'),
              checkpointEvery: 100,
              resume: true,
              progress: 'none',
              name: 'seed-causal-codes backbone',
              log,
              lr: (t) => lrOf(t - 1),
              step: (t) => {
                const rows: { ids: number[]; labels: number[] }[] = [];
                for (let b = 0; b < bBatch; b++) {
                  const i = rng.int(0, nTrain);
                  const codes = codesTrain.subarray(i * Q, (i + 1) * Q);
                  const cap = capIds[i] as number[];
                  if (rng.uniform() < opts.captionFraction) rows.push(i2tSequence(vocab, cap, codes));
                  else rows.push(t2iSequence(vocab, rng.uniform() < bb.uncondProb ? null : cap, codes));
                }
                const T = Math.max(...rows.map((r) => r.ids.length));
                const ids = new Int32Array(rows.length * T).fill(vocab.pad);
                const labels = new Int32Array(rows.length * T).fill(IGNORE);
                rows.forEach((r, b) => {
                  ids.set(r.ids, b * T);
                  labels.set(r.labels, b * T);
                });
                const x = tf.tensor2d(ids, [rows.length, T], 'int32');
                const y = tf.tensor2d(labels, [rows.length, T], 'int32');
                try {
                  const { loss, grads } = valueAndGrads(model, () =>
                    tf.tidy(() => {
                      const logits = model.forward(x.slice([0, 0], [rows.length, T - 1])); // [B, T-1, V]
                      return crossEntropy(logits, y.slice([0, 1], [rows.length, T - 1]), { ignoreIndex: IGNORE });
                    }),
                  );
                  const norm = clipGradNorm(grads, bb.gradClip);
                  opt.setLr(lrOf(t - 1));
                  opt.step(grads);
                  const l = loss.dataSync()[0] as number;
                  tf.dispose([loss, norm, ...grads.values()]);
                  return l;
                } finally {
                  x.dispose();
                  y.dispose();
                }
              },
              onStep: (t, loss) => bar?.tick(t, { loss }),
            })
          : null;
      bar?.done();
      opt.dispose();
      // SIGINT stops trainLoop after a step with a checkpoint: never save an unfinished phase as done
      if (bRun?.interrupted)
        throw new Error(
          `seed-causal-codes: backbone training interrupted after step ${bRun.step} of ${bSteps}; run again to resume from ${dir}`,
        );
      await saveModule(join(dir, 'backbone.safetensors'), model);
      bSeconds = bRun ? bRun.trainSeconds : 0;
      writeFileAtomicSync(bMarker, JSON.stringify({ key: bKey, steps: bSteps, trainSeconds: bSeconds }));
    }
  } catch (e) {
    tok.dispose();
    dec.dispose();
    model.dispose();
    throw e;
  }
  model.eval();

  const headParams = model.head ? model.head.weight.size : 0;
  let disposed = false;
  const alive = (who: string) => {
    if (disposed) fail(`${who} called after dispose()`);
  };
  const checkImages = (who: string, images: Float32Array[]) => {
    if (!Array.isArray(images)) fail(`${who}: images must be an array of Float32Array, got ${typeof images}`);
    images.forEach((im, i) => {
      if (!(im instanceof Float32Array) || im.length !== per)
        fail(`${who}: images[${i}] must be a Float32Array of ${S} x ${S} x 3 = ${per} values, got ${im?.length ?? typeof im}`);
    });
  };

  /** Q codes per prompt (caption word ids), CFG with the `<uncond>` prompt, KV cache; codes in [0, K). */
  const sampleCodes = (prompts: number[][], s: number, temperature: number, rng: Rng): Int32Array[] =>
    sampleSpan(
      model,
      prompts.map((p) => [vocab.bos, ...p, vocab.img]),
      {
        steps: Q,
        padId: vocab.pad,
        cfgScale: s,
        uncond: prompts.map(() => [vocab.bos, vocab.uncond, vocab.img]),
        sample: {
          temperature,
          topK: recipe.sampling.topK,
          topP: recipe.sampling.topP,
          allowed: { ranges: [[vocab.codeOffset, vocab.codeOffset + K]] },
          rng,
        },
      },
    ).map((row) => row.map((id) => id - vocab.codeOffset));

  /** Greedy caption word ids (codes and image ids masked) until `<eos>`, KV cache. */
  const greedyCaptions = (codes: Int32Array, n: number): number[][] => {
    const L = Q + 3;
    const prompts = Array.from({ length: n }, (_, b) => [
      vocab.bos,
      vocab.img,
      ...Array.from(codes.subarray(b * Q, (b + 1) * Q), (k) => vocab.codeOffset + k),
      vocab.endImg,
    ]);
    return sampleUntil(model, prompts, {
      maxNewTokens: Math.min(maxNewTokens, lmCfg.maxSeqLen - L + 1),
      stopId: vocab.eos,
      sample: { temperature: 0, allowed: { ranges: [[0, V]] } },
    });
  };

  return {
    name: 'seed-causal-codes',
    tokensPerImage: Q,
    description: `SEED: causal Q-Former tokenizer (${S} px -> ${Q} causal codes of K = ${K}; ViT pre-trained on caption-parsed attributes, ITC stage I, VQ + de-tokenizer stage II) with an MLP pixel decoder on the generation embedding; one LM over words + codes with a softmax head (dropout ${bb.dropout}, weight decay ${bb.weightDecay}); CFG s = ${recipe.sampling.cfgScale}, temperature ${recipe.sampling.temperature}`,
    parameterCounts: {
      tokenizer: tok.numParameters() + dec.numParameters(),
      backbone: model.numParameters() - headParams,
      head: headParams,
    },
    trainSeconds: bSeconds === null ? null : tSeconds + bSeconds,

    async reconstruct(images) {
      alive('reconstruct');
      checkImages('reconstruct', images);
      if (images.length === 0) return [];
      return drawCodes(tok, dec, encodeAll(tok, images, S), images.length, S);
    },

    async generate(captions, o) {
      alive('generate');
      if (!Array.isArray(captions)) fail(`generate: captions must be an array of strings, got ${typeof captions}`);
      if (!Number.isInteger(o?.seed)) fail(`generate: seed must be an integer, got ${o?.seed}`);
      const cfgScale = o.cfgScale ?? recipe.sampling.cfgScale;
      const temperature = o.temperature ?? recipe.sampling.temperature;
      if (!(Number.isFinite(cfgScale) && cfgScale > 0)) fail(`generate: cfgScale must be a finite number > 0, got ${cfgScale}`);
      if (!(Number.isFinite(temperature) && temperature >= 0))
        fail(`generate: temperature must be a finite number >= 0, got ${temperature}`);
      const headEvalsPerImage = cfgScale === 1 ? Q : 2 * Q;
      if (captions.length === 0) return { images: [], backboneStepsPerImage: Q, headEvalsPerImage };
      const prompts = captions.map((c, i) => {
        if (typeof c !== 'string') fail(`generate: captions[${i}] must be a string, got ${typeof c}`);
        const p = words.encode(c);
        if (p.length + 2 + Q > lmCfg.maxSeqLen)
          fail(
            `generate: captions[${i}] has ${p.length} words; with <bos>, <img> and ${Q} codes it needs ${p.length + 2 + Q} positions, more than the context of ${lmCfg.maxSeqLen}`,
          );
        return p;
      });
      const rng = new Rng(o.seed);
      const flat = new Int32Array(captions.length * Q);
      for (let i = 0; i < prompts.length; i += 32) {
        sampleCodes(prompts.slice(i, i + 32), cfgScale, temperature, rng).forEach((c, j) => flat.set(c, (i + j) * Q));
      }
      return { images: drawCodes(tok, dec, flat, captions.length, S), backboneStepsPerImage: Q, headEvalsPerImage };
    },

    async caption(images, o) {
      alive('caption');
      checkImages('caption', images);
      if (!Number.isInteger(o?.seed)) fail(`caption: seed must be an integer, got ${o?.seed}`);
      if (images.length === 0) return [];
      const codes = encodeAll(tok, images, S);
      const out: string[] = [];
      for (let i = 0; i < images.length; i += 32) {
        const n = Math.min(32, images.length - i);
        for (const ids of greedyCaptions(codes.subarray(i * Q, (i + n) * Q), n)) out.push(words.decode(ids, { skipSpecial: true }));
      }
      return out;
    },

    dispose() {
      if (disposed) return;
      disposed = true;
      tok.dispose();
      dec.dispose();
      model.dispose();
    },
  };
};
