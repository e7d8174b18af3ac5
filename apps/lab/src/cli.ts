#!/usr/bin/env node
/**
 * mmlm-lab: list and run experiments, and rebuild the HTML index of runs.
 *
 *   mmlm-lab list
 *   mmlm-lab run <experiment id | paper | quickstart> [--preset P] [--seed N | --seeds 0,1,2] [--backend B] [--out DIR] [--data PATH] [--force] [--jobs N]
 *   mmlm-lab report [--out DIR]
 *   mmlm-lab docs [--out DIR] [--docs DIR] [--replace]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkDataFile, ensureOutDir, parseSeedList, parseSeedText, quoteArg, repeatedOptions, UsageError } from '@mmlm/core/experiment';
import { updateDocs } from './docs.js';
import { allExperiments, QUICKSTART, resolveTargets, type Target } from './registry.js';
import { buildIndex } from './report.js';
import { RunLockedError, RunMismatchError, runExperiment, WORKER_ENV } from './runner.js';
import { runSeeds } from './seeds.js';

export const USAGE = `usage: mmlm-lab <command> [options]

commands:
  list                              experiments with paper, claim, presets and expected time on a 2-core CPU
  run <id | paper | quickstart>     run one experiment, every experiment of a paper, or the curated quickstart
  report                            rebuild index.html over the runs in --out
  docs                              add the runs in --out to the docs/papers/<paper>.md pages that have lab:runs markers

run options:
  --preset <name>     preset (default: small; quickstart picks its own)
  --seed <n>          seed (default 0)
  --seeds <list>      run once per seed (comma-separated, e.g. 0,1,2), each into its <preset>-seed<n> folder,
                      then write mean ± std over the seeds to <id>/<preset>-seeds<0-1-2>/ (aggregate.json,
                      report.md); not together with --seed
  --backend <name>    tensorflow | wasm | cpu (default: auto, see @mmlm/core initBackend)
  --out <dir>         runs folder (default ./runs)
  --data <path>       a local data file for experiments that take one (e.g. a UTF-8 text corpus)
  --force             re-run even if the run already finished
  --jobs <n>          run the experiment's independent sub-runs (its arms) in n worker processes
                      side by side, one GEMM thread each unless MMLM_WASM_THREADS is set, then
                      finish the run here (default 1: one process; 2 on a 2-core machine)
  --progress <mode>   auto | bar | lines | none (default auto: a bar on a terminal, lines otherwise)

docs options:
  --docs <dir>        the docs folder (default ./docs)
  --replace           rewrite the sections of these runs already on a page (default: keep them as
                      they are, readings written beside them included; new runs are added either way)
`;

export { UsageError };

export interface ParsedArgs {
  command: 'list' | 'run' | 'report' | 'docs' | 'help';
  target?: string;
  preset?: string;
  seed: number;
  /** --seeds: distinct integers in [0, 2^32), ascending; absent for a single-seed run. */
  seeds?: number[];
  backend?: string;
  out: string;
  /** As given (made absolute); `checkRunArgs` checks it against the experiments. */
  data?: string;
  docs: string;
  /** docs --replace: rewrite a run's section already on the page. */
  replace: boolean;
  force: boolean;
  progress: 'auto' | 'bar' | 'lines' | 'none';
  /** --jobs: worker processes for the sub-runs (1: none). */
  jobs: number;
}

const RUN_ONLY = ['preset', 'seed', 'seeds', 'backend', 'data', 'force', 'progress', 'jobs'] as const;

/**
 * The command line, checked for everything that needs no experiment or file system: unknown or
 * repeated flags, seeds, backend, progress. Throws `UsageError` (one line naming the flag).
 */
export function parseCli(argv: string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: {
        preset: { type: 'string' },
        seed: { type: 'string' },
        seeds: { type: 'string' },
        backend: { type: 'string' },
        out: { type: 'string' },
        data: { type: 'string' },
        docs: { type: 'string' },
        force: { type: 'boolean' },
        replace: { type: 'boolean' },
        progress: { type: 'string' },
        jobs: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  const repeated = repeatedOptions(parsed.tokens ?? []);
  if (repeated.length)
    throw new UsageError(
      `--${repeated[0]} is given ${(parsed.tokens ?? []).filter((t) => t.kind === 'option' && t.name === repeated[0]).length} times; give it once`,
    );
  const [cmd, target, ...rest] = positionals;
  if (v.help || !cmd || cmd === 'help')
    return { command: 'help', seed: 0, out: 'runs', docs: 'docs', replace: false, force: false, progress: 'auto', jobs: 1 };
  if (!['list', 'run', 'report', 'docs'].includes(cmd))
    throw new UsageError(`unknown command "${cmd}"; expected list, run, report or docs`);
  if (cmd === 'run' && !target) throw new UsageError('run needs an experiment id, a paper name or "quickstart" (see `mmlm-lab list`)');
  if (cmd !== 'run' && target) throw new UsageError(`${cmd} takes no positional argument, got "${target}"`);
  if (rest.length) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  if (cmd !== 'run') for (const k of RUN_ONLY) if (v[k] !== undefined) throw new UsageError(`--${k} is an option of run, not of ${cmd}`);
  for (const k of ['docs', 'replace'] as const)
    if (cmd !== 'docs' && v[k] !== undefined) throw new UsageError(`--${k} is an option of docs, not of ${cmd}`);
  const seed = v.seed === undefined ? 0 : parseSeedText('--seed', v.seed as string);
  if (v.seeds !== undefined && v.seed !== undefined)
    throw new UsageError(
      `--seed and --seeds cannot be used together (got --seed ${v.seed} and --seeds ${v.seeds}); use --seeds ${v.seed} for one seed`,
    );
  const seeds = v.seeds === undefined ? undefined : parseSeedList('--seeds', v.seeds as string);
  const backend = v.backend as string | undefined;
  if (backend !== undefined && !['tensorflow', 'wasm', 'cpu'].includes(backend))
    throw new UsageError(`--backend ${quoteArg(backend)}: expected tensorflow, wasm or cpu`);
  const progress = (v.progress as string | undefined) ?? 'auto';
  if (!['auto', 'bar', 'lines', 'none'].includes(progress))
    throw new UsageError(`--progress ${quoteArg(progress)}: expected auto, bar, lines or none`);
  let jobs = 1;
  if (v.jobs !== undefined) {
    const t = v.jobs as string;
    jobs = /^\d+$/.test(t) ? Number(t) : Number.NaN;
    if (!(Number.isInteger(jobs) && jobs >= 1 && jobs <= 64))
      throw new UsageError(`--jobs ${quoteArg(t)}: expected an integer from 1 to 64`);
    if (jobs > 1 && isWorker()) throw new UsageError('--jobs: a worker does not start workers');
  }
  for (const k of ['preset', 'out', 'data', 'docs'] as const)
    if (v[k] !== undefined && !(v[k] as string).trim()) throw new UsageError(`--${k} "": expected a value`);
  return {
    command: cmd as ParsedArgs['command'],
    target,
    preset: v.preset as string | undefined,
    seed,
    ...(seeds ? { seeds } : {}),
    backend,
    out: resolve((v.out as string | undefined) ?? 'runs'),
    data: v.data === undefined ? undefined : resolve(v.data as string),
    docs: resolve((v.docs as string | undefined) ?? 'docs'),
    replace: Boolean(v.replace),
    force: Boolean(v.force),
    progress: progress as ParsedArgs['progress'],
    jobs,
  };
}

/** This process is a worker of a parallel run (`--jobs`; see runner.ts `runWorkers`). */
function isWorker(): boolean {
  return process.env[WORKER_ENV] === '1';
}

/**
 * What `run` needs checked against the experiments and the file system, before any backend start:
 * the target and preset, `--data` (only for experiments that read a file; a readable file), and
 * `--out` (created here, one level at a time). Throws `UsageError`.
 */
export function checkRunArgs(a: ParsedArgs): Target[] {
  let targets: Target[];
  try {
    targets = resolveTargets(a.target!, a.preset);
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError((e as Error).message);
  }
  if (a.data !== undefined)
    checkDataFile(
      a.data,
      targets.map((t) => t.experiment),
    );
  ensureOutDir(a.out);
  return targets;
}

/** `--seeds 0,1,2`: distinct integers in [0, 2^32), returned ascending; errors name the bad value. */
export function parseSeeds(text: string): number[] {
  return parseSeedList('--seeds', text);
}

export function listText(): string {
  const lines: string[] = [];
  for (const e of allExperiments()) {
    lines.push(`${e.id}  [${e.paper}]`);
    lines.push(`    claim: ${e.claim}`);
    for (const [name, p] of Object.entries(e.presets))
      lines.push(`    --preset ${name.padEnd(6)} ~${p.expectedMinutes} min: ${p.description}`);
  }
  lines.push('', `quickstart: ${QUICKSTART.map((q) => `${q.id} (${q.preset})`).join(', ')}`);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let a: ParsedArgs;
  let targets: Target[] = [];
  try {
    a = parseCli(argv);
    if (a.command === 'run') targets = checkRunArgs(a);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`mmlm-lab: ${e.message}\n(mmlm-lab --help lists the commands and options)\n`);
      return 2;
    }
    throw e;
  }
  if (a.command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (a.command === 'list') {
    process.stdout.write(`${listText()}\n`);
    return 0;
  }
  if (a.command === 'docs') {
    const updates = updateDocs(a.out, a.docs, { replace: a.replace });
    if (!updates.length) process.stdout.write(`no docs page (with lab:runs markers) matched a run in ${a.out}\n`);
    for (const u of updates) {
      process.stdout.write(`${u.page}: ${u.added.length} added, ${u.replaced.length} replaced, ${u.kept.length} kept\n`);
      for (const h of u.added) process.stdout.write(`  added    ${h}\n`);
      for (const h of u.replaced) process.stdout.write(`  replaced ${h}\n`);
      for (const h of u.kept) process.stdout.write(`  kept     ${h} (already on the page; --replace rewrites it)\n`);
    }
    return 0;
  }
  if (a.command === 'report') {
    process.stdout.write(`${buildIndex(a.out)}\n`);
    return 0;
  }
  const t0 = performance.now();
  try {
    for (const t of targets) {
      if (a.seeds) {
        await runSeeds(t.experiment, {
          preset: t.preset,
          seeds: a.seeds,
          outRoot: a.out,
          backend: a.backend,
          dataPath: a.data,
          force: a.force,
          progress: a.progress,
          jobs: a.jobs,
        });
        continue;
      }
      await runExperiment(t.experiment, {
        preset: t.preset,
        seed: a.seed,
        outRoot: a.out,
        backend: a.backend,
        dataPath: a.data,
        force: a.force,
        progress: a.progress,
        jobs: a.jobs,
        worker: isWorker(),
      });
    }
    // a worker's part ends with its sub-runs: the parent finishes the run and the index
    if (isWorker()) return 0;
  } catch (e) {
    if (e instanceof RunMismatchError || e instanceof RunLockedError) {
      process.stderr.write(`mmlm-lab: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const index = buildIndex(a.out);
  process.stdout.write(`\nall done in ${((performance.now() - t0) / 1000).toFixed(1)} s. Report: ${index}\n`);
  return 0;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href;
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`mmlm-lab: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
