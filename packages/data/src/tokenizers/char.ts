/**
 * Character-level tokenizer (the char-rnn / nanoGPT shakespeare_char vocabulary): one id per
 * Unicode code point seen in a corpus, special tokens first (so `<pad>` is 0 by default), then the
 * characters in code-point order. Characters outside the vocabulary become `<unk>`, or an error
 * when the tokenizer has no `<unk>`.
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
import { loneSurrogateIndex } from './utf8.js';

export interface CharTokenizerOptions {
  /** Special tokens, given ids 0, 1, ... in this order. */
  specialTokens?: readonly string[];
  /** Keep only characters seen at least this many times (default 1). */
  minCount?: number;
}

export class CharTokenizer implements Tokenizer {
  readonly kind = 'char' as const;
  readonly specialTokens: readonly string[];
  /** The ordinary characters, in id order (after the specials). */
  readonly chars: readonly string[];
  readonly vocabSize: number;
  private readonly index: Map<string, number>;
  private readonly specialIndex: Map<string, number>;

  /** A tokenizer over exactly `chars` (code points, distinct). */
  constructor(chars: readonly string[], opts: { specialTokens?: readonly string[] } = {}) {
    const specials = opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
    validateSpecialTokens('CharTokenizer', specials);
    this.specialTokens = [...specials];
    this.specialIndex = new Map(this.specialTokens.map((t, i) => [t, i]));
    this.index = new Map();
    chars.forEach((c, i) => {
      if (typeof c !== 'string' || [...c].length !== 1)
        throw new Error(`CharTokenizer: chars[${i}] must be a single code point, got ${JSON.stringify(c)}`);
      if (this.index.has(c)) throw new Error(`CharTokenizer: character ${JSON.stringify(c)} is listed twice`);
      this.index.set(c, this.specialTokens.length + i);
    });
    this.chars = [...chars];
    this.vocabSize = this.specialTokens.length + this.chars.length;
  }

  /** Builds the vocabulary from the code points of `text`, sorted by code point. */
  static fromText(text: string, opts: CharTokenizerOptions = {}): CharTokenizer {
    if (typeof text !== 'string') throw new Error(`CharTokenizer.fromText: text must be a string, got ${typeof text}`);
    const minCount = opts.minCount ?? 1;
    if (!Number.isInteger(minCount) || minCount < 1)
      throw new Error(`CharTokenizer.fromText: minCount must be an integer >= 1, got ${minCount}`);
    const bad = loneSurrogateIndex(text);
    if (bad >= 0) throw new Error(`CharTokenizer.fromText: text has a lone surrogate at index ${bad}`);
    const counts = new Map<string, number>();
    for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
    const chars = [...counts.entries()]
      .filter(([, n]) => n >= minCount)
      .map(([c]) => c)
      .sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharTokenizer(chars, opts);
  }

  encode(text: string, opts?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new Error(`CharTokenizer.encode: text must be a string, got ${typeof text}`);
    const allowed = resolveAllowed('CharTokenizer.encode', this.specialTokens, opts?.allowedSpecial);
    const unk = this.specialIndex.get('<unk>');
    const ids: number[] = [];
    let pos = 0;
    for (const piece of splitOnSpecial(text, allowed)) {
      if (piece.special) ids.push(this.specialIndex.get(piece.text)!);
      else
        for (const c of piece.text) {
          const id = this.index.get(c);
          if (id !== undefined) ids.push(id);
          else if (unk !== undefined) ids.push(unk);
          else
            throw new Error(
              `CharTokenizer.encode: character ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase()}) at index ${pos + piece.text.indexOf(c)} is not in the vocabulary and there is no <unk> token`,
            );
        }
      pos += piece.text.length;
    }
    return addBosEos(this, ids, opts);
  }

  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string {
    let s = '';
    const k = this.specialTokens.length;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      checkId('CharTokenizer.decode', id, this.vocabSize, i);
      if (id >= k) s += this.chars[id - k];
      else if (!opts?.skipSpecial) s += this.specialTokens[id];
    }
    return s;
  }

  specialId(token: string): number {
    const id = this.specialIndex.get(token);
    if (id === undefined)
      throw new Error(`CharTokenizer: no special token ${JSON.stringify(token)}; it has [${this.specialTokens.join(', ')}]`);
    return id;
  }

  isSpecial(id: number): boolean {
    return id >= 0 && id < this.specialTokens.length;
  }

  idToToken(id: number): string {
    checkId('CharTokenizer.idToToken', id, this.vocabSize, 0);
    const k = this.specialTokens.length;
    return id < k ? this.specialTokens[id]! : this.chars[id - k]!;
  }

  toJSON(): TokenizerJSON {
    return { type: 'mmlm-char', version: 1, specialTokens: [...this.specialTokens], chars: [...this.chars] };
  }
}
