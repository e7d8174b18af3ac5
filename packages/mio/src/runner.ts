/**
 * MIO's staged training runner (§2.2, Table 9): runs the stages of a Schedule in order on one
 * decoder (core's TransformerDecoder), each stage its own run of core's trainLoop:
 *   per step   the stage's MixtureSampler draws the batch's task slots, each slot's data provider
 *              gives one sequence, packSamples packs them into rows of the stage's seqLen with
 *              the block-diagonal causal mask, loss = packed next-token cross-entropy, mean over
 *              the batch's target tokens (= the per-sample losses summed, over the token count);
 *              global-norm clip at lr.gradClip, AdamW at stageLr (warmup + cosine, per stage).
 *   per stage  a fresh AdamW (each stage restarts its own warmup and cosine, as Table 9's stages
 *              are separate runs; not carrying the moments over is ours), checkpoints every
 *              `checkpointEvery` steps, the stage-boundary checkpoint at its last step, then the
 *              mean token loss per task on a fixed, seeded validation set.
 *
 * Run folder `dir`:
 *   run.json                                 the options' fingerprint; a rerun with other options is refused
 *   stage-<name>/checkpoints/step-<N>/       core checkpoints; step-<steps> is the stage-boundary checkpoint
 *   stage-<name>/train.jsonl                 per-step loss and lr (core trainLoop)
 *   stage-metrics.json                       validation loss per task at every stage boundary
 *
 * Exact resume: every draw is a pure function of (seed, stage, task, index) except the sampler's,
 * and the sampler's state is checkpointed. A step draws devices x batchPerGpu slots, whole bags of
 * the sampler, so the bag is empty between steps and its state is its Rng: a named stream in every
 * checkpoint. A training sample's index counts that task's samples over the whole run, so it is
 * fixed by (stage, step, slot). Rerunning a killed run with the same options continues from the
 * newest checkpoint and gives the same batches and bit-identical losses; a finished stage is
 * loaded from its boundary checkpoint, never retrained.
 *
 * File IO goes through core's checkpoint helpers and `node:fs/promises`, imported when a run
 * starts through a specifier bundlers leave alone, so loading this module needs no Node built-ins
 * and the package's main entry bundles for a browser; `runSchedule` itself needs Node (it keeps a
 * run folder) and says so in a browser.
 */
import {
  AdamW,
  type AdamWOptions,
  clipGradNorm,
  listCheckpoints,
  loadCheckpoint,
  type ProgressMode,
  paramGroups,
  Rng,
  type RngLike,
  restoreCheckpoint,
  stableHash32,
  type TransformerDecoder,
  tf,
  trainLoop,
  valueAndGrads,
  writeFileAtomic,
} from '@mmlm/core';
import { IGNORE_INDEX, type PackedBatch, type PackSample, packedLoss, packSamples } from './pack.js';
import {
  MixtureSampler,
  schedule as parseSchedule,
  type Schedule,
  type ScheduleInput,
  type Stage,
  scheduleTable,
  stageLr,
} from './schedule.js';

/** Where a requested sample goes. */
export interface SampleContext {
  task: string;
  /** `train`: a training slot; `validation`: one of the task's fixed validation samples. */
  split: 'train' | 'validation';
  /**
   * train: the task's running sample count over the whole run (0, 1, 2, ... across all stages);
   * validation: 0 .. valSamplesPerTask - 1.
   */
  index: number;
  /** The training stage; for validation the first stage whose slots hold the task (its format and prompts). */
  stage: Stage;
  /** 1-based step inside the stage; 0 for validation. */
  step: number;
}

/**
 * One task's data: the sample at `index`, drawn with `rng` (a stream of its own per task and index,
 * so the same call always gives the same sample). Returns ids and, optionally, per-token labels:
 * IGNORE_INDEX where a token carries no loss (Stage IV: everything but assistant responses, as
 * chatExample gives), default the ids (Eq. 1: loss on every token). At most the stage's seqLen tokens.
 */
export type TaskSampler = (index: number, rng: Rng, ctx: SampleContext) => PackSample;

/** A data provider per task: every task with slots in the schedule needs one. */
export type TaskData = Readonly<Record<string, TaskSampler>>;

export interface RunScheduleOptions {
  /** The schedule (validated here with ScheduleSchema); every stage needs `steps`. */
  schedule: Schedule | ScheduleInput;
  /** The decoder, trained in place; maxSeqLen >= every stage's seqLen. */
  model: TransformerDecoder;
  data: TaskData;
  /** Run folder (layout in the module comment). */
  dir: string;
  /** Seeds the task sampler, the data streams and the validation sets (the model's init is the model's). */
  seed: number;
  /** Validation samples per task (default 8). */
  valSamplesPerTask?: number;
  /** Checkpoint every N steps inside a stage (default: about 10 per stage); the stage's last step always is. */
  checkpointEvery?: number;
  /** AdamW's other hyperparameters (the paper gives none: torch defaults; no decay on vectors, core paramGroups). */
  adamw?: Omit<AdamWOptions, 'lr'>;
  /** Identity of the data (name, version, hash): part of the fingerprint, since functions cannot be compared. */
  dataKey?: string;
  /** Text lines: the resolved schedule, resume notes, progress lines, stage results. Default console.log. */
  log?: (line: string) => void;
  /** After every optimizer step (an error thrown here stops the run as a crash would). */
  onStep?: (e: RunStepEvent) => void | Promise<void>;
  /** trainLoop's progress display (default 'auto': a bar on a terminal, lines through `log` otherwise). */
  progress?: ProgressMode;
  /** Stop after the current step, checkpoint, and return `interrupted: true` (as SIGINT does). */
  signal?: AbortSignal;
  /** Prefix of log lines (default 'mio-runner'). */
  name?: string;
}

/** One optimizer step. */
export interface RunStepEvent {
  stage: string;
  stageIndex: number;
  /** 1-based step inside the stage. */
  step: number;
  stageSteps: number;
  /** 1-based step over the whole run. */
  globalStep: number;
  /** Mean next-token loss over the batch's target tokens. */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The batch's slots in the sampler's order, and each slot's sample index. */
  tasks: string[];
  indices: number[];
  /** Packed rows of stage.seqLen tokens, and target tokens. */
  rows: number;
  targets: number;
}

/** Validation at one stage boundary. */
export interface StageMetricsRow {
  stage: string;
  /** Steps of the run up to and including this stage. */
  globalStep: number;
  /** Mean next-token loss per target token (nats) on each task's validation set. */
  valLoss: Record<string, number>;
  /** The stage-boundary checkpoint, relative to dir. */
  checkpoint: string;
}

/** Rows: stage boundaries in order; columns: tasks in order of first appearance in the schedule. */
export interface StageMetricsTable {
  tasks: string[];
  rows: StageMetricsRow[];
}

export interface RunScheduleResult {
  /** Every finished stage's row (those of earlier calls too). */
  metrics: StageMetricsTable;
  /** The steps this call ran (a rerun after a crash repeats those after the newest checkpoint). */
  steps: RunStepEvent[];
  /**
   * Every step's loss over all calls on this folder, read back from the stages' `train.jsonl` (which a
   * resumed stage trims to its checkpoint): the whole run's loss curve even when this call resumed
   * it or had nothing left to train.
   */
  history: RunHistoryStep[];
  /**
   * Training seconds of the steps in `history`, summed over the calls that ran them (a call's time
   * up to each step; the steps a crash made redo count once, the redone time only).
   */
  trainSeconds: number;
  /** Stopped by `signal` or SIGINT before the last stage finished. */
  interrupted: boolean;
  /** Hash of the options, as stored in dir/run.json. */
  fingerprint: string;
  /** The run folder. */
  dir: string;
}

/** One step of a run's loss curve (`RunScheduleResult.history`). */
export interface RunHistoryStep {
  stage: string;
  /** Step within the stage, 1-based. */
  step: number;
  /** Step over the whole schedule, 1-based. */
  globalStep: number;
  loss: number;
}

const WHO = 'runSchedule';
const RUN_FILE = 'run.json';
const METRICS_FILE = 'stage-metrics.json';
/** Validation rows per forward pass. */
const EVAL_ROWS = 8;
const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Runs (or resumes) the schedule; see the module comment. */
export async function runSchedule(opts: RunScheduleOptions): Promise<RunScheduleResult> {
  const plan = resolve(opts);
  const { sch, model, dir, tasks } = plan;
  const name = opts.name ?? 'mio-runner';
  const log = opts.log ?? ((l: string) => console.log(l));
  const fs = await nodeFs();

  // ---- the options' fingerprint: a folder holds one run
  const fp = fingerprint(opts, plan);
  const hash = stableHash32(canonicalJson(fp)).toString(16).padStart(8, '0');
  const stored = await readJson(fs, path(dir, RUN_FILE));
  if (stored === undefined)
    await writeFileAtomic(path(dir, RUN_FILE), `${JSON.stringify({ format: 'mio-runner', version: 1, hash, fingerprint: fp }, null, 1)}\n`);
  else {
    const s = stored as { hash?: unknown; fingerprint?: unknown };
    if (s.hash !== hash) {
      const diffs: string[] = [];
      diffJson(s.fingerprint, JSON.parse(JSON.stringify(fp)), '', diffs);
      throw new Error(
        `${WHO}: ${path(dir, RUN_FILE)} belongs to a run with other options (fingerprint ${String(s.hash)}, this call ${hash}): ${
          diffs.length ? diffs.join('; ') : 'the stored fingerprint is unreadable'
        }. Rerun with that run's options, or use another dir (or delete this one) to start a new run`,
      );
    }
  }

  log(`${name}: resolved schedule (${sch.stages.length} stages, seed ${opts.seed}, run ${hash} in ${dir})`);
  for (const line of scheduleTable(sch).split('\n')) log(line);
  log(
    `${name}: per step ${sch.stages.map((s, i) => `${s.name} ${plan.perStep[i]} sequences in rows of ${s.seqLen}`).join(', ')}; validation ${plan.valN} samples per task (${tasks.join(', ')})`,
  );

  // ---- stages already finished: a row in stage-metrics.json and a checkpoint at their last step
  const metrics: StageMetricsTable = { tasks, rows: [] };
  const saved = (await readJson(fs, path(dir, METRICS_FILE))) as { rows?: StageMetricsRow[] } | undefined;
  for (const [i, s] of sch.stages.entries()) {
    const row = saved?.rows?.[i];
    if (row?.stage !== s.name || lastStep(stageRoot(dir, s)) !== s.steps) break;
    metrics.rows.push(row);
  }
  const done = metrics.rows.length;
  const wasTraining = model.training;
  const moduleRngs = Object.fromEntries(model.namedRngs().map(([k, r]) => [`module.${k}`, r as RngLike]));
  if (done > 0 && (done === sch.stages.length || lastStep(stageRoot(dir, sch.stages[done]!)) === null)) {
    const s = sch.stages[done - 1]!;
    const ck = await loadCheckpoint(path(dir, metrics.rows[done - 1]!.checkpoint));
    restoreCheckpoint(ck, { model, rngs: moduleRngs });
    log(
      `${name}: stages ${sch.stages
        .slice(0, done)
        .map((x) => x.name)
        .join(', ')} are finished; loaded stage ${s.name}'s boundary checkpoint`,
    );
  }

  const valSets = new Map<string, PackSample[]>();
  const steps: RunStepEvent[] = [];
  try {
    for (let i = done; i < sch.stages.length; i++) {
      const s = sch.stages[i]!;
      const interrupted = await runStage(opts, plan, i, name, log, steps);
      if (interrupted) return { metrics, steps, interrupted: true, fingerprint: hash, dir, ...(await readHistory(fs, plan)) };
      // ---- stage boundary: validation, one row per stage
      model.eval();
      const valLoss: Record<string, number> = {};
      for (const t of tasks) valLoss[t] = meanTokenLoss(model, validationSet(plan, valSets, t), plan.evalRowLength);
      const row: StageMetricsRow = {
        stage: s.name,
        globalStep: plan.stepOffset[i]! + s.steps!,
        valLoss,
        checkpoint: `stage-${s.name}/checkpoints/${stepDir(s.steps!)}`,
      };
      metrics.rows.push(row);
      await writeFileAtomic(
        path(dir, METRICS_FILE),
        `${JSON.stringify({ format: 'mio-stage-metrics', version: 1, fingerprint: hash, ...metrics }, null, 1)}\n`,
      );
      log(
        `${name}: stage ${s.name} done at step ${row.globalStep}; validation loss ${tasks.map((t) => `${t} ${valLoss[t]!.toFixed(4)}`).join(', ')}`,
      );
      if (opts.signal?.aborted && i + 1 < sch.stages.length)
        return { metrics, steps, interrupted: true, fingerprint: hash, dir, ...(await readHistory(fs, plan)) };
    }
  } finally {
    model.train(wasTraining);
  }
  return { metrics, steps, interrupted: false, fingerprint: hash, dir, ...(await readHistory(fs, plan)) };
}

/** The validation table as markdown: one row per stage boundary, one column per task. */
export function stageMetricsMarkdown(t: StageMetricsTable, digits = 4): string {
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [
    line(['after stage', 'step', ...t.tasks]),
    line(['---', '---', ...t.tasks.map(() => '---')]),
    ...t.rows.map((r) => line([r.stage, String(r.globalStep), ...t.tasks.map((k) => r.valLoss[k]?.toFixed(digits) ?? '-')])),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// One stage

async function runStage(
  opts: RunScheduleOptions,
  plan: Plan,
  i: number,
  name: string,
  log: (l: string) => void,
  out: RunStepEvent[],
): Promise<boolean> {
  const { model } = plan;
  const s = plan.sch.stages[i]!;
  const steps = s.steps!;
  const perStep = plan.perStep[i]!;
  const perTask = plan.perTaskPerStep[i]!;
  const offset = plan.indexOffset[i]!;
  const root = new Rng(opts.seed);
  const samplerRng = root.fork(`sampler/${s.name}`);
  const sampler = new MixtureSampler(s.slots, samplerRng);
  const optimizer = new AdamW(paramGroups(model), { ...opts.adamw, lr: stageLr(s, 0) });
  const pending = new Map<number, Omit<RunStepEvent, 'loss'>>();
  model.train();
  try {
    const r = await trainLoop({
      steps,
      model,
      optimizer,
      rngs: { sampler: samplerRng },
      config: { stage: s.name },
      checkpointDir: path(stageRoot(plan.dir, s)),
      checkpointEvery: opts.checkpointEvery ?? Math.max(1, Math.ceil(steps / 10)),
      resume: true,
      metricsPath: path(plan.dir, `stage-${s.name}`, 'train.jsonl'),
      lr: (t) => stageLr(s, t - 1),
      progress: opts.progress ?? 'auto',
      name: `${name} stage ${s.name}`,
      log,
      signal: opts.signal,
      step: (t) => {
        const tasks = sampler.nextBatch(perStep);
        const bag = sampler.getState().bag.length;
        if (bag !== 0)
          throw new Error(`${WHO}: internal: the sampler's bag holds ${bag} slots after step ${t} of stage ${s.name}, expected 0`);
        const seen: Record<string, number> = {};
        const indices = tasks.map((task) => {
          const k = seen[task] ?? 0; // the task's k-th slot in this step
          seen[task] = k + 1;
          return offset[task]! + (t - 1) * perTask[task]! + k;
        });
        const samples = tasks.map((task, k) => {
          const index = indices[k]!;
          const ctx: SampleContext = { task, split: 'train', index, stage: s, step: t };
          const where = `data["${task}"] train sample ${index} (stage ${s.name}, step ${t})`;
          return checkSample(plan.data[task]!(index, plan.trainRng(task).fork(index), ctx), where, s, plan.vocabSize);
        });
        const batch = packSamples(samples, { rowLength: s.seqLen });
        const targets = countTargets(batch);
        if (targets === 0)
          throw new Error(
            `${WHO}: step ${t} of stage ${s.name} has no loss targets (every label of its ${perStep} samples is IGNORE_INDEX)`,
          );
        const lr = stageLr(s, t - 1);
        const { loss, gradNorm } = tf.tidy(() => {
          const { loss, grads } = valueAndGrads(model, () => packedLoss(model, batch, 'mean'));
          const norm = clipGradNorm(grads, s.lr.gradClip);
          optimizer.setLr(lr);
          optimizer.step(grads);
          return { loss: loss.dataSync()[0]!, gradNorm: norm.dataSync()[0]! };
        });
        pending.set(t, {
          stage: s.name,
          stageIndex: i,
          step: t,
          stageSteps: steps,
          globalStep: plan.stepOffset[i]! + t,
          lr,
          gradNorm,
          tasks,
          indices,
          rows: batch.ids.length,
          targets,
        });
        return loss;
      },
      onStep: async (t, loss) => {
        const e: RunStepEvent = { ...pending.get(t)!, loss };
        pending.delete(t);
        out.push(e);
        await opts.onStep?.(e);
      },
    });
    return r.interrupted;
  } finally {
    optimizer.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Options, checked once

interface Plan {
  sch: Schedule;
  model: TransformerDecoder;
  data: TaskData;
  dir: string;
  vocabSize: number;
  /** Tasks with slots in some stage, in order of first appearance. */
  tasks: string[];
  /** Per stage: sequences per step (devices x batchPerGpu), and per task. */
  perStep: number[];
  perTaskPerStep: Record<string, number>[];
  /** Per stage: steps of the stages before it, and each task's samples drawn before it. */
  stepOffset: number[];
  indexOffset: Record<string, number>[];
  /** Per task: the first stage that draws it. */
  firstStage: Record<string, Stage>;
  valN: number;
  evalRowLength: number;
  trainRng: (task: string) => Rng;
  seed: number;
}

function resolve(opts: RunScheduleOptions): Plan {
  if (opts === null || typeof opts !== 'object') throw new Error(`${WHO}: options must be an object, got ${String(opts)}`);
  const sch = parseSchedule(opts.schedule as ScheduleInput);
  const { model, data, dir, seed } = opts;
  if (typeof dir !== 'string' || dir.length === 0)
    throw new Error(`${WHO}: dir must be a non-empty folder path, got ${JSON.stringify(dir)}`);
  if (!Number.isInteger(seed)) throw new Error(`${WHO}: seed must be an integer, got ${String(seed)}`);
  const cfg = (model as TransformerDecoder | undefined)?.config;
  if (!cfg || typeof model.namedTrainableParameters !== 'function')
    throw new Error(`${WHO}: model must be a TransformerDecoder from @mmlm/core, got ${describe(model)}`);
  if (!(cfg.vocabSize > 0)) throw new Error(`${WHO}: the model needs a token vocabulary (vocabSize > 0), got vocabSize ${cfg.vocabSize}`);
  if (data === null || typeof data !== 'object')
    throw new Error(`${WHO}: data must be a record of task -> sampler function, got ${describe(data)}`);
  const valN = opts.valSamplesPerTask ?? 8;
  if (!Number.isInteger(valN) || valN < 1) throw new Error(`${WHO}: valSamplesPerTask must be an integer >= 1, got ${valN}`);
  const ce = opts.checkpointEvery;
  if (ce !== undefined && !(Number.isInteger(ce) && ce >= 1)) throw new Error(`${WHO}: checkpointEvery must be an integer >= 1, got ${ce}`);

  const names = new Set<string>();
  const tasks: string[] = [];
  const firstStage: Record<string, Stage> = {};
  const perStep: number[] = [];
  const perTaskPerStep: Record<string, number>[] = [];
  const stepOffset: number[] = [];
  const indexOffset: Record<string, number>[] = [];
  const drawn: Record<string, number> = {};
  let stepsSoFar = 0;
  for (const s of sch.stages) {
    if (!STAGE_NAME.test(s.name))
      throw new Error(
        `${WHO}: stage name ${JSON.stringify(s.name)} names folders, so it must match ${STAGE_NAME} (letters, digits, . _ -)`,
      );
    if (names.has(s.name)) throw new Error(`${WHO}: stage name "${s.name}" appears twice; stage names must be unique`);
    names.add(s.name);
    if (s.steps === null) throw new Error(`${WHO}: stage ${s.name} has steps null (the paper gives none); set steps to run it`);
    if (s.seqLen > cfg.maxSeqLen)
      throw new Error(`${WHO}: stage ${s.name} packs rows of seqLen ${s.seqLen} tokens, but the model's maxSeqLen is ${cfg.maxSeqLen}`);
    const devices = s.gpus ?? 1;
    perStep.push(devices * s.batchPerGpu);
    const per: Record<string, number> = {};
    for (const [task, n] of Object.entries(s.slots)) {
      if (n === 0) continue;
      if (typeof data[task] !== 'function')
        throw new Error(
          `${WHO}: stage ${s.name} has ${n} slots of task "${task}", but data has no provider for it (providers: ${Object.keys(data).join(', ') || 'none'})`,
        );
      if (!(task in firstStage)) {
        firstStage[task] = s;
        tasks.push(task);
      }
      per[task] = devices * n;
    }
    perTaskPerStep.push(per);
    stepOffset.push(stepsSoFar);
    indexOffset.push({ ...drawn });
    for (const [task, n] of Object.entries(per)) drawn[task] = (drawn[task] ?? 0) + n * s.steps;
    for (const t of tasks) indexOffset[indexOffset.length - 1]![t] ??= 0;
    stepsSoFar += s.steps;
  }
  const roots = new Map<string, Rng>();
  const root = new Rng(seed);
  return {
    sch,
    model,
    data,
    dir: dir.replace(/[\\/]+$/, '') || dir,
    vocabSize: cfg.vocabSize,
    tasks,
    perStep,
    perTaskPerStep,
    stepOffset,
    indexOffset,
    firstStage,
    valN,
    evalRowLength: Math.max(...sch.stages.map((s) => s.seqLen)),
    trainRng: (task) => {
      let r = roots.get(task);
      if (!r) {
        r = root.fork(`train/${task}`);
        roots.set(task, r);
      }
      return r;
    },
    seed,
  };
}

/** What decides the run's numbers: two calls with the same fingerprint train the same. */
function fingerprint(opts: RunScheduleOptions, plan: Plan): unknown {
  const a = opts.adamw ?? {};
  return {
    seed: opts.seed,
    schedule: plan.sch,
    // slot order decides the sampler's bag, and the canonical hash sorts keys
    slotOrder: plan.sch.stages.map((s) => Object.keys(s.slots)),
    model: {
      config: plan.model.config,
      trainable: plan.model.namedTrainableParameters().map(([k, v]) => `${k} [${v.shape}]`),
    },
    adamw: { beta1: a.beta1 ?? 0.9, beta2: a.beta2 ?? 0.999, eps: a.eps ?? 1e-8, weightDecay: a.weightDecay ?? 0.01 },
    valSamplesPerTask: plan.valN,
    dataKey: opts.dataKey ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Samples and validation

function checkSample(s: unknown, where: string, stage: Stage, vocabSize: number): PackSample {
  const x = s as PackSample | null | undefined;
  if (x === null || typeof x !== 'object' || !isArrayLike(x.ids))
    throw new Error(`${where}: expected { ids, labels? } with ids an array of token ids, got ${describe(s)}`);
  const n = x.ids.length;
  if (n === 0) throw new Error(`${where}: the sequence is empty, expected 1 to ${stage.seqLen} tokens`);
  if (n > stage.seqLen) throw new Error(`${where}: the sequence has ${n} tokens, more than stage ${stage.name}'s seqLen ${stage.seqLen}`);
  for (let t = 0; t < n; t++) {
    const id = x.ids[t]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new Error(`${where}: id ${id} at position ${t} is not a token of the model's vocabulary [0, ${vocabSize})`);
  }
  if (x.labels === undefined) {
    if (stage.loss === 'assistantOnly')
      throw new Error(
        `${where}: stage ${stage.name} has loss 'assistantOnly', so samples need labels (IGNORE_INDEX ${IGNORE_INDEX} outside assistant responses, as chatExample gives); got none`,
      );
    return { ids: x.ids };
  }
  if (!isArrayLike(x.labels) || x.labels.length !== n)
    throw new Error(
      `${where}: labels must be ${n} values, one per id, got ${isArrayLike(x.labels) ? `${x.labels.length} values` : describe(x.labels)}`,
    );
  for (let t = 0; t < n; t++) {
    const l = x.labels[t]!;
    if (l !== IGNORE_INDEX && !(Number.isInteger(l) && l >= 0 && l < vocabSize))
      throw new Error(`${where}: label ${l} at position ${t} is neither IGNORE_INDEX (${IGNORE_INDEX}) nor a token in [0, ${vocabSize})`);
  }
  return { ids: x.ids, labels: x.labels };
}

/** The task's fixed validation samples (seeded by task and index; the same at every boundary and on rerun). */
function validationSet(plan: Plan, cache: Map<string, PackSample[]>, task: string): PackSample[] {
  let set = cache.get(task);
  if (set) return set;
  const stage = plan.firstStage[task]!;
  const root = new Rng(plan.seed).fork(`validation/${task}`);
  set = Array.from({ length: plan.valN }, (_, index) => {
    const ctx: SampleContext = { task, split: 'validation', index, stage, step: 0 };
    return checkSample(plan.data[task]!(index, root.fork(index), ctx), `data["${task}"] validation sample ${index}`, stage, plan.vocabSize);
  });
  if (countTargets(packSamples(set, { rowLength: plan.evalRowLength })) === 0)
    throw new Error(`${WHO}: the validation samples of task "${task}" carry no loss targets (every label is IGNORE_INDEX)`);
  cache.set(task, set);
  return set;
}

/** Mean next-token loss per target token of samples, packed into rows of rowLength. */
function meanTokenLoss(model: TransformerDecoder, samples: PackSample[], rowLength: number): number {
  const p = packSamples(samples, { rowLength });
  let sum = 0;
  for (let r = 0; r < p.ids.length; r += EVAL_ROWS) {
    const rows = (xs: Int32Array[]) => xs.slice(r, r + EVAL_ROWS);
    const chunk: PackedBatch = {
      rowLength,
      ids: rows(p.ids),
      targets: rows(p.targets),
      segmentIds: rows(p.segmentIds),
      positionIds: rows(p.positionIds),
      placements: [],
    };
    sum += tf.tidy(() => packedLoss(model, chunk, 'sum').dataSync()[0]!);
  }
  return sum / countTargets(p);
}

function countTargets(b: PackedBatch): number {
  let n = 0;
  for (const row of b.targets) for (const y of row) if (y !== IGNORE_INDEX) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Files

type Fs = typeof import('node:fs/promises');

/** In a variable, so that bundlers do not try to resolve it (a browser has no node:fs). */
const NODE_FS = 'node:fs/promises';

/** node:fs/promises, loaded when a run starts; in a browser, an error that says runSchedule needs Node. */
async function nodeFs(): Promise<Fs> {
  try {
    return (await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_FS)) as Fs;
  } catch (e) {
    throw new Error(
      `${WHO} is not available in the browser: it reads and writes a run folder, which needs Node (${(e as Error).message})`,
      {
        cause: e,
      },
    );
  }
}

/**
 * The run's loss curve and training time from the stages' `train.jsonl` files (core's trainLoop
 * appends one record per step, `time` = seconds since that call's loop started, and trims the records
 * past the checkpoint a call resumes from). A record whose `time` is below its predecessor's starts a
 * new call: its own `time` is what that call spent up to it. An unparseable line is skipped (a torn
 * last line that trainLoop trims on resume).
 */
async function readHistory(fs: Fs, plan: Plan): Promise<{ history: RunHistoryStep[]; trainSeconds: number }> {
  const history: RunHistoryStep[] = [];
  let trainSeconds = 0;
  for (const [i, s] of plan.sch.stages.entries()) {
    let text: string;
    try {
      text = await fs.readFile(path(plan.dir, `stage-${s.name}`, 'train.jsonl'), 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') continue; // a stage not started
      throw e;
    }
    let prev = Number.POSITIVE_INFINITY;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let rec: { step?: unknown; loss?: unknown; time?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        continue;
      }
      if (typeof rec.step !== 'number' || typeof rec.loss !== 'number' || typeof rec.time !== 'number') continue;
      history.push({ stage: s.name, step: rec.step, globalStep: plan.stepOffset[i]! + rec.step, loss: rec.loss });
      trainSeconds += rec.time >= prev ? rec.time - prev : rec.time;
      prev = rec.time;
    }
  }
  return { history, trainSeconds };
}

function path(...parts: string[]): string {
  return parts.map((p, i) => (i === 0 ? p.replace(/[\\/]+$/, '') : p.replace(/^[\\/]+|[\\/]+$/g, ''))).join('/');
}

function stageRoot(dir: string, s: Stage): string {
  return path(dir, `stage-${s.name}`, 'checkpoints');
}

function stepDir(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** The newest checkpoint's step under root, or null. */
function lastStep(root: string): number | null {
  const all = listCheckpoints(root);
  return all.length ? all[all.length - 1]!.step : null;
}

async function readJson(fs: Fs, file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${WHO}: ${file} is not valid JSON (${(e as Error).message}); restore it, or delete the run folder to start over`);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers

function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.keys(x)
            .sort()
            .map((k) => [k, x[k]]),
        )
      : x,
  );
}

/** Paths where `expected` (stored) and `actual` differ, as `path: expected X, got Y` (at most 8). */
function diffJson(expected: unknown, actual: unknown, at: string, out: string[]): void {
  if (out.length >= 8) return;
  const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (isObj(expected) && isObj(actual)) {
    for (const k of [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort())
      diffJson(expected[k], actual[k], at ? `${at}.${k}` : k, out);
  } else if (Array.isArray(expected) && Array.isArray(actual) && expected.length === actual.length) {
    expected.forEach((x, i) => diffJson(x, actual[i], `${at}.${i}`, out));
  } else if (JSON.stringify(expected) !== JSON.stringify(actual)) {
    out.push(`${at || '(root)'}: expected ${show(expected)} (stored), got ${show(actual)}`);
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function isArrayLike(x: unknown): x is ArrayLike<number> {
  return Array.isArray(x) || ArrayBuffer.isView(x);
}

function describe(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (typeof x === 'object') return `${x.constructor?.name ?? 'object'} ${show(x)}`;
  return `${typeof x} ${String(x)}`;
}
