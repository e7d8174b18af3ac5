/**
 * Read-back of the liquid experiments' VQ tokenizer on the `small` data of one seed (the same data,
 * batches and recipe as the experiments' tokenizer stage, `prepare('small', ...)`), for a number of
 * steps and a conv width: analyzer agreement, PSNR and codebook usage every 500 steps (the cosine
 * schedule runs over all `steps`, so only the last line is a run of that length), then the
 * reconstructions the analyzer misreads, grouped.
 *   MMLM_WASM_THREADS=1 pnpm --filter @mmlm/liquid exec tsx --conditions=@mmlm/source scripts/tokenizer-readback.ts <seed> <steps> [ch]
 * It chose liquid.cfg-sweep's `small-pos` tokenizer (width 32, 2,000 steps).
 */
import { initBackend, Rng, tf } from '@mmlm/core';
import { analyzerAgreement } from '@mmlm/data';
import { prepare } from '../src/experiments/common.js';
import { decodeCodesToImages, imageTokenizerConfig, makeOptimizer, tokenizerStats, tokenizerTrainStep, VQTokenizer } from '../src/index.js';

const [seed, steps, ch] = process.argv.slice(2).map(Number);
if (!Number.isInteger(seed) || !Number.isInteger(steps) || (steps as number) < 1 || (ch !== undefined && !Number.isInteger(ch)))
  throw new Error(`usage: tokenizer-readback.ts <seed> <steps> [ch]; got ${process.argv.slice(2).join(' ')}`);
await initBackend({ backend: 'wasm', log: false });
const prep = prepare('small', { images: { train: 2000, evalPrompts: 256 }, textChars: 200_000, textEvalWindows: 64 }, seed as number);
const vq = new VQTokenizer(imageTokenizerConfig({ ...prep.cfg.tokenizer, ...(ch === undefined ? {} : { ch }) }));
const phase = { ...prep.cfg.train.tokenizer, steps: steps as number };
const opt = makeOptimizer(vq, phase);
const S = prep.cfg.tokenizer.imageSize;
const per = S * S * 3;
const items = [...prep.data.seen, ...prep.data.heldOut];
const evalImages = new Float32Array(items.length * per);
items.forEach((d, i) => evalImages.set(d.image, i * per));
const read = (im: Float32Array) =>
  prep.analyzer
    .analyze(im)
    .objects.map((o) => `${o.size} ${o.colour} ${o.shape}`)
    .sort()
    .join(' + ');
const rng = new Rng(seed as number).fork('tokenizer-batches'); // the experiments' batch stream
const t0 = performance.now();
const buf = new Float32Array(phase.batchSize * per);
for (let t = 1; t <= phase.steps; t++) {
  for (let b = 0; b < phase.batchSize; b++) buf.set(prep.data.train[rng.int(0, prep.data.train.length)]!.image, b * per);
  vq.train();
  const x = tf.tidy(() => tf.tensor4d(buf, [phase.batchSize, S, S, 3]).mul(2).sub(1));
  tokenizerTrainStep(vq, opt, x, t - 1, phase);
  x.dispose();
  if (t % 500 !== 0 && t !== phase.steps) continue;
  vq.eval();
  const ev = tokenizerStats(vq, evalImages);
  const rec = decodeCodesToImages(vq, ev.codes);
  const recs = items.map((_, i) => rec.subarray(i * per, (i + 1) * per));
  const agreement = analyzerAgreement(
    items.map((d) => d.image),
    recs,
    prep.analyzer,
  );
  const s = ((performance.now() - t0) / 1000).toFixed(0);
  console.log(
    `seed ${seed} ch ${vq.config.ch} step ${t}/${phase.steps}: agreement ${agreement.toFixed(3)}, PSNR ${ev.psnr.toFixed(2)} dB, usage ${ev.usage.toFixed(2)} (${s} s)`,
  );
  if (t === phase.steps) {
    const misses = new Map<string, number>();
    items.forEach((d, i) => {
      const a = read(d.image);
      const b = read(recs[i] as Float32Array);
      if (a !== b) misses.set(`${a} -> ${b}`, (misses.get(`${a} -> ${b}`) ?? 0) + 1);
    });
    for (const [k, n] of [...misses].sort((p, q) => q[1] - p[1])) console.log(`  ${n} x ${k}`);
  }
}
opt.dispose();
vq.dispose();
