/**
 * Compact storage of learned N:M masks in safetensors (MaskLLM §4.3 / Table 6: a per-task mask
 * costs log2(C(4,2))/4 = 0.65 bits per parameter; the reference ships masks bit-packed with
 * np.packbits, `tool_compress_mask.py`). Two encodings:
 *  - `index`: the candidate index per group of M, ceil(log2 C(M,N)) bits (3 bits for 2:4: 0.75 bits
 *    per weight), LSB-first;
 *  - `bitmask`: one bit per weight, MSB-first within a byte (np.packbits' default order).
 * The safetensors container (8-byte LE header length, JSON header, raw little-endian bytes) is
 * written here for U8/F32/I32 tensors.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { TransformerDecoder } from '@mmlm/core';
import { binomial } from './config.js';
import { applyMasks, blockLinears, candidateMasks, validateNM } from './model.js';
import { packBits, unpackBits } from './sparse.js';

export type SafeDType = 'U8' | 'I32' | 'F32';

export interface RawTensor {
  dtype: SafeDType;
  shape: number[];
  data: Uint8Array | Int32Array | Float32Array;
}

const DTYPE_BYTES: Record<SafeDType, number> = { U8: 1, I32: 4, F32: 4 };

/** Serialise tensors (and string metadata) to safetensors bytes. */
export function encodeSafetensors(tensors: Record<string, RawTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name]!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count)
      throw new Error(`encodeSafetensors: tensor ${name} has shape [${t.shape}] (${count} entries) but ${t.data.length} values`);
    const bytes = count * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const name of names) {
    const t = tensors[name]!;
    const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(src, pos);
    pos += src.length;
  }
  return out;
}

/** Parse safetensors bytes (U8, I32, F32 tensors). Corrupt input gives an error saying what is wrong. */
export function decodeSafetensors(bytes: Uint8Array): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`safetensors: file too short (${bytes.length} bytes, need at least 8 for the header length)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.length - 8)
    throw new Error(`safetensors: header length ${n} exceeds the file (${bytes.length - 8} bytes after the length)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`safetensors: header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + n;
  const tensors: Record<string, RawTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!(e.dtype in DTYPE_BYTES)) throw new Error(`safetensors: tensor ${name} has dtype ${e.dtype}; expected one of U8, I32, F32`);
    const dtype = e.dtype as SafeDType;
    const count = e.shape.reduce((a, b) => a * b, 1);
    const [s, t] = e.data_offsets;
    if (t - s !== count * DTYPE_BYTES[dtype])
      throw new Error(
        `safetensors: tensor ${name} [${e.shape}] ${dtype} needs ${count * DTYPE_BYTES[dtype]} bytes, its offsets span ${t - s}`,
      );
    if (dataStart + t > bytes.length)
      throw new Error(`safetensors: tensor ${name} ends at byte ${dataStart + t}, past the end of the file (${bytes.length} bytes)`);
    const raw = bytes.slice(dataStart + s, dataStart + t);
    const data = dtype === 'U8' ? raw : dtype === 'I32' ? new Int32Array(raw.buffer) : new Float32Array(raw.buffer);
    tensors[name] = { dtype, shape: e.shape, data };
  }
  return { tensors, metadata };
}

export type MaskEncoding = 'index' | 'bitmask';

export interface LayerMask {
  /** Weight shape [out, in]. */
  shape: [number, number];
  /** 0/1 mask [out, in], row-major. */
  mask: Uint8Array;
}

export interface MaskFile {
  n: number;
  m: number;
  encoding: MaskEncoding;
  layers: Map<string, LayerMask>;
}

export const MASK_FORMAT = 'mmlm-maskllm-masks/1';

/** MSB-first bit packing (np.packbits). */
function packbitsBig(bits: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i]) out[i >> 3] = (out[i >> 3] as number) | (0x80 >> (i & 7));
  return out;
}

function unpackbitsBig(bytes: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = ((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1;
  return out;
}

/** Candidate index per group of a 0/1 N:M mask (errors name the first invalid group). */
export function maskToIndices(mask: Uint8Array, n: number, m: number, what = 'mask'): Int32Array {
  const cands = candidateMasks(n, m);
  const lookup = new Map<number, number>();
  cands.forEach((row, k) =>
    lookup.set(
      row.reduce((a, v, j) => a | (v << j), 0),
      k,
    ),
  );
  const G = mask.length / m;
  const idx = new Int32Array(G);
  for (let g = 0; g < G; g++) {
    let key = 0;
    for (let j = 0; j < m; j++) key |= (mask[g * m + j] ? 1 : 0) << j;
    const k = lookup.get(key);
    if (k === undefined)
      throw new Error(
        `${what}: group ${g} is [${Array.from(mask.subarray(g * m, g * m + m))}], not a valid ${n}:${m} pattern (exactly ${n} ones)`,
      );
    idx[g] = k;
  }
  return idx;
}

/** The 0/1 mask of candidate indices (inverse of maskToIndices). */
export function indicesToMask(idx: Int32Array, n: number, m: number): Uint8Array {
  const cands = candidateMasks(n, m);
  const out = new Uint8Array(idx.length * m);
  for (let g = 0; g < idx.length; g++) {
    const row = cands[idx[g] as number];
    if (!row) throw new Error(`mask file: candidate index ${idx[g]} at group ${g} is out of range [0, ${cands.length})`);
    for (let j = 0; j < m; j++) out[g * m + j] = row[j] as number;
  }
  return out;
}

/** Serialise masks (by layer path) to safetensors bytes. */
export function encodeMaskFile(file: MaskFile): Uint8Array {
  const { n, m, encoding } = file;
  validateNM(n, m);
  if (encoding !== 'index' && encoding !== 'bitmask')
    throw new Error(`encodeMaskFile: encoding must be 'index' or 'bitmask', got ${encoding}`);
  const tensors: Record<string, RawTensor> = {};
  const shapes: Record<string, [number, number]> = {};
  for (const [path, { shape, mask }] of file.layers) {
    if (mask.length !== shape[0] * shape[1])
      throw new Error(`encodeMaskFile: mask of ${path} has ${mask.length} entries, expected ${shape[0] * shape[1]} ([${shape}])`);
    if (shape[1] % m !== 0) throw new Error(`encodeMaskFile: layer ${path} input dimension ${shape[1]} is not divisible by M=${m}`);
    const data = encoding === 'index' ? packBits(maskToIndices(mask, n, m, `encodeMaskFile(${path})`), indexBits(n, m)) : packbitsBig(mask);
    tensors[`${path}.mask`] = { dtype: 'U8', shape: [data.length], data };
    shapes[path] = shape;
  }
  return encodeSafetensors(tensors, { format: MASK_FORMAT, n: String(n), m: String(m), encoding, shapes: JSON.stringify(shapes) });
}

/** Bits per stored candidate index: ceil(log2 C(M, N)). */
export function indexBits(n: number, m: number): number {
  return Math.max(1, Math.ceil(Math.log2(binomial(m, n))));
}

/** Parse a mask file written by encodeMaskFile. */
export function decodeMaskFile(bytes: Uint8Array): MaskFile {
  const { tensors, metadata } = decodeSafetensors(bytes);
  if (metadata.format !== MASK_FORMAT) throw new Error(`mask file: format must be "${MASK_FORMAT}", got "${metadata.format ?? '(none)'}"`);
  const n = Number(metadata.n);
  const m = Number(metadata.m);
  validateNM(n, m);
  const encoding = metadata.encoding as MaskEncoding;
  if (encoding !== 'index' && encoding !== 'bitmask') throw new Error(`mask file: encoding must be 'index' or 'bitmask', got ${encoding}`);
  const shapes = JSON.parse(metadata.shapes ?? '{}') as Record<string, [number, number]>;
  const layers = new Map<string, LayerMask>();
  for (const [path, shape] of Object.entries(shapes)) {
    const t = tensors[`${path}.mask`];
    if (!t) throw new Error(`mask file: layer ${path} is listed but its tensor "${path}.mask" is missing`);
    const size = shape[0] * shape[1];
    const mask =
      encoding === 'index'
        ? indicesToMask(unpackBits(t.data as Uint8Array, indexBits(n, m), size / m), n, m)
        : unpackbitsBig(t.data as Uint8Array, size);
    if (encoding === 'bitmask' && t.data.length !== Math.ceil(size / 8))
      throw new Error(`mask file: layer ${path} [${shape}] needs ${Math.ceil(size / 8)} bytes, got ${t.data.length}`);
    layers.set(path, { shape, mask });
  }
  return { n, m, encoding, layers };
}

/** Write masks to a safetensors file (atomically: temp file, then rename). Returns the byte size. */
export function saveMasks(path: string, file: MaskFile): number {
  const bytes = encodeMaskFile(file);
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
  return bytes.length;
}

export function loadMasks(path: string): MaskFile {
  return decodeMaskFile(new Uint8Array(readFileSync(path)));
}

/** Masks by path plus their shapes from a decoder's block linears (for MaskFile.layers). */
export function withShapes(decoder: TransformerDecoder, masks: Map<string, Uint8Array>): Map<string, LayerMask> {
  const layers = new Map(blockLinears(decoder));
  const out = new Map<string, LayerMask>();
  for (const [p, mask] of masks) {
    const l = layers.get(p);
    if (!l) throw new Error(`withShapes: the model has no block linear "${p}"`);
    out.set(p, { shape: [l.outFeatures, l.inFeatures], mask });
  }
  return out;
}

/**
 * Check a mask file against a decoder: the same layers with the same shapes. Errors list every
 * missing, unexpected and mis-shaped layer with expected and actual shapes.
 */
export function checkMaskFile(decoder: TransformerDecoder, file: MaskFile): void {
  const layers = new Map(blockLinears(decoder));
  const problems: string[] = [];
  for (const [p, l] of layers) {
    const f = file.layers.get(p);
    if (!f) problems.push(`missing layer ${p} [${l.outFeatures}, ${l.inFeatures}]`);
    else if (f.shape[0] !== l.outFeatures || f.shape[1] !== l.inFeatures)
      problems.push(`layer ${p}: the model's weight is [${l.outFeatures}, ${l.inFeatures}], the file's mask is [${f.shape}]`);
  }
  for (const p of file.layers.keys()) if (!layers.has(p)) problems.push(`unexpected layer ${p} (not in the model)`);
  if (problems.length) throw new Error(`mask file does not match the model: ${problems.join('; ')}`);
}

/** Load a mask file into a dense decoder (W <- W * M), after checking it matches the model. */
export function applyMaskFile(decoder: TransformerDecoder, file: MaskFile): void {
  checkMaskFile(decoder, file);
  applyMasks(decoder, new Map([...file.layers].map(([p, l]) => [p, l.mask])));
}
