/**
 * PNG read/write (PNG specification, ISO/IEC 15948:2004 / W3C 2003) on top of pngjs, a
 * folder-of-images loader and an image-grid writer for reports. Images are Float32Array HWC in
 * [0, 1] with 1 (grey), 3 (RGB) or 4 (RGBA) channels; values are quantised to 8 bits as
 * round(255 v) after clipping.
 *
 * The chunk layout (signature, chunk lengths, CRC-32 of every chunk, IHDR first, IEND present) is
 * checked before pngjs decodes, because pngjs reports a truncated file as "There are some read
 * requests waitng on finished stream"; every error names the file and the problem.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { PNG } from 'pngjs';

export type PngChannels = 1 | 3 | 4;

export interface PngImage {
  /** [height * width * channels] HWC in [0, 1]. */
  image: Float32Array;
  width: number;
  height: number;
  channels: PngChannels;
}

export interface ReadPngOptions {
  /**
   * Channels returned (default 3). RGB from RGBA composites over `background`; grey is the mean of
   * R, G and B (after compositing); RGBA from an opaque file has alpha 1.
   */
  channels?: PngChannels;
  /** RGB in [0, 1] that transparent pixels are composited over (default black). */
  background?: readonly [number, number, number];
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

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

function checkChannels(what: string, channels: unknown): asserts channels is PngChannels {
  if (channels !== 1 && channels !== 3 && channels !== 4)
    throw new Error(`${what}: channels must be 1, 3 or 4, got ${JSON.stringify(channels)}`);
}

/** Walks the PNG chunks; throws naming `name` and the problem. */
function checkPngChunks(bytes: Uint8Array, name: string): void {
  const fail = (msg: string): never => {
    throw new Error(`PNG ${name}: ${msg}`);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte PNG signature`);
  if (SIGNATURE.some((b, i) => bytes[i] !== b)) fail('not a PNG file: the first 8 bytes are not the PNG signature');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let first = true;
  for (;;) {
    if (at + 12 > bytes.length)
      fail(`truncated: chunk header at byte ${at} needs 12 bytes, the file has ${bytes.length - at} left (no IEND chunk)`);
    const len = view.getUint32(at);
    const type = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!, bytes[at + 6]!, bytes[at + 7]!);
    if (!/^[A-Za-z]{4}$/.test(type)) fail(`corrupt chunk type ${JSON.stringify(type)} at byte ${at}`);
    if (first && type !== 'IHDR') fail(`the first chunk is ${type}, expected IHDR`);
    first = false;
    if (at + 12 + len > bytes.length)
      fail(`truncated: chunk ${type} at byte ${at} declares ${len} data bytes, the file has ${Math.max(0, bytes.length - at - 12)} left`);
    const stored = view.getUint32(at + 8 + len);
    const actual = crc32(bytes, at + 4, at + 8 + len);
    if (stored !== actual) fail(`corrupt: CRC mismatch in chunk ${type} at byte ${at} (stored ${stored}, computed ${actual})`);
    at += 12 + len;
    if (type === 'IEND') return;
  }
}

/** Decodes PNG bytes; `name` appears in errors. */
export function decodePng(bytes: Uint8Array, opts: ReadPngOptions = {}, name = '<buffer>'): PngImage {
  const channels = opts.channels ?? 3;
  checkChannels(`decodePng ${name}`, channels);
  const bgc = opts.background ?? [0, 0, 0];
  if (bgc.length !== 3 || bgc.some((v) => !(v >= 0 && v <= 1)))
    throw new Error(`decodePng ${name}: background must be an RGB triple in [0, 1], got ${JSON.stringify(bgc)}`);
  checkPngChunks(bytes, name);
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new Error(`PNG ${name}: cannot decode: ${(e as Error).message}`);
  }
  const { width, height, data } = png;
  const n = width * height;
  if (data.length < n * 4) throw new Error(`PNG ${name}: decoded ${data.length} bytes, expected ${n * 4} for ${width}x${height} RGBA`);
  const image = new Float32Array(n * channels);
  for (let p = 0; p < n; p++) {
    const a = data[p * 4 + 3]! / 255;
    const rgb = [0, 1, 2].map((c) => (data[p * 4 + c]! / 255) * (channels === 4 ? 1 : a) + (channels === 4 ? 0 : (1 - a) * bgc[c]!));
    if (channels === 1) image[p] = (rgb[0]! + rgb[1]! + rgb[2]!) / 3;
    else {
      for (let c = 0; c < 3; c++) image[p * channels + c] = rgb[c]!;
      if (channels === 4) image[p * 4 + 3] = a;
    }
  }
  return { image, width, height, channels };
}

/** Reads a PNG file. */
export function readPng(path: string, opts: ReadPngOptions = {}): PngImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`PNG ${path}: cannot read: ${(e as Error).message}`);
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
  const png = new PNG({ width, height });
  const q = (v: number) => Math.round(255 * (v > 1 ? 1 : Math.max(v, 0)));
  for (let p = 0; p < width * height; p++) {
    const o = p * 4;
    if (channels === 1) png.data[o] = png.data[o + 1] = png.data[o + 2] = q(image[p]!);
    else for (let c = 0; c < 3; c++) png.data[o + c] = q(image[p * channels + c]!);
    png.data[o + 3] = channels === 4 ? q(image[p * 4 + 3]!) : 255;
  }
  return new Uint8Array(PNG.sync.write(png));
}

/** Writes an HWC image in [0, 1] to a PNG file. */
export function writePng(path: string, image: ArrayLike<number>, width: number, height = width, channels: PngChannels = 3): void {
  writeFileSync(path, encodePng(image, width, height, channels));
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
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...listPngs(p, true));
    } else if (e.isFile() && e.name.toLowerCase().endsWith('.png')) out.push(p);
  }
  return out;
}

/** Every .png file under `dir`, sorted by path, decoded; label = first sub-folder name. */
export function loadImageFolder(dir: string, opts: LoadImageFolderOptions = {}): ImageFolderItem[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
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
    const name = relative(dir, f).split(sep).join('/');
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

/** Writes images as one grid PNG (for reports); returns the grid's size. */
export function writeImageGrid(
  path: string,
  images: readonly ArrayLike<number>[],
  opts: ImageGridOptions,
): { width: number; height: number } {
  const { image, width, height } = imageGrid(images, opts);
  writePng(path, image, width, height, 3);
  return { width, height };
}
