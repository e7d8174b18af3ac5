/** Structure-constrained speech decoding in both output layouts, and the span check that says whether a generated block decodes. */
import { initBackend, TransformerDecoder, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AllowedRanges,
  greedyGenerate,
  mioVocab,
  type SpeechLayout,
  speechBlockConstraint,
  speechSpanConstraint,
  speechSpanLevels,
  splitSpeechLevels,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

const v = mioVocab({ textVocabSize: 10, imageCodes: 4, tokensPerImage: 2, speechCodebookSize: 3, speechLevels: 4 });
const C = 3;
const L = 4;
const close = v.specials['</spch>'];
const inRanges = (id: number, r: AllowedRanges) => r === null || r.some(([lo, hi]) => id >= lo && id < hi);

/** Runs a constraint with a scripted chooser instead of a model: `pick(allowed, generated)` returns the next id. */
function drive(c: ReturnType<typeof speechBlockConstraint>, pick: (allowed: AllowedRanges, g: readonly number[]) => number): number[] {
  const g: number[] = [];
  for (let t = 0; t < c.maxNewTokens; t++) {
    const allowed = c.allowed!(g);
    const id = pick(allowed, g);
    expect(inRanges(id, allowed), `step ${t}: id ${id} not in ${JSON.stringify(allowed)}`).toBe(true);
    g.push(id);
    if (c.done!(g)) break;
  }
  return g;
}

/** Closes (or switches level) as soon as `frames` frames are out, else the first allowed code + a pattern. */
const chooser =
  (frames: number, layout: SpeechLayout) =>
  (allowed: AllowedRanges, g: readonly number[]): number => {
    const ranges = allowed!;
    const canClose = ranges.some(([lo]) => lo === close);
    const speech = ranges.filter(([lo]) => lo !== close);
    if (layout === 'alternating' && canClose && (speech.length === 0 || g.length / L >= frames)) return close;
    if (layout === 'sequential' && speech.length === 0) return close;
    // sequential: the first range is level 0 while T is open; switch to level 1 after `frames` codes
    const r = layout === 'sequential' && speech.length === 2 && g.length >= frames ? speech[1]! : speech[0]!;
    return r[0] + (g.length % C);
  };

describe('speechBlockConstraint', () => {
  for (const layout of ['sequential', 'alternating'] as const)
    it(`gives blocks that decode in the ${layout} layout, T chosen by the model`, () => {
      for (const T of [1, 2, 5]) {
        const g = drive(speechBlockConstraint(v, 6, 1, layout), chooser(T, layout));
        expect(g[g.length - 1]).toBe(close);
        expect(g.length).toBe(L * T + 1);
        const levels = speechSpanLevels(v, g, layout);
        expect(levels.length).toBe(L);
        for (const lv of levels) expect(lv.length).toBe(T);
      }
    });

  it('alternating: one code of each level per frame, in order; </spch> only at a frame boundary', () => {
    const c = speechBlockConstraint(v, 3, 2, 'alternating');
    const g: number[] = [];
    for (let i = 0; i < 3 * L; i++) {
      const allowed = c.allowed!(g)!;
      const lvl = i % L;
      const frames = i / L;
      const expected: [number, number][] = [[v.speechOffset + lvl * C, v.speechOffset + (lvl + 1) * C]];
      if (lvl === 0 && frames >= 2) expected.push([close, close + 1]);
      expect(allowed, `position ${i}`).toEqual(expected);
      g.push(v.speechOffset + lvl * C + (i % C));
    }
    expect(c.allowed!(g)).toEqual([[close, close + 1]]); // maxFrames reached: closing is forced
    expect(c.maxNewTokens).toBe(3 * L + 1);
  });

  it('sequential is the default for a sequential vocabulary, alternating for an alternating one', () => {
    const va = mioVocab({ ...v.config, speechLayout: 'alternating' });
    const g = drive(speechBlockConstraint(va, 4), chooser(2, 'alternating'));
    expect(speechSpanLevels(va, g)).toHaveLength(L);
    const gs = drive(speechBlockConstraint(v, 4), chooser(2, 'sequential'));
    expect(speechSpanLevels(v, gs)).toHaveLength(L);
    expect(() => speechSpanLevels(v, gs, 'alternating')).toThrow(/alternating.*position 1 expected level 1, got level 0/);
  });

  it('names bad arguments, expected and actual', () => {
    expect(() => speechBlockConstraint(v, 0)).toThrow(/maxFrames must be an integer >= 1, got 0/);
    expect(() => speechBlockConstraint(v, 3, 4)).toThrow(/minFrames must be an integer in \[1, maxFrames = 3\], got 4/);
    expect(() => speechBlockConstraint(v, 3, 1, 'zigzag' as SpeechLayout)).toThrow(
      /layout must be one of sequential, alternating, got "zigzag"/,
    );
  });
});

describe('speechSpanConstraint and speechSpanLevels', () => {
  it('leaves the structure free: any speech code, </spch> after the first code', () => {
    const c = speechSpanConstraint(v, 8);
    expect(c.maxNewTokens).toBe(9);
    expect(c.allowed!([])).toEqual([[v.speechOffset, v.speechOffset + L * C]]);
    expect(c.allowed!([v.speechOffset])).toEqual([
      [v.speechOffset, v.speechOffset + L * C],
      [close, close + 1],
    ]);
    expect(c.done!([v.speechOffset, close])).toBe(true);
    expect(() => speechSpanConstraint(v, 0)).toThrow(/maxCodes must be an integer >= 1, got 0/);
  });

  it('refuses spans MIO could not decode, naming expected and actual', () => {
    const id = (l: number, c: number) => v.speechOffset + l * C + c;
    const seq = [id(0, 1), id(0, 2), id(1, 0), id(1, 1), id(2, 2), id(2, 0), id(3, 1), id(3, 1)];
    expect(speechSpanLevels(v, [...seq, close, 99], 'sequential')).toEqual([
      [1, 2],
      [0, 1],
      [2, 0],
      [1, 1],
    ]);
    expect(() => speechSpanLevels(v, seq, 'sequential')).toThrow(
      /expected the block to end with <\/spch> \(id \d+\), got 8 ids without it/,
    );
    expect(() => speechSpanLevels(v, [id(0, 1), id(0, 2), close], 'sequential')).toThrow(
      /expected output speech with 4 levels, got 1 \(content codes only: 2 codes of level 0\)/,
    );
    expect(() => speechSpanLevels(v, [id(0, 1), 3, close], 'sequential')).toThrow(
      /position 1: expected a speech code id in \[\d+, \d+\), got 3/,
    );
    expect(() => speechSpanLevels(v, [...seq.slice(0, 7), close], 'sequential')).toThrow(
      /expected 4 level blocks of equal length, got lengths \[2, 2, 2, 1\]/,
    );
    expect(() => speechSpanLevels(v, [id(0, 0), id(1, 0), id(2, 0), close], 'alternating')).toThrow(
      /expected a multiple of 4 codes, got 3/,
    );
  });
});

describe('greedyGenerate with the speech constraints', () => {
  it('an untrained decoder writes decodable blocks in both layouts, with no tensor left behind', () => {
    const model = new TransformerDecoder({ vocabSize: v.size, dim: 8, numLayers: 1, numHeads: 2, maxSeqLen: 48, seed: 3 });
    const prompts = [
      [1, 2, v.specials['<spch>']],
      [4, 5, v.specials['<spch>']],
      [6, v.specials['<spch>']],
    ];
    const before = tf.memory().numTensors;
    for (const layout of ['sequential', 'alternating'] as const) {
      const out = greedyGenerate(model, prompts, speechBlockConstraint(v, 5, 2, layout));
      for (const g of out) {
        const levels = speechSpanLevels(v, g, layout);
        expect(levels[0]!.length).toBeGreaterThanOrEqual(2);
        expect(levels[0]!.length).toBeLessThanOrEqual(5);
        const nums = g.slice(0, -1).map((id) => id - v.speechOffset);
        expect(splitSpeechLevels(nums, C, L, layout)).toEqual(levels);
        if (layout === 'alternating') expect(nums.map((n) => Math.floor(n / C))).toEqual(nums.map((_, i) => i % L));
      }
      const free = greedyGenerate(model, prompts, speechSpanConstraint(v, 20));
      for (const g of free) {
        expect(g.length).toBeLessThanOrEqual(21);
        for (const id of g.slice(0, -1)) expect(id >= v.speechOffset && id < v.speechOffset + L * C).toBe(true);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
