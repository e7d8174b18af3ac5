/**
 * The speech codec (issue 16): shapes, codes through MultimodalTokenizer speech segments and back
 * (sequential and alternating), the model contract (gradients reach encoder, decoder, codebooks and
 * the content head; no tensor leak over the package's training step; cpu and wasm agree), bad input,
 * resumable training, the evaluation helpers, and a tiny overfit that can fail.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdamW, initBackend, paramGroups, tf } from '@mmlm/core';
import { runModelContract } from '@mmlm/core/testing';
import { makeToneSpeakers, synthesizeTone, WordTokenizer } from '@mmlm/data';
import { toneCodecExample } from '@mmlm/mio/experiments';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CODEC_IGNORE,
  CODEC_PRESET_NAMES,
  CODEC_PRESETS,
  type CodecExample,
  codebookUsage,
  codecPreset,
  codecTrainStep,
  fillUnvoiced,
  levelProbe,
  MultimodalTokenizer,
  multiResolutionStftLoss,
  SpeechCodec,
  type SpeechCodecConfigInput,
  speechCodecConfig,
  trainSpeechCodec,
  upsampleLinear,
  upsampleLinearHost,
} from '../src/index.js';

const SR = 8000;
const tiny = (over: SpeechCodecConfigInput = {}) => new SpeechCodec({ ...CODEC_PRESETS.tiny, ...over });
const speakers = makeToneSpeakers(2, 7);
const utter = (words: string, i: number) => synthesizeTone(words, speakers[i % 2]!, { seed: 100 + i, sampleRate: SR });
const dirs: string[] = [];

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('shapes', () => {
  it('encodes [B, L] to [B, T, Lq] codes below K and decodes back to [B, T hop] samples', () => {
    const c = tiny();
    const wave = tf.randomNormal([2, 8 * 160], 0, 0.1, 'float32', 1) as tf.Tensor2D;
    const z = c.encodeLatents(wave);
    expect(z.shape).toEqual([2, 8, 8]);
    const idx = c.encodeIndices(wave);
    expect(idx.shape).toEqual([2, 8, 4]);
    expect(idx.dtype).toBe('int32');
    const v = idx.dataSync();
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThan(8);
    const y = c.decodeIndices(idx);
    expect(y.shape).toEqual([2, 8 * 160]);
    expect(y.dataSync().every(Number.isFinite)).toBe(true);
    tf.dispose([wave, z, idx, y]);
    c.dispose();
  });

  it('encode pads one utterance to whole frames: [Lq][ceil(L / hop)] codes; decode gives T hop samples', () => {
    const c = tiny();
    const u = utter('red circle', 0);
    const codes = c.encode(u.samples, { sampleRate: SR });
    const T = Math.ceil(u.samples.length / 160);
    expect(codes.length).toBe(4);
    for (const level of codes) {
      expect(level.length).toBe(T);
      for (const k of level) expect(Number.isInteger(k) && k >= 0 && k < 8).toBe(true);
    }
    expect(c.decode(codes).length).toBe(T * 160);
    expect(c.frameRate).toBe(50);
    c.dispose();
  });

  it('the presets match the tiny and small vocabularies (8 and 16 codes per level, 4 levels)', () => {
    expect(codecPreset('tiny').codebookSize).toBe(8);
    expect(codecPreset('small').codebookSize).toBe(16);
    expect(codecPreset('small').levels).toBe(4);
    expect(codecPreset('small-12.5hz').codebookSize).toBe(16);
    expect(new SpeechCodec(codecPreset('small-12.5hz')).frameRate).toBe(12.5);
    expect(codecPreset('small-12.5hz-k64')).toEqual({ ...codecPreset('small-12.5hz'), codebookSize: 64 });
    expect(CODEC_PRESET_NAMES).toEqual(['tiny', 'small', 'small-12.5hz', 'small-12.5hz-k64']);
    expect(CODEC_PRESET_NAMES).toEqual(Object.keys(CODEC_PRESETS));
    expect(() => codecPreset('paper')).toThrow(/unknown preset "paper"; expected one of tiny, small, small-12.5hz, small-12.5hz-k64/);
  });
});

describe('codes through MultimodalTokenizer', () => {
  const words = WordTokenizer.fromText('please generate a speech of red circle');
  for (const layout of ['sequential', 'alternating'] as const)
    it(`${layout}: output speech (4 levels) and input speech (content level) come back as the same codes`, () => {
      const c = tiny();
      const codes = c.encode(utter('blue star moves', 1).samples);
      const tok = new MultimodalTokenizer(words, {
        textVocabSize: words.vocabSize,
        speechCodebookSize: c.config.codebookSize,
        speechLevels: c.config.levels,
        speechLayout: layout,
      });
      const doc = [
        { type: 'text' as const, text: 'please generate a speech of red circle' },
        { type: 'speech' as const, levels: codes },
        { type: 'speech' as const, levels: [codes[0]!] },
      ];
      const ids = tok.encode(doc);
      const back = tok.decode(ids);
      expect(back).toEqual(doc);
      const out = back[1] as { levels: number[][] };
      expect(Array.from(c.decode(out.levels))).toEqual(Array.from(c.decode(codes)));
      c.dispose();
    });
});

describe('model contract', () => {
  it('shape, determinism, save/load, gradients everywhere, no leak over the training step, cpu = wasm', async () => {
    const B = 2;
    const T = 8;
    const N = T * 4;
    const f0 = [new Float32Array(N).fill(140), new Float32Array(N).fill(0).map((_, i) => (i < 20 ? 200 : 0))];
    const labels = () =>
      tf.tensor2d(
        Int32Array.from({ length: B * T }, (_, i) => (i % 3 === 0 ? CODEC_IGNORE : i % 16)),
        [B, T],
        'int32',
      );
    const wave = () => {
      const x = new Float32Array(B * T * 160);
      for (let i = 0; i < x.length; i++) x[i] = 0.3 * Math.sin((2 * Math.PI * 150 * i) / SR) + 0.1 * Math.sin((2 * Math.PI * 450 * i) / SR);
      return tf.tensor2d(x, [B, T * 160]);
    };
    const report = await runModelContract<SpeechCodec>({
      name: 'SpeechCodec tiny',
      make: (seed) => tiny({ seed }).eval(),
      inputs: () => [wave(), labels()],
      forward: (m, [x]) => m.controls(m.quantize(m.encodeLatents(x!)).zq).harmonicAmps,
      expectedShape: [B, N, 4],
      loss: (m, [x, y]) => {
        const p = m.losses({ wave: x as tf.Tensor2D, labels: y as tf.Tensor2D, f0 });
        return p.loss;
      },
      trainStep: (m) => {
        const opt = new AdamW(paramGroups(m), { lr: 1e-3 });
        return {
          step: ([x, y]) => {
            codecTrainStep(m, opt, { wave: x as tf.Tensor2D, labels: y as tf.Tensor2D, f0 }, 1);
          },
          dispose: () => opt.dispose(),
        };
      },
    });
    expect(report.numParameters).toBeGreaterThan(0);
    await initBackend({ backend: 'wasm', log: false });
  });

  it('the content gradient of the linear head reaches the encoder through the level-1 straight-through vector', () => {
    const c = tiny({ contentHead: 'linear' });
    const x = tf.randomNormal([1, 4 * 160], 0, 0.1, 'float32', 3) as tf.Tensor2D;
    const y = tf.tensor2d([[1, 2, CODEC_IGNORE, 3]], [1, 4], 'int32');
    const f0 = [new Float32Array(16).fill(150)];
    const w = c.encoder.conv_out.weight;
    const g = tf.grad(() => c.losses({ wave: x, labels: y, f0 }).content)(w);
    expect(g.abs().max().dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([x, y, g]);
    c.dispose();
  });
});

it('the codec files of the main entry import neither node: nor @mmlm/data nor another paper package', () => {
  for (const f of ['codec', 'codec_train']) {
    const src = readFileSync(new URL(`../src/${f}.ts`, import.meta.url), 'utf8');
    expect(src).not.toMatch(/from 'node:/);
    expect(src).not.toMatch(/from '@mmlm\/(data|seed|liquid|latentlm|maskllm)/);
  }
});

describe('quantizer dropout (SoundStream)', () => {
  it('an example reconstructs from its first n levels: the straight-through vector equals the sum of its first n codebook rows', () => {
    const c = tiny().eval();
    const x = tf.randomNormal([3, 4 * 160], 0, 0.1, 'float32', 5) as tf.Tensor2D;
    const z = c.encodeLatents(x);
    const keep = [1, 3, 4];
    const q = c.quantize(z, keep);
    const idx = q.indices.arraySync() as number[][][]; // [B, T, Lq]
    const books = [...c.quantizer.layers].map((l) => l.codebook().arraySync() as number[][]);
    const zq = q.zq.arraySync() as number[][][];
    for (let b = 0; b < 3; b++)
      for (let t = 0; t < 4; t++)
        for (let d = 0; d < c.config.dim; d++) {
          let sum = 0; // computed on the host from the codes, not by the code under test
          for (let l = 0; l < keep[b]!; l++) sum += books[l]![idx[b]![t]![l]!]![d]!;
          expect(zq[b]![t]![d]!).toBeCloseTo(sum, 5);
        }
    // all levels kept: the same as no keepLevels
    const full = c.quantize(z);
    const kept = c.quantize(z, [4, 4, 4]);
    expect(Array.from(kept.zq.dataSync())).toEqual(Array.from(full.zq.dataSync()));
    tf.dispose([x, z, q.zq, q.level1, q.indices, q.vqLoss, q.usage, full.zq, full.level1, full.indices, full.vqLoss, full.usage]);
    tf.dispose([kept.zq, kept.level1, kept.indices, kept.vqLoss, kept.usage]);
  });

  it('applies in training mode only, drawn from a seeded stream; off by default', () => {
    expect(speechCodecConfig({}).quantizerDropout).toBe(0);
    const ex = [toneCodecExample(utter('red circle', 0), CODEC_PRESETS.tiny), toneCodecExample(utter('blue ring', 1), CODEC_PRESETS.tiny)];
    const batch = () => {
      const T = 8;
      const wave = tf.tensor2d(Float32Array.from(ex.flatMap((e) => Array.from(e.wave.subarray(0, T * 160)))), [2, T * 160]);
      const labels = tf.tensor2d(Int32Array.from(ex.flatMap((e) => Array.from(e.labels.subarray(0, T)))), [2, T], 'int32');
      const f0 = ex.map((e) => e.f0.subarray(0, T * 4));
      return { wave, labels, f0 };
    };
    const lossOf = (m: SpeechCodec) =>
      tf.tidy(() => {
        const b = batch();
        return m.losses(b).spectral.dataSync()[0]!;
      });
    const off = tiny({ kmeansInit: false, deadCodeSteps: 0 });
    const on = tiny({ kmeansInit: false, deadCodeSteps: 0, quantizerDropout: 1 });
    on.eval();
    off.eval();
    expect(lossOf(on)).toBe(lossOf(off)); // eval: no dropout
    on.train();
    off.train();
    const drawn = [lossOf(on), lossOf(on), lossOf(on), lossOf(on)];
    expect(drawn.some((l) => l !== lossOf(off))).toBe(true); // some example dropped levels
    const again = tiny({ kmeansInit: false, deadCodeSteps: 0, quantizerDropout: 1 });
    again.train();
    expect([lossOf(again), lossOf(again), lossOf(again), lossOf(again)]).toEqual(drawn); // seeded
  });

  it('bad input names expected and actual', () => {
    const c = tiny();
    const z = tf.zeros([2, 4, c.config.dim]) as tf.Tensor3D;
    expect(() => c.quantize(z, [1])).toThrow(/keepLevels must be 2 integers in \[1, 4\], got \[1\]/);
    expect(() => c.quantize(z, [0, 5])).toThrow(/got \[0, 5\]/);
    expect(() => speechCodecConfig({ quantizerDropout: 1.5 })).toThrow(/quantizerDropout/);
    z.dispose();
  });
});

describe('README', () => {
  it('shows this example verbatim', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');
    const body = self.split('// --- codec example start ---\n')[1]!.split('    // --- codec example end ---')[0]!;
    const snippet = body
      .split('\n')
      .map((l) => l.replace(/^ {4}/, ''))
      .join('\n')
      .trimEnd();
    expect(readme).toContain(snippet);
  });

  it('codec example', () => {
    // --- codec example start ---
    const codec = new SpeechCodec(CODEC_PRESETS.tiny); // untrained here: train it with trainSpeechCodec
    const [speaker] = makeToneSpeakers(1, 0);
    const speech = synthesizeTone('red circle moves left', speaker!, { seed: 1, sampleRate: 8000 });
    const codes = codec.encode(speech.samples, { sampleRate: 8000 }); // [4][T], 50 frames/s (hop 160)
    const words = WordTokenizer.fromText('please generate a speech of red circle moves left');
    const tok = new MultimodalTokenizer(words, { textVocabSize: words.vocabSize, speechCodebookSize: 8, speechLevels: 4 });
    const ids = tok.encode([
      { type: 'speech', levels: [codes[0]!] }, // input speech: the content level only
      { type: 'speech', levels: codes }, // output speech: all 4 levels, sequential
    ]);
    const wave = codec.decode(codes); // Float32Array of T x 160 samples at 8 kHz
    // --- codec example end ---
    const T = Math.ceil(speech.samples.length / 160);
    expect(ids.length).toBe(T + 2 + 4 * T + 2);
    expect(wave.length).toBe(T * 160);
    codec.dispose();
  });
});

describe('bad input names expected and actual', () => {
  it('config', () => {
    expect(() => speechCodecConfig({ hop: 150, subframes: 4 })).toThrow(/hop 150 must be a multiple of subframes 4/);
    expect(() => speechCodecConfig({ codebookSize: 1 })).toThrow(/codebookSize/);
    expect(() => speechCodecConfig({ stftSizes: [100] })).toThrow(/STFT window 100/);
  });

  it('sample rate, wave shape and length', () => {
    const c = tiny();
    expect(() => c.encode(new Float32Array(400), { sampleRate: 16000 })).toThrow('sample rate 16000 Hz, expected 8000 Hz');
    expect(() => c.encode(new Float32Array(0))).toThrow('expected at least one sample, got 0');
    const odd = tf.zeros([1, 1000]);
    expect(() => c.encodeIndices(odd)).toThrow('wave length must be a positive multiple of the hop 160 samples, got 1000 (pad to 1120)');
    const rank1 = tf.zeros([1600]);
    expect(() => c.encodeLatents(rank1)).toThrow('wave must be float32 [B, L], got float32 [1600]');
    tf.dispose([odd, rank1]);
    c.dispose();
  });

  it('codes: level count, lengths, range, dtype', () => {
    const c = tiny();
    const ok = [
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ];
    expect(() => c.decode([ok[0]!])).toThrow(/expected 4 code levels \[4\]\[T\], got 1 \(input speech carries the content level only/);
    expect(() => c.decode([[0, 1], [2], [4, 5], [6, 7]])).toThrow('expected 4 levels of equal length, got lengths [2, 1, 2, 2]');
    expect(() =>
      c.decode([
        [0, 1],
        [2, 8],
        [4, 5],
        [6, 7],
      ]),
    ).toThrow('level 1 frame 1: code 8 is outside [0, 8)');
    expect(() =>
      c.decode([
        [0, 1.5],
        [2, 3],
        [4, 5],
        [6, 7],
      ]),
    ).toThrow('level 0 frame 1: code 1.5 is outside [0, 8)');
    expect(() => c.decode([[], [], [], []])).toThrow('expected at least one frame, got 0');
    const f = tf.zeros([1, 2, 4]);
    expect(() => c.decodeIndices(f)).toThrow('codes must be int32 [B, T, 4] (4 levels), got float32 [1,2,4]');
    f.dispose();
    c.dispose();
  });

  it('training targets', () => {
    const c = tiny();
    const wave = tf.zeros([1, 320]) as tf.Tensor2D;
    const labels = tf.zeros([1, 3], 'int32') as tf.Tensor2D;
    expect(() => c.losses({ wave, labels, f0: [new Float32Array(8)] })).toThrow(
      'labels must be int32 [1, 2] (one per frame), got int32 [1,3]',
    );
    const l2 = tf.zeros([1, 2], 'int32') as tf.Tensor2D;
    expect(() => c.losses({ wave, labels: l2, f0: [new Float32Array(7)] })).toThrow(
      'f0 must be 1 rows of 8 subframes (4 per frame), got 1 rows of [7]',
    );
    tf.dispose([wave, labels, l2]);
    const bad: CodecExample = { wave: new Float32Array(300), labels: new Int32Array(2), f0: new Float32Array(8) };
    return expect(trainSpeechCodec(c, [bad], { train: 'tiny', progress: 'none' })).rejects.toThrow(
      'example 0 needs wave of T x 160 samples, T labels and T x 4 pitch values, got 300 samples, 2 labels, 8 pitch values',
    );
  });
});

describe('helpers', () => {
  it('upsampleLinear on the backend equals the host version and holds the ends', () => {
    const v = [1, 3, -2];
    const t = tf.tensor3d(v, [1, 3, 1]);
    const up = upsampleLinear(t, 4);
    const host = upsampleLinearHost(v, 4);
    const dev = up.dataSync();
    for (let i = 0; i < 12; i++) expect(dev[i]).toBeCloseTo(host[i]!, 6);
    expect(host[0]).toBe(1); // before the first control: held
    expect(host[11]).toBe(-2);
    expect(host[6]).toBeCloseTo(3 * 0.875 + -2 * 0.125, 6); // sample 6 lies 1/8 of the way from control 1 (centre 5.5) to control 2 (centre 9.5)
    tf.dispose([t, up]);
  });

  it('fillUnvoiced copies the nearest voiced pitch', () => {
    expect(Array.from(fillUnvoiced(Float32Array.from([0, 0, 100, 0, 0, 0, 200, 0])))).toEqual([100, 100, 100, 100, 100, 200, 200, 200]);
    expect(Array.from(fillUnvoiced(new Float32Array(2)))).toEqual([150, 150]);
  });

  it('multi-resolution STFT loss is 0 for identical signals and positive otherwise', () => {
    const a = tf.randomNormal([1, 640], 0, 0.1, 'float32', 1);
    const b = tf.randomNormal([1, 640], 0, 0.1, 'float32', 2);
    expect(multiResolutionStftLoss(a, a, [160, 320]).dataSync()[0]).toBeCloseTo(0, 6);
    expect(multiResolutionStftLoss(a, b, [160, 320]).dataSync()[0]).toBeGreaterThan(0.1);
    tf.dispose([a, b]);
  });

  it('codebook usage and the level probe', () => {
    const usage = codebookUsage(
      [
        [
          [0, 0, 1, 1],
          [2, 2, 2, 2],
        ],
      ],
      4,
    );
    expect(usage[0]!.used).toBe(0.5);
    expect(usage[0]!.perplexity).toBeCloseTo(2, 6);
    expect(usage[1]!.perplexity).toBeCloseTo(1, 6);
    // level 0 is the word, level 1 is noise: the level-0 probe is perfect, the level-1 probe is not
    const I = CODEC_IGNORE;
    const set = {
      codes: [
        [
          [0, 0, 1, 1, 2, 2, 3, 3],
          [1, 2, 3, 0, 1, 0, 2, 3],
        ],
      ],
      labels: [[0, 0, I, 1, 2, 2, 3, 3]],
    };
    const p0 = levelProbe(set, set, [0], 4, 4);
    expect(p0.frameAccuracy).toBe(1);
    expect(p0.wordAccuracy).toBe(1);
    expect(p0.words).toBe(4);
    expect(p0.frames).toBe(7);
    expect(levelProbe(set, set, [1], 4, 4).frameAccuracy).toBeLessThan(1);
  });
});

describe('training', () => {
  it('resumes from its checkpoint to the same weights as an uninterrupted run', async () => {
    const us = ['red circle', 'green star'].map(utter);
    const c0 = tiny();
    const ex = us.map((u) => toneCodecExample(u, c0.config));
    const straight = await trainSpeechCodec(c0, ex, { train: 'tiny', progress: 'none' });
    expect(straight.loop.step).toBe(4);
    expect(straight.records.map((r) => r.step)).toEqual([2, 4]);
    const dir = mkdtempSync(join(tmpdir(), 'mio-codec-'));
    dirs.push(dir);
    const c1 = tiny();
    const ac = new AbortController();
    await trainSpeechCodec(c1, ex, {
      train: 'tiny',
      checkpointDir: dir,
      progress: 'lines',
      signal: ac.signal,
      log: (l) => {
        if (l.includes('step 2/')) ac.abort();
      },
    });
    const c2 = tiny();
    const resumed = await trainSpeechCodec(c2, ex, { train: 'tiny', checkpointDir: dir, resume: true, progress: 'none', log: () => {} });
    expect(resumed.loop.resumedFrom).toBe(2);
    expect(resumed.loop.step).toBe(4);
    const a = c0.stateDict();
    const b = c2.stateDict();
    for (const k of Object.keys(a)) expect(Array.from(b[k]!.dataSync())).toEqual(Array.from(a[k]!.dataSync()));
    for (const c of [c0, c1, c2]) c.dispose();
  });

  it('overfits two utterances: the STFT loss of decode(encode(x)) falls below half its value at init', async () => {
    const us = ['red circle', 'yellow ring'].map(utter);
    const c = tiny({ channels: 16, dilations: [1, 2, 4] });
    const ex = us.map((u) => toneCodecExample(u, c.config));
    const T = Math.max(...ex.map((e) => e.labels.length));
    const recon = () =>
      ex.reduce((acc, e) => {
        const y = c.decode(c.encode(e.wave));
        const a = tf.tensor2d(y, [1, y.length]);
        const b = tf.tensor2d(e.wave, [1, e.wave.length]);
        const l = multiResolutionStftLoss(a, b, c.config.stftSizes);
        const v = l.dataSync()[0]!;
        tf.dispose([a, b, l]);
        return acc + v / ex.length;
      }, 0);
    const before = recon();
    const numTensors = tf.memory().numTensors;
    await trainSpeechCodec(c, ex, {
      train: { steps: 100, batchSize: 2, cropFrames: T, lr: 5e-3, warmup: 10, logEvery: 50 },
      progress: 'none',
    });
    expect(tf.memory().numTensors).toBe(numTensors);
    const after = recon();
    expect(after).toBeLessThan(0.5 * before);
    c.dispose();
  });
});
