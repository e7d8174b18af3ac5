/**
 * Model contracts (the unified LM and the VQ tokenizer), KV-cached CFG generation against a
 * cache-free unpadded reference, captioning, training steps without leaks, tokenizer learning at
 * the tiny size, the code cache, parameter counts, and bad inputs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cfgLogits, initBackend, loadModule, Rng, saveModule, type TransformerDecoder, tf } from '@mmlm/core';
import { runModelContract } from '@mmlm/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildLM,
  captionImages,
  causalLMLoss,
  collate,
  extendedVocabSize,
  extendVocabulary,
  extractCodes,
  generateImageCodes,
  i2tExample,
  imageTokenizerConfig,
  liquidConfig,
  liquidVocab,
  lmConfig,
  lmTrainStep,
  loadCodeCache,
  makeOptimizer,
  PRESETS,
  parameterCount,
  preset,
  saveCodeCache,
  t2iExample,
  textExample,
  tokenizerStats,
  tokenizerTrainStep,
  tokensPerImage,
  VQTokenizer,
} from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'liquid-model-'));
const tiny = preset('tiny');
const N = tokensPerImage(tiny.tokenizer); // 16
const K = tiny.tokenizer.numCodes; // 16
const V = tiny.lm.textVocabSize; // 64
const vocab = liquidVocab({ textVocabSize: V, numCodes: K, tokensPerImage: N, bos: 1, eos: 2, pad: 0 });

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});
afterAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
  rmSync(root, { recursive: true, force: true });
});

function unifiedModel(seed = 1): TransformerDecoder {
  const text = buildLM(tiny.lm, V, seed);
  // perturb so new rows differ from each other and logits are not flat
  const m = extendVocabulary(text, K + 3, { init: 'normal', std: 0.5, seed });
  text.dispose();
  return m;
}

const codesOf = (seed: number) => Array.from({ length: N }, (_, i) => (i * 7 + seed) % K);

function tinyBatch() {
  return collate(
    [t2iExample(vocab, [5, 6, 7], codesOf(1)), i2tExample(vocab, codesOf(2), [8, 9], [10, 11, 12]), textExample(vocab, [4, 5, 6, 7, 8])],
    vocab,
    tiny.lm.maxSeqLen,
  );
}

/** Synthetic 16x16 images: one coloured square on a dark background, pixels in [0, 1]. */
function squares(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const S = 16;
  const out = new Float32Array(n * S * S * 3).fill(0.1);
  for (let i = 0; i < n; i++) {
    const x0 = rng.int(0, 9);
    const y0 = rng.int(0, 9);
    const col = [rng.uniform(), rng.uniform(), rng.uniform()];
    for (let y = y0; y < y0 + 7; y++)
      for (let x = x0; x < x0 + 7; x++) for (let c = 0; c < 3; c++) out[((i * S + y) * S + x) * 3 + c] = col[c]!;
  }
  return out;
}

describe('model contract', () => {
  it('unified LM (extended vocabulary) satisfies the contract on cpu and wasm', async () => {
    const b = tinyBatch();
    const r = await runModelContract({
      name: 'liquid-lm',
      make: (seed) => unifiedModel(seed),
      inputs: () => [tf.tensor2d(b.inputIds, b.shape, 'int32'), tf.tensor2d(b.labels, b.shape, 'int32')],
      forward: (m, [ids]) => m.forward(ids!),
      expectedShape: [b.shape[0], b.shape[1], vocab.size],
      loss: (m, [ids, labels]) => causalLMLoss(m, ids!, labels!),
      // the leak check runs the package's own step (AdamW, warmup-cosine lr, clipping)
      trainStep: (m) => {
        const phase = liquidConfig().train.unified;
        const opt = makeOptimizer(m, phase);
        return { step: (_xs, t) => void lmTrainStep(m, opt, b, t, phase), dispose: () => opt.dispose() };
      },
      // the only ids never fed as input in this batch are unused embedding rows: their gradient rows are zero,
      // but each parameter tensor as a whole must still get a non-zero gradient
    });
    expect(r.numParameters).toBe(parameterCount(tiny.lm, vocab.size).total);
  });

  it('VQ tokenizer satisfies the contract (cpu and wasm)', async () => {
    const cfg = { ...tiny.tokenizer, deadCodeSteps: 0 };
    await runModelContract({
      name: 'liquid-vq',
      make: (seed) => new VQTokenizer({ ...cfg, seed }),
      inputs: () => [tf.tidy(() => new Rng(2).rand([2, 16, 16, 3], -1, 1))],
      forward: (m, [x]) => {
        m.eval();
        return m.forward(x!).xRec;
      },
      expectedShape: [2, 16, 16, 3],
      loss: (m, [x]) =>
        tf.tidy(() => {
          const o = m.forward(x!);
          return o.xRec.sub(x!).square().mean().add(o.vq.loss) as tf.Scalar;
        }),
      trainStep: (m) => {
        const phase = liquidConfig().train.tokenizer;
        const opt = makeOptimizer(m, phase);
        m.train();
        return { step: ([x], t) => void tokenizerTrainStep(m, opt, x!, t, phase), dispose: () => opt.dispose() };
      },
    });
  });
});

describe('generation', () => {
  /** Greedy CFG decoding without cache or padding: cond and uncond prompts run separately, full recompute. */
  function referenceGreedy(m: TransformerDecoder, prompt: number[], s: number): number[] {
    const cond = [vocab.bos, ...prompt, vocab.boi];
    const uncond = [vocab.bos, vocab.unconditional, vocab.boi];
    const out: number[] = [];
    for (let i = 0; i < N; i++) {
      const id = tf.tidy(() => {
        const last = (ids: number[]) =>
          m
            .forward(tf.tensor2d([ids], [1, ids.length], 'int32'))
            .slice([0, ids.length - 1, 0], [1, 1, -1])
            .reshape([1, -1]);
        const l = s === 1 ? last(cond) : cfgLogits(last(cond), last(uncond), s);
        const masked = l.dataSync().map((v, j) => (j >= vocab.codeOffset && j < vocab.codeOffset + K ? v : Number.NEGATIVE_INFINITY));
        return masked.indexOf(Math.max(...masked));
      });
      out.push(id - vocab.codeOffset);
      cond.push(id);
      uncond.push(id);
    }
    return out;
  }

  for (const s of [1, 3]) {
    it(`greedy KV-cached left-padded batch equals the cache-free unpadded reference (s = ${s})`, () => {
      const m = unifiedModel(3);
      const prompts = [[5, 6, 7, 8, 9], [10], [11, 12]];
      const got = generateImageCodes(m, vocab, prompts, { cfgScale: s, temperature: 0 });
      expect(got.length).toBe(3);
      got.forEach((codes, i) => {
        expect(codes.length).toBe(N);
        expect(Array.from(codes)).toEqual(referenceGreedy(m, prompts[i]!, s));
      });
      m.dispose();
    });
  }

  it('samples exactly N codes in [0, K), reproducibly by seed, and leaks no tensors', () => {
    const m = unifiedModel(4);
    const before = tf.memory().numTensors;
    const a = generateImageCodes(m, vocab, [[5, 6], [7]], { cfgScale: 2, rng: new Rng(9), batchSize: 1 });
    expect(tf.memory().numTensors).toBe(before);
    const b = generateImageCodes(m, vocab, [[5, 6], [7]], { cfgScale: 2, rng: new Rng(9), batchSize: 1 });
    for (const c of a) expect(c.every((k) => k >= 0 && k < K)).toBe(true);
    expect(a.map((c) => Array.from(c))).toEqual(b.map((c) => Array.from(c)));
    m.dispose();
  });

  it('captions with text ids only, stopping at <eos>', () => {
    const m = unifiedModel(5);
    const before = tf.memory().numTensors;
    const caps = captionImages(m, vocab, [codesOf(0), codesOf(3)], [8, 9], { maxNewTokens: 6 });
    expect(tf.memory().numTensors).toBe(before);
    expect(caps.length).toBe(2);
    for (const c of caps) {
      expect(c.length).toBeLessThanOrEqual(6);
      expect(c.every((id) => id >= 0 && id < V && id !== vocab.eos)).toBe(true);
    }
    m.dispose();
  });
});

describe('training', () => {
  it('an LM step lowers the loss on a repeated batch and leaks no tensors', () => {
    const m = unifiedModel(6);
    const phase = { ...tiny.train.unified, steps: 20, warmup: 0, lr: 3e-3 };
    const opt = makeOptimizer(m, phase);
    const b = tinyBatch();
    const first = lmTrainStep(m, opt, b, 0, phase).loss;
    const before = tf.memory().numTensors;
    lmTrainStep(m, opt, b, 1, phase);
    expect(tf.memory().numTensors).toBe(before);
    let last = first;
    for (let t = 2; t < 20; t++) last = lmTrainStep(m, opt, b, t, phase).loss;
    expect(last).toBeLessThan(first * 0.7);
    opt.dispose();
    m.dispose();
  });

  it('tokenizer reconstruction improves over training at the tiny size (no tensor leak per step)', () => {
    const vq = new VQTokenizer({ ...tiny.tokenizer, seed: 1 });
    const images = squares(32, 1);
    const phase = { ...tiny.train.tokenizer, steps: 60, warmup: 5, lr: 3e-3 };
    const opt = makeOptimizer(vq, phase);
    const before = tokenizerStats(vq, images).mse;
    const rng = new Rng(2);
    for (let t = 0; t < phase.steps; t++) {
      const idx = Array.from({ length: 8 }, () => rng.int(0, 32));
      const x = tf.tidy(() => tf.tensor4d(images, [32, 16, 16, 3]).gather(idx).mul(2).sub(1));
      const n0 = tf.memory().numTensors;
      tokenizerTrainStep(vq, opt, x, t, phase);
      if (t === 3) expect(tf.memory().numTensors).toBe(n0);
      x.dispose();
    }
    const after = tokenizerStats(vq, images);
    expect(after.mse).toBeLessThan(before * 0.5);
    expect(after.usage).toBeGreaterThan(0);
    opt.dispose();
    vq.dispose();
  });
});

describe('code cache and weights', () => {
  it('extracts codes once, saves and reloads them exactly, and decodes the same images after a weight round trip', async () => {
    const vq = new VQTokenizer({ ...tiny.tokenizer, seed: 2 });
    const images = squares(5, 3);
    const codes = extractCodes(vq, images, 2);
    expect(codes.length).toBe(5 * N);
    const path = join(root, 'codes.safetensors');
    await saveCodeCache(path, { codes, tokensPerImage: N, numCodes: K, metadata: { tokenizer: 'tiny-seed2' } });
    const back = await loadCodeCache(path, { tokensPerImage: N, numCodes: K });
    expect(Array.from(back.codes)).toEqual(Array.from(codes));
    expect([back.numImages, back.metadata.tokenizer]).toEqual([5, 'tiny-seed2']);
    await expect(loadCodeCache(path, { tokensPerImage: N + 1 })).rejects.toThrow(`expected ${N + 1} codes per image, got ${N}`);
    await expect(loadCodeCache(path, { numCodes: 8 })).rejects.toThrow('expected a codebook of 8, got 16');
    writeFileSync(join(root, 'bad.safetensors'), 'not a file');
    await expect(loadCodeCache(join(root, 'bad.safetensors'))).rejects.toThrow();
    const wpath = join(root, 'vq.safetensors');
    await saveModule(wpath, vq);
    const vq2 = new VQTokenizer({ ...tiny.tokenizer, seed: 9 });
    await loadModule(wpath, vq2);
    expect(Array.from(extractCodes(vq2, images))).toEqual(Array.from(codes));
    vq.dispose();
    vq2.dispose();
  });
});

describe('configs and parameter counts', () => {
  it('passes the EMA codebook and cosine lookup options to the quantizer', () => {
    const ema = new VQTokenizer({ ...PRESETS.tiny.tokenizer, emaDecay: 0.99, cosine: true });
    const plain = new VQTokenizer(PRESETS.tiny.tokenizer);
    expect(ema.quantize.emaDecay).toBe(0.99);
    expect(ema.quantize.cosine).toBe(true);
    expect(plain.quantize.emaDecay).toBeNull();
    expect(plain.quantize.cosine).toBe(false);
    // with EMA the codebook is a buffer, not a trainable parameter
    expect(plain.numParameters() - ema.numParameters()).toBe(16 * 8);
    ema.dispose();
    plain.dispose();
  });

  it('paper preset: Gemma-7B has 8,537,680,896 parameters; + 8192 codes + 3 specials (tied) adds 8195 x 3072', () => {
    const p = PRESETS.paper.lm;
    expect(parameterCount(p, 256_000).total).toBe(8_537_680_896);
    expect(parameterCount(p, extendedVocabSize(256_000, 8192)).total - 8_537_680_896).toBe(8195 * 3072);
    expect(tokensPerImage(PRESETS.paper.tokenizer)).toBe(1024);
    expect(PRESETS.paper.sampling).toMatchObject({ cfgScale: 7, temperature: 0.99, topK: 4096, topP: 0.96 });
  });

  it('paper preset: a valid config whose LM is counted, never built; its tokenizer is built', () => {
    const p = preset('paper');
    expect(liquidConfig(p)).toEqual(p);
    // core's decoder derives the head width as dim / numHeads; Gemma-7B has 16 heads of 256 at width 3072
    expect(() => buildLM(p.lm, extendedVocabSize(256_000, 8192))).toThrow('headDim 256 x 16 heads vs dim 3072');
    const vq = new VQTokenizer(p.tokenizer); // Chameleon's shape: 512 px -> 32 x 32 codes of K = 8192
    expect([vq.gridSize, vq.tokensPerImage, vq.numCodes]).toEqual([32, 1024, 8192]);
    expect(vq.numParameters()).toBe(66_615_171);
    vq.dispose();
  });

  it('parameterCount matches the built models of tiny and small', () => {
    for (const name of ['tiny', 'small'] as const) {
      const c = preset(name);
      const m = buildLM(c.lm, extendedVocabSize(c.lm.textVocabSize, c.tokenizer.numCodes));
      expect(m.numParameters()).toBe(parameterCount(c.lm, extendedVocabSize(c.lm.textVocabSize, c.tokenizer.numCodes)).total);
      m.dispose();
    }
  });
});

describe('bad inputs', () => {
  it('code ids out of range', () => {
    expect(() => t2iExample(vocab, [5], [...codesOf(0).slice(1), K])).toThrow(
      `code ${K} at index ${N - 1} must be an integer in [0, ${K})`,
    );
    expect(() => i2tExample(vocab, [...codesOf(0).slice(1), -1], [8], [9])).toThrow(`code -1 at index ${N - 1}`);
    const m = unifiedModel(7);
    expect(() => captionImages(m, vocab, [[...codesOf(0).slice(1), K]], [8])).toThrow(`code ${K} at index ${N - 1}`);
    m.dispose();
    const vq = new VQTokenizer(tiny.tokenizer);
    const bad = tf.tensor2d([[...codesOf(0).slice(1), K]], [1, N], 'int32');
    expect(() => vq.decodeCodes(bad)).toThrow(`code ${K} at index ${N - 1} must be an integer in [0, ${K})`);
    bad.dispose();
    vq.dispose();
  });

  it('an image span of the wrong length', () => {
    expect(() => t2iExample(vocab, [5], codesOf(0).slice(1))).toThrow(`an image span must hold exactly ${N} codes, got ${N - 1}`);
    expect(() => i2tExample(vocab, [...codesOf(0), 0], [8], [9])).toThrow(`exactly ${N} codes, got ${N + 1}`);
    const vq = new VQTokenizer(tiny.tokenizer);
    const bad = tf.zeros([1, N + 1], 'int32');
    expect(() => vq.decodeCodes(bad)).toThrow(`codes must be [B, ${N}] or [B, 4, 4], got shape [1,${N + 1}]`);
    bad.dispose();
    vq.dispose();
  });

  it('a prompt longer than the context, and image ids in a text prompt', () => {
    const m = unifiedModel(8);
    const ctx = tiny.lm.maxSeqLen;
    const long = Array.from({ length: ctx - N - 1 }, () => 5);
    expect(() => generateImageCodes(m, vocab, [long], { temperature: 0 })).toThrow(
      `prompt 0 has ${long.length} tokens; with [BOS], <boi> and ${N} image codes it needs ${ctx + 1} positions, more than the context of ${ctx}`,
    );
    expect(() => generateImageCodes(m, vocab, [[5, vocab.codeOffset]], { temperature: 0 })).toThrow(
      `prompt 0 has id ${vocab.codeOffset} at index 1; prompt ids must be text ids in [0, ${V})`,
    );
    expect(() => generateImageCodes(m, vocab, [[5]], { cfgScale: 0 })).toThrow('cfgScale must be a finite number > 0, got 0');
    expect(() => t2iExample(vocab, [5, vocab.boi], codesOf(0))).toThrow(`text id ${vocab.boi} at index 1 must be an integer in [0, ${V})`);
    const small = buildLM(tiny.lm, V);
    expect(() => generateImageCodes(small, vocab, [[5]])).toThrow(
      `the model's vocabulary is ${V}, the unified vocabulary is ${vocab.size}`,
    );
    small.dispose();
    m.dispose();
  });

  it('wrong image shapes, vocab specs and configs', () => {
    const vq = new VQTokenizer(tiny.tokenizer);
    const x = tf.zeros([1, 8, 8, 3]);
    expect(() => vq.tokenize(x)).toThrow('images must be [B, 16, 16, 3], got shape [1,8,8,3]');
    x.dispose();
    vq.dispose();
    expect(() => liquidVocab({ textVocabSize: 8, numCodes: 4, tokensPerImage: 3, bos: 8, eos: 2, pad: 0 })).toThrow(
      'bos must be a text id in [0, 8), got 8',
    );
    expect(() => imageTokenizerConfig({ imageSize: 18, chMult: [1, 2, 2] })).toThrow(
      'imageSize (18) must be divisible by the downsampling factor 4',
    );
    expect(() => imageTokenizerConfig({ numResBlocks: 0, chMult: [1, 2, 2] })).toThrow(
      'numResBlocks 0 leaves no block to change the width, so chMult must be constant, got [1,2,2]',
    );
    expect(() => imageTokenizerConfig({ emaDecay: 1 })).toThrow('emaDecay');
    expect(() => lmConfig({ dim: 30, numHeads: 4 })).toThrow('dim (30) must be divisible by numHeads (4)');
    expect(() => liquidConfig({ mix: { text: 0, t2i: 0, i2t: 0 } })).toThrow('mix weights must not all be 0');
    expect(() => liquidConfig({ sampling: { topP: 1.5 } })).toThrow('sampling.topP');
    expect(() => preset('huge')).toThrow('unknown preset "huge"; expected one of tiny, small, paper');
    expect(() => extendVocabulary(buildLM(tiny.lm, V), 0)).toThrow('newRows must be a positive integer, got 0');
    expect(() => collate([], vocab, 8)).toThrow('need at least one example, got 0');
  });
});
