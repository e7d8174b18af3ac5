/**
 * PNG read/write (PNG specification, ISO/IEC 15948:2004 / W3C 2003), a folder-of-images loader and
 * an image-grid writer for reports. Images are Float32Array HWC in [0, 1] with 1 (grey), 3 (RGB) or
 * 4 (RGBA) channels; values are quantised to 8 bits as round(255 v) after clipping.
 *
 * Decoding validates the whole file before any pixel is produced, so that a corrupt file cannot
 * become a plausible image (pngjs, used here before, zero-filled rows missing from the IDAT stream,
 * accepted bit depth / colour type pairs the specification forbids, and reported a truncated file
 * as "There are some read requests waitng on finished stream"). The chunk walk checks the
 * signature, every chunk's length and CRC-32, IHDR (size, bit depth against colour type, methods),
 * PLTE and tRNS against the colour type, that the IDAT chunks are present and consecutive, and
 * IEND; then the concatenated IDAT stream is inflated (zlib checks its Adler-32) with the output
 * capped at the exact filtered size that IHDR implies, and must fill it exactly; then every row's
 * filter byte is checked. Only then are the rows unfiltered and the samples converted to 8-bit RGBA
 * (as pngjs converted them: samples of other depths scaled by round(255 v / (2^depth - 1)), a tRNS
 * colour made transparent black, palette entries with their tRNS alpha, gAMA read but not
 * applied). `maxPixels` is checked from IHDR before anything is inflated, so a small hostile file
 * cannot make the decoder allocate gigabytes. Every failure is a `PngError` naming the file and the
 * problem.
 *
 * The codecs work on bytes in Node and in a browser (zlib from the platform seam: node:zlib or
 * pako); `readPng`, `writePng`, `loadImageFolder` and `writeImageGrid` need Node.
 */

import { fs, MAX_BUFFER_LENGTH, nodeOnly, path as nodePath, zlib } from '#platform';
import { checkLimitOption, messageOf, PngError } from './errors.js';
import { concatBytes, crc32, encodeRgbaPng, PNG_SIGNATURE, unfilterRows } from './png-format.js';

export { crc32 };

export type PngChannels = 1 | 3 | 4;

export interface PngImage {
  /** [height * width * channels] HWC in [0, 1]. */
  image: Float32Array;
  width: number;
  height: number;
  channels: PngChannels;
}

/** Default `maxPixels`: 4096 * 4096 (about 16.8 M pixels, 200 MB as float RGB). */
export const PNG_DEFAULT_MAX_PIXELS = 4096 * 4096;

export interface ReadPngOptions {
  /**
   * Channels returned (default 3). RGB from RGBA composites over `background`; grey is the mean of
   * R, G and B (after compositing); RGBA from an opaque file has alpha 1.
   */
  channels?: PngChannels;
  /** RGB in [0, 1] that transparent pixels are composited over (default black). */
  background?: readonly [number, number, number];
  /**
   * Largest width * height accepted (default `PNG_DEFAULT_MAX_PIXELS` = 4096 * 4096), checked from
   * IHDR before any pixel data is inflated; `Infinity` for no limit. A larger image is a
   * `PngError` of kind 'limit'.
   */
  maxPixels?: number;
}

function checkChannels(what: string, channels: unknown): asserts channels is PngChannels {
  if (channels !== 1 && channels !== 3 && channels !== 4)
    throw new Error(`${what}: channels must be 1, 3 or 4, got ${JSON.stringify(channels)}`);
}

/** Colour types (PNG specification table 11.1): samples per pixel and the bit depths allowed. */
const COLOR_TYPES: Record<number, { name: string; samples: number; depths: readonly number[] }> = {
  0: { name: 'greyscale', samples: 1, depths: [1, 2, 4, 8, 16] },
  2: { name: 'truecolour', samples: 3, depths: [8, 16] },
  3: { name: 'indexed-colour', samples: 1, depths: [1, 2, 4, 8] },
  4: { name: 'greyscale with alpha', samples: 2, depths: [8, 16] },
  6: { name: 'truecolour with alpha', samples: 4, depths: [8, 16] },
};

/** Adam7 passes: [x start, y start, x step, y step]. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
}

interface PngPass {
  /** Adam7 pass number 1-7, or 0 for a non-interlaced image. */
  pass: number;
  width: number;
  height: number;
  /** Bytes per row after the filter-type byte: ceil(width * bitsPerPixel / 8). */
  rowBytes: number;
}

/** The non-empty passes of the image: one for a non-interlaced image, up to seven for Adam7. */
function pngPasses(h: PngHeader): PngPass[] {
  const bitsPerPixel = COLOR_TYPES[h.colorType]!.samples * h.bitDepth;
  const pass = (p: number, width: number, height: number): PngPass => ({
    pass: p,
    width,
    height,
    rowBytes: Math.ceil((width * bitsPerPixel) / 8),
  });
  if (h.interlace === 0) return [pass(0, h.width, h.height)];
  const out: PngPass[] = [];
  ADAM7.forEach(([x0, y0, dx, dy], i) => {
    const w = h.width > x0 ? Math.ceil((h.width - x0) / dx) : 0;
    const ht = h.height > y0 ? Math.ceil((h.height - y0) / dy) : 0;
    if (w > 0 && ht > 0) out.push(pass(i + 1, w, ht));
  });
  return out;
}

const MAX_LEN = 0x7fffffff; // chunk lengths, width and height are at most 2^31 - 1

/**
 * Walks the PNG chunks (see the module comment for what is checked); returns the header, the
 * IDAT chunks' data (views into `bytes`) and the offset just past IEND. Throws a PngError naming
 * `name` and the problem.
 */
function checkPngChunks(bytes: Uint8Array, name: string, maxPixels: number): { header: PngHeader; idat: Uint8Array[]; end: number } {
  const fail = (msg: string, kind: 'corrupt' | 'unsupported' | 'limit' = 'corrupt'): never => {
    throw new PngError(name, msg, kind);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte PNG signature`);
  if (PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) fail('not a PNG file: the first 8 bytes are not the PNG signature');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let header: PngHeader | undefined;
  let paletteEntries = 0; // 0: no PLTE seen
  let trns = false;
  let idatState: 'before' | 'in' | 'after' = 'before';
  const idat: Uint8Array[] = [];
  for (;;) {
    if (at + 12 > bytes.length)
      fail(`truncated: chunk header at byte ${at} needs 12 bytes, the file has ${bytes.length - at} left (no IEND chunk)`);
    const len = view.getUint32(at);
    const type = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!, bytes[at + 6]!, bytes[at + 7]!);
    if (!/^[A-Za-z]{4}$/.test(type)) fail(`corrupt chunk type ${JSON.stringify(type)} at byte ${at}`);
    if (!header && type !== 'IHDR') fail(`the first chunk is ${type}, expected IHDR`);
    if (len > MAX_LEN) fail(`chunk ${type} at byte ${at} declares ${len} data bytes, more than the PNG maximum 2^31-1 (corrupt length)`);
    if (at + 12 + len > bytes.length)
      fail(`truncated: chunk ${type} at byte ${at} declares ${len} data bytes, the file has ${Math.max(0, bytes.length - at - 12)} left`);
    const stored = view.getUint32(at + 8 + len);
    const actual = crc32(bytes, at + 4, at + 8 + len);
    if (stored !== actual) fail(`corrupt: CRC mismatch in chunk ${type} at byte ${at} (stored ${stored}, computed ${actual})`);
    const data = bytes.subarray(at + 8, at + 8 + len);
    const where = `chunk ${type} at byte ${at}`;
    if (type === 'IDAT') {
      if (idatState === 'after') fail(`${where} follows a non-IDAT chunk: the IDAT chunks must be consecutive`);
      if (header!.colorType === 3 && paletteEntries === 0)
        fail(`colour type 3 (indexed-colour) needs a PLTE chunk before the first IDAT, found none`);
      idatState = 'in';
      idat.push(data);
    } else {
      if (idatState === 'in') idatState = 'after';
      if (type === 'IHDR') {
        if (header) fail(`second IHDR chunk at byte ${at}; a PNG file has exactly one`);
        header = parseIhdr(data, fail, maxPixels);
      } else if (type === 'PLTE') {
        const ct = header!.colorType;
        if (paletteEntries > 0) fail(`second PLTE chunk at byte ${at}; a PNG file has at most one`);
        if (idatState !== 'before') fail(`${where} comes after the image data; PLTE must precede the first IDAT`);
        if (ct === 0 || ct === 4) fail(`${where}: a PLTE chunk is not allowed for colour type ${ct} (${COLOR_TYPES[ct]!.name})`);
        if (len % 3 !== 0 || len === 0 || len > 768)
          fail(`PLTE chunk is ${len} bytes, expected a multiple of 3 between 3 and 768 (1 to 256 RGB entries)`);
        paletteEntries = len / 3;
        if (ct === 3 && paletteEntries > 2 ** header!.bitDepth)
          fail(`PLTE has ${paletteEntries} entries, more than the ${2 ** header!.bitDepth} that bit depth ${header!.bitDepth} can index`);
      } else if (type === 'tRNS') {
        const ct = header!.colorType;
        if (trns) fail(`second tRNS chunk at byte ${at}; a PNG file has at most one`);
        trns = true;
        if (idatState !== 'before') fail(`${where} comes after the image data; tRNS must precede the first IDAT`);
        if (ct === 4 || ct === 6) fail(`${where}: a tRNS chunk is not allowed for colour type ${ct} (it has an alpha channel)`);
        if (ct === 0 && len !== 2) fail(`tRNS chunk is ${len} bytes, expected 2 for colour type 0 (greyscale)`);
        if (ct === 2 && len !== 6) fail(`tRNS chunk is ${len} bytes, expected 6 for colour type 2 (truecolour)`);
        if (ct === 3) {
          if (paletteEntries === 0) fail(`${where} comes before PLTE; for colour type 3 tRNS must follow PLTE`);
          if (len > paletteEntries) fail(`tRNS chunk has ${len} alpha values, more than the ${paletteEntries} PLTE entries`);
        }
      } else if (type === 'gAMA') {
        if (len !== 4) fail(`gAMA chunk is ${len} bytes, expected 4`);
      } else if (type === 'IEND') {
        if (len !== 0) fail(`IEND chunk is ${len} bytes, expected 0`);
        if (idat.length === 0) fail('no IDAT chunk: the file has no pixel data');
        return { header: header!, idat, end: at + 12 };
      } else if ((bytes[at + 4]! & 0x20) === 0) {
        // An upper-case first letter marks a critical chunk: a decoder must not ignore one it does not know.
        fail(`unknown critical chunk ${type} at byte ${at}`, 'unsupported');
      }
    }
    at += 12 + len;
  }
}

function parseIhdr(d: Uint8Array, fail: (msg: string, kind?: 'corrupt' | 'unsupported' | 'limit') => never, maxPixels: number): PngHeader {
  if (d.length !== 13) fail(`IHDR chunk is ${d.length} bytes, expected 13`);
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const h: PngHeader = { width: v.getUint32(0), height: v.getUint32(4), bitDepth: d[8]!, colorType: d[9]!, interlace: d[12]! };
  if (h.width < 1 || h.height < 1 || h.width > MAX_LEN || h.height > MAX_LEN)
    fail(`image is ${h.width}x${h.height}; width and height must be between 1 and 2^31-1`);
  const ct = COLOR_TYPES[h.colorType];
  if (!ct) fail(`colour type ${h.colorType} is not one of 0, 2, 3, 4, 6`);
  if (!ct!.depths.includes(h.bitDepth))
    fail(`bit depth ${h.bitDepth} is not allowed for colour type ${h.colorType} (${ct!.name}); expected one of ${ct!.depths.join(', ')}`);
  if (d[10] !== 0) fail(`compression method ${d[10]}, expected 0 (deflate)`);
  if (d[11] !== 0) fail(`filter method ${d[11]}, expected 0 (adaptive)`);
  if (h.interlace > 1) fail(`interlace method ${h.interlace}, expected 0 (none) or 1 (Adam7)`);
  const pixels = h.width * h.height;
  if (pixels > maxPixels)
    fail(
      `image is ${h.width}x${h.height} = ${pixels} pixels, more than maxPixels = ${maxPixels}; pass { maxPixels } to raise the limit`,
      'limit',
    );
  return h;
}

/**
 * Inflates the concatenated IDAT data with the output capped at exactly the filtered size IHDR
 * implies, and checks each row's filter byte; returns the filtered rows (every pass, in order).
 * zlib checks the Adler-32.
 */
function checkPixelData(idat: Uint8Array[], passes: PngPass[], name: string): Uint8Array {
  const fail = (msg: string, kind: 'corrupt' | 'limit' = 'corrupt', cause?: unknown): never => {
    throw new PngError(name, msg, kind, cause === undefined ? undefined : { cause });
  };
  const expected = passes.reduce((s, p) => s + p.height * (1 + p.rowBytes), 0);
  if (expected > MAX_BUFFER_LENGTH)
    fail(`image needs ${expected} bytes of filtered pixel data, more than the ${MAX_BUFFER_LENGTH} a buffer can hold`, 'limit');
  const stream = idat.length === 1 ? idat[0]! : concatBytes(idat);
  let pixels: Uint8Array;
  let consumed: number;
  try {
    ({ bytes: pixels, consumed } = zlib.inflate(stream, { maxOutputLength: expected }));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE')
      fail(`IDAT inflates to more than ${expected} bytes of pixel data, expected exactly ${expected} (corrupt)`);
    if (code === 'Z_BUF_ERROR') {
      // The zlib stream stops before its final block: measure what it does hold, for the message.
      let held = 0;
      try {
        held = zlib.inflate(stream, { maxOutputLength: expected, partial: true }).bytes.length;
      } catch {}
      fail(`IDAT holds ${held} bytes of pixel data, expected ${expected} (truncated image?: the zlib stream ends early)`, 'corrupt', e);
    }
    fail(`corrupt IDAT zlib data (${messageOf(e)})`, 'corrupt', e);
  }
  if (pixels!.length !== expected) fail(`IDAT holds ${pixels!.length} bytes of pixel data, expected ${expected} (truncated image?)`);
  // zlib ignores bytes after the end of the stream (pngjs failed on them with "There are some read
  // requests waitng on finished stream").
  if (consumed! < stream.length) fail(`IDAT has ${stream.length - consumed!} bytes after the end of its zlib stream (corrupt)`);
  let off = 0;
  for (const p of passes)
    for (let y = 0; y < p.height; y++) {
      const f = pixels![off]!;
      if (f > 4) fail(`row ${y}${p.pass ? ` of Adam7 pass ${p.pass}` : ''} has filter type ${f}, expected 0 to 4 (corrupt pixel data)`);
      off += 1 + p.rowBytes;
    }
  return pixels!;
}

/** PLTE as RGBA entries (alpha from tRNS, else 255) and tRNS as a colour key, for `toRgba`. */
interface PngColours {
  palette?: Uint8Array;
  /** The transparent grey [v] or RGB [r, g, b] at the image's bit depth (tRNS of colour type 0 / 2). */
  key?: number[];
}

/** PLTE and tRNS of a file the chunk walk has accepted. */
function readColours(bytes: Uint8Array, end: number, colorType: number): PngColours {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: PngColours = {};
  for (let at = 8; at < end; ) {
    const len = view.getUint32(at);
    const type = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!, bytes[at + 6]!, bytes[at + 7]!);
    const data = bytes.subarray(at + 8, at + 8 + len);
    if (type === 'PLTE') {
      out.palette = new Uint8Array((len / 3) * 4).fill(255);
      for (let i = 0; i < len / 3; i++) out.palette.set(data.subarray(3 * i, 3 * i + 3), 4 * i);
    } else if (type === 'tRNS') {
      if (colorType === 3) for (let i = 0; i < len; i++) out.palette![4 * i + 3] = data[i]!;
      else out.key = Array.from({ length: len / 2 }, (_, i) => (data[2 * i]! << 8) | data[2 * i + 1]!);
    } else if (type === 'IDAT') break; // PLTE and tRNS precede the image data
    at += 12 + len;
  }
  return out;
}

/**
 * The unfiltered rows of every pass as 8-bit RGBA, [height * width * 4]. Throws a plain Error for
 * a palette index past the palette (the only problem left after the checks).
 */
function toRgba(rows: Uint8Array, h: PngHeader, passes: PngPass[], colours: PngColours): Uint8Array {
  const { width, bitDepth: depth, colorType: ct } = h;
  const samples = ct === 0 || ct === 3 ? 1 : ct === 2 ? 3 : ct === 4 ? 2 : 4;
  const out = new Uint8Array(width * h.height * 4);
  const max = 2 ** depth - 1;
  const scale = (v: number) => (depth === 8 ? v : Math.floor((v * 255) / max + 0.5));
  const key = colours.key;
  const s = new Array<number>(samples);
  let at = 0;
  for (const p of passes) {
    const [x0, y0, dx, dy] = p.pass ? ADAM7[p.pass - 1]! : [0, 0, 1, 1];
    for (let y = 0; y < p.height; y++) {
      const row = at + 1;
      for (let x = 0; x < p.width; x++) {
        for (let i = 0; i < samples; i++) {
          const k = x * samples + i; // sample index within the row
          if (depth === 8) s[i] = rows[row + k]!;
          else if (depth === 16) s[i] = (rows[row + 2 * k]! << 8) | rows[row + 2 * k + 1]!;
          else {
            const bit = k * depth;
            s[i] = (rows[row + (bit >> 3)]! >> (8 - depth - (bit & 7))) & max;
          }
        }
        const o = ((y0 + y * dy) * width + x0 + x * dx) * 4;
        if (ct === 3) {
          const e = s[0]! * 4;
          if (e + 4 > colours.palette!.length) throw new Error(`index ${s[0]} not in palette`);
          out.set(colours.palette!.subarray(e, e + 4), o);
          continue;
        }
        if (key && (ct === 0 ? s[0] === key[0] : s[0] === key[0] && s[1] === key[1] && s[2] === key[2])) continue; // transparent black
        const grey = ct === 0 || ct === 4;
        out[o] = scale(s[0]!);
        out[o + 1] = scale(grey ? s[0]! : s[1]!);
        out[o + 2] = scale(grey ? s[0]! : s[2]!);
        out[o + 3] = ct === 4 ? scale(s[1]!) : ct === 6 ? scale(s[3]!) : 255;
      }
      at = row + p.rowBytes;
    }
  }
  return out;
}

/** Decodes PNG bytes; `name` appears in errors. Failures caused by the file are `PngError`s. */
export function decodePng(bytes: Uint8Array, opts: ReadPngOptions = {}, name = '<buffer>'): PngImage {
  const channels = opts.channels ?? 3;
  checkChannels(`decodePng ${name}`, channels);
  const bgc = opts.background ?? [0, 0, 0];
  if (bgc.length !== 3 || bgc.some((v) => !(v >= 0 && v <= 1)))
    throw new Error(`decodePng ${name}: background must be an RGB triple in [0, 1], got ${JSON.stringify(bgc)}`);
  const maxPixels = checkLimitOption(`decodePng ${name}`, 'maxPixels', opts.maxPixels ?? PNG_DEFAULT_MAX_PIXELS);
  const { header, idat, end } = checkPngChunks(bytes, name, maxPixels);
  const passes = pngPasses(header);
  const rows = checkPixelData(idat, passes, name);
  let data: Uint8Array;
  try {
    const bpp = Math.max(1, (COLOR_TYPES[header.colorType]!.samples * header.bitDepth) >> 3);
    let at = 0;
    for (const p of passes) {
      unfilterRows(rows, at, p.height, p.rowBytes, bpp);
      at += p.height * (1 + p.rowBytes);
    }
    data = toRgba(rows, header, passes, readColours(bytes, end, header.colorType));
  } catch (e) {
    throw new PngError(name, `cannot decode: ${messageOf(e)}`, 'corrupt', { cause: e });
  }
  const { width, height } = header;
  const n = width * height;
  const image = new Float32Array(n * channels);
  const [b0, b1, b2] = bgc;
  for (let p = 0; p < n; p++) {
    const o = p * 4;
    const a = data[o + 3]! / 255;
    if (channels === 4) {
      image[o] = data[o]! / 255;
      image[o + 1] = data[o + 1]! / 255;
      image[o + 2] = data[o + 2]! / 255;
      image[o + 3] = a;
      continue;
    }
    const r = (data[o]! / 255) * a + (1 - a) * b0!;
    const g = (data[o + 1]! / 255) * a + (1 - a) * b1!;
    const b = (data[o + 2]! / 255) * a + (1 - a) * b2!;
    if (channels === 1) image[p] = (r + g + b) / 3;
    else {
      image[p * 3] = r;
      image[p * 3 + 1] = g;
      image[p * 3 + 2] = b;
    }
  }
  return { image, width, height, channels };
}

/** Reads a PNG file (see `decodePng`; an unreadable file is a `PngError` of kind 'io'). Node only. */
export function readPng(path: string, opts: ReadPngOptions = {}): PngImage {
  nodeOnly('readPng');
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new PngError(path, `cannot read: ${messageOf(e)}`, 'io', { cause: e });
  }
  return decodePng(bytes, opts, path);
}

/** Encodes an HWC image in [0, 1] (1, 3 or 4 channels) as PNG bytes (8-bit RGBA). */
export function encodePng(image: ArrayLike<number>, width: number, height = width, channels: PngChannels = 3): Uint8Array {
  checkChannels('encodePng', channels);
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1)
    throw new Error(`encodePng: width and height must be positive integers, got ${width}x${height}`);
  if (image.length !== width * height * channels)
    throw new Error(`encodePng: expected ${width * height * channels} values for ${width}x${height}x${channels}, got ${image.length}`);
  const data = new Uint8Array(width * height * 4);
  const q = (v: number) => Math.round(255 * (v > 1 ? 1 : Math.max(v, 0)));
  for (let p = 0; p < width * height; p++) {
    const o = p * 4;
    if (channels === 1) data[o] = data[o + 1] = data[o + 2] = q(image[p]!);
    else for (let c = 0; c < 3; c++) data[o + c] = q(image[p * channels + c]!);
    data[o + 3] = channels === 4 ? q(image[p * 4 + 3]!) : 255;
  }
  return encodeRgbaPng(data, width, height);
}

/** Writes an HWC image in [0, 1] to a PNG file. Node only. */
export function writePng(path: string, image: ArrayLike<number>, width: number, height = width, channels: PngChannels = 3): void {
  nodeOnly('writePng');
  fs.writeFileSync(path, encodePng(image, width, height, channels));
}

export interface ImageFolderItem extends PngImage {
  /** Path relative to the folder, with '/' separators. */
  name: string;
  /** The first sub-folder of the path ('' for files at the top level), as in an image-folder dataset. */
  label: string;
}

export interface LoadImageFolderOptions extends ReadPngOptions {
  /** Descend into sub-folders (default true). */
  recursive?: boolean;
  /** Require every image to have this width x height (default: the size of the first image). */
  size?: readonly [number, number];
  /** Allow images of different sizes (default false). */
  mixedSizes?: boolean;
}

function listPngs(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = nodePath.join(dir, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...listPngs(p, true));
    } else if (e.isFile() && e.name.toLowerCase().endsWith('.png')) out.push(p);
  }
  return out;
}

/** Every .png file under `dir`, sorted by path, decoded; label = first sub-folder name. Node only. */
export function loadImageFolder(dir: string, opts: LoadImageFolderOptions = {}): ImageFolderItem[] {
  nodeOnly('loadImageFolder');
  let st: ReturnType<typeof fs.statSync>;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new Error(`loadImageFolder ${dir}: cannot read: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new Error(`loadImageFolder ${dir}: not a directory`);
  const files = listPngs(dir, opts.recursive ?? true);
  if (files.length === 0) throw new Error(`loadImageFolder ${dir}: no .png files found`);
  let want = opts.size;
  return files.map((f) => {
    const img = readPng(f, opts);
    if (!opts.mixedSizes) {
      want ??= [img.width, img.height];
      if (img.width !== want[0] || img.height !== want[1])
        throw new Error(
          `loadImageFolder ${dir}: ${f} is ${img.width}x${img.height}, expected ${want[0]}x${want[1]} (pass mixedSizes: true to allow)`,
        );
    }
    const name = nodePath.relative(dir, f).split(nodePath.sep).join('/');
    const parts = name.split('/');
    return { ...img, name, label: parts.length > 1 ? parts[0]! : '' };
  });
}

export interface ImageGridOptions {
  /** Images per row (default ceil(sqrt(n))). */
  cols?: number;
  /** Side of each (square) image in pixels, or [width, height]. */
  size: number | readonly [number, number];
  /** Pixels between images and around the grid (default 2). */
  pad?: number;
  /** Channels of each image (default 3). */
  channels?: 1 | 3;
  /** Nearest-neighbour upscaling factor of each image (default 1). */
  scale?: number;
  /** Grey level in [0, 1] of the padding (default 1, white). */
  padValue?: number;
}

/** Lays images out in a grid: returns [H * W * 3] and the grid's size. */
export function imageGrid(
  images: readonly ArrayLike<number>[],
  opts: ImageGridOptions,
): { image: Float32Array; width: number; height: number } {
  const [w, h] = typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
  const C = opts.channels ?? 3;
  const pad = opts.pad ?? 2;
  const scale = opts.scale ?? 1;
  const n = images.length;
  if (n === 0) throw new Error('imageGrid: no images');
  if (!Number.isInteger(w) || w < 1 || !Number.isInteger(h) || h < 1)
    throw new Error(`imageGrid: size must be positive integers, got ${JSON.stringify(opts.size)}`);
  if (C !== 1 && C !== 3) throw new Error(`imageGrid: channels must be 1 or 3, got ${JSON.stringify(C)}`);
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`imageGrid: pad must be an integer >= 0, got ${pad}`);
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`imageGrid: scale must be an integer >= 1, got ${scale}`);
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  if (!Number.isInteger(cols) || cols < 1) throw new Error(`imageGrid: cols must be a positive integer, got ${cols}`);
  images.forEach((img, i) => {
    if (img.length !== w * h * C) throw new Error(`imageGrid: image ${i} has ${img.length} values, expected ${w * h * C} (${w}x${h}x${C})`);
  });
  const rows = Math.ceil(n / cols);
  const W = cols * w * scale + (cols + 1) * pad;
  const H = rows * h * scale + (rows + 1) * pad;
  const out = new Float32Array(W * H * 3).fill(opts.padValue ?? 1);
  images.forEach((img, i) => {
    const ox = pad + (i % cols) * (w * scale + pad);
    const oy = pad + Math.floor(i / cols) * (h * scale + pad);
    for (let y = 0; y < h * scale; y++)
      for (let x = 0; x < w * scale; x++) {
        const s = (Math.floor(y / scale) * w + Math.floor(x / scale)) * C;
        const d = ((oy + y) * W + ox + x) * 3;
        for (let c = 0; c < 3; c++) out[d + c] = img[s + (C === 1 ? 0 : c)]!;
      }
  });
  return { image: out, width: W, height: H };
}

/** Writes images as one grid PNG (for reports); returns the grid's size. Node only. */
export function writeImageGrid(
  path: string,
  images: readonly ArrayLike<number>[],
  opts: ImageGridOptions,
): { width: number; height: number } {
  nodeOnly('writeImageGrid');
  const { image, width, height } = imageGrid(images, opts);
  writePng(path, image, width, height, 3);
  return { width, height };
}
