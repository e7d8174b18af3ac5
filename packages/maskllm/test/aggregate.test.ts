/**
 * The experiments' seed aggregates (`aggregate(results, seeds)`, called by the lab for `--seeds`) on
 * fabricated per-seed results: hand-computed mean ± sample std in the claim tables, and verdicts that
 * call a difference only beyond two standard errors (one case above, one within).
 */
import { type ExperimentResult, seedCell, seedValues, seedVerdict } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { ablationsExperiment, ladderExperiment, transferExperiment } from '../src/experiments/index.js';

/** Per-seed results from per-metric value lists (seed i gets value i of each list). */
function fabricate(values: Record<string, (number | string | boolean | null)[]>, n = 3): ExperimentResult[] {
  return Array.from({ length: n }, (_, i) => ({
    metrics: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v[i] ?? null])),
  }));
}

describe('seed statistics helpers', () => {
  it('mean ± sample std of finite numbers; verdicts beyond and within two standard errors', () => {
    const rs = fabricate({ a: [10, 12, 14], s: ['x', 'y', 'z'], b: [true, false, true] });
    expect(seedValues(rs, 'a')).toEqual([10, 12, 14]);
    expect(seedValues(rs, 's')).toEqual([]);
    expect(seedValues(rs, 'b')).toEqual([]);
    // mean 12, std sqrt((4 + 0 + 4) / 2) = 2
    expect(seedCell(rs, 'a')).toBe('12.0 ± 2.0');
    expect(seedCell(rs, 's')).toBeNull();
    // diff -4, SE sqrt(4/3 + 1/3) = 1.29: beyond 2 SE, a better (lower)
    const above = seedVerdict([10, 12, 14], [15, 16, 17], 'lower', ['a', 'b']);
    expect(above.winner).toBe('a');
    expect(above.text).toBe(
      'a 12.0 ± 2.0 vs b 16.0 ± 1.0: difference -4.00 ± 1.3 (SE, n = 3 and 3) exceeds two standard errors, a better (lower is better)',
    );
    // diff -1, SE 1.29: within
    const within = seedVerdict([10, 12, 14], [12, 13, 14], 'lower', ['a', 'b']);
    expect(within.significant).toBe(false);
    expect(within.text).toMatch(/within two standard errors: not distinguishable$/);
  });
});

describe('maskllm.ladder aggregate', () => {
  const rs = fabricate({
    dense_ppl: [3.0, 3.1, 3.2],
    dense_bpc: [1.58, 1.63, 1.68],
    magnitude_ppl: [20, 25, 30],
    wanda_ppl: [8, 9, 10],
    sparsegpt_ppl: [6.5, 7, 7.5],
    sparsegpt_update_ppl: [5.6, 5.8, 6.0],
    maskllm_none_ppl: [5.5, 6.0, 6.5],
    maskllm_magnitude_ppl: [5.2, 5.4, 5.6],
    maskllm_sparsegpt_ppl: [5.0, 5.2, 5.4],
    maskllm_magnitude_prior_ppl: [20, 25, 30],
    maskllm_sparsegpt_prior_ppl: [6.5, 7, 7.5],
    maskllm_none_changed: [0.5, 0.6, 0.7],
    maskllm_magnitude_changed: [0.2, 0.3, 0.4],
    maskllm_sparsegpt_changed: [0.1, 0.2, 0.3],
    best_sparse: ['maskllm_sparsegpt', 'maskllm_sparsegpt', 'maskllm_sparsegpt'],
    claim_magnitude_worst: [true, true, true],
  });
  const a = ladderExperiment.aggregate!(rs, [0, 1, 2]);

  it('Tables 1 and 2 as mean ± std', () => {
    const [t1, t2] = a.tables!;
    expect(t1!.rows.map((r) => r[0])).toEqual([
      'Dense',
      'Magnitude',
      'Wanda',
      'SparseGPT (no weight update)',
      'SparseGPT (weight update)',
      'MaskLLM, no prior',
      'MaskLLM, magnitude prior',
      'MaskLLM, SparseGPT prior',
    ]);
    expect(t1!.rows[0]!.slice(1, 3)).toEqual(['3.10 ± 0.10', '1.630 ± 0.050']);
    expect(t1!.rows[1]![1]).toBe('25.0 ± 5.0');
    expect(t1!.rows[0]![3]).toBe('5.12'); // the paper's column is unchanged
    expect(t2!.rows.map((r) => r[0])).toEqual(['No prior', 'Magnitude', 'SparseGPT']);
    expect(t2!.rows[0]![1]).toBeNull();
    expect(t2!.rows[2]!.slice(1, 4)).toEqual(['7.00 ± 0.50', '5.20 ± 0.20', '20 ± 10 %']);
  });

  it('a verdict per claim: beyond two standard errors or not distinguishable', () => {
    const s = a.summary!;
    expect(s).toMatch(/^Over 3 seeds \(0, 1, 2\)/);
    // 5.2 ± 0.2 vs 7.0 ± 0.5: diff -1.8, SE 0.311: beyond
    expect(s).toMatch(
      /Learned masks beat one-shot SparseGPT \(no weight update\): .*exceeds two standard errors, MaskLLM, SparseGPT prior better/,
    );
    // 5.2 ± 0.2 vs 5.4 ± 0.2: diff -0.2, SE 0.163: within
    expect(s).toMatch(
      /The SparseGPT prior is best: MaskLLM, SparseGPT prior 5\.20 ± 0\.20 vs MaskLLM, magnitude prior 5\.40 ± 0\.20: .*within two standard errors: not distinguishable/,
    );
    expect(s).toMatch(/The SparseGPT prior is best \(no prior clearly worse at short budgets\): .*exceeds two standard errors/);
    expect(s).toMatch(/Magnitude is worst: Wanda .*exceeds two standard errors, Wanda better/);
    expect(s).not.toMatch(/Wanda prior/); // no Wanda-prior run in these results
  });
});

describe('maskllm.transfer and maskllm.ablations aggregates', () => {
  it('transfer: beyond 2 SE against the general mask, within against scratch', () => {
    const a = transferExperiment.aggregate!(
      fabricate({
        B_dense_ppl: [3, 3, 3],
        B_general_ppl: [8, 9, 10],
        B_scratch_ppl: [4.0, 4.2, 4.4],
        B_transfer_ppl: [4.0, 4.1, 4.2],
        A_dense_ppl: [2.9, 3, 3.1],
      }),
      [0, 1, 2],
    );
    expect(a.tables![0]!.rows[2]!.slice(1, 3)).toEqual(['9.0 ± 1.0', null]);
    expect(a.tables![0]!.rows[0]![2]).toBe('3.00 ± 0.10');
    expect(a.summary).toMatch(/Transfer beats the general mask .*exceeds two standard errors, transfer better/);
    expect(a.summary).toMatch(/Transfer beats scratch .*within two standard errors: not distinguishable/);
  });

  it('ablations: the regulariser verdict and one row per variant', () => {
    const a = ablationsExperiment.aggregate!(
      fabricate({
        dense_ppl: [3, 3, 3],
        default_ppl: [5.0, 5.1, 5.2],
        no_reg_ppl: [5.0, 5.2, 5.4],
        hard_ppl: [6, 6.5, 7],
        const_start_ppl: [5, 5.1, 5.2],
        const_end_ppl: [5, 5.1, 5.2],
        default_reg: [100, 110, 120],
      }),
      [0, 1, 2],
    );
    expect(a.tables![0]!.rows).toHaveLength(6);
    expect(a.tables![0]!.rows[1]!.slice(1, 3)).toEqual(['5.10 ± 0.10', '110 ± 10']);
    expect(a.summary).toMatch(/The regulariser improves PPL .*within two standard errors: not distinguishable/);
    expect(a.summary).toMatch(/Default vs hard .*exceeds two standard errors, default better/);
  });
});
