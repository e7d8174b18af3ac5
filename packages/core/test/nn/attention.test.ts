import { beforeAll, describe, expect, it } from 'vitest';
import {
  blockDiagonalMask,
  causalMask,
  MultiHeadAttention,
  manualSeed,
  NEG_INF,
  paddingMask,
  RotaryEmbedding,
  ropeInvFreq,
  tf,
} from '../../src/index.js';
import { checkGradients, TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

/** Naive attention on host arrays: x [T, D] one batch, weights in PyTorch layout. */
function naiveSelfAttention(
  x: number[][],
  Wqkv: number[][],
  bqkv: number[],
  Wo: number[][],
  bo: number[],
  H: number,
  causal: boolean,
): number[][] {
  const T = x.length;
  const D = x[0]!.length;
  const hs = D / H;
  const lin = (v: number[], W: number[][], b: number[]) => W.map((row, o) => row.reduce((a, w, i) => a + w * v[i]!, b[o]!));
  const qkv = x.map((v) => lin(v, Wqkv, bqkv)); // [T, 3D]
  const y: number[][] = Array.from({ length: T }, () => new Array(D).fill(0));
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < T; i++) {
      const s: number[] = [];
      for (let j = 0; j < T; j++) {
        let dot = 0;
        for (let c = 0; c < hs; c++) dot += qkv[i]![h * hs + c]! * qkv[j]![D + h * hs + c]!;
        s.push(causal && j > i ? -Infinity : dot / Math.sqrt(hs));
      }
      const m = Math.max(...s);
      const e = s.map((v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < hs; c++) y[i]![h * hs + c] = e.reduce((a, p, j) => a + (p / z) * qkv[j]![2 * D + h * hs + c]!, 0);
    }
  }
  return y.map((v) => lin(v, Wo, bo));
}

for (const backend of TEST_BACKENDS) {
  describe(`attention on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('matches a naive host implementation (causal and not)', () => {
      for (const causal of [true, false]) {
        manualSeed(3);
        const att = new MultiHeadAttention({ dim: 8, numHeads: 2, causal, init: { kind: 'normal', std: 0.5 } });
        att.qkv!.bias!.assign(tf.randomNormal([24], 0, 0.1, 'float32', 1));
        const x = tf.randomNormal([1, 5, 8], 0, 1, 'float32', 2);
        const got = att.forward(x).arraySync() as number[][][];
        const exp = naiveSelfAttention(
          (x.arraySync() as number[][][])[0]!,
          att.qkv!.weight.arraySync() as number[][],
          Array.from(att.qkv!.bias!.dataSync()),
          att.proj.weight.arraySync() as number[][],
          Array.from(att.proj.bias!.dataSync()),
          2,
          causal,
        );
        for (let i = 0; i < 5; i++) for (let c = 0; c < 8; c++) expect(got[0]![i]![c]!).toBeCloseTo(exp[i]![c]!, 4);
      }
    });

    it('GQA equals MHA with duplicated key/value heads', () => {
      manualSeed(4);
      const gqa = new MultiHeadAttention({ dim: 8, numHeads: 4, numKvHeads: 2, causal: true });
      const mha = new MultiHeadAttention({ dim: 8, numHeads: 4, causal: true });
      // gqa.qkv rows: q (8), k (2 heads x 2), v (2 x 2); mha rows: q (8), k (4 x 2), v (4 x 2)
      const W = gqa.qkv!.weight;
      const b = gqa.qkv!.bias!;
      const rows = (t: tf.Tensor, s: number, n: number) => tf.slice(t, [s], [n]);
      const dupHeads = (t: tf.Tensor, start: number) =>
        tf.concat(
          [0, 0, 1, 1].map((kvh) => rows(t, start + kvh * 2, 2)),
          0,
        ); // kv head g serves query heads 2g, 2g+1
      mha.qkv!.weight.assign(tf.concat([rows(W, 0, 8), dupHeads(W, 8), dupHeads(W, 12)], 0));
      mha.qkv!.bias!.assign(tf.concat([rows(b, 0, 8), dupHeads(b, 8), dupHeads(b, 12)], 0));
      mha.proj.weight.assign(gqa.proj.weight);
      mha.proj.bias!.assign(gqa.proj.bias!);
      const x = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 8);
      const d = tf
        .abs(gqa.forward(x).sub(mha.forward(x)))
        .max()
        .dataSync()[0]!;
      expect(d).toBeLessThan(1e-5);
    });

    it('cross-attention attends to the context and checks its shape', () => {
      manualSeed(5);
      const ca = new MultiHeadAttention({ dim: 8, numHeads: 2, contextDim: 6 });
      const x = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 1);
      const ctx = tf.randomNormal([2, 4, 6], 0, 1, 'float32', 2);
      expect(ca.forward(x, { context: ctx }).shape).toEqual([2, 3, 8]);
      expect(() => ca.forward(x)).toThrow(/needs context/);
      checkGradients((xs) => ca.forward(xs[0]!, { context: xs[1]! }).square().sum() as tf.Scalar, [x, ctx], { atol: 3e-3, rtol: 5e-2 });
    });

    it('attention gradients match finite differences', () => {
      manualSeed(6);
      const att = new MultiHeadAttention({ dim: 8, numHeads: 2, causal: true });
      const x = tf.randomNormal([1, 4, 8], 0, 1, 'float32', 3);
      checkGradients((xs) => att.forward(xs[0]!).square().sum() as tf.Scalar, [x], { atol: 3e-3, rtol: 5e-2 });
    });

    it('RoPE: scores depend only on the relative position', () => {
      for (const style of ['interleaved', 'half'] as const) {
        const rope = new RotaryEmbedding({ headDim: 8, style });
        const q = tf.randomNormal([1, 1, 1, 8], 0, 1, 'float32', 1);
        const k = tf.randomNormal([1, 1, 1, 8], 0, 1, 'float32', 2);
        const score = (m: number, n: number) => rope.apply(q, m).mul(rope.apply(k, n)).sum().dataSync()[0]!;
        expect(score(5, 2)).toBeCloseTo(score(13, 10), 4);
        expect(score(0, 0)).toBeCloseTo(q.mul(k).sum().dataSync()[0]!, 5);
        // norm preserved
        expect(rope.apply(q, 7).square().sum().dataSync()[0]!).toBeCloseTo(q.square().sum().dataSync()[0]!, 4);
      }
    });

    it('RoPE interleaved rotates pairs (x0, x1) by angle pos * theta_k', () => {
      const rope = new RotaryEmbedding({ headDim: 4, style: 'interleaved', base: 10000 });
      const x = tf.tensor4d([1, 2, 3, 4], [1, 1, 1, 4]);
      const pos = 3;
      const th = [1, 1 / 100]; // 10000^(-2k/4)
      const exp = [
        1 * Math.cos(pos * th[0]!) - 2 * Math.sin(pos * th[0]!),
        1 * Math.sin(pos * th[0]!) + 2 * Math.cos(pos * th[0]!),
        3 * Math.cos(pos * th[1]!) - 4 * Math.sin(pos * th[1]!),
        3 * Math.sin(pos * th[1]!) + 4 * Math.cos(pos * th[1]!),
      ];
      const got = rope.apply(x, pos).dataSync();
      exp.forEach((e, i) => expect(got[i]!).toBeCloseTo(e, 5));
      // half layout pairs (x0, x2), (x1, x3)
      const half = new RotaryEmbedding({ headDim: 4, style: 'half' }).apply(x, pos).dataSync();
      expect(half[0]!).toBeCloseTo(1 * Math.cos(pos) - 3 * Math.sin(pos), 5);
      expect(half[2]!).toBeCloseTo(1 * Math.sin(pos) + 3 * Math.cos(pos), 5);
    });
  });
}

describe('masks and rope frequencies', () => {
  it('LatentLM linspace frequencies: 1/base^linspace(0, 1, d/2)', () => {
    const f = ropeInvFreq(8, 10000, 'linspace');
    [0, 1 / 3, 2 / 3, 1].forEach((e, k) => expect(f[k]!).toBeCloseTo(1 / 10000 ** e, 7));
    expect(() => ropeInvFreq(7)).toThrow(/even/);
  });

  it('causal, padding and block-diagonal masks', async () => {
    await useBackend('cpu');
    expect(causalMask(2, 3).arraySync()).toEqual([
      [0, 0, NEG_INF],
      [0, 0, 0],
    ]);
    expect(paddingMask(tf.tensor2d([[1, 1, 0]])).arraySync()).toEqual([[[[0, 0, NEG_INF]]]]);
    expect(blockDiagonalMask([[0, 0, 1]], true).arraySync()).toEqual([
      [
        [
          [0, NEG_INF, NEG_INF],
          [0, 0, NEG_INF],
          [NEG_INF, NEG_INF, 0],
        ],
      ],
    ]);
    expect(() => blockDiagonalMask([[0, 0], [1]])).toThrow(/row 1 has length 1, expected 2/);
  });
});
