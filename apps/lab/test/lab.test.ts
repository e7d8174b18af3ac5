import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Experiment } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { BEGIN, copyLocalImages, END, updateDocs } from '../src/docs.js';
import { buildIndex, findRuns, parseCli, runExperiment } from '../src/index.js';
import { resolveTargets } from '../src/registry.js';

/** A fake experiment: two sub-runs that log a loss curve; counts how often each body ran. */
function fake(calls: Record<string, number>, failAt?: string): Experiment {
  return {
    id: 'test.fake',
    paper: 'Fake',
    claim: 'loss goes down',
    presets: { tiny: { description: 'a few steps', expectedMinutes: 0.01 } },
    async run(ctx) {
      const out: number[] = [];
      for (const name of ['a', 'b']) {
        out.push(
          await ctx.subrun(name, async () => {
            calls[name] = (calls[name] ?? 0) + 1;
            if (failAt === name) throw new Error(`crash in ${name}`);
            const p = ctx.progress(name, 5);
            for (let s = 1; s <= 5; s++) {
              ctx.metric({ subrun: name, step: s, loss: 1 / s });
              p.tick(s, { loss: 1 / s });
            }
            p.done();
            return 0.2;
          }),
        );
      }
      return {
        metrics: { final: out[1]!, ok: true },
        tables: [
          {
            title: 'Results',
            columns: ['run', 'loss'],
            rows: [
              ['a', out[0]!],
              ['b', out[1]!],
            ],
            note: 'paper: lower',
          },
        ],
        summary: 'Loss went down.',
      };
    },
  };
}

describe('lab runner', () => {
  it('writes result.json, metrics.jsonl, report.md and a loss figure; resumes finished sub-runs', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-'));
    const calls: Record<string, number> = {};
    // first attempt crashes in sub-run b: a is saved, no result.json
    await expect(
      runExperiment(fake(calls, 'b'), { preset: 'tiny', seed: 0, outRoot: root, progress: 'none', log: () => {} }),
    ).rejects.toThrow(/crash in b/);
    const dir = join(root, 'test.fake', 'tiny-seed0');
    expect(existsSync(join(dir, 'result.json'))).toBe(false);
    expect(existsSync(join(dir, 'subruns', 'a', 'result.json'))).toBe(true);
    // rerun: a is skipped, b runs
    const lines: string[] = [];
    const { record } = await runExperiment(fake(calls), {
      preset: 'tiny',
      seed: 0,
      outRoot: root,
      progress: 'lines',
      log: (l) => lines.push(l),
    });
    expect(calls).toEqual({ a: 1, b: 2 });
    expect(lines.join('\n')).toMatch(/sub-run "a" already finished/);
    expect(record.result.metrics.final).toBe(0.2);
    expect(record.versions['tfjs-core']).toBe('4.22.0');
    for (const f of ['result.json', 'metrics.jsonl', 'report.md', 'loss.png']) expect(existsSync(join(dir, f))).toBe(true);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/\| a \| 0\.2000 \|/);
    expect(md).toMatch(/pnpm lab run test.fake --preset tiny --seed 0/);
    expect(md).toMatch(/!\[Training loss\]\(loss.png\)/);
    const png = readFileSync(join(dir, 'loss.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    // a finished run is skipped entirely
    const again = await runExperiment(fake(calls), { preset: 'tiny', seed: 0, outRoot: root, progress: 'none', log: () => {} });
    expect(again.skipped).toBe(true);
    expect(calls).toEqual({ a: 1, b: 2 });
    // index
    expect(findRuns(root)).toHaveLength(1);
    const html = readFileSync(buildIndex(root), 'utf8');
    expect(html).toMatch(/<caption>Results<\/caption>/);
    expect(html).toMatch(/test\.fake\/tiny-seed0\/loss\.png/);
  });

  it('findRuns leaves out result.json files that are not lab runs (a package repro script writes another format)', () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-foreign-'));
    mkdirSync(join(root, 'x', 'small-seed0'), { recursive: true });
    writeFileSync(join(root, 'x', 'small-seed0', 'result.json'), JSON.stringify({ experiment: 'seed.retrieval', preset: 'small' }));
    mkdirSync(join(root, 'y'), { recursive: true });
    writeFileSync(join(root, 'y', 'result.json'), '{not json');
    expect(findRuns(root)).toEqual([]);
  });

  it('rejects an unknown preset', async () => {
    await expect(runExperiment(fake({}), { preset: 'huge', seed: 0, outRoot: tmpdir(), progress: 'none' })).rejects.toThrow(
      /has no preset "huge"; expected one of: tiny/,
    );
  });
});

describe('CLI arguments', () => {
  it('parses run options', () => {
    const a = parseCli(['run', 'core.tiny-gpt', '--preset', 'tiny', '--seed', '3', '--backend', 'cpu', '--out', '/tmp/x']);
    expect(a).toMatchObject({ command: 'run', target: 'core.tiny-gpt', preset: 'tiny', seed: 3, backend: 'cpu', out: '/tmp/x' });
  });
  it('gives helpful errors', () => {
    expect(() => parseCli(['frobnicate'])).toThrow(/unknown command "frobnicate"; expected list, run, report or docs/);
    expect(() => parseCli(['run'])).toThrow(/run needs an experiment id/);
    expect(() => parseCli(['run', 'x', '--sede', '1'])).toThrow(/Unknown option '--sede'/);
    expect(() => parseCli(['run', 'x', '--seed=-1'])).toThrow('--seed "-1": expected a decimal integer in [0, 4294967295]');
    expect(() => parseCli(['run', 'x', '--backend', 'webgpu'])).toThrow('--backend "webgpu": expected tensorflow, wasm or cpu');
    expect(() => parseCli(['run', 'x', '--replace'])).toThrow('--replace is an option of docs, not of run');
    expect(parseCli(['docs', '--replace'])).toMatchObject({ command: 'docs', replace: true });
    expect(parseCli(['docs'])).toMatchObject({ command: 'docs', replace: false });
    expect(() => resolveTargets('nope')).toThrow(/unknown experiment or paper "nope"; experiments: .*core\.tiny-gpt/);
    expect(() => resolveTargets('core.tiny-gpt', 'huge')).toThrow(/--preset "huge": core.tiny-gpt has no such preset/);
  });
});

/** A finished tiny run of the fake experiment under <root>/runs and an empty <root>/docs/papers. */
async function docsFixture(prefix: string): Promise<{ root: string; pages: string }> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  await runExperiment(fake({}), { preset: 'tiny', seed: 0, outRoot: join(root, 'runs'), progress: 'none', log: () => {} });
  const pages = join(root, 'docs', 'papers');
  mkdirSync(pages, { recursive: true });
  return { root, pages };
}

describe('docs', () => {
  it('adds a run (command, backend, tables, figures) before the end marker of its paper page and keeps the rest', async () => {
    const { root, pages } = await docsFixture('lab-docs-');
    writeFileSync(join(pages, 'fake.md'), `# Fake\n\nmethod notes\n\n${BEGIN}\nold numbers\n${END}\n\ntrailer\n`);
    writeFileSync(join(pages, 'other.md'), `# Other\n\n${BEGIN}\n${END}\n`);
    const heading = '### test.fake, preset `tiny`, seed 0';
    const updates = updateDocs(join(root, 'runs'), join(root, 'docs'));
    expect(updates).toEqual([{ page: join(pages, 'fake.md'), added: [heading], replaced: [], kept: [] }]);
    const md = readFileSync(join(pages, 'fake.md'), 'utf8');
    // what was on the page stays, the run's section comes before the end marker
    expect(md).toMatch(/^# Fake\n\nmethod notes\n\n<!-- lab:runs -->\nold numbers\n\n### test\.fake, preset `tiny`, seed 0\n/);
    expect(md).toMatch(/pnpm lab run test.fake --preset tiny --seed 0/);
    expect(md).toMatch(/Backend `cpu`|Backend `wasm`|Backend `tensorflow`/);
    expect(md).toMatch(/\| a \| 0\.2000 \|/);
    expect(md).toMatch(/!\[Training loss\]\(img\/test\.fake-tiny-seed0-loss\.png\)/);
    expect(existsSync(join(pages, 'img', 'test.fake-tiny-seed0-loss.png'))).toBe(true);
    expect(md).toMatch(/<!-- \/lab:runs -->\n\ntrailer\n$/);
    expect(readFileSync(join(pages, 'other.md'), 'utf8')).toBe(`# Other\n\n${BEGIN}\n${END}\n`);
    expect(() => updateDocs(join(root, 'runs'), join(root, 'nope'))).toThrow(/no folder .*nope\/papers/);
  });

  it('keeps a section already on the page (with its reading) unless asked to replace it; replacing touches nothing else', async () => {
    const { root, pages } = await docsFixture('lab-docs-keep-');
    const page = join(pages, 'fake.md');
    const heading = '### test.fake, preset `tiny`, seed 0';
    const other = '### test.fake, preset `tiny`, seed 7\n\nseed 7 from another run folder\n\n**Reading.** seven.\n';
    const notes = '### Notes by hand\n\nkeep me\n';
    writeFileSync(
      page,
      `# Fake\n\n${BEGIN}\n\n${heading}\n\nstale numbers\n\n**Reading.** by hand.\n\n${notes}\n${other}\n${END}\n\n## After\n\ntrailer\n`,
    );
    const before = readFileSync(page, 'utf8');

    expect(updateDocs(join(root, 'runs'), join(root, 'docs'))).toEqual([{ page, added: [], replaced: [], kept: [heading] }]);
    expect(readFileSync(page, 'utf8')).toBe(before);
    expect(existsSync(join(pages, 'img'))).toBe(false); // a kept section copies no figures

    expect(updateDocs(join(root, 'runs'), join(root, 'docs'), { replace: true })).toEqual([
      { page, added: [], replaced: [heading], kept: [] },
    ]);
    const md = readFileSync(page, 'utf8');
    expect(md).not.toMatch(/stale numbers|by hand\./);
    expect(md).toMatch(/pnpm lab run test.fake --preset tiny --seed 0/);
    expect(md.indexOf(heading)).toBeLessThan(md.indexOf('### Notes by hand'));
    expect(md).toContain(notes);
    expect(md).toContain(other);
    expect(md).toMatch(/<!-- \/lab:runs -->\n\n## After\n\ntrailer\n$/);
    expect(md.split(heading)).toHaveLength(2);
  });

  it('refuses a page whose markers are not lines of their own or lack the end, before writing any page', async () => {
    const { root, pages } = await docsFixture('lab-docs-bad-');
    for (const bad of [`# Fake\n\n${BEGIN}\nno end\n`, `# Fake\n\ntext ${BEGIN} inline ${END}\n`, `# Fake\n\n${END}\n${BEGIN}\n`]) {
      writeFileSync(join(pages, 'fake.md'), bad);
      expect(() => updateDocs(join(root, 'runs'), join(root, 'docs'))).toThrow(/fake\.md has <!-- lab:runs --> but .*nothing was written/);
      expect(readFileSync(join(pages, 'fake.md'), 'utf8')).toBe(bad);
    }
  });

  it('adds a new seed after the sections of the same experiment and preset, not at the end of the block', async () => {
    const { root, pages } = await docsFixture('lab-docs-group-');
    const page = join(pages, 'fake.md');
    writeFileSync(
      page,
      `# Fake\n\n${BEGIN}\n\n### test.fake, preset \`tiny\`, seed 3\n\nthree\n\n### test.fake, preset \`big\`, seed 0\n\nbig\n\n${END}\n`,
    );
    updateDocs(join(root, 'runs'), join(root, 'docs'));
    const md = readFileSync(page, 'utf8');
    const three = md.indexOf('### test.fake, preset `tiny`, seed 3');
    const zero = md.indexOf('### test.fake, preset `tiny`, seed 0');
    const big = md.indexOf('### test.fake, preset `big`, seed 0');
    expect(three).toBeGreaterThan(0);
    expect(zero).toBeGreaterThan(three);
    expect(big).toBeGreaterThan(zero);
    expect(md.slice(three, zero)).toContain('three');
  });

  it('copies images a summary embeds from its run folder and rewrites their links; leaves URLs and outside paths', () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-docs-img-'));
    const run = join(root, 'run');
    const img = join(root, 'img');
    mkdirSync(join(run, 'sub'), { recursive: true });
    mkdirSync(img);
    writeFileSync(join(run, 'grid.png'), 'png-a');
    writeFileSync(join(run, 'sub', 'g b.png'), 'png-b');
    writeFileSync(join(root, 'outside.png'), 'png-c');
    const md = [
      '![s = 1](grid.png) and ![nested](sub/g b.png)',
      '![url](https://example.org/x.png) ![abs](/tmp/x.png) ![up](../outside.png) ![gone](missing.png)',
    ].join('\n');
    // "sub/g b.png" has a space: not a markdown link target, left alone
    const out = copyLocalImages(md, run, img, 'img', 'exp-small-seed0');
    expect(out).toBe(
      [
        '![s = 1](img/exp-small-seed0-grid.png) and ![nested](sub/g b.png)',
        '![url](https://example.org/x.png) ![abs](/tmp/x.png) ![up](../outside.png) ![gone](missing.png)',
      ].join('\n'),
    );
    expect(readFileSync(join(img, 'exp-small-seed0-grid.png'), 'utf8')).toBe('png-a');
    expect(readdirSync(img)).toEqual(['exp-small-seed0-grid.png']);
    writeFileSync(join(run, 'sub', 'c.png'), 'png-d');
    expect(copyLocalImages('![c](sub/c.png)', run, img, 'img', 't')).toBe('![c](img/t-sub_c.png)');
  });
});
