import { describe, expect, it } from 'vitest';
import { initBackend, Linear, tf } from '../src/index.js';

describe('Linear', () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    it(`matches x W^T + b on ${backend}`, async () => {
      await initBackend({ backend, log: false });
      const lin = new Linear(3, 2);
      const x = tf.tensor2d([[1, 2, 3]]);
      const y = lin.forward(x);
      const w = lin.weight.arraySync() as number[][];
      const exp = w.map((r) => r[0]! * 1 + r[1]! * 2 + r[2]! * 3);
      expect(Array.from(y.dataSync())).toEqual(exp.map((v) => expect.closeTo(v, 5)));
      expect(tf.getBackend()).toBe(backend);
    });
  }
});
