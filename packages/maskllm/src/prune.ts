/**
 * One-shot N:M baselines of MaskLLM's Table 1, as in the reference repo (NVlabs/MaskLLM
 * `tasks/pruning/sparsity/core.py`, `tasks/pruning/prune_main_llama.py`): per output row, in groups
 * of M consecutive inputs, drop the M-N lowest-scoring weights.
 *  - Magnitude: score |W_ij|.
 *  - Wanda (Sun et al. 2023): score |W_ij| * ||X_j||_2 over calibration tokens.
 *  - SparseGPT (Frantar & Alistarh 2023, Alg. 1): H = X^T X (+ 1% mean-diagonal damping), U the
 *    upper Cholesky factor of H^-1, columns in blocks of 128; at every M-th column score the next M
 *    columns by w^2 / U_jj^2, prune M-N per row, and (optionally) propagate each pruned column's
 *    error (w - q) / U_ii to the later columns through U. Float64 throughout.
 * Calibration is layer by layer with re-forwarding: block i is calibrated on the outputs of the
 * already-pruned blocks 0..i-1.
 */
import { type Linear, type TransformerDecoder, tf } from '@mmlm/core';
import { blockLinears, validateNM } from './model.js';

/** 0/1 mask [rows, cols] (1 = kept) keeping the N highest scores in every group of M along a row. */
export function nmMaskFromScores(scores: ArrayLike<number>, rows: number, cols: number, n: number, m: number): Uint8Array {
  validateNM(n, m);
  if (cols % m !== 0) throw new Error(`N:M mask: the input dimension ${cols} must be divisible by M=${m}`);
  if (scores.length !== rows * cols) throw new Error(`N:M mask: expected ${rows * cols} scores ([${rows}, ${cols}]), got ${scores.length}`);
  const mask = new Uint8Array(rows * cols).fill(1);
  const idx = new Array<number>(m);
  for (let g = 0; g < (rows * cols) / m; g++) {
    const base = g * m;
    for (let j = 0; j < m; j++) idx[j] = j;
    // stable ascending sort of the group's scores: the first M-N are pruned (ties: lower index first)
    idx.sort((a, b) => (scores[base + a] as number) - (scores[base + b] as number) || a - b);
    for (let j = 0; j < m - n; j++) mask[base + (idx[j] as number)] = 0;
  }
  return mask;
}

function checkWeight(what: string, W: ArrayLike<number>, rows: number, cols: number): void {
  if (W.length !== rows * cols) throw new Error(`${what}: W must have ${rows * cols} entries ([${rows}, ${cols}]), got ${W.length}`);
}

/** Magnitude baseline: keep the N largest |W_ij| per group. W: [rows, cols] row-major. */
export function magnitudeMask(W: ArrayLike<number>, rows: number, cols: number, n = 2, m = 4): Uint8Array {
  checkWeight('magnitudeMask', W, rows, cols);
  const s = new Float64Array(rows * cols);
  for (let i = 0; i < s.length; i++) s[i] = Math.abs(W[i] as number);
  return nmMaskFromScores(s, rows, cols, n, m);
}

/**
 * Wanda baseline: score |W_ij| * sqrt(colSq_j), colSq_j the mean squared activation of input j
 * over the calibration tokens (any positive scale gives the same mask).
 */
export function wandaMask(W: ArrayLike<number>, rows: number, cols: number, colSq: ArrayLike<number>, n = 2, m = 4): Uint8Array {
  checkWeight('wandaMask', W, rows, cols);
  if (colSq.length !== cols) throw new Error(`wandaMask: expected ${cols} input norms, got ${colSq.length}`);
  const s = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < cols; j++) s[r * cols + j] = Math.abs(W[r * cols + j] as number) * Math.sqrt(colSq[j] as number);
  return nmMaskFromScores(s, rows, cols, n, m);
}

/** Lower Cholesky factor L of a symmetric positive definite A [k, k] (A = L L^T). */
export function choleskyLower(A: Float64Array, k: number, what = 'cholesky'): Float64Array {
  const L = new Float64Array(k * k);
  for (let j = 0; j < k; j++) {
    let s = A[j * k + j] as number;
    for (let p = 0; p < j; p++) s -= (L[j * k + p] as number) ** 2;
    if (!(s > 0)) throw new Error(`${what}: matrix is not positive definite (pivot ${j} is ${s})`);
    const d = Math.sqrt(s);
    L[j * k + j] = d;
    for (let i = j + 1; i < k; i++) {
      let t = A[i * k + j] as number;
      for (let p = 0; p < j; p++) t -= (L[i * k + p] as number) * (L[j * k + p] as number);
      L[i * k + j] = t / d;
    }
  }
  return L;
}

/** A^-1 from the lower Cholesky factor of A (torch.cholesky_inverse). */
export function choleskyInverse(L: Float64Array, k: number): Float64Array {
  const Li = new Float64Array(k * k); // L^-1, lower
  for (let j = 0; j < k; j++) {
    Li[j * k + j] = 1 / (L[j * k + j] as number);
    for (let i = j + 1; i < k; i++) {
      let s = 0;
      for (let p = j; p < i; p++) s += (L[i * k + p] as number) * (Li[p * k + j] as number);
      Li[i * k + j] = -s / (L[i * k + i] as number);
    }
  }
  const inv = new Float64Array(k * k); // L^-T L^-1
  for (let a = 0; a < k; a++)
    for (let b = 0; b <= a; b++) {
      let s = 0;
      for (let p = a; p < k; p++) s += (Li[p * k + a] as number) * (Li[p * k + b] as number);
      inv[a * k + b] = s;
      inv[b * k + a] = s;
    }
  return inv;
}

export interface SparseGPTOptions {
  n?: number;
  m?: number;
  /** Propagate pruning errors to later columns (the OBS update). Default true. */
  update?: boolean;
  /** Columns per lazy-update block (reference: 128). Must be a multiple of M. */
  blockSize?: number;
  /** Damping as a fraction of mean(diag H) (reference percdamp: 0.01). */
  percDamp?: number;
  /** Use this 0/1 mask [rows, cols] instead of selecting one (then only the update runs). */
  mask?: Uint8Array;
}

export interface SparseGPTResult {
  /** New weights [rows, cols] (masked, and updated when `update`). */
  weight: Float64Array;
  /** 0/1 mask [rows, cols], 1 = kept. */
  mask: Uint8Array;
}

/**
 * SparseGPT N:M pruning of one layer (Frantar & Alistarh 2023, Alg. 1 with N:M selection; the
 * reference `SparseGPT.fasterprune(sparsity, prunen, prunem, blocksize, percdamp)`).
 * W: [rows, cols] row-major; H: [cols, cols] (any positive multiple of X^T X). Neither is modified.
 */
export function sparseGPT(
  W: ArrayLike<number>,
  H: ArrayLike<number>,
  rows: number,
  cols: number,
  opts: SparseGPTOptions = {},
): SparseGPTResult {
  const n = opts.n ?? 2;
  const m = opts.m ?? 4;
  validateNM(n, m);
  const update = opts.update ?? true;
  const bs = opts.blockSize ?? 128;
  const percDamp = opts.percDamp ?? 0.01;
  if (cols % m !== 0) throw new Error(`sparseGPT: the input dimension ${cols} must be divisible by M=${m}`);
  if (!Number.isInteger(bs) || bs < m || bs % m !== 0)
    throw new Error(`sparseGPT: blockSize must be a positive multiple of M=${m}, got ${bs}`);
  if (W.length !== rows * cols) throw new Error(`sparseGPT: W must have ${rows * cols} entries ([${rows}, ${cols}]), got ${W.length}`);
  if (H.length !== cols * cols) throw new Error(`sparseGPT: H must be [${cols}, ${cols}] (${cols * cols} entries), got ${H.length}`);
  if (opts.mask && opts.mask.length !== rows * cols)
    throw new Error(`sparseGPT: mask must have ${rows * cols} entries ([${rows}, ${cols}]), got ${opts.mask.length}`);
  const w = Float64Array.from(W);
  const h = Float64Array.from(H);
  for (let j = 0; j < cols; j++)
    if (h[j * cols + j] === 0) {
      h[j * cols + j] = 1; // dead input: never active in calibration
      for (let r = 0; r < rows; r++) w[r * cols + j] = 0;
    }
  let meanDiag = 0;
  for (let j = 0; j < cols; j++) meanDiag += h[j * cols + j] as number;
  const damp = (percDamp * meanDiag) / cols;
  for (let j = 0; j < cols; j++) h[j * cols + j] = (h[j * cols + j] as number) + damp;
  const Hinv = choleskyInverse(choleskyLower(h, cols, 'sparseGPT: H + damping'), cols);
  const L2 = choleskyLower(Hinv, cols, 'sparseGPT: H^-1');
  const U = (i: number, j: number) => L2[j * cols + i] as number; // upper Cholesky factor of H^-1
  const mask = opts.mask ? Uint8Array.from(opts.mask) : new Uint8Array(rows * cols).fill(1);
  const score = new Float64Array(m);
  const idx = new Array<number>(m);
  for (let i1 = 0; i1 < cols; i1 += bs) {
    const i2 = Math.min(i1 + bs, cols);
    const count = i2 - i1;
    const err = new Float64Array(rows * count); // Err1 [rows, count]
    for (let i = 0; i < count; i++) {
      const c = i1 + i;
      const d = U(c, c);
      if (!opts.mask && i % m === 0)
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < m; j++) {
            score[j] = (w[r * cols + c + j] as number) ** 2 / U(c + j, c + j) ** 2;
            idx[j] = j;
          }
          idx.sort((a, b) => (score[a] as number) - (score[b] as number) || a - b);
          for (let j = 0; j < m; j++) mask[r * cols + c + j] = 1;
          for (let j = 0; j < m - n; j++) mask[r * cols + c + (idx[j] as number)] = 0;
        }
      for (let r = 0; r < rows; r++) {
        const wv = w[r * cols + c] as number;
        const q = mask[r * cols + c] ? wv : 0;
        w[r * cols + c] = q;
        if (!update) continue;
        const e = (wv - q) / d;
        err[r * count + i] = e;
        if (e !== 0) for (let j = i + 1; j < count; j++) w[r * cols + i1 + j] = (w[r * cols + i1 + j] as number) - e * U(c, i1 + j);
      }
    }
    if (update && i2 < cols)
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < count; i++) {
          const e = err[r * count + i] as number;
          if (e === 0) continue;
          for (let j = i2; j < cols; j++) w[r * cols + j] = (w[r * cols + j] as number) - e * U(i1 + i, j);
        }
  }
  return { weight: w, mask };
}

// ---------------------------------------------------------------------------------------------
// Layer-by-layer calibration over a core TransformerDecoder.

export type OneShotMethod = 'magnitude' | 'wanda' | 'sparsegpt';

export interface OneShotOptions {
  n?: number;
  m?: number;
  /** SparseGPT weight update (default false: mask only, as the reference's default run). */
  update?: boolean;
  blockSize?: number;
  percDamp?: number;
  /** Calibration sequences per forward (memory bound). Default 8. */
  batchSize?: number;
}

class StopForward extends Error {}

type Forwardable = { forward: (x: tf.Tensor, ...rest: never[]) => tf.Tensor };

/** Run `pre(x)` before every call of `mod.forward(x, ...)` until the returned function is called. */
function hookForward(mod: Forwardable, pre: (x: tf.Tensor) => void): () => void {
  const own = Object.hasOwn(mod, 'forward');
  const original = mod.forward;
  const hooked = (x: tf.Tensor, ...rest: never[]) => {
    pre(x);
    return original.call(mod, x, ...rest);
  };
  (mod as { forward: unknown }).forward = hooked;
  return () => {
    if (own) (mod as { forward: unknown }).forward = original;
    else delete (mod as { forward?: unknown }).forward;
  };
}

/** Inputs of block 0 ([b, T, D] per calibration batch): embeddings plus positions, as forwardHidden builds them. */
function blockZeroInputs(decoder: TransformerDecoder, batches: tf.Tensor[]): tf.Tensor[] {
  const first = decoder.blocks.at(0) as unknown as Forwardable;
  const out: tf.Tensor[] = [];
  for (const ids of batches) {
    const restore = hookForward(first, (x) => {
      out.push(tf.keep(x.clone()));
      throw new StopForward();
    });
    try {
      tf.tidy(() => decoder.forwardHidden(decoder.embed(ids)));
    } catch (e) {
      if (!(e instanceof StopForward)) throw e;
    } finally {
      restore();
    }
  }
  return out;
}

/**
 * One-shot N:M pruning of every block linear, in place (W <- W * M, or SparseGPT's updated
 * weights). Returns the masks by layer path. Wanda and SparseGPT need calibration ids [B, T].
 */
export function oneShotPrune(
  decoder: TransformerDecoder,
  method: OneShotMethod,
  calib: tf.Tensor | null,
  opts: OneShotOptions = {},
): Map<string, Uint8Array> {
  const n = opts.n ?? 2;
  const m = opts.m ?? 4;
  validateNM(n, m);
  if (!['magnitude', 'wanda', 'sparsegpt'].includes(method))
    throw new Error(`oneShotPrune: method must be one of magnitude, wanda, sparsegpt, got ${method}`);
  const layers = blockLinears(decoder);
  for (const [p, l] of layers)
    if (l.inFeatures % m !== 0) throw new Error(`oneShotPrune: layer ${p} has input dimension ${l.inFeatures}, not divisible by M=${m}`);
  const masks = new Map<string, Uint8Array>();
  const setWeight = (l: Linear, w: ArrayLike<number>) =>
    tf.tidy(() => l.weight.assign(tf.tensor2d(Float32Array.from(w), [l.outFeatures, l.inFeatures])));
  if (method === 'magnitude') {
    for (const [p, l] of layers) {
      const W = l.weight.dataSync();
      const mask = magnitudeMask(W, l.outFeatures, l.inFeatures, n, m);
      setWeight(
        l,
        W.map((v, i) => (mask[i] ? v : 0)),
      );
      masks.set(p, mask);
    }
    return masks;
  }
  if (calib?.rank !== 2 || calib.dtype !== 'int32')
    throw new Error(
      `oneShotPrune(${method}): calibration ids must be an int32 tensor [B, T], got ${calib ? `${calib.dtype} [${calib.shape}]` : 'none'}`,
    );
  const B = calib.shape[0] as number;
  const bsz = opts.batchSize ?? 8;
  const batches: tf.Tensor[] = [];
  for (let b = 0; b < B; b += bsz) batches.push(tf.slice(calib, [b, 0], [Math.min(bsz, B - b), -1]));
  let hs = blockZeroInputs(decoder, batches);
  batches.forEach((t) => t.dispose());
  try {
    decoder.blocks.items.forEach((blk, bi) => {
      const mine = layers.filter(([p]) => p.startsWith(`blocks.${bi}.`));
      const stats = mine.map(([, l]) => ({
        count: 0,
        acc: new Float64Array(method === 'wanda' ? l.inFeatures : l.inFeatures * l.inFeatures),
      }));
      const restores = mine.map(([, l], k) =>
        hookForward(l as unknown as Forwardable, (x) => {
          const st = stats[k]!;
          tf.tidy(() => {
            const x2 = x.reshape([-1, l.inFeatures]); // [N, in]
            st.count += x2.shape[0] as number;
            const v = (method === 'wanda' ? x2.square().sum(0) : tf.matMul(x2, x2, true, false)).dataSync(); // [in] | [in, in]
            for (let i = 0; i < v.length; i++) st.acc[i] = (st.acc[i] as number) + (v[i] as number);
          });
        }),
      );
      try {
        for (const h of hs)
          tf.tidy(() => {
            blk.forward(h, {});
          });
      } finally {
        restores.forEach((r) => r());
      }
      mine.forEach(([p, l], k) => {
        const st = stats[k]!;
        const mean = st.acc.map((v) => v / Math.max(1, st.count));
        const W = l.weight.dataSync();
        if (method === 'wanda') {
          const mask = wandaMask(W, l.outFeatures, l.inFeatures, mean, n, m);
          setWeight(
            l,
            W.map((v, i) => (mask[i] ? v : 0)),
          );
          masks.set(p, mask);
        } else {
          const r = sparseGPT(W, mean, l.outFeatures, l.inFeatures, {
            n,
            m,
            update: opts.update ?? false,
            blockSize: opts.blockSize,
            percDamp: opts.percDamp,
          });
          setWeight(l, r.weight);
          masks.set(p, r.mask);
        }
      });
      const next = hs.map((h) => tf.tidy(() => blk.forward(h, {})));
      hs.forEach((h) => h.dispose());
      hs = next;
    });
  } finally {
    hs.forEach((h) => h.dispose());
  }
  return masks;
}
