/**
 * The lab never mixes or loses runs: folders keyed by the data file, a run made on another backend
 * refused, --force starting from an empty folder, a resumed attempt dropping the records of the work
 * it redoes, and bad command lines refused (exit 2, one line) before any backend start or folder.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Experiment } from '@mmlm/core/experiment';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  canonicalJson,
  main,
  parseCli,
  pruneUnfinishedMetrics,
  RunLockedError,
  RunMismatchError,
  runDir,
  runExperiment,
  runSeeds,
} from '../src/index.js';

/** Reads its data file (when given) and logs a 3-step loss curve in sub-run `train`. */
function reader(calls: { n: number }): Experiment {
  return {
    id: 'test.reader',
    paper: 'Fake',
    claim: 'reads data',
    presets: { tiny: { description: 'instant', expectedMinutes: 0 } },
    data: { description: 'any text file' },
    async run(ctx) {
      calls.n++;
      const chars = ctx.dataPath ? readFileSync(ctx.dataPath, 'utf8').length : -1;
      await ctx.subrun('train', async (_dir, sub) => {
        for (let s = 1; s <= 3; s++) sub.metric({ step: s, loss: 1 / s });
      });
      return { metrics: { chars } };
    },
  };
}

const quiet = { progress: 'none' as const, log: () => {} };
const metricLines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n');

describe('lab run folders', () => {
  it('are keyed by the data file content: other data is a new run, never "already finished"', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-rec-'));
    const a = join(root, 'a.txt');
    const b = join(root, 'b.txt');
    writeFileSync(a, 'aaaa\n');
    writeFileSync(b, 'bbbbbbbb\n');
    const calls = { n: 0 };
    const ra = await runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, dataPath: a, ...quiet });
    const rb = await runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, dataPath: b, ...quiet });
    expect(rb.skipped).toBe(false);
    expect(ra.dir).not.toBe(rb.dir);
    expect(ra.record.result.metrics.chars).toBe(5);
    expect(rb.record.result.metrics.chars).toBe(9);
    expect(ra.dir).toMatch(/tiny-seed0-data-a\.txt-[0-9a-f]{12}$/);
    // the same file again is the same run; edited content is a new one
    expect((await runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, dataPath: a, ...quiet })).skipped).toBe(true);
    writeFileSync(a, 'aaaaaaaaaaaa\n');
    const edited = await runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, dataPath: a, ...quiet });
    expect(edited.skipped).toBe(false);
    expect(edited.dir).not.toBe(ra.dir);
    expect(calls.n).toBe(3);
    // without data: its own folder
    expect(runDir(root, reader(calls), 'tiny', 0)).toBe(join(root, 'test.reader', 'tiny-seed0'));
  });

  it('refuses a folder holding a run on another backend (finished or not), unless --force', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-rec-'));
    const calls = { n: 0 };
    const first = await runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, ...quiet });
    const id = JSON.parse(readFileSync(join(first.dir, 'run.json'), 'utf8'));
    expect(id).toMatchObject({ experiment: 'test.reader', preset: 'tiny', seed: 0, data: null });
    writeFileSync(join(first.dir, 'run.json'), JSON.stringify({ ...id, backend: 'tensorflow' }));
    await expect(runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, ...quiet })).rejects.toThrow(RunMismatchError);
    await expect(runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, ...quiet })).rejects.toThrow(
      /holds a run made with backend tensorflow \(this run: \w+\); its results would mix with this one\. Pass --force/,
    );
    expect(calls.n).toBe(1);
    const forced = await runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, force: true, ...quiet });
    expect(forced.skipped).toBe(false);
    expect(calls.n).toBe(2);
  });

  it('refuses a folder made with other preset settings (a preset changed since), finished or not; accepts one from before fingerprints', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-rec-'));
    const calls = { n: 0 };
    const steps = { n: 3 };
    const exp = (): Experiment => ({ ...reader(calls), settings: (preset) => ({ preset, steps: steps.n, nested: { b: 1, a: [2, 3] } }) });
    const first = await runExperiment(exp(), { preset: 'tiny', seed: 0, outRoot: root, ...quiet });
    const id = JSON.parse(readFileSync(join(first.dir, 'run.json'), 'utf8'));
    expect(id.settings).toMatch(/^[0-9a-f]{16}$/);
    // the same settings (keys in another order are the same settings): reused
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
    expect((await runExperiment(exp(), { preset: 'tiny', seed: 0, outRoot: root, ...quiet })).skipped).toBe(true);
    steps.n = 4;
    await expect(runExperiment(exp(), { preset: 'tiny', seed: 0, outRoot: root, ...quiet })).rejects.toThrow(
      new RegExp(`holds a run made with preset settings ${id.settings} \\(this run: [0-9a-f]{16}; the preset changed since\\)`),
    );
    // unfinished too: the folder is not resumed with other settings
    rmSync(join(first.dir, 'result.json'));
    await expect(runExperiment(exp(), { preset: 'tiny', seed: 0, outRoot: root, ...quiet })).rejects.toThrow(RunMismatchError);
    expect(calls.n).toBe(1);
    // a run.json from before the fingerprint: accepted as it was, and stamped with this run's settings
    const { settings: _, ...old } = id;
    writeFileSync(join(first.dir, 'run.json'), JSON.stringify(old));
    expect((await runExperiment(exp(), { preset: 'tiny', seed: 0, outRoot: root, ...quiet })).skipped).toBe(false);
    expect(JSON.parse(readFileSync(join(first.dir, 'run.json'), 'utf8')).settings).not.toBe(id.settings);
    expect(calls.n).toBe(2);
    // an experiment without settings writes none
    const plain = await runExperiment(reader(calls), { preset: 'tiny', seed: 1, outRoot: root, ...quiet });
    expect(JSON.parse(readFileSync(join(plain.dir, 'run.json'), 'utf8'))).not.toHaveProperty('settings');
  });

  it('--force starts from an empty folder: metrics.jsonl holds one run, not three', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-rec-'));
    const calls = { n: 0 };
    for (let i = 0; i < 3; i++) await runExperiment(reader(calls), { preset: 'tiny', seed: 0, outRoot: root, force: true, ...quiet });
    const dir = join(root, 'test.reader', 'tiny-seed0');
    expect(calls.n).toBe(3);
    expect(metricLines(dir)).toHaveLength(3);
  });

  it('a resumed attempt keeps the records of finished sub-runs and drops those of the work it redoes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-rec-'));
    mkdirSync(join(dir, 'subruns', 'a'), { recursive: true });
    writeFileSync(join(dir, 'subruns', 'a', 'result.json'), '{}');
    mkdirSync(join(dir, 'subruns', 'b', 'subruns', 'c'), { recursive: true });
    writeFileSync(join(dir, 'subruns', 'b', 'subruns', 'c', 'result.json'), '{}'); // nested: finished
    const recs = [
      { subrun: 'a', step: 1, loss: 1 },
      { subrun: 'a', step: 2, loss: 0.5 },
      { subrun: 'b', step: 1, loss: 1 }, // b never finished
      { subrun: 'b/c', step: 1, loss: 2 },
      { step: 1, eval: 3 }, // top level of the interrupted attempt
    ];
    writeFileSync(join(dir, 'metrics.jsonl'), `${recs.map((r) => JSON.stringify(r)).join('\n')}\n{"subrun":"a","st`);
    expect(pruneUnfinishedMetrics(dir)).toBe(3);
    expect(metricLines(dir).map((l) => JSON.parse(l))).toEqual([recs[0], recs[1], recs[3]]);
  });
});

describe('lab run lock', () => {
  it('refuses a folder a live process is running (run, --force, a --seeds aggregate) and touches nothing; a dead holder is stale', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-lock-'));
    const calls = { n: 0 };
    const dir = runDir(root, reader(calls), 'tiny', 1);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.jsonl'), '{"subrun":"train","step":1,"loss":9}\n');
    // a live process that is not this one holds the lock
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const lock = { pid: holder.pid, host: hostname(), startedAt: '2026-12-05T10:00:00.000Z' };
    writeFileSync(join(dir, 'run.lock'), JSON.stringify(lock));
    try {
      const msg = new RegExp(`is being run by another process \\(pid ${holder.pid} on ${hostname()}, since 2026-12-05T10:00:00.000Z\\)`);
      await expect(runExperiment(reader(calls), { preset: 'tiny', seed: 1, outRoot: root, ...quiet })).rejects.toThrow(RunLockedError);
      await expect(runExperiment(reader(calls), { preset: 'tiny', seed: 1, outRoot: root, ...quiet })).rejects.toThrow(msg);
      await expect(runExperiment(reader(calls), { preset: 'tiny', seed: 1, outRoot: root, force: true, ...quiet })).rejects.toThrow(msg);
      // the aggregate runs seed 0, then stops at seed 1 instead of re-running it beside its holder
      await expect(runSeeds(reader(calls), { preset: 'tiny', seeds: [0, 1], outRoot: root, ...quiet })).rejects.toThrow(msg);
      expect(calls.n).toBe(1);
      expect(metricLines(dir)).toEqual(['{"subrun":"train","step":1,"loss":9}']);
      expect(existsSync(join(dir, 'result.json'))).toBe(false);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    // its process is gone: the lock is stale, the run goes ahead and leaves no lock behind
    const r = await runExperiment(reader(calls), { preset: 'tiny', seed: 1, outRoot: root, ...quiet });
    expect(r.skipped).toBe(false);
    expect(calls.n).toBe(2);
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
  });

  it('is released when the run throws', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-lock-'));
    const failing: Experiment = {
      ...reader({ n: 0 }),
      id: 'test.failing',
      data: undefined,
      run: async () => {
        throw new Error('boom');
      },
    };
    await expect(runExperiment(failing, { preset: 'tiny', seed: 0, outRoot: root, ...quiet })).rejects.toThrow('boom');
    const dir = runDir(root, failing, 'tiny', 0);
    expect(existsSync(join(dir, 'run.json'))).toBe(true);
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
  });
});

describe('lab command line', () => {
  let err: string[];
  beforeEach(() => {
    err = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err.push(String(s));
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('exits 2 with one line naming the flag, before any folder is created', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-cli-'));
    const out = join(root, 'runs');
    const text = join(root, 'c.txt');
    writeFileSync(text, 'hello\n');
    const cases: [string[], RegExp][] = [
      [
        ['run', 'maskllm.ladder', '--preset', 'constructor'],
        /--preset "constructor": maskllm\.ladder has no such preset; expected one of tiny, quick, small/,
      ],
      [['run', 'maskllm.ladder', '--preset', '__proto__'], /--preset "__proto__": maskllm\.ladder has no such preset/],
      [['run', 'maskllm.ladder', '--preset', 'toString'], /--preset "toString"/],
      [['run', 'maskllm.ladder', '--seed', ''], /--seed "": expected a decimal integer in \[0, 4294967295\]/],
      [['run', 'maskllm.ladder', '--seed', '0x10'], /--seed "0x10": expected a decimal integer/],
      [['run', 'maskllm.ladder', '--seed', '1e30'], /--seed "1e30": expected a decimal integer/],
      [['run', 'maskllm.ladder', '--seed', '4294967296'], /--seed "4294967296": seeds are 32-bit/],
      [['run', 'maskllm.ladder', '--seeds', '0,4294967296'], /--seeds "0,4294967296": "4294967296" is above 2\^32 - 1/],
      [['run', 'maskllm.ladder', '--seed', '1', '--seed', '2'], /--seed is given 2 times; give it once/],
      [['run', 'maskllm.ladder', '--out', 'a', '--out=b'], /--out is given 2 times/],
      [['run', 'maskllm.transfer', '--data', text], /--data ".*c\.txt": maskllm\.transfer reads no data file; drop --data/],
      [['run', 'maskllm', '--data', text], /maskllm\.transfer, maskllm\.ablations read no data file/],
      [
        ['run', 'maskllm.ladder', '--data', join(root, 'nope.txt')],
        /--data ".*nope\.txt": no such file or folder; expected an existing file/,
      ],
      [['run', 'maskllm.ladder', '--data', root], /--data ".*": not a regular file/],
      [['report', '--seed', '1'], /--seed is an option of run, not of report/],
    ];
    for (const [argv, re] of cases) {
      err.length = 0;
      const code = await main([...argv, ...(argv.includes('--out') || argv[0] !== 'run' ? [] : ['--out', out])]);
      expect(code, argv.join(' ')).toBe(2);
      const msg = err.join('');
      expect(msg, argv.join(' ')).toMatch(re);
      expect(msg.split('\n')[0], argv.join(' ')).toMatch(/^mmlm-lab: /);
      expect(msg, argv.join(' ')).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(root).sort()).toEqual(['c.txt']);
  });

  it("--out that cannot be created exits 2 at once (Node's recursive mkdir never returns for /proc/x)", async () => {
    const t0 = Date.now();
    expect(await main(['run', 'core.tiny-gpt', '--preset', 'tiny', '--out', '/proc/x'])).toBe(2);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(err.join('')).toMatch(/^mmlm-lab: --out "\/proc\/x": cannot create \/proc\/x \(/);
  });

  it('keeps the parse of good command lines', () => {
    expect(parseCli(['run', 'x', '--seed', '4294967295']).seed).toBe(4294967295);
    expect(parseCli(['run', 'x', '--seeds', '2,0,1']).seeds).toEqual([0, 1, 2]);
  });
});
