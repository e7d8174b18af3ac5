/**
 * The closed vocabulary of the Shapes world: five shapes, eight colours, two sizes, the cells of a
 * g x g position grid, backgrounds, and the number words used in captions and answers. Every caption,
 * question and answer of the datasets is built from these words (lowercase), so word-level
 * tokenizers and small models can learn them; the words match the `shapes` text grammar.
 *
 * Shapes are defined in a unit box: every shape spans exactly [-1, 1] x [-1, 1] (its "radius" r is
 * half the side of its bounding box), with y pointing down:
 *   circle   u^2 + v^2 <= 1
 *   square   |u| <= 1 and |v| <= 1
 *   triangle apex (0, -1), base from (-1, 1) to (1, 1) (points up)
 *   cross    (|u| <= 1/3 or |v| <= 1/3) inside the box (a plus sign of three equal bands)
 *   ring     1/4 <= u^2 + v^2 <= 1 (inner radius r / 2)
 *
 * The palette puts the eight colours far apart in RGB (the closest pairs, orange-red and
 * orange-yellow, are 0.47 apart; every colour is at least 0.5 from every background), so they stay
 * apart at 16 px, under anti-aliasing and under pixel noise.
 */

export const SHAPE_NAMES = ['circle', 'square', 'triangle', 'cross', 'ring'] as const;
export type ShapeName = (typeof SHAPE_NAMES)[number];

/** Plurals, for counts ("two crosses"). */
export const SHAPE_PLURALS: Readonly<Record<ShapeName, string>> = {
  circle: 'circles',
  square: 'squares',
  triangle: 'triangles',
  cross: 'crosses',
  ring: 'rings',
};

export const COLOUR_NAMES = ['red', 'green', 'blue', 'yellow', 'cyan', 'pink', 'white', 'orange'] as const;
export type ColourName = (typeof COLOUR_NAMES)[number];

export type Rgb = readonly [number, number, number];

/** Linear RGB in [0, 1] of each colour. */
export const PALETTE: Readonly<Record<ColourName, Rgb>> = {
  red: [0.9, 0.05, 0.1],
  green: [0.1, 0.75, 0.15],
  blue: [0.15, 0.3, 1.0],
  yellow: [1.0, 0.95, 0.15],
  cyan: [0.1, 0.85, 0.9],
  pink: [1.0, 0.35, 0.85],
  white: [0.95, 0.95, 0.95],
  orange: [1.0, 0.5, 0.0],
};

export const BACKGROUND_NAMES = ['black', 'grey', 'navy', 'brown'] as const;
export type BackgroundName = (typeof BACKGROUND_NAMES)[number];

/** Dark backgrounds, each at least 0.5 from every palette colour. */
export const BACKGROUNDS: Readonly<Record<BackgroundName, Rgb>> = {
  black: [0, 0, 0],
  grey: [0.3, 0.3, 0.3],
  navy: [0.05, 0.05, 0.25],
  brown: [0.3, 0.15, 0.05],
};

export const SIZE_NAMES = ['small', 'large'] as const;
export type SizeName = (typeof SIZE_NAMES)[number];

/** Cell names of a g x g grid, row-major from the top left. */
export const CELL_NAMES: Readonly<Record<1 | 2 | 3, readonly string[]>> = {
  1: ['middle'],
  2: ['top left', 'top right', 'bottom left', 'bottom right'],
  3: ['top left', 'top', 'top right', 'left', 'middle', 'right', 'bottom left', 'bottom', 'bottom right'],
};

/** The phrase that puts an object in a cell ("a red circle in the top left", "... at the top"). */
export const PLACE_PHRASES: Readonly<Record<string, string>> = {
  'top left': 'in the top left',
  top: 'at the top',
  'top right': 'in the top right',
  left: 'on the left',
  middle: 'in the middle',
  right: 'on the right',
  'bottom left': 'in the bottom left',
  bottom: 'at the bottom',
  'bottom right': 'in the bottom right',
};

export const RELATIONS = ['above', 'below', 'to the left of', 'to the right of'] as const;
export type Relation = (typeof RELATIONS)[number];

export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const;

export type GridSize = 1 | 2 | 3;

/** The grid cell (row-major index) holding a centre at (x, y), in fractions of the image side. */
export function cellIndex(x: number, y: number, grid: GridSize): number {
  const col = Math.min(grid - 1, Math.max(0, Math.floor(x * grid)));
  const row = Math.min(grid - 1, Math.max(0, Math.floor(y * grid)));
  return row * grid + col;
}

/** The name of the grid cell holding a centre at (x, y). */
export function cellName(x: number, y: number, grid: GridSize): string {
  return CELL_NAMES[grid][cellIndex(x, y, grid)]!;
}

/** Number word for 0-9 ("two"); larger numbers as digits. */
export function numberWord(n: number): string {
  return NUMBER_WORDS[n] ?? String(n);
}

/** "a" or "an" before a word. */
export function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

export function isShapeName(s: string): s is ShapeName {
  return (SHAPE_NAMES as readonly string[]).includes(s);
}

export function isColourName(s: string): s is ColourName {
  return (COLOUR_NAMES as readonly string[]).includes(s);
}

export function isSizeName(s: string): s is SizeName {
  return (SIZE_NAMES as readonly string[]).includes(s);
}

/**
 * The relation of object A to object B from their centres (y down): A is "above" B when B is lower
 * and the offset is more vertical than horizontal (|dy| > |dx|), "to the left of" when more
 * horizontal; exactly diagonal offsets have no relation (null).
 */
export function relationOf(ax: number, ay: number, bx: number, by: number): Relation | null {
  const dx = bx - ax;
  const dy = by - ay;
  if (Math.abs(dy) > Math.abs(dx)) return dy > 0 ? 'above' : 'below';
  if (Math.abs(dx) > Math.abs(dy)) return dx > 0 ? 'to the left of' : 'to the right of';
  return null;
}
