/**
 * safetensors read/write, the huggingface/safetensors format: an 8-byte little-endian u64 header
 * length N, then N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then the
 * raw little-endian, C-order tensor bytes (offsets count from the first byte after the header).
 *
 * Hand-written: no maintained npm package reads and writes safetensors (the `safetensors` npm
 * package is abandoned, @huggingface/hub only parses headers).
 *
 * Writing follows the reference serializer (Rust crate `safetensors`, `tensor.rs` `prepare`, which
 * the Python `save_file` calls): tensors sorted by the reference `Dtype` enum order descending
 * (that enum lists dtypes in increasing alignment: F32 comes before I32, which comes before BOOL),
 * then by name (byte-wise on UTF-8); laid out contiguously from offset 0; `__metadata__` first when
 * given; the JSON compact (no spaces) and padded with spaces to a multiple of 8 bytes.
 *
 * Reading validates everything before allocating tensor memory: header length bound (100 MB, as
 * the reference), header against file size, UTF-8 JSON object, nesting depth (127 levels, as
 * serde_json), no duplicate keys, dtypes, shapes, byte sizes, ranges (bounds, no overlap, full coverage
 * of the data section), metadata values being strings (`"__metadata__": null` means none, as the
 * reference's `Option`). Every failure is a SafetensorsError; values quoted in its message are cut
 * to a few hundred characters. Returned records (tensors, metadata) have no prototype, so names
 * such as `__proto__` or `constructor` are ordinary keys.
 *
 * Interop: no file written by PyTorch's safetensors was available on this machine (no network to
 * PyPI, no Debian package). Checked instead: the reference crate's own serialization vectors and a
 * hand-derived mixed-dtype example are reproduced byte for byte, and a Python standard-library
 * writer (test/io/write_safetensors.py) is read back (test/io/safetensors.test.ts).
 *
 * The byte-level functions (encode / decode / parse) run anywhere; the path-taking ones are Node
 * only (the file system comes through `#platform`) and throw "not available in the browser" there.
 */
import { fs, fsp, nodeOnly, path as nodePath } from '#platform';
import { readSync } from '../backend/read.js';
import type { Module } from '../nn/module.js';
import { compareUtf8, isLittleEndian, randomHex } from '../runtime.js';
import { tf } from '../tf.js';

const { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } = fs;
const { mkdir, open, readFile, rename, rm } = fsp;
const { basename, dirname, join } = nodePath;

/** The dtypes this reader decodes. */
export type SafetensorsDtype = 'BOOL' | 'U8' | 'I8' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

/** The dtypes this writer produces (float32 -> F32, int32 -> I32, bool -> BOOL; U8 bytes from host data, e.g. packed bits). */
export type SafetensorsWriteDtype = 'F32' | 'I32' | 'BOOL' | 'U8';

/** The reference `Dtype` enum in declaration order (increasing alignment); the writer sorts by it. */
const REFERENCE_DTYPE_ORDER = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;

const DTYPE_SIZE: Record<SafetensorsDtype, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** Headers longer than this are rejected (the reference's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Headers nested deeper than this are rejected: the most that serde_json's default recursion limit
 * (128, counted down on entering each array or object and failing at 0) lets through, and the
 * reference parses with serde_json.
 */
export const MAX_HEADER_DEPTH = 127;

/** Longest text quoted from a file in an error message. */
const MAX_SHOWN = 200;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** One tensor's header record. */
export interface SafetensorsTensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  /** Tensor records by name (no prototype), in file (offset) order except that integer-like names enumerate first, as in any JS object. */
  tensors: Record<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
  /** N, the header length in bytes (the data section starts at 8 + N). */
  headerLength: number;
}

/** A tensor decoded to host memory: float dtypes to Float32Array, integer dtypes to Int32Array, BOOL to Uint8Array (0/1). */
export interface SafetensorsEntry {
  name: string;
  /** The dtype stored in the file. */
  dtype: SafetensorsDtype;
  /** The tfjs dtype the data maps to. */
  tfDtype: 'float32' | 'int32' | 'bool';
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

export interface ParsedSafetensors {
  header: SafetensorsHeader;
  /** In file (offset) order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
}

/** A host tensor for the writer. */
export interface HostTensor {
  dtype: SafetensorsWriteDtype;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

export interface SafetensorsOptions {
  /** Names the source (a file path) in errors. */
  name?: string;
}

export class SafetensorsError extends Error {
  constructor(
    readonly source: string,
    problem: string,
  ) {
    super(`safetensors ${source}: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

function assertLittleEndianHost(): void {
  if (!isLittleEndian()) throw new Error('safetensors: this implementation needs a little-endian host, got a big-endian one');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A record without a prototype: `__proto__`, `constructor`, `toString` are ordinary keys of it. */
function record<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** A name from a file, cut for an error message. */
function clip(s: string): string {
  return s.length <= MAX_SHOWN ? s : `${s.slice(0, MAX_SHOWN)}…(${s.length} chars)`;
}

/**
 * A value from a file for an error message: JSON-like, at most MAX_SHOWN characters, at most 8
 * levels deep, never throws (JSON.stringify would throw a RangeError on deep nesting and copy a
 * 20 MB value whole). Small values read exactly as JSON.stringify writes them.
 */
export function showValue(v: unknown): string {
  let out = '';
  let full = false;
  const emit = (s: string): void => {
    if (full) return;
    if (out.length + s.length > MAX_SHOWN) {
      out += s.slice(0, MAX_SHOWN - out.length);
      full = true;
    } else out += s;
  };
  const walk = (x: unknown, depth: number): void => {
    if (full) return;
    if (x === undefined) emit('undefined');
    else if (x === null) emit('null');
    else if (typeof x === 'number') emit(Number.isFinite(x) ? String(x) : 'null');
    else if (typeof x === 'boolean') emit(String(x));
    else if (typeof x === 'string') emit(JSON.stringify(x.length > MAX_SHOWN ? x.slice(0, MAX_SHOWN) : x));
    else if (typeof x !== 'object') emit(typeof x);
    else if (Array.isArray(x)) {
      if (depth >= 8) {
        emit('[…]');
        return;
      }
      emit('[');
      for (let i = 0; i < x.length && !full; i++) {
        if (i) emit(',');
        walk(x[i], depth + 1);
      }
      emit(']');
    } else {
      if (depth >= 8) {
        emit('{…}');
        return;
      }
      emit('{');
      let first = true;
      for (const k in x) {
        if (full) break;
        if (!Object.hasOwn(x, k)) continue;
        if (!first) emit(',');
        first = false;
        emit(`${JSON.stringify(k.length > MAX_SHOWN ? k.slice(0, MAX_SHOWN) : k)}:`);
        walk((x as Record<string, unknown>)[k], depth + 1);
      }
      emit('}');
    }
  };
  try {
    walk(v, 0);
  } catch {
    full = true;
  }
  return full ? `${out}…` : out;
}

function sourceName(opts: SafetensorsOptions | string | undefined): string {
  if (typeof opts === 'string') return opts;
  return opts?.name ?? '<buffer>';
}

/** IEEE 754 binary16 bits to a number (exact). */
function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * 2 ** -24 * f;
  if (e === 31) return f ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Validate the header JSON against a data section of `dataLength` bytes. Returns the tensor records
 * in offset order.
 */
function validateHeader(header: unknown, dataLength: number, source: string): Omit<SafetensorsHeader, 'headerLength'> {
  if (!isPlainObject(header))
    throw new SafetensorsError(source, `header must be a JSON object, got ${Array.isArray(header) ? 'an array' : showValue(header)}`);
  const metadata = record<string>();
  const infos: [string, SafetensorsTensorInfo][] = [];
  for (const [rawName, spec] of Object.entries(header)) {
    const name = clip(rawName);
    if (rawName === '__metadata__') {
      // The reference's `Option<HashMap<String, String>>`: null is no metadata.
      if (spec === null) continue;
      if (!isPlainObject(spec)) throw new SafetensorsError(source, `__metadata__ must be an object of strings, got ${showValue(spec)}`);
      for (const [k, v] of Object.entries(spec)) {
        if (typeof v !== 'string')
          throw new SafetensorsError(source, `__metadata__["${clip(k)}"] must be a string, got ${typeof v} ${showValue(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (!isPlainObject(spec))
      throw new SafetensorsError(source, `tensor "${name}": expected an object {dtype, shape, data_offsets}, got ${showValue(spec)}`);
    const dtype = Object.hasOwn(spec, 'dtype') ? spec.dtype : undefined;
    const shape = Object.hasOwn(spec, 'shape') ? spec.shape : undefined;
    const off = Object.hasOwn(spec, 'data_offsets') ? spec.data_offsets : undefined;
    // Object.hasOwn, not `in`: "toString" or "__proto__" must not pass for a dtype.
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype)) {
      const known = (REFERENCE_DTYPE_ORDER as readonly string[]).includes(dtype as string);
      throw new SafetensorsError(
        source,
        `tensor "${name}": ${known ? 'safetensors dtype' : 'unknown dtype'} ${showValue(dtype)} is not supported; expected one of ${Object.keys(DTYPE_SIZE).join(', ')}`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(source, `tensor "${name}": shape must be an array of non-negative integers, got ${showValue(shape)}`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1])
      throw new SafetensorsError(
        source,
        `tensor "${name}": data_offsets must be [begin, end] with integers 0 <= begin <= end, got ${showValue(off)}`,
      );
    const st = dtype as SafetensorsDtype;
    // Every partial product must stay exact, as the reference's checked_mul (so [2^40, 2^40, 0] overflows too).
    let bytes = DTYPE_SIZE[st];
    for (const d of shape as number[]) {
      bytes *= d;
      if (!Number.isSafeInteger(bytes))
        throw new SafetensorsError(source, `tensor "${name}": shape ${showValue(shape)} x ${st} overflows (more than 2^53 bytes)`);
    }
    const [begin, end] = off as [number, number];
    if (end - begin !== bytes)
      throw new SafetensorsError(
        source,
        `tensor "${name}": shape ${showValue(shape)} x ${st} needs ${bytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    if (end > dataLength)
      throw new SafetensorsError(
        source,
        `tensor "${name}": data_offsets end ${end} is past the end of the data section (${dataLength} bytes); truncated file?`,
      );
    infos.push([rawName, { dtype: st, shape: (shape as number[]).slice(), data_offsets: [begin, end] }]);
  }
  infos.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1]);
  let pos = 0;
  let prev = '';
  for (const [name, info] of infos) {
    const [begin, end] = info.data_offsets;
    if (begin < pos)
      throw new SafetensorsError(
        source,
        `tensor "${clip(name)}" (bytes ${begin}..${end}) overlaps tensor "${clip(prev)}" (ends at ${pos})`,
      );
    if (begin > pos) throw new SafetensorsError(source, `bytes ${pos}..${begin} of the data section belong to no tensor`);
    pos = end;
    prev = name;
  }
  if (pos !== dataLength)
    throw new SafetensorsError(source, `the data section is ${dataLength} bytes but the tensors cover only ${pos} (trailing bytes)`);
  const tensors = record<SafetensorsTensorInfo>();
  for (const [name, info] of infos) tensors[name] = info;
  return { tensors, metadata };
}

/** Read N from the first 8 bytes and check it against the limit and the total size. */
function headerLength(first8: Uint8Array, totalSize: number, source: string): number {
  if (totalSize < 8) throw new SafetensorsError(source, `file is ${totalSize} bytes, shorter than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES))
    throw new SafetensorsError(
      source,
      `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes (corrupt or not a safetensors file?)`,
    );
  if (n + 8n > BigInt(totalSize))
    throw new SafetensorsError(source, `header length ${n} runs past the end of the file (${totalSize} bytes); truncated file?`);
  return Number(n);
}

/**
 * One pass over the header text: nesting deeper than MAX_HEADER_DEPTH, and the first key that
 * occurs twice in one object (at any depth; `"a"` and `"\u0061"` are the same key).
 *
 * Hand-written because JSON.parse cannot report either: duplicate keys silently keep the last value
 * (serde rejects a repeated field, e.g. a second "dtype"; either way such a file could mean
 * different things to different readers, so every duplicate is an error),
 * and a reviver only sees the object after the duplicates are merged. The scan is iterative (no
 * recursion, so deep nesting cannot overflow the stack) and linear in the header length. It is
 * lenient with malformed JSON: it only stops early; JSON.parse reports the syntax error.
 */
function scanHeader(text: string): { tooDeep: boolean; duplicate: { key: string; where: string[] } | null } {
  // One frame per open container: the keys seen (objects; an array while few, as in tensor records)
  // or null (arrays), and the key it sits under.
  const stack: { keys: string[] | Set<string> | null; under: string | null }[] = [];
  let duplicate: { key: string; where: string[] } | null = null;
  let expectKey = false;
  let lastKey: string | null = null;
  // The first backslash at or after the current string (kept, not searched again for every string).
  let nextBackslash = text.indexOf('\\');
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // The closing quote: the next one not preceded by an odd number of backslashes.
      let j = text.indexOf('"', i + 1);
      while (j !== -1) {
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c /* \ */) k--;
        if ((j - 1 - k) % 2 === 0) break;
        j = text.indexOf('"', j + 1);
      }
      if (j === -1) break; // unterminated: JSON.parse reports it
      if (nextBackslash !== -1 && nextBackslash <= i) nextBackslash = text.indexOf('\\', i + 1);
      const escaped = nextBackslash !== -1 && nextBackslash < j;
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        let key: string;
        try {
          key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        } catch {
          break; // a bad escape: JSON.parse reports it
        }
        const seen = Array.isArray(top.keys) ? top.keys.includes(key) : top.keys.has(key);
        if (duplicate === null && seen) duplicate = { key, where: stack.map((f) => f.under).filter((u): u is string => u !== null) };
        if (!Array.isArray(top.keys)) top.keys.add(key);
        else if (top.keys.length < 16) top.keys.push(key);
        else top.keys = new Set([...top.keys, key]);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const top = stack[stack.length - 1];
      stack.push({ keys: c === 0x7b ? [] : null, under: top?.keys ? lastKey : top ? '[]' : null });
      if (stack.length > MAX_HEADER_DEPTH) return { tooDeep: true, duplicate };
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1]?.keys != null;
    }
  }
  return { tooDeep: false, duplicate };
}

function parseHeaderJson(bytes: Uint8Array, source: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(source, 'header is not valid UTF-8');
  }
  const scan = scanHeader(text);
  if (scan.tooDeep) throw new SafetensorsError(source, `header JSON is nested deeper than ${MAX_HEADER_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // A RangeError (stack or memory exhausted) is as much the file's fault as a SyntaxError.
    const why = e instanceof RangeError ? `too large or too deeply nested: ${e.message}` : (e as Error).message;
    throw new SafetensorsError(source, `header is not valid JSON (${clip(String(why))})`);
  }
  if (scan.duplicate) {
    const { key, where } = scan.duplicate;
    const place =
      where.length === 0
        ? 'the header'
        : where[0] === '__metadata__'
          ? '__metadata__'
          : `tensor "${clip(where[0]!)}"${where.length > 1 ? ` (${where.slice(1).map(clip).join(' > ')})` : ''}`;
    throw new SafetensorsError(source, `duplicate key "${clip(key)}" in ${place}`);
  }
  return value;
}

/** Parse and validate the header of a complete safetensors buffer. */
export function parseSafetensorsHeader(bytes: Uint8Array, opts?: SafetensorsOptions | string): SafetensorsHeader {
  const source = sourceName(opts);
  const n = headerLength(bytes.subarray(0, 8), bytes.byteLength, source);
  const h = validateHeader(parseHeaderJson(bytes.subarray(8, 8 + n), source), bytes.byteLength - 8 - n, source);
  return { ...h, headerLength: n };
}

function decodeData(
  raw: Uint8Array,
  info: SafetensorsTensorInfo,
  name: string,
  source: string,
): Pick<SafetensorsEntry, 'data' | 'tfDtype'> {
  const n = info.shape.reduce((a, b) => a * b, 1);
  // A copy: aligned, and not a view on the caller's buffer.
  const buf = raw.slice().buffer;
  const outOfRange = (i: number, v: bigint | number) =>
    new SafetensorsError(
      source,
      `tensor "${name}" (${info.dtype}) element ${i} = ${v} does not fit in int32 (tfjs has no 64-bit integers)`,
    );
  switch (info.dtype) {
    case 'F32':
      return { tfDtype: 'float32', data: new Float32Array(buf) };
    case 'F64':
      return { tfDtype: 'float32', data: Float32Array.from(new Float64Array(buf)) };
    case 'F16': {
      const h = new Uint16Array(buf);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToNumber(h[i]!);
      return { tfDtype: 'float32', data: out };
    }
    case 'BF16': {
      const h = new Uint16Array(buf);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = h[i]! << 16;
      return { tfDtype: 'float32', data: out };
    }
    case 'I32':
      return { tfDtype: 'int32', data: new Int32Array(buf) };
    case 'U32': {
      const u = new Uint32Array(buf);
      for (let i = 0; i < n; i++) if (u[i]! > INT32_MAX) throw outOfRange(i, u[i]!);
      return { tfDtype: 'int32', data: new Int32Array(buf) };
    }
    case 'I64':
    case 'U64': {
      const w = info.dtype === 'I64' ? new BigInt64Array(buf) : new BigUint64Array(buf);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = w[i]!;
        if (v > BigInt(INT32_MAX) || v < BigInt(INT32_MIN)) throw outOfRange(i, v);
        out[i] = Number(v);
      }
      return { tfDtype: 'int32', data: out };
    }
    case 'I16':
      return { tfDtype: 'int32', data: Int32Array.from(new Int16Array(buf)) };
    case 'U16':
      return { tfDtype: 'int32', data: Int32Array.from(new Uint16Array(buf)) };
    case 'I8':
      return { tfDtype: 'int32', data: Int32Array.from(new Int8Array(buf)) };
    case 'U8':
      return { tfDtype: 'int32', data: Int32Array.from(new Uint8Array(buf)) };
    case 'BOOL':
      return { tfDtype: 'bool', data: new Uint8Array(buf).map((b) => (b ? 1 : 0)) };
  }
}

/** Parse and validate safetensors bytes into host arrays (no tensors are made). */
export function parseSafetensors(bytes: Uint8Array, opts?: SafetensorsOptions | string): ParsedSafetensors {
  assertLittleEndianHost();
  const source = sourceName(opts);
  const header = parseSafetensorsHeader(bytes, source);
  const base = 8 + header.headerLength;
  // Sorted again: a record enumerates integer-like names ("9", "10") first, whatever the file order.
  const infos = Object.entries(header.tensors).sort(
    (a, b) => a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1],
  );
  const entries = infos.map(([name, info]) => ({
    name,
    dtype: info.dtype,
    shape: info.shape,
    ...decodeData(bytes.subarray(base + info.data_offsets[0], base + info.data_offsets[1]), info, name, source),
  }));
  return { header, entries, metadata: header.metadata };
}

/** Decode safetensors bytes to tensors (float32, int32 or bool). The caller owns the tensors. */
export function decodeSafetensors(
  bytes: Uint8Array,
  opts?: SafetensorsOptions | string,
): { tensors: Record<string, tf.Tensor>; metadata: Record<string, string> } {
  const { entries, metadata } = parseSafetensors(bytes, opts);
  const tensors = record<tf.Tensor>();
  try {
    for (const e of entries) tensors[e.name] = tf.tensor(e.data, e.shape, e.tfDtype);
  } catch (e) {
    for (const t of Object.values(tensors)) t.dispose();
    throw e;
  }
  return { tensors, metadata };
}

const utf8 = new TextEncoder();

function dtypeRank(d: string): number {
  return (REFERENCE_DTYPE_ORDER as readonly string[]).indexOf(d);
}

/** Encode host arrays (F32 / I32 / BOOL) exactly as the reference serializer lays them out. */
export function encodeSafetensorsHost(tensors: Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  assertLittleEndianHost();
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name]!;
    if (name === '__metadata__') throw new Error('encodeSafetensors: "__metadata__" is reserved and cannot name a tensor');
    if (!['F32', 'I32', 'BOOL', 'U8'].includes(t.dtype))
      throw new Error(`encodeSafetensors: tensor "${name}" has dtype ${showValue(t.dtype)}; expected F32, I32, BOOL or U8`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new Error(`encodeSafetensors: tensor "${name}" shape must be non-negative integers, got ${showValue(t.shape)}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(`encodeSafetensors: tensor "${name}" has shape [${t.shape}] (${count} values) but ${t.data.length} values`);
    const want = t.dtype === 'F32' ? Float32Array : t.dtype === 'I32' ? Int32Array : Uint8Array;
    if (!(t.data instanceof want))
      throw new Error(`encodeSafetensors: tensor "${name}" (${t.dtype}) data must be a ${want.name}, got ${t.data.constructor.name}`);
  }
  names.sort((a, b) => dtypeRank(tensors[b]!.dtype) - dtypeRank(tensors[a]!.dtype) || compareUtf8(a, b));
  // The header text is assembled entry by entry, not as one object: an object would list
  // integer-like names ("9", "10") first whatever the data order, and a name "__proto__" would set
  // its prototype instead of adding a key.
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new Error(`encodeSafetensors: metadata must be an object of strings, got ${showValue(metadata)}`);
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new Error(`encodeSafetensors: metadata["${clip(k)}"] must be a string, got ${typeof v}`);
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const size = t.data.byteLength;
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] })}`);
    offset += size;
  }
  const json = utf8.encode(`{${parts.join(',')}}`);
  const n = json.byteLength + ((8 - (json.byteLength % 8)) % 8);
  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + n);
  let p = 8 + n;
  for (const name of names) {
    const d = tensors[name]!.data;
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    if (tensors[name]!.dtype === 'BOOL') for (let i = 0; i < bytes.length; i++) out[p + i] = bytes[i] ? 1 : 0;
    else out.set(bytes, p);
    p += bytes.byteLength;
  }
  return out;
}

function hostTensor(name: string, t: tf.Tensor, values: ArrayLike<number>): HostTensor {
  if (t.dtype === 'float32') return { dtype: 'F32', shape: t.shape, data: values as Float32Array };
  if (t.dtype === 'int32') return { dtype: 'I32', shape: t.shape, data: values as Int32Array };
  if (t.dtype === 'bool') return { dtype: 'BOOL', shape: t.shape, data: Uint8Array.from(values) };
  throw new Error(`encodeSafetensors: tensor "${name}" has dtype ${t.dtype}; expected float32, int32 or bool`);
}

function checkWritable(name: string, t: tf.Tensor): void {
  if (t.isDisposed) throw new Error(`encodeSafetensors: tensor "${name}" is disposed`);
  if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool')
    throw new Error(`encodeSafetensors: tensor "${name}" has dtype ${t.dtype}; expected float32, int32 or bool`);
}

/**
 * Read tensors to the host as writer inputs (float32 -> F32, int32 -> I32, bool -> BOOL), synchronously
 * (on webgpu, data on the GPU cannot be: use tensorsToHostAsync there).
 */
export function tensorsToHost(tensors: Record<string, tf.Tensor>): Record<string, HostTensor> {
  const host = record<HostTensor>();
  for (const [name, t] of Object.entries(tensors)) {
    checkWritable(name, t);
    host[name] = hostTensor(name, t, readSync(t, 'encodeSafetensors / tensorsToHost', 'use encodeSafetensorsAsync / tensorsToHostAsync'));
  }
  return host;
}

/** tensorsToHost with asynchronous reads (`await t.data()`): every backend, webgpu included. */
export async function tensorsToHostAsync(tensors: Record<string, tf.Tensor>): Promise<Record<string, HostTensor>> {
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) checkWritable(name, t);
  const values = await Promise.all(entries.map(([, t]) => t.data()));
  const host = record<HostTensor>();
  for (const [i, [name, t]] of entries.entries()) host[name] = hostTensor(name, t, values[i] as ArrayLike<number>);
  return host;
}

/** Encode tensors (float32 -> F32, int32 -> I32, bool -> BOOL); reads them to the host synchronously. */
export function encodeSafetensors(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Uint8Array {
  return encodeSafetensorsHost(tensorsToHost(tensors), metadata);
}

/** encodeSafetensors with asynchronous reads: every backend, webgpu included (what saveSafetensors uses). */
export async function encodeSafetensorsAsync(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Promise<Uint8Array> {
  return encodeSafetensorsHost(await tensorsToHostAsync(tensors), metadata);
}

/**
 * Write `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk, then
 * renamed over `path`. A crash leaves either the old file or the new one, never a mix.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  nodeOnly('writeFileAtomic');
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomHex(4)}`);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** `writeFileAtomic` for synchronous callers (run records, reports, sub-run results). */
export function writeFileAtomicSync(path: string, bytes: Uint8Array | string): void {
  nodeOnly('writeFileAtomicSync');
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomHex(4)}`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeFileSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Save tensors as a safetensors file (F32 / I32 / BOOL), atomically. */
export async function saveSafetensors(path: string, tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, await encodeSafetensorsAsync(tensors, metadata));
}

async function readWhole(path: string): Promise<Uint8Array> {
  nodeOnly('readSafetensors / loadSafetensors / loadModule');
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new SafetensorsError(path, e.code === 'ENOENT' ? 'file not found' : e.message);
  });
  try {
    const { size } = await fh.stat();
    const first8 = new Uint8Array(8);
    if (size >= 8) await fh.read(first8, 0, 8, 0);
    // Bound the header against the file size before reading the rest.
    headerLength(first8, size, path);
    return new Uint8Array(await readFile(fh));
  } finally {
    await fh.close();
  }
}

/** Read and validate only the header of a safetensors file (checks it against the file size). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  nodeOnly('readSafetensorsHeader');
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new SafetensorsError(path, e.code === 'ENOENT' ? 'file not found' : e.message);
  });
  try {
    const { size } = await fh.stat();
    const first8 = new Uint8Array(8);
    if (size >= 8) await fh.read(first8, 0, 8, 0);
    const n = headerLength(first8, size, path);
    const hb = new Uint8Array(n);
    await fh.read(hb, 0, n, 8);
    return { ...validateHeader(parseHeaderJson(hb, path), size - 8 - n, path), headerLength: n };
  } finally {
    await fh.close();
  }
}

/** Read a safetensors file without making tensors (host arrays). */
export async function readSafetensors(path: string): Promise<ParsedSafetensors> {
  return parseSafetensors(await readWhole(path), path);
}

/**
 * Load a safetensors file as tensors: F32, F16, BF16, F64 -> float32; I32, I64, U32, U64, I16, U16,
 * I8, U8 -> int32 (an error names any value outside int32); BOOL -> bool. The caller owns them.
 */
export async function loadSafetensors(path: string): Promise<{ tensors: Record<string, tf.Tensor>; metadata: Record<string, string> }> {
  return decodeSafetensors(await readWhole(path), path);
}

/**
 * Save a module's state dict as F32 safetensors with string metadata, atomically (the one copy of
 * the save the paper packages' experiments share).
 */
export async function saveModule(path: string, module: Module, metadata?: Record<string, string>): Promise<void> {
  await saveSafetensors(path, module.stateDict(), metadata);
}

/**
 * Load weights saved by `saveModule` (or any safetensors file with the module's keys) into `module`,
 * strict: every key, every shape. Returns the file's metadata; the loaded tensors are disposed.
 */
export async function loadModule(path: string, module: Module): Promise<Record<string, string>> {
  const { tensors, metadata } = await loadSafetensors(path);
  try {
    module.loadStateDict(tensors);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  return metadata;
}
