/**
 * The experiments at their `tiny` presets: they run end to end in seconds and their metrics are
 * computed correctly (not whether the paper's claim holds, which needs the `small` preset). On cpu:
 * the TTS experiment trains convolutions, whose weight gradients wasm lacks until core registers
 * Conv2DBackpropFilter.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, runExperimentInline } from '@mmlm/core';
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
      expect(Object.keys(e.presets)).toEqual(e.id === 'latentlm.tts-frame-rate' ? ['tiny', 'small', 'long'] : ['tiny', 'small']);
      expect(e.paper).toBe('LatentLM');
    }
  });

  it('variance collapse: tokenizer statistics, robustness and generation metrics', async () => {
    const r = await runExperimentInline(varianceCollapseExperiment, { preset: 'tiny', outDir: join(out, 'vc') });
    // the sigma-VAE's posterior std is E|sigma| = (0.75 / 0.8) sqrt(2 / pi) on every channel
    expect(r.metrics['sigma.meanPosteriorStd']).toBeCloseTo((0.75 / 0.8) * Math.sqrt(2 / Math.PI), 6);
    for (const k of ['sigma', 'gaussian']) {
      expect(finite(r.metrics[`${k}.recMse`])).toBe(true);
      for (const w of [1, 2]) {
        const s = r.metrics[`${k}.cfg${w}.score`] as number;
        expect(s >= 0 && s <= 1).toBe(true);
        expect(r.metrics[`${k}.cfg${w}.fd`] as number).toBeGreaterThanOrEqual(0);
      }
    }
    const robust = r.tables![1]!;
    // r = 0 decodes the posterior mean: its MSE is the reconstruction MSE of the first table
    expect(robust.rows[0]![1]).toBe(r.tables![0]!.rows[0]![1]);
    expect(r.tables![3]!.rows).toEqual([
      ['MAR KL-16 VAE (learned variance)', 8.16, 9.64],
      ['sigma-VAE (C_sigma = 0.75)', 7.35, 4.1],
    ]);
    expect(r.summary).toMatch(/Variance collapse: .* Autoregressive generation: (not )?reproduced at our scale/);
    expect(readdirSync(join(out, 'vc', 'subruns', 'sigma'))).toEqual(
      expect.arrayContaining(['vae.safetensors', 'latentlm.safetensors', 'samples-cfg1.png', 'result.json']),
    );
  });

  it('head steps: one row per step count, scores in [0, 1]', async () => {
    const r = await runExperimentInline(headStepsExperiment, { preset: 'tiny', outDir: join(out, 'hs') });
    expect(r.tables![0]!.rows.map((row) => row[0])).toEqual([1, 2]);
    for (const s of [1, 2]) {
      const v = r.metrics[`steps${s}.score`] as number;
      expect(v >= 0 && v <= 1).toBe(true);
    }
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
  });

  it('mixed model: perplexities, T2I score and understanding accuracies', async () => {
    const r = await runExperimentInline(mixedExperiment, { preset: 'tiny', outDir: join(out, 'mixed') });
    for (const k of ['textPpl', 'textOnlyPpl']) {
      expect(finite(r.metrics[k])).toBe(true);
      // untrained: perplexity near the vocabulary size, far above 1
      expect(r.metrics[k] as number).toBeGreaterThan(10);
      expect(r.metrics[k] as number).toBeLessThan(3 * (r.metrics.vocabSize as number));
    }
    for (const k of ['t2iScore', 'captionExact', 'captionScore', 'qaExact'])
      expect((r.metrics[k] as number) >= 0 && (r.metrics[k] as number) <= 1).toBe(true);
  });
});
