/**
 * The experiments' only door to images, captions and image evaluators. LOCAL STAND-IN for the Shapes
 * images of @mmlm/data (its images/ and eval/ image parts were not there when this was written):
 * S x S RGB images of one filled shape on a dark background; captions in the words of the `shapes`
 * text grammar ("there is a red circle on the left"); an analyzer that reads shape, colour and place
 * back from the pixels (nearest palette colour of the foreground, template IoU for the shape,
 * foreground centroid for the place); a GenEval-like generation score (fraction of images whose
 * analysis matches every attribute of the prompt); a caption accuracy (fraction of generated captions
 * naming the right shape, colour and place); and the Frechet distance (Heusel et al. 2017) between
 * Gaussian fits of image features (4 x 4 average-pooled RGB, 48 dims). Replace the bodies with the
 * data package's ShapeAnalyzer / generation score / Frechet distance once they exist.
 */
import { Rng } from '@mmlm/core';

export const SHAPES = ['circle', 'square', 'triangle', 'cross'] as const;
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'white', 'purple'] as const;
export const PLACES = ['on the left', 'in the middle', 'on the right'] as const;
const PALETTE: [number, number, number][] = [
  [0.9, 0.12, 0.1],
  [0.1, 0.75, 0.2],
  [0.15, 0.3, 0.95],
  [0.95, 0.88, 0.1],
  [0.95, 0.95, 0.95],
  [0.6, 0.2, 0.8],
];
const BG = 0.08;

export interface ShapeAttributes {
  shape: number;
  colour: number;
  place: number;
}

export interface ShapeItem extends ShapeAttributes {
  /** [S * S * 3], HWC, pixels in [0, 1]. */
  image: Float32Array;
  caption: string;
}

export interface ShapesData {
  imageSize: number;
  train: ShapeItem[];
  val: ShapeItem[];
}

function inside(shape: number, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 0:
      return dx * dx + dy * dy <= r * r;
    case 1:
      return Math.abs(dx) <= r * 0.8 && Math.abs(dy) <= r * 0.8;
    case 2:
      return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= ((dy + r) / (1.8 * r)) * r;
    default: {
      const w = r * 0.35;
      return (Math.abs(dx) <= w && Math.abs(dy) <= r) || (Math.abs(dy) <= w && Math.abs(dx) <= r);
    }
  }
}

function mask(S: number, shape: number, cx: number, cy: number, r: number): Uint8Array {
  const m = new Uint8Array(S * S);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) m[y * S + x] = inside(shape, x + 0.5 - cx, y + 0.5 - cy, r) ? 1 : 0;
  return m;
}

/** Horizontal centre of each place as a fraction of the width. */
const PLACE_X = [0.25, 0.5, 0.75];

/** Renders one item; the size and the vertical position jitter with the seed. */
export function renderShape(S: number, a: ShapeAttributes, rng: Rng): Float32Array {
  const r = S * (0.17 + 0.04 * rng.uniform());
  const cx = S * (PLACE_X[a.place] as number) + (rng.uniform() - 0.5) * S * 0.06;
  const cy = S * 0.5 + (rng.uniform() - 0.5) * S * 0.2;
  const m = mask(S, a.shape, cx, cy, r);
  const col = PALETTE[a.colour] as [number, number, number];
  const img = new Float32Array(S * S * 3).fill(BG);
  for (let i = 0; i < S * S; i++) if (m[i]) for (let c = 0; c < 3; c++) img[i * 3 + c] = col[c] as number;
  return img;
}

export function captionOf(a: ShapeAttributes): string {
  return `there is a ${COLOURS[a.colour]} ${SHAPES[a.shape]} ${PLACES[a.place]}`;
}

/** Seeded train/val items; attributes uniform over 4 shapes x 6 colours x 3 places. */
export function shapesData(opts: { imageSize: number; train: number; val: number; seed: number }): ShapesData {
  const rng = new Rng(opts.seed);
  const make = (n: number) =>
    Array.from({ length: n }, () => {
      const a = { shape: rng.int(0, SHAPES.length), colour: rng.int(0, COLOURS.length), place: rng.int(0, PLACES.length) };
      return { ...a, image: renderShape(opts.imageSize, a, rng), caption: captionOf(a) };
    });
  return { imageSize: opts.imageSize, train: make(opts.train), val: make(opts.val) };
}

export interface Analysis extends ShapeAttributes {
  /** Fraction of foreground pixels (0: nothing drawn). */
  coverage: number;
}

/** Reads shape, colour and place back from an image [S * S * 3] in [0, 1]. */
export function analyzeImage(img: Float32Array, S: number): Analysis {
  const fg = new Uint8Array(S * S);
  let n = 0;
  let sx = 0;
  let sy = 0;
  const mean = [0, 0, 0];
  for (let i = 0; i < S * S; i++) {
    const d = Math.max(...[0, 1, 2].map((c) => Math.abs((img[i * 3 + c] as number) - BG)));
    if (d > 0.25) {
      fg[i] = 1;
      n++;
      sx += (i % S) + 0.5;
      sy += Math.floor(i / S) + 0.5;
      for (let c = 0; c < 3; c++) mean[c] = (mean[c] as number) + (img[i * 3 + c] as number);
    }
  }
  if (n === 0) return { shape: -1, colour: -1, place: -1, coverage: 0 };
  const cx = sx / n;
  const cy = sy / n;
  const m = mean.map((v) => v / n);
  let colour = 0;
  let best = Number.POSITIVE_INFINITY;
  PALETTE.forEach((p, k) => {
    const d = p.reduce((a, v, c) => a + (v - (m[c] as number)) ** 2, 0);
    if (d < best) [best, colour] = [d, k];
  });
  const place = cx < S / 3 ? 0 : cx < (2 * S) / 3 ? 1 : 2;
  // template IoU over radii; the triangle's centroid sits below its box centre, so search a small window
  let shape = 0;
  let bestIou = -1;
  for (let s = 0; s < SHAPES.length; s++)
    for (const r of [0.15, 0.17, 0.19, 0.21, 0.23].map((f) => f * S))
      for (const dy of [-0.1, 0, 0.1, 0.2].map((f) => f * r)) {
        const t = mask(S, s, cx, cy - dy, r);
        let inter = 0;
        let uni = 0;
        for (let i = 0; i < S * S; i++) {
          inter += t[i]! & fg[i]!;
          uni += t[i]! | fg[i]!;
        }
        const iou = inter / Math.max(1, uni);
        if (iou > bestIou) [bestIou, shape] = [iou, s];
      }
  return { shape, colour, place, coverage: n / (S * S) };
}

export interface Verdict {
  ok: boolean;
  /** "red circle on the left" as read from the pixels. */
  read: string;
}

export function describeAnalysis(a: Analysis): string {
  if (a.coverage === 0) return 'nothing drawn';
  return `${COLOURS[a.colour]} ${SHAPES[a.shape]} ${PLACES[a.place]}`;
}

/** GenEval-like score: the fraction of generated images whose shape, colour and place all match their prompt. */
export function generationScore(images: Float32Array[], prompts: ShapeAttributes[], S: number): { score: number; verdicts: Verdict[] } {
  const verdicts = images.map((img, i) => {
    const a = analyzeImage(img, S);
    const p = prompts[i] as ShapeAttributes;
    return { ok: a.shape === p.shape && a.colour === p.colour && a.place === p.place, read: describeAnalysis(a) };
  });
  return { score: verdicts.filter((v) => v.ok).length / Math.max(1, verdicts.length), verdicts };
}

/** Shape, colour and place named in a caption (-1 when absent). */
export function parseCaption(text: string): ShapeAttributes {
  const t = ` ${text.toLowerCase().replace(/\s+/g, ' ')} `;
  const find = (names: readonly string[]) => names.findIndex((n) => t.includes(` ${n} `) || t.includes(` ${n}.`));
  return { shape: find(SHAPES), colour: find(COLOURS), place: find(PLACES) };
}

/** Fraction of captions naming the right shape, colour and place. */
export function captionAccuracy(captions: string[], truth: ShapeAttributes[]): number {
  let ok = 0;
  captions.forEach((c, i) => {
    const p = parseCaption(c);
    const t = truth[i] as ShapeAttributes;
    if (p.shape === t.shape && p.colour === t.colour && p.place === t.place) ok++;
  });
  return ok / Math.max(1, captions.length);
}

/** 4 x 4 average-pooled RGB features (48 dims) of an S x S image. */
export function imageFeatures(img: Float32Array, S: number): Float64Array {
  const f = new Float64Array(48);
  const cell = S / 4;
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const k = (Math.floor(y / cell) * 4 + Math.floor(x / cell)) * 3;
      for (let c = 0; c < 3; c++) f[k + c] = (f[k + c] as number) + (img[(y * S + x) * 3 + c] as number) / (cell * cell);
    }
  return f;
}

/** Frechet distance between Gaussian fits of two feature sets: |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). */
export function frechetDistance(a: Float64Array[], b: Float64Array[]): number {
  const [m1, s1] = gaussian(a);
  const [m2, s2] = gaussian(b);
  const d = m1.length;
  let dm = 0;
  for (let i = 0; i < d; i++) dm += ((m1[i] as number) - (m2[i] as number)) ** 2;
  // tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))
  const r1 = sqrtSym(s1, d);
  const inner = matMul(matMul(r1, s2, d), r1, d);
  const ev = jacobiEigenvalues(inner, d);
  let tr = 0;
  for (let i = 0; i < d; i++) tr += (s1[i * d + i] as number) + (s2[i * d + i] as number);
  return dm + tr - 2 * ev.reduce((acc, v) => acc + Math.sqrt(Math.max(0, v)), 0);
}

/** Frechet distance between two sets of S x S images in [0, 1]. */
export function imageFrechetDistance(real: Float32Array[], gen: Float32Array[], S: number): number {
  return frechetDistance(
    real.map((x) => imageFeatures(x, S)),
    gen.map((x) => imageFeatures(x, S)),
  );
}

function gaussian(xs: Float64Array[]): [Float64Array, Float64Array] {
  const n = xs.length;
  const d = (xs[0] as Float64Array).length;
  if (n < 2) throw new Error(`frechetDistance: need at least 2 samples per set, got ${n}`);
  const mu = new Float64Array(d);
  for (const x of xs) for (let i = 0; i < d; i++) mu[i] = (mu[i] as number) + (x[i] as number) / n;
  const cov = new Float64Array(d * d);
  for (const x of xs)
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++)
        cov[i * d + j] =
          (cov[i * d + j] as number) + (((x[i] as number) - (mu[i] as number)) * ((x[j] as number) - (mu[j] as number))) / (n - 1);
  return [mu, cov];
}

function matMul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let k = 0; k < d; k++) {
      const v = a[i * d + k] as number;
      if (v === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] = (out[i * d + j] as number) + v * (b[k * d + j] as number);
    }
  return out;
}

/** Symmetric PSD square root via Jacobi eigenvectors. */
function sqrtSym(a: Float64Array, d: number): Float64Array {
  const { values, vectors } = jacobi(a, d);
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const s = Math.sqrt(Math.max(0, values[k] as number));
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++)
        out[i * d + j] = (out[i * d + j] as number) + s * (vectors[i * d + k] as number) * (vectors[j * d + k] as number);
  }
  return out;
}

function jacobiEigenvalues(a: Float64Array, d: number): Float64Array {
  // symmetrise against round-off
  const s = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) s[i * d + j] = ((a[i * d + j] as number) + (a[j * d + i] as number)) / 2;
  return jacobi(s, d).values;
}

/** Cyclic Jacobi eigen-decomposition of a symmetric matrix (row-major d x d). */
export function jacobi(a0: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(a0);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += (a[p * d + q] as number) ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < d; p++)
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q] as number;
        if (Math.abs(apq) < 1e-300) continue;
        const app = a[p * d + p] as number;
        const aqq = a[q * d + q] as number;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p] as number;
          const akq = a[k * d + q] as number;
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k] as number;
          const aqk = a[q * d + k] as number;
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p] as number;
          const vkq = v[k * d + q] as number;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = a[i * d + i] as number;
  return { values, vectors: v };
}
