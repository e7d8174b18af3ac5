/**
 * Train/validation splits: a contiguous split of one text (nanoGPT's first 90% / last 10%), and a
 * seeded shuffled split of a list of items into disjoint parts.
 */
import { Rng } from '@mmlm/core';

export interface TextSplit {
  train: string;
  val: string;
}

/**
 * The first (1 - valFraction) of `text` for training and the rest for validation. With
 * `atLineBreak`, the cut moves forward to just after the next newline (if any), so no line is split.
 * A cut never falls inside a surrogate pair.
 */
export function splitText(text: string, opts: { valFraction?: number; atLineBreak?: boolean } = {}): TextSplit {
  if (typeof text !== 'string') throw new Error(`splitText: text must be a string, got ${typeof text}`);
  const f = opts.valFraction ?? 0.1;
  if (!(f >= 0 && f <= 1)) throw new Error(`splitText: valFraction must be in [0, 1], got ${f}`);
  let cut = Math.floor(text.length * (1 - f));
  if (opts.atLineBreak && cut > 0 && cut < text.length && text[cut - 1] !== '\n') {
    const nl = text.indexOf('\n', cut);
    cut = nl < 0 ? text.length : nl + 1;
  }
  const c = text.charCodeAt(cut);
  if (cut > 0 && c >= 0xdc00 && c <= 0xdfff) cut++;
  return { train: text.slice(0, cut), val: text.slice(cut) };
}

export interface ItemSplit<T> {
  train: T[];
  val: T[];
  test: T[];
}

/** Shuffles `items` with `seed` and cuts them into disjoint train / val / test parts (val and test rounded down). */
export function splitItems<T>(items: readonly T[], opts: { valFraction: number; testFraction?: number; seed: number }): ItemSplit<T> {
  const v = opts.valFraction;
  const t = opts.testFraction ?? 0;
  if (!(v >= 0 && t >= 0 && v + t <= 1))
    throw new Error(`splitItems: need valFraction, testFraction >= 0 with sum <= 1, got ${v} and ${t}`);
  if (!Number.isFinite(opts.seed)) throw new Error(`splitItems: seed must be a finite number, got ${opts.seed}`);
  const order = new Rng(opts.seed).shuffle(Array.from(items.keys()));
  const nVal = Math.floor(items.length * v);
  const nTest = Math.floor(items.length * t);
  const pick = (idx: number[]) => idx.map((i) => items[i]!);
  return {
    val: pick(order.slice(0, nVal)),
    test: pick(order.slice(nVal, nVal + nTest)),
    train: pick(order.slice(nVal + nTest)),
  };
}
