/**
 * A minimal training loop: progress (a cli-progress bar on a terminal, plain lines otherwise),
 * metrics as JSONL (one object per step), periodic evaluation, a checkpoint every N steps, exact
 * resume (weights, optimizer state, RNG streams and step are restored, so a resumed run reproduces
 * the uninterrupted run's losses on the same backend), a NaN/Inf guard that stops with an error
 * and leaves the last good checkpoint untouched, and SIGINT / AbortSignal handling (finish the
 * current step, save a checkpoint, return with `interrupted: true`).
 *
 * Steps are numbered 1..steps; a checkpoint at step k holds the state after k completed steps.
 *
 * In a browser bundle the loop runs without files (no checkpointDir / metricsPath: those need Node
 * and throw "not available in the browser"), logs through console.log, never draws a bar and
 * installs no SIGINT handler (stop it with `signal`).
 */
import { fs } from '#platform';
import { makeProgress } from '../experiment/progress.js';
import {
  type Checkpoint,
  disposeCheckpoint,
  latestCheckpoint,
  loadLatestCheckpoint,
  NonFiniteTensorError,
  saveCheckpoint,
} from '../io/checkpoint.js';
import { writeFileAtomic } from '../io/safetensors.js';
import type { Module } from '../nn/module.js';
import type { RngState } from '../rng/index.js';
import type { StatefulOptimizer } from './optimizer.js';

const { appendFileSync, existsSync, readFileSync } = fs;

/** Node's `process` when there is one (read at call time: a browser has none). */
function nodeProcess(): NodeJS.Process | undefined {
  return (globalThis as { process?: NodeJS.Process }).process;
}

/** Anything with Rng's state accessors. */
export interface RngLike {
  getState(): RngState;
  setState(s: RngState): void;
}

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

/** One line of the metrics JSONL. */
export interface StepRecord {
  step: number;
  loss: number;
  /** Seconds since this trainLoop call started. */
  time: number;
  lr?: number;
  [evalMetric: string]: number | undefined;
}

export interface TrainLoopOptions {
  /** The last step number (steps run are start+1..steps, where start is 0 or the resumed step). */
  steps: number;
  /** One optimisation step; returns the loss as a number (read it inside the step's own tf.tidy). */
  step: (step: number) => number | Promise<number>;
  model: Module;
  optimizer?: StatefulOptimizer;
  /** A random stream to checkpoint and restore (e.g. the data order). */
  rng?: RngLike;
  /**
   * More named random streams. The model's own (`model.namedRngs()`: dropout, mask noise) are
   * checkpointed and resumed without being listed here, as `module.<path>`; a stream listed here too
   * keeps the name given here. A checkpoint written without a module stream's state (an older one)
   * resumes with a warning through `log`, that stream continuing from where it is.
   */
  rngs?: Record<string, RngLike>;
  /** Saved in every checkpoint; on resume a different config is reported through `log`. */
  config?: unknown;
  /** Run evalFn every evalEvery steps and after the last step. */
  evalEvery?: number;
  evalFn?: (step: number) => Record<string, number> | Promise<Record<string, number>>;
  /** Save every checkpointEvery steps; with checkpointDir set a checkpoint is also saved after the last step and on interrupt. */
  checkpointEvery?: number;
  checkpointDir?: string;
  /** Checkpoints kept under checkpointDir (default 2). */
  keepCheckpoints?: number;
  /**
   * Continue from the latest checkpoint in checkpointDir when there is one (the newest that loads: a
   * corrupt newest one is reported through `log` and the previous one used). Without it, a
   * checkpointDir that already holds checkpoints is an error.
   */
  resume?: boolean;
  /** JSONL metrics. A fresh run starts the file anew; a resumed run keeps the records up to the resumed step. */
  metricsPath?: string;
  /** Learning rate recorded with each step. */
  lr?: number | ((step: number) => number);
  progress?: ProgressMode;
  /** Plain-line progress every logEvery steps (default: about 20 lines per run). */
  logEvery?: number;
  /** Prefix of log lines and the bar. */
  name?: string;
  /** Stop (after the current step, with a checkpoint) when aborted. */
  signal?: AbortSignal;
  /** Treat SIGINT like an abort (default true). A second SIGINT during the same run kills the process as usual. */
  handleSigint?: boolean;
  /** Where log lines go (default stdout). */
  log?: (line: string) => void;
  onStep?: (step: number, loss: number, record: StepRecord) => void | Promise<void>;
}

export interface TrainLoopResult {
  /** The last completed step. */
  step: number;
  /** The losses of the steps this call ran (start+1..step). */
  losses: number[];
  resumedFrom: number | null;
  /** Stopped early by SIGINT or the AbortSignal. */
  interrupted: boolean;
  evals: { step: number; metrics: Record<string, number> }[];
  /** The newest checkpoint folder, if any. */
  lastCheckpoint: string | null;
  /**
   * Wall seconds of training over every call that built this run: the seconds recorded in the
   * checkpoint this call resumed from plus this call's own up to the end of its last step (steps,
   * evaluations, checkpoints before it; each checkpoint records the total up to its step, so a call
   * that resumes a finished run and runs no step returns the same total). Work
   * done after a run's last checkpoint and lost to a crash is not counted (its steps are redone and
   * counted once). `null` when the run resumed from a checkpoint written without the record (by an
   * older version); then `seconds` alone is known.
   */
  trainSeconds: number | null;
  /** Wall seconds of this call alone. */
  seconds: number;
}

/** Where trainLoop keeps its own bookkeeping in a checkpoint's `extra`. */
interface LoopExtra {
  trainLoop?: { trainSeconds?: unknown };
}

/** The loss (or a tensor about to be checkpointed) became NaN or Inf. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly value: number,
    readonly lastCheckpoint: string | null,
    what = `loss is ${value}`,
  ) {
    super(`trainLoop: ${what} at step ${step}; stopped. The last good checkpoint is ${lastCheckpoint ?? '(none written)'}`);
    this.name = 'NonFiniteLossError';
  }
}

const RESERVED = new Set(['step', 'loss', 'time', 'lr']);

function positiveInt(v: number | undefined, what: string): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new Error(`trainLoop: ${what} must be an integer >= 1, got ${v}`);
}

/** Restore model, optimizer and random streams from a loaded checkpoint; disposes the checkpoint's tensors. */
export function restoreCheckpoint(
  ck: Checkpoint,
  target: { model: Module; optimizer?: StatefulOptimizer; rng?: RngLike; rngs?: Record<string, RngLike> },
): void {
  try {
    if (target.optimizer && !ck.optimizer)
      throw new Error(`restoreCheckpoint: ${ck.dir} holds no optimizer state, but an optimizer was given`);
    if (target.rng && !ck.rng) throw new Error(`restoreCheckpoint: ${ck.dir} holds no rng state, but rng was given`);
    const missing = Object.keys(target.rngs ?? {}).filter((k) => !ck.rngs?.[k]);
    if (missing.length)
      throw new Error(
        `restoreCheckpoint: ${ck.dir} holds no state for rngs ${missing.map((k) => `"${k}"`).join(', ')} (it has ${Object.keys(ck.rngs ?? {}).join(', ') || 'none'})`,
      );
    target.model.loadStateDict(ck.weights);
    if (target.optimizer && ck.optimizer) target.optimizer.loadStateDict(ck.optimizer);
    if (target.rng && ck.rng) target.rng.setState(ck.rng);
    for (const [k, r] of Object.entries(target.rngs ?? {})) r.setState(ck.rngs![k]!);
  } finally {
    disposeCheckpoint(ck);
  }
}

/** Keep the records with step <= `upTo` that parse as whole JSON lines; rewrite the file atomically. */
async function trimMetrics(path: string, upTo: number): Promise<number> {
  if (!existsSync(path)) {
    await writeFileAtomic(path, '');
    return 0;
  }
  const kept: string[] = [];
  let dropped = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let rec: { step?: unknown } | null = null;
    try {
      rec = JSON.parse(line);
    } catch {
      rec = null;
    }
    if (rec && typeof rec.step === 'number' && rec.step <= upTo) kept.push(line);
    else dropped++;
  }
  await writeFileAtomic(path, kept.length ? `${kept.join('\n')}\n` : '');
  return dropped;
}

export async function trainLoop(o: TrainLoopOptions): Promise<TrainLoopResult> {
  positiveInt(o.steps, 'steps');
  if (o.steps === undefined) throw new Error('trainLoop: steps is required');
  positiveInt(o.evalEvery, 'evalEvery');
  positiveInt(o.checkpointEvery, 'checkpointEvery');
  positiveInt(o.logEvery, 'logEvery');
  if (typeof o.step !== 'function') throw new Error(`trainLoop: step must be a function, got ${typeof o.step}`);
  if (o.evalEvery && !o.evalFn) throw new Error('trainLoop: evalEvery needs evalFn');
  if (o.checkpointEvery && !o.checkpointDir) throw new Error('trainLoop: checkpointEvery needs checkpointDir');
  if (o.resume && !o.checkpointDir) throw new Error('trainLoop: resume needs checkpointDir');
  // the model's own random streams (dropout, mask noise) not already given by the caller
  const given = new Set<unknown>([o.rng, ...Object.values(o.rngs ?? {})]);
  const moduleRngs: Record<string, RngLike> = Object.fromEntries(
    (typeof o.model?.namedRngs === 'function' ? o.model.namedRngs() : [])
      .filter(([, r]) => !given.has(r))
      .map(([k, r]) => [`module.${k}`, r]),
  );
  const mode = o.progress ?? 'auto';
  if (!['auto', 'bar', 'lines', 'none'].includes(mode))
    throw new Error(`trainLoop: progress must be 'auto', 'bar', 'lines' or 'none', got ${JSON.stringify(mode)}`);
  const proc = nodeProcess();
  const log = o.log ?? (proc?.stdout ? (l: string) => proc.stdout.write(`${l}\n`) : (l: string) => console.log(l));
  const name = o.name ?? 'train';

  let start = 0;
  let resumedFrom: number | null = null;
  let lastGood: string | null = null;
  // seconds of training before this call (from the checkpoint resumed); null: not recorded there
  let before: number | null = 0;
  if (o.checkpointDir) {
    const latest = latestCheckpoint(o.checkpointDir);
    if (latest && !o.resume)
      throw new Error(
        `trainLoop: ${o.checkpointDir} already holds checkpoints (latest ${latest}); pass resume: true to continue that run, or use an empty folder`,
      );
    // The newest checkpoint that loads: a corrupt newest one is reported and the previous one used.
    const ck = latest ? await loadLatestCheckpoint(o.checkpointDir, { onWarning: (m) => log(`${name}: warning: ${m}`) }) : null;
    if (ck) {
      const step = ck.step;
      const from = ck.dir;
      if (o.config !== undefined && JSON.stringify(ck.config ?? null) !== JSON.stringify(o.config))
        log(`${name}: note: the config differs from the checkpoint's (${from})`);
      const missingModuleRngs = Object.keys(moduleRngs).filter((k) => !ck.rngs?.[k]);
      if (missingModuleRngs.length)
        log(
          `${name}: warning: ${from} holds no state for the model's random streams ${missingModuleRngs.join(', ')} (written before they were checkpointed); they continue from their current state, so this resume is not bit-exact`,
        );
      const rec = (ck.extra as LoopExtra | undefined)?.trainLoop?.trainSeconds;
      before = typeof rec === 'number' && Number.isFinite(rec) && rec >= 0 ? rec : null;
      const restorable = Object.fromEntries(Object.entries(moduleRngs).filter(([k]) => ck.rngs?.[k]));
      restoreCheckpoint(ck, { model: o.model, optimizer: o.optimizer, rng: o.rng, rngs: { ...restorable, ...o.rngs } });
      start = step;
      resumedFrom = step;
      lastGood = from;
      log(`${name}: resumed from ${from} (step ${step})`);
    }
  }
  if (o.metricsPath) {
    if (resumedFrom === null) await writeFileAtomic(o.metricsPath, '');
    else {
      const dropped = await trimMetrics(o.metricsPath, resumedFrom);
      if (dropped) log(`${name}: dropped ${dropped} metrics lines past step ${resumedFrom} (or torn) from ${o.metricsPath}`);
    }
  }

  let lastSaved = resumedFrom ?? -1;
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  // `total`: the run's training seconds up to the end of `step` (recorded in the checkpoint)
  const save = async (step: number, total: number | null) => {
    if (!o.checkpointDir || step === lastSaved) return;
    try {
      lastGood = await saveCheckpoint(
        o.checkpointDir,
        {
          model: o.model,
          optimizer: o.optimizer,
          step,
          ...(o.rng ? { rng: o.rng.getState() } : {}),
          ...(o.rngs || Object.keys(moduleRngs).length
            ? { rngs: Object.fromEntries(Object.entries({ ...moduleRngs, ...o.rngs }).map(([k, r]) => [k, r.getState()])) }
            : {}),
          config: o.config,
          ...(total === null ? {} : { extra: { trainLoop: { trainSeconds: total } } satisfies LoopExtra }),
        },
        { keep: o.keepCheckpoints ?? 2 },
      );
      lastSaved = step;
    } catch (e) {
      if (e instanceof NonFiniteTensorError) throw new NonFiniteLossError(step, e.value, lastGood, `${e.tensor} holds ${e.value}`);
      throw e;
    }
  };

  const canBar = proc?.stderr != null;
  const useBar = canBar && (mode === 'bar' || (mode === 'auto' && proc.stderr.isTTY === true && !proc.env.CI));
  const logEvery = o.logEvery ?? Math.max(1, Math.round(o.steps / 20));
  // the project's one progress reporter (a bar on stderr here, so stdout stays for results)
  const bar = useBar && start < o.steps ? makeProgress('bar', log, proc.stderr)(name, o.steps) : null;

  let stopRequested = false;
  const onSigint = () => {
    stopRequested = true;
    proc?.[bar ? 'stderr' : 'stdout'].write(`\n${name}: SIGINT, stopping after this step (press Ctrl-C again to quit now)\n`);
    proc?.removeListener('SIGINT', onSigint);
  };
  if (o.handleSigint !== false) proc?.on?.('SIGINT', onSigint);

  const losses: number[] = [];
  const evals: TrainLoopResult['evals'] = [];
  let done = start;
  let interrupted = false;
  let endSeconds = 0;
  try {
    for (let i = start + 1; i <= o.steps; i++) {
      if (stopRequested || o.signal?.aborted) {
        interrupted = true;
        break;
      }
      const loss = await o.step(i);
      if (typeof loss !== 'number') throw new Error(`trainLoop: step ${i} returned ${typeof loss}, expected the loss as a number`);
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(i, loss, lastGood);
      done = i;
      losses.push(loss);
      const rec: StepRecord = { step: i, loss, time: elapsed() };
      const lr = typeof o.lr === 'function' ? o.lr(i) : o.lr;
      if (lr !== undefined) rec.lr = lr;
      if (o.evalFn && ((o.evalEvery && i % o.evalEvery === 0) || i === o.steps)) {
        const m = await o.evalFn(i);
        for (const k of Object.keys(m))
          if (RESERVED.has(k))
            throw new Error(`trainLoop: evalFn returned the reserved metric name "${k}" (reserved: ${[...RESERVED].join(', ')})`);
        evals.push({ step: i, metrics: m });
        Object.assign(rec, m);
      }
      if (o.metricsPath) appendFileSync(o.metricsPath, `${JSON.stringify(rec)}\n`);
      if (bar) bar.tick(i, { loss });
      else if (mode !== 'none' && (i === start + 1 || i === o.steps || i % logEvery === 0)) {
        const ev = Object.keys(rec).filter((k) => !RESERVED.has(k));
        log(`${name}: step ${i}/${o.steps} loss ${loss.toFixed(4)}${ev.map((k) => ` ${k} ${rec[k]!.toFixed(4)}`).join('')}`);
      }
      await o.onStep?.(i, loss, rec);
      endSeconds = elapsed();
      if (o.checkpointEvery && i % o.checkpointEvery === 0) await save(i, before === null ? null : before + endSeconds);
    }
    // the last checkpoint records exactly the total returned; a call that ran no step adds nothing
    if (done > start) await save(done, before === null ? null : before + endSeconds);
  } finally {
    bar?.done();
    proc?.removeListener?.('SIGINT', onSigint);
  }
  if (interrupted) log(`${name}: interrupted after step ${done}${lastGood ? `; checkpoint ${lastGood}` : ''}`);
  const seconds = elapsed();
  return {
    step: done,
    losses,
    resumedFrom,
    interrupted,
    evals,
    lastCheckpoint: lastGood,
    trainSeconds: before === null ? null : before + endSeconds,
    seconds,
  };
}
