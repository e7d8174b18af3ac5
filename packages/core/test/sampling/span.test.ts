/**
 * sampleSpan / sampleUntil against a second implementation that shares nothing with them: full
 * forward passes without a KV cache, one prompt at a time, with the guidance formula written out
 * (l_u + s (l_c - l_u)) and greedy argmax over the allowed range on host arrays.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { leftPadRows, Rng, sampleSpan, sampleUntil, TransformerDecoder, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

const V = 13;
const model = () => new TransformerDecoder({ vocabSize: V, dim: 16, numLayers: 2, numHeads: 4, maxSeqLen: 16, seed: 3, pos: 'rope' });

/** Last-position logits of one unpadded sequence by a full forward (no cache). */
function lastLogits(m: TransformerDecoder, ids: number[]): number[] {
  return tf.tidy(() => {
    const l = m.forward(tf.tensor2d(ids, [1, ids.length], 'int32')); // [1, T, V]
    return Array.from(l.slice([0, ids.length - 1, 0], [1, 1, V]).dataSync());
  });
}

/** Greedy argmax over ids in [lo, hi). */
function argmaxIn(l: number[], lo: number, hi: number): number {
  let best = lo;
  for (let i = lo + 1; i < hi; i++) if ((l[i] as number) > (l[best] as number)) best = i;
  return best;
}

/** The span drawn greedily, one prompt at a time, without cache, with the guidance written out. */
function reference(m: TransformerDecoder, prompt: number[], uncond: number[] | null, s: number, steps: number, lo: number, hi: number) {
  const c = [...prompt];
  const u = uncond ? [...uncond] : null;
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const lc = lastLogits(m, c);
    const l = u ? ((lu) => lc.map((x, j) => (lu[j] as number) + s * (x - (lu[j] as number))))(lastLogits(m, u)) : lc;
    const id = argmaxIn(l, lo, hi);
    out.push(id);
    c.push(id);
    u?.push(id);
  }
  return out;
}

describe('sampleSpan / sampleUntil', () => {
  beforeAll(async () => useBackend('cpu'));

  it('leftPadRows right-aligns rows and marks tokens', () => {
    const p = leftPadRows([[5, 6, 7], [8]], 0);
    expect(Array.from(p.ids)).toEqual([5, 6, 7, 0, 0, 8]);
    expect(Array.from(p.keep)).toEqual([1, 1, 1, 0, 0, 1]);
    expect([p.rows, p.length]).toEqual([2, 3]);
    expect(() => leftPadRows([], 0)).toThrow(/no rows/);
  });

  it('greedy, no guidance: batched with left padding and a KV cache equals one prompt at a time without cache', () => {
    const m = model();
    m.eval();
    const prompts = [[1, 2, 3, 4], [5], [6, 7]];
    const got = sampleSpan(m, prompts, { steps: 5, padId: 0, sample: { temperature: 0, allowed: { ranges: [[8, 13]] } } });
    prompts.forEach((p, b) => expect(Array.from(got[b] as Int32Array)).toEqual(reference(m, p, null, 1, 5, 8, 13)));
    m.dispose();
  });

  it('greedy with guidance s = 3: matches l_u + s (l_c - l_u) computed from separate full passes', () => {
    const m = model();
    m.eval();
    const prompts = [
      [1, 2, 3],
      [4, 5],
    ];
    const uncond = [[9], [9]];
    const before = tf.memory().numTensors;
    const got = sampleSpan(m, prompts, {
      steps: 4,
      padId: 0,
      cfgScale: 3,
      uncond,
      sample: { temperature: 0, allowed: { ranges: [[2, 12]] } },
    });
    expect(tf.memory().numTensors).toBe(before);
    prompts.forEach((p, b) => expect(Array.from(got[b] as Int32Array)).toEqual(reference(m, p, uncond[b] as number[], 3, 4, 2, 12)));
    m.dispose();
  });

  it('sampled draws are seeded and stay in the allowed range', () => {
    const m = model();
    m.eval();
    const run = () =>
      sampleSpan(m, [[1, 2], [3]], {
        steps: 6,
        padId: 0,
        cfgScale: 1.5,
        uncond: [[9], [9]],
        sample: { temperature: 1, topP: 0.9, allowed: { ranges: [[4, 8]] }, rng: new Rng(11) },
      });
    const a = run();
    const b = run();
    expect(a.map((r) => Array.from(r))).toEqual(b.map((r) => Array.from(r)));
    for (const r of a) for (const id of r) expect(id >= 4 && id < 8).toBe(true);
    m.dispose();
  });

  it('sampleUntil stops each row at its stop id and matches one-at-a-time decoding', () => {
    const m = model();
    m.eval();
    const prompts = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    // stop id: the reference's greedy token at step 2 of row 0, so row 0 stops there
    const ref0 = reference(m, prompts[0] as number[], null, 1, 6, 0, V);
    const stop = ref0[2] as number;
    const got = sampleUntil(m, prompts, { maxNewTokens: 6, stopId: stop, sample: { temperature: 0 } });
    const cut = (r: number[]) => (r.indexOf(stop) >= 0 ? r.slice(0, r.indexOf(stop)) : r);
    expect(got[0]).toEqual(cut(ref0));
    expect(got[1]).toEqual(cut(reference(m, prompts[1] as number[], null, 1, 6, 0, V)));
    m.dispose();
  });

  it('bad inputs name what was wrong', () => {
    const m = model();
    const so = { temperature: 0 };
    expect(() => sampleSpan(m, [[1]], { steps: 0, padId: 0, sample: so })).toThrow(/steps must be an integer >= 1, got 0/);
    expect(() => sampleSpan(m, [[1]], { steps: 2, padId: 0, cfgScale: 2, sample: so })).toThrow(
      /needs one unconditional prompt per prompt: expected 1, got none/,
    );
    expect(() => sampleSpan(m, [[1], []], { steps: 2, padId: 0, sample: so })).toThrow(/prompts\[1\] is empty/);
    expect(() => sampleSpan(m, [[1]], { steps: 2, padId: 0, cfgScale: Number.NaN, sample: so })).toThrow(/cfgScale/);
    expect(() => sampleUntil(m, [[1, 2], [3]], { maxNewTokens: 2, stopId: 0, sample: so })).toThrow(
      /share one non-zero length: prompts\[0\] has 2 tokens, prompts\[1\] has 1/,
    );
    expect(sampleSpan(m, [], { steps: 2, padId: 0, sample: so })).toEqual([]);
    m.dispose();
  });
});
