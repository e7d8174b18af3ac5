import { initBackend, Rng, tf } from '@mmlm/core';
import { buildLM, collate, liquidVocab, lmTrainStep, makeOptimizer, preset, t2iExample, textExample, tokenizerTrainStep, VQTokenizer, generateImageCodes } from '../src/index.js';
const backend = (process.argv[2] ?? 'wasm') as 'wasm' | 'cpu';
await initBackend({ backend, log: false });
const c = preset('small');
const vq = new VQTokenizer(c.tokenizer);
const opt = makeOptimizer(vq, c.train.tokenizer);
const x = new Rng(1).rand([32, 32, 32, 3], -1, 1);
for (let i = 0; i < 4; i++) { const t0 = performance.now(); tokenizerTrainStep(vq, opt, x, i, c.train.tokenizer); console.log('vq step', (performance.now() - t0).toFixed(0), 'ms'); }
const V = 120;
const vocab = liquidVocab({ textVocabSize: V, numCodes: 64, tokensPerImage: 64, bos: 1, eos: 2, pad: 0 });
const m = buildLM(c.lm, vocab.size);
const o2 = makeOptimizer(m, c.train.unified);
const rng = new Rng(2);
const ex = Array.from({ length: 32 }, (_, i) => i % 2 ? textExample(vocab, Array.from({ length: 110 }, () => rng.int(3, V))) : t2iExample(vocab, Array.from({ length: 20 }, () => rng.int(3, V)), Array.from({ length: 64 }, () => rng.int(0, 64))));
const b = collate(ex, vocab, 112);
for (let i = 0; i < 4; i++) { const t0 = performance.now(); lmTrainStep(m, o2, b, i, c.train.unified); console.log('lm step', (performance.now() - t0).toFixed(0), 'ms'); }
const t0 = performance.now();
generateImageCodes(m, vocab, Array.from({ length: 32 }, () => [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]), { cfgScale: 3, rng: new Rng(1) });
console.log('gen 32 images', (performance.now() - t0).toFixed(0), 'ms');
