/**
 * Measures the ShapeAnalyzer and prints the README's table:
 *   pnpm --filter @mmlm/data analyzer-report [--images 400] [--json out.json] [--fd-only]
 * Accuracy per attribute on clean renders (16, 32, 64 px; hard edges; continuous positions; random
 * backgrounds), then at 32 px under Gaussian pixel noise and Gaussian blur (blur first, then noise);
 * then the Fréchet distance of 48 training images (16 px) to identical, fresh, noisy and blurred
 * sets on both feature kinds (cpu backend).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initBackend, Rng } from '@mmlm/core';
import { type AnalyzerBenchmarkOptions, benchmarkShapeAnalyzer, frechetDistance } from '../src/eval/index.js';
import { addGaussianNoise, gaussianBlur, ShapesDataset } from '../src/images/index.js';

const { values } = parseArgs({
  options: { images: { type: 'string', default: '400' }, json: { type: 'string' }, 'fd-only': { type: 'boolean', default: false } },
});
const n = Number(values.images);
if (!Number.isInteger(n) || n < 1) throw new Error(`analyzer-report: --images must be a positive integer, got ${values.images}`);

const conditions: [string, AnalyzerBenchmarkOptions][] = [
  ['clean, 32 px', { seed: 1, images: n, imageSize: 32 }],
  ['clean, 16 px (1 object)', { seed: 2, images: n, imageSize: 16 }],
  ['clean, 64 px', { seed: 3, images: n, imageSize: 64 }],
  ['clean, 32 px, hard edges', { seed: 4, images: n, imageSize: 32, antialias: false }],
  ['clean, 32 px, random backgrounds', { seed: 5, images: n, imageSize: 32, background: 'random' }],
  ['clean, 32 px, continuous positions', { seed: 6, images: n, imageSize: 32, positions: 'continuous' }],
  ...[0.02, 0.05, 0.1, 0.2].map((s): [string, AnalyzerBenchmarkOptions] => [
    `noise std ${s}, 32 px`,
    { seed: 7, images: n, imageSize: 32, noiseStd: s },
  ]),
  ...[0.5, 0.75, 1, 1.5].map((s): [string, AnalyzerBenchmarkOptions] => [
    `blur sigma ${s} px, 32 px`,
    { seed: 8, images: n, imageSize: 32, blurSigma: s },
  ]),
];

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const rows: Record<string, unknown>[] = [];
console.log(
  '| condition | images | objects | count | shape | colour | size | cell | all correct | centre error px (mean / max) | seconds |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const [name, opts] of values['fd-only'] ? [] : conditions) {
  const t0 = performance.now();
  const r = benchmarkShapeAnalyzer(opts);
  const s = (performance.now() - t0) / 1000;
  rows.push({ name, ...opts, ...r, seconds: s });
  console.log(
    `| ${name} | ${r.images} | ${r.objects} | ${pct(r.count)} | ${pct(r.shape)} | ${pct(r.colour)} | ${pct(r.size)} | ${pct(r.cell)} | ${pct(r.allCorrect)} | ${r.centreErrorPx.mean.toFixed(2)} / ${r.centreErrorPx.max.toFixed(2)} | ${s.toFixed(1)} |`,
  );
}

await initBackend({ backend: 'cpu', log: false });
const N = 48;
const S = 16;
const real = new ShapesDataset({ seed: 1, imageSize: S, split: 'all' }).batch(0, N).samples.map((x) => x.image);
const fresh = new ShapesDataset({ seed: 2, imageSize: S, split: 'all' }).batch(0, N).samples.map((x) => x.image);
const sets: [string, Float32Array[]][] = [
  ['identical', real],
  ['fresh sample, same distribution', fresh],
  ...[0.1, 0.2, 0.3].map((std): [string, Float32Array[]] => [
    `fresh + noise std ${std}`,
    fresh.map((im, i) => addGaussianNoise(im, std, new Rng(i))),
  ]),
  ['fresh + blur sigma 1 px', fresh.map((im) => gaussianBlur(im, S, S, 3, 1))],
  [
    'red objects only',
    new ShapesDataset({ seed: 2, imageSize: S, split: 'all', colours: ['red'], heldOut: [] }).batch(0, N).samples.map((x) => x.image),
  ],
];
console.log(`\n| Fréchet distance to ${N} training images (${S} px) | conv features | analyzer features |`);
console.log('|---|---|---|');
const fd: Record<string, unknown>[] = [];
for (const [name, set] of sets) {
  const conv = frechetDistance(real, set, { features: 'conv' });
  const an = frechetDistance(real, set, { features: 'analyzer', analyzer: { imageSize: S } });
  fd.push({ name, conv, analyzer: an });
  console.log(`| ${name} | ${conv.toFixed(3)} | ${an.toFixed(3)} |`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ analyzer: rows, frechet: fd }, null, 2));
