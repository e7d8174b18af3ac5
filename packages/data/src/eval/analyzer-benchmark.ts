/**
 * The measurement behind the README's ShapeAnalyzer table: render random Shapes scenes (optionally
 * blurred, then noised), analyse them, match detected to true objects one-to-one by nearest centre
 * (greedy over all pairs by distance, within one true radius + 1 px), and count correct attributes.
 * Shared by the tests and `pnpm --filter @mmlm/data analyzer-report`.
 */
import { Rng } from '@mmlm/core';
import { resolveShapesConfig, type ShapesConfig } from '../images/config.js';
import { addGaussianNoise, gaussianBlur, renderScene } from '../images/render.js';
import { sampleScene } from '../images/scene.js';
import { ShapeAnalyzer } from './analyzer.js';

export interface AnalyzerBenchmarkOptions extends Partial<ShapesConfig> {
  /** Number of images. */
  images: number;
  /** Gaussian blur sigma in pixels, applied before noise (default 0). */
  blurSigma?: number;
}

export interface AnalyzerBenchmark {
  images: number;
  objects: number;
  /** Fraction of images whose detected object count equals the true count. */
  count: number;
  /** Fractions of true objects matched to a detection with the right attribute (a missed object counts as wrong). */
  shape: number;
  colour: number;
  size: number;
  cell: number;
  /** Mean and largest distance (px) between matched detected and true centres. */
  centreErrorPx: { mean: number; max: number };
  /** Fraction of images with the right count and every object right on every attribute. */
  allCorrect: number;
  /** Shape confusions "true->detected" with their counts (including "->missed"). */
  confusions: Record<string, number>;
}

/** Renders `images` random scenes of the config and scores the analyzer on them. */
export function benchmarkShapeAnalyzer(opts: AnalyzerBenchmarkOptions): AnalyzerBenchmark {
  const { images, blurSigma = 0, ...partial } = opts;
  if (!Number.isInteger(images) || images < 1) throw new Error(`benchmarkShapeAnalyzer: images must be a positive integer, got ${images}`);
  if (!(blurSigma >= 0)) throw new Error(`benchmarkShapeAnalyzer: blurSigma must be >= 0, got ${blurSigma}`);
  const config = resolveShapesConfig(partial);
  const S = config.imageSize;
  const analyzer = new ShapeAnalyzer(config);
  const rng = new Rng(config.seed).fork('analyzer-benchmark');
  const ok = { shape: 0, colour: 0, size: 0, cell: 0 };
  let objects = 0;
  let countOk = 0;
  let allOk = 0;
  let errSum = 0;
  let errMax = 0;
  let matched = 0;
  const confusions: Record<string, number> = {};
  for (let i = 0; i < images; i++) {
    const r = rng.fork(i);
    const scene = sampleScene(config, r.fork('scene'));
    let img = renderScene(scene, { antialias: config.antialias });
    if (blurSigma > 0) img = gaussianBlur(img, S, S, 3, blurSigma);
    if (config.noiseStd > 0) img = addGaussianNoise(img, config.noiseStd, r.fork('noise'));
    const det = analyzer.analyze(img).objects;
    const pairs: [number, number, number][] = [];
    scene.objects.forEach((o, a) =>
      det.forEach((d, b) => {
        const dist = Math.hypot(d.x - o.x, d.y - o.y) * S;
        if (dist <= o.radius * S + 1) pairs.push([dist, a, b]);
      }),
    );
    pairs.sort((p, q) => p[0] - q[0]);
    const matchOf = new Map<number, number>();
    const usedDet = new Set<number>();
    for (const [, a, b] of pairs)
      if (!matchOf.has(a) && !usedDet.has(b)) {
        matchOf.set(a, b);
        usedDet.add(b);
      }
    let imageOk = det.length === scene.objects.length;
    if (imageOk) countOk++;
    scene.objects.forEach((o, a) => {
      objects++;
      const b = matchOf.get(a);
      if (b === undefined) {
        confusions[`${o.shape}->missed`] = (confusions[`${o.shape}->missed`] ?? 0) + 1;
        imageOk = false;
        return;
      }
      const d = det[b]!;
      const e = Math.hypot(d.x - o.x, d.y - o.y) * S;
      errSum += e;
      errMax = Math.max(errMax, e);
      matched++;
      if (d.shape !== o.shape) confusions[`${o.shape}->${d.shape}`] = (confusions[`${o.shape}->${d.shape}`] ?? 0) + 1;
      for (const k of ['shape', 'colour', 'size', 'cell'] as const)
        if (d[k] === o[k]) ok[k]++;
        else imageOk = false;
    });
    if (imageOk) allOk++;
  }
  return {
    images,
    objects,
    count: countOk / images,
    shape: ok.shape / objects,
    colour: ok.colour / objects,
    size: ok.size / objects,
    cell: ok.cell / objects,
    centreErrorPx: { mean: matched ? errSum / matched : Number.NaN, max: errMax },
    allCorrect: allOk / images,
    confusions,
  };
}
