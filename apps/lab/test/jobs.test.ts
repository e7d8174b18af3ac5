import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ttsExperiment, varianceCollapseExperiment } from '@mmlm/latentlm/experiments';
import { speechLayoutExperiment } from '@mmlm/mio/experiments';
import { causalVsBidirectionalExperiment } from '@mmlm/seed/experiments';
import { describe, expect, it } from 'vitest';
import { parseCli } from '../src/cli.js';
import { imageTokens } from '../src/experiments/imageTokens.js';
import { imageTokensSweep } from '../src/experiments/imageTokensSweep.js';
import { tinyGpt } from '../src/experiments/tinyGpt.js';
import { runExperiment } from '../src/runner.js';

// the workers run the lab CLI from source, as `tsx --conditions=@mmlm/source src/cli.ts`
const here = dirname(fileURLToPath(import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
const workerCommand = [process.execPath, tsxCli, '--conditions=@mmlm/source', join(here, '..', 'src', 'cli.ts')];

// wall times differ from run to run; every other metric must not
const timing = /Seconds$|MsPerImage$|secondsPerStep$/;
const comparable = (m: Record<string, unknown>) => Object.fromEntries(Object.entries(m).filter(([k]) => !timing.test(k)));
// metrics.jsonl without its wall times, sorted (workers append in the order they run)
const records = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.stringify(comparable(JSON.parse(l) as Record<string, unknown>)))
    .sort();

describe('--jobs: sub-runs in parallel worker processes', () => {
  it('parses --jobs; rejects 0, fractions and words', () => {
    expect(parseCli(['run', 'lab.image-tokens', '--jobs', '2']).jobs).toBe(2);
    expect(parseCli(['run', 'lab.image-tokens']).jobs).toBe(1);
    for (const bad of ['0', '1.5', 'two', '65'])
      expect(() => parseCli(['run', 'x', '--jobs', bad])).toThrow(/--jobs .*expected an integer from 1 to 64/);
    expect(() => parseCli(['list', '--jobs', '2'])).toThrow(/--jobs is an option of run/);
  });

  it('two workers train the two arms side by side; the result equals the one-process run', async () => {
    const one = mkdtempSync(join(tmpdir(), 'lab-jobs1-'));
    const two = mkdtempSync(join(tmpdir(), 'lab-jobs2-'));
    const logs: string[] = [];
    const a = await runExperiment(imageTokens, { preset: 'tiny', seed: 0, outRoot: one, progress: 'none', log: () => {} });
    const b = await runExperiment(imageTokens, {
      preset: 'tiny',
      seed: 0,
      outRoot: two,
      progress: 'none',
      log: (l) => logs.push(l),
      jobs: 2,
      workerCommand,
    });
    expect(comparable(b.record.result.metrics)).toEqual(comparable(a.record.result.metrics));
    const text = logs.join('\n');
    expect(text).toMatch(/starting 2 workers/);
    // each arm's body ran in a worker, and the parent reused both
    for (const arm of ['liquid-vq', 'latentlm-sigma-vae']) {
      expect(text).toMatch(new RegExp(`sub-run "${arm}" already finished; reusing its result`));
      expect(existsSync(join(b.dir, 'subruns', arm, 'result.json'))).toBe(true);
    }
    expect(text).toMatch(/\[worker 1\]/);
    expect(text).toMatch(/\[worker 2\]/);
    expect(text).toMatch(/is taken by another worker; skipping it/);
    expect(readdirSync(join(b.dir, 'subruns')).filter((f) => f.endsWith('.claim'))).toEqual([]);
    // metrics.jsonl: each arm's training records once, the top-level records once (the parent's)
    const recs = readFileSync(join(b.dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const key = (r: Record<string, unknown>) => `${r.subrun ?? ''}|${r.step ?? ''}|${r.arm ?? ''}`;
    const recsOne = readFileSync(join(a.dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map(key).sort()).toEqual(recsOne.map(key).sort());
    expect(b.record.command).toMatch(/--jobs 2$/);
    // the record names the GEMM that ran (its float32 summation order is part of what reproduces)
    expect(b.record.versions.gemm).toMatch(/^(native OpenBLAS [\d.]+ \(\d+ threads\)|WebAssembly SIMD \(\d+ threads?\))$/);
  }, 240_000);

  it('latentlm.variance-collapse: its two tokenizers in two workers give the one-process result', async () => {
    const one = mkdtempSync(join(tmpdir(), 'lab-vc1-'));
    const two = mkdtempSync(join(tmpdir(), 'lab-vc2-'));
    const a = await runExperiment(varianceCollapseExperiment, { preset: 'tiny', seed: 0, outRoot: one, progress: 'none', log: () => {} });
    const b = await runExperiment(varianceCollapseExperiment, {
      preset: 'tiny',
      seed: 0,
      outRoot: two,
      progress: 'none',
      log: () => {},
      jobs: 2,
      workerCommand,
    });
    expect(comparable(b.record.result.metrics)).toEqual(comparable(a.record.result.metrics));
    expect(records(b.dir)).toEqual(records(a.dir));
  }, 240_000);

  it('latentlm.tts-frame-rate (its rates), lab.image-tokens-sweep (its variants), mio.speech-layout (its arms after a shared codec) and seed.causal-vs-bidirectional (its arms after a shared ViT and text LM): workers give the one-process result', async () => {
    for (const exp of [ttsExperiment, imageTokensSweep, speechLayoutExperiment, causalVsBidirectionalExperiment]) {
      const one = mkdtempSync(join(tmpdir(), 'lab-par1-'));
      const two = mkdtempSync(join(tmpdir(), 'lab-par2-'));
      const a = await runExperiment(exp, { preset: 'tiny', seed: 0, outRoot: one, progress: 'none', log: () => {} });
      const b = await runExperiment(exp, {
        preset: 'tiny',
        seed: 0,
        outRoot: two,
        progress: 'none',
        log: () => {},
        jobs: 2,
        workerCommand,
      });
      expect(comparable(b.record.result.metrics), exp.id).toEqual(comparable(a.record.result.metrics));
      // the sweep's variants that share a tokenizer copy it from a cache when it is ready; a worker
      // that gets there first trains the same tokenizer again (the same records, once more)
      const distinct = (xs: string[]) => (exp === imageTokensSweep ? [...new Set(xs)] : xs);
      expect(distinct(records(b.dir)), exp.id).toEqual(distinct(records(a.dir)));
      expect(b.record.command, exp.id).toMatch(/--jobs 2$/);
    }
  }, 240_000);

  it('as a worker sees them (every claimed-elsewhere sub-run resolving to undefined), the sweep and the TTS rates still reach every sub-run', async () => {
    // a worker's ctx.subrun resolves to undefined for a sub-run another worker holds; an experiment
    // that reads a result before it has asked for every sub-run stops there, and that worker sits
    // idle while the other trains the rest alone (the sweep did, until its table moved after its loop)
    for (const [exp, expected] of [
      [imageTokensSweep, 5], // its tiny preset's five variants
      [ttsExperiment, null], // its rates
    ] as const) {
      const names: string[] = [];
      const out = mkdtempSync(join(tmpdir(), 'lab-skip-'));
      const ctx = {
        experimentId: exp.id,
        preset: 'tiny',
        seed: 0,
        backend: 'wasm',
        outDir: out,
        log: () => {},
        progress: () => ({ tick: () => {}, done: () => {} }),
        metric: () => {},
        subrun: async (name: string, _fn: unknown, opts?: { shared?: boolean }) => {
          expect(opts?.shared, `${exp.id}: ${name} is a shared prerequisite; this check covers independent sub-runs only`).not.toBe(true);
          names.push(name);
          return undefined;
        },
      } as unknown as Parameters<typeof exp.run>[0];
      await exp.run(ctx).catch(() => {}); // past its sub-runs it reads what it skipped: that may throw
      expect(new Set(names).size, exp.id).toBe(names.length);
      if (expected !== null) expect(names.length, exp.id).toBe(expected);
      else expect(names.length, exp.id).toBeGreaterThan(1);
    }
  });

  it('an experiment that does not declare independent sub-runs runs in one process', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-jobsno-'));
    const logs: string[] = [];
    const failing = [process.execPath, '-e', 'process.exit(3)']; // never started
    const r = await runExperiment(tinyGpt, {
      preset: 'tiny',
      seed: 0,
      outRoot: root,
      progress: 'none',
      log: (l) => logs.push(l),
      jobs: 2,
      workerCommand: failing,
    });
    expect(r.skipped).toBe(false);
    expect(logs.join('\n')).toMatch(
      /core\.tiny-gpt: runs in one process \(--jobs 2 needs independent sub-runs, which it does not declare\)/,
    );
    expect(r.record.command).not.toMatch(/--jobs/);
  }, 240_000);

  it('SIGTERM to the run reaches its workers; the run stops instead of finishing their sub-runs itself', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-jobssig-'));
    const marks = mkdtempSync(join(tmpdir(), 'lab-jobsmark-'));
    // a stand-in worker: says it started, then waits; on SIGTERM it leaves a mark and exits
    const script = `const fs=require('fs');const p=require('path');const m=${JSON.stringify(marks)};fs.writeFileSync(p.join(m,'start-'+process.pid),'');process.on('SIGTERM',()=>{fs.writeFileSync(p.join(m,'term-'+process.pid),'');process.exit(0)});setTimeout(()=>{},60000);`;
    const saved = process.listeners('SIGTERM');
    process.removeAllListeners('SIGTERM');
    try {
      const run = runExperiment(imageTokens, {
        preset: 'tiny',
        seed: 0,
        outRoot: root,
        progress: 'none',
        log: () => {},
        jobs: 2,
        workerCommand: [process.execPath, '-e', script],
      });
      const started = () => readdirSync(marks).filter((f) => f.startsWith('start-')).length;
      for (let i = 0; i < 200 && started() < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(started()).toBe(2);
      process.emit('SIGTERM', 'SIGTERM');
      await expect(run).rejects.toThrow(/lab\.image-tokens: stopped by SIGTERM; the sub-runs that finished are kept/);
      expect(readdirSync(marks).filter((f) => f.startsWith('term-')).length).toBe(2);
      // the run did not go on to train the arms itself
      expect(existsSync(join(root, 'lab.image-tokens', 'tiny-seed0', 'subruns', 'liquid-vq', 'result.json'))).toBe(false);
    } finally {
      process.removeAllListeners('SIGTERM');
      for (const l of saved) process.on('SIGTERM', l);
    }
  }, 60_000);

  it('a worker that fails fails the run, naming it and its last lines; the folder resumes without workers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lab-jobsbad-'));
    const failing = [process.execPath, '-e', 'process.stderr.write("cannot start: boom\\n"); process.exit(3)'];
    await expect(
      runExperiment(imageTokens, {
        preset: 'tiny',
        seed: 0,
        outRoot: root,
        progress: 'none',
        log: () => {},
        jobs: 2,
        workerCommand: failing,
      }),
    ).rejects.toThrow(/lab\.image-tokens: worker 1 \(exit code 3\), 2 \(exit code 3\) failed; .*\n.*cannot start: boom/s);
    const r = await runExperiment(imageTokens, { preset: 'tiny', seed: 0, outRoot: root, progress: 'none', log: () => {} });
    expect(r.skipped).toBe(false);
    expect(Object.keys(r.record.result.metrics).length).toBeGreaterThan(10);
  }, 240_000);
});
