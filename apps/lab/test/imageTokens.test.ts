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
        'generationScoreSeen',
        'generationScoreHeldOut',
        'generationCeilingHeldOut',
        'genShapeSeen',
        'genColourSeen',
        'genPositionSeen',
        'captionAccuracySeen',
        'captionAccuracyHeldOut',
        'captionCeilingHeldOut',
        'captionTokenF1Seen',
        'reconAnalyzerAgreement',
      ]) {
        const v = m[`${arm}.${k}`] as number;
        expect(v, `${arm}.${k}`).not.toBeUndefined();
        // an attribute no caption of the set mentions is NaN, not 0
        if (Number.isNaN(v) && /genPosition|genSize|genColour/.test(k)) continue;
        expect(v, `${arm}.${k}`).toBeGreaterThanOrEqual(0);
        expect(v, `${arm}.${k}`).toBeLessThanOrEqual(1);
      }
      expect(m[`${arm}.frechetSeen`] as number).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(m[`${arm}.reconPsnr`] as number)).toBe(true);
      expect(m[`${arm}.backboneStepsPerImage`] as number).toBeGreaterThanOrEqual(m[`${arm}.tokensPerImage`] as number);
      expect(existsSync(join(dir, 'subruns', arm, 'samples-seen.png'))).toBe(true);
      expect(existsSync(join(dir, 'subruns', arm, 'samples-heldout.png'))).toBe(true);
    }
    // the diffusion head runs at least once per latent (DPM-Solver steps per position)
    expect(m['latentlm-sigma-vae.headEvalsPerImage'] as number).toBeGreaterThanOrEqual(m['latentlm-sigma-vae.tokensPerImage'] as number);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/Discrete VQ codes vs continuous sigma-VAE latents/);
    expect(md).toMatch(/subruns\/liquid-vq\/samples-seen\.png/);
    // a tiny tokenizer does not read back: the report says so in red
    expect(md).toMatch(/does not read back/);
  }, 300_000);
});
