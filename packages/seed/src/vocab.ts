/**
 * SEED-LLaMA's token layout and training sequences (Ge et al. 2023, arXiv 2310.01218; brief 1.4 and
 * 1.9). Over a text vocabulary of V ids (the text tokenizer's, specials included):
 *   ids [0, V)            text tokens
 *   ids [V, V + K)        the K image codes, code k <-> id V + k <-> string `<img_{k:05d}>`
 *   id  V + K             `<img>`   (begin of image)
 *   id  V + K + 1         `</img>`  (end of image)
 * so the extended vocabulary has V + K + 2 ids, as the reference's 32000 LLaMA tokens + 8192 codes +
 * `<img>` / `</img>`. An image is the span `<img> c_1 .. c_Q </img>` (Q = 32 in the reference).
 *
 * Sequences (token ids, and labels unshifted as HF's: the loss compares logits at t with labels at
 * t + 1; IGNORE_INDEX = -100 leaves a position out of the loss):
 * - text pre-training:   `<bos> words <eos>`, every token labelled.
 * - multimodal pre-training, SEED-LLaMA's `<s> caption image </s>` reversed with probability
 *   `reverseRatio` (0.5) to `<s> image caption </s>`; the loss covers every non-pad token:
 *     text-first  (text -> image):  `<bos> caption <img> codes </img> <eos>`
 *     image-first (image -> text):  `<bos> <img> codes </img> caption <eos>`
 * - SFT, the reference's "USER: ... ASSISTANT:" template (`ChatTemplate`: the ids of the user and
 *   assistant markers), the loss on the assistant's tokens only (every token after the assistant
 *   marker, `<eos>` included; the prompt, `<bos>` and the markers get -100):
 *     caption  (image -> text):  `<bos> USER: <img> codes </img> ASSISTANT: caption <eos>`
 *     generate (text -> image):  `<bos> USER: caption ASSISTANT: <img> codes </img> <eos>`
 * Padding (`padSequences`) goes on the right with label -100, so a causal model never attends to it.
 */
import type { Rng } from '@mmlm/core';

/** Label of a position left out of the loss (PyTorch's CrossEntropyLoss ignore_index, HF's -100). */
export const IGNORE_INDEX = -100;

/** The token ids of SEED-LLaMA's extended vocabulary (see the file comment). */
export interface SeedVocab {
  /** V: ids [0, V) are the text tokenizer's. */
  textVocabSize: number;
  /** K: image codes in the codebook. */
  numCodes: number;
  /** Q: codes per image. */
  tokensPerImage: number;
  /** Id of code 0 (= V). */
  codeOffset: number;
  /** `<img>` (= V + K). */
  img: number;
  /** `</img>` (= V + K + 1). */
  endImg: number;
  /** V + K + 2. */
  size: number;
  bos: number;
  eos: number;
  pad: number;
}

export interface SeedVocabInput {
  textVocabSize: number;
  numCodes: number;
  tokensPerImage: number;
  bos: number;
  eos: number;
  pad: number;
}

function positiveInt(who: string, name: string, x: unknown): number {
  if (!Number.isInteger(x) || (x as number) < 1) throw new Error(`${who}: ${name} must be a positive integer, got ${String(x)}`);
  return x as number;
}

/** The extended vocabulary of a text vocabulary of V ids, K codes and Q codes per image. */
export function seedVocab(o: SeedVocabInput): SeedVocab {
  const V = positiveInt('seedVocab', 'textVocabSize', o?.textVocabSize);
  const K = positiveInt('seedVocab', 'numCodes', o.numCodes);
  const Q = positiveInt('seedVocab', 'tokensPerImage', o.tokensPerImage);
  for (const k of ['bos', 'eos', 'pad'] as const) {
    const id = o[k];
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new Error(`seedVocab: ${k} must be a text id in [0, ${V}) (textVocabSize ${V}), got ${String(id)}`);
  }
  if (new Set([o.bos, o.eos, o.pad]).size !== 3)
    throw new Error(`seedVocab: bos, eos and pad must be three different ids, got ${o.bos}, ${o.eos}, ${o.pad}`);
  return {
    textVocabSize: V,
    numCodes: K,
    tokensPerImage: Q,
    codeOffset: V,
    img: V + K,
    endImg: V + K + 1,
    size: V + K + 2,
    bos: o.bos,
    eos: o.eos,
    pad: o.pad,
  };
}

/** The reference's string of code k: `<img_00042>` (5 digits, as `<img_{k:05d}>`). */
export function codeTokenString(k: number): string {
  if (!Number.isInteger(k) || k < 0) throw new Error(`codeTokenString: code must be an integer >= 0, got ${k}`);
  return `<img_${String(k).padStart(5, '0')}>`;
}

/** Token id of image code k: V + k. Errors name the code range and the value. */
export function codeToTokenId(v: SeedVocab, code: number): number {
  if (!Number.isInteger(code) || code < 0 || code >= v.numCodes)
    throw new Error(`codeToTokenId: code must be an integer in [0, ${v.numCodes}) (K = numCodes ${v.numCodes}), got ${code}`);
  return v.codeOffset + code;
}

/** What kind of id `id` is, for error messages. */
export function describeTokenId(v: SeedVocab, id: number): string {
  if (!Number.isInteger(id)) return `not an integer`;
  if (id < 0 || id >= v.size) return `outside the vocabulary [0, ${v.size})`;
  if (id < v.textVocabSize) return `a text id (text ids are [0, ${v.textVocabSize}))`;
  if (id < v.img) return `code ${id - v.codeOffset}`;
  return id === v.img ? '<img>' : '</img>';
}

/** Image code of token id `id` (inverse of codeToTokenId); any other id is an error naming what it is. */
export function tokenIdToCode(v: SeedVocab, id: number): number {
  if (!isCodeId(v, id))
    throw new Error(
      `tokenIdToCode: expected a code token id in [${v.codeOffset}, ${v.codeOffset + v.numCodes}), got ${id} (${describeTokenId(v, id)})`,
    );
  return id - v.codeOffset;
}

export function isCodeId(v: SeedVocab, id: number): boolean {
  return Number.isInteger(id) && id >= v.codeOffset && id < v.codeOffset + v.numCodes;
}

/** `<img> c_1 .. c_Q </img>` for the Q codes of one image; a wrong count or a code out of [0, K) is an error. */
export function imageSpan(v: SeedVocab, codes: ArrayLike<number>): number[] {
  if (codes?.length !== v.tokensPerImage)
    throw new Error(`imageSpan: expected ${v.tokensPerImage} codes per image (tokensPerImage), got ${codes?.length}`);
  return [v.img, ...Array.from(codes, (k) => codeToTokenId(v, k)), v.endImg];
}

/** The Q codes of an image span `<img> c_1 .. c_Q </img>`; a span of the wrong length or shape is an error naming expected and actual. */
export function imageSpanCodes(v: SeedVocab, span: ArrayLike<number>): Int32Array {
  const Q = v.tokensPerImage;
  if (span?.length !== Q + 2)
    throw new Error(
      `imageSpanCodes: an image span is <img> + ${Q} codes + </img> = ${Q + 2} tokens, got ${span?.length} tokens (${Math.max(0, (span?.length ?? 2) - 2)} between the markers)`,
    );
  if (span[0] !== v.img)
    throw new Error(
      `imageSpanCodes: expected <img> (id ${v.img}) at position 0, got ${span[0]} (${describeTokenId(v, span[0] as number)})`,
    );
  if (span[Q + 1] !== v.endImg)
    throw new Error(
      `imageSpanCodes: expected </img> (id ${v.endImg}) at position ${Q + 1}, got ${span[Q + 1]} (${describeTokenId(v, span[Q + 1] as number)})`,
    );
  const out = new Int32Array(Q);
  for (let i = 0; i < Q; i++) {
    const id = span[i + 1] as number;
    if (!isCodeId(v, id))
      throw new Error(
        `imageSpanCodes: position ${i + 1} must be a code id in [${v.codeOffset}, ${v.codeOffset + v.numCodes}), got ${id} (${describeTokenId(v, id)})`,
      );
    out[i] = id - v.codeOffset;
  }
  return out;
}

/** Token ids and their (unshifted) labels, IGNORE_INDEX where the loss does not look. */
export interface TokenSequence {
  ids: number[];
  labels: number[];
}

/** Checks that caption ids are text ids other than pad / bos / eos. */
export function checkTextIds(v: SeedVocab, who: string, words: ArrayLike<number>): void {
  if (!words || typeof words.length !== 'number') throw new Error(`${who}: caption must be an array of text ids, got ${typeof words}`);
  for (let i = 0; i < words.length; i++) {
    const id = words[i] as number;
    if (!Number.isInteger(id) || id < 0 || id >= v.textVocabSize || id === v.pad || id === v.bos || id === v.eos)
      throw new Error(
        `${who}: caption[${i}] must be a text id in [0, ${v.textVocabSize}) other than pad ${v.pad}, bos ${v.bos}, eos ${v.eos}; got ${id} (${describeTokenId(v, id)})`,
      );
  }
}

/** Text pre-training: `<bos> words <eos>`, every token labelled. */
export function textSequence(v: SeedVocab, words: ArrayLike<number>): TokenSequence {
  checkTextIds(v, 'textSequence', words);
  const ids = [v.bos, ...Array.from(words), v.eos];
  return { ids, labels: [...ids] };
}

/** The two orders of a caption-image pair in multimodal pre-training. */
export type PairOrder = 'text-first' | 'image-first';

/** 'image-first' (the reversed order) with probability reverseRatio, one Rng.uniform() per call. */
export function samplePairOrder(rng: Rng, reverseRatio = 0.5): PairOrder {
  if (!(reverseRatio >= 0 && reverseRatio <= 1)) throw new Error(`samplePairOrder: reverseRatio must be in [0, 1], got ${reverseRatio}`);
  return rng.uniform() < reverseRatio ? 'image-first' : 'text-first';
}

/**
 * Multimodal pre-training: `<bos> caption <img> codes </img> <eos>` (text-first) or `<bos> <img> codes
 * </img> caption <eos>` (image-first); every (non-pad) token labelled. An empty caption is the
 * unconditional prompt of classifier-free guidance.
 */
export function pairSequence(v: SeedVocab, caption: ArrayLike<number>, codes: ArrayLike<number>, order: PairOrder): TokenSequence {
  checkTextIds(v, 'pairSequence', caption);
  const img = imageSpan(v, codes);
  const words = Array.from(caption);
  let ids: number[];
  if (order === 'text-first') ids = [v.bos, ...words, ...img, v.eos];
  else if (order === 'image-first') ids = [v.bos, ...img, ...words, v.eos];
  else throw new Error(`pairSequence: order must be 'text-first' or 'image-first', got ${JSON.stringify(order)}`);
  return { ids, labels: [...ids] };
}

/** The ids of the SFT template's markers ("USER:" and "ASSISTANT:" in SEED-LLaMA). */
export interface ChatTemplate {
  user: number[];
  assistant: number[];
}

/** The SFT task of a caption-image pair: answer an image with its caption, or a caption with an image. */
export type SftTask = 'caption' | 'generate';

function checkTemplate(v: SeedVocab, who: string, t: ChatTemplate): void {
  if (!t || !Array.isArray(t.user) || !Array.isArray(t.assistant) || t.assistant.length === 0)
    throw new Error(
      `${who}: template must be {user: number[], assistant: number[]} with a non-empty assistant marker, got ${JSON.stringify(t)}`,
    );
  checkTextIds(v, `${who} (template.user)`, t.user);
  checkTextIds(v, `${who} (template.assistant)`, t.assistant);
}

/**
 * SFT: `<bos> USER: <img> codes </img> ASSISTANT: caption <eos>` (caption) or `<bos> USER: caption
 * ASSISTANT: <img> codes </img> <eos>` (generate); labels on the assistant's tokens only.
 */
export function sftSequence(
  v: SeedVocab,
  template: ChatTemplate,
  caption: ArrayLike<number>,
  codes: ArrayLike<number>,
  task: SftTask,
): TokenSequence {
  checkTemplate(v, 'sftSequence', template);
  checkTextIds(v, 'sftSequence', caption);
  const img = imageSpan(v, codes);
  const words = Array.from(caption);
  let prompt: number[];
  let answer: number[];
  if (task === 'caption') {
    prompt = [v.bos, ...template.user, ...img, ...template.assistant];
    answer = [...words, v.eos];
  } else if (task === 'generate') {
    prompt = [v.bos, ...template.user, ...words, ...template.assistant];
    answer = [...img, v.eos];
  } else throw new Error(`sftSequence: task must be 'caption' or 'generate', got ${JSON.stringify(task)}`);
  return { ids: [...prompt, ...answer], labels: [...prompt.map(() => IGNORE_INDEX), ...answer] };
}

/**
 * The prefix that asks for an image of `caption`, ending with `<img>` (SEED-LLaMA's forced image:
 * appending the begin-of-image token, GitHub issue #17): `<bos> caption <img>` without a template,
 * `<bos> USER: caption ASSISTANT: <img>` with one. An empty caption is the unconditional prompt.
 */
export function generationPrompt(v: SeedVocab, caption: ArrayLike<number>, template: ChatTemplate | null = null): number[] {
  checkTextIds(v, 'generationPrompt', caption);
  if (template) checkTemplate(v, 'generationPrompt', template);
  const words = Array.from(caption);
  return template ? [v.bos, ...template.user, ...words, ...template.assistant, v.img] : [v.bos, ...words, v.img];
}

/** The prefix that asks for a caption of an image: `<bos> <img> codes </img>`, or `<bos> USER: <img> codes </img> ASSISTANT:`. */
export function captionPrompt(v: SeedVocab, codes: ArrayLike<number>, template: ChatTemplate | null = null): number[] {
  if (template) checkTemplate(v, 'captionPrompt', template);
  const img = imageSpan(v, codes);
  return template ? [v.bos, ...template.user, ...img, ...template.assistant] : [v.bos, ...img];
}

/** A right-padded batch: ids and labels [batch, length] row-major. */
export interface TokenBatch {
  ids: Int32Array;
  labels: Int32Array;
  batch: number;
  length: number;
}

/** Pads sequences on the right to the longest (ids with `pad`, labels with IGNORE_INDEX). */
export function padSequences(v: SeedVocab, seqs: readonly TokenSequence[]): TokenBatch {
  if (!Array.isArray(seqs) || seqs.length === 0) throw new Error(`padSequences: expected at least one sequence, got ${seqs?.length}`);
  seqs.forEach((s, i) => {
    if (!s || !Array.isArray(s.ids) || !Array.isArray(s.labels) || s.ids.length !== s.labels.length || s.ids.length < 2)
      throw new Error(
        `padSequences: sequence ${i} must have ids and labels of one length >= 2, got ${s?.ids?.length} ids and ${s?.labels?.length} labels`,
      );
  });
  const T = Math.max(...seqs.map((s) => s.ids.length));
  const ids = new Int32Array(seqs.length * T).fill(v.pad);
  const labels = new Int32Array(seqs.length * T).fill(IGNORE_INDEX);
  seqs.forEach((s, b) => {
    ids.set(s.ids, b * T);
    labels.set(s.labels, b * T);
  });
  return { ids, labels, batch: seqs.length, length: T };
}
