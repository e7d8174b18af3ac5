/**
 * MIO's one extended vocabulary (Wang et al. 2024, arXiv 2409.17692, §2.1; reference
 * MIO-Team/MIO `tokenization_mio.py` at 6c0b5e6) and a tokenizer that turns a multimodal document
 * into ids and back exactly.
 *
 * MIO grows Yi-6B's 64,000-token vocabulary by 8,192 SEED image codes `<img{k}>`, 4,096 speech codes
 * `<spch{n}>` (SpeechTokenizer levels 1-4 of 1,024 codes each, level l >= 1 shifted by 1024 l into one
 * namespace) and the 4 specials `<image>`, `</image>`, `<spch>`, `</spch>`: 12,292 new rows.
 *
 * Id layout here (the order of the added rows in Yi's tokenizer is not published):
 *   [0, V)                      text ids of the text tokenizer
 *   [V, V + K)                  `<img{k}>`, image (and video-frame) code k
 *   [V + K, V + K + L C)        `<spch{n}>`, n = l C + c: code c of speech level l (0 = content)
 *   V + K + L C + 0 .. 3        `<image>`, `</image>`, `<spch>`, `</spch>`
 *
 * Speech input carries the content level only (`add_timbre=False`); speech output carries all L
 * levels, `sequential` (every level-0 code, then every level-1 code, ...; MIO's choice) or
 * `alternating` (a1 b1 c1 d1 a2 ..., the layout MIO found hard to converge).
 */
import { parseConfig } from '@mmlm/core';
import { z } from 'zod';

/** MIO's four added special tokens, in our id order. */
export const MIO_SPECIAL_TOKENS = ['<image>', '</image>', '<spch>', '</spch>'] as const;
export type MioSpecialToken = (typeof MIO_SPECIAL_TOKENS)[number];

/**
 * The paper's vocabulary arithmetic (§2.1): Yi-6B's 64,000 text tokens (the brief marks this count
 * as inferred) + 8,192 image codes + 4 x 1,024 speech codes + 4 specials.
 */
export const PAPER_VOCAB = {
  textVocabSize: 64_000,
  imageCodes: 8_192,
  speechLevels: 4,
  speechCodebookSize: 1_024,
  speechCodes: 4 * 1_024,
  specials: MIO_SPECIAL_TOKENS.length,
  /** New embedding and head rows: 8,192 + 4,096 + 4 (stated in the paper). */
  added: 8_192 + 4 * 1_024 + 4,
  /** 76,292 (inferred: the paper states only the 12,292 added rows). */
  size: 64_000 + 8_192 + 4 * 1_024 + 4,
} as const;

export const SpeechLayoutSchema = z.enum(['sequential', 'alternating']);
/** How the L levels of an output speech segment are laid out in the sequence. */
export type SpeechLayout = z.infer<typeof SpeechLayoutSchema>;

export const VocabConfigSchema = z.object({
  /** Size of the text tokenizer; its ids come first (Yi-6B: 64,000). */
  textVocabSize: z.number().int().positive().default(64),
  /** K, the image codebook size; video frames share it (SEED-2: 8,192). */
  imageCodes: z.number().int().positive().default(16),
  /** Codes per image or video frame, checked on encode and decode; 0 accepts any length (SEED-2: 32). */
  tokensPerImage: z.number().int().nonnegative().default(4),
  /** C, codes per speech level (SpeechTokenizer: 1,024). */
  speechCodebookSize: z.number().int().positive().default(8),
  /** L, speech levels kept (MIO keeps RVQ levels 1-4 of SpeechTokenizer's 8). */
  speechLevels: z.number().int().min(1).max(8).default(4),
  /** Layout of output speech: MIO's `sequential`, or the `alternating` layout it rejected. */
  speechLayout: SpeechLayoutSchema.default('sequential'),
});
export type VocabConfigInput = z.input<typeof VocabConfigSchema>;
export type VocabConfig = z.infer<typeof VocabConfigSchema>;

/** The paper's vocabulary config (Yi-6B + SEED-2 + SpeechTokenizer levels 1-4). */
export const PAPER_VOCAB_CONFIG: VocabConfig = {
  textVocabSize: PAPER_VOCAB.textVocabSize,
  imageCodes: PAPER_VOCAB.imageCodes,
  tokensPerImage: 32,
  speechCodebookSize: PAPER_VOCAB.speechCodebookSize,
  speechLevels: PAPER_VOCAB.speechLevels,
  speechLayout: 'sequential',
};

/** The id ranges of one extended vocabulary. */
export interface MioVocab {
  readonly config: VocabConfig;
  readonly textVocabSize: number;
  /** Id of `<img0>`. */
  readonly imageOffset: number;
  /** Id of `<spch0>`; `<spch{n}>` is speechOffset + n. */
  readonly speechOffset: number;
  /** Ids of the four specials. */
  readonly specials: Readonly<Record<MioSpecialToken, number>>;
  /** Rows added to the text model: K + L C + 4. */
  readonly added: number;
  /** Total vocabulary size. */
  readonly size: number;
}

/** The extended vocabulary of `input` (validated; errors name each bad field). */
export function mioVocab(input: VocabConfigInput = {}): MioVocab {
  const config = parseConfig('MIO vocabulary', VocabConfigSchema, input);
  const V = config.textVocabSize;
  const K = config.imageCodes;
  const LC = config.speechLevels * config.speechCodebookSize;
  const s = V + K + LC;
  const specials = { '<image>': s, '</image>': s + 1, '<spch>': s + 2, '</spch>': s + 3 } as const;
  return { config, textVocabSize: V, imageOffset: V, speechOffset: V + K, specials, added: K + LC + 4, size: s + 4 };
}

/** What one id means. */
export type TokenInfo =
  | { kind: 'text'; id: number }
  | { kind: 'image'; code: number }
  | { kind: 'speech'; level: number; code: number }
  | { kind: 'special'; token: MioSpecialToken };

/** The meaning of `id`; throws when it is outside the vocabulary. */
export function classifyId(v: MioVocab, id: number): TokenInfo {
  if (!Number.isInteger(id) || id < 0 || id >= v.size) throw new Error(`MIO vocabulary: id ${id} is outside [0, ${v.size})`);
  if (id < v.imageOffset) return { kind: 'text', id };
  if (id < v.speechOffset) return { kind: 'image', code: id - v.imageOffset };
  const n = id - v.speechOffset;
  const C = v.config.speechCodebookSize;
  if (n < v.config.speechLevels * C) return { kind: 'speech', level: Math.floor(n / C), code: n % C };
  return { kind: 'special', token: MIO_SPECIAL_TOKENS[id - v.specials['<image>']]! };
}

/** MIO's string for one id: `<img{k}>`, `<spch{n}>`, a special, or `text:{id}`. */
export function tokenName(v: MioVocab, id: number): string {
  const t = classifyId(v, id);
  if (t.kind === 'text') return `text:${t.id}`;
  if (t.kind === 'image') return `<img${t.code}>`;
  if (t.kind === 'speech') return `<spch${t.level * v.config.speechCodebookSize + t.code}>`;
  return t.token;
}

/** Id of image code k. */
export function imageTokenId(v: MioVocab, k: number): number {
  checkCode('image code', k, v.config.imageCodes);
  return v.imageOffset + k;
}

/** Id of code c of speech level l (`<spch{l C + c}>`, MIO's offsets 1024 l). */
export function speechTokenId(v: MioVocab, level: number, c: number): number {
  checkCode('speech level', level, v.config.speechLevels);
  checkCode(`speech level-${level} code`, c, v.config.speechCodebookSize);
  return v.speechOffset + level * v.config.speechCodebookSize + c;
}

function checkCode(what: string, x: number, n: number): void {
  if (!Number.isInteger(x) || x < 0 || x >= n) throw new Error(`MIO: ${what} ${x} is outside [0, ${n})`);
}

// ---------------------------------------------------------------------------------------------
// Documents

/** A run of text. */
export interface TextSegment {
  type: 'text';
  text: string;
}
/** One image: its codes in raster order (SEED-2: 32 codes of K = 8,192). */
export interface ImageSegment {
  type: 'image';
  codes: number[];
}
/** A video clip: frames, each tokenized like an image (MIO: 4-8 frames for video-text pairs). */
export interface ClipSegment {
  type: 'clip';
  frames: number[][];
}
/**
 * Speech, levels [L'][T]: L' = 1 is input speech (content codes only, 50 tok/s); L' = L is output
 * speech with every level (200 tok/s in MIO).
 */
export interface SpeechSegment {
  type: 'speech';
  levels: number[][];
}
export type Segment = TextSegment | ImageSegment | ClipSegment | SpeechSegment;
export type MioDocument = Segment[];

/** The text tokenizer under the extended vocabulary (e.g. @mmlm/data's WordTokenizer). */
export interface TextTokenizerLike {
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
}

export interface DecodeOptions {
  /**
   * Merge a run of two or more adjacent images into one clip (default true). MIO writes a video as
   * consecutive `<image>…</image>` blocks, so the ids cannot tell a clip from adjacent images.
   */
  clips?: boolean;
}

/**
 * Splits the relative speech numbers n = l C + c of one `<spch>…</spch>` block into levels [L'][T]
 * (MIO `check_speech_completeness`, then `view(4, -1)` less the offsets). All content codes: input
 * speech, [1][T]. Otherwise `sequential` needs L contiguous equal-length blocks in level order 0..L-1,
 * `alternating` needs levels 0..L-1 repeating; anything else throws, naming expected and actual.
 */
export function splitSpeechLevels(nums: readonly number[], C: number, L: number, layout: SpeechLayout): number[][] {
  if (nums.length === 0) throw new Error('MIO speech block: expected at least one <spch{n}> code, got none');
  const levelOf = nums.map((n, i) => {
    if (!Number.isInteger(n) || n < 0 || n >= L * C)
      throw new Error(`MIO speech block: code <spch${n}> at position ${i} is outside [0, ${L * C}) (${L} levels of ${C})`);
    return Math.floor(n / C);
  });
  if (levelOf.every((l) => l === 0)) return [nums.slice()];
  const order = Array.from({ length: L }, (_, l) => l);
  if (layout === 'alternating') {
    if (nums.length % L !== 0) throw new Error(`MIO speech block (alternating): expected a multiple of ${L} codes, got ${nums.length}`);
    const levels: number[][] = order.map(() => []);
    nums.forEach((n, i) => {
      if (levelOf[i] !== i % L)
        throw new Error(`MIO speech block (alternating): position ${i} expected level ${i % L}, got level ${levelOf[i]} (<spch${n}>)`);
      levels[i % L]!.push(n - (i % L) * C);
    });
    return levels;
  }
  const runs: { level: number; codes: number[] }[] = [];
  nums.forEach((n, i) => {
    const l = levelOf[i]!;
    const last = runs[runs.length - 1];
    if (last && last.level === l) last.codes.push(n - l * C);
    else runs.push({ level: l, codes: [n - l * C] });
  });
  const got = runs.map((r) => r.level);
  if (got.length !== L || got.some((l, i) => l !== i))
    throw new Error(
      `MIO speech block (sequential): expected ${L} contiguous level blocks in order [${order.join(', ')}], got level runs [${got.join(', ')}]`,
    );
  const lengths = runs.map((r) => r.codes.length);
  if (lengths.some((n) => n !== lengths[0]))
    throw new Error(`MIO speech block (sequential): expected ${L} level blocks of equal length, got lengths [${lengths.join(', ')}]`);
  return runs.map((r) => r.codes);
}

/** A raw block before images are merged into clips. */
type Item = { type: 'text'; text: string } | { type: 'image'; codes: number[] } | { type: 'speech'; levels: number[][] };

/**
 * Turns a document into ids of one extended vocabulary and back. `decode(encode(doc))` equals `doc`
 * for a document in canonical form: no empty or adjacent text segments, text the text tokenizer
 * reproduces (WordTokenizer: lowercase words separated by single spaces), and no two adjacent images
 * (a run of images is a clip). `encode(decode(ids))` equals `ids` for every decodable id sequence.
 */
export class MultimodalTokenizer {
  readonly vocab: MioVocab;

  constructor(
    readonly text: TextTokenizerLike,
    vocab: MioVocab | VocabConfigInput = {},
  ) {
    this.vocab = 'specials' in vocab ? (vocab as MioVocab) : mioVocab(vocab as VocabConfigInput);
    if (text.vocabSize !== this.vocab.textVocabSize)
      throw new Error(
        `MultimodalTokenizer: the text tokenizer has vocabSize ${text.vocabSize}, expected textVocabSize ${this.vocab.textVocabSize}`,
      );
  }

  get size(): number {
    return this.vocab.size;
  }

  /** Ids of a document: text through the text tokenizer, images as `<image>` codes `</image>`, speech as `<spch>` codes `</spch>`. */
  encode(doc: MioDocument): number[] {
    const v = this.vocab;
    const ids: number[] = [];
    const image = (codes: number[], where: string) => {
      this.checkImage(codes, where);
      ids.push(v.specials['<image>'], ...codes.map((k) => imageTokenId(v, k)), v.specials['</image>']);
    };
    doc.forEach((seg, i) => {
      const where = `segment ${i} (${seg?.type})`;
      switch (seg?.type) {
        case 'text': {
          const t = this.text.encode(seg.text);
          for (const id of t)
            if (!Number.isInteger(id) || id < 0 || id >= v.textVocabSize)
              throw new Error(`MultimodalTokenizer.encode: ${where}: text id ${id} is outside [0, ${v.textVocabSize})`);
          ids.push(...t);
          break;
        }
        case 'image':
          image(seg.codes, where);
          break;
        case 'clip':
          if (!Array.isArray(seg.frames) || seg.frames.length === 0)
            throw new Error(`MultimodalTokenizer.encode: ${where}: expected at least one frame, got ${seg.frames?.length ?? 0}`);
          seg.frames.forEach((f, j) => image(f, `${where} frame ${j}`));
          break;
        case 'speech':
          ids.push(v.specials['<spch>'], ...this.speechIds(seg.levels, where), v.specials['</spch>']);
          break;
        default:
          throw new Error(
            `MultimodalTokenizer.encode: segment ${i} has type ${JSON.stringify((seg as { type?: unknown })?.type)}, expected text, image, clip or speech`,
          );
      }
    });
    return ids;
  }

  /** The document of `ids`; throws on an id outside the vocabulary or a malformed block, naming position, expected and actual. */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): MioDocument {
    const v = this.vocab;
    const items: Item[] = [];
    let i = 0;
    const n = ids.length;
    const name = (id: number) => tokenName(v, id);
    while (i < n) {
      const t = classifyId(v, ids[i]!);
      if (t.kind === 'text') {
        const start = i;
        while (i < n && Number.isInteger(ids[i]) && ids[i]! >= 0 && ids[i]! < v.imageOffset) i++;
        items.push({ type: 'text', text: this.text.decode(Array.prototype.slice.call(ids, start, i) as number[]) });
        continue;
      }
      if (t.kind !== 'special' || (t.token !== '<image>' && t.token !== '<spch>'))
        throw new Error(`MultimodalTokenizer.decode: position ${i}: expected text, <image> or <spch>, got ${name(ids[i]!)} (id ${ids[i]})`);
      const isImage = t.token === '<image>';
      const close = isImage ? '</image>' : '</spch>';
      const start = i;
      const codes: number[] = [];
      i++;
      for (;;) {
        if (i >= n) throw new Error(`MultimodalTokenizer.decode: the ${t.token} block at position ${start} has no ${close}`);
        const u = classifyId(v, ids[i]!);
        if (u.kind === 'special' && u.token === close) break;
        if (isImage && u.kind === 'image') codes.push(u.code);
        else if (!isImage && u.kind === 'speech') codes.push(u.level * v.config.speechCodebookSize + u.code);
        else
          throw new Error(
            `MultimodalTokenizer.decode: position ${i} in the ${t.token} block at ${start}: expected ${isImage ? '<img{k}>' : '<spch{n}>'} or ${close}, got ${name(ids[i]!)} (id ${ids[i]})`,
          );
        i++;
      }
      i++;
      const where = `the ${t.token} block at position ${start}`;
      if (isImage) {
        this.checkImage(codes, where);
        items.push({ type: 'image', codes });
      } else {
        items.push({ type: 'speech', levels: this.splitSpeech(codes, where) });
      }
    }
    return mergeClips(items, opts.clips ?? true);
  }

  /**
   * MIO's string form of a document: text verbatim, `<image><img12><img7>…</image>`, and
   * `<spch><spch3>…<spch1027>…</spch>` (`tokenize_images` / `tokenize_speeches` with add_begin_end).
   */
  render(doc: MioDocument): string {
    this.encode(doc.filter((seg) => seg?.type !== 'text')); // validates every block
    return doc.map((seg) => (seg.type === 'text' ? seg.text : this.render1(seg))).join('');
  }

  private render1(seg: Exclude<Segment, TextSegment>): string {
    const img = (codes: number[]) => `<image>${codes.map((k) => `<img${k}>`).join('')}</image>`;
    if (seg.type === 'image') return img(seg.codes);
    if (seg.type === 'clip') return seg.frames.map(img).join('');
    const ids = this.speechIds(seg.levels, 'speech');
    return `<spch>${ids.map((id) => `<spch${id - this.vocab.speechOffset}>`).join('')}</spch>`;
  }

  /**
   * The document of a string in MIO's form. Inside a block, whitespace between tokens is ignored
   * (`<image> <img804> <img680> </image>` parses as `<image><img804><img680></image>`, as MIO's
   * regexes do); text between blocks is kept verbatim, except that whitespace-only text between two
   * blocks is dropped.
   */
  parse(str: string, opts: DecodeOptions = {}): MioDocument {
    const block = /<image>((?:\s*<img\d+>)*)\s*<\/image>|<spch>((?:\s*<spch\d+>)*)\s*<\/spch>/g;
    const items: Item[] = [];
    let last = 0;
    const pushText = (t: string) => {
      if (t.length > 0) items.push({ type: 'text', text: t });
    };
    for (const m of str.matchAll(block)) {
      const between = str.slice(last, m.index);
      if (!(last > 0 && /^\s*$/.test(between))) pushText(between); // last > 0: a block precedes
      const where = `the block at character ${m.index}`;
      const nums = [...(m[1] ?? m[2] ?? '').matchAll(/\d+/g)].map((d) => Number(d[0]));
      if (m[1] !== undefined) {
        nums.forEach((k) => {
          checkCode(`${where}: image code`, k, this.vocab.config.imageCodes);
        });
        this.checkImage(nums, where);
        items.push({ type: 'image', codes: nums });
      } else items.push({ type: 'speech', levels: this.splitSpeech(nums, where) });
      last = m.index + m[0].length;
    }
    pushText(str.slice(last));
    return mergeClips(items, opts.clips ?? true);
  }

  private checkImage(codes: number[], where: string): void {
    const c = this.vocab.config;
    if (!Array.isArray(codes) || codes.length === 0)
      throw new Error(`MultimodalTokenizer: ${where}: expected image codes, got ${Array.isArray(codes) ? 'none' : typeof codes}`);
    if (c.tokensPerImage > 0 && codes.length !== c.tokensPerImage)
      throw new Error(`MultimodalTokenizer: ${where}: expected ${c.tokensPerImage} codes per image, got ${codes.length}`);
    codes.forEach((k, j) => {
      if (!Number.isInteger(k) || k < 0 || k >= c.imageCodes)
        throw new Error(`MultimodalTokenizer: ${where}: image code ${k} at index ${j} is outside [0, ${c.imageCodes})`);
    });
  }

  private speechIds(levels: number[][], where: string): number[] {
    const v = this.vocab;
    const { speechLevels: L, speechLayout } = v.config;
    if (!Array.isArray(levels) || (levels.length !== 1 && levels.length !== L))
      throw new Error(
        `MultimodalTokenizer: ${where}: expected 1 level (input speech, content only) or ${L} levels (output speech), got ${Array.isArray(levels) ? levels.length : typeof levels}`,
      );
    const T = levels[0]!.length;
    if (T === 0) throw new Error(`MultimodalTokenizer: ${where}: expected at least one speech frame, got 0`);
    const lengths = levels.map((l) => l.length);
    if (lengths.some((x) => x !== T))
      throw new Error(
        `MultimodalTokenizer: ${where}: expected ${levels.length} levels of equal length, got lengths [${lengths.join(', ')}]`,
      );
    const ids: number[] = [];
    if (levels.length === 1 || speechLayout === 'sequential')
      levels.forEach((codes, l) => ids.push(...codes.map((c) => speechTokenId(v, l, c))));
    else for (let t = 0; t < T; t++) levels.forEach((codes, l) => ids.push(speechTokenId(v, l, codes[t]!)));
    return ids;
  }

  private splitSpeech(nums: number[], where: string): number[][] {
    const c = this.vocab.config;
    try {
      return splitSpeechLevels(nums, c.speechCodebookSize, c.speechLevels, c.speechLayout);
    } catch (e) {
      throw new Error(`MultimodalTokenizer: ${where}: ${(e as Error).message}`);
    }
  }
}

function mergeClips(items: Item[], clips: boolean): MioDocument {
  const out: MioDocument = [];
  for (let i = 0; i < items.length; ) {
    const it = items[i]!;
    if (it.type !== 'image' || !clips) {
      out.push(it);
      i++;
      continue;
    }
    let j = i;
    while (j < items.length && items[j]!.type === 'image') j++;
    const run = items.slice(i, j) as { type: 'image'; codes: number[] }[];
    out.push(run.length === 1 ? run[0]! : { type: 'clip', frames: run.map((r) => r.codes) });
    i = j;
  }
  return out;
}
