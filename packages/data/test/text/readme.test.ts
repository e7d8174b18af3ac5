/** The README's text example, run as written (from the package entry point). */
import { expect, it } from 'vitest';
import { CharTokenizer, GRAMMARS, grammarCorpus, grammarEntropy, splitText, WindowBatcher } from '../../src/index.js';

it('README text example', () => {
  const text = grammarCorpus({ grammar: 'shapes', seed: 0, chars: 1_000_000 });
  const { train, val } = splitText(text, { valFraction: 0.1 });
  const tok = CharTokenizer.fromText(train);
  const batches = new WindowBatcher(Int32Array.from(tok.encode(train)), { batchSize: 32, blockSize: 128, seed: 1 });
  const { data, shape } = batches.next();
  expect(shape).toEqual([32, 129]);
  expect(data).toHaveLength(32 * 129);
  expect(val.length).toBe(100_000);
  expect(grammarEntropy(GRAMMARS.shapes).bitsPerChar).toBeCloseTo(0.411, 3);
  expect(grammarEntropy(GRAMMARS.recipes).bitsPerChar).toBeCloseTo(0.326, 3);
});
