import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  encodeSafetensorsHost,
  loadSafetensors,
  parseSafetensors,
  saveSafetensors,
  tf,
  useBackend,
} from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'st-'));

/** Build a file from a header object (or raw header string) and a data section. */
function file(header: unknown, data: Uint8Array, declaredLen?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLen ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors', () => {
  beforeAll(async () => useBackend('cpu'));

  it('writes the exact bytes of the reference serializer (golden, from the Rust crate as used by candle)', () => {
    // zeros((2, 2), F32) saved as "t": header length 64 ('@'), JSON padded with 7 spaces, 16 zero bytes.
    const golden = new Uint8Array([
      ...[0x40, 0, 0, 0, 0, 0, 0, 0],
      ...new TextEncoder().encode('{"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}       '),
      ...new Array(16).fill(0),
    ]);
    expect(Array.from(encodeSafetensors({ t: tf.zeros([2, 2]) }))).toEqual(Array.from(golden));
  });

  it('reads an unpadded file from the reference docs (I32 [2,2], header length 60)', () => {
    const golden = new Uint8Array([
      ...[0x3c, 0, 0, 0, 0, 0, 0, 0],
      ...new TextEncoder().encode('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}'),
      ...new Array(16).fill(0),
    ]);
    const { entries } = parseSafetensors(golden);
    expect(entries).toEqual([{ name: 'test', dtype: 'I32', shape: [2, 2], data: new Int32Array(4) }]);
  });

  it('orders tensors by dtype alignment, then name, and round-trips values and metadata', async () => {
    const bytes = encodeSafetensorsHost({
      b: { dtype: 'F32', shape: [2], data: Float32Array.from([1.5, -2]) },
      a: { dtype: 'I32', shape: [1], data: Int32Array.from([7]) },
      c: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
    });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(Object.keys(header)).toEqual(['a', 'b', 'c']); // all 4-byte dtypes: by name
    const path = join(dir, 'rt.safetensors');
    await saveSafetensors(
      path,
      {
        w: tf.tensor2d([
          [1, 2],
          [3, 4],
        ]),
        ids: tf.tensor1d([5, -6], 'int32'),
      },
      { format: 'pt', note: 'x' },
    );
    const { tensors, metadata } = await loadSafetensors(path);
    expect(metadata).toEqual({ format: 'pt', note: 'x' });
    expect(tensors.w!.arraySync()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(tensors.ids!.dtype).toBe('int32');
    expect(Array.from(tensors.ids!.dataSync())).toEqual([5, -6]);
  });

  it('reads F16, BF16 and I64', () => {
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555, 0x7c00]).buffer); // 1, -2, ~0.33325, inf
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc0a0]).buffer); // 1, -5
    const i64 = new Uint8Array(new BigInt64Array([3n, -4n]).buffer);
    const bytes = file(
      {
        h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
        b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
        l: { dtype: 'I64', shape: [2], data_offsets: [12, 28] },
      },
      new Uint8Array([...f16, ...bf16, ...i64]),
    );
    const { tensors } = decodeSafetensors(bytes);
    const h = tensors.h!.dataSync();
    expect([h[0], h[1], h[3]]).toEqual([1, -2, Number.POSITIVE_INFINITY]);
    expect(h[2]).toBeCloseTo(0.33325, 4);
    expect(Array.from(tensors.b!.dataSync())).toEqual([1, -5]);
    expect(Array.from(tensors.l!.dataSync())).toEqual([3, -4]);
    const big = file({ l: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(new BigInt64Array([2n ** 40n]).buffer));
    expect(() => parseSafetensors(big, 'big.st')).toThrow(
      /safetensors big.st: tensor "l" \(I64\) element 0 = 1099511627776 does not fit in int32/,
    );
  });

  it('rejects corrupt and hostile files with a clear error and no huge allocation', async () => {
    const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const d8 = new Uint8Array(8);
    const cases: [string, Uint8Array, RegExp][] = [
      ['short', new Uint8Array(5), /shorter than the 8-byte header length/],
      ['huge header', file(ok, d8, 2n ** 62n), /header length 4611686018427387904 exceeds the limit/],
      ['truncated header', file(ok, d8, 5000n), /runs past the end of the file/],
      ['not json', file('{"w": [', d8), /header is not valid UTF-8 JSON/],
      ['array header', file('[1,2]', d8), /header must be a JSON object/],
      ['bad dtype', file({ w: { dtype: 'F8', shape: [2], data_offsets: [0, 8] } }, d8), /unsupported dtype "F8"/],
      [
        'bad shape',
        file({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, d8),
        /shape must be an array of non-negative integers/,
      ],
      ['size mismatch', file({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d8), /needs 12 bytes but data_offsets span 8/],
      ['reversed offsets', file({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, d8), /0 <= begin <= end/],
      ['out of bounds', file({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, d8), /past the data section \(8 bytes\)/],
      [
        'overlap',
        file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8),
        /overlaps the previous tensor/,
      ],
      ['gap', file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8), /bytes 0..4 of the data section belong to no tensor/],
      ['trailing', file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d8), /data section is 8 bytes but the tensors cover 4/],
      ['metadata', file({ ...ok, __metadata__: { a: 1 } }, d8), /__metadata__\["a"\] must be a string/],
    ];
    for (const [name, bytes, re] of cases) {
      const p = join(dir, `${name.replace(/ /g, '_')}.safetensors`);
      writeFileSync(p, bytes);
      await expect(loadSafetensors(p), name).rejects.toThrow(re);
      await expect(loadSafetensors(p), name).rejects.toThrow(p);
    }
    await expect(loadSafetensors(join(dir, 'missing.safetensors'))).rejects.toThrow(/missing.safetensors: file not found/);
    await expect(saveSafetensors(join(dir, 'x.st'), { x: tf.tensor1d([1]).cast('complex64') })).rejects.toThrow(/dtype complex64/);
  });

  it('writes atomically (no temp files left behind)', async () => {
    const p = join(dir, 'atomic.safetensors');
    await saveSafetensors(p, { x: tf.ones([3]) });
    await saveSafetensors(p, { x: tf.zeros([3]) });
    expect(readFileSync(p).byteLength).toBeGreaterThan(8);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
