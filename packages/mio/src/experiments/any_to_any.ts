/**
 * MIO experiment 3 (issue 16): any-to-any. MIO's claim (§2.4, Table 10; brief §2.3-2.4) is one
 * decoder over text, image and video tokens that, after SFT, does interleaved image-text generation
 * (visual storytelling), instructional image editing and video understanding with the same weights.
 *
 * One decoder per seed is trained by the staged runner on one SFT stage (ChatML with MIO's system
 * prompts, loss on assistant turns only) over a task mix on 16 px one-object Shapes:
 *   imageEditing     source image + instruction ("make the circle blue") -> the edited image;
 *   visualStory      first sentence + image + "Continue the story:" -> sentence, image, sentence, image;
 *   videoCaption     the video-description prompt + a clip (frames as image blocks) -> its description;
 *   imageGeneration  and imageCaption as auxiliary slots (they teach the codes of each combination).
 * Images are ImageCodes codes (trained first, frozen), read back through its pixel decoder by the
 * ShapeAnalyzer of @mmlm/data.
 *
 * Evaluated after training on seen and held-out items apart:
 *   editing   held-out = an edit transition (source size/colour/shape, edit kind and value) never in
 *             training, both its source and its target combination being training combinations;
 *             editSuccess = the analyzer reads one object whose requested attribute has the
 *             requested value AND whose other attributes (and cell) are the source's; per-attribute
 *             accuracy (recolour / reshape / resize: the requested attribute alone) and keptRest.
 *             Ceilings: copy-source (returning the source unchanged; 0 when the analyzer reads it
 *             right), the retrieval memoriser (the target of the best-matching training pair: same
 *             instruction first, then the most source attributes shared), the memoriser ceiling (some
 *             training target satisfies the request) and the tokenizer oracle (the true target
 *             through encode + decode);
 *   story     held-out = stories starting from a combination no training image shows; the model
 *             continues freely (text constrained to words and `<image>`, image blocks to N codes):
 *             storyTextAccuracy = generated sentences that narrate a valid edit of the current object,
 *             storyImageMatch = generated images the analyzer reads as the object the story text names
 *             (the start, changed by each narrated edit), storyCoherent = stories with every sentence
 *             and image right. Ceiling: the best training continuation replayed from the same start;
 *   clips     held-out = (colour, shape, direction) never in training clips; clipObject = colour and
 *             shape right (what each single frame shows), clipMotion = direction right (what only the
 *             frames together show), clipAccuracy = the whole description right. Ceiling: some training
 *             description is exactly right (0 on held-out by construction).
 * Claim tables over seeds in `aggregate` (mean ± std, a verdict only beyond two standard errors).
 */
import { join } from 'node:path';
import { loadModule, parseConfig, Rng, saveModule, stableHash32, TransformerDecoder } from '@mmlm/core';
import {
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  formatFixed,
  parsePresets,
  type SubrunContext,
  seedCell,
  seedsHeader,
  seedValues,
  seedVerdict,
  subrunDir,
  type Table,
} from '@mmlm/core/experiment';
import {
  analyzerAgreement,
  applyEdit,
  ClipsDataset,
  COLOUR_NAMES,
  type ColourName,
  editInstruction,
  editNarration,
  type ObservedObject,
  objectInCell,
  renderScene,
  type Scene,
  type SceneEdit,
  type SeenHeldOutSets,
  SHAPE_NAMES,
  ShapeAnalyzer,
  type ShapeName,
  type ShapesSample,
  SIZE_NAMES,
  type SizeName,
  sampleEdit,
  seenHeldOutSets,
  WordTokenizer,
} from '@mmlm/data';
import { z } from 'zod';
import { type ChatTurn, chatExample, MIO_CHAT_TEMPLATE, MIO_STD_MODE_SYSTEM, MIO_VOICE_MODE_SYSTEM } from '../chat.js';
import { greedyGenerate, imageBlockConstraint } from '../generate.js';
import { CAUSAL_IMAGE_CODES, ImageCodes, ImageCodesConfigSchema, ImageCodesTrainSchema, trainImageCodes } from '../image_codes.js';
import { type CorpusClip, type CorpusEdit, type CorpusStory, type MioCorpusPools, mioTaskData, SFT_TOY_PROMPTS } from '../providers.js';
import { type RunStepEvent, runSchedule } from '../runner.js';
import { schedule as parseSchedule, type Schedule, type Stage, schedulePreset } from '../schedule.js';
import { type MioDocument, MultimodalTokenizer } from '../vocab.js';
import { sizesCaption, TOY_SPECIAL_TOKENS } from './toy_corpus.js';

const ID = 'mio.any-to-any';
const int = () => z.number().int();

/** The Stage-IV tasks the model trains on: the three evaluated ones, then two auxiliary ones. */
export const ANY_TO_ANY_TASKS = ['imageEditing', 'visualStory', 'videoCaption', 'imageGeneration', 'imageCaption'] as const;

const SettingsSchema = z
  .strictObject({
    world: z.strictObject({
      /** Training Shapes images (imageCaption / imageGeneration, and the sources of training edits and stories). */
      trainImages: int().min(1),
      /** Images per evaluation set (seen: new renders of training combinations; held-out: new combinations). */
      evalImages: int().min(1),
      trainEdits: int().min(1),
      /** Edits per evaluation set (kinds in turn: recolour, reshape, resize). */
      evalEdits: int().min(1),
      /** Share of edit transitions (source combination, kind, value) held out of training. */
      heldOutEditFraction: z.number().gt(0).lt(1),
      trainStories: int().min(1),
      evalStories: int().min(1),
      trainClips: int().min(1),
      evalClips: int().min(1),
      /** Frames per clip (MIO: 4-8 per video-text pair). */
      clipFrames: int().min(2).max(8),
      /** Share of clip keys (colour, shape, direction) held out of training. */
      heldOutClipFraction: z.number().gt(0).lt(1),
    }),
    imageCodes: ImageCodesConfigSchema,
    imageTrain: ImageCodesTrainSchema,
    lm: z.strictObject({ dim: int().min(1), numLayers: int().min(1), numHeads: int().min(1) }),
    train: z.strictObject({
      steps: int().min(1),
      /** Sequences per step of each task (the three evaluated tasks need at least one). */
      slots: z.strictObject({
        imageEditing: int().min(1),
        visualStory: int().min(1),
        videoCaption: int().min(1),
        imageGeneration: int().min(0),
        imageCaption: int().min(0),
      }),
      /** Packed row length and the decoder's maxSeqLen. */
      seqLen: int().min(32),
      /** Peak and floor lr (the paper's 3e-5 is for a 6B model), warmup share of the steps. */
      lr: z.number().positive(),
      minLr: z.number().nonnegative(),
      warmupRatio: z.number().min(0).max(1),
    }),
    /** Sentence + image segments a generated story may hold. */
    maxStorySegments: int().min(1).max(4),
    /** Words per generated sentence or clip description, at most. */
    maxSentenceTokens: int().min(4),
    valSamplesPerTask: int().min(1),
  })
  .superRefine((s, ctx) => {
    if (s.train.minLr > s.train.lr)
      ctx.addIssue({ code: 'custom', path: ['train', 'minLr'], message: `expected at most train.lr = ${s.train.lr}` });
    if (s.imageCodes.imageSize !== 16)
      ctx.addIssue({
        code: 'custom',
        path: ['imageCodes', 'imageSize'],
        message: `expected 16 (one object per image: the edits and stories change the only object)`,
      });
  });
export type AnyToAnySettings = z.infer<typeof SettingsSchema>;
export type AnyToAnySettingsInput = z.input<typeof SettingsSchema>;

/** Validated settings; errors name each bad field, what it expected and what it got. */
export function anyToAnySettings(input: AnyToAnySettingsInput): AnyToAnySettings {
  return parseConfig(`${ID} settings`, SettingsSchema, input);
}

/**
 * `small-mlp`: the any-to-any recipe with the first image codes (MLP encoder), the preset called
 * `small` when its seeds 0-2 ran. Time per seed: the first recipe's seed-0 run (ImageCodes hidden
 * 256, 1,500 steps) took 1,079 s on the 2-core machine shared with another run; the estimate from
 * timed steps before it (scripts/any-to-any-time.ts) was 27 min: decoder 0.38 s per step (16
 * sequences of at most 92 tokens in 5.7 packed rows of 256), evaluation at most 5.4 ms per item,
 * world + corpus coding 0.6 ms per item. ImageCodes at hidden 512 for 6,000 steps adds about 2-4 min.
 */
const SMALL_MLP = {
  world: {
    trainImages: 2000,
    evalImages: 128,
    trainEdits: 1000,
    evalEdits: 96,
    heldOutEditFraction: 0.2,
    trainStories: 500,
    evalStories: 64,
    trainClips: 400,
    evalClips: 64,
    clipFrames: 4,
    heldOutClipFraction: 0.2,
  },
  // ImageCodes hidden 512 and 6,000 steps (was 256 and 1,500, read back 0.71 / 0.32 seen / held-out
  // in the first seed-0 run): scripts/image-codes-recipe.ts measured train / seen / held-out read-back
  // 0.711 / 0.672 / 0.145 for the old recipe on 2,000 Shapes, 1.000 / 0.988 / 0.590 at 6,000 steps,
  // 1.000 / 0.996 / 0.863 with hidden 512 as well (seed 0; package README, "ImageCodes: the recipe")
  imageCodes: { encoder: 'mlp', tokens: 8, codes: 64, dim: 16, hidden: 512 },
  imageTrain: { steps: 6000, batchSize: 64, lr: 2e-3, warmup: 50 },
  lm: { dim: 128, numLayers: 2, numHeads: 4 },
  train: {
    steps: 4000,
    slots: { imageEditing: 5, visualStory: 4, videoCaption: 3, imageGeneration: 2, imageCaption: 2 },
    seqLen: 256,
    lr: 1e-3,
    minLr: 1e-4,
    warmupRatio: 0.03,
  },
  maxStorySegments: 2,
  maxSentenceTokens: 10,
  valSamplesPerTask: 8,
} satisfies AnyToAnySettingsInput;

export const ANY_TO_ANY_SETTINGS = parsePresets(
  `${ID} settings`,
  {
    tiny: {
      world: {
        trainImages: 48,
        evalImages: 4,
        trainEdits: 12,
        evalEdits: 3,
        heldOutEditFraction: 0.25,
        trainStories: 6,
        evalStories: 2,
        trainClips: 6,
        evalClips: 2,
        clipFrames: 2,
        heldOutClipFraction: 0.25,
      },
      imageCodes: { tokens: 4, codes: 16, dim: 8, hidden: 32, qformerWidth: 16, qformerLayers: 1, qformerHeads: 2, qformerFfn: 32 },
      imageTrain: { steps: 5, batchSize: 16, warmup: 1, initImages: 32, logEvery: 5 },
      lm: { dim: 16, numLayers: 1, numHeads: 2 },
      train: {
        steps: 3,
        slots: { imageEditing: 1, visualStory: 1, videoCaption: 1, imageGeneration: 1, imageCaption: 1 },
        seqLen: 256,
        lr: 3e-3,
        minLr: 3e-4,
        warmupRatio: 0.03,
      },
      maxStorySegments: 2,
      maxSentenceTokens: 8,
      valSamplesPerTask: 2,
    },
    // MIO's image tokens as SEED-style causal 1-D codes (ImageCodes encoder 'causal', as mio.staged's
    // small; read-back 1.000 / 0.957 / 0.453 train / seen / held-out at seed 0, scripts/image-codes-recipe.ts);
    // otherwise small-mlp. Seeds 0-2 took 2,108-2,143 s each beside mio.staged (45 min is the bound).
    small: { ...SMALL_MLP, imageCodes: CAUSAL_IMAGE_CODES },
    'small-mlp': SMALL_MLP,
  } satisfies Record<'tiny' | 'small' | 'small-mlp', AnyToAnySettingsInput>,
  () => SettingsSchema,
);

// ---------------------------------------------------------------------------------------------
// The world: images, edit pairs, stories and clips with seen / held-out splits

/** The attributes an edit or a story changes. */
export interface ObjectAttrs {
  size: SizeName;
  colour: ColourName;
  shape: ShapeName;
}
export type EditKind3 = 'recolour' | 'reshape' | 'resize';
const EDIT_KINDS3: readonly EditKind3[] = ['recolour', 'reshape', 'resize'];
const ATTRIBUTE_OF = { recolour: 'colour', reshape: 'shape', resize: 'size' } as const;

/** What an instruction asks of the one object: `kind` sets its attribute to `value`. */
export interface EditRequest {
  /** The source object (truth: its scene), including its cell. */
  source: ObjectAttrs & { cell: string };
  kind: EditKind3;
  value: string;
}

export interface EditItem extends EditRequest {
  sourceImage: Float32Array;
  instruction: string;
  targetImage: Float32Array;
  target: ObjectAttrs;
  /** The transition `size colour shape|kind:value` (the unit of the held-out split). */
  key: string;
}

export interface StoryItem {
  /** First sentence ("a large red circle."), then one narration per edit. */
  sentences: string[];
  /** One image per sentence. */
  images: Float32Array[];
  /** The object of the first image. */
  start: ObjectAttrs;
}

export interface ClipItem {
  frames: Float32Array[];
  /** "a red circle moves right" / "a red circle stays still". */
  description: string;
  colour: ColourName;
  shape: ShapeName;
  direction: string;
  /** `colour shape direction` (the unit of the held-out split). */
  key: string;
}

type Split3<T> = { train: T[]; seen: T[]; heldOut: T[] };

export interface AnyToAnyWorld {
  sets: SeenHeldOutSets;
  trainCombos: Set<string>;
  edits: Split3<EditItem>;
  stories: Split3<StoryItem>;
  clips: Split3<ClipItem>;
}

const comboOf = (o: ObjectAttrs) => `${o.size} ${o.colour} ${o.shape}`;
const attrsOf = (o: ObjectAttrs): ObjectAttrs => ({ size: o.size, colour: o.colour, shape: o.shape });
/** A seeded share of keys, the same for every draw of one seed. */
const heldOutKey = (seed: number, what: string, key: string, fraction: number) =>
  (stableHash32(`${ID}/${what}/${seed}/${key}`) % 10_000) / 10_000 < fraction;

/**
 * The world of one seed (deterministic): 16 px one-object Shapes (`seenHeldOutSets`), edit pairs,
 * stories and clips, each with train, seen and held-out items as the module comment defines them.
 */
export function anyToAnyWorld(seed: number, w: AnyToAnySettings['world']): AnyToAnyWorld {
  const sets = seenHeldOutSets(
    { seed, imageSize: 16, minObjects: 1, maxObjects: 1 },
    { train: w.trainImages, seen: w.evalImages, heldOut: w.evalImages },
  );
  const cfg = sets.config;
  const trainCombos = new Set(sets.train.map((s) => comboOf(s.scene.objects[0]!)));
  const rng = new Rng(seed).fork('mio-any-to-any-world');
  const draws = (what: string, n: number, budget: number, draw: (i: number) => boolean) => {
    let got = 0;
    for (let i = 0; got < n; i++) {
      if (i >= budget)
        throw new Error(
          `${ID}: found only ${got} of ${n} ${what} in ${budget} draws; expected ${n} (train more images or lower the count)`,
        );
      if (draw(i)) got++;
    }
  };

  // ---- edits: a transition is held out by hash; every source and target is a training combination.
  // Evaluation sources are fresh renders (new radius and jitter) of training scenes.
  const editOf = (scene: Scene, image: Float32Array, edit: Extract<SceneEdit, { kind: EditKind3 }>, r: Rng): EditItem | null => {
    const o = scene.objects[0]!;
    const next = applyEdit(scene, edit, cfg, r.fork('apply'));
    const t = next.objects[0]!;
    if (!trainCombos.has(comboOf(t))) return null;
    const value = edit.kind === 'recolour' ? edit.colour : edit.kind === 'reshape' ? edit.shape : edit.size;
    return {
      source: { ...attrsOf(o), cell: o.cell },
      kind: edit.kind,
      value,
      sourceImage: image,
      instruction: editInstruction(scene, edit),
      targetImage: renderScene(next, { antialias: cfg.antialias }),
      target: attrsOf(t),
      key: `${comboOf(o)}|${edit.kind}:${value}`,
    };
  };
  const fresh = (scene: Scene, r: Rng): { scene: Scene; image: Float32Array } => {
    const o = scene.objects[0]!;
    const again: Scene = { ...scene, objects: [objectInCell(cfg, r.fork('render'), attrsOf(o), o.cell)] };
    return { scene: again, image: renderScene(again, { antialias: cfg.antialias }) };
  };
  const randomEdit = (scene: Scene, r: Rng, kinds: readonly EditKind3[]) =>
    sampleEdit(scene, cfg, r.fork('edit'), kinds) as Extract<SceneEdit, { kind: EditKind3 }>;
  const held = (e: EditItem) => heldOutKey(seed, 'edit', e.key, w.heldOutEditFraction);
  const edits: Split3<EditItem> = { train: [], seen: [], heldOut: [] };
  const trainEditOps: { scene: Scene; edit: Extract<SceneEdit, { kind: EditKind3 }> }[] = [];
  draws('training edits', w.trainEdits, w.trainEdits * 50, (i) => {
    const r = rng.fork(`edit-train${i}`);
    const s = sets.train[r.int(0, sets.train.length)]!;
    const edit = randomEdit(s.scene, r, EDIT_KINDS3);
    const e = editOf(s.scene, s.image, edit, r);
    if (!e || held(e)) return false;
    edits.train.push(e);
    trainEditOps.push({ scene: s.scene, edit });
    return true;
  });
  // seen: a training edit's transition on a fresh render of its source
  draws('seen edits', w.evalEdits, w.evalEdits * 50, (i) => {
    const r = rng.fork(`edit-seen${i}`);
    const kind = EDIT_KINDS3[edits.seen.length % 3]!;
    const ops = trainEditOps.filter((x) => x.edit.kind === kind);
    const from = ops.length > 0 && i < w.evalEdits * 25 ? ops : trainEditOps;
    const op = from[r.int(0, from.length)]!;
    const f = fresh(op.scene, r);
    const e = editOf(f.scene, f.image, op.edit, r);
    if (e) edits.seen.push(e);
    return e !== null;
  });
  // held-out: a held-out transition on a fresh render of a training scene (kinds in turn while they last)
  draws('held-out edits', w.evalEdits, w.evalEdits * 500, (i) => {
    const r = rng.fork(`edit-heldOut${i}`);
    const kinds = i < w.evalEdits * 250 ? [EDIT_KINDS3[edits.heldOut.length % 3]!] : EDIT_KINDS3;
    const f = fresh(sets.train[r.int(0, sets.train.length)]!.scene, r);
    const e = editOf(f.scene, f.image, randomEdit(f.scene, r, kinds), r);
    if (!e || !held(e)) return false;
    edits.heldOut.push(e);
    return true;
  });

  // ---- stories: 1 or 2 narrated edits; training states stay among training combinations
  const storyOf = (s: ShapesSample, r: Rng, inTrain: boolean): StoryItem | null => {
    let scene = s.scene;
    const sentences = [`${sizesCaption(s)}.`];
    const images = [s.image];
    const n = r.int(1, 3);
    for (let k = 0; k < n; k++) {
      const edit = sampleEdit(scene, cfg, r.fork(`edit${k}`), EDIT_KINDS3);
      const next = applyEdit(scene, edit, cfg, r.fork(`apply${k}`));
      if (inTrain && !trainCombos.has(comboOf(next.objects[0]!))) return null;
      sentences.push(editNarration(scene, edit));
      scene = next;
      images.push(renderScene(scene, { antialias: cfg.antialias }));
    }
    return { sentences, images, start: attrsOf(s.scene.objects[0]!) };
  };
  const stories: Split3<StoryItem> = { train: [], seen: [], heldOut: [] };
  for (const set of ['train', 'seen', 'heldOut'] as const) {
    const pool = set === 'train' ? sets.train : set === 'seen' ? sets.seen : sets.heldOut;
    const n = set === 'train' ? w.trainStories : w.evalStories;
    draws(`${set} stories`, n, n * 50, (i) => {
      const r = rng.fork(`story-${set}${i}`);
      const st = storyOf(pool[set === 'train' ? r.int(0, pool.length) : i % pool.length]!, r, set === 'train');
      if (st) stories[set].push(st);
      return st !== null;
    });
  }

  // ---- clips: one small object moving (or still); keys held out by hash
  const clipsDs = new ClipsDataset({ seed, imageSize: 16, sizes: ['small'], frames: w.clipFrames, distance: [0.1, 0.2], split: 'train' });
  const clips: Split3<ClipItem> = { train: [], seen: [], heldOut: [] };
  const trainClipKeys = new Set<string>();
  const want = w.trainClips + 2 * w.evalClips;
  draws('clips', want, want * 400, (i) => {
    const c = clipsDs.sample(i);
    const m = c.motions[0]!;
    const key = `${m.colour} ${m.shape} ${m.direction}`;
    const item: ClipItem = { frames: c.frames, description: c.description, colour: m.colour, shape: m.shape, direction: m.direction, key };
    if (heldOutKey(seed, 'clip', key, w.heldOutClipFraction)) {
      if (clips.heldOut.length >= w.evalClips) return false;
      clips.heldOut.push(item);
    } else if (clips.train.length < w.trainClips) {
      clips.train.push(item);
      trainClipKeys.add(key);
    } else {
      if (clips.seen.length >= w.evalClips || !trainClipKeys.has(key)) return false;
      clips.seen.push(item);
    }
    return true;
  });
  return { sets, trainCombos, edits, stories, clips };
}

// ---------------------------------------------------------------------------------------------
// Scoring (pure: analyzer readings and words in, fractions out)

/** One edited image judged against its request: attribute set as asked, the rest kept, both. */
export interface EditOutcome {
  attribute: boolean;
  kept: boolean;
  success: boolean;
}

/**
 * Judges the objects the analyzer read in an edited image against `req`: exactly one object, whose
 * requested attribute equals `req.value` (attribute) and whose other attributes and cell equal the
 * source's (kept); success needs both. No object or several: nothing holds.
 */
export function editOutcome(objects: readonly ObservedObject[], req: EditRequest): EditOutcome {
  if (!EDIT_KINDS3.includes(req.kind))
    throw new Error(`editOutcome: kind must be one of ${EDIT_KINDS3.join(', ')}, got ${JSON.stringify(req.kind)}`);
  if (objects.length !== 1) return { attribute: false, kept: false, success: false };
  const o = objects[0]!;
  const a = ATTRIBUTE_OF[req.kind];
  const attribute = o[a] === req.value;
  const kept = (['size', 'colour', 'shape'] as const).every((k) => k === a || o[k] === req.source[k]) && o.cell === req.source.cell;
  return { attribute, kept, success: attribute && kept };
}

/** editOutcome of an image, read by `analyzer`. */
export function scoreEdit(analyzer: ShapeAnalyzer, image: Float32Array, req: EditRequest): EditOutcome {
  return editOutcome(analyzer.analyze(image).objects, req);
}

/** Editing metrics over outcomes: success, kept, and the requested attribute per edit kind (null when none). */
export interface EditScores {
  success: number;
  keptRest: number;
  attribute: Record<EditKind3, number | null>;
  n: number;
}

export function editScores(reqs: readonly EditRequest[], outcomes: readonly EditOutcome[]): EditScores {
  if (reqs.length !== outcomes.length || reqs.length === 0)
    throw new Error(`editScores: expected equal non-empty lists, got ${reqs.length} requests and ${outcomes.length} outcomes`);
  const frac = (xs: readonly boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : null);
  const attribute = Object.fromEntries(
    EDIT_KINDS3.map((k) => [k, frac(outcomes.filter((_, i) => reqs[i]!.kind === k).map((o) => o.attribute))]),
  ) as Record<EditKind3, number | null>;
  return { success: frac(outcomes.map((o) => o.success))!, keptRest: frac(outcomes.map((o) => o.kept))!, attribute, n: reqs.length };
}

/** Words of a sentence with punctuation split off, lowercase. */
export function sentenceWords(s: string): string[] {
  return s
    .toLowerCase()
    .replace(/([.,!?:])/g, ' $1 ')
    .split(/\s+/)
    .filter((x) => x.length > 0);
}

/**
 * A story narration ("then the circle turns blue.", "then the red circle becomes a square.", "then
 * the circle becomes large.") applied to the current object: the named change (null when the words
 * are no narration of the grammar), and whether it is valid here: the reference names the object
 * (every attribute word it uses holds, the shape last) and the new value differs from the current one.
 */
export function parseNarration(words: readonly string[], current: ObjectAttrs): { next: ObjectAttrs; valid: boolean } | null {
  const w = words[words.length - 1] === '.' ? words.slice(0, -1) : [...words];
  if (w[0] !== 'then' || w[1] !== 'the') return null;
  const verb = w.findIndex((x) => x === 'turns' || x === 'becomes');
  if (verb < 3) return null;
  const ref = w.slice(2, verb);
  const rest = w.slice(verb + 1);
  let attr: keyof ObjectAttrs;
  let value: string;
  if (w[verb] === 'turns' && rest.length === 1 && (COLOUR_NAMES as readonly string[]).includes(rest[0]!))
    [attr, value] = ['colour', rest[0]!];
  else if (w[verb] === 'becomes' && rest.length === 1 && (SIZE_NAMES as readonly string[]).includes(rest[0]!))
    [attr, value] = ['size', rest[0]!];
  else if (w[verb] === 'becomes' && rest.length === 2 && /^an?$/.test(rest[0]!) && (SHAPE_NAMES as readonly string[]).includes(rest[1]!))
    [attr, value] = ['shape', rest[1]!];
  else return null;
  const names = ref.every(
    (x) =>
      x === current.shape ||
      ((COLOUR_NAMES as readonly string[]).includes(x) && x === current.colour) ||
      ((SIZE_NAMES as readonly string[]).includes(x) && x === current.size),
  );
  const valid = names && ref[ref.length - 1] === current.shape && current[attr] !== value;
  return { next: { ...current, [attr]: value } as ObjectAttrs, valid };
}

/** A generated story segment: its sentence's words and the objects the analyzer read in its image. */
export interface StorySegment {
  words: string[];
  objects: readonly ObservedObject[];
}

export interface StoryOutcome {
  /** Segments scored (at least 1: a story that generates nothing counts as one failed segment). */
  segments: number;
  validSentences: number;
  matchedImages: number;
  /** Every sentence valid and every image matched. */
  coherent: boolean;
}

/**
 * Scores a continuation from `start`: each sentence is applied to the object the story names so
 * far (a sentence outside the grammar names nothing: its image cannot match), and its image must
 * be read as exactly that object.
 */
export function scoreStory(start: ObjectAttrs, segments: readonly StorySegment[]): StoryOutcome {
  let cur = start;
  let valid = 0;
  let matched = 0;
  for (const s of segments) {
    const p = parseNarration(s.words, cur);
    if (p?.valid) valid++;
    if (p) {
      cur = p.next;
      if (
        s.objects.length === 1 &&
        s.objects[0]!.size === cur.size &&
        s.objects[0]!.colour === cur.colour &&
        s.objects[0]!.shape === cur.shape
      )
        matched++;
    }
  }
  const n = Math.max(1, segments.length);
  return { segments: n, validSentences: valid, matchedImages: matched, coherent: segments.length > 0 && valid === n && matched === n };
}

/** A clip description's parts ("a red circle moves right"), or null outside the grammar. */
export function parseClipDescription(words: readonly string[]): { colour: string; shape: string; direction: string } | null {
  const w = words.filter((x) => x !== '.');
  if (w.length < 5 || !/^an?$/.test(w[0]!)) return null;
  const [colour, shape, verb, ...rest] = w.slice(1) as [string, string, string, ...string[]];
  if (verb === 'stays' && rest.join(' ') === 'still') return { colour, shape, direction: 'still' };
  if (verb === 'moves' && rest.length > 0) return { colour, shape, direction: rest.join(' ') };
  return null;
}

/** Clip metrics of one description: object (colour and shape), motion (direction), all. */
export function clipOutcome(words: readonly string[], c: Pick<ClipItem, 'colour' | 'shape' | 'direction'>) {
  const p = parseClipDescription(words);
  const object = p !== null && p.colour === c.colour && p.shape === c.shape;
  const motion = p !== null && p.direction === c.direction;
  return { object, motion, all: object && motion };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

const SETS = [
  { set: 'Seen', items: 'seen' },
  { set: 'HeldOut', items: 'heldOut' },
] as const;
type SetName = (typeof SETS)[number]['set'];

export interface AnyToAnySetEval {
  editSuccess: number;
  editKeptRest: number;
  editRecolour: number | null;
  editReshape: number | null;
  editResize: number | null;
  storyTextAccuracy: number;
  storyImageMatch: number;
  storyCoherent: number;
  storySegments: number;
  clipObject: number;
  clipMotion: number;
  clipAccuracy: number;
}
const SET_METRICS = [
  'editSuccess',
  'editKeptRest',
  'editRecolour',
  'editReshape',
  'editResize',
  'storyTextAccuracy',
  'storyImageMatch',
  'storyCoherent',
  'storySegments',
  'clipObject',
  'clipMotion',
  'clipAccuracy',
] as const;

export interface AnyToAnyEvalKit {
  tok: MultimodalTokenizer;
  words: WordTokenizer;
  stage: Stage;
  imageCodes: ImageCodes;
  analyzer: ShapeAnalyzer;
  world: AnyToAnyWorld;
  st: AnyToAnySettings;
}

export interface AnyToAnyEval {
  sets: Record<SetName, AnyToAnySetEval>;
  examples: { story: string; clip: string; clipRef: string };
  seconds: number;
}

/** Prompt ids of one user turn in the stage's chat format, ending with the assistant starter. */
function chatPrompt(k: AnyToAnyEvalKit, content: MioDocument): number[] {
  const sys = k.stage.systemPrompts?.std ?? MIO_STD_MODE_SYSTEM;
  const turns: ChatTurn<MioDocument>[] = [
    { role: 'system', content: [{ type: 'text', text: sys }] },
    { role: 'user', content },
  ];
  const ex = chatExample(k.tok, turns, { mode: 'custom' });
  return [...ex.ids, ...k.tok.encode([{ type: 'text', text: MIO_CHAT_TEMPLATE.assistantStarter }])];
}

/**
 * Greedy interleaved continuation: text (words, `<image>` or `<|im_end|>`), and after `<image>` one
 * image block of N codes; up to `maxSegments` sentence + image segments per prompt.
 */
function generateInterleaved(
  model: TransformerDecoder,
  k: AnyToAnyEvalKit,
  prompts: number[][],
): { words: string[]; codes: number[] | null }[][] {
  const v = k.tok.vocab;
  const open = v.specials['<image>'];
  const end = k.words.specialId('<|im_end|>');
  const N = v.config.tokensPerImage;
  const out: { words: string[]; codes: number[] | null }[][] = prompts.map(() => []);
  let active = prompts.map((p, i) => ({ i, ids: [...p] }));
  for (let seg = 0; seg < k.st.maxStorySegments && active.length > 0; seg++) {
    const room = (ids: number[]) => model.config.maxSeqLen - ids.length;
    active = active.filter((a) => room(a.ids) > k.st.maxSentenceTokens + N + 2);
    if (!active.length) break;
    const text = greedyGenerate(
      model,
      active.map((a) => a.ids),
      {
        maxNewTokens: k.st.maxSentenceTokens,
        allowed: () => [
          [0, v.textVocabSize],
          [open, open + 1],
        ],
        done: (g) => g[g.length - 1] === open || g[g.length - 1] === end,
      },
    );
    const drawing: typeof active = [];
    text.forEach((g, j) => {
      const a = active[j]!;
      a.ids.push(...g);
      const words = k.words.decodeWords(
        g.filter((id) => id < v.textVocabSize),
        { skipSpecial: true },
      );
      if (g[g.length - 1] === open) {
        out[a.i]!.push({ words, codes: null });
        drawing.push(a);
      } else if (words.length > 0) out[a.i]!.push({ words, codes: null }); // a sentence without its image
    });
    if (!drawing.length) break;
    const imgs = greedyGenerate(
      model,
      drawing.map((a) => a.ids),
      imageBlockConstraint(v),
    );
    imgs.forEach((g, j) => {
      const a = drawing[j]!;
      a.ids.push(...g);
      const segs = out[a.i]!;
      segs[segs.length - 1]!.codes = g.slice(0, N).map((id) => id - v.imageOffset);
    });
    active = drawing;
  }
  return out;
}

/** Every metric of the model on both evaluation sets (model mode restored by greedyGenerate). */
export function evaluateAnyToAny(model: TransformerDecoder, k: AnyToAnyEvalKit): AnyToAnyEval {
  const t0 = performance.now();
  const v = k.tok.vocab;
  const { world, imageCodes, analyzer } = k;
  const txt = (t: string): MioDocument[number] => ({ type: 'text', text: t });
  const end = k.words.specialId('<|im_end|>');
  const N = v.config.tokensPerImage;
  const sets = {} as Record<SetName, AnyToAnySetEval>;
  const examples = { story: '', clip: '', clipRef: '' };
  const toCodes = (g: number[]) => g.slice(0, N).map((id) => id - v.imageOffset);
  for (const { set, items } of SETS) {
    // ---- editing: source image + instruction, <image> -> N codes -> pixels -> analyzer
    const edits = world.edits[items];
    const srcCodes = imageCodes.encode(edits.map((e) => e.sourceImage));
    const editPrompts = edits.map((e, i) => [
      ...chatPrompt(k, [{ type: 'image', codes: srcCodes[i]! }, txt(e.instruction)]),
      v.specials['<image>'],
    ]);
    const drawn = imageCodes.decode(greedyGenerate(model, editPrompts, imageBlockConstraint(v)).map(toCodes));
    const es = editScores(
      edits,
      drawn.map((img, i) => scoreEdit(analyzer, img, edits[i]!)),
    );

    // ---- story: first sentence + image + "Continue the story:" -> interleaved continuation
    const stories = world.stories[items];
    const firstCodes = imageCodes.encode(stories.map((s) => s.images[0]!));
    const storyPrompts = stories.map((s, i) =>
      chatPrompt(k, [txt(s.sentences[0]!), { type: 'image', codes: firstCodes[i]! }, txt(SFT_TOY_PROMPTS.story)]),
    );
    const gen = generateInterleaved(model, k, storyPrompts);
    const codes = gen.flatMap((segs) => segs.filter((s) => s.codes !== null).map((s) => s.codes!));
    const pixels = codes.length ? imageCodes.decode(codes) : [];
    let p = 0;
    const outcomes = gen.map((segs, i) =>
      scoreStory(
        stories[i]!.start,
        segs.map((s) => ({ words: s.words, objects: s.codes ? analyzer.analyze(pixels[p++]!).objects : [] })),
      ),
    );
    const sum = (f: (o: StoryOutcome) => number) => outcomes.reduce((a, o) => a + f(o), 0);
    if (set === 'Seen')
      examples.story = `${stories[0]!.sentences[0]} [image] ${(gen[0] ?? []).map((s) => `${s.words.join(' ')}${s.codes ? ' [image]' : ''}`).join(' ')}`;

    // ---- clips: the description prompt + frames -> words until <|im_end|>
    const clips = world.clips[items];
    const frameCodes = imageCodes.encode(clips.flatMap((c) => c.frames));
    const F = clips[0]!.frames.length;
    const clipPrompts = clips.map((_, i) =>
      chatPrompt(k, [txt(k.stage.prompts.videoDescription), { type: 'clip', frames: frameCodes.slice(i * F, (i + 1) * F) }]),
    );
    const described = greedyGenerate(model, clipPrompts, {
      maxNewTokens: k.st.maxSentenceTokens,
      allowed: () => [[0, v.textVocabSize]],
      done: (g) => g[g.length - 1] === end,
    }).map((g) => k.words.decodeWords(g, { skipSpecial: true }));
    const co = described.map((w, i) => clipOutcome(w, clips[i]!));
    const frac = (xs: boolean[]) => xs.filter(Boolean).length / xs.length;
    if (set === 'Seen') {
      examples.clip = (described[0] ?? []).join(' ');
      examples.clipRef = clips[0]!.description;
    }
    sets[set] = {
      editSuccess: es.success,
      editKeptRest: es.keptRest,
      editRecolour: es.attribute.recolour,
      editReshape: es.attribute.reshape,
      editResize: es.attribute.resize,
      storyTextAccuracy: sum((o) => o.validSentences) / sum((o) => o.segments),
      storyImageMatch: sum((o) => o.matchedImages) / sum((o) => o.segments),
      storyCoherent: sum((o) => (o.coherent ? 1 : 0)) / outcomes.length,
      storySegments: sum((o) => o.segments) / outcomes.length,
      clipObject: frac(co.map((c) => c.object)),
      clipMotion: frac(co.map((c) => c.motion)),
      clipAccuracy: frac(co.map((c) => c.all)),
    };
  }
  return { sets, examples, seconds: (performance.now() - t0) / 1000 };
}

/** Memoriser ceilings and tokenizer figures per set (no model). */
function ceilings(k: Omit<AnyToAnyEvalKit, 'stage' | 'tok' | 'words' | 'st'>): Record<string, number> {
  const { world, analyzer, imageCodes } = k;
  const out: Record<string, number> = {};
  const trainTargets = world.edits.train.map((e) => analyzer.analyze(e.targetImage).objects);
  const trainStories = world.stories.train.map((s) => ({
    words: s.sentences.slice(1).map(sentenceWords),
    objects: s.images.slice(1).map((im) => analyzer.analyze(im).objects),
  }));
  const trainDescriptions = new Set(world.clips.train.map((c) => c.description));
  for (const { set, items } of SETS) {
    const edits = world.edits[items];
    out[`editCopySource${set}`] = editScores(
      edits,
      edits.map((e) => scoreEdit(analyzer, e.sourceImage, e)),
    ).success;
    // retrieval: the target of the best-matching training pair (same instruction first, then the most
    // source attributes shared; the first on ties)
    const shared = (a: ObjectAttrs, b: ObjectAttrs) => (['size', 'colour', 'shape'] as const).filter((x) => a[x] === b[x]).length;
    out[`editMemoriser${set}`] = editScores(
      edits,
      edits.map((e) => {
        let best = 0;
        let score = -1;
        world.edits.train.forEach((t, j) => {
          const s = (t.instruction === e.instruction ? 4 : 0) + shared(t.source, e.source);
          if (s > score) [best, score] = [j, s];
        });
        return editOutcome(trainTargets[best]!, e);
      }),
    ).success;
    // the memoriser ceiling: some training target satisfies the request
    out[`editCeiling${set}`] = edits.filter((e) => trainTargets.some((objs) => editOutcome(objs, e).success)).length / edits.length;
    const oracle = imageCodes.decode(imageCodes.encode(edits.map((e) => e.targetImage)));
    out[`editOracle${set}`] = editScores(
      edits,
      oracle.map((img, i) => scoreEdit(analyzer, img, edits[i]!)),
    ).success;
    const stories = world.stories[items];
    out[`storyMemoriser${set}`] =
      stories.filter((s) =>
        trainStories.some(
          (t) =>
            scoreStory(
              s.start,
              t.words.map((w, j) => ({ words: w, objects: t.objects[j]! })),
            ).coherent,
        ),
      ).length / stories.length;
    out[`clipMemoriser${set}`] = world.clips[items].filter((c) => trainDescriptions.has(c.description)).length / world.clips[items].length;
    const imgs = (items === 'seen' ? world.sets.seen : world.sets.heldOut).map((s) => s.image);
    out[`imageReadBack${set}`] = analyzerAgreement(imgs, imageCodes.decode(imageCodes.encode(imgs)), analyzer);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Training

/** The one SFT stage: Stage IV's format, system prompts and prompts, the settings' slots, steps and lr. */
export function anyToAnySchedule(st: AnyToAnySettings): Schedule {
  const IV = schedulePreset('tiny').stages[3]!;
  const slots: Record<string, number> = {};
  for (const t of ANY_TO_ANY_TASKS) if (st.train.slots[t] > 0) slots[t] = st.train.slots[t];
  return parseSchedule({
    stages: [
      {
        ...structuredClone(IV),
        name: 'SFT',
        title: 'any-to-any SFT (editing, stories, clips)',
        steps: st.train.steps,
        gpus: null,
        batchPerGpu: Object.values(slots).reduce((a, b) => a + b, 0),
        slots,
        seqLen: st.train.seqLen,
        lr: { peak: st.train.lr, min: st.train.minLr, warmupRatio: st.train.warmupRatio, gradClip: 1 },
        sources: { slots: 'ours', lr: 'ours (toy scale)', steps: 'ours' },
      },
    ],
  });
}

/** The word tokenizer over every string the world and the stage can produce (ChatML markers special). */
function anyToAnyWords(world: AnyToAnyWorld, stage: Stage): WordTokenizer {
  const strings: string[] = [MIO_STD_MODE_SYSTEM, MIO_VOICE_MODE_SYSTEM, SFT_TOY_PROMPTS.story, stage.prompts.caption];
  strings.push(stage.prompts.imageGeneration, stage.prompts.videoDescription);
  if (stage.systemPrompts) strings.push(stage.systemPrompts.std, stage.systemPrompts.voice);
  const { sets } = world;
  for (const s of [...sets.train, ...sets.seen, ...sets.heldOut]) strings.push(sizesCaption(s));
  for (const set of ['train', 'seen', 'heldOut'] as const) {
    for (const s of world.stories[set]) strings.push(...s.sentences);
    for (const e of world.edits[set]) strings.push(e.instruction);
    for (const c of world.clips[set]) strings.push(c.description);
  }
  return WordTokenizer.fromText(strings, { specialTokens: TOY_SPECIAL_TOKENS });
}

interface ModelResult {
  eval: AnyToAnyEval;
  finalLoss: number;
  trainSeconds: number;
  secondsPerStep: number;
}

async function trainModel(
  sub: SubrunContext,
  dir: string,
  o: { sch: Schedule; kit: AnyToAnyEvalKit; data: ReturnType<typeof mioTaskData>; seed: number; dataKey: string },
): Promise<ModelResult> {
  const { st } = o.kit;
  const model = new TransformerDecoder({ vocabSize: o.kit.tok.size, ...st.lm, maxSeqLen: st.train.seqLen, seed: o.seed });
  const bar = sub.progress(`${ID} SFT`, st.train.steps);
  try {
    const r = await runSchedule({
      schedule: o.sch,
      model,
      data: o.data,
      dir: join(dir, 'run'),
      seed: o.seed,
      valSamplesPerTask: st.valSamplesPerTask,
      dataKey: o.dataKey,
      progress: 'none',
      log: (l) => {
        if (!l.startsWith('|')) sub.log(l);
      },
      name: ID,
      onStep: (e: RunStepEvent) => {
        sub.metric({ step: e.globalStep, loss: e.loss, lr: e.lr });
        bar.tick(e.globalStep, { loss: e.loss });
      },
    });
    if (r.interrupted) throw new Error(`${ID}: the training run was interrupted; rerun to resume`);
    // over every call on this run (the runner's files), not only this one's resumed steps
    const trainSeconds = r.trainSeconds;
    const steps = r.history.length;
    const finalLoss = r.history[steps - 1]?.loss ?? Number.NaN;
    const ev = evaluateAnyToAny(model, o.kit);
    sub.metric({ step: st.train.steps, eval: 'final', ...flatten(ev.sets), seconds: ev.seconds });
    return { eval: ev, finalLoss, trainSeconds, secondsPerStep: steps ? trainSeconds / steps : Number.NaN };
  } finally {
    bar.done();
    model.dispose();
  }
}

function flatten(sets: Record<SetName, AnyToAnySetEval>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const { set } of SETS) for (const k of SET_METRICS) out[`${k}${set}`] = sets[set][k];
  return out;
}

/**
 * What training and evaluation need once the image codes are trained: the SFT schedule, the word
 * tokenizer over the world's strings, the multimodal tokenizer (no speech ids in use), the runner's
 * providers (training pools; validation from the seen items) and the evaluation kit.
 */
export function anyToAnySetup(world: AnyToAnyWorld, imageCodes: ImageCodes, st: AnyToAnySettings) {
  const sch = anyToAnySchedule(st);
  const stage = sch.stages[0]!;
  const words = anyToAnyWords(world, stage);
  const tok = new MultimodalTokenizer(
    {
      vocabSize: words.vocabSize,
      encode: (s: string) => words.encode(s, { allowedSpecial: 'all' }),
      decode: (ids: ArrayLike<number>) => words.decode(ids),
    },
    {
      textVocabSize: words.vocabSize,
      imageCodes: st.imageCodes.codes,
      tokensPerImage: st.imageCodes.tokens,
      speechCodebookSize: 1,
      speechLevels: 1,
    },
  );
  const enc = (xs: readonly Float32Array[]) => (xs.length ? imageCodes.encode(xs) : []);
  const pools = (items: 'train' | 'seen'): MioCorpusPools => {
    const imgs = items === 'train' ? world.sets.train : world.sets.seen;
    const imgCodes = enc(imgs.map((s) => s.image));
    const edits = world.edits[items];
    const ec = enc(edits.flatMap((e) => [e.sourceImage, e.targetImage]));
    const stories: CorpusStory[] = world.stories[items].map((s) => {
      const c = enc(s.images);
      return {
        segments: s.sentences.flatMap((t, j) => [
          { type: 'text' as const, text: t },
          { type: 'image' as const, codes: c[j]! },
        ]),
      };
    });
    const clips: CorpusClip[] = world.clips[items].map((c) => ({
      frames: enc(c.frames),
      description: c.description,
      question: '',
      answer: '',
    }));
    return {
      images: imgs.map((s, i) => ({ codes: imgCodes[i]!, caption: sizesCaption(s) })),
      texts: [],
      stories,
      clips,
      speech: [],
      edits: edits.map((e, i): CorpusEdit => ({ source: ec[2 * i]!, instruction: e.instruction, target: ec[2 * i + 1]! })),
      qa: [],
    };
  };
  const data = mioTaskData({ train: pools('train'), validation: pools('seen') }, tok);
  const analyzer = new ShapeAnalyzer(world.sets.config);
  const kit: AnyToAnyEvalKit = { tok, words, stage, imageCodes, analyzer, world, st };
  return { sch, stage, words, tok, data, kit };
}

export const anyToAnyExperiment: Experiment = {
  id: ID,
  settings: (preset: string) => ANY_TO_ANY_SETTINGS[preset as keyof typeof ANY_TO_ANY_SETTINGS],
  paper: 'MIO',
  claim:
    'One MIO decoder over text, image and video tokens, after SFT (ChatML, loss on assistant turns), does interleaved image-text generation, instructional image editing and video description with the same weights (§2.4, Table 10). Here on seen and held-out edits, stories and clips, with memoriser ceilings.',
  presets: {
    tiny: {
      description: 'a few SFT steps on a 48-image toy world; checks that every metric is computed, not the claim',
      expectedMinutes: 0.2,
    },
    small: {
      description:
        "16 px one-object Shapes (2000 images), 1000 edit pairs (20% of transitions held out), 500 stories, 400 four-frame clips (20% of keys held out); ImageCodes 8 x 64, SEED-style causal 1-D codes (encoder 'causal': core's CausalQueryEncoder over 16 patch tokens, 2 layers of width 128; decoder hidden 512; 6000 steps); a 2-layer width-128 decoder, 4000 SFT steps of 16 sequences (5 edit, 4 story, 3 clip, 2 generation, 2 caption), evaluated on 96 edits, 64 stories and 64 clips per set; one seed per run (seed 0: 17 min alone on the idle 2-core machine, 2026-12-06; 35-36 min a seed beside mio.staged, 2026-12-05)",
      // measured: 1,027 s for seed 0 alone on the idle 2-core AMD EPYC, default backend (WebAssembly
      // SIMD GEMM, no addon), commit 671d646, 2026-12-06; 36 min listed before (seeds beside mio.staged)
      expectedMinutes: 17.1,
    },
    'small-mlp': {
      description:
        "small with the first image codes (ImageCodes encoder 'mlp': codes not causal among themselves; the preset called small when seeds 0-2 ran): 16 px one-object Shapes (2000 images), 1000 edit pairs (20% of transitions held out), 500 stories, 400 four-frame clips (20% of keys held out); ImageCodes 8 x 64 (hidden 512, 6000 steps); a 2-layer width-128 decoder, 4000 SFT steps of 16 sequences; one seed per run (seed 0: 11 min alone on the idle 2-core machine, 2026-12-06; 35-39 min a seed on the shared 2-core machine)",
      // measured: 667 s for seed 0 alone on the idle 2-core AMD EPYC, default backend, commit 671d646,
      // 2026-12-06; 39 min listed before (seeds on the shared machine)
      expectedMinutes: 11.1,
    },
  },
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const st = ANY_TO_ANY_SETTINGS[ctx.preset as 'tiny' | 'small' | 'small-mlp'];
    if (!st) throw new Error(`${ID}: unknown preset "${ctx.preset}"; expected one of ${Object.keys(ANY_TO_ANY_SETTINGS).join(', ')}`);
    const seed = ctx.seed;
    const t0 = performance.now();
    const world = anyToAnyWorld(seed, st.world);
    const dataSeconds = (performance.now() - t0) / 1000;
    ctx.log(
      `${ID}: ${world.sets.train.length} training images (${world.trainCombos.size} combinations); edits ${world.edits.train.length} / ${world.edits.seen.length} / ${world.edits.heldOut.length}, stories ${world.stories.train.length} / ${world.stories.seen.length} / ${world.stories.heldOut.length}, clips ${world.clips.train.length} / ${world.clips.seen.length} / ${world.clips.heldOut.length} (train / seen / held-out)`,
    );

    // ---- image codes, trained on every training picture (images, edit pairs, story images, clip frames)
    const imageCodes = new ImageCodes({ ...st.imageCodes, seed });
    try {
      const imgInfo = await ctx.subrun('image-codes', async (dir, sub) => {
        const pictures = [
          ...world.sets.train.map((s) => s.image),
          ...world.edits.train.flatMap((e) => [e.sourceImage, e.targetImage]),
          ...world.stories.train.flatMap((s) => s.images),
          ...world.clips.train.flatMap((c) => c.frames),
        ];
        const recs = trainImageCodes(imageCodes, pictures, { ...st.imageTrain, seed }, { onRecord: (r) => sub.metric({ ...r }) });
        await saveModule(join(dir, 'image_codes.safetensors'), imageCodes);
        return { final: recs[recs.length - 1]! };
      });
      await loadModule(join(subrunDir(ctx, 'image-codes'), 'image_codes.safetensors'), imageCodes);
      imageCodes.eval();

      // ---- corpus, vocabulary, providers
      const { sch, tok, words, data, kit } = anyToAnySetup(world, imageCodes, st);
      const ceil = ceilings(kit);

      const res = await ctx.subrun('model', (dir, sub) =>
        trainModel(sub, dir, {
          sch,
          kit,
          data,
          seed,
          dataKey: `${ID} ${JSON.stringify(st.world)} ${JSON.stringify(st.imageCodes)} ${JSON.stringify(st.imageTrain)}`,
        }),
      );

      // ---- metrics and report
      const metrics: ExperimentResult['metrics'] = {
        vocabSize: tok.size,
        textVocabSize: words.vocabSize,
        trainImages: world.sets.train.length,
        trainCombinations: world.trainCombos.size,
        imageCodesRec: imgInfo.final.rec,
        imageCodesUsage: imgInfo.final.usage,
        ...ceil,
        ...flatten(res.eval.sets),
        finalLoss: res.finalLoss,
        trainSeconds: res.trainSeconds,
        secondsPerStep: res.secondsPerStep,
        evalSeconds: res.eval.seconds,
        dataSeconds,
      };
      const m = (k: string) => formatFixed(metrics[k] as number | null);
      const rows: Table['rows'] = [];
      for (const { set } of SETS) {
        const label = set === 'Seen' ? 'seen' : 'held-out';
        rows.push([
          'editing',
          label,
          m(`editSuccess${set}`),
          m(`editKeptRest${set}`),
          `copy-source ${m(`editCopySource${set}`)}, retrieval ${m(`editMemoriser${set}`)}, ceiling ${m(`editCeiling${set}`)}, tokenizer oracle ${m(`editOracle${set}`)}`,
        ]);
        rows.push([
          'story',
          label,
          m(`storyImageMatch${set}`),
          m(`storyTextAccuracy${set}`),
          `coherent ${m(`storyCoherent${set}`)}; memoriser ${m(`storyMemoriser${set}`)}`,
        ]);
        rows.push([
          'clip description',
          label,
          m(`clipAccuracy${set}`),
          `object ${m(`clipObject${set}`)}, motion ${m(`clipMotion${set}`)}`,
          `memoriser ${m(`clipMemoriser${set}`)}`,
        ]);
      }
      const attrRows: Table['rows'] = SETS.map(({ set }) => [
        set === 'Seen' ? 'seen' : 'held-out',
        metrics[`editRecolour${set}`] ?? null,
        metrics[`editReshape${set}`] ?? null,
        metrics[`editResize${set}`] ?? null,
        metrics[`editKeptRest${set}`] ?? null,
        metrics[`editSuccess${set}`] ?? null,
      ]);
      const summary = [
        `**${ID} (${ctx.preset}, seed ${seed})**: one decoder, ${st.train.steps} SFT steps over ${ANY_TO_ANY_TASKS.filter((t) => st.train.slots[t] > 0).join(', ')}.`,
        `Editing success ${m('editSuccessSeen')} / ${m('editSuccessHeldOut')} (seen / held-out transitions; retrieval memoriser ${m('editMemoriserSeen')} / ${m('editMemoriserHeldOut')}, memoriser ceiling ${m('editCeilingSeen')} / ${m('editCeilingHeldOut')}, copy-source ${m('editCopySourceSeen')} / ${m('editCopySourceHeldOut')}, tokenizer oracle ${m('editOracleSeen')} / ${m('editOracleHeldOut')}); kept the rest ${m('editKeptRestSeen')} / ${m('editKeptRestHeldOut')}.`,
        `Stories: images read as the object the text names ${m('storyImageMatchSeen')} / ${m('storyImageMatchHeldOut')}, valid narrations ${m('storyTextAccuracySeen')} / ${m('storyTextAccuracyHeldOut')}, coherent stories ${m('storyCoherentSeen')} / ${m('storyCoherentHeldOut')} (memoriser ${m('storyMemoriserSeen')} / ${m('storyMemoriserHeldOut')}). Example: ${res.eval.examples.story}`,
        `Clip description ${m('clipAccuracySeen')} / ${m('clipAccuracyHeldOut')} (object ${m('clipObjectSeen')} / ${m('clipObjectHeldOut')}, motion ${m('clipMotionSeen')} / ${m('clipMotionHeldOut')}; memoriser ${m('clipMemoriserSeen')} / ${m('clipMemoriserHeldOut')}). Example: "${res.eval.examples.clip}" for "${res.eval.examples.clipRef}".`,
        `ImageCodes read back by the ShapeAnalyzer ${m('imageReadBackSeen')} / ${m('imageReadBackHeldOut')} (seen / held-out images).`,
        `One seed (${seed}): no difference is called here; \`pnpm lab run ${ID} --preset ${ctx.preset} --seeds 0,1,2\` gives mean ± std and verdicts.`,
      ].join('\n');
      return {
        metrics,
        tables: [
          {
            title: `Any-to-any after ${st.train.steps} SFT steps`,
            columns: ['task', 'set', 'main metric', 'second metric', 'ceilings'],
            rows,
            note: 'Editing: success (the requested attribute changed to the requested value and the rest kept), then the kept-the-rest rate. Story: images read as the object the text names, then valid narrations. Clip: whole description right, then its object and motion parts. Greedy decoding; image blocks constrained to N codes, text to words.',
          },
          {
            title: 'Editing per requested attribute',
            columns: ['set', 'recolour: colour set', 'reshape: shape set', 'resize: size set', 'kept the rest', 'success'],
            rows: attrRows,
          },
        ],
        summary,
      };
    } finally {
      imageCodes.dispose();
    }
  },

  aggregate(results: ExperimentResult[], seeds: number[]): { tables?: Table[]; summary?: string } {
    const v = (k: string) => seedValues(results, k);
    const cell = (k: string) => seedCell(results, k);
    const rows: Table['rows'] = [];
    for (const { set } of SETS) {
      const label = set === 'Seen' ? 'seen' : 'held-out';
      rows.push(['editing success', label, cell(`editSuccess${set}`), cell(`editCeiling${set}`), cell(`editOracle${set}`)]);
      rows.push(['editing: retrieval memoriser', label, cell(`editMemoriser${set}`), null, null]);
      rows.push(['editing kept the rest', label, cell(`editKeptRest${set}`), null, null]);
      rows.push(['story image match', label, cell(`storyImageMatch${set}`), null, null]);
      rows.push(['story text accuracy', label, cell(`storyTextAccuracy${set}`), null, null]);
      rows.push(['story coherent', label, cell(`storyCoherent${set}`), cell(`storyMemoriser${set}`), null]);
      rows.push(['clip description', label, cell(`clipAccuracy${set}`), cell(`clipMemoriser${set}`), null]);
    }
    const verdict = (a: string, b: string, labels: [string, string]) => seedVerdict(v(a), v(b), 'higher', labels).text;
    return {
      tables: [
        {
          title: `${ID}: mean ± std over ${results.length} seed${results.length === 1 ? '' : 's'} (${seeds.join(', ')})`,
          columns: ['metric', 'set', 'model', 'memoriser ceiling', 'tokenizer oracle'],
          rows,
          note: 'Mean ± sample standard deviation (n − 1) over seeds.',
        },
      ],
      summary: [
        `**${ID} over seeds ${seeds.join(', ')}**`,
        '',
        seedsHeader(seeds),
        '',
        'Held-out items against their memoriser ceilings (the model beats retrieval only beyond two standard errors):',
        `- editing success: ${verdict('editSuccessHeldOut', 'editMemoriserHeldOut', ['model', 'retrieval memoriser'])}.`,
        `- editing success: ${verdict('editSuccessHeldOut', 'editCeilingHeldOut', ['model', 'memoriser ceiling'])}.`,
        `- coherent stories: ${verdict('storyCoherentHeldOut', 'storyMemoriserHeldOut', ['model', 'memoriser'])}.`,
        `- clip description: ${verdict('clipAccuracyHeldOut', 'clipMemoriserHeldOut', ['model', 'memoriser'])}.`,
        '',
        'Seen against held-out (composition gap):',
        `- editing success: ${verdict('editSuccessSeen', 'editSuccessHeldOut', ['seen', 'held-out'])}.`,
        `- story image match: ${verdict('storyImageMatchSeen', 'storyImageMatchHeldOut', ['seen', 'held-out'])}.`,
        `- clip description: ${verdict('clipAccuracySeen', 'clipAccuracyHeldOut', ['seen', 'held-out'])}.`,
      ].join('\n'),
    };
  },
};
