/**
 * Retrieval and code statistics on host arrays (float64 arithmetic, no tensors): the candidate
 * pools, the rank of the true match in each pool, R@k, and codebook usage / perplexity.
 */
import { Rng } from '@mmlm/core';

/**
 * One pool of `candidates` items per query: the query's own index first, then candidates - 1 other
 * items whose keys differ from the query's and from each other (so every pool has exactly one right
 * answer), drawn in a seeded random order from all `keys`.
 */
export function buildPools(keys: readonly string[], queries: readonly number[], candidates: number, seed: number): number[][] {
  if (!Number.isInteger(candidates) || candidates < 2) throw new Error(`buildPools: candidates must be an integer >= 2, got ${candidates}`);
  const distinct = new Set(keys).size;
  if (candidates > distinct) throw new Error(`buildPools: ${candidates} candidates need as many distinct keys, the items have ${distinct}`);
  const rng = new Rng(seed).fork('pools');
  return queries.map((q) => {
    if (!Number.isInteger(q) || q < 0 || q >= keys.length) throw new Error(`buildPools: query ${q} out of range [0, ${keys.length})`);
    const order = Array.from({ length: keys.length }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(0, i + 1);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const used = new Set([keys[q]]);
    const pool = [q];
    for (const j of order) {
      if (pool.length === candidates) break;
      const k = keys[j] as string;
      if (used.has(k)) continue;
      used.add(k);
      pool.push(j);
    }
    return pool;
  });
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/**
 * For each pool (query index first): the rank of the query's own partner among the pool, 0 = best.
 * `from[q]` is compared with `to[j]` for every j in the pool; a candidate scoring equal to the true
 * partner counts as ranked above it (ties are misses).
 */
export function poolRanks(from: readonly ArrayLike<number>[], to: readonly ArrayLike<number>[], pools: readonly number[][]): number[] {
  return pools.map((pool) => {
    const q = pool[0] as number;
    const f = from[q] as ArrayLike<number>;
    const own = dot(f, to[q] as ArrayLike<number>);
    let rank = 0;
    for (let i = 1; i < pool.length; i++) if (dot(f, to[pool[i] as number] as ArrayLike<number>) >= own) rank++;
    return rank;
  });
}

/** Fraction of ranks below k (R@k). */
export function recallAt(ranks: readonly number[], k: number): number {
  if (ranks.length === 0) throw new Error('recallAt: no ranks');
  return ranks.filter((r) => r < k).length / ranks.length;
}

export interface CodeStats {
  /** Fraction of the K codes used at least once. */
  usage: number;
  /** exp(entropy) of the code histogram (K when uniform, 1 when one code). */
  perplexity: number;
  /** Distinct Q-code sequences among the images. */
  distinctSequences: number;
}

/** Usage and perplexity of codes in [0, K) (N x Q, flat), and the distinct per-image sequences. */
export function codeStats(codes: ArrayLike<number>, numCodes: number, codesPerImage: number): CodeStats {
  if (codes.length === 0 || codes.length % codesPerImage !== 0)
    throw new Error(`codeStats: expected N x ${codesPerImage} codes, got ${codes.length}`);
  const hist = new Float64Array(numCodes);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i] as number;
    if (!Number.isInteger(c) || c < 0 || c >= numCodes) throw new Error(`codeStats: code ${c} at ${i} out of range [0, ${numCodes})`);
    hist[c] = (hist[c] as number) + 1;
  }
  let h = 0;
  let used = 0;
  for (const n of hist) {
    if (n === 0) continue;
    used++;
    const p = n / codes.length;
    h -= p * Math.log(p);
  }
  const seqs = new Set<string>();
  for (let i = 0; i < codes.length; i += codesPerImage) seqs.add(Array.from({ length: codesPerImage }, (_, j) => codes[i + j]).join(','));
  return { usage: used / numCodes, perplexity: Math.exp(h), distinctSequences: seqs.size };
}
