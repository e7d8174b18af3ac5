import { describe, expect, it } from 'vitest';
import { captionScore, generationScore, judgeCaption, matchQuery, type ObservedObject, qaScore } from '../../src/eval/index.js';
import { CAPTION_TEMPLATES, parseCaption, type Scene, ShapesDataset } from '../../src/images/index.js';

const obj = (
  shape: ObservedObject['shape'],
  colour: ObservedObject['colour'],
  cell: string,
  x: number,
  y: number,
  size: ObservedObject['size'] = 'small',
): ObservedObject => ({
  shape,
  colour,
  size,
  cell,
  x,
  y,
});

describe('matchQuery', () => {
  const objs = [obj('circle', 'red', 'top left', 0.16, 0.16), obj('square', 'blue', 'bottom left', 0.16, 0.83, 'large')];

  it('checks each attribute on its own and all at once', () => {
    expect(matchQuery(parseCaption('a red circle above a blue square'), objs)).toEqual({
      objects: true,
      count: true,
      colour: true,
      size: null,
      position: true,
      overall: true,
    });
    expect(matchQuery(parseCaption('a red circle below a blue square'), objs)).toMatchObject({
      colour: true,
      position: false,
      overall: false,
    });
    expect(matchQuery(parseCaption('a blue circle and a red square'), objs)).toMatchObject({
      objects: true,
      count: true,
      colour: false,
      position: null,
      overall: false,
    });
    expect(matchQuery(parseCaption('a small red circle and a small blue square'), objs)).toMatchObject({
      size: false,
      colour: true,
      overall: false,
    });
    expect(matchQuery(parseCaption('a red circle in the top left and a blue square in the bottom left'), objs)).toMatchObject({
      position: true,
      overall: true,
    });
    expect(matchQuery(parseCaption('a red circle in the top right and a blue square'), objs)).toMatchObject({
      position: false,
      overall: false,
    });
  });

  it('counts per shape and rejects extra objects for exact captions', () => {
    expect(matchQuery(parseCaption('a red circle'), objs)).toMatchObject({ objects: true, count: false, colour: true, overall: false });
    expect(matchQuery(parseCaption('two red circles and a blue square'), objs)).toMatchObject({ count: false, colour: false });
    const three = [...objs, obj('circle', 'red', 'top right', 0.83, 0.16)];
    expect(matchQuery(parseCaption('two red circles and a blue square'), three)).toMatchObject({
      count: true,
      colour: true,
      overall: true,
    });
    expect(matchQuery(parseCaption('a triangle'), objs)).toMatchObject({ objects: false, count: false, overall: false });
    expect(matchQuery(parseCaption('there is nothing'), [])).toMatchObject({ objects: true, count: true, overall: true });
  });
});

describe('generationScore', () => {
  const ds = new ShapesDataset({ seed: 3, imageSize: 32, split: 'all' });
  const samples = Array.from({ length: 60 }, (_, i) => ds.sample(i));

  it('scores the dataset’s own (caption, image) pairs as correct for every template', () => {
    const pairs = samples.flatMap((s) => s.captions.map((c) => ({ caption: c.text, image: s.image })));
    const r = generationScore(pairs, ds.config);
    expect(r.n).toBe(pairs.length);
    expect(r.overall).toBe(1);
    for (const a of Object.values(r.attributes)) if (a.applicable > 0) expect(a.accuracy).toBe(1);
    expect(new Set(samples.flatMap((s) => s.captions.map((c) => c.template)))).toEqual(new Set(CAPTION_TEMPLATES));
  });

  it('scores shuffled pairs low', () => {
    const pairs = samples.map((s, i) => ({
      caption: s.captions.find((c) => c.template === 'places')!.text,
      image: samples[(i + 1) % samples.length]!.image,
    }));
    const r = generationScore(pairs, ds.config);
    expect(r.overall).toBeLessThan(0.1);
    expect(r.attributes.position.accuracy).toBeLessThan(0.2);
  });

  it('rejects bad input naming the pair', () => {
    const image = samples[0]!.image;
    expect(() => generationScore([])).toThrow(/non-empty array/);
    expect(() =>
      generationScore([
        { caption: 'a red circle', image },
        { caption: 'a purple blob', image },
      ]),
    ).toThrow(/pair 1: parseCaption: expected a shape/);
    expect(() => generationScore([{ caption: 'a red circle', image: new Float32Array(3) }])).toThrow(
      /pair 0: expected a Float32Array image of 3072 values \(32x32x3\), got 3/,
    );
    expect(() => generationScore([{ caption: 7 as never, image }])).toThrow(/pair 0 has no caption string/);
  });
});

describe('caption and QA accuracy', () => {
  const ds = new ShapesDataset({ seed: 4, imageSize: 32 });
  const samples = Array.from({ length: 30 }, (_, i) => ds.sample(i));

  it('judges generated captions against the scene', () => {
    const s = samples.find((x) => x.scene.objects.length === 2)!;
    for (const c of s.captions)
      expect(judgeCaption(c.text, s.scene)).toEqual({ parsed: true, match: expect.objectContaining({ overall: true }) });
    const other = s.scene.objects[0]!.colour === 'red' ? 'green' : 'red';
    const wrong = `${'a'} ${other} ${s.scene.objects[0]!.shape}`;
    expect(judgeCaption(wrong, s.scene).match.colour).toBe(false);
    expect(judgeCaption('blah blah', s.scene)).toEqual({
      parsed: false,
      match: { objects: false, count: false, colour: false, size: false, position: false, overall: false },
    });
    const r = captionScore([
      { caption: s.caption, scene: s.scene },
      { caption: 'blah', scene: s.scene },
    ]);
    expect(r.parsed).toBe(0.5);
    expect(r.overall).toBe(0.5);
    expect(() => captionScore([{ caption: 'a red circle', scene: {} as Scene }])).toThrow(/pair 0: judgeCaption: scene must be a Scene/);
    expect(() => captionScore([])).toThrow(/non-empty array/);
  });

  it('scores QA answers per type after normalisation', () => {
    const qa = samples.flatMap((s) => s.qa);
    const perfect = qaScore(
      qa.map((q) => `The ${q.answer.toUpperCase()}.`),
      qa,
    );
    expect(perfect.exactMatch).toBe(1);
    for (const t of Object.values(perfect.byType)) expect(t.exactMatch).toBe(1);
    const types = Object.keys(perfect.byType).sort();
    expect(types).toEqual(['colour', 'count', 'exists', 'position', 'relation', 'shape', 'size']);
    const allYes = qaScore(
      qa.map(() => 'yes'),
      qa,
    );
    expect(allYes.byType.exists!.exactMatch).toBeCloseTo(0.5, 1);
    expect(allYes.byType.colour!.exactMatch).toBe(0);
    expect(() => qaScore(['yes'], qa)).toThrow(/got 1 predictions but \d+ QA pairs/);
  });
});
