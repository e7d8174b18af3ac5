/**
 * A minimal training loop: progress (a bar on a terminal, plain lines otherwise), metrics to JSONL,
 * periodic eval, a checkpoint every N steps, exact resume (weights, optimizer, RNG streams and
 * step restored, so a resumed run reproduces the uninterrupted run's losses on the same backend),
 * a NaN/Inf guard that stops with a clear error and keeps the last good checkpoint, and SIGINT
 * handling (save, then stop cleanly).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import cliProgress from 'cli-progress';
import { type Checkpoint, latestCheckpoint, loadCheckpoint, type StatefulOptimizer, saveCheckpoint } from '../io/checkpoint.js';
import type { Module } from '../nn/module.js';
import type { Rng, RngState } from '../rng/index.js';

export interface TrainLoopOptions {
  /** Total steps (1-based step numbers 1..steps). */
  steps: number;
  /** One training step; returns the loss (a number: the caller reads it inside its own tidy). */
  step: (step: number) => number | Promise<number>;
  model: Module;
  optimizer?: StatefulOptimizer;
  /** Random streams to checkpoint and restore (e.g. data order, dropout), by name. */
  rngs?: Record<string, Rng | { getState(): RngState; setState(s: RngState): void }>;
  config?: unknown;
  evalEvery?: number;
  evalFn?: (step: number) => Record<string, number> | Promise<Record<string, number>>;
  checkpointEvery?: number;
  checkpointDir?: string;
  /** Resume from the latest checkpoint in checkpointDir when there is one (default true when checkpointDir is set). */
  resume?: boolean;
  metricsPath?: string;
  /** Learning rate reported with each step's metrics. */
  lr?: (step: number) => number;
  progress?: 'auto' | 'bar' | 'lines' | 'none';
  name?: string;
  /** Stops the loop (checkpoint first) when aborted; SIGINT aborts it too unless handleSigint is false. */
  signal?: AbortSignal;
  handleSigint?: boolean;
  log?: (line: string) => void;
  onStep?: (step: number, loss: number) => void;
}

export interface TrainLoopResult {
  /** Last step completed. */
  step: number;
  losses: number[];
  resumedFrom: number | null;
  interrupted: boolean;
  evals: { step: number; metrics: Record<string, number> }[];
}

export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly value: number,
    readonly lastCheckpoint: string | null,
  ) {
    super(`training stopped: loss is ${value} at step ${step}; the last good checkpoint is ${lastCheckpoint ?? '(none written)'}`);
    this.name = 'NonFiniteLossError';
  }
}

/** Restore a model/optimizer/rngs from a loaded checkpoint (disposes the loaded tensors). */
export function restoreCheckpoint(ck: Checkpoint, model: Module, optimizer?: StatefulOptimizer, rngs?: TrainLoopOptions['rngs']): void {
  model.loadStateDict(ck.weights);
  for (const t of Object.values(ck.weights)) t.dispose();
  if (optimizer) {
    if (!ck.optimizer) throw new Error(`resume: checkpoint ${ck.dir} has no optimizer state`);
    optimizer.loadStateDict(ck.optimizer);
    for (const t of Object.values(ck.optimizer.tensors)) t.dispose();
  }
  if (rngs) {
    const saved = (ck.rng ?? {}) as Record<string, RngState>;
    for (const [name, r] of Object.entries(rngs)) {
      if (!saved[name]) throw new Error(`resume: checkpoint ${ck.dir} has no state for rng "${name}"`);
      r.setState(saved[name]);
    }
  }
}

export async function trainLoop(o: TrainLoopOptions): Promise<TrainLoopResult> {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`trainLoop: steps must be an integer >= 1, got ${o.steps}`);
  if (o.checkpointEvery && !o.checkpointDir) throw new Error('trainLoop: checkpointEvery needs checkpointDir');
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const name = o.name ?? 'train';
  let start = 0;
  let resumedFrom: number | null = null;
  let lastGood: string | null = null;
  if (o.checkpointDir && (o.resume ?? true)) {
    const latest = latestCheckpoint(o.checkpointDir);
    if (latest) {
      const ck = await loadCheckpoint(latest);
      restoreCheckpoint(ck, o.model, o.optimizer, o.rngs);
      start = ck.step;
      resumedFrom = ck.step;
      lastGood = latest;
      log(`${name}: resumed from ${latest} (step ${ck.step})`);
    }
  }
  const save = (step: number) => {
    if (!o.checkpointDir) return;
    const rng = o.rngs ? Object.fromEntries(Object.entries(o.rngs).map(([k, r]) => [k, r.getState()])) : undefined;
    lastGood = saveCheckpoint(o.checkpointDir, { model: o.model, optimizer: o.optimizer, step, rng, config: o.config });
  };
  if (o.metricsPath) mkdirSync(dirname(o.metricsPath), { recursive: true });
  const mode = o.progress ?? 'auto';
  const useBar = mode === 'bar' || (mode === 'auto' && process.stdout.isTTY === true && !process.env.CI);
  const bar = useBar
    ? new cliProgress.SingleBar(
        { format: `${name} [{bar}] {value}/{total} loss {loss} ETA {eta_formatted}` },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(o.steps, start, { loss: '-' });
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  if (o.handleSigint !== false) process.once('SIGINT', onSigint);
  const losses: number[] = [];
  const evals: TrainLoopResult['evals'] = [];
  const t0 = Date.now();
  let step = start;
  try {
    for (step = start + 1; step <= o.steps; step++) {
      if (interrupted || o.signal?.aborted) {
        interrupted = true;
        step -= 1;
        save(step);
        log(`${name}: interrupted; saved checkpoint at step ${step}${lastGood ? ` (${lastGood})` : ''}`);
        break;
      }
      const loss = await o.step(step);
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(step, loss, lastGood);
      losses.push(loss);
      o.onStep?.(step, loss);
      const rec: Record<string, number> = { step, loss, time: (Date.now() - t0) / 1000 };
      if (o.lr) rec.lr = o.lr(step);
      if (o.evalFn && o.evalEvery && (step % o.evalEvery === 0 || step === o.steps)) {
        const m = await o.evalFn(step);
        evals.push({ step, metrics: m });
        Object.assign(rec, m);
      }
      if (o.metricsPath) appendFileSync(o.metricsPath, `${JSON.stringify(rec)}\n`);
      if (bar) bar.update(step, { loss: loss.toFixed(4) });
      else if (mode !== 'none' && (step === 1 || step === o.steps || step % Math.max(1, Math.round(o.steps / 10)) === 0))
        log(`${name}: step ${step}/${o.steps} loss ${loss.toFixed(4)}`);
      if (o.checkpointEvery && (step % o.checkpointEvery === 0 || step === o.steps)) save(step);
    }
    if (step > o.steps) step = o.steps;
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSigint);
  }
  return { step, losses, resumedFrom, interrupted, evals };
}
