import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { crc32, decodePng, encodePng, imageGrid, loadImageFolder, readPng, writeImageGrid, writePng } from '../../src/io/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mmlm-png-'));

function ramp(w: number, h: number, c: number): Float32Array {
  return Float32Array.from({ length: w * h * c }, (_, i) => (i % 256) / 255);
}

describe('crc32', () => {
  it('matches the published check value of "123456789" and the IEND chunk CRC', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new TextEncoder().encode('IEND'))).toBe(0xae426082);
  });
});

describe('PNG read/write', () => {
  it('round-trips 8-bit values exactly for 1, 3 and 4 channels', () => {
    for (const c of [1, 3, 4] as const) {
      const img = ramp(7, 5, c);
      const p = join(dir, `ramp${c}.png`);
      writePng(p, img, 7, 5, c);
      const back = readPng(p, { channels: c });
      expect([back.width, back.height, back.channels]).toEqual([7, 5, c]);
      expect(Array.from(back.image)).toEqual(
        Array.from(img)
          .map((v) => Math.round(v * 255) / 255)
          .map((v) => Math.fround(v)),
      );
    }
  });

  it('decodes what pngjs itself wrote (pixel values independent of our encoder)', () => {
    const png = new PNG({ width: 2, height: 1 });
    png.data.set([255, 0, 0, 255, 0, 0, 255, 0]);
    const bytes = new Uint8Array(PNG.sync.write(png));
    const rgb = decodePng(bytes, { background: [0, 1, 0] });
    expect(Array.from(rgb.image)).toEqual([1, 0, 0, 0, 1, 0]);
    expect(Array.from(decodePng(bytes, { channels: 4 }).image)).toEqual([1, 0, 0, 1, 0, 0, 1, 0]);
    expect(Array.from(decodePng(bytes, { channels: 1 }).image).map((v) => +v.toFixed(6))).toEqual([+(1 / 3).toFixed(6), 0]);
  });

  it('writes the bytes pngjs 7 wrote (the encoder that was used before), whatever the image', () => {
    const pngjs = (rgba: Uint8Array, w: number, h: number) => {
      const png = new PNG({ width: w, height: h });
      png.data.set(rgba);
      return new Uint8Array(PNG.sync.write(png));
    };
    let seed = 1;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (const [w, h] of [
      [1, 1],
      [7, 5],
      [64, 48],
      [300, 3],
    ] as const)
      for (const c of [1, 3, 4] as const) {
        // smooth ramps, flat areas and noise, so that every row filter gets picked somewhere
        const img = Float32Array.from({ length: w * h * c }, (_, i) => {
          const p = Math.floor(i / c);
          const [x, y] = [p % w, Math.floor(p / w)];
          return y % 3 === 0 ? x / w : y % 3 === 1 ? 0.5 : rand();
        });
        const ours = encodePng(img, w, h, c);
        const rgba = new Uint8Array(w * h * 4);
        const q = (v: number) => Math.round(255 * v);
        for (let p = 0; p < w * h; p++)
          for (let k = 0; k < 4; k++) rgba[4 * p + k] = k === 3 ? (c === 4 ? q(img[4 * p + 3]!) : 255) : q(img[c * p + (c === 1 ? 0 : k)]!);
        expect(Buffer.from(ours).equals(Buffer.from(pngjs(rgba, w, h))), `${w}x${h}x${c}`).toBe(true);
      }
  });

  it('clips values outside [0, 1] when encoding', () => {
    const back = decodePng(encodePng(Float32Array.from([-1, 0.5, 2]), 1, 1, 3));
    expect(Array.from(back.image)).toEqual([0, Math.fround(128 / 255), 1]);
  });

  it('names the file and the problem for corrupt and truncated files', () => {
    const good = encodePng(ramp(8, 8, 3), 8, 8, 3);
    const truncated = join(dir, 'truncated.png');
    writeFileSync(truncated, good.subarray(0, good.length - 20));
    expect(() => readPng(truncated)).toThrow(/PNG .*truncated\.png: truncated: chunk/);
    const flipped = Uint8Array.from(good);
    flipped[good.length - 16]! ^= 0xff;
    const corrupt = join(dir, 'corrupt.png');
    writeFileSync(corrupt, flipped);
    expect(() => readPng(corrupt)).toThrow(/PNG .*corrupt\.png: corrupt: CRC mismatch in chunk IDAT/);
    const notPng = join(dir, 'text.png');
    writeFileSync(notPng, 'hello world, not a png');
    expect(() => readPng(notPng)).toThrow(/text\.png: not a PNG file/);
    writeFileSync(join(dir, 'tiny.png'), Uint8Array.from([137, 80]));
    expect(() => readPng(join(dir, 'tiny.png'))).toThrow(/tiny\.png: file is 2 bytes, too short/);
    expect(() => readPng(join(dir, 'missing.png'))).toThrow(/PNG .*missing\.png: cannot read/);
  });

  it('rejects bad arguments', () => {
    expect(() => encodePng(new Float32Array(10), 2, 2, 3)).toThrow(/expected 12 values for 2x2x3, got 10/);
    expect(() => encodePng(new Float32Array(4), 2, 2, 2 as never)).toThrow(/channels must be 1, 3 or 4, got 2/);
    expect(() => encodePng(new Float32Array(0), 0, 0, 3)).toThrow(/positive integers, got 0x0/);
    const good = encodePng(ramp(2, 2, 3), 2, 2, 3);
    expect(() => decodePng(good, { background: [2, 0, 0] })).toThrow(/background must be an RGB triple in \[0, 1\]/);
  });
});

describe('loadImageFolder', () => {
  it('loads PNGs sorted by path with sub-folder labels, and checks sizes', () => {
    const root = join(dir, 'folder');
    mkdirSync(join(root, 'cats'), { recursive: true });
    mkdirSync(join(root, 'dogs'), { recursive: true });
    writePng(join(root, 'dogs', 'b.png'), ramp(4, 4, 3), 4);
    writePng(join(root, 'cats', 'a.png'), ramp(4, 4, 3), 4);
    writePng(join(root, 'top.png'), ramp(4, 4, 3), 4);
    writeFileSync(join(root, 'notes.txt'), 'ignored');
    const items = loadImageFolder(root);
    expect(items.map((i) => [i.name, i.label])).toEqual([
      ['cats/a.png', 'cats'],
      ['dogs/b.png', 'dogs'],
      ['top.png', ''],
    ]);
    expect(loadImageFolder(root, { recursive: false }).map((i) => i.name)).toEqual(['top.png']);
    writePng(join(root, 'dogs', 'c.png'), ramp(5, 4, 3), 5, 4);
    expect(() => loadImageFolder(root)).toThrow(/c\.png is 5x4, expected 4x4/);
    expect(loadImageFolder(root, { mixedSizes: true })).toHaveLength(4);
    expect(() => loadImageFolder(join(dir, 'nope'))).toThrow(/loadImageFolder .*nope: cannot read/);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(() => loadImageFolder(empty)).toThrow(/no \.png files found/);
    writeFileSync(join(root, 'cats', 'broken.png'), 'xx');
    expect(() => loadImageFolder(root, { mixedSizes: true })).toThrow(/broken\.png: file is 2 bytes/);
  });
});

describe('image grid', () => {
  it('places images with padding and nearest-neighbour scaling', () => {
    const a = Float32Array.from([0, 0, 0]);
    const b = Float32Array.from([1, 0, 0]);
    const c = Float32Array.from([0, 0, 1]);
    const g = imageGrid([a, b, c], { size: 1, cols: 2, pad: 1, scale: 2, padValue: 0.5 });
    expect([g.width, g.height]).toEqual([7, 7]);
    const px = (x: number, y: number) => Array.from(g.image.subarray((y * 7 + x) * 3, (y * 7 + x) * 3 + 3));
    expect(px(0, 0)).toEqual([0.5, 0.5, 0.5]);
    expect(px(1, 1)).toEqual([0, 0, 0]);
    expect(px(2, 2)).toEqual([0, 0, 0]);
    expect(px(4, 1)).toEqual([1, 0, 0]);
    expect(px(5, 2)).toEqual([1, 0, 0]);
    expect(px(1, 4)).toEqual([0, 0, 1]);
    expect(px(4, 4)).toEqual([0.5, 0.5, 0.5]);
    const p = join(dir, 'grid.png');
    expect(writeImageGrid(p, [a, b, c], { size: 1, cols: 2, pad: 1, scale: 2 })).toEqual({ width: 7, height: 7 });
    expect(readPng(p).width).toBe(7);
    expect(readFileSync(p).length).toBeGreaterThan(0);
  });

  it('rejects bad arguments', () => {
    expect(() => imageGrid([], { size: 2 })).toThrow(/no images/);
    expect(() => imageGrid([new Float32Array(5)], { size: 2 })).toThrow(/image 0 has 5 values, expected 12/);
    expect(() => imageGrid([new Float32Array(12)], { size: 2, cols: 0 })).toThrow(/cols must be a positive integer, got 0/);
    expect(() => imageGrid([new Float32Array(12)], { size: 2, scale: 1.5 })).toThrow(/scale must be an integer >= 1/);
  });
});
