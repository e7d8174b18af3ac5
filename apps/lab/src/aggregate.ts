/**
 * Seed aggregates (`mmlm-lab run <id> --seeds 0,1,2`): every numeric headline metric of the
 * per-seed runs as mean ± sample std with each seed's value, plus the experiment's own aggregate
 * tables (`Experiment.aggregate`). An aggregate lives in runs/<id>/<preset>-seeds<0-1-2>/ as
 * aggregate.json and report.md, beside the per-seed folders it was computed from.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { formatMeanStd, markdownText, meanStd, type Table, tableToMarkdown } from '@mmlm/core/experiment';
import type { RunRecord } from './runner.js';

export interface MetricAggregate {
  /** One value per seed (in `seeds` order); null where that seed gave no finite number. */
  values: (number | null)[];
  /** Over the finite values; null (JSON's NaN) where undefined (std and se with n < 2). */
  mean: number | null;
  std: number | null;
  n: number;
  se: number | null;
}

export interface AggregateRecord {
  kind: 'seeds';
  experiment: { id: string; paper: string; claim: string };
  preset: string;
  /** Ascending. */
  seeds: number[];
  dataPath: string | null;
  command: string;
  /** The per-seed runs: folder relative to the aggregate's folder, and what their reports say. */
  runs: { seed: number; dir: string; backend: string; wallTimeSec: number; startedAt: string; gitRevision: string; summary?: string }[];
  /** Numeric headline metrics, in the order the runs report them. */
  metrics: Record<string, MetricAggregate>;
  /** From the experiment's `aggregate()`, when it has one. */
  tables?: Table[];
  summary?: string;
  /** The message of an `aggregate()` that threw (the generic table is still written). */
  aggregateError?: string;
  gitRevision: string;
  createdAt: string;
}

export function aggregateFolderName(preset: string, seeds: readonly number[]): string {
  return `${preset}-seeds${seeds.join('-')}`;
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Mean ± std of every metric that is a finite number in at least one of `results`. */
export function aggregateMetrics(results: { metrics: Record<string, unknown> }[]): Record<string, MetricAggregate> {
  const names: string[] = [];
  for (const r of results) for (const k of Object.keys(r.metrics)) if (!names.includes(k)) names.push(k);
  const out: Record<string, MetricAggregate> = {};
  for (const k of names) {
    const values = results.map((r) => {
      const v = r.metrics[k];
      return typeof v === 'number' && Number.isFinite(v) ? v : null;
    });
    const xs = values.filter((v): v is number => v !== null);
    if (!xs.length) continue;
    const m = meanStd(xs);
    out[k] = { values, mean: finite(m.mean), std: finite(m.std), n: m.n, se: finite(m.se) };
  }
  return out;
}

/** The generic table: metric | mean ± std | seed 0 | seed 1 | ... */
export function aggregateTable(a: AggregateRecord): Table {
  const n = a.seeds.length;
  const missing = Object.values(a.metrics).some((m) => m.values.includes(null));
  return {
    title: `Mean ± std over ${n} seed${n === 1 ? '' : 's'} (${a.seeds.join(', ')})`,
    columns: ['metric', 'mean ± std', ...a.seeds.map((s) => `seed ${s}`)],
    rows: Object.entries(a.metrics).map(([k, m]) => [
      k,
      formatMeanStd({ mean: m.mean ?? Number.NaN, std: m.std ?? Number.NaN }),
      ...m.values,
    ]),
    note:
      n < 2
        ? 'One seed: no standard deviation, and no difference can be called.'
        : `Sample standard deviation (n − 1) over the seeds; standard error = std / √n. A difference between arms is called only beyond two standard errors.${
            missing ? ' — marks a seed without a finite value (left out of that mean).' : ''
          }`,
  };
}

function backendsLine(a: AggregateRecord): string {
  const b = [...new Set(a.runs.map((r) => r.backend))];
  return b.length === 1
    ? `backend \`${b[0]}\``
    : `backends differ across seeds (${a.runs.map((r) => `seed ${r.seed}: \`${r.backend}\``).join(', ')})`;
}

/** The aggregate's report.md: the generic table, the experiment's own tables and summary, then each seed's summary. */
export function renderAggregateMarkdown(a: AggregateRecord): string {
  const wall = a.runs.reduce((s, r) => s + r.wallTimeSec, 0);
  const out = [
    `# ${a.experiment.id} (${a.experiment.paper}), seeds ${a.seeds.join(', ')}`,
    '',
    `**Claim.** ${markdownText(a.experiment.claim)}`,
    '',
    `Preset \`${a.preset}\`, seeds ${a.seeds.join(', ')}, ${backendsLine(a)}, ${wall.toFixed(1)} s of runs in all; aggregated at git ${a.gitRevision}, ${a.createdAt}.`,
    '',
    'Reproduce with:',
    '',
    '```bash',
    a.command,
    '```',
    '',
    '## Metrics over seeds',
    '',
    tableToMarkdown(aggregateTable(a)),
    '',
  ];
  if (a.summary || a.tables?.length || a.aggregateError) {
    out.push('## Experiment aggregate', '');
    if (a.aggregateError) out.push(`**The experiment's aggregate() failed:** ${markdownText(a.aggregateError)}`, '');
    if (a.summary) out.push(markdownText(a.summary), '');
    for (const t of a.tables ?? []) out.push(tableToMarkdown(t), '');
  }
  out.push('## Per-seed summaries', '');
  for (const r of a.runs) {
    out.push(
      `### Seed ${r.seed}`,
      '',
      `[report.md](${r.dir}/report.md), backend \`${r.backend}\`, ${r.wallTimeSec.toFixed(1)} s, git ${r.gitRevision}.`,
      '',
    );
    if (r.summary) out.push(markdownText(r.summary), '');
  }
  return out.join('\n');
}

/** The aggregate record of finished per-seed runs (`records[i]` is seed `seeds[i]`'s, seeds ascending). */
export function buildAggregate(
  records: RunRecord[],
  opts: {
    seeds: number[];
    runDirs: string[];
    command: string;
    gitRevision: string;
    extra?: { tables?: Table[]; summary?: string };
    aggregateError?: string;
  },
): AggregateRecord {
  const first = records[0];
  if (!first) throw new Error('buildAggregate: no runs');
  return {
    kind: 'seeds',
    experiment: first.experiment,
    preset: first.preset,
    seeds: opts.seeds,
    dataPath: first.dataPath,
    command: opts.command,
    runs: records.map((r, i) => ({
      seed: r.seed,
      dir: opts.runDirs[i]!,
      backend: r.backend,
      wallTimeSec: r.wallTimeSec,
      startedAt: r.startedAt,
      gitRevision: r.gitRevision,
      ...(r.result.summary ? { summary: r.result.summary } : {}),
    })),
    metrics: aggregateMetrics(records.map((r) => r.result)),
    ...(opts.extra?.tables?.length ? { tables: opts.extra.tables } : {}),
    ...(opts.extra?.summary ? { summary: opts.extra.summary } : {}),
    ...(opts.aggregateError ? { aggregateError: opts.aggregateError } : {}),
    gitRevision: opts.gitRevision,
    createdAt: new Date().toISOString(),
  };
}

/** Every seed aggregate (a folder with aggregate.json) below `root`, newest first. */
export function findAggregates(root: string): { dir: string; aggregate: AggregateRecord }[] {
  const out: { dir: string; aggregate: AggregateRecord; mtime: number }[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 4 || !existsSync(d)) return;
    const f = join(d, 'aggregate.json');
    if (existsSync(f) && statSync(f).isFile()) {
      try {
        const a = JSON.parse(readFileSync(f, 'utf8')) as AggregateRecord;
        if (a.kind === 'seeds') out.push({ dir: d, aggregate: a, mtime: statSync(f).mtimeMs });
      } catch {
        // not one of ours
      }
      return;
    }
    if (existsSync(join(d, 'result.json'))) return; // a single run
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory() && e.name !== 'subruns') walk(join(d, e.name), depth + 1);
  };
  walk(root, 0);
  return out.sort((a, b) => b.mtime - a.mtime).map(({ dir, aggregate }) => ({ dir, aggregate }));
}
