/**
 * Caption and question-answer accuracy: exact match after normalisation and token-level F1, as in
 * the SQuAD v1.1 evaluation script (Rajpurkar et al. 2016, arXiv 1606.05250): lowercase, remove
 * punctuation, remove the articles a/an/the, collapse whitespace; F1 over the multiset of tokens.
 * Number words also become digits here ("twenty-one" and "21" both normalise to "21"), since the
 * shapes captions and answers use both, and each prediction scores its best reference.
 */

const UNITS: Record<string, number> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
};
const TENS: Record<string, number> = { twenty: 20, thirty: 30, forty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90 };
const SCALES: Record<string, number> = { hundred: 100, thousand: 1000, million: 1_000_000 };

type NumClass = 'start' | 'unit' | 'teen' | 'tens' | 'hundred' | 'scale';

function numClass(w: string): Exclude<NumClass, 'start'> | undefined {
  if (w in UNITS) return UNITS[w]! >= 1 && UNITS[w]! <= 9 ? 'unit' : 'teen';
  if (w in TENS) return 'tens';
  if (w === 'hundred') return 'hundred';
  if (w in SCALES) return 'scale';
  return undefined;
}

/** Which number word may follow which in one number ("two hundred and five", "twenty one"; not "one two"). */
const FOLLOWS: Record<Exclude<NumClass, 'start'>, readonly NumClass[]> = {
  unit: ['start', 'tens', 'hundred', 'scale'],
  teen: ['start', 'hundred', 'scale'],
  tens: ['start', 'hundred', 'scale'],
  hundred: ['unit', 'teen'],
  scale: ['unit', 'teen', 'tens', 'hundred'],
};

/** Replaces each run of number words forming one number ("two hundred and five") by its digits ("205"). */
function numberWordsToDigits(tokens: string[]): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < tokens.length) {
    const first = numClass(tokens[i]!);
    if (first === undefined || first === 'hundred' || first === 'scale') {
      out.push(tokens[i]!);
      i++;
      continue;
    }
    let total = 0;
    let current = 0;
    let last: NumClass = 'start';
    let j = i;
    while (j < tokens.length) {
      const w = tokens[j]!;
      if (w === 'and' && (last === 'hundred' || last === 'scale')) {
        const next = numClass(tokens[j + 1] ?? '');
        if (next === 'unit' || next === 'teen' || next === 'tens') {
          j++;
          continue;
        }
        break;
      }
      const c = numClass(w);
      if (c === undefined || !FOLLOWS[c].includes(last)) break;
      if (c === 'hundred') current *= 100;
      else if (c === 'scale') {
        total += current * SCALES[w]!;
        current = 0;
      } else current += c === 'tens' ? TENS[w]! : UNITS[w]!;
      last = c;
      j++;
    }
    out.push(String(total + current));
    i = j;
  }
  return out;
}

/** SQuAD-style answer normalisation plus number words to digits. */
export function normalizeAnswer(s: string): string {
  if (typeof s !== 'string') throw new Error(`normalizeAnswer: expected a string, got ${typeof s}`);
  let t = s.toLowerCase();
  t = t.replace(/(\d),(?=\d{3}\b)/g, '$1'); // 1,000 -> 1000
  t = t.replace(/(\d)\.(?=\d)/g, '$1\uE000'); // keep decimal points (a private-use placeholder)
  t = t.replace(/[-\u2010-\u2015]/g, ' ');
  t = t.replace(/[\p{P}\p{S}]/gu, '');
  t = t.replace(/\uE000/g, '.');
  const tokens = numberWordsToDigits(t.split(/\s+/).filter((w) => w.length > 0));
  return tokens.filter((w) => w !== 'a' && w !== 'an' && w !== 'the').join(' ');
}

function refsOf(who: string, refs: string | readonly string[]): readonly string[] {
  const list = typeof refs === 'string' ? [refs] : refs;
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${who}: need at least one reference answer, got ${JSON.stringify(refs)}`);
  return list;
}

/** 1 when the normalised prediction equals a normalised reference, else 0. */
export function exactMatch(prediction: string, references: string | readonly string[]): number {
  const p = normalizeAnswer(prediction);
  return refsOf('exactMatch', references).some((r) => normalizeAnswer(r) === p) ? 1 : 0;
}

function f1One(pred: string[], ref: string[]): number {
  if (pred.length === 0 || ref.length === 0) return pred.length === ref.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of ref) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of pred) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / pred.length;
  const recall = common / ref.length;
  return (2 * precision * recall) / (precision + recall);
}

/** Token F1 between the normalised prediction and its best reference (1 when both are empty). */
export function tokenF1(prediction: string, references: string | readonly string[]): number {
  const tok = (s: string) =>
    normalizeAnswer(s)
      .split(' ')
      .filter((w) => w.length > 0);
  const p = tok(prediction);
  return Math.max(...refsOf('tokenF1', references).map((r) => f1One(p, tok(r))));
}

export interface AnswerScores {
  /** Mean exact match over the set, in [0, 1]. */
  exactMatch: number;
  /** Mean token F1 over the set, in [0, 1]. */
  f1: number;
  n: number;
  perItem: { exactMatch: number; f1: number }[];
}

/** Exact match and token F1 averaged over a set of predictions, each with one or more references. */
export function evaluateAnswers(predictions: readonly string[], references: readonly (string | readonly string[])[]): AnswerScores {
  if (predictions.length !== references.length)
    throw new Error(`evaluateAnswers: got ${predictions.length} predictions but ${references.length} references`);
  if (predictions.length === 0) throw new Error('evaluateAnswers: the set is empty');
  const perItem = predictions.map((p, i) => ({ exactMatch: exactMatch(p, references[i]!), f1: tokenF1(p, references[i]!) }));
  const n = perItem.length;
  return {
    exactMatch: perItem.reduce((a, b) => a + b.exactMatch, 0) / n,
    f1: perItem.reduce((a, b) => a + b.f1, 0) / n,
    n,
    perItem,
  };
}
