/**
 * The Node half of core's platform seam (`#platform` in package.json `imports`; the browser half
 * is browser.ts, with the same exports). Everything in core that needs a `node:` module or a
 * CommonJS `require` gets it from here, so the main entry bundles for a browser with no shims:
 *   Node (condition `node`)       -> this file: files, worker threads, native BLAS, tfjs-node, cli-progress
 *   bundlers (condition `default`) -> browser.ts: the same names, throwing "not available in the browser"
 * Importing this module also registers tfjs-core's gradients and chained tensor methods (see below).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import * as path from 'node:path';
import util from 'node:util';
import { Worker } from 'node:worker_threads';
import cliProgressModule from 'cli-progress';

export { loadNativeBlas } from '../backend/kernels/native_blas_node.js';

const require = createRequire(import.meta.url);

/**
 * tfjs-core's Node build (dist/tf-core.node.js, which `import '@tensorflow/tfjs-core'` loads in
 * Node) registers neither the gradients nor the chained tensor methods (`x.square()`); its ESM
 * files cannot be loaded by Node (extensionless imports). vendor/tfjs-core-ops.cjs is those two
 * modules bundled (scripts/vendor-tfjs.mjs); it registers into tfjs' global registries, so it
 * extends the tfjs-core instance the backends share. tfjs-core itself must load first: the first
 * copy to load creates the global engine and Tensor class, and the vendored copy's own would lack
 * tfjs-core's op handler (a module that imports `#platform` may be evaluated before tf.ts).
 * (src/platform and dist/platform are both two folders below the package root.)
 */
require('@tensorflow/tfjs-core');
require('../../vendor/tfjs-core-ops.cjs');

export const runtime: 'node' | 'browser' = 'node';

export { fs, fsp, path };

/** The cli-progress module (null in a browser, where there is no terminal to draw on). */
export const cliProgress: typeof cliProgressModule | null = cliProgressModule;

/** Throws in a browser bundle (naming `what`); nothing in Node. */
export function nodeOnly(_what: string): void {}

/** Logical cores available to this process. */
export function cpuCount(): number {
  return os.availableParallelism?.() ?? os.cpus().length;
}

/** A worker thread running `source` (a CommonJS script) with `workerData`; null where there are none. */
export function startEvalWorker(source: string, workerData: unknown): { unref(): void; terminate(): unknown } | null {
  return new Worker(source, { eval: true, workerData });
}

/**
 * tfjs-node 4.22 calls util.isNullOrUndefined, which Node 23 removed; without this it throws on
 * the first op. Harmless on older Node.
 */
export function polyfillNodeUtil(): void {
  const u = util as unknown as Record<string, unknown>;
  if (typeof u.isNullOrUndefined !== 'function') u.isNullOrUndefined = (v: unknown) => v === null || v === undefined;
  if (typeof u.isArray !== 'function') u.isArray = Array.isArray;
}

/**
 * Load an optional peer: from core's own location first, then from the working directory's
 * project (pnpm's strict layout does not link an app's optional peers into core's folder).
 * tfjs-node registers its kernels before it loads its native addon, so a second attempt after a
 * failed one repeats hundreds of "already registered" warnings: those are dropped.
 */
export function requireOptional(pkg: string): unknown {
  const warn = console.warn;
  console.warn = (...a: unknown[]) => {
    if (!String(a[0]).includes('already registered')) warn(...a);
  };
  try {
    try {
      return require(pkg);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e?.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes(pkg)) throw err;
      return createRequire(path.join(process.cwd(), 'package.json'))(pkg);
    }
  } finally {
    console.warn = warn;
  }
}
