/**
 * The Node half of @mmlm/data's platform seam (`#platform` in package.json `imports`; the browser
 * half is browser.ts, with the same exports), as in @mmlm/core:
 *   Node (condition `node`)       -> this file: node:fs, node:path, node:zlib
 *   bundlers (condition `default`) -> browser.ts: zlib from pako; files throw "not available in the browser"
 * Everything in this package that needs a `node:` module gets it from here, so the main entry
 * bundles for a browser with no shims. The byte-level codecs (decodePng / encodePng, decodeWav /
 * encodeWav, decodeIdx, tokenizerFromJSON) work on both; the path-taking functions need Node.
 */
import { constants as bufferConstants } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as nodeZlib from 'node:zlib';

export const runtime: 'node' | 'browser' = 'node';

export { fs, path };

/** Throws in a browser bundle (naming `what`); nothing in Node. */
export function nodeOnly(_what: string): void {}

/** The largest byte array this platform can allocate (Node's buffer.constants.MAX_LENGTH). */
export const MAX_BUFFER_LENGTH: number = bufferConstants.MAX_LENGTH;

export interface InflateOptions {
  /** Most output bytes: more fails with an error whose `code` is 'ERR_BUFFER_TOO_LARGE'. */
  maxOutputLength: number;
  /**
   * Return what a stream that stops early holds (zlib's Z_SYNC_FLUSH) instead of failing with an
   * error whose `code` is 'Z_BUF_ERROR'.
   */
  partial?: boolean;
}

/**
 * The zlib calls the decoders make, with Node's semantics: errors carry Node's `code`
 * ('ERR_BUFFER_TOO_LARGE', 'Z_BUF_ERROR', 'Z_DATA_ERROR', ...) and zlib's message.
 */
export interface Zlib {
  /** Inflates a zlib (RFC 1950) stream: its bytes, and how many input bytes the stream used (bytes after its end are not read). */
  inflate(src: Uint8Array, opts: InflateOptions): { bytes: Uint8Array; consumed: number };
  /** Inflates gzip (RFC 1952) data (a member that follows the first is inflated too; other trailing bytes are ignored). */
  gunzip(src: Uint8Array, opts: InflateOptions): Uint8Array;
  /** A zlib stream of `src` at level 9 with the Z_RLE strategy (pngjs' settings for PNG image data). */
  deflate(src: Uint8Array): Uint8Array;
}

const flush = (partial: boolean | undefined) => (partial ? { finishFlush: nodeZlib.constants.Z_SYNC_FLUSH } : {});

export const zlib: Zlib = {
  inflate(src, { maxOutputLength, partial }) {
    // `info` gives the engine, whose bytesWritten is the compressed bytes the stream used.
    const res = nodeZlib.inflateSync(src, { maxOutputLength, info: true, ...flush(partial) }) as unknown as {
      buffer: Buffer;
      engine: { bytesWritten: number };
    };
    return { bytes: res.buffer, consumed: res.engine.bytesWritten };
  },
  gunzip(src, { maxOutputLength, partial }) {
    return nodeZlib.gunzipSync(src, { maxOutputLength, ...flush(partial) });
  },
  deflate(src) {
    return nodeZlib.deflateSync(src, { chunkSize: 32 * 1024, level: 9, strategy: nodeZlib.constants.Z_RLE });
  },
};
