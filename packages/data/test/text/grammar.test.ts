import { Rng } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import {
  defineGrammar,
  describeGrammarCorpus,
  GRAMMARS,
  grammarCorpus,
  grammarEntropy,
  grammarSentences,
  RECIPES_GRAMMAR,
  renderTokens,
  SHAPES_GRAMMAR,
  sampleDerivation,
} from '../../src/text/index.js';

describe('PCFG', () => {
  it('parses the notation: weights normalised per nonterminal, ε, nonterminal references', () => {
    const g = defineGrammar('toy', 'S', { S: '[3] a <X> | b', X: 'c | ε' });
    expect(g.rules.S).toEqual([
      { rhs: ['a', '<X>'], p: 0.75 },
      { rhs: ['b'], p: 0.25 },
    ]);
    expect(g.rules.X).toEqual([
      { rhs: ['c'], p: 0.5 },
      { rhs: [], p: 0.5 },
    ]);
  });

  it('gives the hand-computed entropy and length of a recursive grammar', () => {
    // S -> a (1/2) | b S (1/2): lines b^k a with k ~ Geometric(1/2); H = 1 + H/2 = 2 bits;
    // chars of "b b a\n" = 2k + 2, mean 4; terminals k + 1, mean 2.
    const g = defineGrammar('geo', 'S', { S: 'a | b <S>' });
    const s = grammarEntropy(g);
    expect(s.bitsPerLine).toBeCloseTo(2, 9);
    expect(s.charsPerLine).toBeCloseTo(4, 9);
    expect(s.tokensPerLine).toBeCloseTo(2, 9);
    expect(s.bitsPerChar).toBeCloseTo(0.5, 9);
    // two independent fair choices and one 1/4-3/4 choice: H = 1 + 1 + h(1/4)
    const h = -(0.25 * Math.log2(0.25) + 0.75 * Math.log2(0.75));
    const g2 = defineGrammar('flat', 'S', { S: '<A> <A> <B>', A: 'x | y', B: 'u | [3] v .' });
    expect(grammarEntropy(g2).bitsPerLine).toBeCloseTo(2 + h, 12);
    expect(grammarEntropy(g2).charsPerLine).toBeCloseTo(2 + 2 + 0.25 * 2 + 0.75 * 3, 12); // "x y v." + newline
  });

  it('agrees with Monte Carlo estimates on the built-in grammars', () => {
    for (const g of [SHAPES_GRAMMAR, RECIPES_GRAMMAR]) {
      const rng = new Rng(3);
      const n = 3000;
      let bits = 0;
      let bits2 = 0;
      let chars = 0;
      let chars2 = 0;
      for (let i = 0; i < n; i++) {
        const d = sampleDerivation(g, rng);
        bits += -d.log2p;
        bits2 += d.log2p * d.log2p;
        const len = renderTokens(d.tokens).length + 1;
        chars += len;
        chars2 += len * len;
      }
      const mean = bits / n;
      const se = Math.sqrt((bits2 / n - mean * mean) / n);
      const stats = grammarEntropy(g);
      expect(Math.abs(mean - stats.bitsPerLine)).toBeLessThan(4 * se);
      const meanChars = chars / n;
      const seChars = Math.sqrt((chars2 / n - meanChars * meanChars) / n);
      expect(Math.abs(meanChars - stats.charsPerLine)).toBeLessThan(4 * seChars);
    }
  });

  it('has enough variety for a character model to learn (entropy per char and vocabulary)', () => {
    const shapes = grammarEntropy(SHAPES_GRAMMAR);
    const recipes = grammarEntropy(RECIPES_GRAMMAR);
    expect(shapes.bitsPerChar).toBeGreaterThan(0.3);
    expect(recipes.bitsPerChar).toBeGreaterThan(0.25);
    const a = new Set(grammarCorpus({ grammar: 'shapes', seed: 0, chars: 200_000 }).split(/[\s.,?:]+/));
    const b = new Set(grammarCorpus({ grammar: 'recipes', seed: 0, chars: 200_000 }).split(/[\s.,?:]+/));
    expect(a.size).toBeGreaterThan(100);
    expect(b.size).toBeGreaterThan(150);
    const shared = [...a].filter((w) => b.has(w)).length;
    expect(shared / a.size).toBeLessThan(0.25); // two different domains
  });

  it('rejects malformed grammars', () => {
    expect(() => defineGrammar('g', 'S', { S: 'a <X>' })).toThrow(/grammar g: rule S refers to undefined nonterminal <X>/);
    expect(() => defineGrammar('g', 'T', { S: 'a' })).toThrow(/start symbol T has no rule/);
    expect(() => defineGrammar('g', 'S', { S: '[0] a | b' })).toThrow(/alternative 0 must have a positive weight, got 0/);
    expect(() => defineGrammar('g', 'S', { S: '[x] a | b' })).toThrow(/positive weight, got NaN/);
    expect(() => defineGrammar('g', 'S', { S: 'a | ' })).toThrow(/empty alternative; write ε/);
    expect(() => defineGrammar('g', 'S', { S: '<S> <S> | a' })).toThrow(/expansions never end on average/);
    expect(() => defineGrammar('g', 'S', { s: 'a', S: 'b' })).toThrow(/nonterminal name "s"/);
  });
});

describe('grammarCorpus', () => {
  it('is deterministic by seed and prefix-stable', () => {
    const a = grammarCorpus({ seed: 7, chars: 5000 });
    expect(a).toHaveLength(5000);
    expect(grammarCorpus({ seed: 7, chars: 5000 })).toBe(a);
    expect(grammarCorpus({ seed: 7, chars: 20000 }).startsWith(a)).toBe(true);
    expect(grammarCorpus({ seed: 8, chars: 5000 })).not.toBe(a);
    const lines = grammarSentences({ seed: 7, sentences: 10 });
    expect(grammarCorpus({ seed: 7, sentences: 10 })).toBe(lines.map((l) => `${l}\n`).join(''));
    expect(a.startsWith(lines.slice(0, 3).join('\n'))).toBe(true);
  });

  it('produces lowercase text from the closed vocabulary, megabytes on demand', () => {
    const t0 = performance.now();
    const big = grammarCorpus({ grammar: 'recipes', seed: 1, chars: 2_000_000 });
    expect(big).toHaveLength(2_000_000);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(big).toBe(big.toLowerCase());
    expect(new Set(grammarCorpus({ seed: 1, chars: 100_000 })).size).toBeLessThan(40);
    expect(Object.keys(GRAMMARS)).toEqual(['shapes', 'recipes']);
  });

  it('describes its exact configuration', () => {
    const d = describeGrammarCorpus({ grammar: 'recipes', seed: 3, chars: 1000 });
    expect(d).toMatchObject({ kind: 'grammar-corpus', grammar: 'recipes', seed: 3, chars: 1000 });
    expect(d.stats.bitsPerChar).toBeCloseTo(grammarEntropy(RECIPES_GRAMMAR).bitsPerChar, 12);
  });

  it('rejects bad options', () => {
    expect(() => grammarCorpus({ seed: 1 })).toThrow(/exactly one of chars or sentences, got chars=undefined, sentences=undefined/);
    expect(() => grammarCorpus({ seed: 1, chars: 3, sentences: 2 })).toThrow(/exactly one of chars or sentences/);
    expect(() => grammarCorpus({ seed: 1, chars: -1 })).toThrow(/chars must be an integer >= 0, got -1/);
    expect(() => grammarCorpus({ seed: 1, sentences: 1.5 })).toThrow(/sentences must be an integer >= 0, got 1.5/);
    expect(() => grammarCorpus({ seed: Number.NaN, chars: 1 })).toThrow(/seed must be a finite number/);
    expect(() => grammarCorpus({ grammar: 'poems' as 'shapes', chars: 1 })).toThrow(/unknown grammar "poems"; built-in: shapes, recipes/);
  });
});
