import { describe, expect, it } from 'vitest';
import { evaluateAnswers, exactMatch, normalizeAnswer, tokenF1 } from '../../src/eval/index.js';

describe('normalizeAnswer', () => {
  it('lowercases, strips punctuation and articles, collapses whitespace (SQuAD)', () => {
    expect(normalizeAnswer('  The RED circle!  ')).toBe('red circle');
    expect(normalizeAnswer('An orange, a ring.')).toBe('orange ring');
    expect(normalizeAnswer("it's the theatre")).toBe('its theatre');
    expect(normalizeAnswer('...')).toBe('');
  });

  it('turns number words into digits and keeps numbers intact', () => {
    expect(normalizeAnswer('two')).toBe('2');
    expect(normalizeAnswer('Twenty-one squares')).toBe('21 squares');
    expect(normalizeAnswer('two hundred and five')).toBe('205');
    expect(normalizeAnswer('one two three')).toBe('1 2 3');
    expect(normalizeAnswer('one and two')).toBe('1 and 2');
    expect(normalizeAnswer('nineteen hundred')).toBe('1900');
    expect(normalizeAnswer('three thousand four hundred twelve')).toBe('3412');
    expect(normalizeAnswer('1,000 and 3.5')).toBe('1000 and 3.5');
    expect(normalizeAnswer('zero')).toBe('0');
    expect(normalizeAnswer('hundred')).toBe('hundred');
  });
});

describe('exactMatch and tokenF1', () => {
  it('scores hand-worked examples', () => {
    expect(exactMatch('the red circle.', 'Red circle')).toBe(1);
    expect(exactMatch('3', 'three')).toBe(1);
    expect(exactMatch('blue', ['red', 'Blue!'])).toBe(1);
    expect(exactMatch('blue square', 'blue')).toBe(0);
    // pred [big, red, circle], ref [red, circle]: P = 2/3, R = 1, F1 = 0.8
    expect(tokenF1('a big red circle', 'the red circle')).toBeCloseTo(0.8, 12);
    // pred [red, red], ref [red, blue]: one common token: P = R = 1/2
    expect(tokenF1('red red', 'red blue')).toBeCloseTo(0.5, 12);
    expect(tokenF1('green', 'red')).toBe(0);
    expect(tokenF1('the', 'a')).toBe(1); // both empty after normalisation
    expect(tokenF1('the', 'red')).toBe(0);
    expect(tokenF1('red circle', ['blue square', 'red circle above'])).toBeCloseTo(0.8, 12);
  });

  it('averages over a set', () => {
    const s = evaluateAnswers(['red', 'two squares', 'left'], ['Red.', ['2 squares'], 'right of the ring']);
    expect(s.n).toBe(3);
    expect(s.exactMatch).toBeCloseTo(2 / 3, 12);
    expect(s.f1).toBeCloseTo((1 + 1 + 0) / 3, 12);
    expect(s.perItem[1]).toEqual({ exactMatch: 1, f1: 1 });
  });

  it('rejects bad input', () => {
    expect(() => evaluateAnswers(['a'], [])).toThrow(/got 1 predictions but 0 references/);
    expect(() => evaluateAnswers([], [])).toThrow(/the set is empty/);
    expect(() => exactMatch('a', [])).toThrow(/need at least one reference answer/);
    expect(() => normalizeAnswer(3 as unknown as string)).toThrow(/expected a string, got number/);
  });
});
