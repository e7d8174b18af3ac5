import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdaLNModulation,
  Embedding,
  gelu,
  geluTanh,
  LayerNorm,
  Linear,
  MLP,
  manualSeed,
  modulate,
  RMSNorm,
  SwiGLU,
  silu,
  swigluHidden,
  TimestepEmbedder,
  tf,
  timestepEmbedding,
} from '../../src/index.js';
import { checkGradients, runModelContract, TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++)
    expect(Math.abs((a[i] as number) - (b[i] as number))).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i] as number)));
};

for (const backend of TEST_BACKENDS) {
  describe(`layers on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('LayerNorm matches the closed form', () => {
      const ln = new LayerNorm(4, { eps: 1e-5 });
      ln.weight!.assign(tf.tensor1d([1, 2, 3, 4]));
      ln.bias!.assign(tf.tensor1d([0.5, 0, 0, -0.5]));
      const x = [1, 2, 3, 6];
      const mean = 3;
      const v = (4 + 1 + 0 + 9) / 4;
      const exp = x.map((xi, i) => ((xi - mean) / Math.sqrt(v + 1e-5)) * [1, 2, 3, 4][i]! + [0.5, 0, 0, -0.5][i]!);
      close(ln.forward(tf.tensor2d([x])).dataSync(), exp);
    });

    it('RMSNorm matches the closed form', () => {
      const n = new RMSNorm(3, { eps: 1e-6 });
      n.weight!.assign(tf.tensor1d([1, 0.5, 2]));
      const x = [3, -4, 12];
      const rms = Math.sqrt((9 + 16 + 144) / 3 + 1e-6);
      close(
        n.forward(tf.tensor1d(x)).dataSync(),
        x.map((xi, i) => (xi / rms) * [1, 0.5, 2][i]!),
      );
      const plain = new RMSNorm(3, { elementwiseAffine: false });
      expect(plain.numParameters()).toBe(0);
    });

    it('activations match reference values', () => {
      // GELU(1) = Phi(1) = 0.8413447461; tanh form 0.8411919906; SiLU(1) = 1/(1+e^-1)
      close(gelu(tf.tensor1d([1, -1, 0])).dataSync(), [0.8413447461, -0.1586552539, 0], 1e-6);
      close(geluTanh(tf.tensor1d([1, -1])).dataSync(), [0.8411919906, -0.1588080094], 1e-6);
      close(silu(tf.tensor1d([1])).dataSync(), [1 / (1 + Math.exp(-1))], 1e-6);
    });

    it('timestep embedding is cos then sin with max period 1e4', () => {
      const dim = 6;
      const t = [0, 3.5, 999];
      const got = timestepEmbedding(tf.tensor1d(t), dim).arraySync();
      const f = [0, 1, 2].map((k) => Math.exp((-Math.log(10000) * k) / 3));
      t.forEach((ti, n) => close(got[n]!, [...f.map((fk) => Math.cos(ti * fk)), ...f.map((fk) => Math.sin(ti * fk))], 1e-4));
      expect(timestepEmbedding(tf.tensor1d([1]), 5).shape).toEqual([1, 5]);
    });

    it('adaLN-Zero modulation starts as the identity', () => {
      const ada = new AdaLNModulation(8, 4, 3);
      const [shift, scale, gate] = ada.forward(tf.randomNormal([2, 8], 0, 1, 'float32', 3));
      expect(shift!.shape).toEqual([2, 4]);
      expect(Math.max(...Array.from(tf.abs(gate!).dataSync()))).toBe(0);
      const x = tf.randomNormal([2, 4], 0, 1, 'float32', 4);
      close(modulate(x, shift!, scale!).dataSync(), x.dataSync(), 0);
    });

    it('SwiGLU is fc2(silu(fc1 x) * gate x) and the LatentLM width rule holds', () => {
      expect(swigluHidden(1024, 4)).toBe(2688); // brief: code's L preset FFN 2688
      manualSeed(5);
      const s = new SwiGLU(4, 8);
      const x = tf.randomNormal([3, 4], 0, 1, 'float32', 9);
      const exp = s.fc2.forward(silu(s.fc1.forward(x)).mul(s.gate.forward(x)));
      close(s.forward(x).dataSync(), exp.dataSync(), 1e-6);
      expect(s.namedParameters().map(([n]) => n)).toEqual(['fc1.weight', 'gate.weight', 'fc2.weight']);
    });

    it('gradients of every layer match finite differences', () => {
      manualSeed(11);
      const x = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 12);
      const ln = new LayerNorm(4);
      const rms = new RMSNorm(4);
      const mlp = new MLP(4, 6);
      const sw = new SwiGLU(4, 6);
      const lin = new Linear(4, 5);
      for (const f of [
        (xs: tf.Tensor[]) => ln.forward(xs[0]!).mul(tf.range(0, 4).add(1)).sum() as tf.Scalar,
        (xs: tf.Tensor[]) => rms.forward(xs[0]!).mul(tf.range(0, 4).add(1)).sum() as tf.Scalar,
        (xs: tf.Tensor[]) => mlp.forward(xs[0]!).square().sum() as tf.Scalar,
        (xs: tf.Tensor[]) => sw.forward(xs[0]!).square().sum() as tf.Scalar,
        (xs: tf.Tensor[]) => lin.forward(xs[0]!).square().sum() as tf.Scalar,
        (xs: tf.Tensor[]) => gelu(xs[0]!).sum() as tf.Scalar,
      ])
        checkGradients(f, [x], { eps: 1e-2, rtol: 3e-2, atol: 2e-3 });
      const emb = new TimestepEmbedder(8, 16);
      checkGradients((xs) => emb.forward(xs[0]!).sum() as tf.Scalar, [tf.tensor1d([1, 10])], { eps: 1e-2, atol: 5e-3, rtol: 5e-2 });
    });

    it('Embedding checks dtype and ids', () => {
      const e = new Embedding(5, 3);
      expect(() => e.forward(tf.tensor1d([1, 2]))).toThrow(/int32/);
      expect(() => e.checkIds(tf.tensor1d([0, 5], 'int32'))).toThrow(/id 5 .*out of range \[0, 5\)/);
      expect(e.forward(tf.tensor2d([[0, 4]], [1, 2], 'int32')).shape).toEqual([1, 2, 3]);
    });

    it('Linear rejects a wrong input width', () => {
      const l = new Linear(3, 2);
      expect(() => l.forward(tf.zeros([2, 4]))).toThrow(/last dim must be 3.*\[2,4\]/);
      expect(() => new Linear(0, 2)).toThrow(/positive integer, got 0/);
    });
  });
}

describe('layer contracts', () => {
  afterAll(async () => useBackend('cpu'));
  it('MLP', async () => {
    const r = await runModelContract({
      name: 'MLP',
      make: (seed) => {
        manualSeed(seed);
        return new MLP(8, 16);
      },
      inputs: () => [tf.randomNormal([2, 3, 8], 0, 1, 'float32', 7)],
      forward: (m, [x]) => m.forward(x!),
      expectedShape: [2, 3, 8],
    });
    expect(r.numParameters).toBe(8 * 16 + 16 + 16 * 8 + 8);
  });
  it('LayerNorm and RMSNorm', async () => {
    for (const make of [() => new LayerNorm(8), () => new RMSNorm(8)])
      await runModelContract({
        name: 'norm',
        make: () => make(),
        inputs: () => [tf.randomNormal([2, 8], 0, 1, 'float32', 7)],
        forward: (m, [x]) => m.forward(x!),
        loss: (m, [x]) =>
          m
            .forward(x!)
            .mul(tf.range(0, 16).reshape([2, 8]))
            .sum() as tf.Scalar,
        expectedShape: [2, 8],
      });
  });
});
