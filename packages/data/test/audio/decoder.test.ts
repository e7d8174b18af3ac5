import { describe, expect, it } from 'vitest';
import { benchmarkToneDecoder, decodeTone, makeToneSpeakers, synthesizeTone, ToneSpeechDataset } from '../../src/audio/index.js';

describe('decodeTone on clean speech', () => {
  it('reaches >= 99% word accuracy over 300 utterances from 8 speakers (fixed seed)', () => {
    const r = benchmarkToneDecoder({ seed: 1, utterances: 300, numSpeakers: 8 });
    console.log(`tone decoder, clean, 300 utterances / ${r.refWords} words: word accuracy ${(100 * r.wordAccuracy).toFixed(2)}%`);
    expect(r.refWords).toBeGreaterThan(900);
    expect(r.wordAccuracy).toBeGreaterThanOrEqual(0.99);
  });

  it('recovers the speaker base pitch and the word boundaries', () => {
    const ds = new ToneSpeechDataset({ seed: 2, numSpeakers: 6 });
    for (let i = 0; i < 24; i++) {
      const u = ds.sample(i);
      const d = decodeTone(u.samples);
      expect(d.words).toEqual(u.words);
      expect(Math.abs(12 * Math.log2(d.basePitchHz / u.speaker.basePitchHz))).toBeLessThan(0.75);
      expect(Math.abs(d.range - u.speaker.range)).toBeLessThan(0.15);
      d.segments.forEach((s, k) => {
        expect(Math.abs(s.start - u.alignment[k]!.start)).toBeLessThan(0.04 * u.sampleRate);
        expect(Math.abs(s.end - u.alignment[k]!.end)).toBeLessThan(0.04 * u.sampleRate);
      });
    }
  });

  it('uses a known speaker pitch when given, and finds nothing in silence or noise', () => {
    const [spk] = makeToneSpeakers(1, 7);
    const u = synthesizeTone('green star jumps right', spk!, { seed: 3 });
    expect(decodeTone(u.samples, { speakerPitchHz: spk!.basePitchHz }).words).toEqual(u.words);
    expect(decodeTone(new Float32Array(16000)).words).toEqual([]);
    let s = 1;
    const noise = Float32Array.from({ length: 16000 }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return 0.1 * (s / 2147483648 - 0.5);
    });
    expect(decodeTone(noise).words.length).toBeLessThanOrEqual(1);
  });

  it('rejects bad input', () => {
    expect(() => decodeTone([0, Number.NaN])).toThrow(/samples\[1\] is NaN, expected a finite number/);
    expect(() => decodeTone([0], { speakerPitchHz: -1 })).toThrow(/speakerPitchHz must be > 0, got -1/);
    expect(() => decodeTone([0], { vocabulary: [] })).toThrow(/vocabulary is empty/);
  });
});
