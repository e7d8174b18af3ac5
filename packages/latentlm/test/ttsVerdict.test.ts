/**
 * latentlm.tts-frame-rate's verdict: the claim is about low frame rates, so a run where 31.25 Hz ties
 * or beats 15.6 Hz while 15.6 Hz is intelligible is "partly reproduced" (the rates-6x seed-0 run of
 * 2026-12-06 printed "no frame rate gives intelligible TTS (best WER 12.8%)" before this).
 */
import { describe, expect, it } from 'vitest';
import { frameRateVerdict } from '../src/experiments/tts.js';

describe('frameRateVerdict', () => {
  it('a low rate intelligible while a high rate is best: partly reproduced, naming the low rate', () => {
    const v = frameRateVerdict(
      [
        { frameRate: 31.25, ttsWer: 0.128 },
        { frameRate: 15.625, ttsWer: 0.135 },
        { frameRate: 7.8125, ttsWer: 0.461 },
      ],
      [0.085, 0.142, 0.34],
    );
    expect(v).toMatch(/^Partly reproduced/);
    expect(v).toContain('13.5% at 15.63 Hz');
  });
  it('only the high rate intelligible: not reproduced, saying so', () => {
    const v = frameRateVerdict(
      [
        { frameRate: 31.25, ttsWer: 0.2 },
        { frameRate: 15.625, ttsWer: 0.7 },
      ],
      [0.1, 0.2],
    );
    expect(v).toMatch(/^Not reproduced at our scale: only frame rates above 16 Hz/);
    expect(v).toContain('best at <= 16 Hz: 70.0%');
  });
  it('nothing intelligible: not reproduced, with the resynthesis ceilings', () => {
    const v = frameRateVerdict(
      [
        { frameRate: 31.25, ttsWer: 1.057 },
        { frameRate: 15.625, ttsWer: 0.957 },
      ],
      [0.085, 0.149],
    );
    expect(v).toMatch(/^Not reproduced at our scale: no frame rate gives intelligible TTS \(best WER 95\.7%\)/);
    expect(v).toContain('8.5% / 14.9%');
  });
});
