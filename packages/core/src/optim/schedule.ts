/** Learning-rate schedules as pure functions of the step (0-based). */

export type Schedule = (step: number) => number;

function check(who: string, o: { warmup: number; total: number }): void {
  if (!Number.isInteger(o.warmup) || o.warmup < 0) throw new Error(`${who}: warmup must be an integer >= 0, got ${o.warmup}`);
  if (!Number.isInteger(o.total) || o.total < 1) throw new Error(`${who}: total must be an integer >= 1, got ${o.total}`);
  if (o.warmup > o.total) throw new Error(`${who}: warmup (${o.warmup}) must not exceed total (${o.total})`);
}

/** Linear warmup from 0 to peak over `warmup` steps (lr = peak*(step+1)/warmup), then constant. */
export function constantSchedule(o: { peak: number; warmup?: number; total?: number }): Schedule {
  const warmup = o.warmup ?? 0;
  check('constantSchedule', { warmup, total: o.total ?? Math.max(1, warmup) });
  return (step) => (step < warmup ? (o.peak * (step + 1)) / warmup : o.peak);
}

/** Linear warmup, then cosine decay from peak to min at step `total`. */
export function warmupCosine(o: { peak: number; min?: number; warmup: number; total: number }): Schedule {
  check('warmupCosine', o);
  const min = o.min ?? 0;
  return (step) => {
    if (step < o.warmup) return (o.peak * (step + 1)) / o.warmup;
    const span = o.total - o.warmup;
    const p = span === 0 ? 1 : Math.min(1, (step - o.warmup) / span);
    return min + 0.5 * (o.peak - min) * (1 + Math.cos(Math.PI * p));
  };
}

/** Linear warmup, then linear decay from peak to min at step `total`. */
export function warmupLinear(o: { peak: number; min?: number; warmup: number; total: number }): Schedule {
  check('warmupLinear', o);
  const min = o.min ?? 0;
  return (step) => {
    if (step < o.warmup) return (o.peak * (step + 1)) / o.warmup;
    const span = o.total - o.warmup;
    const p = span === 0 ? 1 : Math.min(1, (step - o.warmup) / span);
    return o.peak + (min - o.peak) * p;
  };
}
