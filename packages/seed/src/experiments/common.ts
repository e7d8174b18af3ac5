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
import { join, relative } from 'node:path';
import { AdamW, loadModule, Rng, saveModule, tf, valueAndGrads, warmupCosine } from '@mmlm/core';
import { type ExperimentContext, type Figure, makeSubrun, runSteps, subrunFolderName } from '@mmlm/core/experiment';
import {
  generationScore,
  grammarSentences,
  parseCaption,
  type ShapeAnalyzer,
  type ShapesConfig,
  type ShapesSample,
  seenHeldOutSets,
  WordTokenizer,
} from '@mmlm/data';
import { z } from 'zod';
import { type PresetName, preset, type SeedConfig } from '../config.js';
import {
  type CaptionedCodes,
  generateCaptions,
  generateImageCodes,
  LMPhaseSchema,
  SeedLM,
  type SeedLMConfigInput,
  SeedLMConfigSchema,
  type SeedLMTrainResult,
  trainPhase,
  trainSeedLM,
} from '../llm.js';
import { clampTemperature, SeedTokenizer, stage1Loss, stage2Losses } from '../tokenizer.js';
import { VitAttributeClassifier, vitPretrainStep } from '../train.js';
import { type ChatTemplate, padSequences, seedVocab, textSequence } from '../vocab.js';

/** One Shapes image with its full caption, scene key and attribute labels. */
export interface SeedItem {
  /** [S * S * 3], HWC, pixels in [0, 1]. */
  image: Float32Array;
  /** The `sizes` caption, e.g. "a large red triangle". */
  caption: string;
  /** The scene key (shape, colour, size, cell): two items with one key are the same attribute combination. */
  key: string;
  /**
   * Indices of shape, colour and size in the config's lists; IGNORE_LABEL where an attribute is not
   * known (the ViT's loss skips it and its accuracy does not judge it).
   */
  labels: [number, number, number];
}

/** A ViT attribute label to skip (crossEntropy's default ignoreIndex). */
export const IGNORE_LABEL = -100;

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
 * `opts.vitContext`: run (or reuse) the `vit` phase in that context instead of `ctx`, so that two
 * arms (`armContext`) share one frozen ViT and one initialisation of everything else.
 */
export async function trainTokenizer(
  ctx: ExperimentContext,
  data: SeedData,
  cfg: SeedConfig,
  recipe: Recipe,
  seed: number,
  opts: { vitContext?: ExperimentContext } = {},
): Promise<TrainedTokenizer> {
  const model = new SeedTokenizer(cfg);
  const S = data.imageSize;
  const c = data.config;
  const classes = [c.shapes.length, c.colours.length, c.sizes.length];
  const rng = new Rng(seed).fork('seed-batches');
  const vitCtx = opts.vitContext ?? ctx;
  const load = async (name: string) => loadModule(join((name === 'vit' ? vitCtx : ctx).outDir, 'subruns', name, FILE), model);

  // Phase 0: the ViT as an attribute classifier, then frozen.
  const clf = new VitAttributeClassifier(model.visual_encoder, classes, new Rng(seed).fork('vit-heads'));
  const labelTensors = (items: readonly SeedItem[]) =>
    [0, 1, 2].map((a) =>
      tf.tensor1d(
        items.map((d) => d.labels[a] as number),
        'int32',
      ),
    );
  // shared: under the lab's --jobs, arms in other workers wait for the one ViT (`opts.vitContext`)
  const vit = await vitCtx.subrun(
    'vit',
    async (dir, sub) => {
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
    },
    { shared: true },
  );
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
      if (pred.every((p, a) => d.labels[a] === IGNORE_LABEL || p[j] === d.labels[a])) ok++;
    });
  }
  return ok / items.length;
}

/**
 * A child context for one arm of a comparison: its output folder is `<outDir>/arms/<name>`, its
 * sub-runs (resumable) live there, and its metric records carry `arm: name`. `rel(path)` turns a
 * path under the arm's folder into one relative to the run's folder (for figures).
 */
export function armContext(ctx: ExperimentContext, name: string): ExperimentContext & { rel(path: string): string } {
  const dir = join(ctx.outDir, 'arms', name);
  const metric = (r: Record<string, unknown>) => ctx.metric({ arm: name, ...r });
  return {
    ...ctx,
    outDir: dir,
    metric,
    subrun: makeSubrun({ dir, log: ctx.log, progress: ctx.progress, metric }, `arms/${name}`),
    rel: (path: string) => relative(ctx.outDir, join(dir, path)),
  };
}

/** Figures written by an arm's context, re-pointed at the run's folder and titled with the arm. */
export function armFigures(arm: ReturnType<typeof armContext>, label: string, figures: readonly Figure[]): Figure[] {
  return figures.map((f) => ({ ...f, path: arm.rel(f.path), title: `${label}: ${f.title}` }));
}

/** Codes (N x Q) of items under any image tokenizer with `encodeCodes`, in batches of 128. */
export function encodeItemCodes(
  tok: { encodeCodes(x: tf.Tensor): Int32Array },
  Q: number,
  items: readonly SeedItem[],
  S: number,
): Int32Array {
  const out = new Int32Array(items.length * Q);
  for (let i = 0; i < items.length; i += 128) {
    const n = Math.min(128, items.length - i);
    const x = imageBatch(items.slice(i, i + n), S);
    try {
      const c = tok.encodeCodes(x);
      if (c.length !== n * Q) throw new Error(`encodeItemCodes: expected ${n} x ${Q} codes, got ${c.length}`);
      out.set(c, i * Q);
    } finally {
      x.dispose();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// the LM on codes (SEED-LLaMA's recipe at toy scale), shared by seed.lora-vs-full,
// seed.causal-vs-bidirectional and seed.semantic-vs-pixel

/** The (shape, colour, size) a caption names, or null when it is outside the caption grammar. */
export function captionAttributes(caption: string): string | null {
  try {
    const o = parseCaption(caption).objects[0];
    return o ? `${o.shape ?? '-'}/${o.colour ?? '-'}/${o.size ?? '-'}` : null;
  } catch {
    return null;
  }
}

/** Fraction of generated captions naming the reference caption's shape, colour and size (a caption outside the grammar is wrong). */
export function captionAccuracy(generated: readonly string[], reference: readonly string[]): number {
  if (generated.length !== reference.length || generated.length === 0)
    throw new Error(
      `captionAccuracy: expected as many generated as reference captions (> 0), got ${generated.length} and ${reference.length}`,
    );
  let hit = 0;
  generated.forEach((g, i) => {
    const a = captionAttributes(g);
    if (a !== null && a === captionAttributes(reference[i] as string)) hit++;
  });
  return hit / generated.length;
}

/** Fraction of evaluation captions whose attributes some training caption names (the memoriser ceiling). */
export function memoriserCeiling(evalCaptions: readonly string[], trainCaptions: readonly string[]): number {
  const known = new Set(trainCaptions.map(captionAttributes).filter((a) => a !== null));
  return evalCaptions.filter((c) => known.has(captionAttributes(c) as string)).length / evalCaptions.length;
}

/** The memoriser ceiling of the seen and held-out sets. */
export function memoriserCeilings(data: SeedData): Record<'Seen' | 'HeldOut', number> {
  const train = data.train.map((d) => d.caption);
  return {
    Seen: memoriserCeiling(
      data.seen.map((d) => d.caption),
      train,
    ),
    HeldOut: memoriserCeiling(
      data.heldOut.map((d) => d.caption),
      train,
    ),
  };
}

/** The evaluation sets by metric suffix. */
export const EVAL_SETS = [
  { set: 'Seen', label: 'seen', items: 'seen' },
  { set: 'HeldOut', label: 'held-out', items: 'heldOut' },
] as const;
export type EvalSet = (typeof EVAL_SETS)[number]['set'];

/** The LM settings an experiment on codes shares: text pre-training, the LM, its multimodal phases, LoRA and sampling. */
export const CodeLMSettingsSchema = z.strictObject({
  /** Grammar sentences of the text pre-training corpus. */
  textSentences: z.number().int().positive(),
  /** The LM (textVocabSize is set from the data). */
  lm: SeedLMConfigSchema.omit({ textVocabSize: true, seed: true }),
  text: LMPhaseSchema,
  pretrain: LMPhaseSchema,
  sft: LMPhaseSchema,
  lora: z.strictObject({ r: z.number().int().positive(), alpha: z.number().positive(), dropout: z.number().min(0).lt(1) }),
  sampling: z.strictObject({ cfgScale: z.number().positive(), temperature: z.number().nonnegative(), topP: z.number().positive().max(1) }),
});
export type CodeLMSettings = z.infer<typeof CodeLMSettingsSchema>;

export interface TextLM {
  /** The word tokenizer over the grammar corpus, every caption and the SFT markers. */
  words: WordTokenizer;
  template: ChatTemplate;
  /** The LM config (text vocabulary and specials from `words`). */
  lmCfg: SeedLMConfigInput & { maxSeqLen: number };
  /** The text pre-trained weights (dispose with `disposeTextLM`). */
  baseState: Record<string, tf.Tensor>;
  textLoss: number;
  textSeconds: number;
}

const meanOf = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
/** Mean of the last 10% of a loss curve. */
export const tailMean = (xs: readonly number[]) => meanOf(xs.slice(-Math.max(1, Math.ceil(xs.length / 10))));

/**
 * The vocabulary and the text pre-trained LM every arm starts from: a word tokenizer over the Shapes
 * grammar corpus, the captions and the SFT markers ("user :", "assistant :"); a SeedLM trained on the
 * grammar text (`st.text`). Checks that an SFT sequence with Q codes fits the LM.
 */
export async function textPretrainedLM(
  ctx: ExperimentContext,
  data: SeedData,
  st: CodeLMSettings,
  Q: number,
  who: string,
): Promise<TextLM> {
  const seed = ctx.seed;
  const corpus = grammarSentences({ grammar: 'shapes', sentences: st.textSentences, seed });
  const allCaptions = [...data.train, ...data.seen, ...data.heldOut].map((d) => d.caption);
  const words = WordTokenizer.fromText([...corpus, ...allCaptions, 'user : assistant :']);
  const template: ChatTemplate = { user: words.encode('user :'), assistant: words.encode('assistant :') };
  const specials = { pad: words.specialId('<pad>'), bos: words.specialId('<bos>'), eos: words.specialId('<eos>') };
  const lmCfg = { ...st.lm, ...specials, textVocabSize: words.vocabSize, seed, maxSeqLen: st.lm.maxSeqLen };
  const longest = Math.max(...allCaptions.map((c) => words.encode(c).length));
  const needed = 1 + template.user.length + longest + template.assistant.length + Q + 3;
  if (needed > lmCfg.maxSeqLen)
    throw new Error(`${who}: SFT sequences need ${needed} positions, more than the LM's maxSeqLen ${lmCfg.maxSeqLen}`);
  const textVocab = seedVocab({ textVocabSize: words.vocabSize, numCodes: 1, tokensPerImage: 1, ...specials });
  const textSeqs = corpus
    .map((s) => words.encode(s))
    .filter((ids) => ids.length + 2 <= lmCfg.maxSeqLen + 1)
    .map((ids) => textSequence(textVocab, ids));
  // a resumable sub-run shared by the arms (under the lab's --jobs one worker trains it, the others
  // wait for it); its weights are saved in its folder and loaded below
  const TEXT_LM = 'text-lm';
  const file = 'text-lm.safetensors';
  const phase = await ctx.subrun(
    TEXT_LM,
    async (dir, sub) => {
      const lm = new SeedLM(lmCfg);
      try {
        const r = await trainPhase(
          lm,
          st.text,
          (rng) =>
            padSequences(
              textVocab,
              Array.from({ length: st.text.batchSize }, () => textSeqs[rng.int(0, textSeqs.length)] as ReturnType<typeof textSequence>),
            ),
          { seed, name: 'text', log: ctx.log },
        );
        await saveModule(join(dir, file), lm);
        sub.metric({ phase: 'text', step: r.steps, loss: tailMean(r.losses) });
        return { loss: tailMean(r.losses), seconds: r.seconds };
      } finally {
        lm.dispose();
      }
    },
    { shared: true },
  );
  const base = new SeedLM(lmCfg);
  try {
    await loadModule(join(ctx.outDir, 'subruns', subrunFolderName(TEXT_LM), file), base);
    const baseState = Object.fromEntries(base.namedParameters().map(([k, p]) => [k, p.clone()]));
    return { words, template, lmCfg, baseState, textLoss: phase.loss, textSeconds: phase.seconds };
  } finally {
    base.dispose();
  }
}

export function disposeTextLM(t: TextLM): void {
  tf.dispose(Object.values(t.baseState));
}

/**
 * A fresh copy of the text pre-trained LM tuned on (caption, codes) pairs of the training images
 * (`trainSeedLM`: vocabulary extension by K codes, multimodal pre-training, SFT) with `tuning`.
 * The caller disposes the returned LM.
 */
export async function tuneLMOnCodes(
  ctx: ExperimentContext,
  base: TextLM,
  data: SeedData,
  trainCodes: Int32Array,
  code: { numCodes: number; perImage: number },
  st: CodeLMSettings,
  tuning: 'lora' | 'full',
  phaseTag: string,
): Promise<{ lm: SeedLM; result: SeedLMTrainResult; seconds: number }> {
  const Q = code.perImage;
  if (trainCodes.length !== data.train.length * Q)
    throw new Error(`tuneLMOnCodes: expected ${data.train.length} x ${Q} training codes, got ${trainCodes.length}`);
  const pairs: CaptionedCodes[] = data.train.map((d, i) => ({
    caption: base.words.encode(d.caption),
    codes: trainCodes.subarray(i * Q, (i + 1) * Q),
  }));
  const t0 = performance.now();
  const lm = new SeedLM(base.lmCfg);
  try {
    lm.loadStateDict(base.baseState);
    const result = await trainSeedLM({
      model: lm,
      text: [],
      pairs,
      numCodes: code.numCodes,
      tokensPerImage: Q,
      template: base.template,
      seed: ctx.seed,
      log: ctx.log,
      recipe: { text: { steps: 0 }, pretrain: st.pretrain, sft: st.sft, tuning, lora: st.lora },
    });
    ctx.metric({ phase: `${phaseTag}-pretrain`, step: result.pretrain.steps, loss: tailMean(result.pretrain.losses) });
    ctx.metric({ phase: `${phaseTag}-sft`, step: result.sft.steps, loss: tailMean(result.sft.losses) });
    return { lm, result, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    lm.dispose();
    throw e;
  }
}

/** Greedy captions (SFT template) of images given as codes (N x Q), in batches of 64. */
export function captionCodes(lm: SeedLM, base: Pick<TextLM, 'words' | 'template'>, codes: Int32Array, Q: number): string[] {
  const caps: string[] = [];
  for (let i = 0; i < codes.length; i += 64 * Q) {
    const part = codes.subarray(i, Math.min(codes.length, i + 64 * Q));
    for (const ids of generateCaptions(lm, part, { template: base.template })) caps.push(base.words.decode(ids, { skipSpecial: true }));
  }
  return caps;
}

/**
 * Images of captions through the forced-span path (`generateImageCodes`: `<img>`, exactly Q codes,
 * `</img>`; CFG, temperature, top-p), decoded by `decode` (codes N x Q -> images [N, S, S, 3]), clipped
 * to [0, 1]; batches of 64, one rng for the whole set.
 */
export function generateForCaptions(
  lm: SeedLM,
  base: Pick<TextLM, 'words' | 'template'>,
  captions: readonly string[],
  decode: (codes: Int32Array) => tf.Tensor4D,
  sampling: CodeLMSettings['sampling'],
  rng: Rng,
): { images: Float32Array[]; codes: Int32Array } {
  const Q = lm.requireVocab('generateForCaptions').tokensPerImage;
  const images: Float32Array[] = [];
  const codes = new Int32Array(captions.length * Q);
  for (let i = 0; i < captions.length; i += 64) {
    const part = captions.slice(i, i + 64);
    const g = generateImageCodes(
      lm,
      part.map((c) => base.words.encode(c)),
      { template: base.template, rng, ...sampling },
    );
    codes.set(g.codes, i * Q);
    const raw = decode(g.codes);
    const clipped = tf.tidy(() => raw.clipByValue(0, 1));
    const flat = clipped.dataSync() as Float32Array;
    tf.dispose([clipped, raw]);
    const per = flat.length / part.length;
    for (let j = 0; j < part.length; j++) images.push(flat.slice(j * per, (j + 1) * per));
  }
  return { images, codes };
}

export interface CodeLMEval {
  captionAccuracy: Record<EvalSet, number>;
  generationScore: Record<EvalSet, number>;
  /** The first 12 seen captions generated and images drawn. */
  samples: { captions: string[]; images: Float32Array[] };
}

/**
 * Caption accuracy (greedy captions of each set's codes) and generation score (the ShapeAnalyzer
 * reads every attribute of the prompt in the image drawn through the forced span) on seen and
 * held-out combinations. The generation rng of a set is `Rng(seed).fork(`${rngTag}-${set}`)`.
 */
export function evaluateCodeLM(
  lm: SeedLM,
  base: Pick<TextLM, 'words' | 'template'>,
  data: SeedData,
  codes: Record<'seen' | 'heldOut', Int32Array>,
  decode: (codes: Int32Array) => tf.Tensor4D,
  analyzer: ShapeAnalyzer,
  o: { seed: number; sampling: CodeLMSettings['sampling']; rngTag: string },
): CodeLMEval {
  const Q = lm.requireVocab('evaluateCodeLM').tokensPerImage;
  const out: CodeLMEval = {
    captionAccuracy: { Seen: 0, HeldOut: 0 },
    generationScore: { Seen: 0, HeldOut: 0 },
    samples: { captions: [], images: [] },
  };
  for (const s of EVAL_SETS) {
    const items = data[s.items];
    const caps = captionCodes(lm, base, codes[s.items], Q);
    out.captionAccuracy[s.set] = captionAccuracy(
      caps,
      items.map((d) => d.caption),
    );
    const rng = new Rng(o.seed).fork(`${o.rngTag}-${s.items}`);
    const { images } = generateForCaptions(
      lm,
      base,
      items.map((d) => d.caption),
      decode,
      o.sampling,
      rng,
    );
    out.generationScore[s.set] = generationScore(
      items.map((d, i) => ({ caption: d.caption, image: images[i] as Float32Array })),
      analyzer,
    ).overall;
    if (s.set === 'Seen') out.samples = { captions: caps.slice(0, 12), images: images.slice(0, 12) };
  }
  return out;
}
