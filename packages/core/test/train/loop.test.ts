import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  crossEntropy,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  NonFiniteLossError,
  Rng,
  saveCheckpoint,
  TransformerDecoder,
  tf,
  trainLoop,
  useBackend,
  valueAndGrads,
} from '../../src/index.js';

/** Fresh model, optimizer and data stream, as a new process would build them. */
function setup(dropout = 0.1) {
  const model = new TransformerDecoder({ vocabSize: 9, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 8, seed: 3, dropout });
  const opt = new AdamW(model, { lr: 1e-2 });
  const data = new Rng(42);
  const step = () =>
    tf.tidy(() => {
      const ids = data.randint([4, 9], 0, 9);
      const x = ids.slice([0, 0], [4, 8]);
      const y = ids.slice([0, 1], [4, 8]);
      const { loss, grads } = valueAndGrads(model, () => crossEntropy(model.forward(x), y) as tf.Scalar);
      opt.step(grads);
      return loss.dataSync()[0]!;
    });
  return { model, opt, data, step };
}

describe('trainLoop', () => {
  beforeAll(async () => useBackend('cpu'));

  it('a resumed run reproduces the uninterrupted run exactly (with dropout)', async () => {
    const full = setup(0.1);
    const a = await trainLoop({
      steps: 6,
      step: full.step,
      model: full.model,
      optimizer: full.opt,
      rngs: { data: full.data, ...full.model.rngs() },
      progress: 'none',
    });
    const dir = mkdtempSync(join(tmpdir(), 'ck-'));
    const first = setup(0.1);
    const b1 = await trainLoop({
      steps: 3,
      step: first.step,
      model: first.model,
      optimizer: first.opt,
      rngs: { data: first.data, ...first.model.rngs() },
      checkpointDir: dir,
      checkpointEvery: 3,
      progress: 'none',
    });
    expect(b1.step).toBe(3);
    const second = setup(0.1);
    const metrics = join(dir, 'metrics.jsonl');
    const b2 = await trainLoop({
      steps: 6,
      step: second.step,
      model: second.model,
      optimizer: second.opt,
      rngs: { data: second.data, ...second.model.rngs() },
      checkpointDir: dir,
      checkpointEvery: 3,
      metricsPath: metrics,
      progress: 'none',
      log: () => {},
    });
    expect(b2.resumedFrom).toBe(3);
    expect([...b1.losses, ...b2.losses]).toEqual(a.losses);
    expect(
      readFileSync(metrics, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).step),
    ).toEqual([4, 5, 6]);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([3, 6]);
  });

  it('stops on a non-finite loss and keeps the last good checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ck-'));
    const s = setup();
    const run = trainLoop({
      steps: 10,
      step: (i) => (i === 5 ? Number.NaN : s.step()),
      model: s.model,
      optimizer: s.opt,
      checkpointDir: dir,
      checkpointEvery: 2,
      progress: 'none',
    });
    await expect(run).rejects.toThrow(NonFiniteLossError);
    await expect(
      trainLoop({
        steps: 10,
        step: () => Number.POSITIVE_INFINITY,
        model: s.model,
        checkpointDir: mkdtempSync(join(tmpdir(), 'ck-')),
        progress: 'none',
      }),
    ).rejects.toThrow(/loss is Infinity at step 1; the last good checkpoint is \(none written\)/);
    expect(latestCheckpoint(dir)).toMatch(/step-00000004$/);
    const ck = await loadCheckpoint(latestCheckpoint(dir)!);
    expect(ck.step).toBe(4);
  });

  it('an abort (as SIGINT does) saves a checkpoint and stops cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ck-'));
    const s = setup();
    const ac = new AbortController();
    const r = await trainLoop({
      steps: 10,
      step: s.step,
      model: s.model,
      optimizer: s.opt,
      checkpointDir: dir,
      signal: ac.signal,
      onStep: (i) => i === 2 && ac.abort(),
      progress: 'none',
      log: () => {},
    });
    expect(r.interrupted).toBe(true);
    expect(r.step).toBe(2);
    expect(latestCheckpoint(dir)).toMatch(/step-00000002$/);
  });

  it('SIGINT sets the stop flag', async () => {
    const s = setup();
    const r = await trainLoop({
      steps: 10,
      step: (i) => (i === 3 && process.emit('SIGINT'), s.step()),
      model: s.model,
      progress: 'none',
      log: () => {},
    });
    expect(r.interrupted).toBe(true);
    expect(r.step).toBe(3);
  });

  it('checkpoints are atomic folders and bad ones give clear errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ck-'));
    const s = setup();
    saveCheckpoint(dir, { model: s.model, step: 1, config: { a: 1 } });
    expect(readdirSync(dir).filter((f) => f.startsWith('.tmp'))).toEqual([]);
    const ck = await loadCheckpoint(join(dir, 'step-00000001'));
    expect(ck.config).toEqual({ a: 1 });
    expect(Object.keys(ck.weights)).toEqual(
      Object.keys(s.model.stateDict())
        .sort((x, y) => (x < y ? -1 : 1))
        .sort(),
    );
    await expect(loadCheckpoint(join(dir, 'nope'))).rejects.toThrow(/is not a checkpoint \(no state.json\)/);
    expect(existsSync(join(dir, 'step-00000001', 'model.safetensors'))).toBe(true);
  });
});
