/**
 * The plain training loop the experiments share (no checkpoints; for a resumable loop use
 * `trainLoop`): run `steps` steps, tick a progress handle, log every `logEvery`-th step and the
 * last one, and keep a smoothed loss and the mean of each number over the last steps. Browser-safe.
 */
import type { ProgressHandle } from './types.js';

/** One step's output: its loss, or the loss with other numbers (loss parts, lr, gradient norm, ...). */
export type StepOutput = number | { loss: number };

/** A step's numbers as a record: a bare loss becomes `{ loss }`. */
export type StepValues<R extends StepOutput> = R extends number ? { loss: number } : R;

export interface RunStepsOptions<R extends StepOutput> {
  /** Names the run in errors (e.g. the sub-run's name). */
  name: string;
  /** Steps to run (t = 0 .. steps - 1); 0 runs none. */
  steps: number;
  /** One step at 0-based index t: its loss, or a record of numbers with the loss. */
  step: (t: number) => R;
  /** Ticked (t + 1, show(...)) after each step; done() at the end, also on an error. */
  progress?: ProgressHandle;
  /** The numbers shown on a tick (default: the step's loss). `ema` is the smoothed loss. */
  show?: (r: StepValues<R>, ema: number) => Record<string, number>;
  /** Gets `{ step: t, ...record }` at every t % logEvery === 0 and at the last step. */
  metric?: (record: { step: number } & StepValues<R>) => void;
  /** Default 25. */
  logEvery?: number;
  /** The mean is over the last `window` steps (default: the last 10%, at least one step). */
  window?: number;
  /** Called after each step's metric and tick (e.g. a periodic evaluation). */
  after?: (t: number, r: StepValues<R>) => void;
}

export interface StepsSummary<R extends StepOutput> {
  /** The last step's record (null when no step ran). */
  last: StepValues<R> | null;
  /** The mean of each number of the record over the last `window` steps (null when no step ran). */
  mean: StepValues<R> | null;
  /** Exponential moving average of the loss: ema_0 = loss_0, ema_t = 0.95 ema_(t-1) + 0.05 loss_t (NaN when no step ran). */
  ema: number;
  /** Wall time of the loop. */
  seconds: number;
}

function checkCount(name: string, what: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`runSteps(${name}): ${what} must be an integer >= ${min}, got ${v}`);
}

/** Runs `step(t)` for t = 0 .. steps - 1 with progress, metric logging and averaging; throws on a non-finite loss. */
export function runSteps<R extends StepOutput>(o: RunStepsOptions<R>): StepsSummary<R> {
  const logEvery = o.logEvery ?? 25;
  const window = Math.min(o.window ?? Math.max(1, Math.floor(o.steps / 10)), o.steps);
  checkCount(o.name, 'steps', o.steps, 0);
  checkCount(o.name, 'logEvery', logEvery, 1);
  if (o.window !== undefined) checkCount(o.name, 'window', o.window, 1);
  const show = o.show ?? ((r: StepValues<R>) => ({ loss: r.loss }));
  const t0 = performance.now();
  const sums: Record<string, number> = {};
  let last: StepValues<R> | null = null;
  let ema = Number.NaN;
  try {
    for (let t = 0; t < o.steps; t++) {
      const out = o.step(t);
      const r = (typeof out === 'number' ? { loss: out } : out) as StepValues<R>;
      if (typeof r.loss !== 'number' || !Number.isFinite(r.loss))
        throw new Error(`${o.name}: non-finite loss at step ${t} (got ${r.loss})`);
      ema = t === 0 ? r.loss : 0.95 * ema + 0.05 * r.loss;
      if (t >= o.steps - window) for (const [k, v] of Object.entries(r)) if (typeof v === 'number') sums[k] = (sums[k] ?? 0) + v;
      if (t % logEvery === 0 || t === o.steps - 1) o.metric?.({ step: t, ...r });
      o.progress?.tick(t + 1, show(r, ema));
      o.after?.(t, r);
      last = r;
    }
  } finally {
    o.progress?.done();
  }
  const mean = last ? (Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / window])) as StepValues<R>) : null;
  return { last, mean, ema, seconds: (performance.now() - t0) / 1000 };
}
