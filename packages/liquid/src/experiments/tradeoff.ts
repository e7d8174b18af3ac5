/**
 * Liquid sec. 3.2, Finding 2 (Fig. 5 and 6): mixing visual generation into training costs language
 * ability (and mixing language costs visual generation), and the trade-off shrinks as the model
 * grows. For each of three widths: a text LM, its vocabulary extended, then three continued-training
 * runs of equal steps from it: text-only, image-only (T2I) and mixed (text : T2I = 1 : 1). Text
 * perplexity gap = ppl(mixed) - ppl(text-only); generation gap = score(image-only) - score(mixed), on
 * the seen and on the held-out prompts. The paper's runs differ: 30M text, 30M T2I, and 60M mixed
 * examples (the mixed run sees both sets in full); here `mixedStepsFactor` = 1 gives every run the
 * same number of steps. One seed per run; `--seeds 0,1,2` gives mean ± std and the verdicts.
 */
import {
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  formatFixed,
  parsePresets,
  seedValues,
  type Table,
} from '@mmlm/core/experiment';
import { z } from 'zod';
import { type LMConfig, type Mix, PRESETS, parameterCount } from '../config.js';
import {
  aggregateTokenizerLines,
  claimVerdict,
  DataSizesSchema,
  evalGenerationSets,
  loadUnified,
  meanStdTable,
  oneSeedNote,
  RecipeSettingsSchema,
  recipeDeviations,
  recipeShort,
  SMALL_POS_STAGES,
  setupStages,
  stageSettings,
  textStage,
  tokenizerLine,
  tokenizerMetrics,
  tokenizerTable,
  unifiedName,
  unifiedStage,
  warningLines,
} from './common.js';

/** The settings of a preset; what the config preset of that name has defaults to it. */
export function tradeoffSettingsSchema(name: 'tiny' | 'small') {
  const p = PRESETS[name];
  return z.strictObject({
    sizes: DataSizesSchema,
    ...RecipeSettingsSchema,
    /** LM widths of the scaling runs. */
    widths: z.array(z.number().int().positive()).min(1),
    /** Default: the preset's `lm.numHeads`. */
    numHeads: z.number().int().positive().default(p.lm.numHeads),
    numLayers: z.number().int().positive(),
    /** Steps of the text LM each unified run starts from. */
    textSteps: z.number().int().positive(),
    /** Steps of each single-task run. */
    steps: z.number().int().positive(),
    /** Batch size of the text and the continued training (default: the preset's `train.unified.batchSize`). */
    batchSize: z.number().int().positive().default(p.train.unified.batchSize),
    /** Steps of the mixed run relative to the single-task runs (paper: 2, since it sees both 30M sets). */
    mixedStepsFactor: z.number().positive(),
    evalScale: z.number().positive(),
  });
}

/** The settings of each preset (parsed: a misspelt or out-of-range field fails at import). */
export const TRADEOFF_SETTINGS = parsePresets(
  'liquid.tradeoff settings',
  {
    tiny: {
      sizes: { images: { train: 48, evalPrompts: 4 }, textChars: 6000, textEvalWindows: 4 },
      widths: [16, 24, 32],
      numLayers: 1,
      textSteps: 2,
      steps: 2,
      mixedStepsFactor: 1,
      evalScale: 3,
    },
    small: {
      sizes: { images: { train: 2000, evalPrompts: 256 }, textChars: 200_000, textEvalWindows: 64 },
      widths: [32, 64, 128],
      numLayers: 2,
      textSteps: 100,
      steps: 150,
      mixedStepsFactor: 1,
      evalScale: 3,
    },
    // small with liquid.cfg-sweep small-pos's recipe (learned image positions, a width-32 VQ
    // tokenizer trained 2,000 steps) and a budget that learns: 3 blocks as the other small-pos runs,
    // a 300-step text LM and 2,000 steps per run (150 left every score under 0.1; small-pos init
    // reaches 0.5-0.65 seen at 1,000 steps and 0.8 at 2,000 at width 64). A 5M-character text corpus
    // (about 1.1M words; 2,000 text-only steps read it about twice): with small's 200,000 characters
    // the text-only runs read it 55 times and overfit (held-out ppl 3.9 / 4.4 / 4.8 at widths 32 /
    // 64 / 128, above the mixed runs' 3.8-3.9), so the perplexity gap measured overfitting, not mixing
    'small-pos': {
      ...SMALL_POS_STAGES,
      sizes: { ...SMALL_POS_STAGES.sizes, textChars: 5_000_000 },
      widths: [32, 64, 128],
      numLayers: 3,
      textSteps: 300,
      steps: 2000,
      mixedStepsFactor: 1,
      evalScale: 3,
    },
  } satisfies Record<'tiny' | 'small' | 'small-pos', z.input<ReturnType<typeof tradeoffSettingsSchema>>>,
  (name) => tradeoffSettingsSchema(name === 'tiny' ? 'tiny' : 'small'),
);

const TRADEOFF_RECIPE_POS = TRADEOFF_SETTINGS['small-pos'].recipe;

const ARMS: { arm: 'text' | 'image' | 'mixed'; mix: Mix }[] = [
  { arm: 'text', mix: { text: 1, t2i: 0, i2t: 0 } },
  { arm: 'image', mix: { text: 0, t2i: 1, i2t: 0 } },
  { arm: 'mixed', mix: { text: 1, t2i: 1, i2t: 0 } },
];

/** Title of the claim table. */
const TRADEOFF_TABLE = 'Trade-off vs width';

/** The widths of a result, from its metric names (`w<width>_ppl_gap`). */
function widthsOf(r: ExperimentResult): number[] {
  return Object.keys(r.metrics)
    .map((k) => /^w(\d+)_ppl_gap$/.exec(k)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

export const tradeoffExperiment: Experiment = {
  id: 'liquid.tradeoff',
  settings: (preset: string) => stageSettings(TRADEOFF_SETTINGS, preset),
  paper: 'Liquid',
  claim:
    'Mixed text and image-generation training lowers language ability relative to text-only training, and the gap shrinks as the model size grows (Finding 2, Fig. 5); the visual-generation penalty of mixing also shrinks (Fig. 6).',
  presets: {
    tiny: {
      description: 'three widths (16, 24, 32), 2 steps per run, 4 seen + 4 held-out prompts; checks the metrics, not the claim',
      expectedMinutes: 0.3,
    },
    small: {
      description: `widths 32, 64, 128 (2 blocks), text-only / image-only / mixed runs of 150 steps each from a 100-step text LM, generation on 256 seen + 256 held-out prompts; one seed per run (--seeds 0,1,2 for the claim); ${recipeShort()}`,
      expectedMinutes: 2.2,
    },
    'small-pos': {
      description: `small with learned image-position embeddings (ImagePositionLM, not in Liquid), a VQ tokenizer of width 32 trained 2,000 steps, 3 blocks, a 5M-character text corpus, a 300-step text LM and 2,000 steps per run; ${recipeShort(TRADEOFF_RECIPE_POS)}`,
      // measured: 1,136 s for seed 0 on the idle 2-core Intel machine, default backend (WebAssembly SIMD GEMM, no addon), one run after another (2026-12-06, commit f181b74); 30 min before
      expectedMinutes: 18.9,
    },
  },
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const { st, prep, cfg, tok } = await setupStages(ctx, TRADEOFF_SETTINGS);
    const seed = ctx.seed;
    const ceiling = prep.data.ceilings.generationHeldOut;
    const metrics: Record<string, number> = { generationCeilingHeldOut: ceiling, promptsPerSet: prep.data.seen.length };
    const rows: (string | number)[][] = [];
    const gaps: { width: number; text: number; genSeen: number; genHeldOut: number }[] = [];
    for (const w of st.widths) {
      const lm: LMConfig = {
        ...cfg.lm,
        dim: w,
        numHeads: st.numHeads,
        numLayers: st.numLayers,
        numKvHeads: undefined,
        mlpHidden: undefined,
      };
      const text = await textStage(
        ctx,
        prep,
        `w${w}-s${seed}`,
        lm,
        { ...cfg.train.text, steps: st.textSteps, batchSize: st.batchSize },
        seed,
      );
      const ppl: Record<string, number> = {};
      const gen: Record<string, { seen: number; heldOut: number }> = {};
      for (const { arm, mix } of ARMS) {
        const steps = arm === 'mixed' ? Math.round(st.steps * st.mixedStepsFactor) : st.steps;
        const tag = `w${w}-s${seed}-${arm}`;
        const r = await unifiedStage(ctx, prep, tok, {
          tag,
          lm,
          textPath: text.path,
          mix,
          phase: { ...cfg.train.unified, steps, batchSize: st.batchSize, minLrRatio: 1, warmup: Math.min(20, steps) },
          seed,
        });
        ppl[arm] = Math.exp(r.textLoss);
        if (arm !== 'text') {
          const model = await loadUnified(prep, lm, r.path);
          const g = evalGenerationSets(model, prep, tok, { cfgScale: st.evalScale, seed: seed + 1, fd: false });
          model.dispose();
          gen[arm] = { seen: g.seen.score, heldOut: g.heldOut.score };
          ctx.metric({
            subrun: unifiedName(tag),
            generationScoreSeen: g.seen.score,
            generationScoreHeldOut: g.heldOut.score,
            textPpl: ppl[arm],
          });
        } else ctx.metric({ subrun: unifiedName(tag), textPpl: ppl[arm] });
      }
      const image = gen.image as { seen: number; heldOut: number };
      const mixed = gen.mixed as { seen: number; heldOut: number };
      const g = {
        width: w,
        text: (ppl.mixed as number) - (ppl.text as number),
        genSeen: image.seen - mixed.seen,
        genHeldOut: image.heldOut - mixed.heldOut,
      };
      gaps.push(g);
      Object.assign(metrics, {
        [`w${w}_ppl_text_only`]: ppl.text,
        [`w${w}_ppl_mixed`]: ppl.mixed,
        [`w${w}_ppl_image_only`]: ppl.image,
        [`w${w}_ppl_gap`]: g.text,
        [`w${w}_imageOnly_generationScoreSeen`]: image.seen,
        [`w${w}_imageOnly_generationScoreHeldOut`]: image.heldOut,
        [`w${w}_mixed_generationScoreSeen`]: mixed.seen,
        [`w${w}_mixed_generationScoreHeldOut`]: mixed.heldOut,
        [`w${w}_scoreGapSeen`]: g.genSeen,
        [`w${w}_scoreGapHeldOut`]: g.genHeldOut,
      });
      rows.push([
        w,
        parameterCount(lm, prep.vocab.size).total,
        ppl.text as number,
        ppl.mixed as number,
        g.text,
        image.seen,
        mixed.seen,
        g.genSeen,
        image.heldOut,
        mixed.heldOut,
        g.genHeldOut,
        ceiling,
        ppl.image as number,
      ]);
    }
    Object.assign(metrics, tokenizerMetrics(tok));
    tok.vq.dispose();
    const first = gaps[0] as (typeof gaps)[number];
    const last = gaps[gaps.length - 1] as (typeof gaps)[number];
    const textShrinks = last.text < first.text;
    const genShrinks = last.genSeen < first.genSeen;
    metrics.text_gap_shrinks = textShrinks ? 1 : 0;
    metrics.gen_gap_shrinks = genShrinks ? 1 : 0;
    const summary = [
      ...warningLines(tok),
      `**liquid.tradeoff (${ctx.preset}, seed ${ctx.seed})**: text perplexity gap (mixed - text-only) ${gaps.map((g) => `width ${g.width}: ${formatFixed(g.text)}`).join(', ')}; ${textShrinks ? 'it shrinks' : 'it does NOT shrink'} from the smallest to the largest width at this seed.`,
      `Generation-score gap (image-only - mixed), seen prompts: ${gaps.map((g) => `width ${g.width}: ${formatFixed(g.genSeen)}`).join(', ')}; held-out prompts: ${gaps.map((g) => `width ${g.width}: ${formatFixed(g.genHeldOut)}`).join(', ')} (held-out memoriser ceiling ${formatFixed(ceiling)}).`,
      tokenizerLine(tok, cfg.tokenizer.numCodes),
      `Protocol: equal steps for every run (${st.steps} steps, batch ${st.batchSize}, constant lr as the paper's scaling runs), so the mixed run sees half the text and half the T2I examples of the single-task runs; the paper's mixed run saw both 30M sets (60M).`,
      oneSeedNote(ctx.seed, 'liquid.tradeoff', ctx.preset),
      recipeDeviations(prep.recipe),
    ].join('\n');
    return {
      metrics,
      tables: [
        {
          title: TRADEOFF_TABLE,
          columns: [
            'width',
            'parameters',
            'text ppl, text-only',
            'text ppl, mixed',
            'ppl gap (mixed - text-only)',
            'gen. score seen, image-only',
            'gen. score seen, mixed',
            'score gap seen (image-only - mixed)',
            'gen. score held-out, image-only',
            'gen. score held-out, mixed',
            'score gap held-out',
            'memoriser ceiling, held-out',
            'text ppl, image-only',
          ],
          rows,
          note: `Generation on ${prep.data.seen.length} seen and ${prep.data.heldOut.length} held-out prompts at s = ${st.evalScale}. Paper (Fig. 5): the average language score of mixed training is below text-only training for small models (0.5B-2B) and the gap falls to about 0 by 7B-32B. Fig. 6: mixed training has higher visual validation loss at every size, but its VQAScore penalty shrinks with size.`,
        },
        tokenizerTable(tok, cfg.tokenizer.numCodes, prep.vocab.tokensPerImage),
      ],
      summary,
    };
  },
  aggregate(results: ExperimentResult[], seeds: number[]): { tables?: Table[]; summary?: string } {
    const tables = [meanStdTable(results, seeds, TRADEOFF_TABLE, { keep: [0, 1] })].filter((t): t is Table => t !== null);
    const widths = results[0] ? widthsOf(results[0]) : [];
    if (widths.length < 2) return { tables, summary: 'Fewer than two widths: nothing to compare.' };
    const lo = widths[0] as number;
    const hi = widths[widths.length - 1] as number;
    const v = (k: string) => seedValues(results, k);
    const verdicts = [
      claimVerdict(
        `Mixing costs language ability at width ${lo} (text ppl, mixed vs text-only)`,
        v(`w${lo}_ppl_mixed`),
        v(`w${lo}_ppl_text_only`),
        'higher',
        ['mixed', 'text-only'],
      ),
      claimVerdict(
        `The language gap shrinks with size (ppl gap, width ${hi} vs ${lo})`,
        v(`w${hi}_ppl_gap`),
        v(`w${lo}_ppl_gap`),
        'lower',
        [`width ${hi}`, `width ${lo}`],
      ),
      claimVerdict(
        `The generation penalty of mixing shrinks with size (score gap on seen prompts, width ${hi} vs ${lo})`,
        v(`w${hi}_scoreGapSeen`),
        v(`w${lo}_scoreGapSeen`),
        'lower',
        [`width ${hi}`, `width ${lo}`],
      ),
      claimVerdict(
        `The generation penalty of mixing shrinks with size (score gap on held-out prompts, width ${hi} vs ${lo})`,
        v(`w${hi}_scoreGapHeldOut`),
        v(`w${lo}_scoreGapHeldOut`),
        'lower',
        [`width ${hi}`, `width ${lo}`],
      ),
    ];
    const summary = [
      `**liquid.tradeoff over seeds ${seeds.join(', ')}**`,
      '',
      ...aggregateTokenizerLines(results, seeds),
      ...verdicts.map((x) => `- ${x.line}`),
    ].join('\n');
    return { tables, summary };
  },
};
