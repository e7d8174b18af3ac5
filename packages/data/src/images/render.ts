/**
 * Rasteriser of the Shapes world. Images are Float32Array HWC RGB in [0, 1], row-major from the top
 * left; pixel (x, y) covers [x, x + 1] x [y, y + 1]. Each object's coverage of a pixel is the
 * fraction of 4 x 4 sub-pixel sample points inside its shape (anti-aliased) or the pixel centre's
 * inside test (hard edges), and objects are composited in order over the background:
 * p <- (1 - a) p + a c.
 */
import type { Rng } from '@mmlm/core';
import type { Scene, ShapeObject } from './scene.js';
import { PALETTE, type ShapeName } from './vocab.js';

/** Inside test in the shape's unit box (u, v in [-1, 1], y down); the definitions of vocab.ts. */
export function insideShape(shape: ShapeName, u: number, v: number): boolean {
  if (u < -1 || u > 1 || v < -1 || v > 1) return false;
  switch (shape) {
    case 'circle':
      return u * u + v * v <= 1;
    case 'square':
      return true;
    case 'triangle':
      return Math.abs(u) <= (v + 1) / 2;
    case 'cross':
      return Math.abs(u) <= 1 / 3 || Math.abs(v) <= 1 / 3;
    case 'ring': {
      const d = u * u + v * v;
      return d <= 1 && d >= 0.25;
    }
  }
}

export interface RenderOptions {
  /** 4 x 4 supersampling (default true). */
  antialias?: boolean;
}

/** Coverage in [0, 1] of each pixel by one object, over its bounding box (clipped to the image). */
export function objectCoverage(
  o: Pick<ShapeObject, 'shape' | 'x' | 'y' | 'radius'>,
  size: number,
  antialias = true,
): { x0: number; y0: number; w: number; h: number; cover: Float32Array } {
  const cx = o.x * size;
  const cy = o.y * size;
  const r = o.radius * size;
  if (!(r > 0)) throw new Error(`objectCoverage: radius must be > 0, got ${o.radius}`);
  const x0 = Math.max(0, Math.floor(cx - r));
  const y0 = Math.max(0, Math.floor(cy - r));
  const x1 = Math.min(size, Math.ceil(cx + r));
  const y1 = Math.min(size, Math.ceil(cy + r));
  const w = Math.max(0, x1 - x0);
  const h = Math.max(0, y1 - y0);
  const cover = new Float32Array(w * h);
  const s = antialias ? 4 : 1;
  const inv = 1 / (s * s);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let n = 0;
      for (let sy = 0; sy < s; sy++)
        for (let sx = 0; sx < s; sx++) {
          const px = x0 + x + (sx + 0.5) / s;
          const py = y0 + y + (sy + 0.5) / s;
          if (insideShape(o.shape, (px - cx) / r, (py - cy) / r)) n++;
        }
      cover[y * w + x] = n * inv;
    }
  return { x0, y0, w, h, cover };
}

/** Renders a scene: [S * S * 3] HWC RGB in [0, 1]. */
export function renderScene(scene: Scene, opts: RenderOptions = {}): Float32Array {
  const S = scene.imageSize;
  const img = new Float32Array(S * S * 3);
  const [br, bg, bb] = scene.background;
  for (let i = 0; i < S * S; i++) {
    img[i * 3] = br;
    img[i * 3 + 1] = bg;
    img[i * 3 + 2] = bb;
  }
  for (const o of scene.objects) {
    const c = PALETTE[o.colour];
    const { x0, y0, w, h, cover } = objectCoverage(o, S, opts.antialias ?? true);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const a = cover[y * w + x]!;
        if (a === 0) continue;
        const p = ((y0 + y) * S + x0 + x) * 3;
        for (let k = 0; k < 3; k++) img[p + k] = (1 - a) * img[p + k]! + a * c[k]!;
      }
  }
  return img;
}

/** Adds Gaussian noise of standard deviation `std` to every value, clipped to [0, 1] (a new array). */
export function addGaussianNoise(img: Float32Array, std: number, rng: Rng): Float32Array {
  if (!(std >= 0)) throw new Error(`addGaussianNoise: std must be >= 0, got ${std}`);
  const out = new Float32Array(img.length);
  for (let i = 0; i < img.length; i++) {
    const v = img[i]! + (std > 0 ? std * rng.normal() : 0);
    out[i] = v < 0 ? 0 : Math.min(v, 1);
  }
  return out;
}

/**
 * Gaussian blur of an HWC image with standard deviation `sigma` pixels (separable kernel truncated
 * at 3 sigma, edges clamped); sigma 0 returns a copy.
 */
export function gaussianBlur(img: Float32Array, width: number, height: number, channels: number, sigma: number): Float32Array {
  if (img.length !== width * height * channels)
    throw new Error(`gaussianBlur: expected ${width * height * channels} values for ${width}x${height}x${channels}, got ${img.length}`);
  if (!(sigma >= 0)) throw new Error(`gaussianBlur: sigma must be >= 0, got ${sigma}`);
  if (sigma === 0) return Float32Array.from(img);
  const R = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float64Array(2 * R + 1);
  let sum = 0;
  for (let i = -R; i <= R; i++) sum += k[i + R] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i]! /= sum;
  const tmp = new Float32Array(img.length);
  const out = new Float32Array(img.length);
  const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let i = -R; i <= R; i++) acc += k[i + R]! * img[(y * width + clamp(x + i, width)) * channels + c]!;
        tmp[(y * width + x) * channels + c] = acc;
      }
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let i = -R; i <= R; i++) acc += k[i + R]! * tmp[(clamp(y + i, height) * width + x) * channels + c]!;
        out[(y * width + x) * channels + c] = acc;
      }
  return out;
}
