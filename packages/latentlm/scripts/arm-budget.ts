/**
 * Times LatentLM's image-token arm at the lab's `quick` budget (16 px Shapes from @mmlm/data, one
 * object, 1000 training images, backbone 2 x 64 with 4 heads, 300 tokenizer + 600 backbone steps,
 * batch 16, caption fraction 0.3) and the inference of the lab's quickstart: reconstruct, generate
 * and caption 32 val images. Quality is scored with @mmlm/data's generationScore and captionScore.
 *   pnpm --filter @mmlm/latentlm exec tsx --conditions=@mmlm/source scripts/arm-budget.ts [--out dir] [--seed 0] [--cfg w] [--eval 32]
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { currentBackend, initBackend } from '@mmlm/core';
import { captionScore, generationScore, ShapeAnalyzer, ShapesDataset, writeImageGrid } from '@mmlm/data';
import { imageTokenArm } from '../src/experiments/index.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    seed: { type: 'string', default: '0' },
    cfg: { type: 'string' },
    eval: { type: 'string', default: '32' },
  },
});
const seed = Number(values.seed);
const out = resolve(values.out ?? join('runs', `arm-quick-seed${seed}`));
mkdirSync(out, { recursive: true });
await initBackend();
const common = { imageSize: 16, minObjects: 1, maxObjects: 1, seed };
const trainSet = new ShapesDataset({ ...common, split: 'train' });
const train = [...trainSet.iterate(0, 1000)];
const val = [...new ShapesDataset({ ...common, split: 'val' }).iterate(0, Number(values.eval))];
const data = {
  imageSize: 16,
  train: { images: train.map((s) => s.image), captions: train.map((s) => s.caption) },
  evalCaptions: val.map((s) => s.caption),
};
const t0 = performance.now();
const arm = await imageTokenArm({
  data,
  backbone: { dim: 64, numLayers: 2, numHeads: 4 },
  tokenizerSteps: 300,
  backboneSteps: 600,
  batchSize: 16,
  captionFraction: 0.3,
  seed,
  dir: join(out, 'arm'),
  log: (l) => console.error(l),
});
const tTrain = (performance.now() - t0) / 1000;
const t1 = performance.now();
const recon = await arm.reconstruct(val.map((s) => s.image));
const tRecon = (performance.now() - t1) / 1000;
const t2 = performance.now();
const gen = await arm.generate(data.evalCaptions, { seed, ...(values.cfg ? { cfgScale: Number(values.cfg) } : {}) });
const tGen = (performance.now() - t2) / 1000;
const t3 = performance.now();
const caps = await arm.caption(
  val.map((s) => s.image),
  { seed },
);
const tCap = (performance.now() - t3) / 1000;
let se = 0;
for (const [i, s] of val.entries()) for (let j = 0; j < s.image.length; j++) se += (s.image[j]! - recon[i]![j]!) ** 2;
const psnr = -10 * Math.log10(se / (val.length * 16 * 16 * 3));
const analyzer = new ShapeAnalyzer(trainSet.config);
const score = (images: Float32Array[]) =>
  generationScore(
    val.map((s, i) => ({ caption: s.caption, image: images[i]! })),
    analyzer,
  ).overall;
writeImageGrid(join(out, 'generated.png'), gen.images.slice(0, 32), { size: 16, cols: 8, scale: 2 });
writeImageGrid(join(out, 'reconstructed.png'), [...val.slice(0, 16).map((s) => s.image), ...recon.slice(0, 16)], {
  size: 16,
  cols: 8,
  scale: 2,
});
console.log(
  JSON.stringify(
    {
      backend: currentBackend()?.backend,
      trainSeconds: tTrain,
      reconstructSeconds: tRecon,
      generateSeconds: tGen,
      captionSeconds: tCap,
      generatePlusCaptionSeconds: tGen + tCap,
      reconPsnr: psnr,
      generationScore: score(gen.images),
      generationScoreOfReconstructions: score(recon),
      generationScoreOfRealImages: score(val.map((s) => s.image)),
      captionScore: captionScore(caps.map((caption, i) => ({ caption, scene: val[i]!.scene }))).overall,
      backboneStepsPerImage: gen.backboneStepsPerImage,
      headEvalsPerImage: gen.headEvalsPerImage,
      parameterCounts: arm.parameterCounts,
      captions: caps.slice(0, 8).map((c, i) => ({ got: c, truth: val[i]!.caption })),
    },
    null,
    2,
  ),
);
arm.dispose();
