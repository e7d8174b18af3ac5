#!/usr/bin/env node
/**
 * mmlm-lab: list and run experiments, and rebuild the HTML index of runs.
 *
 *   mmlm-lab list
 *   mmlm-lab run <experiment id | paper | quickstart> [--preset P] [--seed N | --seeds 0,1,2] [--backend B] [--out DIR] [--data PATH] [--force]
 *   mmlm-lab report [--out DIR]
 *   mmlm-lab docs [--out DIR] [--docs DIR]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { updateDocs } from './docs.js';
import { allExperiments, QUICKSTART, resolveTargets } from './registry.js';
import { buildIndex } from './report.js';
import { runExperiment } from './runner.js';
import { runSeeds } from './seeds.js';

export const USAGE = `usage: mmlm-lab <command> [options]

commands:
  list                              experiments with paper, claim, presets and expected time on a 2-core CPU
  run <id | paper | quickstart>     run one experiment, every experiment of a paper, or the curated quickstart
  report                            rebuild index.html over the runs in --out
  docs                              copy the runs in --out into the docs/papers/<paper>.md pages (between their lab:runs markers)

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
  --progress <mode>   auto | bar | lines | none (default auto: a bar on a terminal, lines otherwise)

docs options:
  --docs <dir>        the docs folder (default ./docs)
`;

export class UsageError extends Error {}

export interface ParsedArgs {
  command: 'list' | 'run' | 'report' | 'docs' | 'help';
  target?: string;
  preset?: string;
  seed: number;
  /** --seeds: distinct non-negative integers, ascending; absent for a single-seed run. */
  seeds?: number[];
  backend?: string;
  out: string;
  data?: string;
  docs: string;
  force: boolean;
  progress: 'auto' | 'bar' | 'lines' | 'none';
}

export function parseCli(argv: string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        preset: { type: 'string' },
        seed: { type: 'string' },
        seeds: { type: 'string' },
        backend: { type: 'string' },
        out: { type: 'string' },
        data: { type: 'string' },
        docs: { type: 'string' },
        force: { type: 'boolean' },
        progress: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  const [cmd, target, ...rest] = positionals;
  if (v.help || !cmd || cmd === 'help') return { command: 'help', seed: 0, out: 'runs', docs: 'docs', force: false, progress: 'auto' };
  if (!['list', 'run', 'report', 'docs'].includes(cmd))
    throw new UsageError(`unknown command "${cmd}"; expected list, run, report or docs`);
  if (cmd === 'run' && !target) throw new UsageError('run needs an experiment id, a paper name or "quickstart" (see `mmlm-lab list`)');
  if (cmd !== 'run' && target) throw new UsageError(`${cmd} takes no positional argument, got "${target}"`);
  if (rest.length) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  const seed = v.seed === undefined ? 0 : Number(v.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got "${v.seed}"`);
  if (v.seeds !== undefined && v.seed !== undefined)
    throw new UsageError(
      `--seed and --seeds cannot be used together (got --seed ${v.seed} and --seeds ${v.seeds}); use --seeds ${v.seed} for one seed`,
    );
  if (v.seeds !== undefined && cmd !== 'run') throw new UsageError(`--seeds is an option of run, not of ${cmd}`);
  const seeds = v.seeds === undefined ? undefined : parseSeeds(v.seeds as string);
  const backend = v.backend as string | undefined;
  if (backend && !['tensorflow', 'wasm', 'cpu'].includes(backend))
    throw new UsageError(`--backend must be tensorflow, wasm or cpu, got "${backend}"`);
  const progress = (v.progress as string | undefined) ?? 'auto';
  if (!['auto', 'bar', 'lines', 'none'].includes(progress))
    throw new UsageError(`--progress must be auto, bar, lines or none, got "${progress}"`);
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
    force: Boolean(v.force),
    progress: progress as ParsedArgs['progress'],
  };
}

/** `--seeds 0,1,2`: distinct non-negative integers, returned ascending; errors name the bad value. */
export function parseSeeds(text: string): number[] {
  if (!text.trim()) throw new UsageError('--seeds needs a comma-separated list of non-negative integers, e.g. --seeds 0,1,2; got ""');
  const seeds: number[] = [];
  for (const part of text.split(',')) {
    const s = part.trim();
    if (/^-\d+$/.test(s)) throw new UsageError(`--seeds: "${s}" is negative; seeds are non-negative integers (in "${text}")`);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)))
      throw new UsageError(`--seeds: "${s}" is not a non-negative integer (in "${text}"); expected e.g. --seeds 0,1,2`);
    const n = Number(s);
    if (seeds.includes(n)) throw new UsageError(`--seeds: seed ${n} is listed twice (in "${text}")`);
    seeds.push(n);
  }
  return seeds.sort((a, b) => a - b);
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
  try {
    a = parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`mmlm-lab: ${e.message}\n\n${USAGE}`);
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
    const pages = updateDocs(a.out, a.docs);
    process.stdout.write(pages.length ? `updated:\n${pages.join('\n')}\n` : `no docs page matched a run in ${a.out}\n`);
    return 0;
  }
  if (a.command === 'report') {
    process.stdout.write(`${buildIndex(a.out)}\n`);
    return 0;
  }
  let targets: ReturnType<typeof resolveTargets>;
  try {
    targets = resolveTargets(a.target!, a.preset);
  } catch (e) {
    process.stderr.write(`mmlm-lab: ${(e as Error).message}\n`);
    return 2;
  }
  const t0 = performance.now();
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
    });
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
