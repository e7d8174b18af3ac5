/**
 * seed.semantic-vs-pixel at the tiny preset (end to end: the SEED tokenizer and its pixel decoder,
 * the patch VQ-VAE, one text pre-trained LM tuned on each arm's codes), its metric names and
 * ranges, no tensor leak, figures on disk, the aggregate; and the patch VQ-VAE itself: patch order,
 * shapes, gradients, code round trip, bad inputs.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdamW, initBackend, tf, valueAndGrads } from '@mmlm/core';
import { type ExperimentResult, runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CODE_ARMS,
  experiments,
  PixelVQVAE,
  patchGrid,
  pixelVQConfig,
  pixelVQStep,
  semanticVsPixelExperiment,
} from '../src/experiments/index.js';

const root = mkdtempSync(join(tmpdir(), 'seed-svp-'));
const outDir = join(root, 'run');
let result: ExperimentResult;
let tensorsBefore = 0;
let tensorsAfter = 0;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
  tensorsBefore = tf.memory().numTensors;
  result = await runExperimentInline(semanticVsPixelExperiment, { preset: 'tiny', seed: 4, outDir });
  tensorsAfter = tf.memory().numTensors;
}, 120_000);
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const PER_SET = ['captionAccuracy', 'generationScore', 'readBack'];

describe('seed.semantic-vs-pixel (tiny)', () => {
  it('is registered', () => {
    expect(experiments.map((e) => e.id)).toContain('seed.semantic-vs-pixel');
  });

  it('reports <arm>_<metric>Seen / HeldOut in [0, 1], every number finite, the same code budget in both arms; leaks no tensor', () => {
    const m = result.metrics;
    for (const { arm } of CODE_ARMS)
      for (const k of PER_SET)
        for (const set of ['Seen', 'HeldOut']) {
          const v = m[`${arm}_${k}${set}`] as number;
          expect(typeof v, `${arm}_${k}${set}`).toBe('number');
          expect(v >= 0 && v <= 1, `${arm}_${k}${set} = ${v}`).toBe(true);
        }
    for (const k of ['memoriserSeen', 'memoriserHeldOut']) expect((m[k] as number) >= 0 && (m[k] as number) <= 1).toBe(true);
    for (const k of Object.keys(m)) if (typeof m[k] === 'number') expect(Number.isFinite(m[k] as number), k).toBe(true);
    expect(m.codesPerImage).toBe(4);
    expect(m.numCodes).toBe(16);
    expect(tensorsAfter).toBe(tensorsBefore);
    expect(result.tables?.[0]?.rows).toHaveLength(4);
    for (const f of result.figures ?? []) expect(existsSync(join(outDir, f.path)), f.path).toBe(true);
    expect(result.figures?.length).toBe(6);
  });

  it('aggregates over seeds with verdicts', () => {
    const fake = (d: number): ExperimentResult => ({
      metrics: Object.fromEntries(
        CODE_ARMS.flatMap(({ arm }, a) =>
          PER_SET.flatMap((k) => ['Seen', 'HeldOut'].map((s) => [`${arm}_${k}${s}`, a === 0 ? 0.8 + d : 0.5 - d])),
        ),
      ),
    });
    const agg = semanticVsPixelExperiment.aggregate?.([fake(0), fake(0.01), fake(0.03)], [0, 1, 2]);
    expect(agg?.tables?.[0]?.rows).toHaveLength(4);
    expect(agg?.summary).toContain('semantic better');
  });
});

describe('PixelVQVAE (patch VQ-VAE)', () => {
  const cfg = { imageSize: 8, grid: [2, 4] as [number, number], encoderHidden: 8, codeDim: 4, numCodes: 8, decoderHidden: [16], seed: 1 };

  it('patchify is raster order over the grid; shapes; codes round trip through decodeCodes', () => {
    const m = new PixelVQVAE(cfg);
    const x = tf.tidy(() =>
      tf
        .range(0, 8 * 8 * 3)
        .reshape([1, 8, 8, 3])
        .div(192),
    );
    const p = m.patchify(x); // [1, 8, 4 * 2 * 3]
    expect(p.shape).toEqual([1, 8, 24]);
    // patch (row 1, col 2) = index 6 starts at pixel (4, 4)
    const first = p.slice([0, 6, 0], [1, 1, 3]).dataSync();
    const ref = x.slice([0, 4, 4, 0], [1, 1, 1, 3]).dataSync();
    expect(Array.from(first)).toEqual(Array.from(ref));
    const before = tf.memory().numTensors;
    const codes = m.encodeCodes(x);
    expect(codes.length).toBe(8);
    const y = m.decodeCodes(codes);
    expect(y.shape).toEqual([1, 8, 8, 3]);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, p]);
    m.dispose();
  });

  it('every parameter gets a finite non-zero gradient; a step leaks nothing', () => {
    const m = new PixelVQVAE({ ...cfg, kmeansInit: false });
    m.train();
    const x = tf.randomUniform([4, 8, 8, 3], 0, 1, 'float32', 3);
    const { loss, grads } = valueAndGrads(m, () => m.forward(x).loss);
    for (const [k, g] of grads) {
      const a = g.abs().sum().dataSync()[0] as number;
      expect(Number.isFinite(a) && a > 0, `${k}: ${a}`).toBe(true);
    }
    tf.dispose([loss, ...grads.values()]);
    const opt = new AdamW(m, { lr: 1e-3 });
    pixelVQStep(m, opt, x); // first step builds the optimizer slots
    const before = tf.memory().numTensors;
    const r = pixelVQStep(m, opt, x);
    expect(tf.memory().numTensors).toBe(before);
    expect(Number.isFinite(r.loss)).toBe(true);
    opt.dispose();
    x.dispose();
    m.dispose();
  });

  it('bad inputs name the expected and the actual', () => {
    const m = new PixelVQVAE(cfg);
    const bad = tf.zeros([1, 16, 16, 3]);
    expect(() => m.encodeCodes(bad)).toThrow(/\[B, 8, 8, 3\].*\[1,16,16,3\]/);
    expect(() => m.decodeCodes([1, 2, 3])).toThrow(/N x 8 codes.*got 3/);
    expect(() => m.decodeCodes([0, 1, 2, 3, 4, 5, 6, 99])).toThrow(/99|range/);
    expect(() => pixelVQConfig({ imageSize: 16, grid: [3, 4] })).toThrow(/grid \[3, 4\].*16/);
    bad.dispose();
    m.dispose();
    expect(patchGrid(8, 16)).toEqual([2, 4]);
    expect(patchGrid(4, 16)).toEqual([2, 2]);
    expect(patchGrid(16, 16)).toEqual([4, 4]);
    expect(() => patchGrid(7, 16)).toThrow(/7 patches.*16 px/);
  });
});
