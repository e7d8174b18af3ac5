/**
 * The lab page in a real headless Chromium (Debian's `chromium`, driven by playwright-core with
 * executablePath, as apps/lab's browser test): builds dist/ with scripts/build.mjs, serves it from
 * a local http server, runs the tiny presets on wasm (core's tiny GPT, MaskLLM's ladder, the image-token
 * comparison with its sample grids) and, where
 * Chromium's WebGPU works on SwiftShader, the tiny GPT on WebGPU; checks the result tables hold
 * finite numbers and that the loss went down. Screenshots go to test-artifacts/. Where Chromium
 * is not installed the test fails with the install command; MMLM_SKIP_BROWSER=1 skips it.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeDecoderFile, initBackend, TransformerDecoder } from '@mmlm/core';
import { CharTokenizer, grammarCorpus } from '@mmlm/data';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_GPT_META, type TinyGptMeta, valBitsPerChar } from '../src/checkpoint.js';

const here = dirname(fileURLToPath(import.meta.url));
const app = join(here, '..');
const artifacts = join(app, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = process.env.MMLM_SKIP_BROWSER === '1';

const BASE_ARGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** WebGPU on SwiftShader's Vulkan: without these flags GPU reads come back as zeros (issue 18). */
const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=vulkan'];

let server: Server;
let base: string;

interface PageState {
  state: string;
  backend?: string;
  worker?: boolean;
  error?: string;
  result?: { metrics: Record<string, number>; tables: { title: string; rows: (string | number | null)[][] }[] };
}

/** Open the page with a run preselected and started; resolve with its final state. */
async function runInPage(page: Page, query: string, timeout = 45_000): Promise<PageState> {
  const console: string[] = [];
  page.on('console', (m) => console.push(m.text()));
  page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
  await page.goto(`${base}/?${query}&run=1`);
  await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout });
  const state = (await page.evaluate(() => window.mmlm)) as PageState;
  if (state.state !== 'done') throw new Error(`page run failed: ${state.error}\nconsole:\n${console.join('\n')}`);
  return state;
}

/** Numbers of a result table's column (by header text), from the rendered cells' data-value. */
async function column(page: Page, caption: string, header: string): Promise<number[]> {
  return page.evaluate(
    ([caption, header]) => {
      const table = [...document.querySelectorAll('table.data')].find((t) => t.querySelector('caption')?.textContent === caption);
      if (!table) throw new Error(`no table "${caption}"`);
      const col = [...table.querySelectorAll('thead th')].findIndex((th) => th.textContent === header);
      if (col < 0) throw new Error(`table "${caption}" has no column "${header}"`);
      return [...table.querySelectorAll('tbody tr')].map((tr) => Number((tr.children[col] as HTMLElement).dataset.value));
    },
    [caption, header] as const,
  );
}

async function checkTinyGpt(page: Page, state: PageState, steps = 20): Promise<void> {
  const m = state.result!.metrics;
  for (const k of ['firstLoss', 'finalLoss', 'finalPerplexity', 'valBitsPerChar']) expect(Number.isFinite(m[k]), k).toBe(true);
  expect(m.finalLoss).toBeLessThan(m.firstLoss);
  // the same numbers as rendered in the table
  const values = await column(page, 'Result', 'value');
  expect(values.every(Number.isFinite)).toBe(true);
  expect(values[1]).toBeLessThan(values[0]!); // final < first train loss
  const bpc = await column(page, 'Validation bits per character during training', 'val bits/char');
  expect(bpc.length).toBe(Math.ceil(steps / 10));
  expect(bpc.every((b) => Number.isFinite(b) && b > 0)).toBe(true);
  // the curve was drawn: one polyline with a point per step
  const points = await page.locator('#chart polyline').first().getAttribute('points');
  expect(points?.trim().split(' ').length).toBe(steps);
}

describe.skipIf(skip)('the lab page in headless Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH, or MMLM_SKIP_BROWSER=1)`);
    const { build } = (await import(join(app, 'scripts/build.mjs'))) as { build: (out?: string) => Promise<string[]> };
    const files = await build();
    expect(files).toEqual(expect.arrayContaining(['index.html', 'main.js', 'tfjs-backend-wasm-simd.wasm']));
    const { serve } = (await import(join(app, 'scripts/serve.mjs'))) as { serve: (root: string) => Promise<Server> };
    server = await serve(join(app, 'dist'));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    mkdirSync(artifacts, { recursive: true });
  }, 60_000);
  afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  describe('on wasm', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, '--disable-gpu'] });
    });
    afterAll(async () => browser?.close());

    it("trains core's tiny GPT (tiny preset): finite numbers, loss goes down, screenshot kept", async () => {
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      const state = await runInPage(page, 'experiment=core.tiny-gpt&preset=tiny&backend=wasm');
      expect(state.backend).toBe('wasm');
      expect(await page.locator('#results').getAttribute('data-backend')).toBe('wasm');
      await checkTinyGpt(page, state);
      await page.screenshot({ path: join(artifacts, 'page.png'), fullPage: true });
      expect(existsSync(join(artifacts, 'page.png'))).toBe(true);
      await page.close();
    }, 60_000);

    it("trains in a Web Worker by default, and on the page's thread (?worker=0) gives the same numbers", async () => {
      const inWorker = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      const w = await runInPage(inWorker, 'experiment=core.tiny-gpt&preset=tiny&backend=wasm');
      expect(w.worker).toBe(true);
      expect(w.backend).toBe('wasm');
      expect(await inWorker.locator('#status').textContent()).toContain('in a Web Worker');
      await inWorker.close();
      const onPage = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      const p = await runInPage(onPage, 'experiment=core.tiny-gpt&preset=tiny&backend=wasm&worker=0');
      expect(p.worker).toBe(false);
      await checkTinyGpt(onPage, p);
      await onPage.close();
      const keys = ['firstLoss', 'finalLoss', 'finalPerplexity', 'valBitsPerChar'];
      for (const k of keys) expect(p.result!.metrics[k], k).toBe(w.result!.metrics[k]);
    }, 90_000);

    it('loads a decoder file written in Node and measures the same validation bits/char; refuses a broken file', async () => {
      // a model as core.tiny-gpt writes it (untrained: the numbers, not the learning, are compared)
      await initBackend({ backend: 'wasm', log: false });
      const settings = { grammar: 'shapes' as const, seed: 0, chars: 20_000, block: 32, batch: 8 };
      const tok = CharTokenizer.fromText(grammarCorpus(settings), { specialTokens: [] });
      const model = new TransformerDecoder({ vocabSize: tok.vocabSize, dim: 32, numLayers: 2, numHeads: 2, maxSeqLen: 32, seed: 5 });
      const meta: TinyGptMeta = { ...settings, vocab: [...tok.chars], valBitsPerChar: 0, backend: 'wasm' };
      meta.valBitsPerChar = valBitsPerChar(model, tok, meta);
      const dir = mkdtempSync(join(tmpdir(), 'web-ckpt-'));
      const file = join(dir, 'model.safetensors');
      writeFileSync(file, await encodeDecoderFile(model, { [TINY_GPT_META]: JSON.stringify(meta) }));
      model.dispose();
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      await page.goto(`${base}/?backend=wasm`);
      await page.setInputFiles('#checkpoint', file);
      await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 45_000 });
      const state = (await page.evaluate(() => window.mmlm)) as PageState;
      expect(state.state, state.error).toBe('done');
      const m = state.result!.metrics;
      expect(m.cliValBitsPerChar).toBe(meta.valBitsPerChar);
      expect(Math.abs(m.valBitsPerChar! - meta.valBitsPerChar)).toBeLessThan(1e-4);
      expect((await column(page, 'Checkpoint', 'value'))[0]).toBeCloseTo(meta.valBitsPerChar, 4);
      await page.screenshot({ path: join(artifacts, 'page-checkpoint.png'), fullPage: true });
      // a file that is not safetensors: an error naming the file, and the page stays usable
      const junk = join(dir, 'junk.safetensors');
      writeFileSync(junk, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]));
      await page.setInputFiles('#checkpoint', junk);
      await page.waitForSelector('body[data-state="error"]', { timeout: 20_000 });
      expect(await page.locator('#status').textContent()).toMatch(/junk\.safetensors/);
      await page.close();
    }, 90_000);

    it("runs MaskLLM's sparsity ladder (tiny preset): every 2:4 arm evaluated, exported masks exactly 2:4", async () => {
      const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
      const state = await runInPage(page, 'experiment=maskllm.ladder&preset=tiny&backend=wasm');
      const caption = 'Table 1: 2:4 sparsity, frozen weights (validation perplexity)';
      const methods = await page.evaluate((c) => {
        const table = [...document.querySelectorAll('table.data')].find((t) => t.querySelector('caption')?.textContent === c)!;
        return [...table.querySelectorAll('tbody tr td:first-child')].map((td) => td.textContent);
      }, caption);
      expect(methods).toEqual([
        'Dense',
        'Magnitude',
        'Wanda',
        'SparseGPT (no weight update)',
        'SparseGPT (weight update)',
        'MaskLLM, no prior',
        'MaskLLM, magnitude prior',
        'MaskLLM, SparseGPT prior',
      ]);
      const ppl = await column(page, caption, 'Ours: val PPL');
      expect(ppl.every((p) => Number.isFinite(p) && p > 1)).toBe(true);
      expect(state.result!.metrics.invalid_groups).toBe(0);
      // the dense phase's loss went down
      const dense = await page.locator('#chart polyline[data-series="dense"]').getAttribute('points');
      const ys = dense!
        .trim()
        .split(' ')
        .map((p) => Number(p.split(',')[1]));
      expect(ys.length).toBe(30);
      expect(ys.slice(-5).reduce((a, b) => a + b) / 5).toBeGreaterThan(ys.slice(0, 5).reduce((a, b) => a + b) / 5); // svg y grows downwards
      await page.screenshot({ path: join(artifacts, 'page-ladder.png'), fullPage: true });
      await page.close();
    }, 60_000);
    it('runs the image-token comparison (tiny preset): both arms measured, finite scores, sample grids drawn', async () => {
      const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const state = await runInPage(page, 'experiment=lab.image-tokens&preset=tiny&backend=wasm', 100_000);
      expect(errors).toEqual([]);
      const caption = 'Discrete VQ codes vs continuous sigma-VAE latents (same data, backbone and budget)';
      const arms = ['liquid-vq', 'latentlm-sigma-vae'];
      const labels = await page.evaluate((c) => {
        const table = [...document.querySelectorAll('table.data')].find((t) => t.querySelector('caption')?.textContent === c)!;
        return [...table.querySelectorAll('tbody tr td:first-child')].map((td) => td.textContent!.trim());
      }, caption);
      const rowOf = (label: string) => {
        const i = labels.indexOf(label);
        if (i < 0) throw new Error(`no row "${label}" in "${caption}"; rows: ${labels.join(' | ')}`);
        return i;
      };
      // scores and rates: finite and in [0, 1] for both arms
      for (const arm of arms) {
        const values = await column(page, caption, arm);
        for (const label of [
          'generation score, seen prompts (all attributes)',
          'generation score, held-out prompts',
          'memoriser ceiling (best training image)',
          'caption accuracy, seen images',
          'caption accuracy, held-out images',
          'memoriser ceiling (best training caption)',
          'reconstructions the analyzer reads like the original',
        ]) {
          const v = values[rowOf(label)]!;
          expect(Number.isFinite(v) && v >= 0 && v <= 1, `${arm}: ${label} = ${v}`).toBe(true);
        }
        for (const label of [
          'tokenizer reconstruction PSNR (dB)',
          'Fréchet distance to real images (seen prompts)',
          'training wall time (s)',
        ])
          expect(Number.isFinite(values[rowOf(label)]!), `${arm}: ${label}`).toBe(true);
        expect(values[rowOf('tokens per image')]).toBe(16);
        expect(values[rowOf('tokenizer parameters')]).toBeGreaterThan(0);
        const m = state.result!.metrics;
        expect(Number.isFinite(m[`${arm}.generationScoreSeen`]) && Number.isFinite(m[`${arm}.captionAccuracyHeldOut`])).toBe(true);
      }
      expect(state.result!.metrics.tensors_leaked, 'tensors left after both arms were disposed').toBe(0);
      // a loss curve per training phase, one point per step (the tiny preset: 2 + 2 steps per arm)
      for (const series of ['liquid-vq tokenizer', 'liquid-vq backbone', 'latentlm sigma-VAE', 'latentlm backbone']) {
        const points = await page.locator(`#chart polyline[data-series="${series}"]`).getAttribute('points');
        expect(points?.trim().split(' ').length, series).toBe(2);
      }
      // the sample grids: per arm, seen and held-out samples (4 prompts each) and 8 round trips
      const grids = await page.evaluate(() =>
        [...document.querySelectorAll('.image-grid')].map((g) => ({
          title: g.querySelector('h4')!.textContent!,
          canvases: [...g.querySelectorAll('canvas')].map((c) => {
            const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
            let opaque = true;
            const colours = new Set<number>();
            for (let i = 0; i < data.length; i += 4) {
              if (data[i + 3] !== 255) opaque = false;
              colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
            }
            return { w: c.width, opaque, colours: colours.size, label: c.nextElementSibling?.textContent ?? '' };
          }),
        })),
      );
      expect(grids.map((g) => g.title)).toEqual(
        arms.flatMap((a) => [
          `${a}: generated from seen prompts (seed 0)`,
          `${a}: generated from held-out prompts (seed 0)`,
          `${a}: tokenizer round trip on seen images`,
        ]),
      );
      for (const g of grids) {
        expect(g.canvases.length, g.title).toBe(g.title.includes('round trip') ? 16 : 4);
        expect(g.canvases.every((c) => c.w === 16 && c.opaque)).toBe(true);
      }
      // the originals of the round-trip grids are real Shapes images: more than one colour each
      const originals = grids.flatMap((g) => g.canvases.filter((c) => c.label === 'original'));
      expect(originals.length).toBe(16);
      expect(originals.every((c) => c.colours > 1)).toBe(true);
      await page.screenshot({ path: join(artifacts, 'page-image-tokens.png'), fullPage: true });
      await page.close();
    }, 120_000);
  });

  describe('on WebGPU (SwiftShader)', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...WEBGPU_ARGS] });
    });
    afterAll(async () => browser?.close());

    it("trains core's tiny GPT on WebGPU where the headless Chromium has an adapter", async (ctx) => {
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      await page.goto(`${base}/`);
      const adapter = await page.evaluate(async () => {
        const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
        if (!gpu) return 'navigator.gpu is missing';
        try {
          return (await gpu.requestAdapter()) ? 'ok' : 'requestAdapter() returned null';
        } catch (e) {
          return `requestAdapter() threw: ${(e as Error).message}`;
        }
      });
      if (adapter !== 'ok') {
        await page.close();
        ctx.skip(`WebGPU is not available in this headless Chromium (${adapter}) with ${WEBGPU_ARGS.join(' ')}`);
      }
      // SwiftShader compiles each shader on the CPU (about 25 s before the first step) and then
      // takes seconds a step: 3 steps of the tiny preset check the numbers, not the speed.
      const state = await runInPage(page, 'experiment=core.tiny-gpt&preset=tiny&backend=webgpu&steps=3', 80_000);
      expect(state.backend).toBe('webgpu');
      await checkTinyGpt(page, state, 3);
      await page.screenshot({ path: join(artifacts, 'page-webgpu.png'), fullPage: true });
      await page.close();
    }, 90_000);
  });
});
