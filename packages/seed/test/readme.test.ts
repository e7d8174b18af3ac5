/** The README's usage example, verbatim between the markers (the README adds only the import lines above them). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AdamW, initBackend, Rng, tf } from '@mmlm/core';
import { decoderStep, ImageDecoder, imageDecoderPreset, imageFromCodes, preset, SeedTokenizer, stage1Step, stage2Step } from '@mmlm/seed';
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
  const cfg = preset('tiny'); // 16 px images, 4 x 4 patches, 4 queries, K = 16 codes of dimension 4
  const model = new SeedTokenizer(cfg); // starts in stage I: only ln_vision, the Q-Former, the projections and temp train
  const images = new Rng(0).rand([4, 16, 16, 3]); // pixels in [0, 1], NHWC
  const textIds = tf.tensor2d([1, 5, 6, 1, 7, 8, 1, 9, 10, 1, 11, 12], [4, 3], 'int32'); // captions, CLS (id 1) first

  // Stage I: the last query's feature against the text branch's CLS feature, InfoNCE (smoothing 0.1, learnable tau).
  let opt = new AdamW(model, { lr: 1e-3 });
  stage1Step(model, opt, { images, textIds });
  opt.dispose();

  // Stage II: the Q-Former frozen; the MLPs, the codebook and the de-tokenizer learn 5 vq + 2 rec + 0.5 gen.
  model.setStage(2);
  opt = new AdamW(model, { lr: 1e-3 });
  const target = new Rng(1).randn([4, cfg.decoder.genDim]); // stands in for the CLIP image embedding
  const { loss } = stage2Step(model, opt, { images, target });

  // Q codes per image in causal (query) order, and back to the causal and generation embeddings.
  const codes = model.encodeCodes(images); // Int32Array [4 * 4], in [0, 16)
  const { causal, gen } = model.decodeCodes(codes); // [4, 4, 16] and [4, 8]

  // Back to pixels: an image decoder (the SD-unCLIP stand-in) learns generation embedding -> image, then draws codes.
  const decoder = new ImageDecoder(imageDecoderPreset('tiny')); // [B, 8] -> [B, 16, 16, 3] in (0, 1)
  const decoderOpt = new AdamW(decoder, { lr: 1e-3 });
  decoderStep(decoder, decoderOpt, { embedding: target, images }); // MSE; { maxShift } makes it translation-tolerant
  const pixels = imageFromCodes(model, decoder, codes); // codes -> decodeCodes(...).gen -> decoder: [4, 16, 16, 3]
  // --- README example end ---
  expect(Number.isFinite(loss)).toBe(true);
  expect(codes.length).toBe(16);
  expect(causal.shape).toEqual([4, 4, 16]);
  expect(gen.shape).toEqual([4, 8]);
  expect(pixels.shape).toEqual([4, 16, 16, 3]);
  opt.dispose();
  decoderOpt.dispose();
  decoder.dispose();
  model.dispose();
});
