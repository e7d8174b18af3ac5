/**
 * seed.lora-vs-full at the tiny preset: it runs end to end (tokenizer, pixel decoder, text
 * pre-training, both arms, captions and generated images judged), reports every metric in range,
 * leaks no tensor, and its parameter counts match closed forms; the caption metric and the memoriser
 * ceiling are checked on hand-written captions. The claim itself is for the small preset.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@mmlm/core';
import { type ExperimentResult, runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  captionAccuracy,
  captionAttributes,
  experiments,
  LORA_VS_FULL_SETTINGS,
  loraVsFullExperiment,
  memoriserCeiling,
} from '../src/experiments/index.js';

const root = mkdtempSync(join(tmpdir(), 'seed-lora-'));
let result: ExperimentResult;
let tensorsBefore = 0;
let tensorsAfter = 0;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
  tensorsBefore = tf.memory().numTensors;
  result = await runExperimentInline(loraVsFullExperiment, { preset: 'tiny', seed: 1, outDir: join(root, 'run') });
  tensorsAfter = tf.memory().numTensors;
}, 90_000);
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('seed.lora-vs-full (tiny)', () => {
  it('is registered', () => {
    expect(experiments.map((e) => e.id)).toContain('seed.lora-vs-full');
  });

  it('reports every metric in range and leaks no tensor', () => {
    const m = result.metrics;
    for (const arm of ['lora', 'full'])
      for (const k of ['captionAccuracySeen', 'captionAccuracyHeldOut', 'generationScoreSeen', 'generationScoreHeldOut']) {
        const x = m[`${arm}_${k}`] as number;
        expect(x >= 0 && x <= 1, `${arm}_${k} = ${x}`).toBe(true);
      }
    expect(m.memoriserSeen as number).toBeGreaterThanOrEqual(0);
    expect(m.lora_seconds as number).toBeGreaterThan(0);
    expect(tensorsAfter).toBe(tensorsBefore);
    expect(result.tables?.[0]?.rows).toHaveLength(2);
    expect(result.figures).toHaveLength(2);
  });

  it('trains every parameter fully, and LoRA A/B + embeddings + head + norms with LoRA (closed form)', () => {
    const m = result.metrics;
    const st = LORA_VS_FULL_SETTINGS.tiny;
    const D = st.lm.dim;
    const L = st.lm.numLayers;
    const Hd = 64; // swigluHidden(32)
    const V = (m.textVocabSize as number) + (m.numCodes as number) + 2;
    const total = V * D * 2 + L * (D * 3 * D + D * D + 3 * D * Hd + 2 * D) + D;
    expect(m.full_totalParameters).toBe(total);
    expect(m.full_trainedParameters).toBe(total);
    const r = st.lora.r;
    // PEFT: q, k, v (the fused qkv's three parts) and o r (D + D) each
    const lora = L * (3 * r * (2 * D) + r * (2 * D) + 2 * r * (D + Hd) + r * (Hd + D)) + 2 * V * D + (2 * L + 1) * D;
    expect(m.lora_trainedParameters).toBe(lora);
    expect(m.lora_totalParameters).toBe(total); // merged after each phase
  });
});

describe('caption metric and memoriser ceiling (hand-written)', () => {
  it('judges the named shape, colour and size', () => {
    expect(captionAttributes('a large red triangle')).toBe('triangle/red/large');
    expect(captionAttributes('not a caption at all')).toBeNull();
    const ref = ['a large red triangle', 'a small blue circle', 'a large green square', 'a small red ring'];
    const gen = ['a large red triangle', 'a large blue circle', 'a large green square', 'gibberish words'];
    expect(captionAccuracy(gen, ref)).toBe(2 / 4);
    expect(() => captionAccuracy(gen.slice(1), ref)).toThrow(/3 and 4/);
    expect(memoriserCeiling(ref, ['a large red triangle', 'a small red ring', 'a small green ring'])).toBe(2 / 4);
  });
});
