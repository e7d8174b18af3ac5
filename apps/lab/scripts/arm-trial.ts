/**
 * One image-token arm at one budget and recipe, evaluated as lab.image-tokens evaluates it; prints one
 * JSON line. For recipe exploration (the kept sweep is the lab.image-tokens-sweep experiment).
 *   packages/liquid/node_modules/.bin/tsx --conditions=@mmlm/source apps/lab/scripts/arm-trial.ts '<json>'
 * (from the repository root; tsx is a dev dependency of the paper packages)
 * json: { arm, imageSize, trainImages, evalImages, dim, numLayers, numHeads, tokenizerSteps,
 *         backboneSteps, batchSize, captionFraction, seed, recipe, dir,
 *         gen?: [cfgScale | null, temperature | null][] (or cfgScales?: number[]), label? }
 * A folder keeps the trained phases: rerunning with other sampling settings only evaluates.
 */
import { mkdirSync } from 'node:fs';
import { initBackend } from '@mmlm/core';
import { evaluateArm, loadImageTextData } from '../src/experiments/imageEval.js';
import { IMAGE_TOKEN_ARMS } from '../src/experiments/imageTokens.js';

const o = JSON.parse(process.argv[2] ?? '{}');
await initBackend({});
const data = loadImageTextData({
  imageSize: o.imageSize,
  maxObjects: 1,
  trainImages: o.trainImages,
  evalImages: o.evalImages,
  seed: o.seed ?? 0,
});
console.error(`train keys ${data.trainKeys}, ceilings ${JSON.stringify(data.ceilings)}`);
const arm = IMAGE_TOKEN_ARMS.find((a) => a.name === o.arm)!;
mkdirSync(o.dir, { recursive: true });
for (const [cfg, temp] of (o.gen ?? (o.cfgScales ?? [undefined]).map((c: number | undefined) => [c, undefined])) as [
  number | undefined,
  number | undefined,
][]) {
  const t0 = performance.now();
  const r = await evaluateArm(
    arm.name,
    arm.factory,
    data,
    {
      seed: o.seed ?? 0,
      log: (l) => console.error(l),
      progress: (name: string, total: number) => ({
        tick(s: number, info?: Record<string, number>) {
          if (s % 100 === 0 || s === total)
            console.error(`${name} ${s}/${total} ${JSON.stringify(info)} ${((performance.now() - t0) / 1000).toFixed(0)}s`);
        },
        done() {},
      }),
    },
    o.dir,
    {
      backbone: { dim: o.dim, numLayers: o.numLayers, numHeads: o.numHeads },
      tokenizerSteps: o.tokenizerSteps,
      backboneSteps: o.backboneSteps,
      batchSize: o.batchSize,
      captionFraction: o.captionFraction ?? 0.3,
      recipe: o.recipe,
      ...(cfg == null ? {} : { cfgScale: cfg }),
      ...(temp == null ? {} : { temperature: temp }),
    },
  );
  const { figures, description, ...m } = r;
  console.log(JSON.stringify({ cfg, temp, ...m, label: o.label }));
}
