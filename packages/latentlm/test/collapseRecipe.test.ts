/**
 * latentlm.variance-collapse's recipe knobs (the `small-arm` preset's): C_sigma reaches the
 * sigma-VAE (its reported posterior std is the closed form E|sigma| = C_sigma / 0.8 sqrt(2 / pi)),
 * image positions reach the backbone (the saved LatentLM holds image_pos.weight [N, D]), and the
 * learned-variance arm keeps its learned posterior.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@mmlm/core';
import { runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_PRESETS, varianceCollapseExperiment } from '../src/experiments/images.js';

const root = mkdtempSync(join(tmpdir(), 'latentlm-collapse-'));
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  delete IMAGE_PRESETS['tiny-recipe'];
});

/** The tensor names and shapes in a safetensors file's JSON header. */
function safetensorsHeader(path: string): Record<string, { shape: number[] }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape: number[] }>;
  delete h.__metadata__;
  return h;
}

function findFile(dir: string, name: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(name))
    .map((f) => join(dir, f));
}

describe('variance-collapse recipe settings', () => {
  it('C_sigma and image positions reach the run', async () => {
    const tiny = IMAGE_PRESETS.tiny!;
    IMAGE_PRESETS['tiny-recipe'] = { ...tiny, cSigma: 0.2, imagePositions: true, headTemperature: 0.5 };
    const outDir = join(root, 'run');
    const exp = {
      ...varianceCollapseExperiment,
      presets: { ...varianceCollapseExperiment.presets, 'tiny-recipe': varianceCollapseExperiment.presets.tiny! },
    };
    const r = await runExperimentInline(exp, { preset: 'tiny-recipe', seed: 0, outDir });
    expect(r.metrics['sigma.meanPosteriorStd']).toBeCloseTo((0.2 / 0.8) * Math.sqrt(2 / Math.PI), 10);
    expect(r.metrics['gaussian.meanPosteriorStd']).not.toBeCloseTo((0.2 / 0.8) * Math.sqrt(2 / Math.PI), 3);
    const lms = findFile(outDir, 'latentlm.safetensors');
    expect(lms.length).toBe(2); // one backbone per tokenizer
    for (const f of lms) {
      const h = safetensorsHeader(f);
      const N = (tiny.data.imageSize! / tiny.vae.patchSize) ** 2; // latents per image (32 px / patch 8: 16)
      expect(h['image_pos.weight'], f).toBeDefined();
      expect(h['image_pos.weight']!.shape[0]).toBe(N);
    }
    expect(r.summary).toContain('C=0.2');
  });
});
