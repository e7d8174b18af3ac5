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

import type { GpuLike, WebGpuRuntime } from '../backend/webgpu.js';

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

// ---------------------------------------------------------------------------------------------
// WebGPU in Node: Dawn's bindings from the `webgpu` package (an optional dependency of core; the
// prebuilt dawn.node for linux/darwin/win32 ships inside the npm package). Dawn reaches a GPU
// through Vulkan on Linux: the Vulkan loader (libvulkan.so.1) and a driver (an ICD: the GPU
// vendor's, or a software one such as SwiftShader or Mesa >= 23 lavapipe).

const VULKAN_HELP = [
  "Dawn needs a Vulkan driver on Linux: a GPU's (NVIDIA: the driver's Vulkan ICD, nvidia_icd.json), or a software one for",
  "correctness checks: SwiftShader from Debian's chromium package (apt-get install chromium; then",
  'VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json), or Mesa >= 23 lavapipe (bookworm-backports',
  "mesa-vulkan-drivers; Debian bookworm's own Mesa 22 lavapipe is rejected by Dawn), with the Vulkan loader",
  "(apt-get install libvulkan1; without it core loads the libvulkan.so.1 that sits beside the ICD file, as in chromium's folder).",
].join(' ');

/** glibc's RTLD_NODELETE (Node does not export it): keeps a library loaded after a failed process.dlopen. */
const RTLD_NODELETE = 0x1000;

/**
 * Make `libvulkan.so.1` loadable for Dawn on Linux. Where the system has no Vulkan loader but an ICD
 * file named by VK_ICD_FILENAMES / VK_DRIVER_FILES has one beside it (Chromium's folder does), load
 * that copy first: Dawn's later dlopen("libvulkan.so.1") then finds it by its soname.
 * process.dlopen rejects a library that is not a Node addon, but with RTLD_NODELETE it stays loaded.
 * Returns where the loader comes from, or 'missing'.
 */
function ensureVulkanLoader(): string {
  if (process.platform !== 'linux') return 'not needed';
  const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE;
  const tryLoad = (file: string): boolean => {
    try {
      process.dlopen({ exports: {} }, file, flags);
      return true;
    } catch (err) {
      return /did not self-register/.test(String((err as Error).message));
    }
  };
  if (tryLoad('libvulkan.so.1')) return 'system';
  const icds = (process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES || '').split(':').filter(Boolean);
  for (const icd of icds) {
    const lib = path.join(path.dirname(icd), 'libvulkan.so.1');
    if (fs.existsSync(lib) && tryLoad(lib)) return lib;
  }
  return 'missing';
}

interface DawnModule {
  create(options: string[]): GpuLike;
  globals: Record<string, unknown>;
}

let webgpuRuntime: WebGpuRuntime | null = null;

/**
 * `navigator.gpu` from Dawn (with the GPU* constants tfjs-backend-webgpu reads as globals, e.g.
 * GPUBufferUsage / GPUMapMode), then @tensorflow/tfjs-backend-webgpu, which registers its backend
 * only if navigator.gpu exists when it is first imported. Throws naming what is missing.
 */
export async function loadWebGpu(): Promise<WebGpuRuntime> {
  if (webgpuRuntime) return webgpuRuntime;
  const g = globalThis as { navigator?: { gpu?: GpuLike } };
  let gpu = g.navigator?.gpu;
  let vulkan = 'not checked';
  if (!gpu) {
    vulkan = ensureVulkanLoader();
    let dawn: DawnModule;
    const pkg = 'webgpu'; // a variable: no compile-time dependency on the optional package's types
    try {
      dawn = (await import(pkg)) as DawnModule;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if ((e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') && String(e.message).includes(`'${pkg}'`))
        throw new Error(
          'the "webgpu" package (Dawn\'s Node bindings, an optional dependency of @mmlm/core) is not installed: npm i webgpu ' +
            '(it ships prebuilt binaries for linux x64/arm64, macOS and Windows; nothing is downloaded at install)',
        );
      throw new Error(`the "webgpu" package failed to load (${String(e?.message ?? err).split('\n')[0]})`);
    }
    for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    gpu = dawn.create([]);
    // Node >= 21 has a global navigator (a getter); Node 20 has none.
    if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  try {
    requireOptional('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes('@tensorflow/tfjs-backend-webgpu'))
      throw new Error(
        '@tensorflow/tfjs-backend-webgpu (an optional dependency of @mmlm/core, version 4.22.0 like tfjs-core) is not installed: ' +
          'npm i @tensorflow/tfjs-backend-webgpu@4.22.0',
      );
    throw err;
  }
  const noVulkan =
    vulkan === 'missing'
      ? 'The Vulkan loader libvulkan.so.1 was not found (apt-get install libvulkan1, or set VK_ICD_FILENAMES to an ICD file that has one beside it). '
      : '';
  webgpuRuntime = {
    gpu,
    provider:
      vulkan === 'not checked' ? 'navigator.gpu + @tensorflow/tfjs-backend-webgpu' : 'webgpu (Dawn) + @tensorflow/tfjs-backend-webgpu',
    noAdapterHelp: `${noVulkan}${process.platform === 'linux' ? VULKAN_HELP : 'Dawn found no GPU through Metal / D3D12 / Vulkan.'}`,
  };
  return webgpuRuntime;
}
