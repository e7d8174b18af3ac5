import { describe, expect, it } from 'vitest';
import {
  analyzerAgreement,
  binomialSE,
  captionCeiling,
  generationCeiling,
  loadImageTextData,
  memoryOf,
  type ObservedObject,
  objectsKey,
  ShapeAnalyzer,
  seenHeldOutSets,
} from '../../src/index.js';

describe('seen / held-out evaluation sets', () => {
  const sets = seenHeldOutSets({ imageSize: 16, minObjects: 1, maxObjects: 1, seed: 3 }, { train: 200, seen: 40, heldOut: 40 });

  it('seen samples are new renders of training keys; held-out keys never appear in training', () => {
    expect(sets.train).toHaveLength(200);
    expect(sets.seen).toHaveLength(40);
    expect(sets.heldOut).toHaveLength(40);
    const trainKeys = new Set(sets.train.map((s) => s.key));
    expect(sets.trainKeys).toEqual(trainKeys);
    const trainIdx = new Set(sets.train.map((s) => s.index));
    for (const s of sets.seen) {
      expect(trainKeys.has(s.key)).toBe(true);
      expect(s.split).toBe('train');
      expect(trainIdx.has(s.index)).toBe(false); // a new item, not a training image
    }
    for (const s of sets.heldOut) expect(trainKeys.has(s.key)).toBe(false);
    // both kinds of held-out scene: unseen keys (val) and unseen (shape, colour) pairs (heldout)
    expect(new Set(sets.heldOut.map((s) => s.split))).toEqual(new Set(['val', 'heldout']));
  });

  it('is deterministic in the seed', () => {
    const again = seenHeldOutSets({ imageSize: 16, minObjects: 1, maxObjects: 1, seed: 3 }, { train: 200, seen: 40, heldOut: 40 });
    expect(again.seen.map((s) => s.caption)).toEqual(sets.seen.map((s) => s.caption));
    expect(again.heldOut.map((s) => s.key)).toEqual(sets.heldOut.map((s) => s.key));
  });

  it('generation ceiling: 1 on seen prompts, and by hand on crafted memories', () => {
    const an = new ShapeAnalyzer(sets.config);
    const mem = memoryOf(sets.train, an);
    expect(mem.length).toBe(sets.trainKeys.size);
    expect(
      generationCeiling(
        sets.seen.map((s) => s.caption),
        mem,
      ),
    ).toBe(1);
    const o = (shape: string, colour: string, size: string): ObservedObject =>
      ({ shape, colour, size, cell: 'middle', x: 0.5, y: 0.5 }) as ObservedObject;
    const memory = [[o('circle', 'red', 'small')], [o('square', 'blue', 'large')]];
    // satisfied: red circle (any size); not: a large red circle; a blue square (size unstated) yes; green nothing
    expect(generationCeiling(['a red circle', 'a large red circle', 'there is a blue square', 'a green cross'], memory)).toBe(0.5);
  });

  it('caption ceiling: a training caption that states only what holds counts', () => {
    const scene = sets.heldOut[0]!.scene;
    const obj = scene.objects[0]!;
    expect(captionCeiling([scene], [`a ${obj.colour} ${obj.shape}`])).toBe(1);
    const other = obj.shape === 'circle' ? 'square' : 'circle';
    expect(captionCeiling([scene], [`a ${obj.colour} ${other}`, 'not a caption at all'])).toBe(0);
    expect(() => captionCeiling([scene], ['not a caption'])).toThrow(/no training caption is in the caption grammar/);
  });

  it('binomial standard error and bad inputs', () => {
    expect(binomialSE(0.5, 256)).toBeCloseTo(0.03125, 10);
    expect(() => binomialSE(0.5, 0)).toThrow(/n must be > 0/);
    expect(() => seenHeldOutSets({ imageSize: 16 }, { train: 0, seen: 1, heldOut: 1 })).toThrow(/train must be an integer >= 1, got 0/);
    expect(() => seenHeldOutSets({ imageSize: 16 }, { train: 10, seen: -1, heldOut: 1 })).toThrow(/seen must be an integer >= 0, got -1/);
    expect(() => generationCeiling([], [[]])).toThrow(/at least one prompt/);
  });

  it('analyzer agreement: originals agree with themselves, a blank image agrees with nothing, bad lists throw', () => {
    const an = new ShapeAnalyzer(sets.config);
    const imgs = sets.seen.slice(0, 4).map((s) => s.image);
    const blank = imgs.map((im) => new Float32Array(im.length));
    expect(analyzerAgreement(imgs, imgs, an)).toBe(1);
    expect(analyzerAgreement(imgs, [imgs[0]!, blank[1]!, imgs[2]!, blank[3]!], an)).toBe(0.5);
    // the key is order-free and names every attribute
    const o = (shape: string, colour: string) => ({ shape, colour, size: 'small', cell: 'middle', x: 0, y: 0 }) as ObservedObject;
    expect(objectsKey({ objects: [o('ring', 'red'), o('cross', 'blue')] })).toBe('cross/blue/small/middle,ring/red/small/middle');
    expect(() => analyzerAgreement(imgs, imgs.slice(1), an)).toThrow(
      /expected equal non-empty lists, got 4 originals and 3 reconstructions/,
    );
    expect(() => analyzerAgreement([], [], an)).toThrow(/non-empty/);
  });
});

describe('loadImageTextData', () => {
  it('the sets of seenHeldOutSets as prompt sets, with the memoriser ceilings recomputed here', () => {
    const o = { imageSize: 16, maxObjects: 1, trainImages: 200, evalImages: 24, seed: 4 };
    const d = loadImageTextData(o);
    const sets = seenHeldOutSets({ imageSize: 16, minObjects: 1, maxObjects: 1, seed: 4 }, { train: 200, seen: 24, heldOut: 24 });
    expect(d.train.captions).toEqual(sets.train.map((s) => s.caption));
    expect(d.seen.captions).toEqual(sets.seen.map((s) => s.caption));
    expect(d.heldOut.references).toEqual(sets.heldOut.map((s) => s.captions.map((c) => c.text)));
    expect(d.evalCaptions).toEqual([...d.seen.captions, ...d.heldOut.captions]);
    expect(d.trainKeys).toBe(sets.trainKeys.size);
    const memory = memoryOf(sets.train, new ShapeAnalyzer(sets.config));
    expect(d.ceilings.generationHeldOut).toBe(generationCeiling(d.heldOut.captions, memory));
    expect(d.ceilings.captionHeldOut).toBe(captionCeiling(d.heldOut.scenes, d.train.captions));
    // seen prompts are trained combinations: a memoriser satisfies every one
    expect(d.ceilings.generationSeen).toBe(1);
  });
});
