/**
 * Training checkpoints: one folder per step under a root (`<root>/step-00000123/`) holding
 *   model.safetensors      the weights (Module.stateDict() or a name -> tensor record)
 *   optimizer.safetensors  the optimizer's tensors (StatefulOptimizer.stateDict().tensors), when any
 *   state.json             step, optimizer JSON, RNG states (Rng.getState()), config, extra
 * A checkpoint is written into a temporary folder (every file flushed to disk, state.json last)
 * and renamed into place, so a crash mid-write never damages the last good checkpoint and never
 * leaves a half-written folder where `latestCheckpoint` looks. Temporary folders left by a crashed
 * writer are ignored by readers and removed by the next save.
 *
 * Re-saving an existing step moves the old folder aside (`.old-step-N-<pid>-<hex>`), renames the
 * new one in, then removes the old one. A kill between the two renames leaves no `step-N`: readers
 * then use the moved-aside copy (and put it back in place when its writer is gone), so the step
 * never disappears. Pruning deletes state.json first, so a kill mid-prune leaves a folder without
 * state.json: readers ignore it and the next save removes it. `loadLatestCheckpoint` falls back to
 * the previous checkpoint, with a warning, when the newest one cannot be loaded.
 *
 * Node only (files): the file system comes through `#platform`; in a browser bundle these
 * functions throw "... is not available in the browser". A checkpoint's weights are plain
 * safetensors, so a page loads them with `decodeSafetensors(await (await fetch(url)).arrayBuffer())`.
 */
import { fs, fsp, nodeOnly, path } from '#platform';
import type { Module } from '../nn/module.js';
import type { Rng, RngState } from '../rng/index.js';
import type { tf } from '../tf.js';
import type { OptimizerStateDict, StatefulOptimizer } from '../train/optimizer.js';
import { encodeSafetensorsHost, type HostTensor, loadSafetensors, tensorsToHostAsync } from './safetensors.js';

const { existsSync, readdirSync, renameSync, rmSync } = fs;
const { mkdir, open, readFile, rename, rm, stat, unlink } = fsp;
const { basename, dirname, join } = path;

export const CHECKPOINT_FORMAT = 'mmlm-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface CheckpointInput {
  model: Module | Record<string, tf.Tensor>;
  optimizer?: Pick<StatefulOptimizer, 'stateDict'>;
  /** Completed training steps. */
  step: number;
  rng?: Rng | RngState;
  /** Named random streams (data order, dropout, ...). */
  rngs?: Record<string, Rng | RngState>;
  config?: unknown;
  extra?: unknown;
}

export interface SaveCheckpointOptions {
  /** Keep the newest `keep` checkpoints under the root (default 2; Infinity keeps all). */
  keep?: number;
  /** Refuse to save when a float weight or optimizer tensor holds NaN or Inf (default true). */
  requireFinite?: boolean;
}

export interface Checkpoint {
  dir: string;
  step: number;
  /** The caller owns these tensors. */
  weights: Record<string, tf.Tensor>;
  /** The caller owns `tensors`. */
  optimizer?: OptimizerStateDict;
  rng?: RngState;
  rngs?: Record<string, RngState>;
  config?: unknown;
  extra?: unknown;
}

/** A tensor to be checkpointed holds NaN or Inf. */
export class NonFiniteTensorError extends Error {
  constructor(
    readonly tensor: string,
    readonly index: number,
    readonly value: number,
    readonly step: number,
  ) {
    super(`saveCheckpoint: ${tensor} holds ${value} at flat index ${index}; step ${step} was not saved`);
    this.name = 'NonFiniteTensorError';
  }
}

const STEP_DIR = /^step-(\d{8,})$/;
const SCRATCH_DIR = /^\.(tmp|old)-(step-\d{8,})-(\d+)-[0-9a-f]+$/;

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

function isRngState(s: unknown): s is RngState {
  const st = (s as RngState | null)?.state;
  return Array.isArray(st) && st.length === 4 && st.every((w) => Number.isInteger(w));
}

function toRngState(r: Rng | RngState, what: string): RngState {
  const s = typeof (r as Rng).getState === 'function' ? (r as Rng).getState() : r;
  if (!isRngState(s))
    throw new Error(`saveCheckpoint: ${what} must be an Rng or an RngState {state: [4 integers]}, got ${JSON.stringify(s)}`);
  return s;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Tags (`step-N-<pid>-<hex>`) of the saves this process has in flight. */
const activeSaves = new Set<string>();

/**
 * Whether the writer of a scratch folder is gone: another process that is not running, or this
 * process with no save of that tag in flight (a previous run that had the same pid, as after a
 * container restart).
 */
function writerGone(scratchName: string): boolean {
  const m = SCRATCH_DIR.exec(scratchName);
  if (!m) return false;
  const pid = Number(m[3]);
  return pid === process.pid ? !activeSaves.has(scratchName.slice(5)) : !pidAlive(pid);
}

/**
 * Remove scratch folders of writers that are no longer running and step folders without state.json
 * (left by a kill while pruning); put back a checkpoint moved aside by a crash.
 */
function recoverScratch(root: string): void {
  const names = readdirSync(root).sort();
  for (const name of names)
    if (STEP_DIR.test(name) && !existsSync(join(root, name, 'state.json'))) rmSync(join(root, name), { recursive: true, force: true });
  for (const name of names) {
    const m = SCRATCH_DIR.exec(name);
    if (!m || !writerGone(name)) continue;
    const final = join(root, m[2]!);
    if (m[1] === 'old' && !existsSync(final) && existsSync(join(root, name, 'state.json'))) renameSync(join(root, name), final);
    else rmSync(join(root, name), { recursive: true, force: true });
  }
}

/** Delete a checkpoint folder: state.json first, so that a kill part-way leaves a folder every reader ignores. */
async function removeCheckpoint(dir: string): Promise<void> {
  await unlink(join(dir, 'state.json')).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}

async function writeSynced(path: string, bytes: Uint8Array | string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(path: string): Promise<void> {
  try {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some platforms cannot fsync a folder; the rename is still atomic.
  }
}

function assertFinite(host: Record<string, HostTensor>, kind: string, step: number): void {
  for (const [name, t] of Object.entries(host)) {
    if (t.dtype !== 'F32') continue;
    const d = t.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) throw new NonFiniteTensorError(`${kind} "${name}"`, i, d[i]!, step);
  }
}

function toJson(value: unknown, what: string): unknown {
  if (value === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(value) ?? 'null');
  } catch (e) {
    throw new Error(`saveCheckpoint: ${what} is not JSON-serializable (${(e as Error).message})`);
  }
}

/**
 * Write a checkpoint for `c.step` under `root`, atomically, and prune to the newest `keep`. Returns
 * the checkpoint's folder. Saving a step that already exists replaces it.
 */
export async function saveCheckpoint(root: string, c: CheckpointInput, opts: SaveCheckpointOptions = {}): Promise<string> {
  nodeOnly('saveCheckpoint');
  if (!Number.isSafeInteger(c.step) || c.step < 0) throw new Error(`saveCheckpoint: step must be an integer >= 0, got ${c.step}`);
  const keep = opts.keep ?? 2;
  if (!(keep === Number.POSITIVE_INFINITY || (Number.isInteger(keep) && keep >= 1)))
    throw new Error(`saveCheckpoint: keep must be an integer >= 1 or Infinity, got ${keep}`);
  const requireFinite = opts.requireFinite ?? true;
  // Everything that can fail on bad input runs before anything touches the disk.
  const model =
    typeof (c.model as Module).stateDict === 'function' ? (c.model as Module).stateDict() : (c.model as Record<string, tf.Tensor>);
  const weights = await tensorsToHostAsync(model);
  if (requireFinite) assertFinite(weights, 'weight', c.step);
  let optHost: Record<string, HostTensor> | null = null;
  let optJson: unknown = null;
  if (c.optimizer) {
    const s = c.optimizer.stateDict();
    optHost = await tensorsToHostAsync(s.tensors);
    if (requireFinite) assertFinite(optHost, 'optimizer tensor', c.step);
    optJson = { json: toJson(s.json, 'optimizer state json') };
  }
  const state = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: c.step,
    savedAt: new Date().toISOString(),
    optimizer: optJson,
    rng: c.rng === undefined ? null : toRngState(c.rng, 'rng'),
    rngs: c.rngs === undefined ? null : Object.fromEntries(Object.entries(c.rngs).map(([k, r]) => [k, toRngState(r, `rngs["${k}"]`)])),
    config: toJson(c.config, 'config'),
    extra: toJson(c.extra, 'extra'),
  };
  const modelBytes = encodeSafetensorsHost(weights, { step: String(c.step) });
  const optBytes = optHost ? encodeSafetensorsHost(optHost, { step: String(c.step) }) : null;

  await mkdir(root, { recursive: true });
  recoverScratch(root);
  const name = checkpointDirName(c.step);
  const final = join(root, name);
  const tag = `${name}-${process.pid}-${Math.floor(Math.random() * 2 ** 32).toString(16)}`;
  const tmp = join(root, `.tmp-${tag}`);
  activeSaves.add(tag);
  try {
    await mkdir(tmp);
    await writeCheckpointFolder(root, tmp, final, tag, modelBytes, optBytes, state);
  } finally {
    activeSaves.delete(tag);
  }
  const others = listCheckpoints(root).filter((x) => x.dir !== final);
  const excess = others.length - (keep - 1);
  for (const old of others.slice(0, Math.max(0, excess))) await removeCheckpoint(old.dir);
  return final;
}

async function writeCheckpointFolder(
  root: string,
  tmp: string,
  final: string,
  tag: string,
  modelBytes: Uint8Array,
  optBytes: Uint8Array | null,
  state: unknown,
): Promise<void> {
  try {
    await writeSynced(join(tmp, 'model.safetensors'), modelBytes);
    if (optBytes) await writeSynced(join(tmp, 'optimizer.safetensors'), optBytes);
    await writeSynced(join(tmp, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
    await syncDir(tmp);
    if (existsSync(final)) {
      const old = join(root, `.old-${tag}`);
      await rename(final, old);
      await rename(tmp, final);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, final);
    }
    await syncDir(root);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The complete checkpoints under `root`, oldest first. A step whose folder is missing but whose
 * previous copy was moved aside by an interrupted re-save is listed too: put back as `step-N` when
 * its writer is gone (and the root is writable), else at the moved-aside path.
 */
export function listCheckpoints(root: string): { dir: string; step: number }[] {
  nodeOnly('listCheckpoints');
  if (!existsSync(root)) return [];
  const names = readdirSync(root).sort();
  const found = new Map<number, { dir: string; step: number }>();
  for (const n of names) {
    const m = STEP_DIR.exec(n);
    if (m && existsSync(join(root, n, 'state.json'))) found.set(Number(m[1]), { dir: join(root, n), step: Number(m[1]) });
  }
  for (const n of names) {
    const m = SCRATCH_DIR.exec(n);
    if (m?.[1] !== 'old') continue;
    const step = Number(STEP_DIR.exec(m[2]!)![1]);
    const aside = join(root, n);
    if (found.has(step) || !existsSync(join(aside, 'state.json'))) continue;
    const final = join(root, m[2]!);
    if (writerGone(n) && !existsSync(final)) {
      try {
        renameSync(aside, final);
      } catch {
        // read-only root, or another process restored it first: checked below
      }
    }
    if (existsSync(join(final, 'state.json'))) found.set(step, { dir: final, step });
    else if (existsSync(join(aside, 'state.json'))) found.set(step, { dir: aside, step });
  }
  return [...found.values()].sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint folder under `root`, or null when there is none. */
export function latestCheckpoint(root: string): string | null {
  const all = listCheckpoints(root);
  return all.length ? all[all.length - 1]!.dir : null;
}

type StateJson = {
  format?: unknown;
  version?: unknown;
  step?: unknown;
  optimizer?: { json?: unknown } | null;
  rng?: unknown;
  rngs?: unknown;
  config?: unknown;
  extra?: unknown;
};

/**
 * Read a checkpoint folder (as returned by saveCheckpoint / latestCheckpoint). A missing `step-N`
 * folder whose copy an interrupted re-save moved aside is read from that copy (`dir` of the result
 * says where). The caller owns the tensors.
 */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  nodeOnly('loadCheckpoint');
  if (!existsSync(dir) && STEP_DIR.test(basename(dir))) {
    const step = Number(STEP_DIR.exec(basename(dir))![1]);
    const moved = listCheckpoints(dirname(dir)).find((c) => c.step === step);
    if (moved) dir = moved.dir;
  }
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new Error(`loadCheckpoint: ${dir} is not a folder`);
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) {
    const latest = latestCheckpoint(dir);
    throw new Error(
      latest
        ? `loadCheckpoint: ${dir} is a checkpoint root, not a checkpoint; pass latestCheckpoint(root) (= ${latest})`
        : `loadCheckpoint: ${dir} is not a checkpoint (no state.json)`,
    );
  }
  let state: StateJson;
  try {
    state = JSON.parse(await readFile(statePath, 'utf8'));
  } catch (e) {
    throw new Error(`loadCheckpoint: ${statePath} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof state !== 'object' || state === null || state.format !== CHECKPOINT_FORMAT)
    throw new Error(`loadCheckpoint: ${statePath} has format ${JSON.stringify(state?.format)}, expected "${CHECKPOINT_FORMAT}"`);
  if (state.version !== CHECKPOINT_VERSION)
    throw new Error(`loadCheckpoint: ${statePath} has version ${JSON.stringify(state.version)}, expected ${CHECKPOINT_VERSION}`);
  if (!Number.isSafeInteger(state.step) || (state.step as number) < 0)
    throw new Error(`loadCheckpoint: ${statePath} has step ${JSON.stringify(state.step)}, expected an integer >= 0`);
  if (state.rng != null && !isRngState(state.rng))
    throw new Error(`loadCheckpoint: ${statePath} rng must be {state: [4 integers]}, got ${JSON.stringify(state.rng)}`);
  if (state.rngs != null) {
    if (typeof state.rngs !== 'object' || Array.isArray(state.rngs))
      throw new Error(`loadCheckpoint: ${statePath} rngs must be an object of RNG states, got ${JSON.stringify(state.rngs)}`);
    for (const [k, s] of Object.entries(state.rngs))
      if (!isRngState(s))
        throw new Error(`loadCheckpoint: ${statePath} rngs["${k}"] must be {state: [4 integers]}, got ${JSON.stringify(s)}`);
  }
  if (state.optimizer != null && (typeof state.optimizer !== 'object' || Array.isArray(state.optimizer)))
    throw new Error(`loadCheckpoint: ${statePath} optimizer must be {json} or null, got ${JSON.stringify(state.optimizer)}`);
  const modelPath = join(dir, 'model.safetensors');
  if (!existsSync(modelPath)) throw new Error(`loadCheckpoint: ${modelPath} is missing`);
  const optPath = join(dir, 'optimizer.safetensors');
  if (state.optimizer != null && !existsSync(optPath))
    throw new Error(`loadCheckpoint: ${optPath} is missing but ${statePath} records optimizer state`);
  const weights = (await loadSafetensors(modelPath)).tensors;
  let optimizer: OptimizerStateDict | undefined;
  if (state.optimizer != null) {
    try {
      optimizer = { tensors: (await loadSafetensors(optPath)).tensors, json: state.optimizer.json ?? null };
    } catch (e) {
      for (const t of Object.values(weights)) t.dispose();
      throw e;
    }
  }
  return {
    dir,
    step: state.step as number,
    weights,
    ...(optimizer ? { optimizer } : {}),
    ...(state.rng != null ? { rng: state.rng as RngState } : {}),
    ...(state.rngs != null ? { rngs: state.rngs as Record<string, RngState> } : {}),
    ...(state.config != null ? { config: state.config } : {}),
    ...(state.extra != null ? { extra: state.extra } : {}),
  };
}

export interface LoadLatestCheckpointOptions {
  /** Called for each checkpoint that cannot be loaded before an older one is tried (default: console.warn of the message). */
  onWarning?: (message: string, error: unknown, dir: string) => void;
}

/**
 * Load the newest checkpoint under `root` that loads: newest first, and on a load error (a corrupt
 * or truncated safetensors file, bad state.json, a missing file) warn, naming the checkpoint and the
 * error, and try the previous one. Returns null when `root` holds no checkpoint; when none of them
 * loads, throws the newest one's error. The corrupt checkpoints are left in place (a later save of
 * the same step replaces them). The caller owns the tensors.
 */
export async function loadLatestCheckpoint(root: string, opts: LoadLatestCheckpointOptions = {}): Promise<Checkpoint | null> {
  nodeOnly('loadLatestCheckpoint');
  const warn = opts.onWarning ?? ((message: string) => console.warn(message));
  const all = listCheckpoints(root).reverse();
  let newest: unknown;
  for (let i = 0; i < all.length; i++) {
    const { dir } = all[i]!;
    try {
      return await loadCheckpoint(dir);
    } catch (e) {
      if (i === 0) newest = e;
      const next = all[i + 1];
      warn(
        `loadLatestCheckpoint: cannot load checkpoint ${dir} (${(e as Error)?.message ?? String(e)}); ${next ? `falling back to ${next.dir}` : 'no older checkpoint to fall back to'}`,
        e,
        dir,
      );
    }
  }
  if (all.length) throw newest;
  return null;
}

/** Dispose every tensor a loaded checkpoint holds. */
export function disposeCheckpoint(ck: Checkpoint): void {
  for (const t of Object.values(ck.weights)) t.dispose();
  if (ck.optimizer) for (const t of Object.values(ck.optimizer.tensors)) t.dispose();
}
