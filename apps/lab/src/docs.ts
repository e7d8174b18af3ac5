/**
 * `mmlm-lab docs`: copy the tables, summaries and figures of finished runs into the per-paper docs
 * pages, so no number reaches the docs without the command and backend that produced it. A page
 * docs/papers/<paper>.md owns a block between `<!-- lab:runs -->` and `<!-- /lab:runs -->`; the
 * block is rewritten from the newest run of each (experiment, preset, seed, data) found under --out,
 * and everything outside it (the hand-written method notes) is left alone. Seed aggregates
 * (`--seeds`) follow the single runs: the mean ± std table and the experiment's own aggregate tables,
 * from the newest aggregate of each (experiment, preset, seeds, data).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { markdownText } from '@mmlm/core/experiment';
import { type AggregateRecord, aggregateTable, findAggregates } from './aggregate.js';
import { findRuns, tableMarkdown } from './report.js';
import type { RunRecord } from './runner.js';
import { writeAtomic } from './util.js';

export const BEGIN = '<!-- lab:runs -->';
export const END = '<!-- /lab:runs -->';

export function paperSlug(paper: string): string {
  return paper
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/**
 * Images a summary embeds by a path inside its run folder (`![grid](samples-seen-cfg1.png)`): a
 * page cannot reach the run folder, so each is copied beside the figures (named after the run) and
 * its link rewritten. URLs, absolute paths, paths leaving the folder and missing files are left as
 * they are.
 */
export function copyLocalImages(md: string, dir: string, imgDir: string, imgRel: string, tag: string): string {
  return md.replace(/!\[([^\]]*)\]\(([^)\s]+)\)/g, (whole, alt: string, path: string) => {
    if (/^(?:[a-z][a-z0-9+.-]*:|\/|#)/i.test(path) || path.split('/').includes('..')) return whole;
    const src = join(dir, path);
    if (!existsSync(src)) return whole;
    const name = `${tag}-${path.replace(/[^\w.-]+/g, '_')}`;
    copyFileSync(src, join(imgDir, name));
    return `![${alt}](${imgRel}/${name})`;
  });
}

function runSection(dir: string, r: RunRecord, imgDir: string, imgRel: string): string {
  const res = r.result;
  const tag = `${r.experiment.id}-${r.preset}-seed${r.seed}${r.dataPath ? `-${paperSlug(basename(r.dataPath))}` : ''}`;
  const out = [
    `### ${r.experiment.id}, preset \`${r.preset}\`, seed ${r.seed}${r.dataPath ? `, data \`${basename(r.dataPath)}\`` : ''}`,
    '',
    `*Claim tested:* ${markdownText(r.experiment.claim)}`,
    '',
    `Backend \`${r.backend}\`, seed ${r.seed}, ${r.wallTimeSec.toFixed(0)} s on ${r.machine.cores} × ${r.machine.cpu}, git ${r.gitRevision}, ${r.startedAt.slice(0, 10)}. Reproduce:`,
    '',
    '```bash',
    r.command,
    '```',
    '',
  ];
  if (res.summary) out.push(copyLocalImages(markdownText(res.summary), dir, imgDir, imgRel, tag), '');
  for (const t of res.tables ?? []) out.push(tableMarkdown(t), '');
  for (const f of res.figures ?? []) {
    const src = join(dir, f.path);
    if (!existsSync(src)) continue;
    const name = `${tag}-${f.path.replace(/[^\w.-]+/g, '_')}`;
    copyFileSync(src, join(imgDir, name));
    out.push(`![${f.title}](${imgRel}/${name})`, '', f.caption ? `*${markdownText(f.caption)}*` : '', '');
  }
  return out.join('\n');
}

function aggregateSection(a: AggregateRecord): string {
  const out = [
    `### ${a.experiment.id}, preset \`${a.preset}\`, seeds ${a.seeds.join(', ')}${a.dataPath ? `, data \`${basename(a.dataPath)}\`` : ''} (mean ± std)`,
    '',
    `*Claim tested:* ${markdownText(a.experiment.claim)}`,
    '',
    `${a.seeds.length} seed(s), backend ${[...new Set(a.runs.map((r) => `\`${r.backend}\``))].join(' / ')}, aggregated at git ${a.gitRevision}, ${a.createdAt.slice(0, 10)}. Reproduce:`,
    '',
    '```bash',
    a.command,
    '```',
    '',
    tableMarkdown(aggregateTable(a)),
    '',
  ];
  if (a.aggregateError) out.push(`**The experiment's aggregate() failed:** ${markdownText(a.aggregateError)}`, '');
  if (a.summary) out.push(markdownText(a.summary), '');
  for (const t of a.tables ?? []) out.push(tableMarkdown(t), '');
  return out.join('\n');
}

/** Rewrite the run blocks of every page in `docsDir`/papers; returns the pages written. */
export function updateDocs(runsRoot: string, docsDir: string): string[] {
  const pagesDir = join(docsDir, 'papers');
  if (!existsSync(pagesDir)) throw new Error(`mmlm-lab docs: no folder ${pagesDir} (expected docs/papers/<paper>.md pages)`);
  const runs = findRuns(runsRoot);
  const seen = new Set<string>();
  const byPaper = new Map<string, { dir: string; record: RunRecord }[]>();
  for (const run of runs) {
    const r = run.record;
    const key = `${r.experiment.id}|${r.preset}|${r.seed}|${r.dataPath ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const slug = paperSlug(r.experiment.paper);
    byPaper.set(slug, [...(byPaper.get(slug) ?? []), run]);
  }
  const seenAgg = new Set<string>();
  const aggByPaper = new Map<string, AggregateRecord[]>();
  for (const { aggregate: a } of findAggregates(runsRoot)) {
    const key = `${a.experiment.id}|${a.preset}|${a.seeds.join(',')}|${a.dataPath ?? ''}`;
    if (seenAgg.has(key)) continue;
    seenAgg.add(key);
    const slug = paperSlug(a.experiment.paper);
    aggByPaper.set(slug, [...(aggByPaper.get(slug) ?? []), a]);
  }
  const written: string[] = [];
  for (const file of readdirSync(pagesDir).filter((f) => f.endsWith('.md'))) {
    const slug = file.slice(0, -3);
    const page = join(pagesDir, file);
    const text = readFileSync(page, 'utf8');
    const i = text.indexOf(BEGIN);
    const j = text.indexOf(END);
    if (i < 0 || j < i) continue;
    const found = (byPaper.get(slug) ?? []).sort(
      (a, b) =>
        a.record.experiment.id.localeCompare(b.record.experiment.id) ||
        a.record.preset.localeCompare(b.record.preset) ||
        a.record.seed - b.record.seed,
    );
    const aggs = (aggByPaper.get(slug) ?? []).sort(
      (a, b) =>
        a.experiment.id.localeCompare(b.experiment.id) ||
        a.preset.localeCompare(b.preset) ||
        a.seeds.length - b.seeds.length ||
        a.seeds.join(',').localeCompare(b.seeds.join(',')),
    );
    if (!found.length && !aggs.length) continue;
    const imgDir = join(pagesDir, 'img');
    mkdirSync(imgDir, { recursive: true });
    const block = [...found.map(({ dir, record }) => runSection(dir, record, imgDir, 'img')), ...aggs.map(aggregateSection)].join('\n');
    writeAtomic(page, `${text.slice(0, i + BEGIN.length)}\n\n${block}\n${text.slice(j)}`);
    written.push(page);
  }
  return written;
}
