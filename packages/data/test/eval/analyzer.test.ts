import { describe, expect, it } from 'vitest';
import { ambiguous, benchmarkShapeAnalyzer, featureShape, ShapeAnalyzer } from '../../src/eval/index.js';
import { renderScene, type Scene, SHAPE_NAMES } from '../../src/images/index.js';

const ATTRS = ['count', 'shape', 'colour', 'size', 'cell'] as const;

describe('ShapeAnalyzer accuracy on clean renders (>= 99% on every attribute)', () => {
  const cases: [string, Parameters<typeof benchmarkShapeAnalyzer>[0]][] = [
    ['32 px, anti-aliased, grid', { seed: 101, images: 300, imageSize: 32 }],
    ['16 px', { seed: 102, images: 150, imageSize: 16 }],
    ['16 px, 2 x 2 grid, large only', { seed: 106, images: 150, imageSize: 16, gridSize: 2, sizes: ['large'] }],
    ['64 px', { seed: 103, images: 150, imageSize: 64 }],
    ['32 px, hard edges', { seed: 104, images: 200, imageSize: 32, antialias: false }],
    ['32 px, random backgrounds', { seed: 105, images: 200, imageSize: 32, background: 'random' }],
  ];
  for (const [name, opts] of cases)
    it(name, () => {
      const r = benchmarkShapeAnalyzer(opts);
      for (const a of ATTRS) expect(r[a], `${a} (confusions ${JSON.stringify(r.confusions)})`).toBeGreaterThanOrEqual(0.99);
      expect(r.centreErrorPx.max).toBeLessThan(opts.antialias === false ? 1 : 0.5);
    });

  it('32 px, continuous positions: the centre is within 0.5 px (the cell of a centre on a cell border is a coin flip)', () => {
    const r = benchmarkShapeAnalyzer({ seed: 105, images: 200, imageSize: 32, positions: 'continuous', background: 'random' });
    for (const a of ['count', 'shape', 'colour', 'size'] as const) expect(r[a], a).toBeGreaterThanOrEqual(0.99);
    expect(r.centreErrorPx.max).toBeLessThan(0.5);
  });
});

describe('ShapeAnalyzer', () => {
  it('reads one object of each shape and colour exactly', () => {
    const an = new ShapeAnalyzer({ imageSize: 32 });
    for (const shape of SHAPE_NAMES) {
      const scene: Scene = {
        imageSize: 32,
        gridSize: 3,
        background: [0.3, 0.3, 0.3],
        backgroundName: 'grey',
        objects: [{ shape, colour: 'pink', size: 'large', x: 0.5, y: 0.5, radius: 4.2 / 32, cell: 'middle' }],
      };
      const a = an.analyze(renderScene(scene));
      expect(a.objects).toHaveLength(1);
      const o = a.objects[0]!;
      expect([o.shape, o.colour, o.size, o.cell]).toEqual([shape, 'pink', 'large', 'middle']);
      expect(Math.abs(o.x - 0.5) * 32).toBeLessThan(0.25);
      expect(Math.abs(o.y - 0.5) * 32).toBeLessThan(0.25);
      expect(Math.abs(o.radius * 32 - 4.2)).toBeLessThan(0.3);
      expect(a.background.map((v) => +v.toFixed(3))).toEqual([0.3, 0.3, 0.3]);
    }
  });

  it('finds nothing in an empty image', () => {
    const scene: Scene = { imageSize: 32, gridSize: 3, background: [0, 0, 0], backgroundName: 'black', objects: [] };
    expect(new ShapeAnalyzer({ imageSize: 32 }).analyze(renderScene(scene)).objects).toEqual([]);
  });

  it('feature rules follow the documented thresholds', () => {
    expect(featureShape(0.1, 0, 0)).toBe('ring');
    expect(featureShape(1, -0.57, 0)).toBe('triangle');
    expect(featureShape(1, 0, -0.5)).toBe('square');
    expect(featureShape(1, 0, 0.5)).toBe('cross');
    expect(featureShape(1, 0, 0)).toBe('circle');
    expect(ambiguous(1, 0, 0)).toBe(false);
    expect(ambiguous(0.5, 0, 0)).toBe(true);
  });

  it('degrades under heavy noise and blur (measured, not required)', () => {
    const clean = benchmarkShapeAnalyzer({ seed: 7, images: 40, imageSize: 32 });
    const noisy = benchmarkShapeAnalyzer({ seed: 7, images: 40, imageSize: 32, noiseStd: 0.2 });
    const blurred = benchmarkShapeAnalyzer({ seed: 7, images: 40, imageSize: 32, blurSigma: 1.5 });
    expect(noisy.shape).toBeLessThan(clean.shape);
    expect(blurred.shape).toBeLessThan(clean.shape);
    expect(benchmarkShapeAnalyzer({ seed: 7, images: 40, imageSize: 32, noiseStd: 0.2 })).toEqual(noisy);
  });

  it('rejects bad input', () => {
    expect(() => new ShapeAnalyzer({ imageSize: 4 })).toThrow(/imageSize must be an integer >= 8, got 4/);
    expect(() => new ShapeAnalyzer({ imageSize: 32, gridSize: 5 as never })).toThrow(/gridSize must be 1, 2 or 3, got 5/);
    expect(() => new ShapeAnalyzer({ imageSize: 32 }).analyze(new Float32Array(10))).toThrow(
      /expected 3072 values for a 32x32 RGB image, got 10/,
    );
    expect(() => benchmarkShapeAnalyzer({ images: 0 })).toThrow(/images must be a positive integer, got 0/);
    expect(() => benchmarkShapeAnalyzer({ images: 1, blurSigma: -1 })).toThrow(/blurSigma must be >= 0, got -1/);
  });
});
