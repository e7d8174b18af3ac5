/** The README's usage example, verbatim between the markers (the README adds only the import lines above them). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initBackend, Rng, tf } from '@mmlm/core';
import { WordTokenizer } from '@mmlm/data';
import {
  buildLM,
  EVAL_T2I_SUFFIX,
  extendVocabulary,
  extractCodes,
  generateImageCodes,
  LiquidCollator,
  liquidVocab,
  lmTrainStep,
  makeOptimizer,
  preset,
  T2I_SUFFIXES,
  tokensPerImage,
  VQTokenizer,
} from '@mmlm/liquid';
import { expect, it } from 'vitest';

it('the README shows this example verbatim', () => {
  const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const body = self.split('// --- README example start ---\n')[1]!.split('  // --- README example end ---')[0]!;
  const snippet = body
    .split('\n')
    .map((l) => l.replace(/^ {2}/, ''))
    .join('\n')
    .trimEnd();
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  expect(readme).toContain(snippet);
});

it('README usage example', async () => {
  await initBackend({ backend: 'cpu', log: false });
  // --- README example start ---
  const cfg = preset('tiny'); // 16x16 images -> 4x4 = 16 codes of K = 16; a width-32 LM

  // 1. The VQ image tokenizer (train it with tokenizerTrainStep, then freeze it) and the codes of two images.
  const vq = new VQTokenizer(cfg.tokenizer);
  const images = new Rng(0).rand([2, 16, 16, 3]).dataSync() as Float32Array; // pixels in [0, 1]
  const codes = extractCodes(vq, images); // Int32Array [2 * 16], raster order, in [0, 16)

  // 2. A text LM over a word tokenizer, its vocabulary extended by K codes + <boi>, <eoi>, <unconditional>.
  const words = WordTokenizer.fromText(['a red circle above a blue square', ...T2I_SUFFIXES, 'The caption of this image is:']);
  const vocab = liquidVocab({
    textVocabSize: words.vocabSize,
    numCodes: cfg.tokenizer.numCodes,
    tokensPerImage: tokensPerImage(cfg.tokenizer),
    bos: words.specialId('<bos>'),
    eos: words.specialId('<eos>'),
    pad: words.specialId('<pad>'),
  }); // code k -> id V + k; <boi> = V + K, <eoi> = V + K + 1, <unconditional> = V + K + 2
  const text = buildLM(cfg.lm, vocab.textVocabSize); // ... trained on text first
  const model = extendVocabulary(text, vocab.size - vocab.textVocabSize); // new rows = mean of the old rows

  // 3. One next-token step on Liquid's formats: T2I (loss on codes, <eoi>, <eos>), caption (loss on the caption), text.
  const collator = new LiquidCollator(words, vocab, cfg.collator, cfg.lm.maxSeqLen, new Rng(1));
  const batch = collator.collate([
    collator.t2i('a red circle', codes.subarray(0, 16)), // 10% of T2I captions become <unconditional>
    collator.i2t('a blue square', codes.subarray(16, 32)),
    collator.text('a red circle above a blue square'),
  ]);
  const opt = makeOptimizer(model, cfg.train.unified);
  const { loss } = lmTrainStep(model, opt, batch, 0, cfg.train.unified);

  // 4. Generation: CFG on logits (s = 7), text ids masked, temperature 0.99, top-k 4096, top-p 0.96, KV cache.
  const [gen] = generateImageCodes(model, vocab, [words.encode(`a red circle${EVAL_T2I_SUFFIX}`)], { cfgScale: 7, rng: new Rng(2) });
  const pixels = vq.decodeCodes(tf.tensor2d(gen!, [1, 16], 'int32')); // [1, 16, 16, 3] in [-1, 1]
  // --- README example end ---
  expect(Number.isFinite(loss)).toBe(true);
  expect(codes.length).toBe(32);
  expect(gen!.length).toBe(16);
  expect(pixels.shape).toEqual([1, 16, 16, 3]);
  expect(model.config.vocabSize).toBe(words.vocabSize + 16 + 3);
  pixels.dispose();
  opt.dispose();
  for (const m of [vq, text, model]) m.dispose();
});
