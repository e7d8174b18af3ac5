/**
 * SEED-LLaMA's tuning choice (brief 1.4; issue 15, reproduction 4): LoRA (r, alpha, dropout on every
 * Linear of the blocks, with the token embedding, the head and the norms fully trained, the
 * reference's `modules_to_save`) against full fine-tuning of the same LM on SEED codes, at the same
 * data, steps and learning rate. Reported: caption accuracy and generation score on seen and held-out
 * attribute combinations, the trained parameter count, wall time.
 *
 *   1. the SEED tokenizer (`trainTokenizer`: ViT, stage I, stage II) and the pixel decoder
 *      (`trainPixelDecoder`) on the training images, as `seed.retrieval`;
 *   2. one word vocabulary over the Shapes grammar corpus, the captions and the SFT markers
 *      ("user :", "assistant :"); a SeedLM pre-trained on the grammar text (shared by both arms);
 *   3. per arm: the vocabulary extended by the K codes + `<img>` / `</img>`, multimodal pre-training
 *      (pairs in either order, loss on every non-pad token) and SFT (loss on the assistant's
 *      tokens), each phase a new LoRA merged at its end (`lora`) or every parameter (`full`);
 *   4. evaluation with the SFT template: greedy captions of the seen / held-out images' codes, judged
 *      by the attributes they name (shape, colour, size: the Shapes `sizes` caption names all
 *      three); images generated from the captions (CFG, temperature) through the de-tokenizer and
 *      the pixel decoder, read by the ShapeAnalyzer (`generationScore`).
 * The memoriser ceiling beside each figure: the fraction of evaluation captions whose (shape,
 * colour, size) some training caption has (a memoriser of training pairs can be right only there).
 */
import { join } from 'node:path';
import { Rng, tf } from '@mmlm/core';
import {
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  formatFixed,
  formatMeanStd,
  meanStd,
  parsePresets,
  seedsHeader,
  seedValues,
  seedVerdict,
  type Table,
} from '@mmlm/core/experiment';
import { generationScore, grammarSentences, parseCaption, ShapeAnalyzer, WordTokenizer, writeImageGrid } from '@mmlm/data';
import { z } from 'zod';
import { imageDecoderPreset } from '../decoder.js';
import {
  type CaptionedCodes,
  generateCaptions,
  generateImages,
  LMPhaseSchema,
  SeedLM,
  SeedLMConfigSchema,
  trainPhase,
  trainSeedLM,
} from '../llm.js';
import type { SeedTokenizer } from '../tokenizer.js';
import { type ChatTemplate, padSequences, seedVocab, textSequence } from '../vocab.js';
import {
  imageBatch,
  RecipeSchema,
  type SeedData,
  type SeedItem,
  SizesSchema,
  seedData,
  seedTokenizerConfig,
  trainTokenizer,
} from './common.js';
import { PixelRecipeSchema, trainPixelDecoder } from './pixels.js';

const SettingsSchema = z.strictObject({
  sizes: SizesSchema,
  /** Grammar sentences of the text pre-training corpus. */
  textSentences: z.number().int().positive(),
  tokenizer: RecipeSchema,
  pixels: PixelRecipeSchema,
  /** The LM (textVocabSize is set from the data). */
  lm: SeedLMConfigSchema.omit({ textVocabSize: true, seed: true }),
  text: LMPhaseSchema,
  pretrain: LMPhaseSchema,
  sft: LMPhaseSchema,
  lora: z.strictObject({ r: z.number().int().positive(), alpha: z.number().positive(), dropout: z.number().min(0).lt(1) }),
  sampling: z.strictObject({ cfgScale: z.number().positive(), temperature: z.number().nonnegative(), topP: z.number().positive().max(1) }),
});
export type LoraVsFullSettings = z.infer<typeof SettingsSchema>;

/** The settings of each preset (parsed at import: a misspelt field fails here). */
export const LORA_VS_FULL_SETTINGS = parsePresets(
  'seed.lora-vs-full settings',
  {
    tiny: {
      sizes: { train: 64, evalPrompts: 6 },
      textSentences: 64,
      tokenizer: {
        vit: { steps: 3, batchSize: 16, lr: 1e-3 },
        stage1: { steps: 3, batchSize: 8, lr: 1e-3 },
        stage2: { steps: 3, batchSize: 16, lr: 1e-3 },
      },
      pixels: {
        decoder: { steps: 3, batchSize: 16, lr: 1e-3 },
        finetune: { steps: 3, batchSize: 16, lr: 1e-3 },
        maxShift: 2,
      },
      lm: { dim: 32, numLayers: 2, numHeads: 2, maxSeqLen: 32 },
      text: { steps: 4, batchSize: 8 },
      pretrain: { steps: 4, batchSize: 8 },
      sft: { steps: 4, batchSize: 8 },
      lora: { r: 4, alpha: 8, dropout: 0.05 },
      sampling: { cfgScale: 1.5, temperature: 0.5, topP: 0.96 },
    },
    small: {
      sizes: { train: 2000, evalPrompts: 256 },
      textSentences: 4000,
      tokenizer: {
        vit: { steps: 1500, batchSize: 64, lr: 2e-3, warmup: 50 },
        stage1: { steps: 1500, batchSize: 48, lr: 1e-3, warmup: 100 },
        stage2: { steps: 2500, batchSize: 64, lr: 1e-3, warmup: 50 },
      },
      pixels: {
        decoder: { steps: 1500, batchSize: 64, lr: 2e-3, warmup: 20 },
        finetune: { steps: 1000, batchSize: 64, lr: 1e-3, warmup: 20 },
        maxShift: 2,
      },
      lm: { dim: 96, numLayers: 3, numHeads: 4, maxSeqLen: 40, dropout: 0.1 },
      text: { steps: 600, batchSize: 32, lr: 3e-3 },
      pretrain: { steps: 2000, batchSize: 32, lr: 3e-3 },
      sft: { steps: 1000, batchSize: 32, lr: 2e-3 },
      lora: { r: 8, alpha: 16, dropout: 0.05 },
      sampling: { cfgScale: 1.5, temperature: 0.5, topP: 0.96 },
    },
  } satisfies Record<'tiny' | 'small', z.input<typeof SettingsSchema>>,
  () => SettingsSchema,
);

/** The issue's floors at `small` for the LoRA-tuned LM (seen combinations). */
export const LORA_FLOORS = { captionSeen: 0.85, generationSeen: 0.8 } as const;

const ARMS = ['lora', 'full'] as const;
type Arm = (typeof ARMS)[number];
const SETS = [
  { set: 'Seen', label: 'seen', items: 'seen' },
  { set: 'HeldOut', label: 'held-out', items: 'heldOut' },
] as const;

/** The (shape, colour, size) a caption names, or null when it is outside the caption grammar. */
export function captionAttributes(caption: string): string | null {
  try {
    const o = parseCaption(caption).objects[0];
    return o ? `${o.shape ?? '-'}/${o.colour ?? '-'}/${o.size ?? '-'}` : null;
  } catch {
    return null;
  }
}

/** Fraction of generated captions naming the reference caption's shape, colour and size (a caption outside the grammar is wrong). */
export function captionAccuracy(generated: readonly string[], reference: readonly string[]): number {
  if (generated.length !== reference.length || generated.length === 0)
    throw new Error(
      `captionAccuracy: expected as many generated as reference captions (> 0), got ${generated.length} and ${reference.length}`,
    );
  let hit = 0;
  generated.forEach((g, i) => {
    const a = captionAttributes(g);
    if (a !== null && a === captionAttributes(reference[i] as string)) hit++;
  });
  return hit / generated.length;
}

/** Fraction of evaluation captions whose attributes some training caption names (the memoriser ceiling). */
export function memoriserCeiling(evalCaptions: readonly string[], trainCaptions: readonly string[]): number {
  const known = new Set(trainCaptions.map(captionAttributes).filter((a) => a !== null));
  return evalCaptions.filter((c) => known.has(captionAttributes(c) as string)).length / evalCaptions.length;
}

function encodeItems(tok: SeedTokenizer, items: readonly SeedItem[], S: number): Int32Array {
  const Q = tok.numQueries;
  const out = new Int32Array(items.length * Q);
  for (let i = 0; i < items.length; i += 128) {
    const x = imageBatch(items.slice(i, i + 128), S);
    try {
      out.set(tok.encodeCodes(x), i * Q);
    } finally {
      x.dispose();
    }
  }
  return out;
}

interface ArmResult {
  captionAccuracy: Record<'Seen' | 'HeldOut', number>;
  generationScore: Record<'Seen' | 'HeldOut', number>;
  trainedParameters: number;
  totalParameters: number;
  seconds: number;
  pretrainLoss: number;
  sftLoss: number;
  samples: { captions: string[]; images: Float32Array[] };
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
const tail = (xs: readonly number[]) => mean(xs.slice(-Math.max(1, Math.ceil(xs.length / 10))));

export const loraVsFullExperiment: Experiment = {
  id: 'seed.lora-vs-full',
  paper: 'SEED',
  claim:
    'SEED-LLaMA tunes the LLM on SEED codes with LoRA (r 16, alpha 32 on every linear layer, embeddings, head and norms fully trained); at the same data and steps LoRA + modules_to_save reaches caption accuracy and generation quality close to full fine-tuning while training a fraction of the parameters.',
  presets: {
    tiny: {
      description:
        '3 steps per tokenizer phase on 64 images, a 2 x 32 LM, 4 steps per LM phase and arm, 6 seen + 6 held-out prompts; checks the pipeline and the metrics, not the claim',
      expectedMinutes: 0.2,
    },
    small: {
      description:
        "seed.retrieval's small tokenizer (8 causal codes of K = 256 per image) and pixel decoder on 2000 Shapes images; a 3 x 96 LM pre-trained on 4000 grammar sentences (600 steps), then per arm 2000 multimodal pre-training + 1000 SFT steps (LoRA r 8, alpha 16 vs every parameter); 256 seen + 256 held-out prompts; one seed per run (--seeds 0,1,2 for the verdict)",
      expectedMinutes: 25,
    },
  },
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const name = ctx.preset === 'small' ? 'small' : 'tiny';
    const st = LORA_VS_FULL_SETTINGS[name];
    const seed = ctx.seed;
    const data: SeedData = seedData({ imageSize: 16, train: st.sizes.train, evalPrompts: st.sizes.evalPrompts, seed });
    const S = data.imageSize;

    // 1. the tokenizer and the pixel decoder
    const cfg = seedTokenizerConfig(name, data, seed);
    const trained = await trainTokenizer(ctx, data, cfg, st.tokenizer, seed);
    const tok = trained.model;
    const decoderCfg = { ...imageDecoderPreset(name), genDim: cfg.decoder.genDim, imageSize: cfg.vit.imageSize, seed };
    const px = await trainPixelDecoder(ctx, data, tok, decoderCfg, st.pixels, seed);
    px.groundTruthDecoder.dispose();
    const dec = px.decoder;
    const Q = tok.numQueries;
    const K = cfg.quantizer.numCodes;
    const codes = {
      train: encodeItems(tok, data.train, S),
      seen: encodeItems(tok, data.seen, S),
      heldOut: encodeItems(tok, data.heldOut, S),
    };

    // 2. the vocabulary and the text pre-trained LM (shared by both arms)
    const corpus = grammarSentences({ grammar: 'shapes', sentences: st.textSentences, seed });
    const allCaptions = [...data.train, ...data.seen, ...data.heldOut].map((d) => d.caption);
    const words = WordTokenizer.fromText([...corpus, ...allCaptions, 'user : assistant :']);
    const template: ChatTemplate = { user: words.encode('user :'), assistant: words.encode('assistant :') };
    const specials = { pad: words.specialId('<pad>'), bos: words.specialId('<bos>'), eos: words.specialId('<eos>') };
    const lmCfg = { ...st.lm, ...specials, textVocabSize: words.vocabSize, seed };
    const longest = Math.max(...allCaptions.map((c) => words.encode(c).length));
    const needed = 1 + template.user.length + longest + template.assistant.length + Q + 3;
    if (needed > lmCfg.maxSeqLen)
      throw new Error(`seed.lora-vs-full: SFT sequences need ${needed} positions, more than the LM's maxSeqLen ${lmCfg.maxSeqLen}`);
    const textVocab = seedVocab({ textVocabSize: words.vocabSize, numCodes: 1, tokensPerImage: 1, ...specials });
    const textSeqs = corpus
      .map((s) => words.encode(s))
      .filter((ids) => ids.length + 2 <= lmCfg.maxSeqLen + 1)
      .map((ids) => textSequence(textVocab, ids));
    const base = new SeedLM(lmCfg);
    const textPhase = await trainPhase(
      base,
      st.text,
      (rng) =>
        padSequences(
          textVocab,
          Array.from({ length: st.text.batchSize }, () => textSeqs[rng.int(0, textSeqs.length)]!),
        ),
      { seed, name: 'text', log: ctx.log },
    );
    const baseState = Object.fromEntries(base.namedParameters().map(([k, p]) => [k, p.clone()]));
    base.dispose();
    ctx.metric({ phase: 'text', step: textPhase.steps, loss: tail(textPhase.losses) });

    const pairs: CaptionedCodes[] = data.train.map((d, i) => ({
      caption: words.encode(d.caption),
      codes: codes.train.subarray(i * Q, (i + 1) * Q),
    }));
    const analyzer = new ShapeAnalyzer(data.config);
    const results = {} as Record<Arm, ArmResult>;
    try {
      for (const arm of ARMS) {
        const t0 = performance.now();
        const lm = new SeedLM(lmCfg);
        try {
          lm.loadStateDict(baseState);
          const r = await trainSeedLM({
            model: lm,
            text: [],
            pairs,
            numCodes: K,
            tokensPerImage: Q,
            template,
            seed,
            log: ctx.log,
            recipe: { text: { steps: 0 }, pretrain: st.pretrain, sft: st.sft, tuning: arm, lora: st.lora },
          });
          const trainSeconds = (performance.now() - t0) / 1000;
          ctx.metric({ phase: `${arm}-pretrain`, step: r.pretrain.steps, loss: tail(r.pretrain.losses) });
          ctx.metric({ phase: `${arm}-sft`, step: r.sft.steps, loss: tail(r.sft.losses) });
          const out: ArmResult = {
            captionAccuracy: { Seen: 0, HeldOut: 0 },
            generationScore: { Seen: 0, HeldOut: 0 },
            trainedParameters: Math.max(r.pretrain.trainableParameters, r.sft.trainableParameters),
            totalParameters: lm.numParameters(),
            seconds: trainSeconds,
            pretrainLoss: tail(r.pretrain.losses),
            sftLoss: tail(r.sft.losses),
            samples: { captions: [], images: [] },
          };
          for (const s of SETS) {
            const items = data[s.items];
            const c = codes[s.items];
            const caps: string[] = [];
            for (let i = 0; i < items.length; i += 64) {
              const part = c.subarray(i * Q, Math.min(items.length, i + 64) * Q);
              for (const ids of generateCaptions(lm, part, { template })) caps.push(words.decode(ids, { skipSpecial: true }));
            }
            out.captionAccuracy[s.set] = captionAccuracy(
              caps,
              items.map((d) => d.caption),
            );
            const rng = new Rng(seed).fork(`lora-vs-full-generate-${s.items}`);
            const images: Float32Array[] = [];
            for (let i = 0; i < items.length; i += 64) {
              const part = items.slice(i, i + 64);
              const g = generateImages(
                lm,
                tok,
                dec,
                part.map((d) => words.encode(d.caption)),
                { template, rng, ...st.sampling },
              );
              const clipped = tf.tidy(() => g.images.clipByValue(0, 1));
              const flat = clipped.dataSync() as Float32Array;
              tf.dispose([clipped, g.images]);
              const per = S * S * 3;
              for (let j = 0; j < part.length; j++) images.push(flat.slice(j * per, (j + 1) * per));
            }
            out.generationScore[s.set] = generationScore(
              items.map((d, i) => ({ caption: d.caption, image: images[i] as Float32Array })),
              analyzer,
            ).overall;
            if (s.set === 'Seen') out.samples = { captions: caps.slice(0, 12), images: images.slice(0, 12) };
          }
          results[arm] = out;
        } finally {
          lm.dispose();
        }
      }
    } finally {
      tf.dispose(Object.values(baseState));
      tok.dispose();
      dec.dispose();
    }

    const trainCaptions = data.train.map((d) => d.caption);
    const ceiling = {
      Seen: memoriserCeiling(
        data.seen.map((d) => d.caption),
        trainCaptions,
      ),
      HeldOut: memoriserCeiling(
        data.heldOut.map((d) => d.caption),
        trainCaptions,
      ),
    };
    const metrics: Record<string, number | null> = {
      codesPerImage: Q,
      numCodes: K,
      textVocabSize: words.vocabSize,
      trainImages: data.train.length,
      promptsPerSet: data.seen.length,
      textLoss: tail(textPhase.losses),
      textSeconds: textPhase.seconds,
      memoriserSeen: ceiling.Seen,
      memoriserHeldOut: ceiling.HeldOut,
    };
    const rows: Table['rows'] = [];
    for (const arm of ARMS) {
      const r = results[arm];
      for (const s of SETS) {
        metrics[`${arm}_captionAccuracy${s.set}`] = r.captionAccuracy[s.set];
        metrics[`${arm}_generationScore${s.set}`] = r.generationScore[s.set];
      }
      metrics[`${arm}_trainedParameters`] = r.trainedParameters;
      metrics[`${arm}_totalParameters`] = r.totalParameters;
      metrics[`${arm}_seconds`] = r.seconds;
      metrics[`${arm}_pretrainLoss`] = r.pretrainLoss;
      metrics[`${arm}_sftLoss`] = r.sftLoss;
      rows.push([
        arm === 'lora' ? `LoRA r ${st.lora.r}, alpha ${st.lora.alpha} + modules_to_save` : 'full fine-tuning',
        r.captionAccuracy.Seen,
        r.captionAccuracy.HeldOut,
        r.generationScore.Seen,
        r.generationScore.HeldOut,
        r.trainedParameters,
        r.totalParameters,
        r.seconds,
      ]);
    }
    const figures = ARMS.map((arm) => {
      const path = `generated-${arm}.png`;
      writeImageGrid(join(ctx.outDir, path), results[arm].samples.images, { size: S, cols: 6, scale: 4 });
      return {
        title: `${arm}: images generated from seen captions`,
        path,
        caption: `First ${results[arm].samples.images.length} seen prompts: ${data.seen
          .slice(0, 12)
          .map((d) => d.caption)
          .join('; ')}.`,
      };
    });
    const lora = results.lora;
    const floors =
      name === 'small'
        ? `Floors for the LoRA-tuned LM (seen): caption accuracy >= ${LORA_FLOORS.captionSeen} ${lora.captionAccuracy.Seen >= LORA_FLOORS.captionSeen ? 'met' : '**not met**'} (${formatFixed(lora.captionAccuracy.Seen)}), generation score >= ${LORA_FLOORS.generationSeen} ${lora.generationScore.Seen >= LORA_FLOORS.generationSeen ? 'met' : '**not met**'} (${formatFixed(lora.generationScore.Seen)}).`
        : `Floors (LoRA, seen: caption accuracy >= ${LORA_FLOORS.captionSeen}, generation score >= ${LORA_FLOORS.generationSeen}) apply to the small preset only.`;
    const summary = [
      `**seed.lora-vs-full (${ctx.preset}, seed ${seed})**: ${Q} causal codes of K = ${K} per image; the same text pre-trained LM, data, steps and lr for both arms.`,
      `LoRA: caption accuracy seen ${formatFixed(lora.captionAccuracy.Seen)} / held-out ${formatFixed(lora.captionAccuracy.HeldOut)}, generation score ${formatFixed(lora.generationScore.Seen)} / ${formatFixed(lora.generationScore.HeldOut)}, ${lora.trainedParameters} of ${lora.totalParameters} parameters trained, ${formatFixed(lora.seconds, 1)} s.`,
      `Full: caption accuracy ${formatFixed(results.full.captionAccuracy.Seen)} / ${formatFixed(results.full.captionAccuracy.HeldOut)}, generation score ${formatFixed(results.full.generationScore.Seen)} / ${formatFixed(results.full.generationScore.HeldOut)}, ${results.full.trainedParameters} parameters trained, ${formatFixed(results.full.seconds, 1)} s.`,
      `Memoriser ceiling (evaluation captions whose shape, colour and size a training caption names): seen ${formatFixed(ceiling.Seen)}, held-out ${formatFixed(ceiling.HeldOut)}.`,
      floors,
      `One seed (${seed}): no difference is called here; \`pnpm lab run seed.lora-vs-full --preset small --seeds 0,1,2\` gives mean ± std and the verdict.`,
    ].join('\n');
    return {
      metrics,
      figures,
      tables: [
        {
          title: 'LoRA vs full fine-tuning of the LM on SEED codes',
          columns: [
            'tuning',
            'caption accuracy seen',
            'caption accuracy held-out',
            'generation score seen',
            'generation score held-out',
            'trained parameters',
            'total parameters',
            'seconds (pre-training + SFT)',
          ],
          rows,
          note: `Caption accuracy: greedy captions (SFT template) naming the image's shape, colour and size; generation score: the ShapeAnalyzer reads every attribute of the prompt in the generated image (CFG ${st.sampling.cfgScale}, temperature ${st.sampling.temperature}, top-p ${st.sampling.topP}). ${data.seen.length} prompts per set; memoriser ceiling seen ${formatFixed(ceiling.Seen)}, held-out ${formatFixed(ceiling.HeldOut)}. Trained parameters: the LoRA A/B of every block Linear plus the token embedding, head and norms (LoRA), or every parameter (full). The paper reports no LoRA-vs-full table; SEED-LLaMA uses LoRA throughout and mentions full fine-tuning after LoRA as tried.`,
        },
      ],
      summary,
    };
  },
  aggregate(results: ExperimentResult[], seeds: number[]): { tables?: Table[]; summary?: string } {
    const v = (k: string) => seedValues(results, k);
    const cell = (k: string) => {
      const xs = v(k);
      return xs.length ? formatMeanStd(meanStd(xs)) : null;
    };
    const rows: Table['rows'] = ARMS.map((arm) => [
      arm,
      cell(`${arm}_captionAccuracySeen`),
      cell(`${arm}_captionAccuracyHeldOut`),
      cell(`${arm}_generationScoreSeen`),
      cell(`${arm}_generationScoreHeldOut`),
      cell(`${arm}_trainedParameters`),
      cell(`${arm}_seconds`),
    ]);
    const verdicts: string[] = [];
    for (const s of SETS)
      for (const [m, label] of [
        ['captionAccuracy', 'caption accuracy'],
        ['generationScore', 'generation score'],
      ] as const)
        verdicts.push(
          `- ${label}, ${s.label}: ${seedVerdict(v(`lora_${m}${s.set}`), v(`full_${m}${s.set}`), 'higher', ['LoRA', 'full']).text}.`,
        );
    return {
      tables: [
        {
          title: `LoRA vs full fine-tuning: mean ± std over ${results.length} seed${results.length === 1 ? '' : 's'} (${seeds.join(', ')})`,
          columns: [
            'tuning',
            'caption seen',
            'caption held-out',
            'generation seen',
            'generation held-out',
            'trained parameters',
            'seconds',
          ],
          rows,
          note: `Mean ± sample standard deviation (n − 1) over seeds. Memoriser ceiling: seen ${cell('memoriserSeen') ?? 'n/a'}, held-out ${cell('memoriserHeldOut') ?? 'n/a'}.`,
        },
      ],
      summary: [`**seed.lora-vs-full over seeds ${seeds.join(', ')}**`, '', seedsHeader(seeds), '', ...verdicts].join('\n'),
    };
  },
};
