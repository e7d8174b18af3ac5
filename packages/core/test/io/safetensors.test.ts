/**
 * safetensors: golden bytes of the reference serializer, every dtype the reader accepts, a Python
 * standard-library writer, and one test per corrupt-file case.
 *
 * No file written by PyTorch's safetensors was available here (no PyPI access, no Debian package).
 * The golden vectors below are the outputs the reference Rust crate asserts in its own unit tests
 * (re-derived here from the format: header text, padding, little-endian floats), plus a mixed-dtype
 * example worked out by hand from the reference's ordering rule (dtype enum rank descending, then name).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  encodeSafetensorsHost,
  loadSafetensors,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
  saveSafetensors,
  tf,
} from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'st-'));
const here = dirname(fileURLToPath(import.meta.url));
const ascii = (s: string) => Array.from(new TextEncoder().encode(s));
const spaces = (n: number) => new Array<number>(n).fill(0x20);
const u64 = (n: number) => [n & 0xff, (n >> 8) & 0xff, 0, 0, 0, 0, 0, 0];
// float32 little-endian bytes, written out by hand
const F32 = {
  '0': [0, 0, 0, 0],
  '1': [0, 0, 0x80, 0x3f],
  '2': [0, 0, 0, 0x40],
  '3': [0, 0, 0x40, 0x40],
  '4': [0, 0, 0x80, 0x40],
  '5': [0, 0, 0xa0, 0x40],
};

/** A file from a header (object or raw string) and a data section; `declared` overrides N. */
function file(header: unknown, data: Uint8Array | number[], declared?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const d = Uint8Array.from(data);
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const bytesOf = (a: ArrayLike<number> & { buffer: ArrayBufferLike }) => Array.from(new Uint8Array(a.buffer));

describe('safetensors', () => {
  beforeAll(async () => useBackend('cpu'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reproduces the reference crate serialization vectors byte for byte', () => {
    for (const [v, b] of Object.entries(F32)) expect(bytesOf(Float32Array.of(Number(v)))).toEqual(b);
    const t = (shape: number[]) => tf.tensor([0, 1, 2, 3, 4, 5], shape);
    const data = [...F32['0'], ...F32['1'], ...F32['2'], ...F32['3'], ...F32['4'], ...F32['5']];
    // attn.0 [1,2,3]: the JSON is exactly 64 bytes, no padding.
    const h1 = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(h1.length).toBe(64);
    expect(Array.from(encodeSafetensors({ 'attn.0': t([1, 2, 3]) }))).toEqual([...u64(64), ...ascii(h1), ...data]);
    // attn0 [1,1,2,3]: 65 bytes of JSON, padded with 7 spaces to 72.
    const h2 = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    expect(Array.from(encodeSafetensors({ attn0: t([1, 1, 2, 3]) }))).toEqual([...u64(72), ...ascii(h2), ...spaces(7), ...data]);
    // no tensors: "{}" + 6 spaces; with metadata framework=pt: 35 bytes + 5 spaces.
    expect(Array.from(encodeSafetensors({}))).toEqual([...u64(8), ...ascii('{}'), ...spaces(6)]);
    expect(Array.from(encodeSafetensors({}, { framework: 'pt' }))).toEqual([
      ...u64(40),
      ...ascii('{"__metadata__":{"framework":"pt"}}'),
      ...spaces(5),
    ]);
    // the reader's docs example: I32 [2,2] with an unpadded 60-byte header
    const doc = [...u64(60), ...ascii('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}'), ...new Array(16).fill(0)];
    const { entries } = parseSafetensors(Uint8Array.from(doc));
    expect(entries).toEqual([{ name: 'test', dtype: 'I32', tfDtype: 'int32', shape: [2, 2], data: new Int32Array(4) }]);
  });

  it('orders mixed dtypes like the reference (dtype rank before name) — hand-derived golden bytes', () => {
    // a: I32, b/c: F32, m: BOOL. Reference order: F32 (b, c), then I32 (a), then BOOL (m).
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"b":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},' +
      '"c":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},' +
      '"a":{"dtype":"I32","shape":[2],"data_offsets":[8,16]},' +
      '"m":{"dtype":"BOOL","shape":[3],"data_offsets":[16,19]}}';
    expect(header.length).toBe(250); // + 6 spaces = 256 = 0x100
    const golden = [
      ...[0x00, 0x01, 0, 0, 0, 0, 0, 0],
      ...ascii(header),
      ...spaces(6),
      ...[0, 0, 0x80, 0x3f], // b[0] = 1.0
      ...[0, 0, 0x20, 0xc0], // b[1] = -2.5
      ...[1, 0, 0, 0], // a[0] = 1
      ...[0xfe, 0xff, 0xff, 0xff], // a[1] = -2
      ...[1, 0, 1], // m
    ];
    const tensors = {
      a: tf.tensor1d([1, -2], 'int32'),
      m: tf.tensor1d([true, false, true], 'bool'),
      c: tf.zeros([0]),
      b: tf.tensor2d([[1, -2.5]]),
    };
    expect(Array.from(encodeSafetensors(tensors, { format: 'pt' }))).toEqual(golden);
    const back = decodeSafetensors(Uint8Array.from(golden));
    expect(back.metadata).toEqual({ format: 'pt' });
    expect(back.tensors.b!.arraySync()).toEqual([[1, -2.5]]);
    expect(back.tensors.a!.dtype).toBe('int32');
    expect(Array.from(back.tensors.a!.dataSync())).toEqual([1, -2]);
    expect(back.tensors.m!.dtype).toBe('bool');
    expect(Array.from(back.tensors.m!.dataSync())).toEqual([1, 0, 1]);
    expect(back.tensors.c!.shape).toEqual([0]);
    for (const t of [...Object.values(tensors), ...Object.values(back.tensors)]) t.dispose();
  });

  it('sorts names by UTF-8 bytes (Rust String order), not UTF-16 units', () => {
    // U+FFFF is EF BF BF; U+1F600 is F0 9F 98 80 (but D83D DE00 in UTF-16, which sorts first there).
    const bytes = encodeSafetensorsHost({
      '\u{1F600}': { dtype: 'F32', shape: [1], data: Float32Array.of(1) },
      '\uFFFF': { dtype: 'F32', shape: [1], data: Float32Array.of(2) },
      z: { dtype: 'F32', shape: [1], data: Float32Array.of(3) },
    });
    expect(Object.keys(parseSafetensors(bytes).header.tensors)).toEqual(['z', '\uFFFF', '\u{1F600}']);
  });

  it('decodes every supported dtype to float32 / int32 / bool', () => {
    const f16 = [0x3c00, 0xc000, 0x3555, 0x7c00, 0x0001, 0x8000, 0x7e00]; // 1, -2, 0.333251953125, inf, 2^-24, -0, NaN
    const parts: [string, string, number[], Uint8Array][] = [
      ['h', 'F16', [7], new Uint8Array(Uint16Array.from(f16).buffer)],
      ['b', 'BF16', [2], new Uint8Array(Uint16Array.from([0x3f80, 0xc0a0]).buffer)], // 1, -5
      ['d', 'F64', [2], new Uint8Array(Float64Array.from([0.1, -3]).buffer)],
      ['l', 'I64', [2], new Uint8Array(BigInt64Array.from([3n, -2147483648n]).buffer)],
      ['ul', 'U64', [1], new Uint8Array(BigUint64Array.from([2147483647n]).buffer)],
      ['u', 'U32', [1], new Uint8Array(Uint32Array.from([5]).buffer)],
      ['s', 'I16', [2], new Uint8Array(Int16Array.from([-300, 300]).buffer)],
      ['us', 'U16', [1], new Uint8Array(Uint16Array.from([65535]).buffer)],
      ['ub', 'U8', [2], Uint8Array.from([0, 255])],
      ['sb', 'I8', [2], Uint8Array.from([0x80, 0x7f])],
      ['q', 'BOOL', [3], Uint8Array.from([1, 0, 2])],
    ];
    const header: Record<string, unknown> = {};
    let off = 0;
    for (const [n, dtype, shape, b] of parts) {
      header[n] = { dtype, shape, data_offsets: [off, off + b.length] };
      off += b.length;
    }
    const st = file(
      header,
      parts.flatMap(([, , , b]) => Array.from(b)),
    );
    const { tensors } = decodeSafetensors(st, { name: 'all.st' });
    const v = (k: string) => Array.from(tensors[k]!.dataSync());
    expect(v('h')).toEqual([1, -2, 0.333251953125, Number.POSITIVE_INFINITY, 2 ** -24, -0, Number.NaN]);
    expect(v('b')).toEqual([1, -5]);
    expect(v('d')).toEqual([Math.fround(0.1), -3]);
    expect(v('l')).toEqual([3, -2147483648]);
    expect(v('ul')).toEqual([2147483647]);
    expect(v('u')).toEqual([5]);
    expect(v('s')).toEqual([-300, 300]);
    expect(v('us')).toEqual([65535]);
    expect(v('ub')).toEqual([0, 255]);
    expect(v('sb')).toEqual([-128, 127]);
    expect(v('q')).toEqual([1, 0, 1]);
    expect(Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.dtype]))).toEqual({
      h: 'float32',
      b: 'float32',
      d: 'float32',
      l: 'int32',
      ul: 'int32',
      u: 'int32',
      s: 'int32',
      us: 'int32',
      ub: 'int32',
      sb: 'int32',
      q: 'bool',
    });
    for (const t of Object.values(tensors)) t.dispose();
  });

  it('rejects 64-bit and unsigned 32-bit values outside int32, naming tensor, element and value', () => {
    const one = (dtype: string, b: ArrayBufferLike, size: number) =>
      file({ x: { dtype, shape: [1], data_offsets: [0, size] } }, new Uint8Array(b));
    expect(() => parseSafetensors(one('I64', BigInt64Array.of(2n ** 40n).buffer, 8), 'big.st')).toThrow(
      'safetensors big.st: tensor "x" (I64) element 0 = 1099511627776 does not fit in int32',
    );
    expect(() => parseSafetensors(one('I64', BigInt64Array.of(-2147483649n).buffer, 8), 'neg.st')).toThrow(/element 0 = -2147483649/);
    expect(() => parseSafetensors(one('U64', BigUint64Array.of(2n ** 63n).buffer, 8), 'u.st')).toThrow(
      /\(U64\) element 0 = 9223372036854775808/,
    );
    expect(() => parseSafetensors(one('U32', Uint32Array.of(2 ** 31).buffer, 4), 'u32.st')).toThrow(/\(U32\) element 0 = 2147483648/);
  });

  it('round-trips tensors and metadata through a file; readSafetensors gives host arrays', async () => {
    const path = join(dir, 'rt.safetensors');
    const w = tf.tensor2d([
      [1, 2],
      [3, 4e-30],
    ]);
    const ids = tf.tensor1d([5, -6], 'int32');
    await saveSafetensors(path, { w, ids }, { format: 'pt', note: 'ünïcode ✓' });
    const { tensors, metadata } = await loadSafetensors(path);
    expect(metadata).toEqual({ format: 'pt', note: 'ünïcode ✓' });
    expect(Array.from(tensors.w!.dataSync())).toEqual(Array.from(w.dataSync()));
    expect(tensors.ids!.dtype).toBe('int32');
    expect(Array.from(tensors.ids!.dataSync())).toEqual([5, -6]);
    const host = await readSafetensors(path);
    expect(host.entries.map((e) => [e.name, e.dtype, e.data.constructor.name])).toEqual([
      ['w', 'F32', 'Float32Array'],
      ['ids', 'I32', 'Int32Array'],
    ]);
    const header = await readSafetensorsHeader(path);
    expect(header.tensors.ids).toEqual({ dtype: 'I32', shape: [2], data_offsets: [16, 24] });
    expect(header.headerLength % 8).toBe(0);
    for (const t of [w, ids, ...Object.values(tensors)]) t.dispose();
  });

  it('reads a file written by a Python standard-library writer (skipped without python3)', async (ctx) => {
    const py = spawnSync('python3', ['--version']);
    if (py.status !== 0) {
      console.warn('safetensors interop: python3 is not available; skipping the Python writer check');
      ctx.skip();
    }
    const mixed = join(dir, 'py-mixed.safetensors');
    const writable = join(dir, 'py-writable.safetensors');
    const r = spawnSync('python3', [join(here, 'write_safetensors.py'), mixed, writable], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const { tensors, metadata } = await loadSafetensors(mixed);
    expect(metadata).toEqual({ format: 'pt', source: 'write_safetensors.py' });
    const v = (k: string) => Array.from(tensors[k]!.dataSync());
    expect(v('f64')).toEqual([0.5, -1.25, 1e10]);
    expect(v('i64')).toEqual([0, -1, 2147483647, -2147483648]);
    expect(tensors['layer.weight']!.shape).toEqual([2, 3]);
    expect(v('layer.weight')).toEqual([0, 1, -2, 3.5, Math.fround(1e-8), -0]);
    expect(v('ids')).toEqual([7, -7, 0, 123456]);
    expect(v('bf16')).toEqual([1, -2.5, 0.15625]);
    expect(v('f16')).toEqual([1, -0.5, 65504, 2 ** -24]);
    expect(v('u8')).toEqual([0, 128, 255]);
    expect(v('i8')).toEqual([-128, 0, 127]);
    expect(v('mask')).toEqual([1, 0]);
    expect(tensors.empty!.shape).toEqual([0, 4]);
    for (const t of Object.values(tensors)) t.dispose();
    // The same tensors through our writer give the Python writer's bytes.
    const ours = encodeSafetensorsHost(
      {
        b: { dtype: 'F32', shape: [1, 2], data: Float32Array.of(1, -2.5) },
        a: { dtype: 'I32', shape: [2], data: Int32Array.of(1, -2) },
        c: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
        m: { dtype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
        bits: { dtype: 'U8', shape: [3], data: Uint8Array.of(0, 171, 255) },
        été: { dtype: 'F32', shape: [1], data: Float32Array.of(0.25) },
      },
      { format: 'pt' },
    );
    expect(Array.from(ours)).toEqual(Array.from(readFileSync(writable)));
  });

  it('rejects corrupt and hostile files with an error naming the file, without huge allocations', async () => {
    const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const d8 = new Uint8Array(8);
    const w = (spec: unknown) => file({ w: spec }, d8);
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty file', new Uint8Array(0), /file is 0 bytes, shorter than the 8-byte header length/],
      ['short', new Uint8Array(5), /file is 5 bytes, shorter than the 8-byte header length/],
      ['huge header', file(ok, d8, 2n ** 62n), /header length 4611686018427387904 exceeds the limit of 100000000 bytes/],
      ['header over 100MB', file(ok, d8, 100_000_001n), /header length 100000001 exceeds the limit/],
      ['header past eof', file(ok, d8, 5000n), /header length 5000 runs past the end of the file \(70 bytes\); truncated file\?/],
      ['bad utf8', file('{"w":"\xff"}', d8).map((b, i) => (i === 14 ? 0xff : b)), /header is not valid UTF-8/],
      ['not json', file('{"w": [', d8), /header is not valid JSON/],
      ['array header', file('[1,2]', d8), /header must be a JSON object, got an array/],
      ['null header', file('null', d8), /header must be a JSON object, got null/],
      ['entry not object', file({ w: 3 }, d8), /tensor "w": expected an object \{dtype, shape, data_offsets\}, got 3/],
      [
        'unknown dtype',
        w({ dtype: 'F8', shape: [2], data_offsets: [0, 8] }),
        /tensor "w": unknown dtype "F8" is not supported; expected one of BOOL/,
      ],
      [
        'unsupported dtype',
        w({ dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] }),
        /tensor "w": safetensors dtype "F8_E4M3" is not supported/,
      ],
      ['missing dtype', w({ shape: [2], data_offsets: [0, 8] }), /unknown dtype undefined/],
      ['shape not array', w({ dtype: 'F32', shape: 2, data_offsets: [0, 8] }), /shape must be an array of non-negative integers, got 2/],
      ['negative shape', w({ dtype: 'F32', shape: [-2], data_offsets: [0, 8] }), /got \[-2\]/],
      ['fractional shape', w({ dtype: 'F32', shape: [1.5], data_offsets: [0, 8] }), /got \[1.5\]/],
      ['offsets not pair', w({ dtype: 'F32', shape: [2], data_offsets: [0] }), /data_offsets must be \[begin, end\].*got \[0\]/],
      ['negative offset', w({ dtype: 'F32', shape: [2], data_offsets: [-8, 0] }), /data_offsets must be \[begin, end\]/],
      ['reversed offsets', w({ dtype: 'F32', shape: [0], data_offsets: [8, 0] }), /0 <= begin <= end, got \[8,0\]/],
      [
        'size mismatch',
        w({ dtype: 'F32', shape: [3], data_offsets: [0, 8] }),
        /shape \[3\] x F32 needs 12 bytes but data_offsets \[0, 8\] span 8/,
      ],
      ['overflow', w({ dtype: 'F64', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] }), /overflows/],
      [
        'out of bounds',
        w({ dtype: 'F32', shape: [4], data_offsets: [0, 16] }),
        /data_offsets end 16 is past the end of the data section \(8 bytes\); truncated file\?/,
      ],
      [
        'overlap',
        file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8),
        /tensor "b" \(bytes 4..8\) overlaps tensor "a" \(ends at 8\)/,
      ],
      ['gap', file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8), /bytes 0..4 of the data section belong to no tensor/],
      [
        'trailing',
        file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d8),
        /data section is 8 bytes but the tensors cover only 4/,
      ],
      ['metadata not object', file({ ...ok, __metadata__: ['a'] }, d8), /__metadata__ must be an object of strings, got \["a"\]/],
      ['metadata value', file({ ...ok, __metadata__: { a: 1 } }, d8), /__metadata__\["a"\] must be a string, got number 1/],
    ];
    const good = file(ok, d8);
    cases.push(['truncated data', good.subarray(0, good.length - 3), /data_offsets end 8 is past the end of the data section \(5 bytes\)/]);
    for (const [name, bytes, re] of cases) {
      const p = join(dir, `${name.replace(/ /g, '_')}.safetensors`);
      writeFileSync(p, bytes);
      const err = await loadSafetensors(p).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message, name).toMatch(re);
      expect((err as Error).message, name).toContain(`safetensors ${p}: `);
      if (bytes.length >= 8) await expect(readSafetensorsHeader(p), name).rejects.toThrow(SafetensorsError);
    }
    await expect(loadSafetensors(join(dir, 'missing.safetensors'))).rejects.toThrow(/missing.safetensors: file not found/);
    await expect(readSafetensorsHeader(join(dir, 'missing.safetensors'))).rejects.toThrow(/file not found/);
    expect(() => decodeSafetensors(new Uint8Array(3), { name: 'buf.st' })).toThrow('safetensors buf.st: file is 3 bytes');
  });

  it('rejects bad writer input with a clear error', () => {
    const c = tf.complex([1], [2]);
    expect(() => encodeSafetensors({ x: c })).toThrow('encodeSafetensors: tensor "x" has dtype complex64; expected float32, int32 or bool');
    c.dispose();
    const f = (data: Float32Array, shape: number[]) => ({ dtype: 'F32' as const, shape, data });
    expect(() => encodeSafetensorsHost({ __metadata__: f(Float32Array.of(1), [1]) })).toThrow(/"__metadata__" is reserved/);
    expect(() => encodeSafetensorsHost({ x: f(Float32Array.of(1, 2), [3]) })).toThrow('tensor "x" has shape [3] (3 values) but 2 values');
    expect(() => encodeSafetensorsHost({ x: f(Float32Array.of(1), [-1]) })).toThrow(/shape must be non-negative integers, got \[-1\]/);
    expect(() => encodeSafetensorsHost({ x: { dtype: 'F16' as 'F32', shape: [1], data: Float32Array.of(1) } })).toThrow(
      'tensor "x" has dtype "F16"; expected F32, I32, BOOL or U8',
    );
    expect(() => encodeSafetensorsHost({ x: { dtype: 'I32', shape: [1], data: Float32Array.of(1) } })).toThrow(
      'tensor "x" (I32) data must be a Int32Array, got Float32Array',
    );
    expect(() => encodeSafetensorsHost({}, { a: 1 as unknown as string })).toThrow('metadata["a"] must be a string, got number');
    const gone = tf.ones([1]);
    gone.dispose();
    expect(() => encodeSafetensors({ gone })).toThrow('tensor "gone" is disposed');
  });

  it('writes atomically: no temp files remain, and a failed save leaves the previous file intact', async () => {
    const p = join(dir, 'atomic', 'w.safetensors');
    const one = tf.ones([3]);
    await saveSafetensors(p, { x: one });
    const before = readFileSync(p);
    const c = tf.complex([1], [2]);
    await expect(saveSafetensors(p, { x: c })).rejects.toThrow(/complex64/);
    expect(readFileSync(p).equals(before)).toBe(true);
    await saveSafetensors(p, { x: one, y: one });
    expect(readdirSync(dirname(p))).toEqual(['w.safetensors']);
    const { tensors } = await loadSafetensors(p);
    expect(Object.keys(tensors).sort()).toEqual(['x', 'y']);
    for (const t of [one, c, ...Object.values(tensors)]) t.dispose();
  });

  it('leaks no tensors (encode reads, decode makes exactly one tensor per entry)', () => {
    const a = tf.ones([2, 2]);
    const n0 = tf.memory().numTensors;
    const bytes = encodeSafetensors({ a });
    expect(tf.memory().numTensors).toBe(n0);
    const { tensors } = decodeSafetensors(bytes);
    expect(tf.memory().numTensors).toBe(n0 + 1);
    tensors.a!.dispose();
    a.dispose();
  });
});
