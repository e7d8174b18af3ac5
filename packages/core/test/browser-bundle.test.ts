/**
 * Browser readiness (issue 18, part 1): every package's main entry bundles with esbuild for the
 * browser with no shims (no `node:` module reachable), and core's and data's bundles evaluate in a
 * context that has no `process` and no `require` (nothing reads them at module level): core's runs
 * tensor ops with gradients on the cpu backend, data's renders a Shapes image and round-trips it
 * through PNG bytes (pako's zlib there). Also checks that vendor/tfjs-core-ops.cjs (the Node half of
 * the gradient / chained-op registration) matches what scripts/vendor-tfjs.mjs builds.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import type { Tensor } from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../../..');
const require = createRequire(import.meta.url);
// esbuild comes with tsx (a devDependency), so the test needs no extra install.
const esbuild = createRequire(require.resolve('tsx/package.json'))('esbuild') as {
  build(o: Record<string, unknown>): Promise<{ outputFiles: { text: string }[] }>;
};

/** Every package whose main entry must bundle for a browser: all of them. */
const PACKAGES = ['core', 'data', 'liquid', 'latentlm', 'maskllm', 'seed', 'mio'];

async function bundle(pkg: string, format: 'esm' | 'iife' = 'esm') {
  return esbuild.build({
    entryPoints: [join(root, 'packages', pkg, 'src/index.ts')],
    bundle: true,
    platform: 'browser',
    format,
    globalName: 'mmlm',
    write: false,
    conditions: ['@mmlm/source'],
    logLevel: 'silent',
    absWorkingDir: root,
  });
}

async function bundleErrors(pkg: string): Promise<string[]> {
  try {
    await bundle(pkg);
    return [];
  } catch (e) {
    return ((e as { errors?: { text: string; location?: { file: string } | null }[] }).errors ?? []).map(
      (m) => `${m.location?.file ?? '?'}: ${m.text}`,
    );
  }
}

/**
 * A fresh context with only the language and a few web globals (a worker's `self`, the Web Crypto
 * object, TextEncoder, WebAssembly, timers), where a bundle runs as a classic script (esbuild's
 * iife: the module's body, then its exports on `mmlm`). No process, require or Buffer.
 */
function webContext(): { context: vm.Context & { mmlm?: unknown }; logs: string[] } {
  const logs: string[] = [];
  const context = vm.createContext({
    console: {
      log: (...a: unknown[]) => logs.push(a.join(' ')),
      warn: () => {},
      error: (...a: unknown[]) => logs.push(a.join(' ')),
      info: () => {},
    },
    TextEncoder,
    TextDecoder,
    crypto: globalThis.crypto,
    performance,
    setTimeout,
    clearTimeout,
    queueMicrotask,
    WebAssembly: (globalThis as Record<string, unknown>).WebAssembly,
  });
  // A web worker's globals as tfjs detects them (`self`, `WorkerGlobalScope`): its browser platform.
  context.self = context;
  context.WorkerGlobalScope = function WorkerGlobalScope() {};
  expect(vm.runInContext('typeof process + " " + typeof require + " " + typeof Buffer', context)).toBe('undefined undefined undefined');
  return { context, logs };
}

describe('browser bundles (esbuild --platform=browser, no shims)', () => {
  it.each(PACKAGES)('@mmlm/%s main entry bundles', async (pkg) => {
    expect(await bundleErrors(pkg)).toEqual([]);
  });

  it("core's bundle loads where there is no process and no require, and trains a tiny op on cpu", async () => {
    expect((await bundle('core')).outputFiles[0]!.text).not.toMatch(/from\s*["']node:/);
    // The same bundle as a classic script, in a context with web globals only.
    const code = (await bundle('core', 'iife')).outputFiles[0]!.text;
    const { context, logs } = webContext();
    vm.runInContext(code, context, { filename: 'core-browser.js' });
    const core = context.mmlm as Record<string, unknown> & {
      tf: typeof import('@tensorflow/tfjs-core');
      initBackend: (o: { backend: string; log: false }) => Promise<{ backend: string }>;
      loadSafetensors: (p: string) => Promise<unknown>;
      encodeSafetensors: (t: Record<string, unknown>) => Uint8Array;
      decodeSafetensors: (b: Uint8Array) => { tensors: Record<string, { dataSync(): Float32Array }> };
      trainLoop: (o: unknown) => Promise<{ losses: number[] }>;
    };
    expect((await core.initBackend({ backend: 'cpu', log: false })).backend).toBe('cpu');
    const { tf } = core;
    const x: Tensor = tf.tensor1d([1, 2, 3]);
    // a chained method and a gradient: both are registered by core's browser platform module
    expect(Array.from(x.square().sum().dataSync())).toEqual([14]);
    expect(
      Array.from(
        tf
          .grad((a: typeof x) => a.square().sum())(x)
          .dataSync(),
      ),
    ).toEqual([2, 4, 6]);
    // bytes in, bytes out works; paths say they need Node
    const bytes = core.encodeSafetensors({ x });
    expect(Array.from(core.decodeSafetensors(bytes).tensors.x!.dataSync())).toEqual([1, 2, 3]);
    await expect(core.loadSafetensors('/tmp/a.safetensors')).rejects.toThrow(/not available in the browser/);
    // trainLoop without files: console.log lines, no SIGINT handler
    const w = tf.variable(tf.scalar(3));
    const res = await core.trainLoop({
      steps: 3,
      model: { namedRngs: () => [] },
      progress: 'lines',
      step: () => {
        const { value } = tf.variableGrads(() => w.square() as never);
        return value.dataSync()[0] as number;
      },
    });
    expect(res.losses).toEqual([9, 9, 9]);
    expect(logs.some((l) => l.includes('step 3/3'))).toBe(true);
  });

  it("data's bundle loads there too: a Shapes image renders, encodes to PNG bytes and decodes back (pako's zlib)", async () => {
    const code = (await bundle('data', 'iife')).outputFiles[0]!.text;
    expect(code).not.toMatch(/pngjs|wavefile/);
    const { context } = webContext();
    vm.runInContext(code, context, { filename: 'data-browser.js' });
    type Image = { image: Float32Array; width: number; height: number; channels: number };
    const data = context.mmlm as {
      ShapesDataset: new (o: { seed: number; imageSize: number; split: string }) => { sample(i: number): { image: Float32Array } };
      encodePng: (image: Float32Array, w: number, h?: number, c?: number) => Uint8Array;
      decodePng: (bytes: Uint8Array, o?: { channels?: number }, name?: string) => Image;
      encodeWav: (s: ArrayLike<number>, rate: number) => Uint8Array;
      decodeWav: (b: Uint8Array) => { samples: Float32Array; sampleRate: number };
      readPng: (p: string) => Image;
      PngError: new (...a: never[]) => Error;
    };
    const { image } = new data.ShapesDataset({ seed: 0, imageSize: 32, split: 'train' }).sample(0);
    expect(image.length).toBe(32 * 32 * 3);
    const bytes = data.encodePng(image, 32);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const back = data.decodePng(bytes);
    expect([back.width, back.height, back.channels]).toEqual([32, 32, 3]);
    // Shapes pixels are 8-bit values, so the round trip is exact up to float32
    expect(Array.from(back.image)).toEqual(Array.from(image, (v) => Math.fround(Math.round(v * 255) / 255)));
    expect(new Set(Array.from(image)).size).toBeGreaterThan(1);
    // zlib failures are PngErrors there as well
    const cut = bytes.slice(0, bytes.length - 20);
    expect(() => data.decodePng(cut, {}, 'cut.png')).toThrow(/PNG cut\.png: truncated/);
    const wav = data.decodeWav(data.encodeWav([0, 0.5, -0.5], 8000));
    expect([Array.from(wav.samples), wav.sampleRate]).toEqual([[0, 0.5, -0.5], 8000]);
    expect(() => data.readPng('/tmp/a.png')).toThrow(/readPng is not available in the browser/);
  });
});

describe('vendor/tfjs-core-ops.cjs', () => {
  it('matches scripts/vendor-tfjs.mjs output for the installed tfjs-core (rerun the script after a tfjs upgrade)', async () => {
    const { buildTfjsOps } = (await import(join(here, '../scripts/vendor-tfjs.mjs'))) as { buildTfjsOps: () => Promise<string> };
    expect((await buildTfjsOps()) === readFileSync(join(here, '../vendor/tfjs-core-ops.cjs'), 'utf8')).toBe(true);
  });
});
