/**
 * Probabilistic context-free grammars (PCFG; Booth & Thompson 1973, "Applying probability measures
 * to abstract languages") for procedural text corpora: sampling, and the exact entropy of the
 * derivation distribution with the expected length of a line (Grenander's mean-matrix equations).
 *
 * A grammar is written as `{ NONTERMINAL: 'alternative | [weight] alternative | ...' }`. Within an
 * alternative, `<NAME>` (upper case) refers to a nonterminal and every other space-separated word
 * is a terminal; `[w]` in front sets its weight (default 1), weights are normalised per
 * nonterminal, and `ε` is the empty alternative. Terminals are rendered separated by one space,
 * except that `. , ? ! ; :` attach to the word before; one expansion of the start symbol is one line.
 */
import type { Rng } from '@mmlm/core';

export interface Production {
  /** Terminals and `<NONTERMINAL>` references, in order. */
  readonly rhs: readonly string[];
  /** Probability of this production given its left-hand side (sums to 1 per nonterminal). */
  readonly p: number;
}

export interface Grammar {
  readonly name: string;
  readonly start: string;
  readonly rules: Readonly<Record<string, readonly Production[]>>;
}

const NT = /^<([A-Z][A-Z0-9_]*)>$/;
const WEIGHT = /^\[([^\]]*)\]\s*/;

/** Terminals written without a space before them. */
export const ATTACHING_TERMINALS: ReadonlySet<string> = new Set(['.', ',', '?', '!', ';', ':']);

/** Builds a grammar from the `{ NAME: 'a b <X> | [2] c' }` notation and validates it. */
export function defineGrammar(name: string, start: string, spec: Record<string, string>): Grammar {
  const rules: Record<string, Production[]> = {};
  for (const [lhs, text] of Object.entries(spec)) {
    if (typeof text !== 'string') throw new Error(`grammar ${name}: rule ${lhs} must be a string, got ${typeof text}`);
    const alts = text.split('|').map((a) => a.trim());
    const weights: number[] = [];
    const rhss: string[][] = [];
    for (const alt of alts) {
      let body = alt;
      let w = 1;
      const m = WEIGHT.exec(body);
      if (m) {
        w = Number(m[1]);
        body = body.slice(m[0].length);
      }
      const rhs = body.split(/\s+/).filter((t) => t.length > 0 && t !== 'ε');
      if (rhs.length === 0 && !body.includes('ε'))
        throw new Error(`grammar ${name}: rule ${lhs} has an empty alternative; write ε for the empty string`);
      weights.push(w);
      rhss.push(rhs);
    }
    const total = weights.reduce((a, b) => a + b, 0);
    weights.forEach((w, i) => {
      if (!(Number.isFinite(w) && w > 0))
        throw new Error(`grammar ${name}: rule ${lhs} alternative ${i} must have a positive weight, got ${w}`);
    });
    rules[lhs] = rhss.map((rhs, i) => ({ rhs, p: weights[i]! / total }));
  }
  const g: Grammar = { name, start, rules };
  validateGrammar(g);
  return g;
}

interface CompiledProduction {
  /** Terminal strings, or nonterminal indices. */
  syms: (string | number)[];
  logp: number;
}

interface Compiled {
  names: string[];
  startIndex: number;
  prods: CompiledProduction[][];
  cum: Float64Array[];
}

const compiledCache = new WeakMap<Grammar, Compiled>();

function compile(g: Grammar): Compiled {
  const hit = compiledCache.get(g);
  if (hit) return hit;
  const names = Object.keys(g.rules);
  const index = new Map(names.map((n, i) => [n, i]));
  const prods = names.map((n) =>
    g.rules[n]!.map((p) => ({
      syms: p.rhs.map((s) => {
        const m = NT.exec(s);
        return m ? index.get(m[1]!)! : s;
      }),
      logp: Math.log2(p.p),
    })),
  );
  const cum = names.map((n) => {
    const c = new Float64Array(g.rules[n]!.length);
    let acc = 0;
    g.rules[n]!.forEach((p, i) => {
      acc += p.p;
      c[i] = acc;
    });
    return c;
  });
  const out = { names, startIndex: index.get(g.start)!, prods, cum };
  compiledCache.set(g, out);
  return out;
}

/**
 * Checks that the start symbol and every referenced nonterminal are defined, probabilities are
 * positive and sum to 1 per nonterminal, and expansions end (finite expected size).
 */
export function validateGrammar(g: Grammar): void {
  const who = `grammar ${g?.name ?? '?'}`;
  if (typeof g !== 'object' || g === null || typeof g.rules !== 'object') throw new Error(`${who}: expected { name, start, rules }`);
  if (!(g.start in g.rules)) throw new Error(`${who}: start symbol ${g.start} has no rule; defined: ${Object.keys(g.rules).join(', ')}`);
  for (const [lhs, prods] of Object.entries(g.rules)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(lhs)) throw new Error(`${who}: nonterminal name ${JSON.stringify(lhs)} must match [A-Z][A-Z0-9_]*`);
    if (!Array.isArray(prods) || prods.length === 0) throw new Error(`${who}: rule ${lhs} has no productions`);
    let sum = 0;
    prods.forEach((p, i) => {
      if (!(p.p > 0 && p.p <= 1)) throw new Error(`${who}: rule ${lhs} production ${i} has probability ${p.p}, expected (0, 1]`);
      sum += p.p;
      for (const s of p.rhs) {
        const m = NT.exec(s);
        if (m && !(m[1]! in g.rules)) throw new Error(`${who}: rule ${lhs} refers to undefined nonterminal <${m[1]}>`);
        if (!m && /[<>]/.test(s) && /^<[A-Z]/.test(s))
          throw new Error(`${who}: rule ${lhs} has malformed nonterminal reference ${JSON.stringify(s)}`);
      }
    });
    if (Math.abs(sum - 1) > 1e-9) throw new Error(`${who}: probabilities of rule ${lhs} sum to ${sum}, expected 1`);
  }
  compiledCache.delete(g);
  solveMeanEquations(g, () => 1, `${who}: expansions never end on average (the grammar is not proper)`);
}

/**
 * Solves x[A] = sum_p p * (own(p) + sum_{B in rhs(p)} x[B]) by fixed-point iteration; it converges
 * when the mean matrix has spectral radius below 1, i.e. when derivations are finite on average.
 */
function solveMeanEquations(g: Grammar, own: (prod: Production, lhs: string) => number, failure: string): Map<string, number> {
  const c = compile(g);
  const n = c.names.length;
  const base = new Float64Array(n);
  c.names.forEach((name, i) => {
    for (const p of g.rules[name]!) base[i]! += p.p * own(p, name);
  });
  let x = Float64Array.from(base);
  for (let iter = 0; iter < 100000; iter++) {
    const next = Float64Array.from(base);
    for (let i = 0; i < n; i++) {
      const ps = c.prods[i]!;
      for (let k = 0; k < ps.length; k++) {
        const pk = 2 ** ps[k]!.logp;
        for (const s of ps[k]!.syms) if (typeof s === 'number') next[i]! += pk * x[s]!;
      }
    }
    let delta = 0;
    let big = 0;
    for (let i = 0; i < n; i++) {
      delta = Math.max(delta, Math.abs(next[i]! - x[i]!));
      big = Math.max(big, next[i]!);
    }
    x = next;
    if (!Number.isFinite(big) || big > 1e12) throw new Error(failure);
    if (delta <= 1e-12 * Math.max(1, big)) return new Map(c.names.map((nm, i) => [nm, x[i]!]));
  }
  throw new Error(failure);
}

export interface Derivation {
  /** Terminals of the line, in order. */
  tokens: string[];
  /** log2 of the probability of the derivation (sum of its productions' log2 p). */
  log2p: number;
}

/** Samples one derivation of the start symbol (or of `symbol`). */
export function sampleDerivation(g: Grammar, rng: Rng, symbol: string = g.start): Derivation {
  const c = compile(g);
  const root = c.names.indexOf(symbol);
  if (root < 0) throw new Error(`grammar ${g.name}: no nonterminal ${symbol}`);
  const tokens: string[] = [];
  let log2p = 0;
  const stack: (string | number)[] = [root];
  while (stack.length > 0) {
    const s = stack.pop()!;
    if (typeof s === 'string') {
      tokens.push(s);
      continue;
    }
    const cum = c.cum[s]!;
    const u = rng.uniform() * cum[cum.length - 1]!;
    let k = 0;
    while (k < cum.length - 1 && u >= cum[k]!) k++;
    const prod = c.prods[s]![k]!;
    log2p += prod.logp;
    for (let j = prod.syms.length - 1; j >= 0; j--) stack.push(prod.syms[j]!);
  }
  return { tokens, log2p };
}

/** Joins terminals with single spaces, attaching `. , ? ! ; :` to the word before. */
export function renderTokens(tokens: readonly string[]): string {
  let s = '';
  for (const t of tokens) {
    if (s.length > 0 && !ATTACHING_TERMINALS.has(t)) s += ' ';
    s += t;
  }
  return s;
}

export interface GrammarStats {
  /** Entropy of a line's derivation in bits: sum over nonterminal expansions of the choice entropy. */
  bitsPerLine: number;
  /** Expected characters per line, the newline included. */
  charsPerLine: number;
  /** Expected terminals per line. */
  tokensPerLine: number;
  /** bitsPerLine / charsPerLine: the entropy rate of the corpus per character (see `grammarEntropy`). */
  bitsPerChar: number;
}

/**
 * Entropy and expected length of the grammar's lines. For a corpus of independent lines the
 * entropy rate per character is bitsPerLine / charsPerLine. It is exact when every line has a single
 * derivation and an upper bound otherwise (ambiguity merges derivations into one string), so it is
 * the floor a perfect character model of the corpus approaches: a model's validation bits per
 * character can be compared with it.
 */
export function grammarEntropy(g: Grammar): GrammarStats {
  const who = `grammar ${g.name}`;
  const h = solveMeanEquations(g, (p) => -Math.log2(p.p), `${who}: entropy diverges`);
  const chars = solveMeanEquations(
    g,
    (p) => p.rhs.reduce((acc, s) => acc + (NT.test(s) ? 0 : s.length + (ATTACHING_TERMINALS.has(s) ? 0 : 1)), 0),
    `${who}: expected length diverges`,
  );
  const tokens = solveMeanEquations(g, (p) => p.rhs.filter((s) => !NT.test(s)).length, `${who}: expected length diverges`);
  const bitsPerLine = h.get(g.start)!;
  const charsPerLine = chars.get(g.start)!;
  return { bitsPerLine, charsPerLine, tokensPerLine: tokens.get(g.start)!, bitsPerChar: bitsPerLine / charsPerLine };
}
