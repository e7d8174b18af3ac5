/**
 * The browser half of @mmlm/data's platform seam (`#platform`, condition `default`: what a bundler
 * picks); node.ts is the Node half. Same exports, no `node:` import: zlib is pako (a port of zlib
 * itself, so the same checks, such as Adler-32 and CRC-32, and the same messages), driven through
 * its low-level z_stream API to give Node's semantics (an output cap, the input bytes a stream
 * used, a cut stream's partial output); file and path functions throw an error that says they are
 * not available in the browser.
 */
import {
  deflate as pakoDeflate,
  Z_BUF_ERROR,
  Z_DATA_ERROR,
  Z_FINISH,
  Z_MEM_ERROR,
  Z_NEED_DICT,
  Z_OK,
  Z_RLE,
  Z_STREAM_END,
  Z_STREAM_ERROR,
  Z_SYNC_FLUSH,
  ZStream,
  zlibInflate,
  zlibInflateEnd,
  zlibInflateInit2,
  zlibInflateReset,
} from 'pako';
import type * as NodePlatform from './node.js';

export const runtime: 'node' | 'browser' = 'browser';

function notInBrowser(what: string): Error {
  return new Error(
    `${what} is not available in the browser: it reads or writes files, which needs Node. ` +
      'In a browser, pass bytes instead (decodePng / encodePng, decodeWav / encodeWav, decodeIdx, tokenizerFromJSON on a fetch() or File result).',
  );
}

/** A stand-in for a Node module: every property is a function that throws, naming itself. */
function unavailable<T>(name: string): T {
  return new Proxy({} as object, {
    get: (_t, key) =>
      typeof key === 'symbol'
        ? undefined
        : () => {
            throw notInBrowser(`${name}.${key}`);
          },
  }) as T;
}

export const fs = unavailable<typeof NodePlatform.fs>('node:fs');
export const path = unavailable<typeof NodePlatform.path>('node:path');

export function nodeOnly(what: string): void {
  throw notInBrowser(what);
}

/** 2^32: typed arrays past 4 GiB fail in some browsers; the decoders refuse such sizes up front. */
export const MAX_BUFFER_LENGTH = 2 ** 32;

export type { InflateOptions, Zlib } from './node.js';

const CODES: Record<number, string> = {
  [Z_NEED_DICT]: 'Z_NEED_DICT',
  [Z_STREAM_ERROR]: 'Z_STREAM_ERROR',
  [Z_DATA_ERROR]: 'Z_DATA_ERROR',
  [Z_MEM_ERROR]: 'Z_MEM_ERROR',
  [Z_BUF_ERROR]: 'Z_BUF_ERROR',
};

function zlibError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Output buffer per zlib call: Node's default chunkSize (the cap and errors are checked per call, as there). */
const CHUNK = 16 * 1024;

/**
 * Inflates `src` (windowBits 15: zlib, 31: gzip) as Node's inflateSync / gunzipSync do
 * (lib/zlib.js processChunkSync and node_zlib.cc): zlib is called with 16 KiB of output room at a
 * time; after each call a zlib error is thrown first, then "unexpected end of file" (code
 * Z_BUF_ERROR) if the input ran out before the stream ended (unless `partial`: Z_SYNC_FLUSH), then
 * ERR_BUFFER_TOO_LARGE if the output so far passes the cap. For gzip, a non-zero byte after a
 * member starts another member (trailing zero bytes are padding).
 */
function inflate(src: Uint8Array, windowBits: number, { maxOutputLength, partial }: NodePlatform.InflateOptions) {
  const strm = new ZStream();
  const init = zlibInflateInit2(strm, windowBits);
  if (init !== Z_OK) throw zlibError(CODES[init] ?? 'Z_STREAM_ERROR', strm.msg || 'Init error');
  strm.input = src;
  strm.next_in = 0;
  strm.avail_in = src.length;
  const flush = partial ? Z_SYNC_FLUSH : Z_FINISH;
  const pieces: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      strm.output = new Uint8Array(CHUNK);
      strm.next_out = 0;
      strm.avail_out = CHUNK;
      let status = zlibInflate(strm, flush);
      while (windowBits > 15 && status === Z_STREAM_END && strm.avail_in > 0 && src[strm.next_in] !== 0) {
        zlibInflateReset(strm);
        status = zlibInflate(strm, flush);
      }
      if (status === Z_NEED_DICT) throw zlibError('Z_NEED_DICT', 'Missing dictionary');
      if (status !== Z_OK && status !== Z_BUF_ERROR && status !== Z_STREAM_END)
        throw zlibError(CODES[status] ?? 'Z_DATA_ERROR', strm.msg || 'Zlib error');
      if (status !== Z_STREAM_END && strm.avail_out !== 0 && flush === Z_FINISH)
        throw zlibError(status === Z_OK ? 'Z_OK' : 'Z_BUF_ERROR', strm.msg || 'unexpected end of file');
      if (strm.next_out > 0) {
        pieces.push(strm.output.subarray(0, strm.next_out));
        total += strm.next_out;
        if (total > maxOutputLength) throw zlibError('ERR_BUFFER_TOO_LARGE', `Cannot create a Buffer larger than ${maxOutputLength} bytes`);
      }
      if (strm.avail_out !== 0) break; // all input used (or the stream ended)
    }
  } finally {
    zlibInflateEnd(strm);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) {
    bytes.set(p, at);
    at += p.length;
  }
  return { bytes, consumed: strm.next_in };
}

export const zlib: NodePlatform.Zlib = {
  inflate: (src, opts) => inflate(src, 15, opts),
  gunzip: (src, opts) => inflate(src, 31, opts).bytes,
  deflate: (src) => pakoDeflate(src, { level: 9, strategy: Z_RLE }),
};

// Both halves export the same names with the same types (a compile-time check, erased).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameExports: Same<typeof NodePlatform, typeof import('./browser.js')> = true;
void sameExports;
