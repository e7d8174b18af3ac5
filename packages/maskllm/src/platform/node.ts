/**
 * The Node half of @mmlm/maskllm's platform seam (`#platform` in package.json `imports`; the browser
 * half is browser.ts, with the same exports), as in @mmlm/core: the main entry imports no `node:`
 * module, so it bundles for a browser with no shims. Only `loadMasks` reads a file here
 * (`saveMasks` writes through core's writeFileAtomic, which core splits the same way).
 */
import { readFileSync } from 'node:fs';

export const runtime: 'node' | 'browser' = 'node';

/** Throws in a browser bundle (naming `what`); nothing in Node. */
export function nodeOnly(_what: string): void {}

/** The bytes of the file at `path` (a copy that owns its buffer). */
export function readFileBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}
