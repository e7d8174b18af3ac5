/**
 * Learning-rate schedules as pure functions of the 0-based step. Warmup is linear and reaches the
 * peak on its last step: lr(s) = peak * (s + 1) / warmup for s < warmup (no step at lr 0). After
 * warmup, with progress q = min(1, (s - warmup) / (total - warmup)):
 *   cosine (SGDR, Loshchilov & Hutter 2017; nanoGPT's decay): min + (peak - min) * (1 + cos(pi q)) / 2
 *   linear:                                                   peak + (min - peak) * q
 *   constant:                                                 peak
 * Steps past `total` stay at min.
 */

export type Schedule = (step: number) => number;

export interface WarmupDecayOptions {
  /** The lr at the end of warmup. */
  peak: number;
  /** The lr at step `total` and after. Default 0. */
  min?: number;
  /** Warmup steps (integer >= 0). */
  warmup: number;
  /** Step at which the decay reaches `min` (integer >= 1, >= warmup). */
  total: number;
}

function checkLr(who: string, name: string, x: number): void {
  if (!(typeof x === 'number' && x >= 0 && Number.isFinite(x))) throw new Error(`${who}: ${name} must be a finite number >= 0, got ${x}`);
}

function check(who: string, o: { peak: number; min?: number; warmup: number; total: number }): void {
  checkLr(who, 'peak', o.peak);
  if (o.min !== undefined) checkLr(who, 'min', o.min);
  if (!Number.isInteger(o.warmup) || o.warmup < 0) throw new Error(`${who}: warmup must be an integer >= 0, got ${o.warmup}`);
  if (!Number.isInteger(o.total) || o.total < 1) throw new Error(`${who}: total must be an integer >= 1, got ${o.total}`);
  if (o.warmup > o.total) throw new Error(`${who}: warmup (${o.warmup}) must not exceed total (${o.total})`);
}

function checkStep(who: string, step: number): void {
  if (!(typeof step === 'number' && step >= 0 && Number.isFinite(step)))
    throw new Error(`${who}: step must be a finite number >= 0, got ${step}`);
}

function warmupThen(who: string, o: WarmupDecayOptions, decay: (q: number, min: number) => number): Schedule {
  check(who, o);
  const min = o.min ?? 0;
  const span = o.total - o.warmup;
  return (step) => {
    checkStep(who, step);
    if (step < o.warmup) return (o.peak * (step + 1)) / o.warmup;
    return decay(span === 0 ? 1 : Math.min(1, (step - o.warmup) / span), min);
  };
}

/** Linear warmup to `peak` over `warmup` steps, then constant. */
export function constantSchedule(o: { peak: number; warmup?: number }): Schedule {
  const warmup = o.warmup ?? 0;
  check('constantSchedule', { peak: o.peak, warmup, total: Math.max(1, warmup) });
  return (step) => {
    checkStep('constantSchedule', step);
    return step < warmup ? (o.peak * (step + 1)) / warmup : o.peak;
  };
}

/** Linear warmup, then cosine decay from `peak` to `min` at step `total`. */
export function warmupCosine(o: WarmupDecayOptions): Schedule {
  return warmupThen('warmupCosine', o, (q, min) => min + 0.5 * (o.peak - min) * (1 + Math.cos(Math.PI * q)));
}

/** Linear warmup, then linear decay from `peak` to `min` at step `total`. */
export function warmupLinear(o: WarmupDecayOptions): Schedule {
  return warmupThen('warmupLinear', o, (q, min) => o.peak + (min - o.peak) * q);
}
