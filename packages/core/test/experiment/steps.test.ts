import { describe, expect, it } from 'vitest';
import { type ProgressHandle, runSteps } from '../../src/experiment/index.js';

function recorder(): ProgressHandle & { ticks: [number, Record<string, number> | undefined][]; done_: number } {
  const p = {
    ticks: [] as [number, Record<string, number> | undefined][],
    done_: 0,
    tick: (step: number, info?: Record<string, number>) => p.ticks.push([step, info]),
    done: () => {
      p.done_++;
    },
  };
  return p;
}

describe('runSteps', () => {
  it('averages each number over the last 10% of the steps (closed form) and keeps the last record', () => {
    // loss_t = t, part_t = 2t + 1 over 40 steps: the window is the last 4 steps (36..39)
    const r = runSteps({ name: 'toy', steps: 40, step: (t) => ({ loss: t, part: 2 * t + 1 }) });
    expect(r.mean).toEqual({ loss: (36 + 37 + 38 + 39) / 4, part: (73 + 75 + 77 + 79) / 4 });
    expect(r.last).toEqual({ loss: 39, part: 79 });
    expect(r.seconds).toBeGreaterThanOrEqual(0);
    // an explicit window; a bare loss becomes { loss }
    expect(runSteps({ name: 'toy', steps: 10, window: 3, step: (t) => t * t }).mean).toEqual({ loss: (49 + 64 + 81) / 3 });
    // fewer than 10 steps: the last step alone; a window over the whole run: the plain mean
    expect(runSteps({ name: 'toy', steps: 5, step: (t) => t }).mean).toEqual({ loss: 4 });
    expect(runSteps({ name: 'toy', steps: 4, window: 100, step: (t) => t }).mean).toEqual({ loss: 1.5 });
  });

  it('keeps the smoothed loss ema_t = 0.95 ema_(t-1) + 0.05 loss_t from ema_0 = loss_0', () => {
    const losses = [4, 2, 6];
    const r = runSteps({ name: 'toy', steps: 3, step: (t) => losses[t] as number });
    expect(r.ema).toBeCloseTo(0.95 * (0.95 * 4 + 0.05 * 2) + 0.05 * 6, 12);
  });

  it('logs { step, ...record } every logEvery steps and at the last step, 0-based', () => {
    const logged: Record<string, number>[] = [];
    runSteps({ name: 'toy', steps: 60, step: (t) => ({ loss: t, lr: 0.1 }), metric: (m) => logged.push(m) });
    expect(logged.map((m) => m.step)).toEqual([0, 25, 50, 59]);
    expect(logged[1]).toEqual({ step: 25, loss: 25, lr: 0.1 });
    const every = (steps: number, logEvery: number) => {
      const s: number[] = [];
      runSteps({ name: 'toy', steps, logEvery, step: () => 1, metric: (m) => s.push(m.step) });
      return s;
    };
    expect(every(50, 25)).toEqual([0, 25, 49]);
    expect(every(51, 25)).toEqual([0, 25, 50]); // the last step is a multiple: logged once
    expect(every(1, 25)).toEqual([0]);
    expect(every(4, 1)).toEqual([0, 1, 2, 3]);
  });

  it('ticks the progress handle (t + 1) with the shown numbers, then calls done once; after() follows the tick', () => {
    const p = recorder();
    const order: string[] = [];
    runSteps({
      name: 'toy',
      steps: 3,
      step: (t) => ({ loss: t + 1, usage: 0.5 }),
      progress: {
        tick: (s, i) => {
          p.tick(s, i);
          order.push(`tick ${s}`);
        },
        done: p.done,
      },
      after: (t) => order.push(`after ${t}`),
    });
    expect(p.ticks).toEqual([
      [1, { loss: 1 }],
      [2, { loss: 2 }],
      [3, { loss: 3 }],
    ]);
    expect(p.done_).toBe(1);
    expect(order).toEqual(['tick 1', 'after 0', 'tick 2', 'after 1', 'tick 3', 'after 2']);
    const q = recorder();
    runSteps({ name: 'toy', steps: 2, step: (t) => ({ loss: 2 * t, usage: 1 }), progress: q, show: (r, ema) => ({ ema, usage: r.usage }) });
    expect(q.ticks).toEqual([
      [1, { ema: 0, usage: 1 }],
      [2, { ema: 0.1, usage: 1 }],
    ]);
  });

  it('runs no step for steps = 0', () => {
    const p = recorder();
    const r = runSteps({ name: 'toy', steps: 0, step: () => 1, progress: p });
    expect(r.last).toBeNull();
    expect(r.mean).toBeNull();
    expect(r.ema).toBeNaN();
    expect(p.ticks).toEqual([]);
    expect(p.done_).toBe(1);
  });

  it('names the run, the step and the value of a non-finite loss, and still calls done', () => {
    const p = recorder();
    expect(() => runSteps({ name: 'sigma/vae', steps: 5, step: (t) => (t === 2 ? Number.NaN : 1), progress: p })).toThrow(
      'sigma/vae: non-finite loss at step 2 (got NaN)',
    );
    expect(p.done_).toBe(1);
    expect(() => runSteps({ name: 'lm', steps: 1, step: () => ({ loss: Number.POSITIVE_INFINITY }) })).toThrow(
      'lm: non-finite loss at step 0 (got Infinity)',
    );
  });

  it('rejects bad steps, logEvery and window, naming the field and the value', () => {
    const step = () => 1;
    expect(() => runSteps({ name: 'toy', steps: -1, step })).toThrow('runSteps(toy): steps must be an integer >= 0, got -1');
    expect(() => runSteps({ name: 'toy', steps: 2.5, step })).toThrow('runSteps(toy): steps must be an integer >= 0, got 2.5');
    expect(() => runSteps({ name: 'toy', steps: 3, logEvery: 0, step })).toThrow('runSteps(toy): logEvery must be an integer >= 1, got 0');
    expect(() => runSteps({ name: 'toy', steps: 3, window: 0, step })).toThrow('runSteps(toy): window must be an integer >= 1, got 0');
  });
});
