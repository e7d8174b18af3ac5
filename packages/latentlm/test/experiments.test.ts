/**
 * The experiments at their `tiny` presets: they run end to end in seconds and their metrics are
 * computed correctly (not whether the paper's claim holds, which needs the `small` preset). On cpu:
 * the TTS experiment trains convolutions, whose weight gradients wasm lacks until core registers
 * Conv2DBackpropFilter.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@mmlm/core';
import { runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { experiments, headStepsExperiment, mixedExperiment, ttsExperiment, varianceCollapseExperiment } from '../src/experiments/index.js';

const out = mkdtempSync(join(tmpdir(), 'latentlm-exp-'));
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

describe('experiments (tiny)', () => {
  it('registers four experiments with tiny and small presets', () => {
    expect(experiments.map((e) => e.id)).toEqual([
      'latentlm.variance-collapse',
      'latentlm.head-steps',
      'latentlm.tts-frame-rate',
      'latentlm.mixed',
    ]);
    for (const e of experiments) {
      const extra: Record<string, string[]> = {
        'latentlm.tts-frame-rate': ['long', 'long-tau', 'long-6x', 'rates-6x'],
        'latentlm.variance-collapse': ['small-arm', 'small-arm-wide', 'small-arm-long'],
        'latentlm.head-steps': ['small-arm-wide'],
        'latentlm.mixed': ['small-arm'],
      };
      expect(Object.keys(e.presets)).toEqual(['tiny', 'small', ...(extra[e.id] ?? [])]);
      expect(e.paper).toBe('LatentLM');
    }
  });

  const inUnit = (x: unknown) => typeof x === 'number' && x >= 0 && x <= 1;

  it('variance collapse: tokenizer statistics and agreement, robustness, generation on seen and held-out prompts', async () => {
    const r = await runExperimentInline(varianceCollapseExperiment, { preset: 'tiny', outDir: join(out, 'vc') });
    // the sigma-VAE's posterior std is E|sigma| = (0.75 / 0.8) sqrt(2 / pi) on every channel
    expect(r.metrics['sigma.meanPosteriorStd']).toBeCloseTo((0.75 / 0.8) * Math.sqrt(2 / Math.PI), 6);
    expect(r.metrics.promptsPerSet).toBe(4);
    // full-caption prompts name the whole scene key: no training image satisfies a held-out one
    expect(r.metrics.generationCeilingHeldOut).toBe(0);
    for (const k of ['sigma', 'gaussian']) {
      expect(finite(r.metrics[`${k}.recMse`])).toBe(true);
      expect(inUnit(r.metrics[`${k}.tokenizerAgreement`])).toBe(true);
      // r = 0 decodes the posterior mean: its agreement is the tokenizer's
      expect(r.metrics[`${k}.r0.agreement`]).toBe(r.metrics[`${k}.tokenizerAgreement`]);
      for (const w of [1, 2]) {
        for (const m of ['generationScoreSeen', 'generationScoreHeldOut', 'genColourSeen', 'genColourHeldOut'])
          expect(inUnit(r.metrics[`${k}.cfg${w}.${m}`]), `${k}.cfg${w}.${m}`).toBe(true);
        expect(r.metrics[`${k}.cfg${w}.frechetSeen`] as number).toBeGreaterThanOrEqual(0);
      }
    }
    const robust = r.tables![1]!;
    // r = 0 decodes the posterior mean: its MSE is the reconstruction MSE of the first table
    expect(robust.rows[0]![1]).toBe(r.tables![0]!.rows[0]![1]);
    expect(r.tables![2]!.columns).toContain('memoriser ceiling (held-out)');
    expect(r.tables![3]!.rows).toEqual([
      ['MAR KL-16 VAE (learned variance)', 8.16, 9.64],
      ['sigma-VAE (C_sigma = 0.75)', 7.35, 4.1],
    ]);
    expect(r.summary).toMatch(/Variance collapse: .* Autoregressive generation: (not )?reproduced at our scale/);
    expect(r.summary).toMatch(/One seed \(seed 0\)/);
    // an untrained tokenizer does not read back: the summary says so in red
    if ((r.metrics['sigma.tokenizerAgreement'] as number) < 0.95)
      expect(r.summary).toMatch(/<span style="color:#c00">\*\*The sigma-VAE .* does not read back/);
    expect(readdirSync(join(out, 'vc', 'subruns', 'sigma'))).toEqual(
      expect.arrayContaining(['vae.safetensors', 'latentlm.safetensors', 'samples-cfg1.png', 'samples-cfg1-heldout.png', 'result.json']),
    );
    // training metrics are tagged with their phase: one loss curve per tokenizer and per LatentLM
    const records = readFileSync(join(out, 'vc', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(new Set(records.map((x) => x.subrun))).toEqual(new Set(['sigma/vae', 'sigma/lm', 'gaussian/vae', 'gaussian/lm']));
    expect(records.every((x) => x.run === undefined && typeof x.step === 'number' && typeof x.loss === 'number')).toBe(true);
    // the lab's aggregate over one seed: tables of mean ± — and no verdict
    const agg = varianceCollapseExperiment.aggregate!([r], [0]);
    expect(agg.summary).toMatch(/^One seed \(seed 0\)/);
    expect(agg.summary).toMatch(/one seed, cannot judge/);
    expect(agg.tables![2]!.rows).toHaveLength(4);
  });

  it('head steps: one row per step count, seen and held-out scores in [0, 1], saturation judged on score and FD', async () => {
    const r = await runExperimentInline(headStepsExperiment, { preset: 'tiny', outDir: join(out, 'hs') });
    expect(r.tables![0]!.rows.map((row) => row[0])).toEqual([1, 2]);
    for (const s of [1, 2]) {
      expect(inUnit(r.metrics[`steps${s}.generationScoreSeen`])).toBe(true);
      expect(inUnit(r.metrics[`steps${s}.generationScoreHeldOut`])).toBe(true);
      expect(r.metrics[`steps${s}.frechetSeen`] as number).toBeGreaterThanOrEqual(0);
    }
    expect(inUnit(r.metrics.tokenizerAgreement)).toBe(true);
    expect(r.metrics.generationCeilingHeldOut).toBe(0);
    expect(r.summary).toMatch(/Saturation, judged on the seen generation score .* and on the Frechet distance/);
  });
  it('TTS frame rate: decoding steps per second follow the latent frame rate', async () => {
    const r = await runExperimentInline(ttsExperiment, { preset: 'tiny', outDir: join(out, 'tts') });
    // tiny rates: 8000 / (64 * 4) = 31.25 Hz and 8000 / (64 * 8) = 15.625 Hz
    for (const hz of ['31.25Hz', '15.63Hz']) {
      const wer = r.metrics[`${hz}.ttsWer`] as number;
      expect(wer >= 0).toBe(true);
      // n latents + 1 <EOD> over n frames of audio: frameRate (1 + 1/n), n >= 1
      const sps = r.metrics[`${hz}.stepsPerSecond`] as number;
      const rate = Number.parseFloat(hz);
      expect(sps).toBeGreaterThanOrEqual(rate);
      expect(sps).toBeLessThanOrEqual(2 * rate + 1e-9);
    }
    expect(r.tables![1]!.rows.map((row) => row[1])).toEqual([15, 7.5, 3.75, 75]);
    for (const hz of ['31.25Hz', '15.63Hz']) expect(r.metrics[`${hz}.durationRatio`] as number).toBeGreaterThan(0);
    // tiny sweeps head temperatures 1 and 0.5: a row and metrics per (rate, temperature), the second
    // temperature's audio is a different sample (same seed and model: tau reaches the head)
    expect(r.tables![0]!.rows.map((row) => row[0])).toEqual([
      '31.25 Hz (256x, 4-d), tau 1',
      '31.25 Hz (256x, 4-d), tau 0.5',
      '15.63 Hz (512x, 8-d), tau 1',
      '15.63 Hz (512x, 8-d), tau 0.5',
    ]);
    for (const hz of ['31.25Hz', '15.63Hz']) {
      expect(r.metrics[`${hz}-tau0.5.ttsWer`] as number).toBeGreaterThanOrEqual(0);
      expect(r.metrics[`${hz}-tau0.5.resynthWer`]).toBe(r.metrics[`${hz}.resynthWer`]);
    }
    const wav = (f: string) => readFileSync(join(out, 'tts', 'subruns', 'rate-2x2', f));
    expect(wav('tts-tau0.5-0.wav').equals(wav('tts-0.wav'))).toBe(false);
    expect(r.summary).toMatch(/Head temperatures \(same model, prompts and sampling seed\): 31\.25 Hz tau 1: WER/);
    const phases = new Set(
      readFileSync(join(out, 'tts', 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).subrun),
    );
    expect(phases).toEqual(new Set(['rate-2x2/vae', 'rate-2x2/lm', 'rate-2x2x2/vae', 'rate-2x2x2/lm']));
    expect(r.summary).toMatch(/One seed \(seed 0\)/);
  });

  it('mixed model: perplexities, T2I and understanding on seen and held-out prompts, memoriser ceilings', async () => {
    const r = await runExperimentInline(mixedExperiment, { preset: 'tiny', outDir: join(out, 'mixed') });
    for (const k of ['textPpl', 'textOnlyPpl']) {
      expect(finite(r.metrics[k])).toBe(true);
      // untrained: perplexity near the vocabulary size, far above 1
      expect(r.metrics[k] as number).toBeGreaterThan(10);
      expect(r.metrics[k] as number).toBeLessThan(3 * (r.metrics.vocabSize as number));
    }
    for (const k of [
      'tokenizerAgreement',
      'generationScoreSeen',
      'generationScoreHeldOut',
      'generationCeilingHeldOut',
      'captionAccuracySeen',
      'captionAccuracyHeldOut',
      'captionCeilingHeldOut',
      'captionExactSeen',
      'captionExactHeldOut',
      'qaExactSeen',
      'qaExactHeldOut',
    ])
      expect(inUnit(r.metrics[k]), k).toBe(true);
    expect(r.metrics.frechetSeen as number).toBeGreaterThanOrEqual(0);
    expect(r.metrics.promptsPerSet).toBe(4);
    expect(r.tables![0]!.rows[0]).toHaveLength(r.tables![0]!.columns.length);
    const records = readFileSync(join(out, 'mixed', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(new Set(records.map((x) => x.subrun))).toEqual(new Set(['mixed/vae', 'mixed/mixed-lm', 'mixed/text-only-lm']));
  });
});
