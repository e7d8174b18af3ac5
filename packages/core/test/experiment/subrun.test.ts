import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  claimSubruns,
  type Experiment,
  makeSubrun,
  parseResult,
  runExperimentInline,
  stringifyResult,
  subrunDir,
} from '../../src/experiment/index.js';

describe('inline sub-run context', () => {
  it('tags sub.metric records with the sub-run name, nests folders and names, and reuses finished sub-runs', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'mmlm-subrun-'));
    let bodies = 0;
    const exp: Experiment = {
      id: 'toy.subruns',
      paper: 'Toy',
      claim: 'sub-runs',
      presets: { tiny: { description: 'instant', expectedMinutes: 0 } },
      async run(ctx) {
        const plain = await ctx.subrun('plain', async (dir) => dir); // the one-argument form still works
        const v = await ctx.subrun('outer', async (dir, sub) => {
          bodies++;
          sub.metric({ step: 1, loss: 2 });
          return sub.subrun('in ner', async (innerDir, inner) => {
            inner.metric({ subrun: 'replaced', step: 1, loss: 1 });
            return { innerDir, name: inner.name, outer: dir };
          });
        });
        return { metrics: { plain, ...v } };
      },
    };
    const r = await runExperimentInline(exp, { outDir });
    expect(r.metrics).toEqual({
      plain: join(outDir, 'subruns', 'plain'),
      innerDir: join(outDir, 'subruns', 'outer', 'subruns', 'in_ner'),
      name: 'outer/in ner',
      outer: join(outDir, 'subruns', 'outer'),
    });
    expect(existsSync(join(outDir, 'subruns', 'outer', 'subruns', 'in_ner', 'result.json'))).toBe(true);
    const lines = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { subrun: 'outer', step: 1, loss: 2 },
      { subrun: 'outer/in ner', step: 1, loss: 1 },
    ]);
    await runExperimentInline(exp, { outDir });
    expect(bodies).toBe(1);
  });
});

describe('subrunDir', () => {
  it('is the folder ctx.subrun hands its body, also for a reused sub-run of a copied run folder', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'mmlm-subrundir-'));
    const seen: string[] = [];
    const exp: Experiment = {
      id: 'toy.subrun-dir',
      paper: 'Toy',
      claim: 'sub-run folders',
      presets: { tiny: { description: 'instant', expectedMinutes: 0 } },
      async run(ctx) {
        await ctx.subrun('weights a/b', async (dir) => {
          writeFileSync(join(dir, 'w.txt'), dir);
          seen.push(dir);
          return { n: 1 };
        });
        // read through subrunDir, as experiments should, not through a path kept in the result
        return { metrics: { file: readFileSync(join(subrunDir(ctx, 'weights a/b'), 'w.txt'), 'utf8').length } };
      },
    };
    await runExperimentInline(exp, { outDir });
    expect(seen).toEqual([subrunDir({ outDir }, 'weights a/b')]);
    expect(subrunDir({ outDir }, 'weights a/b')).toBe(join(outDir, 'subruns', 'weights_a_b'));
    // a copy of the run folder reuses the finished sub-run and reads its own copy of the file
    const copy = mkdtempSync(join(tmpdir(), 'mmlm-subrundir-copy-'));
    const { cpSync, rmSync } = await import('node:fs');
    cpSync(outDir, copy, { recursive: true });
    rmSync(outDir, { recursive: true, force: true });
    const r = await runExperimentInline(exp, { outDir: copy });
    expect(seen).toHaveLength(1); // reused, the body did not run again
    expect(r.metrics.file).toBe(seen[0]!.length);
  });
});

describe('claimed sub-runs (parallel workers)', () => {
  const host = (dir: string, failures: string[], logs: string[]) =>
    makeSubrun({
      dir,
      log: (l) => logs.push(l),
      progress: () => ({ tick: () => {}, done: () => {} }),
      metric: () => {},
      claim: claimSubruns((name) => failures.push(name)),
    });

  it('a sub-run another worker holds is skipped (undefined), the next one is taken; claims are released', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-claim-'));
    const fa: string[] = [];
    const fb: string[] = [];
    const la: string[] = [];
    const lb: string[] = [];
    const a = host(dir, fa, la);
    const b = host(dir, fb, lb);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const ran: string[] = [];
    // worker A takes "x" and blocks inside its body
    const pa = a('x', async () => {
      ran.push('A:x');
      expect(existsSync(join(dir, 'subruns', 'x.claim'))).toBe(true);
      await gate;
      return 1;
    });
    // worker B finds "x" taken, skips it, and takes "y" (with a nested sub-run: no claim for it)
    const bx = await b('x', async () => {
      ran.push('B:x');
      return 2;
    });
    expect(bx).toBeUndefined();
    expect(lb.join('\n')).toMatch(/sub-run "x" is taken by another worker; skipping it/);
    const by = await b('y', async (_d, sub) => {
      ran.push('B:y');
      return sub.subrun('inner', async () => 3);
    });
    expect(by).toBe(3);
    release();
    expect(await pa).toBe(1);
    expect(ran).toEqual(['A:x', 'B:y']);
    expect(readdirSync(join(dir, 'subruns')).filter((f) => f.endsWith('.claim'))).toEqual([]);
    // a later pass reuses both without running a body
    expect(await a('x', async () => 9)).toBe(1);
    expect(await a('y', async () => 9)).toBe(3);
    expect([fa, fb]).toEqual([[], []]);
  });

  it('a claim that finds the result already saved reuses it; a body that throws is reported and releases its claim', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-claim-'));
    const failures: string[] = [];
    const s = host(dir, failures, []);
    await expect(
      s('bad', async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(failures).toEqual(['bad']);
    expect(existsSync(join(dir, 'subruns', 'bad.claim'))).toBe(false);
    expect(existsSync(join(dir, 'subruns', 'bad', 'result.json'))).toBe(false);
    // a claim file another process left (still running) keeps the body from running here
    writeFileSync(join(dir, 'subruns', 'held.claim'), '123\n');
    expect(await s('held', async () => 5)).toBeUndefined();
    expect(readFileSync(join(dir, 'subruns', 'held.claim'), 'utf8')).toBe('123\n');
  });
});

describe('sub-run results keep non-finite numbers', () => {
  it('NaN and +-Infinity survive the save and the reuse (plain JSON would give null)', async () => {
    const v = { a: Number.NaN, b: [Number.POSITIVE_INFINITY, -Infinity, 1.5], c: { $number: 'x' }, d: null };
    expect(parseResult(stringifyResult(v))).toEqual(v);
    expect(JSON.parse(JSON.stringify(v)).a).toBeNull(); // what the plain save did
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-nan-'));
    const s = makeSubrun({ dir, log: () => {}, progress: () => ({ tick: () => {}, done: () => {} }), metric: () => {} });
    const first = await s('x', async () => ({ score: Number.NaN, n: 2 }));
    const again = await s('x', async () => ({ score: 0, n: 0 }));
    expect(again).toEqual(first);
    expect(Number.isNaN(again.score)).toBe(true);
  });
});

describe('shared sub-runs (prerequisites under parallel workers)', () => {
  const worker = (dir: string, logs: string[]) =>
    makeSubrun({
      dir,
      log: (l) => logs.push(l),
      progress: () => ({ tick: () => {}, done: () => {} }),
      metric: () => {},
      claim: claimSubruns(() => {}),
      waitPollMs: 5,
    });

  it('a worker that finds a shared sub-run taken waits for its result instead of skipping it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-shared-'));
    const lb: string[] = [];
    const a = worker(dir, []);
    const b = worker(dir, lb);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const pa = a(
      'tok',
      async () => {
        await gate;
        return { codebook: 7 };
      },
      { shared: true },
    );
    const pb = b('tok', async () => ({ codebook: -1 }), { shared: true });
    await new Promise((r) => setTimeout(r, 30));
    expect(lb.join('\n')).toMatch(/sub-run "tok" is being trained by another worker; waiting for its result/);
    release();
    expect(await pa).toEqual({ codebook: 7 });
    expect(await pb).toEqual({ codebook: 7 });
  });

  it('the wait fails, naming the sub-run, when the worker that held it stops without a result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-shared-'));
    const a = worker(dir, []);
    const b = worker(dir, []);
    let fail!: () => void;
    const gate = new Promise<void>((_, reject) => {
      fail = () => reject(new Error('out of memory'));
    });
    const pa = a('tok', () => gate, { shared: true });
    const pb = b('tok', async () => 1, { shared: true });
    await new Promise((r) => setTimeout(r, 20));
    fail();
    await expect(pa).rejects.toThrow('out of memory');
    await expect(pb).rejects.toThrow(/sub-run "tok" stopped in another worker before it finished/);
  });
});
