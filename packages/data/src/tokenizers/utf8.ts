/**
 * UTF-8 helpers shared by the byte-level tokenizers (RFC 3629). JavaScript strings are UTF-16 and
 * may hold lone surrogates, which have no UTF-8 encoding; TextEncoder would silently turn them into
 * U+FFFD and break the exact round trip, so they are rejected with their position instead.
 */

const encoder = new TextEncoder();
const lenientDecoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Index of the first lone surrogate in `s`, or -1 when `s` is well-formed UTF-16. */
export function loneSurrogateIndex(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      else return i;
    } else if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

/** UTF-8 bytes of `s`; throws, naming `who` and the position, when `s` holds a lone surrogate. */
export function utf8Encode(s: string, who: string): Uint8Array {
  const bad = loneSurrogateIndex(s);
  if (bad >= 0) {
    const hex = s.charCodeAt(bad).toString(16).toUpperCase();
    throw new Error(`${who}: text has a lone surrogate U+${hex} at index ${bad}; it has no UTF-8 encoding`);
  }
  return encoder.encode(s);
}

/** Decodes UTF-8, replacing invalid sequences with U+FFFD (a BOM is kept as text, not stripped). */
export function utf8Decode(bytes: Uint8Array): string {
  return lenientDecoder.decode(bytes);
}

/**
 * Byte offset of the first invalid UTF-8 sequence in `bytes`, or -1 when all of it is valid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid, RFC 3629 section 4).
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + need >= n) return i;
    const c1 = bytes[i + 1]!;
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const c = bytes[i + k]!;
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}
