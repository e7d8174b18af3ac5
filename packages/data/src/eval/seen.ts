/**
 * Evaluation sets that tell memorising from generalising, and the memoriser ceiling.
 *
 * A generation or captioning metric on one mixed prompt set mixes two questions: did the model learn
 * what it was shown, and does it compose attributes it never saw together. So every metric is taken
 * on two sets of Shapes samples, both disjoint from the training images:
 *   seen      new renders (new jitter and noise) of scenes whose key (the objects' shape, colour,
 *             size and cell, see `sceneKey`) is among the training images' keys;
 *   held-out  scenes whose key no training image has: the `val` split (attribute combinations the
 *             split rule keeps out of train) interleaved with the `heldout` split (scenes with a
 *             (shape, colour) pair never shown in train, val or test).
 * The memoriser ceiling of a held-out set is the score a perfect memoriser gets: for each prompt,
 * whether the best-matching training image satisfies it (as read by the ShapeAnalyzer); for
 * captioning, whether the best-matching training caption is judged correct for the image's scene.
 * A held-out figure above the ceiling is evidence of composition; at or below it, a model may only
 * be retrieving.
 */

import type { ShapesConfig } from '../images/config.js';
import { ShapesDataset, type ShapesSample } from '../images/dataset.js';
import { parseCaption, type SceneQuery } from '../images/language.js';
import type { Scene } from '../images/scene.js';
import { ShapeAnalyzer } from './analyzer.js';
import { matchQuery, type ObservedObject } from './generation.js';

export interface SeenHeldOutOptions {
  /** Training images: items 0 .. train - 1 of the train split. */
  train: number;
  /** Size of the seen set (new renders of training keys). */
  seen: number;
  /** Size of the held-out set (keys absent from training). */
  heldOut: number;
  /** Draws tried per requested seen sample before giving up (a train split whose keys are rare). Default 50. */
  maxDrawsPerSample?: number;
}

export interface SeenHeldOutSets {
  config: ShapesConfig;
  train: ShapesSample[];
  /** New renders of keys present among `train`. */
  seen: ShapesSample[];
  /** Scenes whose key is not among `train`'s (val and heldout splits, alternating). */
  heldOut: ShapesSample[];
  /** Distinct scene keys of the training images. */
  trainKeys: Set<string>;
}

function positiveInt(what: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
    throw new Error(`seenHeldOutSets: ${what} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The training images and the seen / held-out evaluation sets of one Shapes world (see the file
 * comment). Deterministic in the config's seed; the seen set takes train-split items after the
 * training images, skipping keys the training images lack.
 */
export function seenHeldOutSets(config: Partial<ShapesConfig>, o: SeenHeldOutOptions): SeenHeldOutSets {
  const nTrain = positiveInt('train', o?.train);
  const nSeen = positiveInt('seen', o.seen, 0);
  const nHeld = positiveInt('heldOut', o.heldOut, 0);
  const maxDraws = positiveInt('maxDrawsPerSample', o.maxDrawsPerSample ?? 50);
  const trainSet = new ShapesDataset({ ...config, split: 'train' });
  const train = [...trainSet.iterate(0, nTrain)];
  const trainKeys = new Set(train.map((s) => s.key));
  const seen: ShapesSample[] = [];
  const limit = nTrain + nSeen * maxDraws;
  for (let i = nTrain; seen.length < nSeen; i++) {
    if (i >= limit)
      throw new Error(
        `seenHeldOutSets: found only ${seen.length} of ${nSeen} seen samples in ${limit - nTrain} draws; train more images (have ${nTrain}, ${trainKeys.size} distinct keys)`,
      );
    const s = trainSet.sample(i);
    if (trainKeys.has(s.key)) seen.push(s);
  }
  const val = new ShapesDataset({ ...trainSet.config, split: 'val' });
  const held = trainSet.config.heldOut.length > 0 ? new ShapesDataset({ ...trainSet.config, split: 'heldout' }) : null;
  const heldOut: ShapesSample[] = [];
  for (let i = 0; heldOut.length < nHeld; i++) {
    const from = held && i % 2 === 1 ? held : val;
    const s = from.sample(Math.floor(i / (held ? 2 : 1)));
    if (trainKeys.has(s.key)) throw new Error(`seenHeldOutSets: held-out scene ${s.key} is a training key (split rule broken)`);
    heldOut.push(s);
  }
  return { config: trainSet.config, train, seen, heldOut, trainKeys };
}

/** One entry per distinct training key: the objects of its first training image as the analyzer reads them. */
export function memoryOf(train: readonly ShapesSample[], analyzer: ShapeAnalyzer): ObservedObject[][] {
  const byKey = new Map<string, ObservedObject[]>();
  for (const s of train) if (!byKey.has(s.key)) byKey.set(s.key, analyzer.analyze(s.image).objects);
  return [...byKey.values()];
}

/**
 * Generation memoriser ceiling: the fraction of prompts for which some remembered training image
 * (`memoryOf`) satisfies every attribute (`matchQuery(...).overall`).
 */
export function generationCeiling(prompts: readonly string[], memory: readonly ObservedObject[][]): number {
  if (prompts.length === 0) throw new Error('generationCeiling: expected at least one prompt');
  if (memory.length === 0) throw new Error('generationCeiling: expected at least one remembered training image');
  let hit = 0;
  for (const p of prompts) {
    const q = parseCaption(p);
    if (memory.some((objs) => matchQuery(q, objs).overall)) hit++;
  }
  return hit / prompts.length;
}

/**
 * Captioning memoriser ceiling: the fraction of scenes for which some training caption is judged
 * correct (every attribute it states holds, exact captions name every object).
 */
export function captionCeiling(scenes: readonly Scene[], trainCaptions: readonly string[]): number {
  if (scenes.length === 0) throw new Error('captionCeiling: expected at least one scene');
  const queries: SceneQuery[] = [];
  const seenCaption = new Set<string>();
  for (const c of trainCaptions) {
    if (seenCaption.has(c)) continue;
    seenCaption.add(c);
    try {
      queries.push(parseCaption(c));
    } catch {
      // a training caption outside the grammar cannot be judged correct for any scene
    }
  }
  if (queries.length === 0) throw new Error('captionCeiling: no training caption is in the caption grammar');
  let hit = 0;
  for (const s of scenes) if (queries.some((q) => matchQuery(q, s.objects).overall)) hit++;
  return hit / scenes.length;
}

/** The objects an analysis found as a comparable key: (shape, colour, size, cell) of each, sorted. */
export function objectsKey(analysis: { objects: readonly ObservedObject[] }): string {
  return analysis.objects
    .map((o) => `${o.shape}/${o.colour}/${o.size}/${o.cell}`)
    .sort()
    .join(',');
}

/**
 * Tokenizer read-back: the fraction of reconstructions the analyzer reads as the same objects
 * (shape, colour, size, cell; `objectsKey`) as their originals.
 */
export function analyzerAgreement(originals: readonly Float32Array[], recon: readonly Float32Array[], analyzer: ShapeAnalyzer): number {
  if (originals.length !== recon.length || originals.length === 0)
    throw new Error(
      `analyzerAgreement: expected equal non-empty lists, got ${originals.length} originals and ${recon.length} reconstructions`,
    );
  return recon.filter((r, i) => objectsKey(analyzer.analyze(r)) === objectsKey(analyzer.analyze(originals[i]!))).length / recon.length;
}

/** Binomial standard error sqrt(p (1 - p) / n) of a fraction p over n items. */
export function binomialSE(p: number, n: number): number {
  if (!(n > 0)) throw new Error(`binomialSE: n must be > 0, got ${n}`);
  return Math.sqrt((p * (1 - p)) / n);
}

/** One evaluation set: images, their scenes, the prompt caption of each and all reference captions. */
export interface PromptSet {
  images: Float32Array[];
  scenes: Scene[];
  captions: string[];
  references: string[][];
}

/**
 * The image-token comparison's data (the lab's `lab.image-tokens` and the browser page's copy):
 * training pairs, a seen and a held-out prompt set, and the memoriser ceilings of each. Its
 * `imageSize` / `train` / `evalCaptions` fields are core's `ImageTextData`, what an image-token arm
 * trains on.
 */
export interface ImageTextEvalSet {
  imageSize: number;
  train: { images: Float32Array[]; captions: string[] };
  /** Every caption an arm will be asked to generate from (seen, then held-out). */
  evalCaptions: string[];
  seen: PromptSet;
  heldOut: PromptSet;
  /** Memoriser ceilings of the held-out set (and of the seen set, 1 by construction for generation). */
  ceilings: { generationHeldOut: number; captionHeldOut: number; generationSeen: number; captionSeen: number };
  /** Distinct scene keys among the training images. */
  trainKeys: number;
  /** The resolved Shapes config (the analyzer is built from it so grid and size threshold match). */
  config: ShapesConfig;
}

function promptSet(samples: readonly ShapesSample[]): PromptSet {
  return {
    images: samples.map((s) => s.image),
    scenes: samples.map((s) => s.scene),
    captions: samples.map((s) => s.caption),
    references: samples.map((s) => s.captions.map((c) => c.text)),
  };
}

/** seenHeldOutSets of one-to-maxObjects-object Shapes scenes, as prompt sets with their memoriser ceilings. */
export function loadImageTextData(o: {
  imageSize: number;
  maxObjects: number;
  trainImages: number;
  /** Size of each of the seen and held-out sets. */
  evalImages: number;
  seed: number;
}): ImageTextEvalSet {
  const sets = seenHeldOutSets(
    { imageSize: o.imageSize, minObjects: 1, maxObjects: o.maxObjects, seed: o.seed },
    { train: o.trainImages, seen: o.evalImages, heldOut: o.evalImages },
  );
  const memory = memoryOf(sets.train, new ShapeAnalyzer(sets.config));
  const trainCaptions = sets.train.map((s) => s.caption);
  const seen = promptSet(sets.seen);
  const heldOut = promptSet(sets.heldOut);
  return {
    imageSize: o.imageSize,
    train: { images: sets.train.map((s) => s.image), captions: trainCaptions },
    evalCaptions: [...seen.captions, ...heldOut.captions],
    seen,
    heldOut,
    ceilings: {
      generationHeldOut: generationCeiling(heldOut.captions, memory),
      captionHeldOut: captionCeiling(heldOut.scenes, trainCaptions),
      generationSeen: generationCeiling(seen.captions, memory),
      captionSeen: captionCeiling(seen.scenes, trainCaptions),
    },
    trainKeys: sets.trainKeys.size,
    config: sets.config,
  };
}
