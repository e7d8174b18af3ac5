import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DecodeError, decodePng, PNG_DEFAULT_MAX_PIXELS, PngError, readPng } from '../../src/io/index.js';
import { assemblePng, ihdr, makePng, type PngSpec, pngChunk, SAMPLES_PER_PIXEL, scanlines } from './builders.js';

const dir = mkdtempSync(join(tmpdir(), 'mmlm-png-hard-'));

/** The PngError `decodePng(bytes)` throws (fails the test if it returns or throws anything else). */
function pngError(bytes: Uint8Array, opts: Parameters<typeof decodePng>[1] = {}, name = 'x.png'): PngError {
  try {
    decodePng(bytes, opts, name);
  } catch (e) {
    expect(e).toBeInstanceOf(PngError);
    return e as PngError;
  }
  throw new Error('decodePng returned instead of throwing');
}

/** An 8-bit RGB image, rows 0..h-1, as IHDR + one IDAT holding `raw` + IEND. */
function rgbWithIdat(w: number, h: number, idat: Uint8Array): Uint8Array {
  return assemblePng([pngChunk('IHDR', ihdr(w, h, 8, 2)), pngChunk('IDAT', idat), pngChunk('IEND')]);
}

const rgbRaw = (w: number, h: number) => scanlines(w, h, 2, 8, 0, (x, y, s) => (x * 40 + y * 9 + s * 70) % 256);

describe('PNG decoding of valid files (every colour type, bit depth and interlace)', () => {
  it('matches hand-computed RGBA for all allowed colour type / bit depth pairs, plain and Adam7', () => {
    const depths: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
    let checked = 0;
    for (const [ct, ds] of Object.entries(depths).map(([k, v]) => [Number(k), v] as const))
      for (const depth of ds)
        for (const interlace of [0, 1])
          for (const [w, h] of [
            [1, 1],
            [5, 3],
            [9, 10],
          ] as const) {
            const max = 2 ** depth - 1;
            const entries = Math.min(2 ** depth, 5);
            const sample = (x: number, y: number, s: number) =>
              ct === 3 ? (x + 2 * y) % entries : (x * 7919 + y * 104729 + s * 12345 + 3) % (max + 1);
            const palette = Array.from({ length: entries * 3 }, (_, i) => (i * 37 + 11) % 256);
            const trns = [0, 128];
            const spec: PngSpec = { width: w, height: h, colorType: ct, bitDepth: depth, interlace, sample, idatChunks: 2 };
            if (ct === 3) Object.assign(spec, { palette, trns: trns.slice(0, entries) });
            const out = decodePng(makePng(spec), { channels: 4 }, `ct${ct}-d${depth}-i${interlace}`);
            expect([out.width, out.height, out.channels]).toEqual([w, h, 4]);
            const scale = (v: number) => (depth === 8 ? v : Math.floor((v * 255) / max + 0.5));
            const want: number[] = [];
            for (let y = 0; y < h; y++)
              for (let x = 0; x < w; x++) {
                const s = (i: number) => scale(sample(x, y, i));
                if (ct === 0) want.push(s(0), s(0), s(0), 255);
                else if (ct === 2) want.push(s(0), s(1), s(2), 255);
                else if (ct === 4) want.push(s(0), s(0), s(0), s(1));
                else if (ct === 6) want.push(s(0), s(1), s(2), s(3));
                else {
                  const i = sample(x, y, 0);
                  want.push(palette[3 * i]!, palette[3 * i + 1]!, palette[3 * i + 2]!, trns[i] ?? 255);
                }
              }
            expect(Array.from(out.image), `ct ${ct} depth ${depth} interlace ${interlace} ${w}x${h}`).toEqual(
              want.map((v) => Math.fround(v / 255)),
            );
            checked++;
          }
    expect(checked).toBe(15 * 2 * 3);
    expect(SAMPLES_PER_PIXEL[6]).toBe(4);
  });

  it('accepts unknown ancillary chunks and data after IEND', () => {
    const good = makePng({ width: 2, height: 2, colorType: 2, bitDepth: 8, sample: () => 9 });
    const withText = assemblePng([
      pngChunk('IHDR', ihdr(2, 2, 8, 2)),
      pngChunk('tEXt', [65, 0, 66]),
      pngChunk('IDAT', deflateSync(rgbRaw(2, 2))),
      pngChunk('IEND'),
    ]);
    expect(decodePng(withText).width).toBe(2);
    expect(decodePng(Uint8Array.from([...good, 1, 2, 3])).height).toBe(2);
  });
});

describe('PNG with missing or wrong pixel data (pngjs would zero-fill it)', () => {
  it('rejects a file with no IDAT chunk', () => {
    const e = pngError(assemblePng([pngChunk('IHDR', ihdr(4, 4, 8, 2)), pngChunk('IEND')]));
    expect(e.message).toBe('PNG x.png: no IDAT chunk: the file has no pixel data');
  });

  it('rejects an IDAT that holds 8 of 16 rows', () => {
    const e = pngError(rgbWithIdat(4, 16, deflateSync(rgbRaw(4, 8))));
    expect(e.message).toMatch(/PNG x\.png: IDAT holds 104 bytes of pixel data, expected 208 \(truncated image\?\)/);
    expect(e.kind).toBe('corrupt');
  });

  it('rejects an empty zlib stream', () => {
    expect(pngError(rgbWithIdat(4, 4, deflateSync(new Uint8Array(0)))).message).toMatch(/IDAT holds 0 bytes of pixel data, expected 52/);
  });

  it('rejects a zlib stream cut short, saying how much it holds', () => {
    const raw = scanlines(16, 16, 2, 8, 0, (x, y, s) => (x * 131 + y * 71 + s * 17) % 251); // compresses poorly
    const z = deflateSync(raw);
    expect(pngError(rgbWithIdat(16, 16, z.subarray(0, z.length >> 1))).message).toMatch(
      /IDAT holds \d+ bytes of pixel data, expected 784 \(truncated image\?: the zlib stream ends early\)/,
    );
  });

  it('rejects more pixel data than IHDR implies', () => {
    expect(pngError(rgbWithIdat(4, 4, deflateSync(rgbRaw(4, 5)))).message).toMatch(
      /IDAT inflates to more than 52 bytes of pixel data, expected exactly 52/,
    );
  });

  it('rejects a bad zlib Adler-32 (with a correct chunk CRC)', () => {
    const z = Uint8Array.from(deflateSync(rgbRaw(4, 4)));
    z[z.length - 1]! ^= 0x55;
    expect(pngError(rgbWithIdat(4, 4, z)).message).toMatch(/PNG x\.png: corrupt IDAT zlib data \(incorrect data check\)/);
  });

  it('rejects IDAT chunks that are not consecutive', () => {
    const z = deflateSync(rgbRaw(4, 4));
    const png = assemblePng([
      pngChunk('IHDR', ihdr(4, 4, 8, 2)),
      pngChunk('IDAT', z.subarray(0, 10)),
      pngChunk('tEXt', [65, 0, 66]),
      pngChunk('IDAT', z.subarray(10)),
      pngChunk('IEND'),
    ]);
    expect(pngError(png).message).toMatch(/chunk IDAT at byte \d+ follows a non-IDAT chunk: the IDAT chunks must be consecutive/);
  });

  it('rejects a row filter type above 4', () => {
    const raw = rgbRaw(4, 4);
    raw[13] = 7; // the filter byte of row 1
    expect(pngError(rgbWithIdat(4, 4, deflateSync(raw))).message).toMatch(/row 1 has filter type 7, expected 0 to 4/);
    const inter = scanlines(4, 4, 0, 8, 1, () => 1);
    inter[inter.length - 5] = 9; // the filter byte of the last row of pass 7 (4 bytes per row)
    const png = assemblePng([pngChunk('IHDR', ihdr(4, 4, 8, 0, 1)), pngChunk('IDAT', deflateSync(inter)), pngChunk('IEND')]);
    expect(pngError(png).message).toMatch(/row 1 of Adam7 pass 7 has filter type 9/);
  });
});

describe('PNG header, palette and chunk checks', () => {
  const idat = pngChunk('IDAT', deflateSync(new Uint8Array(2)));
  const withHeader = (h: Uint8Array, ...rest: Uint8Array[]) => assemblePng([pngChunk('IHDR', h), ...rest, idat, pngChunk('IEND')]);

  it('rejects a zero width or height, and sizes over 2^31-1', () => {
    expect(pngError(withHeader(ihdr(0, 4, 8, 2))).message).toMatch(/image is 0x4; width and height must be between 1 and 2\^31-1/);
    expect(pngError(withHeader(ihdr(4, 0, 8, 2))).message).toMatch(/image is 4x0/);
    expect(pngError(withHeader(ihdr(2 ** 31, 1, 8, 2))).message).toMatch(/image is 2147483648x1/);
  });

  it('rejects bit depth / colour type pairs the specification forbids, and bad methods', () => {
    expect(pngError(withHeader(ihdr(1, 1, 1, 2))).message).toMatch(
      /bit depth 1 is not allowed for colour type 2 \(truecolour\); expected one of 8, 16/,
    );
    expect(pngError(withHeader(ihdr(1, 1, 16, 3))).message).toMatch(/bit depth 16 is not allowed for colour type 3/);
    expect(pngError(withHeader(ihdr(1, 1, 4, 4))).message).toMatch(/bit depth 4 is not allowed for colour type 4/);
    expect(pngError(withHeader(ihdr(1, 1, 8, 5))).message).toMatch(/colour type 5 is not one of 0, 2, 3, 4, 6/);
    expect(pngError(withHeader(ihdr(1, 1, 8, 2, 2))).message).toMatch(/interlace method 2, expected 0 \(none\) or 1 \(Adam7\)/);
    const h = ihdr(1, 1, 8, 2);
    h[10] = 1;
    expect(pngError(withHeader(h)).message).toMatch(/compression method 1, expected 0/);
    expect(pngError(withHeader(ihdr(1, 1, 8, 2).subarray(0, 12))).message).toMatch(/IHDR chunk is 12 bytes, expected 13/);
    expect(pngError(withHeader(ihdr(1, 1, 8, 2), pngChunk('IHDR', ihdr(1, 1, 8, 2)))).message).toMatch(/second IHDR chunk/);
  });

  it('checks PLTE and tRNS against the colour type', () => {
    const pal = (n: number) => pngChunk('PLTE', new Uint8Array(n));
    expect(pngError(withHeader(ihdr(1, 1, 8, 3), pal(7))).message).toMatch(
      /PLTE chunk is 7 bytes, expected a multiple of 3 between 3 and 768 \(1 to 256 RGB entries\)/,
    );
    expect(pngError(withHeader(ihdr(1, 1, 8, 3), pal(257 * 3))).message).toMatch(/PLTE chunk is 771 bytes/);
    expect(pngError(withHeader(ihdr(1, 1, 8, 3))).message).toMatch(
      /colour type 3 \(indexed-colour\) needs a PLTE chunk before the first IDAT/,
    );
    expect(pngError(withHeader(ihdr(1, 1, 1, 3), pal(9))).message).toMatch(
      /PLTE has 3 entries, more than the 2 that bit depth 1 can index/,
    );
    expect(pngError(withHeader(ihdr(1, 1, 8, 0), pal(3))).message).toMatch(/a PLTE chunk is not allowed for colour type 0 \(greyscale\)/);
    expect(pngError(withHeader(ihdr(1, 1, 8, 3), pal(6), pal(6))).message).toMatch(/second PLTE chunk/);
    expect(pngError(withHeader(ihdr(1, 1, 8, 3), pal(6), pngChunk('tRNS', [1, 2, 3]))).message).toMatch(
      /tRNS chunk has 3 alpha values, more than the 2 PLTE entries/,
    );
    expect(pngError(withHeader(ihdr(1, 1, 8, 2), pngChunk('tRNS', [0, 1]))).message).toMatch(/tRNS chunk is 2 bytes, expected 6/);
    expect(pngError(withHeader(ihdr(1, 1, 8, 6), pngChunk('tRNS', [0, 1]))).message).toMatch(
      /a tRNS chunk is not allowed for colour type 6/,
    );
    expect(pngError(withHeader(ihdr(1, 1, 8, 2), pngChunk('gAMA', [0, 1]))).message).toMatch(/gAMA chunk is 2 bytes, expected 4/);
  });

  it('rejects unknown critical chunks, huge chunk lengths and a non-empty IEND', () => {
    const e = pngError(withHeader(ihdr(1, 1, 8, 0), pngChunk('ABCD', [1])));
    expect(e.message).toMatch(/unknown critical chunk ABCD/);
    expect(e.kind).toBe('unsupported');
    const huge = Uint8Array.from(withHeader(ihdr(1, 1, 8, 0)));
    huge.set([0x80, 0, 0, 0], 33); // the length of the IDAT chunk after IHDR
    expect(pngError(huge).message).toMatch(/chunk IDAT at byte 33 declares 2147483648 data bytes, more than the PNG maximum 2\^31-1/);
    const iend = assemblePng([pngChunk('IHDR', ihdr(1, 1, 8, 0)), idat, pngChunk('IEND', [0])]);
    expect(pngError(iend).message).toMatch(/IEND chunk is 1 bytes, expected 0/);
  });

  it('wraps what pngjs still rejects (a palette index past the palette) in a PngError', () => {
    const png = makePng({ width: 2, height: 1, colorType: 3, bitDepth: 8, palette: [1, 2, 3, 4, 5, 6], sample: (x) => 5 * x });
    const e = pngError(png);
    expect(e.message).toMatch(/PNG x\.png: cannot decode: index 5 not in palette/);
    expect(e.cause).toBeInstanceOf(Error);
  });
});

describe('PNG size limit', () => {
  it('refuses more than maxPixels from IHDR, before inflating anything', () => {
    // 8000x8000 RGB would be 192 MB of filtered data; the IDAT here is not even valid zlib, so the
    // limit error proves nothing was inflated.
    const bomb = assemblePng([pngChunk('IHDR', ihdr(8000, 8000, 8, 2)), pngChunk('IDAT', [1, 2, 3]), pngChunk('IEND')]);
    const e = pngError(bomb);
    expect(e.message).toBe(
      `PNG x.png: image is 8000x8000 = 64000000 pixels, more than maxPixels = ${PNG_DEFAULT_MAX_PIXELS}; pass { maxPixels } to raise the limit`,
    );
    expect(e.kind).toBe('limit');
    const small = makePng({ width: 40, height: 30, colorType: 0, bitDepth: 8, sample: () => 0 });
    expect(pngError(small, { maxPixels: 1000 }).message).toMatch(/image is 40x30 = 1200 pixels, more than maxPixels = 1000/);
    expect(decodePng(small, { maxPixels: 1200 }).width).toBe(40);
    expect(decodePng(small, { maxPixels: Number.POSITIVE_INFINITY }).width).toBe(40);
    expect(() => decodePng(small, { maxPixels: 0 })).toThrow(/maxPixels must be a positive integer or Infinity, got 0/);
  });
});

describe('PNG that crashed the process', () => {
  it('rejects a huge IHDR that made pngjs abort Node (native assertion in its inflate) before any pixel work', () => {
    // Found by the fuzz test: pngjs sizes its inflate buffer from IHDR, and a buffer past Node's
    // limit fails an assertion inside zlib that kills the process instead of throwing.
    const rest = [pngChunk('PLTE', [255, 0, 0, 0, 255, 0]), pngChunk('IDAT', deflateSync(Uint8Array.of(0, 0))), pngChunk('IEND')];
    const png = assemblePng([pngChunk('IHDR', ihdr(0xf922607a, 6, 2, 3)), ...rest]);
    expect(pngError(png, { maxPixels: Number.POSITIVE_INFINITY }).message).toMatch(
      /image is 4179779706x6; width and height must be between 1 and 2\^31-1/,
    );
    const wide = assemblePng([pngChunk('IHDR', ihdr(2 ** 31 - 1, 6, 2, 3)), ...rest]);
    expect(pngError(wide).kind).toBe('limit');
    expect(pngError(wide, { maxPixels: Number.POSITIVE_INFINITY }).message).toMatch(
      /IDAT holds 2 bytes of pixel data, expected 3221225478/,
    );
  });
});

describe('PngError', () => {
  it('is one catchable type naming the file, for every failure the file causes', () => {
    const p = join(dir, 'bad.png');
    writeFileSync(p, assemblePng([pngChunk('IHDR', ihdr(4, 4, 8, 2)), pngChunk('IEND')]));
    let caught: unknown;
    try {
      readPng(p);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PngError);
    expect(caught).toBeInstanceOf(DecodeError);
    const e = caught as PngError;
    expect([e.name, e.format, e.source, e.kind, e.reason]).toEqual([
      'PngError',
      'PNG',
      p,
      'corrupt',
      'no IDAT chunk: the file has no pixel data',
    ]);
    expect(e.message).toBe(`PNG ${p}: no IDAT chunk: the file has no pixel data`);
    let missing: unknown;
    try {
      readPng(join(dir, 'missing.png'));
    } catch (err) {
      missing = err;
    }
    expect(missing).toBeInstanceOf(PngError);
    expect((missing as PngError).kind).toBe('io');
  });
});
