/**
 * The experiments' seed aggregates on fabricated per-seed results (no training): the mean ± std
 * tables against hand-computed values, and the verdicts (a difference is called only beyond two
 * standard errors of the difference of the seed means).
 */
import type { ExperimentResult } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { CFG_TABLE } from '../src/experiments/cfg.js';
import { claimVerdict, meanStdTable } from '../src/experiments/common.js';
import { cfgSweepExperiment, initExperiment, synergyExperiment, tradeoffExperiment } from '../src/experiments/index.js';

const seeds = [0, 1, 2];

/** One result per seed from per-seed metric values. */
function fabricate(values: Record<string, (number | null)[]>, table?: (i: number) => ExperimentResult['tables']): ExperimentResult[] {
  return seeds.map((_, i) => ({
    metrics: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v[i] as number | null])),
    ...(table ? { tables: table(i) } : {}),
  }));
}

function lineOf(summary: string | undefined, start: string): string {
  const l = summary?.split('\n').find((x) => x.startsWith(`- ${start}`));
  if (!l) throw new Error(`no line starting "${start}" in:\n${summary}`);
  return l;
}

describe('claimVerdict', () => {
  it('calls a difference beyond two standard errors, with the numbers', () => {
    // a: mean 0.8, std 0.1; b: mean 0.4, std 0.2; se = sqrt(0.1^2 / 3 + 0.2^2 / 3) = 0.1291
    const v = claimVerdict('claim', [0.7, 0.8, 0.9], [0.2, 0.4, 0.6], 'higher', ['a', 'b']);
    expect(v.diff).toBeCloseTo(0.4, 12);
    expect(v.se).toBeCloseTo(Math.sqrt(0.05 / 3), 12);
    expect(v.significant).toBe(true);
    expect(v.supports).toBe(true);
    expect(v.line).toBe(
      'claim: difference exceeds two standard errors, in the direction the paper claims (a 0.80 ± 0.10 vs b 0.40 ± 0.20; difference +0.40, standard error 0.13 (n = 3 and 3), two standard errors 0.26).',
    );
  });

  it('within two standard errors is not distinguishable; significant the wrong way is against the paper; one seed cannot judge', () => {
    const within = claimVerdict('claim', [0.1, 0.3, 0.2], [0.15, 0.25, 0.05], 'higher', ['a', 'b']);
    expect(within.significant).toBe(false);
    expect(within.supports).toBeNull();
    expect(within.line).toContain('claim: within two standard errors: not distinguishable (');
    const against = claimVerdict('claim', [3.8, 3.81, 3.82], [3.6, 3.61, 3.62], 'lower', ['a', 'b']);
    expect(against.significant).toBe(true);
    expect(against.supports).toBe(false);
    expect(against.line).toContain('difference exceeds two standard errors, against the paper');
    const one = claimVerdict('claim', [0.5], [0.1], 'higher', ['a', 'b']);
    expect(one.significant).toBe(false);
    expect(one.line).toContain('one seed, cannot judge');
    expect(claimVerdict('claim', [], [0.1], 'higher', ['a', 'b']).line).toBe('claim: no values to compare.');
  });
});

describe('meanStdTable', () => {
  it('copies kept cells and equal labels, gives mean ± std of numeric cells, marks missing seeds, drops columns', () => {
    const results = fabricate({}, (i) => [
      {
        title: 'T',
        columns: ['run', 'score', 'fd', 'paper', 'curve'],
        rows: [['a', [0.2, 0.4, 0.6][i] as number, [1, null, 3][i] as number | null, 12.5, `curve ${i}`]],
        note: 'Note.',
      },
    ]);
    const t = meanStdTable(JSON.parse(JSON.stringify(results)), seeds, 'T', { keep: [0, 3], drop: [4] })!;
    expect(t.title).toBe('T: mean ± std over 3 seeds (0, 1, 2)');
    expect(t.columns).toEqual(['run', 'score', 'fd', 'paper']);
    // fd: mean 2, std sqrt(2) = 1.414 over the two seeds that have it
    expect(t.rows).toEqual([['a', '0.40 ± 0.20', '2.0 ± 1.4 (n = 2 of 3)', 12.5]]);
    expect(t.note).toContain('Note. Mean ± sample standard deviation');
    expect(meanStdTable(results, seeds, 'missing')).toBeNull();
  });
});

describe('aggregate over seeds', () => {
  it('cfg-sweep: mean ± std of the claim table, best s vs s = 1 on seen (beyond 2 SE) and held-out (within)', () => {
    const seen: Record<number, number[]> = {
      1: [0.2, 0.4, 0.6],
      2: [0.7, 0.8, 0.9],
      3: [0.5, 0.5, 0.5],
      5: [0.3, 0.3, 0.3],
      7: [0.1, 0.1, 0.1],
    };
    const held: Record<number, number[]> = { 1: [0.15, 0.25, 0.05], 2: [0.1, 0.3, 0.2], 3: [0, 0, 0], 5: [0, 0, 0], 7: [0, 0, 0] };
    const values: Record<string, number[]> = { generationCeilingHeldOut: [0.5, 0.5, 0.5], tokenizerAgreement: [0.99, 0.97, 0.98] };
    for (const s of [1, 2, 3, 5, 7]) {
      values[`s${s}_generationScoreSeen`] = seen[s]!;
      values[`s${s}_generationScoreHeldOut`] = held[s]!;
      values[`s${s}_frechetSeen`] = [1, 2, 3];
    }
    const results = fabricate(values, (i) => [
      {
        title: CFG_TABLE,
        columns: ['s', 'seen', 'held-out', 'ceiling', 'fd', 'paper'],
        rows: [1, 2, 3, 5, 7].map((s) => [s, seen[s]![i]!, held[s]![i]!, 0.5, [1, 2, 3][i]!, s === 7 ? 'default' : '']),
      },
    ]);
    const a = cfgSweepExperiment.aggregate!(JSON.parse(JSON.stringify(results)), seeds);
    const t = a.tables![0]!;
    expect(t.rows[0]).toEqual([1, '0.40 ± 0.20', '0.15 ± 0.10', '0.5000 ± 0.0000', '2.0 ± 1.0', '']);
    expect(t.rows[1]).toEqual([2, '0.80 ± 0.10', '0.20 ± 0.10', '0.5000 ± 0.0000', '2.0 ± 1.0', '']);
    expect(t.rows[4]?.[5]).toBe('default');
    expect(lineOf(a.summary, 'Guidance improves prompt alignment on seen prompts (best s = 2 vs s = 1)')).toContain(
      'difference exceeds two standard errors, in the direction the paper claims (s = 2 0.80 ± 0.10 vs s = 1 0.40 ± 0.20; difference +0.40, standard error 0.13',
    );
    // held-out: diff 0.05, se sqrt(2 * 0.1^2 / 3) = 0.082
    expect(lineOf(a.summary, 'Guidance improves prompt alignment on held-out prompts')).toContain(
      'within two standard errors: not distinguishable (s = 2 0.20 ± 0.10 vs s = 1 0.15 ± 0.10; difference +0.050, standard error 0.082',
    );
    expect(a.summary).not.toContain('color:#c00');
  });

  it('tradeoff: mixing costs language (beyond 2 SE), the gap does not shrink distinguishably (within)', () => {
    const results = fabricate({
      w32_ppl_text_only: [5.0, 5.1, 5.2],
      w32_ppl_mixed: [6.0, 6.2, 6.1],
      w32_ppl_gap: [1.0, 1.1, 0.9],
      w128_ppl_gap: [0.9, 1.2, 1.0],
      w32_scoreGapSeen: [0.1, 0.1, 0.1],
      w128_scoreGapSeen: [0.1, 0.1, 0.1],
      tokenizerAgreement: [0.99, 0.5, 0.99],
    });
    const a = tradeoffExperiment.aggregate!(results, seeds);
    expect(lineOf(a.summary, 'Mixing costs language ability at width 32')).toContain(
      'difference exceeds two standard errors, in the direction the paper claims',
    );
    expect(lineOf(a.summary, 'The language gap shrinks with size (ppl gap, width 128 vs 32)')).toContain(
      'within two standard errors: not distinguishable',
    );
    expect(lineOf(a.summary, 'The generation penalty of mixing shrinks with size (score gap on held-out')).toContain(
      'no values to compare',
    );
    // seed 1's tokenizer does not read back: said in red
    expect(a.summary).toContain('<span style="color:#c00">**Warning:** the tokenizer does not read back for seed 1 (0.500)');
  });

  it('synergy: + generation data helps captions (beyond 2 SE), + understanding data within noise, held-out against the paper', () => {
    const results = fabricate({
      baseline_captionAccuracySeen: [0.1, 0.12, 0.11],
      add_gen_captionAccuracySeen: [0.5, 0.52, 0.51],
      baseline_generationScoreSeen: [0.25, 0.35, 0.3],
      add_und_generationScoreSeen: [0.2, 0.4, 0.3],
      baseline_captionAccuracyHeldOut: [0.5, 0.51, 0.52],
      add_gen_captionAccuracyHeldOut: [0.1, 0.11, 0.12],
      baseline_generationScoreHeldOut: [0, 0, 0],
      add_und_generationScoreHeldOut: [0, 0, 0],
    });
    const a = synergyExperiment.aggregate!(results, seeds);
    expect(lineOf(a.summary, 'Adding generation data improves understanding (caption accuracy, seen)')).toContain(
      'difference exceeds two standard errors, in the direction the paper claims (+ generation 0.510 ± 0.010 vs baseline 0.110 ± 0.010; difference +0.4000',
    );
    expect(lineOf(a.summary, 'Adding understanding data improves generation (generation score, seen)')).toContain(
      'within two standard errors: not distinguishable',
    );
    expect(lineOf(a.summary, 'Adding generation data improves understanding (caption accuracy, held-out)')).toContain(
      'difference exceeds two standard errors, against the paper',
    );
    expect(lineOf(a.summary, 'Adding understanding data improves generation (generation score, held-out)')).toContain(
      'within two standard errors: not distinguishable',
    );
  });

  it('init: the trained LM keeps a better text model (beyond 2 SE); final generation scores within noise', () => {
    const results = fabricate({
      pretrained_mean_text_ppl_after: [3.6, 3.61, 3.62],
      scratch_text_ppl_after: [3.8, 3.81, 3.82],
      pretrained_mean_final_generationScoreSeen: [0.1, 0.3, 0.2],
      scratch_final_generationScoreSeen: [0.2, 0.1, 0.15],
      pretrained_mean_text_ppl_start: [3.7, 3.7, 3.7],
      pretrained_normal_text_ppl_start: [3.8, 3.8, 3.8],
    });
    const a = initExperiment.aggregate!(results, seeds);
    expect(lineOf(a.summary, 'Starting from the trained LM keeps a better language model')).toContain(
      'difference exceeds two standard errors, in the direction the paper claims (trained LM 3.610 ± 0.010 vs scratch 3.810 ± 0.010; difference -0.2000',
    );
    expect(
      lineOf(a.summary, 'Starting from the trained LM gives a better generator at equal steps (final generation score, seen)'),
    ).toContain('within two standard errors: not distinguishable');
    expect(lineOf(a.summary, 'Mean-initialised new rows disturb the text model less')).toContain('difference exceeds two standard errors');
  });
});
