/**
 * One-shot baselines. SparseGPT is checked against an independent re-derivation: the sequential
 * optimal-brain-surgeon updates written as direct least-squares solves (Gaussian elimination on
 * sub-blocks of H, no Cholesky), and against the global least-squares solution of the same mask.
 */
import { initBackend, Rng, TransformerDecoder, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  blockLinears,
  choleskyInverse,
  choleskyLower,
  invalidGroups,
  magnitudeMask,
  nmMaskFromScores,
  oneShotPrune,
  sparseGPT,
  wandaMask,
} from '../src/index.js';

/** Solve A x = b for each column of b (Gaussian elimination with partial pivoting, Float64). */
function solve(A: number[][], b: number[][]): number[][] {
  const k = A.length;
  const M = A.map((row, i) => [...row, ...b[i]!]);
  const w = M[0]!.length;
  for (let c = 0; c < k; c++) {
    let p = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / M[c]![c]!;
      for (let j = c; j < w; j++) M[r]![j]! -= f * M[c]![j]!;
    }
  }
  return M.map((row, i) => row.slice(k).map((v) => v / M[i]![i]!));
}

const eye = (k: number) => Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 1 : 0)));
const sub = (H: number[][], idx: number[], jdx: number[]) => idx.map((i) => jdx.map((j) => H[i]![j]!));

/** Random calibration: X [N, cols] with correlated columns; H = X^T X / N. */
function randomProblem(rows: number, cols: number, N: number, seed: number) {
  const rng = new Rng(seed);
  const mix = Array.from({ length: cols }, () => Array.from({ length: cols }, () => rng.normal() * 0.4));
  const X = Array.from({ length: N }, () => {
    const z = Array.from({ length: cols }, () => rng.normal());
    return Array.from({ length: cols }, (_, j) => z[j]! + z.reduce((a, v, i) => a + v * mix[i]![j]!, 0) * 0.5);
  });
  const H = Array.from({ length: cols }, (_, i) => Array.from({ length: cols }, (_, j) => X.reduce((a, x) => a + x[i]! * x[j]!, 0) / N));
  const W = Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.normal()));
  return { X, H, W };
}

function damped(H: number[][], percDamp = 0.01): number[][] {
  const k = H.length;
  const d = (percDamp * H.reduce((a, r, i) => a + r[i]!, 0)) / k;
  return H.map((r, i) => r.map((v, j) => v + (i === j ? d : 0)));
}

/** Sequential OBS by direct solves: SparseGPT's Alg. 1 without the Cholesky/lazy-batch machinery. */
function referenceSparseGPT(W: number[][], Hd: number[][], n: number, m: number, update: boolean) {
  const cols = Hd.length;
  // U_jj^2 = [(H[j:, j:])^-1]_00
  const ujj2 = Array.from({ length: cols }, (_, j) => {
    const idx = Array.from({ length: cols - j }, (_, i) => j + i);
    return solve(sub(Hd, idx, idx), eye(cols - j))[0]![0]!;
  });
  const outW = W.map((r) => [...r]);
  const mask = W.map((r) => r.map(() => 1));
  for (let r = 0; r < W.length; r++) {
    const w = outW[r]!;
    for (let c = 0; c < cols; c++) {
      if (c % m === 0) {
        const order = Array.from({ length: m }, (_, j) => j).sort(
          (a, b) => w[c + a]! ** 2 / ujj2[c + a]! - w[c + b]! ** 2 / ujj2[c + b]! || a - b,
        );
        for (let j = 0; j < m - n; j++) mask[r]![c + order[j]!] = 0;
      }
      if (mask[r]![c]) continue;
      const F = Array.from({ length: cols - c - 1 }, (_, i) => c + 1 + i);
      if (update && F.length) {
        const x = solve(sub(Hd, F, F), sub(Hd, F, [c])); // H_FF^-1 H_Fc
        F.forEach((j, i) => {
          w[j]! += w[c]! * x[i]![0]!;
        });
      }
      w[c] = 0;
    }
  }
  return { W: outW, mask };
}

/** Global least squares of the same mask: w'_K = w_K + H_KK^-1 H_KP w_P per row. */
function globalLS(W: number[][], Hd: number[][], mask: number[][]) {
  return W.map((w, r) => {
    const K = w.map((_, j) => j).filter((j) => mask[r]![j]);
    const P = w.map((_, j) => j).filter((j) => !mask[r]![j]);
    const x = solve(
      sub(Hd, K, K),
      sub(Hd, K, P).map((row) => [row.reduce((a, v, i) => a + v * w[P[i]!]!, 0)]),
    );
    const out = w.map(() => 0);
    K.forEach((j, i) => {
      out[j] = w[j]! + x[i]![0]!;
    });
    return out;
  });
}

/** Reconstruction error sum_r (w - w')^T H (w - w'). */
function recon(W: number[][], W2: number[][], H: number[][]) {
  let e = 0;
  W.forEach((w, r) => {
    const d = w.map((v, j) => v - W2[r]![j]!);
    d.forEach((di, i) => d.forEach((dj, j) => (e += di * H[i]![j]! * dj)));
  });
  return e;
}

const flat = (A: number[][]) => Float64Array.from(A.flat());
const rowsOf = (a: ArrayLike<number>, rows: number, cols: number) =>
  Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, j) => a[r * cols + j] as number));

describe('magnitude and Wanda masks', () => {
  it('magnitude keeps the 2 largest |w| per group of 4 (hand-computed)', () => {
    const W = [0.1, -0.5, 0.3, 0.2, 1, 2, -3, 0, -1, 1, -1, 1];
    expect(Array.from(magnitudeMask(W, 1, 12))).toEqual([0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1]); // last group: all tied
  });

  it('ties are broken by index: the lower index is pruned first', () => {
    expect(Array.from(nmMaskFromScores([1, 1, 1, 1], 1, 4, 2, 4))).toEqual([0, 0, 1, 1]);
  });

  it('Wanda scales |w| by the input norm (hand-computed)', () => {
    // scores |1|*[2, 1, 3, 0.5] -> keep inputs 0 and 2; magnitude alone would tie
    expect(Array.from(wandaMask([1, 1, 1, 1], 1, 4, [4, 1, 9, 0.25]))).toEqual([1, 0, 1, 0]);
    expect(Array.from(wandaMask([0.1, 1, 1, 1], 1, 4, [400, 1, 1, 1]))).toEqual([1, 0, 0, 1]);
  });

  it('1:4 and 2:8 patterns', () => {
    const W = [4, -1, 2, 3, 0.5, 0.1, -0.2, 0.3];
    expect(Array.from(magnitudeMask(W, 1, 8, 1, 4))).toEqual([1, 0, 0, 0, 1, 0, 0, 0]);
    expect(Array.from(magnitudeMask(W, 1, 8, 2, 8))).toEqual([1, 0, 0, 1, 0, 0, 0, 0]);
  });

  it('bad input', () => {
    expect(() => magnitudeMask([1, 2, 3, 4, 5, 6], 1, 6)).toThrow(/input dimension 6 must be divisible by M=4/);
    expect(() => magnitudeMask([1, 2, 3], 1, 4)).toThrow(/W must have 4 entries \(\[1, 4\]\), got 3/);
    expect(() => nmMaskFromScores([1, 2, 3], 1, 4, 2, 4)).toThrow(/expected 4 scores \(\[1, 4\]\), got 3/);
    expect(() => wandaMask([1, 2, 3, 4], 1, 4, [1])).toThrow(/expected 4 input norms, got 1/);
  });
});

describe('SparseGPT (Float64)', () => {
  it('Cholesky and Cholesky inverse agree with Gaussian elimination', () => {
    const { H } = randomProblem(1, 8, 40, 1);
    const A = flat(damped(H));
    const L = choleskyLower(A, 8);
    for (let i = 0; i < 8; i++)
      for (let j = 0; j < 8; j++) {
        let s = 0;
        for (let p = 0; p < 8; p++) s += L[i * 8 + p]! * L[j * 8 + p]!;
        expect(Math.abs(s - A[i * 8 + j]!)).toBeLessThan(1e-12);
      }
    const inv = choleskyInverse(L, 8);
    const ref = solve(damped(H), eye(8));
    for (let i = 0; i < 64; i++) expect(Math.abs(inv[i]! - ref[Math.floor(i / 8)]![i % 8]!)).toBeLessThan(1e-10);
    expect(() => choleskyLower(Float64Array.from([1, 2, 2, 1]), 2, 'H')).toThrow(/H: matrix is not positive definite \(pivot 1/);
  });

  for (const update of [true, false])
    it(`equals sequential OBS by direct least-squares solves (update=${update}, 2 lazy blocks)`, () => {
      const rows = 5;
      const cols = 16;
      const { H, W } = randomProblem(rows, cols, 64, 7);
      const r = sparseGPT(flat(W), flat(H), rows, cols, { update, blockSize: 8 });
      const ref = referenceSparseGPT(W, damped(H), 2, 4, update);
      expect(Array.from(r.mask)).toEqual(ref.mask.flat());
      const got = Array.from(r.weight);
      ref.W.flat().forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThan(1e-9));
      expect(invalidGroups(r.mask, 2, 4)).toBe(0);
    });

  it('with update: between the global least-squares optimum of its mask and plain masking', () => {
    const rows = 6;
    const cols = 16;
    const { H, W } = randomProblem(rows, cols, 80, 3);
    const Hd = damped(H);
    const r = sparseGPT(flat(W), flat(H), rows, cols, { update: true, blockSize: 8 });
    const mask = rowsOf(r.mask, rows, cols);
    const eGPT = recon(W, rowsOf(r.weight, rows, cols), Hd);
    const eLS = recon(W, globalLS(W, Hd, mask), Hd);
    const eMask = recon(
      W,
      W.map((w, i) => w.map((v, j) => v * mask[i]![j]!)),
      Hd,
    );
    expect(eLS).toBeLessThanOrEqual(eGPT + 1e-12);
    expect(eGPT).toBeLessThan(eMask);
  });

  it('with update equals the global least-squares solution when the pruned inputs precede the kept ones', () => {
    const rows = 3;
    const cols = 4;
    const { H, W } = randomProblem(rows, cols, 30, 5);
    const mask = Uint8Array.from({ length: rows * cols }, (_, i) => (i % 4 >= 2 ? 1 : 0));
    const r = sparseGPT(flat(W), flat(H), rows, cols, { update: true, mask });
    const ls = globalLS(W, damped(H), rowsOf(mask, rows, cols)).flat();
    ls.forEach((v, i) => expect(Math.abs(r.weight[i]! - v)).toBeLessThan(1e-10));
  });

  it('dead inputs (H_jj = 0) are zeroed and pruned, without NaN', () => {
    const rows = 2;
    const cols = 8;
    const { H, W } = randomProblem(rows, cols, 30, 2);
    for (let i = 0; i < cols; i++) {
      H[3]![i] = 0;
      H[i]![3] = 0;
    }
    const r = sparseGPT(flat(W), flat(H), rows, cols, { update: true });
    expect(r.weight.every(Number.isFinite)).toBe(true);
    expect(r.mask[3]).toBe(0);
    expect(r.mask[cols + 3]).toBe(0);
  });

  it('bad input', () => {
    expect(() => sparseGPT(new Float64Array(12), new Float64Array(36), 2, 6)).toThrow(/input dimension 6 must be divisible by M=4/);
    expect(() => sparseGPT(new Float64Array(8), new Float64Array(9), 2, 4)).toThrow(/H must be \[4, 4\] \(16 entries\), got 9/);
    expect(() => sparseGPT(new Float64Array(8), new Float64Array(16), 2, 4, { blockSize: 6 })).toThrow(
      /blockSize must be a positive multiple of M=4, got 6/,
    );
  });
});

describe('layer-by-layer one-shot pruning of a decoder', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });
  const make = () => new TransformerDecoder({ vocabSize: 13, dim: 16, numLayers: 2, numHeads: 2, maxSeqLen: 8, seed: 3 });
  const calib = () =>
    tf.tensor2d(
      Array.from({ length: 6 }, (_, b) => Array.from({ length: 8 }, (_, t) => (b * 5 + t * 3) % 13)),
      [6, 8],
      'int32',
    );

  for (const [method, update] of [
    ['magnitude', false],
    ['wanda', false],
    ['sparsegpt', false],
    ['sparsegpt', true],
  ] as const)
    it(`${method}${update ? ' (update)' : ''}: valid 2:4 masks on every block linear, weights pruned, no leak`, () => {
      const dec = make();
      const ids = calib();
      const n0 = tf.memory().numTensors;
      const masks = oneShotPrune(dec, method, ids, { update, batchSize: 4 });
      expect(tf.memory().numTensors).toBe(n0);
      expect([...masks.keys()]).toEqual(blockLinears(dec).map(([p]) => p));
      for (const [p, l] of blockLinears(dec)) {
        const mask = masks.get(p)!;
        expect(invalidGroups(mask, 2, 4), p).toBe(0);
        const w = l.weight.dataSync();
        for (let i = 0; i < w.length; i++) if (!mask[i]) expect(w[i]).toBe(0);
      }
      ids.dispose();
      dec.dispose();
    });

  it('Wanda re-forwards: block 1 is scored on the outputs of the pruned block 0', () => {
    const dec = make();
    const ids = calib();
    const masks = oneShotPrune(dec, 'wanda', ids, { batchSize: 6 });
    // after pruning, block 1's qkv input depends only on the (pruned) block 0: recompute its norms
    const qkv = dec.blocks.at(1).attn.qkv!;
    const dense = make();
    const colSq = new Float64Array(16);
    let count = 0;
    const orig = qkv.forward.bind(qkv);
    qkv.forward = (x: tf.Tensor) => {
      const v = tf.tidy(() => x.reshape([-1, 16]).square().sum(0).dataSync());
      count += x.size / 16;
      v.forEach((s, j) => (colSq[j] += s));
      return orig(x);
    };
    tf.tidy(() => dec.forward(ids));
    const denseW = dense.blocks.at(1).attn.qkv!.weight.dataSync();
    const want = wandaMask(
      denseW,
      48,
      16,
      colSq.map((s) => s / count),
    );
    expect(Array.from(masks.get('blocks.1.attn.qkv')!)).toEqual(Array.from(want));
    [ids].forEach((t) => t.dispose());
    dec.dispose();
    dense.dispose();
  });

  it('SparseGPT with update reconstructs the first layer better than without', () => {
    const errs: number[] = [];
    for (const update of [false, true]) {
      const dense = make();
      const dec = make();
      const ids = calib();
      oneShotPrune(dec, 'sparsegpt', ids, { update });
      const x = tf.tidy(() => {
        let cap: tf.Tensor | null = null;
        const qkv = dense.blocks.at(0).attn.qkv!;
        const orig = qkv.forward.bind(qkv);
        qkv.forward = (t: tf.Tensor) => {
          cap = tf.keep(t.clone());
          return orig(t);
        };
        dense.forward(ids);
        return cap!;
      });
      const a = dense.blocks.at(0).attn.qkv!;
      const b = dec.blocks.at(0).attn.qkv!;
      errs.push(tf.tidy(() => a.forward(x).sub(b.forward(x)).square().sum().dataSync()[0]!));
      [x, ids].forEach((t) => t.dispose());
      dense.dispose();
      dec.dispose();
    }
    expect(errs[1]).toBeLessThan(errs[0]!);
  });

  it('bad input', () => {
    const dec = make();
    expect(() => oneShotPrune(dec, 'wanda', null)).toThrow(/calibration ids must be an int32 tensor \[B, T\], got none/);
    const f = tf.zeros([2, 8]);
    expect(() => oneShotPrune(dec, 'sparsegpt', f)).toThrow(/got float32 \[2,8\]/);
    expect(() => oneShotPrune(dec, 'random' as never, null)).toThrow(/method must be one of magnitude, wanda, sparsegpt, got random/);
    f.dispose();
    dec.dispose();
  });
});
