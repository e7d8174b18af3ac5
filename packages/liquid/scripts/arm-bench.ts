/**
 * Times Liquid's image-token arm at the lab's `quick` budget (16 px, backbone 2 x 64 with 4 heads,
 * 300 tokenizer + 600 backbone steps, batch 16, 1000 training images, 32 evaluation captions):
 * training, then generating, captioning and reconstructing 32 images, on the active backend; wall and
 * process CPU seconds (the CPU time is what an idle machine's wall time would be with one thread).
 *   MMLM_WASM_THREADS=1 pnpm --filter @mmlm/liquid exec tsx --conditions=@mmlm/source scripts/arm-bench.ts [outDir] [cfg...]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentBackend, initBackend } from '@mmlm/core';
import { captionScore, generationScore, writeImageGrid } from '@mmlm/data';
import { shapesData } from '../src/experiments/common.js';
import { imageTokenArm } from '../src/experiments/index.js';

await initBackend({ log: false });
const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'liquid-arm-'));
const scales = process.argv.slice(3).map(Number);
const S = 16;
const d = shapesData({ imageSize: S, train: 1000, val: 32, seed: 0 });
const data = {
  imageSize: S,
  train: { images: d.train.map((x) => x.image), captions: d.train.map((x) => x.caption) },
  evalCaptions: d.val.map((x) => x.caption),
};
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const marks: Record<string, number> = {};
const arm = await imageTokenArm({
  data,
  backbone: { dim: 64, numLayers: 2, numHeads: 4 },
  tokenizerSteps: 300,
  backboneSteps: 600,
  batchSize: 16,
  captionFraction: 0.3,
  seed: 0,
  dir,
  progress: (name, total) => ({
    tick: (step, info) => {
      if (step % 100 === 0)
        console.error(`${name} ${step}/${total} ${JSON.stringify(info)} ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    },
    done: () => {
      marks[name] = (performance.now() - t0) / 1000;
    },
  }),
  log: (l) => console.error(l),
});
const tTrain = (performance.now() - t0) / 1000;
const t1 = performance.now();
const rec = await arm.reconstruct(d.val.map((x) => x.image));
const tRec = (performance.now() - t1) / 1000;
const t2 = performance.now();
const gen = await arm.generate(data.evalCaptions, { seed: 0 });
const tGen = (performance.now() - t2) / 1000;
const t3 = performance.now();
const caps = await arm.caption(
  d.val.map((x) => x.image),
  { seed: 0 },
);
const tCap = (performance.now() - t3) / 1000;
writeImageGrid(join(dir, 'recon.png'), [...d.val.slice(0, 8).map((x) => x.image), ...rec.slice(0, 8)], { size: S, cols: 8, scale: 6 });
writeImageGrid(join(dir, 'gen.png'), gen.images.slice(0, 16), { size: S, cols: 8, scale: 6 });
let se = 0;
d.val.forEach((x, i) => x.image.forEach((v, j) => (se += (v - rec[i]![j]!) ** 2)));
console.log(
  JSON.stringify(
    {
      backend: currentBackend()?.backend,
      marks,
      trainSeconds: tTrain,
      reconstructSeconds: tRec,
      generateSeconds: tGen,
      captionSeconds: tCap,
      totalSeconds: (performance.now() - t0) / 1000,
      cpuSeconds: (() => {
        const c = process.cpuUsage(cpu0);
        return (c.user + c.system) / 1e6;
      })(),
      loadAverage: (await import('node:os')).loadavg()[0],
      psnr: -10 * Math.log10(se / (32 * S * S * 3)),
      generationScore: generationScore(
        d.val.map((x, i) => ({ caption: x.caption, image: gen.images[i]! })),
        d.config,
      ).overall,
      captionAccuracy: captionScore(caps.map((caption, i) => ({ caption, scene: d.val[i]!.scene }))).overall,
      captions: caps.slice(0, 4),
      params: arm.parameterCounts,
    },
    null,
    1,
  ),
);
for (const s of scales) {
  const g = await arm.generate(data.evalCaptions, { seed: 0, cfgScale: s });
  const score = generationScore(
    d.val.map((x, i) => ({ caption: x.caption, image: g.images[i]! })),
    d.config,
  ).overall;
  console.log(`cfg ${s}: generation score ${score}`);
}
arm.dispose();
