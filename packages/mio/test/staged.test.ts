/** mio.staged at `tiny`: runs end to end, every metric named and finite, a rerun reuses the sub-runs. */
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@mmlm/core';
import { type ExperimentResult, runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  experiments,
  lossJump,
  STAGED_SETTINGS,
  stagedExperiment,
  stagedSchedules,
  textPretrainSchedule,
} from '../src/experiments/index.js';

const root = mkdtempSync(join(tmpdir(), 'mio-staged-test-'));
let result: ExperimentResult;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
  result = await runExperimentInline(stagedExperiment, { preset: 'tiny', seed: 0, outDir: join(root, 'run'), log: () => {} });
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('mio.staged', () => {
  it('is registered with its presets', () => {
    expect(experiments.map((e) => e.id)).toContain('mio.staged');
    expect(Object.keys(stagedExperiment.presets).sort()).toEqual([
      'small',
      'small-first',
      'small-long',
      'small-long-sft',
      'small-long-textlm',
      'small-mlp',
      'tiny',
      'tiny-textlm',
    ]);
    expect(Object.keys(STAGED_SETTINGS).sort()).toEqual(Object.keys(stagedExperiment.presets).sort());
  });

  it('small-mlp is small-long-sft with the 64-code codec (run as small-long-k64); small is small-mlp with causal image codes', () => {
    expect(STAGED_SETTINGS['small-mlp']).toEqual({ ...STAGED_SETTINGS['small-long-sft'], codec: 'small-12.5hz-k64' });
    expect(STAGED_SETTINGS['small-mlp'].imageCodes.encoder).toBe('mlp');
    const { imageCodes, ...rest } = STAGED_SETTINGS.small;
    const { imageCodes: mlpCodes, ...mlpRest } = STAGED_SETTINGS['small-mlp'];
    expect(rest).toEqual(mlpRest);
    expect(imageCodes.encoder).toBe('causal');
    // the code grid the vocabulary and the decoder see is the same: 8 codes of 64, width 16, decoder hidden 512
    for (const k of ['tokens', 'codes', 'dim', 'hidden', 'imageSize'] as const) expect(imageCodes[k]).toBe(mlpCodes[k]);
  });

  it('small-long-textlm is small-long-sft grown from a text LM; its schedule is one text-only stage', () => {
    const { textPretrain, ...rest } = STAGED_SETTINGS['small-long-textlm'];
    expect(rest).toEqual(STAGED_SETTINGS['small-long-sft']);
    expect(textPretrain).toEqual({ steps: 1000, lr: 1e-3, init: 'mean' });
    const t = textPretrainSchedule(STAGED_SETTINGS['small-long-textlm']);
    expect(t.stages).toHaveLength(1);
    const s = t.stages[0]!;
    expect(s.steps).toBe(1000);
    expect(s.slots.text).toBe(s.batchPerGpu);
    expect(Object.entries(s.slots).filter(([k, v]) => k !== 'text' && v !== 0)).toEqual([]);
    expect(s.lr.peak).toBe(1e-3);
    expect(() => textPretrainSchedule(STAGED_SETTINGS.small)).toThrow(/needs settings.textPretrain/);
  });

  it('tiny-textlm trains the text LM as a shared sub-run and grows both arms from it', async () => {
    const lines: string[] = [];
    const r = await runExperimentInline(stagedExperiment, {
      preset: 'tiny-textlm',
      seed: 0,
      outDir: join(root, 'textlm'),
      log: (l) => lines.push(l),
    });
    expect(r.metrics.textLmSteps).toBe(2);
    expect(Number.isFinite(r.metrics.textLmFinalLoss as number)).toBe(true);
    expect(r.metrics.vocabSize as number).toBeGreaterThan(r.metrics.textVocabSize as number);
    for (const arm of ['staged', 'single']) expect(Number.isFinite(r.metrics[`${arm}_afterIV_captionAccuracySeen`] as number)).toBe(true);
    expect(r.summary).toMatch(/grown from a text LM of 2 steps .* extended from \d+ to \d+ ids \(new rows: mean\)/);
    expect(existsSync(join(root, 'textlm', 'subruns', 'text-lm', 'text_lm.safetensors'))).toBe(true);
    expect(lines.join('\n')).not.toMatch(/interrupted/);
  }, 120_000);

  it('a resumed arm keeps the evaluations and losses of the steps its checkpoint holds', async () => {
    const sameMetrics = (r: ExperimentResult) => {
      const keys = Object.keys(result.metrics).filter((k) => k.startsWith('single_') && k !== 'single_trainSeconds');
      expect(keys.length).toBeGreaterThan(20);
      for (const k of keys) expect(r.metrics[k], k).toEqual(result.metrics[k]);
      expect(Number.isFinite(r.metrics.single_trainSeconds as number) && (r.metrics.single_trainSeconds as number) > 0).toBe(true);
    };
    // 1. the single arm trained to the end but its result was never saved: the rerun trains nothing
    const a = join(root, 'resume-finished');
    cpSync(join(root, 'run'), a, { recursive: true });
    rmSync(join(a, 'subruns', 'single', 'result.json'));
    sameMetrics(await runExperimentInline(stagedExperiment, { preset: 'tiny', seed: 0, outDir: a, log: () => {} }));
    // 2. killed in step 6 of its 6-step stage P, before that step's checkpoint (the evaluations after
    // I and II, at steps 2 and 4, were made; the runner keeps the newest checkpoints, here step 5):
    // the rerun resumes at step 6 and evaluates after III and IV only
    const b = join(root, 'resume-mid');
    cpSync(join(root, 'run'), b, { recursive: true });
    const run = join(b, 'subruns', 'single', 'run');
    rmSync(join(b, 'subruns', 'single', 'result.json'));
    rmSync(join(run, 'stage-IV'), { recursive: true });
    rmSync(join(run, 'stage-metrics.json'));
    const ck = join(run, 'stage-P', 'checkpoints');
    for (const d of readdirSync(ck)) if (/^step-\d+$/.test(d) && Number(d.slice(5)) > 5) rmSync(join(ck, d), { recursive: true });
    const lines: string[] = [];
    sameMetrics(await runExperimentInline(stagedExperiment, { preset: 'tiny', seed: 0, outDir: b, log: (l) => lines.push(l) }));
    // it resumed past step 4: the evaluations after I and II were read back, not made again
    const all = lines.join('\n');
    expect(all).not.toMatch(/single after I \(step 2\)/);
    expect(all).not.toMatch(/single after II \(step 4\)/);
    expect(all).toMatch(/single after III \(step 6\)/);
    expect(all).toMatch(/single after IV \(step 8\)/);
    expect(lines.join('\n')).not.toMatch(/reported as missing/);
  }, 120_000);

  it('small-long-sft is small-long with Stage IV 4x longer', () => {
    const a = STAGED_SETTINGS['small-long'];
    const b = STAGED_SETTINGS['small-long-sft'];
    expect(b).toEqual({ ...a, schedule: { ...a.schedule, steps: [1240, 640, 1610, 2000] } });
    expect(a.schedule.steps[3]).toBe(500);
  });

  it('small-long is small-first with the measured tokenizer recipes and 5x the steps of every stage', () => {
    const a = STAGED_SETTINGS['small-first'];
    const b = STAGED_SETTINGS['small-long'];
    expect(b.imageCodes).toEqual({ ...a.imageCodes, hidden: 512 });
    expect(b.imageTrain).toEqual({ ...a.imageTrain, steps: 6000 });
    expect(b.codec).toBe('small-12.5hz');
    expect(b.codecUtterances).toBe(1000);
    expect(b.world).toEqual({ ...a.world, speechTrain: 16000 });
    expect(b.schedule.steps).toEqual(a.schedule.steps.map((x) => x * 5));
    expect(b.lm).toEqual(a.lm);
  });

  it('names the presets when given an unknown one', async () => {
    await expect(
      runExperimentInline(stagedExperiment, { preset: 'huge', seed: 0, outDir: join(root, 'bad'), log: () => {} }),
    ).rejects.toThrow(
      /unknown preset "huge"; expected one of tiny, tiny-textlm, small, small-mlp, small-first, small-long, small-long-sft, small-long-textlm/,
    );
  });

  it('reports every stage metric for both arms, finite', () => {
    const m = result.metrics;
    for (const arm of ['staged', 'single'])
      for (const stage of ['I', 'II', 'III', 'IV'])
        for (const k of [
          'captionAccuracySeen',
          'captionAccuracyHeldOut',
          'generationScoreSeen',
          'generationScoreHeldOut',
          'asrWer',
          'ttsWer',
        ]) {
          const v = m[`${arm}_after${stage}_${k}`];
          expect(typeof v, `${arm}_after${stage}_${k}`).toBe('number');
          expect(Number.isFinite(v as number), `${arm}_after${stage}_${k} = ${v}`).toBe(true);
        }
    for (const k of [
      'staged_lossJumpII',
      'staged_lossJumpIII',
      'single_lossJumpII',
      'imageReadBackSeen',
      'imageReadBackHeldOut',
      'codecResynthWer',
      'captionCeilingHeldOut',
      'generationCeilingHeldOut',
    ])
      expect(Number.isFinite(m[k] as number), `${k} = ${m[k]}`).toBe(true);
    for (const k of Object.keys(m).filter((k) => /Accuracy|Score|ReadBack|Ceiling/.test(k)))
      expect((m[k] as number) >= 0 && (m[k] as number) <= 1, `${k} = ${m[k]}`).toBe(true);
    expect(result.tables?.[0]?.rows.length).toBe(8);
  });

  it('gives both arms the same steps, the single arm at the final mix', () => {
    const { staged, single } = stagedSchedules(STAGED_SETTINGS.small);
    const steps = (s: typeof staged) => s.stages.reduce((a, x) => a + x.steps!, 0);
    expect(steps(single)).toBe(steps(staged));
    expect(single.stages[0]!.slots).toEqual(staged.stages[2]!.slots);
    expect(single.stages[0]!.prompts.asr).toBe('The transcription of this speech is:');
    expect(staged.stages.map((s) => s.lr.peak)).toEqual([1e-3, 1e-3, 1e-3, 1e-3]);
  });

  it('measures the loss jump at a boundary', () => {
    const losses = [1, 1, 1, 3, 2].map((loss, i) => ({ globalStep: i + 1, loss }));
    expect(lossJump(losses, 3, 2)).toBeCloseTo(2.5 - 1);
  });
});
