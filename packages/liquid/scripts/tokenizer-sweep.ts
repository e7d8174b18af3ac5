/**
 * Tokenizer settings at the lab arm's budget (300 steps of 16 images, 16 px shapes, 1000 training
 * images): validation PSNR, codebook usage and code perplexity of each variant, one line each.
 *   MMLM_WASM_THREADS=1 pnpm --filter @mmlm/liquid exec tsx --conditions=@mmlm/source scripts/tokenizer-sweep.ts \
 *     '[["A",{"numResBlocks":0},2e-3],["I",{},2e-3],["F",{"chMult":[1,2,2]},2e-3]]'
 * Each entry is [name, tokenizer config overrides of the base (width 16, chMult [1, 1, 1], one block), lr].
 */
import { initBackend, Rng, tf } from '@mmlm/core';
import { shapesData } from '../src/experiments/common.js';
import { imageTokenizerConfig, makeOptimizer, TrainPhaseSchema, tokenizerStats, tokenizerTrainStep, VQTokenizer } from '../src/index.js';

await initBackend({ log: false });
const S = 16;
const d = shapesData({ imageSize: S, train: 1000, val: 64, seed: 0 });
const per = S * S * 3;
const val = new Float32Array(64 * per);
d.val.forEach((x, i) => val.set(x.image, i * per));
const base = {
  imageSize: S,
  ch: 16,
  chMult: [1, 1, 1],
  numResBlocks: 0,
  zChannels: 16,
  codeDim: 8,
  numCodes: 64,
  deadCodeSteps: 20,
  seed: 0,
};
const runs: [string, object, number][] = JSON.parse(process.argv[2]!);
for (const [name, over, lr] of runs) {
  const vq = new VQTokenizer(imageTokenizerConfig({ ...base, ...over }));
  const phase = TrainPhaseSchema.parse({ steps: 300, batchSize: 16, lr, warmup: 30 });
  const opt = makeOptimizer(vq, phase);
  const rng = new Rng(0);
  const t0 = performance.now();
  const buf = new Float32Array(16 * per);
  let last = 0;
  for (let t = 0; t < 300; t++) {
    for (let b = 0; b < 16; b++) buf.set(d.train[rng.int(0, 1000)]!.image, b * per);
    const x = tf.tidy(() => tf.tensor4d(buf, [16, S, S, 3]).mul(2).sub(1));
    last = tokenizerTrainStep(vq, opt, x, t, phase).rec;
    x.dispose();
  }
  const sec = (performance.now() - t0) / 1000;
  vq.eval();
  const st = tokenizerStats(vq, val);
  console.log(
    `${name}: ${sec.toFixed(1)}s rec ${last.toFixed(4)} val psnr ${st.psnr.toFixed(2)} usage ${st.usage.toFixed(2)} ppl ${st.perplexity.toFixed(1)}`,
  );
  opt.dispose();
  vq.dispose();
}
