/**
 * Word-level tokenizer for the closed-vocabulary captions, questions and grammar corpora: text is
 * lowercased and split into words (runs of letters and digits, with an inner apostrophe as in
 * "don't") and single punctuation marks; whitespace is dropped. The vocabulary holds the special
 * tokens first, then the corpus words by descending count (ties in code-point order).
 *
 * Not lossless: `decode` joins words with single spaces and attaches closing punctuation to the
 * word before it, so "A red  circle." decodes as "a red circle.".
 */
import {
  addBosEos,
  checkId,
  DEFAULT_SPECIAL_TOKENS,
  type DecodeOptions,
  type EncodeOptions,
  resolveAllowed,
  splitOnSpecial,
  type Tokenizer,
  type TokenizerJSON,
  validateSpecialTokens,
} from './special.js';

/** Words (letters/digits with optional inner apostrophes) or one non-space, non-word character. */
const WORD_PATTERN = /[\p{L}\p{N}\p{M}]+(?:'[\p{L}\p{N}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]/gu;
const ATTACH_LEFT = new Set(['.', ',', '!', '?', ';', ':', ')', ']', '}', '%']);
const ATTACH_RIGHT = new Set(['(', '[', '{']);

/** Lowercases and splits `text` into words and punctuation marks. */
export function splitWords(text: string): string[] {
  return text.toLowerCase().match(WORD_PATTERN) ?? [];
}

/** Joins words with spaces, attaching closing punctuation to the left and opening to the right. */
export function joinWords(words: readonly string[]): string {
  let s = '';
  let glue = false;
  for (const w of words) {
    if (s.length > 0 && !glue && !ATTACH_LEFT.has(w)) s += ' ';
    s += w;
    glue = ATTACH_RIGHT.has(w);
  }
  return s;
}

export interface WordTokenizerOptions {
  /** Special tokens, given ids 0, 1, ... in this order. */
  specialTokens?: readonly string[];
  /** Keep only words seen at least this many times (default 1). */
  minCount?: number;
  /** Keep at most this many ordinary words, the most frequent (default: all). */
  maxWords?: number;
}

export class WordTokenizer implements Tokenizer {
  readonly kind = 'word' as const;
  readonly specialTokens: readonly string[];
  /** The ordinary words, in id order (after the specials). */
  readonly words: readonly string[];
  readonly vocabSize: number;
  private readonly index: Map<string, number>;
  private readonly specialIndex: Map<string, number>;

  constructor(words: readonly string[], opts: { specialTokens?: readonly string[] } = {}) {
    const specials = opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
    validateSpecialTokens('WordTokenizer', specials);
    this.specialTokens = [...specials];
    this.specialIndex = new Map(this.specialTokens.map((t, i) => [t, i]));
    this.index = new Map();
    words.forEach((w, i) => {
      if (typeof w !== 'string' || w.length === 0 || /\s/u.test(w) || w !== w.toLowerCase())
        throw new Error(`WordTokenizer: words[${i}] must be a non-empty lowercase string without spaces, got ${JSON.stringify(w)}`);
      if (this.index.has(w)) throw new Error(`WordTokenizer: word ${JSON.stringify(w)} is listed twice`);
      this.index.set(w, this.specialTokens.length + i);
    });
    this.words = [...words];
    this.vocabSize = this.specialTokens.length + this.words.length;
  }

  /** Builds the vocabulary from the words of `text` (or of every string in an array). */
  static fromText(text: string | readonly string[], opts: WordTokenizerOptions = {}): WordTokenizer {
    const minCount = opts.minCount ?? 1;
    if (!Number.isInteger(minCount) || minCount < 1)
      throw new Error(`WordTokenizer.fromText: minCount must be an integer >= 1, got ${minCount}`);
    const maxWords = opts.maxWords ?? Number.POSITIVE_INFINITY;
    if (!(maxWords >= 0)) throw new Error(`WordTokenizer.fromText: maxWords must be >= 0, got ${maxWords}`);
    const texts = typeof text === 'string' ? [text] : text;
    const counts = new Map<string, number>();
    texts.forEach((t, i) => {
      if (typeof t !== 'string') throw new Error(`WordTokenizer.fromText: text[${i}] must be a string, got ${typeof t}`);
      for (const w of splitWords(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
    });
    const words = [...counts.entries()]
      .filter(([, n]) => n >= minCount)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, maxWords)
      .map(([w]) => w);
    return new WordTokenizer(words, opts);
  }

  encode(text: string, opts?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new Error(`WordTokenizer.encode: text must be a string, got ${typeof text}`);
    const allowed = resolveAllowed('WordTokenizer.encode', this.specialTokens, opts?.allowedSpecial);
    const unk = this.specialIndex.get('<unk>');
    const ids: number[] = [];
    for (const piece of splitOnSpecial(text, allowed)) {
      if (piece.special) {
        ids.push(this.specialIndex.get(piece.text)!);
        continue;
      }
      for (const w of splitWords(piece.text)) {
        const id = this.index.get(w);
        if (id !== undefined) ids.push(id);
        else if (unk !== undefined) ids.push(unk);
        else throw new Error(`WordTokenizer.encode: word ${JSON.stringify(w)} is not in the vocabulary and there is no <unk> token`);
      }
    }
    return addBosEos(this, ids, opts);
  }

  /** The word strings of `ids` (special tokens as their strings unless skipped). */
  decodeWords(ids: ArrayLike<number>, opts?: DecodeOptions): string[] {
    const out: string[] = [];
    const k = this.specialTokens.length;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      checkId('WordTokenizer.decode', id, this.vocabSize, i);
      if (id >= k) out.push(this.words[id - k]!);
      else if (!opts?.skipSpecial) out.push(this.specialTokens[id]!);
    }
    return out;
  }

  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string {
    return joinWords(this.decodeWords(ids, opts));
  }

  specialId(token: string): number {
    const id = this.specialIndex.get(token);
    if (id === undefined)
      throw new Error(`WordTokenizer: no special token ${JSON.stringify(token)}; it has [${this.specialTokens.join(', ')}]`);
    return id;
  }

  isSpecial(id: number): boolean {
    return id >= 0 && id < this.specialTokens.length;
  }

  idToToken(id: number): string {
    checkId('WordTokenizer.idToToken', id, this.vocabSize, 0);
    const k = this.specialTokens.length;
    return id < k ? this.specialTokens[id]! : this.words[id - k]!;
  }

  toJSON(): TokenizerJSON {
    return { type: 'mmlm-word', version: 1, specialTokens: [...this.specialTokens], words: [...this.words] };
  }
}
