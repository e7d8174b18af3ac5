/**
 * The lab page: pick an experiment, a preset and a backend (wasm, or WebGPU where the browser has
 * `navigator.gpu`), run it in the tab, watch the loss curve, read the result tables and look at the
 * image grids a run returns (generated samples, reconstructions).
 * URL parameters preselect the form: ?experiment=maskllm.ladder&preset=tiny&backend=wasm&seed=0&run=1
 * (and `steps=N` overrides the preset's training steps: the tiny GPT's, the ladder's dense steps, or
 * each image-token arm's tokenizer and backbone steps).
 * A `model.safetensors` written by `pnpm lab run core.tiny-gpt` can be loaded from the file input:
 * the page measures its validation bits/char beside the CLI's figure (checkpoint.ts).
 * The page's state is mirrored on `document.body.dataset.state` (idle | running | done | error)
 * and `window.mmlm` (the last result or error), for tests and the console.
 */
import { currentBackend, initBackend, tf } from '@mmlm/core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { LossChart } from './chart.js';
import { runCheckpoint } from './checkpoint.js';
import { EXPERIMENTS, type ImageGrid, type PageExperiment, type RunHooks, type RunResult, type Table } from './experiments.js';

declare global {
  interface Window {
    mmlm: { state: string; experiment?: string; backend?: string; result?: RunResult; error?: string };
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const expSel = $<HTMLSelectElement>('experiment');
const presetSel = $<HTMLSelectElement>('preset');
const backendSel = $<HTMLSelectElement>('backend');
const seedIn = $<HTMLInputElement>('seed');
const runBtn = $<HTMLButtonElement>('run');
const ckptIn = $<HTMLInputElement>('checkpoint');
const stopBtn = $<HTMLButtonElement>('stop');
const statusEl = $('status');
const logEl = $('log');
const resultsEl = $('results');
const chart = new LossChart($('chart') as unknown as SVGSVGElement);

// The wasm binaries sit next to the bundle (copied by scripts/build.mjs).
setWasmPaths(new URL('./', import.meta.url).href);

const hasWebGpu = typeof navigator !== 'undefined' && 'gpu' in navigator && !!navigator.gpu;
for (const [value, label, enabled] of [
  ['wasm', 'wasm (default)', true],
  ['webgpu', hasWebGpu ? 'WebGPU' : 'WebGPU (navigator.gpu missing)', hasWebGpu],
  ['cpu', 'cpu (plain JS, slow)', true],
] as const) {
  const o = new Option(label, value);
  o.disabled = !enabled;
  backendSel.add(o);
}
for (const e of EXPERIMENTS) expSel.add(new Option(`${e.title} (${e.id})`, e.id));

function selected(): PageExperiment {
  return EXPERIMENTS.find((e) => e.id === expSel.value) ?? EXPERIMENTS[0]!;
}
function fillPresets(): void {
  const e = selected();
  presetSel.replaceChildren(...Object.entries(e.presets).map(([k, d]) => new Option(`${k}: ${d}`, k)));
  $('claim').textContent = e.claim;
}
expSel.addEventListener('change', fillPresets);

const params = new URLSearchParams(location.search);
if (params.get('experiment')) expSel.value = params.get('experiment')!;
fillPresets();
if (params.get('preset')) presetSel.value = params.get('preset')!;
if (params.get('backend')) backendSel.value = params.get('backend')!;
if (params.get('seed')) seedIn.value = params.get('seed')!;

function setState(state: string): void {
  document.body.dataset.state = state;
  window.mmlm = { ...window.mmlm, state };
}
window.mmlm = { state: 'idle' };
setState('idle');

function log(line: string): void {
  logEl.textContent += `${line}\n`;
  logEl.scrollTop = logEl.scrollHeight;
}

function fmt(v: string | number | null): string {
  if (v === null) return '—';
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 1000) return v.toExponential(2);
  return v.toFixed(Math.abs(v) < 1 ? 4 : 3);
}

function renderTable(t: Table): HTMLElement {
  const wrap = document.createElement('div');
  const table = document.createElement('table');
  table.className = 'data';
  table.createCaption().textContent = t.title;
  const head = table.createTHead().insertRow();
  for (const c of t.columns) head.appendChild(document.createElement('th')).textContent = c;
  const body = table.createTBody();
  for (const r of t.rows) {
    const tr = body.insertRow();
    for (const v of r) {
      const td = tr.insertCell();
      td.textContent = fmt(v);
      if (typeof v === 'number') td.dataset.value = String(v);
    }
  }
  wrap.appendChild(table);
  if (t.note) wrap.appendChild(Object.assign(document.createElement('p'), { className: 'note', textContent: t.note }));
  return wrap;
}

/**
 * A grid of small images: one <canvas> per image at its own resolution (scaled up with nearest
 * pixels by CSS), framed green / red by the analyzer's verdict, its lines under it.
 */
function renderGrid(g: ImageGrid): HTMLElement {
  const section = document.createElement('section');
  section.className = 'image-grid';
  section.appendChild(Object.assign(document.createElement('h4'), { textContent: g.title }));
  const cells = section.appendChild(document.createElement('div'));
  cells.className = 'cells';
  cells.style.gridTemplateColumns = `repeat(${g.cols}, minmax(0, 1fr))`;
  for (const c of g.cells) {
    const fig = cells.appendChild(document.createElement('figure'));
    if (c.ok !== undefined) fig.className = c.ok ? 'ok' : 'bad';
    const canvas = fig.appendChild(document.createElement('canvas'));
    canvas.width = c.size;
    canvas.height = c.size;
    const n = c.size * c.size;
    if (c.image.length !== n * 3)
      throw new Error(`renderGrid: "${g.title}" has an image of ${c.image.length} values, expected ${c.size} x ${c.size} x 3 = ${n * 3}`);
    const rgba = new ImageData(c.size, c.size);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) rgba.data[4 * i + k] = Math.round(255 * Math.min(1, Math.max(0, c.image[3 * i + k]!)));
      rgba.data[4 * i + 3] = 255;
    }
    canvas.getContext('2d')!.putImageData(rgba, 0, 0);
    const cap = fig.appendChild(document.createElement('figcaption'));
    for (const line of c.lines) cap.appendChild(Object.assign(document.createElement('div'), { textContent: line }));
  }
  return section;
}

let stopRequested = false;
stopBtn.addEventListener('click', () => {
  stopRequested = true;
});

/** Run the selected experiment, or evaluate a loaded checkpoint (its file name and bytes). */
async function run(checkpoint?: { name: string; bytes: Uint8Array }): Promise<void> {
  const exp = selected();
  const preset = presetSel.value;
  const seed = Number(seedIn.value) || 0;
  runBtn.disabled = true;
  ckptIn.disabled = true;
  stopBtn.disabled = false;
  stopRequested = false;
  logEl.textContent = '';
  resultsEl.replaceChildren();
  chart.reset();
  setState('running');
  try {
    statusEl.textContent = `starting ${backendSel.value} …`;
    const choice = await initBackend({ backend: backendSel.value, log });
    const a = currentBackend()?.adapter;
    const backendLine = `${choice.backend} (${choice.provider}${a ? `; adapter ${JSON.stringify(a)}` : ''})`;
    window.mmlm.backend = tf.getBackend();
    window.mmlm.experiment = checkpoint ? 'checkpoint' : exp.id;
    log(
      checkpoint
        ? `checkpoint ${checkpoint.name}, backend ${backendLine}`
        : `${exp.id} preset ${preset}, seed ${seed}, backend ${backendLine}`,
    );
    const t0 = performance.now();
    let ema = Number.NaN;
    let lastPaint = 0;
    const steps = Number(params.get('steps'));
    const hooks: RunHooks = {
      step(series, step, total, loss, ms) {
        chart.add(series, loss);
        ema = Number.isNaN(ema) ? ms : 0.9 * ema + 0.1 * ms;
        const now = performance.now();
        if (now - lastPaint > 100 || step === total) {
          lastPaint = now;
          chart.draw();
          statusEl.textContent =
            `backend ${choice.backend}${a ? ` (${a.description || a.vendor || 'adapter'})` : ''} · ${series} step ${step}/${total}` +
            ` · loss ${loss.toFixed(4)} · step ${ms.toFixed(1)} ms (avg ${ema.toFixed(1)} ms) · ${((now - t0) / 1000).toFixed(1)} s`;
        }
      },
      log,
      async yieldToPage() {
        if (stopRequested) throw new Error('stopped by the user');
        await new Promise((r) => setTimeout(r, 0));
      },
    };
    const result = checkpoint
      ? await runCheckpoint(checkpoint.bytes, checkpoint.name, hooks)
      : await exp.run(preset, seed, hooks, Number.isInteger(steps) && steps > 0 ? { steps } : {});
    chart.draw();
    const seconds = (performance.now() - t0) / 1000;
    statusEl.textContent = `done on ${choice.backend} in ${seconds.toFixed(1)} s${Number.isNaN(ema) ? '' : ` (mean step ${ema.toFixed(1)} ms)`}. ${result.summary}`;
    const summary = Object.assign(document.createElement('p'), { id: 'summary', textContent: result.summary });
    resultsEl.replaceChildren(summary, ...result.tables.map(renderTable), ...(result.grids ?? []).map(renderGrid));
    resultsEl.dataset.backend = choice.backend;
    window.mmlm.result = result;
    setState('done');
  } catch (e) {
    const msg = (e as Error)?.stack ?? String(e);
    window.mmlm.error = msg;
    statusEl.textContent = `error: ${(e as Error)?.message ?? e}`;
    statusEl.classList.add('error');
    log(msg);
    setState('error');
  } finally {
    runBtn.disabled = false;
    ckptIn.disabled = false;
    stopBtn.disabled = true;
  }
}

ckptIn.addEventListener('change', async () => {
  const f = ckptIn.files?.[0];
  if (!f) return;
  statusEl.classList.remove('error');
  await run({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) });
  ckptIn.value = '';
});

$('controls').addEventListener('submit', (ev) => {
  ev.preventDefault();
  statusEl.classList.remove('error');
  void run();
});
if (params.get('run') === '1') void run();
