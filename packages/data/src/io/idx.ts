/**
 * IDX reader (the MNIST file format, LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte
 * magic number (two zero bytes, a type code, the number of dimensions), one big-endian uint32 per
 * dimension, then the data in row-major order, big-endian. Gzipped files (`.gz`, magic 1f 8b) are
 * inflated first. The byte length must match the dimensions exactly.
 *
 * Memory is bounded by `maxBytes` (the data size the header implies, default 2^30): a gzipped file
 * is not inflated whole before its header is read, because a few megabytes of gzip can inflate to
 * gigabytes. Only the first compressed bytes are inflated to read the header; the full inflate is
 * then capped (zlib `maxOutputLength`) at the header plus the data size the dimensions imply, and
 * must produce exactly that. Every failure caused by the file is an `IdxError`.
 */
import { fs, MAX_BUFFER_LENGTH, nodeOnly, zlib } from '#platform';
import { checkLimitOption, IdxError, messageOf } from './errors.js';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  data: IdxData;
}

/** Default `maxBytes`: 2^30 bytes (1 GiB) of data. */
export const IDX_DEFAULT_MAX_BYTES = 2 ** 30;

export interface ReadIdxOptions {
  /**
   * Largest data size accepted, in bytes (product of the dimensions times the element size; default
   * `IDX_DEFAULT_MAX_BYTES` = 2^30), checked from the header before the data is inflated or copied.
   * `Infinity` for no limit (up to what a buffer can hold). A larger file is an `IdxError` of kind
   * 'limit'.
   */
  maxBytes?: number;
}

const TYPES: Record<number, { dtype: IdxDtype; size: number }> = {
  8: { dtype: 'uint8', size: 1 },
  9: { dtype: 'int8', size: 1 },
  11: { dtype: 'int16', size: 2 },
  12: { dtype: 'int32', size: 4 },
  13: { dtype: 'float32', size: 4 },
  14: { dtype: 'float64', size: 8 },
};

/** Longest possible header: magic + 255 dimensions. */
const MAX_HEADER = 4 + 4 * 255;
/** Compressed bytes inflated to find the header (deflate expands at most ~1032x: <= 4.3 MB out). */
const HEAD_PREFIX = 4096;

function hex(b: Uint8Array, n: number): string {
  return Array.from(b.subarray(0, n), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

interface IdxHeader {
  dtype: IdxDtype;
  size: number;
  shape: number[];
  headerLen: number;
  /** Data bytes the dimensions imply. */
  need: number;
}

/**
 * Parses the header from the first bytes of the (inflated) file. `complete` says whether `head` is
 * the whole file (else a short `head` returns undefined, to be retried with more bytes).
 */
function parseHeader(head: Uint8Array, complete: boolean, fail: (msg: string) => never): IdxHeader | undefined {
  if (head.length < 4) {
    if (complete) fail(`file is ${head.length} bytes, too short for the 4-byte magic number`);
    return undefined;
  }
  if (head[0] !== 0 || head[1] !== 0) fail(`bad magic number ${hex(head, 4)}: expected 00 00 <type> <dims> (is this an IDX file?)`);
  const type = TYPES[head[2]!];
  if (!type) fail(`unknown data type code 0x${head[2]!.toString(16).padStart(2, '0')}; expected 08, 09, 0b, 0c, 0d or 0e`);
  const ndims = head[3]!;
  if (ndims < 1) fail('number of dimensions is 0, expected >= 1');
  const headerLen = 4 + 4 * ndims;
  if (head.length < headerLen) {
    if (complete) fail(`truncated header: ${ndims} dimensions need ${headerLen} bytes, file has ${head.length}`);
    return undefined;
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const shape: number[] = [];
  for (let d = 0; d < ndims; d++) shape.push(view.getUint32(4 + 4 * d, false));
  // The product of up to 255 uint32 dims can exceed 2^53; it is only compared with limits, and any
  // value that large is over every limit.
  const need = shape.reduce((a, b) => a * b, 1) * type!.size;
  return { dtype: type!.dtype, size: type!.size, shape, headerLen, need };
}

/**
 * Inflates a gzipped IDX file without ever producing more than the header (bounded) or header +
 * data (<= maxBytes + MAX_HEADER) bytes.
 */
function gunzipIdx(
  input: Uint8Array,
  maxBytes: number,
  fail: (msg: string, kind?: 'limit') => never,
): { bytes: Uint8Array; header: IdxHeader } {
  const cap = (n: number) => Math.min(n, MAX_BUFFER_LENGTH);
  /** gunzip with the output capped; `partial`: a cut stream returns what it holds. */
  const gz = (src: Uint8Array, maxOutputLength: number, partial: boolean, tooLarge: () => never): Uint8Array => {
    try {
      return zlib.gunzip(src, { maxOutputLength: cap(maxOutputLength), partial });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge();
      if (!partial && (e as { code?: string }).code === 'Z_BUF_ERROR') throw e; // the stream ends early: the caller measures it
      return fail(`corrupt gzip data (${messageOf(e)})`);
    }
  };
  const overLimit = (): never =>
    fail(
      `gzip data inflates to more than ${MAX_HEADER + maxBytes} bytes, more than maxBytes = ${maxBytes} allows; pass { maxBytes } to raise the limit`,
      'limit',
    );
  // 1. The header, from the first compressed bytes only (<= 4096 * 1032 bytes out).
  const prefix = input.subarray(0, HEAD_PREFIX);
  let header = parseHeader(gz(prefix, 1 << 23, true, overLimit), prefix.length === input.length, fail);
  // Rare: a long gzip name/comment or empty deflate blocks push the header further; inflate the
  // whole stream, capped at what a file within the limit can hold.
  header ??= parseHeader(gz(input, MAX_HEADER + maxBytes + 1, true, overLimit), true, fail)!;
  const h = header;
  const dims = `dims [${h.shape.join(', ')}] of ${h.dtype}`;
  if (h.need > maxBytes)
    fail(`${dims} need ${h.need} data bytes, more than maxBytes = ${maxBytes}; pass { maxBytes } to raise the limit`, 'limit');
  // 2. The whole file, capped one byte past the size the header implies.
  const total = h.headerLen + h.need;
  const extra = (): never =>
    fail(`gzip data inflates to more than ${total} bytes: unexpected bytes after the data for ${dims} (corrupt or wrong header)`);
  let bytes: Uint8Array;
  try {
    bytes = gz(input, total + 1, false, extra);
  } catch (e) {
    if (e instanceof IdxError) throw e;
    // Z_BUF_ERROR: the stream stops before its end (and its CRC-32 trailer); say how much it holds.
    const held = gz(input, total + 1, true, extra).length;
    if (held >= total) return fail('corrupt gzip data: the stream ends before its CRC-32 trailer (unexpected end of file)');
    return fail(`truncated: ${dims} need ${h.need} data bytes, the gzip stream ends after ${held - h.headerLen}`);
  }
  if (bytes.length > total) extra();
  return { bytes, header: h };
}

/** A copy of bytes[start, end) with its own exactly-sized ArrayBuffer (Buffer#slice would be a view). */
function copyBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(bytes.subarray(start, end));
  return out;
}

/**
 * Decodes IDX bytes (gzipped or not); `name` (a path) is used in errors. Failures caused by the
 * file are `IdxError`s.
 */
export function decodeIdx(input: Uint8Array, name = '<buffer>', opts: ReadIdxOptions = {}): IdxArray {
  const maxBytes = checkLimitOption(`decodeIdx ${name}`, 'maxBytes', opts.maxBytes ?? IDX_DEFAULT_MAX_BYTES);
  const fail = (msg: string, kind: 'corrupt' | 'limit' = 'corrupt'): never => {
    throw new IdxError(name, msg, kind);
  };
  let bytes = input;
  let header: IdxHeader;
  if (input.length >= 2 && input[0] === 0x1f && input[1] === 0x8b) ({ bytes, header } = gunzipIdx(input, maxBytes, fail));
  else header = parseHeader(input, true, fail)!;
  const { dtype, size, shape, headerLen, need } = header;
  const dims = `dims [${shape.join(', ')}] of ${dtype}`;
  const have = bytes.length - headerLen;
  if (have < need) fail(`truncated: ${dims} need ${need} data bytes, file has ${have}`);
  if (need > maxBytes)
    fail(`${dims} need ${need} data bytes, more than maxBytes = ${maxBytes}; pass { maxBytes } to raise the limit`, 'limit');
  if (have > need) fail(`${have - need} unexpected bytes after the data for dims [${shape.join(', ')}] (corrupt or wrong header)`);
  const count = need / size;
  // One copy into an array that owns an exactly-sized buffer (callers may use `data.buffer`); the
  // input (the caller's bytes or the inflated file) is not kept alive by the result.
  if (dtype === 'uint8') return { dtype, shape, data: copyBytes(bytes, headerLen, headerLen + need) };
  if (dtype === 'int8') return { dtype, shape, data: new Int8Array(copyBytes(bytes, headerLen, headerLen + need).buffer) };
  const view = new DataView(bytes.buffer, bytes.byteOffset + headerLen, need);
  let data: IdxData;
  if (dtype === 'int16') {
    const a = new Int16Array(count);
    for (let i = 0; i < count; i++) a[i] = view.getInt16(2 * i, false);
    data = a;
  } else if (dtype === 'int32') {
    const a = new Int32Array(count);
    for (let i = 0; i < count; i++) a[i] = view.getInt32(4 * i, false);
    data = a;
  } else if (dtype === 'float32') {
    const a = new Float32Array(count);
    for (let i = 0; i < count; i++) a[i] = view.getFloat32(4 * i, false);
    data = a;
  } else {
    const a = new Float64Array(count);
    for (let i = 0; i < count; i++) a[i] = view.getFloat64(8 * i, false);
    data = a;
  }
  return { dtype, shape, data };
}

/**
 * Reads an IDX file (optionally gzipped). A file larger than any IDX file within `maxBytes` could
 * be (plain or gzipped) is refused before it is read. Node only (in a browser, `decodeIdx` the bytes).
 */
export function readIdx(path: string, opts: ReadIdxOptions = {}): IdxArray {
  nodeOnly('readIdx');
  const maxBytes = checkLimitOption(`readIdx ${path}`, 'maxBytes', opts.maxBytes ?? IDX_DEFAULT_MAX_BYTES);
  let st: ReturnType<typeof fs.statSync>;
  try {
    st = fs.statSync(path);
  } catch (e) {
    throw new IdxError(path, 'file not found', 'io', { cause: e });
  }
  if (!st.isFile()) throw new IdxError(path, 'not a regular file', 'io');
  // gzip stores incompressible data with 5 bytes of overhead per 64 KiB block; allow that plus a
  // generous 64 KiB for the gzip header's optional name/comment/extra fields.
  const largest = MAX_HEADER + maxBytes + Math.ceil((MAX_HEADER + maxBytes) / 65535) * 5 + 65536;
  if (st.size > largest)
    throw new IdxError(
      path,
      `file is ${st.size} bytes, larger than an IDX file with at most maxBytes = ${maxBytes} data bytes can be; pass { maxBytes } to raise the limit`,
      'limit',
    );
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path); // a Buffer is a Uint8Array: no copy
  } catch (e) {
    throw new IdxError(path, `cannot read: ${messageOf(e)}`, 'io', { cause: e });
  }
  return decodeIdx(bytes, path, opts);
}

export interface MnistSet {
  /** Row-major uint8 pixels, [count, rows, cols]. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/**
 * Reads an MNIST-style image file ([N, rows, cols] uint8) and label file ([N] uint8) and checks
 * they agree; a mismatch is an `IdxError` naming the file.
 */
export function readMnist(imagesPath: string, labelsPath: string, opts: ReadIdxOptions = {}): MnistSet {
  nodeOnly('readMnist');
  const im = readIdx(imagesPath, opts);
  const lb = readIdx(labelsPath, opts);
  if (im.dtype !== 'uint8' || im.shape.length !== 3)
    throw new IdxError(
      imagesPath,
      `MNIST: expected uint8 images with 3 dims [N, rows, cols], got ${im.dtype} [${im.shape.join(', ')}]`,
      'unsupported',
    );
  if (lb.dtype !== 'uint8' || lb.shape.length !== 1)
    throw new IdxError(labelsPath, `MNIST: expected uint8 labels with 1 dim [N], got ${lb.dtype} [${lb.shape.join(', ')}]`, 'unsupported');
  if (im.shape[0] !== lb.shape[0])
    throw new IdxError(labelsPath, `MNIST: ${imagesPath} has ${im.shape[0]} images but ${labelsPath} has ${lb.shape[0]} labels`);
  return { images: im.data as Uint8Array, labels: lb.data as Uint8Array, count: im.shape[0]!, rows: im.shape[1]!, cols: im.shape[2]! };
}

/** Image `i` of an MNIST set as float32 [rows, cols, 1] in [0, 1]. */
export function mnistImage(set: MnistSet, i: number): Float32Array {
  if (!Number.isInteger(i) || i < 0 || i >= set.count)
    throw new Error(`mnistImage: index must be an integer in [0, ${set.count}), got ${i}`);
  const n = set.rows * set.cols;
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) out[k] = set.images[i * n + k]! / 255;
  return out;
}
