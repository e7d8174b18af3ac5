import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareSeeds, type Experiment, formatMeanStd, meanStd } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { BEGIN, END, updateDocs } from '../src/docs.js';
import { type AggregateRecord, buildIndex, findAggregates, findRuns, main, parseCli, runSeeds } from '../src/index.js';
import { commandOptions } from '../src/runner.js';

/** A fake experiment whose metrics depend on the seed; counts runs per seed. */
function fake(calls: number[], opts: { aggregateThrows?: boolean } = {}): Experiment {
  return {
    id: 'test.seeds',
    paper: 'Fake',
    claim: 'accuracy is high',
    presets: { tiny: { description: 'instant', expectedMinutes: 0.01 } },
    async run(ctx) {
      calls.push(ctx.seed);
      for (let s = 1; s <= 3; s++) ctx.metric({ step: s, loss: (ctx.seed + 1) / s });
      return {
        metrics: {
          accuracy: 0.9 + 0.01 * ctx.seed,
          loss: 1 / (ctx.seed + 1),
          flaky: ctx.seed === 0 ? Number.NaN : 2 * ctx.seed, // NaN in seed 0 (null in result.json)
          name: 'fake',
          ok: true,
        },
        summary: `Seed ${ctx.seed} reached ${(0.9 + 0.01 * ctx.seed).toFixed(2)}.`,
      };
    },
    aggregate(results, seeds) {
      if (opts.aggregateThrows) throw new Error('bad aggregate');
      const dense = results.map((r) => r.metrics.accuracy as number);
      const sparse = results.map((r) => (r.metrics.accuracy as number) - 0.2);
      const c = compareSeeds(dense, sparse, 'higher', ['dense', 'sparse']);
      return {
        tables: [
          {
            title: 'Claim table',
            columns: ['arm', 'accuracy'],
            rows: [
              ['dense', formatMeanStd(meanStd(dense))],
              ['sparse', formatMeanStd(meanStd(sparse))],
            ],
          },
        ],
        summary: `Over seeds ${seeds.join(', ')}: ${c.text}.`,
      };
    },
  };
}

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

describe('--seeds', () => {
  it('runs each seed into its own folder, reuses finished ones and writes aggregate.json and report.md', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-seeds-'));
    const calls: number[] = [];
    const quiet = { preset: 'tiny', outRoot: root, progress: 'none' as const, log: () => {} };
    await runSeeds(fake(calls), { ...quiet, seeds: [0] });
    const { dir, aggregate } = await runSeeds(fake(calls), { ...quiet, seeds: [2, 0, 1] });
    expect(calls).toEqual([0, 1, 2]); // seed 0 was reused; seeds run ascending
    expect(dir).toBe(join(root, 'test.seeds', 'tiny-seeds0-1-2'));
    for (const s of [0, 1, 2]) expect(existsSync(join(root, 'test.seeds', `tiny-seed${s}`, 'result.json'))).toBe(true);

    const a = readJson(join(dir, 'aggregate.json')) as AggregateRecord;
    expect(a).toEqual(JSON.parse(JSON.stringify(aggregate)));
    expect(a.seeds).toEqual([0, 1, 2]);
    expect(a.command).toBe('pnpm lab run test.seeds --preset tiny --seeds 0,1,2');
    expect(Object.keys(a.metrics)).toEqual(['accuracy', 'loss', 'flaky']); // strings and booleans are not aggregated
    // against the per-seed result.json files
    const per = [0, 1, 2].map((s) => readJson(join(root, 'test.seeds', `tiny-seed${s}`, 'result.json')).result.metrics);
    for (const k of ['accuracy', 'loss'] as const) {
      const xs = per.map((m) => m[k] as number);
      expect(a.metrics[k]!.values).toEqual(xs);
      const mean = (xs[0]! + xs[1]! + xs[2]!) / 3;
      const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / 2);
      expect(a.metrics[k]!.n).toBe(3);
      expect(a.metrics[k]!.mean).toBeCloseTo(mean, 12);
      expect(a.metrics[k]!.std).toBeCloseTo(std, 12);
      expect(a.metrics[k]!.se).toBeCloseTo(std / Math.sqrt(3), 12);
    }
    // accuracy 0.90, 0.91, 0.92: mean 0.91, std 0.01 (closed form)
    expect(a.metrics.accuracy!.mean).toBeCloseTo(0.91, 12);
    expect(a.metrics.accuracy!.std).toBeCloseTo(0.01, 12);
    // NaN in seed 0 is null in its result.json and left out of the mean: values 2 and 4
    expect(per[0]!.flaky).toBeNull();
    expect(a.metrics.flaky).toEqual({ values: [null, 2, 4], mean: 3, std: Math.SQRT2, n: 2, se: 1 });
    expect(a.runs.map((r) => r.dir)).toEqual(['../tiny-seed0', '../tiny-seed1', '../tiny-seed2']);

    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/\| metric \| mean ± std \| seed 0 \| seed 1 \| seed 2 \|/);
    expect(md).toMatch(/\| accuracy \| 0\.910 ± 0\.010 \| 0\.9000 \| 0\.9100 \| 0\.9200 \|/);
    expect(md).toMatch(/\| flaky \| 3\.0 ± 1\.4 \| — \| 2 \| 4 \|/);
    expect(md).toMatch(/pnpm lab run test\.seeds --preset tiny --seeds 0,1,2/);
    // the experiment's own aggregate comes after the generic table, then the per-seed summaries
    const generic = md.indexOf('| metric | mean ± std');
    const own = md.indexOf('**Claim table**');
    const perSeed = md.indexOf('## Per-seed summaries');
    expect(generic).toBeGreaterThan(0);
    expect(own).toBeGreaterThan(generic);
    expect(perSeed).toBeGreaterThan(own);
    expect(md).toMatch(/\| dense \| 0\.910 ± 0\.010 \|/);
    expect(md).toMatch(/Over seeds 0, 1, 2: no difference beyond 2 SE|Over seeds 0, 1, 2: dense better/);
    for (const s of [0, 1, 2]) {
      expect(md).toContain(`### Seed ${s}`);
      expect(md).toContain(`Seed ${s} reached ${(0.9 + 0.01 * s).toFixed(2)}.`);
      expect(md).toContain(`[report.md](../tiny-seed${s}/report.md)`);
    }
    expect(md.indexOf('### Seed 0')).toBeLessThan(md.indexOf('### Seed 1'));

    // the index lists the runs and the aggregates
    expect(findRuns(root)).toHaveLength(3);
    expect(findAggregates(root).map((f) => f.aggregate.seeds)).toEqual([[0, 1, 2], [0]]);
    const html = readFileSync(buildIndex(root), 'utf8');
    expect(html).toMatch(/3 run\(s\) and 2 seed aggregate\(s\)/);
    expect(html).toMatch(/<caption>Seed aggregates<\/caption>/);
    expect(html).toMatch(/<caption>Mean ± std over 3 seeds \(0, 1, 2\)<\/caption>/);
    expect(html).toContain('<td>0.910 ± 0.010</td>');
    expect(html).toMatch(/<caption>Claim table<\/caption>/);
    expect(html).toContain('test.seeds/tiny-seeds0-1-2/aggregate.json');

    // docs: the aggregate block follows the single runs on the paper's page
    const pages = join(root, 'docs', 'papers');
    mkdirSync(pages, { recursive: true });
    writeFileSync(join(pages, 'fake.md'), `# Fake\n\n${BEGIN}\n${END}\n`);
    expect(updateDocs(root, join(root, 'docs')).map((u) => u.page)).toEqual([join(pages, 'fake.md')]);
    const doc = readFileSync(join(pages, 'fake.md'), 'utf8');
    const lastRun = doc.indexOf('### test.seeds, preset `tiny`, seed 2');
    const agg3 = doc.indexOf('### test.seeds, preset `tiny`, seeds 0, 1, 2 (mean ± std)');
    const agg1 = doc.indexOf('### test.seeds, preset `tiny`, seeds 0 (mean ± std)');
    expect(lastRun).toBeGreaterThan(0);
    expect(agg1).toBeGreaterThan(lastRun);
    expect(agg3).toBeGreaterThan(agg1);
    expect(doc.slice(agg3)).toMatch(/pnpm lab run test\.seeds --preset tiny --seeds 0,1,2/);
    expect(doc.slice(agg3)).toMatch(/\| accuracy \| 0\.910 ± 0\.010 \| 0\.9000 \| 0\.9100 \| 0\.9200 \|/);
    expect(doc.slice(agg3)).toMatch(/\*\*Claim table\*\*/);
    expect(doc.slice(agg1)).toMatch(/\| accuracy \| 0\.9000 ± — \| 0\.9000 \|/);
    expect(doc).toMatch(/<!-- \/lab:runs -->\n$/);
  });

  it("writes the generic aggregate and then fails when the experiment's aggregate() throws", async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-seeds-err-'));
    await expect(
      runSeeds(fake([], { aggregateThrows: true }), { preset: 'tiny', outRoot: root, progress: 'none', log: () => {}, seeds: [0, 1] }),
    ).rejects.toThrow(/test\.seeds: aggregate\(\) failed: bad aggregate/);
    const a = readJson(join(root, 'test.seeds', 'tiny-seeds0-1', 'aggregate.json')) as AggregateRecord;
    expect(a.aggregateError).toBe('bad aggregate');
    expect(a.metrics.accuracy!.values).toEqual([0.9, 0.91]);
    expect(readFileSync(join(root, 'test.seeds', 'tiny-seeds0-1', 'report.md'), 'utf8')).toMatch(/aggregate\(\) failed:\*\* bad aggregate/);
  });

  it('rejects bad seed lists and an unknown preset in runSeeds', async () => {
    const o = { preset: 'tiny', outRoot: tmpdir(), progress: 'none' as const, log: () => {} };
    await expect(runSeeds(fake([]), { ...o, seeds: [] })).rejects.toThrow(/the list is empty/);
    await expect(runSeeds(fake([]), { ...o, seeds: [0, 0] })).rejects.toThrow(/seed 0 is listed twice/);
    await expect(runSeeds(fake([]), { ...o, seeds: [1.5] })).rejects.toThrow(/1\.5 is not an integer in \[0, 4294967295\]/);
    await expect(runSeeds(fake([]), { ...o, preset: 'huge', seeds: [0] })).rejects.toThrow(/has no preset "huge"/);
  });
});

describe('recorded commands', () => {
  it('name --data, --backend and --jobs as given (--jobs only for an experiment with parallel sub-runs)', () => {
    const par = { parallelSubruns: true } as Experiment;
    const seq = {} as Experiment;
    expect(commandOptions(par, { jobs: 2 })).toBe(' --jobs 2');
    expect(commandOptions(par, { jobs: 1 })).toBe('');
    expect(commandOptions(seq, { jobs: 2 })).toBe('');
    expect(commandOptions(par, { dataPath: '/d/a.txt', backend: 'cpu', jobs: 2 })).toBe(' --data /d/a.txt --backend cpu --jobs 2');
    expect(commandOptions(seq, {})).toBe('');
  });
});

describe('--seeds on the command line', () => {
  it('parses a seed list, ascending', () => {
    expect(parseCli(['run', 'x', '--seeds', '2,0,1']).seeds).toEqual([0, 1, 2]);
    expect(parseCli(['run', 'x', '--seeds', ' 3 ']).seeds).toEqual([3]);
    expect(parseCli(['run', 'x', '--seed', '4'])).toMatchObject({ seed: 4 });
    expect(parseCli(['run', 'x', '--seed', '4']).seeds).toBeUndefined();
  });

  it('names the bad value', () => {
    expect(() => parseCli(['run', 'x', '--seed', '1', '--seeds', '0,1'])).toThrow(
      /--seed and --seeds cannot be used together \(got --seed 1 and --seeds 0,1\)/,
    );
    expect(() => parseCli(['run', 'x', '--seeds', ''])).toThrow('--seeds "": expected a comma-separated list of decimal integers');
    expect(() => parseCli(['run', 'x', '--seeds', '0,a'])).toThrow('--seeds "0,a": "a" is not a decimal integer');
    expect(() => parseCli(['run', 'x', '--seeds', '0,1.5'])).toThrow('--seeds "0,1.5": "1.5" is not a decimal integer');
    expect(() => parseCli(['run', 'x', '--seeds', '0,,1'])).toThrow('--seeds "0,,1": "" is not a decimal integer');
    expect(() => parseCli(['run', 'x', '--seeds=-1'])).toThrow('--seeds "-1": "-1" is negative');
    expect(() => parseCli(['run', 'x', '--seeds', '0,-2'])).toThrow('--seeds "0,-2": "-2" is negative');
    expect(() => parseCli(['run', 'x', '--seeds', '0,0x10'])).toThrow('"0x10" is not a decimal integer');
    expect(() => parseCli(['run', 'x', '--seeds', '1e30'])).toThrow('"1e30" is not a decimal integer');
    expect(() => parseCli(['run', 'x', '--seeds', '0,1,0'])).toThrow('--seeds "0,1,0": seed 0 is listed twice');
    expect(() => parseCli(['report', '--seeds', '0,1'])).toThrow(/--seeds is an option of run, not of report/);
  });

  it('runs core.tiny-gpt over two seeds; aggregate.json agrees with the per-seed result.json', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-seeds-cli-'));
    const code = await main(['run', 'core.tiny-gpt', '--preset', 'tiny', '--seeds', '1,0', '--out', root, '--progress', 'none']);
    expect(code).toBe(0);
    const per = [0, 1].map((s) => readJson(join(root, 'core.tiny-gpt', `tiny-seed${s}`, 'result.json')));
    expect(per.map((r) => r.seed)).toEqual([0, 1]);
    const a = readJson(join(root, 'core.tiny-gpt', 'tiny-seeds0-1', 'aggregate.json')) as AggregateRecord;
    expect(a.command).toBe('pnpm lab run core.tiny-gpt --preset tiny --seeds 0,1');
    for (const k of ['firstLoss', 'finalLoss', 'valBitsPerChar']) {
      const [x0, x1] = per.map((r) => r.result.metrics[k] as number) as [number, number];
      const m = a.metrics[k]!;
      expect(m.values).toEqual([x0, x1]);
      expect(m.n).toBe(2);
      expect(m.mean).toBeCloseTo((x0 + x1) / 2, 12);
      expect(m.std).toBeCloseTo(Math.abs(x0 - x1) / Math.SQRT2, 12); // sample std of two values
      expect(m.se).toBeCloseTo(Math.abs(x0 - x1) / 2, 12);
    }
    expect(existsSync(join(root, 'core.tiny-gpt', 'tiny-seeds0-1', 'report.md'))).toBe(true);
    expect(readFileSync(join(root, 'index.html'), 'utf8')).toMatch(/Seed aggregates/);
  }, 120_000);
});
