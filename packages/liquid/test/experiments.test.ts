/**
 * Every experiment runs at the `tiny` preset (sharing one frozen tokenizer and code cache), and its
 * metrics are recomputed here by independent paths (the saved weights; reconstruction through the
 * straight-through forward instead of tokenize + decode; text loss by a float64 log-softmax; the
 * identities between reported numbers). The paper's claims are not asserted: the small preset
 * reports them.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, runExperimentInline, type TransformerDecoder, tf } from '@mmlm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Prepared, prepare } from '../src/experiments/common.js';
import { cfgSweepExperiment, experiments, initExperiment, synergyExperiment, tradeoffExperiment } from '../src/experiments/index.js';
import { buildLM, fromModelRange, loadCodeCache, loadWeights, toModelRange, VQTokenizer } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'liquid-exp-'));
const tinySizes = { images: { train: 48, val: 16 }, textChars: 6000, textEvalWindows: 4 };

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

describe('experiments at the tiny preset', () => {
  it('are registered with ids, claims and tiny/small presets', () => {
    expect(experiments.map((e) => e.id)).toEqual(['liquid.cfg-sweep', 'liquid.tradeoff', 'liquid.synergy', 'liquid.init']);
    for (const e of experiments) {
      expect(e.paper).toBe('Liquid');
      expect(e.claim.length).toBeGreaterThan(40);
      expect(Object.keys(e.presets)).toEqual(['tiny', 'small']);
    }
  });

  it('cfg-sweep: tokenizer, text and generation metrics match independent recomputations', async () => {
    const outDir = join(root, 'cfg');
    const r = await runExperimentInline(cfgSweepExperiment, { preset: 'tiny', seed: 0, outDir });
    const m = r.metrics;
    for (const s of [1, 2, 3, 5, 7]) {
      expect(m[`score_s${s}`]).toBeGreaterThanOrEqual(0);
      expect(m[`score_s${s}`]).toBeLessThanOrEqual(1);
      expect(Number.isFinite(m[`fd_s${s}`])).toBe(true);
    }
    expect(r.tables?.[0]?.rows.length).toBe(5);
    expect(existsSync(join(outDir, 'samples-cfg1.png'))).toBe(true);
    expect(r.summary).toContain('liquid.cfg-sweep');

    const prep = prepare('tiny', tinySizes, 0);
    // the frozen tokenizer from the shared cache: reconstruction MSE via the straight-through forward
    const cache = readdirSync(join(root, '.liquid-cache')).find((d) => d.startsWith('tokenizer-tiny'))!;
    const dir = join(root, '.liquid-cache', cache);
    const vq = new VQTokenizer(prep.cfg.tokenizer);
    await loadWeights(join(dir, 'vq.safetensors'), vq);
    vq.eval();
    const S = prep.cfg.tokenizer.imageSize;
    const x = tf.tensor4d(Float32Array.from(prep.data.val.flatMap((d) => Array.from(d.image))), [prep.data.val.length, S, S, 3]);
    const mse = tf.tidy(
      () =>
        fromModelRange(vq.forward(toModelRange(x)).xRec)
          .sub(x)
          .square()
          .mean()
          .dataSync()[0] as number,
    );
    expect(Math.abs(mse - (m.tokenizer_mse as number))).toBeLessThan(1e-5);
    const codes = await loadCodeCache(join(dir, 'codes-val.safetensors'));
    const used = new Set(codes.codes).size / prep.cfg.tokenizer.numCodes;
    expect(m.codebook_usage).toBeCloseTo(used, 10);
    x.dispose();
    vq.dispose();
    // text perplexity of the saved unified model by a float64 log-softmax
    const uni = subrunResult(outDir, 'unified-mix') as { path: string; textLoss: number };
    const model = buildLM(prep.cfg.lm, prep.vocab.size);
    await loadWeights(uni.path, model);
    expect(Math.abs(Math.log(m.text_ppl as number) - referenceTextLoss(model, prep))).toBeLessThan(1e-4);
    model.dispose();
    const text = subrunResult(outDir, 'text-base') as { valLoss: number };
    expect(m.text_ppl_before).toBeCloseTo(Math.exp(text.valLoss), 10);
  });

  it('tradeoff: gaps are the differences of the runs it reports', async () => {
    const outDir = join(root, 'tradeoff');
    const r = await runExperimentInline(tradeoffExperiment, { preset: 'tiny', seed: 0, outDir });
    const m = r.metrics;
    expect(r.tables?.[0]?.rows.length).toBe(3);
    for (const w of [16, 24, 32]) {
      const t = subrunResult(outDir, `unified-w${w}-s0-text`) as { textLoss: number };
      const x = subrunResult(outDir, `unified-w${w}-s0-mixed`) as { textLoss: number };
      expect(m[`w${w}_ppl_text_only`]).toBeCloseTo(Math.exp(t.textLoss), 8);
      expect(m[`w${w}_ppl_gap`]).toBeCloseTo(Math.exp(x.textLoss) - Math.exp(t.textLoss), 8);
      expect(m[`w${w}_score_gap`]).toBeCloseTo((m[`w${w}_score_image_only`] as number) - (m[`w${w}_score_mixed`] as number), 10);
    }
  });

  it('synergy: three runs, the added-data runs train 4/3 as many steps', async () => {
    const outDir = join(root, 'synergy');
    const r = await runExperimentInline(synergyExperiment, { preset: 'tiny', seed: 0, outDir });
    expect(r.tables?.[0]?.rows.map((row) => row[1])).toEqual([3, 4, 4]);
    for (const k of ['baseline', 'add_gen', 'add_und']) {
      expect(r.metrics[`${k}_caption_accuracy`]).toBeGreaterThanOrEqual(0);
      expect(r.metrics[`${k}_caption_accuracy`]).toBeLessThanOrEqual(1);
      const u = subrunResult(outDir, `unified-${k}-s0`) as { textLoss: number };
      expect(r.metrics[`${k}_text_ppl`]).toBeCloseTo(Math.exp(u.textLoss), 4);
    }
  });

  it('init: steps-to-target and perplexities follow from the saved curves', async () => {
    const outDir = join(root, 'init');
    const r = await runExperimentInline(initExperiment, { preset: 'tiny', seed: 0, outDir });
    for (const arm of ['pretrained_mean', 'pretrained_normal', 'scratch']) {
      const u = subrunResult(outDir, `unified-${arm}`) as {
        curve: { step: number; score: number }[];
        textLoss: number;
        textLossStart: number | null;
      };
      expect(u.curve.map((p) => p.step)).toEqual([1, 2, 4]);
      const reach = u.curve.find((p) => p.score >= 0.5)?.step ?? null;
      expect(r.metrics[`${arm}_steps_to_target`]).toBe(reach);
      expect(r.metrics[`${arm}_text_ppl_after`]).toBeCloseTo(Math.exp(u.textLoss), 8);
      if (arm === 'scratch') expect(u.textLossStart).toBeNull();
      else expect(r.metrics[`${arm}_text_ppl_start`]).toBeCloseTo(Math.exp(u.textLossStart as number), 8);
    }
  });
});
