/**
 * A minimal RGB PNG writer (PNG spec, ISO/IEC 15948: signature, IHDR, one zlib IDAT, IEND; CRC-32
 * of ISO 3309) and image grids for reports. Stand-in until @mmlm/data exports an image-grid writer.
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

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** RGB image [H * W * 3] in [0, 1] -> PNG bytes. */
export function encodePngRgb(rgb: ArrayLike<number>, width: number, height: number): Uint8Array {
  if (rgb.length !== width * height * 3)
    throw new Error(`encodePngRgb: expected ${width * height * 3} values for ${width}x${height} RGB, got ${rgb.length}`);
  const raw = new Uint8Array(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * 3)] = 0; // filter: none
    for (let i = 0; i < width * 3; i++)
      raw[y * (1 + width * 3) + 1 + i] = Math.round(255 * Math.min(1, Math.max(0, rgb[y * width * 3 + i] ?? 0)));
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, adaptive filtering, no interlace
  const parts = [
    Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Writes square RGB images (size x size) as a grid with `cols` columns and a 2-pixel grey border, upscaled by `scale`. */
export function writeImageGrid(path: string, images: Float32Array[], size: number, cols: number, scale = 2): void {
  const rows = Math.ceil(images.length / cols);
  const cell = size * scale + 2;
  const W = cols * cell + 2;
  const H = rows * cell + 2;
  const rgb = new Float32Array(W * H * 3).fill(0.5);
  images.forEach((img, k) => {
    const ox = 2 + (k % cols) * cell;
    const oy = 2 + Math.floor(k / cols) * cell;
    for (let y = 0; y < size * scale; y++)
      for (let x = 0; x < size * scale; x++)
        for (let c = 0; c < 3; c++)
          rgb[((oy + y) * W + ox + x) * 3 + c] = img[(Math.floor(y / scale) * size + Math.floor(x / scale)) * 3 + c]!;
  });
  writeFileSync(path, encodePngRgb(rgb, W, H));
}
