/**
 * Checkpoints: weights (safetensors) + optimizer state (safetensors + JSON) + step + RNG state +
 * config JSON, in one folder per step under a root (`<root>/step-00000123/`). Each checkpoint is
 * written into a temporary folder and renamed into place, so a crash mid-write never leaves a
 * half-written checkpoint where `latestCheckpoint` would find it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../nn/module.js';
import type { Rng, RngState } from '../rng/index.js';
import type { tf } from '../tf.js';
import { encodeSafetensors, loadSafetensors } from './safetensors.js';

export interface StatefulOptimizer {
  stateDict(): { tensors: Record<string, tf.Tensor>; json: unknown };
  loadStateDict(s: { tensors: Record<string, tf.Tensor>; json: unknown }): void;
}

export interface CheckpointInput {
  model: Module | Record<string, tf.Tensor>;
  optimizer?: StatefulOptimizer;
  step: number;
  rng?: Rng | RngState | Record<string, RngState>;
  config?: unknown;
  extra?: unknown;
}

export interface Checkpoint {
  dir: string;
  step: number;
  weights: Record<string, tf.Tensor>;
  optimizer?: { tensors: Record<string, tf.Tensor>; json: unknown };
  rng?: RngState | Record<string, RngState>;
  config?: unknown;
  extra?: unknown;
}

const STEP_DIR = /^step-(\d{8,})$/;

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

function rngState(r: CheckpointInput['rng']): RngState | Record<string, RngState> | undefined {
  if (!r) return undefined;
  if (typeof (r as Rng).getState === 'function') return (r as Rng).getState();
  return r as RngState | Record<string, RngState>;
}

/** Write a checkpoint for `step` under `root` atomically; keeps the newest `keep` (default 2). Returns its folder. */
export function saveCheckpoint(root: string, c: CheckpointInput, opts: { keep?: number } = {}): string {
  if (!Number.isInteger(c.step) || c.step < 0) throw new Error(`saveCheckpoint: step must be an integer >= 0, got ${c.step}`);
  mkdirSync(root, { recursive: true });
  const final = join(root, checkpointDirName(c.step));
  const tmp = join(root, `.tmp-${checkpointDirName(c.step)}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  const weights =
    typeof (c.model as Module).stateDict === 'function' ? (c.model as Module).stateDict() : (c.model as Record<string, tf.Tensor>);
  writeFileSync(join(tmp, 'model.safetensors'), encodeSafetensors(weights));
  let optJson: unknown;
  if (c.optimizer) {
    const s = c.optimizer.stateDict();
    writeFileSync(join(tmp, 'optimizer.safetensors'), encodeSafetensors(s.tensors));
    optJson = s.json;
  }
  const state = {
    format: 'mmlm-checkpoint',
    version: 1,
    step: c.step,
    rng: rngState(c.rng) ?? null,
    optimizer: optJson ?? null,
    config: c.config ?? null,
    extra: c.extra ?? null,
  };
  writeFileSync(join(tmp, 'state.json'), JSON.stringify(state, null, 2));
  if (existsSync(final)) rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  const keep = opts.keep ?? 2;
  const all = listCheckpoints(root);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) rmSync(old.dir, { recursive: true, force: true });
  return final;
}

/** Complete checkpoints under `root`, oldest first. */
export function listCheckpoints(root: string): { dir: string; step: number }[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((n) => ({ n, m: STEP_DIR.exec(n) }))
    .filter((x) => x.m && existsSync(join(root, x.n, 'state.json')))
    .map((x) => ({ dir: join(root, x.n), step: Number(x.m![1]) }))
    .sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(root: string): string | null {
  const all = listCheckpoints(root);
  return all.length ? all[all.length - 1]!.dir : null;
}

/** Read a checkpoint folder; clear errors for missing or corrupt parts. The caller owns the tensors. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) throw new Error(`loadCheckpoint: ${dir} is not a checkpoint (no state.json)`);
  let state: { format?: string; step?: number; rng?: unknown; optimizer?: unknown; config?: unknown; extra?: unknown };
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8'));
  } catch (e) {
    throw new Error(`loadCheckpoint: ${statePath} is not valid JSON (${(e as Error).message})`);
  }
  if (state.format !== 'mmlm-checkpoint' || !Number.isInteger(state.step))
    throw new Error(
      `loadCheckpoint: ${statePath} is not an mmlm checkpoint state (format ${JSON.stringify(state.format)}, step ${state.step})`,
    );
  const modelPath = join(dir, 'model.safetensors');
  if (!existsSync(modelPath)) throw new Error(`loadCheckpoint: ${modelPath} is missing`);
  const weights = (await loadSafetensors(modelPath)).tensors;
  let optimizer: Checkpoint['optimizer'];
  if (state.optimizer !== null && state.optimizer !== undefined) {
    const p = join(dir, 'optimizer.safetensors');
    if (!existsSync(p)) throw new Error(`loadCheckpoint: ${p} is missing but state.json has optimizer state`);
    optimizer = { tensors: (await loadSafetensors(p)).tensors, json: state.optimizer };
  }
  return {
    dir,
    step: state.step as number,
    weights,
    optimizer,
    rng: (state.rng ?? undefined) as Checkpoint['rng'],
    config: state.config ?? undefined,
    extra: state.extra ?? undefined,
  };
}
