/**
 * The conditional image experiments' view of @mmlm/data: condition tokens [shape, colour, size, cell]
 * read from one-object scenes, the seen / held-out evaluation sets with their memoriser ceilings, the
 * data package's analyzer scoring real renders against their full captions (the generation score of a
 * perfect generator), and the tokenizer agreement check.
 */
import { initBackend, tf } from '@mmlm/core';
import { analyzerAgreement, CELL_NAMES, generationScore, ShapesDataset } from '@mmlm/data';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  conditionTokens,
  conditionVocab,
  fullCaption,
  IMAGE_PRESETS,
  imageBatch,
  imageSets,
  samples,
  shapesData,
} from '../src/experiments/images.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

describe('conditional Shapes data', () => {
  const ds = shapesData(IMAGE_PRESETS.tiny!, 0, 'train');

  it('condition vocabulary: 4 shapes, 6 colours, 2 sizes, 9 cells, then <NULL>', () => {
    const cv = conditionVocab(ds.config);
    expect(cv.words.slice(0, 12)).toEqual([
      'circle',
      'square',
      'triangle',
      'cross',
      'red',
      'green',
      'blue',
      'yellow',
      'white',
      'orange',
      'small',
      'large',
    ]);
    expect(cv.words.slice(12)).toEqual([...CELL_NAMES[3]]);
    expect(cv.nullId).toBe(21);
    expect(cv.size).toBe(22);
  });

  it('condition tokens name the sample: one token per attribute, in its own id range', () => {
    const cv = conditionVocab(ds.config);
    for (const it of samples(ds, 60)) {
      const o = it.scene.objects[0]!;
      const t = conditionTokens(ds.config, it);
      expect(t.map((i) => cv.words[i])).toEqual([o.shape, o.colour, o.size, o.cell]);
      expect(t[0]).toBeLessThan(4);
      expect(t[1]! >= 4 && t[1]! < 10).toBe(true);
      expect(t[2]! >= 10 && t[2]! < 12).toBe(true);
      expect(t[3]! >= 12 && t[3]! < 21).toBe(true);
    }
  });

  it('real renders score 1 against their full caption', () => {
    const items = samples(ds, 60);
    for (const it of items) {
      const o = it.scene.objects[0]!;
      expect(fullCaption(it)).toMatch(new RegExp(`^an? (small|large) ${o.colour} ${o.shape} `));
    }
    expect(
      generationScore(
        items.map((it) => ({ caption: fullCaption(it), image: it.image })),
        ds.config,
      ).overall,
    ).toBe(1);
  });

  it('seen and held-out sets: seen keys are trained, held-out keys are not, and the held-out memoriser ceiling is 0', () => {
    const sets = imageSets({ ...IMAGE_PRESETS.tiny!, trainImages: 200, evalImages: 12 }, 0);
    const trainKeys = new Set(sets.train.map((s) => s.key));
    expect(sets.seen).toHaveLength(12);
    expect(sets.heldOut).toHaveLength(12);
    for (const s of sets.seen) expect(trainKeys.has(s.key)).toBe(true);
    for (const s of sets.heldOut) expect(trainKeys.has(s.key)).toBe(false);
    // the held-out pairs (e.g. an orange circle) never appear in training
    for (const s of sets.train) {
      const o = s.scene.objects[0]!;
      expect(['circle/orange', 'square/white', 'triangle/yellow', 'cross/green']).not.toContain(`${o.shape}/${o.colour}`);
    }
    expect(
      sets.heldOut.some((s) =>
        ['circle/orange', 'square/white', 'triangle/yellow', 'cross/green'].includes(
          `${s.scene.objects[0]!.shape}/${s.scene.objects[0]!.colour}`,
        ),
      ),
    ).toBe(true);
    // a full caption names the whole key: no training image satisfies a held-out one, every seen one is
    expect(sets.ceilings.generationHeldOut).toBe(0);
    expect(sets.ceilings.generationSeen).toBe(1);
  });

  it('analyzer agreement: originals agree with themselves; a blank image does not', () => {
    const sets = imageSets({ ...IMAGE_PRESETS.tiny!, trainImages: 16, evalImages: 4 }, 0);
    const imgs = sets.seen.map((s) => s.image);
    expect(analyzerAgreement(imgs, imgs, sets.analyzer)).toBe(1);
    const blank = imgs.map((im) => new Float32Array(im.length));
    expect(analyzerAgreement(imgs, [imgs[0]!, imgs[1]!, blank[2]!, blank[3]!], sets.analyzer)).toBe(0.5);
    expect(() => analyzerAgreement(imgs, imgs.slice(1), sets.analyzer)).toThrow(/expected equal non-empty lists/);
  });

  it('imageBatch stacks samples as [B, S, S, 3] without leaking', () => {
    const items = samples(ds, 3);
    const before = tf.memory().numTensors;
    const x = imageBatch(items, 32);
    expect(x.shape).toEqual([3, 32, 32, 3]);
    expect(Array.from(x.dataSync().subarray(32 * 32 * 3, 32 * 32 * 3 + 6))).toEqual(Array.from(items[1]!.image.subarray(0, 6)));
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('conditionTokens rejects a scene with more than one object, naming the count', () => {
    const multi = new ShapesDataset({ seed: 0, imageSize: 32, minObjects: 2, maxObjects: 2 }).sample(0);
    expect(() => conditionTokens(ds.config, multi)).toThrow(/conditionTokens: expected a one-object scene, got 2 objects/);
  });
});
