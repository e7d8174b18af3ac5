/**
 * Seed statistics for claim tables (browser-safe: no Node imports): mean ± sample standard
 * deviation over seeds, and a comparison of two arms that calls a difference only beyond two
 * standard errors (DESIGN.md, "Experiments and reports").
 */

export interface MeanStd {
  mean: number;
  /** Sample standard deviation (divides by n - 1); NaN when n < 2. */
  std: number;
  n: number;
  /** Standard error of the mean, std / sqrt(n); NaN when n < 2. */
  se: number;
}

export interface SeedComparison {
  /** mean(a) - mean(b). */
  diff: number;
  /** Standard error of the difference, sqrt(se_a^2 + se_b^2) (Welch); NaN when either side has one value. */
  se: number;
  /** |diff| > 2 se, with at least two values on each side. */
  significant: boolean;
  /** The better side when significant, else null. */
  winner: 'a' | 'b' | null;
  /** One line for a report, e.g. "a better: +0.0500 ± 0.0120 (> 2 SE)". */
  text: string;
}

function checkValues(xs: readonly number[], what: string): void {
  if (xs.length === 0) throw new Error(`${what}: no values (need at least one seed's value)`);
  const i = xs.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
  if (i >= 0) throw new Error(`${what}: value ${i} is ${String(xs[i])}, not a finite number`);
}

/** Mean, sample standard deviation (n - 1), n and standard error of `xs`; throws on empty or non-finite input. */
export function meanStd(xs: readonly number[]): MeanStd {
  checkValues(xs, 'meanStd');
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  if (n < 2) return { mean, std: Number.NaN, n, se: Number.NaN };
  const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  return { mean, std, n, se: std / Math.sqrt(n) };
}

/** Decimal places that show a value to `sig` significant digits (0 to 8). */
function decimalsFor(v: number, sig: number): number {
  if (!Number.isFinite(v) || v === 0) return sig - 1;
  const rounded = Math.abs(Number(v.toPrecision(sig))); // 0.0099999 -> 0.010: two digits, not three
  return Math.min(8, Math.max(0, sig - 1 - Math.floor(Math.log10(rounded))));
}

/**
 * "mean ± std" with `digits` decimal places ("0.912 ± 0.013" for digits 3). Without `digits`, the
 * std is shown to two significant digits and the mean to the same place (four significant digits
 * of the mean when there is no std). A missing std (one seed) shows as "—".
 */
export function formatMeanStd(m: { mean: number; std: number }, digits?: number): string {
  if (!Number.isFinite(m.mean)) return '—';
  const hasStd = Number.isFinite(m.std);
  const d = digits ?? (hasStd && m.std > 0 ? decimalsFor(m.std, 2) : decimalsFor(m.mean, 4));
  return `${m.mean.toFixed(d)} ± ${hasStd ? m.std.toFixed(d) : '—'}`;
}

/**
 * Compare two arms over seeds: the difference of means, its standard error sqrt(se_a^2 + se_b^2)
 * and whether it exceeds two standard errors. `better` says which direction wins. With one value
 * on either side nothing is called ("one seed: cannot judge"). `labels` name a and b in `text`.
 */
export function compareSeeds(
  a: readonly number[],
  b: readonly number[],
  better: 'higher' | 'lower',
  labels: [string, string] = ['a', 'b'],
): SeedComparison {
  if (better !== 'higher' && better !== 'lower') throw new Error(`compareSeeds: better must be 'higher' or 'lower', got ${String(better)}`);
  checkValues(a, 'compareSeeds (a)');
  checkValues(b, 'compareSeeds (b)');
  const ma = meanStd(a);
  const mb = meanStd(b);
  const diff = ma.mean - mb.mean;
  const sign = diff >= 0 ? '+' : '';
  if (ma.n < 2 || mb.n < 2) {
    return {
      diff,
      se: Number.NaN,
      significant: false,
      winner: null,
      text: `one seed: cannot judge (${labels[0]} - ${labels[1]} = ${sign}${diff.toPrecision(4)})`,
    };
  }
  const se = Math.sqrt(ma.se ** 2 + mb.se ** 2);
  const significant = Math.abs(diff) > 2 * se;
  const aWins = better === 'higher' ? diff > 0 : diff < 0;
  const winner = significant ? (aWins ? 'a' : 'b') : null;
  const d = se > 0 ? decimalsFor(se, 2) : decimalsFor(diff, 4);
  const delta = `${labels[0]} - ${labels[1]} = ${sign}${diff.toFixed(d)} ± ${se.toFixed(d)} (SE, n = ${ma.n} and ${mb.n})`;
  const text = winner
    ? `${labels[winner === 'a' ? 0 : 1]} better (${better} is better): ${delta}, beyond 2 SE`
    : `no difference beyond 2 SE: ${delta}`;
  return { diff, se, significant, winner, text };
}

/** What `seedValues` reads of an experiment result. */
interface HasMetrics {
  metrics: Record<string, unknown>;
}

/** The finite values of metric `key` over the seeds' results (null, NaN, strings, booleans and missing values left out). */
export function seedValues(results: readonly HasMetrics[], key: string): number[] {
  const out: number[] = [];
  for (const r of results) {
    const v = r.metrics[key];
    if (typeof v === 'number' && Number.isFinite(v)) out.push(v);
  }
  return out;
}

/** "mean ± std" of metric `key` over the seeds, null when no seed has a finite value; `scale` multiplies each value first (100 for percent). */
export function seedCell(results: readonly HasMetrics[], key: string, scale = 1): string | null {
  const xs = seedValues(results, key).map((x) => x * scale);
  return xs.length ? formatMeanStd(meanStd(xs)) : null;
}

export interface SeedVerdict {
  /** Both sides' mean ± std, the difference ± its standard error and the call. */
  text: string;
  /** |difference| > 2 standard errors (needs at least two seeds per side). */
  significant: boolean;
  /** The side that is better beyond two standard errors, else null. */
  winner: 'a' | 'b' | null;
}

/**
 * A claim verdict over seeds for an aggregate's summary: `compareSeeds` worded as "exceeds two
 * standard errors" (and which side is better) or "within two standard errors: not distinguishable",
 * with both sides' mean ± std; with one seed on either side nothing is judged.
 */
export function seedVerdict(a: readonly number[], b: readonly number[], better: 'higher' | 'lower', labels: [string, string]): SeedVerdict {
  if (!a.length || !b.length) return { text: `${labels[0]} vs ${labels[1]}: no values to compare`, significant: false, winner: null };
  const ma = meanStd(a);
  const mb = meanStd(b);
  const c = compareSeeds(a, b, better, labels);
  const sides = `${labels[0]} ${formatMeanStd(ma)} vs ${labels[1]} ${formatMeanStd(mb)}`;
  const sign = c.diff >= 0 ? '+' : '';
  if (ma.n < 2 || mb.n < 2)
    return { text: `${sides}: one seed, cannot judge (difference ${sign}${c.diff.toPrecision(3)})`, significant: false, winner: null };
  const delta = `difference ${sign}${c.diff.toPrecision(3)} ± ${c.se.toPrecision(2)} (SE, n = ${ma.n} and ${mb.n})`;
  const text = c.winner
    ? `${sides}: ${delta} exceeds two standard errors, ${labels[c.winner === 'a' ? 0 : 1]} better (${better} is better)`
    : `${sides}: ${delta} is within two standard errors: not distinguishable`;
  return { text, significant: c.significant, winner: c.winner };
}

/** The first line of an aggregate summary: which seeds, and that one seed judges nothing. */
export function seedsHeader(seeds: readonly number[]): string {
  return seeds.length < 2
    ? `One seed (seed ${seeds.join(', ')}): mean only, no standard deviation, and no difference is judged.`
    : `Over ${seeds.length} seeds (${seeds.join(', ')}): mean ± sample std per cell; a difference is called only where it exceeds two standard errors of the difference of means.`;
}
