/**
 * The Liquid pipeline shared by the experiments (paper sec. 3; brief 2.10): Shapes images and
 * captions plus the `shapes` grammar text; a word tokenizer; the VQ tokenizer trained once, frozen,
 * and its codes extracted once into a code cache on disk (shared by every experiment run beside
 * this one); a text LM trained on the text; its vocabulary extended by K codes + `<boi>`, `<eoi>`,
 * `<unconditional>` (mean-resized rows); continued next-token training on a mix of text, T2I and
 * caption examples; and the evaluations (text perplexity, generation score and Frechet distance
 * through @mmlm/data's ShapeAnalyzer, caption accuracy by its caption judge).
 *
 * Evaluation sets (@mmlm/data `seenHeldOutSets`, as the lab's image-token comparison): **seen** (new
 * renders of scene keys present among the training images) and **held-out** (keys no training image
 * has), each of `evalPrompts` images; every generation and captioning metric is reported on both
 * (names end in `Seen` / `HeldOut`), with the memoriser ceiling (the score of the best-matching
 * training image or caption) beside the held-out figure. The frozen tokenizer reports its analyzer
 * agreement (`tokenizerAgreement`): below AGREEMENT_FLOOR its reconstructions do not read back and
 * the downstream figures cannot judge a claim.
 *
 * Recipe: the tokenizer's codebook and the continued training take the lab's Liquid arm recipe
 * (`liquidArmRecipe()` defaults, arm.ts); `recipeDeviations()` says how that departs from Liquid's
 * reference script.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadModule, Rng, saveModule, stableHash32, type TransformerDecoder, tf, writeFileAtomicSync } from '@mmlm/core';
import {
  compareSeeds,
  type ExperimentContext,
  type ExperimentResult,
  formatFixed,
  formatMeanStd,
  meanStd,
  runSteps,
  type SubrunContext,
  seedValues,
  type Table,
} from '@mmlm/core/experiment';
import {
  analyzerAgreement,
  captionCeiling,
  captionScore,
  frechetDistance,
  generationCeiling,
  generationScore,
  grammarCorpus,
  memoryOf,
  type Scene,
  ShapeAnalyzer,
  type ShapesConfig,
  ShapesDataset,
  seenHeldOutSets,
  splitText,
  WordTokenizer,
  writeImageGrid,
} from '@mmlm/data';
import { z } from 'zod';
import { decodeCodesToImages, extractCodes, loadCodeCache, saveCodeCache, tokenizerStats } from '../codes.js';
import { type Batch, drawKind, type Example, LiquidCollator } from '../collate.js';
import {
  CAPTION_INSTRUCTION,
  EVAL_T2I_SUFFIX,
  imageTokenizerConfig,
  type LiquidConfig,
  type LMConfig,
  type Mix,
  preset,
  T2I_SUFFIXES,
  type TrainPhase,
  tokensPerImage,
} from '../config.js';
import { buildImagePositionLM, buildLM, extendVocabulary, type LiquidVocab, liquidVocab, VQTokenizer } from '../model.js';
import { captionImages, generateImageCodes, textLoss } from '../sample.js';
import { lmTrainStep, makeOptimizer, tokenizerTrainStep } from '../train.js';
import { type LiquidArmRecipe, LiquidArmRecipeSchema, liquidArmRecipe } from './recipe.js';

/** One Shapes image with its caption and scene. */
interface ShapeItem {
  /** [S * S * 3], HWC, pixels in [0, 1]. */
  image: Float32Array;
  caption: string;
  scene: Scene;
}

type EvalSetName = 'seen' | 'heldOut';

interface ShapesData {
  imageSize: number;
  /** The dataset's resolved config (for the analyzer). */
  config: ShapesConfig;
  train: ShapeItem[];
  /** New renders of scene keys present among `train`. */
  seen: ShapeItem[];
  /** Scenes whose key no training image has (attribute combinations never trained). */
  heldOut: ShapeItem[];
  /** Distinct scene keys among the training images. */
  trainKeys: number;
  /** Memoriser ceilings of the held-out set: the score of the best-matching training image / caption. */
  ceilings: { generationHeldOut: number; captionHeldOut: number };
}

/**
 * The first `train` images of @mmlm/data's Shapes train split (one object at 16 px) and the seen and
 * held-out evaluation sets of `evalPrompts` images each (`seenHeldOutSets`), with the held-out
 * memoriser ceilings.
 */
function shapesEvalData(o: { imageSize: number; train: number; evalPrompts: number; seed: number }): ShapesData {
  const sets = seenHeldOutSets({ seed: o.seed, imageSize: o.imageSize }, { train: o.train, seen: o.evalPrompts, heldOut: o.evalPrompts });
  const item = (x: { image: Float32Array; caption: string; scene: Scene }): ShapeItem => ({
    image: x.image,
    caption: x.caption,
    scene: x.scene,
  });
  const analyzer = new ShapeAnalyzer(sets.config);
  const trainCaptions = sets.train.map((s) => s.caption);
  const heldOut = sets.heldOut.map(item);
  return {
    imageSize: o.imageSize,
    config: sets.config,
    train: sets.train.map(item),
    seen: sets.seen.map(item),
    heldOut,
    trainKeys: sets.trainKeys.size,
    ceilings: {
      generationHeldOut: generationCeiling(
        heldOut.map((d) => d.caption),
        memoryOf(sets.train, analyzer),
      ),
      captionHeldOut: captionCeiling(
        heldOut.map((d) => d.scene),
        trainCaptions,
      ),
    },
  };
}

/**
 * The first `train` / `val` items of the Shapes train and val splits, without the seen / held-out
 * sets: kept for the package's tokenizer and arm benchmark scripts (the experiments use
 * `shapesEvalData`).
 */
export function shapesData(o: { imageSize: number; train: number; val: number; seed: number }): {
  imageSize: number;
  config: ShapesConfig;
  train: ShapeItem[];
  val: ShapeItem[];
} {
  const split = (name: 'train' | 'val', n: number) => {
    const ds = new ShapesDataset({ seed: o.seed, imageSize: o.imageSize, split: name });
    return { ds, items: [...ds.iterate(0, n)].map((x) => ({ image: x.image, caption: x.caption, scene: x.scene })) };
  };
  const tr = split('train', o.train);
  return { imageSize: o.imageSize, config: tr.ds.config, train: tr.items, val: split('val', o.val).items };
}

interface Verdict {
  ok: boolean;
  /** What the analyzer read from the pixels, e.g. "small red circle (middle)". */
  read: string;
}

export const DataSizesSchema = z.strictObject({
  /** Training images, and the size of each of the seen and held-out evaluation sets. */
  images: z.strictObject({ train: z.number().int().positive(), evalPrompts: z.number().int().positive() }),
  /** Characters of grammar text (90% train, 10% validation). */
  textChars: z.number().int().positive(),
  /** Validation windows for text perplexity. */
  textEvalWindows: z.number().int().positive(),
});
type DataSizes = z.infer<typeof DataSizesSchema>;

export interface Prepared {
  presetName: 'tiny' | 'small';
  /** The arm recipe applied to the preset config (`withArmRecipe`); its backbone.imagePositions picks the unified model. */
  recipe: LiquidArmRecipe;
  cfg: LiquidConfig;
  tokenizer: WordTokenizer;
  vocab: LiquidVocab;
  data: ShapesData;
  analyzer: ShapeAnalyzer;
  sizes: DataSizes;
  /** Token ids of the training text. */
  textTrain: Int32Array;
  /** Validation text windows (ids without BOS). */
  textVal: number[][];
  /** Longest caption (train and evaluation) in word tokens, plus one for `<eos>`. */
  maxCaptionTokens: number;
  seed: number;
}

// ---------------------------------------------------------------------------------------------
// The recipe

/** Analyzer agreement of the tokenizer's reconstructions below which downstream figures cannot judge a claim. */
const AGREEMENT_FLOOR = 0.95;

/**
 * The preset config with the lab's Liquid arm recipe (`liquidArmRecipe()` defaults) applied where
 * the arm found it necessary at toy scale: the VQ codebook (k-means init, EMA decay, dead-code
 * restart), LM dropout, and AdamW weight decay of the continued (unified) training. The text LM
 * phase keeps Liquid's script settings (no dropout, weight decay 0): `textStage` builds it without
 * dropout.
 */
function withArmRecipe(cfg: LiquidConfig, recipe: LiquidArmRecipe = liquidArmRecipe()): LiquidConfig {
  const t = recipe.tokenizer;
  const { emaDecay: _, ...tok } = cfg.tokenizer;
  return {
    ...cfg,
    tokenizer: imageTokenizerConfig({
      ...tok,
      kmeansInit: t.kmeansInit,
      deadCodeSteps: t.deadCodeSteps,
      ...(t.emaDecay === null ? {} : { emaDecay: t.emaDecay }),
    }),
    lm: { ...cfg.lm, dropout: recipe.backbone.dropout },
    train: {
      ...cfg.train,
      unified: {
        ...cfg.train.unified,
        lr: recipe.backbone.lr,
        warmup: Math.min(100, Math.round(recipe.backbone.warmupFraction * cfg.train.unified.steps)),
        weightDecay: recipe.backbone.weightDecay,
      },
    },
  };
}

/** The package preset with the arm recipe and the preset's tokenizer steps and width (default: the package preset's). */
function stageConfig(
  base: 'tiny' | 'small',
  recipe: LiquidArmRecipe,
  tok: { steps?: number | undefined; ch?: number | undefined } = {},
): LiquidConfig {
  const cfg = withArmRecipe(preset(base), recipe);
  if (tok.steps !== undefined) cfg.train.tokenizer = { ...cfg.train.tokenizer, steps: tok.steps };
  if (tok.ch !== undefined) cfg.tokenizer = imageTokenizerConfig({ ...cfg.tokenizer, ch: tok.ch });
  return cfg;
}

/** The recipe's departures from Liquid's reference script, in words (for descriptions and summaries). */
export function recipeDeviations(recipe: LiquidArmRecipe = liquidArmRecipe()): string {
  const t = recipe.tokenizer;
  const b = recipe.backbone;
  const codebook = [
    t.kmeansInit ? 'k-means-initialised on the first training batch' : 'uniformly initialised',
    t.emaDecay === null ? 'learned by gradient' : `updated by EMA (decay ${t.emaDecay})`,
    t.deadCodeSteps > 0 ? `dead codes restarted after ${t.deadCodeSteps} unused batches` : 'no dead-code restart',
  ].join(', ');
  return (
    `Recipe (the lab's Liquid arm recipe, \`liquidArmRecipe()\` defaults; deviations from Liquid's reference): VQ codebook ${codebook} ` +
    "(reference: taming's uniformly initialised codebook learned by gradient); " +
    `dropout ${b.dropout} and AdamW weight decay ${b.weightDecay} in the continued training (reference script: no dropout, weight decay 0); ` +
    'the text LM phase keeps no dropout and weight decay 0' +
    (b.imagePositions
      ? "; the unified model adds a learned embedding of the grid index of the code each position predicts (ImagePositionLM; Liquid has only the LLM's 1-D RoPE), its rows drawn N(0, initStd^2) when the text LM is extended."
      : '.')
  );
}

/** One line for a preset description: the recipe settings in short. */
export function recipeShort(recipe: LiquidArmRecipe = liquidArmRecipe()): string {
  const t = recipe.tokenizer;
  const b = recipe.backbone;
  return `arm recipe: ${t.kmeansInit ? 'k-means + ' : ''}${t.emaDecay === null ? 'gradient' : `EMA ${t.emaDecay}`} VQ codebook, continued training with dropout ${b.dropout} and weight decay ${b.weightDecay}${b.imagePositions ? ' and learned image-position embeddings' : ''} (Liquid's script: taming codebook, 0 and 0${b.imagePositions ? ', RoPE only' : ''})`;
}

/**
 * Data, word tokenizer and vocabulary for a preset with the arm recipe applied (`withArmRecipe`); the
 * preset's textVocabSize is set from the word tokenizer, and the VQ tokenizer's init seed is `seed`.
 */
export function prepare(
  presetName: 'tiny' | 'small',
  sizes: DataSizes,
  seed: number,
  recipe: LiquidArmRecipe = liquidArmRecipe(),
  opts: { tokenizerSteps?: number | undefined; tokenizerCh?: number | undefined } = {},
): Prepared {
  const cfg = stageConfig(presetName, recipe, { steps: opts.tokenizerSteps, ch: opts.tokenizerCh });
  cfg.tokenizer.seed = seed; // the tokenizer's init varies with the run's seed, as the data and the LM do
  const data = shapesEvalData({
    imageSize: cfg.tokenizer.imageSize,
    train: sizes.images.train,
    evalPrompts: sizes.images.evalPrompts,
    seed,
  });
  const text = grammarCorpus({ grammar: 'shapes', seed, chars: sizes.textChars });
  const split = splitText(text, { valFraction: 0.1, atLineBreak: true });
  const captions = [...data.train, ...data.seen, ...data.heldOut].map((d) => d.caption);
  const tokenizer = WordTokenizer.fromText([text, ...captions, ...T2I_SUFFIXES, EVAL_T2I_SUFFIX, CAPTION_INSTRUCTION]);
  cfg.lm.textVocabSize = tokenizer.vocabSize;
  const vocab = liquidVocab({
    textVocabSize: tokenizer.vocabSize,
    numCodes: cfg.tokenizer.numCodes,
    tokensPerImage: tokensPerImage(cfg.tokenizer),
    bos: tokenizer.specialId('<bos>'),
    eos: tokenizer.specialId('<eos>'),
    pad: tokenizer.specialId('<pad>'),
  });
  const W = cfg.lm.maxSeqLen - 1;
  const val = tokenizer.encode(split.val);
  const textVal: number[][] = [];
  for (let i = 0; i + W <= val.length && textVal.length < sizes.textEvalWindows; i += W) textVal.push(val.slice(i, i + W));
  return {
    presetName,
    recipe,
    cfg,
    tokenizer,
    vocab,
    data,
    analyzer: new ShapeAnalyzer(data.config),
    sizes,
    textTrain: Int32Array.from(tokenizer.encode(split.train)),
    textVal,
    maxCaptionTokens: Math.max(...captions.map((c) => tokenizer.encode(c).length)) + 1,
    seed,
  };
}

// ---------------------------------------------------------------------------------------------
// The frozen VQ tokenizer and its code cache

interface TokenizerStats {
  /** Over the seen and held-out images together. */
  mse: number;
  psnr: number;
  usage: number;
  perplexity: number;
  /** Fraction of the seen and held-out images whose reconstruction the analyzer reads as the same objects. */
  agreement: number;
  steps: number;
  seconds: number;
  cacheDir: string;
}

interface TokenizerStage {
  vq: VQTokenizer;
  codesTrain: Int32Array;
  /** Codes of the seen images, then of the held-out images. */
  codesEval: Int32Array;
  stats: TokenizerStats;
}

/** The shared cache folder: LIQUID_CACHE, else `.liquid-cache` beside the run folder. */
function cacheRoot(ctx: ExperimentContext): string {
  return process.env.LIQUID_CACHE ?? join(dirname(ctx.outDir), '.liquid-cache');
}

function stackImages(items: ShapeItem[]): Float32Array {
  const per = (items[0] as ShapeItem).image.length;
  const out = new Float32Array(items.length * per);
  items.forEach((d, i) => out.set(d.image, i * per));
  return out;
}

/** The seen images then the held-out images (the order of `TokenizerStage.codesEval`). */
function evalItems(prep: Prepared): ShapeItem[] {
  return [...prep.data.seen, ...prep.data.heldOut];
}

/**
 * Train the VQ tokenizer once, freeze it, extract every image's codes once and cache weights, codes
 * and statistics on disk; later calls with the same data and config load them. Training losses are
 * logged as the sub-run `tokenizer`; its analyzer agreement as `tokenizerAgreement`.
 */
async function tokenizerStage(ctx: ExperimentContext, prep: Prepared): Promise<TokenizerStage> {
  const c = prep.cfg;
  const n = prep.sizes.images;
  const key = `${prep.presetName}-s${c.tokenizer.imageSize}-k${c.tokenizer.numCodes}-n${n.train}-e${n.evalPrompts}-seed${prep.seed}-${fingerprint({ v: 2, t: c.tokenizer, p: c.train.tokenizer })}`;
  const dir = join(cacheRoot(ctx), `tokenizer-${key}`);
  const done = join(dir, 'stats.json');
  const vq = new VQTokenizer(c.tokenizer);
  const expect = { tokensPerImage: vq.tokensPerImage, numCodes: vq.numCodes };
  const report = (stats: TokenizerStats) => {
    ctx.metric({ subrun: 'tokenizer', tokenizerAgreement: stats.agreement, tokenizerPsnr: stats.psnr, codebookUsage: stats.usage });
    if (stats.agreement < AGREEMENT_FLOOR)
      ctx.log(
        `WARNING tokenizer: reconstruction agreement ${stats.agreement.toFixed(3)} < ${AGREEMENT_FLOOR}: the downstream figures cannot judge the claim`,
      );
  };
  if (existsSync(done)) {
    ctx.log(`tokenizer: loading the frozen tokenizer and cached codes from ${dir}`);
    await loadModule(join(dir, 'vq.safetensors'), vq);
    const codesTrain = (await loadCodeCache(join(dir, 'codes-train.safetensors'), expect)).codes;
    const codesEval = (await loadCodeCache(join(dir, 'codes-eval.safetensors'), expect)).codes;
    vq.eval();
    const stats = JSON.parse(readFileSync(done, 'utf8')) as TokenizerStats;
    report(stats);
    return { vq, codesTrain, codesEval, stats };
  }
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const phase = c.train.tokenizer;
  const opt = makeOptimizer(vq, phase);
  const train = stackImages(prep.data.train);
  const S = c.tokenizer.imageSize;
  const per = S * S * 3;
  const rng = new Rng(prep.seed).fork('tokenizer-batches');
  vq.train();
  runSteps({
    name: 'tokenizer',
    steps: phase.steps,
    step: (t) => {
      const x = tf.tidy(() => {
        const buf = new Float32Array(phase.batchSize * per);
        for (let b = 0; b < phase.batchSize; b++) {
          const i = rng.int(0, prep.data.train.length);
          buf.set(train.subarray(i * per, (i + 1) * per), b * per);
        }
        return tf.tensor4d(buf, [phase.batchSize, S, S, 3]).mul(2).sub(1);
      });
      const r = tokenizerTrainStep(vq, opt, x, t, phase);
      x.dispose();
      return r;
    },
    progress: ctx.progress('tokenizer', phase.steps),
    show: (r) => ({ loss: r.loss, usage: r.usage }),
    metric: ({ step, loss, rec, usage }) => ctx.metric({ subrun: 'tokenizer', step, loss, rec, usage }),
  });
  opt.dispose();
  vq.eval();
  const items = evalItems(prep);
  const ev = tokenizerStats(vq, stackImages(items));
  const rec = decodeCodesToImages(vq, ev.codes);
  const agreement = analyzerAgreement(
    items.map((d) => d.image),
    items.map((_, i) => rec.subarray(i * per, (i + 1) * per)),
    prep.analyzer,
  );
  const codesTrain = extractCodes(vq, train);
  const meta = { tokenizer: key };
  await saveModule(join(dir, 'vq.safetensors'), vq, meta);
  await saveCodeCache(join(dir, 'codes-train.safetensors'), { codes: codesTrain, ...expect, metadata: meta });
  await saveCodeCache(join(dir, 'codes-eval.safetensors'), { codes: ev.codes, ...expect, metadata: meta });
  const stats: TokenizerStats = {
    mse: ev.mse,
    psnr: ev.psnr,
    usage: ev.usage,
    perplexity: ev.perplexity,
    agreement,
    steps: phase.steps,
    seconds: (performance.now() - t0) / 1000,
    cacheDir: dir,
  };
  writeFileAtomicSync(done, JSON.stringify(stats, null, 2));
  report(stats);
  return { vq, codesTrain, codesEval: ev.codes, stats };
}

/** The tokenizer's headline metrics, the same in every experiment. */
export function tokenizerMetrics(tok: TokenizerStage): Record<string, number> {
  return {
    tokenizerAgreement: tok.stats.agreement,
    tokenizer_mse: tok.stats.mse,
    tokenizer_psnr: tok.stats.psnr,
    codebook_usage: tok.stats.usage,
    code_perplexity: tok.stats.perplexity,
  };
}

/** A red warning when the tokenizer does not read back (agreement below AGREEMENT_FLOOR), else null. */
function agreementWarning(agreement: number): string | null {
  if (agreement >= AGREEMENT_FLOOR) return null;
  return `<span style="color:#c00">**Warning:** the tokenizer does not read back (analyzer agreement ${formatFixed(agreement)} < ${AGREEMENT_FLOOR} on the seen and held-out images): the generation and captioning figures of this run cannot judge the claim.</span>`;
}

/** A summary's opening lines: the red tokenizer warning and a blank line, or nothing when it reads back. */
export function warningLines(tok: TokenizerStage): string[] {
  const w = agreementWarning(tok.stats.agreement);
  return w ? [w, ''] : [];
}

/** The tokenizer line of a summary. */
export function tokenizerLine(tok: TokenizerStage, numCodes: number): string {
  const s = tok.stats;
  return `Tokenizer (seen + held-out images): analyzer agreement ${formatFixed(s.agreement)}${s.agreement < AGREEMENT_FLOOR ? ` (below ${AGREEMENT_FLOOR}: does not read back)` : ''}, reconstruction MSE ${formatFixed(s.mse, 5)} (PSNR ${formatFixed(s.psnr, 1)} dB), codebook usage ${formatFixed(s.usage * 100, 1)}% (code perplexity ${formatFixed(s.perplexity, 1)} of K = ${numCodes}).`;
}

/** The tokenizer table (same columns in every experiment). */
export function tokenizerTable(tok: TokenizerStage, numCodes: number, codesPerImage: number): Table {
  const s = tok.stats;
  return {
    title: 'Frozen VQ tokenizer (seen and held-out images)',
    columns: [
      'analyzer agreement',
      'MSE (pixels in [0,1])',
      'PSNR dB',
      'codebook usage',
      'code perplexity',
      'K',
      'codes per image',
      'paper',
    ],
    rows: [
      [
        s.agreement,
        s.mse,
        s.psnr,
        s.usage,
        s.perplexity,
        numCodes,
        codesPerImage,
        "Chameleon's VQGAN: K = 8192, 1024 codes per 512 px image (no reconstruction numbers in the paper)",
      ],
    ],
    note: `Analyzer agreement: the fraction of images whose reconstruction the ShapeAnalyzer reads as the same objects (shape, colour, size, cell); below ${AGREEMENT_FLOOR} the tokenizer does not read back.`,
  };
}

/** The cache key of a config (core's stableHash32 of the JSON). */
function fingerprint(x: unknown): string {
  return stableHash32(JSON.stringify(x)).toString(16);
}

// ---------------------------------------------------------------------------------------------
// Batches

/** Draws collated batches of text windows, T2I and caption examples from a mix. */
class MixSampler {
  private readonly rng: Rng;
  private readonly collator: LiquidCollator;

  constructor(
    private readonly prep: Prepared,
    private readonly codesTrain: Int32Array | null,
    readonly mix: Mix,
    seed: number,
  ) {
    this.rng = new Rng(seed);
    this.collator = new LiquidCollator(prep.tokenizer, prep.vocab, prep.cfg.collator, prep.cfg.lm.maxSeqLen, this.rng.fork('collator'));
    if ((mix.t2i > 0 || mix.i2t > 0) && !codesTrain) throw new Error('MixSampler: image examples need the training codes');
  }

  example(): Example {
    const kind = drawKind(this.mix, this.rng);
    if (kind === 'text') {
      const W = this.prep.cfg.lm.maxSeqLen - 1;
      const s = this.rng.int(0, this.prep.textTrain.length - W);
      return this.collator.text(Array.from(this.prep.textTrain.subarray(s, s + W)));
    }
    const i = this.rng.int(0, this.prep.data.train.length);
    const L = this.prep.vocab.tokensPerImage;
    const codes = (this.codesTrain as Int32Array).subarray(i * L, (i + 1) * L);
    const caption = (this.prep.data.train[i] as ShapeItem).caption;
    return kind === 't2i' ? this.collator.t2i(caption, codes) : this.collator.i2t(caption, codes);
  }

  batch(B: number): Batch {
    return this.collator.collate(Array.from({ length: B }, () => this.example()));
  }
}

// ---------------------------------------------------------------------------------------------
// Language-model stages

/** What setupStages reads from an experiment's settings of a preset. */
export interface StageSettings {
  sizes: DataSizes;
  /** The package preset the settings build on (default: `small` for the preset `small`, else `tiny`). */
  base?: 'tiny' | 'small' | undefined;
  /** The arm recipe applied to it (default `liquidArmRecipe()`). */
  recipe?: LiquidArmRecipe | undefined;
  /** VQ tokenizer training steps (default: the base preset's). */
  tokenizerSteps?: number | undefined;
  /** VQ tokenizer conv width `ch` (default: the base preset's). */
  tokenizerCh?: number | undefined;
}

/** Settings fields of a preset that changes the recipe (`base`, `recipe`), for experiments' settings schemas. */
export const RecipeSettingsSchema = {
  base: z.enum(['tiny', 'small']).optional(),
  recipe: LiquidArmRecipeSchema.optional(),
  tokenizerSteps: z.number().int().positive().optional(),
  tokenizerCh: z.number().int().positive().optional(),
};

/**
 * The `small-pos` stages shared by the Liquid paper experiments: `small` with the lab arm's learned
 * image positions (ImagePositionLM) and a VQ tokenizer that reads back (width 32, 2,000 steps:
 * 0.990-0.998 analyzer agreement in cfg-sweep small-pos); each experiment adds its own budget.
 */
export const SMALL_POS_STAGES = {
  base: 'small',
  tokenizerSteps: 2000,
  tokenizerCh: 32,
  recipe: { backbone: { imagePositions: true } },
  sizes: { images: { train: 2000, evalPrompts: 256 }, textChars: 200_000, textEvalWindows: 64 },
} as const;

/** The settings row of a preset (a preset without its own takes `tiny`'s), its base preset and recipe. */
function resolveStage<S extends StageSettings>(
  settings: Record<string, S> & Record<'tiny', S>,
  presetName: string,
): { st: S; base: 'tiny' | 'small'; recipe: LiquidArmRecipe } {
  const st = settings[presetName] ?? settings.tiny;
  return { st, base: st.base ?? (presetName === 'small' ? 'small' : 'tiny'), recipe: st.recipe ?? liquidArmRecipe() };
}

/**
 * A preset's resolved settings for `Experiment.settings` (the lab fingerprints them into run.json):
 * the settings row with its base preset and recipe filled in, and the package config they give.
 */
export function stageSettings<S extends StageSettings>(settings: Record<string, S> & Record<'tiny', S>, presetName: string): unknown {
  const { st, base, recipe } = resolveStage(settings, presetName);
  return { ...st, base, recipe, config: stageConfig(base, recipe, { steps: st.tokenizerSteps, ch: st.tokenizerCh }) };
}

/**
 * The start every Liquid experiment shares: its settings for the preset (the runner has already
 * rejected unknown presets), the data and config with the preset's recipe, and the trained VQ
 * tokenizer.
 */
export async function setupStages<S extends StageSettings>(
  ctx: ExperimentContext,
  settings: Record<string, S> & Record<'tiny', S>,
): Promise<{ st: S; prep: Prepared; cfg: Prepared['cfg']; tok: TokenizerStage }> {
  const { st, base, recipe } = resolveStage(settings, ctx.preset);
  const prep = prepare(base, st.sizes, ctx.seed, recipe, { tokenizerSteps: st.tokenizerSteps, tokenizerCh: st.tokenizerCh });
  return { st, prep, cfg: prep.cfg, tok: await tokenizerStage(ctx, prep) };
}

interface TextStageResult {
  path: string;
  /** Validation text loss (nats per token). */
  valLoss: number;
  seconds: number;
}

/**
 * Train the text LM over the text vocabulary (a resumable sub-run `text-<tag>`). Liquid's script
 * settings: no dropout here whatever `lm.dropout` says (the arm recipe's dropout is for the
 * continued training), and the phase's own weight decay.
 */
export function textStage(
  ctx: ExperimentContext,
  prep: Prepared,
  tag: string,
  lm: LMConfig,
  phase: TrainPhase,
  seed: number,
): Promise<TextStageResult> {
  return ctx.subrun(`text-${tag}`, async (dir, sub) => {
    const t0 = performance.now();
    const model = buildLM({ ...lm, dropout: 0 }, prep.vocab.textVocabSize, seed);
    const sampler = new MixSampler(prep, null, { text: 1, t2i: 0, i2t: 0 }, seed + 101);
    trainPhase(sub, model, sampler, phase);
    const path = join(dir, 'text-lm.safetensors');
    await saveModule(path, model);
    const valLoss = textLoss(model, prep.vocab, prep.textVal);
    model.dispose();
    return { path, valLoss, seconds: (performance.now() - t0) / 1000 };
  });
}

interface UnifiedSpec {
  tag: string;
  lm: LMConfig;
  /** A trained text LM to extend, or null to train the same architecture from scratch. */
  textPath: string | null;
  /** Init of the new rows when extending (default 'mean'). */
  newRows?: 'mean' | 'normal';
  mix: Mix;
  phase: TrainPhase;
  seed: number;
  /** Evaluate the generation scores (seen and held-out) every this many steps (0: never). */
  evalEvery?: number;
  /** Prompts per set of those evaluations (default: the whole seen and held-out sets) and their CFG scale. */
  evalPrompts?: number;
  evalScale?: number;
}

interface CurvePoint {
  step: number;
  /** Generation score on the seen and on the held-out prompts. */
  seen: number;
  heldOut: number;
}

export interface UnifiedResult {
  path: string;
  /** Text loss of the extended model before continued training (null from scratch). */
  textLossStart: number | null;
  textLoss: number;
  /** Generation scores during training (when evalEvery > 0). */
  curve: CurvePoint[];
  seconds: number;
}

/** The sub-run name of a unified stage. */
export function unifiedName(tag: string): string {
  return `unified-${tag}`;
}

/** Extend (or build) the unified model and continue training on the mix (a resumable sub-run `unified-<tag>`). */
export function unifiedStage(ctx: ExperimentContext, prep: Prepared, tok: TokenizerStage, spec: UnifiedSpec): Promise<UnifiedResult> {
  return ctx.subrun(unifiedName(spec.tag), async (dir, sub) => {
    const t0 = performance.now();
    let model: TransformerDecoder;
    let textLossStart: number | null = null;
    if (spec.textPath) {
      const text = buildLM(spec.lm, prep.vocab.textVocabSize, spec.seed);
      await loadModule(spec.textPath, text);
      const grown = extendVocabulary(text, prep.vocab.size - prep.vocab.textVocabSize, { init: spec.newRows ?? 'mean', seed: spec.seed });
      text.dispose();
      model = prep.recipe.backbone.imagePositions ? withImagePositions(grown, spec.lm, prep.vocab, spec.seed) : grown;
      textLossStart = textLoss(model, prep.vocab, prep.textVal);
    } else model = buildUnified(prep, spec.lm, spec.seed);
    const sampler = new MixSampler(prep, tok.codesTrain, spec.mix, spec.seed + 202);
    const curve: CurvePoint[] = [];
    const evalEvery = spec.evalEvery ?? 0;
    const onStep = (t: number) => {
      if (evalEvery > 0 && ((t + 1) % evalEvery === 0 || t === 0 || t === spec.phase.steps - 1)) {
        const g = evalGenerationSets(model, prep, tok, {
          ...(spec.evalPrompts === undefined ? {} : { n: spec.evalPrompts }),
          cfgScale: spec.evalScale ?? 3,
          seed: spec.seed + 7,
          fd: false,
        });
        curve.push({ step: t + 1, seen: g.seen.score, heldOut: g.heldOut.score });
        sub.metric({ step: t + 1, generationScoreSeen: g.seen.score, generationScoreHeldOut: g.heldOut.score });
      }
    };
    trainPhase(sub, model, sampler, spec.phase, onStep);
    const path = join(dir, 'unified.safetensors');
    await saveModule(path, model);
    const result = {
      path,
      textLossStart,
      textLoss: textLoss(model, prep.vocab, prep.textVal),
      curve,
      seconds: (performance.now() - t0) / 1000,
    };
    model.dispose();
    return result;
  });
}

/** Next-token training on the sampler's batches; losses logged through the sub-run (one loss curve per sub-run). */
function trainPhase(
  sub: Pick<SubrunContext, 'name' | 'metric' | 'progress'>,
  model: TransformerDecoder,
  sampler: MixSampler,
  phase: TrainPhase,
  onStep?: (t: number) => void,
): void {
  const opt = makeOptimizer(model, phase);
  model.train();
  runSteps({
    name: sub.name,
    steps: phase.steps,
    step: (t) => lmTrainStep(model, opt, sampler.batch(phase.batchSize), t, phase),
    progress: sub.progress(sub.name, phase.steps),
    show: (_, ema) => ({ loss: ema }),
    metric: ({ step, loss, lr }) => sub.metric({ step, loss, lr }),
    after: onStep,
  });
  opt.dispose();
  model.eval();
}

/** The unified model of the recipe: ImagePositionLM when `backbone.imagePositions`, else the plain LM. */
function buildUnified(prep: Prepared, lm: LMConfig, seed = lm.seed): TransformerDecoder {
  return prep.recipe.backbone.imagePositions ? buildImagePositionLM(lm, prep.vocab, seed) : buildLM(lm, prep.vocab.size, seed);
}

/**
 * An ImagePositionLM holding every weight of `grown` (an extended text LM) and its own freshly
 * initialised image-position rows (N(0, initStd^2)); `grown` is disposed.
 */
export function withImagePositions(grown: TransformerDecoder, lm: LMConfig, vocab: LiquidVocab, seed: number): TransformerDecoder {
  const model = buildImagePositionLM(lm, vocab, seed);
  try {
    const { missing, unexpected } = model.loadStateDict(grown.stateDict(), { strict: false });
    if (unexpected.length || missing.join() !== 'image_pos.weight')
      throw new Error(
        `withImagePositions: the extended LM and the ImagePositionLM differ beyond image_pos.weight (missing: ${missing.join(', ') || 'none'}; unexpected: ${unexpected.join(', ') || 'none'})`,
      );
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    grown.dispose();
  }
  return model;
}

/** A unified model of an LM config with weights from `path` (eval mode). */
export async function loadUnified(prep: Prepared, lm: LMConfig, path: string): Promise<TransformerDecoder> {
  const m = buildUnified(prep, lm);
  await loadModule(path, m);
  m.eval();
  return m;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

interface GenerationEval {
  set: EvalSetName;
  score: number;
  /** Prompts scored. */
  n: number;
  /** Frechet distance of the generated images to the real images of the set (null when not computed). */
  fd: number | null;
  images: Float32Array[];
  prompts: string[];
  verdicts: Verdict[];
}

/**
 * Generate one image for each of the first n prompts (default all) of an evaluation set; score with
 * the analyzer; optionally the Frechet distance against the set's real images.
 */
function evalGeneration(
  model: TransformerDecoder,
  prep: Prepared,
  tok: TokenizerStage,
  o: { set: EvalSetName; n?: number; cfgScale: number; seed: number; fd?: boolean },
): GenerationEval {
  const all = prep.data[o.set];
  const items = all.slice(0, o.n ?? all.length);
  const prompts = items.map((d) => prep.tokenizer.encode(d.caption + EVAL_T2I_SUFFIX));
  const s = prep.cfg.sampling;
  const codes = generateImageCodes(model, prep.vocab, prompts, {
    cfgScale: o.cfgScale,
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    rng: new Rng(o.seed),
    batchSize: s.batchSize,
  });
  const flat = new Int32Array(codes.length * prep.vocab.tokensPerImage);
  codes.forEach((c, i) => flat.set(c, i * prep.vocab.tokensPerImage));
  const pix = decodeCodesToImages(tok.vq, flat);
  const S = prep.cfg.tokenizer.imageSize;
  const images = items.map((_, i) => pix.slice(i * S * S * 3, (i + 1) * S * S * 3));
  const g = generationScore(
    items.map((d, i) => ({ caption: d.caption, image: images[i] as Float32Array })),
    prep.analyzer,
  );
  const fd =
    o.fd && items.length >= 2
      ? frechetDistance(
          items.map((d) => d.image),
          images,
          { imageSize: S, seed: 0 },
        )
      : null;
  const verdicts = g.pairs.map((p) => ({
    ok: p.match.overall,
    read: p.detected.length ? p.detected.map((o) => `${o.size} ${o.colour} ${o.shape}`).join(', ') : 'nothing detected',
  }));
  return { set: o.set, score: g.overall, n: items.length, fd, images, prompts: items.map((d) => d.caption), verdicts };
}

/**
 * Generation on the seen prompts (seed `seed`, with the Frechet distance unless `fd` is false) and on
 * the held-out prompts (seed `seed + 1`).
 */
export function evalGenerationSets(
  model: TransformerDecoder,
  prep: Prepared,
  tok: TokenizerStage,
  o: { n?: number; cfgScale: number; seed: number; fd?: boolean },
): { seen: GenerationEval; heldOut: GenerationEval } {
  const n = o.n === undefined ? {} : { n: o.n };
  return {
    seen: evalGeneration(model, prep, tok, { set: 'seen', ...n, cfgScale: o.cfgScale, seed: o.seed, fd: o.fd ?? true }),
    heldOut: evalGeneration(model, prep, tok, { set: 'heldOut', ...n, cfgScale: o.cfgScale, seed: o.seed + 1 }),
  };
}

interface CaptionEval {
  set: EvalSetName;
  accuracy: number;
  n: number;
  captions: string[];
}

/** Greedy captions of the first n images (default all) of an evaluation set, from the cached codes; accuracy by the caption judge. */
function evalCaptions(model: TransformerDecoder, prep: Prepared, tok: TokenizerStage, set: EvalSetName, n?: number): CaptionEval {
  const L = prep.vocab.tokensPerImage;
  const all = prep.data[set];
  const items = all.slice(0, n ?? all.length);
  const offset = set === 'seen' ? 0 : prep.data.seen.length;
  const codes = items.map((_, i) => tok.codesEval.subarray((offset + i) * L, (offset + i + 1) * L));
  const out: string[] = [];
  const instruction = prep.tokenizer.encode(CAPTION_INSTRUCTION);
  for (let i = 0; i < codes.length; i += 32)
    for (const ids of captionImages(model, prep.vocab, codes.slice(i, i + 32), instruction, { maxNewTokens: prep.maxCaptionTokens }))
      out.push(prep.tokenizer.decode(ids, { skipSpecial: true }));
  const accuracy = captionScore(out.map((caption, i) => ({ caption, scene: (items[i] as ShapeItem).scene }))).overall;
  return { set, accuracy, n: items.length, captions: out };
}

/** Captioning accuracy on the seen and on the held-out images. */
export function evalCaptionSets(
  model: TransformerDecoder,
  prep: Prepared,
  tok: TokenizerStage,
  n?: number,
): { seen: CaptionEval; heldOut: CaptionEval } {
  return { seen: evalCaptions(model, prep, tok, 'seen', n), heldOut: evalCaptions(model, prep, tok, 'heldOut', n) };
}

/** Perplexity of the validation text. */
export function evalTextPpl(model: TransformerDecoder, prep: Prepared): number {
  return Math.exp(textLoss(model, prep.vocab, prep.textVal));
}

/** Write a sample grid PNG and return a markdown table of its cells (prompt, what the analyzer read, verdict). */
export function sampleGrid(ctx: ExperimentContext, file: string, g: GenerationEval, S: number, count = 12, cols = 6): string {
  const n = Math.min(count, g.images.length);
  writeImageGrid(join(ctx.outDir, file), g.images.slice(0, n), { size: S, cols, scale: Math.max(2, Math.round(96 / S)) });
  const rows = Array.from(
    { length: n },
    (_, i) =>
      `| ${Math.floor(i / cols) + 1},${(i % cols) + 1} | ${g.prompts[i]} | ${g.verdicts[i]?.read} | ${g.verdicts[i]?.ok ? 'ok' : 'wrong'} |`,
  );
  return [`![${file}](${file})`, '', '| cell (row,col) | prompt | analyzer reads | verdict |', '|---|---|---|---|', ...rows].join('\n');
}

/** The line every single-seed summary carries. */
export function oneSeedNote(seed: number, id = '<id>', preset = 'small'): string {
  return `One seed (${seed}): these figures carry no seed-to-seed spread, so no difference is called here; \`pnpm lab run ${id} --preset ${preset} --seeds 0,1,2\` gives mean ± std over seeds and the verdicts.`;
}

// ---------------------------------------------------------------------------------------------
// Seed aggregates (Experiment.aggregate)

interface ClaimVerdict {
  claim: string;
  /** mean(a) - mean(b). */
  diff: number;
  /** Standard error of the difference (NaN with one seed on either side). */
  se: number;
  /** |diff| > 2 se with at least two seeds on each side. */
  significant: boolean;
  /** Significant and in the claimed direction: true; significant against it: false; else null. */
  supports: boolean | null;
  line: string;
}

function decimals(x: number): number {
  if (!Number.isFinite(x) || x === 0) return 3;
  return Math.min(8, Math.max(0, 1 - Math.floor(Math.log10(Math.abs(x)))));
}

/**
 * A verdict on one claim over seeds (core's `compareSeeds`): under the claim, `a` is `expected`
 * ('higher' or 'lower') than `b`. A difference is called only beyond two standard errors of the
 * difference of the seed means.
 */
export function claimVerdict(
  claim: string,
  a: readonly number[],
  b: readonly number[],
  expected: 'higher' | 'lower',
  labels: [string, string],
): ClaimVerdict {
  if (a.length === 0 || b.length === 0)
    return { claim, diff: Number.NaN, se: Number.NaN, significant: false, supports: null, line: `${claim}: no values to compare.` };
  const c = compareSeeds(a, b, expected, labels);
  const ma = meanStd(a);
  const mb = meanStd(b);
  const d = Number.isFinite(c.se) && c.se > 0 ? decimals(c.se) : 3;
  const sign = c.diff >= 0 ? '+' : '';
  const nums = `${labels[0]} ${formatMeanStd(ma)} vs ${labels[1]} ${formatMeanStd(mb)}; difference ${sign}${c.diff.toFixed(d)}`;
  if (ma.n < 2 || mb.n < 2)
    return { claim, diff: c.diff, se: Number.NaN, significant: false, supports: null, line: `${claim}: one seed, cannot judge (${nums}).` };
  const stats = `${nums}, standard error ${c.se.toFixed(d)} (n = ${ma.n} and ${mb.n}), two standard errors ${(2 * c.se).toFixed(d)}`;
  const supports = c.significant ? c.winner === 'a' : null;
  const line = c.significant
    ? `${claim}: difference exceeds two standard errors, ${supports ? 'in the direction the paper claims' : 'against the paper'} (${stats}).`
    : `${claim}: within two standard errors: not distinguishable (${stats}).`;
  return { claim, diff: c.diff, se: c.se, significant: c.significant, supports, line };
}

/**
 * The mean ± std version of a claim table over seeds: the table titled `title` of every result,
 * rows matched by position; cells of `keep` columns (labels, the paper's numbers) are copied from
 * the first seed; numeric cells become "mean ± std" (sample std; "(n = k of N)" when a seed has no
 * finite value there); other cells are copied when equal in every seed, else joined with " / ".
 * `drop` columns are left out. Null when no result has the table.
 */
export function meanStdTable(
  results: readonly ExperimentResult[],
  seeds: readonly number[],
  title: string,
  opts: { keep?: number[]; drop?: number[] } = {},
): Table | null {
  const tables = results.map((r) => r.tables?.find((t) => t.title === title));
  const first = tables.find((t) => t !== undefined);
  if (!first) return null;
  const have = tables.filter((t): t is Table => t !== undefined);
  const keep = new Set(opts.keep ?? []);
  const drop = new Set(opts.drop ?? []);
  const cols = first.columns.map((_, j) => j).filter((j) => !drop.has(j));
  const nRows = Math.min(...have.map((t) => t.rows.length));
  const rows = Array.from({ length: nRows }, (_, i) =>
    cols.map((j) => {
      const cells = have.map((t) => t.rows[i]?.[j] ?? null);
      const firstCell = cells[0] ?? null;
      if (keep.has(j)) return firstCell;
      const nums = cells.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      const numericOrMissing = cells.every((v) => v === null || typeof v === 'number');
      if (numericOrMissing && nums.length > 0) {
        const ms = formatMeanStd(meanStd(nums));
        return nums.length === cells.length ? ms : `${ms} (n = ${nums.length} of ${cells.length})`;
      }
      if (cells.every((v) => JSON.stringify(v) === JSON.stringify(firstCell))) return firstCell;
      return cells.map((v) => (v === null ? '—' : String(v))).join(' / ');
    }),
  );
  const n = have.length;
  return {
    title: `${title}: mean ± std over ${n} seed${n === 1 ? '' : 's'} (${seeds.join(', ')})`,
    columns: cols.map((j) => first.columns[j] as string),
    rows,
    note: `${first.note ? `${first.note} ` : ''}Mean ± sample standard deviation (n − 1) over the seeds; a single seed shows no std (—).`,
  };
}

/**
 * The tokenizer lines of an aggregate summary (put first): the agreement over seeds, after a red
 * warning naming the seeds whose tokenizer does not read back.
 */
export function aggregateTokenizerLines(results: readonly ExperimentResult[], seeds: readonly number[]): string[] {
  const ag = seedValues(results, 'tokenizerAgreement');
  if (ag.length === 0) return ['Tokenizer analyzer agreement: not reported.', ''];
  const bad = results
    .map((r, i) => ({ seed: seeds[i], a: r.metrics?.tokenizerAgreement }))
    .filter((x) => typeof x.a === 'number' && x.a < AGREEMENT_FLOOR);
  const line = `Tokenizer analyzer agreement over seeds: ${formatMeanStd(meanStd(ag))} (floor ${AGREEMENT_FLOOR}).`;
  if (!bad.length) return [line, ''];
  const warn = `<span style="color:#c00">**Warning:** the tokenizer does not read back for seed${bad.length > 1 ? 's' : ''} ${bad.map((x) => `${x.seed} (${formatFixed(x.a as number)})`).join(', ')} (analyzer agreement < ${AGREEMENT_FLOOR}): the figures cannot judge the claim.</span>`;
  return [warn, '', line, ''];
}
