/**
 * Byte-level byte-pair encoding (Sennrich et al. 2016, arXiv 1508.07909; byte-level variant of
 * GPT-2, Radford et al. 2019, section 2.2).
 *
 * Text is split by a pre-tokenisation regex into pieces that merges never cross (words with their
 * leading space, digit groups, punctuation runs, whitespace), each piece is turned into its UTF-8
 * bytes (ids 0-255), and learned merges are applied inside each piece in rank order as GPT-2's
 * `bpe()` does: repeatedly merge every occurrence of the adjacent pair with the lowest rank until no
 * ranked pair is left. Merge r creates id 256 + r; special tokens follow the merges.
 *
 * Training counts adjacent pairs over the distinct pieces weighted by their frequency (overlapping
 * pairs counted, as in minbpe's `get_stats`), merges the most frequent pair, and repeats; ties go to
 * the pair with the smaller (left id, right id), so training is deterministic.
 */
import { escapeBytes } from './byte.js';
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
import { utf8Decode, utf8Encode } from './utf8.js';

/**
 * Pre-tokenisation pattern (in the spirit of GPT-2's, written for this package): English
 * contractions; a letter run with its combining marks and an optional leading space; one to three
 * digits with an optional leading space; a run of other symbols with an optional leading space;
 * whitespace not followed by a non-space (so a word keeps its one leading space); other whitespace.
 */
export const BPE_PATTERN = [
  "'(?:[sdmtSDMT]|ll|LL|ve|VE|re|RE)",
  ' ?\\p{L}[\\p{L}\\p{M}]*',
  ' ?\\p{N}{1,3}',
  ' ?[^\\s\\p{L}\\p{N}]+',
  '\\s+(?!\\S)',
  '\\s+',
].join('|');

function compilePattern(who: string, pattern: string): RegExp {
  if (typeof pattern !== 'string') throw new Error(`${who}: pattern must be a string, got ${typeof pattern}`);
  try {
    return new RegExp(pattern, 'gu');
  } catch (e) {
    throw new Error(`${who}: pattern is not a valid regular expression: ${(e as Error).message}`);
  }
}

/**
 * Splits `text` into pre-tokens whose concatenation is `text` (characters the pattern skips become
 * pieces of their own, so no custom pattern can lose text).
 */
export function pretokenize(text: string, pattern: string | RegExp = BPE_PATTERN): string[] {
  const re = typeof pattern === 'string' ? compilePattern('pretokenize', pattern) : pattern;
  const out: string[] = [];
  let end = 0;
  for (const m of text.matchAll(re)) {
    if (m[0].length === 0) continue;
    if (m.index > end) out.push(text.slice(end, m.index));
    out.push(m[0]);
    end = m.index + m[0].length;
  }
  if (end < text.length) out.push(text.slice(end));
  return out;
}

const PAIR_SHIFT = 0x200000; // ids stay below 2^21, so a * 2^21 + b is an exact double key

function pairKey(a: number, b: number): number {
  return a * PAIR_SHIFT + b;
}

/** Replaces every non-overlapping (a, b) in `ids`, left to right, by `c`. */
function mergePair(ids: number[], a: number, b: number, c: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
      out.push(c);
      i++;
    } else out.push(ids[i]!);
  }
  return out;
}

export interface BpeOptions {
  /** Special tokens, given ids after the merges, in this order. */
  specialTokens?: readonly string[];
  /** Pre-tokenisation regex source (compiled with flags `gu`); default `BPE_PATTERN`. */
  pattern?: string;
}

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe' as const;
  /** Merges in rank order: merge r joins ids `merges[r]` into id 256 + r. */
  readonly merges: readonly (readonly [number, number])[];
  readonly specialTokens: readonly string[];
  readonly pattern: string;
  readonly vocabSize: number;
  private readonly regex: RegExp;
  private readonly ranks: Map<number, number>;
  private readonly bytesOf: Uint8Array[];
  private readonly specialIndex: Map<string, number>;
  private readonly cache = new Map<string, number[]>();

  constructor(merges: readonly (readonly [number, number])[], opts: BpeOptions = {}) {
    const specials = opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
    validateSpecialTokens('BpeTokenizer', specials);
    this.pattern = opts.pattern ?? BPE_PATTERN;
    this.regex = compilePattern('BpeTokenizer', this.pattern);
    this.ranks = new Map();
    this.bytesOf = [];
    for (let b = 0; b < 256; b++) this.bytesOf.push(Uint8Array.of(b));
    merges.forEach((m, r) => {
      const next = 256 + r;
      if (!Array.isArray(m) || m.length !== 2 || !m.every((x) => Number.isInteger(x) && x >= 0 && x < next))
        throw new Error(`BpeTokenizer: merges[${r}] must be a pair of token ids below ${next}, got ${JSON.stringify(m)}`);
      const key = pairKey(m[0], m[1]);
      if (this.ranks.has(key)) throw new Error(`BpeTokenizer: merges[${r}] ${JSON.stringify(m)} repeats merges[${this.ranks.get(key)}]`);
      this.ranks.set(key, r);
      const a = this.bytesOf[m[0]]!;
      const b = this.bytesOf[m[1]]!;
      const joined = new Uint8Array(a.length + b.length);
      joined.set(a);
      joined.set(b, a.length);
      this.bytesOf.push(joined);
    });
    this.merges = merges.map((m) => [m[0], m[1]] as const);
    this.specialTokens = [...specials];
    const first = 256 + merges.length;
    this.specialIndex = new Map(this.specialTokens.map((t, i) => [t, first + i]));
    this.vocabSize = first + this.specialTokens.length;
  }

  /** Ids of one pre-token: its bytes with merges applied by rank (GPT-2 `bpe()`). */
  private encodePiece(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    let ids = Array.from(utf8Encode(piece, 'BpeTokenizer.encode'));
    while (ids.length >= 2) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = this.ranks.get(pairKey(ids[i]!, ids[i + 1]!));
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      ids = mergePair(ids, ids[best]!, ids[best + 1]!, 256 + bestRank);
    }
    if (this.cache.size >= 65536) this.cache.clear();
    this.cache.set(piece, ids);
    return ids;
  }

  encode(text: string, opts?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new Error(`BpeTokenizer.encode: text must be a string, got ${typeof text}`);
    const allowed = resolveAllowed('BpeTokenizer.encode', this.specialTokens, opts?.allowedSpecial);
    const ids: number[] = [];
    for (const part of splitOnSpecial(text, allowed)) {
      if (part.special) ids.push(this.specialIndex.get(part.text)!);
      else for (const piece of pretokenize(part.text, this.regex)) for (const id of this.encodePiece(piece)) ids.push(id);
    }
    return addBosEos(this, ids, opts);
  }

  /** The bytes one id stands for (empty for a special token). */
  tokenBytes(id: number): Uint8Array {
    checkId('BpeTokenizer.tokenBytes', id, this.vocabSize, 0);
    return this.bytesOf[id] ?? new Uint8Array(0);
  }

  /** The concatenated bytes of the non-special ids; useful when a sequence ends inside a character. */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      checkId('BpeTokenizer.decodeBytes', ids[i]!, this.vocabSize, i);
      const b = this.bytesOf[ids[i]!];
      if (b) {
        parts.push(b);
        n += b.length;
      }
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string {
    let s = '';
    let run: number[] = [];
    const first = 256 + this.merges.length;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      checkId('BpeTokenizer.decode', id, this.vocabSize, i);
      if (id < first) {
        run.push(id);
        continue;
      }
      s += utf8Decode(this.decodeBytes(run));
      run = [];
      if (!opts?.skipSpecial) s += this.specialTokens[id - first];
    }
    return s + utf8Decode(this.decodeBytes(run));
  }

  specialId(token: string): number {
    const id = this.specialIndex.get(token);
    if (id === undefined)
      throw new Error(`BpeTokenizer: no special token ${JSON.stringify(token)}; it has [${this.specialTokens.join(', ')}]`);
    return id;
  }

  isSpecial(id: number): boolean {
    return id >= 256 + this.merges.length && id < this.vocabSize;
  }

  idToToken(id: number): string {
    checkId('BpeTokenizer.idToToken', id, this.vocabSize, 0);
    const first = 256 + this.merges.length;
    if (id >= first) return this.specialTokens[id - first]!;
    const bytes = this.bytesOf[id]!;
    const s = utf8Decode(bytes);
    return s.includes('\uFFFD') ? escapeBytes(bytes) : s;
  }

  toJSON(): TokenizerJSON {
    return {
      type: 'mmlm-bpe',
      version: 1,
      pattern: this.pattern,
      specialTokens: [...this.specialTokens],
      merges: this.merges.map((m) => [m[0], m[1]]),
    };
  }

  /** Rebuilds a tokenizer from `toJSON()` output; `source` names the origin (a path) in errors. */
  static fromJSON(json: unknown, source = 'JSON'): BpeTokenizer {
    const who = `BPE tokenizer ${source}`;
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw new Error(`${who}: expected an object, got ${Array.isArray(json) ? 'an array' : String(json)}`);
    const o = json as Record<string, unknown>;
    if (o.type !== 'mmlm-bpe') throw new Error(`${who}: expected type "mmlm-bpe", got ${JSON.stringify(o.type)}`);
    if (o.version !== 1) throw new Error(`${who}: unsupported version ${JSON.stringify(o.version)}; this build reads version 1`);
    if (typeof o.pattern !== 'string') throw new Error(`${who}: "pattern" must be a string, got ${typeof o.pattern}`);
    if (!Array.isArray(o.merges)) throw new Error(`${who}: "merges" must be an array of [id, id] pairs, got ${typeof o.merges}`);
    if (!Array.isArray(o.specialTokens))
      throw new Error(`${who}: "specialTokens" must be an array of strings, got ${typeof o.specialTokens}`);
    try {
      return new BpeTokenizer(o.merges as [number, number][], { pattern: o.pattern, specialTokens: o.specialTokens as string[] });
    } catch (e) {
      throw new Error(`${who}: ${(e as Error).message.replace(/^BpeTokenizer: /, '')}`);
    }
  }
}

export interface BpeTrainOptions extends BpeOptions {
  /** Total vocabulary: 256 byte ids + merges + special tokens. */
  vocabSize: number;
  /** Stop early when the best pair occurs fewer times than this (default 2). */
  minFrequency?: number;
}

/** A max-heap of (count, pair key): larger count first, then smaller key. Stale entries are skipped by the caller. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!;
    const lastK = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.keys.length && this.above(l, m)) m = l;
        if (r < this.keys.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** Trains byte-level BPE on `text` (a string or several documents) to `vocabSize` ids. */
export function trainBpe(text: string | readonly string[], opts: BpeTrainOptions): BpeTokenizer {
  const specials = opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
  validateSpecialTokens('trainBpe', specials);
  const pattern = opts.pattern ?? BPE_PATTERN;
  const re = compilePattern('trainBpe', pattern);
  const minFrequency = opts.minFrequency ?? 2;
  if (!Number.isInteger(minFrequency) || minFrequency < 1)
    throw new Error(`trainBpe: minFrequency must be an integer >= 1, got ${minFrequency}`);
  const minVocab = 256 + specials.length;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < minVocab || opts.vocabSize > PAIR_SHIFT)
    throw new Error(
      `trainBpe: vocabSize must be an integer in [${minVocab}, ${PAIR_SHIFT}] (256 bytes + ${specials.length} specials), got ${opts.vocabSize}`,
    );
  const numMerges = opts.vocabSize - minVocab;

  const pieceCounts = new Map<string, number>();
  const texts = typeof text === 'string' ? [text] : text;
  texts.forEach((t, i) => {
    if (typeof t !== 'string') throw new Error(`trainBpe: text[${i}] must be a string, got ${typeof t}`);
    for (const p of pretokenize(t, re)) pieceCounts.set(p, (pieceCounts.get(p) ?? 0) + 1);
  });
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [p, n] of pieceCounts) {
    words.push(Array.from(utf8Encode(p, 'trainBpe')));
    freq.push(n);
  }

  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const heap = new PairHeap();
  const addPairs = (w: number, sign: 1 | -1, changed: Set<number>) => {
    const ids = words[w]!;
    for (let i = 0; i + 1 < ids.length; i++) {
      const k = pairKey(ids[i]!, ids[i + 1]!);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[w]!);
      changed.add(k);
      if (sign > 0) {
        const s = where.get(k);
        if (s) s.add(w);
        else where.set(k, new Set([w]));
      }
    }
  };
  const flush = (changed: Set<number>) => {
    for (const k of changed) {
      const c = pairCount.get(k)!;
      if (c > 0) heap.push(c, k);
      else pairCount.delete(k);
    }
  };
  const initial = new Set<number>();
  for (let w = 0; w < words.length; w++) addPairs(w, 1, initial);
  flush(initial);

  const merges: [number, number][] = [];
  while (merges.length < numMerges && heap.size > 0) {
    const [count, key] = heap.pop();
    if (pairCount.get(key) !== count) continue;
    if (count < minFrequency) break;
    const a = Math.floor(key / PAIR_SHIFT);
    const b = key - a * PAIR_SHIFT;
    const c = 256 + merges.length;
    merges.push([a, b]);
    const changed = new Set<number>();
    for (const w of where.get(key) ?? []) {
      addPairs(w, -1, changed);
      words[w] = mergePair(words[w]!, a, b, c);
      addPairs(w, 1, changed);
    }
    where.delete(key);
    flush(changed);
  }
  return new BpeTokenizer(merges, { specialTokens: specials, pattern });
}
