import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@mmlm/core';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import wavefile from 'wavefile';
import { decodeWav, encodeSpectrogramPng, encodeWav, fft, readWav, stft, writeSpectrogramPng, writeWav } from '../../src/io/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mmlm-wav-'));

describe('fft', () => {
  it('matches a direct DFT and inverts', () => {
    const rng = new Rng(1);
    for (const n of [1, 2, 8, 64]) {
      const x = Array.from({ length: n }, () => rng.normal());
      const y = Array.from({ length: n }, () => rng.normal());
      const re = Float64Array.from(x);
      const im = Float64Array.from(y);
      fft(re, im);
      for (let k = 0; k < n; k++) {
        let sr = 0;
        let si = 0;
        for (let t = 0; t < n; t++) {
          const a = (-2 * Math.PI * k * t) / n;
          sr += x[t]! * Math.cos(a) - y[t]! * Math.sin(a);
          si += x[t]! * Math.sin(a) + y[t]! * Math.cos(a);
        }
        expect(re[k]).toBeCloseTo(sr, 9);
        expect(im[k]).toBeCloseTo(si, 9);
      }
      fft(re, im, true);
      for (let t = 0; t < n; t++) expect(re[t]).toBeCloseTo(x[t]!, 12);
    }
  });

  it('rejects lengths that are not powers of two', () => {
    expect(() => fft(new Float64Array(6), new Float64Array(6))).toThrow(/length must be a power of two, got 6/);
    expect(() => fft(new Float64Array(4), new Float64Array(2))).toThrow(/same length, got 4 and 2/);
  });
});

describe('stft and spectrogram PNG', () => {
  const sr = 16000;
  const tone = Float32Array.from({ length: sr / 2 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 1000 * i) / sr));

  it('puts a 1 kHz tone in bin 1000 / (16000 / 512) = 32, with the Hann-window peak N/4 * amplitude', () => {
    const s = stft(tone, { frameSize: 512, hop: 128 });
    expect(s.bins).toBe(257);
    expect(s.frames).toBe(1 + Math.ceil((8000 - 512) / 128));
    const row = s.magnitudes.subarray(10 * s.bins, 11 * s.bins);
    const peak = row.indexOf(Math.max(...row));
    expect(peak).toBe(32);
    expect(row[32]).toBeCloseTo((0.5 * 512) / 4, 1); // A * sum(w) / 2 = A * N / 4
  });

  it('writes a PNG whose brightest row is the tone, low frequencies at the bottom', () => {
    const path = join(dir, 'spec.png');
    const { width, height } = writeSpectrogramPng(path, tone, {
      sampleRate: sr,
      frameSize: 512,
      hop: 256,
      maxFreqHz: 4000,
      colormap: 'grey',
    });
    const png = PNG.sync.read(readFileSync(path));
    expect([png.width, png.height]).toEqual([width, height]);
    expect(height).toBe(129); // bins up to 4 kHz
    let best = -1;
    let bestY = -1;
    for (let y = 0; y < height; y++) {
      const v = png.data[(y * width + 5) * 4]!;
      if (v > best) [best, bestY] = [v, y];
    }
    expect(best).toBe(255);
    expect(height - 1 - bestY).toBe(32);
    const heat = encodeSpectrogramPng(tone, { colormap: 'heat' });
    expect(PNG.sync.read(Buffer.from(heat.png)).width).toBe(heat.width);
  });

  it('rejects bad options', () => {
    expect(() => stft([], {})).toThrow(/samples are empty/);
    expect(() => stft(tone, { frameSize: 500 })).toThrow(/frameSize must be a power of two >= 2, got 500/);
    expect(() => stft(tone, { hop: 0 })).toThrow(/hop must be an integer >= 1, got 0/);
    expect(() => encodeSpectrogramPng(tone, { maxFreqHz: 100 })).toThrow(/maxFreqHz needs sampleRate/);
  });
});

describe('WAV', () => {
  const x = Float32Array.from({ length: 1000 }, (_, i) => 0.8 * Math.sin(i / 7));

  it('round-trips 16-bit PCM within half a quantisation step, and float32 exactly', () => {
    writeWav(join(dir, 'a16.wav'), x, 16000);
    const a = readWav(join(dir, 'a16.wav'));
    expect([a.sampleRate, a.numChannels, a.bitDepth, a.samples.length]).toEqual([16000, 1, '16', 1000]);
    for (let i = 0; i < x.length; i++) expect(Math.abs(a.samples[i]! - x[i]!)).toBeLessThanOrEqual(0.5 / 32768 + 1e-7);
    writeWav(join(dir, 'af.wav'), x, 22050, { format: 'float32' });
    const b = readWav(join(dir, 'af.wav'));
    expect([b.sampleRate, b.bitDepth]).toEqual([22050, '32f']);
    expect(b.samples).toEqual(x);
    const clipped = decodeWav(encodeWav([2, -2, 0.5], 8000));
    expect(Array.from(clipped.samples)).toEqual([32767 / 32768, -1, 0.5]);
  });

  it('writes the bytes wavefile 11 wrote (the encoder that was used before)', () => {
    const samples = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i / 7) * 1.2 - (i === 5 ? 0 : 0.01));
    samples[3] = -0;
    for (const rate of [8000, 16000, 44100]) {
      const w16 = new wavefile.WaveFile();
      const pcm = Int16Array.from(samples, (v) => Math.max(-32768, Math.min(32767, Math.round(v * 32768))));
      w16.fromScratch(1, rate, '16', pcm);
      expect(Buffer.from(encodeWav(samples, rate)).equals(Buffer.from(w16.toBuffer()))).toBe(true);
      const w32 = new wavefile.WaveFile();
      w32.fromScratch(1, rate, '32f', Float32Array.from(samples));
      expect(Buffer.from(encodeWav(samples, rate, { format: 'float32' })).equals(Buffer.from(w32.toBuffer()))).toBe(true);
    }
    expect(encodeWav([], 8000).length).toBe(44);
  });

  it('scales 8- and 24-bit PCM by their full range (hand values)', () => {
    const w8 = new wavefile.WaveFile();
    w8.fromScratch(1, 8000, '8', Uint8Array.of(0, 128, 192, 255));
    expect(Array.from(decodeWav(w8.toBuffer()).samples)).toEqual([-1, 0, 0.5, 127 / 128]);
    const w24 = new wavefile.WaveFile();
    w24.fromScratch(1, 8000, '24', Int32Array.of(-8388608, 4194304));
    expect(Array.from(decodeWav(w24.toBuffer()).samples)).toEqual([-1, 0.5]);
  });

  it('mixes stereo to mono by default, or keeps the first channel, or refuses', () => {
    const w = new wavefile.WaveFile();
    w.fromScratch(2, 8000, '16', [Int16Array.of(16384, -16384), Int16Array.of(0, 16384)]);
    const bytes = w.toBuffer();
    expect(Array.from(decodeWav(bytes).samples)).toEqual([0.25, 0]);
    expect(decodeWav(bytes).numChannels).toBe(2);
    expect(Array.from(decodeWav(bytes, 'st.wav', { channels: 'first' }).samples)).toEqual([0.5, -0.5]);
    expect(() => decodeWav(bytes, 'st.wav', { channels: 'error' })).toThrow(/WAV st\.wav: has 2 channels, expected mono/);
  });

  it('names the file and the problem for corrupt or truncated files', () => {
    const good = encodeWav(x, 16000);
    const cases: [string, Uint8Array, RegExp][] = [
      ['short.wav', good.slice(0, 8), /short\.wav: file is 8 bytes, too short for a RIFF header/],
      [
        'text.wav',
        new TextEncoder().encode('hello, this is not audio at all'),
        /text\.wav: not a WAV file: starts with "hell", expected "RIFF"/,
      ],
      ['trunc.wav', good.slice(0, 1000), /trunc\.wav: truncated: the data chunk declares 2000 bytes but only 956 follow/],
      ['nodata.wav', good.slice(0, 36), /nodata\.wav: no "data" chunk/],
      ['fmt.wav', good.slice(0, 24), /fmt\.wav: "fmt " chunk is 4 bytes, expected at least 16/],
    ];
    const odd = good.slice(0, 44 + 999);
    new DataView(odd.buffer).setUint32(40, 999, true);
    cases.push(['odd.wav', odd, /odd\.wav: data chunk size 999 is not a multiple of the block size 2/]);
    const avi = good.slice();
    avi.set(new TextEncoder().encode('AVI '), 8);
    cases.push(['avi.wav', avi, /avi\.wav: not a WAV file: RIFF form type is "AVI "/]);
    for (const [name, bytes, re] of cases) {
      writeFileSync(join(dir, name), bytes);
      expect(() => readWav(join(dir, name))).toThrow(re);
    }
    expect(() => readWav(join(dir, 'missing.wav'))).toThrow(/missing\.wav: file not found/);
    mkdirSync(join(dir, 'd.wav'));
    expect(() => readWav(join(dir, 'd.wav'))).toThrow(/d\.wav: not a regular file/);
    expect(() => encodeWav([0, Number.NaN], 16000)).toThrow(/samples\[1\] is NaN/);
    expect(() => encodeWav([0], 0)).toThrow(/sampleRate must be a positive integer, got 0/);
  });
});
