/**
 * Scenes of the Shapes world: the objects of one image with their attributes, random scene
 * sampling (grid cells with jitter, or continuous positions with rejection of overlapping draws),
 * the canonical scene key and the deterministic split of a scene.
 *
 * Splits. A scene's key lists its objects' (shape, colour, size, cell) sorted, so two images with the
 * same content up to jitter and noise share a key. A scene containing any held-out (shape, colour)
 * pair belongs to 'heldout'; every other scene goes to train, val or test by a 32-bit FNV-1a hash of
 * its key (FNV-1a + fmix32, independent of the seed), so the splits are disjoint as sets of keys: no test caption
 * ever appears in train, under any seed.
 */
import { type Rng, stableHash32 } from '@mmlm/core';
import { layoutOf, type ShapesConfig, type Split } from './config.js';
import {
  BACKGROUND_NAMES,
  BACKGROUNDS,
  CELL_NAMES,
  type ColourName,
  cellName,
  type GridSize,
  type Rgb,
  type ShapeName,
  type SizeName,
} from './vocab.js';

export interface ShapeObject {
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
  /** Centre, as fractions of the image side (x to the right, y down). */
  x: number;
  y: number;
  /** Half the side of the bounding box, as a fraction of the image side. */
  radius: number;
  /** Name of the grid cell holding the centre. */
  cell: string;
}

export interface Scene {
  imageSize: number;
  gridSize: GridSize;
  background: Rgb;
  /** A BACKGROUND_NAMES entry, or 'custom' for an RGB triple from the config. */
  backgroundName: string;
  objects: ShapeObject[];
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(0, xs.length)] as T;
}

export function sceneBackground(config: ShapesConfig, rng: Rng): { background: Rgb; backgroundName: string } {
  const b = config.background;
  if (Array.isArray(b)) return { background: b as Rgb, backgroundName: 'custom' };
  const name = b === 'random' ? pick(rng, BACKGROUND_NAMES) : (b as keyof typeof BACKGROUNDS);
  return { background: BACKGROUNDS[name], backgroundName: name };
}

export interface SampleSceneOptions {
  /** Force the number of objects (default: uniform in [minObjects, maxObjects]). */
  numObjects?: number;
  /** Every object gets a different (shape, colour) pair (no repeats), so "the red circle" is unique. */
  distinct?: boolean;
}

/** Draws the attributes (shape, colour, size) of n objects. */
function drawAttributes(config: ShapesConfig, rng: Rng, n: number, distinct: boolean): [ShapeName, ColourName, SizeName][] {
  const out: [ShapeName, ColourName, SizeName][] = [];
  const combos = config.shapes.length * config.colours.length;
  if (distinct && n > combos)
    throw new Error(`sampleScene: ${n} distinct objects need ${n} (shape, colour) pairs, the config has ${combos}`);
  for (let i = 0; i < n; i++) {
    const size = pick(rng, config.sizes);
    if (!distinct && i > 0 && rng.uniform() < config.repeatProb) {
      const prev = out[rng.int(0, i)]!;
      out.push([prev[0], prev[1], size]);
      continue;
    }
    for (;;) {
      const shape = pick(rng, config.shapes);
      const colour = pick(rng, config.colours);
      if (!distinct || !out.some((o) => o[0] === shape && o[1] === colour)) {
        out.push([shape, colour, size]);
        break;
      }
    }
  }
  return out;
}

function uniformIn(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.uniform();
}

/** Places objects with the given attributes in distinct grid cells (chosen or random), with jitter. */
export function placeInGrid(config: ShapesConfig, rng: Rng, attrs: [ShapeName, ColourName, SizeName][], cells?: number[]): ShapeObject[] {
  const L = layoutOf(config);
  const g = config.gridSize;
  const free = rng.shuffle(Array.from({ length: g * g }, (_, i) => i));
  const chosen = cells ?? free.slice(0, attrs.length);
  return attrs.map(([shape, colour, size], i) => {
    const c = chosen[i]!;
    const [lo, hi] = L.radiusPx[size];
    const r = uniformIn(rng, lo, hi);
    const j = Math.max(0, L.capPx - r);
    const cx = ((c % g) + 0.5) * L.cellPx + uniformIn(rng, -j, j);
    const cy = (Math.floor(c / g) + 0.5) * L.cellPx + uniformIn(rng, -j, j);
    const S = config.imageSize;
    return { shape, colour, size, x: cx / S, y: cy / S, radius: r / S, cell: CELL_NAMES[g][c]! };
  });
}

/** True when the bounding boxes of a and b are at least gapPx apart along x or y. */
export function separated(a: ShapeObject, b: ShapeObject, imageSize: number, gapPx: number): boolean {
  const need = (a.radius + b.radius) * imageSize + gapPx;
  return Math.abs(a.x - b.x) * imageSize >= need - 1e-9 || Math.abs(a.y - b.y) * imageSize >= need - 1e-9;
}

/** Places objects anywhere in the image (bounding box inside, gap to the border and to each other). */
export function placeContinuous(config: ShapesConfig, rng: Rng, attrs: [ShapeName, ColourName, SizeName][]): ShapeObject[] {
  const L = layoutOf(config);
  const S = config.imageSize;
  for (let attempt = 0; attempt < 1000; attempt++) {
    const objs: ShapeObject[] = [];
    let ok = true;
    for (const [shape, colour, size] of attrs) {
      const [lo, hi] = L.radiusPx[size];
      const r = uniformIn(rng, lo, hi);
      const m = r + L.gapPx / 2;
      const cx = uniformIn(rng, m, S - m);
      const cy = uniformIn(rng, m, S - m);
      const o: ShapeObject = { shape, colour, size, x: cx / S, y: cy / S, radius: r / S, cell: cellName(cx / S, cy / S, config.gridSize) };
      if (objs.some((p) => !separated(o, p, S, L.gapPx))) {
        ok = false;
        break;
      }
      objs.push(o);
    }
    if (ok) return objs;
  }
  throw new Error(
    `placeContinuous: could not place ${attrs.length} objects without overlap in 1000 draws at imageSize ${S}, gridSize ${config.gridSize}; use fewer objects`,
  );
}

/** A random scene of the config (attributes, then positions, then background). */
export function sampleScene(config: ShapesConfig, rng: Rng, opts: SampleSceneOptions = {}): Scene {
  const n = opts.numObjects ?? rng.int(config.minObjects, config.maxObjects + 1);
  const cells = config.gridSize * config.gridSize;
  if (!Number.isInteger(n) || n < 0 || (config.positions === 'grid' && n > cells))
    throw new Error(`sampleScene: numObjects must be an integer in [0, ${cells}], got ${n}`);
  const attrs = drawAttributes(config, rng, n, opts.distinct ?? false);
  const objects = config.positions === 'grid' ? placeInGrid(config, rng, attrs) : placeContinuous(config, rng, attrs);
  return { imageSize: config.imageSize, gridSize: config.gridSize, ...sceneBackground(config, rng), objects };
}

/** Canonical key of a scene's content: objects' (shape, colour, size, cell), sorted. */
export function sceneKey(scene: Scene): string {
  return scene.objects
    .map((o) => `${o.size} ${o.colour} ${o.shape} @ ${o.cell}`)
    .sort()
    .join(' | ');
}

/** 32-bit FNV-1a of a string, finished with MurmurHash3's fmix32 (core's `stableHash32`). */
export const hashKey = stableHash32;

/** True when any object of the scene is a held-out (shape, colour) pair of the config. */
export function hasHeldOutPair(objects: readonly { shape: ShapeName; colour: ColourName }[], config: ShapesConfig): boolean {
  return objects.some((o) => config.heldOut.some(([s, c]) => s === o.shape && c === o.colour));
}

/** The split of a key (train / val / test by hash), or 'heldout' when `heldOut` is true. */
export function splitOfKey(key: string, heldOut: boolean, fractions: readonly [number, number, number]): Exclude<Split, 'all'> {
  if (heldOut) return 'heldout';
  const u = hashKey(key) / 4294967296;
  if (u < fractions[0]) return 'train';
  if (u < fractions[0] + fractions[1]) return 'val';
  return 'test';
}

/** The split a scene belongs to under a config. */
export function splitOfScene(scene: Scene, config: ShapesConfig): Exclude<Split, 'all'> {
  return splitOfKey(sceneKey(scene), hasHeldOutPair(scene.objects, config), config.splitFractions);
}

/** Draws from `draw(attempt)` until `accept` holds (deterministic: attempt k uses stream k). */
export function drawUntil<T>(what: string, draw: (attempt: number) => T, accept: (t: T) => boolean, maxAttempts = 10_000): T {
  for (let k = 0; k < maxAttempts; k++) {
    const t = draw(k);
    if (accept(t)) return t;
  }
  throw new Error(`${what}: no draw in ${maxAttempts} attempts landed in the requested split; check heldOut and splitFractions`);
}
