/** Reports: report.md per run, and a static index.html over every run under a folder. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { formatCell, markdownText, type Table, tableToMarkdown } from '@mmlm/core/experiment';
import { aggregateTable, findAggregates } from './aggregate.js';
import type { RunRecord } from './runner.js';
import { writeAtomic } from './util.js';

/** Markdown of a result table: core's `tableToMarkdown` (numbers to 4 significant digits, `|` and `<` escaped). */
export const tableMarkdown = tableToMarkdown;

export function renderReportMarkdown(r: RunRecord): string {
  const res = r.result;
  const out = [
    `# ${r.experiment.id} (${r.experiment.paper})`,
    '',
    `**Claim.** ${markdownText(r.experiment.claim)}`,
    '',
    `Preset \`${r.preset}\`, seed ${r.seed}, backend \`${r.backend}\`, ${r.wallTimeSec.toFixed(1)} s on ${r.machine.cores} × ${r.machine.cpu}; git ${r.gitRevision}, ${r.startedAt}.`,
    '',
    'Reproduce with:',
    '',
    '```bash',
    r.command,
    '```',
    '',
  ];
  if (res.summary) out.push('## Summary', '', markdownText(res.summary), '');
  const metrics = Object.entries(res.metrics);
  if (metrics.length)
    out.push(
      '## Metrics',
      '',
      tableMarkdown({ title: 'Headline metrics', columns: ['metric', 'value'], rows: metrics.map(([k, v]) => [k, v]) }),
      '',
    );
  for (const t of res.tables ?? []) out.push(tableMarkdown(t), '');
  if (res.figures?.length) {
    out.push('## Figures', '');
    for (const f of res.figures) out.push(`![${f.title}](${f.path})`, '', f.caption ? `*${markdownText(f.caption)}*` : '', '');
  }
  out.push(
    '## Versions',
    '',
    Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
    '',
  );
  return out.join('\n');
}

/** Every finished run (a folder with result.json) below `root`, newest first. */
export function findRuns(root: string): { dir: string; record: RunRecord }[] {
  const out: { dir: string; record: RunRecord; mtime: number }[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 4 || !existsSync(d)) return;
    const f = join(d, 'result.json');
    if (existsSync(f) && statSync(f).isFile()) {
      try {
        const record = JSON.parse(readFileSync(f, 'utf8')) as RunRecord;
        // a lab run's record names its experiment as an object; other result.json files (a
        // package's own repro script, another tool) are not lab runs and are left out
        if (typeof record?.experiment?.id === 'string') out.push({ dir: d, record, mtime: statSync(f).mtimeMs });
      } catch {
        // not one of ours
      }
      return;
    }
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory() && e.name !== 'subruns') walk(join(d, e.name), depth + 1);
  };
  walk(root, 0);
  return out.sort((a, b) => b.mtime - a.mtime).map(({ dir, record }) => ({ dir, record }));
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function tableHtml(t: Table): string {
  const head = t.columns.map((c) => `<th>${esc(c)}</th>`).join('');
  const body = t.rows.map((r) => `<tr>${r.map((v) => `<td>${esc(formatCell(v))}</td>`).join('')}</tr>`).join('\n');
  return `<table class="data"><caption>${esc(t.title)}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${
    t.note ? `<p class="note">${esc(t.note)}</p>` : ''
  }`;
}

/** Write `index.html` over every run below `root`; returns its path. */
export function buildIndex(root: string): string {
  const runs = findRuns(root);
  const overview: Table = {
    title: 'Runs',
    columns: ['experiment', 'paper', 'preset', 'seed', 'backend', 'wall time (s)', 'finished'],
    rows: runs.map(({ record: r }) => [
      r.experiment.id,
      r.experiment.paper,
      r.preset,
      r.seed,
      r.backend,
      Number(r.wallTimeSec.toFixed(1)),
      r.startedAt,
    ]),
  };
  const sections = runs.map(({ dir, record: r }) => {
    const rel = relative(root, dir);
    const res = r.result;
    const metrics: Table = {
      title: 'Headline metrics',
      columns: ['metric', 'value'],
      rows: Object.entries(res.metrics).map(([k, v]) => [k, v]),
    };
    const figs = (res.figures ?? [])
      .map(
        (f) =>
          `<figure><img src="${esc(join(rel, f.path))}" alt="${esc(f.title)}"><figcaption>${esc(f.title)}${f.caption ? ` — ${esc(f.caption)}` : ''}</figcaption></figure>`,
      )
      .join('\n');
    return `<section class="run" id="${esc(rel)}">
<h2>${esc(r.experiment.id)} <small>${esc(r.preset)}, seed ${r.seed}, ${esc(r.backend)}</small></h2>
<p class="claim"><b>Claim.</b> ${esc(r.experiment.claim)}</p>
<p><a href="${esc(join(rel, 'report.md'))}">report.md</a> · <a href="${esc(join(rel, 'result.json'))}">result.json</a> · reproduce: <code>${esc(r.command)}</code></p>
${res.summary ? `<div class="summary"><pre>${esc(res.summary)}</pre></div>` : ''}
${tableHtml(metrics)}
${(res.tables ?? []).map(tableHtml).join('\n')}
${figs}
</section>`;
  });
  const aggregates = findAggregates(root);
  const aggOverview: Table = {
    title: 'Seed aggregates',
    columns: ['experiment', 'paper', 'preset', 'seeds', 'aggregated'],
    rows: aggregates.map(({ aggregate: a }) => [a.experiment.id, a.experiment.paper, a.preset, a.seeds.join(', '), a.createdAt]),
  };
  const aggSections = aggregates.map(({ dir, aggregate: a }) => {
    const rel = relative(root, dir);
    return `<section class="run aggregate" id="${esc(rel)}">
<h2>${esc(a.experiment.id)} <small>${esc(a.preset)}, seeds ${esc(a.seeds.join(', '))}, mean ± std</small></h2>
<p class="claim"><b>Claim.</b> ${esc(a.experiment.claim)}</p>
<p><a href="${esc(join(rel, 'report.md'))}">report.md</a> · <a href="${esc(join(rel, 'aggregate.json'))}">aggregate.json</a> · reproduce: <code>${esc(a.command)}</code></p>
${a.aggregateError ? `<p class="note"><b>The experiment's aggregate() failed:</b> ${esc(a.aggregateError)}</p>` : ''}
${tableHtml(aggregateTable(a))}
${a.summary ? `<div class="summary"><pre>${esc(a.summary)}</pre></div>` : ''}
${(a.tables ?? []).map(tableHtml).join('\n')}
</section>`;
  });
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mmlm lab runs</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table.data{border-collapse:collapse;margin:1em 0}table.data td,table.data th{border:1px solid #ccc;padding:3px 8px;text-align:left}
table.data caption{font-weight:bold;text-align:left;padding:4px 0}figure img{max-width:100%;border:1px solid #eee}
.summary pre{white-space:pre-wrap;background:#f7f7f7;padding:8px}small{color:#666;font-weight:normal}.note{color:#555}
</style></head><body>
<h1>mmlm lab runs</h1>
<p>${runs.length} run(s)${aggregates.length ? ` and ${aggregates.length} seed aggregate(s)` : ''} under <code>${esc(root)}</code>. Rebuild with <code>pnpm lab report --out ${esc(root)}</code>.</p>
${tableHtml(overview)}
${sections.join('\n')}
${aggregates.length ? `<h1>Seed aggregates</h1>\n${tableHtml(aggOverview)}\n${aggSections.join('\n')}` : ''}
</body></html>
`;
  const path = join(root, 'index.html');
  writeAtomic(path, html);
  return path;
}
