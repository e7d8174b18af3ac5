/**
 * ShapeAnalyzer: pixels -> objects (shape, colour, size, grid cell, continuous centre), the
 * measuring instrument for generated Shapes images.
 *
 * 1. Background: the per-channel median of the border pixels; pixel noise: a robust standard
 *    deviation of the border around it. Noisy images (estimated std > 0.04) are first smoothed by
 *    a 3 x 3 median filter per channel.
 * 2. Colour quantisation against the background: a pixel p is explained as a mix of the background
 *    b and a palette colour c_k, p ~ b + a (c_k - b). For each k, a_k is the least-squares fraction
 *    and e_k the residual; the pixel's label is the k of least residual and its coverage a = a_k.
 *    Pixels with a >= 1/2 are foreground. This keeps anti-aliased and blurred edges (partial
 *    mixtures with the background) on their object's colour.
 * 3. Objects: 4-connected components of foreground pixels; components smaller than `minArea` are
 *    merged into a touching component or dropped; a component holding two colours with at least a
 *    third of its pixels each is split by colour (touching objects of different colours).
 * 4. Colour: the coverage-weighted mean of the object's foreground pixels, labelled as in step 2.
 * 5. Shape, from the soft mask (coverage of the object's colour over its pixels and a 2-pixel
 *    margin, leaving out margin pixels that lean to another colour) by geometric features of its
 *    moments:
 *      hole   coverage at the centroid (a ring's centroid is in its hole: ~0; others ~1),
 *      skew   skewness of the mass along y (the upward triangle: -0.57; symmetric shapes: 0),
 *      arms   (m40 - 6 m22 + m04) / (m40 + 2 m22 + m04), the 4-fold angular moment: mass on the
 *             axes (cross arms) > 0, on the diagonals (square corners) < 0, circle 0.
 *    Rules: hole < 0.5 -> ring; skew < -0.3 -> triangle; arms < -0.2 -> square; arms > 0.2 -> cross;
 *    else circle. Thresholds sit between the shapes' ranges on clean anti-aliased renders. When a
 *    feature falls in the band around a threshold where clean anti-aliased renders never fall (blur,
 *    noise), or the object has hard edges (no anti-aliasing: a small shape's moments then depend on
 *    how the pixel grid cuts it), the shape is instead the one whose rendered template (anti-aliased
 *    or hard, as the object's edges are) fits the coverage best in L1 over a coarse-to-fine search of
 *    radii and sub-pixel centres (analysis by synthesis), and the fit also gives the radius and centre. Exact ties (hard-edged
 *    small circles and squares can be pixel-identical) go to the feature rules' shape.
 * 6. Size and centre: radius r = sqrt(area / k) with the shape's area constant k (circle pi, square 4,
 *    triangle 2, cross 20/9, ring 3 pi / 4), so anti-aliasing and blur (which conserve mass) do not
 *    bias it; size 'large' when r exceeds the layout's threshold. The centre is the centroid, moved
 *    up by r / 3 for the triangle (its centroid sits a third of the way below its box centre).
 */
import { defaultGridSize, type ShapesConfig, shapesLayout } from '../images/config.js';
import { objectCoverage } from '../images/render.js';
import {
  COLOUR_NAMES,
  type ColourName,
  cellName,
  type GridSize,
  PALETTE,
  type Rgb,
  SHAPE_NAMES,
  type ShapeName,
  type SizeName,
} from '../images/vocab.js';

export interface ShapeFeatures {
  /** Soft area (px^2). */
  area: number;
  /** Coverage at the centroid. */
  hole: number;
  /** Skewness of the mass along y. */
  skew: number;
  /** 4-fold angular moment (axes > 0, diagonals < 0). */
  arms: number;
}

export interface DetectedObject {
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
  cell: string;
  /** Centre as fractions of the image side (x right, y down). */
  x: number;
  y: number;
  /** Half the side of the bounding box, as a fraction of the image side. */
  radius: number;
  /** Number of foreground pixels. */
  pixels: number;
  features: ShapeFeatures;
}

export interface ShapeAnalysis {
  background: Rgb;
  /** Robust estimate of the pixel noise std on the border. */
  noiseStd: number;
  objects: DetectedObject[];
}

export interface ShapeAnalyzerOptions {
  imageSize?: number;
  gridSize?: GridSize;
  gapPx?: number;
  /** Radius (px) separating small from large (default: the layout's threshold). */
  sizeThresholdPx?: number;
  /** Smallest object in pixels (default 4 at 32 px, scaled with the area). */
  minArea?: number;
  /** Median-filter first: 'auto' (when the estimated noise std > 0.04), true or false. */
  denoise?: 'auto' | boolean;
  /** Palette colours to recognise (default all eight). */
  colours?: readonly ColourName[];
  /** When to fit rendered templates: only for ambiguous features (default), always, or never. */
  templates?: 'ambiguous' | 'always' | 'never';
}

const AREA_CONSTANT: Readonly<Record<ShapeName, number>> = {
  circle: Math.PI,
  square: 4,
  triangle: 2,
  cross: 20 / 9,
  ring: (3 * Math.PI) / 4,
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function median3x3(img: Float32Array, S: number): Float32Array {
  const out = new Float32Array(img.length);
  const win = new Float32Array(9);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++)
      for (let c = 0; c < 3; c++) {
        let n = 0;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const yy = Math.min(S - 1, Math.max(0, y + dy));
            const xx = Math.min(S - 1, Math.max(0, x + dx));
            win[n++] = img[(yy * S + xx) * 3 + c]!;
          }
        win.sort();
        out[(y * S + x) * 3 + c] = win[4]!;
      }
  return out;
}

interface PixelContext {
  img: Float32Array;
  bg: Rgb;
  dirs: number[][];
  norms: number[];
  /** Palette index of foreground pixels, -1 for background. */
  label: Int16Array;
  /** Palette index of least residual, every pixel. */
  nearest: Int16Array;
  /** Coverage by the nearest palette colour. */
  alpha: Float32Array;
  comps: number[][];
  S: number;
}

/** The shape of the feature rules (see the file comment). */
export function featureShape(hole: number, skew: number, arms: number): ShapeName {
  if (hole < 0.5) return 'ring';
  if (skew < -0.3) return 'triangle';
  if (arms < -0.2) return 'square';
  if (arms > 0.2) return 'cross';
  return 'circle';
}

/** True when a feature lies in the band around a rule's threshold where clean renders never fall. */
export function ambiguous(hole: number, skew: number, arms: number): boolean {
  return (hole > 0.2 && hole < 0.8) || (skew > -0.42 && skew < -0.2) || (arms > -0.32 && arms < -0.1) || (arms > 0.1 && arms < 0.35);
}

/**
 * Least L1 distance between the observed coverage and the shape's rendered coverage, searched
 * coarse to fine: radii (area estimate x 0.85-1.15 in 5% steps) and centre offsets (+-0.5 px in
 * quarter pixels), then +-2.5% and +-1/8 px around the best in steps of a quarter of that. The
 * radius and centre returned average every fit of the fine stage within 1e-6 of the least error
 * (hard edges leave a range of exact fits).
 */
function fitTemplate(
  shape: ShapeName,
  obs: Float32Array,
  obsTotal: number,
  A: number,
  mx: number,
  my: number,
  S: number,
  hard: boolean,
): { err: number; r: number; cx: number; cy: number } {
  const errAt = (r: number, cx: number, cy: number): number => {
    const t = objectCoverage({ shape, x: cx / S, y: cy / S, radius: r / S }, S, !hard);
    let err = obsTotal;
    for (let y = 0; y < t.h; y++) {
      const row = (t.y0 + y) * S + t.x0;
      for (let x = 0; x < t.w; x++) {
        const o = obs[row + x]!;
        err += Math.abs(o - t.cover[y * t.w + x]!) - o;
      }
    }
    return err;
  };
  const r0 = Math.sqrt(Math.max(1e-6, A) / AREA_CONSTANT[shape]);
  const centre = (r: number) => (shape === 'triangle' ? my - r / 3 : my);
  let best = { err: Number.POSITIVE_INFINITY, r: r0, cx: mx, cy: centre(r0) };
  for (let kr = -3; kr <= 3; kr++) {
    const r = r0 * (1 + 0.05 * kr);
    for (let oy = -2; oy <= 2; oy++)
      for (let ox = -2; ox <= 2; ox++) {
        const cx = mx + ox / 4;
        const cy = centre(r) + oy / 4;
        const err = errAt(r, cx, cy);
        if (err < best.err) best = { err, r, cx, cy };
      }
  }
  const fine: { err: number; r: number; cx: number; cy: number }[] = [];
  for (let kr = -2; kr <= 2; kr++)
    for (let oy = -2; oy <= 2; oy++)
      for (let ox = -2; ox <= 2; ox++) {
        const r = best.r * (1 + 0.0125 * kr);
        const cx = best.cx + ox / 16;
        const cy = best.cy + (centre(r) - centre(best.r)) + oy / 16;
        fine.push({ err: errAt(r, cx, cy), r, cx, cy });
      }
  const least = Math.min(...fine.map((f) => f.err));
  const exact = fine.filter((f) => f.err <= least + 1e-6);
  const mean = (k: 'r' | 'cx' | 'cy') => exact.reduce((a, f) => a + f[k], 0) / exact.length;
  return { err: least, r: mean('r'), cx: mean('cx'), cy: mean('cy') };
}

export class ShapeAnalyzer {
  readonly imageSize: number;
  readonly gridSize: GridSize;
  readonly sizeThresholdPx: number;
  readonly minArea: number;
  readonly denoise: 'auto' | boolean;
  readonly colours: readonly ColourName[];
  readonly templates: 'ambiguous' | 'always' | 'never';

  /** Takes the dataset's config (or the parts of it that matter) so sizes and cells match the generator. */
  constructor(options: ShapeAnalyzerOptions | Partial<ShapesConfig> = {}) {
    const o = options as ShapeAnalyzerOptions;
    this.imageSize = o.imageSize ?? 32;
    if (!Number.isInteger(this.imageSize) || this.imageSize < 8)
      throw new Error(`ShapeAnalyzer: imageSize must be an integer >= 8, got ${JSON.stringify(o.imageSize)}`);
    const gap = o.gapPx ?? 2;
    this.gridSize = o.gridSize ?? defaultGridSize(this.imageSize, gap);
    if (![1, 2, 3].includes(this.gridSize)) throw new Error(`ShapeAnalyzer: gridSize must be 1, 2 or 3, got ${JSON.stringify(o.gridSize)}`);
    this.sizeThresholdPx = o.sizeThresholdPx ?? shapesLayout(this.imageSize, this.gridSize, gap).sizeThresholdPx;
    this.minArea = o.minArea ?? Math.max(3, 4 * (this.imageSize / 32) ** 2);
    this.denoise = o.denoise ?? 'auto';
    this.colours = o.colours ?? COLOUR_NAMES;
    this.templates = o.templates ?? 'ambiguous';
  }

  /** Analyses one image [S * S * 3] HWC RGB in [0, 1]. */
  analyze(image: Float32Array): ShapeAnalysis {
    const S = this.imageSize;
    if (image.length !== S * S * 3)
      throw new Error(`ShapeAnalyzer.analyze: expected ${S * S * 3} values for a ${S}x${S} RGB image, got ${image.length}`);
    const border: number[] = [];
    for (let i = 0; i < S; i++) border.push(i, (S - 1) * S + i, i * S, i * S + S - 1);
    const bg: Rgb = [0, 1, 2].map((c) => median(border.map((p) => image[p * 3 + c]!))) as unknown as Rgb;
    const dev = border.flatMap((p) => [0, 1, 2].map((c) => (image[p * 3 + c]! - bg[c]!) ** 2)).sort((a, b) => a - b);
    const kept = dev.slice(0, Math.floor(dev.length * 0.9));
    const noiseStd = Math.sqrt(kept.reduce((a, b) => a + b, 0) / Math.max(1, kept.length));
    const smooth = this.denoise === true || (this.denoise === 'auto' && noiseStd > 0.04);
    const img = smooth ? median3x3(image, S) : image;

    const K = this.colours.length;
    const dirs = this.colours.map((c) => [PALETTE[c][0] - bg[0], PALETTE[c][1] - bg[1], PALETTE[c][2] - bg[2]]);
    const norms = dirs.map((d) => d[0]! ** 2 + d[1]! ** 2 + d[2]! ** 2);
    const label = new Int16Array(S * S).fill(-1);
    const nearest = new Int16Array(S * S);
    const alpha = new Float32Array(S * S);
    for (let i = 0; i < S * S; i++) {
      const p0 = img[i * 3]! - bg[0];
      const p1 = img[i * 3 + 1]! - bg[1];
      const p2 = img[i * 3 + 2]! - bg[2];
      let best = Number.POSITIVE_INFINITY;
      let bk = 0;
      let ba = 0;
      for (let k = 0; k < K; k++) {
        const d = dirs[k]!;
        if (norms[k]! < 1e-6) continue;
        const a = Math.min(1, Math.max(0, (p0 * d[0]! + p1 * d[1]! + p2 * d[2]!) / norms[k]!));
        const e = (p0 - a * d[0]!) ** 2 + (p1 - a * d[1]!) ** 2 + (p2 - a * d[2]!) ** 2;
        if (e < best) {
          best = e;
          bk = k;
          ba = a;
        }
      }
      alpha[i] = ba;
      nearest[i] = bk;
      if (ba >= 0.5) label[i] = bk;
    }

    const comps = this.components(label, S);
    const objects: DetectedObject[] = [];
    const ctx = { img, bg, dirs, norms, label, nearest, alpha, comps, S };
    for (const pixels of comps) objects.push(this.describe(pixels, ctx));
    return { background: bg, noiseStd, objects };
  }

  /** 4-connected foreground components, small ones merged or dropped, two-colour ones split. */
  private components(label: Int16Array, S: number): number[][] {
    const comp = new Int32Array(S * S).fill(-1);
    let comps: number[][] = [];
    for (let s = 0; s < S * S; s++) {
      if (label[s]! < 0 || comp[s]! >= 0) continue;
      const id = comps.length;
      const stack = [s];
      const px: number[] = [];
      comp[s] = id;
      while (stack.length) {
        const p = stack.pop()!;
        px.push(p);
        const x = p % S;
        const y = (p - x) / S;
        const nb = [x > 0 ? p - 1 : -1, x < S - 1 ? p + 1 : -1, y > 0 ? p - S : -1, y < S - 1 ? p + S : -1];
        for (const q of nb)
          if (q >= 0 && label[q]! >= 0 && comp[q]! < 0) {
            comp[q] = id;
            stack.push(q);
          }
      }
      comps.push(px);
    }
    const big = comps.map((c) => c.length >= this.minArea);
    for (let id = 0; id < comps.length; id++) {
      if (big[id]) continue;
      let target = -1;
      for (const p of comps[id]!) {
        const x = p % S;
        const y = (p - x) / S;
        for (let dy = -1; dy <= 1 && target < 0; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            const yy = y + dy;
            if (xx < 0 || yy < 0 || xx >= S || yy >= S) continue;
            const c = comp[yy * S + xx]!;
            if (c >= 0 && c !== id && big[c]) {
              target = c;
              break;
            }
          }
        if (target >= 0) break;
      }
      if (target >= 0) {
        for (const p of comps[id]!) comp[p] = target;
        comps[target]!.push(...comps[id]!);
      }
      comps[id] = [];
    }
    comps = comps.filter((c, id) => big[id] && c.length > 0);
    const out: number[][] = [];
    for (const c of comps) {
      const byLabel = new Map<number, number[]>();
      for (const p of c) {
        const l = label[p]!;
        if (l < 0) continue;
        if (!byLabel.has(l)) byLabel.set(l, []);
        byLabel.get(l)!.push(p);
      }
      const parts = [...byLabel.values()].filter((ps) => ps.length >= Math.max(this.minArea, c.length / 3));
      if (parts.length >= 2) {
        const members = new Set(parts.flat());
        const rest = c.filter((p) => !members.has(p));
        parts.sort((a, b) => b.length - a.length)[0]!.push(...rest);
        out.push(...parts);
      } else out.push(c);
    }
    return out;
  }

  private describe(pixels: number[], ctx: PixelContext): DetectedObject {
    const { img, bg, dirs, norms, label, nearest, alpha, comps, S } = ctx;
    let wsum = 0;
    const mean = [0, 0, 0];
    for (const p of pixels) {
      const l = label[p]!;
      const a = l >= 0 ? 1 : 0;
      wsum += a;
      for (let c = 0; c < 3; c++) mean[c]! += a * img[p * 3 + c]!;
    }
    for (let c = 0; c < 3; c++) mean[c]! /= Math.max(1e-9, wsum);
    let colourK = 0;
    let bestE = Number.POSITIVE_INFINITY;
    const m = [mean[0]! - bg[0], mean[1]! - bg[1], mean[2]! - bg[2]];
    for (let k = 0; k < dirs.length; k++) {
      const d = dirs[k]!;
      if (norms[k]! < 1e-6) continue;
      const a = Math.min(1, Math.max(0, (m[0]! * d[0]! + m[1]! * d[1]! + m[2]! * d[2]!) / norms[k]!));
      const e = (m[0]! - a * d[0]!) ** 2 + (m[1]! - a * d[1]!) ** 2 + (m[2]! - a * d[2]!) ** 2;
      if (e < bestE) {
        bestE = e;
        colourK = k;
      }
    }
    const colour = this.colours[colourK]!;
    const d = dirs[colourK]!;
    const n2 = norms[colourK]!;

    const own = new Set(pixels);
    const taken = new Set<number>();
    for (const c of comps) if (c !== pixels) for (const p of c) taken.add(p);
    const region = new Set<number>(pixels);
    for (const p of pixels) {
      const x = p % S;
      const y = (p - x) / S;
      for (let dy = -2; dy <= 2; dy++)
        for (let dx = -2; dx <= 2; dx++) {
          const xx = x + dx;
          const yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= S || yy >= S) continue;
          const q = yy * S + xx;
          if (!taken.has(q) && (nearest[q] === colourK || alpha[q]! < 0.15)) region.add(q);
        }
    }
    const cover = (q: number): number => {
      const a = ((img[q * 3]! - bg[0]) * d[0]! + (img[q * 3 + 1]! - bg[1]) * d[1]! + (img[q * 3 + 2]! - bg[2]) * d[2]!) / n2;
      return own.has(q) ? Math.min(1.5, a) : Math.min(1, Math.max(0, a));
    };
    let A = 0;
    let mx = 0;
    let my = 0;
    const ws: [number, number, number][] = [];
    for (const q of region) {
      const w = cover(q);
      const x = (q % S) + 0.5;
      const y = Math.floor(q / S) + 0.5;
      ws.push([x, y, w]);
      A += w;
      mx += w * x;
      my += w * y;
    }
    mx /= A;
    my /= A;
    let m02 = 0;
    let m03 = 0;
    let m40 = 0;
    let m04 = 0;
    let m22 = 0;
    for (const [x, y, w] of ws) {
      const u = x - mx;
      const v = y - my;
      m02 += w * v * v;
      m03 += w * v * v * v;
      m40 += w * u ** 4;
      m04 += w * v ** 4;
      m22 += w * u * u * v * v;
    }
    m02 /= A;
    m03 /= A;
    m40 /= A;
    m04 /= A;
    m22 /= A;
    const skew = m03 / Math.max(1e-9, m02) ** 1.5;
    const arms = (m40 - 6 * m22 + m04) / Math.max(1e-9, m40 + 2 * m22 + m04);
    const hole = this.sampleCover(mx, my, cover, S);
    let shape = featureShape(hole, skew, arms);
    let r = Math.sqrt(Math.max(0, A) / AREA_CONSTANT[shape]);
    let cx = mx;
    let cy = shape === 'triangle' ? my - r / 3 : my;
    let soft = 0;
    for (const [, , w] of ws) if (w > 0.15 && w < 0.85) soft++;
    const hard = soft < 0.05 * pixels.length;
    if (this.templates === 'always' || (this.templates === 'ambiguous' && (hard || ambiguous(hole, skew, arms)))) {
      const obs = new Float32Array(S * S);
      let obsTotal = 0;
      for (const q of region) {
        const w = Math.min(1, Math.max(0, cover(q)));
        obs[q] = w;
        obsTotal += w;
      }
      const fits = SHAPE_NAMES.map((s) => ({ s, ...fitTemplate(s, obs, obsTotal, A, mx, my, S, hard) }));
      const least = Math.min(...fits.map((f) => f.err));
      const ties = fits.filter((f) => f.err <= least + 1e-6);
      const fit = ties.find((f) => f.s === shape) ?? ties[0]!;
      shape = fit.s;
      r = fit.r;
      cx = fit.cx;
      cy = fit.cy;
    }
    return {
      shape,
      colour,
      size: r > this.sizeThresholdPx ? 'large' : 'small',
      cell: cellName(cx / S, cy / S, this.gridSize),
      x: cx / S,
      y: cy / S,
      radius: r / S,
      pixels: pixels.length,
      features: { area: A, hole, skew, arms },
    };
  }

  /** Bilinear coverage at a point (pixel centres at integer + 0.5). */
  private sampleCover(x: number, y: number, cover: (q: number) => number, S: number): number {
    const fx = x - 0.5;
    const fy = y - 0.5;
    const x0 = Math.floor(fx);
    const y0 = Math.floor(fy);
    const tx = fx - x0;
    const ty = fy - y0;
    let acc = 0;
    for (const [dx, dy, w] of [
      [0, 0, (1 - tx) * (1 - ty)],
      [1, 0, tx * (1 - ty)],
      [0, 1, (1 - tx) * ty],
      [1, 1, tx * ty],
    ] as const) {
      const xx = Math.min(S - 1, Math.max(0, x0 + dx));
      const yy = Math.min(S - 1, Math.max(0, y0 + dy));
      acc += w * Math.min(1, Math.max(0, cover(yy * S + xx)));
    }
    return acc;
  }
}
