/**
 * safetensors read/write (huggingface/safetensors format): an 8-byte little-endian u64 header
 * length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, optional
 * "__metadata__": {string: string}}, then the raw little-endian tensor bytes (offsets relative to
 * the end of the header). Written by hand: the npm `safetensors` package is abandoned and
 * @huggingface/hub only parses headers.
 *
 * Writing follows the reference serializer: tensors sorted by dtype alignment (descending), then
 * by name; laid out contiguously; the header padded with spaces to a multiple of 8 bytes.
 * Reading validates everything before allocating: header length bound, JSON, dtypes, shapes,
 * byte ranges (size, bounds, no overlap, full coverage).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { tf } from '../tf.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'I8' | 'BOOL' | 'F64';

const DTYPE_SIZE: Record<SafetensorsDtype, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, U8: 1, I8: 1, BOOL: 1 };

/** Headers larger than this are rejected (the reference uses 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Decoded to float32 (float dtypes, u8/i8/bool) or int32 (i32, i64). */
  data: Float32Array | Int32Array;
}

export interface ParsedSafetensors {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  constructor(source: string, problem: string) {
    super(`safetensors ${source}: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decode(bytes: Uint8Array, dtype: SafetensorsDtype, n: number, source: string, name: string): Float32Array | Int32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(8 * i, true);
        if (v > 2147483647n || v < -2147483648n)
          throw new SafetensorsError(source, `tensor "${name}" (I64) element ${i} = ${v} does not fit in int32 (tfjs has no int64)`);
        out[i] = Number(v);
      }
      return out;
    }
    case 'U8':
    case 'BOOL':
      return Float32Array.from(bytes.subarray(0, n));
    case 'I8':
      return Float32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, n));
  }
}

/** Parse and validate safetensors bytes into host arrays (no tensors). */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): ParsedSafetensors {
  if (bytes.byteLength < 8) throw new SafetensorsError(source, `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES))
    throw new SafetensorsError(source, `header length ${n64} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const n = Number(n64);
  if (8 + n > bytes.byteLength)
    throw new SafetensorsError(source, `header length ${n} runs past the end of the file (${bytes.byteLength} bytes): truncated?`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(source, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new SafetensorsError(source, 'header must be a JSON object');
  const dataLen = bytes.byteLength - 8 - n;
  const metadata: Record<string, string> = {};
  const ranges: { name: string; begin: number; end: number }[] = [];
  const specs: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, spec] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
        throw new SafetensorsError(source, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(spec)) {
        if (typeof v !== 'string') throw new SafetensorsError(source, `__metadata__["${k}"] must be a string, got ${typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    const s = spec as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof s !== 'object' || s === null) throw new SafetensorsError(source, `entry "${name}" must be an object`);
    if (typeof s.dtype !== 'string' || !(s.dtype in DTYPE_SIZE))
      throw new SafetensorsError(
        source,
        `tensor "${name}": unsupported dtype ${JSON.stringify(s.dtype)}; expected one of ${Object.keys(DTYPE_SIZE).join(', ')}`,
      );
    if (!Array.isArray(s.shape) || !s.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(
        source,
        `tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(s.shape)}`,
      );
    const off = s.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1])
      throw new SafetensorsError(
        source,
        `tensor "${name}": data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(off)}`,
      );
    const dtype = s.dtype as SafetensorsDtype;
    const count = (s.shape as number[]).reduce((a, b) => a * b, 1);
    const want = count * DTYPE_SIZE[dtype];
    const [begin, end] = off as [number, number];
    if (end - begin !== want)
      throw new SafetensorsError(
        source,
        `tensor "${name}": shape [${s.shape}] x ${dtype} needs ${want} bytes but data_offsets span ${end - begin}`,
      );
    if (end > dataLen)
      throw new SafetensorsError(
        source,
        `tensor "${name}": data_offsets end ${end} is past the data section (${dataLen} bytes): truncated?`,
      );
    ranges.push({ name, begin, end });
    specs.push({ name, dtype, shape: s.shape as number[], begin, end });
  }
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const r of ranges) {
    if (r.begin < pos)
      throw new SafetensorsError(source, `tensor "${r.name}" overlaps the previous tensor (begins at ${r.begin}, previous ends at ${pos})`);
    if (r.begin > pos) throw new SafetensorsError(source, `bytes ${pos}..${r.begin} of the data section belong to no tensor`);
    pos = r.end;
  }
  if (pos !== dataLen) throw new SafetensorsError(source, `data section is ${dataLen} bytes but the tensors cover ${pos}`);
  const base = 8 + n;
  const entries = specs.map((s) => ({
    name: s.name,
    dtype: s.dtype,
    shape: s.shape,
    data: decode(
      bytes.subarray(base + s.begin, base + s.end),
      s.dtype,
      s.shape.reduce((a, b) => a * b, 1),
      source,
      s.name,
    ),
  }));
  return { entries, metadata };
}

/** Decode to tensors (float32 or int32). The caller owns them. */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = '<buffer>',
): { tensors: Record<string, tf.Tensor>; metadata: Record<string, string> } {
  const { entries, metadata } = parseSafetensors(bytes, source);
  const tensors: Record<string, tf.Tensor> = {};
  for (const e of entries) tensors[e.name] = tf.tensor(e.data, e.shape, e.data instanceof Int32Array ? 'int32' : 'float32');
  return { tensors, metadata };
}

export interface HostTensor {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Encode host arrays (F32 / I32) with the reference serializer's layout. */
export function encodeSafetensorsHost(tensors: Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort((a, b) => {
    const da = DTYPE_SIZE[tensors[a]!.dtype];
    const db = DTYPE_SIZE[tensors[b]!.dtype];
    return db - da || (a < b ? -1 : a > b ? 1 : 0);
  });
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new Error(`saveSafetensors: metadata["${k}"] must be a string, got ${typeof v}`);
    header.__metadata__ = metadata;
  }
  let off = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new Error('saveSafetensors: "__metadata__" is reserved and cannot be a tensor name');
    const t = tensors[name]!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`saveSafetensors: tensor "${name}" has ${t.data.length} values for shape [${t.shape}]`);
    const size = count * 4;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + size] };
    off += size;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  const pad = (8 - (hb.byteLength % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    hb = enc.encode(json);
  }
  const out = new Uint8Array(8 + hb.byteLength + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hb.byteLength), true);
  out.set(hb, 8);
  let p = 8 + hb.byteLength;
  for (const name of names) {
    const t = tensors[name]!;
    for (let i = 0; i < t.data.length; i++, p += 4) {
      if (t.dtype === 'F32') dv.setFloat32(p, t.data[i] as number, true);
      else dv.setInt32(p, t.data[i] as number, true);
    }
  }
  return out;
}

/** Encode tensors (float32 -> F32, int32 -> I32; bool is written as I32). Reads them to the host. */
export function encodeSafetensors(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Uint8Array {
  const host: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype === 'float32') host[name] = { dtype: 'F32', shape: t.shape, data: t.dataSync() as Float32Array };
    else if (t.dtype === 'int32' || t.dtype === 'bool') host[name] = { dtype: 'I32', shape: t.shape, data: Int32Array.from(t.dataSync()) };
    else throw new Error(`saveSafetensors: tensor "${name}" has dtype ${t.dtype}; only float32, int32 and bool can be written`);
  }
  return encodeSafetensorsHost(host, metadata);
}

/** Write bytes atomically: a temp file in the same folder, then rename. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

/** Save tensors as safetensors (f32 / i32), atomically. */
export async function saveSafetensors(path: string, tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Promise<void> {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Load a safetensors file (f32, f16, bf16, f64 -> float32; i32, i64 -> int32; u8, i8, bool -> float32). */
export async function loadSafetensors(path: string): Promise<{ tensors: Record<string, tf.Tensor>; metadata: Record<string, string> }> {
  // Check the header length against the file size before reading the whole file.
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new SafetensorsError(path, e.code === 'ENOENT' ? 'file not found' : e.message);
  });
  try {
    const { size } = await fh.stat();
    if (size < 8) throw new SafetensorsError(path, `file is ${size} bytes, shorter than the 8-byte header length`);
    const head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    const n = head.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(path, `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
    if (Number(n) + 8 > size)
      throw new SafetensorsError(path, `header length ${n} runs past the end of the file (${size} bytes): truncated?`);
  } finally {
    await fh.close();
  }
  return decodeSafetensors(new Uint8Array(readFileSync(path)), path);
}
