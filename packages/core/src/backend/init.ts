/**
 * Backend selection: `MMLM_BACKEND` (or the `backend` option); else `tensorflow` from
 * @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node, when they load; else `wasm` (the
 * embedded default, with the kernels it lacks supplied by core); else `cpu`.
 *
 * In a browser bundle `tensorflow` is skipped ("not available in the browser": tfjs-node is a Node
 * addon; `#platform` supplies the loader) and MMLM_BACKEND is not read (there is no environment).
 *
 * `webgpu` (webgpu.ts) is opt-in by name only: auto-selection never picks it, since on a machine
 * without a GPU the adapter is a software one, far slower than wasm, and because core's sync APIs
 * that read tensor values (sample, kmeans, ...) cannot read GPU data synchronously.
 */
import { polyfillNodeUtil, requireOptional, runtime } from '#platform';
import { env } from '../runtime.js';
import { tf } from '../tf.js';
import { nativeBlasInfo, registerCoreKernels, wasmGemmThreads } from './kernels/index.js';
import { installSavedTensorAliases } from './saved_aliases.js';
import { activateWebGpu, adapterLabel, type WebGpuAdapterDescription } from './webgpu.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu' | 'webgpu';
/** Auto-selection order (webgpu is not in it: opt-in by name). */
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];
/** Every backend `initBackend({ backend })` / MMLM_BACKEND accepts. */
export const KNOWN_BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu', 'webgpu'];

export interface InitBackendOptions {
  /** Force one backend; overrides auto-selection. Default: env MMLM_BACKEND, else auto. */
  backend?: BackendName | string;
  /** Where the one-line choice is logged. Default: console.error (stderr), once per choice. */
  log?: ((line: string) => void) | false;
}

export interface Skipped {
  candidate: string;
  reason: string;
}

export interface BackendChoice {
  backend: BackendName;
  /** Which package provided it (e.g. '@tensorflow/tfjs-node-gpu'). */
  provider: string;
  /** Faster candidates that were tried and skipped, with the reason. */
  skipped: Skipped[];
  /** webgpu only: the adapter (vendor, architecture, description; whether it is a software one). */
  adapter?: WebGpuAdapterDescription;
}

let current: BackendChoice | null = null;
const loggedChoices = new Set<string>();

export const TENSORFLOW_INSTALL_HELP = [
  'The "tensorflow" backend needs @tensorflow/tfjs-node (CPU) or @tensorflow/tfjs-node-gpu (CUDA) 4.22.0,',
  'installed with its install script allowed (pnpm: list it in onlyBuiltDependencies) on a machine that can',
  'download libtensorflow 2.9.1. The GPU build needs CUDA 11.2 and cuDNN 8.1 (driver >= 450, Linux x86_64);',
  'prebuilt addons exist for Node <= 22. Install: npm i @tensorflow/tfjs-node-gpu@4.22.0 (or @tensorflow/tfjs-node@4.22.0).',
].join('\n');

/** Why a tfjs-node package failed to load, in words a user can act on. */
export function classifyNodeBackendError(pkg: string, err: unknown): string {
  const e = err as { code?: string; message?: string };
  const msg = String(e?.message ?? err);
  if (e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND') {
    if (msg.includes(`'${pkg}'`) || msg.includes(`"${pkg}"`) || msg.includes(`${pkg}'`)) return 'not installed';
  }
  if (/libcudart|libcublas|libcudnn|libcufft|libcurand|libcusolver|libcusparse|CUDA/i.test(msg))
    return `CUDA library missing (${firstLine(msg)}); the GPU build needs CUDA 11.2 + cuDNN 8.1`;
  if (/libtensorflow|tfjs_binding|addon|\.node\b|napi/i.test(msg))
    return `libtensorflow missing (${firstLine(msg)}); its install script could not download or build it`;
  return `failed to load (${firstLine(msg)})`;
}

function firstLine(s: string): string {
  const l = s.split('\n')[0] ?? '';
  return l.length > 160 ? `${l.slice(0, 157)}...` : l;
}

function tryNodeBackend(pkg: string): string | null {
  if (runtime === 'browser') return 'not available in the browser (a Node addon)';
  polyfillNodeUtil();
  try {
    requireOptional(pkg);
  } catch (err) {
    return classifyNodeBackendError(pkg, err);
  }
  if (tf.findBackend('tensorflow') == null) return `${pkg} loaded but registered no "tensorflow" backend`;
  return null;
}

async function setAndCheck(name: string): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    if (!ok) return false;
    await tf.ready();
    return tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function loadWasm(): Promise<string | null> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm failed to load (${firstLine(String((err as Error)?.message ?? err))})`;
  }
  if (!(await setAndCheck('wasm'))) return 'wasm backend failed to initialise';
  return null;
}

function quietCpu(): void {
  // The cpu backend prints a banner suggesting tfjs-node on its first write in Node; mmlm's log
  // line already says why tfjs-node was not chosen.
  const b = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (b && 'firstUse' in b) b.firstUse = false;
}

async function activate(name: BackendName): Promise<{ provider: string; adapter?: WebGpuAdapterDescription } | { error: string }> {
  if (name === 'webgpu') return activateWebGpu();
  if (name === 'tensorflow') {
    const errs: string[] = [];
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      const why = tf.findBackend('tensorflow') ? null : tryNodeBackend(pkg);
      if (why === null && (await setAndCheck('tensorflow'))) return { provider: pkg };
      errs.push(`${pkg}: ${why ?? 'setBackend("tensorflow") failed'}`);
    }
    return { error: errs.join('; ') };
  }
  if (name === 'wasm') {
    const why = await loadWasm();
    return why ? { error: why } : { provider: '@tensorflow/tfjs-backend-wasm' };
  }
  quietCpu();
  return (await setAndCheck('cpu')) ? { provider: '@tensorflow/tfjs-backend-cpu' } : { error: 'cpu backend failed' };
}

/**
 * Choose and activate a backend, register the kernels core supplies for it, and log the choice
 * once. Safe to call repeatedly; a different `backend` switches.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendChoice> {
  if (opts.log !== undefined && opts.log !== false && typeof opts.log !== 'function')
    throw new Error(
      `initBackend: log must be a function (line: string) => void or false, got ${typeof opts.log} ${JSON.stringify(opts.log)}`,
    );
  const requested = (opts.backend ?? env('MMLM_BACKEND') ?? '').trim().toLowerCase();
  if (requested && !KNOWN_BACKENDS.includes(requested as BackendName)) {
    throw new Error(`initBackend: unknown backend "${requested}"; expected one of ${KNOWN_BACKENDS.join(', ')}`);
  }
  if (current && (!requested || requested === current.backend) && tf.getBackend() === current.backend) return current;

  const skipped: Skipped[] = [];
  let choice: BackendChoice | null = null;
  if (requested) {
    const r = await activate(requested as BackendName);
    if ('error' in r) {
      const help = requested === 'tensorflow' ? `\n${TENSORFLOW_INSTALL_HELP}` : '';
      throw new Error(`initBackend: backend "${requested}" was requested (MMLM_BACKEND or option) but is not available: ${r.error}${help}`);
    }
    choice = { backend: requested as BackendName, provider: r.provider, skipped, ...(r.adapter ? { adapter: r.adapter } : {}) };
  } else {
    for (const name of BACKENDS) {
      const r = await activate(name);
      if ('error' in r) {
        skipped.push({ candidate: name, reason: r.error });
        continue;
      }
      choice = { backend: name, provider: r.provider, skipped };
      break;
    }
    if (!choice) throw new Error(`initBackend: no backend could be initialised: ${JSON.stringify(skipped)}`);
  }
  registerCoreKernels(choice.backend);
  installSavedTensorAliases();
  if (choice.backend === 'cpu') quietCpu();
  current = choice;
  const line = `[mmlm] backend: ${choice.backend} (${choice.provider}${choice.adapter ? `; adapter ${adapterLabel(choice.adapter)}` : ''})${
    skipped.length ? `; skipped ${skipped.map((s) => `${s.candidate}: ${s.reason}`).join('; ')}` : ''
  }`;
  if (opts.log !== false && !loggedChoices.has(line)) {
    loggedChoices.add(line);
    (opts.log ?? ((l: string) => console.error(l)))(line);
  }
  return choice;
}

/** The backend chosen by the last initBackend call, or null. */
export function currentBackend(): BackendChoice | null {
  return current;
}

/**
 * The matrix-multiply kernel the active backend runs, for run records: on `wasm`, the optional
 * native GEMM (OpenBLAS, built on request; `MMLM_NATIVE_BLAS=0` turns it off) or core's
 * WebAssembly SIMD GEMM, with its thread count. The two sum in different float32 orders, so a run's
 * numbers reproduce digit for digit only with the same one. Other backends: their own kernels.
 */
export function gemmDescription(): string {
  const b = tf.getBackend();
  if (b !== 'wasm') return `${b} backend kernels`;
  const n = nativeBlasInfo();
  if (n.available && n.enabled) return `native ${n.config?.split(' ').slice(0, 2).join(' ') ?? 'BLAS'} (${n.threads} threads)`;
  const t = wasmGemmThreads();
  return `WebAssembly SIMD (${t} thread${t === 1 ? '' : 's'})`;
}
