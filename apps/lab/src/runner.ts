/**
 * Runs one experiment into its own folder and writes what a reader needs: result.json (resolved
 * config, seed, backend, versions, git revision, wall time, metrics), metrics.jsonl, report.md and
 * PNG figures. Re-running the same folder skips finished sub-runs (ctx.subrun) and a finished run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentBackend, gemmDescription, initBackend, tf } from '@mmlm/core';
import {
  claimSubruns,
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  type Figure,
  hasPreset,
  MAX_SEED,
  makeSubrun,
  subrunFolderName,
} from '@mmlm/core/experiment';
import { type LinePoint, lineChartSpec, renderPng } from './plot.js';
import { makeProgress, type ProgressMode } from './progress.js';
import { renderReportMarkdown } from './report.js';
import { writeAtomic } from './util.js';

export interface RunOptions {
  preset: string;
  seed: number;
  /** Root folder of all runs (default ./runs). */
  outRoot: string;
  backend?: string;
  dataPath?: string;
  progress?: ProgressMode;
  /** Re-run even when result.json says the run finished. */
  force?: boolean;
  log?: (line: string) => void;
  /**
   * Worker processes that run the experiment's top-level sub-runs in parallel before this process
   * finishes the run (default 1: none, everything in this process). See `runWorkers`.
   */
  jobs?: number;
  /** This process is one of those workers (the lab CLI sets it from MMLM_LAB_WORKER). */
  worker?: boolean;
  /**
   * The command a worker runs, as argv (default: this Node with its flags and the lab CLI next to
   * this module); the run's arguments are appended.
   */
  workerCommand?: string[];
}

/** The environment variable that makes `mmlm-lab run` a worker of a parallel run. */
export const WORKER_ENV = 'MMLM_LAB_WORKER';

export interface RunRecord {
  experiment: { id: string; paper: string; claim: string };
  preset: string;
  seed: number;
  backend: string;
  dataPath: string | null;
  command: string;
  versions: Record<string, string>;
  machine: { cpu: string; cores: number; memoryGB: number; platform: string };
  gitRevision: string;
  startedAt: string;
  wallTimeSec: number;
  result: ExperimentResult;
}

/**
 * The run's folder: `<out>/<id>/<preset>-seed<N>`, and with a data file
 * `<preset>-seed<N>-data-<name>-<sha256 prefix>` (see `dataKey`), so runs on other data never share
 * a folder.
 */
export function runDir(outRoot: string, exp: Experiment, preset: string, seed: number, dataPath?: string): string {
  return join(outRoot, exp.id, `${preset}-seed${seed}${dataPath ? `-${dataKey(dataPath)}` : ''}`);
}

const dataHashes = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

/** `data-<file name, [A-Za-z0-9_.-] only, <= 40 chars>-<first 12 hex of the content's SHA-256>`. */
export function dataKey(path: string): string {
  return `data-${subrunFolderName(basename(path)).slice(0, 40)}-${dataHash(path).slice(0, 12)}`;
}

/** SHA-256 of a data file's content (cached per path, size and mtime within this process). */
export function dataHash(path: string): string {
  const st = statSync(path);
  const hit = dataHashes.get(path);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  const sha256 = h.digest('hex');
  dataHashes.set(path, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
  return sha256;
}

/** What a run folder was made for (`run.json`, written when a run starts): a later run must match. */
export interface RunIdentity {
  experiment: string;
  preset: string;
  seed: number;
  /** The active backend (after `initBackend`). */
  backend: string;
  data: { path: string; sha256: string } | null;
  /**
   * sha256 (first 16 hex digits) of the experiment's resolved preset settings (`Experiment.settings`),
   * canonical JSON; absent when the experiment declares none or the folder predates the field.
   */
  settings?: string;
}

/** JSON with object keys sorted at every level (undefined members dropped, as JSON.stringify does). */
export function canonicalJson(x: unknown): string {
  return JSON.stringify(x, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The settings fingerprint of an experiment's preset (undefined when it declares no settings). */
export function settingsFingerprint(exp: Experiment, preset: string): string | undefined {
  if (!exp.settings) return undefined;
  return createHash('sha256')
    .update(canonicalJson(exp.settings(preset)))
    .digest('hex')
    .slice(0, 16);
}

/** A run folder holds a run made differently (another backend, data file, preset or seed). */
export class RunMismatchError extends Error {
  override name = 'RunMismatchError';
}

function checkIdentity(dir: string, want: RunIdentity): void {
  const path = join(dir, 'run.json');
  if (!existsSync(path)) return;
  let have: RunIdentity;
  try {
    have = JSON.parse(readFileSync(path, 'utf8')) as RunIdentity;
  } catch {
    return; // a torn run.json (killed while writing) is rewritten below
  }
  const diffs: string[] = [];
  if (have.backend !== want.backend) diffs.push(`backend ${have.backend} (this run: ${want.backend})`);
  if ((have.data?.sha256 ?? null) !== (want.data?.sha256 ?? null))
    diffs.push(
      `data ${have.data ? `${have.data.path} sha256 ${have.data.sha256.slice(0, 12)}` : 'none'} (this run: ${want.data ? `sha256 ${want.data.sha256.slice(0, 12)}` : 'none'})`,
    );
  for (const k of ['experiment', 'preset', 'seed'] as const) if (have[k] !== want[k]) diffs.push(`${k} ${have[k]} (this run: ${want[k]})`);
  // a folder from before settings were fingerprinted carries none: it is accepted as it was
  if (have.settings !== undefined && want.settings !== undefined && have.settings !== want.settings)
    diffs.push(`preset settings ${have.settings} (this run: ${want.settings}; the preset changed since)`);
  if (diffs.length)
    throw new RunMismatchError(
      `${dir} holds a run made with ${diffs.join(', ')}; its results would mix with this one. Pass --force to replace it, or --out another folder.`,
    );
}

/**
 * Start an attempt in a folder that holds an unfinished one: metrics.jsonl keeps only the records of
 * sub-runs that finished (they are reused, so their loss curves stay); records of the interrupted
 * sub-run and of the top level are dropped, as that work is redone. Returns the number dropped.
 */
export function pruneUnfinishedMetrics(dir: string): number {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) return 0;
  const finished = (name: string) => {
    let d = dir;
    for (const part of name.split('/')) d = join(d, 'subruns', subrunFolderName(part));
    return existsSync(join(d, 'result.json'));
  };
  const keep: string[] = [];
  let dropped = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let r: Record<string, unknown> | null = null;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      // a torn last line of the interrupted attempt
    }
    if (r && typeof r.subrun === 'string' && finished(r.subrun)) keep.push(line);
    else dropped++;
  }
  if (dropped) writeAtomic(path, keep.length ? `${keep.join('\n')}\n` : '');
  return dropped;
}

/**
 * The commit the code ran at, read when the run starts (a commit made during a long run must not be
 * recorded as its revision), with `+dirty` when tracked files differ from it; `unknown` outside git.
 */
export function gitRevision(): string {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const rev = git('rev-parse', '--short=12', 'HEAD');
    let dirty = false;
    try {
      dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    } catch {
      // a revision without a status is still a revision
    }
    return dirty ? `${rev}+dirty` : rev;
  } catch {
    return 'unknown';
  }
}

export function versions(): Record<string, string> {
  const v: Record<string, string> = { node: process.version };
  // tfjs-core's version (core loads tfjs-core and its backends, not the @tensorflow/tfjs union that had tf.version)
  v['tfjs-core'] = tf.version_core;
  // the GEMM decides the float32 summation order, so which one ran is part of what reproduces a run
  v.gemm = gemmDescription();
  return v;
}

/**
 * The points of the loss figure from metrics.jsonl text: records with a numeric `step` and a finite
 * `loss`, one series per `subrun ?? run ?? series` (records without any are 'train'). Where a
 * series' step counter goes down (the same name trained again, e.g. a stage repeated per seed), a
 * new phase starts and is drawn as its own line, `<series> #2`, `#3`, ..., instead of a sawtooth.
 * Unparseable lines (a torn last line of an interrupted run) are skipped.
 */
export function lossPoints(jsonl: string): LinePoint[] {
  const points: LinePoint[] = [];
  const last = new Map<string, { step: number; phase: number }>();
  for (const line of jsonl.split('\n')) {
    if (!line.trim()) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (!r || typeof r !== 'object' || typeof r.step !== 'number' || typeof r.loss !== 'number' || !Number.isFinite(r.loss)) continue;
    const base = String(r.subrun ?? r.run ?? r.series ?? 'train');
    const prev = last.get(base);
    const phase = prev ? (r.step < prev.step ? prev.phase + 1 : prev.phase) : 1;
    last.set(base, { step: r.step, phase });
    points.push({ x: r.step, y: r.loss, series: phase > 1 ? `${base} #${phase}` : base });
  }
  return points;
}

/** Loss curves from metrics.jsonl (see `lossPoints`), written as loss.png. */
async function lossFigure(dir: string): Promise<Figure | null> {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) return null;
  const points = lossPoints(readFileSync(path, 'utf8'));
  if (points.length < 2) return null;
  // keep at most ~400 points per series so the SVG stays small
  const bySeries = new Map<string, LinePoint[]>();
  for (const p of points) {
    const ps = bySeries.get(p.series);
    if (ps) ps.push(p);
    else bySeries.set(p.series, [p]);
  }
  const thinned = [...bySeries.values()].flatMap((ps) => ps.filter((_, i) => i % Math.ceil(ps.length / 400) === 0 || i === ps.length - 1));
  const png = await renderPng(lineChartSpec(thinned, { title: 'Training loss', xTitle: 'step', yTitle: 'loss' }));
  writeAtomic(join(dir, 'loss.png'), png);
  return {
    title: 'Training loss',
    path: 'loss.png',
    caption: 'From metrics.jsonl: one line per sub-run (or `run`); a name whose step counter restarts is drawn again as "#2".',
  };
}

export async function runExperiment(exp: Experiment, opts: RunOptions): Promise<{ dir: string; record: RunRecord; skipped: boolean }> {
  if (!hasPreset(exp, opts.preset))
    throw new Error(`experiment "${exp.id}" has no preset "${opts.preset}"; expected one of: ${Object.keys(exp.presets).join(', ')}`);
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > MAX_SEED)
    throw new Error(`${exp.id}: seed must be an integer in [0, ${MAX_SEED}], got ${opts.seed}`);
  if (opts.dataPath && !exp.data) throw new Error(`experiment "${exp.id}" reads no data file; got dataPath ${opts.dataPath}`);
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const dir = runDir(opts.outRoot, exp, opts.preset, opts.seed, opts.dataPath);
  const resultPath = join(dir, 'result.json');
  if (opts.backend || !currentBackend()) await initBackend({ backend: opts.backend });
  const backend = currentBackend()?.backend ?? tf.getBackend();
  const identity: RunIdentity = {
    experiment: exp.id,
    preset: opts.preset,
    seed: opts.seed,
    backend,
    data: opts.dataPath ? { path: opts.dataPath, sha256: dataHash(opts.dataPath) } : null,
  };
  const settings = settingsFingerprint(exp, opts.preset);
  if (settings !== undefined) identity.settings = settings;
  if (opts.worker) {
    if (!exp.parallelSubruns) throw new Error(`worker: ${exp.id} does not declare independent sub-runs (parallelSubruns)`);
    return runAsWorker(exp, opts, dir, identity, backend, log);
  }
  // a folder another process is running is never touched (not even by --force): runs never mix
  assertNotLocked(dir);
  if (opts.force)
    rmSync(dir, { recursive: true, force: true }); // a forced rerun starts from an empty folder
  else checkIdentity(dir, identity);
  if (!opts.force && existsSync(resultPath)) {
    log(`${exp.id} (${opts.preset}, seed ${opts.seed}) already finished: ${relative(process.cwd(), dir) || dir}`);
    return { dir, record: JSON.parse(readFileSync(resultPath, 'utf8')) as RunRecord, skipped: true };
  }
  mkdirSync(dir, { recursive: true });
  const release = acquireRunLock(dir);
  try {
    return await runLocked(exp, opts, dir, identity, backend, log);
  } finally {
    release();
  }
}

/** The body of a run, under the folder's run lock. */
async function runLocked(
  exp: Experiment,
  opts: RunOptions,
  dir: string,
  identity: RunIdentity,
  backend: string,
  log: (line: string) => void,
): Promise<{ dir: string; record: RunRecord; skipped: boolean }> {
  const resultPath = join(dir, 'result.json');
  const dropped = pruneUnfinishedMetrics(dir);
  if (dropped) log(`  resuming an unfinished run: ${dropped} metric records of its unfinished work dropped`);
  writeAtomic(join(dir, 'run.json'), JSON.stringify(identity, null, 2));
  const t0 = performance.now();
  // read when the run starts, before any worker: a commit made during a long run is not its revision
  const revision = gitRevision();
  if ((opts.jobs ?? 1) > 1) {
    if (exp.parallelSubruns) await runWorkers(exp, opts, dir, log);
    // its work is not all in independent top-level sub-runs: workers would repeat it side by side
    else log(`${exp.id}: runs in one process (--jobs ${opts.jobs} needs independent sub-runs, which it does not declare)`);
  }
  const progress = makeProgress(opts.progress ?? 'auto');
  const metric = (r: Record<string, unknown>) => appendFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify(r)}\n`);
  const ctx: ExperimentContext = {
    experimentId: exp.id,
    preset: opts.preset,
    seed: opts.seed,
    backend,
    outDir: dir,
    dataPath: opts.dataPath,
    log,
    progress,
    metric,
    subrun: makeSubrun({ dir, log, progress, metric, onReuse: (name) => log(`  sub-run "${name}" already finished; reusing its result`) }),
  };
  const startedAt = new Date(Date.now() - (performance.now() - t0)).toISOString();
  log(`running ${exp.id} (${exp.paper}) preset ${opts.preset}, seed ${opts.seed}, backend ${backend} -> ${dir}`);
  const result = await exp.run(ctx);
  const wallTimeSec = (performance.now() - t0) / 1000;
  const loss = await lossFigure(dir);
  if (loss && !(result.figures ?? []).some((f) => f.path === loss.path)) result.figures = [...(result.figures ?? []), loss];
  const record: RunRecord = {
    experiment: { id: exp.id, paper: exp.paper, claim: exp.claim },
    preset: opts.preset,
    seed: opts.seed,
    backend,
    dataPath: opts.dataPath ?? null,
    command: `pnpm lab run ${exp.id} --preset ${opts.preset} --seed ${opts.seed}${commandOptions(exp, opts)}`,
    versions: versions(),
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGB: Math.round(totalmem() / 2 ** 30),
      platform: `${process.platform}-${process.arch}`,
    },
    gitRevision: revision,
    startedAt,
    wallTimeSec,
    result,
  };
  writeAtomic(join(dir, 'report.md'), renderReportMarkdown(record));
  writeAtomic(resultPath, JSON.stringify(record, null, 2)); // last: its presence marks the run finished
  log(`finished ${exp.id} in ${wallTimeSec.toFixed(1)} s: ${join(dir, 'report.md')}`);
  return { dir, record, skipped: false };
}

/** What `run.lock` holds: the process that is running the folder's run. */
interface RunLock {
  pid: number;
  host: string;
  startedAt: string;
}

/** Another process is running this folder's run (its `run.lock` names a live process). */
export class RunLockedError extends Error {}

/** True when a process with this pid exists on this machine (EPERM: it exists, owned by another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock's holder when it is alive (or on another machine, where this one cannot tell), else null (stale or unreadable). */
function liveLockHolder(path: string): RunLock | null {
  let lock: RunLock;
  try {
    lock = JSON.parse(readFileSync(path, 'utf8')) as RunLock;
  } catch {
    return null; // gone, or torn by a crash while being written
  }
  if (!Number.isInteger(lock.pid)) return null;
  if (lock.host !== hostname()) return lock;
  return lock.pid !== process.pid && processAlive(lock.pid) ? lock : null;
}

function lockedError(dir: string, lock: RunLock): RunLockedError {
  return new RunLockedError(
    `${dir} is being run by another process (pid ${lock.pid} on ${lock.host}, since ${lock.startedAt}); two runs in one folder would mix their results. ` +
      `Wait for it to finish (or stop it) and run again; if no such run exists any more, delete ${join(dir, 'run.lock')}.`,
  );
}

/** Throws RunLockedError when a live process holds the folder's run lock. */
function assertNotLocked(dir: string): void {
  const lock = liveLockHolder(join(dir, 'run.lock'));
  if (lock) throw lockedError(dir, lock);
}

/**
 * Takes the folder's run lock (created exclusively; a stale lock of a dead process is replaced) and
 * returns its release. A run's parent holds it from its first write to its last; its workers do not
 * take it. So a second `run` of the same folder, or a `--seeds` aggregate reaching a seed still
 * being run, stops with an error instead of re-running it beside the first.
 */
function acquireRunLock(dir: string): () => void {
  const path = join(dir, 'run.lock');
  const mine: RunLock = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeFileSync(fd, JSON.stringify(mine));
      } finally {
        closeSync(fd);
      }
      return () => {
        try {
          const lock = JSON.parse(readFileSync(path, 'utf8')) as RunLock;
          if (lock.pid === mine.pid && lock.host === mine.host) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const lock = liveLockHolder(path);
      if (lock) throw lockedError(dir, lock);
      rmSync(path, { force: true }); // stale: its process is gone
    }
  }
  throw new RunLockedError(`${dir}: could not take ${path} (another process took it at the same moment)`);
}

/** A worker's run: the parent's folder, claimed top-level sub-runs only, no result of its own. */
async function runAsWorker(
  exp: Experiment,
  opts: RunOptions,
  dir: string,
  identity: RunIdentity,
  backend: string,
  log: (line: string) => void,
): Promise<{ dir: string; record: RunRecord; skipped: boolean }> {
  // the parent checked the folder, pruned it and wrote run.json before starting the workers
  checkIdentity(dir, identity);
  if (!existsSync(join(dir, 'run.json'))) throw new Error(`worker: ${dir} has no run.json; workers are started by a parent run (--jobs)`);
  const failures: { name: string; error: unknown }[] = [];
  const progress = makeProgress(opts.progress ?? 'lines');
  const append = (r: Record<string, unknown>) => appendFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify(r)}\n`);
  // records written while one of this worker's claimed bodies runs are its to keep (the parent
  // reuses that sub-run without running it); records outside them are the parent's to write
  let inBody = 0;
  const claimFile = claimSubruns((name, error) => failures.push({ name, error }));
  const claim = (name: string, d: string) => {
    const c = claimFile(name, d);
    if (!c) return null;
    inBody++;
    return {
      release: () => {
        inBody--;
        c.release();
      },
      failed: c.failed,
    };
  };
  const ctx: ExperimentContext = {
    experimentId: exp.id,
    preset: opts.preset,
    seed: opts.seed,
    backend,
    outDir: dir,
    dataPath: opts.dataPath,
    log,
    progress,
    metric: (r) => {
      if (inBody > 0) append(r);
    },
    subrun: makeSubrun({
      dir,
      log,
      progress,
      metric: (r) => {
        if (inBody > 0) append(r);
      },
      claim,
    }),
  };
  try {
    await exp.run(ctx);
  } catch (e) {
    // past its sub-runs a worker reads results it skipped (undefined): where that throws, its work
    // is done; only a failed sub-run body is a failure. The parent runs the same code over every
    // result, so a genuine error there surfaces in the parent; the worker's TypeError only confused
    // readers of the log (it looked like a crash), so it is shown only with MMLM_DEBUG set.
    if (!failures.length)
      log(
        `worker: done with its sub-runs; the parent process assembles the report from every worker's results${process.env.MMLM_DEBUG ? ` (worker stopped at: ${(e as Error).message.split('\n')[0]})` : ''}`,
      );
  }
  if (failures.length) throw failures[0]!.error;
  return { dir, record: undefined as unknown as RunRecord, skipped: true };
}

/** The options after the seed in a run's recorded command: ` --data P`, ` --backend B`, ` --jobs N` as they were given (jobs only where it changes anything). */
export function commandOptions(exp: Experiment, opts: Pick<RunOptions, 'dataPath' | 'backend' | 'jobs'>): string {
  return `${opts.dataPath ? ` --data ${opts.dataPath}` : ''}${opts.backend ? ` --backend ${opts.backend}` : ''}${
    (opts.jobs ?? 1) > 1 && exp.parallelSubruns ? ` --jobs ${opts.jobs}` : ''
  }`;
}

/** The default worker command: this Node, its flags (e.g. tsx's loader) and the lab CLI beside this module. */
function defaultWorkerCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  const cli = here.replace(/runner\.(ts|js)$/, (_m, ext) => `cli.${ext}`);
  return [process.execPath, ...process.execArgv, cli];
}

/**
 * `--jobs N`: start N worker processes on the run's folder (the lab CLI with MMLM_LAB_WORKER=1 and,
 * unless set, MMLM_WASM_THREADS=1 and MMLM_BLAS_THREADS=1: one GEMM thread each). Each takes the next top-level sub-run no
 * other worker holds (`claimSubruns`), so independent arms train side by side; the caller then runs
 * the experiment to the end in this process, reusing every finished sub-run. Sub-run bodies must
 * depend on the seed and their inputs only (not on state an earlier sub-run left), as they do for a
 * resumed run. Output lines are prefixed `[worker i]`; a worker that fails fails the run.
 */
export async function runWorkers(exp: Experiment, opts: RunOptions, dir: string, log: (line: string) => void): Promise<void> {
  const jobs = opts.jobs ?? 1;
  const [cmd, ...pre] = opts.workerCommand ?? defaultWorkerCommand();
  const args = [
    ...pre,
    'run',
    exp.id,
    '--preset',
    opts.preset,
    '--seed',
    String(opts.seed),
    '--out',
    opts.outRoot,
    '--progress',
    'lines',
    ...(opts.backend ? ['--backend', opts.backend] : []),
    ...(opts.dataPath ? ['--data', opts.dataPath] : []),
  ];
  log(`starting ${jobs} workers for the sub-runs of ${exp.id} (${opts.preset}, seed ${opts.seed})`);
  // one GEMM thread per worker (core's SIMD GEMM and the optional native OpenBLAS), unless set
  const env = {
    ...process.env,
    [WORKER_ENV]: '1',
    MMLM_WASM_THREADS: process.env.MMLM_WASM_THREADS ?? '1',
    MMLM_BLAS_THREADS: process.env.MMLM_BLAS_THREADS ?? '1',
  };
  // no worker of this folder runs now: claims left by killed workers of an earlier attempt are stale
  clearClaims(dir);
  const children: ReturnType<typeof spawn>[] = [];
  // a signal to this process reaches its workers too (they checkpoint and stop as on SIGINT)
  const forward = (sig: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = sig;
    forward(sig);
    log(`${sig}: stopping the workers`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results = await Promise.all(
    Array.from(
      { length: jobs },
      (_, i) =>
        new Promise<{ code: number | null; tail: string[] }>((resolve) => {
          const child = spawn(cmd!, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
          children.push(child);
          const tail: string[] = [];
          const forward = (buf: Buffer, keep: boolean) => {
            for (const line of buf.toString('utf8').split('\n')) {
              if (!line.trim()) continue;
              log(`[worker ${i + 1}] ${line}`);
              if (keep) tail.push(line);
              if (tail.length > 20) tail.shift();
            }
          };
          child.stdout.on('data', (b: Buffer) => forward(b, false));
          child.stderr.on('data', (b: Buffer) => forward(b, true));
          child.on('error', (e) => resolve({ code: -1, tail: [e.message] }));
          child.on('close', (code) => resolve({ code, tail }));
        }),
    ),
  );
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  // a worker killed mid-body leaves its claim behind: no worker runs now, so every claim is stale
  clearClaims(dir);
  if (interrupted)
    throw new Error(`${exp.id}: stopped by ${interrupted}; the sub-runs that finished are kept and a rerun resumes the rest`);
  const bad = results.map((r, i) => ({ ...r, i })).filter((r) => r.code !== 0);
  if (bad.length)
    throw new Error(
      `${exp.id}: worker ${bad.map((b) => `${b.i + 1} (exit code ${b.code})`).join(', ')} failed; the sub-runs that finished are kept and a rerun resumes them. Last lines:\n${bad[0]!.tail.join('\n')}`,
    );
}

/** Remove the `.claim` files of a run folder's top-level sub-runs (only while no worker runs). */
function clearClaims(dir: string): void {
  const subruns = join(dir, 'subruns');
  if (existsSync(subruns)) for (const f of readdirSync(subruns)) if (f.endsWith('.claim')) unlinkSync(join(subruns, f));
}
