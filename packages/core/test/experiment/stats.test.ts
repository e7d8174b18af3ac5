import { describe, expect, it } from 'vitest';
import { compareSeeds, formatMeanStd, meanStd, seedCell, seedsHeader, seedValues, seedVerdict } from '../../src/experiment/index.js';

describe('meanStd', () => {
  it('gives the mean, sample std (n - 1), n and standard error (closed forms)', () => {
    const a = meanStd([1, 2, 3, 4]); // deviations ±1.5, ±0.5: sum of squares 5, variance 5/3
    expect(a.mean).toBe(2.5);
    expect(a.n).toBe(4);
    expect(a.std).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(a.se).toBeCloseTo(Math.sqrt(5 / 3) / 2, 12);
    const b = meanStd([2, 4, 4, 4, 5, 5, 7, 9]); // mean 5, sum of squares 32
    expect(b.mean).toBe(5);
    expect(b.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(b.se).toBeCloseTo(Math.sqrt(32 / 7) / Math.sqrt(8), 12);
    const c = meanStd([0.9, 0.92, 0.94]); // deviations ±0.02: variance 0.0008 / 2
    expect(c.mean).toBeCloseTo(0.92, 12);
    expect(c.std).toBeCloseTo(0.02, 12);
    expect(c.se).toBeCloseTo(0.02 / Math.sqrt(3), 12);
    expect(meanStd([3, 3, 3])).toEqual({ mean: 3, std: 0, n: 3, se: 0 });
  });

  it('has no std or standard error from one value', () => {
    const m = meanStd([0.7]);
    expect(m.mean).toBe(0.7);
    expect(m.n).toBe(1);
    expect(m.std).toBeNaN();
    expect(m.se).toBeNaN();
  });

  it('rejects empty and non-finite input, naming the value', () => {
    expect(() => meanStd([])).toThrow(/meanStd: no values/);
    expect(() => meanStd([1, Number.NaN])).toThrow(/meanStd: value 1 is NaN, not a finite number/);
    expect(() => meanStd([Number.POSITIVE_INFINITY])).toThrow(/value 0 is Infinity/);
  });
});

describe('formatMeanStd', () => {
  it('formats with fixed decimals or picks them from the std', () => {
    expect(formatMeanStd({ mean: 0.91234, std: 0.01291 }, 3)).toBe('0.912 ± 0.013');
    expect(formatMeanStd({ mean: 0.91234, std: 0.01291 })).toBe('0.912 ± 0.013'); // std to 2 significant digits
    expect(formatMeanStd({ mean: 1234.4, std: 12.3 })).toBe('1234 ± 12');
    expect(formatMeanStd({ mean: 2.5, std: 0 })).toBe('2.500 ± 0.000');
    expect(formatMeanStd(meanStd([0.5]))).toBe('0.5000 ± —');
    expect(formatMeanStd({ mean: Number.NaN, std: Number.NaN })).toBe('—');
  });
});

describe('compareSeeds', () => {
  // a = [1, 2, 3] and b = [4, 5, 6]: means 2 and 5, std 1 each, se 1/sqrt(3) each,
  // se of the difference sqrt(2/3) = 0.816, so |diff| = 3 > 2 se = 1.633
  it('calls a difference beyond two standard errors, in the direction that is better', () => {
    const lower = compareSeeds([1, 2, 3], [4, 5, 6], 'lower');
    expect(lower.diff).toBe(-3);
    expect(lower.se).toBeCloseTo(Math.sqrt(2 / 3), 12);
    expect(lower.significant).toBe(true);
    expect(lower.winner).toBe('a');
    expect(lower.text).toMatch(/^a better \(lower is better\): a - b = -3\.00 ± 0\.82 .*beyond 2 SE/);
    const higher = compareSeeds([1, 2, 3], [4, 5, 6], 'higher', ['dense', 'sparse']);
    expect(higher.winner).toBe('b');
    expect(higher.text).toMatch(/^sparse better \(higher is better\): dense - sparse = -3\.00/);
  });

  it('does not call a difference within two standard errors', () => {
    // diff -1, se sqrt(2/3): 1 < 1.633
    const c = compareSeeds([1, 2, 3], [2, 3, 4], 'higher');
    expect(c.diff).toBe(-1);
    expect(c.significant).toBe(false);
    expect(c.winner).toBeNull();
    expect(c.text).toMatch(/^no difference beyond 2 SE: a - b = -1\.00 ± 0\.82/);
    // just above the threshold: a = [0, 2] (se 1), b = [2.9, 2.9] (se 0): |diff| 1.9 < 2
    expect(compareSeeds([0, 2], [2.9, 2.9], 'lower').significant).toBe(false);
    expect(compareSeeds([0, 2], [3.1, 3.1], 'lower').significant).toBe(true);
  });

  it('never judges from one seed', () => {
    const c = compareSeeds([0.1], [0.9, 0.91, 0.92], 'higher');
    expect(c.diff).toBeCloseTo(-0.81, 12);
    expect(c.se).toBeNaN();
    expect(c.significant).toBe(false);
    expect(c.winner).toBeNull();
    expect(c.text).toMatch(/^one seed: cannot judge/);
    expect(compareSeeds([1, 2], [5], 'lower').text).toMatch(/one seed: cannot judge/);
  });

  it('rejects empty or non-finite input and a bad direction', () => {
    expect(() => compareSeeds([], [1, 2], 'lower')).toThrow(/compareSeeds \(a\): no values/);
    expect(() => compareSeeds([1, 2], [1, Number.NaN], 'lower')).toThrow(/compareSeeds \(b\): value 1 is NaN/);
    expect(() => compareSeeds([1, 2], [1, 2], 'up' as 'higher')).toThrow(/better must be 'higher' or 'lower', got up/);
  });
});

describe('seed aggregates: seedValues, seedCell, seedVerdict, seedsHeader', () => {
  const results = [{ metrics: { a: 1, b: 'x' } }, { metrics: { a: 3, b: Number.NaN } }, { metrics: { a: null } }, { metrics: {} }];

  it('keeps only finite numbers, and formats mean ± std (scaled) or null', () => {
    expect(seedValues(results, 'a')).toEqual([1, 3]);
    expect(seedValues(results, 'b')).toEqual([]);
    expect(seedCell(results, 'a')).toBe(formatMeanStd(meanStd([1, 3])));
    expect(seedCell(results, 'a', 100)).toBe(formatMeanStd(meanStd([100, 300])));
    expect(seedCell(results, 'b')).toBeNull();
  });

  it('words the two-standard-error call, and judges nothing from one seed or no values', () => {
    // 1,2,3 vs 7,8,9: diff -6, se = sqrt(1/3 + 1/3) = 0.816, beyond 2 SE; lower is better -> a wins
    const v = seedVerdict([1, 2, 3], [7, 8, 9], 'lower', ['A', 'B']);
    expect(v.significant).toBe(true);
    expect(v.winner).toBe('a');
    expect(v.text).toMatch(/difference -6\.00 ± 0\.82 \(SE, n = 3 and 3\) exceeds two standard errors, A better/);
    const w = seedVerdict([1, 2, 3], [1.5, 2.5, 3.5], 'higher', ['A', 'B']);
    expect(w.significant).toBe(false);
    expect(w.text).toMatch(/within two standard errors: not distinguishable/);
    expect(seedVerdict([1], [2, 3], 'higher', ['A', 'B']).text).toMatch(/one seed, cannot judge/);
    expect(seedVerdict([], [2], 'higher', ['A', 'B']).text).toBe('A vs B: no values to compare');
    expect(seedsHeader([4])).toMatch(/^One seed \(seed 4\)/);
    expect(seedsHeader([0, 1, 2])).toMatch(/^Over 3 seeds \(0, 1, 2\)/);
  });
});
