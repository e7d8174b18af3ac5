/**
 * Resumable sub-runs (`ctx.subrun`), shared by the inline context and the lab's runner: a sub-run's
 * folder is `<parent>/subruns/<safe name>`; its JSON result is saved there as result.json when the
 * body returns, and a later run of the same folder returns that result without running the body.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../io/safetensors.js';
import type { ExperimentContext, ProgressHandle, SubrunContext } from './types.js';

export interface SubrunHost {
  /** The folder whose `subruns/` holds the sub-runs (the run's folder, or a parent sub-run's). */
  dir: string;
  log(line: string): void;
  progress(name: string, total: number): ProgressHandle;
  /** Append one record to the run's metrics.jsonl (the sub-run context adds `subrun`). */
  metric(record: Record<string, unknown>): void;
  /** Called when a finished sub-run is reused (default: nothing). */
  onReuse?(name: string): void;
}

/** A sub-run's folder name: anything outside [A-Za-z0-9_.-] becomes '_'. */
export function subrunFolderName(name: string): string {
  return name.replace(/[^\w.-]+/g, '_');
}

/**
 * `ctx.subrun` for a host; `prefix` is the parent sub-run's full name for nested sub-runs (their
 * names are joined with '/').
 */
export function makeSubrun(host: SubrunHost, prefix?: string): ExperimentContext['subrun'] {
  return async <T>(name: string, fn: (dir: string, sub: SubrunContext) => Promise<T>): Promise<T> => {
    const full = prefix ? `${prefix}/${name}` : name;
    const dir = join(host.dir, 'subruns', subrunFolderName(name));
    const done = join(dir, 'result.json');
    if (existsSync(done)) {
      host.onReuse?.(full);
      return JSON.parse(readFileSync(done, 'utf8')) as T;
    }
    mkdirSync(dir, { recursive: true });
    const sub: SubrunContext = {
      name: full,
      dir,
      log: host.log,
      progress: host.progress,
      metric: ({ subrun: _, ...r }) => host.metric({ subrun: full, ...r }),
      subrun: makeSubrun({ ...host, dir }, full),
    };
    const r = await fn(dir, sub);
    // a body that returns nothing is saved as null (JSON has no undefined); a reuse returns null
    writeFileAtomicSync(done, r === undefined ? 'null' : JSON.stringify(r, null, 2));
    return r;
  };
}
