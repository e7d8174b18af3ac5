/**
 * Golden values of the research brief §1.12 (computed there with numpy from the reference formula
 * softmax((kappa*pi + g)/tau) @ S), checked to 1e-5.
 */
import { initBackend, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { candidateMasks, candidateTensor, hardMask, linearSchedule, priorLogits, softMask } from '../src/index.js';

const pi = [0.01, -0.02, 0.03, 0.0, 0.005, -0.01];
const g = [0.5, -0.3, 0.1, 1.2, -0.7, 0.0];

function expectClose(actual: ArrayLike<number>, expected: number[], tol: number) {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(Math.abs((actual[i] as number) - e)).toBeLessThanOrEqual(tol));
}

/** y = softmax((kappa*pi + g)/tau) and y @ S, with tf ops. */
function run(kappa: number, tau: number, noise: number[] | null = g, logits = pi) {
  return tf.tidy(() => {
    const S = candidateTensor(2, 4);
    const l = tf.tensor2d([logits]);
    const n = noise ? tf.tensor2d([noise]) : null;
    const z = l.mul(kappa);
    const y = tf.softmax((n ? z.add(n) : z).div(tau)).dataSync();
    const mask = softMask(l, n, kappa, tau, S).dataSync();
    return { y: Array.from(y), mask: Array.from(mask) };
  });
}

describe('MaskLLM golden values (brief §1.12)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });

  it('candidate set S in the reference order (itertools.combinations)', () => {
    expect(candidateMasks(2, 4)).toEqual([
      [1, 1, 0, 0],
      [1, 0, 1, 0],
      [1, 0, 0, 1],
      [0, 1, 1, 0],
      [0, 1, 0, 1],
      [0, 0, 1, 1],
    ]);
    expect(candidateMasks(1, 4)).toEqual([
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ]);
    expect(candidateMasks(4, 8).length).toBe(70);
    expect(candidateMasks(2, 8).length).toBe(28);
  });

  it('kappa=100, tau=4 (t=0)', () => {
    const r = run(100, 4);
    expectClose(r.y, [0.200187, 0.07742, 0.298643, 0.185722, 0.130876, 0.107152], 1e-5);
    expectClose(r.mask, [0.57625, 0.516784, 0.370294, 0.536671], 1e-5);
  });

  it('kappa=300, tau=2.025 (t=T/2)', () => {
    const r = run(300, 2.025);
    expectClose(r.y, [0.057081, 0.000452, 0.906785, 0.018332, 0.015046, 0.002304], 1e-5);
    expectClose(r.mask, [0.964317, 0.09046, 0.021088, 0.924135], 1e-5);
  });

  it('kappa=500, tau=0.05 (t=T) is one-hot on candidate 2, and the hard mask is [1,0,0,1]', () => {
    expectClose(run(500, 0.05).mask, [1, 0, 0, 1], 1e-5);
    const hard = tf.tidy(() => hardMask(tf.tensor2d([pi]), candidateTensor(2, 4)).dataSync());
    expect(Array.from(hard)).toEqual([1, 0, 0, 1]);
  });

  it('soft mask sums to N=2 at every (kappa, tau)', () => {
    for (const [k, t] of [
      [100, 4],
      [300, 2.025],
      [500, 0.05],
    ] as const) {
      const m = run(k, t).mask;
      expect(Math.abs(m.reduce((a, b) => a + b, 0) - 2)).toBeLessThan(1e-5);
    }
  });

  it('prior: M0=[1,0,1,0], alpha=3, sigma=0.01 on zero logits', () => {
    const prior = tf.tidy(() =>
      Array.from(
        priorLogits(tf.zeros([1, 6]) as tf.Tensor2D, tf.tensor2d([[1, 0, 1, 0]]), candidateTensor(2, 4), {
          alpha: 3,
          n: 2,
          sigma: 0.01,
        }).dataSync(),
      ),
    );
    // overlaps [1,2,1,1,0,1] -> delta = 3 * 0.01 * [0, +1, 0, 0, -1, 0]
    expectClose(prior, [0, 0.03, 0, 0, -0.03, 0], 1e-7);
    // kappa=100, tau=1, no noise: p = softmax(100 * prior); closed form with e^3, e^-3
    const Z = 4 + Math.exp(3) + Math.exp(-3);
    const p = [1 / Z, Math.exp(3) / Z, 1 / Z, 1 / Z, Math.exp(-3) / Z, 1 / Z];
    const r1 = run(100, 1, null, prior);
    expectClose(r1.y, p, 1e-6);
    expectClose(r1.y, [0.0414, 0.8322, 0.0414, 0.0414, 0.0021, 0.0414], 5e-5); // brief, 4 decimals
    expectClose(r1.mask, [0.9151, 0.0849, 0.9151, 0.0849], 5e-5);
    const r4 = run(100, 4, null, prior);
    expectClose(r4.mask, [0.6248, 0.3752, 0.6248, 0.3752], 5e-5);
  });

  it('prior sigma defaults to the unbiased std of the logits', () => {
    const logits = [0.01, -0.02, 0.03, 0.0, 0.005, -0.01];
    const mean = logits.reduce((a, b) => a + b, 0) / 6;
    const sd = Math.sqrt(logits.reduce((a, b) => a + (b - mean) ** 2, 0) / 5);
    const out = tf.tidy(() =>
      Array.from(priorLogits(tf.tensor2d([logits]), tf.tensor2d([[1, 0, 1, 0]]), candidateTensor(2, 4), { alpha: 3, n: 2 }).dataSync()),
    );
    expectClose(out, [logits[0]!, logits[1]! + 3 * sd, logits[2]!, logits[3]!, logits[4]! - 3 * sd, logits[5]!], 1e-7);
  });

  it('schedules (T=2000): tau 4 -> 0.05, kappa 100 -> 500', () => {
    const T = 2000;
    const cases: [number, number, number][] = [
      [500, 3.0125, 200],
      [1000, 2.025, 300],
      [2000, 0.05, 500],
      [0, 4, 100],
    ];
    for (const [t, tau, kappa] of cases) {
      expect(Math.abs(linearSchedule(4, 0.05, t, T) - tau)).toBeLessThan(1e-12);
      expect(Math.abs(linearSchedule(100, 500, t, T) - kappa)).toBeLessThan(1e-12);
    }
  });
});
