/**
 * Tone decoder: waveform -> words, the measuring instrument for generated tone speech.
 *
 * 1. YIN pitch track and frame energy (pitch.ts).
 * 2. Words are runs of loud frames separated by silences (see `voicedSegments`); within a word,
 *    frames whose YIN aperiodicity is high (fast pitch glides, noise) are left out of matching.
 * 3. Each word's pitch (semitones, octave slips removed by a 5-frame median) is compared with every
 *    vocabulary contour, placed at the word's relative time u in [0, 1], after speaker
 *    normalisation: p(u) ~ r + s * contour(u), with r the speaker's base pitch and s its range.
 *    The cost is the mean Huber loss (delta 2 semitones).
 * 4. r and s are shared by the whole utterance and chosen by grid search to minimise the summed
 *    best-word cost (r within 8 semitones of the utterance's median pitch, s in 0.8-1.25; a coarse
 *    grid then a fine one around its best point), so the decoder needs no speaker enrollment; a
 *    known base pitch can be passed instead.
 */
import { type PitchTrack, trackPitch } from './pitch.js';
import { contourAt, TONE_SAMPLE_RATE, TONE_VOCAB, type ToneWord } from './tone.js';

export interface ToneDecodeOptions {
  sampleRate?: number;
  /** The speaker's base pitch in Hz when known; estimated from the utterance otherwise. */
  speakerPitchHz?: number;
  /** The words to recognise (default TONE_VOCAB). */
  vocabulary?: readonly ToneWord[];
  /** Frames with YIN aperiodicity above this are left out of contour matching (default 0.5). */
  maxAperiodicity?: number;
}

export interface ToneSegment {
  /** First and one-past-last sample of the voiced run. */
  start: number;
  end: number;
  word: string;
  /** Mean Huber cost of the chosen word (semitones^2 scale). */
  cost: number;
}

export interface ToneDecodeResult {
  words: string[];
  segments: ToneSegment[];
  /** Estimated (or given) speaker base pitch, Hz. */
  basePitchHz: number;
  /** Estimated speaker range (contour scale). */
  range: number;
}

export interface VoicedSegment {
  /** Frame indices [first, last] of the run (inclusive). */
  first: number;
  last: number;
}

function percentile(values: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

/**
 * Word runs: frames whose 3-frame mean energy exceeds the noise floor (10th percentile of frame
 * energy) by max(2.5 dB, a quarter of the floor-to-peak range), with gaps of up to 2 frames closed
 * and runs shorter than 80 ms dropped. `voiced` marks the frames of the runs whose pitch is usable
 * (YIN aperiodicity below `maxAperiodicity`).
 */
export function voicedSegments(track: PitchTrack, maxAperiodicity = 0.5): { voiced: Uint8Array; segments: VoicedSegment[] } {
  const n = track.f0.length;
  const floor = percentile(track.energyDb, 0.1);
  const peak = percentile(track.energyDb, 0.99);
  const threshold = floor + Math.max(2.5, 0.25 * (peak - floor));
  const loud = new Uint8Array(n);
  for (let f = 0; f < n; f++) {
    let e = 0;
    let k = 0;
    for (let g = Math.max(0, f - 1); g <= Math.min(n - 1, f + 1); g++, k++) e += track.energyDb[g]!;
    loud[f] = e / k > threshold ? 1 : 0;
  }
  const runs: VoicedSegment[] = [];
  for (let f = 0; f < n; f++) {
    if (!loud[f]) continue;
    const prev = runs[runs.length - 1];
    if (prev && f - prev.last <= 3) prev.last = f;
    else runs.push({ first: f, last: f });
  }
  const minFrames = Math.ceil(0.08 / (track.hopSamples / track.sampleRate));
  const segments = runs.filter((r) => r.last - r.first + 1 >= minFrames);
  const voiced = new Uint8Array(n);
  for (const s of segments) for (let f = s.first; f <= s.last; f++) voiced[f] = track.aperiodicity[f]! < maxAperiodicity ? 1 : 0;
  return { voiced, segments };
}

function huber(e: number): number {
  const a = Math.abs(e);
  return a <= 2 ? 0.5 * e * e : 2 * (a - 1);
}

interface SegmentPitch {
  u: Float64Array;
  p: Float64Array;
}

/** Semitone pitch (re 1 Hz) of the voiced frames of a run, with octave slips replaced by the 5-frame median. */
function segmentPitch(track: PitchTrack, voiced: Uint8Array, seg: VoicedSegment): SegmentPitch {
  const idx: number[] = [];
  for (let f = seg.first; f <= seg.last; f++) if (voiced[f]) idx.push(f);
  if (idx.length < 3) for (let f = seg.first; f <= seg.last; f++) if (!voiced[f] && track.f0[f]! > 0) idx.push(f);
  idx.sort((a, b) => a - b);
  const raw = idx.map((f) => 12 * Math.log2(track.f0[f]!));
  const p = raw.map((v, i) => {
    const win = raw.slice(Math.max(0, i - 2), i + 3).sort((a, b) => a - b);
    const med = win[win.length >> 1]!;
    return Math.abs(v - med) > 6 ? med : v;
  });
  const span = Math.max(1, seg.last - seg.first);
  return { u: Float64Array.from(idx, (f) => (f - seg.first) / span), p: Float64Array.from(p) };
}

/** Decodes a tone-speech waveform into words. */
export function decodeTone(samples: ArrayLike<number>, opts: ToneDecodeOptions = {}): ToneDecodeResult {
  const sampleRate = opts.sampleRate ?? TONE_SAMPLE_RATE;
  const vocab = opts.vocabulary ?? TONE_VOCAB;
  if (vocab.length === 0) throw new Error('decodeTone: vocabulary is empty');
  if (opts.speakerPitchHz !== undefined && !(opts.speakerPitchHz > 0))
    throw new Error(`decodeTone: speakerPitchHz must be > 0, got ${opts.speakerPitchHz}`);
  for (let i = 0; i < samples.length; i++)
    if (!Number.isFinite(samples[i]!)) throw new Error(`decodeTone: samples[${i}] is ${samples[i]}, expected a finite number`);
  return decodeToneTrack(trackPitch(samples, { sampleRate }), opts);
}

/** `decodeTone` on an existing pitch track (trackPitch with default options). */
export function decodeToneTrack(track: PitchTrack, opts: ToneDecodeOptions = {}): ToneDecodeResult {
  const vocab = opts.vocabulary ?? TONE_VOCAB;
  if (vocab.length === 0) throw new Error('decodeTone: vocabulary is empty');
  const found = voicedSegments(track, opts.maxAperiodicity);
  const voiced = found.voiced;
  const segments = found.segments.filter((s) => segmentPitch(track, voiced, s).p.length > 0);
  if (segments.length === 0) return { words: [], segments: [], basePitchHz: opts.speakerPitchHz ?? Number.NaN, range: 1 };

  const pitches = segments.map((s) => segmentPitch(track, voiced, s));
  const templates = pitches.map((sp) => vocab.map((w) => Float64Array.from(sp.u, (u) => contourAt(w.contour, u))));
  const all: number[] = pitches.flatMap((sp) => Array.from(sp.p));
  const median = percentile(all, 0.5);
  const fixedR = opts.speakerPitchHz !== undefined ? 12 * Math.log2(opts.speakerPitchHz) : undefined;

  const bestWords = (r: number, s: number): { total: number; choice: number[]; costs: number[] } => {
    let total = 0;
    const choice: number[] = [];
    const costs: number[] = [];
    pitches.forEach((sp, g) => {
      let best = Number.POSITIVE_INFINITY;
      let arg = 0;
      for (let w = 0; w < vocab.length; w++) {
        const T = templates[g]![w]!;
        let c = 0;
        for (let i = 0; i < sp.p.length; i++) c += huber(sp.p[i]! - r - s * T[i]!);
        c /= sp.p.length;
        if (c < best) {
          best = c;
          arg = w;
        }
      }
      total += best;
      choice.push(arg);
      costs.push(best);
    });
    return { total, choice, costs };
  };

  // coarse grid (r step 0.5 semitone, s step 0.1), then a fine grid around the best point
  let best = { total: Number.POSITIVE_INFINITY, choice: [] as number[], costs: [] as number[], r: 0, s: 1 };
  const search = (rs: number[], ss: number[]) => {
    for (const r of rs)
      for (const s of ss) {
        if (s < 0.8 - 1e-9 || s > 1.25 + 1e-9) continue;
        const res = bestWords(r, s);
        if (res.total < best.total) best = { ...res, r, s };
      }
  };
  const steps = (c: number, half: number, step: number) =>
    Array.from({ length: Math.round((2 * half) / step) + 1 }, (_, i) => c - half + i * step);
  search(fixedR !== undefined ? [fixedR] : steps(median, 8, 0.5), steps(1.0, 0.2, 0.1));
  const coarse = best;
  search(fixedR !== undefined ? [fixedR] : steps(coarse.r, 0.5, 0.125), steps(coarse.s, 0.05, 0.025));
  return {
    words: best.choice.map((w) => vocab[w]!.word),
    segments: segments.map((seg, g) => ({
      start: Math.max(0, Math.round(track.centers[seg.first]! - track.hopSamples / 2)),
      end: Math.round(track.centers[seg.last]! + track.hopSamples / 2),
      word: vocab[best.choice[g]!]!.word,
      cost: best.costs[g]!,
    })),
    basePitchHz: 2 ** (best.r / 12),
    range: best.s,
  };
}
