/** The README's image example, run as written (from the package entry point). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import {
  frechetDistance,
  generationScore,
  parseCaption,
  readPng,
  ShapeAnalyzer,
  ShapesDataset,
  writeImageGrid,
  writePng,
} from '../../src/index.js';

it('README image example', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmlm-readme-'));
  const ds = new ShapesDataset({ seed: 0, imageSize: 32, split: 'train' });
  const s = ds.sample(0); // { image: Float32Array [32 * 32 * 3] in [0, 1], caption, captions, qa, scene, ... }
  const analyzer = new ShapeAnalyzer(ds.config);
  const objects = analyzer.analyze(s.image).objects; // [{ shape, colour, size, cell, x, y, radius, ... }]
  const pairs = [0, 1, 2, 3].map((i) => ({ caption: ds.sample(i).caption, image: ds.sample(i).image }));
  const score = generationScore(pairs, analyzer); // { overall, attributes: { objects, count, colour, size, position } }
  const real = ds.batch(0, 16).samples.map((x) => x.image);
  const fd = frechetDistance(real, real, { features: 'analyzer', analyzer }); // ~0
  writePng(join(dir, 'sample.png'), s.image, 32);
  writeImageGrid(join(dir, 'grid.png'), real, { size: 32, cols: 8, scale: 2 });

  expect(objects.map((o) => o.shape).sort()).toEqual(s.scene.objects.map((o) => o.shape).sort());
  expect(parseCaption(s.caption).objects.length).toBeGreaterThan(0);
  expect(score.overall).toBe(1);
  expect(fd).toBeLessThan(1e-9);
  expect(readPng(join(dir, 'sample.png')).width).toBe(32);
});
