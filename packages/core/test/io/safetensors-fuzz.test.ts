/**
 * Fuzzing the safetensors loader: a seeded, deterministic generator (xorshift128, no Math.random)
 * turns a few valid files into a few thousand corrupt ones — bit flips, truncation, header length
 * fields set huge or small, header text edits and JSON mutations (wrong types, duplicated keys, huge
 * shapes, overlapping offsets, deep nesting, Object.prototype names). Each must either load to
 * tensors that match the shape and dtype its header declares, or throw a SafetensorsError with a
 * short message; nothing else. Also checked: no tensor leaks, bounded heap, bounded time.
 *
 * A failure prints the case number; `FUZZ_SEED=<n>` reruns with another seed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensorsHost,
  loadSafetensors,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  SafetensorsError,
  tf,
} from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

const CASES = 3000;
const SEED = Number(process.env.FUZZ_SEED ?? 20240611);

/** xorshift128 (Marsaglia), seeded through splitmix32. */
function rng(seed: number) {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let [a, b, c, d] = [split(), split(), split(), split() || 1];
  const u32 = () => {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return d;
  };
  const int = (n: number) => Math.floor((u32() / 2 ** 32) * n);
  return { u32, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!, chance: (p: number) => u32() / 2 ** 32 < p };
}
type Rand = ReturnType<typeof rng>;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A file from header text and a data section; `n` overrides the declared header length. */
function assemble(header: string, data: Uint8Array, n?: bigint): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function split(bytes: Uint8Array): { header: string; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: dec.decode(bytes.subarray(8, 8 + n)), data: bytes.subarray(8 + n) };
}

const TF_DTYPE: Record<string, string> = {
  F32: 'float32',
  F16: 'float32',
  BF16: 'float32',
  F64: 'float32',
  I32: 'int32',
  U32: 'int32',
  I64: 'int32',
  U64: 'int32',
  I16: 'int32',
  U16: 'int32',
  I8: 'int32',
  U8: 'int32',
  BOOL: 'bool',
};
const SIZE: Record<string, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I32: 4,
  U32: 4,
  I64: 8,
  U64: 8,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A valid file with any dtypes (our writer only emits F32 / I32 / BOOL / U8); values are small so that 64-bit ones fit int32. */
function handMade(specs: [string, string, number[]][], metadata?: Record<string, string> | null): Uint8Array {
  const parts: string[] = metadata === undefined ? [] : [`"__metadata__":${JSON.stringify(metadata)}`];
  const chunks: number[] = [];
  for (const [name, dtype, shape] of specs) {
    const bytes = shape.reduce((a, b) => a * b, 1) * SIZE[dtype]!;
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: [chunks.length, chunks.length + bytes] })}`);
    for (let i = 0; i < bytes; i++) chunks.push(i % SIZE[dtype]! === 0 ? (i * 37) % 100 : 0);
  }
  return assemble(`{${parts.join(',')}}`, Uint8Array.from(chunks));
}

function seeds(): Uint8Array[] {
  const host = encodeSafetensorsHost(
    {
      'layer.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, 1e-8, -0) },
      ids: { dtype: 'I32', shape: [4], data: Int32Array.of(7, -7, 0, 123456) },
      mask: { dtype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
      bits: { dtype: 'U8', shape: [5], data: Uint8Array.of(0, 1, 2, 254, 255) },
      empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    },
    { format: 'pt', note: 'fuzz seed' },
  );
  const mixed = handMade(
    [
      ['f64', 'F64', [3]],
      ['i64', 'I64', [2, 2]],
      ['u64', 'U64', [1]],
      ['bf16', 'BF16', [3]],
      ['f16', 'F16', [2, 1]],
      ['u32', 'U32', [2]],
      ['i16', 'I16', [2]],
      ['u16', 'U16', [1]],
      ['i8', 'I8', [3]],
      ['scalar', 'F32', []],
    ],
    { a: 'b' },
  );
  const protoNames = handMade(
    [
      ['__proto__', 'F32', [1]],
      ['constructor', 'I32', [2]],
      ['toString', 'BOOL', [1]],
    ],
    null,
  );
  return [
    host,
    mixed,
    protoNames,
    handMade([]),
    handMade(
      [
        ['9', 'F32', [2]],
        ['10', 'U8', [1]],
      ],
      {},
    ),
  ];
}

const WEIRD_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53,
  2 ** 53 + 2,
  1e308,
  -0,
  '',
  'F32',
  'toString',
  '__proto__',
  [],
  [0],
  [1, 2, 3],
  [-1, 4],
  [4, 0],
  ['0', '4'],
  [null, null],
  [[0], [4]],
  {},
  { dtype: 'F32' },
  { __proto__: null, length: 2 },
];
const PROTO_NAMES = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '__metadata__',
  '',
  '\u0000',
  '🦀',
  'a'.repeat(300),
];
const DTYPES = [...Object.keys(SIZE), 'F8_E4M3', 'C64', 'toString', '__proto__', 'constructor', 'f32', 'F32 ', ''];
const HUGE_SHAPES: number[][] = [
  [2 ** 31, 2 ** 31],
  [1e15],
  [2 ** 53],
  [2 ** 53 + 1],
  [0, 2 ** 53],
  [2 ** 40, 2 ** 40, 0],
  [0, 2 ** 60],
  [1e300],
  new Array(1000).fill(1),
  new Array(20).fill(2),
  [0],
  [],
  [-0],
];

/** A mutation of the parsed header object (the JSON of a seed). */
function mutateJson(r: Rand, h: Record<string, unknown>, dataLength: number): string {
  const names = Object.keys(h).filter((k) => k !== '__metadata__' && typeof h[k] === 'object' && h[k] !== null && !Array.isArray(h[k]));
  const entry = () => (names.length ? (h[r.pick(names)] as Record<string, unknown>) : null);
  const kind = r.int(12);
  switch (kind) {
    case 0: {
      // wrong type for a field, an entry, or the metadata
      const e = entry();
      const v = structuredClone(r.pick(WEIRD_VALUES));
      if (e && r.chance(0.7)) e[r.pick(['dtype', 'shape', 'data_offsets', 'extra'])] = v;
      else if (e && r.chance(0.5)) h[r.pick(names)] = v;
      else h.__metadata__ = r.chance(0.5) ? v : { k: v };
      break;
    }
    case 1: {
      const e = entry();
      if (e) e.dtype = r.pick(DTYPES);
      break;
    }
    case 2: {
      // huge, empty or long shapes; sometimes with matching-looking offsets
      const e = entry();
      if (e) {
        e.shape = r.pick(HUGE_SHAPES).slice();
        if (r.chance(0.3)) e.data_offsets = [0, r.pick([0, dataLength, 2 ** 53, 2 ** 31])];
      }
      break;
    }
    case 3: {
      // overlapping, shifted, swapped or out-of-range offsets
      const e = entry();
      const f = entry();
      if (e && f) {
        const [b, x] = e.data_offsets as [number, number];
        const op = r.int(5);
        if (op === 0) e.data_offsets = [b + r.int(9) - 4, x + r.int(9) - 4];
        else if (op === 1) [e.data_offsets, f.data_offsets] = [f.data_offsets, e.data_offsets];
        else if (op === 2) e.data_offsets = (f.data_offsets as number[]).slice();
        else if (op === 3) e.data_offsets = [b, dataLength + r.int(5)];
        else e.data_offsets = [x, b];
      }
      break;
    }
    case 4: {
      // Object.prototype names for tensors and metadata keys
      const n = names.length ? r.pick(names) : null;
      const to = r.pick(PROTO_NAMES);
      if (n && r.chance(0.6)) {
        const v = h[n];
        delete h[n];
        Object.defineProperty(h, to, { value: v, enumerable: true, writable: true, configurable: true });
      } else {
        const m = (typeof h.__metadata__ === 'object' && h.__metadata__) || {};
        Object.defineProperty(m, to, { value: r.chance(0.8) ? 'x' : 5, enumerable: true, writable: true, configurable: true });
        h.__metadata__ = m;
      }
      break;
    }
    case 5:
      h.__metadata__ = r.pick([null, {}, { a: 'b', c: 'd' }, [], 'x', { n: null }]);
      break;
    case 6: {
      // deep nesting somewhere
      const d = r.pick([10, 125, 126, 127, 128, 1000, 5000, 50_000]);
      let v: unknown = r.chance(0.5) ? 1 : {};
      for (let i = 0; i < d; i++) v = r.chance(0.5) ? [v] : { a: v };
      const e = entry();
      if (e && r.chance(0.6)) e[r.pick(['shape', 'data_offsets', 'extra', 'dtype'])] = v;
      else h[r.chance(0.5) ? '__metadata__' : 'deep'] = v;
      // JSON.stringify cannot write what is too deep: write it by hand
      return stringifyDeep(h);
    }
    case 7:
      // an extra tensor, sometimes empty, sometimes past the end
      h[`extra${r.int(3)}`] = {
        dtype: r.pick(['F32', 'U8', 'BOOL']),
        shape: [r.int(3)],
        data_offsets: r.chance(0.5) ? [dataLength, dataLength] : [0, r.int(8)],
      };
      break;
    case 8:
      delete h[names.length ? r.pick(names) : '__metadata__'];
      break;
    default:
      break; // 9..11: text-level edits below
  }
  let text = stringifyDeep(h);
  if (kind === 9) {
    // duplicated keys: a repeated entry, field or metadata key
    const keys = [...text.matchAll(/"((?:[^"\\]|\\.)*)":/g)];
    if (keys.length) {
      const m = r.pick(keys);
      const at = m.index! + 1;
      text = `${text.slice(0, at)}${m[1]}":${r.pick(['1', '"x"', '{}', 'null', '[0,4]'])},"${text.slice(at)}`;
    }
  } else if (kind === 10) {
    // random text edits
    for (let k = 1 + r.int(3); k > 0; k--) {
      const at = r.int(text.length + 1);
      const op = r.int(3);
      const ch = r.pick(['{', '}', '[', ']', '"', ',', ':', '0', '9', '-', '.', 'e', '\\', 'u', ' ', 'n', '\u00e9', '\ud800']);
      if (op === 0) text = text.slice(0, at) + text.slice(at + 1);
      else if (op === 1) text = text.slice(0, at) + ch + text.slice(at);
      else text = text.slice(0, at) + ch + text.slice(at + 1);
    }
  } else if (kind === 11) {
    // numbers JSON.stringify cannot write
    text = text.replace(/\d+/, r.pick(['1e400', '-0', '1.0', '4.000000000000001', '99999999999999999999', '0x10', '1E2']));
  }
  return text;
}

/** JSON.stringify without recursion (for values too deep for it). */
function stringifyDeep(v: unknown): string {
  const out: string[] = [];
  const stack: unknown[] = [v];
  const CLOSE = Symbol('close');
  while (stack.length) {
    const x = stack.pop();
    if (typeof x === 'object' && x !== null && (x as { [CLOSE]?: string })[CLOSE]) {
      out.push((x as { [CLOSE]: string })[CLOSE]);
      continue;
    }
    if (typeof x === 'string' && x.startsWith('\u0001')) {
      out.push(x.slice(1));
      continue;
    }
    if (Array.isArray(x)) {
      out.push('[');
      stack.push({ [CLOSE]: ']' });
      for (let i = x.length - 1; i >= 0; i--) {
        stack.push(x[i]);
        if (i) stack.push('\u0001,');
      }
    } else if (typeof x === 'object' && x !== null) {
      out.push('{');
      stack.push({ [CLOSE]: '}' });
      const ks = Object.keys(x);
      for (let i = ks.length - 1; i >= 0; i--) {
        stack.push((x as Record<string, unknown>)[ks[i]!]);
        stack.push(`\u0001${i ? ',' : ''}${JSON.stringify(ks[i])}:`);
      }
    } else out.push(JSON.stringify(x) ?? 'null');
  }
  return out.join('');
}

/** One corrupt file from a seed; `what` says how it was made. */
function corrupt(r: Rand, seed: Uint8Array): { bytes: Uint8Array; what: string } {
  const kind = r.int(6);
  const { header, data } = split(seed);
  switch (kind) {
    case 0: {
      const b = seed.slice();
      const flips = 1 + r.int(4);
      // mostly in the header, where a flip changes meaning
      for (let k = 0; k < flips; k++) {
        const at = r.chance(0.8) ? r.int(Math.min(b.length, 8 + enc.encode(header).length)) : r.int(b.length);
        b[at]! ^= 1 << r.int(8);
      }
      return { bytes: b, what: `bit flips x${flips}` };
    }
    case 1: {
      const len = r.chance(0.3) ? r.int(16) : r.int(seed.length);
      return { bytes: seed.slice(0, len), what: `truncated to ${len}` };
    }
    case 2: {
      const n = BigInt(enc.encode(header).length);
      const v = r.pick([
        0n,
        1n,
        2n ** 64n - 1n,
        2n ** 63n,
        2n ** 53n + 1n,
        100_000_001n,
        100_000_000n,
        n - 1n,
        n + 1n,
        n + BigInt(data.length),
        n + BigInt(data.length) + 1n,
        BigInt(r.u32()) * BigInt(r.u32()),
      ]);
      return { bytes: assemble(header, data, v), what: `header length ${v}` };
    }
    case 3: {
      const extra = Uint8Array.from({ length: r.int(9) }, () => r.int(256));
      const cut = r.chance(0.5) ? data.subarray(0, Math.max(0, data.length - r.int(9))) : data;
      const d = new Uint8Array(cut.length + extra.length);
      d.set(cut);
      d.set(extra, cut.length);
      return { bytes: assemble(header, d), what: `data ${data.length} -> ${d.length} bytes` };
    }
    default: {
      const h = JSON.parse(header) as Record<string, unknown>;
      let text = header;
      const rounds = 1 + r.int(2);
      for (let k = 0; k < rounds; k++) {
        let obj: unknown;
        try {
          obj = JSON.parse(text);
        } catch {
          break;
        }
        if (typeof obj !== 'object' || obj === null) break;
        try {
          text = mutateJson(r, k === 0 ? h : (obj as Record<string, unknown>), data.length);
        } catch {
          break; // a second round met a shape the mutators do not expect (e.g. offsets already mutated away)
        }
      }
      return { bytes: assemble(text, data), what: `json: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}` };
    }
  }
}

const dir = mkdtempSync(join(tmpdir(), 'st-fuzz-'));

describe('safetensors fuzz', () => {
  beforeAll(async () => useBackend('cpu'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`${CASES} corrupt files: each loads as declared or throws SafetensorsError; no leak, bounded heap and time`, async () => {
    const r = rng(SEED);
    const base = seeds();
    for (const s of base) {
      const { tensors } = decodeSafetensors(s);
      for (const t of Object.values(tensors)) t.dispose();
    }
    const n0 = tf.memory().numTensors;
    (globalThis as { gc?: () => void }).gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    let peak = 0;
    const failures: string[] = [];
    let loaded = 0;
    let rejected = 0;
    let slowest = 0;
    const t0 = performance.now();

    const check = (i: number, what: string, bytes: Uint8Array, result: { tensors: Record<string, tf.Tensor> } | unknown): void => {
      if (!(result && typeof result === 'object' && 'tensors' in result)) {
        const e = result;
        if (!(e instanceof SafetensorsError))
          failures.push(
            `case ${i} (${what}): threw ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message ?? e).slice(0, 300)}`,
          );
        else if (e.message.length > 1500) failures.push(`case ${i} (${what}): message of ${e.message.length} chars`);
        rejected++;
        return;
      }
      const { tensors } = result as { tensors: Record<string, tf.Tensor> };
      try {
        const declared = parseSafetensorsHeader(bytes).tensors;
        const names = Object.keys(tensors).sort();
        if (JSON.stringify(names) !== JSON.stringify(Object.keys(declared).sort()))
          failures.push(`case ${i} (${what}): loaded names ${names} differ from the header's`);
        for (const name of names) {
          const t = tensors[name]!;
          const info = declared[name]!;
          if (JSON.stringify(t.shape) !== JSON.stringify(info.shape) || t.dtype !== TF_DTYPE[info.dtype])
            failures.push(`case ${i} (${what}): "${name}" is ${t.dtype} [${t.shape}], header says ${info.dtype} [${info.shape}]`);
          else if (t.size !== info.shape.reduce((a, b) => a * b, 1) || t.dataSync().length !== t.size)
            failures.push(`case ${i} (${what}): "${name}" holds ${t.dataSync().length} values for shape [${info.shape}]`);
        }
      } catch (e) {
        failures.push(`case ${i} (${what}): loaded, but parseSafetensorsHeader threw ${(e as Error).message}`);
      } finally {
        for (const t of Object.values(tensors)) t.dispose();
      }
      loaded++;
    };

    for (let i = 0; i < CASES; i++) {
      const { bytes, what } = corrupt(r, r.pick(base));
      const c0 = performance.now();
      let result: unknown;
      try {
        result = decodeSafetensors(bytes, { name: `case-${i}` });
      } catch (e) {
        result = e;
      }
      check(i, what, bytes, result);
      // every 25th case also through the file readers
      if (i % 25 === 0) {
        const p = join(dir, `case-${i}.safetensors`);
        writeFileSync(p, bytes);
        check(i, `${what} [file]`, bytes, await loadSafetensors(p).catch((e: unknown) => e));
        const h = await readSafetensorsHeader(p).catch((e: unknown) => e);
        if (!(h instanceof SafetensorsError) && !(h && typeof h === 'object' && 'tensors' in h))
          failures.push(`case ${i} (${what}): readSafetensorsHeader threw ${String(h)}`);
        rmSync(p);
      }
      slowest = Math.max(slowest, performance.now() - c0);
      if (i % 100 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - heap0);
      if (failures.length >= 20) break;
    }
    (globalThis as { gc?: () => void }).gc?.();
    const growth = process.memoryUsage().heapUsed - heap0;

    expect(failures).toEqual([]);
    expect(tf.memory().numTensors).toBe(n0);
    expect(growth).toBeLessThan(256 * 2 ** 20);
    expect(peak).toBeLessThan(256 * 2 ** 20);
    // the generator is not degenerate: plenty of both outcomes
    expect(loaded).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(CASES / 2);
    expect(slowest).toBeLessThan(5000);
    expect(performance.now() - t0).toBeLessThan(30_000);
  }, 60_000);
});
