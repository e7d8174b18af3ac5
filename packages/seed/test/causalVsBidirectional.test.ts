/**
 * seed.causal-vs-bidirectional at the tiny preset: it runs end to end (one shared ViT, both arms'
 * tokenizers, pixel decoders and LMs), reports every metric finite and named per set (Seen /
 * HeldOut), leaks no tensor, writes its figures (the ViT shared, each arm in its own folder); the
 * free-running span sampler counts what it draws; the aggregate calls verdicts on fabricated seeds.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng, tf } from '@mmlm/core';
import { type ExperimentResult, runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CAUSAL_VS_BIDIRECTIONAL_SETTINGS,
  causalVsBidirectionalExperiment,
  experiments,
  freeRunCap,
  freeRunStats,
  MASK_ARMS,
} from '../src/experiments/index.js';
import { generateFreeImageSpans, SeedLM } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'seed-cvb-'));
const outDir = join(root, 'run');
let result: ExperimentResult;
let tensorsBefore = 0;
let tensorsAfter = 0;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
  tensorsBefore = tf.memory().numTensors;
  result = await runExperimentInline(causalVsBidirectionalExperiment, { preset: 'tiny', seed: 2, outDir });
  tensorsAfter = tf.memory().numTensors;
}, 120_000);
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const PER_SET = ['exactLength', 'closedSpan', 'meanCodes', 'nonCodeSpan', 'generationScore', 'captionAccuracy', 'readBack'];
const FRACTIONS = new Set(['exactLength', 'closedSpan', 'nonCodeSpan', 'generationScore', 'captionAccuracy', 'readBack']);

describe('seed.causal-vs-bidirectional (tiny)', () => {
  it('is registered', () => {
    expect(experiments.map((e) => e.id)).toContain('seed.causal-vs-bidirectional');
  });

  it("small-q32 is small with SEED's 32 codes per image and the LM context to hold them, nothing else", () => {
    const { numQueries, lm, ...rest } = CAUSAL_VS_BIDIRECTIONAL_SETTINGS['small-q32'];
    const { numQueries: q8, lm: lm8, ...small } = CAUSAL_VS_BIDIRECTIONAL_SETTINGS.small;
    expect(numQueries).toBe(32);
    expect(q8).toBeUndefined();
    expect(rest).toEqual(small);
    expect({ ...lm, maxSeqLen: lm8.maxSeqLen }).toEqual(lm8);
    expect(lm.maxSeqLen).toBeGreaterThan(lm8.maxSeqLen);
  });

  it('reports every per-set metric as <arm>_<metric>Seen / HeldOut, finite, fractions in [0, 1]; leaks no tensor', () => {
    const m = result.metrics;
    for (const { arm } of MASK_ARMS)
      for (const k of PER_SET)
        for (const set of ['Seen', 'HeldOut']) {
          const v = m[`${arm}_${k}${set}`];
          expect(typeof v, `${arm}_${k}${set}`).toBe('number');
          expect(Number.isFinite(v as number), `${arm}_${k}${set} = ${v}`).toBe(true);
          if (FRACTIONS.has(k)) expect((v as number) >= 0 && (v as number) <= 1, `${arm}_${k}${set} = ${v}`).toBe(true);
        }
    // a span that is exactly Q codes is closed
    for (const { arm } of MASK_ARMS)
      expect(m[`${arm}_exactLengthSeen`] as number).toBeLessThanOrEqual(m[`${arm}_closedSpanSeen`] as number);
    for (const k of Object.keys(m)) if (typeof m[k] === 'number') expect(Number.isFinite(m[k] as number), k).toBe(true);
    expect(m.freeRunCap).toBe(2 * (m.codesPerImage as number) + 2);
    expect(tensorsAfter).toBe(tensorsBefore);
    expect(result.tables?.[0]?.rows).toHaveLength(4);
  });

  it('shares one ViT, trains each arm in its own folder, and writes the figures', () => {
    expect(existsSync(join(outDir, 'subruns', 'vit', 'result.json'))).toBe(true);
    for (const { arm } of MASK_ARMS)
      for (const p of ['stage1', 'stage2', 'decoder', 'decoder-finetune'])
        expect(existsSync(join(outDir, 'arms', arm, 'subruns', p, 'result.json')), `${arm}/${p}`).toBe(true);
    for (const f of result.figures ?? []) expect(existsSync(join(outDir, f.path)), f.path).toBe(true);
    expect(result.figures?.length).toBe(6);
  });

  it('aggregates over seeds into a mean ± std table and verdicts', () => {
    const fake = (d: number): ExperimentResult => ({
      metrics: Object.fromEntries(
        MASK_ARMS.flatMap(({ arm }, a) =>
          PER_SET.flatMap((k) => ['Seen', 'HeldOut'].map((s) => [`${arm}_${k}${s}`, a === 0 ? 0.9 + d : 0.2 + d])),
        ),
      ),
    });
    const agg = causalVsBidirectionalExperiment.aggregate?.([fake(0), fake(0.01), fake(0.02)], [0, 1, 2]);
    expect(agg?.tables?.[0]?.rows).toHaveLength(4);
    expect(agg?.summary).toContain('exceeds two standard errors, causal better');
  });
});

describe('generateFreeImageSpans', () => {
  it('draws until </img> or the cap and counts the codes; exact implies Q codes then </img>', () => {
    const lm = new SeedLM({ textVocabSize: 12, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 32, seed: 3 });
    const v = lm.extendVocabulary(6, 3);
    const caps = [[4, 5], [6], [4, 5]];
    const before = tf.memory().numTensors;
    const f = generateFreeImageSpans(lm, caps, { rng: new Rng(1), temperature: 1, maxTokens: 5 });
    expect(tf.memory().numTensors).toBe(before);
    f.tokens.forEach((t, i) => {
      expect(t.length).toBeLessThanOrEqual(5);
      expect(t).not.toContain(v.endImg);
      if (!f.closed[i]) expect(t.length).toBe(5);
      if (f.exact[i]) expect(t.every((id) => id >= v.codeOffset && id < v.codeOffset + 6) && t.length === 3).toBe(true);
    });
    const s = freeRunStats(lm, caps, { rng: new Rng(1), temperature: 1, maxTokens: 5 });
    expect(s.exact).toBeCloseTo(f.exact.filter(Boolean).length / 3, 12);
    expect(() => generateFreeImageSpans(lm, caps, { temperature: 1 })).toThrow(/rng/);
    expect(() => generateFreeImageSpans(lm, caps, { rng: new Rng(1), maxTokens: 40 })).toThrow(/maxSeqLen 32/);
    lm.dispose();
  });

  it("the default cap is 2 Q + 2, or what the LM's context holds after the longest prompt", () => {
    const roomy = new SeedLM({ textVocabSize: 12, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 32, seed: 3 });
    roomy.extendVocabulary(6, 3);
    const caps = [[4, 5], [6], [4, 5, 6, 7]];
    // the prompt is <bos> caption <img>: 6 tokens for the longest caption
    expect(freeRunCap(roomy, caps, null)).toBe(2 * 3 + 2);
    const tight = new SeedLM({ textVocabSize: 12, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 12, seed: 3 });
    tight.extendVocabulary(6, 3);
    const cap = freeRunCap(tight, caps, null);
    expect(cap).toBe(12 - 6);
    expect(() => generateFreeImageSpans(tight, caps, { rng: new Rng(1), maxTokens: cap })).not.toThrow();
    expect(() => generateFreeImageSpans(tight, caps, { rng: new Rng(1), maxTokens: cap + 1 })).toThrow(/maxSeqLen 12/);
    const none = new SeedLM({ textVocabSize: 12, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 8, seed: 3 });
    none.extendVocabulary(6, 3);
    expect(() => freeRunCap(none, caps, null)).toThrow(/leaves 2 ids after a 6-token prompt/);
    for (const m of [roomy, tight, none]) m.dispose();
  });
});
