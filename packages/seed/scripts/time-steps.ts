/**
 * Per-step timings of the LM and pixel VQ-VAE phases at the `small` shapes of the experiments on
 * codes (seed.lora-vs-full, seed.causal-vs-bidirectional, seed.semantic-vs-pixel), for the preset
 * time estimates in the README: a few steps each on random codes / images, seconds per step and
 * per 64 evaluation prompts.
 *   MMLM_WASM_THREADS=1 pnpm --filter @mmlm/seed exec tsx --conditions=@mmlm/source scripts/time-steps.ts
 */
import { AdamW, currentBackend, initBackend, Rng, tf } from '@mmlm/core';
import { LORA_VS_FULL_SETTINGS, PixelVQVAE, pixelVQStep } from '../src/experiments/index.js';
import { generateCaptions, generateFreeImageSpans, generateImageCodes, SeedLM, trainSeedLM } from '../src/index.js';

await initBackend({ log: false });
const st = LORA_VS_FULL_SETTINGS.small;
const Q = 8;
const K = 256;
const rng = new Rng(0);
const V = 40;
const lm = new SeedLM({ ...st.lm, textVocabSize: V, seed: 0 });
const pairs = Array.from({ length: 256 }, () => ({
  caption: [4, 5 + rng.int(0, 8), 13 + rng.int(0, 8), 21 + rng.int(0, 8)],
  codes: Int32Array.from({ length: Q }, () => rng.int(0, K)),
}));
const text = Array.from({ length: 256 }, () => Array.from({ length: 8 }, () => 3 + rng.int(0, V - 3)));
const template = { user: [30, 31], assistant: [32, 31] };
const n = 15;
const r = await trainSeedLM({
  model: lm,
  text,
  pairs,
  numCodes: K,
  tokensPerImage: Q,
  template,
  seed: 0,
  recipe: {
    text: { ...st.text, steps: n },
    pretrain: { ...st.pretrain, steps: n },
    sft: { ...st.sft, steps: n },
    tuning: 'lora',
    lora: st.lora,
  },
});
const out: Record<string, number> = {};
for (const k of ['text', 'pretrain', 'sft'] as const) out[`lm ${k} s/step (lora)`] = r[k].seconds / n;
const caps = pairs.slice(0, 64).map((p) => p.caption);
const codes = new Int32Array(64 * Q).map(() => rng.int(0, K));
let t = performance.now();
generateImageCodes(lm, caps, { template, rng, ...st.sampling });
out['forced span s / 64 prompts (CFG)'] = (performance.now() - t) / 1000;
t = performance.now();
generateCaptions(lm, codes, { template });
out['captions s / 64 images'] = (performance.now() - t) / 1000;
t = performance.now();
generateFreeImageSpans(lm, caps, { template, rng, temperature: 1, topP: 1 });
out['free run s / 64 prompts'] = (performance.now() - t) / 1000;
lm.dispose();

const vq = new PixelVQVAE({ imageSize: 16, grid: [2, 4], codeDim: 8, numCodes: K, encoderHidden: 128, decoderHidden: [512, 512] });
vq.train();
const opt = new AdamW(vq, { lr: 1e-3 });
const x = tf.randomUniform([64, 16, 16, 3]);
pixelVQStep(vq, opt, x);
t = performance.now();
for (let i = 0; i < n; i++) pixelVQStep(vq, opt, x);
out['pixel VQ-VAE s/step (batch 64)'] = (performance.now() - t) / 1000 / n;
console.log(`backend ${currentBackend()?.backend}`);
for (const [k, v] of Object.entries(out)) console.log(`${k}: ${v.toFixed(4)}`);
