/**
 * The SEED tokenizer recipe on procedural Shapes (brief 1.8.2), shared by the experiments:
 *
 *   data     @mmlm/data `seenHeldOutSets`: 16 px images with one object (shape x colour x size), the
 *            training images, **seen** (new renders of attribute combinations among the training
 *            images) and **held-out** (combinations no training image has) evaluation sets; the
 *            caption of an image is its `sizes` template ("a large red triangle"), the one template
 *            that names every attribute, tokenized by a WordTokenizer with `<bos>` as BERT's CLS.
 *   phase 0  `vit`: the ViT stand-in for EVA-CLIP is pre-trained as an attribute classifier (shape,
 *            colour, size heads on its mean token; `VitAttributeClassifier`), then frozen.
 *   phase 1  `stage1`: Causal Q-Former, ITC of the last query against the text branch's CLS, label
 *            smoothing 0.1, learnable tau from 0.07; each batch holds distinct attribute combinations
 *            (no false negatives among the in-batch negatives).
 *   phase 2  `stage2`: the Q-Former frozen; encode_task_layer -> VQ -> de-tokenizer, 5 vq + 2 rec +
 *            0.5 gen, where the generation target (CLIP-H's image embedding in SEED-2) is a fixed
 *            random projection of the pixels (brief 1.8.2).
 *
 * Each phase is a resumable sub-run that saves the whole tokenizer; its losses go to metrics.jsonl
 * tagged with the phase's name.
 */
import { join } from 'node:path';
import { AdamW, loadModule, Rng, saveModule, tf, valueAndGrads, warmupCosine } from '@mmlm/core';
import { type ExperimentContext, runSteps } from '@mmlm/core/experiment';
import { type ShapesConfig, type ShapesSample, seenHeldOutSets, WordTokenizer } from '@mmlm/data';
import { z } from 'zod';
import { type PresetName, preset, type SeedConfig } from '../config.js';
import { clampTemperature, SeedTokenizer, stage1Loss, stage2Losses } from '../tokenizer.js';
import { VitAttributeClassifier, vitPretrainStep } from '../train.js';

/** One Shapes image with its full caption, scene key and attribute labels. */
export interface SeedItem {
  /** [S * S * 3], HWC, pixels in [0, 1]. */
  image: Float32Array;
  /** The `sizes` caption, e.g. "a large red triangle". */
  caption: string;
  /** The scene key (shape, colour, size, cell): two items with one key are the same attribute combination. */
  key: string;
  /** Indices of shape, colour and size in the config's lists. */
  labels: [number, number, number];
}

export interface SeedData {
  imageSize: number;
  config: ShapesConfig;
  train: SeedItem[];
  seen: SeedItem[];
  heldOut: SeedItem[];
  /** Distinct keys among the training images. */
  trainKeys: number;
  tokenizer: WordTokenizer;
  /** Text length fed to the Q-Former: `<bos>` plus the longest caption's words. */
  textLen: number;
}

export const SizesSchema = z.strictObject({
  /** Training images (items 0 .. train - 1 of the Shapes train split). */
  train: z.number().int().positive(),
  /** Images in each of the seen and held-out evaluation sets. */
  evalPrompts: z.number().int().positive(),
});

/** One training phase: steps, batch, AdamW's peak lr, warmup and weight decay. */
export const PhaseSchema = z.strictObject({
  steps: z.number().int().nonnegative(),
  batchSize: z.number().int().min(2),
  /** Peak AdamW lr (linear warmup over `warmup` steps, cosine to lr / 10). */
  lr: z.number().positive(),
  warmup: z.number().int().nonnegative().default(0),
  weightDecay: z.number().nonnegative().default(0.05),
});
export type Phase = z.infer<typeof PhaseSchema>;

export const RecipeSchema = z.strictObject({
  vit: PhaseSchema,
  stage1: PhaseSchema,
  stage2: PhaseSchema,
});
export type Recipe = z.infer<typeof RecipeSchema>;

function captionOf(s: ShapesSample): string {
  return s.captions.find((c) => c.template === 'sizes')?.text ?? s.caption;
}

/** Training images and the seen / held-out evaluation sets (`seenHeldOutSets`, one object per image), with the word tokenizer. */
export function seedData(o: { imageSize: number; train: number; evalPrompts: number; seed: number }): SeedData {
  const sets = seenHeldOutSets(
    { seed: o.seed, imageSize: o.imageSize, minObjects: 1, maxObjects: 1 },
    { train: o.train, seen: o.evalPrompts, heldOut: o.evalPrompts },
  );
  const c = sets.config;
  const item = (s: ShapesSample): SeedItem => {
    const ob = s.scene.objects[0];
    if (!ob || s.scene.objects.length !== 1) throw new Error(`seedData: expected one object per image, got ${s.scene.objects.length}`);
    return {
      image: s.image,
      caption: captionOf(s),
      key: s.key,
      labels: [c.shapes.indexOf(ob.shape), c.colours.indexOf(ob.colour), c.sizes.indexOf(ob.size)],
    };
  };
  const train = sets.train.map(item);
  const seen = sets.seen.map(item);
  const heldOut = sets.heldOut.map(item);
  const all = [...train, ...seen, ...heldOut];
  const tokenizer = WordTokenizer.fromText(all.map((d) => d.caption));
  const textLen = 1 + Math.max(...all.map((d) => tokenizer.encode(d.caption).length));
  return { imageSize: o.imageSize, config: c, train, seen, heldOut, trainKeys: sets.trainKeys.size, tokenizer, textLen };
}

/** The tokenizer config of a preset for this data: the Q-Former's vocabulary and text length set from the word tokenizer. */
export function seedTokenizerConfig(presetName: PresetName, data: SeedData, seed: number): SeedConfig {
  const cfg = preset(presetName);
  if (cfg.vit.imageSize !== data.imageSize)
    throw new Error(`seedTokenizerConfig: preset ${presetName} takes ${cfg.vit.imageSize} px images, the data has ${data.imageSize} px`);
  cfg.qformer.vocabSize = data.tokenizer.vocabSize;
  cfg.qformer.maxTextLen = Math.max(cfg.qformer.maxTextLen, data.textLen);
  cfg.seed = seed;
  return cfg;
}

/** Caption token ids [N, L] (`<bos>` first, padded with `<pad>`) and the keep mask [N, L]. */
export function textBatch(data: SeedData, captions: readonly string[]): { ids: tf.Tensor2D; keep: tf.Tensor2D } {
  const L = data.textLen;
  const bos = data.tokenizer.specialId('<bos>');
  const pad = data.tokenizer.specialId('<pad>');
  const ids = new Int32Array(captions.length * L).fill(pad);
  const keep = new Float32Array(captions.length * L);
  captions.forEach((c, i) => {
    const t = [bos, ...data.tokenizer.encode(c)];
    if (t.length > L) throw new Error(`textBatch: caption "${c}" has ${t.length} tokens with <bos>, more than ${L}`);
    t.forEach((id, j) => {
      ids[i * L + j] = id;
      keep[i * L + j] = 1;
    });
  });
  return { ids: tf.tensor2d(ids, [captions.length, L], 'int32'), keep: tf.tensor2d(keep, [captions.length, L]) };
}

/** Images [N, S, S, 3] of items. */
export function imageBatch(items: readonly SeedItem[], S: number): tf.Tensor4D {
  const per = S * S * 3;
  const buf = new Float32Array(items.length * per);
  items.forEach((d, i) => buf.set(d.image, i * per));
  return tf.tensor4d(buf, [items.length, S, S, 3]);
}

/**
 * The fixed random pixel projection standing in for CLIP-H's image embedding (brief 1.8.2): the
 * generation target of stage II is (pixels - 0.5) P, P ~ N(0, 1 / (S S 3)) of shape [S S 3, genDim].
 */
export function generationTarget(images: tf.Tensor, genDim: number, seed: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, S] = images.shape as [number, number];
    const n = S * S * 3;
    const P = new Rng(seed).fork('generation-target').randn([n, genDim], 0, 1 / Math.sqrt(n));
    return tf.matMul(images.reshape([B, n]).sub(0.5), P) as tf.Tensor2D;
  });
}

/** AdamW for a phase and its lr schedule (linear warmup over `warmup` steps, cosine to a tenth of the peak). */
export function phaseOptimizer(params: ConstructorParameters<typeof AdamW>[0], p: Phase): { opt: AdamW; lr: (t: number) => number } {
  const opt = new AdamW(params, { lr: p.lr, weightDecay: p.weightDecay });
  const lr = warmupCosine({ peak: p.lr, min: p.lr / 10, warmup: Math.min(p.warmup, p.steps), total: Math.max(1, p.steps) });
  return { opt, lr };
}

/** Batches of distinct keys (stage I: no two images of one attribute combination among the in-batch negatives). */
function distinctKeyBatch(byKey: readonly SeedItem[][], B: number, rng: Rng): SeedItem[] {
  const order = Array.from({ length: byKey.length }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order.slice(0, Math.min(B, byKey.length)).map((k) => {
    const g = byKey[k] as SeedItem[];
    return g[rng.int(0, g.length)] as SeedItem;
  });
}

function randomBatch(items: readonly SeedItem[], B: number, rng: Rng): SeedItem[] {
  return Array.from({ length: B }, () => items[rng.int(0, items.length)] as SeedItem);
}

export interface PhaseResult {
  /** The saved tokenizer (whole state dict) after this phase. */
  file: string;
  steps: number;
  /** Mean loss over the last 10% of steps (null when no step ran). */
  finalLoss: number | null;
  seconds: number;
  /** Phase-specific numbers (classifier accuracy, VQ usage, ...). */
  extra: Record<string, number>;
}

export interface TrainedTokenizer {
  model: SeedTokenizer;
  vit: PhaseResult;
  stage1: PhaseResult;
  stage2: PhaseResult;
  /** Attribute accuracy (all three right) of the frozen ViT classifier on the seen / held-out images. */
  vitAccuracy: { seen: number; heldOut: number };
}

const FILE = 'tokenizer.safetensors';

/**
 * Train the tokenizer through the three phases (resumable sub-runs `vit`, `stage1`, `stage2`), each
 * starting from the previous one's saved weights. The returned model is in stage 2, eval mode.
 */
export async function trainTokenizer(
  ctx: ExperimentContext,
  data: SeedData,
  cfg: SeedConfig,
  recipe: Recipe,
  seed: number,
): Promise<TrainedTokenizer> {
  const model = new SeedTokenizer(cfg);
  const S = data.imageSize;
  const c = data.config;
  const classes = [c.shapes.length, c.colours.length, c.sizes.length];
  const rng = new Rng(seed).fork('seed-batches');
  const load = async (name: string) => loadModule(join(ctx.outDir, 'subruns', name, FILE), model);

  // Phase 0: the ViT as an attribute classifier, then frozen.
  const clf = new VitAttributeClassifier(model.visual_encoder, classes, new Rng(seed).fork('vit-heads'));
  const labelTensors = (items: readonly SeedItem[]) =>
    [0, 1, 2].map((a) =>
      tf.tensor1d(
        items.map((d) => d.labels[a] as number),
        'int32',
      ),
    );
  const vit = await ctx.subrun('vit', async (dir, sub) => {
    const p = recipe.vit;
    model.visual_encoder.unfreeze();
    const { opt, lr } = phaseOptimizer(clf, p);
    const r = rng.fork('vit');
    clf.train();
    const s = runSteps({
      name: sub.name,
      steps: p.steps,
      step: (t) => {
        opt.lr = lr(t);
        const items = randomBatch(data.train, p.batchSize, r);
        const x = imageBatch(items, S);
        const y = labelTensors(items);
        try {
          return { loss: vitPretrainStep(clf, opt, x, y), lr: opt.lr };
        } finally {
          x.dispose();
          for (const t of y) t.dispose();
        }
      },
      progress: sub.progress(sub.name, p.steps),
      metric: (rec) => sub.metric(rec),
    });
    opt.dispose();
    model.setStage(1); // the ViT is frozen from here on
    await saveModule(join(dir, FILE), model);
    return phaseResult(p.steps, s, {
      accuracyTrain: attributeAccuracy(clf, data.train.slice(0, 512), S),
      accuracySeen: attributeAccuracy(clf, data.seen, S),
      accuracyHeldOut: attributeAccuracy(clf, data.heldOut, S),
    });
  });
  clf.dispose();
  await load('vit');
  model.setStage(1);
  const vitAccuracy = { seen: vit.extra.accuracySeen ?? Number.NaN, heldOut: vit.extra.accuracyHeldOut ?? Number.NaN };

  // Phase 1: Causal Q-Former, ITC of the last query vs the text CLS.
  const groups = new Map<string, SeedItem[]>();
  for (const d of data.train) groups.set(d.key, [...(groups.get(d.key) ?? []), d]);
  const byKey = [...groups.values()];
  const stage1 = await ctx.subrun('stage1', async (dir, sub) => {
    const p = recipe.stage1;
    const { opt, lr } = phaseOptimizer(model, p);
    const r = rng.fork('stage1');
    model.train();
    const s = runSteps({
      name: sub.name,
      steps: p.steps,
      step: (t) => {
        opt.lr = lr(t);
        const items = distinctKeyBatch(byKey, p.batchSize, r);
        const x = imageBatch(items, S);
        const { ids, keep } = textBatch(
          data,
          items.map((d) => d.caption),
        );
        try {
          clampTemperature(model);
          return { ...lossStep(model, opt, () => stage1Loss(model, { images: x, textIds: ids, textKeep: keep })), lr: opt.lr };
        } finally {
          x.dispose();
          ids.dispose();
          keep.dispose();
        }
      },
      progress: sub.progress(sub.name, p.steps),
      show: (_, ema) => ({ loss: ema, tau: model.temp.dataSync()[0] as number }),
      metric: (rec) => sub.metric({ ...rec, tau: model.temp.dataSync()[0] as number }),
    });
    opt.dispose();
    await saveModule(join(dir, FILE), model);
    return phaseResult(p.steps, s, { tau: model.temp.dataSync()[0] as number });
  });
  await load('stage1');

  // Phase 2: the quantizer and the de-tokenizer, the Q-Former frozen.
  model.setStage(2);
  const stage2 = await ctx.subrun('stage2', async (dir, sub) => {
    const p = recipe.stage2;
    const { opt, lr } = phaseOptimizer(model, p);
    const r = rng.fork('stage2');
    model.train();
    const s = runSteps({
      name: sub.name,
      steps: p.steps,
      step: (t) => {
        opt.lr = lr(t);
        const x = imageBatch(randomBatch(data.train, p.batchSize, r), S);
        const target = generationTarget(x, cfg.decoder.genDim, seed);
        const parts = { vq: 0, rec: 0, gen: 0, perplexity: 0, usage: 0 };
        try {
          const { loss } = lossStep(model, opt, () => {
            const l = stage2Losses(model, { images: x, target });
            for (const k of ['vq', 'rec', 'gen', 'perplexity', 'usage'] as const) parts[k] = l[k].dataSync()[0] as number;
            return l.loss;
          });
          return { loss, ...parts, lr: opt.lr };
        } finally {
          x.dispose();
          target.dispose();
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
    return phaseResult(p.steps, s, m ? { vq: m.vq, rec: m.rec, gen: m.gen, usage: m.usage, perplexity: m.perplexity } : {});
  });
  await load('stage2');
  model.eval();
  return { model, vit, stage1, stage2, vitAccuracy };
}

/** A phase's saved summary from its `runSteps` summary. */
export function phaseResult(
  steps: number,
  s: { mean: Record<string, number> | null; seconds: number },
  extra: Record<string, number>,
): PhaseResult {
  return { file: FILE, steps, finalLoss: s.mean?.loss ?? null, seconds: s.seconds, extra };
}

/** One AdamW update on a loss closure over the model's trainable parameters; the loss as a number. */
function lossStep(model: SeedTokenizer, opt: AdamW, lossFn: () => tf.Scalar): { loss: number } {
  const { loss, grads } = valueAndGrads(model, lossFn);
  try {
    opt.step(grads);
    return { loss: loss.dataSync()[0] as number };
  } finally {
    loss.dispose();
    for (const g of grads.values()) g.dispose();
  }
}

/** Fraction of items whose three attributes the classifier gets all right. */
function attributeAccuracy(clf: VitAttributeClassifier, items: readonly SeedItem[], S: number): number {
  if (items.length === 0) return Number.NaN;
  let ok = 0;
  for (let i = 0; i < items.length; i += 128) {
    const part = items.slice(i, i + 128);
    const pred = tf.tidy(() => {
      const x = imageBatch(part, S);
      return clf.forward(x).map((l) => l.argMax(1).dataSync() as Int32Array);
    });
    part.forEach((d, j) => {
      if (pred.every((p, a) => p[j] === d.labels[a])) ok++;
    });
  }
  return ok / items.length;
}
