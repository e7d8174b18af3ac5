/**
 * A small command line for one paper package's experiments, so a package installed on its own
 * from npm can run its reproductions without the lab app:
 *
 *   runExperimentCli(experiments, { name: '@mmlm/latentlm' });
 *   // node repro.js <experiment-id> [preset] [--preset P] [--seed N | --seeds 0,1,2] [--backend B] [--out DIR] [--data FILE] [--force]
 *
 * It runs the experiment with the inline context (same code path as `pnpm lab run`, without
 * progress bars or the HTML report), writes `result.json` atomically beside the run's files and
 * prints the tables as markdown. The lab app is the full runner.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { currentBackend, initBackend } from '../backend/init.js';
import { writeFileAtomicSync } from '../io/safetensors.js';
import { checkDataFile, checkPreset, ensureOutDir, parseSeedList, parseSeedText, quoteArg, repeatedOptions, UsageError } from './args.js';
import { runExperimentInline } from './inline.js';
import type { Experiment, ExperimentResult, Table } from './types.js';

export interface ExperimentCliOptions {
  /** The package name, for the usage line. */
  name: string;
  /** Arguments after the script (default `process.argv.slice(2)`). */
  argv?: string[];
  /** Where text goes (default console.log / console.error). */
  out?: (line: string) => void;
  err?: (line: string) => void;
}

/**
 * Text for markdown outside code: `<` outside backtick spans becomes `&lt;`, so token names such as
 * <BOD> / <EOD> are shown instead of being swallowed as HTML tags.
 */
export function markdownText(s: string): string {
  return s
    .split(/(`[^`]*`)/)
    .map((part, i) =>
      i % 2 === 1
        ? part
        : part
            .replace(/</g, '&lt;')
            .replaceAll(`&lt;span style="color:${WARNING_COLOUR}">`, WARNING_OPEN)
            .replaceAll('&lt;/span>', '</span>'),
    )
    .join('');
}

const WARNING_COLOUR = '#c00';
const WARNING_OPEN = `<span style="color:${WARNING_COLOUR}">`;

/**
 * A warning for reports: red where the renderer keeps inline styles (the lab's HTML pages), and
 * marked with a warning sign where it does not (GitHub strips styles). `markdownText` keeps exactly
 * this span and escapes every other `<`.
 */
export function warningText(s: string): string {
  return `${WARNING_OPEN}⚠ ${s}</span>`;
}

/** A table cell: null as an em dash, integers as they are, other numbers to 4 significant digits. */
export function formatCell(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number')
    return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 || Math.abs(v) < 1e-3 ? v.toExponential(3) : v.toPrecision(4);
  return String(v);
}

/**
 * A number for summaries and tables at `digits` decimals; null, undefined, NaN and ±Infinity give
 * `missing` (default 'n/a'). The one copy of the paper packages' `fmt`.
 */
export function formatFixed(x: number | null | undefined, digits = 3, missing = 'n/a'): string {
  return x === null || x === undefined || !Number.isFinite(x) ? missing : x.toFixed(digits);
}

/** Markdown for one result table (a bold title, the table, its note). */
export function tableToMarkdown(t: Table): string {
  const cell = (v: string | number | boolean | null | undefined) => markdownText(formatCell(v)).replace(/\|/g, '\\|');
  return [
    `**${markdownText(t.title)}**`,
    '',
    `| ${t.columns.map(cell).join(' | ')} |`,
    `| ${t.columns.map(() => '---').join(' | ')} |`,
    ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
    ...(t.note ? ['', markdownText(t.note)] : []),
  ].join('\n');
}

/** The flags `runExperimentCli` takes (the lab's `run` flags, same meanings). */
const CLI_USAGE = `[preset] [--preset P] [--seed N | --seeds 0,1,2] [--backend tensorflow|wasm|cpu] [--out DIR] [--data FILE] [--force] [--progress MODE] [--help]`;

/**
 * Parse the arguments (the lab's `run` flags: \`<id> [preset]\` or \`--preset\`, \`--seed\` or
 * \`--seeds\`, \`--backend\`, \`--out\` (the runs folder: the run goes to
 * \`<out>/<id>/<preset>-seed<N>\`), \`--data\`, \`--force\`, \`--progress\`, \`--help\`), run the
 * experiment once per seed, print its tables and summary (and the experiment's own aggregate over
 * several seeds). A finished run (its result.json) is shown again unless \`--force\`. Returns the exit
 * code (0 ok, 2 bad arguments, printed as one line before any backend start or folder creation)
 * instead of exiting, so it can be tested; throws what the run throws. \`result\` / \`outDir\` are the
 * last seed's.
 */
export async function runExperimentCli(
  experiments: readonly Experiment[],
  opts: ExperimentCliOptions,
): Promise<{ code: number; result?: ExperimentResult; outDir?: string }> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const err = opts.err ?? ((l: string) => console.error(l));
  const usageText = () =>
    `usage: ${opts.name} repro <experiment-id> ${CLI_USAGE}\n` +
    experiments
      .map((e) => `  ${e.id}  presets: ${Object.keys(e.presets).join(', ')}${e.data ? `; --data: ${e.data.description}` : ''}`)
      .join('\n');
  let args: CliArgs;
  try {
    args = parseCliArgs(experiments, opts.argv ?? process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`${opts.name} repro: ${e.message}`);
    err(`(${opts.name} repro --help lists the experiments and options)`);
    return { code: 2 };
  }
  if (args.help) {
    out(usageText());
    return { code: 0 };
  }
  const { exp, preset, seeds } = args;
  if (args.backend || !currentBackend()) await initBackend(args.backend ? { backend: args.backend } : {});
  const backend = currentBackend()?.backend ?? 'unknown';
  const results: ExperimentResult[] = [];
  let outDir = '';
  for (const seed of seeds) {
    outDir = join(args.outRoot, exp.id, `${preset}-seed${seed}`);
    const file = join(outDir, 'result.json');
    let saved: (ExperimentResult & { backend?: string; minutes?: number; cpuMinutes?: number }) | undefined;
    if (!args.force && existsSync(file)) {
      try {
        saved = JSON.parse(readFileSync(file, 'utf8')) as typeof saved;
      } catch {
        saved = undefined; // unreadable: run again
      }
    }
    if (args.force) rmSync(outDir, { recursive: true, force: true });
    let result: ExperimentResult;
    let minutes = saved?.minutes ?? 0;
    let cpuMinutes = saved?.cpuMinutes ?? 0;
    if (saved) {
      err(`${exp.id} ${preset}, seed ${seed}: already finished in ${outDir} (--force reruns it)`);
      result = saved;
    } else {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      result = await runExperimentInline(exp, {
        preset,
        seed,
        outDir,
        dataPath: args.data,
        log: args.progress === 'none' ? () => {} : err,
      });
      minutes = (performance.now() - t0) / 60000;
      const cpu = process.cpuUsage(cpu0);
      cpuMinutes = (cpu.user + cpu.system) / 60e6;
      writeFileAtomicSync(
        file,
        JSON.stringify({ id: exp.id, preset, seed, backend, dataPath: args.data ?? null, minutes, cpuMinutes, ...result }, null, 2),
      );
    }
    results.push(result);
    for (const t of result.tables ?? []) out(`\n${tableToMarkdown(t)}`);
    if (result.summary) out(`\n${markdownText(result.summary)}`);
    out(
      `\n(${exp.id} ${preset}, seed ${seed}, backend ${saved?.backend ?? backend}, ${minutes.toFixed(1)} min wall, ${cpuMinutes.toFixed(1)} min CPU; output in ${outDir})`,
    );
  }
  if (seeds.length > 1 && exp.aggregate) {
    const agg = exp.aggregate(results, seeds);
    out(`\n## ${exp.id} over seeds ${seeds.join(', ')}`);
    for (const t of agg.tables ?? []) out(`\n${tableToMarkdown(t)}`);
    if (agg.summary) out(`\n${markdownText(agg.summary)}`);
  }
  return { code: 0, result: results[results.length - 1], outDir };
}

interface CliArgs {
  help: boolean;
  exp: Experiment;
  preset: string;
  seeds: number[];
  backend?: string;
  outRoot: string;
  data?: string;
  force: boolean;
  progress: string;
}

/** Everything checked before any backend start; the runs folder is created last. Throws UsageError. */
function parseCliArgs(experiments: readonly Experiment[], argv: string[]): CliArgs {
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
        force: { type: 'boolean' },
        progress: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { positionals, values: v } = parsed;
  const repeated = repeatedOptions(parsed.tokens ?? []);
  if (repeated.length) throw new UsageError(`--${repeated[0]} is given more than once; give it once`);
  if (v.help) return { help: true } as CliArgs;
  const [id, positionalPreset, ...rest] = positionals;
  if (rest.length) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  if (!id) throw new UsageError('no experiment id given');
  const exp = experiments.find((e) => e.id === id);
  if (!exp) throw new UsageError(`unknown experiment ${quoteArg(id)}; expected one of ${experiments.map((e) => e.id).join(', ')}`);
  if (positionalPreset !== undefined && v.preset !== undefined)
    throw new UsageError(
      `the preset is given twice (${quoteArg(positionalPreset)} and --preset ${quoteArg(v.preset as string)}); give it once`,
    );
  const preset = (v.preset as string | undefined) ?? positionalPreset ?? 'small';
  checkPreset(exp, preset, positionalPreset !== undefined ? 'preset' : '--preset');
  if (v.seed !== undefined && v.seeds !== undefined)
    throw new UsageError('--seed and --seeds cannot be used together; use --seeds N for one seed');
  const seeds =
    v.seeds !== undefined
      ? parseSeedList('--seeds', v.seeds as string)
      : [v.seed === undefined ? 0 : parseSeedText('--seed', v.seed as string)];
  const backend = v.backend as string | undefined;
  if (backend !== undefined && !['tensorflow', 'wasm', 'cpu'].includes(backend))
    throw new UsageError(`--backend ${quoteArg(backend)}: expected tensorflow, wasm or cpu`);
  const progress = (v.progress as string | undefined) ?? 'auto';
  if (!['auto', 'bar', 'lines', 'none'].includes(progress))
    throw new UsageError(`--progress ${quoteArg(progress)}: expected auto, bar, lines or none`);
  const data = v.data === undefined ? undefined : checkDataFile(v.data as string, [exp]);
  const outRoot = ensureOutDir((v.out as string | undefined) ?? 'runs');
  return { help: false, exp, preset, seeds, backend, outRoot, data, force: Boolean(v.force), progress };
}
