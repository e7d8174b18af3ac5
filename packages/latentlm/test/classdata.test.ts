/**
 * The class-conditional image experiments' view of @mmlm/data: 24 class captions ("a red circle") in
 * label order, labels read from one-object scenes, and the data package's analyzer scoring real
 * renders of each class against its caption (the generation score of a perfect generator).
 */
import { initBackend, tf } from '@mmlm/core';
import { generationScore, ShapesDataset } from '@mmlm/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { classCaptions, classLabel, fullCaption, IMAGE_PRESETS, imageBatch, samples, shapesData } from '../src/experiments/images.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

describe('class-conditional Shapes data', () => {
  const ds = shapesData(IMAGE_PRESETS.tiny!, 0, 'train');

  it('24 classes: shape-major captions, every one trainable (no held-out pairs)', () => {
    const caps = classCaptions(ds.config);
    expect(caps).toHaveLength(24);
    expect(caps.slice(0, 7)).toEqual([
      'a red circle',
      'a green circle',
      'a blue circle',
      'a yellow circle',
      'a white circle',
      'an orange circle',
      'a red square',
    ]);
    expect(caps[23]).toBe('an orange cross');
    const items = samples(ds, 400);
    const seen = new Set(items.map((it) => classLabel(ds.config, it)));
    expect(seen.size).toBe(24);
  });

  it('a label names its sample: real renders score 1 against their class caption and full caption', () => {
    const items = samples(ds, 60);
    const caps = classCaptions(ds.config);
    for (const it of items) {
      const o = it.scene.objects[0]!;
      expect(caps[classLabel(ds.config, it)]).toBe(`${o.colour === 'orange' ? 'an' : 'a'} ${o.colour} ${o.shape}`);
      expect(fullCaption(it)).toMatch(new RegExp(`^an? (small|large) ${o.colour} ${o.shape} `));
    }
    expect(
      generationScore(
        items.map((it) => ({ caption: caps[classLabel(ds.config, it)]!, image: it.image })),
        ds.config,
      ).overall,
    ).toBe(1);
    expect(
      generationScore(
        items.map((it) => ({ caption: fullCaption(it), image: it.image })),
        ds.config,
      ).overall,
    ).toBe(1);
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

  it('classLabel rejects a scene with more than one object, naming the count', () => {
    const multi = new ShapesDataset({ seed: 0, imageSize: 32, minObjects: 2, maxObjects: 2 }).sample(0);
    expect(() => classLabel(ds.config, multi)).toThrow(/classLabel: expected a one-object scene, got 2 objects/);
  });
});
