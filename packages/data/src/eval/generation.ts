/**
 * GenEval-style scoring of Shapes images against captions (Ghosh et al. 2023, "GenEval: An
 * Object-Focused Framework for Evaluating Text-to-Image Alignment": an object detector reads the
 * generated image and each prompt's objects, counts, colours and positions are checked), with the
 * ShapeAnalyzer as the detector; and the same check run the other way, judging a generated caption
 * against the true scene.
 *
 * A caption is parsed by `parseCaption` into object groups (shape, count, optional colour, size and
 * cell) and relations. Against a list of objects (detected or true) the per-attribute checks are:
 *   objects   every requested shape is present;
 *   count     for every requested shape, the number of objects of that shape equals the requested
 *             total; for an exact caption (every caption of the grammar lists every object), no
 *             other objects are present;
 *   colour    the requested objects can be matched one-to-one to distinct objects of the same
 *             shape and colour (only groups with a colour; n/a when none has one);
 *   size      the same with shape and size;
 *   position  the same with shape, colour and cell, with every relation holding between the
 *             matched objects (`relationOf` of their centres); n/a without cells and relations;
 *   overall   one one-to-one matching satisfies every attribute and relation at once, and an exact
 *             caption has no unmatched objects.
 * Per-attribute fractions are over the pairs where the attribute applies.
 */
import { type ObjectQuery, parseCaption, type QA, type SceneQuery } from '../images/language.js';
import type { Scene } from '../images/scene.js';
import { relationOf, type ShapeName } from '../images/vocab.js';
import { type DetectedObject, ShapeAnalyzer, type ShapeAnalyzerOptions } from './analyzer.js';
import { type AnswerScores, evaluateAnswers } from './text.js';

/** What the checks need of an object (a DetectedObject or a scene's ShapeObject). */
export type ObservedObject = Pick<DetectedObject, 'shape' | 'colour' | 'size' | 'cell' | 'x' | 'y'>;

export const GENERATION_ATTRIBUTES = ['objects', 'count', 'colour', 'size', 'position'] as const;
export type GenerationAttribute = (typeof GENERATION_ATTRIBUTES)[number];

/** Per attribute: true / false, or null when the caption does not ask for it. */
export type QueryMatch = Record<GenerationAttribute, boolean | null> & { overall: boolean };

interface Slot {
  q: ObjectQuery;
  group: number;
}

function slotsOf(query: SceneQuery): Slot[] {
  return query.objects.flatMap((q, group) => Array.from({ length: q.count }, () => ({ q, group })));
}

/**
 * True when the slots can be matched to distinct objects with `fits`, every relation holding between
 * the objects matched to its groups (relations join groups of count 1), and with `exact`, every
 * object matched.
 */
function assignable(
  slots: Slot[],
  objs: readonly ObservedObject[],
  fits: (q: ObjectQuery, o: ObservedObject) => boolean,
  relations: SceneQuery['relations'],
  exact: boolean,
): boolean {
  if (slots.length > objs.length || (exact && slots.length !== objs.length)) return false;
  const used = new Array<boolean>(objs.length).fill(false);
  const groupObj = new Map<number, ObservedObject>();
  const relationsHold = (): boolean =>
    relations.every((r) => {
      const a = groupObj.get(r.a);
      const b = groupObj.get(r.b);
      return !a || !b || relationOf(a.x, a.y, b.x, b.y) === r.relation;
    });
  const go = (k: number): boolean => {
    if (k === slots.length) return true;
    const s = slots[k]!;
    for (let j = 0; j < objs.length; j++) {
      if (used[j] || !fits(s.q, objs[j]!)) continue;
      used[j] = true;
      const single = s.q.count === 1;
      if (single) groupObj.set(s.group, objs[j]!);
      if ((!single || relationsHold()) && go(k + 1)) return true;
      if (single) groupObj.delete(s.group);
      used[j] = false;
    }
    return false;
  };
  return go(0);
}

/** Checks a parsed caption against objects (see the file comment). */
export function matchQuery(query: SceneQuery, objects: readonly ObservedObject[]): QueryMatch {
  const slots = slotsOf(query);
  const shapes = [...new Set(query.objects.map((q) => q.shape))];
  const objectsOk = shapes.every((s) => objects.some((o) => o.shape === s));
  const want = (s: ShapeName) => query.objects.filter((q) => q.shape === s).reduce((a, q) => a + q.count, 0);
  const countOk =
    shapes.every((s) => objects.filter((o) => o.shape === s).length === want(s)) && (!query.exact || objects.length === slots.length);
  const hasColour = query.objects.some((q) => q.colour !== undefined);
  const hasSize = query.objects.some((q) => q.size !== undefined);
  const hasPlace = query.objects.some((q) => q.cell !== undefined) || query.relations.length > 0;
  const shapeIs = (q: ObjectQuery, o: ObservedObject) => o.shape === q.shape;
  const colourIs = (q: ObjectQuery, o: ObservedObject) => q.colour === undefined || o.colour === q.colour;
  const sizeIs = (q: ObjectQuery, o: ObservedObject) => q.size === undefined || o.size === q.size;
  const cellIs = (q: ObjectQuery, o: ObservedObject) => q.cell === undefined || o.cell === q.cell;
  return {
    objects: objectsOk,
    count: countOk,
    colour: hasColour ? assignable(slots, objects, (q, o) => shapeIs(q, o) && colourIs(q, o), [], false) : null,
    size: hasSize ? assignable(slots, objects, (q, o) => shapeIs(q, o) && sizeIs(q, o), [], false) : null,
    position: hasPlace
      ? assignable(slots, objects, (q, o) => shapeIs(q, o) && colourIs(q, o) && cellIs(q, o), query.relations, false)
      : null,
    overall: assignable(
      slots,
      objects,
      (q, o) => shapeIs(q, o) && colourIs(q, o) && sizeIs(q, o) && cellIs(q, o),
      query.relations,
      query.exact,
    ),
  };
}

export interface AttributeScore {
  /** Fraction correct among the pairs where the attribute applies (NaN when none). */
  accuracy: number;
  correct: number;
  applicable: number;
}

export interface MatchSummary {
  n: number;
  overall: number;
  attributes: Record<GenerationAttribute, AttributeScore>;
}

/** Aggregates per-pair matches into per-attribute fractions and the overall fraction. */
export function summarizeMatches(matches: readonly QueryMatch[]): MatchSummary {
  const attributes = Object.fromEntries(
    GENERATION_ATTRIBUTES.map((a) => {
      const applicable = matches.filter((m) => m[a] !== null);
      const correct = applicable.filter((m) => m[a] === true).length;
      return [a, { accuracy: applicable.length ? correct / applicable.length : Number.NaN, correct, applicable: applicable.length }];
    }),
  ) as Record<GenerationAttribute, AttributeScore>;
  return { n: matches.length, overall: matches.length ? matches.filter((m) => m.overall).length / matches.length : Number.NaN, attributes };
}

export interface GenerationPair {
  caption: string;
  /** [S * S * 3] HWC RGB in [0, 1]. */
  image: Float32Array;
}

export interface GenerationScore extends MatchSummary {
  /** Per pair: the match and the objects the analyzer detected. */
  pairs: { caption: string; match: QueryMatch; detected: ObservedObject[] }[];
}

/**
 * GenEval-like score of (caption, generated image) pairs: each caption parsed, each image analysed,
 * fractions matching per attribute and overall. Pass the dataset's config (or an analyzer) so image
 * size, grid and size threshold match the generator.
 */
export function generationScore(pairs: readonly GenerationPair[], analyzer: ShapeAnalyzer | ShapeAnalyzerOptions = {}): GenerationScore {
  if (!Array.isArray(pairs) || pairs.length === 0)
    throw new Error('generationScore: expected a non-empty array of { caption, image } pairs');
  const an = analyzer instanceof ShapeAnalyzer ? analyzer : new ShapeAnalyzer(analyzer);
  const out = pairs.map((p, i) => {
    if (typeof p?.caption !== 'string') throw new Error(`generationScore: pair ${i} has no caption string`);
    let query: SceneQuery;
    try {
      query = parseCaption(p.caption);
    } catch (e) {
      throw new Error(`generationScore: pair ${i}: ${(e as Error).message}`);
    }
    if (!(p.image instanceof Float32Array) || p.image.length !== an.imageSize * an.imageSize * 3)
      throw new Error(
        `generationScore: pair ${i}: expected a Float32Array image of ${an.imageSize * an.imageSize * 3} values (${an.imageSize}x${an.imageSize}x3), got ${p.image?.length ?? typeof p.image}`,
      );
    const detected = an.analyze(p.image).objects;
    return { caption: p.caption, match: matchQuery(query, detected), detected };
  });
  return { ...summarizeMatches(out.map((o) => o.match)), pairs: out };
}

export interface CaptionJudgement {
  /** False when the caption is not in the Shapes caption grammar (then every check fails). */
  parsed: boolean;
  match: QueryMatch;
}

const FAILED: QueryMatch = { objects: false, count: false, colour: false, size: false, position: false, overall: false };

/** Judges a generated caption against the true scene: parse, then check it against the scene's objects. */
export function judgeCaption(caption: string, scene: Scene): CaptionJudgement {
  if (typeof caption !== 'string') throw new Error(`judgeCaption: caption must be a string, got ${typeof caption}`);
  if (!scene || !Array.isArray(scene.objects)) throw new Error('judgeCaption: scene must be a Scene with an objects array');
  let query: SceneQuery;
  try {
    query = parseCaption(caption);
  } catch {
    return { parsed: false, match: { ...FAILED } };
  }
  return { parsed: true, match: matchQuery(query, scene.objects) };
}

export interface CaptionScore extends MatchSummary {
  /** Fraction of captions in the grammar. */
  parsed: number;
}

/**
 * Caption accuracy of generated captions against their scenes: per attribute and overall (a caption
 * outside the grammar counts as wrong on every attribute).
 */
export function captionScore(pairs: readonly { caption: string; scene: Scene }[]): CaptionScore {
  if (!Array.isArray(pairs) || pairs.length === 0) throw new Error('captionScore: expected a non-empty array of { caption, scene } pairs');
  const js = pairs.map((p, i) => {
    try {
      return judgeCaption(p.caption, p.scene);
    } catch (e) {
      throw new Error(`captionScore: pair ${i}: ${(e as Error).message}`);
    }
  });
  return { ...summarizeMatches(js.map((j) => j.match)), parsed: js.filter((j) => j.parsed).length / js.length };
}

export interface QaScore extends AnswerScores {
  /** Exact match per question type (colour, shape, count, position, size, exists, relation). */
  byType: Record<string, { exactMatch: number; n: number }>;
}

/** Exact match (after normalisation) and token F1 of predicted answers to Shapes QA pairs, overall and per question type. */
export function qaScore(predictions: readonly string[], qa: readonly QA[]): QaScore {
  if (predictions.length !== qa.length) throw new Error(`qaScore: got ${predictions.length} predictions but ${qa.length} QA pairs`);
  const scores = evaluateAnswers(
    predictions,
    qa.map((q) => q.answer),
  );
  const byType: Record<string, { exactMatch: number; n: number }> = {};
  qa.forEach((q, i) => {
    byType[q.type] ??= { exactMatch: 0, n: 0 };
    const t = byType[q.type]!;
    t.exactMatch += scores.perItem[i]!.exactMatch;
    t.n++;
  });
  for (const t of Object.values(byType)) t.exactMatch /= t.n;
  return { ...scores, byType };
}
