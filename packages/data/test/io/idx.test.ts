import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeIdx, mnistImage, readIdx, readMnist } from '../../src/io/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mmlm-idx-'));

/** Hand-assembled IDX bytes: magic 00 00 type ndims, big-endian uint32 dims, data. */
function idx(type: number, dims: number[], data: number[]): Uint8Array {
  return Uint8Array.from([
    0,
    0,
    type,
    dims.length,
    ...dims.flatMap((d) => [d >>> 24, (d >>> 16) & 255, (d >>> 8) & 255, d & 255]),
    ...data,
  ]);
}

describe('IDX', () => {
  // two 2x3 images and their labels
  const images = idx(0x08, [2, 2, 3], [0, 1, 2, 3, 4, 5, 255, 254, 253, 252, 251, 250]);
  const labels = idx(0x08, [2], [7, 3]);

  it('reads uint8 images and labels (plain and gzipped)', () => {
    writeFileSync(join(dir, 'img-idx3-ubyte'), images);
    writeFileSync(join(dir, 'lbl-idx1-ubyte.gz'), gzipSync(labels));
    const m = readMnist(join(dir, 'img-idx3-ubyte'), join(dir, 'lbl-idx1-ubyte.gz'));
    expect([m.count, m.rows, m.cols]).toEqual([2, 2, 3]);
    expect(Array.from(m.labels)).toEqual([7, 3]);
    expect(Array.from(m.images.subarray(6))).toEqual([255, 254, 253, 252, 251, 250]);
    expect(mnistImage(m, 1)[0]).toBe(1);
    expect(mnistImage(m, 0)[1]).toBeCloseTo(1 / 255, 7);
    expect(() => mnistImage(m, 2)).toThrow(/index must be an integer in \[0, 2\), got 2/);
  });

  it('decodes big-endian multi-byte types (hand values)', () => {
    expect(Array.from(decodeIdx(idx(0x0b, [2], [0x01, 0x02, 0xff, 0xfe])).data)).toEqual([258, -2]);
    expect(Array.from(decodeIdx(idx(0x0c, [1], [0xff, 0xff, 0xff, 0xfd])).data)).toEqual([-3]);
    expect(Array.from(decodeIdx(idx(0x0d, [1], [0x3f, 0xc0, 0, 0])).data)).toEqual([1.5]);
    expect(Array.from(decodeIdx(idx(0x0e, [1], [0xc0, 0, 0, 0, 0, 0, 0, 0])).data)).toEqual([-2]);
    expect(Array.from(decodeIdx(idx(0x09, [2], [0x80, 0x7f])).data)).toEqual([-128, 127]);
    expect(decodeIdx(idx(0x08, [1, 0], [])).shape).toEqual([1, 0]);
  });

  it('names the file and the problem for truncated or garbage files', () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['trunc', images.slice(0, images.length - 3), /trunc: truncated: dims \[2, 2, 3\] of uint8 need 12 data bytes, file has 9/],
      ['header', images.slice(0, 10), /header: truncated header: 3 dimensions need 16 bytes, file has 10/],
      ['tiny', images.slice(0, 2), /tiny: file is 2 bytes, too short for the 4-byte magic number/],
      ['png', Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0]), /png: bad magic number 89 50 4e 47: expected 00 00 <type> <dims>/],
      ['type', idx(0x07, [1], [0]), /type: unknown data type code 0x07/],
      ['zero', Uint8Array.from([0, 0, 8, 0]), /zero: number of dimensions is 0/],
      ['extra', Uint8Array.from([...labels, 9, 9]), /extra: 2 unexpected bytes after the data for dims \[2\]/],
      ['bad.gz', Uint8Array.from([0x1f, 0x8b, 1, 2, 3]), /bad\.gz: corrupt gzip data/],
    ];
    for (const [name, bytes, re] of cases) {
      writeFileSync(join(dir, name), bytes);
      expect(() => readIdx(join(dir, name))).toThrow(re);
    }
    expect(() => readIdx(join(dir, 'missing'))).toThrow(/IDX .*missing: file not found/);
    writeFileSync(join(dir, 'three-labels'), idx(0x08, [3], [1, 2, 3]));
    expect(() => readMnist(join(dir, 'img-idx3-ubyte'), join(dir, 'three-labels'))).toThrow(/has 2 images but .*three-labels has 3 labels/);
    expect(() => readMnist(join(dir, 'three-labels'), join(dir, 'three-labels'))).toThrow(
      /expected uint8 images with 3 dims \[N, rows, cols\], got uint8 \[3\]/,
    );
  });
});
