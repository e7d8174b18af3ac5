/**
 * The browser half of @mmlm/maskllm's platform seam (`#platform`, condition `default`: what a
 * bundler picks); node.ts is the Node half. Same exports, no `node:` import: reading a file throws
 * an error that says it is not available in the browser (`decodeMaskFile` takes the bytes instead).
 */
import type * as NodePlatform from './node.js';

export const runtime: 'node' | 'browser' = 'browser';

function notInBrowser(what: string): Error {
  return new Error(
    `${what} is not available in the browser: it reads files, which needs Node. ` +
      'In a browser, pass bytes instead (decodeMaskFile on a fetch() or File result; encodeMaskFile to save).',
  );
}

export function nodeOnly(what: string): void {
  throw notInBrowser(what);
}

export function readFileBytes(_path: string): Uint8Array {
  throw notInBrowser('readFileBytes');
}

// Both halves export the same names with the same types (a compile-time check, erased).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameExports: Same<typeof NodePlatform, typeof import('./browser.js')> = true;
void sameExports;
