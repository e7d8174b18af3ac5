/**
 * ImageCodes read-back for recipe choices: trains one ImageCodes per variant on the training images of
 * the toy world mio.staged and mio.any-to-any use (16 px, one object; Shapes seen / held-out sets of
 * `@mmlm/data`) and prints the ShapeAnalyzer's agreement between originals and reconstructions on
 * the training images, the seen set and the held-out set, with the training time.
 *
 *   MMLM_WASM_THREADS=1 npx tsx --conditions=@mmlm/source packages/mio/scripts/image-codes-recipe.ts \
 *     --variants base,long --train 2000 --eval 256 --seed 0
 *
 * Variants (each a change from the `small` ImageCodes preset and its 1,500-step training):
 *   base      the small preset as the experiments train it
 *   long      6,000 steps
 *   long4k    4,000 steps
 *   wide-long hidden 512, 6,000 steps
 *   wide      hidden 512
 *   codes16   16 codes of 64 per image
 *   k256      8 codes of 256
 * Prints one JSON line per variant, then a table.
 */
import { currentBackend, initBackend } from '@mmlm/core';
import { analyzerAgreement, ShapeAnalyzer, seenHeldOutSets } from '@mmlm/data';
import { ImageCodes, type ImageCodesConfigInput, type ImageCodesTrainInput, trainImageCodes } from '../src/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const VARIANTS: Record<string, { model: ImageCodesConfigInput; train: ImageCodesTrainInput }> = {
  base: { model: { encoder: 'mlp' }, train: {} },
  long: { model: { encoder: 'mlp' }, train: { steps: 6000 } },
  long4k: { model: { encoder: 'mlp' }, train: { steps: 4000 } },
  'wide-long': { model: { encoder: 'mlp', hidden: 512 }, train: { steps: 6000 } },
  wide: { model: { encoder: 'mlp', hidden: 512 }, train: {} },
  codes16: { model: { encoder: 'mlp', tokens: 16 }, train: {} },
  k256: { model: { encoder: 'mlp', codes: 256 }, train: {} },
  causal: { model: { encoder: 'causal' }, train: {} },
  'causal-wide': { model: { encoder: 'causal', hidden: 512 }, train: {} },
  'causal-wide-long': { model: { encoder: 'causal', hidden: 512 }, train: { steps: 6000 } },
  'causal64-wide-long': { model: { encoder: 'causal', hidden: 512, qformerWidth: 64, qformerFfn: 128 }, train: { steps: 6000 } },
  'causal-wide-4k': { model: { encoder: 'causal', hidden: 512 }, train: { steps: 4000 } },
  'causal-wide-short': { model: { encoder: 'causal', hidden: 512 }, train: { steps: 300 } },
  'wide-short': { model: { encoder: 'mlp', hidden: 512 }, train: { steps: 300 } },
};
const names = arg('variants', 'base').split(',');
for (const n of names)
  if (!VARIANTS[n]) throw new Error(`image-codes-recipe: unknown variant "${n}"; expected one of ${Object.keys(VARIANTS).join(', ')}`);
const seed = Number(arg('seed', '0'));
const nTrain = Number(arg('train', '2000'));
const nEval = Number(arg('eval', '256'));

await initBackend({ log: false });
const sets = seenHeldOutSets({ seed, imageSize: 16, minObjects: 1, maxObjects: 1 }, { train: nTrain, seen: nEval, heldOut: nEval });
const analyzer = new ShapeAnalyzer(sets.config);
const train = sets.train.map((s) => s.image);
const rows: string[] = [];
for (const name of names) {
  const v = VARIANTS[name]!;
  const model = new ImageCodes({ ...v.model, seed });
  const t0 = performance.now();
  const recs = trainImageCodes(model, train, { ...v.train, seed });
  const seconds = (performance.now() - t0) / 1000;
  const agree = (imgs: Float32Array[]) => analyzerAgreement(imgs, model.decode(model.encode(imgs)), analyzer);
  const out = {
    variant: name,
    backend: currentBackend()?.backend ?? null,
    seed,
    params: model.numParameters(),
    seconds: Math.round(seconds),
    rec: recs[recs.length - 1]!.rec,
    usage: recs[recs.length - 1]!.usage,
    train: agree(train.slice(0, nEval)),
    seen: agree(sets.seen.map((s) => s.image)),
    heldOut: agree(sets.heldOut.map((s) => s.image)),
  };
  console.log(JSON.stringify(out));
  rows.push(
    `| ${name} | ${out.params} | ${out.seconds} | ${out.rec.toFixed(4)} | ${out.usage.toFixed(2)} | ${out.train.toFixed(3)} | ${out.seen.toFixed(3)} | ${out.heldOut.toFixed(3)} |`,
  );
  model.dispose();
}
console.log(
  '\n| variant | parameters | seconds | rec | usage | read-back train | seen | held-out |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
);
for (const r of rows) console.log(r);
