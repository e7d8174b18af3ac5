/**
 * Byte-level tokenizer: ids 0-255 are the UTF-8 bytes of the text (as in ByT5 and the base
 * alphabet of GPT-2's byte-level BPE), special tokens follow at 256, 257, ... Every well-formed
 * string round-trips exactly; there is never an unknown byte.
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
import { utf8Decode, utf8Encode } from './utf8.js';

export interface ByteTokenizerOptions {
  /** Special tokens, given ids 256, 257, ... in this order. */
  specialTokens?: readonly string[];
}

/** `\xHH` escapes for a byte sequence, used to show tokens that are not valid UTF-8 on their own. */
export function escapeBytes(bytes: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
  return s;
}

export class ByteTokenizer implements Tokenizer {
  readonly kind = 'byte' as const;
  readonly specialTokens: readonly string[];
  readonly vocabSize: number;
  private readonly specialIndex: Map<string, number>;

  constructor(opts: ByteTokenizerOptions = {}) {
    const specials = opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
    validateSpecialTokens('ByteTokenizer', specials);
    this.specialTokens = [...specials];
    this.specialIndex = new Map(this.specialTokens.map((t, i) => [t, 256 + i]));
    this.vocabSize = 256 + this.specialTokens.length;
  }

  encode(text: string, opts?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new Error(`ByteTokenizer.encode: text must be a string, got ${typeof text}`);
    const allowed = resolveAllowed('ByteTokenizer.encode', this.specialTokens, opts?.allowedSpecial);
    const ids: number[] = [];
    for (const piece of splitOnSpecial(text, allowed)) {
      if (piece.special) ids.push(this.specialIndex.get(piece.text)!);
      else for (const b of utf8Encode(piece.text, 'ByteTokenizer.encode')) ids.push(b);
    }
    return addBosEos(this, ids, opts);
  }

  /** The raw bytes of the non-special ids (specials dropped). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const out: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      checkId('ByteTokenizer.decodeBytes', ids[i]!, this.vocabSize, i);
      if (ids[i]! < 256) out.push(ids[i]!);
    }
    return Uint8Array.from(out);
  }

  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string {
    let s = '';
    let run: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      checkId('ByteTokenizer.decode', id, this.vocabSize, i);
      if (id < 256) {
        run.push(id);
        continue;
      }
      s += utf8Decode(Uint8Array.from(run));
      run = [];
      if (!opts?.skipSpecial) s += this.specialTokens[id - 256];
    }
    return s + utf8Decode(Uint8Array.from(run));
  }

  specialId(token: string): number {
    const id = this.specialIndex.get(token);
    if (id === undefined)
      throw new Error(`ByteTokenizer: no special token ${JSON.stringify(token)}; it has [${this.specialTokens.join(', ')}]`);
    return id;
  }

  isSpecial(id: number): boolean {
    return id >= 256 && id < this.vocabSize;
  }

  idToToken(id: number): string {
    checkId('ByteTokenizer.idToToken', id, this.vocabSize, 0);
    if (id >= 256) return this.specialTokens[id - 256]!;
    return id >= 0x20 && id < 0x7f ? String.fromCharCode(id) : escapeBytes([id]);
  }

  toJSON(): TokenizerJSON {
    return { type: 'mmlm-byte', version: 1, specialTokens: [...this.specialTokens] };
  }
}
