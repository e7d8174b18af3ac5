/**
 * Conv1d against values it did not compute: a naive host convolution written from the definition
 * (y[b, t, o] = bias[o] + sum_{i, c} x[b, t + i d - left, c] W[i, c, o], zero outside), tf.conv1d
 * (a second implementation) for 'same' at dilation 1, causality through gradients, the model
 * contract on every test backend, and bad inputs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Conv1d, conv1dPadding, manualSeed, Rng, tf } from '../../src/index.js';
import { runModelContract, TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

/** Naive 1-D convolution on host arrays (float64). x [B][N][cin], w [k][cin][cout]. */
function naive(x: number[][][], w: number[][][], bias: number[], d: number, left: number): number[][][] {
  const N = x[0]!.length;
  const k = w.length;
  const cin = w[0]!.length;
  const cout = bias.length;
  return x.map((xb) =>
    Array.from({ length: N }, (_, t) =>
      Array.from({ length: cout }, (_, o) => {
        let s = bias[o]!;
        for (let i = 0; i < k; i++) {
          const src = t + i * d - left;
          if (src < 0 || src >= N) continue;
          for (let c = 0; c < cin; c++) s += xb[src]![c]! * w[i]![c]![o]!;
        }
        return s;
      }),
    ),
  );
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++)
    expect(Math.abs((a[i] as number) - (b[i] as number))).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i] as number)));
};

for (const backend of TEST_BACKENDS) {
  describe(`Conv1d on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('padding arithmetic: same = PyTorch padding="same", causal = all on the left', () => {
      expect(conv1dPadding(3, 1, 'same')).toEqual([1, 1]);
      expect(conv1dPadding(4, 1, 'same')).toEqual([1, 2]);
      expect(conv1dPadding(3, 2, 'same')).toEqual([2, 2]);
      expect(conv1dPadding(3, 2, 'causal')).toEqual([4, 0]);
      expect(conv1dPadding(1, 5, 'causal')).toEqual([0, 0]);
    });

    for (const c of [
      { k: 3, d: 1, padding: 'same' as const },
      { k: 4, d: 1, padding: 'same' as const },
      { k: 3, d: 3, padding: 'same' as const },
      { k: 5, d: 2, padding: 'causal' as const },
      { k: 1, d: 1, padding: 'causal' as const },
    ])
      it(`k ${c.k}, dilation ${c.d}, ${c.padding}: matches the naive convolution`, () => {
        const rng = new Rng(3);
        const conv = new Conv1d(3, 2, c.k, { dilation: c.d, padding: c.padding, rng });
        const x = tf.tidy(() => new Rng(9).randn([2, 11, 3]));
        const y = conv.forward(x);
        expect(y.shape).toEqual([2, 11, 2]);
        const [left] = conv1dPadding(c.k, c.d, c.padding);
        const want = naive(
          x.arraySync() as number[][][],
          conv.weight.arraySync() as number[][][],
          conv.bias.arraySync() as number[],
          c.d,
          left,
        );
        close(y.dataSync(), want.flat(2));
        tf.dispose([x, y]);
        conv.dispose();
      });

    it("'same' at dilation 1 equals tf.conv1d", () => {
      const conv = new Conv1d(4, 5, 3, { rng: new Rng(1) });
      const x = tf.tidy(() => new Rng(2).randn([3, 9, 4]));
      const y = conv.forward(x);
      const ref = tf.tidy(() => tf.conv1d(x as tf.Tensor3D, conv.weight as unknown as tf.Tensor3D, 1, 'same').add(conv.bias));
      close(y.dataSync(), ref.dataSync());
      tf.dispose([x, y, ref]);
      conv.dispose();
    });

    it('causal: output t has zero gradient from inputs after t, non-zero from some before', () => {
      const conv = new Conv1d(2, 3, 3, { dilation: 2, padding: 'causal', rng: new Rng(4) });
      const x = tf.tidy(() => new Rng(5).randn([1, 10, 2]));
      const t = 5;
      const g = tf.tidy(() => tf.grad((xi: tf.Tensor) => conv.forward(xi).slice([0, t, 0], [1, 1, 3]).sum())(x));
      const gv = g.arraySync() as number[][][];
      for (let s = t + 1; s < 10; s++) expect(gv[0]![s]!.every((v) => v === 0)).toBe(true);
      expect([t, t - 2, t - 4].every((s) => gv[0]![s]!.some((v) => v !== 0))).toBe(true);
      expect(gv[0]![t - 1]!.every((v) => v === 0)).toBe(true); // dilation 2: t - 1 is skipped
      tf.dispose([x, g]);
      conv.dispose();
    });

    it("biasInit 'zeros' starts at zero and draws only the weight from the rng", () => {
      const a = new Conv1d(2, 3, 3, { biasInit: 'zeros', rng: new Rng(7) });
      expect(Array.from(a.bias.dataSync())).toEqual([0, 0, 0]);
      const r = new Rng(7);
      const w = r.rand([3, 2, 3], -1 / Math.sqrt(6), 1 / Math.sqrt(6));
      close(a.weight.dataSync(), w.dataSync(), 0);
      tf.dispose(w);
      a.dispose();
    });

    it('bad inputs name what was wrong', () => {
      const conv = new Conv1d(3, 2, 3);
      const x = tf.zeros([2, 5, 4]);
      expect(() => conv.forward(x)).toThrow(/Conv1d: input must be \[B, N, 3\], got shape \[2,5,4\]/);
      const x2 = tf.zeros([5, 3]);
      expect(() => conv.forward(x2)).toThrow(/got shape \[5,3\]/);
      expect(() => new Conv1d(3, 2, 0)).toThrow(/kernelSize/);
      expect(() => new Conv1d(3, 2, 3, { dilation: 1.5 })).toThrow(/dilation/);
      expect(() => new Conv1d(3, 2, 3, { padding: 'valid' as 'same' })).toThrow(/padding must be 'same' or 'causal', got "valid"/);
      tf.dispose([x, x2]);
      conv.dispose();
    });
  });
}

describe('Conv1d contract', () => {
  afterAll(async () => useBackend('cpu'));
  it('same and causal', async () => {
    for (const padding of ['same', 'causal'] as const) {
      const r = await runModelContract({
        name: `Conv1d ${padding}`,
        make: (seed) => {
          manualSeed(seed);
          return new Conv1d(4, 6, 3, { padding, dilation: 2 });
        },
        inputs: () => [tf.randomNormal([2, 7, 4], 0, 1, 'float32', 7)],
        forward: (m, [x]) => m.forward(x!),
        expectedShape: [2, 7, 6],
      });
      expect(r.numParameters).toBe(3 * 4 * 6 + 6);
    }
  });
});
