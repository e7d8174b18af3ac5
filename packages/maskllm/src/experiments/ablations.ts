/**
 * Ablations of MaskLLM's training choices at CPU scale (§3.2-3.4, Table 3): the sparse weight
 * regulariser on/off, soft vs straight-through hard Gumbel samples, and annealed vs constant
 * tau/kappa (held at the schedule's start or end values). All start from the SparseGPT prior with
 * the same budget.
 */
import {
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  parsePresets,
  seedCell,
  seedsHeader,
  seedValues,
  seedVerdict,
  type Table,
} from '@mmlm/core/experiment';
import { z } from 'zod';
import type { MaskConfig } from '../config.js';
import {
  calibration,
  charCorpora,
  configFor,
  DenseSettingsSchema,
  fmt,
  type MaskRun,
  MaskSettingsSchema,
  oneSeedNote,
  ppl,
  runMaskLLM,
  runOneShot,
  trainDense,
} from './common.js';
import { ladderCorpus } from './ladder.js';

/** The settings of a preset; the model/mask/train config defaults to the config preset of the same name. */
function ablationSettingsSchema(name: 'tiny' | 'small') {
  return z.strictObject({
    /** Model/mask/train preset of config.ts. */
    model: z.enum(['tiny', 'small']).default(name),
    /** Characters of the procedural corpus (ignored with --data). */
    chars: z.number().int().positive(),
    /** At most this many characters of a --data file. */
    maxDataChars: z.number().int().positive(),
    dense: DenseSettingsSchema,
    /** Calibration sequences for the SparseGPT prior. */
    calib: z.number().int().positive(),
    /** Every variant's MaskLLM run (each variant adds its own mask overrides). */
    maskllm: MaskSettingsSchema,
  });
}

/** The settings of each preset (parsed: a misspelt or out-of-range field fails at import). */
export const ABLATION_SETTINGS = parsePresets(
  'maskllm.ablations settings',
  {
    tiny: {
      chars: 6000,
      maxDataChars: 6000,
      dense: { steps: 30, batchSize: 4, lr: 3e-3, lrMin: 3e-4, weightDecay: 0.1, evalWindows: 4 },
      calib: 4,
      maskllm: { evalWindows: 4 },
    },
    small: {
      chars: 400_000,
      maxDataChars: 1_200_000,
      dense: { steps: 1000, batchSize: 16, lr: 2e-3, lrMin: 2e-4, weightDecay: 0.1, evalWindows: 300 },
      calib: 64,
      maskllm: { evalWindows: 300 },
    },
  } satisfies Record<'tiny' | 'small', z.input<ReturnType<typeof ablationSettingsSchema>>>,
  ablationSettingsSchema,
);

interface Variant {
  key: string;
  label: string;
  mask: (m: MaskConfig) => Partial<MaskConfig>;
  paper: string | null;
}

const VARIANTS: Variant[] = [
  { key: 'default', label: 'Default: soft, annealed, regulariser on', mask: () => ({}), paper: '11.42 (GPT-3 2B, Table 3)' },
  { key: 'no_reg', label: 'Regulariser off (lambda = 0)', mask: () => ({ weightReg: 0 }), paper: '11.59 (GPT-3 2B, Table 3)' },
  { key: 'hard', label: 'Hard (straight-through) samples', mask: () => ({ hard: true }), paper: null },
  {
    key: 'const_start',
    label: 'Constant tau, kappa at the start values',
    mask: (m) => ({ tauEnd: m.tauStart, kappaEnd: m.kappaStart }),
    paper: null,
  },
  {
    key: 'const_end',
    label: 'Constant tau, kappa at the end values',
    mask: (m) => ({ tauStart: m.tauEnd, kappaStart: m.kappaEnd }),
    paper: null,
  },
];

async function run(ctx: ExperimentContext): Promise<ExperimentResult> {
  const S = ABLATION_SETTINGS[ctx.preset as 'tiny' | 'small'];
  if (!S) throw new Error(`maskllm.ablations: unknown preset "${ctx.preset}"; expected tiny or small`);
  const corpus = ladderCorpus(ctx, S.chars, S.maxDataChars);
  const { tokenizer, corpora } = charCorpora([{ name: 'A', text: corpus.text }]);
  const A = corpora[0]!;
  const cfg = configFor(S.model, tokenizer.vocabSize);
  const dense = await trainDense(ctx, cfg, [A], S.dense);
  const calib = calibration(A.train, S.calib, cfg.model.maxSeqLen, ctx.seed + 1);
  let prior: Promise<Map<string, Uint8Array>> | null = null;
  const priorFn = () => (prior ??= runOneShot(cfg, dense.path, 'sparsegpt', false, calib, [], S.dense).then((r) => r.masks));
  const runs: Record<string, MaskRun> = {};
  try {
    for (const v of VARIANTS)
      runs[v.key] = await runMaskLLM(ctx, `ablation-${v.key}`, cfg, dense.path, A.train, [A], priorFn, {
        ...S.maskllm,
        mask: { ...S.maskllm.mask, ...v.mask(cfg.mask) },
      });
  } finally {
    calib.dispose();
  }
  const metrics: ExperimentResult['metrics'] = { dense_ppl: ppl(dense.val.A!) };
  for (const v of VARIANTS) {
    metrics[`${v.key}_ppl`] = ppl(runs[v.key]!.val.A!);
    metrics[`${v.key}_reg`] = runs[v.key]!.finalReg;
  }
  metrics.invalid_groups = Object.values(runs).reduce((a, r) => a + r.invalidGroups, 0);
  metrics.claim_reg_helps = runs.default!.val.A! < runs.no_reg!.val.A!;
  const table: Table = {
    title: 'MaskLLM ablations (SparseGPT prior, validation PPL of the exported 2:4 model)',
    columns: ['Variant', 'Ours: val PPL', 'Ours: sum ||W*M||^2 (last 10%)', 'Ours: groups changed', 'Paper'],
    rows: VARIANTS.map((v) => {
      const r = runs[v.key]!;
      return [v.label, fmt(ppl(r.val.A!)), fmt(r.finalReg, 1), `${(100 * r.changed).toFixed(1)}%`, v.paper];
    }),
    note:
      `Dense: ${fmt(ppl(dense.val.A!))}. Data: ${corpus.description}. Defaults: tau ${cfg.mask.tauStart} -> ${cfg.mask.tauEnd}, kappa ${cfg.mask.kappaStart} -> ${cfg.mask.kappaEnd}, ` +
      `lambda ${cfg.mask.weightReg} (re-tuned for this model size; the paper's 1e-5 is for 2B-7B sums), ${cfg.train.steps} steps. ` +
      'The paper reports the regulariser ablation only (Table 3, GPT-3 2B mask-only: 11.59 without, 11.42 with); the other rows have no paper numbers.',
  };
  const yes = (b: unknown) => (b ? 'yes' : 'no');
  const summary = [
    `- The regulariser improves PPL: **${yes(metrics.claim_reg_helps)}** (${fmt(ppl(runs.default!.val.A!))} with vs ${fmt(ppl(runs.no_reg!.val.A!))} without; paper 11.42 vs 11.59).`,
    `- Hard vs soft samples: ${fmt(ppl(runs.hard!.val.A!))} vs ${fmt(ppl(runs.default!.val.A!))}.`,
    `- Constant tau/kappa at the start values: ${fmt(ppl(runs.const_start!.val.A!))}; at the end values: ${fmt(ppl(runs.const_end!.val.A!))}; annealed: ${fmt(ppl(runs.default!.val.A!))}.`,
    oneSeedNote(ctx.seed),
  ].join('\n');
  return { metrics, tables: [table], summary };
}

export const ablationsExperiment: Experiment = {
  id: 'maskllm.ablations',
  settings: (preset: string) => ABLATION_SETTINGS[preset as keyof typeof ABLATION_SETTINGS],
  paper: 'MaskLLM',
  claim:
    'The sparse weight regulariser helps (Table 3: 11.42 vs 11.59 PPL); soft sampling and annealed tau/kappa are the recommended settings.',
  presets: {
    tiny: { description: 'width-16 one-block decoder, a few steps: checks the pipeline and the metrics (seconds)', expectedMinutes: 0.1 },
    small: {
      description: 'width-128 two-block decoder on corpus A (or --data), five MaskLLM runs of 300 steps from the SparseGPT prior',
      // measured: 200 s for seed 0 on the idle 2-core Intel Xeon, default backend (2026-12-07, commit 99e483b)
      expectedMinutes: 3.3,
    },
  },
  run,
  aggregate: aggregateAblations,
};

/** The ablation table as mean ± std over seeds; each variant judged against the default beyond two standard errors. */
function aggregateAblations(results: ExperimentResult[], seeds: number[]): { tables: Table[]; summary: string } {
  const v = (k: string) => seedValues(results, `${k}_ppl`);
  const table: Table = {
    title: `MaskLLM ablations over seeds (${seeds.join(', ')}): validation PPL of the exported 2:4 model, mean ± std`,
    columns: ['Variant', 'Ours: val PPL', 'Ours: sum ||W*M||^2 (last 10%)', 'Paper'],
    rows: [
      ['Dense', seedCell(results, 'dense_ppl'), null, null],
      ...VARIANTS.map((x) => [x.label, seedCell(results, `${x.key}_ppl`), seedCell(results, `${x.key}_reg`), x.paper]),
    ],
  };
  const lines = [
    seedsHeader(seeds),
    `- The regulariser improves PPL (paper 11.42 vs 11.59): ${seedVerdict(v('default'), v('no_reg'), 'lower', ['with', 'without']).text}.`,
    ...VARIANTS.filter((x) => x.key !== 'default' && x.key !== 'no_reg').map(
      (x) =>
        `- Default vs ${x.label.charAt(0).toLowerCase()}${x.label.slice(1)}: ${seedVerdict(v('default'), v(x.key), 'lower', ['default', x.key]).text}.`,
    ),
  ];
  return { tables: [table], summary: lines.join('\n') };
}
