import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeDecoderFile } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import { TINY_GPT_META, tinyGpt } from '../src/experiments/tinyGpt.js';
import { runExperiment } from '../src/index.js';

describe('core.tiny-gpt', () => {
  it('trains at the tiny preset: loss goes down and bits/char stay above the grammar entropy', async () => {
    const preset = process.env.TINY_GPT_PRESET ?? 'tiny';
    const root = mkdtempSync(join(tmpdir(), 'tinygpt-'));
    const { dir, record } = await runExperiment(tinyGpt, { preset, seed: 0, outRoot: root, progress: 'lines', log: (l) => console.log(l) });
    const m = record.result.metrics as Record<string, number>;
    expect(m.finalLoss).toBeLessThan(m.firstLoss);
    expect(m.valBitsPerChar).toBeGreaterThan(m.grammarEntropyBitsPerChar); // no model beats the entropy rate
    expect(m.firstLoss).toBeGreaterThan(Math.log(2)); // first loss is near ln(V), far from 0
    // the trained model, as a decoder file the web page loads, with the corpus settings and vocabulary
    const { model, metadata } = decodeDecoderFile(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
    const meta = JSON.parse(metadata[TINY_GPT_META]!);
    expect(meta).toMatchObject({ grammar: 'shapes', seed: 0, valBitsPerChar: m.valBitsPerChar });
    expect(meta.vocab.length).toBe(model.config.vocabSize);
    model.dispose();
  });
});
