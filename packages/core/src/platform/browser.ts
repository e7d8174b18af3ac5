/**
 * The browser half of core's platform seam (`#platform`, condition `default`: what a bundler
 * picks); node.ts is the Node half and the list of what lives behind the seam. Same exports, no
 * `node:` import: file IO, worker threads, native BLAS and tfjs-node throw an error that says they
 * are not available in the browser (their byte-level counterparts, such as `encodeSafetensors` /
 * `decodeSafetensors`, work everywhere).
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
import type cliProgressModule from 'cli-progress';
import type { NativeBlas } from '../backend/kernels/native_blas.js';
import type { GpuLike, WebGpuRuntime } from '../backend/webgpu.js';
import type * as NodePlatform from './node.js';

export const runtime: 'node' | 'browser' = 'browser';

function notInBrowser(what: string): Error {
  return new Error(
    `${what} is not available in the browser: it needs Node (files, worker threads or native addons). ` +
      'In a browser, pass bytes instead (encodeSafetensors / decodeSafetensors / parseSafetensors on a fetch() or File result).',
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
export const fsp = unavailable<typeof NodePlatform.fsp>('node:fs/promises');
export const path = unavailable<typeof NodePlatform.path>('node:path');

export const cliProgress: typeof cliProgressModule | null = null;

export function nodeOnly(what: string): void {
  throw notInBrowser(what);
}

export function cpuCount(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}

/** No worker pool in a browser: Atomics.wait, which the GEMM pool blocks on, is not allowed on a page's main thread. */
export function startEvalWorker(_source: string, _workerData: unknown): { unref(): void; terminate(): unknown } | null {
  return null;
}

export function polyfillNodeUtil(): void {}

export function requireOptional(pkg: string): unknown {
  throw notInBrowser(`${pkg} (a Node addon)`);
}

export function loadNativeBlas(): { blas: NativeBlas; path: string } | { error: string } {
  return { error: 'not available in the browser' };
}

/**
 * The page's `navigator.gpu`, then @tensorflow/tfjs-backend-webgpu (a bundler splits it into its
 * own chunk or inlines it; it registers its backend only because navigator.gpu exists at import).
 */
export async function loadWebGpu(): Promise<WebGpuRuntime> {
  const gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (!gpu)
    throw new Error(
      'navigator.gpu is missing: this browser or context has no WebGPU (Chrome / Edge >= 113, Safari >= 26, Firefox >= 141 ' +
        'on Windows; pages must be served over https or from localhost)',
    );
  await import('@tensorflow/tfjs-backend-webgpu');
  return {
    gpu,
    provider: 'navigator.gpu + @tensorflow/tfjs-backend-webgpu',
    noAdapterHelp:
      'WebGPU is disabled or the GPU is blocklisted (see chrome://gpu); headless Chromium without a GPU needs ' +
      '--enable-unsafe-webgpu --enable-features=Vulkan --use-vulkan=swiftshader --use-angle=vulkan.',
  };
}

// Both halves export the same names with the same types (a compile-time check, erased).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameExports: Same<typeof NodePlatform, typeof import('./browser.js')> = true;
void sameExports;
