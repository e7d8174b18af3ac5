/**
 * Clips: short frame sequences of shapes moving in straight lines at constant speed, with a text
 * description of the motion (a stand-in for video). Object k moves from p_k to p_k + d_k over T
 * frames, frame t showing it at p_k + d_k t / (T - 1); |d_k| is a fraction of the image side drawn
 * from `distance`, along one of the configured directions (or 0 for "stays still"). Starts are drawn
 * so the object stays inside the image and the bounding boxes of any two objects stay `gapPx` apart
 * in every frame (rejection sampling). Radii follow the Shapes size classes of the config's grid.
 *
 * Descriptions, every object in reading order of the first frame:
 *   motion  "a red circle moves right and a blue square stays still"
 *   path    "a red circle moves from the top left to the top right" (when every moving object
 *           changes cell; still objects are placed: "a blue square stays in the middle")
 * Splits: a clip's key lists (size, colour, shape, direction) of its objects, sorted; clips with a
 * held-out (shape, colour) pair are 'heldout', the rest go to train / val / test by its hash.
 */
import { Rng } from '@mmlm/core';
import { layoutOf, resolveShapesConfig, type ShapesConfig, type Split } from './config.js';
import { checkSplit } from './edits.js';
import { addGaussianNoise, renderScene } from './render.js';
import { drawUntil, hasHeldOutPair, type Scene, type ShapeObject, sampleScene, separated, splitOfKey } from './scene.js';
import { stackImages } from './tensor.js';
import { article, cellName, PLACE_PHRASES } from './vocab.js';

export const DIRECTIONS = [
  'up',
  'down',
  'left',
  'right',
  'up and left',
  'up and right',
  'down and left',
  'down and right',
  'still',
] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** Unit step of each direction (x right, y down); diagonals are normalised. */
export const DIRECTION_VECTORS: Readonly<Record<Direction, readonly [number, number]>> = {
  up: [0, -1],
  down: [0, 1],
  left: [-1, 0],
  right: [1, 0],
  'up and left': [-Math.SQRT1_2, -Math.SQRT1_2],
  'up and right': [Math.SQRT1_2, -Math.SQRT1_2],
  'down and left': [-Math.SQRT1_2, Math.SQRT1_2],
  'down and right': [Math.SQRT1_2, Math.SQRT1_2],
  still: [0, 0],
};

export interface ClipsOptions extends Partial<ShapesConfig> {
  split?: Split;
  /** Frames per clip (2-64, default 8). */
  frames?: number;
  /** Directions to draw from (default the four axis directions and 'still'). */
  directions?: Direction[];
  /** [min, max] travel as a fraction of the image side (default [0.25, 0.5]). */
  distance?: [number, number];
}

export interface ObjectMotion {
  shape: ShapeObject['shape'];
  colour: ShapeObject['colour'];
  size: ShapeObject['size'];
  direction: Direction;
  /** Centres in the first and last frame, fractions of the side. */
  start: [number, number];
  end: [number, number];
}

export interface Clip {
  index: number;
  split: Exclude<Split, 'all'>;
  /** One [S * S * 3] image per frame. */
  frames: Float32Array[];
  /** [T * S * S * 3] (frames stacked). */
  video: Float32Array;
  /** [T, S, S, 3]. */
  shape: [number, number, number, number];
  scenes: Scene[];
  motions: ObjectMotion[];
  /** The 'motion' description. */
  description: string;
  descriptions: { template: 'motion' | 'path'; text: string }[];
}

function np(o: { size: string; colour: string; shape: string }, withSize = false): string {
  const head = withSize ? `${o.size} ${o.colour} ${o.shape}` : `${o.colour} ${o.shape}`;
  return `${article(head)} ${head}`;
}

function joinAnd(xs: string[]): string {
  return xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`;
}

export class ClipsDataset {
  readonly config: ShapesConfig;
  readonly split: Split;
  readonly frames: number;
  readonly directions: Direction[];
  readonly distance: [number, number];

  constructor(options: ClipsOptions = {}) {
    const { split = 'train', frames = 8, directions = ['up', 'down', 'left', 'right', 'still'], distance = [0.25, 0.5], ...rest } = options;
    this.split = checkSplit('ClipsDataset', split);
    if (!Number.isInteger(frames) || frames < 2 || frames > 64)
      throw new Error(`ClipsDataset: frames must be an integer in [2, 64], got ${frames}`);
    if (!Array.isArray(directions) || directions.length === 0 || directions.some((d) => !DIRECTIONS.includes(d)))
      throw new Error(`ClipsDataset: directions must be a non-empty array of ${DIRECTIONS.join(' | ')}, got ${JSON.stringify(directions)}`);
    if (!Array.isArray(distance) || distance.length !== 2 || !(distance[0] > 0 && distance[0] <= distance[1] && distance[1] <= 0.8))
      throw new Error(`ClipsDataset: distance must be [min, max] with 0 < min <= max <= 0.8, got ${JSON.stringify(distance)}`);
    this.frames = frames;
    this.directions = [...directions];
    this.distance = [distance[0], distance[1]];
    const probe = resolveShapesConfig({ ...rest, positions: 'continuous' });
    const maxObjects = rest.maxObjects ?? Math.max(probe.minObjects, Math.min(2, probe.gridSize ** 2));
    this.config = resolveShapesConfig({ ...rest, maxObjects, positions: 'continuous' });
    const L = layoutOf(this.config);
    const rMax = Math.max(...this.config.sizes.map((s) => L.radiusPx[s][1]));
    const room = this.config.imageSize - 2 * (rMax + L.gapPx / 2);
    if (distance[1] * this.config.imageSize > room)
      throw new Error(
        `ClipsDataset: distance max ${distance[1]} (${(distance[1] * this.config.imageSize).toFixed(1)} px) does not fit: objects of radius up to ${rMax.toFixed(1)} px leave ${room.toFixed(1)} px at imageSize ${this.config.imageSize}`,
      );
  }

  private draw(rng: Rng): { split: Exclude<Split, 'all'>; scenes: Scene[]; motions: ObjectMotion[] } {
    const c = this.config;
    const S = c.imageSize;
    const L = layoutOf(c);
    const first = sampleScene(c, rng.fork('scene'));
    const T = this.frames;
    for (let attempt = 0; attempt < 1000; attempt++) {
      const r = rng.fork(`motion${attempt}`);
      const motions = first.objects.map((o) => {
        const direction = this.directions[r.int(0, this.directions.length)]!;
        const [ux, uy] = DIRECTION_VECTORS[direction];
        const dist = (this.distance[0] + (this.distance[1] - this.distance[0]) * r.uniform()) * S;
        const [dx, dy] = [ux * dist, uy * dist];
        const m = o.radius * S + L.gapPx / 2;
        const span = (d: number) => [m + Math.max(0, -d), S - m - Math.max(0, d)] as const;
        const [x0lo, x0hi] = span(dx);
        const [y0lo, y0hi] = span(dy);
        const x0 = x0lo + (x0hi - x0lo) * r.uniform();
        const y0 = y0lo + (y0hi - y0lo) * r.uniform();
        return { o, direction, x0, y0, dx, dy };
      });
      const scenes: Scene[] = [];
      let ok = true;
      for (let t = 0; t < T && ok; t++) {
        const f = t / (T - 1);
        const objects = motions.map(({ o, x0, y0, dx, dy }) => {
          const x = (x0 + f * dx) / S;
          const y = (y0 + f * dy) / S;
          return { ...o, x, y, cell: cellName(x, y, c.gridSize) };
        });
        for (let a = 0; a < objects.length && ok; a++)
          for (let b = a + 1; b < objects.length && ok; b++) ok = separated(objects[a]!, objects[b]!, S, L.gapPx);
        scenes.push({ ...first, objects });
      }
      if (!ok) continue;
      const out: ObjectMotion[] = motions.map(({ o, direction, x0, y0, dx, dy }) => ({
        shape: o.shape,
        colour: o.colour,
        size: o.size,
        direction,
        start: [x0 / S, y0 / S],
        end: [(x0 + dx) / S, (y0 + dy) / S],
      }));
      const key = out
        .map((m) => `${m.size} ${m.colour} ${m.shape} ${m.direction}`)
        .sort()
        .join(' | ');
      return { split: splitOfKey(key, hasHeldOutPair(first.objects, c), c.splitFractions), scenes, motions: out };
    }
    throw new Error(
      `ClipsDataset: could not draw non-overlapping paths for ${first.objects.length} objects in 1000 attempts; use fewer objects or a shorter distance`,
    );
  }

  /** Descriptions of a clip's motions (see the file comment). */
  describeMotions(motions: readonly ObjectMotion[]): { template: 'motion' | 'path'; text: string }[] {
    const g = this.config.gridSize;
    const order = [...motions].sort((a, b) => Math.floor(a.start[1] * g) - Math.floor(b.start[1] * g) || a.start[0] - b.start[0]);
    const out: { template: 'motion' | 'path'; text: string }[] = [
      {
        template: 'motion',
        text: joinAnd(order.map((m) => `${np(m)} ${m.direction === 'still' ? 'stays still' : `moves ${m.direction}`}`)),
      },
    ];
    const cells = order.map((m) => [cellName(m.start[0], m.start[1], g), cellName(m.end[0], m.end[1], g)] as const);
    if (g > 1 && order.every((m, k) => m.direction === 'still' || cells[k]![0] !== cells[k]![1]))
      out.push({
        template: 'path',
        text: joinAnd(
          order.map((m, k) =>
            m.direction === 'still'
              ? `${np(m)} stays ${PLACE_PHRASES[cells[k]![0]]}`
              : `${np(m)} moves from the ${cells[k]![0]} to the ${cells[k]![1]}`,
          ),
        ),
      });
    return out;
  }

  sample(i: number): Clip {
    if (!Number.isInteger(i) || i < 0) throw new Error(`ClipsDataset: index must be a non-negative integer, got ${i}`);
    const base = new Rng(this.config.seed).fork(`clips/${this.split}/${i}`);
    const d = drawUntil(
      `ClipsDataset(${this.split})`,
      (k) => this.draw(base.fork(k)),
      (clip) => this.split === 'all' || clip.split === this.split,
    );
    const noise = base.fork('noise');
    const frames = d.scenes.map((s, t) => {
      const img = renderScene(s, { antialias: this.config.antialias });
      return this.config.noiseStd > 0 ? addGaussianNoise(img, this.config.noiseStd, noise.fork(t)) : img;
    });
    const S = this.config.imageSize;
    const descriptions = this.describeMotions(d.motions);
    return {
      index: i,
      split: d.split,
      frames,
      video: stackImages(frames, S * S * 3),
      shape: [this.frames, S, S, 3],
      scenes: d.scenes,
      motions: d.motions,
      description: descriptions[0]!.text,
      descriptions,
    };
  }
}
