import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkpointDirName,
  disposeCheckpoint,
  Linear,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  loadLatestCheckpoint,
  NonFiniteTensorError,
  Rng,
  SafetensorsError,
  type StatefulOptimizer,
  saveCheckpoint,
  tf,
  trainLoop,
} from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

const made: string[] = [];
const root = () => {
  const d = mkdtempSync(join(tmpdir(), 'ckpt-'));
  made.push(d);
  return d;
};

/** An optimizer stand-in with one state tensor per parameter. */
function fakeOptimizer(model: Linear): StatefulOptimizer & { buf: tf.Tensor } {
  const buf = tf.tensor1d([0.5, -0.25]);
  return {
    buf,
    stateDict: () => ({ tensors: { 'weight.momentum': buf }, json: { t: 7, lr: 0.1, groups: [{ n: model.outFeatures }] } }),
    loadStateDict: () => {},
  };
}

describe('checkpoints', () => {
  beforeAll(async () => useBackend('cpu'));
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  it('round-trips weights, optimizer state, step, rng states, config and extra; leaks nothing', async () => {
    const dir = root();
    const model = new Linear(2, 1, { rng: new Rng(1) });
    const opt = fakeOptimizer(model);
    const rng = new Rng(5);
    rng.uniform();
    const data = new Rng(9);
    const n0 = tf.memory().numTensors;
    const path = await saveCheckpoint(dir, {
      model,
      optimizer: opt,
      step: 12,
      rng,
      rngs: { data, dropout: new Rng(3).getState() },
      config: { dim: 2, name: 'lin' },
      extra: { note: 'x' },
    });
    expect(tf.memory().numTensors).toBe(n0);
    expect(path).toBe(join(dir, 'step-00000012'));
    expect(readdirSync(path).sort()).toEqual(['model.safetensors', 'optimizer.safetensors', 'state.json']);
    const ck = await loadCheckpoint(path);
    expect(tf.memory().numTensors).toBe(n0 + 3); // weight, bias, momentum
    expect(ck.step).toBe(12);
    expect(Array.from(ck.weights.weight!.dataSync())).toEqual(Array.from(model.weight.dataSync()));
    expect(ck.weights.bias!.shape).toEqual([1]);
    expect(Array.from(ck.optimizer!.tensors['weight.momentum']!.dataSync())).toEqual([0.5, -0.25]);
    expect(ck.optimizer!.json).toEqual({ t: 7, lr: 0.1, groups: [{ n: 1 }] });
    expect(ck.rng).toEqual(rng.getState());
    expect(new Rng(ck.rng!).uniform()).toBe(rng.uniform());
    expect(ck.rngs).toEqual({ data: data.getState(), dropout: new Rng(3).getState() });
    expect(ck.config).toEqual({ dim: 2, name: 'lin' });
    expect(ck.extra).toEqual({ note: 'x' });
    disposeCheckpoint(ck);
    expect(tf.memory().numTensors).toBe(n0);
    // a plain record of tensors, no optimizer
    const w = tf.tensor2d([[1, 2]]);
    await saveCheckpoint(dir, { model: { w }, step: 13 });
    const ck2 = await loadCheckpoint(latestCheckpoint(dir)!);
    expect(ck2.optimizer).toBeUndefined();
    expect(ck2.rng).toBeUndefined();
    expect(ck2.weights.w!.arraySync()).toEqual([[1, 2]]);
    disposeCheckpoint(ck2);
    w.dispose();
    opt.buf.dispose();
    model.dispose();
  });

  it('lists complete checkpoints by step, keeps the newest `keep`, and replaces a re-saved step', async () => {
    const dir = root();
    const w = tf.ones([2]);
    for (const step of [1, 2, 10, 3]) await saveCheckpoint(dir, { model: { w }, step }, { keep: 3 });
    // the newest save (3) is always kept; the oldest others go
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([2, 3, 10]);
    expect(latestCheckpoint(dir)).toBe(join(dir, 'step-00000010'));
    const z = tf.zeros([2]);
    await saveCheckpoint(dir, { model: { w: z }, step: 10 }, { keep: Number.POSITIVE_INFINITY });
    const ck = await loadCheckpoint(join(dir, 'step-00000010'));
    expect(Array.from(ck.weights.w!.dataSync())).toEqual([0, 0]);
    disposeCheckpoint(ck);
    expect(readdirSync(dir).sort()).toEqual(['step-00000002', 'step-00000003', 'step-00000010']);
    await saveCheckpoint(dir, { model: { w }, step: 11 });
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([10, 11]);
    expect(latestCheckpoint(join(dir, 'nothing-here'))).toBeNull();
    expect(checkpointDirName(123456789)).toBe('step-123456789');
    w.dispose();
    z.dispose();
  });

  it('a failed save leaves the last good checkpoint untouched and no visible partial folder', async () => {
    const dir = root();
    const w = tf.ones([3]);
    const good = await saveCheckpoint(dir, { model: { w }, step: 4 });
    const before = readFileSync(join(good, 'model.safetensors'));
    // the optimizer's state cannot be encoded: the new checkpoint must not appear
    const c = tf.complex([1], [1]);
    await expect(
      saveCheckpoint(dir, { model: { w }, step: 5, optimizer: { stateDict: () => ({ tensors: { c }, json: null }) } }),
    ).rejects.toThrow(/tensor "c" has dtype complex64/);
    // config that JSON cannot hold
    await expect(saveCheckpoint(dir, { model: { w }, step: 5, config: { big: 1n } })).rejects.toThrow(
      /saveCheckpoint: config is not JSON-serializable/,
    );
    expect(readdirSync(dir)).toEqual(['step-00000004']);
    expect(readFileSync(join(good, 'model.safetensors')).equals(before)).toBe(true);
    expect(latestCheckpoint(dir)).toBe(good);
    c.dispose();
    w.dispose();
  });

  it('ignores the scratch folder of a crashed writer and cleans it up on the next save', async () => {
    const dir = root();
    const w = tf.ones([2]);
    await saveCheckpoint(dir, { model: { w }, step: 1 });
    // a writer (pid 4194305: above Linux's pid_max, never alive) died while writing step 2
    const dead = join(dir, '.tmp-step-00000002-4194305-abcd');
    mkdirSync(dead);
    writeFileSync(join(dead, 'model.safetensors'), 'partial');
    // and another one died between moving step 3 aside and renaming its replacement in
    const movedAside = join(dir, '.old-step-00000003-4194305-beef');
    mkdirSync(movedAside);
    writeFileSync(
      join(movedAside, 'state.json'),
      JSON.stringify({ format: 'mmlm-checkpoint', version: 1, step: 3, optimizer: null, rng: null, rngs: null, config: null, extra: null }),
    );
    writeFileSync(join(movedAside, 'model.safetensors'), readFileSync(join(dir, 'step-00000001', 'model.safetensors')));
    // readers do not see the half-written step 2, and put the moved-aside step 3 back in place
    expect(latestCheckpoint(dir)).toBe(join(dir, 'step-00000003'));
    await saveCheckpoint(dir, { model: { w }, step: 2 }, { keep: 5 });
    expect(existsSync(dead)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['step-00000001', 'step-00000002', 'step-00000003']);
    const ck = await loadCheckpoint(latestCheckpoint(dir)!);
    expect(ck.step).toBe(3);
    disposeCheckpoint(ck);
    w.dispose();
  });

  it('refuses to save non-finite weights or optimizer tensors (requireFinite)', async () => {
    const dir = root();
    const w = tf.tensor1d([1, Number.NaN, 3]);
    const err = await saveCheckpoint(dir, { model: { w }, step: 9 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteTensorError);
    expect((err as Error).message).toBe('saveCheckpoint: weight "w" holds NaN at flat index 1; step 9 was not saved');
    const ok = tf.ones([1]);
    const inf = tf.tensor1d([Number.POSITIVE_INFINITY]);
    await expect(
      saveCheckpoint(dir, { model: { ok }, step: 9, optimizer: { stateDict: () => ({ tensors: { m: inf }, json: {} }) } }),
    ).rejects.toThrow('optimizer tensor "m" holds Infinity at flat index 0');
    expect(readdirSync(dir)).toEqual([]);
    await saveCheckpoint(dir, { model: { w }, step: 9 }, { requireFinite: false });
    expect(latestCheckpoint(dir)).toBe(join(dir, 'step-00000009'));
    for (const t of [w, ok, inf]) t.dispose();
  });

  it('rejects bad save input', async () => {
    const dir = root();
    const w = tf.ones([1]);
    await expect(saveCheckpoint(dir, { model: { w }, step: -1 })).rejects.toThrow('saveCheckpoint: step must be an integer >= 0, got -1');
    await expect(saveCheckpoint(dir, { model: { w }, step: 1.5 })).rejects.toThrow('got 1.5');
    await expect(saveCheckpoint(dir, { model: { w }, step: 1 }, { keep: 0 })).rejects.toThrow(
      'saveCheckpoint: keep must be an integer >= 1 or Infinity, got 0',
    );
    await expect(saveCheckpoint(dir, { model: { w }, step: 1, rng: { state: [1, 2] } })).rejects.toThrow(
      'saveCheckpoint: rng must be an Rng or an RngState {state: [4 integers]}, got {"state":[1,2]}',
    );
    await expect(saveCheckpoint(dir, { model: { w }, step: 1, rngs: { data: {} as never } })).rejects.toThrow(
      /rngs\["data"\] must be an Rng/,
    );
    expect(readdirSync(dir)).toEqual([]);
    w.dispose();
  });

  it('gives clear errors for missing or corrupt parts', async () => {
    const dir = root();
    const w = tf.ones([2]);
    const m = tf.zeros([2]);
    const opt = { stateDict: () => ({ tensors: { m }, json: { t: 1 } }) };
    const fresh = async (step: number) => saveCheckpoint(dir, { model: { w }, optimizer: opt, step }, { keep: 100 });
    const state = (p: string) => join(p, 'state.json');

    await expect(loadCheckpoint(join(dir, 'nope'))).rejects.toThrow(`loadCheckpoint: ${join(dir, 'nope')} is not a folder`);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    await expect(loadCheckpoint(empty)).rejects.toThrow(`loadCheckpoint: ${empty} is not a checkpoint (no state.json)`);

    const p1 = await fresh(1);
    await expect(loadCheckpoint(dir)).rejects.toThrow(`is a checkpoint root, not a checkpoint; pass latestCheckpoint(root) (= ${p1})`);

    writeFileSync(state(p1), '{"format": "mmlm-checkpoint", ');
    await expect(loadCheckpoint(p1)).rejects.toThrow(`loadCheckpoint: ${state(p1)} is not valid JSON`);
    writeFileSync(state(p1), JSON.stringify({ format: 'other', version: 1, step: 1 }));
    await expect(loadCheckpoint(p1)).rejects.toThrow(`${state(p1)} has format "other", expected "mmlm-checkpoint"`);
    writeFileSync(state(p1), JSON.stringify({ format: 'mmlm-checkpoint', version: 2, step: 1 }));
    await expect(loadCheckpoint(p1)).rejects.toThrow('has version 2, expected 1');
    writeFileSync(state(p1), JSON.stringify({ format: 'mmlm-checkpoint', version: 1, step: 'one' }));
    await expect(loadCheckpoint(p1)).rejects.toThrow('has step "one", expected an integer >= 0');
    writeFileSync(state(p1), JSON.stringify({ format: 'mmlm-checkpoint', version: 1, step: 1, rng: { state: 'x' } }));
    await expect(loadCheckpoint(p1)).rejects.toThrow('rng must be {state: [4 integers]}, got {"state":"x"}');
    writeFileSync(state(p1), JSON.stringify({ format: 'mmlm-checkpoint', version: 1, step: 1, rngs: { d: [1] } }));
    await expect(loadCheckpoint(p1)).rejects.toThrow('rngs["d"] must be {state: [4 integers]}, got [1]');
    writeFileSync(state(p1), JSON.stringify({ format: 'mmlm-checkpoint', version: 1, step: 1, optimizer: 5 }));
    await expect(loadCheckpoint(p1)).rejects.toThrow('optimizer must be {json} or null, got 5');

    const p2 = await fresh(2);
    rmSync(join(p2, 'model.safetensors'));
    await expect(loadCheckpoint(p2)).rejects.toThrow(`loadCheckpoint: ${join(p2, 'model.safetensors')} is missing`);
    const p3 = await fresh(3);
    rmSync(join(p3, 'optimizer.safetensors'));
    await expect(loadCheckpoint(p3)).rejects.toThrow(
      `${join(p3, 'optimizer.safetensors')} is missing but ${state(p3)} records optimizer state`,
    );
    const p4 = await fresh(4);
    const bytes = readFileSync(join(p4, 'model.safetensors'));
    writeFileSync(join(p4, 'model.safetensors'), bytes.subarray(0, bytes.length - 4));
    await expect(loadCheckpoint(p4)).rejects.toThrow(
      `safetensors ${join(p4, 'model.safetensors')}: tensor "w": data_offsets end 8 is past the end`,
    );
    // a corrupt optimizer file after good weights: the loaded weights are disposed, nothing leaks
    const p5 = await fresh(5);
    writeFileSync(join(p5, 'optimizer.safetensors'), 'garbage!!');
    const n0 = tf.memory().numTensors;
    await expect(loadCheckpoint(p5)).rejects.toThrow(`safetensors ${join(p5, 'optimizer.safetensors')}: header length`);
    expect(tf.memory().numTensors).toBe(n0);
    w.dispose();
    m.dispose();
  });

  it('B7: a kill between the two renames of a re-save does not hide the step (readers recover it)', async () => {
    const w = tf.ones([2]);
    const z = tf.zeros([2]);
    /** The state a re-save of step 3 by `pid` leaves when killed between its two renames. */
    const killedResave = async (pid: number) => {
      const dir = root();
      await saveCheckpoint(dir, { model: { w }, step: 1 }, { keep: 10 });
      await saveCheckpoint(dir, { model: { w }, step: 3 }, { keep: 10 });
      const fresh = await saveCheckpoint(root(), { model: { w: z }, step: 3 });
      const tag = `step-00000003-${pid}-c0ffee`;
      renameSync(join(dir, 'step-00000003'), join(dir, `.old-${tag}`)); // first rename done
      cpSync(fresh, join(dir, `.tmp-${tag}`), { recursive: true }); // the complete new copy, not yet renamed in
      return { dir, aside: join(dir, `.old-${tag}`) };
    };

    // the writer is gone (pid above pid_max): the moved-aside copy is put back as step-3
    const a = await killedResave(4194305);
    expect(latestCheckpoint(a.dir)).toBe(join(a.dir, 'step-00000003'));
    expect(existsSync(a.aside)).toBe(false);
    expect(listCheckpoints(a.dir).map((c) => c.step)).toEqual([1, 3]);
    let ck = await loadCheckpoint(join(a.dir, 'step-00000003'));
    expect([ck.step, Array.from(ck.weights.w!.dataSync())]).toEqual([3, [1, 1]]);
    disposeCheckpoint(ck);

    // loadCheckpoint of the missing step-N folder finds the moved-aside copy by itself
    const b = await killedResave(4194305);
    ck = await loadCheckpoint(join(b.dir, 'step-00000003'));
    expect(ck.step).toBe(3);
    disposeCheckpoint(ck);

    // a writer that may still be running (here: our parent process): used in place, nothing renamed
    const c = await killedResave(process.ppid);
    expect(latestCheckpoint(c.dir)).toBe(c.aside);
    expect(existsSync(join(c.dir, 'step-00000003'))).toBe(false);
    ck = await loadCheckpoint(join(c.dir, 'step-00000003'));
    expect([ck.dir, ck.step]).toEqual([c.aside, 3]);
    disposeCheckpoint(ck);

    // our own pid without a save in flight is an earlier run with the same pid (a restarted container)
    const d = await killedResave(process.pid);
    expect(latestCheckpoint(d.dir)).toBe(join(d.dir, 'step-00000003'));
    // and the next save cleans the leftover temp copy
    await saveCheckpoint(d.dir, { model: { w }, step: 4 }, { keep: 10 });
    expect(readdirSync(d.dir).sort()).toEqual(['step-00000001', 'step-00000003', 'step-00000004']);
    w.dispose();
    z.dispose();
  });

  it('B8: step folders without state.json (a kill while pruning) are ignored and removed by the next save', async () => {
    const dir = root();
    const w = tf.ones([2]);
    await saveCheckpoint(dir, { model: { w }, step: 5 }, { keep: 10 });
    await saveCheckpoint(dir, { model: { w }, step: 6 }, { keep: 10 });
    // pruning deletes state.json first: a kill part-way leaves the other files
    rmSync(join(dir, 'step-00000005', 'state.json'));
    mkdirSync(join(dir, 'step-00000009'));
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([6]);
    expect(latestCheckpoint(dir)).toBe(join(dir, 'step-00000006'));
    await saveCheckpoint(dir, { model: { w }, step: 7 }, { keep: 10 });
    expect(readdirSync(dir).sort()).toEqual(['step-00000006', 'step-00000007']);
    // pruning itself leaves nothing behind
    await saveCheckpoint(dir, { model: { w }, step: 8 }, { keep: 1 });
    expect(readdirSync(dir)).toEqual(['step-00000008']);
    w.dispose();
  });

  it('B9: loadLatestCheckpoint falls back to the previous checkpoint, with a warning, when the newest is corrupt', async () => {
    const dir = root();
    const w1 = tf.tensor1d([1, 2]);
    const w2 = tf.tensor1d([3, 4]);
    const n0 = tf.memory().numTensors;
    expect(await loadLatestCheckpoint(dir)).toBeNull();
    await saveCheckpoint(dir, { model: { w: w1 }, step: 1 });
    await saveCheckpoint(dir, { model: { w: w2 }, step: 2 });
    const newest = join(dir, 'step-00000002');
    const bytes = readFileSync(join(newest, 'model.safetensors'));
    writeFileSync(join(newest, 'model.safetensors'), bytes.subarray(0, bytes.length - 3));
    const warnings: [string, unknown, string][] = [];
    const ck = await loadLatestCheckpoint(dir, { onWarning: (m, e, d) => warnings.push([m, e, d]) });
    expect([ck!.step, ck!.dir, Array.from(ck!.weights.w!.dataSync())]).toEqual([1, join(dir, 'step-00000001'), [1, 2]]);
    disposeCheckpoint(ck!);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![2]).toBe(newest);
    expect(warnings[0]![1]).toBeInstanceOf(SafetensorsError);
    expect(warnings[0]![0]).toContain(`cannot load checkpoint ${newest} (safetensors ${join(newest, 'model.safetensors')}: `);
    expect(warnings[0]![0]).toContain(`falling back to ${join(dir, 'step-00000001')}`);
    // bad state.json in the older one too: nothing loads, the newest error is thrown
    writeFileSync(join(dir, 'step-00000001', 'state.json'), '{');
    warnings.length = 0;
    const err = await loadLatestCheckpoint(dir, { onWarning: (m, e, d) => warnings.push([m, e, d]) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(warnings.map((x) => x[2])).toEqual([newest, join(dir, 'step-00000001')]);
    expect(warnings[1]![0]).toMatch(/is not valid JSON .*no older checkpoint to fall back to/);
    expect(tf.memory().numTensors).toBe(n0);
    w1.dispose();
    w2.dispose();
  });

  it('B9: trainLoop resumes from the previous checkpoint when the newest is corrupt, and logs a warning', async () => {
    const dir = root();
    const model = new Linear(2, 1, { rng: new Rng(3) });
    const lines: string[] = [];
    const common = {
      step: () => 1,
      model,
      checkpointDir: dir,
      checkpointEvery: 2,
      progress: 'none' as const,
      log: (l: string) => lines.push(l),
    };
    await trainLoop({ ...common, steps: 4 });
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([2, 4]);
    const newest = join(dir, 'step-00000004');
    const bytes = readFileSync(join(newest, 'model.safetensors'));
    writeFileSync(join(newest, 'model.safetensors'), bytes.subarray(0, 20));
    const r = await trainLoop({ ...common, steps: 6, resume: true, name: 'fit' });
    expect([r.resumedFrom, r.step, r.losses.length]).toEqual([2, 6, 4]);
    expect(lines.some((l) => l.startsWith(`fit: warning: loadLatestCheckpoint: cannot load checkpoint ${newest} (safetensors `))).toBe(
      true,
    );
    expect(lines).toContain(`fit: resumed from ${join(dir, 'step-00000002')} (step 2)`);
    // step 4 was saved again on the way: the corrupt copy is gone
    const ck = await loadCheckpoint(newest);
    expect(ck.step).toBe(4);
    disposeCheckpoint(ck);
    model.dispose();
  });
});
