/**
 * Building blocks shared by the MaskLLM experiments: character data, a dense decoder trained from
 * scratch and saved, one-shot baselines (§4.1 baselines of Table 1), and MaskLLM mask-only runs
 * (§3-4) whose hard masks are saved as a mask file, loaded into a fresh dense copy, checked to be
 * exactly N:M on every layer, and only then evaluated: the numbers reported are the exported
 * model's.
 */
import { join } from 'node:path';
import { Rng, saveModule, type TransformerDecoder, tf } from '@mmlm/core';
import { type ExperimentContext, runSteps } from '@mmlm/core/experiment';
import { CharTokenizer, splitText, WindowBatcher } from '@mmlm/data';
import { z } from 'zod';
import { MaskConfigSchema, type MaskLLMConfig, MaskTrainConfigSchema, preset } from '../config.js';
import { blockLinears, buildDecoder, hardMasks, injectPrior, invalidGroups, loadDecoder, sparsify } from '../model.js';
import { type OneShotMethod, oneShotPrune } from '../prune.js';
import { evaluatePerplexity } from '../sample.js';
import { applyMaskFile, loadMasks, saveMasks, withShapes } from '../storage.js';
import { denseOptimizer, denseTrainStep, maskOptimizer, maskTrainStep } from '../train.js';

/** Token ids of one corpus split. */
export interface Corpus {
  name: string;
  train: Int32Array;
  val: Int32Array;
}

/** A character tokenizer over all texts, and each text split 90/10 (contiguous) into token ids. */
export function charCorpora(texts: { name: string; text: string }[], valFraction = 0.1): { tokenizer: CharTokenizer; corpora: Corpus[] } {
  const tokenizer = CharTokenizer.fromText(texts.map((t) => t.text).join(''));
  const corpora = texts.map(({ name, text }) => {
    const s = splitText(text, { valFraction, atLineBreak: true });
    return { name, train: Int32Array.from(tokenizer.encode(s.train)), val: Int32Array.from(tokenizer.encode(s.val)) };
  });
  return { tokenizer, corpora };
}

/**
 * Throws before any training when a corpus' train or validation split holds fewer than `minTokens`
 * tokens (one training / evaluation window): e.g. a `--data` file whose last 10% has no line break
 * leaves the line-break split nothing to validate on.
 */
export function checkCorpusSplits(corpora: readonly Corpus[], minTokens: number, description: string): void {
  for (const c of corpora)
    for (const part of ['train', 'val'] as const)
      if (c[part].length < minTokens)
        throw new Error(
          `corpus ${c.name} (${description}): the ${part === 'val' ? 'validation' : 'training'} split has ${c[part].length} tokens, need at least ${minTokens} (one window of maxSeqLen + 1)` +
            (part === 'val'
              ? '; the split cuts the last 10% at a line break, so a text whose last 10% has no line break leaves nothing to validate on: add line breaks or more text'
              : '; give more text'),
        );
}

/** A preset's config with the tokenizer's vocabulary size. */
export function configFor(name: 'tiny' | 'quick' | 'small', vocabSize: number): MaskLLMConfig {
  const cfg = preset(name);
  cfg.model.vocabSize = vocabSize;
  return cfg;
}

/** Draws [B, T+1] windows from one or more corpora (each row from corpus i with probability weights[i]). */
class MixedBatcher {
  private readonly batchers: WindowBatcher[];
  private readonly rng: Rng;

  constructor(
    corpora: Int32Array[],
    readonly batchSize: number,
    readonly blockSize: number,
    seed: number,
    private readonly weights: number[] = corpora.map(() => 1),
  ) {
    this.rng = new Rng(seed);
    this.batchers = corpora.map((c, i) => new WindowBatcher(c, { batchSize: 1, blockSize, seed: this.rng.fork(i).nextSeed() }));
  }

  next(): tf.Tensor2D {
    const W = this.blockSize + 1;
    const data = new Int32Array(this.batchSize * W);
    const total = this.weights.reduce((a, b) => a + b, 0);
    for (let b = 0; b < this.batchSize; b++) {
      let u = this.rng.uniform() * total;
      let i = 0;
      while (i < this.weights.length - 1 && u >= (this.weights[i] as number)) u -= this.weights[i++] as number;
      data.set(this.batchers[i]!.next().data, b * W);
    }
    return tf.tensor2d(data, [this.batchSize, W], 'int32');
  }
}

const evalSettings = {
  /** Evaluation windows (of maxSeqLen tokens) per corpus; the rest of the split is unused. */
  evalWindows: z.number().int().positive(),
};

/** The dense decoder's training from scratch (AdamW, cosine from lr to lrMin, clip 1). */
export const DenseSettingsSchema = z.strictObject({
  ...evalSettings,
  steps: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  lr: z.number().positive(),
  lrMin: z.number().nonnegative(),
  weightDecay: z.number().nonnegative(),
});
type DenseSettings = z.infer<typeof DenseSettingsSchema>;
/** What evaluation reads of a run's settings. */
type EvalSettings = Pick<DenseSettings, 'evalWindows'>;

interface DenseRun {
  path: string;
  steps: number;
  seconds: number;
  finalTrainLoss: number;
  /** Validation loss (nats/token) per corpus name. */
  val: Record<string, number>;
}

/** Train the dense decoder (a sub-run: skipped when already done in this run folder). */
export function trainDense(
  ctx: ExperimentContext,
  cfg: MaskLLMConfig,
  corpora: Corpus[],
  s: DenseSettings,
  weights?: number[],
): Promise<DenseRun> {
  return ctx.subrun('dense', async (dir, sub) => {
    const t0 = performance.now();
    const dec = buildDecoder(cfg, ctx.seed);
    const opt = denseOptimizer(dec, s.weightDecay);
    const batcher = new MixedBatcher(
      corpora.map((c) => c.train),
      s.batchSize,
      cfg.model.maxSeqLen,
      new Rng(ctx.seed).fork('dense-batches').nextSeed(),
      weights,
    );
    const { ema } = runSteps({
      name: 'dense',
      steps: s.steps,
      step: (t) => {
        const ids = batcher.next();
        const loss = denseTrainStep(dec, opt, ids, t, {
          steps: s.steps,
          lr: s.lr,
          lrMin: s.lrMin,
          weightDecay: s.weightDecay,
          gradClip: 1,
        });
        ids.dispose();
        return loss;
      },
      progress: ctx.progress('dense', s.steps),
      show: (_, ema) => ({ loss: ema }),
      metric: sub.metric,
    });
    opt.dispose();
    const path = join(dir, 'dense.safetensors');
    await saveModule(path, dec);
    const val: Record<string, number> = {};
    for (const c of corpora) val[c.name] = evalLoss(dec, c.val, cfg, s);
    dec.dispose();
    return { path, steps: s.steps, seconds: (performance.now() - t0) / 1000, finalTrainLoss: ema, val };
  });
}

/** Validation loss (nats/token) of a decoder on the first evalWindows windows of `val`. */
function evalLoss(dec: TransformerDecoder, val: Int32Array, cfg: MaskLLMConfig, s: EvalSettings): number {
  return evaluatePerplexity(dec, val, { seqLen: cfg.model.maxSeqLen, maxWindows: s.evalWindows }).loss;
}

/** Calibration sequences [n, T] (random windows of the training split). */
export function calibration(train: Int32Array, n: number, T: number, seed: number): tf.Tensor2D {
  const b = new WindowBatcher(train, { batchSize: n, blockSize: T - 1, seed });
  return tf.tensor2d(b.next().data, [n, T], 'int32');
}

export interface OneShotRun {
  /** Validation loss per corpus of the pruned model. */
  val: Record<string, number>;
  masks: Map<string, Uint8Array>;
}

/** Prune a fresh copy of the dense model one-shot and evaluate it. */
export async function runOneShot(
  cfg: MaskLLMConfig,
  densePath: string,
  method: OneShotMethod,
  update: boolean,
  calib: tf.Tensor | null,
  evalOn: Corpus[],
  s: EvalSettings,
): Promise<OneShotRun> {
  const dec = await loadDecoder(cfg, densePath);
  try {
    const masks = oneShotPrune(dec, method, calib, { n: cfg.mask.n, m: cfg.mask.m, update });
    const val: Record<string, number> = {};
    for (const c of evalOn) val[c.name] = evalLoss(dec, c.val, cfg, s);
    return { val, masks };
  } finally {
    dec.dispose();
  }
}

/**
 * Overrides of a config section: each given field checked by the section's schema, none filled in
 * from its defaults (the run spreads them over the preset's section), unknown fields rejected.
 */
function overridesOf<S extends z.ZodObject>(section: S): z.ZodType<Partial<z.output<S>>, Partial<z.output<S>>> {
  const shape = Object.fromEntries(
    Object.entries(section.shape).map(([k, v]) => [k, ((v instanceof z.ZodDefault ? v.unwrap() : v) as z.ZodType).optional()]),
  );
  return z.strictObject(shape) as unknown as z.ZodType<Partial<z.output<S>>, Partial<z.output<S>>>;
}

/** A MaskLLM run: the config preset's mask and train sections with these overrides. */
export const MaskSettingsSchema = z.strictObject({
  ...evalSettings,
  mask: overridesOf(MaskConfigSchema).optional(),
  train: overridesOf(MaskTrainConfigSchema).optional(),
});
type MaskSettings = z.infer<typeof MaskSettingsSchema>;

export interface MaskRun {
  maskPath: string;
  seconds: number;
  /** Validation loss per corpus of the exported model (hard masks loaded from the mask file). */
  val: Record<string, number>;
  /** Loss of the initial hard mask (the prior's argmax) on the first evaluation corpus. */
  initialVal: number;
  /** Groups of the exported model's block linears without exactly N non-zero weights (must be 0). */
  invalidGroups: number;
  /** Mean LM loss and regulariser over the last 10% of the steps. */
  finalLm: number;
  finalReg: number;
  /** Fraction of groups whose final mask differs from the initial (prior) argmax. */
  changed: number;
}

/**
 * MaskLLM mask-only training of a fresh copy of the dense model on `train` (a sub-run), starting
 * from `prior` masks (or none), then export, save, reload and evaluate.
 */
export function runMaskLLM(
  ctx: ExperimentContext,
  name: string,
  cfg: MaskLLMConfig,
  densePath: string,
  train: Int32Array,
  evalOn: Corpus[],
  prior: (() => Promise<Map<string, Uint8Array>>) | null,
  s: MaskSettings,
): Promise<MaskRun> {
  return ctx.subrun(name, async (dir, sub) => {
    const t0 = performance.now();
    const mask = { ...cfg.mask, ...s.mask };
    const trainCfg = { ...cfg.train, ...s.train };
    const dec = await loadDecoder(cfg, densePath);
    const seed = new Rng(ctx.seed).fork(name).nextSeed();
    sparsify(dec, { n: mask.n, m: mask.m, initStd: mask.gateInitStd, hard: mask.hard, seed });
    if (prior) injectPrior(dec, await prior(), mask.priorStrength);
    const initial = hardMasks(dec);
    dec.eval();
    const initialVal = evalLoss(dec, evalOn[0]!.val, cfg, s);
    dec.train();
    const opt = maskOptimizer(dec, trainCfg);
    const batcher = new MixedBatcher([train], trainCfg.batchSize, cfg.model.maxSeqLen, new Rng(seed).fork('batches').nextSeed());
    const trained = runSteps({
      name,
      steps: trainCfg.steps,
      step: (t) => {
        const ids = batcher.next();
        const r = maskTrainStep(dec, opt, ids, t, { mask, train: trainCfg });
        ids.dispose();
        return r;
      },
      progress: ctx.progress(name, trainCfg.steps),
      show: (r) => ({ lm: r.lm }),
      metric: (m) => sub.metric({ ...m }),
    });
    opt.dispose();
    const final = hardMasks(dec);
    let changedGroups = 0;
    let groups = 0;
    for (const [p, m] of final) {
      const a = initial.get(p)!;
      for (let g = 0; g < m.length / mask.m; g++, groups++)
        for (let j = 0; j < mask.m; j++)
          if (m[g * mask.m + j] !== a[g * mask.m + j]) {
            changedGroups++;
            break;
          }
    }
    const maskPath = join(dir, 'mask.safetensors');
    await saveMasks(maskPath, { n: mask.n, m: mask.m, encoding: 'index', layers: withShapes(dec, final) });
    dec.dispose();
    const exported = await loadDecoder(cfg, densePath);
    const val: Record<string, number> = {};
    let bad = 0;
    try {
      applyMaskFile(exported, loadMasks(maskPath));
      bad = exportedInvalidGroups(exported, mask.n, mask.m);
      for (const c of evalOn) val[c.name] = evalLoss(exported, c.val, cfg, s);
    } finally {
      exported.dispose();
    }
    return {
      maskPath,
      seconds: (performance.now() - t0) / 1000,
      val,
      initialVal,
      invalidGroups: bad,
      finalLm: trained.mean?.lm ?? Number.NaN,
      finalReg: trained.mean?.reg ?? Number.NaN,
      changed: changedGroups / groups,
    };
  });
}

/** Non-zero count check of an exported model: groups of the block linears without exactly N non-zeros. */
function exportedInvalidGroups(dec: TransformerDecoder, n: number, m: number): number {
  let bad = 0;
  for (const [, l] of blockLinears(dec)) bad += invalidGroups(l.weight.dataSync(), n, m);
  return bad;
}

export const ppl = (loss: number) => Math.exp(loss);

/** Number formatting for tables: 3 significant decimals for perplexities. */
export function fmt(x: number | null | undefined, digits = 3): string | null {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  if (Math.abs(x) >= 1000) return x.toExponential(2);
  return x.toFixed(digits);
}

/** The line a single-seed summary ends with. */
export function oneSeedNote(seed: number): string {
  return `One seed (seed ${seed}): no standard deviation, and no difference is judged; \`--seeds 0,1,2\` gives mean ± std and verdicts beyond two standard errors.`;
}
