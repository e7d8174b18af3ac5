import { describe, expect, it } from 'vitest';
import {
  CONTOUR_KNOTS,
  contourAt,
  describeToneSpeech,
  makeToneSpeakers,
  synthesizeTone,
  TONE_VOCAB,
  ToneSpeechDataset,
  toneWord,
  trackPitch,
} from '../../src/audio/index.js';

describe('tone vocabulary', () => {
  it('has 16 distinct words whose contours differ pairwise by >= 2.9 semitones RMS', () => {
    expect(TONE_VOCAB).toHaveLength(16);
    expect(new Set(TONE_VOCAB.map((w) => w.word)).size).toBe(16);
    for (const w of TONE_VOCAB) expect(w.contour).toHaveLength(CONTOUR_KNOTS.length);
    const u = Array.from({ length: 201 }, (_, i) => i / 200);
    let min = Number.POSITIVE_INFINITY;
    for (let a = 0; a < TONE_VOCAB.length; a++)
      for (let b = a + 1; b < TONE_VOCAB.length; b++) {
        const d = u.map((x) => contourAt(TONE_VOCAB[a]!.contour, x) - contourAt(TONE_VOCAB[b]!.contour, x));
        min = Math.min(min, Math.sqrt(d.reduce((s, v) => s + v * v, 0) / d.length));
      }
    expect(min).toBeGreaterThanOrEqual(2.9);
  });

  it('interpolates contours linearly between knots (hand values)', () => {
    expect(contourAt([0, 4, 8, 4, 0], 0.125)).toBeCloseTo(2, 12);
    expect(contourAt([0, 4, 8, 4, 0], 0.5)).toBe(8);
    expect(contourAt([0, 4, 8, 4, 0], 1)).toBe(0);
    expect(contourAt([0, 4, 8, 4, 0], 1.5)).toBe(0);
    expect(() => toneWord('purple')).toThrow(/unknown word "purple"; the vocabulary is red green/);
  });
});

describe('trackPitch', () => {
  const sr = 16000;
  it('finds the pitch of harmonic tones to within 0.3%', () => {
    for (const f of [70, 137.5, 220, 400]) {
      const x = Float32Array.from({ length: sr / 2 }, (_, i) => {
        let s = 0;
        for (let k = 1; k <= 6; k++) s += Math.sin((2 * Math.PI * k * f * i) / sr) / k;
        return 0.3 * s;
      });
      const t = trackPitch(x, { sampleRate: sr });
      const mid = t.f0.slice(5, -5);
      for (const v of mid) expect(Math.abs(v - f) / f).toBeLessThan(0.003);
      expect(Math.max(...t.aperiodicity.slice(5, -5))).toBeLessThan(0.05);
    }
  });

  it('follows a glide and marks white noise aperiodic', () => {
    // f(t) = 100 * 2^(t / 0.5 s): one octave over half a second
    let phase = 0;
    const x = Float32Array.from({ length: sr / 2 }, (_, i) => {
      phase += (100 * 2 ** (i / sr / 0.5)) / sr;
      return 0.3 * Math.sin(2 * Math.PI * phase) + 0.15 * Math.sin(4 * Math.PI * phase);
    });
    const t = trackPitch(x, { sampleRate: sr });
    for (let f = 2; f < t.f0.length - 2; f++) {
      const expected = 100 * 2 ** (t.centers[f]! / sr / 0.5);
      expect(Math.abs(12 * Math.log2(t.f0[f]! / expected))).toBeLessThan(0.2);
    }
    let s = 12345;
    const noise = Float32Array.from({ length: 8000 }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648 - 0.5;
    });
    const tn = trackPitch(noise, { sampleRate: sr });
    expect(tn.aperiodicity.reduce((a, b) => a + b, 0) / tn.aperiodicity.length).toBeGreaterThan(0.4);
  });

  it('rejects bad options', () => {
    expect(() => trackPitch([0], { sampleRate: 1000 })).toThrow(/sampleRate must be an integer >= 4000, got 1000/);
    expect(() => trackPitch([0], { sampleRate: sr, minHz: 300, maxHz: 200 })).toThrow(/need 0 < minHz < maxHz, got 300 and 200/);
    expect(() => trackPitch([0], { sampleRate: sr, minHz: 20 })).toThrow(
      /window \(200 samples\) must cover the longest period \(400 samples\)/,
    );
  });
});

describe('synthesizeTone', () => {
  const [speaker] = makeToneSpeakers(1, 3);

  it('is deterministic by seed, with word alignments separated by silent pauses', () => {
    const a = synthesizeTone('red circle moves left', speaker!, { seed: 1 });
    expect(synthesizeTone(['red', 'circle', 'moves', 'left'], speaker!, { seed: 1 }).samples).toEqual(a.samples);
    expect(synthesizeTone('red circle moves left', speaker!, { seed: 2 }).samples).not.toEqual(a.samples);
    expect(a.text).toBe('red circle moves left');
    expect(a.alignment.map((w) => w.word)).toEqual(a.words);
    for (let w = 0; w < a.alignment.length; w++) {
      const { start, end } = a.alignment[w]!;
      const seconds = (end - start) / a.sampleRate;
      expect(seconds).toBeGreaterThanOrEqual(0.3 * speaker!.rate * 0.9 - 1e-3);
      expect(seconds).toBeLessThanOrEqual(0.3 * speaker!.rate * 1.1 + 1e-3);
      if (w > 0) expect(start - a.alignment[w - 1]!.end).toBeGreaterThanOrEqual(0.08 * a.sampleRate - 1);
    }
    const inside = new Uint8Array(a.samples.length);
    for (const { start, end } of a.alignment) inside.fill(1, start, end);
    expect(a.samples.every((v, i) => inside[i] || v === 0)).toBe(true);
    expect(Math.max(...a.samples.map(Math.abs))).toBeLessThan(1);
  });

  it('speaks each word at the contour pitch of the speaker (level high word "red" at +5 st times the range)', () => {
    const u = synthesizeTone('red', speaker!, { seed: 4 });
    const t = trackPitch(u.samples, { sampleRate: u.sampleRate });
    const { start, end } = u.alignment[0]!;
    const mid = Array.from(t.f0).filter((_, f) => t.centers[f]! > start + 800 && t.centers[f]! < end - 800);
    const expected = 12 * Math.log2(speaker!.basePitchHz) + 5 * speaker!.range;
    for (const f0 of mid) expect(Math.abs(12 * Math.log2(f0) - expected)).toBeLessThan(1.2); // per-word jitter: offset sd 0.3, scale sd 5%
  });

  it('adds white noise at the requested SNR over the words', () => {
    const clean = synthesizeTone('blue star jumps', speaker!, { seed: 9 });
    const noisy = synthesizeTone('blue star jumps', speaker!, { seed: 9, noiseSnrDb: 10 });
    let ps = 0;
    let pn = 0;
    for (const { start, end } of clean.alignment)
      for (let i = start; i < end; i++) {
        ps += clean.samples[i]! ** 2;
        pn += (noisy.samples[i]! - clean.samples[i]!) ** 2;
      }
    expect(10 * Math.log10(ps / pn)).toBeCloseTo(10, 0);
    expect(noisy.samples[10]).not.toBe(0);
  });

  it('rejects bad input', () => {
    expect(() => synthesizeTone('red purple', speaker!, { seed: 1 })).toThrow(/unknown word "purple"/);
    expect(() => synthesizeTone('', speaker!, { seed: 1 })).toThrow(/need at least one word/);
    expect(() => synthesizeTone('red', speaker!, { seed: 1, sampleRate: 100 })).toThrow(/sampleRate must be an integer >= 8000, got 100/);
    expect(() => synthesizeTone('red', speaker!, { seed: 1, pauseSeconds: [0.01, 0.02] })).toThrow(/pauseSeconds must satisfy/);
    expect(() => synthesizeTone('red', speaker!, { seed: 1, noiseSnrDb: Number.NaN })).toThrow(/noiseSnrDb must be finite/);
    expect(() => synthesizeTone('red', { ...speaker!, basePitchHz: 0 }, { seed: 1 })).toThrow(/needs basePitchHz > 0/);
    expect(() => makeToneSpeakers(0, 1)).toThrow(/n must be an integer >= 1, got 0/);
  });
});

describe('ToneSpeechDataset', () => {
  it('is deterministic, cycles speakers and describes itself', () => {
    const ds = new ToneSpeechDataset({ seed: 3, numSpeakers: 4 });
    const a = ds.sample(5);
    expect(new ToneSpeechDataset({ seed: 3, numSpeakers: 4 }).sample(5).samples).toEqual(a.samples);
    expect(a.speaker.id).toBe('spk1');
    expect(a.words).toEqual(ds.words(5));
    expect(ds.speakers).toEqual(makeToneSpeakers(4, 3));
    for (const s of ds.speakers) {
      expect(s.basePitchHz).toBeGreaterThanOrEqual(95);
      expect(s.basePitchHz).toBeLessThanOrEqual(230);
      expect(s.harmonics[0]).toBe(1);
      expect(Math.max(...s.harmonics)).toBeLessThanOrEqual(10 ** (3 / 20) + 1e-12);
    }
    const d = ds.describe();
    expect(d).toMatchObject({ kind: 'tone-speech', config: { seed: 3, numSpeakers: 4, text: 'sentences', sampleRate: 16000 } });
    expect(d.vocabulary).toHaveLength(16);
    expect(describeToneSpeech({ seed: 3, numSpeakers: 4 }).speakers).toEqual(ds.speakers);
    const random = new ToneSpeechDataset({ seed: 3, text: 'random' });
    expect(random.words(0).length).toBeGreaterThanOrEqual(3);
    expect(() => ds.sample(-1)).toThrow(/index must be an integer >= 0, got -1/);
    expect(() => new ToneSpeechDataset({ seed: 1, text: 'poems' as 'random' })).toThrow(/text must be 'sentences' or 'random'/);
  });
});
