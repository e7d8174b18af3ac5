/**
 * Fréchet distance between two sets of images on fixed features (Heusel et al. 2017, "GANs Trained
 * by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", the FID): with the feature
 * means mu_r, mu_g and covariances S_r, S_g of the two sets,
 *   d^2 = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}),
 * where Tr((S_r S_g)^{1/2}) = Tr((S_r^{1/2} S_g S_r^{1/2})^{1/2}) (the two matrices are similar), so
 * both square roots are of symmetric positive semi-definite matrices and are taken by a symmetric
 * eigendecomposition (cyclic Jacobi, Float64) with negative round-off eigenvalues clipped to 0.
 *
 * Features (fixed, nothing trained):
 *   'analyzer'  ShapeAnalyzer read-out per image: counts per shape (5), per colour (8), per size (2),
 *               per grid cell (g^2), the number of objects, and the mean background RGB (3);
 *   'conv'      a seeded random conv net on [B, S, S, 3] in [0, 1]: three 3x3 convolutions (32, 64,
 *               64 channels; strides 1, 2, 2; He-normal weights from Rng(seed), ReLU), then global
 *               average and max pooling (128 features);
 *   or a function image -> feature vector.
 * Covariances use the unbiased 1 / (n - 1) estimator, as the reference FID code does.
 */
import { Rng, type Tensor4D, tf } from '@mmlm/core';
import { stackImages } from '../images/tensor.js';
import { CELL_NAMES, COLOUR_NAMES, SHAPE_NAMES, SIZE_NAMES } from '../images/vocab.js';
import { ShapeAnalyzer, type ShapeAnalyzerOptions } from './analyzer.js';

/** Eigenvalues (ascending) and eigenvectors (columns of `vectors`, row-major n x n) of a symmetric matrix. */
export interface SymmetricEigen {
  values: Float64Array;
  vectors: Float64Array;
}

function checkSquare(what: string, a: ArrayLike<number>, n: number): void {
  if (!Number.isInteger(n) || n < 1 || a.length !== n * n)
    throw new Error(`${what}: expected an n x n matrix with n = ${n} (${n * n} values), got ${a.length}`);
}

/**
 * Cyclic Jacobi eigenvalue algorithm (Golub & Van Loan, Matrix Computations, 4th ed., sec. 8.5) in
 * Float64: sweeps of plane rotations zeroing each off-diagonal entry until the off-diagonal norm is
 * below 1e-15 of the Frobenius norm. The input is symmetrised as (A + A^T) / 2.
 */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  checkSquare('symmetricEigen', a, n);
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i * n + j] = (a[i * n + j]! + a[j * n + i]!) / 2;
  for (const v of A) if (!Number.isFinite(v)) throw new Error('symmetricEigen: the matrix has a non-finite entry');
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  let frob = 0;
  for (const v of A) frob += v * v;
  const tol = 1e-30 * Math.max(frob, 1e-300);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += 2 * A[i * n + j]! ** 2;
    if (off <= tol) break;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (apq === 0) continue;
        const app = A[p * n + p]!;
        const aqq = A[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p]!;
          const akq = A[k * n + q]!;
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k]!;
          const aqk = A[q * n + k]!;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p]!;
          const vkq = V[k * n + q]!;
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => A[i * n + i]! - A[j * n + j]!);
  const values = Float64Array.from(order, (i) => A[i * n + i]!);
  const vectors = new Float64Array(n * n);
  for (let k = 0; k < n; k++) for (let r = 0; r < n; r++) vectors[r * n + k] = V[r * n + order[k]!]!;
  return { values, vectors };
}

/** Square root of a symmetric PSD matrix: V diag(sqrt(max(lambda, 0))) V^T. */
export function sqrtmPsd(a: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt(Math.max(0, values[k]!));
    if (s === 0) continue;
    for (let i = 0; i < n; i++) {
      const vi = vectors[i * n + k]! * s;
      for (let j = 0; j < n; j++) out[i * n + j]! += vi * vectors[j * n + k]!;
    }
  }
  return out;
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j]! += aik * b[k * n + j]!;
    }
  return out;
}

export interface GaussianStats {
  /** [d] */
  mean: Float64Array;
  /** [d, d] row-major, unbiased. */
  cov: Float64Array;
  dim: number;
  n: number;
}

/** Mean and unbiased covariance of feature vectors (at least 2, all of one length). */
export function gaussianStats(features: readonly ArrayLike<number>[]): GaussianStats {
  const n = features.length;
  if (n < 2) throw new Error(`gaussianStats: need at least 2 feature vectors, got ${n}`);
  const d = features[0]!.length;
  if (d < 1) throw new Error('gaussianStats: feature vectors are empty');
  const mean = new Float64Array(d);
  features.forEach((f, i) => {
    if (f.length !== d) throw new Error(`gaussianStats: feature vector ${i} has length ${f.length}, expected ${d}`);
    for (let k = 0; k < d; k++) {
      if (!Number.isFinite(f[k]!)) throw new Error(`gaussianStats: feature vector ${i} has a non-finite value at ${k}`);
      mean[k]! += f[k]! / n;
    }
  });
  const cov = new Float64Array(d * d);
  const c = new Float64Array(d);
  for (const f of features) {
    for (let k = 0; k < d; k++) c[k] = f[k]! - mean[k]!;
    for (let i = 0; i < d; i++) {
      const ci = c[i]!;
      if (ci === 0) continue;
      for (let j = i; j < d; j++) cov[i * d + j]! += ci * c[j]!;
    }
  }
  for (let i = 0; i < d; i++)
    for (let j = i; j < d; j++) {
      const v = cov[i * d + j]! / (n - 1);
      cov[i * d + j] = v;
      cov[j * d + i] = v;
    }
  return { mean, cov, dim: d, n };
}

/** d^2 between N(mu1, S1) and N(mu2, S2) (see the file comment). */
export function frechetDistanceFromStats(a: GaussianStats, b: GaussianStats): number {
  const d = a.dim;
  if (b.dim !== d) throw new Error(`frechetDistanceFromStats: feature dimensions differ: ${d} and ${b.dim}`);
  checkSquare('frechetDistanceFromStats', a.cov, d);
  checkSquare('frechetDistanceFromStats', b.cov, d);
  let diff = 0;
  for (let k = 0; k < d; k++) diff += (a.mean[k]! - b.mean[k]!) ** 2;
  const s1h = sqrtmPsd(a.cov, d);
  const inner = matmul(matmul(s1h, b.cov, d), s1h, d);
  const { values } = symmetricEigen(inner, d);
  let trSqrt = 0;
  for (const v of values) trSqrt += Math.sqrt(Math.max(0, v));
  let tr = 0;
  for (let k = 0; k < d; k++) tr += a.cov[k * d + k]! + b.cov[k * d + k]!;
  return Math.max(0, diff + tr - 2 * trSqrt);
}

/** d^2 between the Gaussians fitted to two sets of feature vectors. */
export function frechetDistanceFromFeatures(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  return frechetDistanceFromStats(gaussianStats(a), gaussianStats(b));
}

/** The 'analyzer' features of one image (see the file comment). */
export function analyzerFeatures(image: Float32Array, analyzer: ShapeAnalyzer): Float64Array {
  const a = analyzer.analyze(image);
  const cells = CELL_NAMES[analyzer.gridSize];
  const f = new Float64Array(SHAPE_NAMES.length + COLOUR_NAMES.length + SIZE_NAMES.length + cells.length + 1 + 3);
  let k = 0;
  for (const s of SHAPE_NAMES) f[k++] = a.objects.filter((o) => o.shape === s).length;
  for (const c of COLOUR_NAMES) f[k++] = a.objects.filter((o) => o.colour === c).length;
  for (const s of SIZE_NAMES) f[k++] = a.objects.filter((o) => o.size === s).length;
  for (const c of cells) f[k++] = a.objects.filter((o) => o.cell === c).length;
  f[k++] = a.objects.length;
  for (let c = 0; c < 3; c++) f[k++] = a.background[c]!;
  return f;
}

/** A fixed random conv net (see the file comment); weights depend only on the seed. */
export class ConvFeatureNet {
  readonly seed: number;
  readonly dim = 128;
  private readonly weights: tf.Tensor4D[];
  private static readonly LAYERS: [number, number, number][] = [
    [3, 32, 1],
    [32, 64, 2],
    [64, 64, 2],
  ];

  constructor(seed = 0) {
    this.seed = seed;
    const rng = new Rng(seed).fork('conv-features');
    this.weights = ConvFeatureNet.LAYERS.map(([cin, cout]) =>
      tf.tidy(() => rng.randn([3, 3, cin, cout], 0, Math.sqrt(2 / (9 * cin))) as tf.Tensor4D),
    );
  }

  /** [B, S, S, 3] in [0, 1] -> [B, 128]. */
  features(images: Tensor4D): tf.Tensor2D {
    if (images.rank !== 4 || images.shape[3] !== 3)
      throw new Error(`ConvFeatureNet.features: expected images [B, H, W, 3], got [${images.shape.join(', ')}]`);
    return tf.tidy(() => {
      let h: tf.Tensor4D = tf.sub(images, 0.5);
      ConvFeatureNet.LAYERS.forEach(([, , stride], i) => {
        h = tf.relu(tf.conv2d(h, this.weights[i]!, stride, 'same'));
      });
      return tf.concat([tf.mean(h, [1, 2]), tf.max(h, [1, 2])], 1) as tf.Tensor2D; // [B, 128]
    });
  }

  dispose(): void {
    for (const w of this.weights) w.dispose();
  }
}

export type FrechetFeatures = 'analyzer' | 'conv' | ((image: Float32Array) => ArrayLike<number>);

export interface FrechetOptions {
  /** Default 'conv'. */
  features?: FrechetFeatures;
  /** Side of the (square, RGB) images; default: from the first image's length. */
  imageSize?: number;
  /** Analyzer for 'analyzer' features (or its options; pass the dataset config). */
  analyzer?: ShapeAnalyzer | ShapeAnalyzerOptions;
  /** Seed of the 'conv' net (default 0). */
  seed?: number;
  /** Images per conv forward pass (default 64). */
  batchSize?: number;
}

/** Feature vectors of images under the chosen features. */
export function imageFeatures(images: readonly Float32Array[], opts: FrechetOptions = {}): Float64Array[] {
  if (!Array.isArray(images) || images.length === 0) throw new Error('imageFeatures: expected a non-empty array of images');
  const S = opts.imageSize ?? Math.round(Math.sqrt(images[0]!.length / 3));
  images.forEach((img, i) => {
    if (!(img instanceof Float32Array) || img.length !== S * S * 3)
      throw new Error(`imageFeatures: image ${i} has ${img?.length} values, expected ${S * S * 3} (${S}x${S}x3)`);
  });
  const kind = opts.features ?? 'conv';
  if (typeof kind === 'function') return images.map((img) => Float64Array.from(kind(img)));
  if (kind === 'analyzer') {
    const an = opts.analyzer instanceof ShapeAnalyzer ? opts.analyzer : new ShapeAnalyzer({ imageSize: S, ...(opts.analyzer ?? {}) });
    if (an.imageSize !== S) throw new Error(`imageFeatures: the analyzer is for ${an.imageSize} px images, the images are ${S} px`);
    return images.map((img) => analyzerFeatures(img, an));
  }
  if (kind !== 'conv') throw new Error(`imageFeatures: features must be 'analyzer', 'conv' or a function, got ${JSON.stringify(kind)}`);
  const bs = opts.batchSize ?? 64;
  if (!Number.isInteger(bs) || bs < 1) throw new Error(`imageFeatures: batchSize must be a positive integer, got ${bs}`);
  const net = new ConvFeatureNet(opts.seed ?? 0);
  try {
    const out: Float64Array[] = [];
    for (let s = 0; s < images.length; s += bs) {
      const chunk = images.slice(s, s + bs);
      const data = tf.tidy(() => {
        const x = tf.tensor4d(stackImages(chunk, S * S * 3), [chunk.length, S, S, 3]);
        return net.features(x).dataSync() as Float32Array;
      });
      for (let b = 0; b < chunk.length; b++) out.push(Float64Array.from(data.subarray(b * net.dim, (b + 1) * net.dim)));
    }
    return out;
  } finally {
    net.dispose();
  }
}

/** Fréchet distance d^2 between real and generated images on fixed features (default: the seeded conv net). */
export function frechetDistance(
  realImages: readonly Float32Array[],
  generatedImages: readonly Float32Array[],
  opts: FrechetOptions = {},
): number {
  if (realImages.length < 2 || generatedImages.length < 2)
    throw new Error(
      `frechetDistance: need at least 2 images per set, got ${realImages.length} real and ${generatedImages.length} generated`,
    );
  return frechetDistanceFromFeatures(imageFeatures(realImages, opts), imageFeatures(generatedImages, opts));
}
