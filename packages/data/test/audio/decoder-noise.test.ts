import { describe, expect, it } from 'vitest';
import { benchmarkToneDecoder } from '../../src/audio/index.js';

describe('decodeTone under white noise', () => {
  it('stays accurate at 10 dB and 0 dB SNR (measured; see README for the full sweep)', () => {
    const at10 = benchmarkToneDecoder({ seed: 4, utterances: 80, numSpeakers: 8, noiseSnrDb: 10 });
    const at0 = benchmarkToneDecoder({ seed: 4, utterances: 80, numSpeakers: 8, noiseSnrDb: 0 });
    console.log(
      `tone decoder word accuracy: ${(100 * at10.wordAccuracy).toFixed(2)}% at 10 dB, ${(100 * at0.wordAccuracy).toFixed(2)}% at 0 dB SNR`,
    );
    expect(at10.wordAccuracy).toBeGreaterThanOrEqual(0.98);
    expect(at0.wordAccuracy).toBeGreaterThanOrEqual(0.9);
  });
});
