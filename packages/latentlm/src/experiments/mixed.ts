/**
 * LatentLM Table 3 at toy scale: ONE model trained on text (the shapes grammar corpus of
 * @mmlm/data), text-to-image (caption -> <BOD> image latents <EOD>) and image understanding
 * (<BOD> image latents <EOD> -> caption, and question -> answer), mixed text : T2I : understanding =
 * 2 : 1 : 1 as the paper's MLLM data (text : pairs : interleaved). The same backbone routes span
 * positions to the diffusion head and the rest to the softmax head; L = L_LM + 5 L_Diff.
 * Measured: text perplexity on held-out grammar lines (beside a text-only model with the same
 * recipe), T2I generation score and Frechet distance, caption exact match and caption score, and QA
 * exact match. Images, captions, QA and every evaluator come from @mmlm/data (one-object Shapes
 * scenes of the image presets; evaluation on the test split, Frechet reference from the val split).
 */
import { join } from 'node:path';
import { type Experiment, type ExperimentContext, Rng, tf } from '@mmlm/core';
import {
  CELL_NAMES,
  COLOUR_NAMES,
  captionScore,
  frechetDistance,
  generationScore,
  grammarSentences,
  NUMBER_WORDS,
  PLACE_PHRASES,
  qaScore,
  SHAPE_NAMES,
  type ShapesSample,
  SIZE_NAMES,
  tensorToImages,
  WordTokenizer,
  writeImageGrid,
} from '@mmlm/data';
import { type LatentLMConfig, PRESETS } from '../config.js';
import { LatentLM } from '../model.js';
import { generate } from '../sample.js';
import { NoiseSchedule } from '../schedule.js';
import { buildMixedBatch, IGNORE_INDEX, latentLMLoss, type MixedSequence } from '../train.js';
import { fmt, mean, posteriorMeans, sizedConfig, standardiseFrom, trainingKey, trainLatentLM, trainOrLoad } from './common.js';
import { IMAGE_PRESETS, type ImagePreset, imageBatch, samples, shapesData, tokenizerStage } from './images.js';

interface MixedPreset {
  image: ImagePreset;
  lm: LatentLMConfig;
  textLines: number;
  maxTextTokens: number;
  evalText: number;
  evalImages: number;
  /** Train a text-only model with the same recipe for the perplexity reference. */
  textOnlyBaseline: boolean;
}

export const MIXED_PRESETS: Record<string, MixedPreset> = {
  tiny: {
    image: IMAGE_PRESETS.tiny!,
    lm: sizedConfig(PRESETS.tiny, { dim: 32, numLayers: 1, numHeads: 2, steps: 3, batchSize: 4, lr: 1e-3, headSteps: 2, cfgScale: 2 }),
    textLines: 50,
    maxTextTokens: 24,
    evalText: 4,
    evalImages: 4,
    textOnlyBaseline: true,
  },
  small: {
    image: IMAGE_PRESETS.small!,
    lm: sizedConfig(PRESETS.small, {
      dim: 96,
      numLayers: 3,
      numHeads: 4,
      steps: 3000,
      batchSize: 32,
      lr: 1e-3,
      headSteps: 10,
      cfgScale: 2,
    }),
    textLines: 20000,
    maxTextTokens: 32,
    evalText: 500,
    evalImages: 120,
    textOnlyBaseline: true,
  },
};

const SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>', '<NULL>', '<BOD>', '<EOD>', '<LAT>'];

interface MixedResult {
  textPpl: number;
  textOnlyPpl: number | null;
  t2iScore: number;
  t2iFd: number;
  captionExact: number;
  captionScore: number;
  qaExact: number;
  loss: { loss: number; lm: number; diff: number };
  vocabSize: number;
}

async function runMixed(ctx: ExperimentContext, p: MixedPreset, dir: string): Promise<MixedResult> {
  // data: text lines, images with captions and QA
  const lines = grammarSentences({ grammar: 'shapes', seed: ctx.seed, sentences: p.textLines });
  const evalLines = grammarSentences({ grammar: 'shapes', seed: ctx.seed + 1, sentences: p.evalText });
  const { vae, items, data } = await tokenizerStage(ctx, p.image, 'sigma', dir);
  const S = data.config.imageSize;
  const vocabWords = [
    ...SHAPE_NAMES,
    ...COLOUR_NAMES,
    ...SIZE_NAMES,
    ...CELL_NAMES[data.config.gridSize],
    ...Object.values(PLACE_PHRASES),
    ...NUMBER_WORDS,
    'yes',
    'no',
    'q',
    ':',
  ].join(' ');
  const itemTexts = items.flatMap((it) => [...it.captions.map((c) => c.text), ...it.qa.flatMap((qa) => [qa.question, qa.answer])]);
  const tok = WordTokenizer.fromText([...lines, vocabWords, ...itemTexts], { specialTokens: SPECIALS });
  const id = (t: string) => tok.specialId(t);
  const [PAD, BOS, EOS, NULL, BOD, EOD, LAT] = ['<pad>', '<bos>', '<eos>', '<NULL>', '<BOD>', '<EOD>', '<LAT>'].map(id) as number[];
  const C = vae.latentDim;
  const N = vae.numTokens;
  const cfg = structuredClone(p.lm);
  cfg.model = {
    ...cfg.model,
    vocabSize: tok.vocabSize,
    latentDim: C,
    maxSeqLen: Math.max(p.maxTextTokens, N + 24),
    bodId: BOD!,
    eodId: EOD!,
    latId: LAT!,
    padId: PAD!,
  };
  // image latents: posterior means once, sampled z per step (sigma-VAE rule)
  const mus: Float32Array[] = [];
  for (let i = 0; i < items.length; i += 256) {
    const x = imageBatch(items.slice(i, i + 256), S);
    const { mu } = posteriorMeans(vae, x);
    x.dispose();
    for (let k = 0; k < mu.length / (N * C); k++) mus.push(mu.slice(k * N * C, (k + 1) * N * C));
  }
  const sampleZ = (mu: Float32Array, rng: Rng) => {
    const sigma = (rng.normal() * vae.config.cSigma) / 0.8;
    return Float32Array.from(mu, (m) => m + sigma * rng.normal());
  };
  const words = (s: string) => tok.encode(s);
  const textSeq = (line: string): MixedSequence => ({ tokens: [BOS!, ...words(line).slice(0, p.maxTextTokens - 2), EOS!] });
  const build = (model: LatentLM, rng: Rng, kind: number): MixedSequence => {
    const { shift, scale } = model.latentStats();
    if (kind < 2) return textSeq(lines[rng.int(0, lines.length)]!);
    const i = rng.int(0, items.length);
    const it = items[i]!;
    const z = sampleZ(mus[i]!, rng).map((v) => (v + shift) * scale);
    const img = [BOD!, ...Array(N).fill(LAT), EOD!];
    if (kind === 2) {
      const prompt = rng.uniform() < cfg.diffusion.condDropout ? [NULL!] : words(it.caption);
      const tokens = [BOS!, ...prompt, ...img, EOS!];
      return { tokens, latents: z };
    }
    // understanding: the caption or one of the scene's questions (equal odds); loss on the answer only
    const qa = it.qa[rng.int(0, it.qa.length)];
    const [q, a] = rng.uniform() < 0.5 || !qa ? [[] as number[], words(it.caption)] : [words(`q : ${qa.question}`), words(qa.answer)];
    const tokens = [BOS!, ...img, ...q, ...a, EOS!];
    const start = 1 + img.length + q.length;
    return { tokens, latents: z, lossMask: tokens.map((_, j) => (j >= start ? 1 : 0)) };
  };
  const train = async (name: string, textOnly: boolean) => {
    const model = new LatentLM({ ...cfg.model, seed: ctx.seed });
    const r0 = new Rng(ctx.seed + 5);
    standardiseFrom(
      model,
      Float32Array.from(Array.from({ length: Math.min(32, mus.length) }, (_, i) => Array.from(sampleZ(mus[i]!, r0))).flat()),
    );
    const fit = await trainOrLoad(model, dir, name, { ...(trainingKey(cfg) as object), textOnly, textLines: p.textLines }, () =>
      trainLatentLM(model, cfg, {
        seed: ctx.seed + 1,
        name,
        ctx,
        batch: (rng) => Array.from({ length: cfg.train.batchSize }, () => build(model, rng, textOnly ? 0 : rng.int(0, 4))),
      }),
    );
    return { model, fit };
  };
  const schedule = new NoiseSchedule({ numTrainTimesteps: cfg.diffusion.numTrainTimesteps });
  const perplexity = (model: LatentLM) => {
    let nll = 0;
    let count = 0;
    for (let i = 0; i < evalLines.length; i += 64) {
      const b = buildMixedBatch(evalLines.slice(i, i + 64).map(textSeq), model.config);
      const n = b.ceTargets.filter((t) => t !== IGNORE_INDEX).length;
      const parts = latentLMLoss(model, b, { schedule, diffusion: cfg.diffusion, rng: new Rng(0) });
      nll += (parts.lm.dataSync()[0] as number) * n;
      count += n;
      tf.dispose([parts.loss, parts.lm, parts.diff]);
    }
    return Math.exp(nll / count);
  };
  const { model, fit } = await train('mixed-lm', false);
  const textPpl = perplexity(model);
  let textOnlyPpl: number | null = null;
  if (p.textOnlyBaseline) {
    const t = await train('text-only-lm', true);
    textOnlyPpl = perplexity(t.model);
    t.model.dispose();
  }
  // text-to-image on captions of the test split
  const held: ShapesSample[] = samples(shapesData(p.image, ctx.seed, 'test'), p.evalImages);
  const gen = generate(model, {
    prompts: held.map((it) => ({ tokens: [BOS!, ...words(it.caption), BOD!] })),
    uncondPrompts: held.map(() => ({ tokens: [BOS!, NULL!, BOD!] })),
    schedule,
    headSteps: cfg.diffusion.headSteps,
    cfgScale: cfg.diffusion.cfgScale,
    lambdaMinClipped: cfg.diffusion.lambdaMinClipped,
    spanLength: N,
    maxNewTokens: N + 1,
    stopAfterSpan: true,
    seed: ctx.seed + 9,
  });
  const z = Float32Array.from(gen.spans.flatMap((s) => Array.from(s[0]!)));
  const imgs = tf.tidy(() => tensorToImages(vae.decode(model.denormalizeLatents(tf.tensor3d(z, [held.length, N, C])))));
  writeImageGrid(join(dir, 't2i.png'), imgs.slice(0, 48), { size: S, cols: 12, scale: 2 });
  const ref = samples(shapesData(p.image, ctx.seed, 'val'), p.image.refImages).map((s) => s.image);
  const t2iScore = generationScore(
    held.map((it, i) => ({ caption: it.caption, image: imgs[i]! })),
    data.config,
  ).overall;
  const t2iFd = frechetDistance(ref, imgs, { imageSize: S });
  // captioning and QA from real images (posterior means, standardised)
  const x = imageBatch(held, S);
  const { mu } = posteriorMeans(vae, x);
  x.dispose();
  const { shift, scale } = model.latentStats();
  const imgLat = (i: number) => Float32Array.from(mu.subarray(i * N * C, (i + 1) * N * C), (v) => (v + shift) * scale);
  const answer = (prompts: MixedSequence[]) =>
    generate(model, { prompts, schedule, headSteps: 1, maxNewTokens: 12, stopIds: [EOS!], allowedIds: textIds, seed: 0 }).outputs.map((o) =>
      tok
        .decodeWords(
          Array.from(o.tokens).filter((t) => t !== EOS),
          { skipSpecial: true },
        )
        .join(' '),
    );
  const img = [BOD!, ...Array(N).fill(LAT), EOD!];
  const textIds = [EOS!, ...Array.from({ length: tok.vocabSize - SPECIALS.length }, (_, k) => SPECIALS.length + k)];
  const captions = answer(held.map((_, i) => ({ tokens: [BOS!, ...img], latents: imgLat(i) })));
  // a caption is exact when it equals any of the scene's true captions (after the word tokenizer)
  const truths = held.map((it) => it.captions.map((c) => tok.decodeWords(words(c.text)).join(' ')));
  const captionExact = mean(captions.map((c, i) => (truths[i]!.includes(c) ? 1 : 0)));
  const captionAcc = captionScore(held.map((it, i) => ({ caption: captions[i]!, scene: it.scene }))).overall;
  const qas = held.flatMap((it, i) => it.qa.map((qa) => ({ i, qa })));
  const answers = answer(qas.map(({ i, qa }) => ({ tokens: [BOS!, ...img, ...words(`q : ${qa.question}`)], latents: imgLat(i) })));
  const qaExact = qaScore(
    answers,
    qas.map((q) => q.qa),
  ).exactMatch;
  ctx.log(
    `captions: ${captions
      .slice(0, 4)
      .map((c, i) => `"${c}" (e.g. "${truths[i]![0]}")`)
      .join('; ')}`,
  );
  const out: MixedResult = {
    textPpl,
    textOnlyPpl,
    t2iScore,
    t2iFd,
    captionExact,
    captionScore: captionAcc,
    qaExact,
    loss: fit,
    vocabSize: tok.vocabSize,
  };
  model.dispose();
  vae.dispose();
  return out;
}

export const mixedExperiment: Experiment = {
  id: 'latentlm.mixed',
  paper: 'LatentLM',
  claim:
    'One causal Transformer trained on text, text-to-image and image-to-text with next-token diffusion for the image spans handles language modelling, generation and understanding together (paper Table 3: PPL 2.73, FID 14.54, CIDEr 54.5, VQAv2 38.72).',
  presets: {
    tiny: { description: 'a few steps on 50 text lines and 16 images (a smoke run)', expectedMinutes: 0.3 },
    small: {
      description:
        'sigma-VAE on 4000 Shapes images + a width-96 3-layer LatentLM on text : T2I : understanding = 2:1:1 for 3000 steps, plus a text-only model',
      expectedMinutes: 20,
    },
  },
  async run(ctx) {
    const p = MIXED_PRESETS[ctx.preset];
    if (!p) throw new Error(`${this.id}: unknown preset "${ctx.preset}"`);
    const r = (await ctx.subrun('mixed', (dir) => runMixed(ctx, p, dir))) as MixedResult;
    return {
      metrics: { ...r, loss: r.loss.loss, lmLoss: r.loss.lm, diffLoss: r.loss.diff },
      figures: [{ title: 'Text-to-image from held-out captions', path: 'subruns/mixed/t2i.png' }],
      tables: [
        {
          title: 'One model for text, text-to-image and understanding (ours, Shapes)',
          columns: [
            'text PPL (mixed)',
            'text PPL (text-only)',
            'T2I generation score',
            'T2I Frechet distance',
            'caption exact match',
            'caption score',
            'QA exact match',
          ],
          rows: [
            [
              fmt(r.textPpl),
              fmt(r.textOnlyPpl),
              fmt(r.t2iScore),
              fmt(r.t2iFd, 4),
              fmt(r.captionExact),
              fmt(r.captionScore),
              fmt(r.qaExact),
            ],
          ],
          note: "Text PPL per word token on held-out shapes-grammar lines. T2I on test-split captions: @mmlm/data generationScore (the analysed image matches every attribute the caption names) and Frechet distance (conv features, val split as reference). Caption exact match: equals one of the scene's true captions; caption score: @mmlm/data captionScore (the generated caption is true of the scene). QA: @mmlm/data qaScore exact match. Understanding from real images through the same tokenizer.",
        },
        {
          title: 'Paper, Table 3 (1.3B MLLMs, same data and recipe)',
          columns: ['model', 'text PPL', 'COCO T2I FID', 'CLIP score', 'COCO caption CIDEr', 'VQAv2'],
          rows: [
            ['LatentLM', 2.73, 14.54, 28.75, 54.5, 38.72],
            ['Transfusion', 2.74, 16.1, 28.66, 43.4, 35.36],
            ['VQ-MLLM', 2.79, 16.92, 29.33, 37.4, 30.19],
          ],
        },
      ],
      summary: `One model: text PPL ${fmt(r.textPpl)}${r.textOnlyPpl !== null ? ` (text-only ${fmt(r.textOnlyPpl)})` : ''}, T2I generation score ${fmt(r.t2iScore)} (FD ${fmt(r.t2iFd, 4)}), caption exact match ${fmt(r.captionExact)} (caption score ${fmt(r.captionScore)}), QA exact match ${fmt(r.qaExact)}. The paper's claim is comparative (LatentLM vs Transfusion and VQ-MLLM); we did not build those baselines, so this run only shows that one next-token-diffusion model learns all three tasks at toy scale.`,
    };
  },
};
