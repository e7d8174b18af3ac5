import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, DecodeError, decodeIdx, IDX_DEFAULT_MAX_BYTES, IdxError, readIdx, readMnist } from '../../src/io/index.js';
import { concat, idxBytes, prng, u32le } from './builders.js';

const dir = mkdtempSync(join(tmpdir(), 'mmlm-idx-hard-'));

/** The IdxError `decodeIdx(bytes)` throws (fails the test if it returns or throws anything else). */
function idxError(bytes: Uint8Array, opts: Parameters<typeof decodeIdx>[2] = {}): IdxError {
  try {
    decodeIdx(bytes, 'x.idx', opts);
  } catch (e) {
    expect(e).toBeInstanceOf(IdxError);
    return e as IdxError;
  }
  throw new Error('decodeIdx returned instead of throwing');
}

function noise(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  return Uint8Array.from({ length: n }, () => r.int(256));
}

describe('gzipped IDX: the header is read before the data is inflated', () => {
  it('refuses a header over maxBytes without inflating the rest (whose gzip trailer is even corrupt)', () => {
    // dims [65536, 32768] of uint8 = 2^31 bytes, more than the default 2^30
    const gz = Uint8Array.from(gzipSync(idxBytes(0x08, [65536, 32768], noise(64 * 1024, 1))));
    gz[gz.length - 5]! ^= 0xff; // the CRC-32 trailer: inflating the whole file would fail on it
    const e = idxError(gz);
    expect(e.message).toBe(
      `IDX x.idx: dims [65536, 32768] of uint8 need 2147483648 data bytes, more than maxBytes = ${IDX_DEFAULT_MAX_BYTES}; pass { maxBytes } to raise the limit`,
    );
    expect(e.kind).toBe('limit');
  });

  it('stops inflating one byte past the size the header implies (a gzip bomb behind a small header)', () => {
    // a 2-byte label file followed by 16 MiB of zeros (16 KiB of gzip)
    const bomb = gzipSync(concat([idxBytes(0x08, [2], [7, 3]), new Uint8Array(16 << 20)]));
    expect(bomb.length).toBeLessThan(40_000);
    expect(idxError(bomb).message).toBe(
      'IDX x.idx: gzip data inflates to more than 10 bytes: unexpected bytes after the data for dims [2] of uint8 (corrupt or wrong header)',
    );
  });

  it('says how much data a cut gzip stream holds, and rejects a missing gzip trailer', () => {
    const full = gzipSync(idxBytes(0x08, [4000], noise(4000, 2)));
    expect(idxError(full.subarray(0, 2000)).message).toMatch(
      /truncated: dims \[4000\] of uint8 need 4000 data bytes, the gzip stream ends after \d+/,
    );
    expect(idxError(full.subarray(0, full.length - 4)).message).toMatch(/corrupt gzip data: the stream ends before its CRC-32 trailer/);
    const bad = Uint8Array.from(full);
    bad[bad.length - 8]! ^= 1;
    expect(idxError(bad).message).toMatch(/corrupt gzip data \(incorrect data check\)/);
  });

  it('reads a header that starts after a long gzip file-name field', () => {
    const plain = idxBytes(0x0b, [3], [0, 1, 0, 2, 0xff, 0xff]);
    const name = new Uint8Array(6000).fill(0x61);
    // gzip member (RFC 1952) with FNAME set: the deflate data starts after 6 KiB of header
    const gz = concat([[0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 255], name, [0], deflateRawSync(plain), u32le(crc32(plain)), u32le(plain.length)]);
    expect(Array.from(decodeIdx(gz).data)).toEqual([1, 2, -1]);
    expect(idxError(gz, { maxBytes: 4 }).message).toMatch(/dims \[3\] of int16 need 6 data bytes, more than maxBytes = 4/);
  });
});

describe('IDX size limit', () => {
  const plain = idxBytes(0x0d, [10, 10], new Uint8Array(400));

  it('refuses more than maxBytes of data (plain or gzipped), checked from the header', () => {
    expect(idxError(plain, { maxBytes: 399 }).message).toBe(
      'IDX x.idx: dims [10, 10] of float32 need 400 data bytes, more than maxBytes = 399; pass { maxBytes } to raise the limit',
    );
    expect(idxError(gzipSync(plain), { maxBytes: 399 }).kind).toBe('limit');
    expect(decodeIdx(plain, 'x', { maxBytes: 400 }).data.length).toBe(100);
    expect(() => decodeIdx(plain, 'x', { maxBytes: 1.5 })).toThrow(/maxBytes must be a positive integer or Infinity, got 1.5/);
  });

  it('readIdx and readMnist refuse a file too large for any IDX within maxBytes before reading it', () => {
    const p = join(dir, 'big-idx1-ubyte');
    writeFileSync(p, idxBytes(0x08, [100_000], new Uint8Array(100_000)));
    expect(() => readIdx(p, { maxBytes: 1000 })).toThrow(
      new RegExp(`IDX ${p}: file is 100008 bytes, larger than an IDX file with at most maxBytes = 1000 data bytes can be`),
    );
    expect(readIdx(p).shape).toEqual([100_000]);
    expect(() => readMnist(p, p, { maxBytes: 1000 })).toThrow(IdxError);
  });
});

describe('IDX results and errors', () => {
  it('returns arrays that own an exactly-sized buffer (no view into the file or inflated bytes)', () => {
    const p = join(dir, 'own.gz');
    writeFileSync(p, gzipSync(idxBytes(0x09, [3], [1, 2, 0xff])));
    const a = readIdx(p);
    expect(Array.from(a.data)).toEqual([1, 2, -1]);
    expect([a.data.byteOffset, a.data.buffer.byteLength]).toEqual([0, 3]);
    const q = join(dir, 'own-idx1-ubyte');
    writeFileSync(q, idxBytes(0x08, [3], [1, 2, 3]));
    const b = readIdx(q);
    expect([b.data.byteOffset, b.data.buffer.byteLength]).toEqual([0, 3]);
  });

  it('throws IdxError, naming the file, for every failure the file causes', () => {
    const p = join(dir, 'labels-idx1-ubyte');
    writeFileSync(p, idxBytes(0x08, [3], [1, 2]));
    let caught: unknown;
    try {
      readIdx(p);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(IdxError);
    expect(caught).toBeInstanceOf(DecodeError);
    const e = caught as IdxError;
    expect([e.name, e.format, e.source, e.kind]).toEqual(['IdxError', 'IDX', p, 'corrupt']);
    expect(e.reason).toBe('truncated: dims [3] of uint8 need 3 data bytes, file has 2');
    const imgs = join(dir, 'imgs-idx3-ubyte');
    writeFileSync(imgs, idxBytes(0x08, [2, 1, 1], [0, 0]));
    writeFileSync(p, idxBytes(0x08, [3], [1, 2, 3]));
    expect(() => readMnist(imgs, p)).toThrow(IdxError);
    expect(() => readIdx(join(dir, 'missing'))).toThrow(IdxError);
  });
});
