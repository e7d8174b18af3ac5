/**
 * The causal query block (SEED's Causal Q-Former, shared by @mmlm/seed and @mmlm/mio): BERT's
 * extended mask values, one layer against a host implementation written from the equations, and
 * the causality the papers rely on (the gradient of query i's output w.r.t. query j's input is
 * exactly zero for j > i, and every query sees the whole context).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CausalQueryEncoder, EXTENDED_MASK_VALUE, extendedAttentionMask, QFormerLayer, Rng, tf } from '../../src/index.js';
import { TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

type M = number[][];
const lin = (x: M, W: M, b: number[]): M => x.map((v) => W.map((row, o) => row.reduce((a, w, i) => a + w * v[i]!, b[o]!)));
const add = (a: M, b: M): M => a.map((r, i) => r.map((v, j) => v + b[i]![j]!));
const ln = (x: M, g: number[], b: number[], eps: number): M =>
  x.map((r) => {
    const mu = r.reduce((a, v) => a + v, 0) / r.length;
    const va = r.reduce((a, v) => a + (v - mu) ** 2, 0) / r.length;
    return r.map((v, j) => ((v - mu) / Math.sqrt(va + eps)) * g[j]! + b[j]!);
  });
// exact GELU through erf (Abramowitz-Stegun 7.1.26 is too coarse; use a series good to 1e-7 for |x| < 6)
const erf = (x: number): number => {
  const s = Math.sign(x);
  const a = Math.abs(x);
  if (a > 5.9) return s;
  let term = a;
  let sum = a;
  for (let n = 1; n < 200; n++) {
    term *= (-a * a) / n;
    const t = term / (2 * n + 1);
    sum += t;
    if (Math.abs(t) < 1e-16) break;
  }
  return (s * 2 * sum) / Math.sqrt(Math.PI);
};
const gelu = (x: M): M => x.map((r) => r.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))));
/** Multi-head attention of queries xq [T, D] over keys/values from xkv [S, *]; mask(i, j) false = masked. */
function attend(q: M, k: M, v: M, H: number, allowed: (i: number, j: number) => boolean): M {
  const D = q[0]!.length;
  const hs = D / H;
  return q.map((qi, i) => {
    const out = new Array(D).fill(0);
    for (let h = 0; h < H; h++) {
      const s = k.map((kj, j) => {
        let d = 0;
        for (let c = 0; c < hs; c++) d += qi[h * hs + c]! * kj[h * hs + c]!;
        return d / Math.sqrt(hs) + (allowed(i, j) ? 0 : EXTENDED_MASK_VALUE);
      });
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < hs; c++) out[h * hs + c] = e.reduce((a, p, j) => a + (p / z) * v[j]![h * hs + c]!, 0);
    }
    return out;
  });
}
const arr = (t: tf.Tensor | null): M => t!.arraySync() as M;
const vec = (t: tf.Tensor | null): number[] => Array.from(t!.dataSync());

for (const backend of TEST_BACKENDS) {
  describe(`causal query block on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('extendedAttentionMask: 0 where j <= i and the key is kept, -1e4 elsewhere (closed form)', () => {
      const keep = tf.tensor2d([[1, 1, 0]]);
      const causal = extendedAttentionMask(keep, true).arraySync() as number[][][][];
      const E = EXTENDED_MASK_VALUE;
      expect(causal[0]![0]).toEqual([
        [0, E, E],
        [0, 0, E],
        [0, 0, E],
      ]);
      expect(extendedAttentionMask(keep, false).arraySync()).toEqual([[[[0, 0, E]]]]);
      expect(() => extendedAttentionMask(tf.ones([4]), true)).toThrow('keep must be [B, S], got shape [4]');
    });

    it('one layer (self, cross, query FFN, all post-LN) equals the equations on host arrays', () => {
      const rng = new Rng(11);
      const enc = new CausalQueryEncoder({
        numQueries: 4,
        hiddenSize: 8,
        numHeads: 2,
        numLayers: 1,
        intermediateSize: 12,
        contextDim: 6,
        crossAttentionFreq: 1,
        lnEps: 1e-5,
        rng,
      });
      // non-trivial LayerNorm affines and biases so every parameter enters the comparison
      for (const [path, v] of enc.namedParameters())
        if (/LayerNorm|bias/.test(path)) v.assign(rng.randn(v.shape, path.endsWith('weight') ? 1 : 0, 0.3));
      const ctx = rng.randn([1, 5, 6]);
      const got = arr(enc.forward(ctx).squeeze([0]));
      const L = enc.layer.at(0) as QFormerLayer;
      const x0 = ln(arr(enc.query_tokens.squeeze([0])), vec(enc.LayerNorm.weight), vec(enc.LayerNorm.bias), 1e-5);
      // self-attention, causal
      const sa = L.attention.self;
      const qkv = lin(x0, arr(sa.qkv!.weight), vec(sa.qkv!.bias));
      const cols = (m: M, a: number, n: number) => m.map((r) => r.slice(a, a + n));
      let h = attend(cols(qkv, 0, 8), cols(qkv, 8, 8), cols(qkv, 16, 8), 2, (i, j) => j <= i);
      h = ln(
        add(x0, lin(h, arr(sa.proj.weight), vec(sa.proj.bias))),
        vec(L.attention.LayerNorm.weight),
        vec(L.attention.LayerNorm.bias),
        1e-5,
      );
      // cross-attention to every context token
      const ca = L.crossattention!.self;
      const c = arr(ctx.squeeze([0]));
      const kv = lin(c, arr(ca.kv!.weight), vec(ca.kv!.bias));
      const q = lin(h, arr(ca.q!.weight), vec(ca.q!.bias));
      let h2 = attend(q, cols(kv, 0, 8), cols(kv, 8, 8), 2, () => true);
      h2 = ln(
        add(h, lin(h2, arr(ca.proj.weight), vec(ca.proj.bias))),
        vec(L.crossattention!.LayerNorm.weight),
        vec(L.crossattention!.LayerNorm.bias),
        1e-5,
      );
      // query FFN
      const f = lin(
        gelu(lin(h2, arr(L.intermediate_query.dense.weight), vec(L.intermediate_query.dense.bias))),
        arr(L.output_query.dense.weight),
        vec(L.output_query.dense.bias),
      );
      const exp = ln(add(h2, f), vec(L.output_query.LayerNorm.weight), vec(L.output_query.LayerNorm.bias), 1e-5);
      for (let i = 0; i < 4; i++) for (let j = 0; j < 8; j++) expect(got[i]![j]!).toBeCloseTo(exp[i]![j]!, 4);
      enc.dispose();
    });

    it('d out_i / d query_j == 0 exactly for j > i and != 0 for j <= i; out_i sees every context token', () => {
      // the brief's mask check: 2 layers, width 64, 8 queries, 16 context tokens of width 32
      const enc = new CausalQueryEncoder({
        numQueries: 8,
        hiddenSize: 64,
        numHeads: 4,
        numLayers: 2,
        intermediateSize: 128,
        contextDim: 32,
        rng: new Rng(1),
      });
      const rng = new Rng(2);
      const ctx = rng.randn([1, 16, 32]);
      const qe = rng.randn([1, 8, 64]);
      const w = rng.randn([64]);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 8; i++) {
        const out = (x: tf.Tensor, c: tf.Tensor) => enc.forwardQueries(x, c).slice([0, i, 0], [1, 1, 64]).reshape([64]).mul(w).sum();
        const gq = tf.tidy(() =>
          vec(
            tf
              .grad((x: tf.Tensor) => out(x, ctx))(qe)
              .abs()
              .sum(2),
          ),
        ); // [Q]
        for (let j = 0; j < 8; j++) {
          if (j > i) expect(gq[j], `d out_${i} / d q_${j}`).toBe(0);
          else expect(gq[j], `d out_${i} / d q_${j}`).toBeGreaterThan(0);
        }
        const gc = tf.tidy(() =>
          vec(
            tf
              .grad((c: tf.Tensor) => out(qe, c))(ctx)
              .abs()
              .sum(2),
          ),
        ); // [S]
        expect(
          gc.every((g) => g > 0),
          `out_${i} depends on every context token`,
        ).toBe(true);
      }
      tf.dispose(enc.queryMask() ?? []); // a mask asked for directly leaves nothing behind
      expect(tf.memory().numTensors).toBe(before);
      // without the mask (causal: false) later queries reach earlier ones
      const bi = new CausalQueryEncoder({
        numQueries: 8,
        hiddenSize: 64,
        numHeads: 4,
        numLayers: 2,
        intermediateSize: 128,
        contextDim: 32,
        causal: false,
        rng: new Rng(1),
      });
      expect(bi.queryMask()).toBeNull();
      const g0 = tf.tidy(() =>
        vec(
          tf
            .grad((x: tf.Tensor) => bi.forwardQueries(x, ctx).slice([0, 0, 0], [1, 1, 64]).reshape([64]).mul(w).sum())(qe)
            .abs()
            .sum(2),
        ),
      );
      expect(g0.slice(1).every((g) => g > 0)).toBe(true);
      enc.dispose();
      bi.dispose();
    });

    it('cross-attends in layers i % crossAttentionFreq == 0 and names the reference children', () => {
      const enc = new CausalQueryEncoder({
        numQueries: 2,
        hiddenSize: 8,
        numHeads: 2,
        numLayers: 3,
        intermediateSize: 8,
        contextDim: 4,
        rng: new Rng(0),
      });
      expect([...enc.layer].map((l) => l.crossattention !== null)).toEqual([true, false, true]);
      const names = enc.namedParameters().map(([n]) => n);
      expect(names).toContain('layer.0.crossattention.self.kv.weight');
      expect(names).toContain('layer.1.output_query.LayerNorm.bias');
      expect(names.some((n) => /\.intermediate\.|\.output\./.test(n))).toBe(false); // no text branch
      const withText = new QFormerLayer({ hiddenSize: 8, numHeads: 2, intermediateSize: 8, textBranch: true, rng: new Rng(0) });
      expect(withText.namedParameters().map(([n]) => n)).toContain('intermediate.dense.weight');
      expect(withText.text(tf.ones([1, 3, 8]), null).shape).toEqual([1, 3, 8]);
      expect(() => (enc.layer.at(0) as QFormerLayer).text(tf.ones([1, 3, 8]), null)).toThrow('built without textBranch');
      enc.dispose();
      withText.dispose();
    });

    it('bad inputs name what was expected and what came', () => {
      const base = { numQueries: 4, hiddenSize: 8, numHeads: 2, numLayers: 1, intermediateSize: 8, contextDim: 6 };
      expect(() => new CausalQueryEncoder({ ...base, numQueries: 0 })).toThrow('numQueries must be a positive integer, got 0');
      expect(() => new CausalQueryEncoder({ ...base, crossAttentionFreq: 1.5 })).toThrow(
        'crossAttentionFreq must be a positive integer, got 1.5',
      );
      const enc = new CausalQueryEncoder({ ...base, rng: new Rng(0) });
      expect(() => enc.forward(tf.zeros([2, 5, 7]))).toThrow('context must be [B, S, 6] with B, S >= 1, got shape [2,5,7]');
      expect(() => enc.forward(tf.zeros([2, 5, 6], 'int32'))).toThrow('context must be float32, got int32');
      expect(() => enc.forwardQueries(tf.zeros([2, 3, 8]), tf.zeros([2, 5, 6]))).toThrow(
        'query embeddings must be [2, 4, 8], got shape [2,3,8]',
      );
      enc.dispose();
    });
  });
}
