import { describe, expect, it } from 'vitest';
import { Rng, tf } from '../src/index.js';
import { useBackend } from '../src/testing/index.js';

describe('Rng', () => {
  it('is deterministic by seed, with independent forks and restorable state', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    expect([a.uniform(), a.nextUint32()]).toEqual([b.uniform(), b.nextUint32()]);
    const s = a.getState();
    const x = [a.uniform(), a.uniform()];
    a.setState(s);
    expect([a.uniform(), a.uniform()]).toEqual(x);
    expect(new Rng(s).uniform()).toBe(x[0]);
    expect(a.fork('data').uniform()).not.toBe(a.fork('model').uniform());
    expect(() => new Rng(Number.NaN)).toThrow(/finite/);
  });

  it('first draws of small seeds are well mixed (uniform moments over seeds 0..999)', () => {
    // mean of U(0,1) is 1/2 and its variance 1/12; 1000 first draws: SE of the mean ~0.009
    for (const k of [0, 1, 2]) {
      const xs = Array.from({ length: 1000 }, (_, s) => {
        const r = new Rng(s);
        for (let i = 0; i < k; i++) r.uniform();
        return r.uniform();
      });
      const m = xs.reduce((p, q) => p + q, 0) / xs.length;
      const v = xs.reduce((p, q) => p + (q - m) ** 2, 0) / xs.length;
      expect(Math.abs(m - 0.5)).toBeLessThan(0.05);
      expect(Math.abs(v - 1 / 12)).toBeLessThan(0.02);
    }
  });

  it('normal draws have mean 0 and variance 1; tensors are identical across backends', async () => {
    const r = new Rng(3);
    const xs = Array.from({ length: 20000 }, () => r.normal());
    const m = xs.reduce((p, q) => p + q, 0) / xs.length;
    const v = xs.reduce((p, q) => p + (q - m) ** 2, 0) / xs.length;
    expect(Math.abs(m)).toBeLessThan(0.05);
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
    await useBackend('cpu');
    const c = new Rng(9).randn([50]).dataSync().slice();
    await useBackend('wasm');
    const w = new Rng(9).randn([50]).dataSync().slice();
    expect(Array.from(w)).toEqual(Array.from(c));
    expect(tf.getBackend()).toBe('wasm');
  });
});
