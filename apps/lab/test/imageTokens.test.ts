import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import { psnr } from '../src/experiments/imageEval.js';
import { imageTokens } from '../src/experiments/imageTokens.js';
import { runExperiment } from '../src/runner.js';

describe('lab.image-tokens', () => {
  it('psnr: closed form on constant images', () => {
    const a = [new Float32Array(12).fill(0.5)];
    const b = [new Float32Array(12).fill(0.6)];
    expect(psnr(a, b)).toBeCloseTo(-10 * Math.log10(0.01), 4);
    expect(() => psnr(a, [new Float32Array(3)])).toThrow(/image 0 has 3 values, expected 12/);
  });

  it('runs both arms at the tiny preset, with every metric in range, sample grids, and no tensor leak', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-it-'));
    const before = tf.memory().numTensors;
    const { dir, record } = await runExperiment(imageTokens, { preset: 'tiny', seed: 0, outRoot: root, progress: 'none', log: () => {} });
    expect(tf.memory().numTensors).toBe(before);
    const m = record.result.metrics;
    for (const arm of ['liquid-vq', 'latentlm-sigma-vae']) {
      for (const k of [
        'generationScore',
        'genShape',
        'genColour',
        'genCount',
        'genPosition',
        'captionAccuracy',
        'captionTokenF1',
        'reconAnalyzerAgreement',
      ]) {
        const v = m[`${arm}.${k}`] as number;
        // an attribute no caption mentions (position at 16 px: a single grid cell) is NaN, not 0
        if (Number.isNaN(v) && (k === 'genPosition' || k === 'genSize')) continue;
        expect(v, `${arm}.${k}`).toBeGreaterThanOrEqual(0);
        expect(v, `${arm}.${k}`).toBeLessThanOrEqual(1);
      }
      expect(m[`${arm}.frechet`] as number).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(m[`${arm}.reconPsnr`] as number)).toBe(true);
      expect(m[`${arm}.backboneStepsPerImage`] as number).toBeGreaterThanOrEqual(m[`${arm}.tokensPerImage`] as number);
      expect(existsSync(join(dir, 'subruns', arm, 'samples.png'))).toBe(true);
    }
    // the diffusion head runs at least once per latent (DPM-Solver steps per position)
    expect(m['latentlm-sigma-vae.headEvalsPerImage'] as number).toBeGreaterThanOrEqual(m['latentlm-sigma-vae.tokensPerImage'] as number);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/Discrete VQ codes vs continuous sigma-VAE latents/);
    expect(md).toMatch(/subruns\/liquid-vq\/samples\.png/);
  }, 300_000);
});
