/**
 * Shared measuring for image-token arms: the same Shapes data for every arm, and every metric computed
 * here with @mmlm/data's instruments (ShapeAnalyzer, generation score, Fréchet distance, caption
 * scoring), never by the arm itself.
 */
import { join } from 'node:path';
import type { ExperimentContext, Figure, ImageTextData, ImageTokenArmFactory, ImageTokenArmOptions } from '@mmlm/core';
import {
  captionScore,
  frechetDistance,
  generationScore,
  type Scene,
  ShapeAnalyzer,
  type ShapesConfig,
  ShapesDataset,
  tokenF1,
} from '@mmlm/data';
import { labelledGridPng } from '../grid.js';
import { writeAtomic } from '../util.js';

export interface EvalSet extends ImageTextData {
  /** Val-split images, their scenes and all reference captions (eval captions are evalCaptions[i]). */
  evalImages: Float32Array[];
  evalScenes: Scene[];
  evalReferences: string[][];
  /** The resolved Shapes config (the analyzer is built from it so grid and size threshold match). */
  config: ShapesConfig;
}

export function loadImageTextData(o: {
  imageSize: number;
  maxObjects: number;
  trainImages: number;
  evalImages: number;
  seed: number;
}): EvalSet {
  const common = { imageSize: o.imageSize, minObjects: 1, maxObjects: o.maxObjects, seed: o.seed };
  const train = new ShapesDataset({ ...common, split: 'train' });
  const val = new ShapesDataset({ ...common, split: 'val' });
  const tr = [...train.iterate(0, o.trainImages)];
  const ev = [...val.iterate(0, o.evalImages)];
  return {
    imageSize: o.imageSize,
    train: { images: tr.map((s) => s.image), captions: tr.map((s) => s.caption) },
    evalCaptions: ev.map((s) => s.caption),
    evalImages: ev.map((s) => s.image),
    evalScenes: ev.map((s) => s.scene),
    evalReferences: ev.map((s) => s.captions.map((c) => c.text)),
    config: train.config,
  };
}

export interface ArmEvaluation {
  arm: string;
  description: string;
  tokensPerImage: number;
  generationScore: number;
  genShape: number;
  genColour: number;
  genCount: number;
  genSize: number;
  genPosition: number;
  frechet: number;
  captionAccuracy: number;
  captionParsed: number;
  captionTokenF1: number;
  reconPsnr: number;
  reconAnalyzerAgreement: number;
  backboneStepsPerImage: number;
  headEvalsPerImage: number;
  generateMsPerImage: number;
  trainSeconds: number;
  tokenizerParams: number;
  backboneParams: number;
  headParams: number;
  figures: Figure[];
}

/** Peak signal-to-noise ratio of images in [0, 1], over the whole set. */
export function psnr(a: Float32Array[], b: Float32Array[]): number {
  let se = 0;
  let n = 0;
  for (const [i, x] of a.entries()) {
    const y = b[i]!;
    if (y.length !== x.length) throw new Error(`psnr: image ${i} has ${y.length} values, expected ${x.length}`);
    for (let j = 0; j < x.length; j++) se += (x[j]! - y[j]!) ** 2;
    n += x.length;
  }
  return -10 * Math.log10(se / n);
}

/** One line for a sample grid: what the analyzer saw, and which attributes failed. */
function verdict(p: ReturnType<typeof generationScore>['pairs'][number]): string {
  const seen = p.detected.map((o) => `${o.colour} ${o.shape}`).join(', ') || 'nothing';
  if (p.match.overall) return `ok: ${seen}`;
  const bad = Object.entries(p.match)
    .filter(([k, v]) => k !== 'overall' && v === false)
    .map(([k]) => k);
  return `saw ${seen} (${bad.join(', ')} wrong)`;
}

function sameObjects(a: ReturnType<ShapeAnalyzer['analyze']>, b: ReturnType<ShapeAnalyzer['analyze']>): boolean {
  const key = (o: (typeof a.objects)[number]) => `${o.shape}/${o.colour}/${o.cell}`;
  const ka = a.objects.map(key).sort().join(',');
  return ka === b.objects.map(key).sort().join(',');
}

export async function evaluateArm(
  name: string,
  factory: ImageTokenArmFactory,
  data: EvalSet,
  ctx: ExperimentContext,
  dir: string,
  budget: Pick<ImageTokenArmOptions, 'backbone' | 'tokenizerSteps' | 'backboneSteps' | 'batchSize' | 'captionFraction'>,
): Promise<ArmEvaluation> {
  const t0 = performance.now();
  const arm = await factory({
    data,
    ...budget,
    seed: ctx.seed,
    dir,
    progress: (n, total) => ctx.progress(`${name} ${n}`, total),
    log: ctx.log,
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  try {
    const analyzer = new ShapeAnalyzer(data.config);
    const recon = await arm.reconstruct(data.evalImages);
    const reconPsnr = psnr(data.evalImages, recon);
    const agree = recon.filter((r, i) => sameObjects(analyzer.analyze(r), analyzer.analyze(data.evalImages[i]!))).length / recon.length;

    const t1 = performance.now();
    const gen = await arm.generate(data.evalCaptions, { seed: ctx.seed });
    const generateMsPerImage = (performance.now() - t1) / data.evalCaptions.length;
    const score = generationScore(
      data.evalCaptions.map((caption, i) => ({ caption, image: gen.images[i]! })),
      analyzer,
    );
    const frechet = frechetDistance(data.evalImages, gen.images, { imageSize: data.imageSize, seed: 0 });

    const caps = await arm.caption(data.evalImages, { seed: ctx.seed });
    const capScore = captionScore(caps.map((caption, i) => ({ caption, scene: data.evalScenes[i]! })));
    const captionTokenF1 = caps.reduce((s, c, i) => s + tokenF1(c, data.evalReferences[i]!), 0) / caps.length;

    const S = data.imageSize;
    const k = Math.min(16, data.evalCaptions.length);
    const samples = `subruns/${name.replace(/[^\w.-]+/g, '_')}/samples.png`;
    writeAtomic(
      join(dir, 'samples.png'),
      await labelledGridPng(
        gen.images.slice(0, k).map((image, i) => ({
          image,
          size: S,
          lines: [data.evalCaptions[i]!, verdict(score.pairs[i]!)],
          ok: score.pairs[i]!.match.overall,
        })),
        { cols: 4, title: `${name}: generated from val captions (seed ${ctx.seed})` },
      ),
    );
    const reconPath = `subruns/${name.replace(/[^\w.-]+/g, '_')}/reconstructions.png`;
    writeAtomic(
      join(dir, 'reconstructions.png'),
      await labelledGridPng(
        data.evalImages.slice(0, 8).flatMap((image, i) => [
          { image, size: S, lines: ['original'] },
          { image: recon[i]!, size: S, lines: [`${name} reconstruction`] },
        ]),
        { cols: 4, title: `${name}: tokenizer round trip on val images` },
      ),
    );
    return {
      arm: name,
      description: arm.description,
      tokensPerImage: arm.tokensPerImage,
      generationScore: score.overall,
      genShape: score.attributes.objects.accuracy,
      genColour: score.attributes.colour.accuracy,
      genCount: score.attributes.count.accuracy,
      genSize: score.attributes.size.accuracy,
      genPosition: score.attributes.position.accuracy,
      frechet,
      captionAccuracy: capScore.overall,
      captionParsed: capScore.parsed,
      captionTokenF1,
      reconPsnr,
      reconAnalyzerAgreement: agree,
      backboneStepsPerImage: gen.backboneStepsPerImage,
      headEvalsPerImage: gen.headEvalsPerImage,
      generateMsPerImage,
      trainSeconds,
      tokenizerParams: arm.parameterCounts.tokenizer,
      backboneParams: arm.parameterCounts.backbone,
      headParams: arm.parameterCounts.head,
      figures: [
        { title: `${name}: samples`, path: samples, caption: 'Generated images with their prompts and the ShapeAnalyzer verdict.' },
        { title: `${name}: reconstructions`, path: reconPath, caption: 'Originals and tokenizer round trips.' },
      ],
    };
  } finally {
    arm.dispose();
  }
}
