import { beforeAll, describe, expect, it } from 'vitest';
import { applyLoRA, extendDecoderVocabulary, Rng, TransformerDecoder, type TransformerDecoderConfig, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

const D = 16;
const cfg = (over: Partial<TransformerDecoderConfig> = {}): TransformerDecoderConfig => ({
  vocabSize: 10,
  dim: D,
  numLayers: 2,
  numHeads: 2,
  maxSeqLen: 12,
  mlp: 'swiglu',
  norm: 'rmsnorm',
  bias: false,
  pos: 'rope',
  tieEmbeddings: false,
  seed: 3,
  ...over,
});
const ids = () => tf.tensor2d([1, 5, 6, 7, 2, 0, 8, 3, 4, 9], [2, 5], 'int32');
const host = (t: tf.Tensor) => Array.from(t.dataSync());

describe('extendDecoderVocabulary (resize_token_embeddings)', () => {
  beforeAll(async () => useBackend('cpu'));

  it('keeps every old row and every other parameter bit-identical, and the logits of old ids', () => {
    const m = new TransformerDecoder(cfg());
    const x = ids();
    const before = m.forward(x); // [2, 5, 10]
    const old = Object.fromEntries(m.namedParameters().map(([k, p]) => [k, host(p)]));
    const g = extendDecoderVocabulary(m, 14);
    expect(g.config.vocabSize).toBe(14);
    expect(g.tok_embed!.weight.shape).toEqual([14, D]);
    expect(g.head!.weight.shape).toEqual([14, D]);
    for (const [k, p] of g.namedParameters()) {
      const v = host(p);
      if (k === 'tok_embed.weight' || k === 'head.weight') expect(v.slice(0, 10 * D)).toEqual(old[k]);
      else expect(v).toEqual(old[k]);
    }
    const after = g.forward(x); // [2, 5, 14]
    const a = host(after.slice([0, 0, 0], [2, 5, 10]));
    const b = host(before);
    let maxDiff = 0;
    for (let i = 0; i < b.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    expect(maxDiff).toBeLessThan(1e-6);
    tf.dispose([x, before, after]);
    m.dispose();
    g.dispose();
  });

  it("'mean' rows equal the host mean of the old rows; 'normal' rows have the init std", () => {
    const m = new TransformerDecoder(cfg());
    const emb = host(m.tok_embed!.weight);
    const g = extendDecoderVocabulary(m, 13, { init: 'mean' });
    const grown = host(g.tok_embed!.weight);
    for (let j = 0; j < D; j++) {
      let s = 0;
      for (let i = 0; i < 10; i++) s += emb[i * D + j]!;
      for (let r = 10; r < 13; r++) expect(grown[r * D + j]).toBeCloseTo(s / 10, 6);
    }
    m.dispose();
    g.dispose();
    const big = new TransformerDecoder(cfg({ dim: 64, numLayers: 1 }));
    const gb = extendDecoderVocabulary(big, 210, { init: 'normal', std: 0.05 });
    const rows = host(gb.head!.weight).slice(10 * 64); // 200 x 64 draws of N(0, 0.05)
    const mean = rows.reduce((a, b) => a + b, 0) / rows.length;
    const std = Math.sqrt(rows.reduce((a, b) => a + (b - mean) ** 2, 0) / rows.length);
    expect(Math.abs(mean)).toBeLessThan(0.003); // 4 standard errors of the mean
    expect(Math.abs(std - 0.05)).toBeLessThan(0.002);
    big.dispose();
    gb.dispose();
  });

  it('draws the new rows from the given stream, in embedding-then-head order', () => {
    const m = new TransformerDecoder(cfg());
    const g = extendDecoderVocabulary(m, 12, { std: 0.1, rng: new Rng(7) });
    const r = new Rng(7);
    const e = r.randn([2, D], 0, 0.1);
    const h = r.randn([2, D], 0, 0.1);
    expect(host(g.tok_embed!.weight).slice(10 * D)).toEqual(host(e));
    expect(host(g.head!.weight).slice(10 * D)).toEqual(host(h));
    tf.dispose([e, h]);
    m.dispose();
    g.dispose();
  });

  it('carries trainable flags, eval mode and the dropout stream; grows only the embedding when tied', () => {
    const m = new TransformerDecoder(cfg({ dropout: 0.5 }));
    const frozen = m.namedParameters()[1]![0];
    for (const [k, p] of m.namedParameters()) if (k === frozen) p.trainable = false;
    m.eval();
    const g = extendDecoderVocabulary(m, 11);
    expect(g.training).toBe(false);
    expect(g.namedParameters().find(([k]) => k === frozen)![1].trainable).toBe(false);
    // the same dropout draws as the old model's from here on
    m.train();
    g.train();
    const x = ids();
    const a = m.forward(x);
    const b = g.forward(x);
    expect(host(b.slice([0, 0, 0], [2, 5, 10]))).toEqual(host(a));
    tf.dispose([x, a, b]);
    m.dispose();
    g.dispose();
    const tied = new TransformerDecoder(cfg({ tieEmbeddings: true }));
    const gt = extendDecoderVocabulary(tied, 12);
    expect(gt.head).toBeFalsy();
    expect(gt.tok_embed!.weight.shape).toEqual([12, D]);
    tied.dispose();
    gt.dispose();
  });

  it('rejects bad input with what was expected, and leaks no tensor', () => {
    const m = new TransformerDecoder(cfg());
    const n0 = tf.memory().numTensors;
    expect(() => extendDecoderVocabulary(m, 10)).toThrow('newVocabSize must be an integer > the current vocabulary of 10, got 10');
    expect(() => extendDecoderVocabulary(m, 12.5)).toThrow('got 12.5');
    expect(() => extendDecoderVocabulary(m, 12, { init: 'zeros' as 'mean' })).toThrow(`init must be 'normal' or 'mean', got "zeros"`);
    expect(() => extendDecoderVocabulary(m, 12, { std: 0 })).toThrow('std must be > 0, got 0');
    expect(() => extendDecoderVocabulary({} as TransformerDecoder, 12)).toThrow('model must be a TransformerDecoder');
    expect(tf.memory().numTensors).toBe(n0);
    const g = extendDecoderVocabulary(m, 12);
    g.dispose();
    expect(tf.memory().numTensors).toBe(n0);
    applyLoRA(m, { r: 2 });
    expect(() => extendDecoderVocabulary(m, 12)).toThrow(/merge the LoRA layers first \(mergeAndUnloadLoRA\); found \d+ LoRALinear/);
    m.dispose();
  });
});
