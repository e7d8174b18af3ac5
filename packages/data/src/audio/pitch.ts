/**
 * Frame-wise pitch tracking with YIN (de Cheveigné & Kawahara 2002, "YIN, a fundamental frequency
 * estimator for speech and music", JASA 111(4)): difference function (eq. 6), cumulative mean
 * normalised difference (eq. 8), absolute threshold (step 4) and parabolic interpolation (step 5),
 * run on the signal low-passed and decimated to about 8 kHz (pitch needs no more bandwidth, and
 * the difference function costs window x lags per frame). Each frame also gets its energy in dB.
 */

export interface PitchTrackOptions {
  sampleRate: number;
  /** Lowest and highest pitch searched, in Hz (default 55 and 450). */
  minHz?: number;
  maxHz?: number;
  /** Frame hop in seconds (default 0.01). */
  hopSeconds?: number;
  /** Analysis window in seconds (default 0.025). */
  windowSeconds?: number;
  /** YIN absolute threshold on the normalised difference (default 0.15). */
  threshold?: number;
}

export interface PitchTrack {
  /** Estimated pitch per frame in Hz (also for unvoiced frames; check `aperiodicity`). */
  f0: Float32Array;
  /** YIN normalised difference at the chosen lag: near 0 for periodic frames, near 1 for noise. */
  aperiodicity: Float32Array;
  /** Frame energy (mean square) in dB. */
  energyDb: Float32Array;
  /** Centre of each frame, in samples of the input signal. */
  centers: Float32Array;
  hopSamples: number;
  sampleRate: number;
}

/** Low-pass (windowed sinc, Blackman window, 63 taps) at 0.45 of the new rate, then keep every `factor`-th sample. */
export function decimate(x: ArrayLike<number>, factor: number): Float32Array {
  if (factor === 1) return Float32Array.from(x);
  const taps = 63;
  const half = (taps - 1) / 2;
  const fc = 0.45 / factor; // cycles per input sample
  const h = new Float64Array(taps);
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const m = i - half;
    const sinc = m === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * m) / (Math.PI * m);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (taps - 1));
    h[i] = sinc * w;
    sum += h[i]!;
  }
  for (let i = 0; i < taps; i++) h[i]! /= sum;
  const n = Math.floor(x.length / factor);
  const y = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const c = j * factor;
    let acc = 0;
    for (let i = 0; i < taps; i++) {
      const k = c + i - half;
      if (k >= 0 && k < x.length) acc += h[i]! * x[k]!;
    }
    y[j] = acc;
  }
  return y;
}

/** YIN pitch track of `samples` (mono). */
export function trackPitch(samples: ArrayLike<number>, opts: PitchTrackOptions): PitchTrack {
  const sr = opts.sampleRate;
  if (!(Number.isInteger(sr) && sr >= 4000)) throw new Error(`trackPitch: sampleRate must be an integer >= 4000, got ${sr}`);
  const minHz = opts.minHz ?? 55;
  const maxHz = opts.maxHz ?? 450;
  if (!(minHz > 0 && maxHz > minHz)) throw new Error(`trackPitch: need 0 < minHz < maxHz, got ${minHz} and ${maxHz}`);
  const threshold = opts.threshold ?? 0.15;
  const factor = Math.max(1, Math.floor(sr / 8000));
  const x = decimate(samples, factor);
  const r = sr / factor;
  const W = Math.round((opts.windowSeconds ?? 0.025) * r);
  const hopIn = Math.round((opts.hopSeconds ?? 0.01) * sr);
  const hop = hopIn / factor;
  const tauMin = Math.max(2, Math.floor(r / maxHz));
  const tauMax = Math.ceil(r / minHz);
  if (W < tauMax)
    throw new Error(`trackPitch: window (${W} samples) must cover the longest period (${tauMax} samples); raise windowSeconds or minHz`);
  const nFrames = Math.max(0, Math.floor((x.length - W - tauMax) / hop) + 1);
  const f0 = new Float32Array(nFrames);
  const aperiodicity = new Float32Array(nFrames);
  const energyDb = new Float32Array(nFrames);
  const centers = new Float32Array(nFrames);
  const d = new Float64Array(tauMax + 2);
  d[0] = 1;
  for (let f = 0; f < nFrames; f++) {
    const t0 = Math.round(f * hop);
    let e = 0;
    for (let j = 0; j < W; j++) e += x[t0 + j]! * x[t0 + j]!;
    energyDb[f] = 10 * Math.log10(e / W + 1e-12);
    centers[f] = (t0 + W / 2) * factor;
    if (e / W < 1e-10) {
      // digital silence (below -100 dB): no period to find
      f0[f] = 0;
      aperiodicity[f] = 1;
      continue;
    }
    // eq. 6: d(tau) = sum_j (x_j - x_{j+tau})^2; eq. 8: d'(tau) = d(tau) / ((1/tau) sum_{k<=tau} d(k)).
    // Lags are computed in order and the search stops at the first local minimum below the threshold.
    let running = 0;
    let best = -1;
    let computed = 0;
    for (let tau = 1; tau <= tauMax + 1; tau++) {
      let s = 0;
      for (let j = 0; j < W; j++) {
        const diff = x[t0 + j]! - x[t0 + j + tau]!;
        s += diff * diff;
      }
      running += s;
      d[tau] = running > 0 ? (s * tau) / running : 1;
      computed = tau;
      if (tau - 1 >= tauMin && d[tau - 1]! < threshold && d[tau]! >= d[tau - 1]!) {
        best = tau - 1;
        break;
      }
    }
    // Within the computed lags, the threshold is raised to (minimum + 0.1) so that the shortest
    // period among the near-best lags wins: with noise, the valley at twice the period can be
    // deeper than the true one (an octave-down slip).
    const last = best < 0 ? tauMax : best;
    let lowest = Number.POSITIVE_INFINITY;
    for (let tau = tauMin; tau <= last; tau++) lowest = Math.min(lowest, d[tau]!);
    const thr = Math.max(threshold, lowest + 0.1);
    for (let tau = tauMin; tau <= last; tau++) {
      if (d[tau]! < thr) {
        while (tau + 1 <= last && d[tau + 1]! < d[tau]!) tau++;
        best = tau;
        break;
      }
    }
    if (best < 0) best = tauMin;
    if (best + 1 > computed) best = computed - 1;
    const a = d[best - 1]!;
    const b = d[best]!;
    const c = d[best + 1]!;
    const den = a - 2 * b + c;
    const shift = den > 0 ? Math.max(-1, Math.min(1, (0.5 * (a - c)) / den)) : 0;
    f0[f] = r / (best + shift);
    aperiodicity[f] = Math.max(0, b);
  }
  return { f0, aperiodicity, energyDb, centers, hopSamples: hopIn, sampleRate: sr };
}
