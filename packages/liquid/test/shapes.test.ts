/**
 * The experiments' image evaluators (local stand-in for @mmlm/data's): the analyzer reads back the
 * attributes of rendered images, the caption parser and accuracy, the Frechet distance against
 * closed forms, and the PNG writer's bytes.
 */
import { inflateSync } from 'node:zlib';
import { Rng } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import { encodePng } from '../src/experiments/png.js';
import {
  analyzeImage,
  captionAccuracy,
  frechetDistance,
  generationScore,
  imageFrechetDistance,
  jacobi,
  parseCaption,
  renderShape,
  shapesData,
} from '../src/experiments/shapes.js';

describe('shapes analyzer', () => {
  for (const S of [32, 16]) {
    it(`reads shape, colour and place back from rendered ${S}x${S} images`, () => {
      const d = shapesData({ imageSize: S, train: 0, val: 200, seed: 3 });
      const g = generationScore(
        d.val.map((x) => x.image),
        d.val,
        S,
      );
      expect(g.score).toBeGreaterThan(S === 32 ? 0.97 : 0.9);
      const colours = d.val.filter((x) => analyzeImage(x.image, S).colour === x.colour).length / d.val.length;
      expect(colours).toBe(1);
    });
  }

  it('reports an empty image as nothing drawn and scores it wrong', () => {
    const blank = new Float32Array(32 * 32 * 3).fill(0.08);
    expect(analyzeImage(blank, 32).coverage).toBe(0);
    expect(generationScore([blank], [{ shape: 0, colour: 0, place: 0 }], 32)).toEqual({
      score: 0,
      verdicts: [{ ok: false, read: 'nothing drawn' }],
    });
    const img = renderShape(32, { shape: 1, colour: 2, place: 0 }, new Rng(1));
    expect(generationScore([img], [{ shape: 1, colour: 2, place: 0 }], 32).verdicts[0]).toEqual({
      ok: true,
      read: 'blue square on the left',
    });
  });

  it('parses captions and scores caption accuracy', () => {
    expect(parseCaption('there is a red circle on the left')).toEqual({ shape: 0, colour: 0, place: 0 });
    expect(parseCaption('a cross in the middle')).toEqual({ shape: 3, colour: -1, place: 1 });
    const truth = [
      { shape: 0, colour: 0, place: 0 },
      { shape: 1, colour: 1, place: 2 },
    ];
    expect(captionAccuracy(['there is a red circle on the left', 'there is a green square on the left'], truth)).toBe(0.5);
  });
});

describe('Frechet distance', () => {
  it('equals sum (m1 - m2)^2 + (s1 - s2)^2 for independent coordinates', () => {
    const rng = new Rng(5);
    // exact Gaussian moments are not needed: compare with the closed form on the sample moments
    const a = Array.from({ length: 400 }, () => Float64Array.from([rng.normal() * 2 + 1, rng.normal() * 0.5]));
    const b = Array.from({ length: 400 }, () => Float64Array.from([rng.normal() * 1 - 1, rng.normal() * 3 + 2]));
    const mom = (xs: Float64Array[], i: number) => {
      const m = xs.reduce((s, x) => s + x[i]!, 0) / xs.length;
      const v = xs.reduce((s, x) => s + (x[i]! - m) ** 2, 0) / (xs.length - 1);
      return [m, v] as const;
    };
    const fd = frechetDistance(a, b);
    // off-diagonal sample covariances are near 0 but not exactly: allow a small tolerance
    let closed = 0;
    for (const i of [0, 1]) {
      const [m1, v1] = mom(a, i);
      const [m2, v2] = mom(b, i);
      closed += (m1 - m2) ** 2 + (Math.sqrt(v1) - Math.sqrt(v2)) ** 2;
    }
    expect(Math.abs(fd - closed) / closed).toBeLessThan(0.02);
    expect(frechetDistance(a, a)).toBeCloseTo(0, 8);
    expect(frechetDistance(a, b)).toBeCloseTo(frechetDistance(b, a), 8);
  });

  it('Jacobi eigenvalues of a known symmetric matrix', () => {
    // [[2, 1], [1, 2]] has eigenvalues 1 and 3
    const { values } = jacobi(Float64Array.from([2, 1, 1, 2]), 2);
    expect(Array.from(values).sort()).toEqual([1, 3].map((v) => expect.closeTo(v, 12)));
  });

  it('is 0 between an image set and itself and positive against another set', () => {
    const d = shapesData({ imageSize: 16, train: 0, val: 64, seed: 1 });
    const e = shapesData({ imageSize: 16, train: 0, val: 64, seed: 2 });
    const rng = new Rng(4);
    const blank = d.val.map(() => new Float32Array(16 * 16 * 3).fill(0.08).map((v) => v + 1e-3 * rng.uniform()));
    const xs = d.val.map((x) => x.image);
    expect(imageFrechetDistance(xs, xs, 16)).toBeCloseTo(0, 6);
    const near = imageFrechetDistance(
      xs,
      e.val.map((x) => x.image),
      16,
    );
    const far = imageFrechetDistance(xs, blank, 16);
    expect(near).toBeGreaterThan(0);
    expect(far).toBeGreaterThan(near);
  });
});

describe('PNG writer', () => {
  it('writes the signature, an IHDR of the size, and filter-0 rows that inflate back to the pixels', () => {
    const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    const png = encodePng(rgb, 2, 2);
    expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.toString('ascii', 12, 16)).toBe('IHDR');
    expect([png.readUInt32BE(16), png.readUInt32BE(20), png[24], png[25]]).toEqual([2, 2, 8, 2]);
    const idatLen = png.readUInt32BE(33);
    expect(png.toString('ascii', 37, 41)).toBe('IDAT');
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    expect(Array.from(raw)).toEqual([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 10, 20, 30]);
  });
});
