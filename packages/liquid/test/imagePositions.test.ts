/**
 * ImagePositionLM (model.ts): the grid index each position predicts, from the ids alone, the same in
 * a full forward and in KV-cached decoding one token at a time; gradients reach the embedding.
 */
import { tf, valueAndGrads } from '@mmlm/core';
import { useBackend } from '@mmlm/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImagePositionLM, buildLM, liquidVocab, lmConfig } from '../src/index.js';

// text ids 0..7 (pad 0, bos 1, eos 2), codes 8..11, <boi> 12, <eoi> 13, <uncond> 14
const vocab = liquidVocab({ textVocabSize: 8, numCodes: 4, tokensPerImage: 3, bos: 1, eos: 2, pad: 0 });
const cfg = lmConfig({ textVocabSize: 8, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 16, dropout: 0 });

describe('ImagePositionLM', () => {
  beforeAll(async () => useBackend('cpu'));

  it('the index of the code each position predicts: 0 at <boi>, i + 1 after code i, -1 elsewhere', () => {
    const m = buildImagePositionLM(cfg, vocab, 0);
    const { boi, eoi, codeOffset: c } = vocab;
    // text-to-image: bos 5 6 <boi> c c c <eoi> pad; captioning: bos <boi> c c c <eoi> 7 eos pad
    const ids = Int32Array.from([1, 5, 6, boi, c, c + 3, c + 1, eoi, 0, 1, boi, c + 2, c, c, eoi, 7, 2, 0]);
    expect(Array.from(m.imageIndex(ids, 2, 9))).toEqual([-1, -1, -1, 0, 1, 2, -1, -1, -1, -1, 0, 1, 2, -1, -1, -1, -1, -1]);
    // a text id inside an image closes it
    expect(Array.from(m.imageIndex(Int32Array.from([boi, c, 5, c]), 1, 4))).toEqual([0, 1, -1, -1]);
    m.dispose();
  });

  it('KV-cached decoding one token at a time gives the full forward logits (left-padded rows)', () => {
    const m = buildImagePositionLM(cfg, vocab, 1);
    m.eval();
    const { boi, codeOffset: c, pad } = vocab;
    const rows = [
      [pad, 1, 5, 6, boi, c + 1, c + 2, c + 3],
      [1, 4, 5, 6, boi, c + 3, c, c + 1],
    ];
    const L = 5; // prefill up to and including <boi>
    const full = tf.tidy(() => m.forward(tf.tensor2d(rows.flat(), [2, 8], 'int32')).arraySync() as number[][][]);
    const cache = m.newCache();
    const stepped: number[][][] = [[], []];
    const push = (t: tf.Tensor) => {
      const a = t.arraySync() as number[][][];
      for (let b = 0; b < 2; b++) stepped[b]!.push(...a[b]!);
      t.dispose();
    };
    push(
      m.forward(
        tf.tensor2d(
          rows.flatMap((r) => r.slice(0, L)),
          [2, L],
          'int32',
        ),
        { cache },
      ),
    );
    for (let t = L; t < 8; t++)
      push(
        m.forward(
          tf.tensor2d(
            rows.map((r) => r[t]!),
            [2, 1],
            'int32',
          ),
          { cache },
        ),
      );
    cache.dispose?.();
    for (let b = 0; b < 2; b++)
      for (let t = 0; t < 8; t++) for (let v = 0; v < vocab.size; v++) expect(stepped[b]![t]![v]).toBeCloseTo(full[b]![t]![v]!, 5);
    // and the embedding matters: the plain LM with the same seed gives other logits at image positions
    const plain = buildLM(cfg, vocab.size, 1);
    plain.eval();
    const p = tf.tidy(() => plain.forward(tf.tensor2d(rows.flat(), [2, 8], 'int32')).arraySync() as number[][][]);
    expect(Math.abs(p[1]![5]![0]! - full[1]![5]![0]!)).toBeGreaterThan(1e-4);
    expect(p[1]![1]![0]!).toBeCloseTo(full[1]![1]![0]!, 5); // a text position: no image embedding
    plain.dispose();
    m.dispose();
  });

  it('gradients reach the image-position rows that were used, and nothing leaks', () => {
    const m = buildImagePositionLM(cfg, vocab, 2);
    const { boi, codeOffset: c } = vocab;
    const ids = tf.tensor2d([1, 5, boi, c, c + 1], [1, 5], 'int32');
    const before = tf.memory().numTensors;
    const { loss, grads } = valueAndGrads(m, () => m.forward(ids).square().mean() as tf.Scalar);
    const g = grads.get('image_pos.weight')!.arraySync() as number[][];
    // rows 0 and 1 and 2 are used (at <boi>, after c, after c + 1); all get a gradient
    for (const r of [0, 1, 2]) expect(Math.max(...g[r]!.map(Math.abs))).toBeGreaterThan(0);
    tf.dispose([loss, ...grads.values()]);
    expect(tf.memory().numTensors).toBe(before);
    const plain = buildLM(cfg, vocab.size, 2);
    expect(m.numParameters()).toBe(plain.numParameters() + 3 * 16);
    plain.dispose();
    ids.dispose();
    m.dispose();
  });
});
