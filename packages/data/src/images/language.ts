/**
 * Captions, question/answer pairs and the caption grammar of the Shapes world. Every caption
 * mentions every object of its scene, in reading order (top to bottom, then left to right), from one
 * of five templates:
 *   objects   "two red squares and a blue circle"
 *   sizes     "a small red square and a large blue circle"
 *   places    "a small green triangle in the top left and a large red ring in the middle"
 *   relation  "a red circle above a blue square" (+ "and a green cross in the top right" for a third;
 *             only for a pair each alone in its shape and colour, at a clear angle)
 *   there     "there is a red circle" / "there are two red squares and a blue circle"
 * `parseCaption` reads any caption of this grammar back into a `SceneQuery` (what the generation
 * score checks an image against), so captions written by hand in the same words work too:
 *   caption := ["there is" | "there are"] item ("," item)* ["and" item]
 *   item    := np [place | relation np]
 *   np      := ("a" | "an" | number) [size] [colour] (shape | shapes)
 */
import type { Rng } from '@mmlm/core';
import type { Scene, ShapeObject } from './scene.js';
import {
  article,
  COLOUR_NAMES,
  type ColourName,
  isColourName,
  isSizeName,
  NUMBER_WORDS,
  numberWord,
  PLACE_PHRASES,
  RELATIONS,
  type Relation,
  relationOf,
  SHAPE_NAMES,
  SHAPE_PLURALS,
  type ShapeName,
  type SizeName,
} from './vocab.js';

export const CAPTION_TEMPLATES = ['objects', 'sizes', 'places', 'relation', 'there'] as const;
export type CaptionTemplate = (typeof CAPTION_TEMPLATES)[number];

export interface Caption {
  template: CaptionTemplate;
  text: string;
}

export interface QA {
  /** colour | shape | count | position | size | exists | relation */
  type: string;
  question: string;
  answer: string;
}

/** One requested group of objects: `count` objects of a shape, with optional colour, size and cell. */
export interface ObjectQuery {
  shape: ShapeName;
  count: number;
  colour?: ColourName;
  size?: SizeName;
  cell?: string;
}

/** Object `a` stands in `relation` to object `b` (indices into `objects`, each of count 1). */
export interface RelationQuery {
  a: number;
  b: number;
  relation: Relation;
}

/** What an image should contain. `exact`: nothing else is in the image. */
export interface SceneQuery {
  objects: ObjectQuery[];
  relations: RelationQuery[];
  exact: boolean;
}

/** Objects in reading order: by row of the centre (in cells, rounded), then by x. */
export function readingOrder(scene: Scene): ShapeObject[] {
  const g = scene.gridSize;
  return [...scene.objects].sort((a, b) => Math.floor(a.y * g) - Math.floor(b.y * g) || a.y - b.y || a.x - b.x);
}

function np(count: number, shape: ShapeName, colour?: ColourName, size?: SizeName): string {
  const words = [size, colour].filter((w): w is SizeName | ColourName => w !== undefined);
  const noun = count === 1 ? shape : SHAPE_PLURALS[shape];
  const head = [...words, noun].join(' ');
  return count === 1 ? `${article(head)} ${head}` : `${numberWord(count)} ${head}`;
}

function joinList(items: string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function groups(objs: ShapeObject[], withSize: boolean): { o: ShapeObject; n: number }[] {
  const out: { o: ShapeObject; n: number }[] = [];
  for (const o of objs) {
    const g = out.find((x) => x.o.shape === o.shape && x.o.colour === o.colour && (!withSize || x.o.size === o.size));
    if (g) g.n++;
    else out.push({ o, n: 1 });
  }
  return out;
}

/** A pair with a clear relation: the dominant offset at least twice the other. */
function clearRelation(a: ShapeObject, b: ShapeObject): Relation | null {
  const dx = Math.abs(b.x - a.x);
  const dy = Math.abs(b.y - a.y);
  if (Math.max(dx, dy) < 2 * Math.min(dx, dy)) return null;
  return relationOf(a.x, a.y, b.x, b.y);
}

/** The first pair (in reading order) with a clear relation, each the only object of its shape and colour. */
function clearPair(objs: ShapeObject[]): [ShapeObject, ShapeObject, Relation] | null {
  const unique = (o: ShapeObject) => objs.filter((p) => p.shape === o.shape && p.colour === o.colour).length === 1;
  for (let i = 0; i < objs.length; i++)
    for (let j = i + 1; j < objs.length; j++) {
      if (!unique(objs[i]!) || !unique(objs[j]!)) continue;
      const rel = clearRelation(objs[i]!, objs[j]!);
      if (rel) return [objs[i]!, objs[j]!, rel];
    }
  return null;
}

/** Every caption template that applies to the scene ('relation' needs a pair with a clear relation). */
export function sceneCaptions(scene: Scene): Caption[] {
  const objs = readingOrder(scene);
  if (objs.length === 0) return [{ template: 'there', text: 'there is nothing' }];
  const out: Caption[] = [];
  const plain = groups(objs, false).map((g) => np(g.n, g.o.shape, g.o.colour));
  out.push({ template: 'objects', text: joinList(plain) });
  out.push({ template: 'sizes', text: joinList(groups(objs, true).map((g) => np(g.n, g.o.shape, g.o.colour, g.o.size))) });
  const placed = (o: ShapeObject) => `${np(1, o.shape, o.colour, o.size)} ${PLACE_PHRASES[o.cell]}`;
  out.push({ template: 'places', text: joinList(objs.map(placed)) });
  const pair = clearPair(objs);
  if (pair) {
    const [a, b, rel] = pair;
    const rest = objs.filter((o) => o !== a && o !== b).map(placed);
    out.push({ template: 'relation', text: joinList([`${np(1, a.shape, a.colour)} ${rel} ${np(1, b.shape, b.colour)}`, ...rest]) });
  }
  out.push({ template: 'there', text: `${objs.length === 1 ? 'there is' : 'there are'} ${joinList(plain)}` });
  return out;
}

export interface Reference {
  text: string;
  usesColour: boolean;
  usesSize: boolean;
}

/** The shortest description that picks out `o` among the scene's objects ("the square", "the red square"), or null. */
export function referringExpression(o: ShapeObject, scene: Scene): Reference | null {
  const others = scene.objects.filter((p) => p !== o);
  const tries: [boolean, boolean][] = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ];
  for (const [colour, size] of tries) {
    const clash = others.some((p) => p.shape === o.shape && (!colour || p.colour === o.colour) && (!size || p.size === o.size));
    if (!clash)
      return {
        text: ['the', size ? o.size : '', colour ? o.colour : '', o.shape].filter(Boolean).join(' '),
        usesColour: colour,
        usesSize: size,
      };
  }
  return null;
}

/**
 * Question/answer pairs about a scene, answers one word or a short phrase from the closed vocabulary:
 * colour ("what colour is the square?" -> "red"), shape ("what shape is the red object?"), count
 * ("how many circles are there?" -> "two"; one absent shape -> "zero"; "how many shapes are
 * there?"), position ("where is the triangle?" -> "top left"), size ("is the ring small or
 * large?"), exists ("is there a blue cross?" -> "yes" / "no") and relation ("is the red circle above
 * the blue square?" -> "yes" / "no"). Questions are only asked about objects a description picks
 * out uniquely. `rng` chooses the absent shape and the negative examples.
 */
export function sceneQA(
  scene: Scene,
  rng: Rng,
  shapes: readonly ShapeName[] = SHAPE_NAMES,
  colours: readonly ColourName[] = COLOUR_NAMES,
): QA[] {
  const objs = readingOrder(scene);
  const qa: QA[] = [];
  const refs = new Map(objs.map((o) => [o, referringExpression(o, scene)]));
  for (const o of objs) {
    const ref = refs.get(o);
    if (!ref) continue;
    if (!ref.usesColour) qa.push({ type: 'colour', question: `what colour is ${ref.text}?`, answer: o.colour });
    qa.push({ type: 'position', question: `where is ${ref.text}?`, answer: o.cell });
    if (!ref.usesSize) qa.push({ type: 'size', question: `is ${ref.text} small or large?`, answer: o.size });
  }
  for (const c of colours) {
    const withColour = objs.filter((o) => o.colour === c);
    if (withColour.length === 1) qa.push({ type: 'shape', question: `what shape is the ${c} object?`, answer: withColour[0]!.shape });
  }
  const present = shapes.filter((s) => objs.some((o) => o.shape === s));
  const absent = shapes.filter((s) => !present.includes(s));
  const counted = absent.length > 0 ? [...present, absent[rng.int(0, absent.length)]!] : present;
  for (const s of counted)
    qa.push({
      type: 'count',
      question: `how many ${SHAPE_PLURALS[s]} are there?`,
      answer: numberWord(objs.filter((o) => o.shape === s).length),
    });
  qa.push({ type: 'count', question: 'how many shapes are there?', answer: numberWord(objs.length) });
  if (objs.length > 0) {
    const o = objs[rng.int(0, objs.length)]!;
    qa.push({ type: 'exists', question: `is there ${article(o.colour)} ${o.colour} ${o.shape}?`, answer: 'yes' });
  }
  for (let t = 0; t < 20; t++) {
    const s = shapes[rng.int(0, shapes.length)]!;
    const c = colours[rng.int(0, colours.length)]!;
    if (objs.some((o) => o.shape === s && o.colour === c)) continue;
    qa.push({ type: 'exists', question: `is there ${article(c)} ${c} ${s}?`, answer: 'no' });
    break;
  }
  for (let i = 0; i < objs.length; i++)
    for (let j = i + 1; j < objs.length; j++) {
      const a = objs[i]!;
      const b = objs[j]!;
      const rel = clearRelation(a, b);
      const ra = refs.get(a);
      const rb = refs.get(b);
      if (!rel || !ra || !rb) continue;
      const flip: Record<Relation, Relation> = {
        above: 'below',
        below: 'above',
        'to the left of': 'to the right of',
        'to the right of': 'to the left of',
      };
      const truthful = rng.uniform() < 0.5;
      qa.push({ type: 'relation', question: `is ${ra.text} ${truthful ? rel : flip[rel]} ${rb.text}?`, answer: truthful ? 'yes' : 'no' });
    }
  return qa;
}

const PLACE_BY_PHRASE = new Map(Object.entries(PLACE_PHRASES).map(([cell, phrase]) => [phrase, cell]));

/** Reads a caption of the grammar above into a query (`exact`: the caption lists every object). */
export function parseCaption(caption: string): SceneQuery {
  const words = caption.toLowerCase().replace(/,/g, ' , ').replace(/[.!]/g, ' ').trim().split(/\s+/).filter(Boolean);
  let i = 0;
  const fail = (expected: string): never => {
    const got = i < words.length ? `"${words[i]}"` : 'the end of the caption';
    throw new Error(`parseCaption: expected ${expected} at word ${i + 1}, got ${got} in "${caption}"`);
  };
  const peek = (n = 0) => words[i + n];
  const accept = (phrase: string): boolean => {
    const ws = phrase.split(' ');
    if (ws.every((w, k) => words[i + k] === w)) {
      i += ws.length;
      return true;
    }
    return false;
  };
  const objects: ObjectQuery[] = [];
  const relations: RelationQuery[] = [];
  const parseNp = (): number => {
    const det = peek();
    let count: number;
    if (det === 'a' || det === 'an') count = 1;
    else if (det !== undefined && (NUMBER_WORDS as readonly string[]).includes(det)) count = NUMBER_WORDS.indexOf(det as never);
    else if (det !== undefined && /^\d+$/.test(det)) count = Number(det);
    else return fail('"a", "an" or a number');
    i++;
    const q: Partial<ObjectQuery> = { count };
    if (peek() !== undefined && isSizeName(peek()!)) q.size = words[i++] as SizeName;
    if (peek() !== undefined && isColourName(peek()!)) q.colour = words[i++] as ColourName;
    const noun = peek();
    const shape = SHAPE_NAMES.find((s) => s === noun || SHAPE_PLURALS[s] === noun);
    if (!shape) return fail(`a shape (${SHAPE_NAMES.join(', ')}) after "${words.slice(0, i).join(' ')}"`);
    const plural = SHAPE_PLURALS[shape] === noun;
    if (plural !== (count !== 1) && count !== 0) fail(`${count === 1 ? 'a singular' : 'a plural'} shape for count ${count}`);
    i++;
    q.shape = shape;
    objects.push(q as ObjectQuery);
    return objects.length - 1;
  };
  const parseItem = (): void => {
    const a = parseNp();
    for (const [phrase, cell] of PLACE_BY_PHRASE)
      if (accept(phrase)) {
        objects[a]!.cell = cell;
        return;
      }
    for (const rel of RELATIONS)
      if (accept(rel)) {
        const b = parseNp();
        if (objects[a]!.count !== 1 || objects[b]!.count !== 1) fail(`single objects on both sides of "${rel}"`);
        relations.push({ a, b, relation: rel });
        return;
      }
  };
  if (accept('there is nothing')) {
    if (i < words.length) fail('the end of the caption');
    return { objects: [], relations: [], exact: true };
  }
  if (!accept('there is')) accept('there are');
  parseItem();
  for (;;) {
    if (i >= words.length) break;
    if (accept(',')) {
      parseItem();
      continue;
    }
    if (accept('and')) {
      parseItem();
      if (i < words.length) fail('the end of the caption after the last "and" item');
      break;
    }
    fail('",", "and", a place or a relation');
  }
  return { objects, relations, exact: true };
}
