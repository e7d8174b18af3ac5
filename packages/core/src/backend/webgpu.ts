/**
 * The opt-in `webgpu` backend (`initBackend({ backend: 'webgpu' })` / `MMLM_BACKEND=webgpu`; never
 * picked by auto-selection): @tensorflow/tfjs-backend-webgpu on `navigator.gpu`, which
 * `#platform` supplies: in Node from the `webgpu` package (Dawn's Node bindings, a prebuilt
 * dawn.node inside the npm package), in a browser the page's own. Before the tfjs backend starts,
 * the adapter is requested here once to fail with a clear error when there is none and to name it
 * in initBackend's log (vendor, architecture, description; fallback / software adapters are said).
 */
import { loadWebGpu } from '#platform';
import { tf } from '../tf.js';

/** The parts of WebGPU's `GPU` / `GPUAdapter` used here (no DOM types needed). */
export interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
export interface GpuAdapterLike {
  info?: GpuAdapterInfoLike;
  isFallbackAdapter?: boolean;
  requestAdapterInfo?: () => Promise<GpuAdapterInfoLike>;
}
export interface GpuLike {
  requestAdapter(opts?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<GpuAdapterLike | null>;
}

/** What `#platform`'s loadWebGpu returns: `navigator.gpu` set and tfjs-backend-webgpu imported. */
export interface WebGpuRuntime {
  gpu: GpuLike;
  /** The packages that provide it, for the log. */
  provider: string;
  /** What to do when no adapter is found (platform-specific). */
  noAdapterHelp: string;
}

/** The WebGPU adapter initBackend chose, as initBackend's log names it. */
export interface WebGpuAdapterDescription {
  vendor: string;
  architecture: string;
  description: string;
  /** A fallback / software adapter (SwiftShader, lavapipe, llvmpipe, WARP): correctness, not speed. */
  software: boolean;
}

const SOFTWARE = /swiftshader|lavapipe|llvmpipe|softpipe|\bwarp\b|microsoft basic render/i;

export async function describeAdapter(adapter: GpuAdapterLike): Promise<WebGpuAdapterDescription> {
  let info: GpuAdapterInfoLike = {};
  try {
    info = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
  } catch {
    // older browsers: requestAdapterInfo may reject without a user gesture; the log says less
  }
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const description = info.description || info.device || '';
  const software =
    info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || SOFTWARE.test(`${vendor} ${architecture} ${description}`);
  return { vendor, architecture, description, software };
}

/** "google swiftshader (SwiftShader driver 5.0.0), a fallback / software adapter" */
export function adapterLabel(a: WebGpuAdapterDescription): string {
  const name = [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  return `${name}${a.description ? ` (${a.description})` : ''}${a.software ? ', a fallback / software adapter: correctness, not speed' : ''}`;
}

/**
 * Node: `dataSync` on GPU data makes tfjs-backend-webgpu reach for OffscreenCanvas, which Node
 * lacks ("OffscreenCanvas is not defined"). Say what happened and what to call instead.
 */
function clearSyncReadError(backend: tf.KernelBackend): void {
  if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined') return;
  const b = backend as unknown as {
    readSync(id: object): unknown;
    tensorMap: { get(id: object): { values?: unknown; dtype?: string } | undefined };
    mmlmPatched?: boolean;
  };
  if (b.mmlmPatched) return;
  b.mmlmPatched = true;
  const readSync = b.readSync.bind(b);
  b.readSync = (id: object) => {
    const d = b.tensorMap.get(id);
    if (d && d.values == null && d.dtype !== 'string')
      throw new Error(
        'dataSync() / arraySync() on the webgpu backend: data on the GPU cannot be read synchronously in Node ' +
          '(tfjs-backend-webgpu reads it through an OffscreenCanvas); use await tensor.data() / tensor.array()',
      );
    return readSync(id);
  };
}

/** Set `webgpu` as the tfjs backend; returns the adapter or an error that names what is missing. */
export async function activateWebGpu(): Promise<{ provider: string; adapter: WebGpuAdapterDescription } | { error: string }> {
  let rt: WebGpuRuntime;
  try {
    rt = await loadWebGpu();
  } catch (err) {
    return { error: (err as Error).message ?? String(err) };
  }
  let adapter: GpuAdapterLike | null = null;
  try {
    adapter = await rt.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { error: `navigator.gpu.requestAdapter() failed (${(err as Error).message ?? err}). ${rt.noAdapterHelp}` };
  }
  if (!adapter) return { error: `no WebGPU adapter (navigator.gpu.requestAdapter() returned null). ${rt.noAdapterHelp}` };
  const described = await describeAdapter(adapter);
  const factories = (tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory;
  if (!factories.webgpu)
    return {
      error:
        '@tensorflow/tfjs-backend-webgpu registered no "webgpu" backend: it was imported before navigator.gpu existed ' +
        '(it checks once, at import); let initBackend import it, or set navigator.gpu first',
    };
  try {
    if (!(await tf.setBackend('webgpu'))) return { error: `tf.setBackend("webgpu") failed on ${adapterLabel(described)}` };
    await tf.ready();
  } catch (err) {
    return { error: `the webgpu backend failed to start on ${adapterLabel(described)}: ${(err as Error).message ?? err}` };
  }
  if (tf.getBackend() !== 'webgpu') return { error: `tf.setBackend("webgpu") left ${tf.getBackend()} active` };
  clearSyncReadError(tf.backend());
  return { provider: rt.provider, adapter: described };
}
