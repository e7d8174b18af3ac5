/**
 * latentlm.mixed draws its images with the head's training parameterisation: a head trained to
 * predict v and sampled as eps draws noise (the first `small-arm` run scored 0.000 with Frechet
 * distance 4.24 before the call passed `predictionType`). The mixed run at a `tiny` variant with a
 * v-prediction head and head temperature 0.5 records every `generate` call it makes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@mmlm/core';
import { runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GenerateOptions } from '../src/sample.js';

const calls = vi.hoisted(() => [] as { spanLength?: number; predictionType?: string; noiseScale?: number }[]);
vi.mock('../src/sample.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/sample.js')>();
  return {
    ...m,
    generate: (model: Parameters<typeof m.generate>[0], opts: GenerateOptions) => {
      calls.push({ spanLength: opts.spanLength, predictionType: opts.predictionType, noiseScale: opts.noiseScale });
      return m.generate(model, opts);
    },
  };
});

const { MIXED_PRESETS, mixedExperiment } = await import('../src/experiments/mixed.js');

const out = mkdtempSync(join(tmpdir(), 'latentlm-mixed-gen-'));
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('latentlm.mixed generation', () => {
  it("samples image spans with the preset's prediction type and head temperature", async () => {
    const tiny = MIXED_PRESETS.tiny!;
    const vTiny = structuredClone(tiny);
    vTiny.lm.diffusion.predictionType = 'v_prediction';
    vTiny.image = { ...vTiny.image, headTemperature: 0.5 };
    MIXED_PRESETS['tiny-v'] = vTiny;
    try {
      const exp = { ...mixedExperiment, presets: { ...mixedExperiment.presets, 'tiny-v': mixedExperiment.presets.tiny! } };
      await runExperimentInline(exp, { preset: 'tiny-v', outDir: join(out, 'v') });
    } finally {
      delete MIXED_PRESETS['tiny-v'];
    }
    const spans = calls.filter((c) => c.spanLength !== undefined);
    expect(spans.length).toBeGreaterThanOrEqual(2); // the seen and the held-out prompts
    for (const c of spans) expect(c).toMatchObject({ predictionType: 'v_prediction', noiseScale: 0.5 });
  }, 120_000);
});
