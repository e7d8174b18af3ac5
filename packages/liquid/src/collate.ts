/**
 * Liquid's sequence formats, exactly as `DataCollatorForSupervisedDataset` (liquid/train/train.py)
 * builds them (brief 2.4), with HF's label convention (labels aligned with input_ids, -100 = no
 * loss; the loss shifts by one):
 *   text-to-image  [BOS] caption+suffix <boi> c_1 .. c_N <eoi> <eos>
 *                  labels -100 through <boi>; loss on the codes, <eoi> and <eos>.
 *                  CFG dropout: with probability 0.1 the text is `<unconditional>` alone.
 *   image-to-text  [BOS] <boi> c_1 .. c_N <eoi> "The caption of this image is:" caption <eos>
 *                  loss on the caption and <eos> only.
 *   text           [BOS] text (no <eos>: Gemma's tokenizer adds BOS only); loss on every token.
 * A batch is right-padded with the pad id (labels -100) and truncated to maxLength, with
 * attention mask = (input_ids != pad). Draw order per pair as train.py: T2I coin, suffix, dropout.
 */
import type { Rng } from '@mmlm/core';
import type { CollatorConfig, Mix } from './config.js';
import { checkCodeRange, type LiquidVocab } from './model.js';

export const IGNORE_INDEX = -100;

/** What the collator needs from a text tokenizer: plain ids, no BOS/EOS added. */
export interface TextTokenizerLike {
  encode(text: string): number[];
}

export type ExampleKind = 'text' | 't2i' | 'i2t';

export interface Example {
  kind: ExampleKind;
  inputIds: number[];
  /** Same length as inputIds; IGNORE_INDEX where there is no loss. */
  labels: number[];
}

function checkTextIds(who: string, ids: readonly number[], vocab: LiquidVocab): void {
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab.textVocabSize)
      throw new Error(`${who}: text id ${id} at index ${i} must be an integer in [0, ${vocab.textVocabSize}) (image ids are not text)`);
  });
}

/** Codes of one image -> token ids V + c, checked: exactly tokensPerImage codes, each in [0, K). */
function imageSpan(who: string, codes: ArrayLike<number>, vocab: LiquidVocab): number[] {
  if (codes.length !== vocab.tokensPerImage)
    throw new Error(`${who}: an image span must hold exactly ${vocab.tokensPerImage} codes, got ${codes.length}`);
  checkCodeRange(who, codes, vocab.numCodes);
  return Array.from(codes, (c) => vocab.codeOffset + c);
}

/**
 * Text-to-image: `promptIds` are the ids of caption + suffix (null: the unconditional example
 * [BOS] <unconditional> <boi> ...). Labels -100 for [BOS] .. <boi>.
 */
export function t2iExample(vocab: LiquidVocab, promptIds: readonly number[] | null, codes: ArrayLike<number>): Example {
  const img = imageSpan('t2iExample', codes, vocab);
  let head: number[];
  if (promptIds === null) head = [vocab.bos, vocab.unconditional, vocab.boi];
  else {
    checkTextIds('t2iExample', promptIds, vocab);
    head = [vocab.bos, ...promptIds, vocab.boi];
  }
  const inputIds = [...head, ...img, vocab.eoi, vocab.eos];
  const labels = inputIds.map((id, i) => (i < head.length ? IGNORE_INDEX : id));
  return { kind: 't2i', inputIds, labels };
}

/** Image-to-text: `instructionIds` are the ids of "The caption of this image is:". Loss on caption + <eos>. */
export function i2tExample(
  vocab: LiquidVocab,
  codes: ArrayLike<number>,
  instructionIds: readonly number[],
  captionIds: readonly number[],
): Example {
  const img = imageSpan('i2tExample', codes, vocab);
  checkTextIds('i2tExample (instruction)', instructionIds, vocab);
  checkTextIds('i2tExample (caption)', captionIds, vocab);
  const head = [vocab.bos, vocab.boi, ...img, vocab.eoi, ...instructionIds];
  const tail = [...captionIds, vocab.eos];
  return { kind: 'i2t', inputIds: [...head, ...tail], labels: [...head.map(() => IGNORE_INDEX), ...tail] };
}

/** Text: [BOS] + ids, loss on every token (the BOS label is never a target after the shift). */
export function textExample(vocab: LiquidVocab, ids: readonly number[]): Example {
  checkTextIds('textExample', ids, vocab);
  const inputIds = [vocab.bos, ...ids];
  return { kind: 'text', inputIds, labels: [...inputIds] };
}

export interface Batch {
  /** [B, T] row-major, right-padded with vocab.pad. */
  inputIds: Int32Array;
  /** [B, T], IGNORE_INDEX at padding. */
  labels: Int32Array;
  /** [B, T], 1 where inputIds != pad (train.py's attention_mask). */
  attentionMask: Uint8Array;
  shape: [number, number];
}

/** Right-pad to the longest example, then truncate to maxLength (train.py's batching). */
export function collate(examples: readonly Example[], vocab: LiquidVocab, maxLength: number): Batch {
  if (examples.length === 0) throw new Error('collate: need at least one example, got 0');
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new Error(`collate: maxLength must be an integer >= 2, got ${maxLength}`);
  examples.forEach((e, i) => {
    if (e.inputIds.length !== e.labels.length)
      throw new Error(`collate: example ${i} has ${e.inputIds.length} input ids but ${e.labels.length} labels`);
  });
  const B = examples.length;
  const T = Math.min(maxLength, Math.max(...examples.map((e) => e.inputIds.length)));
  const inputIds = new Int32Array(B * T).fill(vocab.pad);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  examples.forEach((e, b) => {
    const n = Math.min(T, e.inputIds.length);
    inputIds.set(e.inputIds.slice(0, n), b * T);
    labels.set(e.labels.slice(0, n), b * T);
  });
  const attentionMask = Uint8Array.from(inputIds, (id) => (id !== vocab.pad ? 1 : 0));
  return { inputIds, labels, attentionMask, shape: [B, T] };
}

/** Draw an example kind with probabilities proportional to the mix weights. */
export function drawKind(mix: Mix, rng: Rng): ExampleKind {
  const total = mix.text + mix.t2i + mix.i2t;
  if (!(total > 0)) throw new Error(`drawKind: mix weights must not all be 0, got ${JSON.stringify(mix)}`);
  let u = rng.uniform() * total;
  if (u < mix.text) return 'text';
  u -= mix.text;
  return u < mix.t2i || mix.i2t === 0 ? 't2i' : 'i2t';
}

/** The collator with its tokenizer and random draws (suffix choice, CFG dropout, T2I coin). */
export class LiquidCollator {
  readonly maxLength: number;
  private readonly instructionIds: number[];

  constructor(
    readonly tokenizer: TextTokenizerLike,
    readonly vocab: LiquidVocab,
    readonly config: CollatorConfig,
    maxLength: number,
    private readonly rng: Rng,
  ) {
    this.maxLength = config.maxLength ?? maxLength;
    this.instructionIds = tokenizer.encode(config.captionInstruction);
  }

  /** T2I of a caption: suffix drawn uniformly, then `<unconditional>` with probability uncondProb. */
  t2i(caption: string, codes: ArrayLike<number>): Example {
    const suffixes = this.config.t2iSuffixes;
    const suffix = suffixes[this.rng.int(0, suffixes.length)] as string;
    const uncond = this.rng.uniform() < this.config.uncondProb;
    return t2iExample(this.vocab, uncond ? null : this.tokenizer.encode(caption + suffix), codes);
  }

  i2t(caption: string, codes: ArrayLike<number>): Example {
    return i2tExample(this.vocab, codes, this.instructionIds, this.tokenizer.encode(caption));
  }

  text(text: string | readonly number[]): Example {
    return textExample(this.vocab, typeof text === 'string' ? this.tokenizer.encode(text) : text);
  }

  /** An image-text pair as train.py: T2I with probability t2iRatio, else a caption example. */
  pair(caption: string, codes: ArrayLike<number>, t2iRatio: number): Example {
    if (!(t2iRatio >= 0 && t2iRatio <= 1)) throw new Error(`LiquidCollator.pair: t2iRatio must be in [0, 1], got ${t2iRatio}`);
    return this.rng.uniform() < t2iRatio ? this.t2i(caption, codes) : this.i2t(caption, codes);
  }

  collate(examples: readonly Example[]): Batch {
    return collate(examples, this.vocab, this.maxLength);
  }
}
