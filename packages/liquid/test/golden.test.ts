/**
 * Golden checks of the brief's section 2.11 against values computed by hand or by an independent
 * float64 path in this file: logit filtering (text mask, top-k then top-p with the HF-v3 shift
 * rule, temperature), CFG combination and the left-padded batch layout, the collator's token and
 * label layouts, the HF causal-LM loss, mean-resize of the vocabulary, VQ argmin vs brute force,
 * and pixel scaling.
 */
import { initBackend, Rng, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildLM,
  CAPTION_INSTRUCTION,
  causalLMLoss,
  cfgLayout,
  collate,
  extendVocabulary,
  fromModelRange,
  IGNORE_INDEX,
  i2tExample,
  imageTokenLogits,
  LiquidCollator,
  liquidVocab,
  lmConfig,
  preset,
  T2I_SUFFIXES,
  t2iExample,
  textExample,
  toModelRange,
  toUint8,
  VQTokenizer,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

// A Gemma-like toy layout: V = 8 text ids (0 <pad>, 1 <bos>, 2 <eos>, 3..7 words), K = 4 codes at
// ids 8..11, then <boi> 12, <eoi> 13, <unconditional> 14. Three codes per image.
const vocab = liquidVocab({ textVocabSize: 8, numCodes: 4, tokensPerImage: 3, bos: 1, eos: 2, pad: 0 });
const WORDS: Record<string, number> = { a: 3, red: 4, circle: 5, caption: 6, go: 7 };
const toy = {
  encode: (s: string) =>
    s
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => WORDS[w] ?? 7),
};

describe('vocabulary layout', () => {
  it('puts code k at V + k, then <boi>, <eoi>, <unconditional>', () => {
    expect([vocab.codeOffset, vocab.boi, vocab.eoi, vocab.unconditional, vocab.size]).toEqual([8, 12, 13, 14, 15]);
    const paper = liquidVocab({ textVocabSize: 256_000, numCodes: 8192, tokensPerImage: 1024, bos: 2, eos: 1, pad: 0 });
    expect(paper.codeOffset).toBe(256_000);
    expect(paper.codeOffset + 8191).toBe(264_191);
    expect(paper.size).toBe(264_192 + 3);
  });
});

describe('logit filtering (genaibench_generation.py top_k_top_p_filtering + sample)', () => {
  // ids 0..7 text, 8..11 codes, 12..14 extras. Text and extras get large logits: the mask must remove them.
  const row = [9, 9, 9, 9, 9, 9, 9, 9, 2.0, 1.0, 0.5, -1.0, 9, 9, 9];

  it('masks every non-code id, keeps the top-k, then the top-p set with the token that crosses p', () => {
    const l = tf.tensor2d([row]);
    const out = imageTokenLogits(vocab, l, null, { temperature: 1, topK: 3, topP: 0.8 });
    const got = Array.from(out.dataSync());
    l.dispose();
    out.dispose();
    // softmax(2, 1, 0.5) = 0.6285, 0.2312, 0.1402; cumulative 0.6285, 0.8597 (> 0.8, kept by the shift), 1.0 (removed)
    const kept = got.map((x, i) => (x > Number.NEGATIVE_INFINITY ? i : -1)).filter((i) => i >= 0);
    expect(kept).toEqual([8, 9]);
    const z = Math.exp(2) + Math.exp(1);
    const p = [Math.exp(got[8]!) / (Math.exp(got[8]!) + Math.exp(got[9]!)), Math.exp(got[9]!) / (Math.exp(got[8]!) + Math.exp(got[9]!))];
    expect(p[0]).toBeCloseTo(Math.exp(2) / z, 6);
    expect(p[1]).toBeCloseTo(Math.exp(1) / z, 6);
  });

  it('top-p keeps only the top token when it alone exceeds p (the shifted mask keeps index 0)', () => {
    const l = tf.tensor2d([row]);
    const out = imageTokenLogits(vocab, l, null, { temperature: 1, topK: 0, topP: 0.5 });
    const kept = Array.from(out.dataSync())
      .map((x, i) => (x > Number.NEGATIVE_INFINITY ? i : -1))
      .filter((i) => i >= 0);
    l.dispose();
    out.dispose();
    expect(kept).toEqual([8]);
  });

  it('top-k keeps ties with the k-th largest (logits < k-th are removed)', () => {
    const tie = [0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 1, 0.5, 0, 0, 0];
    const l = tf.tensor2d([tie]);
    const out = imageTokenLogits(vocab, l, null, { temperature: 1, topK: 2, topP: 1 });
    const kept = Array.from(out.dataSync())
      .map((x, i) => (x > Number.NEGATIVE_INFINITY ? i : -1))
      .filter((i) => i >= 0);
    l.dispose();
    out.dispose();
    expect(kept).toEqual([8, 9, 10]);
  });

  it('temperature divides the logits before top-p: tau = 0.5 doubles them and shrinks the nucleus', () => {
    const l = tf.tensor2d([row]);
    const out = imageTokenLogits(vocab, l, null, { temperature: 0.5, topK: 4096, topP: 0.9 });
    const got = Array.from(out.dataSync());
    l.dispose();
    out.dispose();
    // logits / 0.5 = 4, 2, 1, -2: softmax 0.8438, 0.1142, 0.0420, 0.0021 -> cumulative 0.8438, 0.9580 (kept), removed after
    expect(got[8]).toBeCloseTo(4, 6);
    expect(got[9]).toBeCloseTo(2, 6);
    expect(got[10]).toBe(Number.NEGATIVE_INFINITY);
    expect(got[11]).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe('classifier-free guidance', () => {
  it('combines l_u + s (l_c - l_u) before masking', () => {
    const cond = new Array(15).fill(0);
    const uncond = new Array(15).fill(0);
    [cond[8], cond[9], cond[10], cond[11]] = [1.0, 0.5, -0.5, 0.0];
    [uncond[8], uncond[9], uncond[10], uncond[11]] = [0.5, 1.0, 0.0, 0.0];
    const c = tf.tensor2d([cond]);
    const u = tf.tensor2d([uncond]);
    const out = imageTokenLogits(vocab, c, u, { cfgScale: 3, temperature: 1, topK: 0, topP: 1 });
    const got = Array.from(out.dataSync());
    [c, u, out].forEach((t) => t.dispose());
    // 0.5 + 3 * 0.5 = 2; 1 + 3 * (-0.5) = -0.5; 0 + 3 * (-0.5) = -1.5; 0
    expect(got.slice(8, 12).map((x) => Number(x.toFixed(6)))).toEqual([2, -0.5, -1.5, 0]);
    expect(got.slice(0, 8).every((x) => x === Number.NEGATIVE_INFINITY)).toBe(true);
    expect(got.slice(12).every((x) => x === Number.NEGATIVE_INFINITY)).toBe(true);
  });

  it('lays out cond rows then uncond rows, left-padded, as the reference tokenizer(padding_side="left")', () => {
    const layout = cfgLayout(vocab, [[3, 4, 5], [6]], 7);
    expect([layout.rows, layout.length]).toEqual([4, 5]);
    const rows = Array.from({ length: 4 }, (_, r) => Array.from(layout.ids.slice(r * 5, r * 5 + 5)));
    expect(rows).toEqual([
      [1, 3, 4, 5, 12], // [BOS] a red circle <boi>
      [0, 0, 1, 6, 12], // pad pad [BOS] caption <boi>
      [0, 0, 1, 14, 12], // pad pad [BOS] <unconditional> <boi>
      [0, 0, 1, 14, 12],
    ]);
    expect(Array.from(layout.keep)).toEqual([1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
    const noCfg = cfgLayout(vocab, [[3, 4, 5], [6]], 1);
    expect(noCfg.rows).toBe(2);
  });
});

describe('collator layouts (train.py DataCollatorForSupervisedDataset)', () => {
  const X = IGNORE_INDEX;

  it('text-to-image: [BOS] prompt <boi> codes <eoi> <eos>, loss on codes, <eoi>, <eos>', () => {
    const e = t2iExample(vocab, [3, 4, 5], [2, 0, 3]);
    expect(e.inputIds).toEqual([1, 3, 4, 5, 12, 10, 8, 11, 13, 2]);
    expect(e.labels).toEqual([X, X, X, X, X, 10, 8, 11, 13, 2]);
  });

  it('unconditional text-to-image: [BOS] <unconditional> <boi> codes <eoi> <eos>', () => {
    const e = t2iExample(vocab, null, [1, 1, 0]);
    expect(e.inputIds).toEqual([1, 14, 12, 9, 9, 8, 13, 2]);
    expect(e.labels).toEqual([X, X, X, 9, 9, 8, 13, 2]);
  });

  it('caption: [BOS] <boi> codes <eoi> instruction caption <eos>, loss on caption and <eos> only', () => {
    const e = i2tExample(vocab, [3, 2, 1], [6, 7], [3, 4]);
    expect(e.inputIds).toEqual([1, 12, 11, 10, 9, 13, 6, 7, 3, 4, 2]);
    expect(e.labels).toEqual([X, X, X, X, X, X, X, X, 3, 4, 2]);
  });

  it('text: [BOS] text with every token as its own label (no <eos>)', () => {
    const e = textExample(vocab, [3, 4, 5]);
    expect(e.inputIds).toEqual([1, 3, 4, 5]);
    expect(e.labels).toEqual([1, 3, 4, 5]);
  });

  it('batches right-padded with <pad> and -100, truncated to maxLength, attention mask = ids != pad', () => {
    const b = collate([textExample(vocab, [3, 4]), t2iExample(vocab, [5], [0, 1, 2])], vocab, 6);
    expect(b.shape).toEqual([2, 6]);
    expect(Array.from(b.inputIds)).toEqual([1, 3, 4, 0, 0, 0, 1, 5, 12, 8, 9, 10]);
    expect(Array.from(b.labels)).toEqual([1, 3, 4, X, X, X, X, X, X, 8, 9, 10]);
    expect(Array.from(b.attentionMask)).toEqual([1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
  });

  it('draws the suffix from the ten phrasings and drops the caption to <unconditional> at uncondProb', () => {
    const cfg = { ...preset('tiny').collator };
    const always = new LiquidCollator(toy, vocab, { ...cfg, uncondProb: 1 }, 32, new Rng(0));
    expect(always.t2i('a red circle', [0, 1, 2]).inputIds.slice(0, 3)).toEqual([1, 14, 12]);
    const words = new Map(T2I_SUFFIXES.map((s) => [toy.encode(s).join(','), s]));
    const never = new LiquidCollator(toy, vocab, { ...cfg, uncondProb: 0 }, 32, new Rng(0));
    let dropped = 0;
    const drop = new LiquidCollator(toy, vocab, { ...cfg, uncondProb: 0.1 }, 32, new Rng(1));
    for (let i = 0; i < 2000; i++) if (drop.t2i('a red circle', [0, 1, 2]).inputIds[1] === 14) dropped++;
    expect(dropped / 2000).toBeGreaterThan(0.08);
    expect(dropped / 2000).toBeLessThan(0.12);
    const e = never.t2i('a red circle', [0, 1, 2]);
    const boi = e.inputIds.indexOf(12);
    expect(e.inputIds.slice(1, 4)).toEqual([3, 4, 5]);
    expect(words.has(e.inputIds.slice(4, boi).join(','))).toBe(true);
    const cap = never.i2t('a red', [0, 1, 2]);
    expect(cap.inputIds.slice(6, 6 + toy.encode(CAPTION_INSTRUCTION).length)).toEqual(toy.encode(CAPTION_INSTRUCTION));
  });
});

describe('HF causal-LM loss', () => {
  it('shifts by one, ignores -100 and averages over the valid targets (float64 reference)', () => {
    const model = buildLM(lmConfig({ textVocabSize: 8, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 16 }), vocab.size, 3);
    const ex = [t2iExample(vocab, [3, 4], [1, 2, 3]), textExample(vocab, [5, 6, 7])];
    const b = collate(ex, vocab, 16);
    const [B, T] = b.shape;
    const ids = tf.tensor2d(b.inputIds, [B, T], 'int32');
    const labels = tf.tensor2d(b.labels, [B, T], 'int32');
    const loss = causalLMLoss(model, ids, labels);
    const logits = model.forward(ids).arraySync() as number[][][];
    let sum = 0;
    let n = 0;
    for (let r = 0; r < B; r++)
      for (let t = 0; t < T - 1; t++) {
        const y = b.labels[r * T + t + 1] as number;
        if (y === IGNORE_INDEX) continue;
        const row = logits[r]![t]!;
        const m = Math.max(...row);
        sum += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[y]!;
        n++;
      }
    expect(n).toBe(5 + 3);
    expect(loss.dataSync()[0]).toBeCloseTo(sum / n, 5);
    [ids, labels, loss].forEach((t) => t.dispose());
    model.dispose();
  });
});

describe('vocabulary extension (mean resizing)', () => {
  for (const tied of [false, true]) {
    it(`keeps old rows bit-exact and sets every new row to the old mean (${tied ? 'tied' : 'untied'} head)`, () => {
      const c = lmConfig({ textVocabSize: 8, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 16, tieEmbeddings: tied });
      const text = buildLM(c, 8, 4);
      const big = extendVocabulary(text, 7);
      expect(big.config.vocabSize).toBe(15);
      const keys = tied ? ['tok_embed.weight'] : ['tok_embed.weight', 'head.weight'];
      for (const k of keys) {
        const old = text.stateDict()[k]!.arraySync() as number[][];
        const now = big.stateDict()[k]!.arraySync() as number[][];
        expect(now.length).toBe(15);
        for (let i = 0; i < 8; i++) expect(now[i]).toEqual(old[i]);
        const mean = old[0]!.map((_, j) => old.reduce((a, r) => a + r[j]!, 0) / old.length);
        for (let i = 8; i < 15; i++) now[i]!.forEach((v, j) => expect(Math.abs(v - mean[j]!)).toBeLessThan(1e-7));
      }
      for (const [k, v] of Object.entries(text.stateDict()))
        if (!keys.includes(k)) expect(Array.from(big.stateDict()[k]!.dataSync())).toEqual(Array.from(v.dataSync()));
      // same text logits up to the added columns
      const ids = tf.tensor2d([[1, 3, 4, 5]], [1, 4], 'int32');
      const a = text.forward(ids).arraySync() as number[][][];
      const b = big.forward(ids).arraySync() as number[][][];
      for (let t = 0; t < 4; t++) for (let v = 0; v < 8; v++) expect(b[0]![t]![v]).toBeCloseTo(a[0]![t]![v]!, 5);
      ids.dispose();
      text.dispose();
      big.dispose();
    });
  }
});

describe('VQ lookup', () => {
  it('tokenize gives the brute-force float64 argmin of ||z - e||^2 (ties within fp32 round-off allowed)', () => {
    const vq = new VQTokenizer({ ...preset('tiny').tokenizer, seed: 7 });
    // spread the codebook so distances are not all ties
    vq.quantize.embedding.weight.assign(new Rng(3).randn([vq.numCodes, vq.config.codeDim], 0, 0.5));
    const x = new Rng(5).rand([3, 16, 16, 3], -1, 1);
    const codes = Array.from(vq.tokenize(x).dataSync());
    const z = tf.tidy(() => vq.quant_conv.forward(vq.encoder.forward(x))).arraySync() as number[][][][];
    const e = vq.quantize.embedding.weight.arraySync() as number[][];
    let i = 0;
    let exact = 0;
    for (const img of z)
      for (const row of img)
        for (const v of row) {
          const d = e.map((ek) => ek.reduce((a, ej, j) => a + (v[j]! - ej) ** 2, 0));
          const best = d.indexOf(Math.min(...d));
          const got = codes[i++]!;
          if (got === best) exact++;
          else expect(d[got]! - d[best]!).toBeLessThan(1e-5 * Math.max(1, d[best]!));
        }
    expect(i).toBe(3 * vq.tokensPerImage);
    expect(exact).toBeGreaterThan(i - 2);
    x.dispose();
    vq.dispose();
  });
});

describe('pixel scaling (Chameleon image_tokenizer.py)', () => {
  it('maps [0, 1] to [-1, 1] and back with clamping; uint8 truncates as numpy astype', () => {
    const x = tf.tensor1d([0, 0.25, 1]);
    const m = toModelRange(x);
    expect(Array.from(m.dataSync())).toEqual([-1, -0.5, 1]);
    const back = fromModelRange(tf.tensor1d([-2, -1, 0, 0.5, 1.5]));
    expect(Array.from(back.dataSync())).toEqual([0, 0, 0.5, 0.75, 1]);
    expect(Array.from(toUint8([-2, -1, 0, 0.5, 1, 1.5]))).toEqual([0, 0, 127, 191, 255, 255]);
    [x, m, back].forEach((t) => t.dispose());
  });
});
