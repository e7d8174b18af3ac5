/**
 * The image decoder back to pixels (the SD-unCLIP stand-in): the model contract, output shape and
 * range, gradients reaching the decoder only, the translation-tolerant pixel error against a plain
 * loop, bad inputs, no tensor leak, a small overfit, and the read-back measure on a tiny run.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdamW, initBackend, Rng, tf, valueAndGrads } from '@mmlm/core';
import { inlineContext } from '@mmlm/core/experiment';
import { runModelContract } from '@mmlm/core/testing';
import { ShapeAnalyzer } from '@mmlm/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backToPixels,
  nearestRows,
  pixelReadBack,
  RETRIEVAL_SETTINGS,
  retrievalExperiment,
  seedData,
  seedTokenizerConfig,
} from '../src/experiments/index.js';
import {
  decoderLoss,
  decoderStep,
  IMAGE_DECODER_PRESETS,
  ImageDecoder,
  imageDecoderConfig,
  imageDecoderPreset,
  imageFromCodes,
  PRESETS,
  pixelError,
  reconstruct,
  SeedTokenizer,
} from '../src/index.js';

const tiny = IMAGE_DECODER_PRESETS.tiny;
const G = tiny.genDim;
const B = 3;
const embeddings = (n = B, seed = 1) => new Rng(seed).randn([n, G]);
const images = (n = B, seed = 2) => new Rng(seed).rand([n, 16, 16, 3]);

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});

describe('ImageDecoder', () => {
  it('maps [B, genDim] to [B, S, S, 3] in (0, 1), conditioned on the tiny tokenizer', () => {
    expect(G).toBe(PRESETS.tiny.decoder.genDim);
    const dec = new ImageDecoder(tiny);
    const e = embeddings();
    const y = dec.forward(e);
    expect(y.shape).toEqual([B, 16, 16, 3]);
    const v = y.dataSync();
    expect(Math.min(...v)).toBeGreaterThan(0);
    expect(Math.max(...v)).toBeLessThan(1);
    expect(dec.numParameters()).toBe(G * 32 + 32 + 32 * 32 + 32 + 32 * 768 + 768);
    tf.dispose([e, y]);
    dec.dispose();
  });

  it('model contract (cpu and wasm)', async () => {
    const r = await runModelContract({
      name: 'seed ImageDecoder',
      make: (seed) => new ImageDecoder({ ...tiny, seed }),
      inputs: () => [embeddings(), images()],
      forward: (m, [e]) => m.forward(e!),
      expectedShape: [B, 16, 16, 3],
      loss: (m, [e, x]) => decoderLoss(m, { embedding: e!, images: x! }, { maxShift: 1, l1: 0.5 }),
      trainStep: (m) => {
        const opt = new AdamW(m, { lr: 1e-3 });
        return {
          step: ([e, x]) => void decoderStep(m, opt, { embedding: e!, images: x! }, { maxShift: 2 }),
          dispose: () => opt.dispose(),
        };
      },
    });
    expect(r.backends).toEqual(['cpu', 'wasm']);
    await initBackend({ backend: 'wasm', log: false });
  });

  it('trains the decoder only: gradients for each decoder parameter, none for the tokenizer, whose weights stay put', () => {
    const tok = new SeedTokenizer(PRESETS.tiny).setStage(2);
    const dec = new ImageDecoder(tiny);
    const x = images(2);
    const codes = tok.encodeCodes(x);
    const { causal, gen } = tok.decodeCodes(codes);
    const { loss, grads } = valueAndGrads(dec, () => decoderLoss(dec, { embedding: gen, images: x }));
    expect([...grads.keys()].sort()).toEqual(
      dec
        .namedTrainableParameters()
        .map(([p]) => p)
        .sort(),
    );
    for (const [p, g] of grads) {
      const v = g.abs().max().dataSync()[0]!;
      expect(Number.isFinite(v) && v > 0, p).toBe(true);
    }
    // the embedding is a fixed condition: no gradient flows back into it (stopGradient in decoderLoss)
    const ge = tf.grad((e: tf.Tensor) => decoderLoss(dec, { embedding: e, images: x }))(gen);
    expect(ge.abs().max().dataSync()[0]).toBe(0);
    const before = tok.stateDict();
    const snapshot = Object.fromEntries(Object.entries(before).map(([k, t]) => [k, Array.from(t.dataSync())]));
    const opt = new AdamW(dec, { lr: 1e-2 });
    for (let t = 0; t < 2; t++) {
      const e = tok.decodeCodes(codes);
      decoderStep(dec, opt, { embedding: e.gen, images: x });
      tf.dispose([e.causal, e.gen]);
    }
    for (const [k, t] of Object.entries(tok.stateDict())) expect(Array.from(t.dataSync()), k).toEqual(snapshot[k]);
    tf.dispose([loss, ...grads.values(), ge, causal, gen, x]);
    opt.dispose();
    dec.dispose();
    tok.dispose();
  });

  it('imageFromCodes and reconstruct: codes -> generation embedding -> image, equal to the decoder on decodeCodes(...).gen', () => {
    const tok = new SeedTokenizer(PRESETS.tiny).setStage(2);
    const dec = new ImageDecoder(tiny);
    const x = images(2, 5);
    const codes = tok.encodeCodes(x);
    const a = imageFromCodes(tok, dec, codes);
    const b = reconstruct(tok, dec, x);
    const { causal, gen } = tok.decodeCodes(codes);
    const c = dec.forward(gen);
    expect(a.shape).toEqual([2, 16, 16, 3]);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(Array.from(c.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([a, b, c, causal, gen, x]);
    dec.dispose();
    tok.dispose();
  });
});

describe('pixelError', () => {
  it('is the per-image MSE + l1 * MAE of a plain float64 loop', () => {
    const p = images(2, 7);
    const t = images(2, 8);
    const got = Array.from(pixelError(p, t, { l1: 0.3 }).dataSync());
    const pv = p.dataSync();
    const tv = t.dataSync();
    const n = 16 * 16 * 3;
    for (let b = 0; b < 2; b++) {
      let se = 0;
      let ae = 0;
      for (let i = b * n; i < (b + 1) * n; i++) {
        se += (pv[i]! - tv[i]!) ** 2;
        ae += Math.abs(pv[i]! - tv[i]!);
      }
      expect(got[b]).toBeCloseTo(se / n + (0.3 * ae) / n, 6);
    }
    tf.dispose([p, t]);
  });

  it('tolerates translations up to maxShift and no further', () => {
    // a 3 x 3 white square on black, drawn at (6, 6) and at (8, 7) (dy 2, dx 1)
    const square = (y0: number, x0: number) => {
      const v = new Float32Array(16 * 16 * 3);
      for (let y = y0; y < y0 + 3; y++) for (let x = x0; x < x0 + 3; x++) for (let c = 0; c < 3; c++) v[(y * 16 + x) * 3 + c] = 1;
      return v;
    };
    const p = tf.tensor4d(square(6, 6), [1, 16, 16, 3]);
    const t = tf.tensor4d(square(8, 7), [1, 16, 16, 3]);
    const at = (maxShift: number) => pixelError(p, t, { maxShift }).dataSync()[0]!;
    expect(at(0)).toBeCloseTo((2 * 7 * 3) / 768, 7); // the squares share 2 pixels: 7 of each lie off the other, 3 channels each
    expect(at(1)).toBeGreaterThan(0);
    expect(at(2)).toBe(0);
    tf.dispose([p, t]);
  });
});

describe('bad inputs and configs', () => {
  it('names the expected and the actual shape, dtype or value', () => {
    const dec = new ImageDecoder(tiny);
    const e = embeddings(2);
    const wide = tf.zeros([2, G + 1]);
    const flat = tf.zeros([G]);
    const x3 = images(3);
    const x2 = images(2);
    const ints = tf.zeros([2, G], 'int32');
    expect(() => dec.forward(wide)).toThrow(`ImageDecoder.forward: embedding must be [B, ${G}] (genDim ${G}), got shape [2,${G + 1}]`);
    expect(() => dec.forward(flat)).toThrow(/embedding must be \[B, 8\] \(genDim 8\), got shape \[8\]/);
    expect(() => dec.forward(ints)).toThrow('ImageDecoder.forward: embedding must be float32, got int32');
    expect(() => decoderLoss(dec, { embedding: e, images: x3 })).toThrow(
      'decoderLoss: images must be [2, 16, 16, 3] (one per embedding), got shape [3,16,16,3]',
    );
    const opt = new AdamW(dec, { lr: 1e-3 });
    expect(() => decoderStep(dec, opt, { embedding: wide, images: x2 })).toThrow(/decoderStep: embedding must be \[B, 8\]/);
    expect(() => pixelError(x2, x2, { maxShift: 5 })).toThrow('pixelError: maxShift must be an integer in [0, 4] (imageSize / 4), got 5');
    expect(() => pixelError(x2, x3)).toThrow(/pred and target must be \[B, S, S, C\] of one shape, got \[2,16,16,3\] and \[3,16,16,3\]/);
    const tok = new SeedTokenizer(PRESETS.tiny);
    const other = new ImageDecoder({ ...tiny, genDim: G + 4 });
    expect(() => imageFromCodes(tok, other, [0, 1, 2, 3])).toThrow(
      `imageFromCodes: the decoder takes ${G + 4}-d embeddings (genDim), the tokenizer makes ${G}-d ones`,
    );
    expect(() => imageFromCodes(tok, dec, [0, 1, 2])).toThrow(/expected N x 4 codes \(numQueries 4\), got 3/);
    tf.dispose([e, wide, flat, x3, x2, ints]);
    opt.dispose();
    tok.dispose();
    other.dispose();
    dec.dispose();
  });

  it('rejects invalid configs and unknown presets', () => {
    expect(() => imageDecoderConfig({ hidden: [] })).toThrow(/hidden/);
    expect(() => imageDecoderConfig({ genDim: 0 })).toThrow(/genDim/);
    expect(() => imageDecoderConfig({ activation: 'tanh' as 'relu' })).toThrow(/activation/);
    expect(() => imageDecoderPreset('paper')).toThrow('SEED image decoder: unknown preset "paper"; expected one of tiny, small');
    expect(imageDecoderPreset('small').genDim).toBe(PRESETS.small.decoder.genDim);
  });
});

describe('training', () => {
  it('leaks no tensor over decoder steps (shift-tolerant loss, embeddings from the tokenizer)', () => {
    const tok = new SeedTokenizer(PRESETS.tiny).setStage(2);
    const dec = new ImageDecoder(tiny);
    const opt = new AdamW(dec, { lr: 1e-3 });
    const x = images(4);
    const codes = tok.encodeCodes(x);
    const step = () => {
      const { causal, gen } = tok.decodeCodes(codes);
      decoderStep(dec, opt, { embedding: gen, images: x }, { maxShift: 2, l1: 0.1 });
      tf.dispose([causal, gen]);
    };
    step(); // optimizer slots allocated
    const before = tf.memory().numTensors;
    for (let t = 0; t < 3; t++) step();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    opt.dispose();
    dec.dispose();
    tok.dispose();
  });

  it('fits 4 fixed embedding -> image pairs to a low MSE', () => {
    const dec = new ImageDecoder({ ...tiny, hidden: [64, 64], seed: 3 });
    const e = embeddings(4, 11);
    // four flat-coloured images with a bright square in a different corner each
    const buf = new Float32Array(4 * 768);
    for (let i = 0; i < 4; i++)
      for (let y = 0; y < 16; y++)
        for (let x = 0; x < 16; x++) {
          const inSquare = y < 8 === i < 2 && x < 8 === (i % 2 === 0);
          for (let c = 0; c < 3; c++) buf[i * 768 + (y * 16 + x) * 3 + c] = inSquare ? 0.9 : 0.1 + 0.2 * c;
        }
    const x = tf.tensor4d(buf, [4, 16, 16, 3]);
    const mseOf = () => tf.tidy(() => dec.forward(e).sub(x).square().mean().dataSync()[0]!);
    const start = mseOf();
    const opt = new AdamW(dec, { lr: 1e-2, weightDecay: 0 });
    for (let t = 0; t < 100; t++) decoderStep(dec, opt, { embedding: e, images: x });
    const end = mseOf();
    expect(start).toBeGreaterThan(0.05);
    expect(end).toBeLessThan(1e-3);
    tf.dispose([e, x]);
    opt.dispose();
    dec.dispose();
  });
});

describe('read-back', () => {
  const root = mkdtempSync(join(tmpdir(), 'seed-pixels-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('nearestRows: the nearest memory row of each query (squared Euclidean)', () => {
    const q = tf.tensor2d([
      [0, 0],
      [2.9, 3.2],
      [-1, 0.2],
    ]);
    const m = tf.tensor2d([
      [3, 3],
      [0.1, 0.1],
      [-2, 0],
    ]);
    expect(Array.from(nearestRows(q, m))).toEqual([1, 0, 2]);
    tf.dispose([q, m]);
  });

  it('pixelReadBack: originals read back as themselves, blank images do not', () => {
    const data = seedData({ imageSize: 16, train: 16, evalPrompts: 4, seed: 0 });
    const analyzer = new ShapeAnalyzer(data.config);
    const orig = data.seen.map((d) => d.image);
    const same = pixelReadBack(orig, orig, analyzer);
    expect(same.fraction).toBe(1);
    expect(same.original[0]).toMatch(/^(circle|square|triangle|cross|ring)\/\w+\/(small|large)$/);
    const blank = pixelReadBack(
      orig,
      orig.map(() => new Float32Array(768)),
      analyzer,
    );
    expect(blank.fraction).toBe(0);
    expect(blank.reconstruction[0]).toBe('');
    expect(() => pixelReadBack(orig, orig.slice(1), analyzer)).toThrow(
      /expected equal non-empty lists, got 4 originals and 3 reconstructions/,
    );
  });

  it('backToPixels on a tiny run: read-back in [0, 1] on both sets, sub-runs saved, grids written, no leak', async () => {
    const st = RETRIEVAL_SETTINGS.tiny;
    const data = seedData({ imageSize: 16, train: 32, evalPrompts: 4, seed: 1 });
    const tok = new SeedTokenizer(seedTokenizerConfig('tiny', data, 1)).setStage(2).eval();
    const ctx = inlineContext(retrievalExperiment, { preset: 'tiny', seed: 1, outDir: join(root, 'run') });
    const before = tf.memory().numTensors;
    const r = await backToPixels(ctx, data, tok, imageDecoderPreset('tiny'), st.pixels, 1);
    expect(tf.memory().numTensors).toBe(before);
    for (const ev of [r.seen, r.heldOut]) {
      for (const v of [ev.readBack.fraction, ev.readBackGroundTruthDecoder, ev.readBackFromTarget, ev.readBackMemoriser as number]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      expect(ev.readBack.same).toHaveLength(4);
      expect(ev.readBack.fraction).toBe(ev.readBack.same.filter(Boolean).length / 4);
      expect(ev.mse).toBeGreaterThan(0);
    }
    for (const name of ['decoder', 'decoder-finetune']) {
      expect(existsSync(join(root, 'run', 'subruns', name, 'decoder.safetensors')), name).toBe(true);
    }
    expect(r.decoderPhase.steps).toBe(st.pixels.decoder.steps);
    for (const f of r.figures) expect(existsSync(join(root, 'run', f.path)), f.path).toBe(true);
    tok.dispose();
  }, 30_000);
});
