import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Experiment } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { lossPoints, runExperiment } from '../src/index.js';

const jsonl = (records: unknown[]) => records.map((r) => JSON.stringify(r)).join('\n');
const seriesOf = (points: { series: string }[]) => [...new Set(points.map((p) => p.series))];

describe('loss figure series', () => {
  it('draws one curve per subrun ?? run ?? series, skipping records without a step and a finite loss', () => {
    const text = jsonl([
      { subrun: 'a', step: 1, loss: 2 },
      { run: 'dense', step: 0, loss: 3 }, // paper experiments write { run, step, loss }
      { subrun: 'a', step: 2, loss: 1.5 },
      { run: 'dense', step: 25, loss: 2.5 },
      { subrun: 'a/inner', run: 'ignored', step: 1, loss: 1 }, // subrun wins over run
      { series: 'val', step: 10, loss: 0.9 },
      { step: 5, loss: 4 }, // no name: 'train'
      { run: 'cfg-sweep', cfgScale: 2, generationScore: 0.5 }, // no step / loss: not a loss point
      { run: 'dense', step: 30, loss: Number.NaN }, // JSON null: skipped
      { run: 'gen', step: 3, generationScore: 0.4 },
    ]);
    const points = lossPoints(`${text}\n{"subrun":"a","step":3,"lo`); // a torn last line is skipped
    expect(seriesOf(points)).toEqual(['a', 'dense', 'a/inner', 'val', 'train']);
    expect(points.filter((p) => p.series === 'a').map((p) => [p.x, p.y])).toEqual([
      [1, 2],
      [2, 1.5],
    ]);
    expect(points.filter((p) => p.series === 'dense').map((p) => p.x)).toEqual([0, 25]);
  });

  it('starts a new phase "<series> #2" where a series restarts its step counter, instead of a sawtooth', () => {
    const stage = (run: string) => [0, 25, 49].map((step) => ({ run, step, loss: 3 - step / 25 }));
    const text = jsonl([
      ...stage('tokenizer'),
      ...stage('unified'),
      ...stage('tokenizer'),
      ...stage('tokenizer'),
      { run: 'unified', step: 49, loss: 1 },
    ]);
    const points = lossPoints(text);
    expect(seriesOf(points)).toEqual(['tokenizer', 'unified', 'tokenizer #2', 'tokenizer #3']);
    for (const s of ['tokenizer', 'tokenizer #2', 'tokenizer #3'])
      expect(points.filter((p) => p.series === s).map((p) => p.x)).toEqual([0, 25, 49]);
    // a repeated step (not lower) stays in the same phase
    expect(points.filter((p) => p.series === 'unified').map((p) => p.x)).toEqual([0, 25, 49, 49]);
  });
});

describe('sub-run contexts', () => {
  /** Sub-runs that log through `sub.metric` (no subrun key), one nested; counts body runs. */
  function nested(calls: Record<string, number>, failAt?: string): Experiment {
    return {
      id: 'test.subrun-metrics',
      paper: 'Fake',
      claim: 'sub-run metrics are tagged',
      presets: { tiny: { description: 'instant', expectedMinutes: 0.01 } },
      async run(ctx) {
        const a = await ctx.subrun('a', async (dir, sub) => {
          calls.a = (calls.a ?? 0) + 1;
          expect(sub.dir).toBe(dir);
          expect(sub.name).toBe('a');
          for (let s = 1; s <= 4; s++) sub.metric({ step: s, loss: 2 / s });
          const inner = await sub.subrun('inner', async (innerDir, inn) => {
            calls.inner = (calls.inner ?? 0) + 1;
            expect(innerDir).toBe(join(dir, 'subruns', 'inner'));
            expect(inn.name).toBe('a/inner');
            for (let s = 1; s <= 3; s++) inn.metric({ subrun: 'overridden', step: s, loss: 1 / s });
            return 7;
          });
          if (failAt === 'a') throw new Error('crash in a');
          return inner + 1;
        });
        const b = await ctx.subrun('b', async (_dir, sub) => {
          for (let s = 1; s <= 3; s++) sub.metric({ step: s, loss: 3 / s });
          return 1;
        });
        return { metrics: { a, b } };
      },
    };
  }

  it('tags sub.metric records with the sub-run name (nested names joined by "/") and draws one curve each', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-subrun-'));
    const calls: Record<string, number> = {};
    const opts = { preset: 'tiny', seed: 0, outRoot: root, progress: 'none' as const, log: () => {} };
    await expect(runExperiment(nested(calls, 'a'), opts)).rejects.toThrow(/crash in a/);
    const dir = join(root, 'test.subrun-metrics', 'tiny-seed0');
    expect(existsSync(join(dir, 'subruns', 'a', 'subruns', 'inner', 'result.json'))).toBe(true);
    const lines: string[] = [];
    const { record } = await runExperiment(nested(calls), { ...opts, log: (l) => lines.push(l) });
    expect(calls).toEqual({ a: 2, inner: 1 }); // the nested sub-run was reused on the rerun
    expect(lines.join('\n')).toMatch(/sub-run "a\/inner" already finished/);
    expect(record.result.metrics).toEqual({ a: 8, b: 1 });
    const text = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
    const records = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(new Set(records.map((r) => r.subrun))).toEqual(new Set(['a', 'a/inner', 'b']));
    // the crashed first attempt's records of a (unfinished) were dropped when the rerun started; those
    // of a/inner (finished, reused) were kept: one curve per sub-run, no "a #2"
    expect(records[0]).toMatchObject({ subrun: 'a/inner', step: 1 });
    expect(records.filter((r) => r.subrun === 'a' && r.step === 1)).toHaveLength(1);
    expect(seriesOf(lossPoints(text)).sort()).toEqual(['a', 'a/inner', 'b']);
    expect(record.result.figures?.map((f) => f.path)).toContain('loss.png');
  });
});
