/**
 * Liquid's arm of the lab's "image tokens: discrete vs continuous" comparison (core's
 * ImageTokenArmFactory): Liquid's recipe at the lab's budget.
 *   1. A VQ image tokenizer (conv encoder, 4x downsampling, K = 64 codes, straight-through,
 *      reconstruction + codebook + commitment losses) trained for `tokenizerSteps`, then frozen; the
 *      codes of every training image are extracted once and cached in `dir`.
 *   2. One decoder-only LM over a word vocabulary (data.train.captions + data.evalCaptions + Liquid's
 *      suffixes and caption instruction) extended by K codes + `<boi>`, `<eoi>`, `<unconditional>`,
 *      trained from scratch for `backboneSteps` with next-token cross-entropy on text-to-image
 *      examples (one of the ten suffixes, 10% unconditional) and, with probability `captionFraction`,
 *      captioning examples (Liquid's collator formats, brief 2.4). There is no text-only stage: every
 *      arm of the comparison gets the same budget.
 *   3. generate: CFG on logits (default s = 3; Liquid's evaluation default 7 is an option), text ids
 *      masked, temperature 0.99, top-k 4096, top-p 0.96, KV cache; one backbone forward step and one
 *      softmax-head evaluation per code (the conditional and unconditional rows run batched in the
 *      same step). caption: greedy text ids until `<eos>`.
 * Both training phases checkpoint into `dir` (core's trainLoop) and resume from there; a finished
 * phase is loaded, not rerun. The VQ's dead-code restart counters are not checkpointed, so a resumed
 * tokenizer phase is not bit-identical to an uninterrupted one (the backbone phase is).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModule, Rng, saveModule, stableHash32, type TransformerDecoder, tf, trainLoop, writeFileAtomicSync } from '@mmlm/core';
import type { ImageTextData, ImageTokenArm, ImageTokenArmFactory, ImageTokenArmOptions, ProgressHandle } from '@mmlm/core/experiment';
import { WordTokenizer } from '@mmlm/data';
import { decodeCodesToImages, extractCodes, loadCodeCache, saveCodeCache } from '../codes.js';
import { type Example, LiquidCollator } from '../collate.js';
import {
  CAPTION_INSTRUCTION,
  CollatorConfigSchema,
  EVAL_T2I_SUFFIX,
  type LMConfig,
  lmConfig,
  T2I_SUFFIXES,
  type TrainPhase,
  TrainPhaseSchema,
} from '../config.js';
import { buildImagePositionLM, buildLM, headWeight, type LiquidVocab, liquidVocab, VQTokenizer } from '../model.js';
import { captionImages, generateImageCodes } from '../sample.js';
import { lmTrainStep, lrAt, makeOptimizer, tokenizerTrainStep } from '../train.js';
import { armTokenizerConfig, type LiquidArmRecipe, type LiquidArmRecipeInput, LiquidArmRecipeSchema, liquidArmRecipe } from './recipe.js';

function fail(msg: string): never {
  throw new Error(`liquid imageTokenArm: ${msg}`);
}

function checkOptions(o: ImageTokenArmOptions): void {
  const d = o.data as ImageTextData | undefined;
  if (!d || typeof d !== 'object') fail(`data must be {imageSize, train, evalCaptions}, got ${typeof d}`);
  const S = d.imageSize;
  if (!Number.isInteger(S) || S < 4 || S % 4 !== 0) fail(`data.imageSize must be a positive multiple of 4 (4x downsampling), got ${S}`);
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
  try {
    lmConfig({ dim: b.dim, numLayers: b.numLayers, numHeads: b.numHeads });
  } catch (e) {
    fail(`backbone ${JSON.stringify(b)}: ${(e as Error).message}`);
  }
  for (const k of ['tokenizerSteps', 'backboneSteps'] as const)
    if (!Number.isInteger(o[k]) || o[k] < 0) fail(`${k} must be an integer >= 0, got ${o[k]}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) fail(`batchSize must be a positive integer, got ${o.batchSize}`);
  if (o.backboneBatchSize !== undefined && (!Number.isInteger(o.backboneBatchSize) || o.backboneBatchSize < 1))
    fail(`backboneBatchSize must be a positive integer, got ${o.backboneBatchSize}`);
  if (!(o.captionFraction >= 0 && o.captionFraction <= 1)) fail(`captionFraction must be in [0, 1], got ${o.captionFraction}`);
  if (!Number.isInteger(o.seed)) fail(`seed must be an integer, got ${o.seed}`);
  if (typeof o.dir !== 'string' || o.dir === '') fail(`dir must be a folder path, got ${JSON.stringify(o.dir)}`);
}

/** A phase's warmup and cosine decay at the arm's budget (Liquid's recipe scaled down). */
function phaseOf(steps: number, batchSize: number, lr: number, weightDecay = 0, warmupFraction = 0.1): TrainPhase {
  return TrainPhaseSchema.parse({
    steps,
    batchSize,
    lr,
    warmup: Math.min(100, Math.floor(steps * warmupFraction)),
    minLrRatio: 0.1,
    weightDecay,
  });
}

/** The settings key of a phase's marker (core's stableHash32 of the JSON). */
function fingerprint(x: unknown): string {
  return stableHash32(JSON.stringify(x)).toString(16);
}

/**
 * Reads a finished phase's marker (null: not finished); a marker written for other settings is an
 * error (not silently reused). `trainSeconds` is null in a marker written before it was recorded.
 */
function finished(path: string, key: string): { trainSeconds: number | null } | null {
  if (!existsSync(path)) return null;
  const m = JSON.parse(readFileSync(path, 'utf8')) as { key?: string; trainSeconds?: unknown };
  if (m.key !== key)
    fail(`${path} was written for other settings (fingerprint ${m.key}, expected ${key}); use an empty dir for a new configuration`);
  return { trainSeconds: typeof m.trainSeconds === 'number' ? m.trainSeconds : null };
}

/** Seconds of a phase's trainLoop (0 steps: none); null when unknown. */
const phaseSeconds = (run: { trainSeconds: number | null } | null): number | null => (run ? run.trainSeconds : 0);

/** The sum of the phases' seconds, null when one is unknown. */
const sumSeconds = (xs: (number | null)[]): number | null => (xs.some((x) => x === null) ? null : xs.reduce<number>((a, x) => a + x!, 0));

function progressBridge(o: ImageTokenArmOptions, name: string, total: number): ProgressHandle | null {
  return total > 0 && o.progress ? o.progress(name, total) : null;
}

/** Liquid's arm: a VQ tokenizer and one LM with an extended vocabulary, trained at the lab's budget. */
export const imageTokenArm: ImageTokenArmFactory = async (opts: ImageTokenArmOptions): Promise<ImageTokenArm> => {
  checkOptions(opts);
  const recipe = liquidArmRecipe(opts.recipe);
  const { data, seed, dir } = opts;
  const log = opts.log ?? (() => {});
  const S = data.imageSize;
  const per = S * S * 3;
  mkdirSync(dir, { recursive: true });

  // ---- 1. the VQ tokenizer, trained then frozen; codes extracted once
  const tcfg = armTokenizerConfig(S, seed, recipe);
  const vq = new VQTokenizer(tcfg);
  const tPhase = phaseOf(opts.tokenizerSteps, opts.batchSize, recipe.tokenizer.lr);
  const N = vq.tokensPerImage;
  const nTrain = data.train.images.length;
  const tKey = fingerprint({ tcfg, tPhase, nTrain, seed, first: Array.from(data.train.images[0]!.subarray(0, 16)) });
  const tDone = join(dir, 'tokenizer.json');
  let codesTrain: Int32Array;
  let tSeconds: number | null;
  try {
    const tMarker = finished(tDone, tKey);
    if (tMarker) {
      tSeconds = tMarker.trainSeconds;
      await loadModule(join(dir, 'tokenizer.safetensors'), vq);
      codesTrain = (await loadCodeCache(join(dir, 'codes-train.safetensors'), { tokensPerImage: N, numCodes: vq.numCodes })).codes;
      if (codesTrain.length !== nTrain * N)
        fail(`${dir}/codes-train.safetensors holds ${codesTrain.length / N} images, expected ${nTrain}`);
      log(`liquid-vq: loaded the frozen tokenizer and ${nTrain} cached code sequences from ${dir}`);
    } else {
      const opt = makeOptimizer(vq, tPhase);
      const rng = new Rng(seed).fork('liquid-arm-tokenizer-batches');
      const bar = progressBridge(opts, 'tokenizer', tPhase.steps);
      const buf = new Float32Array(opts.batchSize * per);
      vq.train();
      // 0 steps: the untrained tokenizer (trainLoop needs >= 1 step)
      const tRun =
        tPhase.steps > 0
          ? await trainLoop({
              steps: tPhase.steps,
              model: vq,
              optimizer: opt,
              rng,
              checkpointDir: join(dir, 'tokenizer-ckpt'),
              checkpointEvery: 100,
              resume: true,
              progress: 'none',
              name: 'liquid-vq tokenizer',
              log,
              lr: (t) => lrAt(tPhase, t - 1),
              step: (t) => {
                for (let b = 0; b < opts.batchSize; b++) buf.set(data.train.images[rng.int(0, nTrain)]!, b * per);
                const x = tf.tidy(() => tf.tensor4d(buf, [opts.batchSize, S, S, 3]).mul(2).sub(1)); // [B, S, S, 3] in [-1, 1]
                try {
                  return tokenizerTrainStep(vq, opt, x, t - 1, tPhase).loss;
                } finally {
                  x.dispose();
                }
              },
              onStep: (t, loss) => bar?.tick(t, { loss }),
            })
          : null;
      bar?.done();
      opt.dispose();
      // SIGINT stops trainLoop after a step with a checkpoint: never save an unfinished phase as done
      if (tRun?.interrupted)
        throw new Error(
          `liquid-vq: tokenizer training interrupted after step ${tRun.step} of ${tPhase.steps}; run again to resume from ${dir}`,
        );
      vq.eval();
      codesTrain = extractCodes(vq, stackImages(data.train.images, per));
      await saveModule(join(dir, 'tokenizer.safetensors'), vq);
      await saveCodeCache(join(dir, 'codes-train.safetensors'), {
        codes: codesTrain,
        tokensPerImage: N,
        numCodes: vq.numCodes,
        metadata: {},
      });
      tSeconds = phaseSeconds(tRun);
      writeFileAtomicSync(tDone, JSON.stringify({ key: tKey, steps: tPhase.steps, trainSeconds: tSeconds }));
    }
  } catch (e) {
    vq.dispose();
    throw e;
  }
  vq.eval();

  // ---- 2. the word vocabulary and the unified LM
  const words = WordTokenizer.fromText([...data.train.captions, ...data.evalCaptions, ...T2I_SUFFIXES, CAPTION_INSTRUCTION]);
  const vocab: LiquidVocab = liquidVocab({
    textVocabSize: words.vocabSize,
    numCodes: vq.numCodes,
    tokensPerImage: N,
    bos: words.specialId('<bos>'),
    eos: words.specialId('<eos>'),
    pad: words.specialId('<pad>'),
  });
  const instruction = words.encode(CAPTION_INSTRUCTION);
  const longestSuffix = Math.max(...T2I_SUFFIXES.map((s) => words.encode(s).length));
  const capLens = [...data.train.captions, ...data.evalCaptions].map((c) => words.encode(c).length);
  const maxCaption = Math.max(...capLens);
  const maxNewTokens = maxCaption + 1;
  const t2iLen = 1 + maxCaption + longestSuffix + 1 + N + 2;
  const i2tLen = 2 + N + 1 + instruction.length + maxCaption + 1;
  const lm: LMConfig = lmConfig({
    textVocabSize: words.vocabSize,
    dim: opts.backbone.dim,
    numLayers: opts.backbone.numLayers,
    numHeads: opts.backbone.numHeads,
    maxSeqLen: Math.max(t2iLen, i2tLen + 1),
    dropout: recipe.backbone.dropout,
    seed,
  });
  const bb = recipe.backbone;
  const bPhase = phaseOf(opts.backboneSteps, opts.backboneBatchSize ?? opts.batchSize, bb.lr, bb.weightDecay, bb.warmupFraction);
  const model: TransformerDecoder = bb.imagePositions ? buildImagePositionLM(lm, vocab, seed) : buildLM(lm, vocab.size, seed);
  // imagePositions joins the key only when on, so the keys of earlier runs still match
  const bKey = fingerprint({
    tKey,
    lm,
    bPhase,
    vocab,
    captionFraction: opts.captionFraction,
    ...(bb.imagePositions ? { imagePositions: true } : {}),
  });
  const bDone = join(dir, 'backbone.json');
  let bSeconds: number | null;
  try {
    const bMarker = finished(bDone, bKey);
    if (bMarker) {
      bSeconds = bMarker.trainSeconds;
      await loadModule(join(dir, 'backbone.safetensors'), model);
      log(`liquid-vq: loaded the trained backbone from ${dir}`);
    } else {
      const rng = new Rng(seed).fork('liquid-arm-backbone-batches');
      const collatorRng = new Rng(seed).fork('liquid-arm-collator');
      const collator = new LiquidCollator(words, vocab, CollatorConfigSchema.parse({}), lm.maxSeqLen, collatorRng);
      const opt = makeOptimizer(model, bPhase);
      const bar = progressBridge(opts, 'backbone', bPhase.steps);
      model.train();
      const bRun =
        bPhase.steps > 0
          ? await trainLoop({
              steps: bPhase.steps,
              model,
              optimizer: opt,
              rng,
              rngs: { collator: collatorRng, ...model.rngs() },
              checkpointDir: join(dir, 'backbone-ckpt'),
              checkpointEvery: 100,
              resume: true,
              progress: 'none',
              name: 'liquid-vq backbone',
              log,
              lr: (t) => lrAt(bPhase, t - 1),
              step: (t) => {
                const examples: Example[] = [];
                for (let b = 0; b < bPhase.batchSize; b++) {
                  const i = rng.int(0, nTrain);
                  const codes = codesTrain.subarray(i * N, (i + 1) * N);
                  const caption = data.train.captions[i]!;
                  examples.push(rng.uniform() < opts.captionFraction ? collator.i2t(caption, codes) : collator.t2i(caption, codes));
                }
                return lmTrainStep(model, opt, collator.collate(examples), t - 1, bPhase).loss;
              },
              onStep: (t, loss) => bar?.tick(t, { loss }),
            })
          : null;
      bar?.done();
      opt.dispose();
      if (bRun?.interrupted)
        throw new Error(
          `liquid-vq: backbone training interrupted after step ${bRun.step} of ${bPhase.steps}; run again to resume from ${dir}`,
        );
      await saveModule(join(dir, 'backbone.safetensors'), model);
      bSeconds = phaseSeconds(bRun);
      writeFileAtomicSync(bDone, JSON.stringify({ key: bKey, steps: bPhase.steps, trainSeconds: bSeconds }));
    }
  } catch (e) {
    vq.dispose();
    model.dispose();
    throw e;
  }
  model.eval();

  const headParams = headWeight(model).size;
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
  const split = (flat: Float32Array, n: number) => Array.from({ length: n }, (_, i) => flat.slice(i * per, (i + 1) * per));

  return {
    name: 'liquid-vq',
    tokensPerImage: N,
    description: `Liquid: VQ tokenizer (${S} px -> ${vq.gridSize}x${vq.gridSize} codes of K = ${vq.numCodes}, conv encoder/decoder, ${recipe.tokenizer.kmeansInit ? 'k-means init, ' : ''}${recipe.tokenizer.emaDecay === null ? 'gradient' : 'EMA'} codebook), one LM over words + codes${recipe.backbone.imagePositions ? ' (+ learned image-position embeddings)' : ''} with a softmax head (dropout ${recipe.backbone.dropout}, weight decay ${recipe.backbone.weightDecay}); CFG s = ${recipe.sampling.cfgScale}, temperature ${recipe.sampling.temperature}`,
    parameterCounts: { tokenizer: vq.numParameters(), backbone: model.numParameters() - headParams, head: headParams },
    trainSeconds: sumSeconds([tSeconds, bSeconds]),

    async reconstruct(images) {
      alive('reconstruct');
      checkImages('reconstruct', images);
      if (images.length === 0) return [];
      const codes = extractCodes(vq, stackImages(images, per));
      return split(decodeCodesToImages(vq, codes), images.length);
    },

    async generate(captions, o) {
      alive('generate');
      if (!Array.isArray(captions)) fail(`generate: captions must be an array of strings, got ${typeof captions}`);
      if (!Number.isInteger(o?.seed)) fail(`generate: seed must be an integer, got ${o?.seed}`);
      const cfgScale = o.cfgScale ?? recipe.sampling.cfgScale;
      const temperature = o.temperature ?? recipe.sampling.temperature;
      // with CFG every step runs a conditional and an unconditional row (batched): 2 head evaluations per code
      const headEvalsPerImage = cfgScale === 1 ? N : 2 * N;
      if (captions.length === 0) return { images: [], backboneStepsPerImage: N, headEvalsPerImage };
      const prompts = captions.map((c, i) => {
        if (typeof c !== 'string') fail(`generate: captions[${i}] must be a string, got ${typeof c}`);
        return words.encode(c + EVAL_T2I_SUFFIX);
      });
      const codes = generateImageCodes(model, vocab, prompts, {
        cfgScale,
        temperature,
        topK: recipe.sampling.topK,
        topP: recipe.sampling.topP,
        rng: new Rng(o.seed),
        batchSize: 32,
      });
      const flat = new Int32Array(codes.length * N);
      codes.forEach((c, i) => flat.set(c, i * N));
      return { images: split(decodeCodesToImages(vq, flat), captions.length), backboneStepsPerImage: N, headEvalsPerImage };
    },

    async caption(images, o) {
      alive('caption');
      checkImages('caption', images);
      if (!Number.isInteger(o?.seed)) fail(`caption: seed must be an integer, got ${o?.seed}`);
      if (images.length === 0) return [];
      const codes = extractCodes(vq, stackImages(images, per));
      const out: string[] = [];
      for (let i = 0; i < images.length; i += 32) {
        const chunk = Array.from({ length: Math.min(32, images.length - i) }, (_, j) => codes.subarray((i + j) * N, (i + j + 1) * N));
        for (const ids of captionImages(model, vocab, chunk, instruction, { maxNewTokens }))
          out.push(words.decode(ids, { skipSpecial: true }));
      }
      return out;
    },

    dispose() {
      if (disposed) return;
      disposed = true;
      vq.dispose();
      model.dispose();
    },
  };
};

function stackImages(images: readonly Float32Array[], per: number): Float32Array {
  const out = new Float32Array(images.length * per);
  images.forEach((im, i) => out.set(im, i * per));
  return out;
}

export { armTokenizerConfig, type LiquidArmRecipe, type LiquidArmRecipeInput, LiquidArmRecipeSchema, liquidArmRecipe };
