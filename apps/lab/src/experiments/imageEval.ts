/**
 * Shared measuring for image-token arms: the same Shapes data for every arm, and every metric computed
 * here with @mmlm/data's instruments (ShapeAnalyzer, generation score, Fréchet distance, caption
 * scoring), never by the arm itself.
 *
 * Generation and captioning are measured on two sets apart (@mmlm/data `seenHeldOutSets`): **seen**
 * (new renders of scene keys present among the training images: did the arm learn what it was
 * shown?) and **held-out** (keys no training image has: does it compose?), with the memoriser
 * ceiling (the score of the best-matching training image or caption) beside every held-out figure.
 */
import { join } from 'node:path';
import type { ExperimentContext, Figure, ImageTokenArmFactory, ImageTokenArmOptions } from '@mmlm/core/experiment';
import {
  analyzerAgreement,
  binomialSE,
  captionScore,
  frechetDistance,
  generationScore,
  type ImageTextEvalSet,
  judgeCaption,
  loadImageTextData,
  type PromptSet,
  ShapeAnalyzer,
  tokenF1,
} from '@mmlm/data';
import { labelledGridPng } from '../grid.js';
import { writeAtomic } from '../util.js';

/** The comparison's data and prompt sets (shared with the browser page through @mmlm/data). */
export type EvalSet = ImageTextEvalSet;
export { loadImageTextData, type PromptSet };

/** Per-set generation and captioning figures. */
export interface SetScores {
  generationScore: number;
  genShape: number;
  genColour: number;
  genCount: number;
  genSize: number;
  genPosition: number;
  captionAccuracy: number;
  captionParsed: number;
  captionTokenF1: number;
}

export interface ArmEvaluation {
  arm: string;
  description: string;
  tokensPerImage: number;
  /** The CFG scale generation ran at (the arm's default when the budget names none). */
  cfgScale: number | null;
  generationScoreSeen: number;
  generationScoreHeldOut: number;
  generationCeilingHeldOut: number;
  genShapeSeen: number;
  genColourSeen: number;
  genCountSeen: number;
  genSizeSeen: number;
  genPositionSeen: number;
  genShapeHeldOut: number;
  genColourHeldOut: number;
  genSizeHeldOut: number;
  genPositionHeldOut: number;
  /** Generated images of the seen prompts against the real seen images. */
  frechetSeen: number;
  captionAccuracySeen: number;
  captionAccuracyHeldOut: number;
  captionCeilingHeldOut: number;
  captionParsedSeen: number;
  captionTokenF1Seen: number;
  /**
   * Seen-set captions per attribute (@mmlm/data's matcher: colour, size and position count as right only on
   * an object of the named shape, so a wrong shape fails all four).
   */
  capShapeSeen: number;
  capColourSeen: number;
  capSizeSeen: number;
  capPositionSeen: number;
  /** Over the seen and held-out images together. */
  reconPsnr: number;
  reconAnalyzerAgreement: number;
  /** The agreement on the seen images alone and on the held-out images alone (attribute combinations never trained). */
  reconAgreementSeen: number;
  reconAgreementHeldOut: number;
  /** Prompts per set (binomial standard error of a score p is sqrt(p (1 - p) / n)). */
  promptsPerSet: number;
  backboneStepsPerImage: number;
  headEvalsPerImage: number;
  generateMsPerImage: number;
  trainSeconds: number;
  tokenizerParams: number;
  backboneParams: number;
  headParams: number;
  figures: Figure[];
}

/** The agreement below which a tokenizer does not read back well enough to judge its downstream arm. */
export const AGREEMENT_FLOOR = 0.95;

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

export type ArmBudget = Pick<
  ImageTokenArmOptions,
  'backbone' | 'tokenizerSteps' | 'backboneSteps' | 'batchSize' | 'backboneBatchSize' | 'captionFraction' | 'recipe'
> & { cfgScale?: number; temperature?: number };

export async function evaluateArm(
  name: string,
  factory: ImageTokenArmFactory,
  data: EvalSet,
  ctx: Pick<ExperimentContext, 'seed' | 'progress' | 'log'> & Partial<Pick<ExperimentContext, 'metric'>>,
  dir: string,
  budget: ArmBudget,
): Promise<ArmEvaluation> {
  const t0 = performance.now();
  const { cfgScale, temperature, ...armBudget } = budget;
  const arm = await factory({
    data,
    ...armBudget,
    seed: ctx.seed,
    dir,
    // each training phase's losses go to metrics.jsonl as sub-run `<arm>/<phase>` (one loss curve each)
    progress: (n, total) => {
      const bar = ctx.progress(`${name} ${n}`, total);
      return {
        tick(step, info) {
          bar.tick(step, info);
          if (ctx.metric && info && (step % 25 === 0 || step === total)) ctx.metric({ subrun: `${name}/${n}`, step, ...info });
        },
        done: () => bar.done(),
      };
    },
    log: ctx.log,
  });
  // The arm's own training seconds over every call that built it (resumed or reused phases included)
  // when it reports them; an arm without the field is timed here (one call: all it did). Unknown
  // (a phase from an older version that did not record them) is NaN, never this call's part alone.
  const trainSeconds =
    arm.trainSeconds === undefined ? (performance.now() - t0) / 1000 : arm.trainSeconds === null ? Number.NaN : arm.trainSeconds;
  if (arm.trainSeconds === null)
    ctx.log(`${name}: a training phase was made by an older version that did not record its seconds; training time reported as NaN`);
  try {
    const analyzer = new ShapeAnalyzer(data.config);
    const originals = [...data.seen.images, ...data.heldOut.images];
    const recon = await arm.reconstruct(originals);
    const reconPsnr = psnr(originals, recon);
    const agree = analyzerAgreement(originals, recon, analyzer);
    const nSeen = data.seen.images.length;
    const agreeSeen = analyzerAgreement(originals.slice(0, nSeen), recon.slice(0, nSeen), analyzer);
    const agreeHeldOut = analyzerAgreement(originals.slice(nSeen), recon.slice(nSeen), analyzer);
    if (agree < AGREEMENT_FLOOR)
      ctx.log(
        `WARNING ${name}: tokenizer reconstruction agreement ${agree.toFixed(3)} < ${AGREEMENT_FLOOR}: its downstream figures cannot judge the method`,
      );

    const t1 = performance.now();
    const genOpts = {
      seed: ctx.seed,
      ...(cfgScale === undefined ? {} : { cfgScale }),
      ...(temperature === undefined ? {} : { temperature }),
    };
    const genSeen = await arm.generate(data.seen.captions, genOpts);
    const genHeld = await arm.generate(data.heldOut.captions, { ...genOpts, seed: ctx.seed + 1 });
    const generateMsPerImage = (performance.now() - t1) / (data.seen.captions.length + data.heldOut.captions.length);
    const score = (set: PromptSet, images: Float32Array[]) =>
      generationScore(
        set.captions.map((caption, i) => ({ caption, image: images[i]! })),
        analyzer,
      );
    const sSeen = score(data.seen, genSeen.images);
    const sHeld = score(data.heldOut, genHeld.images);
    const frechetSeen = frechetDistance(data.seen.images, genSeen.images, { imageSize: data.imageSize, seed: 0 });

    const captionSet = async (set: PromptSet) => {
      const caps = await arm.caption(set.images, { seed: ctx.seed });
      const s = captionScore(caps.map((caption, i) => ({ caption, scene: set.scenes[i]! })));
      return { s, f1: caps.reduce((a, c, i) => a + tokenF1(c, set.references[i]!), 0) / caps.length, caps };
    };
    const cSeen = await captionSet(data.seen);
    const cHeld = await captionSet(data.heldOut);
    // every caption beside its reference and the attributes it got wrong (the caption grid in words)
    const captionLines = (set: PromptSet, caps: string[]) =>
      caps.map((c, i) => {
        const j = judgeCaption(c, set.scenes[i]!);
        const bad = Object.entries(j.match)
          .filter(([k, v]) => k !== 'overall' && v === false)
          .map(([k]) => k);
        const verdict = !j.parsed
          ? 'not in the grammar'
          : j.match.overall
            ? 'ok'
            : j.match.objects === false
              ? 'wrong: objects (no object of the named shape and count: nothing else can match)'
              : `wrong: ${bad.join(' ') || 'no one-to-one match'}`;
        // one line per caption: tabs and newlines inside a field would break the TSV
        const field = (x: string) => x.replace(/[\t\n\r]+/g, ' ');
        return [set.references[i]!.join(' | '), c, verdict].map(field).join('\t');
      });
    writeAtomic(
      join(dir, 'captions.tsv'),
      `${['set\treference\tcaption\tverdict', ...captionLines(data.seen, cSeen.caps).map((l) => `seen\t${l}`), ...captionLines(data.heldOut, cHeld.caps).map((l) => `held-out\t${l}`)].join('\n')}\n`,
    );

    const S = data.imageSize;
    const k = Math.min(16, data.seen.captions.length);
    const sub = `subruns/${name.replace(/[^\w.-]+/g, '_')}`;
    const grid = async (file: string, set: PromptSet, images: Float32Array[], sc: typeof sSeen, what: string) => {
      writeAtomic(
        join(dir, file),
        await labelledGridPng(
          images.slice(0, k).map((image, i) => ({
            image,
            size: S,
            lines: [set.captions[i]!, verdict(sc.pairs[i]!)],
            ok: sc.pairs[i]!.match.overall,
          })),
          { cols: 4, title: `${name}: generated from ${what} prompts (seed ${ctx.seed})` },
        ),
      );
    };
    await grid('samples-seen.png', data.seen, genSeen.images, sSeen, 'seen');
    await grid('samples-heldout.png', data.heldOut, genHeld.images, sHeld, 'held-out');
    writeAtomic(
      join(dir, 'reconstructions.png'),
      await labelledGridPng(
        originals.slice(0, 8).flatMap((image, i) => [
          { image, size: S, lines: ['original'] },
          { image: recon[i]!, size: S, lines: [`${name} reconstruction`] },
        ]),
        { cols: 4, title: `${name}: tokenizer round trip on seen images` },
      ),
    );
    const a = (s: Pick<typeof sSeen, 'attributes'>, key: keyof typeof sSeen.attributes) => s.attributes[key].accuracy;
    return {
      arm: name,
      description: arm.description,
      tokensPerImage: arm.tokensPerImage,
      cfgScale: cfgScale ?? null,
      generationScoreSeen: sSeen.overall,
      generationScoreHeldOut: sHeld.overall,
      generationCeilingHeldOut: data.ceilings.generationHeldOut,
      genShapeSeen: a(sSeen, 'objects'),
      genColourSeen: a(sSeen, 'colour'),
      genCountSeen: a(sSeen, 'count'),
      genSizeSeen: a(sSeen, 'size'),
      genPositionSeen: a(sSeen, 'position'),
      genShapeHeldOut: a(sHeld, 'objects'),
      genColourHeldOut: a(sHeld, 'colour'),
      genSizeHeldOut: a(sHeld, 'size'),
      genPositionHeldOut: a(sHeld, 'position'),
      frechetSeen,
      captionAccuracySeen: cSeen.s.overall,
      captionAccuracyHeldOut: cHeld.s.overall,
      captionCeilingHeldOut: data.ceilings.captionHeldOut,
      captionParsedSeen: cSeen.s.parsed,
      capShapeSeen: a(cSeen.s, 'objects'),
      capColourSeen: a(cSeen.s, 'colour'),
      capSizeSeen: a(cSeen.s, 'size'),
      capPositionSeen: a(cSeen.s, 'position'),
      captionTokenF1Seen: cSeen.f1,
      reconPsnr,
      reconAnalyzerAgreement: agree,
      reconAgreementSeen: agreeSeen,
      reconAgreementHeldOut: agreeHeldOut,
      promptsPerSet: data.seen.captions.length,
      backboneStepsPerImage: genSeen.backboneStepsPerImage,
      headEvalsPerImage: genSeen.headEvalsPerImage,
      generateMsPerImage,
      trainSeconds,
      tokenizerParams: arm.parameterCounts.tokenizer,
      backboneParams: arm.parameterCounts.backbone,
      headParams: arm.parameterCounts.head,
      figures: [
        {
          title: `${name}: samples (seen prompts)`,
          path: `${sub}/samples-seen.png`,
          caption: 'Generated from seen prompts, with the ShapeAnalyzer verdict.',
        },
        {
          title: `${name}: samples (held-out prompts)`,
          path: `${sub}/samples-heldout.png`,
          caption: 'Generated from held-out prompts (attribute combinations never trained), with the ShapeAnalyzer verdict.',
        },
        { title: `${name}: reconstructions`, path: `${sub}/reconstructions.png`, caption: 'Originals and tokenizer round trips.' },
      ],
    };
  } finally {
    arm.dispose();
  }
}

export { binomialSE };
