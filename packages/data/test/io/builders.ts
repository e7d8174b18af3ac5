/**
 * Byte-level builders for PNG, WAV and IDX test files, so that valid and crafted-corrupt files are
 * made in memory without going through the encoders under test; and a small seeded PRNG.
 */
import { deflateSync } from 'node:zlib';
import { crc32 } from '../../src/io/index.js';

/** mulberry32: a tiny deterministic PRNG; `next()` is uniform in [0, 1). */
export function prng(seed: number): { next: () => number; int: (n: number) => number; pick: <T>(xs: readonly T[]) => T } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)]! };
}

export function concat(parts: readonly (Uint8Array | readonly number[])[]): Uint8Array {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((s, a) => s + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

export const u32be = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
export const u32le = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
export const u16le = (n: number) => [n & 255, (n >>> 8) & 255];

// ---------------------------------------------------------------- PNG

export const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** One PNG chunk: length, type, data, CRC-32 (correct unless `crc` is given). */
export function pngChunk(type: string, data: Uint8Array | readonly number[] = [], crc?: number): Uint8Array {
  const d = data instanceof Uint8Array ? data : Uint8Array.from(data);
  const body = concat([Array.from(type, (c) => c.charCodeAt(0)), d]);
  return concat([u32be(d.length), body, u32be(crc ?? crc32(body))]);
}

export function ihdr(width: number, height: number, bitDepth: number, colorType: number, interlace = 0): Uint8Array {
  return Uint8Array.from([...u32be(width), ...u32be(height), bitDepth, colorType, 0, 0, interlace]);
}

export function assemblePng(chunks: readonly Uint8Array[]): Uint8Array {
  return concat([PNG_SIGNATURE, ...chunks]);
}

export const SAMPLES_PER_PIXEL: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/**
 * The filtered (all filter type 0) scanlines of an image whose sample s of pixel (x, y) is
 * `sample(x, y, s)` (an integer < 2^bitDepth), in Adam7 pass order when interlaced.
 */
export function scanlines(
  width: number,
  height: number,
  colorType: number,
  bitDepth: number,
  interlace: number,
  sample: (x: number, y: number, s: number) => number,
): Uint8Array {
  const spp = SAMPLES_PER_PIXEL[colorType]!;
  const rows: number[][] = [];
  const passes = interlace ? ADAM7 : ([[0, 0, 1, 1]] as const);
  for (const [x0, y0, dx, dy] of passes)
    for (let y = y0; y < height; y += dy) {
      const xs: number[] = [];
      for (let x = x0; x < width; x += dx) xs.push(x);
      if (xs.length === 0) continue;
      const row = [0];
      let acc = 0;
      let nbits = 0;
      for (const x of xs)
        for (let s = 0; s < spp; s++) {
          const v = sample(x, y, s);
          if (bitDepth === 16) row.push(v >>> 8, v & 255);
          else if (bitDepth === 8) row.push(v);
          else {
            acc = (acc << bitDepth) | v;
            nbits += bitDepth;
            if (nbits === 8) {
              row.push(acc);
              acc = 0;
              nbits = 0;
            }
          }
        }
      if (nbits > 0) row.push(acc << (8 - nbits));
      rows.push(row);
    }
  return Uint8Array.from(rows.flat());
}

export interface PngSpec {
  width: number;
  height: number;
  colorType: number;
  bitDepth: number;
  interlace?: number;
  sample: (x: number, y: number, s: number) => number;
  /** RGB triples (colour type 3). */
  palette?: readonly number[];
  trns?: readonly number[];
  /** Split the zlib stream into this many IDAT chunks (default 1). */
  idatChunks?: number;
}

export function makePng(spec: PngSpec): Uint8Array {
  const raw = scanlines(spec.width, spec.height, spec.colorType, spec.bitDepth, spec.interlace ?? 0, spec.sample);
  const z = deflateSync(raw);
  const k = spec.idatChunks ?? 1;
  const idats: Uint8Array[] = [];
  for (let i = 0; i < k; i++)
    idats.push(pngChunk('IDAT', z.subarray(Math.floor((i * z.length) / k), Math.floor(((i + 1) * z.length) / k))));
  return assemblePng([
    pngChunk('IHDR', ihdr(spec.width, spec.height, spec.bitDepth, spec.colorType, spec.interlace ?? 0)),
    ...(spec.palette ? [pngChunk('PLTE', spec.palette)] : []),
    ...(spec.trns ? [pngChunk('tRNS', spec.trns)] : []),
    ...idats,
    pngChunk('IEND'),
  ]);
}

export interface PngChunkView {
  type: string;
  data: Uint8Array;
}

/** The chunks of a well-formed PNG (no checks). */
export function pngChunks(png: Uint8Array): PngChunkView[] {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: PngChunkView[] = [];
  for (let at = 8; at + 12 <= png.length; ) {
    const len = v.getUint32(at);
    out.push({ type: String.fromCharCode(...png.subarray(at + 4, at + 8)), data: png.slice(at + 8, at + 8 + len) });
    at += 12 + len;
  }
  return out;
}

// ---------------------------------------------------------------- WAV

/** A RIFF chunk: id, little-endian size (`size` overrides it), body, pad byte if the body is odd. */
export function riffChunk(id: string, body: Uint8Array | readonly number[], size?: number): Uint8Array {
  const b = body instanceof Uint8Array ? body : Uint8Array.from(body);
  return concat([Array.from(id, (c) => c.charCodeAt(0)), u32le(size ?? b.length), b, b.length % 2 ? [0] : []]);
}

export interface FmtSpec {
  format?: number;
  channels: number;
  rate: number;
  bits: number;
  blockAlign?: number;
  byteRate?: number;
  /** WAVE_FORMAT_EXTENSIBLE: the subformat code (1 PCM, 3 float); `format` is then 0xFFFE. */
  subformat?: number;
  validBits?: number;
}

export function fmtBody(f: FmtSpec): Uint8Array {
  const blockAlign = f.blockAlign ?? (f.channels * f.bits) / 8;
  const base = [
    ...u16le(f.subformat !== undefined ? 0xfffe : (f.format ?? 1)),
    ...u16le(f.channels),
    ...u32le(f.rate),
    ...u32le(f.byteRate ?? f.rate * blockAlign),
    ...u16le(blockAlign),
    ...u16le(f.bits),
  ];
  if (f.subformat === undefined) return Uint8Array.from(base);
  const guidTail = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
  return Uint8Array.from([...base, ...u16le(22), ...u16le(f.validBits ?? f.bits), ...u32le(0), ...u16le(f.subformat), ...guidTail]);
}

/** RIFF/WAVE around the given chunks; the RIFF size is right unless `riffSize` is given. */
export function assembleWav(chunks: readonly Uint8Array[], riffSize?: number): Uint8Array {
  const body = concat(chunks);
  return concat([[82, 73, 70, 70], u32le(riffSize ?? body.length + 4), [87, 65, 86, 69], body]);
}

export function makeWav(f: FmtSpec, data: Uint8Array | readonly number[], extra: readonly Uint8Array[] = []): Uint8Array {
  return assembleWav([riffChunk('fmt ', fmtBody(f)), ...extra, riffChunk('data', data)]);
}

export function f32le(xs: readonly number[]): Uint8Array {
  const b = new Uint8Array(xs.length * 4);
  const v = new DataView(b.buffer);
  xs.forEach((x, i) => v.setFloat32(i * 4, x, true));
  return b;
}

export function f64le(xs: readonly number[]): Uint8Array {
  const b = new Uint8Array(xs.length * 8);
  const v = new DataView(b.buffer);
  xs.forEach((x, i) => v.setFloat64(i * 8, x, true));
  return b;
}

export function i16le(xs: readonly number[]): Uint8Array {
  const b = new Uint8Array(xs.length * 2);
  const v = new DataView(b.buffer);
  xs.forEach((x, i) => v.setInt16(i * 2, x, true));
  return b;
}

// ---------------------------------------------------------------- IDX

/** IDX bytes: magic 00 00 type ndims, big-endian uint32 dims, data. */
export function idxBytes(type: number, dims: readonly number[], data: Uint8Array | readonly number[]): Uint8Array {
  return concat([[0, 0, type, dims.length], dims.flatMap(u32be), data instanceof Uint8Array ? data : Uint8Array.from(data)]);
}
