/**
 * Short-time Fourier transform magnitudes (Allen & Rabiner 1977) with a periodic Hann window, and
 * spectrogram PNGs for reports: magnitude in dB relative to the loudest bin, clipped to a range
 * (80 dB by default), time left to right, frequency bottom to top, greyscale or a heat colour map.
 */
import { fs, nodeOnly } from '#platform';
import { fft, isPowerOfTwo } from './fft.js';
import { encodeRgbaPng } from './png-format.js';

export interface StftOptions {
  /** Window length in samples, a power of two (default 512). */
  frameSize?: number;
  /** Hop between frames in samples (default frameSize / 4). */
  hop?: number;
}

export interface Stft {
  /** |X| per frame and bin, row-major [frames, bins]. */
  magnitudes: Float32Array;
  frames: number;
  /** frameSize / 2 + 1. */
  bins: number;
  frameSize: number;
  hop: number;
}

/** STFT magnitudes; frames start at 0, hop, 2 hop, ... and the tail is zero-padded to a whole frame. */
export function stft(samples: ArrayLike<number>, opts: StftOptions = {}): Stft {
  const N = opts.frameSize ?? 512;
  if (!isPowerOfTwo(N) || N < 2) throw new Error(`stft: frameSize must be a power of two >= 2, got ${N}`);
  const hop = opts.hop ?? N / 4;
  if (!Number.isInteger(hop) || hop < 1) throw new Error(`stft: hop must be an integer >= 1, got ${hop}`);
  if (samples.length === 0) throw new Error('stft: samples are empty');
  const frames = 1 + Math.max(0, Math.ceil((samples.length - N) / hop));
  const bins = N / 2 + 1;
  const win = new Float64Array(N);
  for (let k = 0; k < N; k++) win[k] = 0.5 - 0.5 * Math.cos((2 * Math.PI * k) / N);
  const magnitudes = new Float32Array(frames * bins);
  const re = new Float64Array(N);
  const im = new Float64Array(N);
  for (let f = 0; f < frames; f++) {
    const start = f * hop;
    for (let k = 0; k < N; k++) {
      const x = start + k < samples.length ? samples[start + k]! : 0;
      re[k] = x * win[k]!;
      im[k] = 0;
    }
    fft(re, im);
    for (let b = 0; b < bins; b++) magnitudes[f * bins + b] = Math.hypot(re[b]!, im[b]!);
  }
  return { magnitudes, frames, bins, frameSize: N, hop };
}

export interface SpectrogramPngOptions extends StftOptions {
  sampleRate?: number;
  /** Dynamic range shown, in dB below the loudest bin (default 80). */
  dbRange?: number;
  /** Highest frequency drawn, in Hz (default: Nyquist; needs sampleRate). */
  maxFreqHz?: number;
  /** 'grey' (default) or 'heat' (black, purple, red, orange, yellow, white). */
  colormap?: 'grey' | 'heat';
}

const HEAT: [number, number, number, number][] = [
  [0, 0, 0, 0],
  [0.25, 70, 10, 110],
  [0.5, 190, 30, 50],
  [0.7, 240, 120, 20],
  [0.88, 250, 220, 60],
  [1, 255, 255, 255],
];

function heat(v: number): [number, number, number] {
  for (let i = 1; i < HEAT.length; i++) {
    const [p1, r1, g1, b1] = HEAT[i]!;
    if (v <= p1) {
      const [p0, r0, g0, b0] = HEAT[i - 1]!;
      const t = (v - p0) / (p1 - p0);
      return [r0 + t * (r1 - r0), g0 + t * (g1 - g0), b0 + t * (b1 - b0)];
    }
  }
  return [255, 255, 255];
}

/** The spectrogram as an encoded PNG (width = frames, height = bins up to maxFreqHz). */
export function encodeSpectrogramPng(
  samples: ArrayLike<number>,
  opts: SpectrogramPngOptions = {},
): { png: Uint8Array; width: number; height: number } {
  const range = opts.dbRange ?? 80;
  if (!(range > 0)) throw new Error(`encodeSpectrogramPng: dbRange must be > 0, got ${range}`);
  const s = stft(samples, opts);
  let height = s.bins;
  if (opts.maxFreqHz !== undefined) {
    if (!opts.sampleRate) throw new Error('encodeSpectrogramPng: maxFreqHz needs sampleRate');
    if (!(opts.maxFreqHz > 0)) throw new Error(`encodeSpectrogramPng: maxFreqHz must be > 0, got ${opts.maxFreqHz}`);
    height = Math.min(s.bins, Math.floor((opts.maxFreqHz / opts.sampleRate) * s.frameSize) + 1);
  }
  let peak = 0;
  for (const m of s.magnitudes) peak = Math.max(peak, m);
  const data = new Uint8Array(s.frames * height * 4);
  for (let f = 0; f < s.frames; f++)
    for (let b = 0; b < height; b++) {
      const m = s.magnitudes[f * s.bins + b]!;
      const db = peak > 0 && m > 0 ? 20 * Math.log10(m / peak) : -range;
      const v = Math.min(1, Math.max(0, (db + range) / range));
      const [r, g, bl] = opts.colormap === 'heat' ? heat(v) : [255 * v, 255 * v, 255 * v];
      const o = ((height - 1 - b) * s.frames + f) * 4;
      data[o] = Math.round(r);
      data[o + 1] = Math.round(g);
      data[o + 2] = Math.round(bl);
      data[o + 3] = 255;
    }
  return { png: encodeRgbaPng(data, s.frames, height), width: s.frames, height };
}

/** Writes the spectrogram PNG to `path`; returns its size. Node only. */
export function writeSpectrogramPng(
  path: string,
  samples: ArrayLike<number>,
  opts: SpectrogramPngOptions = {},
): { width: number; height: number } {
  nodeOnly('writeSpectrogramPng');
  const { png, width, height } = encodeSpectrogramPng(samples, opts);
  fs.writeFileSync(path, png);
  return { width, height };
}
