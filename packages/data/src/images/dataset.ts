/**
 * The Shapes image dataset: item i of a split is a random scene (seeded by (seed, split, i)) drawn
 * until its key lands in the split (see scene.ts for the split rule), rendered, with its attribute
 * labels, captions from every applicable template and question/answer pairs. Everything is plain
 * typed arrays and strings; `batch` stacks images into one [B * S * S * 3] array.
 */
import { Rng } from '@mmlm/core';
import { layoutOf, resolveShapesConfig, type ShapesConfig, type ShapesLayout, SPLITS, type Split } from './config.js';
import { type Caption, type QA, sceneCaptions, sceneQA } from './language.js';
import { addGaussianNoise, renderScene } from './render.js';
import { drawUntil, type Scene, sampleScene, sceneKey, splitOfScene } from './scene.js';
import { stackImages } from './tensor.js';
import { BACKGROUND_NAMES, BACKGROUNDS, CELL_NAMES, COLOUR_NAMES, PALETTE, PLACE_PHRASES, SHAPE_NAMES, SIZE_NAMES } from './vocab.js';

export interface ShapesSample {
  index: number;
  split: Exclude<Split, 'all'>;
  /** [S * S * 3] HWC RGB in [0, 1]. */
  image: Float32Array;
  imageSize: number;
  scene: Scene;
  /** Canonical content key (see `sceneKey`). */
  key: string;
  /** One caption, chosen uniformly among the applicable templates. */
  caption: string;
  captions: Caption[];
  qa: QA[];
}

export interface ShapesBatch {
  /** [B * S * S * 3] HWC RGB in [0, 1]. */
  images: Float32Array;
  /** [B, S, S, 3]. */
  shape: [number, number, number, number];
  captions: string[];
  samples: ShapesSample[];
}

export interface ShapesDatasetOptions extends Partial<ShapesConfig> {
  /** Which split to draw from (default 'train'); 'all' draws without filtering. */
  split?: Split;
}

/** The exact, JSON-serialisable description of a Shapes dataset (for run records). */
export interface ShapesDescription {
  kind: 'shapes';
  version: 1;
  split: Split;
  config: ShapesConfig;
  layout: ShapesLayout;
  vocabulary: {
    shapes: readonly string[];
    colours: Record<string, readonly number[]>;
    sizes: readonly string[];
    cells: readonly string[];
    places: Record<string, string>;
    backgrounds: Record<string, readonly number[]>;
  };
  heldOutRule: string;
  splitRule: string;
}

export function describeShapes(options: ShapesDatasetOptions = {}): ShapesDescription {
  const { split = 'train', ...rest } = options;
  if (!SPLITS.includes(split)) throw new Error(`describeShapes: split must be one of ${SPLITS.join(', ')}, got ${JSON.stringify(split)}`);
  const config = resolveShapesConfig(rest);
  const cells = CELL_NAMES[config.gridSize];
  return {
    kind: 'shapes',
    version: 1,
    split,
    config,
    layout: layoutOf(config),
    vocabulary: {
      shapes: SHAPE_NAMES,
      colours: Object.fromEntries(COLOUR_NAMES.map((c) => [c, PALETTE[c]])),
      sizes: SIZE_NAMES,
      cells,
      places: Object.fromEntries(cells.map((c) => [c, PLACE_PHRASES[c]!])),
      backgrounds: Object.fromEntries(BACKGROUND_NAMES.map((b) => [b, BACKGROUNDS[b]])),
    },
    heldOutRule: `scenes containing any of the (shape, colour) pairs ${config.heldOut.map(([s, c]) => `${c} ${s}`).join(', ') || '(none)'} form the heldout split and never appear in train, val or test`,
    splitRule:
      'other scenes go to train / val / test by hashKey(sceneKey) / 2^32 against the cumulative splitFractions; sceneKey lists (size, colour, shape, cell) of the objects, sorted',
  };
}

export class ShapesDataset {
  readonly config: ShapesConfig;
  readonly split: Split;

  constructor(options: ShapesDatasetOptions = {}) {
    const { split = 'train', ...rest } = options;
    if (!SPLITS.includes(split)) throw new Error(`ShapesDataset: split must be one of ${SPLITS.join(', ')}, got ${JSON.stringify(split)}`);
    this.split = split;
    this.config = resolveShapesConfig(rest);
  }

  describe(): ShapesDescription {
    return describeShapes({ ...this.config, split: this.split });
  }

  private streams(i: number): Rng {
    if (!Number.isInteger(i) || i < 0) throw new Error(`ShapesDataset: index must be a non-negative integer, got ${i}`);
    return new Rng(this.config.seed).fork(`shapes/${this.split}/${i}`);
  }

  /** The scene of item i (no rendering). */
  scene(i: number): Scene {
    const base = this.streams(i);
    return drawUntil(
      `ShapesDataset(${this.split})`,
      (k) => sampleScene(this.config, base.fork(k)),
      (s) => this.split === 'all' || splitOfScene(s, this.config) === this.split,
    );
  }

  /** Renders a scene with this dataset's anti-aliasing and noise (noise seeded by `rng`). */
  render(scene: Scene, rng: Rng): Float32Array {
    const clean = renderScene(scene, { antialias: this.config.antialias });
    return this.config.noiseStd > 0 ? addGaussianNoise(clean, this.config.noiseStd, rng) : clean;
  }

  sample(i: number): ShapesSample {
    const scene = this.scene(i);
    const rng = this.streams(i).fork('render');
    const image = this.render(scene, rng.fork('noise'));
    const captions = sceneCaptions(scene);
    const caption = captions[rng.int(0, captions.length)]!.text;
    return {
      index: i,
      split: splitOfScene(scene, this.config),
      image,
      imageSize: this.config.imageSize,
      scene,
      key: sceneKey(scene),
      caption,
      captions,
      qa: sceneQA(scene, rng.fork('qa'), this.config.shapes, this.config.colours),
    };
  }

  /** Items start, start + 1, ..., start + count - 1. */
  *iterate(start = 0, count = Number.POSITIVE_INFINITY): IterableIterator<ShapesSample> {
    for (let i = start; i < start + count; i++) yield this.sample(i);
  }

  /** Items start .. start + batchSize - 1, images stacked. */
  batch(start: number, batchSize: number): ShapesBatch {
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new Error(`ShapesDataset.batch: batchSize must be a positive integer, got ${batchSize}`);
    const samples = Array.from({ length: batchSize }, (_, b) => this.sample(start + b));
    const S = this.config.imageSize;
    return {
      images: stackImages(
        samples.map((s) => s.image),
        S * S * 3,
      ),
      shape: [batchSize, S, S, 3],
      captions: samples.map((s) => s.caption),
      samples,
    };
  }
}
