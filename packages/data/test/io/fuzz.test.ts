/**
 * Seeded fuzz test of the PNG, WAV and IDX decoders: a few valid files made in memory are mutated
 * (bit flips, truncations, chunk duplication/removal/reordering, length and size fields set to
 * huge or wrong values, header fields changed, random bytes) into a few thousand inputs. Every
 * input must either decode to a result that passes basic sanity checks (length right for the
 * claimed dims, values finite and in range, within the size limits passed) or throw the format's
 * own error (PngError, WavError, IdxError) naming the input; never anything else. Small size
 * limits keep memory bounded, and growth of the process's memory is checked.
 *
 * The run is deterministic. To explore further, FUZZ_SEED=<n> shifts the seeds and FUZZ_SCALE=<k>
 * multiplies the input counts (and the timeouts); FUZZ_STATS=1 prints counts of error reasons.
 */
import { deflateSync, gzipSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  crc32,
  type DecodeError,
  decodeIdx,
  decodePng,
  decodeWav,
  encodePng,
  encodeWav,
  IdxError,
  PngError,
  WavError,
} from '../../src/io/index.js';
import {
  assembleWav,
  concat,
  f32le,
  f64le,
  fmtBody,
  i16le,
  idxBytes,
  makePng,
  makeWav,
  type PngChunkView,
  pngChunk,
  pngChunks,
  prng,
  riffChunk,
  u32be,
} from './builders.js';

type Rand = ReturnType<typeof prng>;

const SEED = Number(process.env.FUZZ_SEED ?? 0);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const TIMEOUT = 30_000 * SCALE;
const MAX_PIXELS = 1 << 16;
const WAV_LIMITS = { maxBytes: 1 << 20, maxSamples: 1 << 16 };
const IDX_MAX_BYTES = 1 << 20;
const MEMORY_GROWTH_LIMIT = 256 * 2 ** 20;
const INTERESTING_U32 = [0, 1, 2, 3, 7, 8, 255, 256, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

// ---------------------------------------------------------------- generic byte mutations

function setU32(b: Uint8Array, at: number, v: number, le: boolean): void {
  if (at < 0 || at + 4 > b.length) return;
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, le);
}

function interestingU32(r: Rand, old = 0): number {
  const k = r.int(4);
  if (k === 0) return r.pick(INTERESTING_U32);
  if (k === 1) return (old + r.int(9) - 4) >>> 0;
  if (k === 2) return Math.floor(r.next() * 2 ** 32);
  return (old * r.pick([2, 3, 16, 1000])) >>> 0;
}

const byteOps: ((b: Uint8Array, r: Rand, le: boolean) => Uint8Array)[] = [
  // flip a few bits
  (b, r) => {
    const c = Uint8Array.from(b);
    for (let k = 1 + r.int(8); k > 0 && c.length; k--) c[r.int(c.length)]! ^= 1 << r.int(8);
    return c;
  },
  // truncate
  (b, r) => b.slice(0, r.int(b.length + 1)),
  // overwrite a run with random bytes
  (b, r) => {
    const c = Uint8Array.from(b);
    const at = r.int(c.length + 1);
    for (let i = at; i < Math.min(c.length, at + 1 + r.int(16)); i++) c[i] = r.int(256);
    return c;
  },
  // insert random bytes
  (b, r) => {
    const at = r.int(b.length + 1);
    return concat([b.subarray(0, at), Array.from({ length: 1 + r.int(12) }, () => r.int(256)), b.subarray(at)]);
  },
  // delete a run
  (b, r) => {
    const at = r.int(b.length + 1);
    return concat([b.subarray(0, at), b.subarray(at + 1 + r.int(24))]);
  },
  // duplicate a run
  (b, r) => {
    const at = r.int(b.length + 1);
    const run = b.subarray(at, at + 1 + r.int(64));
    const to = r.int(b.length + 1);
    return concat([b.subarray(0, to), run, b.subarray(to)]);
  },
  // a 32-bit field (length, size, dimension...) set to a huge, zero or off-by-a-few value
  (b, r, le) => {
    const c = Uint8Array.from(b);
    const at = r.next() < 0.5 ? 4 * r.int(Math.max(1, c.length >> 2)) : r.int(Math.max(1, c.length - 3));
    const old = at + 4 <= c.length ? new DataView(c.buffer).getUint32(at, le) : 0;
    setU32(c, at, interestingU32(r, old), le);
    return c;
  },
  // append junk
  (b, r) => concat([b, Array.from({ length: 1 + r.int(40) }, () => r.int(256))]),
];

function applyByteOps(b: Uint8Array, r: Rand, le: boolean, ops: string[]): Uint8Array {
  let out = b;
  for (let k = r.int(3); k > 0; k--) {
    const i = r.int(byteOps.length);
    ops.push(`byte${i}`);
    out = byteOps[i]!(out, r, le);
  }
  return out;
}

// ---------------------------------------------------------------- the fuzz loop

interface Outcome {
  ok: number;
  errors: number;
  failures: string[];
  kinds: Record<string, number>;
  reasons?: Record<string, number>;
  maxGrowth: number;
}

function hexHead(b: Uint8Array): string {
  return Array.from(b.subarray(0, 48), (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * Runs `count` mutated inputs through `decode`; `sane` returns '' for an acceptable result or the
 * problem. Records anything thrown that is not `ErrorClass`, or whose message does not name the
 * input.
 */
function fuzz<R>(
  format: string,
  count: number,
  seed: number,
  make: (r: Rand, ops: string[]) => Uint8Array,
  decode: (b: Uint8Array, name: string, i: number) => R,
  sane: (res: R, input: Uint8Array) => string,
  ErrorClass: new (...a: never[]) => DecodeError,
): Outcome {
  const r = prng(seed);
  const out: Outcome = { ok: 0, errors: 0, failures: [], kinds: {}, maxGrowth: 0 };
  const mem = () => {
    const m = process.memoryUsage();
    return Math.max(m.rss, m.heapUsed + m.arrayBuffers);
  };
  const base = mem();
  for (let i = 0; i < count; i++) {
    const ops: string[] = [];
    const input = make(r, ops);
    const name = `fuzz-${i}`;
    const where = () => `${format} #${i} [${ops.join(' ')}] ${input.length} bytes ${hexHead(input)}`;
    try {
      const res = decode(input, name, i);
      const problem = sane(res, input);
      if (problem) out.failures.push(`${where()}: decoded but ${problem}`);
      else out.ok++;
    } catch (e) {
      if (!(e instanceof ErrorClass)) out.failures.push(`${where()}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
      else if (!e.message.startsWith(`${format} ${name}: `)) out.failures.push(`${where()}: message does not name the input: ${e.message}`);
      else {
        out.errors++;
        out.kinds[e.kind] = (out.kinds[e.kind] ?? 0) + 1;
        if (process.env.FUZZ_STATS) {
          const key = e.reason
            .replace(/\d+/g, 'N')
            .replace(/"[^"]*"/g, '"…"')
            .slice(0, 70);
          out.reasons ??= {};
          out.reasons[key] = (out.reasons[key] ?? 0) + 1;
        }
      }
    }
    if (i % 64 === 0) out.maxGrowth = Math.max(out.maxGrowth, mem() - base);
  }
  out.maxGrowth = Math.max(out.maxGrowth, mem() - base);
  return out;
}

function expectClean(o: Outcome, minOk: number, minErrors: number): void {
  if (process.env.FUZZ_STATS)
    console.log(JSON.stringify({ ok: o.ok, errors: o.errors, kinds: o.kinds, growthMB: o.maxGrowth / 2 ** 20, reasons: o.reasons }));
  expect(o.failures.slice(0, 8)).toEqual([]);
  expect(o.ok).toBeGreaterThanOrEqual(minOk);
  expect(o.errors).toBeGreaterThanOrEqual(minErrors);
  expect(o.maxGrowth).toBeLessThan(MEMORY_GROWTH_LIMIT);
}

function allFinite(xs: ArrayLike<number>, lo: number, hi: number): boolean {
  for (let i = 0; i < xs.length; i++) if (!(xs[i]! >= lo && xs[i]! <= hi)) return false;
  return true;
}

// ---------------------------------------------------------------- PNG

const pngSeeds: Uint8Array[] = [
  encodePng(
    Float32Array.from({ length: 7 * 5 * 3 }, (_, i) => (i % 11) / 10),
    7,
    5,
    3,
  ),
  makePng({ width: 9, height: 7, colorType: 0, bitDepth: 1, interlace: 1, sample: (x, y) => (x ^ y) & 1 }),
  makePng({
    width: 6,
    height: 6,
    colorType: 3,
    bitDepth: 2,
    palette: [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9],
    trns: [0, 128],
    sample: (x, y) => (x + y) % 4,
  }),
  makePng({ width: 5, height: 4, colorType: 2, bitDepth: 16, idatChunks: 2, sample: (x, y, s) => (x * 9000 + y * 300 + s * 77) % 65536 }),
  makePng({ width: 3, height: 3, colorType: 4, bitDepth: 8, interlace: 1, sample: (x, y, s) => (x * 50 + y * 30 + s * 100) % 256 }),
  (() => {
    const base = makePng({ width: 4, height: 4, colorType: 6, bitDepth: 8, sample: (x, y, s) => (x * 60 + y * 20 + s) % 256 });
    const cs = pngChunks(base);
    return assemble([
      cs[0]!,
      { type: 'gAMA', data: Uint8Array.from(u32be(45455)) },
      { type: 'tEXt', data: Uint8Array.of(65, 0, 66) },
      ...cs.slice(1),
    ]);
  })(),
];

function assemble(cs: readonly PngChunkView[]): Uint8Array {
  return concat([[137, 80, 78, 71, 13, 10, 26, 10], ...cs.map((c) => pngChunk(c.type, c.data))]);
}

/** Recomputes the CRC of every chunk whose length fits the file, so mutations reach past the CRC check. */
function fixPngCrcs(b: Uint8Array): Uint8Array {
  const c = Uint8Array.from(b);
  const v = new DataView(c.buffer);
  for (let at = 8; at + 12 <= c.length; ) {
    const len = v.getUint32(at);
    if (at + 12 + len > c.length) break;
    v.setUint32(at + 8 + len, crc32(c, at + 4, at + 8 + len));
    at += 12 + len;
  }
  return c;
}

const CHUNK_TYPES = ['IHDR', 'PLTE', 'IDAT', 'IEND', 'tRNS', 'gAMA', 'tEXt', 'zzZz', 'ABCD'];

const pngStructOps: ((cs: PngChunkView[], r: Rand) => PngChunkView[])[] = [
  // remove a chunk
  (cs, r) => cs.filter((_, i) => i !== r.int(cs.length)),
  // duplicate a chunk in place or elsewhere
  (cs, r) => {
    const c = cs[r.int(cs.length)]!;
    const at = r.int(cs.length + 1);
    return [...cs.slice(0, at), c, ...cs.slice(at)];
  },
  // swap two chunks
  (cs, r) => {
    const out = cs.slice();
    const [i, j] = [r.int(out.length), r.int(out.length)];
    [out[i], out[j]] = [out[j]!, out[i]!];
    return out;
  },
  // change an IHDR field
  (cs, r) =>
    cs.map((c) => {
      if (c.type !== 'IHDR' || c.data.length < 13) return c;
      const d = Uint8Array.from(c.data);
      const v = new DataView(d.buffer);
      const f = r.int(6);
      if (f < 2) v.setUint32(4 * f, r.next() < 0.5 ? interestingU32(r, v.getUint32(4 * f)) : 1 + r.int(300));
      else if (f === 2) d[8] = r.pick([0, 1, 2, 3, 4, 8, 16, 32, 255]);
      else if (f === 3) d[9] = r.pick([0, 1, 2, 3, 4, 5, 6, 7, 255]);
      else if (f === 4) d[12] = r.pick([0, 1, 2]);
      else d[10 + r.int(2)] = 1;
      return { type: c.type, data: d };
    }),
  // re-deflate the pixel data after changing it (rows cut or added, filter bytes or values changed)
  (cs, r) => {
    const idat = cs.filter((c) => c.type === 'IDAT');
    if (!idat.length) return cs;
    let raw: Uint8Array;
    try {
      raw = Uint8Array.from(inflateSync(concat(idat.map((c) => c.data))));
    } catch {
      return cs;
    }
    const k = r.int(4);
    if (k === 0) raw = raw.slice(0, r.int(raw.length + 1));
    else if (k === 1) raw = concat([raw, Array.from({ length: 1 + r.int(40) }, () => r.int(256))]);
    else for (let n = 1 + r.int(4); n > 0 && raw.length; n--) raw[r.int(raw.length)] = r.pick([5, 6, 255, r.int(256)]);
    const z = deflateSync(raw);
    const parts = 1 + r.int(3);
    const first = cs.findIndex((c) => c.type === 'IDAT');
    const newIdat = Array.from({ length: parts }, (_, p) => ({
      type: 'IDAT',
      data: z.subarray(Math.floor((p * z.length) / parts), Math.floor(((p + 1) * z.length) / parts)),
    }));
    const rest = cs.filter((c) => c.type !== 'IDAT');
    return [...rest.slice(0, first), ...newIdat, ...rest.slice(first)];
  },
  // insert a chunk of a random type with random data
  (cs, r) => {
    const c = { type: r.pick(CHUNK_TYPES), data: Uint8Array.from({ length: r.pick([0, 1, 2, 3, 6, 7, 13, 30]) }, () => r.int(256)) };
    const at = 1 + r.int(cs.length);
    return [...cs.slice(0, at), c, ...cs.slice(at)];
  },
  // change the data of a chunk (length, bytes)
  (cs, r) => {
    const i = r.int(cs.length);
    const d = cs[i]!.data;
    const nd = r.next() < 0.5 ? d.slice(0, r.int(d.length + 1)) : concat([d, Array.from({ length: 1 + r.int(8) }, () => r.int(256))]);
    return cs.map((c, j) => (j === i ? { type: c.type, data: nd } : c));
  },
];

function makePngInput(r: Rand, ops: string[]): Uint8Array {
  const seed = r.int(pngSeeds.length);
  ops.push(`seed${seed}`);
  let b = pngSeeds[seed]!;
  if (r.next() < 0.6) {
    let cs = pngChunks(b);
    for (let k = 1 + r.int(2); k > 0 && cs.length > 1; k--) {
      const i = r.int(pngStructOps.length);
      ops.push(`png${i}`);
      cs = pngStructOps[i]!(cs, r);
    }
    b = assemble(cs);
  }
  b = applyByteOps(b, r, false, ops);
  if (r.next() < 0.7) {
    ops.push('crc');
    b = fixPngCrcs(b);
  }
  return b;
}

// ---------------------------------------------------------------- WAV

const wavSeeds: Uint8Array[] = [
  encodeWav(
    Float32Array.from({ length: 100 }, (_, i) => Math.sin(i / 5)),
    16000,
  ),
  encodeWav(
    Float32Array.from({ length: 50 }, (_, i) => Math.cos(i / 3) * 1.5),
    8000,
    { format: 'float32' },
  ),
  makeWav({ channels: 1, rate: 8000, bits: 8 }, [0, 64, 128, 200, 255], [riffChunk('LIST', [1, 2, 3])]),
  makeWav(
    { channels: 2, rate: 22050, bits: 24 },
    Array.from({ length: 36 }, (_, i) => (i * 37) % 256),
  ),
  makeWav({ channels: 2, rate: 48000, bits: 32, subformat: 3 }, f32le([0.5, -0.5, 0.25, 0.125, -1, 1])),
  makeWav({ format: 3, channels: 1, rate: 44100, bits: 64 }, f64le([0.1, -0.2, 0.3])),
  assembleWav([riffChunk('fmt ', fmtBody({ channels: 3, rate: 8000, bits: 16 })), riffChunk('data', i16le([1, -2, 3, 400, -500, 600]))]),
];

interface RiffChunk {
  id: string;
  body: Uint8Array;
}

function riffChunks(b: Uint8Array): RiffChunk[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: RiffChunk[] = [];
  for (let at = 12; at + 8 <= b.length; ) {
    const size = v.getUint32(at + 4, true);
    out.push({ id: String.fromCharCode(...b.subarray(at, at + 4)), body: b.slice(at + 8, at + 8 + size) });
    at += 8 + size + (size % 2);
  }
  return out;
}

const FMT_FIELDS: [offset: number, bytes: 2 | 4, values: number[]][] = [
  [0, 2, [0, 1, 2, 3, 0xfffe, 0xffff]],
  [2, 2, [0, 1, 2, 3, 8, 0xffff]],
  [4, 4, [0, 1, 8000, 44100, 0xffffffff]],
  [8, 4, [0, 1, 16000, 0xffffffff]],
  [12, 2, [0, 1, 2, 3, 4, 6, 8, 0xffff]],
  [14, 2, [0, 1, 4, 8, 12, 16, 24, 32, 64, 0xffff]],
];

const wavStructOps: ((cs: RiffChunk[], r: Rand) => RiffChunk[])[] = [
  (cs, r) => cs.filter((_, i) => i !== r.int(cs.length)),
  (cs, r) => {
    const c = cs[r.int(cs.length)]!;
    const at = r.int(cs.length + 1);
    return [...cs.slice(0, at), c, ...cs.slice(at)];
  },
  (cs, r) => {
    const out = cs.slice();
    const [i, j] = [r.int(out.length), r.int(out.length)];
    [out[i], out[j]] = [out[j]!, out[i]!];
    return out;
  },
  // change a fmt field
  (cs, r) =>
    cs.map((c) => {
      if (c.id !== 'fmt ') return c;
      const d = Uint8Array.from(c.body);
      const v = new DataView(d.buffer);
      const [off, n, values] = r.pick(FMT_FIELDS);
      if (off + n > d.length) return c;
      const val = r.next() < 0.7 ? r.pick(values) : r.int(2 ** (8 * n));
      if (n === 2) v.setUint16(off, val & 0xffff, true);
      else v.setUint32(off, val >>> 0, true);
      return { id: c.id, body: d };
    }),
  // an odd-sized chunk, or an odd-sized data chunk
  (cs, r) => {
    if (r.next() < 0.5)
      return [...cs.slice(0, 1), { id: 'junk', body: Uint8Array.from({ length: 1 + 2 * r.int(5) }, () => r.int(256)) }, ...cs.slice(1)];
    return cs.map((c) => (c.id === 'data' ? { id: c.id, body: c.body.slice(0, Math.max(0, c.body.length - 1 - 2 * r.int(3))) } : c));
  },
  // random float bit patterns (NaN, Inf, huge) in the data
  (cs, r) =>
    cs.map((c) => {
      if (c.id !== 'data' || c.body.length < 8) return c;
      const d = Uint8Array.from(c.body);
      const v = new DataView(d.buffer);
      const at = 4 * r.int(d.length >> 2);
      v.setUint32(at, r.pick([0x7fc00000, 0x7f800000, 0xff800000, 0x7ff00000, 0x7fefffff, r.int(2 ** 32)]), true);
      return { id: c.id, body: d };
    }),
];

function makeWavInput(r: Rand, ops: string[]): Uint8Array {
  const seed = r.int(wavSeeds.length);
  ops.push(`seed${seed}`);
  let b = wavSeeds[seed]!;
  if (r.next() < 0.6) {
    let cs = riffChunks(b);
    for (let k = 1 + r.int(2); k > 0 && cs.length > 1; k--) {
      const i = r.int(wavStructOps.length);
      ops.push(`wav${i}`);
      cs = wavStructOps[i]!(cs, r);
    }
    b = assembleWav(cs.map((c) => riffChunk(c.id, c.body)));
  }
  if (r.next() < 0.25) {
    // the RIFF size or a chunk size field set to a wrong or huge value
    ops.push('size');
    b = Uint8Array.from(b);
    const heads = [4];
    for (let at = 12; at + 8 <= b.length; ) {
      heads.push(at + 4);
      const size = new DataView(b.buffer).getUint32(at + 4, true);
      at += 8 + size + (size % 2);
    }
    const at = r.pick(heads);
    setU32(b, at, interestingU32(r, new DataView(b.buffer).getUint32(at, true)), true);
  }
  return applyByteOps(b, r, true, ops);
}

const WAV_BYTES: Record<string, number> = { '8': 1, '16': 2, '24': 3, '32': 4, '32f': 4, '64': 8 };

// ---------------------------------------------------------------- IDX

const idxSeeds: Uint8Array[] = [
  idxBytes(
    0x08,
    [3, 4, 5],
    Array.from({ length: 60 }, (_, i) => (i * 7) % 256),
  ),
  idxBytes(0x09, [5], [0, 1, 127, 128, 255]),
  idxBytes(
    0x0b,
    [7],
    Array.from({ length: 14 }, (_, i) => i * 17),
  ),
  idxBytes(
    0x0c,
    [2, 3],
    Array.from({ length: 24 }, (_, i) => i * 11),
  ),
  idxBytes(0x0d, [4], [0x3f, 0xc0, 0, 0, 0xbf, 0x80, 0, 0, 0, 0, 0, 0, 0x42, 0x28, 0, 0]),
  idxBytes(0x0e, [2], [0xc0, 0, 0, 0, 0, 0, 0, 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
];

function makeIdxInput(r: Rand, ops: string[]): Uint8Array {
  const seed = r.int(idxSeeds.length);
  ops.push(`seed${seed}`);
  let b: Uint8Array = Uint8Array.from(idxSeeds[seed]!);
  if (r.next() < 0.5) {
    // header fields: type code, number of dims, a dimension
    ops.push('hdr');
    const f = r.int(3);
    if (f === 0) b[2] = r.pick([0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255]);
    else if (f === 1) b[3] = r.pick([0, 1, 2, 3, 4, 255]);
    else {
      const at = 4 + 4 * r.int(b[3]!);
      setU32(b, at, interestingU32(r, new DataView(b.buffer).getUint32(at)), false);
    }
  }
  b = applyByteOps(b, r, false, ops);
  if (r.next() < 0.5) {
    ops.push('gzip');
    b = Uint8Array.from(gzipSync(b));
    if (r.next() < 0.5) b = applyByteOps(b, r, true, ops);
  }
  return b;
}

const IDX_ARRAYS: Record<string, unknown> = {
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

// ---------------------------------------------------------------- tests

describe('decoder fuzz (seeded)', () => {
  it('the seed files decode', () => {
    for (const s of pngSeeds) expect(decodePng(s, { maxPixels: MAX_PIXELS }).width).toBeGreaterThan(0);
    for (const s of wavSeeds) expect(decodeWav(s, 'seed', WAV_LIMITS).samples.length).toBeGreaterThan(0);
    for (const s of idxSeeds) {
      expect(decodeIdx(s).data.length).toBeGreaterThan(0);
      expect(decodeIdx(gzipSync(s)).data.length).toBeGreaterThan(0);
    }
  });

  it('PNG: 2000 corrupt variants decode sanely or throw PngError', { timeout: TIMEOUT }, () => {
    const channels = [1, 3, 4] as const;
    const o = fuzz(
      'PNG',
      2000 * SCALE,
      101 + SEED,
      makePngInput,
      (b, name, i) => decodePng(b, { channels: channels[i % 3], maxPixels: MAX_PIXELS }, name),
      (res) => {
        const { width: w, height: h, channels: c, image } = res;
        if (!(Number.isInteger(w) && Number.isInteger(h) && w >= 1 && h >= 1)) return `size is ${w}x${h}`;
        if (w * h > MAX_PIXELS) return `${w}x${h} is over maxPixels`;
        if (image.length !== w * h * c) return `image has ${image.length} values for ${w}x${h}x${c}`;
        return allFinite(image, 0, 1) ? '' : 'values outside [0, 1]';
      },
      PngError,
    );
    expectClean(o, 50, 500);
    expect(o.kinds.limit).toBeGreaterThan(0);
  });

  it('WAV: 1500 corrupt variants decode sanely or throw WavError', { timeout: TIMEOUT }, () => {
    const o = fuzz(
      'WAV',
      1500 * SCALE,
      202 + SEED,
      makeWavInput,
      (b, name, i) => decodeWav(b, name, { channels: i % 2 ? 'first' : 'mix', ...WAV_LIMITS }),
      (res, input) => {
        const { samples, sampleRate, numChannels, bitDepth } = res;
        const width = WAV_BYTES[bitDepth];
        if (!width) return `bitDepth ${bitDepth}`;
        if (!(sampleRate >= 1 && numChannels >= 1)) return `sampleRate ${sampleRate}, numChannels ${numChannels}`;
        if (samples.length > WAV_LIMITS.maxSamples) return `${samples.length} samples, over maxSamples`;
        if (samples.length * numChannels * width > input.length) return `${samples.length} frames do not fit in ${input.length} bytes`;
        const pcm = !bitDepth.endsWith('f') && bitDepth !== '64';
        return allFinite(samples, pcm ? -1 : -Number.MAX_VALUE, pcm ? 1 : Number.MAX_VALUE) ? '' : 'non-finite or out-of-range samples';
      },
      WavError,
    );
    expectClean(o, 200, 300);
  });

  it('IDX: 1500 corrupt variants (plain and gzipped) decode sanely or throw IdxError', { timeout: TIMEOUT }, () => {
    const o = fuzz(
      'IDX',
      1500 * SCALE,
      303 + SEED,
      makeIdxInput,
      (b, name) => decodeIdx(b, name, { maxBytes: IDX_MAX_BYTES }),
      (res) => {
        const { dtype, shape, data } = res;
        if (data.constructor !== IDX_ARRAYS[dtype]) return `dtype ${dtype} with a ${data.constructor.name}`;
        if (shape.length < 1 || !shape.every((d) => Number.isInteger(d) && d >= 0)) return `shape [${shape.join(', ')}]`;
        if (data.length !== shape.reduce((a, d) => a * d, 1)) return `${data.length} values for shape [${shape.join(', ')}]`;
        return data.byteLength <= IDX_MAX_BYTES ? '' : `${data.byteLength} bytes, over maxBytes`;
      },
      IdxError,
    );
    expectClean(o, 100, 500);
    expect(o.kinds.limit).toBeGreaterThan(0);
  });
});
