/** The README's usage example, verbatim between the markers (the README adds only its import lines). */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, Rng, TransformerDecoder, tf } from '@mmlm/core';
import {
  applyMaskFile,
  blockLinears,
  compressNM,
  densify,
  evaluatePerplexity,
  injectPrior,
  invalidGroups,
  loadMasks,
  maskllmConfig,
  maskOptimizer,
  maskTrainStep,
  oneShotPrune,
  saveMasks,
  sparseMatMul,
  sparsify,
  withShapes,
} from '@mmlm/maskllm';
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
  // --- README example start ---
  await initBackend(); // wasm here (or tfjs-node where libtensorflow is installed); logs its choice
  // A dense decoder (train it first, or load its weights) and a config with the mask recipe.
  const cfg = maskllmConfig({ train: { steps: 10, batchSize: 4, lr: 1e-2, lrMin: 1e-3, lrMult: 1 } });
  const decoderConfig = { vocabSize: 32, dim: 32, numLayers: 2, numHeads: 2, maxSeqLen: 16, seed: 0 };
  const model = new TransformerDecoder(decoderConfig);
  const rng = new Rng(0);
  const calib = rng.randint([8, 16], 0, 32); // calibration ids [B, T]

  // 1. One-shot SparseGPT 2:4 masks on a copy, layer by layer (magnitude and wanda work the same way).
  const copy = new TransformerDecoder(decoderConfig);
  copy.loadStateDict(model.stateDict());
  const prior = oneShotPrune(copy, 'sparsegpt', calib, { update: false }); // Map<layer path, 0/1 mask>

  // 2. MaskLLM: learnable logits over the 6 candidate masks of every group of 4 inputs, frozen weights.
  sparsify(model, { seed: 1 }); // every block Linear -> MaskedLinear; LM head and embeddings stay dense
  injectPrior(model, prior, cfg.mask.priorStrength); // logits += 3 * std * (overlap - 1)
  const opt = maskOptimizer(model, cfg.train);
  model.train();
  for (let t = 0; t < cfg.train.steps; t++) {
    const batch = rng.randint([cfg.train.batchSize, 17], 0, 32); // ids [B, T+1]
    const s = maskTrainStep(model, opt, batch, t, cfg); // Gumbel-softmax sample, L_LM - lambda_t sum ||W*M||^2
    batch.dispose();
    if (t % 5 === 0) console.log(t, s.lm, s.tau, s.kappa);
  }

  // 3. Export: hard masks S[argmax logits], plain Linears with exactly 2 non-zeros per group of 4.
  const masks = densify(model);
  const file = join(tmpdir(), `maskllm-example-${process.pid}.safetensors`);
  await saveMasks(file, { n: 2, m: 4, encoding: 'index', layers: withShapes(model, masks) }); // 3 bits per group of 4
  const fresh = new TransformerDecoder(decoderConfig); // the dense weights again
  applyMaskFile(fresh, loadMasks(file)); // checks every layer's name and shape
  const val = rng.randint([1, 161], 0, 32).dataSync() as Int32Array;
  console.log(evaluatePerplexity(fresh, val, { seqLen: 16 }).ppl);

  // 4. The compressed 2:4 form of one layer (kept values + 2-bit positions) and its sparse matmul.
  const [, fc1] = blockLinears(fresh)[2]!;
  const W = fc1.weight.dataSync() as Float32Array; // [out, in]
  const packed = compressNM(W, fc1.outFeatures, fc1.inFeatures, 2, 4);
  const x = rng.randn([5, fc1.inFeatures]).dataSync() as Float32Array;
  const y = sparseMatMul(x, 5, packed); // [5, out] = x W^T
  // --- README example end ---
  for (const [p, l] of blockLinears(model)) expect(invalidGroups(l.weight.dataSync(), 2, 4), p).toBe(0);
  for (const [p, l] of blockLinears(fresh))
    expect(Array.from(l.weight.dataSync()), p).toEqual(
      Array.from(
        blockLinears(model)
          .find(([q]) => q === p)![1]
          .weight.dataSync(),
      ),
    );
  const ref = tf.tidy(() => tf.matMul(tf.tensor2d(x, [5, fc1.inFeatures]), fc1.weight, false, true).dataSync());
  ref.forEach((v, i) => expect(Math.abs(v - y[i]!)).toBeLessThan(1e-5));
  rmSync(file);
  opt.dispose();
  [model, copy, fresh].forEach((m) => m.dispose());
  calib.dispose();
});
