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
import {
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  formatFixed,
  parsePresets,
  seedCell,
  seedsHeader,
  seedValues,
  seedVerdict,
  type Table,
} from '@mmlm/core/experiment';
import { ShapeAnalyzer, writeImageGrid } from '@mmlm/data';
import { z } from 'zod';
import { imageDecoderPreset, imageFromCodes } from '../decoder.js';
import {
  CodeLMSettingsSchema,
  disposeTextLM,
  EVAL_SETS,
  encodeItemCodes,
  evaluateCodeLM,
  memoriserCeilings,
  RecipeSchema,
  type SeedData,
  SizesSchema,
  seedData,
  seedTokenizerConfig,
  tailMean,
  textPretrainedLM,
  trainTokenizer,
  tuneLMOnCodes,
} from './common.js';
import { PixelRecipeSchema, trainPixelDecoder } from './pixels.js';

const SettingsSchema = z.strictObject({
  sizes: SizesSchema,
  tokenizer: RecipeSchema,
  pixels: PixelRecipeSchema,
  ...CodeLMSettingsSchema.shape,
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
const SETS = EVAL_SETS;

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

export const loraVsFullExperiment: Experiment = {
  id: 'seed.lora-vs-full',
  settings: (preset: string) => LORA_VS_FULL_SETTINGS[preset as keyof typeof LORA_VS_FULL_SETTINGS],
  paper: 'SEED',
  claim:
    'SEED-LLaMA tunes the LLM on SEED codes with LoRA (the reference: r 16, alpha 32 on every linear layer, embeddings, head and norms fully trained); at the same data and steps LoRA + modules_to_save reaches caption accuracy and generation quality close to full fine-tuning while training a fraction of the parameters.',
  presets: {
    tiny: {
      description:
        '3 steps per tokenizer phase on 64 images, a 2 x 32 LM, 4 steps per LM phase and arm, 6 seen + 6 held-out prompts; checks the pipeline and the metrics, not the claim',
      expectedMinutes: 0.2,
    },
    small: {
      description:
        "seed.retrieval's small tokenizer (8 causal codes of K = 256 per image) and pixel decoder on 2000 Shapes images; a 3 x 96 LM pre-trained on 4000 grammar sentences (600 steps), then per arm 2000 multimodal pre-training + 1000 SFT steps (LoRA r 8, alpha 16 vs every parameter); 256 seen + 256 held-out prompts; one seed per run (--seeds 0,1,2 for the verdict)",
      // measured: 633 s for seed 0 on the idle 2-core Intel machine, default backend (WebAssembly SIMD
      // GEMM, no addon), one run after another (2026-12-06, commit 0d47481); 30 min before (2,605 s at
      // 52111c7 on the 2-core machine shared with two other runs and helpers)
      expectedMinutes: 10.6,
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
      train: encodeItemCodes(tok, Q, data.train, S),
      seen: encodeItemCodes(tok, Q, data.seen, S),
      heldOut: encodeItemCodes(tok, Q, data.heldOut, S),
    };

    // 2. the vocabulary and the text pre-trained LM (shared by both arms)
    const base = await textPretrainedLM(ctx, data, st, Q, 'seed.lora-vs-full');
    const words = base.words;
    const analyzer = new ShapeAnalyzer(data.config);
    const results = {} as Record<Arm, ArmResult>;
    try {
      for (const arm of ARMS) {
        const {
          lm,
          result: r,
          seconds: trainSeconds,
        } = await tuneLMOnCodes(ctx, base, data, codes.train, { numCodes: K, perImage: Q }, st, arm, arm);
        try {
          const ev = evaluateCodeLM(lm, base, data, codes, (c) => imageFromCodes(tok, dec, c), analyzer, {
            seed,
            sampling: st.sampling,
            rngTag: 'lora-vs-full-generate',
          });
          results[arm] = {
            ...ev,
            trainedParameters: Math.max(r.pretrain.trainableParameters, r.sft.trainableParameters),
            totalParameters: lm.numParameters(),
            seconds: trainSeconds,
            pretrainLoss: tailMean(r.pretrain.losses),
            sftLoss: tailMean(r.sft.losses),
          };
        } finally {
          lm.dispose();
        }
      }
    } finally {
      disposeTextLM(base);
      tok.dispose();
      dec.dispose();
    }

    const ceiling = memoriserCeilings(data);
    const metrics: Record<string, number | null> = {
      codesPerImage: Q,
      numCodes: K,
      textVocabSize: words.vocabSize,
      trainImages: data.train.length,
      promptsPerSet: data.seen.length,
      textLoss: base.textLoss,
      textSeconds: base.textSeconds,
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
      `One seed (${seed}): no difference is called here; \`pnpm lab run seed.lora-vs-full --preset ${ctx.preset} --seeds 0,1,2\` gives mean ± std and the verdict.`,
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
    const cell = (k: string) => seedCell(results, k);
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
