/**
 * IDX reader (the MNIST file format, LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte
 * magic number (two zero bytes, a type code, the number of dimensions), one big-endian uint32 per
 * dimension, then the data in row-major order, big-endian. Gzipped files (`.gz`, magic 1f 8b) are
 * inflated first. The byte length must match the dimensions exactly.
 */
import { readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  data: IdxData;
}

const TYPES: Record<number, { dtype: IdxDtype; size: number }> = {
  8: { dtype: 'uint8', size: 1 },
  9: { dtype: 'int8', size: 1 },
  11: { dtype: 'int16', size: 2 },
  12: { dtype: 'int32', size: 4 },
  13: { dtype: 'float32', size: 4 },
  14: { dtype: 'float64', size: 8 },
};

function hex(b: Uint8Array, n: number): string {
  return Array.from(b.subarray(0, n), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Decodes IDX bytes (gzipped or not); `name` (a path) is used in errors. */
export function decodeIdx(input: Uint8Array, name = '<buffer>'): IdxArray {
  const fail = (msg: string): never => {
    throw new Error(`IDX ${name}: ${msg}`);
  };
  let bytes = input;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = new Uint8Array(gunzipSync(bytes));
    } catch (e) {
      fail(`corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4) fail(`file is ${bytes.length} bytes, too short for the 4-byte magic number`);
  if (bytes[0] !== 0 || bytes[1] !== 0) fail(`bad magic number ${hex(bytes, 4)}: expected 00 00 <type> <dims> (is this an IDX file?)`);
  const type = TYPES[bytes[2]!];
  if (!type) fail(`unknown data type code 0x${bytes[2]!.toString(16).padStart(2, '0')}; expected 08, 09, 0b, 0c, 0d or 0e`);
  const ndims = bytes[3]!;
  if (ndims < 1) fail('number of dimensions is 0, expected >= 1');
  const headerLen = 4 + 4 * ndims;
  if (bytes.length < headerLen) fail(`truncated header: ${ndims} dimensions need ${headerLen} bytes, file has ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let d = 0; d < ndims; d++) shape.push(view.getUint32(4 + 4 * d, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * type!.size;
  const have = bytes.length - headerLen;
  if (have < need) fail(`truncated: dims [${shape.join(', ')}] of ${type!.dtype} need ${need} data bytes, file has ${have}`);
  if (have > need) fail(`${have - need} unexpected bytes after the data for dims [${shape.join(', ')}] (corrupt or wrong header)`);
  const { dtype, size } = type!;
  let data: IdxData;
  if (dtype === 'uint8') data = bytes.slice(headerLen, headerLen + need);
  else if (dtype === 'int8') data = new Int8Array(bytes.slice(headerLen, headerLen + need).buffer);
  else {
    data =
      dtype === 'int16'
        ? new Int16Array(count)
        : dtype === 'int32'
          ? new Int32Array(count)
          : dtype === 'float32'
            ? new Float32Array(count)
            : new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const at = headerLen + i * size;
      data[i] =
        dtype === 'int16'
          ? view.getInt16(at, false)
          : dtype === 'int32'
            ? view.getInt32(at, false)
            : dtype === 'float32'
              ? view.getFloat32(at, false)
              : view.getFloat64(at, false);
    }
  }
  return { dtype, shape, data };
}

/** Reads an IDX file (optionally gzipped). */
export function readIdx(path: string): IdxArray {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`IDX ${path}: file not found`);
  }
  if (!st.isFile()) throw new Error(`IDX ${path}: not a regular file`);
  return decodeIdx(new Uint8Array(readFileSync(path)), path);
}

export interface MnistSet {
  /** Row-major uint8 pixels, [count, rows, cols]. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** Reads an MNIST-style image file ([N, rows, cols] uint8) and label file ([N] uint8) and checks they agree. */
export function readMnist(imagesPath: string, labelsPath: string): MnistSet {
  const im = readIdx(imagesPath);
  const lb = readIdx(labelsPath);
  if (im.dtype !== 'uint8' || im.shape.length !== 3)
    throw new Error(`MNIST ${imagesPath}: expected uint8 images with 3 dims [N, rows, cols], got ${im.dtype} [${im.shape.join(', ')}]`);
  if (lb.dtype !== 'uint8' || lb.shape.length !== 1)
    throw new Error(`MNIST ${labelsPath}: expected uint8 labels with 1 dim [N], got ${lb.dtype} [${lb.shape.join(', ')}]`);
  if (im.shape[0] !== lb.shape[0])
    throw new Error(`MNIST: ${imagesPath} has ${im.shape[0]} images but ${labelsPath} has ${lb.shape[0]} labels`);
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
