import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  crossEntropy,
  Linear,
  latestCheckpoint,
  listCheckpoints,
  type Module,
  NonFiniteLossError,
  type OptimizerStateDict,
  Rng,
  type StatefulOptimizer,
  saveCheckpoint,
  TransformerDecoder,
  tf,
  trainLoop,
  valueAndGrads,
} from '../../src/index.js';
import { TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const made: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'loop-'));
  made.push(d);
  return d;
};

/** SGD with momentum (PyTorch's form: b = mu b + g; p -= lr b), holding a buffer per parameter. */
class SGDMomentum implements StatefulOptimizer {
  private readonly bufs = new Map<string, tf.Variable>();
  t = 0;
  constructor(
    private readonly model: Module,
    private readonly lr: number,
    private readonly mu = 0.9,
  ) {
    for (const [p, v] of model.namedTrainableParameters()) this.bufs.set(p, tf.variable(tf.zerosLike(v), false));
  }
  step(grads: Map<string, tf.Tensor>): void {
    tf.tidy(() => {
      for (const [p, v] of this.model.namedTrainableParameters()) {
        const b = this.bufs.get(p)!;
        b.assign(b.mul(this.mu).add(grads.get(p)!));
        v.assign(v.sub(b.mul(this.lr)));
      }
    });
    this.t++;
  }
  stateDict(): OptimizerStateDict {
    return { tensors: Object.fromEntries(this.bufs), json: { t: this.t, lr: this.lr, mu: this.mu } };
  }
  loadStateDict(s: OptimizerStateDict): void {
    for (const [p, b] of this.bufs) b.assign(s.tensors[p]!);
    this.t = (s.json as { t: number }).t;
  }
  dispose(): void {
    for (const b of this.bufs.values()) b.dispose();
  }
}

/** Linear regression y = x w* + noise, as a new process would build it (its own seeds). */
function linearSetup(initSeed = 1, dataSeed = 2) {
  const model = new Linear(3, 1, { rng: new Rng(initSeed) });
  const opt = new SGDMomentum(model, 0.05);
  const data = new Rng(dataSeed);
  const wStar = tf.tensor2d([[1], [-2], [0.5]]);
  const step = () =>
    tf.tidy(() => {
      const x = data.randn([8, 3]); // [B, 3]
      const y = x.matMul(wStar).add(data.randn([8, 1], 0, 0.1)); // [B, 1]
      const { loss, grads } = valueAndGrads(model, () => model.forward(x).sub(y).square().mean() as tf.Scalar);
      opt.step(grads);
      return loss.dataSync()[0]!;
    });
  const dispose = () => {
    model.dispose();
    opt.dispose();
    wStar.dispose();
  };
  return { model, opt, data, step, dispose };
}

/** A small transformer with dropout and AdamW: every random stream matters for an exact resume. */
function transformerSetup(dropout = 0.1) {
  const model = new TransformerDecoder({ vocabSize: 9, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 8, seed: 3, dropout });
  const opt = new AdamW(model, { lr: 1e-2 });
  const data = new Rng(42);
  const step = () =>
    tf.tidy(() => {
      const ids = data.randint([4, 9], 0, 9); // [B, T+1]
      const x = ids.slice([0, 0], [4, 8]); // [B, T]
      const y = ids.slice([0, 1], [4, 8]); // [B, T]
      const { loss, grads } = valueAndGrads(model, () => crossEntropy(model.forward(x), y) as tf.Scalar);
      opt.step(grads);
      return loss.dataSync()[0]!;
    });
  return { model, opt, data, step };
}

const quiet = { progress: 'none' as const, log: () => {} };
const readJsonl = (p: string) =>
  readFileSync(p, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('trainLoop', () => {
  beforeAll(async () => useBackend('cpu'));
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  it.each(TEST_BACKENDS)(
    'a resumed run reproduces the uninterrupted run exactly on %s (linear regression, SGD with momentum)',
    async (backend) => {
      await useBackend(backend);
      const a = linearSetup();
      const n0 = tf.memory().numTensors;
      const ra = await trainLoop({ steps: 8, step: a.step, model: a.model, optimizer: a.opt, rng: a.data, ...quiet });
      expect(tf.memory().numTensors).toBe(n0);
      expect(ra.losses).toHaveLength(8);
      expect(ra.losses[7]!).toBeLessThan(ra.losses[0]!);

      const dir = tmp();
      const b1 = linearSetup();
      const r1 = await trainLoop({
        steps: 4,
        step: b1.step,
        model: b1.model,
        optimizer: b1.opt,
        rng: b1.data,
        checkpointDir: dir,
        checkpointEvery: 2,
        ...quiet,
      });
      expect(r1.step).toBe(4);
      expect(r1.lastCheckpoint).toBe(join(dir, 'step-00000004'));
      b1.dispose();

      // "a new process": fresh objects with different seeds; the checkpoint must overwrite all of it
      const b2 = linearSetup(77, 78);
      const n1 = tf.memory().numTensors;
      const r2 = await trainLoop({
        steps: 8,
        step: b2.step,
        model: b2.model,
        optimizer: b2.opt,
        rng: b2.data,
        checkpointDir: dir,
        checkpointEvery: 2,
        resume: true,
        ...quiet,
      });
      expect(tf.memory().numTensors).toBe(n1);
      expect(r2.resumedFrom).toBe(4);
      expect(b2.opt.t).toBe(8);
      expect([...r1.losses, ...r2.losses]).toEqual(ra.losses);
      expect(Array.from(b2.model.weight.dataSync())).toEqual(Array.from(a.model.weight.dataSync()));

      // negative control: resuming without the optimizer's momentum gives different losses
      const ctlDir = tmp();
      const c1 = linearSetup();
      await trainLoop({ steps: 4, step: c1.step, model: c1.model, optimizer: c1.opt, rng: c1.data, checkpointDir: ctlDir, ...quiet });
      const c2 = linearSetup();
      const rc = await trainLoop({ steps: 8, step: c2.step, model: c2.model, rng: c2.data, checkpointDir: ctlDir, resume: true, ...quiet });
      expect(rc.losses).not.toEqual(ra.losses.slice(4));
      for (const s of [a, b2, c1, c2]) s.dispose();
      await useBackend('cpu');
    },
  );

  it("resumes the model's own random streams by default (dropout not listed in rngs), and warns for a checkpoint without them", async () => {
    const full = transformerSetup();
    const a = await trainLoop({ steps: 6, step: full.step, model: full.model, optimizer: full.opt, rngs: { data: full.data }, ...quiet });
    expect(Object.keys(full.model.rngs())).toEqual(['blocks.0.dropout']);
    expect(full.model.namedRngs().map(([k]) => k)).toEqual(['blocks.0.dropout']);
    const dir = tmp();
    const first = transformerSetup();
    await trainLoop({
      steps: 3,
      step: first.step,
      model: first.model,
      optimizer: first.opt,
      rngs: { data: first.data },
      checkpointDir: dir,
      ...quiet,
    });
    const state = JSON.parse(readFileSync(join(dir, 'step-00000003', 'state.json'), 'utf8'));
    expect(Object.keys(state.rngs).sort()).toEqual(['data', 'module.blocks.0.dropout']);
    const second = transformerSetup();
    const lines: string[] = [];
    const b2 = await trainLoop({
      steps: 6,
      step: second.step,
      model: second.model,
      optimizer: second.opt,
      rngs: { data: second.data },
      checkpointDir: dir,
      resume: true,
      progress: 'none',
      log: (l) => lines.push(l),
    });
    expect(b2.resumedFrom).toBe(3);
    expect(b2.losses).toEqual(a.losses.slice(3)); // bit-identical: the dropout stream was restored
    expect(lines.join('\n')).not.toMatch(/warning/);
    // a checkpoint written before module streams were saved: resumes, with a warning naming them
    const state6 = JSON.parse(readFileSync(join(dir, 'step-00000006', 'state.json'), 'utf8'));
    delete state6.rngs['module.blocks.0.dropout'];
    writeFileSync(join(dir, 'step-00000006', 'state.json'), JSON.stringify(state6));
    const third = transformerSetup();
    const old: string[] = [];
    const b3 = await trainLoop({
      steps: 7,
      step: third.step,
      model: third.model,
      optimizer: third.opt,
      rngs: { data: third.data },
      checkpointDir: dir,
      resume: true,
      progress: 'none',
      log: (l) => old.push(l),
    });
    expect(b3.resumedFrom).toBe(6);
    expect(old.join('\n')).toMatch(/warning: .*holds no state for the model's random streams module\.blocks\.0\.dropout .*not bit-exact/);
    for (const s of [full, first, second, third]) {
      s.model.dispose();
      s.opt.dispose();
    }
  });

  it('a resumed run reproduces the uninterrupted run exactly (transformer, AdamW, dropout streams)', async () => {
    const full = transformerSetup();
    const a = await trainLoop({
      steps: 6,
      step: full.step,
      model: full.model,
      optimizer: full.opt,
      rngs: { data: full.data, ...full.model.rngs() },
      ...quiet,
    });
    const dir = tmp();
    const first = transformerSetup();
    const b1 = await trainLoop({
      steps: 3,
      step: first.step,
      model: first.model,
      optimizer: first.opt,
      rngs: { data: first.data, ...first.model.rngs() },
      checkpointDir: dir,
      ...quiet,
    });
    const second = transformerSetup();
    const b2 = await trainLoop({
      steps: 6,
      step: second.step,
      model: second.model,
      optimizer: second.opt,
      rngs: { data: second.data, ...second.model.rngs() },
      checkpointDir: dir,
      resume: true,
      ...quiet,
    });
    expect(b2.resumedFrom).toBe(3);
    expect([...b1.losses, ...b2.losses]).toEqual(a.losses);
    for (const s of [full, first, second]) {
      s.model.dispose();
      s.opt.dispose();
    }
  });

  it('stops on a non-finite loss with the step and value, leaving the last good checkpoint intact', async () => {
    const dir = tmp();
    const s = linearSetup();
    let snapshot: Buffer | null = null;
    const err = await trainLoop({
      steps: 10,
      step: (i) => {
        if (i === 5) {
          snapshot = readFileSync(join(dir, 'step-00000004', 'model.safetensors'));
          return Number.NaN;
        }
        return s.step();
      },
      model: s.model,
      optimizer: s.opt,
      rng: s.data,
      checkpointDir: dir,
      checkpointEvery: 2,
      ...quiet,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    const e = err as NonFiniteLossError;
    expect([e.step, e.value, e.lastCheckpoint]).toEqual([5, Number.NaN, join(dir, 'step-00000004')]);
    expect(e.message).toBe(`trainLoop: loss is NaN at step 5; stopped. The last good checkpoint is ${join(dir, 'step-00000004')}`);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([2, 4]);
    expect(readFileSync(join(dir, 'step-00000004', 'model.safetensors')).equals(snapshot!)).toBe(true);
    await expect(trainLoop({ steps: 3, step: () => Number.NEGATIVE_INFINITY, model: s.model, ...quiet })).rejects.toThrow(
      'trainLoop: loss is -Infinity at step 1; stopped. The last good checkpoint is (none written)',
    );
    s.dispose();
  });

  it('refuses to checkpoint NaN weights behind a finite loss, keeping the last good checkpoint', async () => {
    const dir = tmp();
    const s = linearSetup();
    const run = trainLoop({
      steps: 10,
      step: (i) => {
        if (i < 3) return s.step();
        // a bad update the loss does not show yet
        if (i === 3) tf.tidy(() => s.model.weight.assign(tf.fill([1, 3], Number.NaN)));
        return 1;
      },
      model: s.model,
      optimizer: s.opt,
      checkpointDir: dir,
      checkpointEvery: 2,
      ...quiet,
    });
    await expect(run).rejects.toThrow(
      `trainLoop: weight "weight" holds NaN at step 4; stopped. The last good checkpoint is ${join(dir, 'step-00000002')}`,
    );
    expect(latestCheckpoint(dir)).toBe(join(dir, 'step-00000002'));
    s.dispose();
  });

  it('an AbortSignal stops after the current step with a checkpoint; resume continues from there', async () => {
    const dir = tmp();
    const s = linearSetup();
    const ac = new AbortController();
    const lines: string[] = [];
    const r = await trainLoop({
      steps: 10,
      step: s.step,
      model: s.model,
      optimizer: s.opt,
      rng: s.data,
      checkpointDir: dir,
      signal: ac.signal,
      onStep: (i) => {
        if (i === 2) ac.abort();
      },
      progress: 'none',
      log: (l) => lines.push(l),
    });
    expect([r.interrupted, r.step, r.losses.length]).toEqual([true, 2, 2]);
    expect(latestCheckpoint(dir)).toBe(join(dir, 'step-00000002'));
    expect(lines).toEqual([`train: interrupted after step 2; checkpoint ${join(dir, 'step-00000002')}`]);
    const again = await trainLoop({
      steps: 4,
      step: s.step,
      model: s.model,
      optimizer: s.opt,
      rng: s.data,
      checkpointDir: dir,
      resume: true,
      ...quiet,
    });
    expect([again.resumedFrom, again.step, again.interrupted]).toEqual([2, 4, false]);
    s.dispose();
  });

  it('trainSeconds adds up the wall time over a crash and resume (kept in the checkpoint); null for a checkpoint without it', async () => {
    const dir = tmp();
    const s = linearSetup();
    // every step takes at least 15 ms of wall time, so the sums are measurable
    const slow = () => {
      const t = performance.now();
      while (performance.now() - t < 15);
      return s.step();
    };
    const base = { step: slow, model: s.model, optimizer: s.opt, rng: s.data, checkpointDir: dir, ...quiet };
    const r1 = await trainLoop({ steps: 3, ...base });
    expect(r1.trainSeconds).toBeGreaterThanOrEqual(0.045);
    expect(r1.trainSeconds).toBeLessThanOrEqual(r1.seconds);
    const state = join(dir, 'step-00000003', 'state.json');
    expect(JSON.parse(readFileSync(state, 'utf8')).extra.trainLoop.trainSeconds).toBe(r1.trainSeconds);
    const r2 = await trainLoop({ steps: 5, resume: true, ...base });
    expect(r2.resumedFrom).toBe(3);
    const added = r2.trainSeconds! - r1.trainSeconds!;
    expect(added).toBeGreaterThanOrEqual(0.03);
    expect(added).toBeLessThanOrEqual(r2.seconds);
    // resuming the finished run runs no step and adds nothing
    const r2b = await trainLoop({ steps: 5, resume: true, ...base });
    expect([r2b.losses.length, r2b.trainSeconds]).toEqual([0, r2.trainSeconds]);
    // a checkpoint written before the record existed: the total is unknown, this call's seconds are not
    const st5 = join(dir, 'step-00000005', 'state.json');
    const j = JSON.parse(readFileSync(st5, 'utf8'));
    delete j.extra;
    writeFileSync(st5, JSON.stringify(j));
    const r3 = await trainLoop({ steps: 6, resume: true, ...base });
    expect(r3.resumedFrom).toBe(5);
    expect(r3.trainSeconds).toBeNull();
    expect(r3.seconds).toBeGreaterThanOrEqual(0.015);
    expect(JSON.parse(readFileSync(join(dir, 'step-00000006', 'state.json'), 'utf8')).extra ?? null).toBeNull();
    s.dispose();
  });

  it('SIGINT sets the stop flag (handler invoked directly); the handler is removed afterwards', async () => {
    const dir = tmp();
    const s = linearSetup();
    const before = process.listeners('SIGINT');
    const write = process.stdout.write;
    const r = await trainLoop({
      steps: 10,
      step: (i) => {
        const ours = process.listeners('SIGINT').filter((l) => !before.includes(l));
        expect(ours).toHaveLength(1);
        if (i === 3) {
          process.stdout.write = () => true;
          (ours[0] as () => void)();
          process.stdout.write = write;
        }
        return s.step();
      },
      model: s.model,
      optimizer: s.opt,
      checkpointDir: dir,
      ...quiet,
    });
    expect([r.interrupted, r.step]).toEqual([true, 3]);
    expect(latestCheckpoint(dir)).toBe(join(dir, 'step-00000003'));
    expect(process.listeners('SIGINT')).toEqual(before);
    await trainLoop({
      steps: 1,
      step: () => {
        expect(process.listeners('SIGINT')).toEqual(before);
        return 1;
      },
      model: s.model,
      handleSigint: false,
      ...quiet,
    });
    s.dispose();
  });

  it('writes one JSONL record per step (loss, time, lr, eval metrics); a resume drops records past the checkpoint and torn lines', async () => {
    const dir = tmp();
    const metrics = join(dir, 'logs', 'metrics.jsonl');
    const s = linearSetup();
    const common = {
      step: s.step,
      model: s.model,
      optimizer: s.opt,
      rng: s.data,
      checkpointDir: join(dir, 'ck'),
      checkpointEvery: 4,
      metricsPath: metrics,
      lr: (i: number) => 0.1 / i,
      evalEvery: 3,
      evalFn: (i: number) => ({ val_loss: i / 10 }),
      ...quiet,
    };
    await expect(trainLoop({ ...common, steps: 8, step: (i) => (i === 6 ? Number.NaN : s.step()) })).rejects.toThrow(NonFiniteLossError);
    const firstRun = readJsonl(metrics);
    expect(firstRun.map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    expect(firstRun[0]).toEqual({ step: 1, loss: expect.any(Number), time: expect.any(Number), lr: 0.1 });
    expect(firstRun[2].val_loss).toBe(0.3);
    appendFileSync(metrics, '{"step": 6, "lo');
    const lines: string[] = [];
    const r = await trainLoop({ ...common, steps: 8, resume: true, log: (l) => lines.push(l) });
    expect(lines).toContain(`train: dropped 2 metrics lines past step 4 (or torn) from ${metrics}`);
    const recs = readJsonl(metrics);
    expect(recs.map((x) => x.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(recs.filter((x) => 'val_loss' in x).map((x) => x.step)).toEqual([3, 6, 8]);
    expect(r.evals).toEqual([
      { step: 6, metrics: { val_loss: 0.6 } },
      { step: 8, metrics: { val_loss: 0.8 } },
    ]);
    // a fresh run (no checkpoint to resume) starts the file anew
    await trainLoop({ ...common, checkpointDir: join(dir, 'ck2'), steps: 2 });
    expect(readJsonl(metrics).map((x) => x.step)).toEqual([1, 2]);
    s.dispose();
  });

  it('logs plain progress lines every logEvery steps; none logs nothing; bar works off a terminal', async () => {
    const lines: string[] = [];
    const model = new Linear(1, 1, { rng: new Rng(0) });
    await trainLoop({ steps: 6, step: (i) => 1 / i, model, progress: 'lines', logEvery: 2, name: 'fit', log: (l) => lines.push(l) });
    expect(lines).toEqual([
      'fit: step 1/6 loss 1.0000',
      'fit: step 2/6 loss 0.5000',
      'fit: step 4/6 loss 0.2500',
      'fit: step 6/6 loss 0.1667',
    ]);
    const none: string[] = [];
    await trainLoop({ steps: 3, step: () => 1, model, progress: 'none', log: (l) => none.push(l) });
    expect(none).toEqual([]);
    const r = await trainLoop({ steps: 2, step: () => 1, model, progress: 'bar', log: () => {} });
    expect(r.step).toBe(2);
    model.dispose();
  });

  it('rejects bad options and inconsistent checkpoint folders with clear errors', async () => {
    const model = new Linear(1, 1, { rng: new Rng(0) });
    const base = { step: () => 1, model, ...quiet };
    await expect(trainLoop({ ...base, steps: 0 })).rejects.toThrow('trainLoop: steps must be an integer >= 1, got 0');
    await expect(trainLoop({ ...base, steps: 2, evalEvery: 1 })).rejects.toThrow('trainLoop: evalEvery needs evalFn');
    await expect(trainLoop({ ...base, steps: 2, checkpointEvery: 1 })).rejects.toThrow('trainLoop: checkpointEvery needs checkpointDir');
    await expect(trainLoop({ ...base, steps: 2, checkpointEvery: 0.5, checkpointDir: tmp() })).rejects.toThrow(
      'trainLoop: checkpointEvery must be an integer >= 1, got 0.5',
    );
    await expect(trainLoop({ ...base, steps: 2, resume: true })).rejects.toThrow('trainLoop: resume needs checkpointDir');
    await expect(trainLoop({ ...base, steps: 2, progress: 'fancy' as 'bar' })).rejects.toThrow(
      `trainLoop: progress must be 'auto', 'bar', 'lines' or 'none', got "fancy"`,
    );
    await expect(trainLoop({ ...base, steps: 2, step: () => ({}) as number })).rejects.toThrow(
      'trainLoop: step 1 returned object, expected the loss as a number',
    );
    await expect(trainLoop({ ...base, steps: 2, evalFn: () => ({ loss: 1 }) })).rejects.toThrow(
      'trainLoop: evalFn returned the reserved metric name "loss"',
    );
    const dir = tmp();
    await saveCheckpoint(dir, { model, step: 5 });
    await expect(trainLoop({ ...base, steps: 9, checkpointDir: dir })).rejects.toThrow(
      `trainLoop: ${dir} already holds checkpoints (latest ${join(dir, 'step-00000005')}); pass resume: true`,
    );
    await expect(trainLoop({ ...base, steps: 9, checkpointDir: dir, resume: true, rngs: { data: new Rng(1) } })).rejects.toThrow(
      `restoreCheckpoint: ${join(dir, 'step-00000005')} holds no state for rngs "data" (it has none)`,
    );
    await expect(
      trainLoop({
        ...base,
        steps: 9,
        checkpointDir: dir,
        resume: true,
        optimizer: { stateDict: () => ({ tensors: {}, json: null }), loadStateDict: () => {} },
      }),
    ).rejects.toThrow('holds no optimizer state, but an optimizer was given');
    // resuming at or past `steps` runs nothing
    const done = await trainLoop({ ...base, steps: 5, checkpointDir: dir, resume: true });
    expect([done.step, done.losses, done.resumedFrom]).toEqual([5, [], 5]);
    expect(readdirSync(dir)).toEqual(['step-00000005']);
    expect(existsSync(join(dir, 'step-00000006'))).toBe(false);
    model.dispose();
  });
});
