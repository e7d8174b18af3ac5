/**
 * Procedural text corpora from the built-in PCFGs (see grammar.ts): one line per expansion of the
 * start symbol, deterministic by seed, and prefix-stable (the corpus of 1,000 characters is the
 * first 1,000 characters of the corpus of 10,000 with the same seed), so any size is available.
 */
import { Rng } from '@mmlm/core';
import { type Grammar, type GrammarStats, grammarEntropy, renderTokens, sampleDerivation, validateGrammar } from './grammar.js';
import { GRAMMARS, type GrammarName } from './grammars.js';

export interface GrammarCorpusOptions {
  /** Built-in grammar name or a grammar object (default 'shapes'). */
  grammar?: GrammarName | Grammar;
  seed?: number;
  /** Exactly this many characters (the last line may be cut). */
  chars?: number;
  /** Exactly this many lines, each ending with a newline. */
  sentences?: number;
}

export interface GrammarCorpusConfig {
  kind: 'grammar-corpus';
  grammar: string;
  seed: number;
  chars?: number;
  sentences?: number;
  /** The grammar's entropy and expected lengths (see `grammarEntropy`). */
  stats: GrammarStats;
}

function resolveGrammar(who: string, g: GrammarCorpusOptions['grammar']): Grammar {
  if (g === undefined) return GRAMMARS.shapes;
  if (typeof g === 'string') {
    const found = (GRAMMARS as Record<string, Grammar>)[g];
    if (!found) throw new Error(`${who}: unknown grammar ${JSON.stringify(g)}; built-in: ${Object.keys(GRAMMARS).join(', ')}`);
    return found;
  }
  validateGrammar(g);
  return g;
}

function checkSize(who: string, opts: GrammarCorpusOptions): void {
  const { chars, sentences } = opts;
  if ((chars === undefined) === (sentences === undefined))
    throw new Error(`${who}: give exactly one of chars or sentences, got chars=${chars}, sentences=${sentences}`);
  const n = chars ?? sentences!;
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${who}: ${chars !== undefined ? 'chars' : 'sentences'} must be an integer >= 0, got ${n}`);
  if (opts.seed !== undefined && !Number.isFinite(opts.seed)) throw new Error(`${who}: seed must be a finite number, got ${opts.seed}`);
}

/** The lines (without newlines) of a corpus of `sentences` lines. */
export function grammarSentences(opts: Omit<GrammarCorpusOptions, 'chars'> & { sentences: number }): string[] {
  checkSize('grammarSentences', opts);
  const g = resolveGrammar('grammarSentences', opts.grammar);
  const rng = new Rng(opts.seed ?? 0);
  return Array.from({ length: opts.sentences }, () => renderTokens(sampleDerivation(g, rng).tokens));
}

/** A corpus of `chars` characters or `sentences` lines, each line followed by '\n'. */
export function grammarCorpus(opts: GrammarCorpusOptions): string {
  checkSize('grammarCorpus', opts);
  const g = resolveGrammar('grammarCorpus', opts.grammar);
  const rng = new Rng(opts.seed ?? 0);
  const parts: string[] = [];
  if (opts.sentences !== undefined) {
    for (let i = 0; i < opts.sentences; i++) parts.push(`${renderTokens(sampleDerivation(g, rng).tokens)}\n`);
    return parts.join('');
  }
  let n = 0;
  while (n < opts.chars!) {
    const line = `${renderTokens(sampleDerivation(g, rng).tokens)}\n`;
    parts.push(line);
    n += line.length;
  }
  return parts.join('').slice(0, opts.chars);
}

/** The exact configuration of a corpus, for experiment records. */
export function describeGrammarCorpus(opts: GrammarCorpusOptions): GrammarCorpusConfig {
  checkSize('describeGrammarCorpus', opts);
  const g = resolveGrammar('describeGrammarCorpus', opts.grammar);
  const cfg: GrammarCorpusConfig = { kind: 'grammar-corpus', grammar: g.name, seed: opts.seed ?? 0, stats: grammarEntropy(g) };
  if (opts.chars !== undefined) cfg.chars = opts.chars;
  if (opts.sentences !== undefined) cfg.sentences = opts.sentences;
  return cfg;
}
