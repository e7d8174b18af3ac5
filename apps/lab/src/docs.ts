/**
 * `mmlm-lab docs`: copy the tables, summaries and figures of finished runs into the per-paper docs
 * pages, so no number reaches the docs without the command and backend that produced it. A page
 * docs/papers/<paper>.md marks where runs go with `<!-- lab:runs -->` and `<!-- /lab:runs -->`;
 * the newest run of each (experiment, preset, seed, data) found under --out becomes a section headed
 * `### <id>, preset \`<p>\`, seed N`, and seed aggregates (`--seeds`) one headed `..., seeds 0, 1, 2
 * (mean ± std)` with the mean ± std table and the experiment's own aggregate tables. Sections already
 * on the page are kept (a page gathers runs from many run folders, with readings written beside
 * them) unless `--replace` asks to rewrite them; nothing else on the page is touched.
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

function runHeading(r: RunRecord): string {
  return `### ${r.experiment.id}, preset \`${r.preset}\`, seed ${r.seed}${r.dataPath ? `, data \`${basename(r.dataPath)}\`` : ''}`;
}

function aggregateHeading(a: AggregateRecord): string {
  return `### ${a.experiment.id}, preset \`${a.preset}\`, seeds ${a.seeds.join(', ')}${a.dataPath ? `, data \`${basename(a.dataPath)}\`` : ''} (mean ± std)`;
}

/** A run's section on its paper page (copies its figures into `imgDir`). */
function runSection(dir: string, r: RunRecord, imgDir: string, imgRel: string): string {
  const res = r.result;
  const tag = `${r.experiment.id}-${r.preset}-seed${r.seed}${r.dataPath ? `-${paperSlug(basename(r.dataPath))}` : ''}`;
  const out = [
    runHeading(r),
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
    aggregateHeading(a),
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

/** What `updateDocs` did to one page: the section headings added, rewritten and left as they were. */
export interface DocsPageUpdate {
  page: string;
  added: string[];
  replaced: string[];
  /** Already on the page and left alone (`replace` rewrites them). */
  kept: string[];
}

/** A section heading the lab writes: `### <id>, preset \`<p>\`, seed N` or `..., seeds 0, 1, 2 ... (mean ± std)`. */
const LAB_HEADING = /^### \S+, preset `[^`]+`, seeds? \d/;

/** Line index where the section starting at `start` ends: the next `#`, `##` or `###` heading, or a lab marker. */
function sectionEnd(lines: string[], start: number): number {
  for (let k = start + 1; k < lines.length; k++) {
    const l = lines[k]!;
    if (/^#{1,3} /.test(l) || l.trim() === BEGIN || l.trim() === END) return k;
  }
  return lines.length;
}

/** Throws unless a page that names the start marker has it, and an end marker after it, each on a line of its own. */
function checkMarkers(page: string, text: string): void {
  if (!text.includes(BEGIN)) return;
  const lines = text.split('\n');
  const begin = lines.findIndex((l) => l.trim() === BEGIN);
  const end = begin < 0 ? -1 : lines.findIndex((l, k) => k > begin && l.trim() === END);
  if (end < 0)
    throw new Error(
      `mmlm-lab docs: ${page} has ${BEGIN} but ${begin < 0 ? 'not on a line of its own' : `no ${END} line after it`}; expected each marker on its own line, the end after the start (nothing was written)`,
    );
}

/** `### <id>, preset \`<p>\`,`: the prefix sections of one experiment and preset share. */
function groupPrefix(heading: string): string {
  const m = /^(### \S+, preset `[^`]+`,)/.exec(heading);
  return m ? m[1]! : heading;
}

/**
 * Add the sections of the runs in `runsRoot` to every page in `docsDir`/papers that has lab:runs
 * markers. Nothing on a page is lost: a run or aggregate whose section (same heading) is already on
 * the page is left as it is, hand-written readings included, unless `replace` is set, which rewrites
 * that section (from its heading to the next `#`-`###` heading or marker); a new section
 * goes after the last section of the same experiment and preset, or else before the first
 * `<!-- /lab:runs -->`. Pages are written atomically and only when something changed; returns one
 * entry per page the runs belong to.
 */
export function updateDocs(runsRoot: string, docsDir: string, opts: { replace?: boolean } = {}): DocsPageUpdate[] {
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
  const files = readdirSync(pagesDir)
    .filter((f) => f.endsWith('.md'))
    .sort();
  // every page the runs go to is checked before any is written
  for (const file of files) {
    const slug = file.slice(0, -3);
    if (!byPaper.has(slug) && !aggByPaper.has(slug)) continue;
    checkMarkers(join(pagesDir, file), readFileSync(join(pagesDir, file), 'utf8'));
  }
  const updates: DocsPageUpdate[] = [];
  for (const file of files) {
    const slug = file.slice(0, -3);
    const page = join(pagesDir, file);
    const text = readFileSync(page, 'utf8');
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
    if (!text.includes(BEGIN)) continue;
    const lines = text.split('\n');
    const imgDir = join(pagesDir, 'img');
    // each section renders (and copies its figures) only when it is written
    const sections: { heading: string; render: () => string }[] = [
      ...found.map(({ dir, record }) => ({
        heading: runHeading(record),
        render: () => {
          mkdirSync(imgDir, { recursive: true });
          return runSection(dir, record, imgDir, 'img');
        },
      })),
      ...aggs.map((a) => ({ heading: aggregateHeading(a), render: () => aggregateSection(a) })),
    ];
    const update: DocsPageUpdate = { page, added: [], replaced: [], kept: [] };
    for (const s of sections) {
      const at = lines.indexOf(s.heading);
      if (at >= 0) {
        if (!opts.replace) {
          update.kept.push(s.heading);
          continue;
        }
        lines.splice(at, sectionEnd(lines, at) - at, ...s.render().split('\n'));
        update.replaced.push(s.heading);
        continue;
      }
      // after the last section of the same experiment and preset, else before the block's end marker
      const prefix = groupPrefix(s.heading);
      let insertAt = -1;
      for (let k = 0; k < lines.length; k++)
        if (lines[k]!.startsWith(prefix) && LAB_HEADING.test(lines[k]!)) insertAt = sectionEnd(lines, k);
      if (insertAt < 0) {
        const b = lines.findIndex((l) => l.trim() === BEGIN);
        insertAt = lines.findIndex((l, k) => k > b && l.trim() === END);
      }
      const body = s.render().split('\n');
      if (insertAt > 0 && lines[insertAt - 1]!.trim() !== '') body.unshift('');
      lines.splice(insertAt, 0, ...body);
      update.added.push(s.heading);
    }
    if (update.added.length || update.replaced.length) writeAtomic(page, lines.join('\n'));
    updates.push(update);
  }
  return updates;
}
