/**
 * SEED's pilot study (paper section 3.1, brief 1.5): OPT-2.7B aligned on CC3M captions reaches COCO
 * CIDEr 34.0 from VQ-VAE (pixel) codes and 42.0 from BEiT-v2's VQ-KD (semantic) codes: an LLM
 * understands images better from codes that carry semantics. Here the semantic codes are SEED's own
 * (the Causal Q-Former tokenizer of `common.ts`; the paper's pilot used BEiT-v2) and the pixel codes
 * come from a patch VQ-VAE trained on pixel reconstruction only (`pixelVq.ts`, built from core's
 * VectorQuantizer), with **the same codes per image and the same codebook size and code width**.
 * The same text pre-trained LM is tuned on each arm's codes with the same recipe (LoRA +
 * modules_to_save, `seed.lora-vs-full`'s), then:
 *   - caption accuracy (greedy captions of each set's codes naming shape, colour and size), seen and
 *     held-out, with the memoriser ceiling (the paper's CIDEr stands for it);
 *   - generation score (forced span, each arm's own decoder back to pixels, read by the ShapeAnalyzer);
 *   - each tokenizer's read-back (image -> codes -> image read by the ShapeAnalyzer), the check that
 *     both arms work before their comparison means anything.
 */
import { join } from 'node:path';
import type { Tensor, Tensor4D } from '@mmlm/core';
import {
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  type Figure,
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
import { type ImageDecoder, imageDecoderPreset, imageFromCodes } from '../decoder.js';
import {
  CodeLMSettingsSchema,
  disposeTextLM,
  EVAL_SETS,
  type EvalSet,
  encodeItemCodes,
  evaluateCodeLM,
  imageBatch,
  memoriserCeilings,
  PhaseSchema,
  RecipeSchema,
  type SeedItem,
  SizesSchema,
  seedData,
  seedTokenizerConfig,
  type TextLM,
  textPretrainedLM,
  trainTokenizer,
  tuneLMOnCodes,
} from './common.js';
import { LORA_VS_FULL_SETTINGS } from './loraVsFull.js';
import { codeStats } from './metrics.js';
import { backToPixels, PixelRecipeSchema, pixelReadBack, writePixelGrid } from './pixels.js';
import { type PixelVQVAE, patchGrid, trainPixelVQ } from './pixelVq.js';

const SettingsSchema = z.strictObject({
  sizes: SizesSchema,
  tokenizer: RecipeSchema,
  pixels: PixelRecipeSchema,
  /** The pixel VQ-VAE: its widths and its one training phase (Q, K and the code width come from the SEED tokenizer). */
  pixelVq: z.strictObject({
    encoderHidden: z.number().int().positive(),
    decoderHidden: z.array(z.number().int().positive()).min(1),
    train: PhaseSchema,
  }),
  ...CodeLMSettingsSchema.shape,
});
export type SemanticVsPixelSettings = z.infer<typeof SettingsSchema>;

const lvf = LORA_VS_FULL_SETTINGS;

/** The settings of each preset: seed.lora-vs-full's tokenizer, pixel decoder and LM recipe, plus the pixel VQ-VAE. */
export const SEMANTIC_VS_PIXEL_SETTINGS = parsePresets(
  'seed.semantic-vs-pixel settings',
  {
    tiny: { ...lvf.tiny, pixelVq: { encoderHidden: 16, decoderHidden: [32], train: { steps: 3, batchSize: 16, lr: 1e-3 } } },
    small: {
      ...lvf.small,
      pixelVq: { encoderHidden: 128, decoderHidden: [512, 512], train: { steps: 3000, batchSize: 64, lr: 2e-3, warmup: 50 } },
      // two LM arms in 30 min a seed (README)
      pretrain: { ...lvf.small.pretrain, steps: 1500 },
      sft: { ...lvf.small.sft, steps: 750 },
    },
  } satisfies Record<'tiny' | 'small', z.input<typeof SettingsSchema>>,
  () => SettingsSchema,
);

/** The paper's pilot (section 3.1): COCO CIDEr of OPT-2.7B aligned on CC3M. */
export const PAPER_PILOT = { pixel: 34.0, semantic: 42.0 } as const;

export const CODE_ARMS = [
  { arm: 'semantic', label: 'semantic: SEED causal Q-Former codes' },
  { arm: 'pixel', label: 'pixel: patch VQ-VAE codes' },
] as const;
type CodeArm = (typeof CODE_ARMS)[number]['arm'];

interface ArmResult {
  captionAccuracy: Record<EvalSet, number>;
  generationScore: Record<EvalSet, number>;
  readBack: Record<EvalSet, number>;
  codeUsage: number;
  codePerplexity: number;
  distinctSequences: number;
  tokenizerParameters: number;
  tokenizerSeconds: number;
  lmSeconds: number;
  samples: Float32Array[];
}

const CLAIM_TABLE = 'Semantic vs pixel codes under the same LM (SEED pilot, section 3.1)';
const METRICS = [
  ['captionAccuracy', 'caption accuracy'],
  ['generationScore', 'generation score'],
  ['readBack', 'tokenizer read-back'],
] as const;

/** Read-back of a pixel VQ-VAE's round trip on items. */
function pixelVqReadBack(vq: PixelVQVAE, items: readonly SeedItem[], S: number, analyzer: ShapeAnalyzer) {
  const recon: Float32Array[] = [];
  for (let i = 0; i < items.length; i += 256) {
    const x = imageBatch(items.slice(i, i + 256), S);
    const y = vq.decodeCodes(vq.encodeCodes(x));
    const flat = y.dataSync() as Float32Array;
    const per = S * S * 3;
    for (let j = 0; j < (y.shape[0] as number); j++) recon.push(flat.slice(j * per, (j + 1) * per));
    x.dispose();
    y.dispose();
  }
  const originals = items.map((d) => d.image);
  return { readBack: pixelReadBack(originals, recon, analyzer), originals, reconstructions: recon };
}

export const semanticVsPixelExperiment: Experiment = {
  id: 'seed.semantic-vs-pixel',
  settings: (preset: string) => SEMANTIC_VS_PIXEL_SETTINGS[preset as keyof typeof SEMANTIC_VS_PIXEL_SETTINGS],
  paper: 'SEED',
  claim:
    "An LLM aligned on semantic image codes understands images better than one aligned on pixel (VQ-VAE) codes: SEED's pilot gives COCO CIDEr 42.0 vs 34.0 (OPT-2.7B on CC3M, BEiT-v2 VQ-KD vs VQ-VAE codes).",
  presets: {
    tiny: {
      description:
        '3 steps per tokenizer phase on 64 images, a 3-step pixel VQ-VAE, a 2 x 32 LM with 4 steps per phase and arm, 6 seen + 6 held-out prompts; checks the pipeline and the metrics, not the claim',
      expectedMinutes: 0.3,
    },
    small: {
      description:
        "seed.lora-vs-full's small SEED tokenizer (8 causal codes of K = 256) and pixel decoder; a patch VQ-VAE with 8 codes (2 x 4 patches of 8 x 4 px) of the same K and width, 3000 steps; the same text pre-trained 3 x 96 LM tuned per arm with LoRA (1500 pre-training + 750 SFT steps); 256 seen + 256 held-out prompts; one seed per run (--seeds 0,1,2 for the verdict)",
      // measured: 672 s for seed 0 on the idle 2-core Intel machine, default backend (WebAssembly SIMD
      // GEMM, no addon), one run after another (2026-12-06, commit 0d47481); 30 min before
      expectedMinutes: 11.2,
    },
  },
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const name = ctx.preset === 'small' ? 'small' : 'tiny';
    const st = SEMANTIC_VS_PIXEL_SETTINGS[name];
    const seed = ctx.seed;
    const data = seedData({ imageSize: 16, train: st.sizes.train, evalPrompts: st.sizes.evalPrompts, seed });
    const S = data.imageSize;
    const analyzer = new ShapeAnalyzer(data.config);

    // the semantic tokenizer (as seed.retrieval / seed.lora-vs-full) and its pixel decoder
    const cfg = seedTokenizerConfig(name, data, seed);
    const Q = cfg.qformer.numQueries;
    const K = cfg.quantizer.numCodes;
    const trained = await trainTokenizer(ctx, data, cfg, st.tokenizer, seed);
    const tok = trained.model;
    const decoderCfg = { ...imageDecoderPreset(name), genDim: cfg.decoder.genDim, imageSize: cfg.vit.imageSize, seed };
    const figures: Figure[] = [];
    const results = {} as Record<CodeArm, ArmResult>;
    const ceiling = memoriserCeilings(data);
    let base: TextLM | null = null;
    let vq: PixelVQVAE | null = null;
    let decoder: ImageDecoder | undefined;
    try {
      const px = await backToPixels(ctx, data, tok, decoderCfg, st.pixels, seed, { keepDecoder: true });
      if (!px.decoder) throw new Error('seed.semantic-vs-pixel: backToPixels returned no decoder (keepDecoder)');
      const dec = px.decoder;
      decoder = dec;
      figures.push(...px.figures.map((f) => ({ ...f, title: `semantic: ${f.title}` })));

      // the pixel VQ-VAE: same Q, K and code width
      const grid = patchGrid(Q, S);
      const pv = await trainPixelVQ(
        ctx,
        data,
        {
          imageSize: S,
          grid,
          codeDim: cfg.quantizer.codeDim,
          numCodes: K,
          encoderHidden: st.pixelVq.encoderHidden,
          decoderHidden: st.pixelVq.decoderHidden,
          seed,
        },
        st.pixelVq.train,
        seed,
      );
      vq = pv.model;
      const vqModel = vq;
      const pvRead = {
        seen: pixelVqReadBack(vqModel, data.seen, S, analyzer),
        heldOut: pixelVqReadBack(vqModel, data.heldOut, S, analyzer),
      };
      for (const [set, label] of [
        ['seen', 'seen'],
        ['heldOut', 'held-out'],
      ] as const) {
        const path = `pixel-vq-${set.toLowerCase()}.png`;
        writePixelGrid(join(ctx.outDir, path), pvRead[set], S);
        figures.push({
          title: `pixel: patch VQ-VAE round trip, ${label} combinations: original | reconstruction`,
          path,
          caption: `Pairs of an original ${label} image and its round trip image -> ${Q} pixel codes (${grid.join(' x ')} patches) -> VQ-VAE decoder, 6 pairs a row.`,
        });
      }

      // one text pre-trained LM, tuned on each arm's codes
      base = await textPretrainedLM(ctx, data, st, Q, 'seed.semantic-vs-pixel');
      const arms: Record<CodeArm, { enc: { encodeCodes(x: Tensor): Int32Array }; decode: (c: Int32Array) => Tensor4D }> = {
        semantic: { enc: tok, decode: (c) => imageFromCodes(tok, dec, c) },
        pixel: { enc: vqModel, decode: (c) => vqModel.decodeCodes(c) },
      };
      for (const { arm } of CODE_ARMS) {
        const a = arms[arm];
        const codes = {
          train: encodeItemCodes(a.enc, Q, data.train, S),
          seen: encodeItemCodes(a.enc, Q, data.seen, S),
          heldOut: encodeItemCodes(a.enc, Q, data.heldOut, S),
        };
        const cs = codeStats(codes.train, K, Q);
        const { lm, seconds } = await tuneLMOnCodes(ctx, base, data, codes.train, { numCodes: K, perImage: Q }, st, 'lora', arm);
        try {
          const ev = evaluateCodeLM(lm, base, data, codes, a.decode, analyzer, { seed, sampling: st.sampling, rngTag: `${arm}-generate` });
          results[arm] = {
            captionAccuracy: ev.captionAccuracy,
            generationScore: ev.generationScore,
            readBack:
              arm === 'semantic'
                ? { Seen: px.seen.readBack.fraction, HeldOut: px.heldOut.readBack.fraction }
                : { Seen: pvRead.seen.readBack.fraction, HeldOut: pvRead.heldOut.readBack.fraction },
            codeUsage: cs.usage,
            codePerplexity: cs.perplexity,
            distinctSequences: cs.distinctSequences,
            tokenizerParameters: arm === 'semantic' ? tok.numParameters() + dec.numParameters() : vqModel.numParameters(),
            tokenizerSeconds:
              arm === 'semantic'
                ? trained.vit.seconds + trained.stage1.seconds + trained.stage2.seconds + px.decoderPhase.seconds + px.finetunePhase.seconds
                : pv.phase.seconds,
            lmSeconds: seconds,
            samples: ev.samples.images,
          };
        } finally {
          lm.dispose();
        }
        const path = `generated-${arm}.png`;
        writeImageGrid(join(ctx.outDir, path), results[arm].samples, { size: S, cols: 6, scale: 4 });
        figures.push({
          title: `${arm}: images generated from seen captions`,
          path,
          caption: `First ${results[arm].samples.length} seen prompts: ${data.seen
            .slice(0, 12)
            .map((d) => d.caption)
            .join('; ')}.`,
        });
      }
    } finally {
      decoder?.dispose();
      if (base) disposeTextLM(base);
      vq?.dispose();
      tok.dispose();
    }
    const textLoss = (base as TextLM | null)?.textLoss ?? null;

    const metrics: Record<string, number | null> = {
      codesPerImage: Q,
      numCodes: K,
      codeDim: cfg.quantizer.codeDim,
      trainImages: data.train.length,
      promptsPerSet: data.seen.length,
      textLoss,
      memoriserSeen: ceiling.Seen,
      memoriserHeldOut: ceiling.HeldOut,
    };
    const rows: Table['rows'] = [];
    for (const { arm, label } of CODE_ARMS) {
      const r = results[arm];
      for (const s of EVAL_SETS) for (const [m] of METRICS) metrics[`${arm}_${m}${s.set}`] = r[m][s.set];
      metrics[`${arm}_codeUsage`] = r.codeUsage;
      metrics[`${arm}_codePerplexity`] = r.codePerplexity;
      metrics[`${arm}_distinctSequences`] = r.distinctSequences;
      metrics[`${arm}_tokenizerParameters`] = r.tokenizerParameters;
      metrics[`${arm}_tokenizerSeconds`] = r.tokenizerSeconds;
      metrics[`${arm}_lmSeconds`] = r.lmSeconds;
      for (const s of EVAL_SETS)
        rows.push([
          label,
          s.label,
          r.captionAccuracy[s.set],
          ceiling[s.set],
          r.generationScore[s.set],
          r.readBack[s.set],
          PAPER_PILOT[arm],
        ]);
    }
    const se = results.semantic;
    const pi = results.pixel;
    const summary = [
      `**seed.semantic-vs-pixel (${ctx.preset}, seed ${seed})**: ${Q} codes of K = ${K} (width ${cfg.quantizer.codeDim}) per image in both arms; one text pre-trained LM, the same LoRA recipe.`,
      `Caption accuracy (seen / held-out): semantic ${formatFixed(se.captionAccuracy.Seen)} / ${formatFixed(se.captionAccuracy.HeldOut)}, pixel ${formatFixed(pi.captionAccuracy.Seen)} / ${formatFixed(pi.captionAccuracy.HeldOut)}; memoriser ceiling ${formatFixed(ceiling.Seen)} / ${formatFixed(ceiling.HeldOut)}. Paper (COCO CIDEr): semantic ${PAPER_PILOT.semantic}, pixel ${PAPER_PILOT.pixel}.`,
      `Generation score: semantic ${formatFixed(se.generationScore.Seen)} / ${formatFixed(se.generationScore.HeldOut)}, pixel ${formatFixed(pi.generationScore.Seen)} / ${formatFixed(pi.generationScore.HeldOut)}.`,
      `Tokenizer read-back (image -> codes -> image, ShapeAnalyzer): semantic ${formatFixed(se.readBack.Seen)} / ${formatFixed(se.readBack.HeldOut)}, pixel ${formatFixed(pi.readBack.Seen)} / ${formatFixed(pi.readBack.HeldOut)}; an arm whose read-back fails is not evidence for the claim.`,
      `One seed (${seed}): no difference is called here; \`pnpm lab run seed.semantic-vs-pixel --preset ${ctx.preset} --seeds 0,1,2\` gives mean ± std and the verdict.`,
    ].join('\n');
    return {
      metrics,
      figures,
      tables: [
        {
          title: CLAIM_TABLE,
          columns: [
            'codes',
            'combinations',
            'caption accuracy',
            'memoriser ceiling',
            'generation score',
            'tokenizer read-back',
            'paper COCO CIDEr',
          ],
          rows,
          note: `Caption accuracy: greedy captions (SFT template) naming the image's shape, colour and size; generation score: \`<img>\`, exactly ${Q} codes (CFG ${st.sampling.cfgScale}, temperature ${st.sampling.temperature}, top-p ${st.sampling.topP}), \`</img>\`, the arm's decoder, read by the ShapeAnalyzer; read-back: the tokenizer's own round trip. ${data.seen.length} prompts per set. Paper: OPT-2.7B aligned on CC3M, COCO CIDEr, BEiT-v2 VQ-KD (semantic) vs VQ-VAE (pixel) codes; the comparison is the direction of the gap.`,
        },
        {
          title: 'Tokenizers per arm',
          columns: [
            'codes',
            'code usage',
            'code perplexity',
            'distinct training sequences',
            'parameters (with its decoder)',
            'tokenizer + decoder s',
            'LM s',
          ],
          rows: CODE_ARMS.map(({ arm, label }) => {
            const r = results[arm];
            return [label, r.codeUsage, r.codePerplexity, r.distinctSequences, r.tokenizerParameters, r.tokenizerSeconds, r.lmSeconds];
          }),
        },
      ],
      summary,
    };
  },
  aggregate(results: ExperimentResult[], seeds: number[]): { tables?: Table[]; summary?: string } {
    const v = (k: string) => seedValues(results, k);
    const cell = (k: string) => seedCell(results, k);
    const rows: Table['rows'] = [];
    for (const { arm, label } of CODE_ARMS)
      for (const s of EVAL_SETS) rows.push([label, s.label, ...METRICS.map(([m]) => cell(`${arm}_${m}${s.set}`)), PAPER_PILOT[arm]]);
    const verdicts: string[] = [];
    for (const s of EVAL_SETS)
      for (const [m, label] of METRICS)
        verdicts.push(
          `- ${label}, ${s.label}: ${seedVerdict(v(`semantic_${m}${s.set}`), v(`pixel_${m}${s.set}`), 'higher', ['semantic', 'pixel']).text}.`,
        );
    return {
      tables: [
        {
          title: `${CLAIM_TABLE}: mean ± std over ${results.length} seed${results.length === 1 ? '' : 's'} (${seeds.join(', ')})`,
          columns: ['codes', 'combinations', ...METRICS.map(([, l]) => l), 'paper COCO CIDEr'],
          rows,
          note: `Mean ± sample standard deviation (n − 1) over seeds. Memoriser ceiling of caption accuracy: seen ${cell('memoriserSeen') ?? 'n/a'}, held-out ${cell('memoriserHeldOut') ?? 'n/a'}.`,
        },
      ],
      summary: [`**seed.semantic-vs-pixel over seeds ${seeds.join(', ')}**`, '', seedsHeader(seeds), '', ...verdicts].join('\n'),
    };
  },
};
