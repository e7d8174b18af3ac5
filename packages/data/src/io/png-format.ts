/**
 * PNG bytes without a PNG library (PNG specification, ISO/IEC 15948:2004): the chunk CRC, the row
 * filters (§9) and the 8-bit RGBA encoder that encodePng and the spectrogram writer share. zlib
 * comes from the platform seam (node:zlib in Node, pako in a browser), so this works in both.
 *
 * The encoder writes what pngjs 7 (used here before) writes for an 8-bit RGBA image: IHDR (colour
 * type 6, no interlace), one IDAT holding the whole zlib stream (level 9, Z_RLE), IEND, with each
 * row's filter chosen by pngjs' rule (the smallest sum of |filtered byte| over the five filters,
 * differences taken before the mod-256 wrap, the first filter on ties). In Node the bytes are the
 * same as pngjs' (a test checks it).
 *
 * Why by hand: pngjs needs Node's zlib, stream and Buffer and does not bundle for a browser, and this
 * package's PNG decoder (size limits, typed errors) was already its own; the encoder is the CRC and
 * row filters above a zlib stream from the platform seam.
 */
import { zlib } from '#platform';

export const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10] as const;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309 / ITU-T V.42, the PNG chunk checksum) of bytes[start, end). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The Paeth predictor (PNG §9.4): of a, b, c the one closest to a + b - c, ties to a then b. */
export function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/**
 * Undoes the row filters of one image (or one Adam7 pass) in place: `data[at ..]` holds `height`
 * rows of a filter-type byte then `rowBytes` bytes; `bpp` is bytes per complete pixel (at least 1).
 * The filter types must already be known to be 0 to 4.
 */
export function unfilterRows(data: Uint8Array, at: number, height: number, rowBytes: number, bpp: number): void {
  for (let y = 0; y < height; y++) {
    const f = data[at]!;
    const row = at + 1;
    const prev = y > 0 ? row - rowBytes - 1 : -1; // the previous row's first byte; -1: none (zeros)
    if (f === 1) for (let x = bpp; x < rowBytes; x++) data[row + x] = data[row + x]! + data[row + x - bpp]!;
    else if (f === 2) {
      if (prev >= 0) for (let x = 0; x < rowBytes; x++) data[row + x] = data[row + x]! + data[prev + x]!;
    } else if (f === 3)
      for (let x = 0; x < rowBytes; x++) {
        const left = x >= bpp ? data[row + x - bpp]! : 0;
        const up = prev >= 0 ? data[prev + x]! : 0;
        data[row + x] = data[row + x]! + ((left + up) >> 1);
      }
    else if (f === 4)
      for (let x = 0; x < rowBytes; x++) {
        const left = x >= bpp ? data[row + x - bpp]! : 0;
        const up = prev >= 0 ? data[prev + x]! : 0;
        const upLeft = prev >= 0 && x >= bpp ? data[prev + x - bpp]! : 0;
        data[row + x] = data[row + x]! + paeth(left, up, upLeft);
      }
    at = row + rowBytes;
  }
}

/** The value filter `f` predicts for byte x of the row starting at `row` (`up` < 0: first row). */
function predict(f: number, px: Uint8Array, row: number, up: number, x: number, bpp: number): number {
  if (f === 0) return 0;
  const left = x >= bpp ? px[row + x - bpp]! : 0;
  if (f === 1) return left;
  const above = up >= 0 ? px[up + x]! : 0;
  if (f === 2) return above;
  if (f === 3) return (left + above) >> 1;
  return paeth(left, above, up >= 0 && x >= bpp ? px[up + x - bpp]! : 0);
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

/** PNG bytes of an 8-bit RGBA image (`rgba`: width * height * 4 bytes, row-major). */
export function encodeRgbaPng(rgba: Uint8Array, width: number, height: number): Uint8Array {
  const bpp = 4;
  const rowBytes = width * bpp;
  const filtered = new Uint8Array((rowBytes + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * rowBytes;
    const up = y > 0 ? row - rowBytes : -1;
    let best = 0;
    let min = Number.POSITIVE_INFINITY;
    for (let f = 0; f <= 4; f++) {
      let sum = 0;
      for (let x = 0; x < rowBytes; x++) sum += Math.abs(rgba[row + x]! - predict(f, rgba, row, up, x, bpp));
      if (sum < min) [best, min] = [f, sum];
    }
    const out = y * (rowBytes + 1);
    filtered[out] = best;
    for (let x = 0; x < rowBytes; x++) filtered[out + 1 + x] = rgba[row + x]! - predict(best, rgba, row, up, x, bpp); // wraps mod 256
  }
  const ihdr = new Uint8Array(13);
  const h = new DataView(ihdr.buffer);
  h.setUint32(0, width);
  h.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type 6 (RGBA), deflate, adaptive filters, no interlace
  const parts = [
    Uint8Array.from(PNG_SIGNATURE),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflate(filtered)),
    chunk('IEND', new Uint8Array(0)),
  ];
  return concatBytes(parts);
}

/** The bytes of `parts`, one after another, in a new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
