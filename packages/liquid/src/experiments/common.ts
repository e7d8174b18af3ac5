/**
 * The Liquid pipeline shared by the experiments (paper sec. 3; brief 2.10): Shapes images and
 * captions plus the `shapes` grammar text; a word tokenizer; the VQ tokenizer trained once, frozen,
 * and its codes extracted once into a code cache on disk (shared by every experiment run beside
 * this one); a text LM trained on the text; its vocabulary extended by K codes + `<boi>`, `<eoi>`,
 * `<unconditional>` (mean-resized rows); continued next-token training on a mix of text, T2I and
 * caption examples; and the evaluations (text perplexity, generation score and Frechet distance
 * through @mmlm/data's ShapeAnalyzer, caption accuracy by its caption judge). Images and captions are
 * @mmlm/data's ShapesDataset (train and val splits).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type ExperimentContext, Rng, type TransformerDecoder, tf } from '@mmlm/core';
import {
  captionScore,
  frechetDistance,
  generationScore,
  grammarCorpus,
  type Scene,
  type ShapesConfig,
  ShapesDataset,
  splitText,
  WordTokenizer,
  writeImageGrid,
} from '@mmlm/data';
import { decodeCodesToImages, extractCodes, loadCodeCache, loadWeights, saveCodeCache, saveWeights, tokenizerStats } from '../codes.js';
import { type Batch, drawKind, type Example, LiquidCollator } from '../collate.js';
import {
  CAPTION_INSTRUCTION,
  EVAL_T2I_SUFFIX,
  type LiquidConfig,
  type LMConfig,
  type Mix,
  preset,
  T2I_SUFFIXES,
  type TrainPhase,
  tokensPerImage,
} from '../config.js';
import { buildLM, extendVocabulary, type LiquidVocab, liquidVocab, VQTokenizer } from '../model.js';
import { captionImages, generateImageCodes, textLoss } from '../sample.js';
import { lmTrainStep, makeOptimizer, tokenizerTrainStep } from '../train.js';

/** One Shapes image with its caption and scene. */
export interface ShapeItem {
  /** [S * S * 3], HWC, pixels in [0, 1]. */
  image: Float32Array;
  caption: string;
  scene: Scene;
}

export interface ShapesData {
  imageSize: number;
  /** The dataset's resolved config (for the analyzer). */
  config: ShapesConfig;
  train: ShapeItem[];
  val: ShapeItem[];
}

/** The first `train` / `val` items of @mmlm/data's Shapes train and val splits (one object at 16 px). */
export function shapesData(o: { imageSize: number; train: number; val: number; seed: number }): ShapesData {
  const split = (name: 'train' | 'val', n: number) => {
    const ds = new ShapesDataset({ seed: o.seed, imageSize: o.imageSize, split: name });
    return { ds, items: [...ds.iterate(0, n)].map((x) => ({ image: x.image, caption: x.caption, scene: x.scene })) };
  };
  const tr = split('train', o.train);
  return { imageSize: o.imageSize, config: tr.ds.config, train: tr.items, val: split('val', o.val).items };
}

export interface Verdict {
  ok: boolean;
  /** What the analyzer read from the pixels, e.g. "small red circle (middle)". */
  read: string;
}

export interface DataSizes {
  /** Image-caption pairs for training and validation. */
  images: { train: number; val: number };
  /** Characters of grammar text (90% train, 10% validation). */
  textChars: number;
  /** Validation windows for text perplexity. */
  textEvalWindows: number;
}

export interface Prepared {
  presetName: 'tiny' | 'small';
  cfg: LiquidConfig;
  tokenizer: WordTokenizer;
  vocab: LiquidVocab;
  data: ShapesData;
  sizes: DataSizes;
  /** Token ids of the training text. */
  textTrain: Int32Array;
  /** Validation text windows (ids without BOS). */
  textVal: number[][];
  seed: number;
}

/** Data, word tokenizer and vocabulary for a preset (the preset's textVocabSize is set from the tokenizer). */
export function prepare(presetName: 'tiny' | 'small', sizes: DataSizes, seed: number): Prepared {
  const cfg = preset(presetName);
  const data = shapesData({ imageSize: cfg.tokenizer.imageSize, train: sizes.images.train, val: sizes.images.val, seed });
  const text = grammarCorpus({ grammar: 'shapes', seed, chars: sizes.textChars });
  const split = splitText(text, { valFraction: 0.1, atLineBreak: true });
  const tokenizer = WordTokenizer.fromText([
    text,
    ...data.train.map((d) => d.caption),
    ...data.val.map((d) => d.caption),
    ...T2I_SUFFIXES,
    EVAL_T2I_SUFFIX,
    CAPTION_INSTRUCTION,
  ]);
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
  return { presetName, cfg, tokenizer, vocab, data, sizes, textTrain: Int32Array.from(tokenizer.encode(split.train)), textVal, seed };
}

// ---------------------------------------------------------------------------------------------
// The frozen VQ tokenizer and its code cache

export interface TokenizerStage {
  vq: VQTokenizer;
  codesTrain: Int32Array;
  codesVal: Int32Array;
  stats: { mse: number; psnr: number; usage: number; perplexity: number; steps: number; seconds: number; cacheDir: string };
}

/** The shared cache folder: LIQUID_CACHE, else `.liquid-cache` beside the run folder. */
export function cacheRoot(ctx: ExperimentContext): string {
  return process.env.LIQUID_CACHE ?? join(dirname(ctx.outDir), '.liquid-cache');
}

function stackImages(items: ShapeItem[]): Float32Array {
  const per = (items[0] as ShapeItem).image.length;
  const out = new Float32Array(items.length * per);
  items.forEach((d, i) => out.set(d.image, i * per));
  return out;
}

/**
 * Train the VQ tokenizer once, freeze it, extract every image's codes once and cache weights, codes
 * and statistics on disk; later calls with the same data and config load them.
 */
export async function tokenizerStage(ctx: ExperimentContext, prep: Prepared): Promise<TokenizerStage> {
  const c = prep.cfg;
  const key = `${prep.presetName}-s${c.tokenizer.imageSize}-k${c.tokenizer.numCodes}-n${prep.sizes.images.train}-${prep.sizes.images.val}-seed${prep.seed}-${fingerprint({ t: c.tokenizer, p: c.train.tokenizer })}`;
  const dir = join(cacheRoot(ctx), `tokenizer-${key}`);
  const done = join(dir, 'stats.json');
  const vq = new VQTokenizer(c.tokenizer);
  const expect = { tokensPerImage: vq.tokensPerImage, numCodes: vq.numCodes };
  if (existsSync(done)) {
    ctx.log(`tokenizer: loading the frozen tokenizer and cached codes from ${dir}`);
    await loadWeights(join(dir, 'vq.safetensors'), vq);
    const codesTrain = (await loadCodeCache(join(dir, 'codes-train.safetensors'), expect)).codes;
    const codesVal = (await loadCodeCache(join(dir, 'codes-val.safetensors'), expect)).codes;
    vq.eval();
    return { vq, codesTrain, codesVal, stats: JSON.parse(readFileSync(done, 'utf8')) };
  }
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const phase = c.train.tokenizer;
  const opt = makeOptimizer(vq, phase);
  const train = stackImages(prep.data.train);
  const S = c.tokenizer.imageSize;
  const per = S * S * 3;
  const rng = new Rng(prep.seed).fork('tokenizer-batches');
  const bar = ctx.progress('tokenizer', phase.steps);
  for (let t = 0; t < phase.steps; t++) {
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
    if (t % 25 === 0 || t === phase.steps - 1) ctx.metric({ run: 'tokenizer', step: t, loss: r.loss, rec: r.rec, usage: r.usage });
    bar.tick(t + 1, { loss: r.loss, usage: r.usage });
  }
  bar.done();
  opt.dispose();
  vq.eval();
  const val = tokenizerStats(vq, stackImages(prep.data.val));
  const codesTrain = extractCodes(vq, train);
  const meta = { tokenizer: key };
  await saveWeights(join(dir, 'vq.safetensors'), vq, meta);
  await saveCodeCache(join(dir, 'codes-train.safetensors'), { codes: codesTrain, ...expect, metadata: meta });
  await saveCodeCache(join(dir, 'codes-val.safetensors'), { codes: val.codes, ...expect, metadata: meta });
  const stats = {
    mse: val.mse,
    psnr: val.psnr,
    usage: val.usage,
    perplexity: val.perplexity,
    steps: phase.steps,
    seconds: (performance.now() - t0) / 1000,
    cacheDir: dir,
  };
  writeFileSync(done, JSON.stringify(stats, null, 2));
  return { vq, codesTrain, codesVal: val.codes, stats };
}

function fingerprint(x: unknown): string {
  const s = JSON.stringify(x);
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16);
}

// ---------------------------------------------------------------------------------------------
// Batches

/** Draws collated batches of text windows, T2I and caption examples from a mix. */
export class MixSampler {
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

/**
 * The start every Liquid experiment shares: its settings for the preset (`small`, else `tiny`; the
 * runner has already rejected unknown presets), the data and config, and the trained VQ tokenizer.
 */
export async function setupStages<S extends { sizes: DataSizes }>(
  ctx: ExperimentContext,
  settings: Record<'tiny' | 'small', S>,
): Promise<{ st: S; prep: Prepared; cfg: Prepared['cfg']; tok: TokenizerStage }> {
  const name = ctx.preset === 'small' ? 'small' : 'tiny';
  const st = settings[name];
  const prep = prepare(name, st.sizes, ctx.seed);
  return { st, prep, cfg: prep.cfg, tok: await tokenizerStage(ctx, prep) };
}

export interface TextStageResult {
  path: string;
  /** Validation text loss (nats per token). */
  valLoss: number;
  seconds: number;
}

/** Train the text LM over the text vocabulary (a resumable sub-run). */
export function textStage(
  ctx: ExperimentContext,
  prep: Prepared,
  tag: string,
  lm: LMConfig,
  phase: TrainPhase,
  seed: number,
): Promise<TextStageResult> {
  return ctx.subrun(`text-${tag}`, async (dir) => {
    const t0 = performance.now();
    const model = buildLM(lm, prep.vocab.textVocabSize, seed);
    const sampler = new MixSampler(prep, null, { text: 1, t2i: 0, i2t: 0 }, seed + 101);
    trainLoop(ctx, `text-${tag}`, model, sampler, phase);
    const path = join(dir, 'text-lm.safetensors');
    await saveWeights(path, model);
    const valLoss = textLoss(model, prep.vocab, prep.textVal);
    model.dispose();
    return { path, valLoss, seconds: (performance.now() - t0) / 1000 };
  });
}

export interface UnifiedSpec {
  tag: string;
  lm: LMConfig;
  /** A trained text LM to extend, or null to train the same architecture from scratch. */
  textPath: string | null;
  /** Init of the new rows when extending (default 'mean'). */
  newRows?: 'mean' | 'normal';
  mix: Mix;
  phase: TrainPhase;
  seed: number;
  /** Evaluate the generation score every this many steps (0: never). */
  evalEvery?: number;
  /** Prompts and CFG scale of those evaluations. */
  evalPrompts?: number;
  evalScale?: number;
}

export interface UnifiedResult {
  path: string;
  /** Text loss of the extended model before continued training (null from scratch). */
  textLossStart: number | null;
  textLoss: number;
  /** Generation score during training (when evalEvery > 0). */
  curve: { step: number; score: number }[];
  seconds: number;
}

/** Extend (or build) the unified model and continue training on the mix (a resumable sub-run). */
export function unifiedStage(ctx: ExperimentContext, prep: Prepared, tok: TokenizerStage, spec: UnifiedSpec): Promise<UnifiedResult> {
  return ctx.subrun(`unified-${spec.tag}`, async (dir) => {
    const t0 = performance.now();
    let model: TransformerDecoder;
    let textLossStart: number | null = null;
    if (spec.textPath) {
      const text = buildLM(spec.lm, prep.vocab.textVocabSize, spec.seed);
      await loadWeights(spec.textPath, text);
      model = extendVocabulary(text, prep.vocab.size - prep.vocab.textVocabSize, { init: spec.newRows ?? 'mean', seed: spec.seed });
      text.dispose();
      textLossStart = textLoss(model, prep.vocab, prep.textVal);
    } else model = buildLM(spec.lm, prep.vocab.size, spec.seed);
    const sampler = new MixSampler(prep, tok.codesTrain, spec.mix, spec.seed + 202);
    const curve: { step: number; score: number }[] = [];
    const evalEvery = spec.evalEvery ?? 0;
    const onStep = (t: number) => {
      if (evalEvery > 0 && ((t + 1) % evalEvery === 0 || t === 0)) {
        const g = evalGeneration(model, prep, tok, { n: spec.evalPrompts ?? 32, cfgScale: spec.evalScale ?? 3, seed: spec.seed + 7 });
        curve.push({ step: t + 1, score: g.score });
        ctx.metric({ run: `unified-${spec.tag}`, step: t + 1, generationScore: g.score });
      }
    };
    trainLoop(ctx, `unified-${spec.tag}`, model, sampler, spec.phase, onStep);
    const path = join(dir, 'unified.safetensors');
    await saveWeights(path, model);
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

function trainLoop(
  ctx: ExperimentContext,
  name: string,
  model: TransformerDecoder,
  sampler: MixSampler,
  phase: TrainPhase,
  onStep?: (t: number) => void,
): void {
  const opt = makeOptimizer(model, phase);
  const bar = ctx.progress(name, phase.steps);
  let ema = 0;
  model.train();
  for (let t = 0; t < phase.steps; t++) {
    const r = lmTrainStep(model, opt, sampler.batch(phase.batchSize), t, phase);
    ema = t === 0 ? r.loss : 0.95 * ema + 0.05 * r.loss;
    if (t % 25 === 0 || t === phase.steps - 1) ctx.metric({ run: name, step: t, loss: r.loss, lr: r.lr });
    bar.tick(t + 1, { loss: ema });
    onStep?.(t);
  }
  bar.done();
  opt.dispose();
}

/** A unified model of an LM config with weights from `path`. */
export async function loadUnified(prep: Prepared, lm: LMConfig, path: string): Promise<TransformerDecoder> {
  const m = buildLM(lm, prep.vocab.size);
  await loadWeights(path, m);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export interface GenerationEval {
  score: number;
  fd: number;
  images: Float32Array[];
  prompts: string[];
  verdicts: Verdict[];
}

/** Generate one image for each of the first n validation captions; score with the analyzer; FD against the real images. */
export function evalGeneration(
  model: TransformerDecoder,
  prep: Prepared,
  tok: TokenizerStage,
  o: { n: number; cfgScale: number; seed: number },
): GenerationEval {
  const items = prep.data.val.slice(0, o.n);
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
    prep.data.config,
  );
  const fd = frechetDistance(
    items.map((d) => d.image),
    images,
    { imageSize: S },
  );
  const verdicts = g.pairs.map((p) => ({
    ok: p.match.overall,
    read: p.detected.length ? p.detected.map((o) => `${o.size} ${o.colour} ${o.shape}`).join(', ') : 'nothing detected',
  }));
  return { score: g.overall, fd, images, prompts: items.map((d) => d.caption), verdicts };
}

/** Greedy captions of the first n validation images (from the cached codes); accuracy by the caption parser. */
export function evalCaptions(
  model: TransformerDecoder,
  prep: Prepared,
  tok: TokenizerStage,
  n: number,
): { accuracy: number; captions: string[] } {
  const L = prep.vocab.tokensPerImage;
  const items = prep.data.val.slice(0, n);
  const codes = items.map((_, i) => tok.codesVal.subarray(i * L, (i + 1) * L));
  const out: string[] = [];
  const instruction = prep.tokenizer.encode(CAPTION_INSTRUCTION);
  for (let i = 0; i < codes.length; i += 32)
    for (const ids of captionImages(model, prep.vocab, codes.slice(i, i + 32), instruction, { maxNewTokens: 12 }))
      out.push(prep.tokenizer.decode(ids, { skipSpecial: true }));
  return { accuracy: captionScore(out.map((caption, i) => ({ caption, scene: (items[i] as ShapeItem).scene }))).overall, captions: out };
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

/** Mean and sample standard deviation. */
export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

export function fmt(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
}
