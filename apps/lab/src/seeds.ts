/**
 * `mmlm-lab run <id> --seeds 0,1,2`: one run per seed, each in its usual folder
 * runs/<id>/<preset>-seed<N>/ (finished ones are reused), then the aggregate in
 * runs/<id>/<preset>-seeds<0-1-2>/ (aggregate.json, report.md; see aggregate.ts).
 */
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type Experiment, hasPreset, MAX_SEED, type Table } from '@mmlm/core/experiment';
import { type AggregateRecord, aggregateFolderName, buildAggregate, renderAggregateMarkdown } from './aggregate.js';
import { commandOptions, dataKey, gitRevision, type RunOptions, type RunRecord, runExperiment } from './runner.js';
import { writeAtomic } from './util.js';

export interface SeedsRunOptions extends Omit<RunOptions, 'seed'> {
  /** Distinct non-negative integers (run and listed in ascending order). */
  seeds: number[];
}

/** Throws unless `seeds` is a non-empty list of distinct integers in [0, 2^32); returns them ascending. */
export function checkSeeds(seeds: readonly number[]): number[] {
  if (!seeds.length) throw new Error('seeds: the list is empty; give at least one seed, e.g. 0,1,2');
  const seen = new Set<number>();
  for (const s of seeds) {
    if (!Number.isInteger(s) || s < 0 || s > MAX_SEED) throw new Error(`seeds: ${s} is not an integer in [0, ${MAX_SEED}]`);
    if (seen.has(s)) throw new Error(`seeds: seed ${s} is listed twice`);
    seen.add(s);
  }
  return [...seeds].sort((a, b) => a - b);
}

/** `<out>/<id>/<preset>-seeds<0-1-2>`, with the data key of `runDir` when a data file is given. */
export function aggregateDir(outRoot: string, exp: Experiment, preset: string, seeds: readonly number[], dataPath?: string): string {
  return join(outRoot, exp.id, `${aggregateFolderName(preset, seeds)}${dataPath ? `-${dataKey(dataPath)}` : ''}`);
}

/** Run `exp` once per seed (reusing finished runs), then write the aggregate; returns its folder and record. */
export async function runSeeds(
  exp: Experiment,
  opts: SeedsRunOptions,
): Promise<{ dir: string; aggregate: AggregateRecord; runs: { dir: string; record: RunRecord; skipped: boolean }[] }> {
  const seeds = checkSeeds(opts.seeds);
  if (!hasPreset(exp, opts.preset))
    throw new Error(`experiment "${exp.id}" has no preset "${opts.preset}"; expected one of: ${Object.keys(exp.presets).join(', ')}`);
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const { seeds: _, ...single } = opts;
  const runs: { dir: string; record: RunRecord; skipped: boolean }[] = [];
  for (const seed of seeds) runs.push(await runExperiment(exp, { ...single, seed, log }));
  const dir = aggregateDir(opts.outRoot, exp, opts.preset, seeds, opts.dataPath);
  mkdirSync(dir, { recursive: true });
  let extra: { tables?: Table[]; summary?: string } | undefined;
  let aggregateError: string | undefined;
  if (exp.aggregate) {
    try {
      extra = exp.aggregate(
        runs.map((r) => r.record.result),
        seeds,
      );
    } catch (e) {
      aggregateError = (e as Error).message;
    }
  }
  const command = `pnpm lab run ${exp.id} --preset ${opts.preset} --seeds ${seeds.join(',')}${commandOptions(exp, opts)}`;
  const aggregate = buildAggregate(
    runs.map((r) => r.record),
    { seeds, runDirs: runs.map((r) => relative(dir, r.dir)), command, gitRevision: gitRevision(), extra, aggregateError },
  );
  writeAtomic(join(dir, 'report.md'), renderAggregateMarkdown(aggregate));
  writeAtomic(join(dir, 'aggregate.json'), JSON.stringify(aggregate, null, 2));
  if (aggregateError) throw new Error(`${exp.id}: aggregate() failed: ${aggregateError} (the generic aggregate was written to ${dir})`);
  log(`aggregated ${exp.id} over seeds ${seeds.join(', ')}: ${join(dir, 'report.md')}`);
  return { dir, aggregate, runs };
}
