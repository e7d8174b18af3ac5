import { describe, expect, it } from 'vitest';
import {
  benchmarkSpeakerSimilarity,
  corpusWer,
  cosineSimilarity,
  equalErrorRate,
  makeToneSpeakers,
  speakerEmbedding,
  synthesizeTone,
  wer,
  werCounts,
} from '../../src/audio/index.js';

describe('speaker similarity', () => {
  it('scores every same-speaker pair above every different-speaker pair (8 speakers x 4 utterances)', () => {
    const r = benchmarkSpeakerSimilarity({ seed: 5, numSpeakers: 8, utterancesPerSpeaker: 4 });
    console.log(
      `speaker cosine: same min ${r.minSame.toFixed(3)} (mean ${r.meanSame.toFixed(3)}), different max ${r.maxDifferent.toFixed(3)} (mean ${r.meanDifferent.toFixed(3)}), EER ${r.eer}`,
    );
    expect([r.samePairs, r.differentPairs]).toEqual([48, 448]);
    expect(r.minSame).toBeGreaterThan(r.maxDifferent + 0.2);
    expect(r.eer).toBe(0);
  });

  it('measures the harmonic profile the speaker was synthesised with', () => {
    const [spk] = makeToneSpeakers(1, 11);
    const e = speakerEmbedding(synthesizeTone('red square moves left', spk!, { seed: 1 }).samples);
    const truth = spk!.harmonics.slice(0, 8).map((a, k) => 20 * Math.log10(a) + 6 * Math.log2(k + 1));
    const mean = truth.reduce((s, x) => s + x, 0) / 8;
    for (let k = 0; k < 8; k++) expect(Math.abs(e[k]! - (truth[k]! - mean) / 6)).toBeLessThan(0.1);
    expect(e[8]! * 6).toBeCloseTo(12 * Math.log2(spk!.basePitchHz / 150), 0);
  });

  it('computes cosine similarity and EER (hand values) and rejects bad input', () => {
    expect(cosineSimilarity([1, 0], [1, 1])).toBeCloseTo(Math.SQRT1_2, 12);
    expect(cosineSimilarity([1, 2], [-2, -4])).toBeCloseTo(-1, 12);
    expect(() => cosineSimilarity([1], [1, 2])).toThrow(/lengths 1 and 2/);
    expect(() => cosineSimilarity([0, 0], [1, 2])).toThrow(/all zeros/);
    expect(equalErrorRate([0.9, 0.8], [0.1, 0.2]).eer).toBe(0);
    // same [0.9, 0.5, 0.3], different [0.6, 0.2, 0.1]: at threshold 0.5, FAR = 1/3 and FRR = 1/3
    expect(equalErrorRate([0.9, 0.5, 0.3], [0.6, 0.2, 0.1])).toEqual({ eer: 1 / 3, threshold: 0.5 });
    expect(() => equalErrorRate([], [1])).toThrow(/need scores of both kinds/);
    expect(() => speakerEmbedding(new Float32Array(16000))).toThrow(/no reliably voiced frames/);
    expect(() => speakerEmbedding([0], { numHarmonics: 1 })).toThrow(/numHarmonics must be an integer >= 2, got 1/);
  });
});

describe('wer', () => {
  it('counts substitutions, deletions and insertions (hand-worked alignments)', () => {
    expect(wer('red circle moves left', 'red square moves left')).toBe(0.25);
    expect(werCounts('a b c d', 'a c d')).toEqual({ substitutions: 0, deletions: 1, insertions: 0, hits: 3, refWords: 4 });
    expect(werCounts('a b', 'x a b y')).toEqual({ substitutions: 0, deletions: 0, insertions: 2, hits: 2, refWords: 2 });
    expect(werCounts(['a', 'b', 'c'], [])).toEqual({ substitutions: 0, deletions: 3, insertions: 0, hits: 0, refWords: 3 });
    // kitten -> sitting at word level: 2 substitutions + 1 insertion
    expect(werCounts('k i t t e n', 's i t t i n g')).toEqual({ substitutions: 2, deletions: 0, insertions: 1, hits: 4, refWords: 6 });
    expect(wer('a b', 'c d e f')).toBe(2);
    const c = corpusWer(['a b c', 'd'], ['a b', 'd e']);
    expect([c.deletions, c.insertions, c.refWords, c.wer]).toEqual([1, 1, 4, 0.5]);
  });

  it('rejects an empty reference and mismatched sets', () => {
    expect(() => wer('', 'a')).toThrow(/reference has no words/);
    expect(() => corpusWer(['a'], [])).toThrow(/got 1 references but 0 hypotheses/);
    expect(() => werCounts(3 as unknown as string, 'a')).toThrow(/expected a string or an array of words, got number/);
  });
});
