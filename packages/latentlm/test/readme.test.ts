/** The README's usage example, verbatim between the markers (the README adds only the two import lines above). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AdamW, initBackend, paramGroups, Rng, tf } from '@mmlm/core';
import { buildMixedBatch, generate, ImageVAE, LatentLM, NoiseSchedule, PRESETS, samplePosterior, trainStep } from '@mmlm/latentlm';
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
  // 1. A sigma-VAE tokenizer: 32x32 images -> 4x4 grids of 8-d latents (mean-only encoder, one sigma per image).
  const vae = new ImageVAE({ imageSize: 32, patchSize: 8, latentDim: 8, dim: 32, depth: 1, numHeads: 2 });
  const images = new Rng(0).rand([2, 32, 32, 3]);
  const posterior = vae.encode(images); // mu [2, 16, 8]; no variance head
  const z = samplePosterior(posterior, vae.config, new Rng(1)); // z = mu + sigma eps, sigma ~ N(0, (0.75 / 0.8)^2)

  // 2. A mixed sequence: text tokens, then <BOD> 16 latents <EOD>. Ids 12..15 are <BOD> <EOD> <LAT> <PAD>.
  const cfg = structuredClone(PRESETS.tiny);
  cfg.model.latentDim = 8;
  const model = new LatentLM(cfg.model);
  const { bodId, eodId, latId } = model.config;
  const seqs = [0, 1].map((b) => ({
    tokens: [3, 7, bodId, ...Array(16).fill(latId), eodId],
    latents: z.slice([b, 0, 0], [1, 16, 8]).dataSync() as Float32Array,
  }));
  const batch = buildMixedBatch(seqs, model.config); // span targets -> diffusion loss, the rest -> cross-entropy

  // 3. One training step of L = L_LM + alpha * L_Diff (4 noise draws per latent, cosine schedule, eps-prediction).
  const schedule = new NoiseSchedule();
  const opt = new AdamW(paramGroups(model), { beta1: 0.9, beta2: 0.98, weightDecay: 0.01 });
  const step = trainStep(model, opt, batch, { schedule, diffusion: cfg.diffusion, rng: new Rng(2), lr: 1e-3, gradClip: 1 });
  console.log(step.loss, step.lm, step.diff);

  // 4. Generation: KV-cached backbone steps, DPM-Solver++ in the head, classifier-free guidance.
  const out = generate(model, {
    prompts: [{ tokens: [3, 7, bodId] }],
    uncondPrompts: [{ tokens: [0, bodId] }],
    schedule,
    headSteps: 5,
    cfgScale: 2,
    spanLength: 16,
    maxNewTokens: 17,
    stopAfterSpan: true,
    seed: 0,
  });
  const latents = tf.tensor3d(out.spans[0]![0]!, [1, 16, 8]);
  const image = vae.decode(model.denormalizeLatents(latents)); // [1, 32, 32, 3]
  // --- README example end ---
  expect(posterior.logvar).toBeNull();
  expect(Number.isFinite(step.loss)).toBe(true);
  expect(Array.from(out.outputs[0]!.tokens)).toEqual([...Array(16).fill(latId), eodId]);
  expect(image.shape).toEqual([1, 32, 32, 3]);
  opt.dispose();
  model.dispose();
  vae.dispose();
});
