/**
 * A minimal PNG writer (RGB, 8 bit, no interlace: PNG spec, W3C 2003, sections 5-11) with zlib from
 * node, and sample grids: images [S * S * 3] in [0, 1] tiled with a one-pixel gap and upscaled by
 * nearest neighbour.
 */
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encode RGB bytes [H * W * 3] as a PNG file. */
export function encodePng(rgb: Uint8Array, width: number, height: number): Buffer {
  if (rgb.length !== width * height * 3) throw new Error(`encodePng: expected ${width * height * 3} bytes, got ${rgb.length}`);
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    Buffer.from(rgb.subarray(y * width * 3, (y + 1) * width * 3)).copy(raw, y * (width * 3 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** Tile images [S * S * 3] in [0, 1] into a grid of `cols` columns, each pixel scaled by `scale`, and write a PNG. */
export function writeImageGrid(path: string, images: Float32Array[], S: number, cols: number, scale = 3): void {
  const rows = Math.ceil(images.length / cols);
  const cell = S * scale + 1;
  const W = cols * cell + 1;
  const H = rows * cell + 1;
  const rgb = new Uint8Array(W * H * 3).fill(255);
  images.forEach((img, k) => {
    const ox = (k % cols) * cell + 1;
    const oy = Math.floor(k / cols) * cell + 1;
    for (let y = 0; y < S * scale; y++)
      for (let x = 0; x < S * scale; x++) {
        const src = (Math.floor(y / scale) * S + Math.floor(x / scale)) * 3;
        const dst = ((oy + y) * W + ox + x) * 3;
        for (let c = 0; c < 3; c++) rgb[dst + c] = Math.round(Math.min(1, Math.max(0, img[src + c] as number)) * 255);
      }
  });
  writeFileSync(path, encodePng(rgb, W, H));
}
