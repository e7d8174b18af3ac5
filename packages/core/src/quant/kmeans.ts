/**
 * k-means for codebook initialisation: Lloyd's algorithm (Lloyd 1982) seeded by k-means++ (Arthur &
 * Vassilvitskii 2007, "k-means++: the advantages of careful seeding"), as used to initialise VQ
 * codebooks from data by Łańcucki et al. 2020 ("Robust training of vector quantized bottleneck
 * models") and by lucidrains' vector-quantize-pytorch `kmeans_init`.
 *
 *   seeding:  c_0 = a uniform row; c_j = row n drawn with probability D(n)^2 / sum D^2, where D(n) is
 *             the distance of row n to its nearest chosen centre (so chosen rows are never drawn again)
 *   Lloyd:    a_n = argmin_k ||x_n - c_k||^2 (first index on ties),  c_k = mean {x_n : a_n = k};
 *             an empty cluster keeps its previous centre (as lucidrains), so the inertia
 *             J = sum_n ||x_n - c_{a_n}||^2 never increases.
 *   cosine:   spherical k-means: rows are l2-normalised and each new centre is renormalised, so the
 *             nearest centre is the one of largest cosine similarity.
 *
 * Fewer distinct rows than k (or k > N): once every distinct row is a centre (sum D^2 = 0), each
 * remaining centre is a row drawn with replacement plus N(0, (1e-3 rms(x))^2) noise, all drawn with
 * the Rng. Those codes are distinct but start unused (the dead-code restart, if on, moves them later).
 *
 * The seeding runs on the host (exact distances, so a row equal to a centre has weight 0, and the
 * same picks on every backend); the Lloyd steps run on the backend.
 */
import { readSync } from '../backend/read.js';
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';

export interface KMeansOptions {
  /** Lloyd iterations, an integer >= 1 (default 10, as lucidrains' `kmeans_iters`). */
  iters?: number;
  /** Stream of the seeding and fill draws (default: the global stream). */
  rng?: Rng;
  /** Spherical k-means on l2-normalised rows (for cosine codebooks). Default false. */
  cosine?: boolean;
}

export interface KMeansResult {
  /** The k centres. [k, D] */
  centres: tf.Tensor2D;
  /** Rows nearest each returned centre. [k] */
  counts: Int32Array;
  /** sum_n min_k ||x_n - c_k||^2 of the returned centres (rows l2-normalised with `cosine`). */
  inertia: number;
  /** Inertia of the seeds, then after each Lloyd update (length iters + 1; non-increasing). */
  inertias: number[];
}

/** Relative scale of the noise added to rows reused as fill centres. */
const FILL_NOISE = 1e-3;

/** k-means++ seeds (plus fill rows) of rows x (host, row-major [N, D]) -> host [k, D]. */
function seedCentres(x: Float32Array, N: number, D: number, k: number, rng: Rng, cosine: boolean): Float32Array {
  const c = new Float32Array(k * D);
  const minD = new Float64Array(N).fill(Number.POSITIVE_INFINITY);
  const take = (j: number, n: number) => {
    c.set(x.subarray(n * D, n * D + D), j * D);
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let d = 0; d < D; d++) {
        const v = (x[i * D + d] as number) - (x[n * D + d] as number);
        s += v * v;
      }
      if (s < (minD[i] as number)) minD[i] = s;
    }
  };
  take(0, rng.int(0, N));
  let j = 1;
  for (; j < k; j++) {
    let total = 0;
    for (let i = 0; i < N; i++) total += minD[i] as number;
    if (!(total > 0)) break; // every distinct row is already a centre
    const u = rng.uniform() * total;
    let pick = -1;
    let cum = 0;
    for (let i = 0; i < N; i++) {
      const w = minD[i] as number;
      if (w <= 0) continue;
      pick = i;
      cum += w;
      if (cum > u) break;
    }
    take(j, pick);
  }
  if (j < k) {
    let ss = 0;
    for (let i = 0; i < N * D; i++) ss += (x[i] as number) ** 2;
    const scale = FILL_NOISE * (ss > 0 ? Math.sqrt(ss / (N * D)) : 1);
    for (; j < k; j++) {
      const n = rng.int(0, N);
      let norm = 0;
      for (let d = 0; d < D; d++) {
        const v = (x[n * D + d] as number) + scale * rng.normal();
        c[j * D + d] = v;
        norm += v * v;
      }
      if (cosine && norm > 0) for (let d = 0; d < D; d++) c[j * D + d] = (c[j * D + d] as number) / Math.sqrt(norm);
    }
  }
  return c;
}

/**
 * k-means++ seeding then `iters` Lloyd steps on the rows of x [N, D] (see the file comment).
 * k may exceed the number of (distinct) rows: the extra centres are noisy copies of rows.
 */
export function kmeans(x: tf.Tensor2D, k: number, opts: KMeansOptions = {}): KMeansResult {
  if (x.rank !== 2) throw new Error(`kmeans: x must be 2-D [N, D], got shape [${x.shape}]`);
  if (x.dtype !== 'float32') throw new Error(`kmeans: x must be float32, got ${x.dtype}`);
  const [N, D] = x.shape;
  if (N < 1 || D < 1) throw new Error(`kmeans: x must have at least one row and one column, got shape [${x.shape}]`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`kmeans: k must be a positive integer, got ${k}`);
  const iters = opts.iters ?? 10;
  if (!Number.isInteger(iters) || iters < 1) throw new Error(`kmeans: iters must be an integer >= 1, got ${iters}`);
  const rng = opts.rng ?? defaultRng();
  const cosine = opts.cosine ?? false;
  const normalise = (t: tf.Tensor) => t.div(tf.maximum(tf.norm(t, 'euclidean', -1, true), 1e-12));
  return tf.tidy(() => {
    const xs = (cosine ? normalise(x) : x) as tf.Tensor2D; // [N, D]
    const host = readSync(xs, 'kmeans', 'run it on cpu or wasm (a sync API: its seeding runs on the host)') as Float32Array;
    for (let i = 0; i < host.length; i++)
      if (!Number.isFinite(host[i])) throw new Error(`kmeans: x must be finite, got ${host[i]} at flat position ${i}`);
    let c = tf.tensor2d(seedCentres(host, N, D, k, rng, cosine), [k, D]);
    const ones = tf.ones([N]);
    const J: tf.Scalar[] = [];
    let idx: tf.Tensor1D | null = null;
    for (let t = 0; ; t++) {
      // argmin_k ||x - c_k||^2 = argmin_k (||c_k||^2 - 2 x.c_k): the [N, k] matrix without ||x||^2
      idx = tf.argMin(tf.matMul(xs, c.mul(-2), false, true).add(c.square().sum(1).reshape([1, k])), 1) as tf.Tensor1D; // [N]
      J.push(xs.sub(tf.gather(c, idx)).square().sum() as tf.Scalar);
      if (t === iters) break;
      const n = tf.unsortedSegmentSum(ones, idx, k).reshape([k, 1]); // [k, 1]
      let mean = tf.unsortedSegmentSum(xs, idx, k).div(tf.maximum(n, 1)); // [k, D], 0 where empty
      if (cosine) mean = normalise(mean);
      const empty = tf.equal(n, 0).toFloat(); // [k, 1]
      c = mean.add(c.mul(empty)) as tf.Tensor2D;
    }
    const counts = readSync(tf.unsortedSegmentSum(ones, idx, k).toInt(), 'kmeans', 'run it on cpu or wasm') as Int32Array;
    const inertias = Array.from(readSync(tf.stack(J), 'kmeans', 'run it on cpu or wasm'));
    return { centres: c, counts: Int32Array.from(counts), inertia: inertias[iters] as number, inertias };
  });
}
