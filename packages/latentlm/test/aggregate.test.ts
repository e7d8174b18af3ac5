/**
 * The experiments' seed aggregates (`aggregate(results, seeds)`, called by the lab for `--seeds`) on
 * fabricated per-seed results: hand-computed mean ± sample std in the claim tables, and verdicts that
 * call a difference only beyond two standard errors (one case above, one within).
 */
import { type ExperimentResult, seedValues, seedVerdict } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { seedCell } from '../src/experiments/common.js';
import { headStepsExperiment, mixedExperiment, ttsExperiment, varianceCollapseExperiment } from '../src/experiments/index.js';

/** Three seeds' results from per-metric value triples. */
function fabricate(values: Record<string, (number | null)[]>, n = 3): ExperimentResult[] {
  return Array.from({ length: n }, (_, i) => ({
    metrics: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v[i] ?? null])),
  }));
}

describe('seed statistics helpers', () => {
  it('seedValues keeps finite numbers only; seedCell is mean ± sample std', () => {
    const rs = fabricate({ a: [0.5, 0.52, 0.54], b: [1, null, Number.NaN] });
    expect(seedValues(rs, 'a')).toEqual([0.5, 0.52, 0.54]);
    expect(seedValues(rs, 'b')).toEqual([1]);
    expect(seedValues(rs, 'missing')).toEqual([]);
    // mean 0.52, std sqrt((0.02^2 + 0 + 0.02^2) / 2) = 0.02
    expect(seedCell(rs, 'a')).toBe('0.520 ± 0.020');
    expect(seedCell(rs, 'a', 100)).toBe('52.0 ± 2.0');
    expect(seedCell(rs, 'b')).toBe('1.000 ± —');
    expect(seedCell(rs, 'missing')).toBe('n/a');
  });

  it('seedVerdict: beyond two standard errors, within, and one seed', () => {
    // diff 0.2, SE sqrt(2 * 0.02^2 / 3) = 0.01633: beyond 2 SE
    const above = seedVerdict([0.5, 0.52, 0.54], [0.3, 0.32, 0.34], 'higher', ['A', 'B']);
    expect(above.significant).toBe(true);
    expect(above.winner).toBe('a');
    expect(above.text).toBe(
      'A 0.520 ± 0.020 vs B 0.320 ± 0.020: difference +0.200 ± 0.016 (SE, n = 3 and 3) exceeds two standard errors, A better (higher is better)',
    );
    // lower is better: B wins
    expect(seedVerdict([0.5, 0.52, 0.54], [0.3, 0.32, 0.34], 'lower', ['A', 'B']).winner).toBe('b');
    // diff 0.02, SE sqrt(0.1^2 / 3 + 0.05^2 / 3) = 0.0645: within 2 SE
    const within = seedVerdict([0.1, 0.2, 0.3], [0.13, 0.18, 0.23], 'higher', ['A', 'B']);
    expect(within.significant).toBe(false);
    expect(within.winner).toBeNull();
    expect(within.text).toMatch(/difference \+0\.0200 ± 0\.065 \(SE, n = 3 and 3\) is within two standard errors: not distinguishable$/);
    const one = seedVerdict([0.5], [0.3], 'higher', ['A', 'B']);
    expect(one.significant).toBe(false);
    expect(one.text).toMatch(/one seed, cannot judge/);
    expect(seedVerdict([], [0.3], 'higher', ['A', 'B']).text).toMatch(/no values to compare/);
  });
});

describe('latentlm.variance-collapse aggregate', () => {
  const rs = fabricate({
    generationCeilingHeldOut: [0, 0, 0],
    'sigma.tokenizerAgreement': [0.97, 0.98, 0.99],
    'gaussian.tokenizerAgreement': [0.9, 0.92, 0.94],
    'sigma.meanNoiseToSignal': [0.8, 0.9, 1.0],
    'gaussian.meanNoiseToSignal': [0.01, 0.02, 0.03],
    'sigma.r0.agreement': [0.97, 0.98, 0.99],
    'gaussian.r0.agreement': [0.9, 0.92, 0.94],
    'sigma.r1.agreement': [0.5, 0.6, 0.7],
    'gaussian.r1.agreement': [0.5, 0.55, 0.6],
    'sigma.cfg2.generationScoreSeen': [0.5, 0.52, 0.54],
    'gaussian.cfg2.generationScoreSeen': [0.3, 0.32, 0.34],
    'sigma.cfg2.generationScoreHeldOut': [0.1, 0.2, 0.3],
    'gaussian.cfg2.generationScoreHeldOut': [0.13, 0.18, 0.23],
    'sigma.cfg2.frechetSeen': [0.2, 0.3, 0.4],
    'gaussian.cfg2.frechetSeen': [0.25, 0.3, 0.35],
  });
  const a = varianceCollapseExperiment.aggregate!(rs, [0, 1, 2]);

  it('tables: mean ± std per cell', () => {
    const [tok, robust, gen] = a.tables!;
    expect(tok!.rows[0]!.slice(0, 2)).toEqual(['sigma-VAE', '0.980 ± 0.010']);
    expect(tok!.rows[1]!.slice(0, 2)).toEqual(['learned-variance VAE', '0.920 ± 0.020']);
    expect(robust!.rows.map((r) => r[0])).toEqual([0, 1]);
    expect(robust!.rows[1]![2]).toBe('0.60 ± 0.10');
    expect(gen!.rows).toHaveLength(2);
    expect(gen!.rows[0]!.slice(0, 5)).toEqual(['sigma-VAE', 2, '0.520 ± 0.020', '0.20 ± 0.10', '0.000 ± 0.000']);
  });

  it('verdicts: seen score beyond 2 SE, held-out score and FD within, the low-agreement tokenizer flagged in red', () => {
    const s = a.summary!;
    expect(s).toMatch(/^Over 3 seeds \(0, 1, 2\)/);
    expect(s).toMatch(/CFG 2, generation score on seen prompts: .*exceeds two standard errors, sigma-VAE better/);
    expect(s).toMatch(/CFG 2, generation score on held-out prompts: .*within two standard errors: not distinguishable/);
    expect(s).toMatch(/CFG 2, Frechet distance on seen prompts: .*within two standard errors: not distinguishable/);
    expect(s).toMatch(/Variance collapse .*exceeds two standard errors, sigma-VAE better/);
    expect(s).toMatch(
      /<span style="color:#c00">\*\*The learned-variance VAE tokenizer \(mean over seeds\) does not read back\*\*: analyzer agreement 0\.920/,
    );
    expect(s).not.toMatch(/The sigma-VAE tokenizer .*does not read back/);
  });
});

describe('latentlm.head-steps aggregate', () => {
  const rs = fabricate({
    cfgScale: [2, 2, 2],
    generationCeilingHeldOut: [0, 0, 0],
    tokenizerAgreement: [0.96, 0.97, 0.98],
    'steps1.generationScoreSeen': [0.1, 0.12, 0.14],
    'steps2.generationScoreSeen': [0.3, 0.32, 0.34],
    'steps5.generationScoreSeen': [0.5, 0.52, 0.54],
    'steps10.generationScoreSeen': [0.51, 0.53, 0.55],
    'steps20.generationScoreSeen': [0.5, 0.52, 0.54],
    'steps1.frechetSeen': [0.9, 1.0, 1.1],
    'steps2.frechetSeen': [0.5, 0.6, 0.7],
    'steps5.frechetSeen': [0.3, 0.35, 0.4],
    'steps10.frechetSeen': [0.28, 0.3, 0.32],
    'steps20.frechetSeen': [0.29, 0.31, 0.33],
  });

  it('saturation is the fewest steps the best setting does not beat beyond 2 SE, on score and FD', () => {
    const a = headStepsExperiment.aggregate!(rs, [0, 1, 2]);
    expect(a.tables![0]!.rows.map((r) => r[0])).toEqual([1, 2, 5, 10, 20]);
    expect(a.tables![0]!.rows[2]![2]).toBe('0.520 ± 0.020');
    expect(a.tables![0]!.rows[0]![5]).toBe('1.00 ± 0.10');
    // score: best mean at 10 steps; 5 (0.52 vs 0.53) is within 2 SE, 2 (0.32) is beyond
    // FD: best mean at 10 steps (0.30); 5 (0.35 ± 0.05) is within 2 SE (SE 0.031), 2 (0.60) is beyond
    expect(a.summary).toMatch(/seen score 5, Frechet distance 5; both: \*\*5 head steps\*\* \(paper: about 5-10; consistent\)/);
    expect(a.summary).toMatch(/Seen score, 2 vs 10 steps \(the best mean\): .*exceeds two standard errors, 10 steps better/);
    expect(a.summary).toMatch(/Frechet distance, 5 vs 10 steps \(the best mean\): .*within two standard errors: not distinguishable/);
  });

  it('one seed judges nothing', () => {
    const a = headStepsExperiment.aggregate!(rs.slice(0, 1), [0]);
    expect(a.summary).toMatch(/^One seed \(seed 0\)/);
    expect(a.summary).toMatch(/Saturation cannot be judged from one seed/);
    expect(a.tables![0]!.rows[2]![2]).toBe('0.5000 ± —');
  });
});

describe('latentlm.mixed aggregate', () => {
  it('claim table cells and verdicts against the memoriser ceilings', () => {
    const rs = fabricate({
      textPpl: [3.1, 3.2, 3.3],
      textOnlyPpl: [3.0, 3.2, 3.4],
      tokenizerAgreement: [0.99, 0.99, 0.99],
      generationScoreSeen: [0.6, 0.62, 0.64],
      generationScoreHeldOut: [0.3, 0.32, 0.34],
      generationCeilingHeldOut: [0.1, 0.12, 0.14],
      captionAccuracySeen: [0.8, 0.8, 0.8],
      captionAccuracyHeldOut: [0.5, 0.6, 0.7],
      captionCeilingHeldOut: [0.55, 0.6, 0.65],
    });
    const a = mixedExperiment.aggregate!(rs, [0, 1, 2]);
    const t = a.tables![0]!;
    expect(t.rows[0]![t.columns.indexOf('text PPL (mixed)')]).toBe('3.20 ± 0.10');
    expect(t.rows[0]![t.columns.indexOf('T2I score (held-out)')]).toBe('0.320 ± 0.020');
    expect(t.rows[0]![t.columns.indexOf('QA exact match (seen)')]).toBe('n/a');
    // PPL 3.2 vs 3.2: within; T2I held-out 0.32 vs ceiling 0.12: beyond; caption 0.6 vs 0.6: within
    expect(a.summary).toMatch(/Joint training costs no text quality .*within two standard errors: not distinguishable/);
    expect(a.summary).toMatch(/Text-to-image composes beyond memorising .*exceeds two standard errors, held-out score better/);
    expect(a.summary).toMatch(/Captioning composes beyond memorising .*within two standard errors: not distinguishable/);
    expect(a.summary).not.toMatch(/color:#c00/);
  });
});

describe('latentlm.tts-frame-rate aggregate', () => {
  it('per-rate mean ± std (WER in percent) and verdicts', () => {
    const rs = fabricate({
      '31.25Hz.ttsWer': [0.2, 0.3, 0.4],
      '31.25Hz.resynthWer': [0.0, 0.0, 0.0],
      '31.25Hz.durationRatio': [1.0, 1.1, 1.2],
      '15.63Hz.ttsWer': [0.25, 0.3, 0.35],
      '15.63Hz.resynthWer': [0.25, 0.3, 0.35],
      '15.63Hz.durationRatio': [0.9, 1.0, 1.1],
    });
    const a = ttsExperiment.aggregate!(rs, [0, 1, 2]);
    const t = a.tables![0]!;
    expect(t.rows.map((r) => r[0])).toEqual(['31.25 Hz', '15.63 Hz']);
    expect(t.rows[0]![3]).toBe('30 ± 10');
    expect(t.rows[0]![5]).toBe('1.10 ± 0.10');
    // 31.25 Hz: TTS 0.3 vs resynthesis 0: diff 0.3, SE 0.0577: beyond; 15.63 Hz: equal: within
    expect(a.summary).toMatch(/31\.25 Hz: TTS WER .*exceeds two standard errors, resynthesis better/);
    expect(a.summary).toMatch(/15\.63 Hz: TTS WER .*within two standard errors: not distinguishable/);
    expect(a.summary).toMatch(/A lower frame rate keeps intelligibility .*15\.63 Hz vs 31\.25 Hz.*within two standard errors/);
  });

  it('head-temperature rows after their rate, each judged against the first temperature', () => {
    const rs = fabricate({
      '15.63Hz.ttsWer': [0.3, 0.35, 0.4],
      '15.63Hz.resynthWer': [0.1, 0.1, 0.1],
      '15.63Hz-tau0.5.ttsWer': [0.1, 0.12, 0.14],
      '15.63Hz-tau0.5.resynthWer': [0.1, 0.1, 0.1],
      '15.63Hz-tau0.7.ttsWer': [0.3, 0.36, 0.4],
      '15.63Hz-tau0.7.resynthWer': [0.1, 0.1, 0.1],
    });
    const a = ttsExperiment.aggregate!(rs, [0, 1, 2]);
    expect(a.tables![0]!.rows.map((r) => r[0])).toEqual(['15.63 Hz', '15.63 Hz, tau 0.7', '15.63 Hz, tau 0.5']);
    // tau 0.5: 0.12 vs 0.35, SE sqrt(0.02^2/3 + 0.05^2/3) = 0.031: beyond; tau 0.7: within
    // paired per seed: tau 0.5 - tau 1 = -0.2, -0.23, -0.26: mean -0.23, std 0.03, SE 0.017: beyond
    expect(a.summary).toMatch(
      /15\.63 Hz, tau 0\.5 against the rate's first head temperature \(TTS WER; lower is better\): paired within seeds -0\.23\d* ± 0\.03\d* \(SE 0\.017\d*, n = 3\): beyond two standard errors, 15\.63 Hz, tau 0\.5 better; unpaired: .*exceeds two standard errors, 15\.63 Hz, tau 0\.5 better/,
    );
    // tau 0.7 - tau 1 = 0, +0.01, 0: mean 0.0033, SE 0.0033: within
    expect(a.summary).toMatch(
      /15\.63 Hz, tau 0\.7 against the rate's first head temperature .*paired within seeds .*within two standard errors: not distinguishable; unpaired: .*within two standard errors/,
    );
    // one rate: no frame-rate comparison among the temperature rows
    expect(a.summary).not.toMatch(/A lower frame rate/);
  });
});
