/**
 * mio.any-to-any: the tiny preset end to end (every metric named and in range, no tensor left behind
 * by a second run), the edit metric on hand-made cases rendered by @mmlm/data, the story and clip
 * scorers, the held-out splits, and bad settings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng, tf } from '@mmlm/core';
import { type ExperimentResult, runExperimentInline } from '@mmlm/core/experiment';
import { applyEdit, renderScene, type Scene, ShapeAnalyzer, type ShapesConfig, seenHeldOutSets } from '@mmlm/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANY_TO_ANY_SETTINGS,
  anyToAnyExperiment,
  anyToAnySchedule,
  anyToAnySettings,
  anyToAnyWorld,
  clipOutcome,
  type EditRequest,
  editOutcome,
  editScores,
  experiments,
  parseNarration,
  scoreEdit,
  scoreStory,
  sentenceWords,
} from '../src/experiments/index.js';

const root = mkdtempSync(join(tmpdir(), 'mio-any-to-any-test-'));
let first: ExperimentResult;
let second: ExperimentResult;
let tensors: { before: number; after: number };

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
  first = await runExperimentInline(anyToAnyExperiment, { preset: 'tiny', seed: 0, outDir: join(root, 'seed0'), log: () => {} });
  const before = tf.memory().numTensors;
  second = await runExperimentInline(anyToAnyExperiment, { preset: 'tiny', seed: 1, outDir: join(root, 'seed1'), log: () => {} });
  tensors = { before, after: tf.memory().numTensors };
}, 180_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SETS = ['Seen', 'HeldOut'];
const FRACTIONS = [
  'editSuccess',
  'editKeptRest',
  'editRecolour',
  'editReshape',
  'editResize',
  'editCopySource',
  'editMemoriser',
  'editCeiling',
  'editOracle',
  'storyTextAccuracy',
  'storyImageMatch',
  'storyCoherent',
  'storyMemoriser',
  'clipObject',
  'clipMotion',
  'clipAccuracy',
  'clipMemoriser',
  'imageReadBack',
];

describe('mio.any-to-any at tiny', () => {
  it('is registered with tiny, small and small-mlp presets', () => {
    expect(experiments.map((e) => e.id)).toContain('mio.any-to-any');
    expect(Object.keys(anyToAnyExperiment.presets).sort()).toEqual(['small', 'small-mlp', 'tiny']);
  });

  it('reports every metric on seen and held-out items, each in range', () => {
    for (const r of [first, second]) {
      const m = r.metrics;
      const num = (k: string) => {
        const v = m[k];
        expect(typeof v, `${k} = ${v}`).toBe('number');
        expect(Number.isFinite(v as number), `${k} = ${v}`).toBe(true);
        return v as number;
      };
      for (const set of SETS) {
        for (const k of FRACTIONS) {
          const v = num(`${k}${set}`);
          expect(v >= 0 && v <= 1, `${k}${set} = ${v}`).toBe(true);
        }
        expect(num(`storySegments${set}`)).toBeGreaterThanOrEqual(1);
        expect(num(`storySegments${set}`)).toBeLessThanOrEqual(ANY_TO_ANY_SETTINGS.tiny.maxStorySegments);
        // returning the source unchanged never edits it
        expect(num(`editCopySource${set}`)).toBe(0);
      }
      // seen clip keys are training keys, held-out ones are not
      expect(num('clipMemoriserSeen')).toBe(1);
      expect(num('clipMemoriserHeldOut')).toBe(0);
      for (const k of ['finalLoss', 'trainSeconds', 'secondsPerStep', 'evalSeconds']) expect(num(k)).toBeGreaterThan(0);
      expect(r.tables?.[0]?.rows.length).toBe(6);
      expect(r.tables?.[1]?.rows.length).toBe(2);
      expect(r.summary).toContain('no difference is called here');
    }
  });

  it('leaves the tensor count as it found it over a second run', () => {
    expect(tensors.after).toBe(tensors.before);
  });

  it('aggregates seeds into a claim table with verdicts against the ceilings', () => {
    const agg = anyToAnyExperiment.aggregate!([first, second], [0, 1]);
    expect(agg.tables?.[0]?.rows.length).toBe(14);
    expect(agg.tables?.[0]?.rows[0]?.[2]).toMatch(/ ± /);
    expect(agg.summary).toMatch(/editing success: model .* vs retrieval memoriser/);
    expect(agg.summary).toMatch(/editing success: model .* vs memoriser ceiling/);
    const one = anyToAnyExperiment.aggregate!([first], [0]);
    expect(one.summary).toMatch(/one seed, cannot judge/);
  });
});

describe('the edit metric on real renders', () => {
  const sets = seenHeldOutSets({ seed: 3, imageSize: 16, minObjects: 1, maxObjects: 1 }, { train: 8, seen: 0, heldOut: 0 });
  const cfg: ShapesConfig = sets.config;
  const analyzer = new ShapeAnalyzer(cfg);
  // a scene the analyzer reads right, so the cases test the metric, not the analyzer
  const scene: Scene = sets.train
    .map((s) => s.scene)
    .find((sc) => {
      const o = analyzer.analyze(renderScene(sc, { antialias: cfg.antialias })).objects;
      const t = sc.objects[0]!;
      return o.length === 1 && o[0]!.shape === t.shape && o[0]!.colour === t.colour && o[0]!.size === t.size;
    })!;
  const src = scene.objects[0]!;
  const render = (sc: Scene) => renderScene(sc, { antialias: cfg.antialias });
  const newColour = (['red', 'blue', 'green'] as const).find((c) => c !== src.colour)!;
  const newShape = (['circle', 'square', 'ring'] as const).find((s) => s !== src.shape)!;
  const req: EditRequest = {
    source: { size: src.size, colour: src.colour, shape: src.shape, cell: src.cell },
    kind: 'recolour',
    value: newColour,
  };

  it('scores 1 for the right edit, 0 for the unchanged source and 0 for a wrong attribute changed', () => {
    expect(scene).toBeDefined();
    const right = render(applyEdit(scene, { kind: 'recolour', target: 0, colour: newColour }, cfg, new Rng(1)));
    const wrong = render(applyEdit(scene, { kind: 'reshape', target: 0, shape: newShape }, cfg, new Rng(1)));
    expect(scoreEdit(analyzer, right, req)).toEqual({ attribute: true, kept: true, success: true });
    expect(scoreEdit(analyzer, render(scene), req)).toEqual({ attribute: false, kept: true, success: false });
    expect(scoreEdit(analyzer, wrong, req)).toEqual({ attribute: false, kept: false, success: false });
    // the right value but another attribute changed too is no success either
    const both = render(
      applyEdit(
        applyEdit(scene, { kind: 'recolour', target: 0, colour: newColour }, cfg, new Rng(1)),
        { kind: 'reshape', target: 0, shape: newShape },
        cfg,
        new Rng(2),
      ),
    );
    expect(scoreEdit(analyzer, both, req)).toEqual({ attribute: true, kept: false, success: false });
    const s = editScores(
      [req, req, req],
      [right, render(scene), wrong].map((im) => scoreEdit(analyzer, im, req)),
    );
    expect(s.success).toBeCloseTo(1 / 3);
    expect(s.keptRest).toBeCloseTo(2 / 3);
    expect(s.attribute).toEqual({ recolour: 1 / 3, reshape: null, resize: null });
  });

  it('counts an image with no object or two objects as failing', () => {
    expect(editOutcome([], req).success).toBe(false);
    const o = { ...req.source, colour: newColour, x: 0.5, y: 0.5 };
    expect(editOutcome([o, o], req)).toEqual({ attribute: false, kept: false, success: false });
    expect(editOutcome([o], req).success).toBe(true);
  });

  it('names the expected kinds for a bad request', () => {
    expect(() => editOutcome([], { ...req, kind: 'move' as never })).toThrow(/kind must be one of recolour, reshape, resize, got "move"/);
    expect(() => editScores([req], [])).toThrow(/expected equal non-empty lists, got 1 requests and 0 outcomes/);
  });
});

describe('the story and clip scorers', () => {
  const start = { size: 'large', colour: 'red', shape: 'circle' } as const;
  const obj = (size: string, colour: string, shape: string) => ({ size, colour, shape, cell: 'middle', x: 0.5, y: 0.5 }) as never;

  it('applies narrations to the object the story names', () => {
    expect(parseNarration(sentenceWords('then the circle turns blue.'), start)).toEqual({
      next: { ...start, colour: 'blue' },
      valid: true,
    });
    expect(parseNarration(sentenceWords('then the red circle becomes a square.'), start)?.next.shape).toBe('square');
    expect(parseNarration(sentenceWords('then the circle becomes small.'), start)?.valid).toBe(true);
    expect(parseNarration(sentenceWords('then the square turns blue.'), start)?.valid).toBe(false); // names another object
    expect(parseNarration(sentenceWords('then the circle turns red.'), start)?.valid).toBe(false); // no change
    expect(parseNarration(sentenceWords('a large red circle.'), start)).toBeNull();
  });

  it('scores images against the state the text names, and a story with nothing as a failure', () => {
    const good = scoreStory(start, [
      { words: sentenceWords('then the circle turns blue.'), objects: [obj('large', 'blue', 'circle')] },
      { words: sentenceWords('then the circle becomes small.'), objects: [obj('small', 'blue', 'circle')] },
    ]);
    expect(good).toEqual({ segments: 2, validSentences: 2, matchedImages: 2, coherent: true });
    const bad = scoreStory(start, [{ words: sentenceWords('then the circle turns blue.'), objects: [obj('large', 'red', 'circle')] }]);
    expect(bad).toEqual({ segments: 1, validSentences: 1, matchedImages: 0, coherent: false });
    expect(scoreStory(start, [])).toEqual({ segments: 1, validSentences: 0, matchedImages: 0, coherent: false });
  });

  it('splits a clip description into object and motion', () => {
    const c = { colour: 'red', shape: 'circle', direction: 'left' } as never;
    expect(clipOutcome(sentenceWords('a red circle moves left'), c)).toEqual({ object: true, motion: true, all: true });
    expect(clipOutcome(sentenceWords('a red circle moves right'), c)).toEqual({ object: true, motion: false, all: false });
    expect(clipOutcome(sentenceWords('a blue circle moves left'), c)).toEqual({ object: false, motion: true, all: false });
    expect(clipOutcome(['red'], c)).toEqual({ object: false, motion: false, all: false });
  });
});

describe('the world and the settings', () => {
  it('holds out edit transitions and clip keys, and keeps every edit target a training combination', () => {
    const st = ANY_TO_ANY_SETTINGS.tiny;
    const w = anyToAnyWorld(0, st.world);
    const trainKeys = new Set(w.edits.train.map((e) => e.key));
    expect(w.edits.seen.every((e) => trainKeys.has(e.key))).toBe(true);
    expect(w.edits.heldOut.some((e) => trainKeys.has(e.key))).toBe(false);
    expect(w.edits.heldOut.map((e) => e.kind)).toEqual(['recolour', 'reshape', 'resize']);
    for (const e of [...w.edits.train, ...w.edits.seen, ...w.edits.heldOut])
      expect(w.trainCombos.has(`${e.target.size} ${e.target.colour} ${e.target.shape}`)).toBe(true);
    const clipKeys = new Set(w.clips.train.map((c) => c.key));
    expect(w.clips.seen.every((c) => clipKeys.has(c.key))).toBe(true);
    expect(w.clips.heldOut.some((c) => clipKeys.has(c.key))).toBe(false);
    const held = new Set(w.sets.heldOut.map((s) => s.key));
    expect(w.stories.heldOut.length).toBe(st.world.evalStories);
    expect(held.size).toBeGreaterThan(0);
    const sch = anyToAnySchedule(st);
    expect(sch.stages).toHaveLength(1);
    expect(sch.stages[0]!.loss).toBe('assistantOnly');
    expect(sch.stages[0]!.format).toBe('chat');
    expect(Object.keys(sch.stages[0]!.slots)).toEqual(['imageEditing', 'visualStory', 'videoCaption', 'imageGeneration', 'imageCaption']);
  });

  it('rejects bad settings, naming expected and actual', () => {
    const ok = structuredClone(ANY_TO_ANY_SETTINGS.tiny);
    expect(() => anyToAnySettings({ ...ok, train: { ...ok.train, minLr: 1 } })).toThrow(/minLr.*expected at most train\.lr = 0\.003/);
    expect(() => anyToAnySettings({ ...ok, imageCodes: { ...ok.imageCodes, imageSize: 32 } })).toThrow(/imageSize.*expected 16/);
    expect(() => anyToAnySettings({ ...ok, world: { ...ok.world, heldOutEditFraction: 1.5 } })).toThrow(/heldOutEditFraction/);
    expect(() => anyToAnySettings({ ...ok, train: { ...ok.train, slots: { ...ok.train.slots, imageEditing: 0 } } })).toThrow(
      /imageEditing/,
    );
    expect(() => anyToAnySettings({ ...ok, extra: 1 } as never)).toThrow(/extra/);
  });

  it('refuses an unknown preset by name', async () => {
    await expect(
      runExperimentInline(anyToAnyExperiment, { preset: 'huge', seed: 0, outDir: join(root, 'huge'), log: () => {} }),
    ).rejects.toThrow(/unknown preset "huge"; expected one of tiny, small/);
  });
});
