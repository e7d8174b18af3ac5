/**
 * The Web Worker that runs an experiment off the page's thread (main.ts starts it as a module
 * worker; `?worker=0` runs in the page instead). It initialises its own TensorFlow.js backend (wasm
 * binaries next to the bundle; WebGPU through the worker's `navigator.gpu`), runs the experiment
 * or the checkpoint evaluation with hooks that post every step and log line to the page, and posts
 * the result or the error. A 'stop' message is seen between steps (each step yields to the
 * worker's event loop).
 */
import { currentBackend, initBackend, tf } from '@mmlm/core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { runCheckpoint } from './checkpoint.js';
import { EXPERIMENTS, type RunHooks } from './experiments.js';
import type { FromWorker, ToWorker } from './protocol.js';

// The wasm binaries sit next to the bundle (copied by scripts/build.mjs), as for the page.
setWasmPaths(new URL('./', import.meta.url).href);

const post = (m: FromWorker) => (self as unknown as { postMessage(m: FromWorker): void }).postMessage(m);
let stopRequested = false;
let running = false;

async function run(m: Extract<ToWorker, { kind: 'run' }>): Promise<void> {
  const exp = EXPERIMENTS.find((e) => e.id === m.experiment);
  if (!m.checkpoint && !exp)
    throw new Error(`worker: unknown experiment "${m.experiment}"; expected one of ${EXPERIMENTS.map((e) => e.id).join(', ')}`);
  const log = (line: string) => post({ kind: 'log', line });
  const choice = await initBackend({ backend: m.backend, log });
  const a = currentBackend()?.adapter;
  post({
    kind: 'backend',
    backend: choice.backend,
    tfBackend: tf.getBackend(),
    line: `${choice.backend} (${choice.provider}${a ? `; adapter ${JSON.stringify(a)}` : ''}; in a Web Worker)`,
    adapterLabel: a ? a.description || a.vendor || 'adapter' : undefined,
  });
  const hooks: RunHooks = {
    step: (series, step, total, loss, ms) => post({ kind: 'step', series, step, total, loss, ms }),
    log,
    async yieldToPage() {
      // lets a 'stop' message in (the worker's event loop runs between steps)
      await new Promise((r) => setTimeout(r, 0));
      if (stopRequested) throw new Error('stopped by the user');
    },
  };
  const result = m.checkpoint
    ? await runCheckpoint(m.checkpoint.bytes, m.checkpoint.name, hooks)
    : await exp!.run(m.preset, m.seed, hooks, m.steps ? { steps: m.steps } : {});
  post({ kind: 'done', result });
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.kind === 'stop') {
    stopRequested = true;
    return;
  }
  if (m.kind !== 'run') {
    post({ kind: 'error', message: `worker: unknown message kind ${JSON.stringify((m as { kind?: unknown }).kind)}`, stack: '' });
    return;
  }
  if (running) {
    post({ kind: 'error', message: 'worker: a run is already in progress (one run per worker)', stack: '' });
    return;
  }
  running = true;
  stopRequested = false;
  run(m)
    .catch((e: unknown) => post({ kind: 'error', message: (e as Error)?.message ?? String(e), stack: (e as Error)?.stack ?? String(e) }))
    .finally(() => {
      running = false;
    });
};
