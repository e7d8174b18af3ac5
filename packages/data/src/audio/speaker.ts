/**
 * Speaker similarity for tone speech (the SIM column of zero-shot TTS tables, on our toy voices):
 * a timbre embedding and its cosine similarity.
 *
 * The embedding is the speaker's harmonic amplitude profile, measured where the pitch is reliable
 * (YIN aperiodicity < 0.3): for each such frame, harmonics 1..K are measured by a DFT that follows
 * the pitch glide (the window of 3 periods is demodulated by the phase of a linear chirp through
 * the frame's f0 and its slope), in dB relative to the frame's mean over harmonics. Frames are
 * averaged, a fixed -6 dB/octave reference tilt is removed (so the typical voice sits near the
 * origin and cosine similarity is not dominated by the shared downward slope), and the speaker's
 * base pitch (semitones re 150 Hz) is appended, as estimated by the tone decoder's speaker
 * normalisation, which, unlike the median pitch, does not depend on which words were said.
 * Dimensions are scaled to comparable spread (dB / 6, semitones / 6).
 */
import { decodeToneTrack, voicedSegments } from './decoder.js';
import { trackPitch } from './pitch.js';
import { TONE_SAMPLE_RATE } from './tone.js';

export interface SpeakerEmbeddingOptions {
  sampleRate?: number;
  /** Harmonics in the profile (default 8). */
  numHarmonics?: number;
}

/** Timbre embedding of an utterance: K harmonic-profile dimensions then 1 pitch dimension. */
export function speakerEmbedding(samples: ArrayLike<number>, opts: SpeakerEmbeddingOptions = {}): Float32Array {
  const sr = opts.sampleRate ?? TONE_SAMPLE_RATE;
  const K = opts.numHarmonics ?? 8;
  if (!Number.isInteger(K) || K < 2) throw new Error(`speakerEmbedding: numHarmonics must be an integer >= 2, got ${K}`);
  const track = trackPitch(samples, { sampleRate: sr });
  const { segments } = voicedSegments(track);
  const profile = new Float64Array(K);
  let frames = 0;
  const hop = track.hopSamples;
  for (const seg of segments)
    for (let f = seg.first + 1; f < seg.last; f++) {
      if (!(track.aperiodicity[f]! < 0.3 && track.aperiodicity[f - 1]! < 0.3 && track.aperiodicity[f + 1]! < 0.3)) continue;
      const f0 = track.f0[f]!;
      if (K * f0 >= sr / 2) continue;
      const slope = (track.f0[f + 1]! - track.f0[f - 1]!) / (2 * hop); // Hz per sample
      const c = Math.round(track.centers[f]!);
      const half = Math.round((1.5 * sr) / f0);
      if (c - half < 0 || c + half >= samples.length) continue;
      const db = new Float64Array(K);
      let wsum = 0;
      const re = new Float64Array(K);
      const im = new Float64Array(K);
      for (let t = -half; t <= half; t++) {
        const w = 0.5 + 0.5 * Math.cos((Math.PI * t) / (half + 1));
        const phase = (2 * Math.PI * (f0 * t + 0.5 * slope * t * t)) / sr;
        const x = samples[c + t]! * w;
        wsum += w;
        for (let k = 1; k <= K; k++) {
          re[k - 1]! += x * Math.cos(k * phase);
          im[k - 1]! -= x * Math.sin(k * phase);
        }
      }
      let mean = 0;
      for (let k = 0; k < K; k++) {
        db[k] = 20 * Math.log10((2 * Math.hypot(re[k]!, im[k]!)) / wsum + 1e-9);
        mean += db[k]! / K;
      }
      for (let k = 0; k < K; k++) profile[k]! += db[k]! - mean;
      frames++;
    }
  if (frames === 0) throw new Error('speakerEmbedding: no reliably voiced frames (is there tone speech in the signal?)');
  const out = new Float32Array(K + 1);
  let mean = 0;
  for (let k = 0; k < K; k++) {
    out[k] = profile[k]! / frames + 6 * Math.log2(k + 1);
    mean += out[k]! / K;
  }
  for (let k = 0; k < K; k++) out[k] = (out[k]! - mean) / 6;
  out[K] = (12 * Math.log2(decodeToneTrack(track).basePitchHz / 150)) / 6;
  return out;
}

/** Cosine similarity a.b / (|a| |b|); throws on length mismatch or a zero vector. */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosineSimilarity: vectors have lengths ${a.length} and ${b.length}`);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  if (aa === 0 || bb === 0) throw new Error('cosineSimilarity: a vector is all zeros');
  return ab / Math.sqrt(aa * bb);
}

/**
 * Equal error rate of a verification score: the threshold where the rate of different-speaker
 * pairs accepted (score >= threshold) equals the rate of same-speaker pairs rejected. Scanned over
 * all observed scores; returns the mean of the two rates at the closest point.
 */
export function equalErrorRate(same: readonly number[], different: readonly number[]): { eer: number; threshold: number } {
  if (same.length === 0 || different.length === 0)
    throw new Error(`equalErrorRate: need scores of both kinds, got ${same.length} same and ${different.length} different`);
  const thresholds = [...same, ...different].sort((a, b) => a - b);
  let best = { gap: Number.POSITIVE_INFINITY, eer: 1, threshold: 0 };
  for (const t of [...thresholds, thresholds[thresholds.length - 1]! + 1]) {
    const far = different.filter((s) => s >= t).length / different.length;
    const frr = same.filter((s) => s < t).length / same.length;
    const gap = Math.abs(far - frr);
    if (gap < best.gap || (gap === best.gap && (far + frr) / 2 < best.eer)) best = { gap, eer: (far + frr) / 2, threshold: t };
  }
  return { eer: best.eer, threshold: best.threshold };
}
