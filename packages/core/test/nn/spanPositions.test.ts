/**
 * SpanPositionEmbedding: the index rule (closed-form expectations written by hand), the cache state
 * carried between calls, zero vectors outside spans, bad inputs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { KVCache, Rng, SpanPositionEmbedding, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

// start id 9, inside ids 5..7, span length 3
const rule = { isStart: (id: number) => id === 9, isInside: (id: number) => id >= 5 && id <= 7 };

describe('SpanPositionEmbedding', () => {
  beforeAll(async () => useBackend('cpu'));

  it('index: 0 at the start id, k + 1 after the k-th inside id, -1 outside, after a full span and after a closing id', () => {
    const e = new SpanPositionEmbedding(3, 4, rule, { rng: new Rng(0) });
    // row 0: text, start, 3 inside (the third predicts past the span), text; row 1: a start re-opens; an outside id closes
    const ids = [1, 9, 5, 6, 7, 2, 9, 5, 9, 6, 1, 5];
    expect(Array.from(e.index(ids, 2, 6))).toEqual([-1, 0, 1, 2, -1, -1, 0, 1, 0, 1, -1, -1]);
    expect(() => e.index([1, 2, 3], 2, 2)).toThrow(/expected B \* T = 2 \* 2 = 4 ids, got 3/);
    e.dispose();
  });

  it('with a cache the state carries over between calls; a fresh cache (length 0) starts afresh', () => {
    const e = new SpanPositionEmbedding(3, 4, rule, { rng: new Rng(0) });
    const cache = { length: 0 };
    expect(Array.from(e.index([1, 9], 1, 2, cache))).toEqual([-1, 0]);
    cache.length = 2;
    expect(Array.from(e.index([5], 1, 1, cache))).toEqual([1]);
    cache.length = 3;
    expect(Array.from(e.index([6], 1, 1, cache))).toEqual([2]);
    cache.length = 0; // reset, as a new generation with the same cache object
    expect(Array.from(e.index([5], 1, 1, cache))).toEqual([-1]);
    // without a cache every call starts afresh
    expect(Array.from(e.index([5], 1, 1))).toEqual([-1]);
    e.dispose();
  });

  it('embedSpans: the weight row of each index, zeros outside, no leak; works with a KVCache', () => {
    const e = new SpanPositionEmbedding(3, 4, rule, { rng: new Rng(1) });
    const w = e.weight.arraySync() as number[][];
    const ids = tf.tensor2d([9, 5, 6, 2], [1, 4], 'int32');
    const before = tf.memory().numTensors;
    const out = e.embedSpans(ids);
    const v = out.arraySync() as number[][][];
    expect(v[0]![0]).toEqual(w[0]);
    expect(v[0]![1]).toEqual(w[1]);
    expect(v[0]![2]).toEqual(w[2]);
    expect(v[0]![3]!.map(Math.abs)).toEqual([0, 0, 0, 0]); // -0 from a negative row times 0
    out.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const cache = new KVCache(1);
    tf.tidy(() => e.embedSpans(ids, cache));
    cache.dispose();
    expect(() => e.embedSpans(tf.tensor1d([1, 2], 'int32'))).toThrow(/ids must be int32 \[B, T\], got int32 \[2\]/);
    ids.dispose();
    e.dispose();
  });
});
