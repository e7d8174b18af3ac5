/**
 * LOCAL STAND-IN for the Shapes images of @mmlm/data (not exported by it when this package was
 * written): 32x32 RGB images of one filled shape on a dark background, with a class label, a
 * caption and question/answer pairs; an analyzer that reads shape, colour and place back from the
 * pixels (template IoU, nearest palette colour, centroid); the generation score (fraction of images
 * whose analysis matches their prompt); and the Frechet distance (Heusel et al. 2017) between
 * Gaussian fits of image features (4x4 average-pooled RGB, 48 dims). Replace with the data
 * package's ShapeAnalyzer / generation score / Frechet distance once they exist.
 */
import { Rng } from '@mmlm/core';

export const SHAPE_NAMES = ['circle', 'square', 'triangle', 'cross'] as const;
export const COLOUR_NAMES = ['red', 'green', 'blue', 'yellow', 'white', 'purple'] as const;
export const PLACE_NAMES = ['on the left', 'in the middle', 'on the right'] as const;
const PALETTE: Record<(typeof COLOUR_NAMES)[number], [number, number, number]> = {
  red: [0.9, 0.12, 0.1],
  green: [0.1, 0.75, 0.2],
  blue: [0.15, 0.3, 0.95],
  yellow: [0.95, 0.88, 0.1],
  white: [0.95, 0.95, 0.95],
  purple: [0.6, 0.2, 0.8],
};
const BG = 0.08;
export const IMAGE_SIZE = 32;
const PLACE_X = [8, 16, 24];

export interface ShapeItem {
  /** [32 * 32 * 3], HWC, values in [0, 1]. */
  image: Float32Array;
  shape: number;
  colour: number;
  place: number;
  /** shape * 6 + colour (24 classes). */
  label: number;
  caption: string;
}

export const NUM_CLASSES = SHAPE_NAMES.length * COLOUR_NAMES.length;

function inside(shape: number, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 0:
      return dx * dx + dy * dy <= r * r;
    case 1:
      return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
    case 2: // apex up; base at dy = +r*0.8
      return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= ((dy + r) / (1.8 * r)) * r;
    default: {
      const w = r * 0.35;
      return (Math.abs(dx) <= w && Math.abs(dy) <= r) || (Math.abs(dy) <= w && Math.abs(dx) <= r);
    }
  }
}

/** Binary mask of a shape centred at (cx, cy) with size r. */
function mask(shape: number, cx: number, cy: number, r: number): Uint8Array {
  const m = new Uint8Array(IMAGE_SIZE * IMAGE_SIZE);
  for (let y = 0; y < IMAGE_SIZE; y++)
    for (let x = 0; x < IMAGE_SIZE; x++) m[y * IMAGE_SIZE + x] = inside(shape, x + 0.5 - cx, y + 0.5 - cy, r) ? 1 : 0;
  return m;
}

export function renderShape(shape: number, colour: number, place: number, rng: Rng): Float32Array {
  const cx = (PLACE_X[place] as number) + rng.uniform() * 2 - 1;
  const cy = 16 + rng.uniform() * 6 - 3;
  const r = 5 + rng.uniform() * 1.5;
  const m = mask(shape, cx, cy, r);
  const c = PALETTE[COLOUR_NAMES[colour]!];
  const img = new Float32Array(IMAGE_SIZE * IMAGE_SIZE * 3).fill(BG);
  for (let i = 0; i < m.length; i++) if (m[i]) img.set(c, i * 3);
  return img;
}

/** Item i of the deterministic dataset (seeded by i). */
export function shapeItem(seed: number, i: number): ShapeItem {
  const rng = new Rng(seed).fork(`shape-${i}`);
  const shape = rng.int(0, SHAPE_NAMES.length);
  const colour = rng.int(0, COLOUR_NAMES.length);
  const place = rng.int(0, PLACE_NAMES.length);
  return {
    image: renderShape(shape, colour, place, rng),
    shape,
    colour,
    place,
    label: shape * COLOUR_NAMES.length + colour,
    caption: `a ${COLOUR_NAMES[colour]} ${SHAPE_NAMES[shape]} ${PLACE_NAMES[place]}`,
  };
}

/** Question/answer pairs about an item (the understanding task). */
export function shapeQA(item: ShapeItem): { question: string; answer: string }[] {
  const s = SHAPE_NAMES[item.shape]!;
  const c = COLOUR_NAMES[item.colour]!;
  return [
    { question: `what colour is the ${s} ?`, answer: c },
    { question: `what shape is it ?`, answer: s },
    { question: `where is the ${c} ${s} ?`, answer: PLACE_NAMES[item.place]! },
  ];
}

export interface Analysis {
  /** -1 when nothing is drawn. */
  shape: number;
  colour: number;
  place: number;
  /** IoU of the best template (how shape-like the blob is). */
  iou: number;
}

/** Reads shape, colour and place back from pixels. */
export function analyzeShape(img: Float32Array): Analysis {
  const n = IMAGE_SIZE * IMAGE_SIZE;
  const fg = new Uint8Array(n);
  let count = 0;
  let sx = 0;
  let sy = 0;
  const mean = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const d = Math.max(Math.abs(img[i * 3]! - BG), Math.abs(img[i * 3 + 1]! - BG), Math.abs(img[i * 3 + 2]! - BG));
    if (d > 0.25) {
      fg[i] = 1;
      count++;
      sx += (i % IMAGE_SIZE) + 0.5;
      sy += Math.floor(i / IMAGE_SIZE) + 0.5;
      for (let k = 0; k < 3; k++) mean[k]! += img[i * 3 + k]!;
    }
  }
  if (count < 8) return { shape: -1, colour: -1, place: -1, iou: 0 };
  const cx = sx / count;
  const cy = sy / count;
  for (let k = 0; k < 3; k++) mean[k]! /= count;
  let colour = 0;
  let best = Number.POSITIVE_INFINITY;
  COLOUR_NAMES.forEach((name, j) => {
    const p = PALETTE[name];
    const d = (p[0] - mean[0]!) ** 2 + (p[1] - mean[1]!) ** 2 + (p[2] - mean[2]!) ** 2;
    if (d < best) {
      best = d;
      colour = j;
    }
  });
  let shape = 0;
  let iou = -1;
  for (let s = 0; s < SHAPE_NAMES.length; s++)
    for (const r of [4.5, 5, 5.5, 6, 6.5, 7])
      for (const oy of [-1, 0, 1]) {
        // the triangle's centroid sits below its box centre
        const m = mask(s, cx, cy + oy + (s === 2 ? -r * 0.2 : 0), r);
        let inter = 0;
        let uni = 0;
        for (let i = 0; i < n; i++) {
          inter += fg[i]! & m[i]!;
          uni += fg[i]! | m[i]!;
        }
        if (inter / uni > iou) {
          iou = inter / uni;
          shape = s;
        }
      }
  const place = cx < 12 ? 0 : cx < 20 ? 1 : 2;
  return { shape, colour, place, iou };
}

/** Fraction of images whose analysis matches the prompt (shape and colour; and place when given). */
export function generationScore(images: Float32Array[], prompts: { shape: number; colour: number; place?: number }[]): number {
  let ok = 0;
  images.forEach((img, i) => {
    const a = analyzeShape(img);
    const p = prompts[i]!;
    if (a.shape === p.shape && a.colour === p.colour && (p.place === undefined || a.place === p.place)) ok++;
  });
  return images.length ? ok / images.length : Number.NaN;
}

/** 4x4 average-pooled RGB (48 dims). */
export function imageFeatures(img: Float32Array): Float64Array {
  const f = new Float64Array(48);
  for (let y = 0; y < IMAGE_SIZE; y++)
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const cell = Math.floor(y / 8) * 4 + Math.floor(x / 8);
      for (let k = 0; k < 3; k++) f[cell * 3 + k]! += img[(y * IMAGE_SIZE + x) * 3 + k]! / 64;
    }
  return f;
}

/** Eigen-decomposition of a symmetric matrix (cyclic Jacobi). Returns eigenvalues and column eigenvectors. */
export function symmetricEigen(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(A);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: Float64Array.from({ length: n }, (_, i) => a[i * n + i]!), vectors: v };
}

function meanCov(xs: Float64Array[], n: number): { mu: Float64Array; cov: Float64Array } {
  const mu = new Float64Array(n);
  for (const x of xs) for (let i = 0; i < n; i++) mu[i]! += x[i]! / xs.length;
  const cov = new Float64Array(n * n);
  for (const x of xs)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) cov[i * n + j]! += ((x[i]! - mu[i]!) * (x[j]! - mu[j]!)) / Math.max(1, xs.length - 1);
  return { mu, cov };
}

/** PSD square root S^{1/2} by eigen-decomposition (negative eigenvalues from round-off clipped to 0). */
function sqrtPsd(S: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(S, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt(Math.max(0, values[k]!));
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j]! += s * vectors[i * n + k]! * vectors[j * n + k]!;
  }
  return out;
}

function matmul(A: Float64Array, B: Float64Array, n: number): Float64Array {
  const C = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) C[i * n + j]! += A[i * n + k]! * B[k * n + j]!;
  return C;
}

/** Frechet distance between Gaussians fit to two feature sets: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2}). */
export function frechetDistance(a: Float64Array[], b: Float64Array[]): number {
  const n = a[0]!.length;
  const A = meanCov(a, n);
  const B = meanCov(b, n);
  let d = 0;
  for (let i = 0; i < n; i++) d += (A.mu[i]! - B.mu[i]!) ** 2;
  const r = sqrtPsd(A.cov, n);
  const mid = sqrtPsd(matmul(matmul(r, B.cov, n), r, n), n);
  for (let i = 0; i < n; i++) d += A.cov[i * n + i]! + B.cov[i * n + i]! - 2 * mid[i * n + i]!;
  return d;
}
