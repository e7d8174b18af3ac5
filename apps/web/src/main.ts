/**
 * The lab page: pick an experiment, a preset and a backend (wasm, or WebGPU where the browser has
 * `navigator.gpu`), run it in the tab, watch the loss curve, read the result tables and look at the
 * image grids a run returns (generated samples, reconstructions).
 * URL parameters preselect the form: ?experiment=maskllm.ladder&preset=tiny&backend=wasm&seed=0&run=1
 * (and `steps=N` overrides the preset's training steps: the tiny GPT's, the ladder's dense steps, or
 * each image-token arm's tokenizer and backbone steps).
 * A `model.safetensors` written by `pnpm lab run core.tiny-gpt` can be loaded from the file input:
 * the page measures its validation bits/char beside the CLI's figure (checkpoint.ts).
 * Runs train in a Web Worker (worker.ts) so the page stays responsive; `?worker=0` (or the checkbox)
 * trains on the page's thread instead, yielding to it after every step.
 * The page's state is mirrored on `document.body.dataset.state` (idle | running | done | error)
 * and `window.mmlm` (the last result or error, and whether it ran in a worker), for tests and the console.
 */
import { currentBackend, initBackend, tf } from '@mmlm/core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { LossChart } from './chart.js';
import { runCheckpoint } from './checkpoint.js';
import { EXPERIMENTS, type ImageGrid, type PageExperiment, type RunHooks, type RunResult, type Table } from './experiments.js';
import type { FromWorker, ToWorker } from './protocol.js';

declare global {
  interface Window {
    mmlm: { state: string; experiment?: string; backend?: string; worker?: boolean; result?: RunResult; error?: string };
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const expSel = $<HTMLSelectElement>('experiment');
const presetSel = $<HTMLSelectElement>('preset');
const backendSel = $<HTMLSelectElement>('backend');
const seedIn = $<HTMLInputElement>('seed');
const runBtn = $<HTMLButtonElement>('run');
const ckptIn = $<HTMLInputElement>('checkpoint');
const workerIn = $<HTMLInputElement>('worker');
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
// ?worker=0 trains on the page's thread (the default is a Web Worker where the browser has one)
workerIn.checked = params.get('worker') !== '0' && typeof Worker !== 'undefined';
workerIn.disabled = typeof Worker === 'undefined';

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
let activeWorker: Worker | null = null;
stopBtn.addEventListener('click', () => {
  stopRequested = true;
  activeWorker?.postMessage({ kind: 'stop' } satisfies ToWorker);
});

/** Where the last run trained: in a Web Worker (default where the browser has one) or on the page's thread. */
function runsInWorker(): boolean {
  return workerIn.checked && typeof Worker !== 'undefined';
}

interface Progress {
  /** Backend label for the status line (set once the backend is up). */
  backend: string;
  hooks: Pick<RunHooks, 'step' | 'log'>;
  meanStepMs(): number;
}

function progress(t0: number): Progress {
  let ema = Number.NaN;
  let lastPaint = 0;
  const p: Progress = {
    backend: '',
    meanStepMs: () => ema,
    hooks: {
      step(series, step, total, loss, ms) {
        chart.add(series, loss);
        ema = Number.isNaN(ema) ? ms : 0.9 * ema + 0.1 * ms;
        const now = performance.now();
        if (now - lastPaint > 100 || step === total) {
          lastPaint = now;
          chart.draw();
          statusEl.textContent =
            `backend ${p.backend} · ${series} step ${step}/${total}` +
            ` · loss ${loss.toFixed(4)} · step ${ms.toFixed(1)} ms (avg ${ema.toFixed(1)} ms) · ${((now - t0) / 1000).toFixed(1)} s`;
        }
      },
      log,
    },
  };
  return p;
}

/** Runs one experiment (or checkpoint evaluation) in a fresh module worker; resolves with its result. */
function runInWorker(msg: Extract<ToWorker, { kind: 'run' }>, prog: Progress): Promise<{ result: RunResult; backend: string }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'mmlm-run' });
    activeWorker = worker;
    let backend = '';
    const finish = () => {
      worker.terminate();
      if (activeWorker === worker) activeWorker = null;
    };
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.kind === 'backend') {
        backend = m.backend;
        window.mmlm.backend = m.tfBackend;
        prog.backend = `${m.backend}${m.adapterLabel ? ` (${m.adapterLabel})` : ''}, in a Web Worker`;
        log(
          `${msg.checkpoint ? `checkpoint ${msg.checkpoint.name}` : `${msg.experiment} preset ${msg.preset}, seed ${msg.seed}`}, backend ${m.line}`,
        );
      } else if (m.kind === 'step') prog.hooks.step(m.series, m.step, m.total, m.loss, m.ms);
      else if (m.kind === 'log') log(m.line);
      else if (m.kind === 'done') {
        finish();
        resolve({ result: m.result, backend });
      } else if (m.kind === 'error') {
        finish();
        reject(Object.assign(new Error(m.message), { stack: m.stack || m.message }));
      }
    };
    worker.onerror = (ev) => {
      finish();
      reject(new Error(`the Web Worker failed to start or crashed: ${ev.message || 'no message (see the console)'}`));
    };
    worker.postMessage(msg);
  });
}

/** Run the selected experiment, or evaluate a loaded checkpoint (its file name and bytes). */
async function run(checkpoint?: { name: string; bytes: Uint8Array }): Promise<void> {
  const exp = selected();
  const preset = presetSel.value;
  const seed = Number(seedIn.value) || 0;
  runBtn.disabled = true;
  ckptIn.disabled = true;
  workerIn.disabled = true;
  stopBtn.disabled = false;
  stopRequested = false;
  logEl.textContent = '';
  resultsEl.replaceChildren();
  chart.reset();
  setState('running');
  const inWorker = runsInWorker();
  window.mmlm.worker = inWorker;
  try {
    statusEl.textContent = `starting ${backendSel.value}${inWorker ? ' in a Web Worker' : ''} …`;
    window.mmlm.experiment = checkpoint ? 'checkpoint' : exp.id;
    const t0 = performance.now();
    const prog = progress(t0);
    const stepsParam = Number(params.get('steps'));
    const steps = Number.isInteger(stepsParam) && stepsParam > 0 ? stepsParam : undefined;
    let result: RunResult;
    let backend: string;
    if (inWorker) {
      ({ result, backend } = await runInWorker(
        { kind: 'run', experiment: checkpoint ? 'checkpoint' : exp.id, preset, seed, backend: backendSel.value, steps, checkpoint },
        prog,
      ));
    } else {
      const choice = await initBackend({ backend: backendSel.value, log });
      const a = currentBackend()?.adapter;
      backend = choice.backend;
      prog.backend = `${choice.backend}${a ? ` (${a.description || a.vendor || 'adapter'})` : ''}`;
      window.mmlm.backend = tf.getBackend();
      const backendLine = `${choice.backend} (${choice.provider}${a ? `; adapter ${JSON.stringify(a)}` : ''}; on the page's thread)`;
      log(
        checkpoint
          ? `checkpoint ${checkpoint.name}, backend ${backendLine}`
          : `${exp.id} preset ${preset}, seed ${seed}, backend ${backendLine}`,
      );
      const hooks: RunHooks = {
        ...prog.hooks,
        async yieldToPage() {
          if (stopRequested) throw new Error('stopped by the user');
          await new Promise((r) => setTimeout(r, 0));
        },
      };
      result = checkpoint
        ? await runCheckpoint(checkpoint.bytes, checkpoint.name, hooks)
        : await exp.run(preset, seed, hooks, steps ? { steps } : {});
    }
    chart.draw();
    const seconds = (performance.now() - t0) / 1000;
    const ema = prog.meanStepMs();
    statusEl.textContent = `done on ${backend}${inWorker ? ' in a Web Worker' : ''} in ${seconds.toFixed(1)} s${Number.isNaN(ema) ? '' : ` (mean step ${ema.toFixed(1)} ms)`}. ${result.summary}`;
    const summary = Object.assign(document.createElement('p'), { id: 'summary', textContent: result.summary });
    resultsEl.replaceChildren(summary, ...result.tables.map(renderTable), ...(result.grids ?? []).map(renderGrid));
    resultsEl.dataset.backend = backend;
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
    workerIn.disabled = typeof Worker === 'undefined';
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
