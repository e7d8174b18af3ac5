import { Rng, tf } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import {
  addGaussianNoise,
  COLOUR_NAMES,
  fromSigned,
  gaussianBlur,
  imagesToTensor,
  imageToTensor,
  numberWord,
  objectCoverage,
  PALETTE,
  parseCaption,
  relationOf,
  renderScene,
  resolveShapesConfig,
  type Scene,
  SHAPE_PLURALS,
  ShapesDataset,
  sampleScene,
  separated,
  shapesLayout,
  tensorToImages,
  toSigned,
} from '../../src/images/index.js';

describe('render', () => {
  it('anti-aliased coverage integrates to the analytic area within the 4 x 4 sampling bound', () => {
    // area / r^2 and perimeter / r of each shape; 4 x 4 samples per pixel misclassify only samples
    // within 1/8 px of the outline, each worth 1/16 px^2: |error| <= perimeter / 8.
    const shapes = {
      circle: [Math.PI, 2 * Math.PI],
      square: [4, 8],
      triangle: [2, 2 + 2 * Math.sqrt(5)],
      cross: [20 / 9, 8],
      ring: [(3 * Math.PI) / 4, 3 * Math.PI],
    } as const;
    for (const r of [3, 10, 20])
      for (const [shape, [k, p]] of Object.entries(shapes))
        for (const off of [0, 0.3, 0.77]) {
          const c = objectCoverage(
            { shape: shape as keyof typeof shapes, x: (32 + off) / 64, y: (32 - off / 2) / 64, radius: r / 64 },
            64,
            true,
          );
          const total = c.cover.reduce((a, b) => a + b, 0);
          expect(Math.abs(total - k * r * r), `${shape} r=${r}`).toBeLessThanOrEqual((p * r) / 8);
        }
  });

  it('composites objects over the background with their palette colour', () => {
    const scene: Scene = {
      imageSize: 32,
      gridSize: 3,
      background: [0.3, 0.15, 0.05],
      backgroundName: 'brown',
      objects: [{ shape: 'square', colour: 'cyan', size: 'large', x: 0.5, y: 0.5, radius: 4 / 32, cell: 'middle' }],
    };
    const img = renderScene(scene);
    const px = (x: number, y: number) => Array.from(img.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));
    expect(px(16, 16)).toEqual(PALETTE.cyan.map((v) => Math.fround(v)));
    expect(px(0, 0)).toEqual([0.3, 0.15, 0.05].map((v) => Math.fround(v)));
    // pixel 11 spans [11, 12], the square's edge is at 12: outside; pixel 12 is fully inside
    expect(px(11, 16)).toEqual(px(0, 0));
    expect(px(12, 16)).toEqual(px(16, 16));
    const half: Scene = { ...scene, objects: [{ ...scene.objects[0]!, x: 16.5 / 32 }] };
    const h = renderScene(half);
    expect(h[(16 * 32 + 12) * 3]).toBeCloseTo(0.5 * 0.3 + 0.5 * PALETTE.cyan[0], 6);
  });

  it('noise is seeded and clipped; blur keeps the mean and sigma 0 copies', () => {
    const img = new Float32Array(8 * 8 * 3).fill(0.5);
    const a = addGaussianNoise(img, 0.1, new Rng(1));
    expect(Array.from(addGaussianNoise(img, 0.1, new Rng(1)))).toEqual(Array.from(a));
    const sd = Math.sqrt(a.reduce((s, v) => s + (v - 0.5) ** 2, 0) / a.length);
    expect(sd).toBeGreaterThan(0.08);
    expect(sd).toBeLessThan(0.12);
    expect(Math.min(...addGaussianNoise(img, 5, new Rng(2)))).toBe(0);
    const rng = new Rng(3);
    const x = Float32Array.from({ length: 16 * 16 }, () => rng.uniform());
    const b = gaussianBlur(x, 16, 16, 1, 1);
    const mean = (v: Float32Array) => v.reduce((s, t) => s + t, 0) / v.length;
    expect(Math.abs(mean(b) - mean(x))).toBeLessThan(0.02);
    expect(Array.from(gaussianBlur(x, 16, 16, 1, 0))).toEqual(Array.from(x));
    const impulse = new Float32Array(15 * 15);
    impulse[7 * 15 + 7] = 1;
    const k = gaussianBlur(impulse, 15, 15, 1, 1);
    const g = (d: number) => Math.exp(-(d * d) / 2);
    let norm = 0;
    for (let i = -3; i <= 3; i++) norm += g(i);
    expect(k[7 * 15 + 8]).toBeCloseTo((g(0) * g(1)) / (norm * norm), 6);
    expect(() => gaussianBlur(x, 15, 16, 1, 1)).toThrow(/expected 240 values for 15x16x1, got 256/);
    expect(() => gaussianBlur(x, 16, 16, 1, -1)).toThrow(/sigma must be >= 0, got -1/);
    expect(() => addGaussianNoise(img, -1, new Rng(0))).toThrow(/std must be >= 0, got -1/);
  });
});

describe('ShapesDataset', () => {
  it('is deterministic by seed', () => {
    const a = new ShapesDataset({ seed: 5, noiseStd: 0.05 }).sample(3);
    const b = new ShapesDataset({ seed: 5, noiseStd: 0.05 }).sample(3);
    const c = new ShapesDataset({ seed: 6, noiseStd: 0.05 }).sample(3);
    expect(Array.from(a.image)).toEqual(Array.from(b.image));
    expect(a.qa).toEqual(b.qa);
    expect(a.caption).toBe(b.caption);
    expect(Array.from(a.image)).not.toEqual(Array.from(c.image));
  });

  it('has disjoint train / val / test / heldout splits; heldout scenes (and only they) hold a held-out pair', () => {
    const keys: Record<string, Set<string>> = {};
    for (const split of ['train', 'val', 'test', 'heldout'] as const) {
      const ds = new ShapesDataset({ seed: 1, split });
      keys[split] = new Set();
      for (let i = 0; i < 150; i++) {
        const s = ds.sample(i);
        expect(s.split).toBe(split);
        const held = s.scene.objects.some((o) => ds.config.heldOut.some(([sh, c]) => sh === o.shape && c === o.colour));
        expect(held).toBe(split === 'heldout');
        keys[split].add(s.key);
      }
    }
    const names = Object.keys(keys);
    for (const a of names)
      for (const b of names) if (a < b) for (const k of keys[a]!) expect(keys[b]!.has(k), `${a}/${b}: ${k}`).toBe(false);
    const all = new ShapesDataset({ seed: 2, split: 'all' });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 600; i++) counts[all.sample(i).split] = (counts[all.sample(i).split] ?? 0) + 1;
    const nonHeld = 600 - (counts.heldout ?? 0);
    expect(counts.train! / nonHeld).toBeGreaterThan(0.7);
    expect(counts.train! / nonHeld).toBeLessThan(0.9);
    expect(counts.val).toBeGreaterThan(0);
    expect(counts.test).toBeGreaterThan(0);
  });

  it('places grid objects inside their cells with the gap, and continuous objects apart', () => {
    const cfg = resolveShapesConfig({ imageSize: 32 });
    const L = shapesLayout(32, 3);
    const rng = new Rng(9);
    for (let i = 0; i < 200; i++) {
      const s = sampleScene(cfg, rng.fork(i));
      expect(s.objects.length).toBeGreaterThanOrEqual(1);
      expect(s.objects.length).toBeLessThanOrEqual(3);
      for (const o of s.objects) {
        const c = ['top left', 'top', 'top right', 'left', 'middle', 'right', 'bottom left', 'bottom', 'bottom right'].indexOf(o.cell);
        const [cx, cy] = [(c % 3) * L.cellPx, Math.floor(c / 3) * L.cellPx];
        const r = o.radius * 32;
        expect(o.x * 32 - r).toBeGreaterThanOrEqual(cx + L.gapPx / 2 - 1e-9);
        expect(o.x * 32 + r).toBeLessThanOrEqual(cx + L.cellPx - L.gapPx / 2 + 1e-9);
        expect(o.y * 32 - r).toBeGreaterThanOrEqual(cy + L.gapPx / 2 - 1e-9);
        expect(r).toBeGreaterThanOrEqual(L.radiusPx[o.size][0] - 1e-9);
        expect(r).toBeLessThanOrEqual(L.radiusPx[o.size][1] + 1e-9);
      }
    }
    const cont = resolveShapesConfig({ imageSize: 48, positions: 'continuous' });
    for (let i = 0; i < 100; i++) {
      const s = sampleScene(cont, rng.fork(1000 + i));
      for (let a = 0; a < s.objects.length; a++)
        for (let b = a + 1; b < s.objects.length; b++) expect(separated(s.objects[a]!, s.objects[b]!, 48, cont.gapPx)).toBe(true);
    }
  });

  it('captions parse back to the scene, and QA answers are true of the scene', () => {
    const ds = new ShapesDataset({ seed: 8, repeatProb: 0.5 });
    for (let i = 0; i < 100; i++) {
      const s = ds.sample(i);
      for (const c of s.captions) {
        const q = parseCaption(c.text);
        const total = q.objects.reduce((a, o) => a + o.count, 0);
        expect(total, c.text).toBe(s.scene.objects.length);
        for (const o of q.objects) {
          const have = s.scene.objects.filter(
            (x) =>
              x.shape === o.shape &&
              (!o.colour || x.colour === o.colour) &&
              (!o.size || x.size === o.size) &&
              (!o.cell || x.cell === o.cell),
          );
          expect(have.length, c.text).toBeGreaterThanOrEqual(o.count);
        }
        for (const r of q.relations) {
          const [a, b] = [q.objects[r.a]!, q.objects[r.b]!];
          const as = s.scene.objects.filter((x) => x.shape === a.shape && x.colour === a.colour);
          const bs = s.scene.objects.filter((x) => x.shape === b.shape && x.colour === b.colour);
          expect(
            as.some((oa) => bs.some((ob) => oa !== ob && relationOf(oa.x, oa.y, ob.x, ob.y) === r.relation)),
            c.text,
          ).toBe(true);
        }
      }
      for (const qa of s.qa) {
        const m = /^how many (\w+) are there\?$/.exec(qa.question);
        if (m && m[1] !== 'shapes') {
          const shape = Object.entries(SHAPE_PLURALS).find(([, p]) => p === m[1])![0];
          expect(qa.answer).toBe(numberWord(s.scene.objects.filter((o) => o.shape === shape).length));
        }
        const col = /^what colour is the (\w+)\?$/.exec(qa.question);
        if (col) expect(s.scene.objects.filter((o) => o.shape === col[1]).map((o) => o.colour)).toEqual([qa.answer]);
        const ex = /^is there an? (\w+) (\w+)\?$/.exec(qa.question);
        if (ex) expect(s.scene.objects.some((o) => o.colour === ex[1] && o.shape === ex[2]) ? 'yes' : 'no').toBe(qa.answer);
      }
    }
  });

  it('batches images and describes itself as JSON', () => {
    const ds = new ShapesDataset({ seed: 1, imageSize: 24 });
    const b = ds.batch(10, 4);
    expect(b.shape).toEqual([4, 24, 24, 3]);
    expect(b.images.length).toBe(4 * 24 * 24 * 3);
    expect(Array.from(b.images.subarray(24 * 24 * 3, 2 * 24 * 24 * 3))).toEqual(Array.from(ds.sample(11).image));
    const d = JSON.parse(JSON.stringify(ds.describe()));
    expect(d.config.imageSize).toBe(24);
    expect(d.layout.gridSize).toBe(2);
    expect(Object.keys(d.vocabulary.colours)).toEqual([...COLOUR_NAMES]);
    expect(() => ds.sample(-1)).toThrow(/index must be a non-negative integer, got -1/);
    expect(() => ds.batch(0, 0)).toThrow(/batchSize must be a positive integer, got 0/);
  });

  it('rejects bad configs naming the field, expected and actual', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ imageSize: 8 }, /ShapesConfig.imageSize: expected an integer in \[16, 128\], got 8/],
      [{ shapes: ['circle', 'hexagon'] }, /ShapesConfig.shapes: expected values among .* got "hexagon"/],
      [{ colours: [] }, /ShapesConfig.colours: expected a non-empty array/],
      [{ maxObjects: 10 }, /ShapesConfig.maxObjects: expected at most 9/],
      [{ minObjects: 0 }, /ShapesConfig.minObjects: expected an integer >= 1, got 0/],
      [{ imageSize: 16, gridSize: 3 }, /ShapesConfig.gridSize: expected a grid whose small objects have a radius >= 2.5 px/],
      [{ background: 'purple' }, /ShapesConfig.background: expected 'random', an RGB triple or one of/],
      [{ noiseStd: -0.1 }, /ShapesConfig.noiseStd: expected a number in \[0, 1\], got -0.1/],
      [{ splitFractions: [0.5, 0.5, 0.5] }, /ShapesConfig.splitFractions: expected \[train, val, test\], non-negative, summing to 1/],
      [{ heldOut: [['circle', 'mauve']] }, /ShapesConfig.heldOut: expected an array of \[shape, colour\] pairs with known names/],
      [{ positions: 'random' }, /ShapesConfig.positions: expected 'grid' or 'continuous', got "random"/],
      [{ imgSize: 32 }, /ShapesConfig.imgSize: expected one of the known fields/],
    ];
    for (const [cfg, re] of bad) expect(() => new ShapesDataset(cfg as never)).toThrow(re);
    expect(() => new ShapesDataset({ split: 'dev' as never })).toThrow(/split must be one of train, val, test, heldout, all, got "dev"/);
    expect(() => new ShapesDataset({ split: 'heldout', heldOut: [] }).sample(0)).toThrow(
      /no draw in 10000 attempts landed in the requested split/,
    );
  });
});

describe('tensor helpers', () => {
  it('round-trip images through tensors without leaks', () => {
    const ds = new ShapesDataset({ seed: 1, imageSize: 16 });
    const imgs = [ds.sample(0).image, ds.sample(1).image];
    const before = tf.memory().numTensors;
    const t = imagesToTensor(imgs, 16);
    expect(t.shape).toEqual([2, 16, 16, 3]);
    const back = tensorToImages(t);
    t.dispose();
    const one = imageToTensor(imgs[0]!, 16);
    expect(one.shape).toEqual([16, 16, 3]);
    expect(Array.from(tensorToImages(one)[0]!)).toEqual(Array.from(imgs[0]!));
    one.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(back[1]!)).toEqual(Array.from(imgs[1]!));
    const signed = toSigned(imgs[0]!);
    expect(Math.min(...signed)).toBeGreaterThanOrEqual(-1);
    const restored = fromSigned(signed);
    for (let i = 0; i < restored.length; i++) expect(restored[i]).toBeCloseTo(imgs[0]![i]!, 6);
    expect(() => imageToTensor(new Float32Array(5), 16)).toThrow(/expected 768 values for \[16, 16, 3\], got 5/);
    expect(() => imagesToTensor([imgs[0]!, new Float32Array(3)], 16)).toThrow(/image 1 has 3 values, expected 768/);
    const bad = tf.zeros([3]);
    expect(() => tensorToImages(bad)).toThrow(/expected a tensor of rank 3 or 4, got shape \[3\]/);
    bad.dispose();
  });
});
