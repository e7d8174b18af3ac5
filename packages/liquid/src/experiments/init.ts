/**
 * Liquid sec. 1 and 5 (the abstract's "existing LLMs can serve as strong foundations for Liquid,
 * saving 100x in training costs"; brief 2.10.4): continued training of a trained text LM whose
 * vocabulary is extended (new rows at the mean of the old ones, train.py's resize helper) against
 * (a) the same extension with random new rows and (b) the same architecture from scratch, on the
 * same mix and steps. Reported: text loss right after the extension, the generation score on the
 * seen and held-out prompts during training (memoriser ceiling beside the held-out one), the steps
 * each run needs to reach a target seen score, and the text perplexity retained. One seed per run;
 * `--seeds 0,1,2` gives mean ± std and the verdicts.
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
import { PRESETS } from '../config.js';
import {
  aggregateTokenizerLines,
  claimVerdict,
  DataSizesSchema,
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
  type UnifiedResult,
  unifiedStage,
  warningLines,
} from './common.js';

/** The settings of a preset; what the config preset of that name has defaults to it. */
export function initSettingsSchema(name: 'tiny' | 'small') {
  const p = PRESETS[name];
  return z.strictObject({
    sizes: DataSizesSchema,
    ...RecipeSettingsSchema,
    /** Continued-training steps of each run (default: the preset's `train.unified.steps`). */
    steps: z.number().int().positive().default(p.train.unified.steps),
    /** Evaluate the generation scores every this many steps. */
    evalEvery: z.number().int().positive(),
    evalScale: z.number().positive(),
    /** Generation score (seen prompts) the runs race to. */
    target: z.number().min(0).max(1),
  });
}

/** The settings of each preset (parsed: a misspelt or out-of-range field fails at import). */
export const INIT_SETTINGS = parsePresets(
  'liquid.init settings',
  {
    tiny: {
      sizes: { images: { train: 48, evalPrompts: 4 }, textChars: 6000, textEvalWindows: 4 },
      evalEvery: 2,
      evalScale: 3,
      target: 0.5,
    },
    small: {
      sizes: { images: { train: 2000, evalPrompts: 256 }, textChars: 200_000, textEvalWindows: 64 },
      steps: 600,
      evalEvery: 100,
      evalScale: 3,
      target: 0.5,
    },
    // small with liquid.cfg-sweep small-pos's recipe (learned image positions, a width-32 VQ
    // tokenizer trained 2,000 steps: 0.902 seen at s = 3 after 6,000 steps) and a budget that learns:
    // 3,000 steps per run (600 left every run below 0.15 seen), scored every 500
    'small-pos': {
      ...SMALL_POS_STAGES,
      steps: 3000,
      evalEvery: 500,
      evalScale: 3,
      target: 0.5,
    },
  } satisfies Record<'tiny' | 'small' | 'small-pos', z.input<ReturnType<typeof initSettingsSchema>>>,
  (name) => initSettingsSchema(name === 'tiny' ? 'tiny' : 'small'),
);

const INIT_RECIPE_POS = INIT_SETTINGS['small-pos'].recipe;

const ARMS = [
  { arm: 'pretrained_mean', label: 'trained text LM, new rows = mean (Liquid)', pretrained: true, newRows: 'mean' as const },
  { arm: 'pretrained_normal', label: 'trained text LM, new rows ~ N(0, 0.02^2)', pretrained: true, newRows: 'normal' as const },
  { arm: 'scratch', label: 'same architecture from scratch', pretrained: false, newRows: 'mean' as const },
];

/** Title of the claim table. */
const INIT_TABLE = 'Starting from a trained text LM vs from scratch';

export const initExperiment: Experiment = {
  id: 'liquid.init',
  settings: (preset: string) => stageSettings(INIT_SETTINGS, preset),
  paper: 'Liquid',
  claim:
    'Starting from a trained LLM (vocabulary extended, new rows mean-initialised) reaches image generation with far less training than starting from scratch while keeping the language ability ("saving 100x in training costs").',
  presets: {
    tiny: {
      description: 'three 4-step runs with three evaluations each on 4 seen + 4 held-out prompts; checks the metrics, not the claim',
      expectedMinutes: 0.2,
    },
    small: {
      description: `trained text LM (mean or random new rows) vs scratch, 600 steps each, generation score on 256 seen + 256 held-out prompts every 100 steps; one seed per run (--seeds 0,1,2 for the claim); ${recipeShort()}`,
      expectedMinutes: 4.7,
    },
    'small-pos': {
      description: `small with learned image-position embeddings (ImagePositionLM, not in Liquid), a VQ tokenizer of width 32 trained 2,000 steps, and 3,000 steps per run scored every 500; ${recipeShort(INIT_RECIPE_POS)}`,
      // measured: 660 s for seed 0 on the idle 2-core Intel machine, default backend (WebAssembly SIMD GEMM, no addon), one run after another (2026-12-06, commit 0d47481); 35 min before
      expectedMinutes: 11,
    },
  },
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const { st, prep, cfg, tok } = await setupStages(ctx, INIT_SETTINGS);
    const text = await textStage(ctx, prep, 'base', cfg.lm, cfg.train.text, ctx.seed);
    const results: Record<string, UnifiedResult> = {};
    for (const a of ARMS)
      results[a.arm] = await unifiedStage(ctx, prep, tok, {
        tag: a.arm,
        lm: cfg.lm,
        textPath: a.pretrained ? text.path : null,
        newRows: a.newRows,
        mix: cfg.mix,
        phase: { ...cfg.train.unified, steps: st.steps },
        seed: ctx.seed,
        evalEvery: st.evalEvery,
        evalScale: st.evalScale,
      });
    const ceiling = prep.data.ceilings.generationHeldOut;
    const metrics: Record<string, number | null> = {
      text_lm_ppl: Math.exp(text.valLoss),
      generationCeilingHeldOut: ceiling,
      promptsPerSet: prep.data.seen.length,
      ...tokenizerMetrics(tok),
    };
    tok.vq.dispose();
    const reach = (r: UnifiedResult) => r.curve.find((p) => p.seen >= st.target)?.step ?? null;
    const rows = ARMS.map((a) => {
      const r = results[a.arm] as UnifiedResult;
      const last = r.curve[r.curve.length - 1];
      metrics[`${a.arm}_steps_to_target`] = reach(r);
      metrics[`${a.arm}_final_generationScoreSeen`] = last?.seen ?? null;
      metrics[`${a.arm}_final_generationScoreHeldOut`] = last?.heldOut ?? null;
      metrics[`${a.arm}_text_ppl_after`] = Math.exp(r.textLoss);
      metrics[`${a.arm}_text_ppl_start`] = r.textLossStart === null ? null : Math.exp(r.textLossStart);
      return [
        a.label,
        r.textLossStart === null ? null : Math.exp(r.textLossStart),
        Math.exp(r.textLoss),
        reach(r),
        last?.seen ?? null,
        last?.heldOut ?? null,
        ceiling,
        r.curve.map((p) => `${p.step}:${p.seen.toFixed(2)}/${p.heldOut.toFixed(2)}`).join(' '),
      ];
    });
    const pm = metrics.pretrained_mean_steps_to_target;
    const sc = metrics.scratch_steps_to_target;
    const summary = [
      ...warningLines(tok),
      `**liquid.init (${ctx.preset}, seed ${ctx.seed})**: steps to seen generation score ${st.target}: ${pm ?? `not within ${st.steps}`} from the trained text LM (mean-resized rows), ${metrics.pretrained_normal_steps_to_target ?? `not within ${st.steps}`} with random new rows, ${sc ?? `not within ${st.steps}`} from scratch.`,
      `Final generation score (seen / held-out, ${prep.data.seen.length} prompts each): mean rows ${formatFixed(metrics.pretrained_mean_final_generationScoreSeen)} / ${formatFixed(metrics.pretrained_mean_final_generationScoreHeldOut)}, random rows ${formatFixed(metrics.pretrained_normal_final_generationScoreSeen)} / ${formatFixed(metrics.pretrained_normal_final_generationScoreHeldOut)}, scratch ${formatFixed(metrics.scratch_final_generationScoreSeen)} / ${formatFixed(metrics.scratch_final_generationScoreHeldOut)} (held-out memoriser ceiling ${formatFixed(ceiling)}).`,
      `Text perplexity: text LM ${formatFixed(metrics.text_lm_ppl)}; right after the extension ${formatFixed(metrics.pretrained_mean_text_ppl_start)} (mean rows) vs ${formatFixed(metrics.pretrained_normal_text_ppl_start)} (random rows); after continued training ${formatFixed(metrics.pretrained_mean_text_ppl_after)} (pretrained) vs ${formatFixed(metrics.scratch_text_ppl_after)} (scratch).`,
      tokenizerLine(tok, cfg.tokenizer.numCodes),
      oneSeedNote(ctx.seed, 'liquid.init', ctx.preset),
      recipeDeviations(prep.recipe),
    ].join('\n');
    return {
      metrics,
      tables: [
        {
          title: INIT_TABLE,
          columns: [
            'run',
            'text ppl after extension',
            'text ppl after training',
            `steps to seen score ${st.target}`,
            'final gen. score, seen',
            'final gen. score, held-out',
            'memoriser ceiling, held-out',
            'score curve (step:seen/held-out)',
          ],
          rows,
          note: `— in "text ppl after extension": random init (no extension); in "steps to": not reached in ${st.steps} steps. Paper: existing LLMs "saving 100x in training costs" compared with training from scratch like Chameleon (abstract, sec. 1); no per-step curve is published. New rows at the mean keep the initial loss low (brief 2.3).`,
        },
        tokenizerTable(tok, cfg.tokenizer.numCodes, prep.vocab.tokensPerImage),
      ],
      summary,
    };
  },
  aggregate(results: ExperimentResult[], seeds: number[]): { tables?: Table[]; summary?: string } {
    const tables = [meanStdTable(results, seeds, INIT_TABLE, { keep: [0], drop: [7] })].filter((t): t is Table => t !== null);
    const v = (k: string) => seedValues(results, k);
    const verdicts = [
      claimVerdict(
        'Starting from the trained LM gives a better generator at equal steps (final generation score, seen)',
        v('pretrained_mean_final_generationScoreSeen'),
        v('scratch_final_generationScoreSeen'),
        'higher',
        ['trained LM', 'scratch'],
      ),
      claimVerdict(
        'Starting from the trained LM gives a better generator at equal steps (final generation score, held-out)',
        v('pretrained_mean_final_generationScoreHeldOut'),
        v('scratch_final_generationScoreHeldOut'),
        'higher',
        ['trained LM', 'scratch'],
      ),
      claimVerdict(
        'Starting from the trained LM keeps a better language model (text ppl after training)',
        v('pretrained_mean_text_ppl_after'),
        v('scratch_text_ppl_after'),
        'lower',
        ['trained LM', 'scratch'],
      ),
      claimVerdict(
        'Mean-initialised new rows disturb the text model less than random rows (text ppl right after the extension)',
        v('pretrained_mean_text_ppl_start'),
        v('pretrained_normal_text_ppl_start'),
        'lower',
        ['mean rows', 'random rows'],
      ),
    ];
    const summary = [
      `**liquid.init over seeds ${seeds.join(', ')}**`,
      '',
      ...aggregateTokenizerLines(results, seeds),
      ...verdicts.map((x) => `- ${x.line}`),
    ].join('\n');
    return { tables, summary };
  },
};
