/**
 * Compact storage of learned N:M masks in safetensors (MaskLLM §4.3 / Table 6: a per-task mask
 * costs log2(C(4,2))/4 = 0.65 bits per parameter; the reference ships masks bit-packed with
 * np.packbits, `tool_compress_mask.py`). Two encodings:
 *  - `index`: the candidate index per group of M, ceil(log2 C(M,N)) bits (3 bits for 2:4: 0.75 bits
 *    per weight), LSB-first;
 *  - `bitmask`: one bit per weight, MSB-first within a byte (np.packbits' default order).
 * The container is @mmlm/core's safetensors: each layer's bit stream is a U8 tensor of the packed
 * bytes (as numpy's packbits output would be saved), and the layer shapes, N:M and the encoding are
 * in the metadata. Files from earlier versions, which stored the stream as little-endian int32 words
 * (padded to a multiple of 4 bytes), are still read.
 */
import { encodeSafetensorsHost, parseSafetensors, type TransformerDecoder, writeFileAtomic } from '@mmlm/core';
import { nodeOnly, readFileBytes } from '#platform';
import { binomial } from './config.js';
import { applyMasks, blockLinears, candidateMasks, validateNM } from './model.js';
import { packBits, unpackBits } from './sparse.js';

/** The first `count` bytes of int32 words. */
function wordsToBytes(words: Int32Array, count: number, what: string): Uint8Array {
  if (words.byteLength < count) throw new Error(`${what}: needs ${count} bytes, the file holds ${words.byteLength}`);
  return new Uint8Array(words.buffer, words.byteOffset, count).slice();
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

const MASK_FORMAT = 'mmlm-maskllm-masks/1';

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

/** Bytes of one layer's packed stream: ceil(G * indexBits / 8) (index) or ceil(out*in / 8) (bitmask). */
function packedBytes(shape: [number, number], n: number, m: number, encoding: MaskEncoding): number {
  const size = shape[0] * shape[1];
  return encoding === 'index' ? Math.ceil(((size / m) * indexBits(n, m)) / 8) : Math.ceil(size / 8);
}

/** Serialise masks (by layer path) to safetensors bytes. */
export function encodeMaskFile(file: MaskFile): Uint8Array {
  const { n, m, encoding } = file;
  validateNM(n, m);
  if (encoding !== 'index' && encoding !== 'bitmask')
    throw new Error(`encodeMaskFile: encoding must be 'index' or 'bitmask', got ${encoding}`);
  const tensors: Parameters<typeof encodeSafetensorsHost>[0] = {};
  const shapes: Record<string, [number, number]> = {};
  for (const [path, { shape, mask }] of file.layers) {
    if (mask.length !== shape[0] * shape[1])
      throw new Error(`encodeMaskFile: mask of ${path} has ${mask.length} entries, expected ${shape[0] * shape[1]} ([${shape}])`);
    if (shape[1] % m !== 0) throw new Error(`encodeMaskFile: layer ${path} input dimension ${shape[1]} is not divisible by M=${m}`);
    const data = encoding === 'index' ? packBits(maskToIndices(mask, n, m, `encodeMaskFile(${path})`), indexBits(n, m)) : packbitsBig(mask);
    tensors[`${path}.mask`] = { dtype: 'U8', shape: [data.length], data };
    shapes[path] = shape;
  }
  return encodeSafetensorsHost(tensors, { format: MASK_FORMAT, n: String(n), m: String(m), encoding, shapes: JSON.stringify(shapes) });
}

/** Bits per stored candidate index: ceil(log2 C(M, N)). */
export function indexBits(n: number, m: number): number {
  return Math.max(1, Math.ceil(Math.log2(binomial(m, n))));
}

/**
 * Parse a mask file written by encodeMaskFile (U8 streams) or by earlier versions (the same stream
 * as little-endian int32 words, zero-padded to 4 bytes). `source` names the file in errors.
 */
export function decodeMaskFile(bytes: Uint8Array, source = 'mask file'): MaskFile {
  const { entries, metadata } = parseSafetensors(bytes, source);
  if (metadata.format !== MASK_FORMAT) throw new Error(`${source}: format must be "${MASK_FORMAT}", got "${metadata.format ?? '(none)'}"`);
  const n = Number(metadata.n);
  const m = Number(metadata.m);
  validateNM(n, m);
  const encoding = metadata.encoding as MaskEncoding;
  if (encoding !== 'index' && encoding !== 'bitmask') throw new Error(`${source}: encoding must be 'index' or 'bitmask', got ${encoding}`);
  let shapes: Record<string, [number, number]>;
  try {
    shapes = JSON.parse(metadata.shapes ?? '{}');
  } catch (e) {
    throw new Error(`${source}: metadata "shapes" is not valid JSON (${(e as Error).message})`);
  }
  const byName = new Map(entries.map((e) => [e.name, e]));
  const layers = new Map<string, LayerMask>();
  for (const [path, shape] of Object.entries(shapes)) {
    const t = byName.get(`${path}.mask`);
    if (!t) throw new Error(`${source}: layer ${path} is listed but its tensor "${path}.mask" is missing`);
    if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d > 0) || shape[1] % m !== 0)
      throw new Error(`${source}: layer ${path} shape must be [out, in] with in divisible by M=${m}, got ${JSON.stringify(shape)}`);
    const need = packedBytes(shape, n, m, encoding);
    let stream: Uint8Array;
    if (t.dtype === 'I32') stream = wordsToBytes(t.data as Int32Array, need, `${source}: layer ${path} [${shape}]`);
    else if (t.dtype === 'U8') {
      if (t.data.length < need) throw new Error(`${source}: layer ${path} [${shape}] needs ${need} bytes, got ${t.data.length}`);
      stream = Uint8Array.from(t.data.subarray(0, need));
    } else throw new Error(`${source}: tensor "${path}.mask" must be I32 words or U8 bytes, got ${t.dtype}`);
    if (Math.ceil(need / (t.dtype === 'I32' ? 4 : 1)) !== t.data.length)
      throw new Error(
        `${source}: layer ${path} [${shape}] needs ${need} bytes, its tensor holds ${t.data.length * (t.dtype === 'I32' ? 4 : 1)}`,
      );
    const size = shape[0] * shape[1];
    const mask = encoding === 'index' ? indicesToMask(unpackBits(stream, indexBits(n, m), size / m), n, m) : unpackbitsBig(stream, size);
    layers.set(path, { shape, mask });
  }
  return { n, m, encoding, layers };
}

/** Write masks to a safetensors file atomically (core's writeFileAtomic). Returns the byte size. */
export async function saveMasks(path: string, file: MaskFile): Promise<number> {
  const bytes = encodeMaskFile(file);
  await writeFileAtomic(path, bytes);
  return bytes.length;
}

/** Read a mask file written by saveMasks. Node only (in a browser, `decodeMaskFile` the bytes). */
export function loadMasks(path: string): MaskFile {
  nodeOnly('loadMasks');
  let bytes: Uint8Array;
  try {
    bytes = readFileBytes(path);
  } catch (e) {
    throw new Error(`loadMasks: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeMaskFile(bytes, path);
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
