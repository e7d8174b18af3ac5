/**
 * Configuration of the Shapes world: image size, object counts, vocabulary subsets, position mode,
 * backgrounds, noise, held-out attribute combinations and split fractions, with validation and the
 * pixel layout it implies.
 *
 * Layout. The image is divided into a g x g grid of cells of side S / g. An object's radius r (half
 * the side of its bounding box) is drawn from its size class as a fraction of the cell's capacity
 * cap = S / (2g) - gap / 2 (the largest radius that keeps a `gap`-pixel margin to the neighbouring
 * cells): small r in [0.62, 0.72] cap, large r in [0.9, 1.0] cap. In grid mode each object gets its
 * own cell and a jitter of at most cap - r per axis, so objects never overlap and always sit in their
 * cell; in continuous mode centres are uniform over the image and overlapping draws (bounding boxes
 * closer than `gap` pixels) are rejected. The default grid is the largest g in {3, 2, 1} whose small
 * objects keep a radius of at least 2.5 px (g = 3 from 31 px, g = 2 from 21 px): a 32 px image has
 * 3 x 3 cells, small radii 2.7-3.1 px and large radii 3.9-4.3 px.
 */
import {
  BACKGROUND_NAMES,
  type BackgroundName,
  COLOUR_NAMES,
  type ColourName,
  type GridSize,
  isColourName,
  isShapeName,
  isSizeName,
  type Rgb,
  SHAPE_NAMES,
  type ShapeName,
  SIZE_NAMES,
  type SizeName,
} from './vocab.js';

export type PositionMode = 'grid' | 'continuous';
export type Split = 'train' | 'val' | 'test' | 'heldout' | 'all';
export const SPLITS: readonly Split[] = ['train', 'val', 'test', 'heldout', 'all'];

export interface ShapesConfig {
  /** Seed of every random draw (scenes, jitter, noise). */
  seed: number;
  /** Image side in pixels (16-128; 16-64 is what the analyzer is measured on). */
  imageSize: number;
  minObjects: number;
  maxObjects: number;
  shapes: ShapeName[];
  colours: ColourName[];
  sizes: SizeName[];
  /** 'grid': one object per cell of a g x g grid (default); 'continuous': anywhere, no overlap. */
  positions: PositionMode;
  /** Cells per side (1-3); sets the position names and the object sizes. */
  gridSize: GridSize;
  /** A background name, 'random' (one of BACKGROUND_NAMES per image) or an RGB triple in [0, 1]. */
  background: BackgroundName | 'random' | Rgb;
  /** Standard deviation of Gaussian pixel noise added after rendering (then clipped to [0, 1]). */
  noiseStd: number;
  /** 4 x 4 supersampling per pixel; false samples each pixel's centre only (hard edges). */
  antialias: boolean;
  /** Probability that an object repeats the shape and colour of an earlier one (for counting). */
  repeatProb: number;
  /** (shape, colour) pairs never shown in train/val/test; scenes with one form the 'heldout' split. */
  heldOut: [ShapeName, ColourName][];
  /** Fractions of train / val / test among the scenes without held-out pairs. */
  splitFractions: [number, number, number];
  /** Minimum gap in pixels between the bounding boxes of two objects. */
  gapPx: number;
}

/**
 * The default held-out (shape, colour) pairs for compositional generalisation: one colour per shape,
 * all different, so every shape is still seen in train with 7 of its 8 colours and every colour with
 * 4 of its 5 shapes.
 */
export const DEFAULT_HELD_OUT: readonly (readonly [ShapeName, ColourName])[] = [
  ['circle', 'cyan'],
  ['square', 'orange'],
  ['triangle', 'pink'],
  ['cross', 'blue'],
  ['ring', 'yellow'],
];

/** Radius ranges of the size classes as fractions of the cell capacity (see the file comment). */
export const SIZE_FRACTIONS: Readonly<Record<SizeName, readonly [number, number]>> = {
  small: [0.62, 0.72],
  large: [0.9, 1.0],
};

/** Smallest radius (px) at which the five shapes stay recognisable. */
export const MIN_RADIUS_PX = 2.5;

export interface ShapesLayout {
  imageSize: number;
  gridSize: GridSize;
  /** Side of a grid cell (px). */
  cellPx: number;
  /** Largest radius that keeps the gap to neighbouring cells (px). */
  capPx: number;
  /** [min, max] radius of each size class (px). */
  radiusPx: Record<SizeName, [number, number]>;
  /** Radius (px) separating small from large: the geometric mean of the class bounds. */
  sizeThresholdPx: number;
  gapPx: number;
}

/** The pixel layout of a grid size: cell side, capacity and radius ranges. */
export function shapesLayout(imageSize: number, gridSize: GridSize, gapPx = 2): ShapesLayout {
  const cellPx = imageSize / gridSize;
  const capPx = cellPx / 2 - gapPx / 2;
  const radiusPx = {
    small: [SIZE_FRACTIONS.small[0] * capPx, SIZE_FRACTIONS.small[1] * capPx] as [number, number],
    large: [SIZE_FRACTIONS.large[0] * capPx, SIZE_FRACTIONS.large[1] * capPx] as [number, number],
  };
  const sizeThresholdPx = Math.sqrt(radiusPx.small[1] * radiusPx.large[0]);
  return { imageSize, gridSize, cellPx, capPx, radiusPx, sizeThresholdPx, gapPx };
}

/** The largest grid (3, 2 or 1 cells per side) whose small objects are at least MIN_RADIUS_PX. */
export function defaultGridSize(imageSize: number, gapPx = 2): GridSize {
  for (const g of [3, 2, 1] as const) if (shapesLayout(imageSize, g, gapPx).radiusPx.small[0] >= MIN_RADIUS_PX) return g;
  return 1;
}

function fail(field: string, expected: string, got: unknown): never {
  throw new Error(`ShapesConfig.${field}: expected ${expected}, got ${JSON.stringify(got)}`);
}

function checkList<T extends string>(field: string, xs: unknown, valid: readonly T[], ok: (s: string) => boolean): T[] {
  if (!Array.isArray(xs) || xs.length === 0) fail(field, `a non-empty array of ${valid.join(' | ')}`, xs);
  for (const x of xs) if (typeof x !== 'string' || !ok(x)) fail(field, `values among ${valid.join(' | ')}`, x);
  if (new Set(xs).size !== xs.length) fail(field, 'no repeated values', xs);
  return [...(xs as T[])];
}

/** Fills in defaults and validates; every error names the field, the expected and the actual value. */
export function resolveShapesConfig(partial: Partial<ShapesConfig> = {}): ShapesConfig {
  const known = new Set([
    'seed',
    'imageSize',
    'minObjects',
    'maxObjects',
    'shapes',
    'colours',
    'sizes',
    'positions',
    'gridSize',
    'background',
    'noiseStd',
    'antialias',
    'repeatProb',
    'heldOut',
    'splitFractions',
    'gapPx',
  ]);
  for (const k of Object.keys(partial))
    if (!known.has(k) && k !== 'split') fail(k, `one of the known fields (${[...known].join(', ')})`, k);
  const seed = partial.seed ?? 0;
  if (!Number.isInteger(seed)) fail('seed', 'an integer', seed);
  const imageSize = partial.imageSize ?? 32;
  if (!Number.isInteger(imageSize) || imageSize < 16 || imageSize > 128) fail('imageSize', 'an integer in [16, 128]', imageSize);
  const gapPx = partial.gapPx ?? 2;
  if (!(typeof gapPx === 'number' && gapPx >= 0 && gapPx <= 8)) fail('gapPx', 'a number in [0, 8]', gapPx);
  const gridSize = partial.gridSize ?? defaultGridSize(imageSize, gapPx);
  if (gridSize !== 1 && gridSize !== 2 && gridSize !== 3) fail('gridSize', '1, 2 or 3', gridSize);
  const positions = partial.positions ?? 'grid';
  if (positions !== 'grid' && positions !== 'continuous') fail('positions', "'grid' or 'continuous'", positions);
  const shapes = checkList<ShapeName>('shapes', partial.shapes ?? [...SHAPE_NAMES], SHAPE_NAMES, isShapeName);
  const colours = checkList<ColourName>('colours', partial.colours ?? [...COLOUR_NAMES], COLOUR_NAMES, isColourName);
  const sizes = checkList<SizeName>('sizes', partial.sizes ?? [...SIZE_NAMES], SIZE_NAMES, isSizeName);
  const cells = gridSize * gridSize;
  const minObjects = partial.minObjects ?? 1;
  const maxObjects = partial.maxObjects ?? Math.max(minObjects, Math.min(3, cells));
  if (!Number.isInteger(minObjects) || minObjects < 1) fail('minObjects', 'an integer >= 1', minObjects);
  if (!Number.isInteger(maxObjects) || maxObjects < minObjects) fail('maxObjects', `an integer >= minObjects (${minObjects})`, maxObjects);
  if (maxObjects > cells) fail('maxObjects', `at most ${cells} (the cells of a ${gridSize} x ${gridSize} grid)`, maxObjects);
  const layout = shapesLayout(imageSize, gridSize, gapPx);
  const smallest = Math.min(...sizes.map((s) => layout.radiusPx[s][0]));
  if (smallest < MIN_RADIUS_PX)
    fail(
      'gridSize',
      `a grid whose ${sizes.includes('small') ? 'small' : 'large'} objects have a radius >= ${MIN_RADIUS_PX} px ` +
        `(at imageSize ${imageSize} use gridSize <= ${defaultGridSize(imageSize, gapPx)}); ${gridSize} gives ${smallest.toFixed(2)} px`,
      gridSize,
    );
  const background = partial.background ?? 'black';
  if (Array.isArray(background)) {
    if (background.length !== 3 || background.some((v) => typeof v !== 'number' || !(v >= 0 && v <= 1)))
      fail('background', 'an RGB triple with values in [0, 1]', background);
  } else if (background !== 'random' && !(BACKGROUND_NAMES as readonly string[]).includes(background as string))
    fail('background', `'random', an RGB triple or one of ${BACKGROUND_NAMES.join(' | ')}`, background);
  const noiseStd = partial.noiseStd ?? 0;
  if (!(typeof noiseStd === 'number' && noiseStd >= 0 && noiseStd <= 1)) fail('noiseStd', 'a number in [0, 1]', noiseStd);
  const antialias = partial.antialias ?? true;
  if (typeof antialias !== 'boolean') fail('antialias', 'a boolean', antialias);
  const repeatProb = partial.repeatProb ?? 0.25;
  if (!(typeof repeatProb === 'number' && repeatProb >= 0 && repeatProb <= 1)) fail('repeatProb', 'a number in [0, 1]', repeatProb);
  const heldOutIn = partial.heldOut ?? DEFAULT_HELD_OUT.map(([s, c]) => [s, c] as [ShapeName, ColourName]);
  if (!Array.isArray(heldOutIn)) fail('heldOut', 'an array of [shape, colour] pairs', heldOutIn);
  const heldOut = heldOutIn.map((p) => {
    if (!Array.isArray(p) || p.length !== 2 || !isShapeName(p[0]) || !isColourName(p[1]))
      fail('heldOut', 'an array of [shape, colour] pairs with known names', p);
    return [p[0], p[1]] as [ShapeName, ColourName];
  });
  const splitFractions = partial.splitFractions ?? [0.8, 0.1, 0.1];
  if (
    !Array.isArray(splitFractions) ||
    splitFractions.length !== 3 ||
    splitFractions.some((f) => typeof f !== 'number' || !(f >= 0)) ||
    Math.abs(splitFractions[0] + splitFractions[1] + splitFractions[2] - 1) > 1e-9
  )
    fail('splitFractions', '[train, val, test], non-negative, summing to 1', splitFractions);
  return {
    seed,
    imageSize,
    minObjects,
    maxObjects,
    shapes,
    colours,
    sizes,
    positions,
    gridSize,
    background: Array.isArray(background) ? ([background[0], background[1], background[2]] as Rgb) : background,
    noiseStd,
    antialias,
    repeatProb,
    heldOut,
    splitFractions: [splitFractions[0], splitFractions[1], splitFractions[2]],
    gapPx,
  };
}

/** The layout of a resolved config. */
export function layoutOf(config: ShapesConfig): ShapesLayout {
  return shapesLayout(config.imageSize, config.gridSize, config.gapPx);
}
