/**
 * A minimal in-process experiment context (no progress bars, no reports): for tests and for
 * running an experiment from code. The lab app provides the full one.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { currentBackend, initBackend } from '../backend/init.js';
import { hasPreset } from './args.js';
import { makeSubrun } from './subrun.js';
import type { Experiment, ExperimentContext, ExperimentResult, ProgressHandle } from './types.js';

export interface InlineRunOptions {
  preset?: string;
  seed?: number;
  outDir: string;
  dataPath?: string;
  /** Where log lines go (default: nowhere). */
  log?: (line: string) => void;
}

export function inlineContext(exp: Experiment, opts: InlineRunOptions): ExperimentContext {
  const preset = opts.preset ?? 'tiny';
  if (!hasPreset(exp, preset))
    throw new Error(`experiment ${exp.id}: unknown preset "${preset}"; expected one of ${Object.keys(exp.presets).join(', ')}`);
  mkdirSync(opts.outDir, { recursive: true });
  const log = opts.log ?? (() => {});
  const progress = (name: string, total: number): ProgressHandle => ({
    tick: (step, info) => {
      if (step === total) log(`${name}: ${step}/${total} ${JSON.stringify(info ?? {})}`);
    },
    done: () => {},
  });
  const metric = (r: Record<string, unknown>) => appendFileSync(join(opts.outDir, 'metrics.jsonl'), `${JSON.stringify(r)}\n`);
  return {
    experimentId: exp.id,
    preset,
    seed: opts.seed ?? 0,
    backend: currentBackend()?.backend ?? 'unknown',
    outDir: opts.outDir,
    dataPath: opts.dataPath,
    log,
    progress,
    metric,
    subrun: makeSubrun({ dir: opts.outDir, log, progress, metric }),
  };
}

/** Run an experiment in-process with the inline context (initialises the backend if needed). */
export async function runExperimentInline(exp: Experiment, opts: InlineRunOptions): Promise<ExperimentResult> {
  if (!currentBackend()) await initBackend({ log: false });
  return exp.run(inlineContext(exp, opts));
}
