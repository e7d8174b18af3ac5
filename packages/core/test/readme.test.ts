/**
 * The README's usage example, verbatim (keep the two in sync), plus checks on what it computed.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import {
  AdamW,
  crossEntropy,
  initBackend,
  loadSafetensors,
  paramGroups,
  Rng,
  sample,
  sampleAsync,
  saveSafetensors,
  TransformerDecoder,
  tf,
  valueAndGrads,
} from '../src/index.js';

it('README usage example runs and learns', async () => {
  // --- README example start ---
  await initBackend(); // logs: [mmlm] backend: wasm (...); skipped tensorflow: ...
  const model = new TransformerDecoder({ vocabSize: 16, dim: 32, numLayers: 2, numHeads: 4, maxSeqLen: 32, seed: 0 });
  const opt = new AdamW(paramGroups(model), { lr: 3e-3 });
  const rng = new Rng(0);
  const seq = Array.from({ length: 33 }, (_, i) => i % 8); // learn to count modulo 8
  const x = tf.tensor2d([seq.slice(0, 32)], [1, 32], 'int32');
  const y = tf.tensor2d([seq.slice(1)], [1, 32], 'int32');
  const losses: number[] = [];
  for (let step = 0; step < 60; step++) {
    const loss = tf.tidy(() => {
      const { loss, grads } = valueAndGrads(model, () => crossEntropy(model.forward(x), y) as tf.Scalar);
      opt.step(grads);
      return loss;
    });
    losses.push((await loss.data())[0]!); // an async read: works on every backend, webgpu included
    loss.dispose();
  }
  // incremental decoding with the KV cache
  const cache = model.newCache();
  let next = tf.tensor2d([[0]], [1, 1], 'int32');
  const out: number[] = [];
  for (let t = 0; t < 8; t++) {
    const logits = tf.tidy(() => model.forward(next, { cache }).reshape([1, 16]));
    const id = (await sampleAsync(logits, { temperature: 0 }))[0]!; // greedy; with temperature > 0 pass { rng }
    logits.dispose();
    out.push(id);
    next = tf.tensor2d([[id]], [1, 1], 'int32');
  }
  cache.dispose();
  await saveSafetensors('/tmp/tiny-gpt.safetensors', model.stateDict(), { note: 'readme example' });
  // --- README example end ---
  expect(losses[59]!).toBeLessThan(losses[0]! / 3);
  expect(out).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
  expect(sample(tf.tensor1d([0, 5, 0]), { temperature: 1, rng })[0]).toBe(1);
  const { metadata, tensors } = await loadSafetensors('/tmp/tiny-gpt.safetensors');
  expect(metadata.note).toBe('readme example');
  expect(Object.keys(tensors).length).toBe(Object.keys(model.stateDict()).length);
  // the example in the README is this code
  const readme = readFileSync(resolve(import.meta.dirname, '..', 'README.md'), 'utf8');
  const src = readFileSync(import.meta.filename, 'utf8');
  const body = src.slice(src.indexOf('// --- README example start ---') + 32, src.indexOf('  // --- README example end ---'));
  const dedent = body
    .split('\n')
    .map((l) => l.replace(/^ {2}/, ''))
    .join('\n')
    .trim();
  expect(readme).toContain(dedent);
});
