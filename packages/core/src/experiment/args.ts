/**
 * Command-line checks shared by the lab and `runExperimentCli`: seeds, presets, data files and
 * output folders. Each failure is a `UsageError` with one line naming the flag, the value and what
 * is expected; callers print it and exit 2 before any backend start or folder creation.
 */
import { closeSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Experiment } from './types.js';

/** A bad command line: print `message` (one line) and exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Seeds are unsigned 32-bit integers (the RNGs fold a seed to 32 bits; larger ones would alias). */
export const MAX_SEED = 2 ** 32 - 1;

/** Shown where a value is echoed back: at most 80 characters, control characters escaped. */
export function quoteArg(value: string): string {
  const s = JSON.stringify(value);
  return s.length > 82 ? `${s.slice(0, 80)}…"` : s;
}

/** One seed given as `text` to `flag`: a decimal integer in [0, 2^32); anything else throws. */
export function parseSeedText(flag: string, text: string): number {
  const s = text.trim();
  if (!/^\d+$/.test(s)) throw new UsageError(`${flag} ${quoteArg(text)}: expected a decimal integer in [0, ${MAX_SEED}] (e.g. ${flag} 0)`);
  const n = Number(s);
  if (n > MAX_SEED) throw new UsageError(`${flag} ${quoteArg(text)}: seeds are 32-bit, expected a decimal integer in [0, ${MAX_SEED}]`);
  return n;
}

/** `--seeds 0,1,2`: distinct seeds (each a decimal integer in [0, 2^32)), returned ascending. */
export function parseSeedList(flag: string, text: string): number[] {
  if (!text.trim()) throw new UsageError(`${flag} "": expected a comma-separated list of decimal integers, e.g. ${flag} 0,1,2`);
  const seeds: number[] = [];
  for (const part of text.split(',')) {
    const s = part.trim();
    const n = /^\d+$/.test(s) ? Number(s) : Number.NaN;
    if (!(n <= MAX_SEED))
      throw new UsageError(
        `${flag} ${quoteArg(text)}: ${quoteArg(s)} is ${/^-\d+$/.test(s) ? 'negative' : /^\d+$/.test(s) ? 'above 2^32 - 1 (seeds are 32-bit)' : 'not a decimal integer'}; expected integers in [0, ${MAX_SEED}], e.g. ${flag} 0,1,2`,
      );
    if (seeds.includes(n)) throw new UsageError(`${flag} ${quoteArg(text)}: seed ${n} is listed twice`);
    seeds.push(n);
  }
  return seeds.sort((a, b) => a - b);
}

/** Whether `exp` has a preset called `name` (own keys only: `constructor` or `__proto__` are not presets). */
export function hasPreset(exp: Pick<Experiment, 'presets'>, name: string): boolean {
  return Object.hasOwn(exp.presets, name);
}

/** Throws a UsageError naming `flag` unless `exp` has the preset. */
export function checkPreset(exp: Pick<Experiment, 'id' | 'presets'>, name: string, flag = '--preset'): void {
  if (!hasPreset(exp, name))
    throw new UsageError(`${flag} ${quoteArg(name)}: ${exp.id} has no such preset; expected one of ${Object.keys(exp.presets).join(', ')}`);
}

/**
 * `--data PATH` for experiments `exps`: each must declare that it reads a data file
 * (`Experiment.data`), and PATH must be a readable regular file. Returns the absolute path.
 */
export function checkDataFile(path: string, exps: readonly Pick<Experiment, 'id' | 'data'>[], flag = '--data'): string {
  const ignoring = exps.filter((e) => !e.data).map((e) => e.id);
  if (ignoring.length)
    throw new UsageError(
      `${flag} ${quoteArg(path)}: ${ignoring.join(', ')} ${ignoring.length > 1 ? 'read' : 'reads'} no data file; drop ${flag}`,
    );
  const abs = resolve(path);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(abs);
  } catch (e) {
    throw new UsageError(`${flag} ${quoteArg(path)}: ${describeFsError(e)}; expected an existing file`);
  }
  if (!st.isFile()) throw new UsageError(`${flag} ${quoteArg(path)}: not a regular file; expected a file`);
  try {
    const fd = openSync(abs, 'r');
    try {
      readSync(fd, Buffer.alloc(1), 0, 1, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new UsageError(`${flag} ${quoteArg(path)}: cannot be read (${describeFsError(e)})`);
  }
  return abs;
}

/**
 * `--out DIR`: the folder exists as a directory, or is created here one level at a time (Node's
 * recursive mkdir never returns on some paths, e.g. under /proc); a failure names the flag and the
 * folder that could not be made. Returns the absolute path.
 */
export function ensureOutDir(path: string, flag = '--out'): string {
  const abs = resolve(path);
  const missing: string[] = [];
  let p = abs;
  for (;;) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`${flag} ${quoteArg(path)}: ${describeFsError(e)} at ${p}`);
    }
    if (st) {
      if (!st.isDirectory()) throw new UsageError(`${flag} ${quoteArg(path)}: ${p} is not a directory; expected a folder`);
      break;
    }
    missing.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const m of missing) {
    try {
      mkdirSync(m);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new UsageError(`${flag} ${quoteArg(path)}: cannot create ${m} (${describeFsError(e)}); expected a writable folder`);
    }
  }
  return abs;
}

/** An fs error in words without the raw errno text (`ENOENT: no such file …, stat '/x'`). */
export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  const words: Record<string, string> = {
    ENOENT: 'no such file or folder',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOTDIR: 'a path component is not a folder',
    EISDIR: 'is a folder',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    ELOOP: 'too many symbolic links',
    ENAMETOOLONG: 'name too long',
  };
  return (code && words[code]) ?? (code ? `error ${code}` : String((e as Error)?.message ?? e));
}

/**
 * Option names given more than once in `args` (`--seed 1 --seed 2`): util.parseArgs keeps the last
 * silently, so the tokens are counted here. `--name=value` and short aliases count as their option.
 */
export function repeatedOptions(tokens: readonly { kind: string; name?: string }[]): string[] {
  const count = new Map<string, number>();
  for (const t of tokens) if (t.kind === 'option' && t.name) count.set(t.name, (count.get(t.name) ?? 0) + 1);
  return [...count].filter(([, n]) => n > 1).map(([k]) => k);
}
