/**
 * Every experiment runs at the `tiny` preset (sharing one frozen tokenizer and code cache), reports
 * its generation and captioning metrics on the seen and held-out sets (values in [0, 1]), logs its
 * losses per sub-run, and its metrics are recomputed here by independent paths (the saved weights;
 * reconstruction through the straight-through forward instead of tokenize + decode; the analyzer
 * agreement from those reconstructions; text loss by a float64 log-softmax; the identities between
 * reported numbers). The paper's claims are not asserted: the small preset reports them, over seeds
 * (aggregate.test.ts checks the aggregates).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, loadModule, type TransformerDecoder, tf } from '@mmlm/core';
import { runExperimentInline } from '@mmlm/core/experiment';
import { ShapeAnalyzer, seenHeldOutSets } from '@mmlm/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armTokenizerConfig, liquidArmRecipe } from '../src/experiments/arm.js';
import { type Prepared, prepare } from '../src/experiments/common.js';
import { cfgSweepExperiment, experiments, initExperiment, synergyExperiment, tradeoffExperiment } from '../src/experiments/index.js';
import { buildLM, fromModelRange, loadCodeCache, tokensPerImage, toModelRange, VQTokenizer } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'liquid-exp-'));
const tinySizes = { images: { train: 48, evalPrompts: 6 }, textChars: 6000, textEvalWindows: 4 };

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await initBackend({ backend: 'cpu', log: false });
});

/** Mean next-token NLL of [BOS] + window over the validation windows, float64 log-softmax. */
function referenceTextLoss(m: TransformerDecoder, prep: Prepared): number {
  m.eval();
  let sum = 0;
  let n = 0;
  for (const w of prep.textVal) {
    const ids = [prep.vocab.bos, ...w];
    const logits = tf.tidy(() => m.forward(tf.tensor2d([ids], [1, ids.length], 'int32')).arraySync() as number[][][]);
    for (let t = 0; t < w.length; t++) {
      const row = logits[0]![t]!;
      const mx = Math.max(...row);
      sum += mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0)) - row[w[t]!]!;
      n++;
    }
  }
  return sum / n;
}

function subrunResult(dir: string, name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'subruns', name, 'result.json'), 'utf8'));
}

function inUnit(m: Record<string, unknown>, keys: string[]): void {
  for (const k of keys) {
    expect(typeof m[k], k).toBe('number');
    expect(m[k] as number, k).toBeGreaterThanOrEqual(0);
    expect(m[k] as number, k).toBeLessThanOrEqual(1);
  }
}

function metricRecords(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** Loss records are tagged with the sub-run they train (one loss curve per sub-run), never `run`. */
function expectSubrunTagged(dir: string, names: string[]): void {
  const recs = metricRecords(dir);
  const loss = recs.filter((r) => typeof r.loss === 'number');
  expect(loss.length).toBeGreaterThan(0);
  for (const r of recs) expect(r.run).toBeUndefined();
  for (const r of loss) expect(typeof r.subrun).toBe('string');
  const tagged = new Set(loss.map((r) => r.subrun));
  for (const n of names) expect(tagged.has(n), n).toBe(true);
  expect(recs.some((r) => r.subrun === 'tokenizer' && typeof r.tokenizerAgreement === 'number')).toBe(true);
}

const RED = '<span style="color:#c00">';

function expectTokenizerWarning(r: { metrics: Record<string, unknown>; summary?: string }): void {
  const a = r.metrics.tokenizerAgreement as number;
  inUnit(r.metrics, ['tokenizerAgreement']);
  if (a < 0.95) expect(r.summary).toContain(`${RED}**Warning:** the tokenizer does not read back`);
  else expect(r.summary).not.toContain(RED);
}

describe('experiments at the tiny preset', () => {
  it('are registered with ids, claims, tiny/small presets and an aggregate', () => {
    expect(experiments.map((e) => e.id)).toEqual(['liquid.cfg-sweep', 'liquid.tradeoff', 'liquid.synergy', 'liquid.init']);
    for (const e of experiments) {
      expect(e.paper).toBe('Liquid');
      expect(e.claim.length).toBeGreaterThan(40);
      expect(Object.keys(e.presets)).toEqual(['tiny', 'small', 'small-pos']);
      expect(typeof e.aggregate).toBe('function');
      // the small preset names the arm recipe it takes (deviations from Liquid's script)
      expect(e.presets.small?.description).toContain('arm recipe: k-means + EMA 0.99 VQ codebook');
    }
  });

  it('data: seen and held-out sets apart, the arm recipe applied, eval captions in the word vocabulary', () => {
    const prep = prepare('tiny', tinySizes, 0);
    const d = prep.data;
    expect(d.seen.length).toBe(6);
    expect(d.heldOut.length).toBe(6);
    const sets = seenHeldOutSets({ seed: 0, imageSize: 16 }, { train: 48, seen: 6, heldOut: 6 });
    expect(d.trainKeys).toBe(sets.trainKeys.size);
    expect(d.heldOut.map((x) => x.caption)).toEqual(sets.heldOut.map((x) => x.caption));
    for (const s of sets.heldOut) expect(sets.trainKeys.has(s.key)).toBe(false);
    for (const s of sets.seen) expect(sets.trainKeys.has(s.key)).toBe(true);
    inUnit(d.ceilings, ['generationHeldOut', 'captionHeldOut']);
    const unk = prep.tokenizer.specialId('<unk>');
    for (const x of [...d.seen, ...d.heldOut]) expect(prep.tokenizer.encode(x.caption)).not.toContain(unk);
    const recipe = liquidArmRecipe();
    expect(prep.cfg.tokenizer.kmeansInit).toBe(recipe.tokenizer.kmeansInit);
    expect(prep.cfg.tokenizer.emaDecay).toBe(recipe.tokenizer.emaDecay);
    expect(prep.cfg.tokenizer.deadCodeSteps).toBe(recipe.tokenizer.deadCodeSteps);
    expect(prep.cfg.lm.dropout).toBe(recipe.backbone.dropout);
    expect(prep.cfg.train.unified.weightDecay).toBe(recipe.backbone.weightDecay);
    expect(prep.cfg.train.text.weightDecay).toBe(0);
  });

  it('the arm tokenizer downsampling: (S / f)^2 codes; f must be a power of two >= 2', () => {
    expect(tokensPerImage(armTokenizerConfig(32, 0))).toBe(64);
    expect(tokensPerImage(armTokenizerConfig(32, 0, liquidArmRecipe({ tokenizer: { downsample: 8 } })))).toBe(16);
    expect(tokensPerImage(armTokenizerConfig(16, 0, liquidArmRecipe({ tokenizer: { downsample: 2 } })))).toBe(64);
    expect(() => liquidArmRecipe({ tokenizer: { downsample: 6 } })).toThrow(/downsample.*power of two/s);
    expect(() => liquidArmRecipe({ tokenizer: { downsample: 1 } })).toThrow(/downsample/);
  });

  it('cfg-sweep: seen / held-out metrics, and tokenizer and text metrics match independent recomputations', async () => {
    const outDir = join(root, 'cfg');
    const r = await runExperimentInline(cfgSweepExperiment, { preset: 'tiny', seed: 0, outDir });
    const m = r.metrics;
    for (const s of [1, 2, 3, 5, 7]) {
      inUnit(m, [`s${s}_generationScoreSeen`, `s${s}_generationScoreHeldOut`]);
      expect(Number.isFinite(m[`s${s}_frechetSeen`])).toBe(true);
    }
    inUnit(m, ['generationCeilingHeldOut', 'captionAccuracySeen', 'captionAccuracyHeldOut', 'captionCeilingHeldOut']);
    expect(m.promptsPerSet).toBe(6);
    expect(r.tables?.[0]?.rows.length).toBe(5);
    expect(r.tables?.[0]?.rows[0]?.slice(0, 4)).toEqual([
      1,
      m.s1_generationScoreSeen,
      m.s1_generationScoreHeldOut,
      m.generationCeilingHeldOut,
    ]);
    for (const f of ['samples-seen-cfg1.png', 'samples-heldout-cfg7.png']) expect(existsSync(join(outDir, f)), f).toBe(true);
    expect(r.summary).toContain('liquid.cfg-sweep');
    expect(r.summary).toContain('One seed (0)');
    expectTokenizerWarning(r);
    expectSubrunTagged(outDir, ['tokenizer', 'text-base', 'unified-mix']);

    const prep = prepare('tiny', tinySizes, 0);
    // the frozen tokenizer from the shared cache: reconstruction MSE via the straight-through forward
    const cache = readdirSync(join(root, '.liquid-cache')).find((d) => d.startsWith('tokenizer-tiny'))!;
    const dir = join(root, '.liquid-cache', cache);
    const vq = new VQTokenizer(prep.cfg.tokenizer);
    await loadModule(join(dir, 'vq.safetensors'), vq);
    vq.eval();
    const S = prep.cfg.tokenizer.imageSize;
    const items = [...prep.data.seen, ...prep.data.heldOut];
    const x = tf.tensor4d(Float32Array.from(items.flatMap((d) => Array.from(d.image))), [items.length, S, S, 3]);
    const rec = tf.tidy(() => fromModelRange(vq.forward(toModelRange(x)).xRec));
    const mse = tf.tidy(() => rec.sub(x).square().mean().dataSync()[0] as number);
    expect(Math.abs(mse - (m.tokenizer_mse as number))).toBeLessThan(1e-5);
    // analyzer agreement: same objects (shape, colour, size, cell) read from original and reconstruction
    const recPix = rec.dataSync() as Float32Array;
    const analyzer = new ShapeAnalyzer(prep.data.config);
    const read = (im: Float32Array) =>
      JSON.stringify(
        analyzer
          .analyze(im)
          .objects.map((o) => [o.shape, o.colour, o.size, o.cell].join(' '))
          .sort(),
      );
    const per = S * S * 3;
    const agree = items.filter((d, i) => read(d.image) === read(recPix.slice(i * per, (i + 1) * per))).length / items.length;
    expect(m.tokenizerAgreement).toBeCloseTo(agree, 10);
    const codes = await loadCodeCache(join(dir, 'codes-eval.safetensors'));
    expect(codes.numImages).toBe(12);
    const used = new Set(codes.codes).size / prep.cfg.tokenizer.numCodes;
    expect(m.codebook_usage).toBeCloseTo(used, 10);
    x.dispose();
    rec.dispose();
    vq.dispose();
    // text perplexity of the saved unified model by a float64 log-softmax
    const uni = subrunResult(outDir, 'unified-mix') as { path: string; textLoss: number };
    const model = buildLM(prep.cfg.lm, prep.vocab.size);
    await loadModule(uni.path, model);
    expect(Math.abs(Math.log(m.text_ppl as number) - referenceTextLoss(model, prep))).toBeLessThan(1e-4);
    model.dispose();
    const text = subrunResult(outDir, 'text-base') as { valLoss: number };
    expect(m.text_ppl_before).toBeCloseTo(Math.exp(text.valLoss), 10);
    // one seed: the aggregate calls nothing
    const agg = cfgSweepExperiment.aggregate!(JSON.parse(JSON.stringify([r])), [0]);
    expect(agg.summary).toContain('one seed, cannot judge');
    expect(agg.tables?.[0]?.rows.length).toBe(5);
  });

  it('tradeoff: gaps are the differences of the runs it reports', async () => {
    const outDir = join(root, 'tradeoff');
    const r = await runExperimentInline(tradeoffExperiment, { preset: 'tiny', seed: 0, outDir });
    const m = r.metrics;
    expect(r.tables?.[0]?.rows.length).toBe(3);
    inUnit(m, ['generationCeilingHeldOut']);
    for (const w of [16, 24, 32]) {
      const t = subrunResult(outDir, `unified-w${w}-s0-text`) as { textLoss: number };
      const x = subrunResult(outDir, `unified-w${w}-s0-mixed`) as { textLoss: number };
      expect(m[`w${w}_ppl_text_only`]).toBeCloseTo(Math.exp(t.textLoss), 8);
      expect(m[`w${w}_ppl_gap`]).toBeCloseTo(Math.exp(x.textLoss) - Math.exp(t.textLoss), 8);
      for (const arm of ['imageOnly', 'mixed']) inUnit(m, [`w${w}_${arm}_generationScoreSeen`, `w${w}_${arm}_generationScoreHeldOut`]);
      for (const set of ['Seen', 'HeldOut'])
        expect(m[`w${w}_scoreGap${set}`]).toBeCloseTo(
          (m[`w${w}_imageOnly_generationScore${set}`] as number) - (m[`w${w}_mixed_generationScore${set}`] as number),
          10,
        );
    }
    expectTokenizerWarning(r);
    expectSubrunTagged(outDir, ['text-w16-s0', 'unified-w16-s0-text', 'unified-w32-s0-mixed']);
  });

  it('synergy: three runs, the added-data runs train 4/3 as many steps', async () => {
    const outDir = join(root, 'synergy');
    const r = await runExperimentInline(synergyExperiment, { preset: 'tiny', seed: 0, outDir });
    expect(r.tables?.[0]?.rows.map((row) => row[1])).toEqual([3, 4, 4]);
    inUnit(r.metrics, ['generationCeilingHeldOut', 'captionCeilingHeldOut']);
    for (const k of ['baseline', 'add_gen', 'add_und']) {
      inUnit(r.metrics, [
        `${k}_generationScoreSeen`,
        `${k}_generationScoreHeldOut`,
        `${k}_captionAccuracySeen`,
        `${k}_captionAccuracyHeldOut`,
      ]);
      const u = subrunResult(outDir, `unified-${k}-s0`) as { textLoss: number };
      expect(r.metrics[`${k}_text_ppl`]).toBeCloseTo(Math.exp(u.textLoss), 4);
    }
    expectTokenizerWarning(r);
    expectSubrunTagged(outDir, ['text-base-s0', 'unified-baseline-s0', 'unified-add_und-s0']);
  });

  it('init: steps-to-target and perplexities follow from the saved curves', async () => {
    const outDir = join(root, 'init');
    const r = await runExperimentInline(initExperiment, { preset: 'tiny', seed: 0, outDir });
    for (const arm of ['pretrained_mean', 'pretrained_normal', 'scratch']) {
      const u = subrunResult(outDir, `unified-${arm}`) as {
        curve: { step: number; seen: number; heldOut: number }[];
        textLoss: number;
        textLossStart: number | null;
      };
      expect(u.curve.map((p) => p.step)).toEqual([1, 2, 4]);
      const reach = u.curve.find((p) => p.seen >= 0.5)?.step ?? null;
      expect(r.metrics[`${arm}_steps_to_target`]).toBe(reach);
      expect(r.metrics[`${arm}_final_generationScoreSeen`]).toBe(u.curve[2]!.seen);
      expect(r.metrics[`${arm}_final_generationScoreHeldOut`]).toBe(u.curve[2]!.heldOut);
      inUnit(r.metrics, [`${arm}_final_generationScoreSeen`, `${arm}_final_generationScoreHeldOut`]);
      expect(r.metrics[`${arm}_text_ppl_after`]).toBeCloseTo(Math.exp(u.textLoss), 8);
      if (arm === 'scratch') expect(u.textLossStart).toBeNull();
      else expect(r.metrics[`${arm}_text_ppl_start`]).toBeCloseTo(Math.exp(u.textLossStart as number), 8);
    }
    inUnit(r.metrics, ['generationCeilingHeldOut']);
    expectTokenizerWarning(r);
    expectSubrunTagged(outDir, ['text-base', 'unified-pretrained_mean', 'unified-scratch']);
    const curve = metricRecords(outDir).filter((x) => x.subrun === 'unified-scratch' && typeof x.generationScoreSeen === 'number');
    expect(curve.map((x) => x.step)).toEqual([1, 2, 4]);
  });
});
