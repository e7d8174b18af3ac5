import { Rng } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import { ShapeAnalyzer } from '../../src/eval/index.js';
import {
  applyEdit,
  ClipsDataset,
  DIRECTION_VECTORS,
  EditPairsDataset,
  editInstruction,
  InterleavedDataset,
  renderScene,
  resolveShapesConfig,
  type Scene,
  separated,
} from '../../src/images/index.js';

describe('ClipsDataset', () => {
  const ds = new ClipsDataset({ seed: 3, imageSize: 32, frames: 6 });
  const an = new ShapeAnalyzer(ds.config);

  it('is deterministic by seed', () => {
    const a = ds.sample(2);
    expect(Array.from(new ClipsDataset({ seed: 3, imageSize: 32, frames: 6 }).sample(2).video)).toEqual(Array.from(a.video));
    expect(Array.from(new ClipsDataset({ seed: 4, imageSize: 32, frames: 6 }).sample(2).video)).not.toEqual(Array.from(a.video));
    expect(a.shape).toEqual([6, 32, 32, 3]);
    expect(a.video.length).toBe(6 * 32 * 32 * 3);
  });

  it('moves objects in straight lines inside the image, apart, as described; the pixels agree', () => {
    for (let i = 0; i < 30; i++) {
      const clip = ds.sample(i);
      expect(clip.frames).toHaveLength(6);
      for (const s of clip.scenes) {
        for (const o of s.objects) {
          expect(o.x - o.radius).toBeGreaterThanOrEqual(0);
          expect(o.x + o.radius).toBeLessThanOrEqual(1);
          expect(o.y - o.radius).toBeGreaterThanOrEqual(0);
          expect(o.y + o.radius).toBeLessThanOrEqual(1);
        }
        for (let a = 0; a < s.objects.length; a++)
          for (let b = a + 1; b < s.objects.length; b++) expect(separated(s.objects[a]!, s.objects[b]!, 32, ds.config.gapPx)).toBe(true);
      }
      for (const m of clip.motions) {
        expect(clip.description).toContain(`${m.colour} ${m.shape} ${m.direction === 'still' ? 'stays still' : `moves ${m.direction}`}`);
        const first = an
          .analyze(clip.frames[0]!)
          .objects.find((o) => o.shape === m.shape && o.colour === m.colour && Math.hypot(o.x - m.start[0], o.y - m.start[1]) < 0.05);
        const last = an
          .analyze(clip.frames[5]!)
          .objects.find((o) => o.shape === m.shape && o.colour === m.colour && Math.hypot(o.x - m.end[0], o.y - m.end[1]) < 0.05);
        expect(first && last, clip.description).toBeTruthy();
        const [ux, uy] = DIRECTION_VECTORS[m.direction];
        const [dx, dy] = [last!.x - first!.x, last!.y - first!.y];
        if (m.direction === 'still') expect(Math.hypot(dx, dy) * 32).toBeLessThan(0.5);
        else {
          const dist = Math.hypot(dx, dy);
          expect((dx * ux + dy * uy) / dist, m.direction).toBeGreaterThan(0.99);
          expect(dist).toBeGreaterThanOrEqual(0.25 - 0.02);
          expect(dist).toBeLessThanOrEqual(0.5 + 0.02);
        }
      }
    }
  });

  it('keeps held-out pairs in the heldout split', () => {
    const held = new ClipsDataset({ seed: 1, split: 'heldout' });
    for (let i = 0; i < 20; i++) {
      const c = held.sample(i);
      expect(c.split).toBe('heldout');
      expect(c.motions.some((m) => held.config.heldOut.some(([s, col]) => s === m.shape && col === m.colour))).toBe(true);
    }
    const train = new ClipsDataset({ seed: 1, split: 'train' });
    for (let i = 0; i < 20; i++)
      expect(train.sample(i).motions.some((m) => train.config.heldOut.some(([s, col]) => s === m.shape && col === m.colour))).toBe(false);
  });

  it('rejects bad input', () => {
    expect(() => new ClipsDataset({ frames: 1 })).toThrow(/frames must be an integer in \[2, 64\], got 1/);
    expect(() => new ClipsDataset({ directions: ['sideways' as never] })).toThrow(/directions must be a non-empty array of up/);
    expect(() => new ClipsDataset({ distance: [0.5, 0.2] })).toThrow(
      /distance must be \[min, max\] with 0 < min <= max <= 0.8, got \[0.5,0.2\]/,
    );
    expect(() => new ClipsDataset({ imageSize: 16, distance: [0.3, 0.8] })).toThrow(/distance max 0.8 \(12.8 px\) does not fit/);
    expect(() => new ClipsDataset({ split: 'dev' as never })).toThrow(/split must be one of/);
    expect(() => ds.sample(1.5)).toThrow(/index must be a non-negative integer, got 1.5/);
  });
});

describe('EditPairsDataset', () => {
  const ds = new EditPairsDataset({ seed: 2, imageSize: 32, split: 'all' });
  const an = new ShapeAnalyzer(ds.config);
  const read = (img: Float32Array) =>
    an
      .analyze(img)
      .objects.map((o) => `${o.size} ${o.colour} ${o.shape} @ ${o.cell}`)
      .sort();
  const truth = (s: Scene) => s.objects.map((o) => `${o.size} ${o.colour} ${o.shape} @ ${o.cell}`).sort();

  it('is deterministic by seed', () => {
    const a = ds.sample(5);
    const b = new EditPairsDataset({ seed: 2, imageSize: 32, split: 'all' }).sample(5);
    expect(a.instruction).toBe(b.instruction);
    expect(Array.from(a.target)).toEqual(Array.from(b.target));
    expect(
      new EditPairsDataset({ seed: 9, imageSize: 32, split: 'all' }).sample(5).instruction === a.instruction &&
        Array.from(new EditPairsDataset({ seed: 9, imageSize: 32, split: 'all' }).sample(5).source).join() === Array.from(a.source).join(),
    ).toBe(false);
  });

  it('renders exactly the edited scene, and the instruction names the change (read back from pixels)', () => {
    const kinds = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const p = ds.sample(i);
      kinds.add(p.edit.kind);
      expect(Array.from(p.source)).toEqual(Array.from(renderScene(p.sourceScene)));
      expect(Array.from(p.target)).toEqual(Array.from(renderScene(p.targetScene)));
      expect(read(p.source)).toEqual(truth(p.sourceScene));
      expect(read(p.target)).toEqual(truth(p.targetScene));
      expect(editInstruction(p.sourceScene, p.edit)).toBe(p.instruction);
      const e = p.edit;
      const src = p.sourceScene.objects;
      const tgt = p.targetScene.objects;
      switch (e.kind) {
        case 'recolour':
          expect(p.instruction).toMatch(new RegExp(`^make the .*${src[e.target]!.shape} ${e.colour}$`));
          expect(tgt[e.target]!.colour).toBe(e.colour);
          break;
        case 'reshape':
          expect(tgt[e.target]!.shape).toBe(e.shape);
          expect(p.instruction).toMatch(new RegExp(`^turn the .* into an? ${e.shape}$`));
          break;
        case 'resize':
          expect(tgt[e.target]!.size).toBe(e.size);
          expect(tgt[e.target]!.cell).toBe(src[e.target]!.cell);
          break;
        case 'move':
          expect(tgt[e.target]!.cell).toBe(e.cell);
          expect(p.instruction.endsWith(`to the ${e.cell}`)).toBe(true);
          break;
        case 'remove':
          expect(tgt).toHaveLength(src.length - 1);
          break;
        case 'add':
          expect(tgt).toHaveLength(src.length + 1);
          expect(p.instruction).toMatch(new RegExp(`^add an? ${e.size} ${e.colour} ${e.shape} `));
          break;
      }
      const untouched = src.filter((_, k) => !('target' in e) || k !== e.target);
      for (const o of untouched) expect(tgt).toContainEqual(o);
    }
    expect(kinds.size).toBe(6);
  });

  it('keeps held-out pairs (in source or target) in the heldout split', () => {
    const train = new EditPairsDataset({ seed: 1, split: 'train' });
    const isHeld = (s: Scene) => s.objects.some((o) => train.config.heldOut.some(([sh, c]) => sh === o.shape && c === o.colour));
    for (let i = 0; i < 30; i++) {
      const p = train.sample(i);
      expect(isHeld(p.sourceScene) || isHeld(p.targetScene)).toBe(false);
    }
    const held = new EditPairsDataset({ seed: 1, split: 'heldout' });
    for (let i = 0; i < 10; i++) {
      const p = held.sample(i);
      expect(isHeld(p.sourceScene) || isHeld(p.targetScene)).toBe(true);
    }
  });

  it('rejects bad input', () => {
    expect(() => new EditPairsDataset({ kinds: ['paint' as never] })).toThrow(/kinds must be a non-empty array of recolour/);
    expect(() => new EditPairsDataset({ positions: 'continuous' })).toThrow(/positions must be 'grid'/);
    expect(() => new EditPairsDataset({ imageSize: 16 })).toThrow(
      /gridSize must be >= 2 \(edits need a free cell\), got 1 at imageSize 16/,
    );
    const cfg = resolveShapesConfig({ imageSize: 32 });
    const p = ds.sample(0);
    expect(() => applyEdit(p.sourceScene, { kind: 'remove', target: 7 }, cfg, new Rng(0))).toThrow(
      /target must be an object index in \[0, \d\), got 7/,
    );
    const occupied = p.sourceScene.objects[0]!.cell;
    expect(() =>
      applyEdit(p.sourceScene, { kind: 'add', shape: 'ring', colour: 'red', size: 'small', cell: occupied }, cfg, new Rng(0)),
    ).toThrow(/is occupied/);
    expect(() =>
      applyEdit(p.sourceScene, { kind: 'add', shape: 'ring', colour: 'red', size: 'small', cell: 'nowhere' }, cfg, new Rng(0)),
    ).toThrow(/cell must be one of/);
  });
});

describe('InterleavedDataset', () => {
  const ds = new InterleavedDataset({ seed: 5, imageSize: 32, minSentences: 3, maxSentences: 5 });

  it('alternates sentences and images of the scene each sentence leaves', () => {
    for (let i = 0; i < 20; i++) {
      const d = ds.sample(i);
      expect(d.sentences.length).toBeGreaterThanOrEqual(1);
      expect(d.sentences.length).toBeLessThanOrEqual(5);
      expect(d.segments.map((s) => s.type)).toEqual(d.sentences.flatMap(() => ['text', 'image']));
      expect(d.text.split('<image>').length - 1).toBe(d.sentences.length);
      d.scenes.forEach((s, k) => expect(Array.from(d.images[k]!)).toEqual(Array.from(renderScene(s))));
      for (const s of d.sentences.slice(1)) expect(s).toMatch(/^then .*\.$/);
      expect(d.sentences[0]).toMatch(/^an? .* (in|on|at) the .*\.$/);
      for (let k = 1; k < d.scenes.length; k++) expect(d.scenes[k]).not.toEqual(d.scenes[k - 1]);
    }
    const a = ds.sample(3);
    expect(new InterleavedDataset({ seed: 5, imageSize: 32, minSentences: 3, maxSentences: 5 }).sample(3).text).toBe(a.text);
  });

  it('rejects bad input', () => {
    expect(() => new InterleavedDataset({ minSentences: 0 })).toThrow(/minSentences must be an integer >= 1, got 0/);
    expect(() => new InterleavedDataset({ minSentences: 3, maxSentences: 2 })).toThrow(
      /maxSentences must be an integer in \[minSentences \(3\), 16\], got 2/,
    );
    expect(() => new InterleavedDataset({ imageToken: '' })).toThrow(/imageToken must be a non-empty string/);
    expect(() => new InterleavedDataset({ kinds: [] })).toThrow(/kinds must be a non-empty array/);
    expect(() => ds.sample(-2)).toThrow(/index must be a non-negative integer, got -2/);
  });
});
