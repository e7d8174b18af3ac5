/**
 * Interleaved text-and-image documents for interleaved pre-training (as in the Chameleon / Emu /
 * MM-Interleaved style of documents): a short story about shapes in which every sentence is
 * followed by an image of the scene it describes. The first sentence places every object ("a small
 * red circle in the top left and a large blue ring in the middle."); each later sentence narrates
 * one scene edit ("then the circle turns blue.", see edits.ts), and the image after it shows the
 * scene after the edit, so every image is determined by the text before it.
 *
 * `text` joins the sentences with an image placeholder token after each ("<image>" by default), for
 * tokenizers that reserve one special token per image.
 */
import { Rng } from '@mmlm/core';
import type { ShapesConfig, Split } from './config.js';
import {
  applicableEdits,
  applyEdit,
  checkSplit,
  EDIT_KINDS,
  type EditKind,
  editNarration,
  resolveGridConfig,
  sampleEdit,
} from './edits.js';
import { sceneCaptions } from './language.js';
import { addGaussianNoise, renderScene } from './render.js';
import { drawUntil, hasHeldOutPair, type Scene, sampleScene, sceneKey, splitOfKey } from './scene.js';

export interface InterleavedOptions extends Partial<ShapesConfig> {
  split?: Split;
  /** Fewest and most sentences (each followed by one image); defaults 2 and 4. */
  minSentences?: number;
  maxSentences?: number;
  /** Edit kinds the story may use (default all). */
  kinds?: EditKind[];
  /** Placeholder written after each sentence in `text` (default "<image>"). */
  imageToken?: string;
}

export type InterleavedSegment = { type: 'text'; text: string } | { type: 'image'; image: Float32Array; scene: Scene };

export interface InterleavedDocument {
  index: number;
  split: Exclude<Split, 'all'>;
  /** text, image, text, image, ... */
  segments: InterleavedSegment[];
  sentences: string[];
  /** [S * S * 3] per sentence. */
  images: Float32Array[];
  scenes: Scene[];
  /** Sentences each followed by the image token, joined by spaces. */
  text: string;
  imageSize: number;
}

export class InterleavedDataset {
  readonly config: ShapesConfig;
  readonly split: Split;
  readonly minSentences: number;
  readonly maxSentences: number;
  readonly kinds: EditKind[];
  readonly imageToken: string;

  constructor(options: InterleavedOptions = {}) {
    const {
      split = 'train',
      minSentences = 2,
      maxSentences = Math.max(4, minSentences),
      kinds = [...EDIT_KINDS],
      imageToken = '<image>',
      ...rest
    } = options;
    this.split = checkSplit('InterleavedDataset', split);
    if (!Number.isInteger(minSentences) || minSentences < 1)
      throw new Error(`InterleavedDataset: minSentences must be an integer >= 1, got ${minSentences}`);
    if (!Number.isInteger(maxSentences) || maxSentences < minSentences || maxSentences > 16)
      throw new Error(`InterleavedDataset: maxSentences must be an integer in [minSentences (${minSentences}), 16], got ${maxSentences}`);
    if (!Array.isArray(kinds) || kinds.length === 0 || kinds.some((k) => !EDIT_KINDS.includes(k)))
      throw new Error(`InterleavedDataset: kinds must be a non-empty array of ${EDIT_KINDS.join(' | ')}, got ${JSON.stringify(kinds)}`);
    if (typeof imageToken !== 'string' || imageToken.length === 0)
      throw new Error(`InterleavedDataset: imageToken must be a non-empty string, got ${JSON.stringify(imageToken)}`);
    this.minSentences = minSentences;
    this.maxSentences = maxSentences;
    this.kinds = [...kinds];
    this.imageToken = imageToken;
    this.config = resolveGridConfig('InterleavedDataset', rest);
  }

  private draw(rng: Rng): { split: Exclude<Split, 'all'>; sentences: string[]; scenes: Scene[] } {
    const c = this.config;
    const n = rng.int(this.minSentences, this.maxSentences + 1);
    let scene = sampleScene(c, rng.fork('scene'));
    const placed = sceneCaptions(scene).find((t) => t.template === 'places')!.text;
    const sentences = [`${placed}.`];
    const scenes = [scene];
    for (let k = 1; k < n; k++) {
      const er = rng.fork(`edit${k}`);
      if (!applicableEdits(scene, c).some((kind) => this.kinds.includes(kind))) break;
      const edit = sampleEdit(scene, c, er, this.kinds);
      sentences.push(editNarration(scene, edit));
      scene = applyEdit(scene, edit, c, er.fork('apply'));
      scenes.push(scene);
    }
    const held = scenes.some((s) => hasHeldOutPair(s.objects, c));
    return { split: splitOfKey(`${sceneKey(scenes[0]!)} => ${sentences.join(' ')}`, held, c.splitFractions), sentences, scenes };
  }

  sample(i: number): InterleavedDocument {
    if (!Number.isInteger(i) || i < 0) throw new Error(`InterleavedDataset: index must be a non-negative integer, got ${i}`);
    const base = new Rng(this.config.seed).fork(`interleaved/${this.split}/${i}`);
    const d = drawUntil(
      `InterleavedDataset(${this.split})`,
      (k) => this.draw(base.fork(k)),
      (doc) => this.split === 'all' || doc.split === this.split,
    );
    const noise = base.fork('noise');
    const images = d.scenes.map((s, k) => {
      const img = renderScene(s, { antialias: this.config.antialias });
      return this.config.noiseStd > 0 ? addGaussianNoise(img, this.config.noiseStd, noise.fork(k)) : img;
    });
    const segments: InterleavedSegment[] = d.sentences.flatMap((text, k) => [
      { type: 'text' as const, text },
      { type: 'image' as const, image: images[k]!, scene: d.scenes[k]! },
    ]);
    return {
      index: i,
      split: d.split,
      segments,
      sentences: d.sentences,
      images,
      scenes: d.scenes,
      text: d.sentences.map((s) => `${s} ${this.imageToken}`).join(' '),
      imageSize: this.config.imageSize,
    };
  }
}
