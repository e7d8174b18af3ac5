/**
 * Times LatentLM's image-token arm at the lab's `quick` budget (16 px Shapes, 1000 training images,
 * backbone 2 x 64 with 4 heads, 300 tokenizer + 600 backbone steps, batch 16) and the inference the
 * lab's quickstart runs: reconstruct, generate and caption 32 val images.
 *   pnpm --filter @mmlm/latentlm exec tsx --conditions=@mmlm/source scripts/arm-budget.ts [--out dir] [--seed 0] [--cfg w] [--eval 32]
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { currentBackend, initBackend } from '@mmlm/core';
import { imageTokenArm } from '../src/experiments/index.js';
import { writeImageGrid } from '../src/experiments/png.js';

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
// @mmlm/data does not export its Shapes dataset yet (DATA_API pending): load it from the source.
interface Sample {
  image: Float32Array;
  caption: string;
  scene: { objects: { shape: string; colour: string }[] };
}
const { ShapesDataset } = (await import(new URL('../../data/src/images/dataset.ts', import.meta.url).href)) as {
  ShapesDataset: new (o: object) => { iterate(start: number, count: number): IterableIterator<Sample> };
};
const { ShapeAnalyzer } = (await import(new URL('../../data/src/eval/analyzer.ts', import.meta.url).href)) as {
  ShapeAnalyzer: new (o: object) => { analyze(im: Float32Array): { objects: { shape: string; colour: string }[] } };
};
const common = { imageSize: 16, minObjects: 1, maxObjects: 1, seed };
const train = [...new ShapesDataset({ ...common, split: 'train' }).iterate(0, 1000)];
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
// rough quality (the lab computes the real metrics): one object of the caption's shape and colour; caption names both
const analyzer = new ShapeAnalyzer({ imageSize: 16 });
const matches = (ims: Float32Array[]) =>
  ims.filter((im, i) => {
    const o = analyzer.analyze(im).objects;
    const want = val[i]!.scene.objects[0]!;
    return o.length === 1 && o[0]!.shape === want.shape && o[0]!.colour === want.colour;
  }).length / val.length;
const genMatch = matches(gen.images);
const capMatch =
  caps.filter((c, i) => {
    const want = val[i]!.scene.objects[0]!;
    const w = c.split(' ');
    return w.includes(want.shape) && w.includes(want.colour);
  }).length / val.length;
writeImageGrid(join(out, 'generated.png'), gen.images.slice(0, 32), 16, 8);
writeImageGrid(join(out, 'reconstructed.png'), [...val.slice(0, 16).map((s) => s.image), ...recon.slice(0, 16)], 16, 8);
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
      generatedShapeAndColour: genMatch,
      realShapeAndColour: matches(val.map((v) => v.image)),
      reconShapeAndColour: matches(recon),
      captionShapeAndColour: capMatch,
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
