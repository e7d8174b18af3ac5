/**
 * Scene edits of the Shapes world and the image edit-pair dataset (source image, instruction, edited
 * image), in the spirit of InstructPix2Pix (Brooks et al. 2023) but procedural: the edit is applied
 * to the scene and both scenes are rendered, so the target is exact.
 *
 * Edits (grid positions; the edited object is named by its shortest unique description, see
 * `referringExpression`):
 *   recolour  "make the circle blue"            the object takes another colour
 *   reshape   "turn the red square into a ring" the object takes another shape
 *   resize    "make the ring large"             small <-> large, same cell
 *   move      "move the triangle to the top right" to a free cell
 *   remove    "remove the blue cross"           (only when another object remains)
 *   add       "add a green circle in the middle" a new object in a free cell
 * Each edit also has a narration for stories ("the circle turns blue.", "a green circle appears in
 * the middle."). Objects keep their jitter-free identity: an edited object keeps its cell (except
 * move) and gets a radius drawn from its (new) size class and a fresh jitter inside its cell.
 *
 * Splits: a pair is 'heldout' when its source or target scene holds a held-out (shape, colour) pair;
 * other pairs go to train / val / test by the hash of (source key, instruction), as in scene.ts.
 */
import { Rng } from '@mmlm/core';
import { layoutOf, resolveShapesConfig, type ShapesConfig, SPLITS, type Split } from './config.js';
import { referringExpression } from './language.js';
import { addGaussianNoise, renderScene } from './render.js';
import { drawUntil, hasHeldOutPair, type Scene, type ShapeObject, sampleScene, sceneKey, splitOfKey } from './scene.js';
import { article, CELL_NAMES, type ColourName, PLACE_PHRASES, type ShapeName, type SizeName } from './vocab.js';

export const EDIT_KINDS = ['recolour', 'reshape', 'resize', 'move', 'remove', 'add'] as const;
export type EditKind = (typeof EDIT_KINDS)[number];

export type SceneEdit =
  | { kind: 'recolour'; target: number; colour: ColourName }
  | { kind: 'reshape'; target: number; shape: ShapeName }
  | { kind: 'resize'; target: number; size: SizeName }
  | { kind: 'move'; target: number; cell: string }
  | { kind: 'remove'; target: number }
  | { kind: 'add'; shape: ShapeName; colour: ColourName; size: SizeName; cell: string };

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(0, xs.length)] as T;
}

/** An object of the given attributes in grid cell `cell`: radius from its size class, jitter inside the cell. */
export function objectInCell(
  config: ShapesConfig,
  rng: Rng,
  attrs: { shape: ShapeName; colour: ColourName; size: SizeName },
  cell: string,
): ShapeObject {
  const L = layoutOf(config);
  const g = config.gridSize;
  const c = CELL_NAMES[g].indexOf(cell);
  if (c < 0) throw new Error(`objectInCell: cell must be one of ${CELL_NAMES[g].join(', ')}, got ${JSON.stringify(cell)}`);
  const [lo, hi] = L.radiusPx[attrs.size];
  const r = lo + (hi - lo) * rng.uniform();
  const j = Math.max(0, L.capPx - r);
  const S = config.imageSize;
  const cx = ((c % g) + 0.5) * L.cellPx + (2 * rng.uniform() - 1) * j;
  const cy = (Math.floor(c / g) + 0.5) * L.cellPx + (2 * rng.uniform() - 1) * j;
  return { ...attrs, x: cx / S, y: cy / S, radius: r / S, cell };
}

function freeCells(scene: Scene): string[] {
  return CELL_NAMES[scene.gridSize].filter((c) => !scene.objects.some((o) => o.cell === c));
}

/** Objects a description picks out uniquely (indices). */
function nameable(scene: Scene): number[] {
  return scene.objects.map((o, i) => (referringExpression(o, scene) ? i : -1)).filter((i) => i >= 0);
}

/** Edit kinds applicable to a scene under a config. */
export function applicableEdits(scene: Scene, config: ShapesConfig): EditKind[] {
  const named = nameable(scene).length > 0;
  const free = freeCells(scene).length > 0;
  return EDIT_KINDS.filter((k) => {
    if (k === 'add') return free;
    if (!named) return false;
    if (k === 'recolour') return config.colours.length > 1;
    if (k === 'reshape') return config.shapes.length > 1;
    if (k === 'resize') return config.sizes.length > 1;
    if (k === 'move') return free;
    return scene.objects.length > 1;
  });
}

/** A random applicable edit of one of `kinds` (grid positions only). */
export function sampleEdit(scene: Scene, config: ShapesConfig, rng: Rng, kinds: readonly EditKind[] = EDIT_KINDS): SceneEdit {
  const ok = applicableEdits(scene, config).filter((k) => kinds.includes(k));
  if (ok.length === 0) throw new Error(`sampleEdit: none of the edit kinds ${kinds.join(', ')} applies to the scene "${sceneKey(scene)}"`);
  const kind = pick(rng, ok);
  if (kind === 'add')
    return {
      kind,
      shape: pick(rng, config.shapes),
      colour: pick(rng, config.colours),
      size: pick(rng, config.sizes),
      cell: pick(rng, freeCells(scene)),
    };
  const target = pick(rng, nameable(scene));
  const o = scene.objects[target]!;
  switch (kind) {
    case 'recolour':
      return {
        kind,
        target,
        colour: pick(
          rng,
          config.colours.filter((c) => c !== o.colour),
        ),
      };
    case 'reshape':
      return {
        kind,
        target,
        shape: pick(
          rng,
          config.shapes.filter((s) => s !== o.shape),
        ),
      };
    case 'resize':
      return { kind, target, size: o.size === 'small' ? 'large' : 'small' };
    case 'move':
      return { kind, target, cell: pick(rng, freeCells(scene)) };
    default:
      return { kind: 'remove', target };
  }
}

function checkTarget(scene: Scene, edit: SceneEdit): ShapeObject {
  if (edit.kind === 'add') throw new Error('checkTarget: add has no target');
  const o = scene.objects[edit.target];
  if (!o) throw new Error(`applyEdit: target must be an object index in [0, ${scene.objects.length}), got ${edit.target}`);
  return o;
}

/** The edited scene (a new object list; `rng` draws radii and jitter of changed objects). */
export function applyEdit(scene: Scene, edit: SceneEdit, config: ShapesConfig, rng: Rng): Scene {
  if (edit.kind === 'add') {
    if (scene.objects.some((o) => o.cell === edit.cell)) throw new Error(`applyEdit: add: cell ${JSON.stringify(edit.cell)} is occupied`);
    return { ...scene, objects: [...scene.objects, objectInCell(config, rng, edit, edit.cell)] };
  }
  const o = checkTarget(scene, edit);
  const replace = (n: ShapeObject | null): Scene => ({
    ...scene,
    objects: scene.objects.flatMap((p, i) => (i === edit.target ? (n ? [n] : []) : [p])),
  });
  switch (edit.kind) {
    case 'recolour':
      return replace({ ...o, colour: edit.colour });
    case 'reshape':
      return replace({ ...o, shape: edit.shape });
    case 'resize':
      return replace(objectInCell(config, rng, { ...o, size: edit.size }, o.cell));
    case 'move':
      if (scene.objects.some((p) => p.cell === edit.cell))
        throw new Error(`applyEdit: move: cell ${JSON.stringify(edit.cell)} is occupied`);
      return replace(objectInCell(config, rng, o, edit.cell));
    case 'remove':
      return replace(null);
  }
}

function refOf(scene: Scene, edit: SceneEdit): string {
  const o = checkTarget(scene, edit);
  const ref = referringExpression(o, scene);
  if (!ref) throw new Error(`editInstruction: object ${JSON.stringify(o)} has no unique description in the scene`);
  return ref.text;
}

/** The imperative instruction of an edit on `scene` ("make the circle blue"). */
export function editInstruction(scene: Scene, edit: SceneEdit): string {
  switch (edit.kind) {
    case 'add': {
      const np = `${edit.size} ${edit.colour} ${edit.shape}`;
      return `add ${article(np)} ${np} ${PLACE_PHRASES[edit.cell]}`;
    }
    case 'recolour':
      return `make ${refOf(scene, edit)} ${edit.colour}`;
    case 'reshape':
      return `turn ${refOf(scene, edit)} into ${article(edit.shape)} ${edit.shape}`;
    case 'resize':
      return `make ${refOf(scene, edit)} ${edit.size}`;
    case 'move':
      return `move ${refOf(scene, edit)} to the ${edit.cell}`;
    case 'remove':
      return `remove ${refOf(scene, edit)}`;
  }
}

/** The past-tense narration of an edit on `scene`, one sentence ("the circle turns blue."). */
export function editNarration(scene: Scene, edit: SceneEdit): string {
  switch (edit.kind) {
    case 'add': {
      const np = `${edit.size} ${edit.colour} ${edit.shape}`;
      return `then ${article(np)} ${np} appears ${PLACE_PHRASES[edit.cell]}.`;
    }
    case 'recolour':
      return `then ${refOf(scene, edit)} turns ${edit.colour}.`;
    case 'reshape':
      return `then ${refOf(scene, edit)} becomes ${article(edit.shape)} ${edit.shape}.`;
    case 'resize':
      return `then ${refOf(scene, edit)} becomes ${edit.size}.`;
    case 'move':
      return `then ${refOf(scene, edit)} moves to the ${edit.cell}.`;
    case 'remove':
      return `then ${refOf(scene, edit)} disappears.`;
  }
}

export interface EditPairsOptions extends Partial<ShapesConfig> {
  split?: Split;
  /** Edit kinds to draw from (default all). */
  kinds?: EditKind[];
}

export interface EditPair {
  index: number;
  split: Exclude<Split, 'all'>;
  /** [S * S * 3] HWC RGB in [0, 1]. */
  source: Float32Array;
  instruction: string;
  /** [S * S * 3] HWC RGB in [0, 1]. */
  target: Float32Array;
  sourceScene: Scene;
  targetScene: Scene;
  edit: SceneEdit;
  imageSize: number;
}

/** Resolves a config for grid-edit datasets (positions must be 'grid'; needs at least 2 cells). */
export function resolveGridConfig(who: string, rest: Partial<ShapesConfig>): ShapesConfig {
  if (rest.positions !== undefined && rest.positions !== 'grid')
    throw new Error(`${who}: positions must be 'grid' (edits move objects between cells), got ${JSON.stringify(rest.positions)}`);
  const config = resolveShapesConfig({ ...rest, positions: 'grid' });
  if (config.gridSize < 2)
    throw new Error(`${who}: gridSize must be >= 2 (edits need a free cell), got ${config.gridSize} at imageSize ${config.imageSize}`);
  return config;
}

export function checkSplit(who: string, split: unknown): Split {
  if (!SPLITS.includes(split as Split)) throw new Error(`${who}: split must be one of ${SPLITS.join(', ')}, got ${JSON.stringify(split)}`);
  return split as Split;
}

/** (source image, instruction, edited image) triples; item i is deterministic in (seed, split, i). */
export class EditPairsDataset {
  readonly config: ShapesConfig;
  readonly split: Split;
  readonly kinds: EditKind[];

  constructor(options: EditPairsOptions = {}) {
    const { split = 'train', kinds = [...EDIT_KINDS], ...rest } = options;
    this.split = checkSplit('EditPairsDataset', split);
    if (!Array.isArray(kinds) || kinds.length === 0 || kinds.some((k) => !EDIT_KINDS.includes(k)))
      throw new Error(`EditPairsDataset: kinds must be a non-empty array of ${EDIT_KINDS.join(' | ')}, got ${JSON.stringify(kinds)}`);
    this.kinds = [...kinds];
    this.config = resolveGridConfig('EditPairsDataset', rest);
  }

  private draw(rng: Rng): Omit<EditPair, 'index' | 'source' | 'target' | 'imageSize'> {
    const c = this.config;
    let sourceScene = sampleScene(c, rng.fork('scene'));
    for (let t = 0; applicableEdits(sourceScene, c).filter((k) => this.kinds.includes(k)).length === 0; t++) {
      if (t >= 100) throw new Error(`EditPairsDataset: no scene in 100 draws admits an edit of kinds ${this.kinds.join(', ')}`);
      sourceScene = sampleScene(c, rng.fork(`scene${t}`));
    }
    const edit = sampleEdit(sourceScene, c, rng.fork('edit'), this.kinds);
    const targetScene = applyEdit(sourceScene, edit, c, rng.fork('apply'));
    const instruction = editInstruction(sourceScene, edit);
    const held = hasHeldOutPair(sourceScene.objects, c) || hasHeldOutPair(targetScene.objects, c);
    const split = splitOfKey(`${sceneKey(sourceScene)} => ${instruction}`, held, c.splitFractions);
    return { split, instruction, sourceScene, targetScene, edit };
  }

  sample(i: number): EditPair {
    if (!Number.isInteger(i) || i < 0) throw new Error(`EditPairsDataset: index must be a non-negative integer, got ${i}`);
    const base = new Rng(this.config.seed).fork(`edits/${this.split}/${i}`);
    const d = drawUntil(
      `EditPairsDataset(${this.split})`,
      (k) => this.draw(base.fork(k)),
      (p) => this.split === 'all' || p.split === this.split,
    );
    const noise = base.fork('noise');
    const render = (s: Scene, stream: string) => {
      const img = renderScene(s, { antialias: this.config.antialias });
      return this.config.noiseStd > 0 ? addGaussianNoise(img, this.config.noiseStd, noise.fork(stream)) : img;
    };
    return {
      index: i,
      ...d,
      source: render(d.sourceScene, 'source'),
      target: render(d.targetScene, 'target'),
      imageSize: this.config.imageSize,
    };
  }
}
