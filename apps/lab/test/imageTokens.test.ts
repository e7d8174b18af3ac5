import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import { psnr } from '../src/experiments/imageEval.js';
import { aggregateImageTokens, IMAGE_TOKEN_ARMS, imageTokens, presetArms } from '../src/experiments/imageTokens.js';
import { imageTokensSweep } from '../src/experiments/imageTokensSweep.js';
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
        'reconAgreementSeen',
        'reconAgreementHeldOut',
      ]) {
        const v = m[`${arm}.${k}`] as number;
        expect(v, `${arm}.${k}`).not.toBeUndefined();
        // an attribute no caption of the set mentions is NaN, not 0
        if (Number.isNaN(v) && /genPosition|genSize|genColour/.test(k)) continue;
        expect(v, `${arm}.${k}`).toBeGreaterThanOrEqual(0);
        expect(v, `${arm}.${k}`).toBeLessThanOrEqual(1);
      }
      // the seen and held-out sets are the same size: the overall agreement is their mean
      expect(m[`${arm}.reconAnalyzerAgreement`] as number).toBeCloseTo(
        ((m[`${arm}.reconAgreementSeen`] as number) + (m[`${arm}.reconAgreementHeldOut`] as number)) / 2,
        9,
      );
      expect(m[`${arm}.frechetSeen`] as number).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(m[`${arm}.reconPsnr`] as number)).toBe(true);
      expect(m[`${arm}.backboneStepsPerImage`] as number).toBeGreaterThanOrEqual(m[`${arm}.tokensPerImage`] as number);
      expect(existsSync(join(dir, 'subruns', arm, 'samples-seen.png'))).toBe(true);
      expect(existsSync(join(dir, 'subruns', arm, 'samples-heldout.png'))).toBe(true);
      // every seen and held-out caption beside its references and a verdict that agrees with the score
      const tsv = readFileSync(join(dir, 'subruns', arm, 'captions.tsv'), 'utf8')
        .trimEnd()
        .split('\n');
      expect(tsv[0]).toBe('set\treference\tcaption\tverdict');
      const rows = tsv.slice(1).map((l) => l.split('\t'));
      expect(rows.every((r) => r.length === 4)).toBe(true);
      const seen = rows.filter((r) => r[0] === 'seen');
      expect(seen.length + rows.filter((r) => r[0] === 'held-out').length).toBe(rows.length);
      expect(seen.filter((r) => r[3] === 'ok').length / seen.length).toBeCloseTo(m[`${arm}.captionAccuracySeen`] as number, 9);
    }
    // the diffusion head runs at least once per latent (DPM-Solver steps per position)
    expect(m['latentlm-sigma-vae.headEvalsPerImage'] as number).toBeGreaterThanOrEqual(m['latentlm-sigma-vae.tokensPerImage'] as number);
    // every training phase of every arm is its own loss curve
    const tags = new Set(
      readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { subrun?: string; loss?: number })
        .filter((r) => typeof r.loss === 'number')
        .map((r) => r.subrun),
    );
    expect([...tags].sort()).toEqual([
      'latentlm-sigma-vae/LatentLM',
      'latentlm-sigma-vae/sigma-VAE',
      'liquid-vq/backbone',
      'liquid-vq/tokenizer',
    ]);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/Discrete VQ codes vs continuous sigma-VAE latents/);
    expect(md).toMatch(/subruns\/liquid-vq\/samples-seen\.png/);
    // a tiny tokenizer does not read back: the report says so in red
    expect(md).toMatch(/does not read back/);
  }, 300_000);

  it('the recipe sweep: one row per variant and sampling setting, recipes reach the arms, no tensor leak', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-sweep-'));
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const { record } = await runExperiment(imageTokensSweep, {
      preset: 'tiny',
      seed: 0,
      outRoot: root,
      progress: 'none',
      log: (l) => lines.push(l),
    });
    expect(tf.memory().numTensors).toBe(before);
    const table = record.result.tables![0]!;
    // tiny: reference codebook (1 setting), k-means + EMA (2 settings), latentlm default (1), then the
    // two backbone variants that reuse the k-means + EMA and latentlm tokenizers (1 each)
    expect(table.rows).toHaveLength(6);
    expect(table.rows.map((r) => r[0])).toEqual([
      'liquid-vq',
      'liquid-vq',
      'liquid-vq',
      'latentlm-sigma-vae',
      'liquid-vq',
      'latentlm-sigma-vae',
    ]);
    expect(table.rows[1]![3]).toBe('cfg 1');
    expect(table.rows[2]![3]).toBe('cfg 3, T 0.5');
    for (const r of table.rows) for (const c of [6, 8]) expect(Number(r[c])).toBeGreaterThanOrEqual(0);
    // the reused tokenizers: the same read-back as the variant that trained them, said in the row and the log
    expect(table.rows[4]![5]).toBe(table.rows[1]![5]);
    expect(table.rows[5]![5]).toBe(table.rows[3]![5]);
    for (const i of [4, 5]) expect(String(table.rows[i]![4])).toMatch(/tokenizer shared/);
    for (const i of [0, 1, 3]) expect(String(table.rows[i]![4])).not.toMatch(/reused/);
    expect(lines.filter((l) => /tokenizer is the one trained/.test(l))).toHaveLength(2);
    // the liquid arm loaded the copied tokenizer and codes rather than training again
    expect(lines.some((l) => /liquid-vq: loaded the frozen tokenizer/.test(l))).toBe(true);
    const cache = join(root, 'lab.image-tokens-sweep', 'tokenizer-cache');
    expect(readdirSync(cache).filter((d) => !d.includes('.tmp-'))).toHaveLength(3);
  }, 300_000);

  it('a bad recipe is refused by each arm, naming the field and the value', async () => {
    const S = 8;
    const opts = {
      data: { imageSize: S, train: { images: [new Float32Array(S * S * 3)], captions: ['a red circle'] }, evalCaptions: [] },
      backbone: { dim: 8, numLayers: 1, numHeads: 2 },
      tokenizerSteps: 1,
      backboneSteps: 1,
      batchSize: 1,
      captionFraction: 0,
      seed: 0,
      dir: mkdtempSync(join(tmpdir(), 'lab-badrecipe-')),
    };
    const [liquid, latent] = IMAGE_TOKEN_ARMS;
    await expect(liquid!.factory({ ...opts, recipe: { tokenizer: { numCodes: 1 } } })).rejects.toThrow(/tokenizer\.numCodes/);
    await expect(liquid!.factory({ ...opts, recipe: { sampling: { temperature: -1 } } })).rejects.toThrow(/sampling\.temperature/);
    await expect(latent!.factory({ ...opts, recipe: { tokenizer: { cSigma: -0.5 } } })).rejects.toThrow(/tokenizer\.cSigma/);
    await expect(latent!.factory({ ...opts, recipe: { backbone: { dropout: 1 } } })).rejects.toThrow(/backbone\.dropout/);
    await expect(latent!.factory({ ...opts, recipe: { tokenizer: { latentDim: 0 } } })).rejects.toThrow(/tokenizer\.latentDim/);
    // a valid latentDim reaches the sigma-VAE (the default at 8 px is 4 channels)
    const arm = await latent!.factory({
      ...opts,
      dir: mkdtempSync(join(tmpdir(), 'lab-latentdim-')),
      recipe: { tokenizer: { latentDim: 6 } },
    });
    expect(arm.description).toMatch(/latents of 6 dims/);
    arm.dispose();
  }, 300_000);

  it('a tokenizer budget outside the equal one names only arms its preset runs (quick3-4k: SEED at 15,000 steps)', () => {
    const presets = imageTokens.presets as Record<string, { arms?: string[]; tokenizerStepsByArm?: Record<string, number> }>;
    for (const [name, p] of Object.entries(presets)) {
      const arms = presetArms(p).map((a) => a.name);
      for (const a of Object.keys(p.tokenizerStepsByArm ?? {})) expect(arms, `${name}: ${a}`).toContain(a);
    }
    expect(presets['quick3-4k']!.tokenizerStepsByArm).toEqual({ 'seed-causal-codes': 15000 });
  });

  it('aggregate over seeds: mean ± std per arm and a verdict only beyond two standard errors', () => {
    const res = (l: number, m: number, gl: number, gm: number, agree: number) => ({
      metrics: {
        'liquid-vq.generationScoreSeen': gl,
        'latentlm-sigma-vae.generationScoreSeen': gm,
        'liquid-vq.captionAccuracySeen': l,
        'latentlm-sigma-vae.captionAccuracySeen': m,
        'liquid-vq.reconAnalyzerAgreement': agree,
        'latentlm-sigma-vae.reconAnalyzerAgreement': 1,
      },
    });
    // generation: 0.7, 0.6, 0.8 vs 0.1, 0.2, 0.15 -> diff 0.55, se = sqrt(0.01/3 + 0.0025/3) = 0.0645: beyond 2 SE
    // captions: 0.5, 0.7, 0.6 vs 0.6, 0.5, 0.8 -> diff -0.0333, se = sqrt(0.01/3 + 0.0233/3) = 0.105: not distinguishable
    const agg = aggregateImageTokens(
      [res(0.5, 0.6, 0.7, 0.1, 0.96), res(0.7, 0.5, 0.6, 0.2, 0.9), res(0.6, 0.8, 0.8, 0.15, 0.97)],
      [0, 1, 2],
    );
    const rows = agg.tables[0]!.rows;
    const gen = rows.find((r) => String(r[0]).startsWith('generation score, seen'))!;
    expect(gen[1]).toBe('0.700 ± 0.100');
    expect(gen[2]).toBe('0.150 ± 0.050');
    expect(gen[3]).toBe('liquid-vq (beyond 2 SE)');
    const cap = rows.find((r) => String(r[0]).startsWith('caption accuracy, seen'))!;
    expect(cap[1]).toBe('0.600 ± 0.100');
    expect(cap[3]).toBe('not distinguishable');
    expect(agg.summary).toMatch(/liquid-vq seed 1 \(0\.900\)/);
    // with the seen / held-out split in the results, the flag names the seen images' agreement too
    const split = aggregateImageTokens(
      [0.9, 0.96].map((a) => {
        const r = res(0.5, 0.6, 0.7, 0.1, a);
        return { metrics: { ...r.metrics, 'liquid-vq.reconAgreementSeen': 0.97 } };
      }),
      [0, 1],
    );
    expect(split.summary).toMatch(/liquid-vq seed 0 \(0\.900; seen images 0\.970\)/);
    expect(split.summary).not.toMatch(/liquid-vq seed 1/);
    expect(agg.summary).toMatch(/no difference beyond 2 SE/);
    const one = aggregateImageTokens([res(0.5, 0.6, 0.7, 0.1, 1)], [4]);
    expect(one.tables[0]!.rows.find((r) => String(r[0]).startsWith('generation score, seen'))![3]).toBe('one seed: cannot judge');
  });
});
