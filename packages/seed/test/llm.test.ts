/**
 * The LLM side (SEED-LLaMA, brief 1.4 / 1.9): code <-> token id round trip and the reference's ids,
 * hand-written sequences and label masks (pre-training: every non-pad token; SFT: the assistant's
 * tokens), the reverse ratio, vocabulary extension keeping old rows and text logits, LoRA with
 * modules_to_save (which parameters get gradients and move, the trainable count in closed form,
 * merge_and_unload), the loss against a host computation, generation of exactly Q codes (KV cache,
 * CFG, seeded, no tensor leak), greedy captions with codes masked, bad inputs, and a small overfit of
 * the whole schedule (text -> extend -> pre-training -> SFT) with LoRA and fully.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AdamW, initBackend, paramGroups, Rng, tf, valueAndGrads } from '@mmlm/core';
import { WordTokenizer } from '@mmlm/data';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  applySeedLoRA,
  type ChatTemplate,
  codeTokenString,
  codeToTokenId,
  extendDecoderVocabulary,
  generateCaptions,
  generateImageCodes,
  generateImages,
  generationPrompt,
  IGNORE_INDEX,
  IMAGE_DECODER_PRESETS,
  ImageDecoder,
  imageSpan,
  imageSpanCodes,
  lmLoss,
  lmStep,
  mergeSeedLoRA,
  modulesToSave,
  PRESETS,
  padSequences,
  pairSequence,
  SEED_LM_PAPER,
  SeedLM,
  SeedTokenizer,
  samplePairOrder,
  seedLMConfig,
  seedLMParameterCount,
  seedVocab,
  sftSequence,
  textSequence,
  tokenIdToCode,
  trainSeedLM,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});

// A hand-sized vocabulary: text ids 0..9 (pad 0, bos 1, eos 2), K = 4 codes at 10..13, <img> 14, </img> 15.
const v = seedVocab({ textVocabSize: 10, numCodes: 4, tokensPerImage: 2, pad: 0, bos: 1, eos: 2 });
const tpl: ChatTemplate = { user: [7, 8], assistant: [9, 8] };
const X = IGNORE_INDEX;

describe('vocabulary (brief 1.9: code k <-> <img_{k:05d}> <-> id V + k)', () => {
  it('lays out codes, <img> and </img> after the text ids', () => {
    expect([v.codeOffset, v.img, v.endImg, v.size]).toEqual([10, 14, 15, 16]);
    const ref = seedVocab({ textVocabSize: 32000, numCodes: 8192, tokensPerImage: 32, pad: 0, bos: 1, eos: 2 });
    expect(codeToTokenId(ref, 0)).toBe(32000);
    expect(codeToTokenId(ref, 8191)).toBe(40191);
    expect([ref.img, ref.endImg, ref.size]).toEqual([40192, 40193, 40194]);
    expect(codeTokenString(42)).toBe('<img_00042>');
    expect(codeTokenString(8191)).toBe('<img_08191>');
  });

  it('round-trips every code', () => {
    for (let k = 0; k < 4; k++) expect(tokenIdToCode(v, codeToTokenId(v, k))).toBe(k);
    for (let id = 10; id < 14; id++) expect(codeToTokenId(v, tokenIdToCode(v, id))).toBe(id);
  });

  it('rejects codes out of range and non-code ids, naming expected and actual', () => {
    expect(() => codeToTokenId(v, 4)).toThrow(/\[0, 4\).*got 4/);
    expect(() => codeToTokenId(v, -1)).toThrow(/\[0, 4\).*got -1/);
    expect(() => codeToTokenId(v, 1.5)).toThrow(/integer in \[0, 4\).*got 1\.5/);
    expect(() => tokenIdToCode(v, 3)).toThrow(/\[10, 14\), got 3 \(a text id/);
    expect(() => tokenIdToCode(v, 14)).toThrow(/got 14 \(<img>\)/);
    expect(() => tokenIdToCode(v, 15)).toThrow(/got 15 \(<\/img>\)/);
    expect(() => tokenIdToCode(v, 16)).toThrow(/got 16 \(outside the vocabulary \[0, 16\)\)/);
  });

  it('image spans: <img> + Q codes + </img>; wrong lengths and markers are errors', () => {
    expect(imageSpan(v, [1, 3])).toEqual([14, 11, 13, 15]);
    expect(Array.from(imageSpanCodes(v, [14, 11, 13, 15]))).toEqual([1, 3]);
    expect(() => imageSpan(v, [1, 2, 3])).toThrow(/expected 2 codes per image.*got 3/);
    expect(() => imageSpan(v, [1, 4])).toThrow(/\[0, 4\).*got 4/);
    expect(() => imageSpanCodes(v, [14, 11, 12, 13, 15])).toThrow(/2 codes \+ <\/img> = 4 tokens, got 5 tokens \(3 between/);
    expect(() => imageSpanCodes(v, [14, 11, 15])).toThrow(/= 4 tokens, got 3/);
    expect(() => imageSpanCodes(v, [5, 11, 13, 15])).toThrow(/expected <img> \(id 14\) at position 0, got 5/);
    expect(() => imageSpanCodes(v, [14, 11, 13, 2])).toThrow(/expected <\/img> \(id 15\) at position 3, got 2/);
    expect(() => imageSpanCodes(v, [14, 11, 5, 15])).toThrow(/position 2 must be a code id in \[10, 14\), got 5/);
  });
});

describe('sequences and label masks (hand-written)', () => {
  it('text pre-training labels every token', () => {
    expect(textSequence(v, [5, 6, 7])).toEqual({ ids: [1, 5, 6, 7, 2], labels: [1, 5, 6, 7, 2] });
  });

  it('multimodal pre-training: both orders, loss on all non-pad tokens', () => {
    expect(pairSequence(v, [5, 6], [1, 3], 'text-first')).toEqual({
      ids: [1, 5, 6, 14, 11, 13, 15, 2],
      labels: [1, 5, 6, 14, 11, 13, 15, 2],
    });
    expect(pairSequence(v, [5, 6], [1, 3], 'image-first')).toEqual({
      ids: [1, 14, 11, 13, 15, 5, 6, 2],
      labels: [1, 14, 11, 13, 15, 5, 6, 2],
    });
    const b = padSequences(v, [pairSequence(v, [5], [0, 0], 'text-first'), pairSequence(v, [5, 6, 7], [2, 3], 'image-first')]);
    expect([b.batch, b.length]).toEqual([2, 9]);
    expect(Array.from(b.ids)).toEqual([1, 5, 14, 10, 10, 15, 2, 0, 0, 1, 14, 12, 13, 15, 5, 6, 7, 2]);
    expect(Array.from(b.labels)).toEqual([1, 5, 14, 10, 10, 15, 2, X, X, 1, 14, 12, 13, 15, 5, 6, 7, 2]);
  });

  it('SFT: only the assistant tokens are labelled', () => {
    expect(sftSequence(v, tpl, [5, 6], [1, 3], 'caption')).toEqual({
      ids: [1, 7, 8, 14, 11, 13, 15, 9, 8, 5, 6, 2],
      labels: [X, X, X, X, X, X, X, X, X, 5, 6, 2],
    });
    expect(sftSequence(v, tpl, [5, 6], [1, 3], 'generate')).toEqual({
      ids: [1, 7, 8, 5, 6, 9, 8, 14, 11, 13, 15, 2],
      labels: [X, X, X, X, X, X, X, 14, 11, 13, 15, 2],
    });
    // the generation prompt is the SFT sequence up to and including <img>
    expect(generationPrompt(v, [5, 6], tpl)).toEqual([1, 7, 8, 5, 6, 9, 8, 14]);
    expect(generationPrompt(v, [5, 6])).toEqual([1, 5, 6, 14]);
  });

  it('bad inputs name expected and actual', () => {
    expect(() => pairSequence(v, [5], [1, 2, 3], 'text-first')).toThrow(/expected 2 codes per image.*got 3/);
    expect(() => pairSequence(v, [5, 11], [1, 2], 'text-first')).toThrow(/caption\[1\] must be a text id.*got 11 \(code 1\)/);
    expect(() => sftSequence(v, tpl, [5], [1], 'caption')).toThrow(/expected 2 codes.*got 1/);
    expect(() => pairSequence(v, [5], [1, 2], 'sideways' as never)).toThrow(/order must be .*got "sideways"/);
    expect(() => seedVocab({ textVocabSize: 10, numCodes: 4, tokensPerImage: 2, pad: 0, bos: 10, eos: 2 })).toThrow(
      /bos must be a text id in \[0, 10\).*got 10/,
    );
  });

  it('reverses the order with probability 0.5 from a seeded Rng', () => {
    const draw = (seed: number, ratio: number, n: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: n }, () => samplePairOrder(rng, ratio));
    };
    const a = draw(3, 0.5, 4000);
    const frac = a.filter((o) => o === 'image-first').length / a.length;
    expect(Math.abs(frac - 0.5)).toBeLessThan(3 * Math.sqrt(0.25 / 4000)); // 3 standard errors
    expect(draw(3, 0.5, 50)).toEqual(a.slice(0, 50));
    expect(draw(3, 0, 100).every((o) => o === 'text-first')).toBe(true);
    expect(draw(3, 1, 100).every((o) => o === 'image-first')).toBe(true);
    expect(() => samplePairOrder(new Rng(0), 1.5)).toThrow(/\[0, 1\], got 1\.5/);
  });
});

const D = 32;
const L = 2;
const H = 64; // swigluHidden(32)
const tinyLM = (seed = 0, textVocabSize = 10) => new SeedLM({ textVocabSize, dim: D, numLayers: L, numHeads: 2, maxSeqLen: 24, seed });
const textIds = () => tf.tensor2d([1, 5, 6, 7, 2, 1, 8, 3, 4, 9], [2, 5], 'int32');

describe('SeedLM vocabulary extension', () => {
  it('keeps every old row bit-identical and the text logits of old ids unchanged', () => {
    const m = tinyLM();
    const x = textIds();
    const before = m.forward(x);
    const embOld = m.lm.tok_embed!.weight.dataSync().slice();
    const headOld = m.lm.head!.weight.dataSync().slice();
    const others = Object.fromEntries(
      m
        .namedParameters()
        .filter(([k]) => !/tok_embed|head/.test(k))
        .map(([k, p]) => [k, p.dataSync().slice()]),
    );
    const vv = m.extendVocabulary(4, 2);
    expect(vv.size).toBe(16);
    expect(m.vocabSize).toBe(16);
    expect(m.lm.tok_embed!.weight.shape).toEqual([16, D]);
    expect(m.lm.head!.weight.shape).toEqual([16, D]);
    expect(Array.from(m.lm.tok_embed!.weight.dataSync().slice(0, 10 * D))).toEqual(Array.from(embOld));
    expect(Array.from(m.lm.head!.weight.dataSync().slice(0, 10 * D))).toEqual(Array.from(headOld));
    for (const [k, p] of m.namedParameters()) if (others[k]) expect(Array.from(p.dataSync())).toEqual(Array.from(others[k]!));
    const after = m.forward(x);
    expect(after.shape).toEqual([2, 5, 16]);
    const a = after.slice([0, 0, 0], [2, 5, 10]).dataSync();
    const b = before.dataSync();
    let maxDiff = 0;
    for (let i = 0; i < b.length; i++) maxDiff = Math.max(maxDiff, Math.abs((a[i] as number) - (b[i] as number)));
    expect(maxDiff).toBeLessThan(1e-6);
    expect(() => m.extendVocabulary(4, 2)).toThrow(/already extended \(16 ids\)/);
    tf.dispose([x, before, after]);
    m.dispose();
  });

  it("'mean' init puts the mean of the old rows in every new row; 'normal' has the init std", () => {
    const m = tinyLM(1);
    const emb = m.lm.tok_embed!.weight.dataSync().slice();
    m.extendVocabulary(4, 2, { init: 'mean' });
    const grown = m.lm.tok_embed!.weight.dataSync();
    for (let j = 0; j < D; j++) {
      let s = 0;
      for (let i = 0; i < 10; i++) s += emb[i * D + j] as number;
      for (let r = 10; r < 16; r++) expect(grown[r * D + j]).toBeCloseTo(s / 10, 6);
    }
    m.dispose();
    const big = new SeedLM({ textVocabSize: 10, dim: 64, numLayers: 1, numHeads: 2, maxSeqLen: 8 });
    big.extendVocabulary(200, 2);
    const rows = Array.from(big.lm.head!.weight.dataSync().slice(10 * 64));
    const mean = rows.reduce((a, b) => a + b, 0) / rows.length;
    const std = Math.sqrt(rows.reduce((a, b) => a + (b - mean) ** 2, 0) / rows.length);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.001); // 202 x 64 draws of N(0, 0.02)
    big.dispose();
  });

  it('rejects a smaller vocabulary and a model with LoRA', () => {
    const m = tinyLM();
    expect(() => extendDecoderVocabulary(m.lm, 10)).toThrow(/integer > the current vocabulary of 10, got 10/);
    applySeedLoRA(m, { r: 2 });
    expect(() => m.extendVocabulary(4, 2)).toThrow(/merge the LoRA layers first/);
    m.dispose();
  });
});

describe('LoRA with modules_to_save', () => {
  const V2 = 16; // 10 text + 4 codes + 2
  const r = 4;

  it('wraps every block Linear, trains LoRA + embeddings + head + norms, and counts them (closed form)', () => {
    const m = tinyLM(2);
    m.extendVocabulary(4, 2);
    const total0 = m.numParameters();
    const rep = applySeedLoRA(m, { r, alpha: 8, dropout: 0.05 });
    const linears = ['attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.gate', 'mlp.fc2'];
    expect(rep.wrapped.sort()).toEqual([0, 1].flatMap((i) => linears.map((l) => `lm.blocks.${i}.${l}`)).sort());
    expect(rep.modulesToSave.sort()).toEqual(
      ['lm.tok_embed', 'lm.head', 'lm.norm', 'lm.blocks.0.norm1', 'lm.blocks.0.norm2', 'lm.blocks.1.norm1', 'lm.blocks.1.norm2'].sort(),
    );
    // PEFT on LLaMA's separate q, k, v, o, gate, up, down: r (in + out) each; the fused qkv counts as three
    const loraPerBlock = 3 * r * (D + D) + r * (D + D) + 2 * r * (D + H) + r * (H + D);
    const expected = L * loraPerBlock + 2 * V2 * D + (2 * L + 1) * D;
    expect(rep.trainableParameters).toBe(expected);
    expect(rep.totalParameters).toBe(total0 + L * loraPerBlock);
    m.dispose();
  });

  it('seedLMParameterCount: equals built models (text, extended, LoRA) and LLaMA-7B / PEFT at the paper preset', () => {
    for (const cfg of [
      { textVocabSize: 10, dim: 8, numLayers: 2, numHeads: 2, maxSeqLen: 24 },
      { textVocabSize: 13, dim: 16, numLayers: 3, numHeads: 4, mlpHidden: 24, maxSeqLen: 24 },
    ]) {
      const count = seedLMParameterCount(cfg, { numCodes: 5, lora: { r: 2 } });
      const m = new SeedLM(cfg);
      expect(m.numParameters()).toBe(count.text);
      m.extendVocabulary(5, 2);
      expect(m.numParameters()).toBe(count.extended);
      const rep = applySeedLoRA(m, { r: 2 });
      expect(rep.totalParameters - count.extended).toBe(count.lora);
      expect(rep.trainableParameters).toBe(count.trainable);
      m.dispose();
    }
    // SEED-LLaMA 8B = Vicuna-7B: LLaMA-7B's 6,738,415,616 parameters (HF LlamaForCausalLM), 8,194 new
    // rows in the embedding and the head, and PEFT's "trainable params: 39,976,960" for r 16 on
    // q, k, v, o, gate, up, down of a LLaMA-7B
    const paper = seedLMParameterCount(SEED_LM_PAPER, { numCodes: SEED_LM_PAPER.numCodes, lora: { r: 16 } });
    expect(paper.text).toBe(6_738_415_616);
    expect(paper.extended).toBe(6_738_415_616 + 2 * 8194 * 4096);
    expect(paper.lora).toBe(39_976_960);
    expect(paper.trainable).toBe(39_976_960 + 2 * 40194 * 4096 + 65 * 4096);
    expect(() => seedLMParameterCount(SEED_LM_PAPER, { numCodes: 0 })).toThrow(/numCodes must be a positive integer, got 0/);
    expect(() => seedLMParameterCount(SEED_LM_PAPER, { numCodes: 8, lora: { r: 0 } })).toThrow(
      /lora.r must be an integer in \[1, 4096\], got 0/,
    );
  });

  it('only LoRA and modules_to_save get gradients and move; merge_and_unload keeps the logits', () => {
    const m = tinyLM(3);
    const vv = m.extendVocabulary(4, 2);
    applySeedLoRA(m, { r, alpha: 8, dropout: 0 });
    const save = modulesToSave(m);
    const isTrained = (k: string) => /lora_[AB]\.weight$/.test(k) || save.some((p) => k.startsWith(`${p}.`));
    const batch = padSequences(vv, [pairSequence(vv, [5, 6], [1, 3], 'text-first'), pairSequence(vv, [7], [0, 2], 'image-first')]);
    const { loss, grads } = valueAndGrads(m, () => lmLoss(m, batch));
    const expectedKeys = m
      .namedParameters()
      .map(([k]) => k)
      .filter(isTrained)
      .sort();
    expect([...grads.keys()].sort()).toEqual(expectedKeys);
    expect(expectedKeys.some((k) => k.includes('base_layer'))).toBe(false);
    tf.dispose([loss, ...grads.values()]);

    const snap = new Map(m.namedParameters().map(([k, p]) => [k, p.dataSync().slice()]));
    const opt = new AdamW(paramGroups(m), { lr: 1e-2, weightDecay: 0 });
    const n0 = tf.memory().numTensors;
    lmStep(m, opt, batch);
    lmStep(m, opt, batch);
    expect(tf.memory().numTensors).toBe(n0);
    for (const [k, p] of m.namedParameters()) {
      const moved = Array.from(p.dataSync()).some((x, i) => x !== snap.get(k)![i]);
      if (isTrained(k)) expect(moved, k).toBe(true);
      else expect(moved, k).toBe(false);
    }
    opt.dispose();

    m.eval();
    const x = tf.tensor2d(batch.ids, [batch.batch, batch.length], 'int32');
    const before = m.forward(x).dataSync().slice();
    const unloaded = mergeSeedLoRA(m);
    expect(unloaded).toHaveLength(10);
    expect(m.namedParameters().some(([k]) => /lora|base_layer/.test(k))).toBe(false);
    expect(m.numParameters({ trainableOnly: true })).toBe(m.numParameters());
    const after = m.forward(x);
    const a = after.dataSync();
    for (let i = 0; i < before.length; i++) expect(Math.abs((a[i] as number) - (before[i] as number))).toBeLessThan(1e-5);
    tf.dispose([x, after]);
    m.dispose();
  });
});

describe('lmLoss', () => {
  it('is the mean next-token cross-entropy over labelled targets (host computation)', () => {
    const m = tinyLM(4);
    const vv = m.extendVocabulary(4, 2);
    const batch = padSequences(vv, [sftSequence(vv, tpl, [5, 6], [1, 3], 'caption'), pairSequence(vv, [5], [2, 0], 'image-first')]);
    const { batch: B, length: T } = batch;
    const x = tf.tensor2d(batch.ids, [B, T], 'int32');
    const logits = m.forward(x).dataSync();
    let sum = 0;
    let n = 0;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T - 1; t++) {
        const y = batch.labels[b * T + t + 1] as number;
        if (y === IGNORE_INDEX) continue;
        const row = Array.from(logits.subarray((b * T + t) * 16, (b * T + t + 1) * 16));
        const mx = Math.max(...row);
        const lse = mx + Math.log(row.reduce((s, z) => s + Math.exp(z - mx), 0));
        sum += lse - (row[y] as number);
        n++;
      }
    // labelled targets: 3 of the SFT caption row (5, 6, <eos>) + 6 of the pre-training row
    // (<img>, 2 codes, </img>, 5, <eos>: every token but <bos>, which no position predicts)
    expect(n).toBe(3 + 6);
    const l = lmLoss(m, batch);
    expect(l.dataSync()[0]).toBeCloseTo(sum / n, 5);
    tf.dispose([x, l]);
    m.dispose();
  });

  it('rejects ids outside the vocabulary and sequences longer than the context', () => {
    const m = tinyLM();
    const vv = seedVocab({ textVocabSize: 10, numCodes: 4, tokensPerImage: 2, pad: 0, bos: 1, eos: 2 });
    const b = padSequences(vv, [pairSequence(vv, [5], [1, 2], 'text-first')]);
    expect(() => lmLoss(m, b)).toThrow(/token id 14 at flat index 2 must be in \[0, 10\)/);
    const long = padSequences(vv, [
      textSequence(
        vv,
        Array.from({ length: 30 }, () => 5),
      ),
    ]);
    expect(() => lmLoss(m, long)).toThrow(/32 tokens need 31 positions, more than maxSeqLen 24/);
    m.dispose();
  });
});

describe('generation', () => {
  const captions = [[5, 6], [7], [3, 4, 5]];

  it('draws exactly Q codes in range, even when the head prefers text; seeded; no tensor leak', () => {
    const m = tinyLM(5);
    const vv = m.extendVocabulary(4, 2);
    // make every text id and </img> far more likely than any code: the mask must still give codes
    const w = m.lm.head!.weight;
    w.assign(
      tf.tidy(() => {
        const scale = tf.tensor1d(Array.from({ length: 16 }, (_, i) => (vv.codeOffset <= i && i < vv.img ? 0 : 50)));
        return w.mul(scale.reshape([16, 1]));
      }),
    );
    for (const cfgScale of [1, 1.5])
      for (const template of [null, tpl]) {
        const opts = { cfgScale, template, temperature: 1, topP: 0.9 };
        const g1 = generateImageCodes(m, captions, { ...opts, rng: new Rng(7) });
        expect(g1.codes).toHaveLength(3 * 2);
        for (const c of g1.codes) expect(c >= 0 && c < 4).toBe(true);
        g1.spans.forEach((s, b) => {
          expect(s).toHaveLength(4);
          expect(s[0]).toBe(vv.img);
          expect(s[3]).toBe(vv.endImg);
          expect(Array.from(imageSpanCodes(vv, s))).toEqual(Array.from(g1.codes.slice(b * 2, b * 2 + 2)));
        });
        const n0 = tf.memory().numTensors;
        const g2 = generateImageCodes(m, captions, { ...opts, rng: new Rng(7) });
        expect(tf.memory().numTensors).toBe(n0);
        expect(Array.from(g2.codes)).toEqual(Array.from(g1.codes));
      }
    m.dispose();
  });

  it('different seeds give different codes; greedy is seed-free', () => {
    const m = tinyLM(6, 10);
    m.extendVocabulary(64, 4);
    const many = Array.from({ length: 8 }, (_, i) => [3 + (i % 7)]);
    const a = generateImageCodes(m, many, { rng: new Rng(1) }).codes;
    const b = generateImageCodes(m, many, { rng: new Rng(2) }).codes;
    expect(Array.from(a)).not.toEqual(Array.from(b));
    const g = generateImageCodes(m, many, { temperature: 0 }).codes;
    expect(Array.from(generateImageCodes(m, many, { temperature: 0 }).codes)).toEqual(Array.from(g));
    expect(() => generateImageCodes(m, many, {})).toThrow(/rng is required/);
    expect(() => generateImageCodes(m, [[5, 70]], { temperature: 0 })).toThrow(/captions\[0\]\).*caption\[1\].*got 70 \(code 60\)/);
    m.dispose();
  });

  it('greedy captions contain text ids only (codes masked even when the head prefers them); no tensor leak', () => {
    const m = tinyLM(8);
    const vv = m.extendVocabulary(4, 2);
    const w = m.lm.head!.weight;
    w.assign(
      tf.tidy(() => {
        const scale = tf.tensor1d(Array.from({ length: 16 }, (_, i) => (i < vv.textVocabSize ? 1 : 100)));
        return w.mul(scale.reshape([16, 1]));
      }),
    );
    const codes = [0, 1, 2, 3, 3, 3];
    const c1 = generateCaptions(m, codes, { maxNewTokens: 6 });
    expect(c1).toHaveLength(3);
    for (const c of c1) {
      expect(c.length).toBeLessThanOrEqual(6);
      for (const id of c) expect(id >= 0 && id < 10 && id !== 0 && id !== 1 && id !== 2).toBe(true);
    }
    const n0 = tf.memory().numTensors;
    expect(generateCaptions(m, codes, { maxNewTokens: 6 })).toEqual(c1);
    expect(generateCaptions(m, codes, { maxNewTokens: 6, template: tpl })).toHaveLength(3);
    expect(tf.memory().numTensors).toBe(n0);
    expect(() => generateCaptions(m, [0, 1, 2])).toThrow(/expected N x 2 codes \(tokensPerImage 2\), got 3/);
    expect(() => generateCaptions(m, [0, 4])).toThrow(/\[0, 4\).*got 4/);
    m.dispose();
  });

  it('decodes generated codes to pixels through the tokenizer and the pixel decoder', () => {
    const tok = new SeedTokenizer(PRESETS.tiny);
    const dec = new ImageDecoder(IMAGE_DECODER_PRESETS.tiny);
    const m = tinyLM(9);
    m.extendVocabulary(PRESETS.tiny.quantizer.numCodes, PRESETS.tiny.qformer.numQueries);
    const n0 = tf.memory().numTensors;
    const g = generateImages(m, tok, dec, captions, { rng: new Rng(0), cfgScale: 2 });
    expect(g.images.shape).toEqual([3, 16, 16, 3]);
    expect(g.codes).toHaveLength(3 * 4);
    g.images.dispose();
    expect(tf.memory().numTensors).toBe(n0);
    const wrong = tinyLM(9);
    wrong.extendVocabulary(8, 4);
    expect(() => generateImages(wrong, tok, dec, captions, { rng: new Rng(0) })).toThrow(
      /the LM has 4 codes per image of K = 8, the tokenizer 4 of K = 16/,
    );
    expect(() => generateImageCodes(tinyLM(), captions, { temperature: 0 })).toThrow(/text-only; call extendVocabulary/);
    tok.dispose();
    dec.dispose();
    m.dispose();
    wrong.dispose();
  });
});

describe('trainSeedLM (text -> extend -> pre-training -> SFT)', () => {
  const captionsText = ['a red circle', 'a blue square', 'a green triangle', 'a small yellow star'];
  const words = WordTokenizer.fromText([...captionsText, 'user : assistant :', 'the red circle is above the blue square .']);
  const template: ChatTemplate = { user: words.encode('user :'), assistant: words.encode('assistant :') };
  const K = 16;
  const Q = 4;
  const pairs = captionsText.map((c, i) => ({ caption: words.encode(c), codes: [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3] }));
  const text = [...captionsText, 'the red circle is above the blue square .'].map((s) => words.encode(s));

  for (const tuning of ['lora', 'full'] as const)
    it(`${tuning}: memorises four pairs in both directions; reports phases and trainable counts`, async () => {
      const m = new SeedLM({ textVocabSize: words.vocabSize, dim: 32, numLayers: 2, numHeads: 2, maxSeqLen: 24, seed: 1 });
      const n0 = tf.memory().numTensors;
      const r = await trainSeedLM({
        model: m,
        text,
        pairs,
        numCodes: K,
        tokensPerImage: Q,
        template,
        seed: 0,
        recipe: {
          text: { steps: 20, batchSize: 8, lr: 3e-3 },
          pretrain: { steps: 120, batchSize: 8, lr: 1e-2, weightDecay: 0 },
          sft: { steps: 120, batchSize: 8, lr: 1e-2, weightDecay: 0 },
          uncondProb: 0,
          tuning,
          lora: { r: 4, alpha: 8, dropout: 0 },
        },
      });
      expect(r.vocab.size).toBe(words.vocabSize + K + 2);
      expect(r.text.losses).toHaveLength(20);
      expect(r.pretrain.losses.at(-1)!).toBeLessThan(r.pretrain.losses[0]!);
      expect(r.sft.losses.at(-1)!).toBeLessThan(0.2);
      // the model comes back plain (LoRA merged), every parameter trainable
      expect(m.namedParameters().some(([k]) => k.includes('lora'))).toBe(false);
      const full = m.numParameters();
      if (tuning === 'lora') {
        expect(r.sft.lora?.trainableParameters).toBe(r.sft.trainableParameters);
        expect(r.sft.trainableParameters).toBeLessThan(full);
      } else {
        expect(r.sft.lora).toBeNull();
        expect(r.sft.trainableParameters).toBe(full);
      }
      // the grown model replaced the text-only one and the LoRA weights were disposed: no leak
      expect(tf.memory().numTensors).toBe(n0);
      const g = generateImageCodes(
        m,
        pairs.map((p) => p.caption),
        { temperature: 0, template },
      );
      expect(Array.from(g.codes)).toEqual(pairs.flatMap((p) => p.codes));
      const caps = generateCaptions(
        m,
        pairs.flatMap((p) => p.codes),
        { template },
      );
      expect(caps.map((c) => words.decode(c))).toEqual(captionsText);
      m.dispose();
    });

  it('rejects an extended model and bad pairs', async () => {
    const m = new SeedLM({ textVocabSize: words.vocabSize, dim: 32, numLayers: 1, numHeads: 2, maxSeqLen: 24 });
    const bad = [{ caption: words.encode('a red circle'), codes: [0, 1, 2] }];
    await expect(trainSeedLM({ model: m, text, pairs: bad, numCodes: K, tokensPerImage: Q, template, seed: 0 })).rejects.toThrow(
      /expected 4 codes per image.*got 3/,
    );
    await expect(trainSeedLM({ model: m, text, pairs, numCodes: K, tokensPerImage: Q, template, seed: 0 })).rejects.toThrow(
      /already extended/,
    );
    expect(() => seedLMConfig({ textVocabSize: 10, dim: 30, numHeads: 2 })).toThrow(/even head width.*dim 30 with 2 heads/);
    m.dispose();
  });
});

describe('README "LLM side" example', () => {
  it('is in the README verbatim', () => {
    const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');
    const body = self.split('// --- README LLM example start ---\n')[1]!.split('    // --- README LLM example end ---')[0]!;
    const snippet = body
      .split('\n')
      .map((l) => l.replace(/^ {4}/, ''))
      .join('\n')
      .trimEnd();
    expect(readFileSync(new URL('../README.md', import.meta.url), 'utf8')).toContain(snippet);
  });

  it('runs', async () => {
    // --- README LLM example start ---
    // A text LM over 10 word ids (pad 0, bos 1, eos 2); trainSeedLM pre-trains it on text, extends
    // its vocabulary by K = 16 codes (ids 10..25) + <img> (26) + </img> (27), then runs multimodal
    // pre-training and SFT, each with a new LoRA (r 4, alpha 8) merged at the end of the phase.
    const lm = new SeedLM({ textVocabSize: 10, dim: 32, numLayers: 2, numHeads: 2, maxSeqLen: 24 });
    const template = { user: [3, 4], assistant: [5, 4] }; // the ids of "user :" and "assistant :"
    const { vocab, sft } = await trainSeedLM({
      model: lm,
      text: [
        [6, 7, 8],
        [9, 6],
      ],
      pairs: [{ caption: [6, 7], codes: [0, 1, 2, 3] }], // a caption and its image's Q = 4 codes
      numCodes: 16,
      tokensPerImage: 4,
      template,
      seed: 0,
      recipe: { text: { steps: 2 }, pretrain: { steps: 2 }, sft: { steps: 2 }, tuning: 'lora', lora: { r: 4, alpha: 8 } },
    });
    const share = sft.trainableParameters / lm.numParameters(); // LoRA A, B + embedding, head, norms

    // <img> forces an image: exactly Q codes follow (non-code ids masked), then </img>; KV cache, CFG.
    const { codes, spans } = generateImageCodes(lm, [[6, 7]], { template, cfgScale: 1.5, temperature: 0.7, rng: new Rng(0) });
    // codes: Int32Array [4] in [0, 16); spans[0] = [26, 10 + c_1, ..., 10 + c_4, 27]
    const caption = generateCaptions(lm, codes, { template }); // greedy text ids until <eos>
    lm.dispose();
    // --- README LLM example end ---
    expect(vocab.size).toBe(28);
    expect(codes).toHaveLength(4);
    expect(spans[0]![0]).toBe(26);
    expect(spans[0]![5]).toBe(27);
    expect(caption).toHaveLength(1);
    expect(share > 0 && share < 1).toBe(true);
  });
});
