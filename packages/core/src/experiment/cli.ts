/**
 * A small command line for one paper package's experiments, so a package installed on its own
 * from npm can run its reproductions without the lab app:
 *
 *   runExperimentCli(experiments, { name: '@mmlm/latentlm' });
 *   // node repro.js <experiment-id> [preset] [--seed n] [--out dir] [--data file]
 *
 * It runs the experiment with the inline context (same code path as `pnpm lab run`, without
 * progress bars or the HTML report), writes `result.json` atomically beside the run's files and
 * prints the tables as markdown. The lab app is the full runner.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { currentBackend, initBackend } from '../backend/init.js';
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

/**
 * Parse the arguments, run the experiment, print its tables and summary. Returns the process exit
 * code (0 ok, 2 bad arguments) instead of exiting, so it can be tested; throws what the run throws.
 */
export async function runExperimentCli(
  experiments: readonly Experiment[],
  opts: ExperimentCliOptions,
): Promise<{ code: number; result?: ExperimentResult; outDir?: string }> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const err = opts.err ?? ((l: string) => console.error(l));
  const usage = () =>
    err(
      `usage: ${opts.name} repro <experiment-id> [preset] [--seed n] [--out dir] [--data file]\n` +
        experiments.map((e) => `  ${e.id}  presets: ${Object.keys(e.presets).join(', ')}`).join('\n'),
    );
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(opts.argv ?? process.argv.slice(2));
  } catch (e) {
    err(`${opts.name} repro: ${(e as Error).message}`);
    usage();
    return { code: 2 };
  }
  const { positionals, values } = parsed;
  const [id, preset = 'small'] = positionals;
  const exp = experiments.find((e) => e.id === id);
  if (!exp) {
    err(id ? `${opts.name} repro: unknown experiment "${id}"` : `${opts.name} repro: no experiment id given`);
    usage();
    return { code: 2 };
  }
  if (!exp.presets[preset]) {
    err(`${opts.name} repro: ${exp.id} has no preset "${preset}"; expected one of ${Object.keys(exp.presets).join(', ')}`);
    return { code: 2 };
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    err(`${opts.name} repro: --seed must be a non-negative integer, got "${values.seed}"`);
    return { code: 2 };
  }
  const outDir = resolve(values.out ?? join('runs', exp.id, `${preset}-seed${seed}`));
  if (!currentBackend()) await initBackend();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const result = await runExperimentInline(exp, {
    preset,
    seed,
    outDir,
    dataPath: values.data ? resolve(values.data) : undefined,
    log: err,
  });
  const minutes = (performance.now() - t0) / 60000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMinutes = (cpu.user + cpu.system) / 60e6;
  const backend = currentBackend()?.backend ?? 'unknown';
  const file = join(outDir, 'result.json');
  writeFileSync(`${file}.tmp`, JSON.stringify({ id: exp.id, preset, seed, backend, minutes, cpuMinutes, ...result }, null, 2));
  renameSync(`${file}.tmp`, file);
  for (const t of result.tables ?? []) out(`\n${tableToMarkdown(t)}`);
  if (result.summary) out(`\n${markdownText(result.summary)}`);
  out(
    `\n(${exp.id} ${preset}, seed ${seed}, backend ${backend}, ${minutes.toFixed(1)} min wall, ${cpuMinutes.toFixed(1)} min CPU; output in ${outDir})`,
  );
  return { code: 0, result, outDir };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: { seed: { type: 'string', default: '0' }, out: { type: 'string' }, data: { type: 'string' } },
  });
}
