/**
 * Resumable sub-runs (`ctx.subrun`), shared by the inline context and the lab's runner: a sub-run's
 * folder is `<parent>/subruns/<safe name>`; its JSON result is saved there as result.json when the
 * body returns, and a later run of the same folder returns that result without running the body.
 *
 * Parallel workers (the lab's `--jobs`): with `claimSubruns`, several processes run the same
 * experiment in one folder; each top-level sub-run is taken by the first process that creates its
 * `<safe name>.claim` file (O_EXCL), the others skip its body (the call resolves to undefined) and
 * move on to the next one, or, for a `shared` sub-run (a prerequisite of the later ones), wait for
 * its result. A parent run then reuses every finished sub-run.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../io/safetensors.js';
import type { ExperimentContext, ProgressHandle, SubrunContext, SubrunOptions } from './types.js';

export interface SubrunHost {
  /** The folder whose `subruns/` holds the sub-runs (the run's folder, or a parent sub-run's). */
  dir: string;
  log(line: string): void;
  progress(name: string, total: number): ProgressHandle;
  /** Append one record to the run's metrics.jsonl (the sub-run context adds `subrun`). */
  metric(record: Record<string, unknown>): void;
  /** Called when a finished sub-run is reused (default: nothing). */
  onReuse?(name: string): void;
  /**
   * Worker mode (top-level sub-runs only): take a sub-run before running its body. Return a claim,
   * or null when another process holds it (the body is skipped and the call resolves to undefined).
   * `claimSubruns` is the file-based implementation.
   */
  claim?(name: string, dir: string): SubrunClaim | null;
  /** How often a worker waiting for a shared sub-run looks for its result (default 1000 ms). */
  waitPollMs?: number;
}

/**
 * Wait until the sub-run in `dir` has a result; throws when its claim is gone without one (the
 * worker that held it failed or was stopped).
 */
async function waitForResult(name: string, dir: string, pollMs: number): Promise<void> {
  const done = join(dir, 'result.json');
  for (;;) {
    if (existsSync(done)) return;
    if (!existsSync(subrunClaimPath(dir))) {
      if (existsSync(done)) return;
      throw new Error(`sub-run "${name}" stopped in another worker before it finished; its log says why (a rerun resumes it)`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** A sub-run taken by this process: released (after its result is saved, or after a failure). */
export interface SubrunClaim {
  release(): void;
  /** The body threw: the worker reports it as a failure (an error outside any claimed body is not one). */
  failed(error: unknown): void;
}

/** The claim file of a top-level sub-run folder: `<subruns>/<safe name>.claim`. */
export function subrunClaimPath(subrunDir: string): string {
  return `${subrunDir}.claim`;
}

/**
 * File claims for parallel workers: `<subrun folder>.claim`, created exclusively (holding the pid);
 * `onFailure` hears of a claimed body that threw.
 */
export function claimSubruns(onFailure: (name: string, error: unknown) => void): NonNullable<SubrunHost['claim']> {
  return (name, dir) => {
    const path = subrunClaimPath(dir);
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return null;
      throw e;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return {
      release: () => {
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      },
      failed: (error) => onFailure(name, error),
    };
  };
}

/**
 * JSON that keeps non-finite numbers: NaN, Infinity and -Infinity are written as
 * `{"$number": "NaN"}` (plain JSON would turn them into null, so a resumed run would report null
 * where the first run reported NaN), and read back as numbers.
 */
export function stringifyResult(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? { $number: String(v) } : v), 2);
}

/** The inverse of `stringifyResult`. */
export function parseResult(text: string): unknown {
  return JSON.parse(text, (_k, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === '$number' && ['NaN', 'Infinity', '-Infinity'].includes(v.$number)) return Number(v.$number);
    }
    return v;
  });
}

/** A sub-run's folder name: anything outside [A-Za-z0-9_.-] becomes '_'. */
export function subrunFolderName(name: string): string {
  return name.replace(/[^\w.-]+/g, '_');
}

/**
 * The folder of the top-level sub-run `name` of a run whose folder is `ctx.outDir`: the folder
 * `ctx.subrun(name, fn)` hands `fn`, also when a finished sub-run is reused and `fn` does not run.
 * Read a sub-run's files from here rather than from a path stored in its result: a run folder that
 * was moved or copied then still reads its own files, never the old location's.
 */
export function subrunDir(ctx: { outDir: string }, name: string): string {
  return join(ctx.outDir, 'subruns', subrunFolderName(name));
}

/**
 * `ctx.subrun` for a host; `prefix` is the parent sub-run's full name for nested sub-runs (their
 * names are joined with '/').
 */
export function makeSubrun(host: SubrunHost, prefix?: string): ExperimentContext['subrun'] {
  return async <T>(name: string, fn: (dir: string, sub: SubrunContext) => Promise<T>, opts?: SubrunOptions): Promise<T> => {
    const full = prefix ? `${prefix}/${name}` : name;
    const dir = subrunDir({ outDir: host.dir }, name); // one definition of a sub-run's folder
    const done = join(dir, 'result.json');
    const reuse = () => {
      host.onReuse?.(full);
      return parseResult(readFileSync(done, 'utf8')) as T;
    };
    if (existsSync(done)) return reuse();
    let claim: SubrunClaim | null = null;
    if (host.claim) {
      mkdirSync(join(host.dir, 'subruns'), { recursive: true });
      claim = host.claim(full, dir);
      if (!claim && opts?.shared) {
        host.log(`  sub-run "${full}" is being trained by another worker; waiting for its result`);
        await waitForResult(full, dir, host.waitPollMs ?? 1000);
        return reuse();
      }
      if (!claim) {
        host.log(`  sub-run "${full}" is taken by another worker; skipping it`);
        return undefined as T;
      }
      // it may have finished between the check above and the claim
      if (existsSync(done)) {
        claim.release();
        return reuse();
      }
    }
    mkdirSync(dir, { recursive: true });
    const sub: SubrunContext = {
      name: full,
      dir,
      log: host.log,
      progress: host.progress,
      metric: ({ subrun: _, ...r }) => host.metric({ subrun: full, ...r }),
      // nested sub-runs run inside this one's body: no claims
      subrun: makeSubrun({ ...host, dir, claim: undefined }, full),
    };
    try {
      const r = await fn(dir, sub);
      // a body that returns nothing is saved as null (JSON has no undefined); a reuse returns null
      writeFileAtomicSync(done, r === undefined ? 'null' : stringifyResult(r));
      return r;
    } catch (e) {
      claim?.failed(e);
      throw e;
    } finally {
      claim?.release();
    }
  };
}
