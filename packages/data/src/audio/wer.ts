/**
 * Word error rate: the Levenshtein distance between word sequences (substitutions + deletions +
 * insertions of the minimum-cost alignment, Levenshtein 1966) divided by the number of reference
 * words, as in NIST sclite.
 */

export interface WerCounts {
  substitutions: number;
  deletions: number;
  insertions: number;
  /** Reference words matched exactly. */
  hits: number;
  /** Number of reference words. */
  refWords: number;
}

function toWords(who: string, x: string | readonly string[]): readonly string[] {
  if (typeof x === 'string') return x.split(/\s+/).filter((w) => w.length > 0);
  if (!Array.isArray(x)) throw new Error(`${who}: expected a string or an array of words, got ${typeof x}`);
  return x;
}

/** Edit counts of the minimum-cost alignment of `hyp` to `ref` (strings are split on whitespace). */
export function werCounts(ref: string | readonly string[], hyp: string | readonly string[]): WerCounts {
  const r = toWords('werCounts', ref);
  const h = toWords('werCounts', hyp);
  const n = r.length;
  const m = h.length;
  // dp[i][j]: cost of aligning r[0..i) with h[0..j); ties prefer substitution, then deletion.
  const dp: number[][] = Array.from({ length: n + 1 }, (_, i) => Array.from({ length: m + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= n; i++)
    for (let j = 1; j <= m; j++)
      dp[i]![j] = Math.min(dp[i - 1]![j - 1]! + (r[i - 1] === h[j - 1] ? 0 : 1), dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1);
  const out: WerCounts = { substitutions: 0, deletions: 0, insertions: 0, hits: 0, refWords: n };
  let i = n;
  let j = m;
  while (i > 0 || j > 0) {
    if (i > 0 && j > 0 && dp[i]![j] === dp[i - 1]![j - 1]! + (r[i - 1] === h[j - 1] ? 0 : 1)) {
      if (r[i - 1] === h[j - 1]) out.hits++;
      else out.substitutions++;
      i--;
      j--;
    } else if (i > 0 && dp[i]![j] === dp[i - 1]![j]! + 1) {
      out.deletions++;
      i--;
    } else {
      out.insertions++;
      j--;
    }
  }
  return out;
}

/** (S + D + I) / N for one pair; throws when the reference has no words. */
export function wer(ref: string | readonly string[], hyp: string | readonly string[]): number {
  const c = werCounts(ref, hyp);
  if (c.refWords === 0) throw new Error('wer: the reference has no words; WER is undefined');
  return (c.substitutions + c.deletions + c.insertions) / c.refWords;
}

/** Corpus WER: total edits over total reference words, with the summed counts. */
export function corpusWer(
  refs: readonly (string | readonly string[])[],
  hyps: readonly (string | readonly string[])[],
): WerCounts & { wer: number } {
  if (refs.length !== hyps.length) throw new Error(`corpusWer: got ${refs.length} references but ${hyps.length} hypotheses`);
  const sum: WerCounts = { substitutions: 0, deletions: 0, insertions: 0, hits: 0, refWords: 0 };
  refs.forEach((r, k) => {
    const c = werCounts(r, hyps[k]!);
    sum.substitutions += c.substitutions;
    sum.deletions += c.deletions;
    sum.insertions += c.insertions;
    sum.hits += c.hits;
    sum.refWords += c.refWords;
  });
  if (sum.refWords === 0) throw new Error('corpusWer: the references have no words; WER is undefined');
  return { ...sum, wer: (sum.substitutions + sum.deletions + sum.insertions) / sum.refWords };
}
