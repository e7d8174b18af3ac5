/**
 * Messages between the page (main.ts) and the Web Worker that runs an experiment (worker.ts). Every
 * payload is structured-cloneable (plain objects, numbers, strings, typed arrays).
 */
import type { RunResult } from './experiments.js';

/** Page -> worker. */
export type ToWorker =
  | {
      kind: 'run';
      /** An experiment id of EXPERIMENTS, or 'checkpoint' with `checkpoint` set. */
      experiment: string;
      preset: string;
      seed: number;
      backend: string;
      steps?: number;
      checkpoint?: { name: string; bytes: Uint8Array };
    }
  | { kind: 'stop' };

/** Worker -> page. */
export type FromWorker =
  | { kind: 'backend'; backend: string; tfBackend: string; line: string; adapterLabel?: string }
  | { kind: 'step'; series: string; step: number; total: number; loss: number; ms: number }
  | { kind: 'log'; line: string }
  | { kind: 'done'; result: RunResult }
  | { kind: 'error'; message: string; stack: string };
