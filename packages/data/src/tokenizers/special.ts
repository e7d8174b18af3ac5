/**
 * Special tokens and the interface every mmlm tokenizer implements. A special token (`<pad>`,
 * `<bos>`, `<boi>`, ...) is one id that ordinary text never produces: the literal string "<eos>"
 * in text encodes as its characters unless the caller allows it (tiktoken's `allowed_special`).
 */

/** The four special tokens every tokenizer has unless told otherwise. */
export const DEFAULT_SPECIAL_TOKENS: readonly string[] = ['<pad>', '<bos>', '<eos>', '<unk>'];

/** The defaults followed by `extra` (e.g. `withSpecialTokens('<boi>', '<eoi>')`). */
export function withSpecialTokens(...extra: string[]): string[] {
  return [...DEFAULT_SPECIAL_TOKENS, ...extra];
}

export interface EncodeOptions {
  /** Prepend the `<bos>` id. */
  bos?: boolean;
  /** Append the `<eos>` id. */
  eos?: boolean;
  /** Special-token strings in the text that become their single id; by default none do. */
  allowedSpecial?: 'all' | readonly string[];
}

export interface DecodeOptions {
  /** Drop special ids instead of writing their strings. */
  skipSpecial?: boolean;
}

export type TokenizerKind = 'byte' | 'char' | 'word' | 'bpe';

export interface Tokenizer {
  readonly kind: TokenizerKind;
  /** Number of ids, specials included; ids are 0 .. vocabSize - 1. */
  readonly vocabSize: number;
  /** Special-token strings in id order. */
  readonly specialTokens: readonly string[];
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** The id of a special token; throws when the tokenizer has no such token. */
  specialId(token: string): number;
  isSpecial(id: number): boolean;
  /** A readable form of one id (special string, character, word, or escaped bytes). */
  idToToken(id: number): string;
  /** A JSON-serialisable description from which `tokenizerFromJSON` rebuilds the tokenizer. */
  toJSON(): TokenizerJSON;
}

export interface TokenizerJSON {
  type: string;
  version: number;
  [key: string]: unknown;
}

/** Checks a special-token list: non-empty distinct strings without whitespace. */
export function validateSpecialTokens(who: string, tokens: readonly string[]): void {
  if (!Array.isArray(tokens)) throw new Error(`${who}: specialTokens must be an array of strings, got ${typeof tokens}`);
  const seen = new Set<string>();
  tokens.forEach((t, i) => {
    if (typeof t !== 'string' || t.length === 0)
      throw new Error(`${who}: specialTokens[${i}] must be a non-empty string, got ${JSON.stringify(t)}`);
    if (/\s/u.test(t)) throw new Error(`${who}: specialTokens[${i}] must not contain whitespace, got ${JSON.stringify(t)}`);
    if (seen.has(t)) throw new Error(`${who}: special token ${JSON.stringify(t)} is listed twice`);
    seen.add(t);
  });
}

/** The allowed special strings for one encode call, longest first so `<eos2>` wins over `<eos>`. */
export function resolveAllowed(who: string, specials: readonly string[], allowed: EncodeOptions['allowedSpecial']): string[] {
  if (allowed === undefined) return [];
  if (allowed === 'all') return [...specials].sort((a, b) => b.length - a.length);
  for (const t of allowed)
    if (!specials.includes(t))
      throw new Error(`${who}: allowedSpecial names ${JSON.stringify(t)}, which is not one of [${specials.join(', ')}]`);
  return [...allowed].sort((a, b) => b.length - a.length);
}

/** Splits `text` into ordinary pieces and allowed special tokens, in order. */
export function splitOnSpecial(text: string, allowed: readonly string[]): { text: string; special: boolean }[] {
  if (allowed.length === 0) return [{ text, special: false }];
  const out: { text: string; special: boolean }[] = [];
  const firsts = new Set(allowed.map((t) => t.charCodeAt(0)));
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const hit = firsts.has(text.charCodeAt(i)) ? allowed.find((t) => text.startsWith(t, i)) : undefined;
    if (hit === undefined) {
      i++;
      continue;
    }
    if (i > start) out.push({ text: text.slice(start, i), special: false });
    out.push({ text: hit, special: true });
    i += hit.length;
    start = i;
  }
  if (start < text.length) out.push({ text: text.slice(start), special: false });
  return out;
}

/** Wraps ids with `<bos>` / `<eos>` as asked. */
export function addBosEos(tok: Tokenizer, ids: number[], opts: EncodeOptions | undefined): number[] {
  if (opts?.bos) ids.unshift(tok.specialId('<bos>'));
  if (opts?.eos) ids.push(tok.specialId('<eos>'));
  return ids;
}

/** Throws unless `id` is an integer id of a vocabulary of `vocabSize`. */
export function checkId(who: string, id: number, vocabSize: number, index: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
    throw new Error(`${who}: ids[${index}] must be an integer in [0, ${vocabSize}), got ${id}`);
}
