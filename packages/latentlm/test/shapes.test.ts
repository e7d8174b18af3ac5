/** The local Shapes stand-in: the analyzer reads rendered images back, and the Frechet distance behaves as a distance. */
import { describe, expect, it } from 'vitest';
import { analyzeShape, frechetDistance, generationScore, imageFeatures, shapeItem, symmetricEigen } from '../src/experiments/shapes.js';

describe('Shapes stand-in', () => {
  it('the analyzer reads shape, colour and place of 300 rendered items back', () => {
    const items = Array.from({ length: 300 }, (_, i) => shapeItem(0, i));
    const ok = items.filter((it) => {
      const a = analyzeShape(it.image);
      return a.shape === it.shape && a.colour === it.colour && a.place === it.place;
    }).length;
    expect(ok / items.length).toBeGreaterThanOrEqual(0.99);
    expect(
      generationScore(
        items.map((i) => i.image),
        items,
      ),
    ).toBe(ok / items.length);
    expect(analyzeShape(new Float32Array(32 * 32 * 3).fill(0.08)).shape).toBe(-1);
  });

  it('Jacobi eigen-decomposition of a 2x2 by hand; Frechet distance of 1-D Gaussians in closed form', () => {
    const { values } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    expect(Array.from(values).sort()).toEqual([1, 3].map((v) => expect.closeTo(v, 10)));
    // N(0, 1) vs N(1, 4) fit exactly on symmetric samples: d = 1 + 1 + 4 - 2*2 = 2
    // two samples {-s, s} have unbiased variance 2 s^2: s = 1/sqrt(2) gives 1, t = sqrt(2) gives 4
    const a = [-Math.SQRT1_2, Math.SQRT1_2].map((v) => Float64Array.from([v]));
    const b = [1 - Math.SQRT2, 1 + Math.SQRT2].map((v) => Float64Array.from([v]));
    expect(frechetDistance(a, b)).toBeCloseTo(2, 8);
  });

  it('same distribution: small distance; another distribution: larger', () => {
    const f = (seed: number, from: number) => Array.from({ length: 200 }, (_, i) => imageFeatures(shapeItem(seed, from + i).image));
    const same = frechetDistance(f(0, 0), f(0, 1000));
    const blank = Array.from({ length: 200 }, (_, i) => imageFeatures(new Float32Array(32 * 32 * 3).fill(0.08 + (i % 7) * 0.01)));
    const other = frechetDistance(f(0, 0), blank);
    expect(other).toBeGreaterThan(5 * same);
  });
});
