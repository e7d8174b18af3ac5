/**
 * The staged runner: exact resume mid-stage (after a graceful stop and after a crash), stage-boundary
 * checkpoints, validation table, fingerprint, no tensor leak, bad input, and the README example.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crossEntropy, initBackend, loadCheckpoint, TransformerDecoder, tf } from '@mmlm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IGNORE_INDEX,
  type PackSample,
  type RunScheduleOptions,
  type RunScheduleResult,
  type RunStepEvent,
  runSchedule,
  type ScheduleInput,
  schedule,
  stageMetricsMarkdown,
  type TaskData,
} from '../src/index.js';

const V = 24;
const I = IGNORE_INDEX;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'mio-runner-test-'));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** 1 layer, width 16, with dropout so that the model's own random stream must resume too. */
const makeModel = () => new TransformerDecoder({ vocabSize: V, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 16, dropout: 0.1, seed: 3 });

const SCHEDULE: ScheduleInput = {
  stages: [
    { name: 'A', steps: 5, gpus: 1, batchPerGpu: 4, slots: { text: 3, speech: 1 }, seqLen: 16, lr: { peak: 1e-2, warmupRatio: 0.2 } },
    {
      name: 'B',
      steps: 4,
      gpus: 1,
      batchPerGpu: 4,
      slots: { text: 1, speech: 2, caption: 1 },
      seqLen: 16,
      lr: { peak: 5e-3, warmupRatio: 0.25 },
      loss: 'assistantOnly',
      format: 'chat',
    },
  ],
};

/** Toy tasks over one vocabulary: text ids [0, 8), speech [8, 16), captions: prompt [16, 20) then answer [20, 24). */
function makeData(valLog?: { task: string; index: number; sample: PackSample }[]): TaskData {
  const note = (task: string, index: number, split: string, s: PackSample) => {
    if (split === 'validation') valLog?.push({ task, index, sample: s });
    return s;
  };
  return {
    text: (index, rng, ctx) => {
      const start = rng.int(0, 8);
      const ids = Array.from({ length: rng.int(3, 9) }, (_, k) => (start + k) % 8);
      return note('text', index, ctx.split, { ids, labels: ids });
    },
    speech: (index, rng, ctx) => {
      const start = rng.int(0, 8);
      const ids = Array.from({ length: rng.int(4, 10) }, (_, k) => 8 + ((start + 2 * k) % 8));
      return note('speech', index, ctx.split, { ids, labels: ids });
    },
    caption: (index, rng, ctx) => {
      const c = rng.int(0, 3);
      return note('caption', index, ctx.split, { ids: [16, 17 + c, 20 + c, 20 + c, 23], labels: [I, I, 20 + c, 20 + c, 23] });
    },
  };
}

const opts = (over: Partial<RunScheduleOptions> & Pick<RunScheduleOptions, 'dir' | 'model'>): RunScheduleOptions => ({
  schedule: SCHEDULE,
  data: makeData(),
  seed: 1,
  valSamplesPerTask: 3,
  checkpointEvery: 2,
  progress: 'none',
  log: () => {},
  ...over,
});

const weights = (m: TransformerDecoder) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, Array.from(t.dataSync())]));
const key = (e: RunStepEvent) => `${e.stage}/${e.step}`;

// the uninterrupted run, shared by the tests below
let fullDir: string;
let fullModel: TransformerDecoder;
let full: RunScheduleResult;
const fullVal: { task: string; index: number; sample: PackSample }[] = [];
const fullLog: string[] = [];
const tensorsAtStep: number[] = [];
let tensorsBefore = 0;
let tensorsAfter = 0;

beforeAll(async () => {
  fullDir = tmp();
  fullModel = makeModel();
  tensorsBefore = tf.memory().numTensors;
  full = await runSchedule(
    opts({
      dir: fullDir,
      model: fullModel,
      data: makeData(fullVal),
      log: (l) => fullLog.push(l),
      onStep: () => {
        tensorsAtStep.push(tf.memory().numTensors);
      },
    }),
  );
  tensorsAfter = tf.memory().numTensors;
});

describe('runSchedule', () => {
  it('runs every stage, prints the resolved schedule and records each step', () => {
    expect(full.interrupted).toBe(false);
    expect(full.steps.map(key)).toEqual(['A/1', 'A/2', 'A/3', 'A/4', 'A/5', 'B/1', 'B/2', 'B/3', 'B/4']);
    expect(full.steps.map((e) => e.globalStep)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(fullLog).toContain('| A | 5 | 1 | 0:3:0:1 | 25.0% | 4 | 16 | 0.01 | 0.2 | allTokens | Transcribe this speech: |');
    // every step holds the stage's exact mixture, in the sampler's order
    for (const e of full.steps) {
      const count = (t: string) => e.tasks.filter((x) => x === t).length;
      expect(e.stage === 'A' ? [count('text'), count('speech')] : [count('text'), count('speech'), count('caption')]).toEqual(
        e.stage === 'A' ? [3, 1] : [1, 2, 1],
      );
      expect(Number.isFinite(e.loss) && e.loss > 0).toBe(true);
    }
    // sample indices count each task over the whole run: stage B's text continues after A's 5 x 3
    expect(full.steps.filter((e) => e.stage === 'B').map((e) => e.indices[e.tasks.indexOf('text')])).toEqual([15, 16, 17, 18]);
    // the training changed the model: the loss went down over stage A
    expect(full.steps[4]!.loss).toBeLessThan(full.steps[0]!.loss);
  });

  it('resumes mid-stage, after a graceful stop and after a crash, with the same batches and bit-identical losses', async () => {
    const dir = tmp();
    // 1. stopped after step 3 of stage A (AbortSignal: the step finishes and is checkpointed)
    const ctrl = new AbortController();
    const r1 = await runSchedule(
      opts({ dir, model: makeModel(), signal: ctrl.signal, onStep: (e) => void (e.globalStep === 3 && ctrl.abort()) }),
    );
    expect(r1.interrupted).toBe(true);
    expect(r1.steps.map(key)).toEqual(['A/1', 'A/2', 'A/3']);
    expect(r1.metrics.rows).toEqual([]);
    // 2. killed in step 1 of stage B, before any checkpoint of B: the rerun starts B from A's boundary checkpoint
    const killAt = async (stage: string, step: number) => {
      const seen: RunStepEvent[] = [];
      await expect(
        runSchedule(
          opts({
            dir,
            model: makeModel(),
            onStep: (e) => {
              seen.push(e);
              if (e.stage === stage && e.step === step) throw new Error('simulated kill');
            },
          }),
        ),
      ).rejects.toThrow('simulated kill');
      return seen;
    };
    const r2 = await killAt('B', 1);
    expect(r2.map(key)).toEqual(['A/4', 'A/5', 'B/1']);
    // 3. killed in step 3 of stage B, before that step's checkpoint (the newest is B step 2)
    const r3 = await killAt('B', 3);
    expect(r3.map(key)).toEqual(['B/1', 'B/2', 'B/3']);
    // 4. the rerun continues from stage B's step-2 checkpoint
    const val: { task: string; index: number; sample: PackSample }[] = [];
    const r4 = await runSchedule(opts({ dir, model: makeModel(), data: makeData(val) }));
    expect(r4.interrupted).toBe(false);
    expect(r4.steps.map(key)).toEqual(['B/3', 'B/4']);

    const last = new Map<string, RunStepEvent>();
    for (const e of [...r1.steps, ...r2, ...r3, ...r4.steps]) last.set(key(e), e);
    const pieced = full.steps.map((e) => last.get(key(e)));
    expect(pieced.map((e) => e?.tasks)).toEqual(full.steps.map((e) => e.tasks));
    expect(pieced.map((e) => e?.indices)).toEqual(full.steps.map((e) => e.indices));
    for (const [i, e] of full.steps.entries()) expect(Object.is(pieced[i]!.loss, e.loss), `${key(e)} loss`).toBe(true);
    expect(pieced.map((e) => e?.gradNorm)).toEqual(full.steps.map((e) => e.gradNorm));
    // the steps killed mid-way were redone identically
    expect(r3[0]).toEqual(r2[2]);
    expect(r4.steps[0]).toEqual(r3[2]);
    expect(r4.metrics).toEqual(full.metrics);
    // the loss curve over all four calls, read back from the stages' files, is the uninterrupted one
    expect(full.history.map((h) => [h.stage, h.step, h.globalStep])).toEqual(full.steps.map((e) => [e.stage, e.step, e.globalStep]));
    for (const [i, e] of full.steps.entries()) expect(Object.is(full.history[i]!.loss, e.loss), `${key(e)} history`).toBe(true);
    expect(r4.history).toEqual(full.history);
    expect(r4.trainSeconds).toBeGreaterThan(0);
    expect(Number.isFinite(r4.trainSeconds)).toBe(true);
    // the batch order is the sampler's, not a fixed one: the comparison above can fail
    expect(new Set(full.steps.filter((e) => e.stage === 'A').map((e) => e.tasks.join())).size).toBeGreaterThan(1);
    // the validation set is the same fixed, seeded one
    expect(val).toEqual(fullVal.filter((v) => val.some((w) => w.task === v.task && w.index === v.index)));
    expect(val.length).toBe(9);
  });

  it('writes a checkpoint at every stage boundary; rerunning a finished run trains nothing and returns the same metrics', async () => {
    expect(existsSync(join(fullDir, 'stage-A', 'checkpoints', 'step-00000005', 'state.json'))).toBe(true);
    expect(existsSync(join(fullDir, 'stage-B', 'checkpoints', 'step-00000004', 'state.json'))).toBe(true);
    expect(full.metrics.rows.map((r) => r.checkpoint)).toEqual(['stage-A/checkpoints/step-00000005', 'stage-B/checkpoints/step-00000004']);
    const again = makeModel();
    const before = tf.memory().numTensors;
    const stepped: RunStepEvent[] = [];
    const r = await runSchedule(opts({ dir: fullDir, model: again, onStep: (e) => void stepped.push(e) }));
    expect(stepped).toEqual([]);
    expect(r.steps).toEqual([]);
    expect(r.interrupted).toBe(false);
    expect(r.metrics).toEqual(full.metrics);
    // nothing trained in this call, yet the whole loss curve and its training time come back
    expect(r.history).toEqual(full.history);
    expect(r.trainSeconds).toBeCloseTo(full.trainSeconds, 9);
    // the final boundary checkpoint was loaded: the fresh model now holds the trained weights
    expect(weights(again)).toEqual(weights(fullModel));
    expect(tf.memory().numTensors).toBe(before);
    const untrained = makeModel();
    expect(weights(untrained)).not.toEqual(weights(fullModel));
    untrained.dispose();
  });

  it('logs per-task validation loss at every stage boundary: one row per stage, one column per task', async () => {
    const m = full.metrics;
    expect(m.tasks).toEqual(['text', 'speech', 'caption']);
    expect(m.rows.map((r) => [r.stage, r.globalStep])).toEqual([
      ['A', 5],
      ['B', 9],
    ]);
    for (const r of m.rows) expect(Object.keys(r.valLoss)).toEqual(m.tasks);
    expect(m.rows[1]!.valLoss.caption).not.toBe(m.rows[0]!.valLoss.caption);
    const file = JSON.parse(readFileSync(join(fullDir, 'stage-metrics.json'), 'utf8'));
    expect({ tasks: file.tasks, rows: file.rows }).toEqual(m);
    expect(stageMetricsMarkdown(m).split('\n')).toHaveLength(4);
    expect(stageMetricsMarkdown(m).split('\n')[0]).toBe('| after stage | step | text | speech | caption |');

    // the metric: mean next-token loss per target token, each validation sample run on its own
    const meanLoss = (model: TransformerDecoder, samples: PackSample[]) =>
      tf.tidy(() => {
        let sum = 0;
        let n = 0;
        for (const s of samples) {
          const ids = Array.from(s.ids);
          const labels = Array.from(s.labels ?? s.ids);
          const targets = ids.map((_, t) => (t + 1 < ids.length ? labels[t + 1]! : I));
          const logits = model.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
          sum += crossEntropy(logits, tf.tensor2d([targets], [1, ids.length], 'int32'), {
            ignoreIndex: I,
            reduction: 'sum',
          }).dataSync()[0]!;
          n += targets.filter((y) => y !== I).length;
        }
        return sum / n;
      });
    const afterA = makeModel();
    const ck = await loadCheckpoint(join(fullDir, m.rows[0]!.checkpoint));
    afterA.loadStateDict(ck.weights);
    for (const t of Object.values(ck.weights)) t.dispose();
    for (const t of ck.optimizer ? Object.values(ck.optimizer.tensors) : []) t.dispose();
    afterA.eval();
    fullModel.eval();
    for (const task of m.tasks) {
      const samples = fullVal.filter((v) => v.task === task).map((v) => v.sample);
      expect(samples).toHaveLength(3);
      expect(m.rows[0]!.valLoss[task]).toBeCloseTo(meanLoss(afterA, samples), 5);
      expect(m.rows[1]!.valLoss[task]).toBeCloseTo(meanLoss(fullModel, samples), 5);
    }
    fullModel.train();
    afterA.dispose();
  });

  it('refuses a rerun with other options, naming what differs', async () => {
    const stepped: RunStepEvent[] = [];
    await expect(runSchedule(opts({ dir: fullDir, model: makeModel(), seed: 2, onStep: (e) => void stepped.push(e) }))).rejects.toThrow(
      /run\.json belongs to a run with other options .*seed: expected 1 \(stored\), got 2/,
    );
    const longer = structuredClone(SCHEDULE);
    longer.stages[0]!.steps = 6;
    await expect(runSchedule(opts({ dir: fullDir, model: makeModel(), schedule: longer }))).rejects.toThrow(
      'schedule.stages.0.steps: expected 5 (stored), got 6',
    );
    const wider = new TransformerDecoder({ vocabSize: V, dim: 32, numLayers: 1, numHeads: 2, maxSeqLen: 16, dropout: 0.1, seed: 3 });
    await expect(runSchedule(opts({ dir: fullDir, model: wider }))).rejects.toThrow('model.config.dim: expected 16 (stored), got 32');
    wider.dispose();
    expect(stepped).toEqual([]);
  });

  it('leaks no tensors: the count is the same at every step and after the run', () => {
    expect(tensorsAtStep).toHaveLength(9);
    expect(new Set(tensorsAtStep).size).toBe(1);
    expect(tensorsAfter).toBe(tensorsBefore);
  });

  it('rejects bad input with errors that name the thing, the expected and the actual value', async () => {
    const run = (over: Partial<RunScheduleOptions>) => runSchedule(opts({ dir: tmp(), model: makeModel(), ...over }));
    const data = makeData();
    await expect(run({ data: { ...data, text: () => ({ ids: Array.from({ length: 17 }, () => 1) }) } })).rejects.toThrow(
      `data["text"] train sample 0 (stage A, step 1): the sequence has 17 tokens, more than stage A's seqLen 16`,
    );
    await expect(run({ schedule: { stages: [] } })).rejects.toThrow(
      'MIO schedule config: stages: Too small: expected array to have >=1 items (got [])',
    );
    const unknown = structuredClone(SCHEDULE);
    unknown.stages[0]!.slots = { text: 3, video: 1 };
    await expect(run({ schedule: unknown })).rejects.toThrow(
      'stage A has 1 slots of task "video", but data has no provider for it (providers: text, speech, caption)',
    );
    await expect(run({ data: { ...data, speech: () => ({ ids: [8, 30] }) } })).rejects.toThrow(
      /data\["speech"\] train sample \d+ \(stage A, step 1\): id 30 at position 1 is not a token of the model's vocabulary \[0, 24\)/,
    );
    await expect(run({ data: { ...data, caption: () => ({ ids: [16, 17, 20] }) } })).rejects.toThrow(
      // the validation set is drawn at the first boundary, each task from the first stage that trains it
      /data\["caption"\] validation sample 0: stage B has loss 'assistantOnly', so samples need labels/,
    );
    const labelsOnlyInA: TaskData = {
      ...data,
      text: (_i, _r, ctx) => (ctx.stage.name === 'A' ? { ids: [1, 2, 3], labels: [1, 2, 3] } : { ids: [1, 2, 3] }),
    };
    await expect(run({ data: labelsOnlyInA })).rejects.toThrow(
      /data\["text"\] train sample 15 \(stage B, step 1\): stage B has loss 'assistantOnly', so samples need labels/,
    );
    await expect(run({ data: { ...data, text: () => ({ ids: [1, 2, 3], labels: [1, 2] }) } })).rejects.toThrow(
      'labels must be 3 values, one per id, got 2 values',
    );
    const noSteps = structuredClone(SCHEDULE);
    noSteps.stages[1]!.steps = null;
    await expect(run({ schedule: noSteps })).rejects.toThrow('stage B has steps null (the paper gives none); set steps to run it');
    const short = new TransformerDecoder({ vocabSize: V, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 8, seed: 3 });
    await expect(run({ model: short })).rejects.toThrow("stage A packs rows of seqLen 16 tokens, but the model's maxSeqLen is 8");
    short.dispose();
    await expect(run({ seed: 1.5 })).rejects.toThrow('seed must be an integer, got 1.5');
    await expect(run({ dir: '' })).rejects.toThrow('dir must be a non-empty folder path, got ""');
  });

  it('keeps the main entry free of Node built-ins at module level', () => {
    const src = readFileSync(new URL('../src/runner.ts', import.meta.url), 'utf8');
    expect(src).not.toMatch(/from 'node:/);
    expect(src).not.toMatch(/@mmlm\/(seed|liquid|latentlm|maskllm)/);
  });
});

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

it('the README shows the runner example verbatim', () => {
  const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const body = self.split('// --- README runner example start ---\n')[1]!.split('  // --- README runner example end ---')[0]!;
  const snippet = body
    .split('\n')
    .map((l) => l.replace(/^ {2}/, ''))
    .join('\n')
    .trimEnd();
  expect(readme).toContain(snippet);
});

it('README runner example', async () => {
  // --- README runner example start ---
  const model = new TransformerDecoder({ vocabSize: 16, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 16, seed: 0 });
  const data: TaskData = {
    // one sampler per task: (index, rng, ctx) -> { ids, labels? }, at most the stage's seqLen tokens
    text: (_index, rng) => ({ ids: Array.from({ length: rng.int(3, 9) }, (_, k) => k % 8) }), // ids [0, 8)
    speech: (_index, rng) => ({ ids: Array.from({ length: rng.int(3, 9) }, (_, k) => 8 + ((2 * k) % 8)) }), // ids [8, 16)
  };
  const result = await runSchedule({
    schedule: schedule({
      stages: [
        { name: 'I', steps: 4, gpus: 1, batchPerGpu: 4, slots: { text: 3, speech: 1 }, seqLen: 16, lr: { peak: 1e-2 } },
        { name: 'II', steps: 4, gpus: 1, batchPerGpu: 4, slots: { text: 1, speech: 3 }, seqLen: 16, lr: { peak: 1e-2 } },
      ],
    }),
    model, // trained in place
    data,
    dir: mkdtempSync(join(tmpdir(), 'mio-run-')), // rerun with the same options and dir to resume
    seed: 0,
    progress: 'none',
    log: () => {}, // default console.log: the resolved schedule, progress, validation per stage
  });
  const table = stageMetricsMarkdown(result.metrics); // rows: after I, after II; columns: text, speech
  // --- README runner example end ---
  expect(result.metrics.tasks).toEqual(['text', 'speech']);
  expect(result.metrics.rows.map((r) => r.stage)).toEqual(['I', 'II']);
  expect(table.split('\n')).toHaveLength(4);
  expect(result.steps).toHaveLength(8);
  model.dispose();
  rmSync(result.dir, { recursive: true, force: true });
});
