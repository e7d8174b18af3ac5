/**
 * The browser half of the platform seam (src/platform/browser.ts: zlib from pako, no files) gives
 * the decoders what the Node half gives them: the same images and arrays, and the same errors with
 * the same messages, on valid files, on every zlib failure the decoders handle (cut, too long,
 * trailing bytes, bad checksum) and on a few thousand seeded corruptions. The decoder modules are
 * loaded twice, once on each half, and run side by side in Node.
 */
import { deflateSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type * as Io from '../../src/io/index.js';
import * as browser from '../../src/platform/browser.js';
import * as node from '../../src/platform/node.js';
import { assemblePng, concat, idxBytes, ihdr, makePng, type PngSpec, pngChunk, prng, scanlines } from './builders.js';

let onNode: typeof Io;
let onBrowser: typeof Io;

beforeAll(async () => {
  vi.resetModules();
  onNode = await import('../../src/io/index.js');
  vi.resetModules();
  vi.doMock('#platform', () => import('../../src/platform/browser.js'));
  onBrowser = await import('../../src/io/index.js');
  vi.doUnmock('#platform');
});

/** What a call gives: its value, or its error's class name, message, kind and `cause` code. */
function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    const err = e as Error & { kind?: string; cause?: { code?: string } };
    return { error: err.name, message: err.message, kind: err.kind, cause: err.cause?.code };
  }
}

function zlibOutcome(f: () => Uint8Array | { bytes: Uint8Array; consumed: number }): unknown {
  try {
    const r = f();
    return r instanceof Uint8Array ? { bytes: Array.from(r) } : { bytes: Array.from(r.bytes), consumed: r.consumed };
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
}

describe('zlib on both halves of the platform seam', () => {
  const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251);
  const z = deflateSync(data);
  const gz = gzipSync(data);
  const streams: [string, Uint8Array][] = [
    ['valid', z],
    ['cut', z.subarray(0, z.length - 30)],
    ['cut before the Adler-32', z.subarray(0, z.length - 2)],
    ['trailing bytes', concat([z, [1, 2, 3]])],
    ['bad Adler-32', concat([z.subarray(0, z.length - 1), [z[z.length - 1]! ^ 1]])],
    ['bad header', concat([[0x78, 0x00], z.subarray(2)])],
    ['empty', new Uint8Array(0)],
    ['random', Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 256)],
  ];

  it.each(streams)('inflate: %s', (_name, s) => {
    for (const maxOutputLength of [data.length, data.length - 1, 100, 2 ** 32])
      for (const partial of [false, true])
        expect(zlibOutcome(() => browser.zlib.inflate(s, { maxOutputLength, partial }))).toEqual(
          zlibOutcome(() => node.zlib.inflate(s, { maxOutputLength, partial })),
        );
  });

  it('gunzip: valid, cut, two members, trailing bytes, bad CRC-32, over the cap', () => {
    const inputs = [
      gz,
      gz.subarray(0, gz.length - 20),
      gz.subarray(0, gz.length - 4),
      concat([gz, gzipSync(data.subarray(0, 10))]),
      concat([gz, [0, 1, 2]]),
      concat([gz, [7, 1, 2]]),
      concat([gz.subarray(0, gz.length - 8), [gz[gz.length - 8]! ^ 1], gz.subarray(gz.length - 7)]),
    ];
    for (const s of inputs)
      for (const maxOutputLength of [data.length, data.length + 10, 1000])
        for (const partial of [false, true])
          expect(zlibOutcome(() => browser.zlib.gunzip(s, { maxOutputLength, partial }))).toEqual(
            zlibOutcome(() => node.zlib.gunzip(s, { maxOutputLength, partial })),
          );
  });

  it('deflate: pako output inflates back to the input', () => {
    for (const n of [0, 1, 1000, 200_000]) {
      const src = Uint8Array.from({ length: n }, (_, i) => (i % 97 < 50 ? 0 : i & 255));
      expect(Array.from(node.zlib.inflate(browser.zlib.deflate(src), { maxOutputLength: n + 1 }).bytes)).toEqual(Array.from(src));
    }
  });
});

describe('decoders on both halves of the platform seam', () => {
  it('decode every colour type and bit depth, plain and Adam7, to the same image', () => {
    const depths: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
    for (const [ct, ds] of Object.entries(depths).map(([k, v]) => [Number(k), v] as const))
      for (const bitDepth of ds)
        for (const interlace of [0, 1]) {
          const entries = Math.min(2 ** bitDepth, 5);
          const spec: PngSpec = {
            width: 9,
            height: 7,
            colorType: ct,
            bitDepth,
            interlace,
            idatChunks: 2,
            sample: (x, y, s) => (ct === 3 ? (x + 2 * y) % entries : (x * 7919 + y * 104729 + s * 12345 + 3) % 2 ** bitDepth),
          };
          if (ct === 3)
            Object.assign(spec, { palette: Array.from({ length: entries * 3 }, (_, i) => (i * 37 + 11) % 256), trns: [0, 128] });
          const png = makePng(spec);
          for (const channels of [1, 3, 4] as const)
            expect(outcome(() => onBrowser.decodePng(png, { channels, background: [0.2, 0.5, 1] }))).toEqual(
              outcome(() => onNode.decodePng(png, { channels, background: [0.2, 0.5, 1] })),
            );
        }
  });

  it('encode to PNG bytes that both decode to the same image', () => {
    const img = Float32Array.from({ length: 13 * 11 * 4 }, (_, i) => ((i * 31) % 256) / 255);
    for (const channels of [1, 3, 4] as const) {
      const n = 13 * 11 * channels;
      const a = onBrowser.encodePng(img.subarray(0, n), 13, 11, channels);
      const b = onNode.encodePng(img.subarray(0, n), 13, 11, channels);
      expect(onNode.decodePng(a, { channels })).toEqual(onNode.decodePng(b, { channels }));
      expect(onBrowser.decodePng(b, { channels })).toEqual(onNode.decodePng(b, { channels }));
    }
    const tone = Float32Array.from({ length: 4000 }, (_, i) => Math.sin(i / 5));
    const spec = onBrowser.encodeSpectrogramPng(tone, { frameSize: 128 });
    expect(onNode.decodePng(spec.png)).toEqual(onNode.decodePng(onNode.encodeSpectrogramPng(tone, { frameSize: 128 }).png));
  });

  it('give the same PngError for broken pixel data', () => {
    const raw = scanlines(6, 4, 2, 8, 0, (x, y, s) => (x * 40 + y * 9 + s * 70) % 256);
    const z = deflateSync(raw);
    const withIdat = (idat: Uint8Array) => assemblePng([pngChunk('IHDR', ihdr(6, 4, 8, 2)), pngChunk('IDAT', idat), pngChunk('IEND')]);
    const cases = [
      withIdat(z),
      withIdat(z.subarray(0, z.length - 9)),
      withIdat(deflateSync(raw.subarray(0, raw.length - 19))),
      withIdat(deflateSync(concat([raw, [0, 0, 0]]))),
      withIdat(concat([z, [9, 9]])),
      withIdat(concat([z.subarray(0, z.length - 1), [z[z.length - 1]! ^ 0x10]])),
      withIdat(deflateSync(new Uint8Array(0))),
      withIdat(Uint8Array.of(1, 2, 3)),
    ];
    for (const png of cases)
      expect(outcome(() => onBrowser.decodePng(png, {}, 'x.png'))).toEqual(outcome(() => onNode.decodePng(png, {}, 'x.png')));
  });

  it('give the same result or error on 3000 seeded corruptions of PNG and gzipped IDX files', () => {
    const r = prng(7);
    const pngSeeds = [
      onNode.encodePng(
        Float32Array.from({ length: 8 * 6 * 3 }, (_, i) => (i % 17) / 16),
        8,
        6,
        3,
      ),
      makePng({ width: 5, height: 5, colorType: 3, bitDepth: 2, palette: [1, 2, 3, 4, 5, 6, 7, 8, 9], sample: (x, y) => (x + y) % 3 }),
      makePng({ width: 7, height: 3, colorType: 0, bitDepth: 16, interlace: 1, sample: (x, y) => x * 9000 + y }),
    ];
    const idxSeeds = [
      gzipSync(
        idxBytes(
          0x08,
          [3, 4, 5],
          Array.from({ length: 60 }, (_, i) => i),
        ),
      ),
      gzipSync(
        idxBytes(
          0x0c,
          [2, 3],
          Array.from({ length: 24 }, (_, i) => i),
        ),
      ),
    ];
    const fixCrcs = (b: Uint8Array) => {
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let at = 8; at + 12 <= b.length; ) {
        const len = v.getUint32(at);
        if (at + 12 + len > b.length) break;
        v.setUint32(at + 8 + len, onNode.crc32(b, at + 4, at + 8 + len));
        at += 12 + len;
      }
      return b;
    };
    const mutate = (seed: Uint8Array, from: number) => {
      let b = Uint8Array.from(seed);
      for (let k = 1 + r.int(3); k > 0; k--) {
        const op = r.int(3);
        const at = from + r.int(b.length - from);
        if (op === 0) b[at]! ^= 1 << r.int(8);
        else if (op === 1) b[at] = r.int(256);
        else b = b.subarray(0, at);
      }
      return b;
    };
    let errors = 0;
    for (let i = 0; i < 2000; i++) {
      const png = fixCrcs(mutate(r.pick(pngSeeds), 8));
      const a = outcome(() => onNode.decodePng(png, { maxPixels: 1 << 16 }, `png${i}`));
      expect(
        outcome(() => onBrowser.decodePng(png, { maxPixels: 1 << 16 }, `png${i}`)),
        `png${i}`,
      ).toEqual(a);
      if ((a as { error?: string }).error) errors++;
    }
    for (let i = 0; i < 1000; i++) {
      const gz = mutate(r.pick(idxSeeds), 10);
      const a = outcome(() => onNode.decodeIdx(gz, `idx${i}`, { maxBytes: 1 << 12 }));
      expect(
        outcome(() => onBrowser.decodeIdx(gz, `idx${i}`, { maxBytes: 1 << 12 })),
        `idx${i}`,
      ).toEqual(a);
      if ((a as { error?: string }).error) errors++;
    }
    expect(errors).toBeGreaterThan(1000);
  });

  it('path functions say they need Node', () => {
    expect(() => onBrowser.readPng('a.png')).toThrow(/^readPng is not available in the browser/);
    expect(() => onBrowser.writeImageGrid('a.png', [new Float32Array(3)], { size: 1 })).toThrow(/^writeImageGrid is not available/);
    expect(() => onBrowser.readIdx('a.idx')).toThrow(/^readIdx is not available/);
    expect(() => onBrowser.readWav('a.wav')).toThrow(/^readWav is not available/);
    expect(() => onBrowser.writeSpectrogramPng('a.png', [0, 1])).toThrow(/^writeSpectrogramPng is not available/);
  });
});
