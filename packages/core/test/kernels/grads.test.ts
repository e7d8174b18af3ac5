/**
 * Core's Sum and Mean gradients (src/backend/kernels/grads.ts) against closed forms: d/dx sum(x * w)
 * over the reduced axes is w broadcast, d/dx mean is w / n; and against tfjs-core's own gradients
 * (switched back with useStockGradients), element for element, on cpu and wasm.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { useStockGradients } from '../../src/backend/kernels/grads.js';
import { tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, randn } from './helpers.js';

afterAll(async () => {
  useStockGradients(false);
  await useBackend('cpu');
});

const cases: { shape: number[]; axis: number | number[]; keepDims: boolean }[] = [
  { shape: [3, 4, 5], axis: 1, keepDims: false },
  { shape: [3, 4, 5], axis: [0, 2], keepDims: true },
  { shape: [2, 3], axis: -1, keepDims: false },
  { shape: [6], axis: 0, keepDims: false },
];

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`Sum / Mean gradients on ${backend}`, () => {
    for (const c of cases) {
      it(`x [${c.shape}] axis ${JSON.stringify(c.axis)} keepDims ${c.keepDims}: closed form and tfjs-core's, equal`, async () => {
        const n = c.shape.reduce((a, b) => a * b, 1);
        const x = randn(1, n);
        const grads = (stock: boolean) =>
          on(backend, () => {
            useStockGradients(stock);
            return tf.tidy(() => {
              const tx = tf.tensor(x, c.shape);
              const s = tf.sum(tx, c.axis, c.keepDims);
              const w = tf.tensor(randn(2, s.size), s.shape);
              const gs = tf.grad((a: tf.Tensor) => tf.sum(a, c.axis, c.keepDims).mul(w).sum())(tx);
              const gm = tf.grad((a: tf.Tensor) => tf.mean(a, c.axis, c.keepDims).mul(w).sum())(tx);
              // closed form: w at every reduced position
              const axes = tf.util.parseAxisParam(c.axis, c.shape);
              const kept = c.shape.map((d, i) => (axes.includes(i) ? 1 : d));
              const wb = tf.mul(w.reshape(kept), tf.ones(c.shape));
              const count = axes.reduce((p, a) => p * c.shape[a]!, 1);
              return [gs, gm, wb, wb.div(count)].map((t) => Array.from(t.dataSync()));
            });
          });
        const [gs, gm, wb, wm] = await grads(false);
        expect(gs).toEqual(wb);
        for (let i = 0; i < n; i++) expect(gm![i]).toBeCloseTo(wm![i]!, 6);
        const [ss, sm] = await grads(true);
        expect(gs).toEqual(ss);
        expect(gm).toEqual(sm);
        useStockGradients(false);
      });
    }
  });
}
