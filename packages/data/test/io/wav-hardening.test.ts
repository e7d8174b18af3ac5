import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DecodeError, decodeWav, encodeWav, readWav, WAV_DEFAULT_MAX_SAMPLES, WavError } from '../../src/io/index.js';
import { assembleWav, type FmtSpec, f32le, f64le, fmtBody, i16le, makeWav, riffChunk } from './builders.js';

const dir = mkdtempSync(join(tmpdir(), 'mmlm-wav-hard-'));

/** The WavError `decodeWav(bytes)` throws (fails the test if it returns or throws anything else). */
function wavError(bytes: Uint8Array, opts: Parameters<typeof decodeWav>[2] = {}): WavError {
  try {
    decodeWav(bytes, 'x.wav', opts);
  } catch (e) {
    expect(e).toBeInstanceOf(WavError);
    return e as WavError;
  }
  throw new Error('decodeWav returned instead of throwing');
}

const mono8: FmtSpec = { channels: 1, rate: 8000, bits: 8 };
const mono16: FmtSpec = { channels: 1, rate: 8000, bits: 16 };

describe('WAV sample count comes from the data chunk header', () => {
  it('does not read the pad byte of an odd-sized 8-bit data chunk as a sample', () => {
    const wav = makeWav(mono8, [0, 128, 255]); // riffChunk appends the RIFF pad byte (0 = a -1 click)
    expect(wav.length).toBe(44 + 3 + 1);
    const a = decodeWav(wav);
    expect(Array.from(a.samples)).toEqual([-1, 0, 127 / 128]);
    // the same with a chunk after the padded data chunk
    const list = makeWav(mono8, [0, 128, 255]);
    const withList = assembleWav([riffChunk('fmt ', fmtBody(mono8)), riffChunk('data', [0, 128, 255]), riffChunk('LIST', [1, 2, 3, 4])]);
    expect(decodeWav(withList).samples.length).toBe(3);
    expect(decodeWav(list).bitDepth).toBe('8');
  });

  it('walks odd-sized chunks with their pad byte', () => {
    const wav = makeWav(mono16, i16le([16384, -16384]), [riffChunk('junk', [1, 2, 3])]);
    expect(Array.from(decodeWav(wav).samples)).toEqual([0.5, -0.5]);
    // a RIFF size that counts a final pad byte the writer left out is accepted
    const noPad = makeWav(mono8, [0, 128, 255]).subarray(0, 47);
    expect(decodeWav(noPad).samples.length).toBe(3);
  });
});

describe('WAV header checks agree with what is decoded', () => {
  it('rejects a second fmt or data chunk', () => {
    const twoFmt = assembleWav([
      riffChunk('fmt ', fmtBody(mono8)),
      riffChunk('fmt ', fmtBody({ format: 3, channels: 1, rate: 8000, bits: 32 })),
      riffChunk('data', f32le([6, 6])),
    ]);
    const e = wavError(twoFmt);
    expect(e.message).toBe('WAV x.wav: second "fmt " chunk at byte 36 (the first is at byte 12); a WAV file has exactly one');
    const twoData = assembleWav([riffChunk('fmt ', fmtBody(mono16)), riffChunk('data', i16le([1])), riffChunk('data', i16le([2, 3]))]);
    expect(wavError(twoData).message).toMatch(/second "data" chunk at byte 46 \(the first is at byte 36\)/);
  });

  it('checks the format tag and bit depth together', () => {
    expect(wavError(makeWav({ channels: 1, rate: 8000, bits: 64 }, new Uint8Array(8))).message).toMatch(
      /PCM with 64 bits per sample; expected 8, 16, 24 or 32/,
    );
    expect(wavError(makeWav({ channels: 1, rate: 8000, bits: 12, blockAlign: 2, byteRate: 16000 }, new Uint8Array(2))).message).toMatch(
      /PCM with 12 bits per sample/,
    );
    const e = wavError(makeWav({ format: 3, channels: 1, rate: 8000, bits: 16 }, new Uint8Array(2)));
    expect(e.message).toMatch(/IEEE float with 16 bits per sample; expected 32 or 64/);
    expect(e.kind).toBe('unsupported');
    expect(wavError(makeWav({ format: 2, channels: 1, rate: 8000, bits: 16 }, new Uint8Array(2))).message).toMatch(
      /unsupported audio format 2; expected 1 \(PCM\), 3 \(IEEE float\) or 0xFFFE/,
    );
  });

  it('decodes WAVE_FORMAT_EXTENSIBLE by its subformat', () => {
    const fl = decodeWav(makeWav({ channels: 1, rate: 8000, bits: 32, subformat: 3 }, f32le([0.25, -1.5])));
    expect([fl.bitDepth, ...fl.samples]).toEqual(['32f', 0.25, -1.5]);
    const pcm = decodeWav(makeWav({ channels: 2, rate: 8000, bits: 24, subformat: 1 }, [0, 0, 0x80, 0, 0, 0x40]));
    expect([pcm.bitDepth, pcm.numChannels, ...pcm.samples]).toEqual(['24', 2, (-1 + 0.5) / 2]);
    const f64 = makeWav({ channels: 1, rate: 8000, bits: 64, subformat: 3 }, f64le([0.125]));
    expect(Array.from(decodeWav(f64).samples)).toEqual([0.125]);
    const badGuid = makeWav({ channels: 1, rate: 8000, bits: 16, subformat: 1 }, i16le([0]));
    badGuid[12 + 8 + 30] = 0x42;
    expect(wavError(badGuid).message).toMatch(/subformat is not a KSDATAFORMAT_SUBTYPE GUID/);
    const shortExt = assembleWav([
      riffChunk('fmt ', fmtBody({ channels: 1, rate: 8000, bits: 16, subformat: 1 }).subarray(0, 24)),
      riffChunk('data', [0, 0]),
    ]);
    expect(wavError(shortExt).message).toMatch(/"fmt " chunk is 24 bytes, expected at least 40 for WAVE_FORMAT_EXTENSIBLE/);
  });

  it('checks byteRate and blockAlign', () => {
    expect(wavError(makeWav({ ...mono16, byteRate: 1234 }, i16le([0]))).message).toBe(
      'WAV x.wav: byteRate is 1234, expected sampleRate * blockAlign = 8000 * 2 = 16000',
    );
    expect(wavError(makeWav({ ...mono16, blockAlign: 4 }, i16le([0, 0]))).message).toMatch(
      /blockAlign is 4, expected numChannels \* bitsPerSample \/ 8 = 2/,
    );
  });

  it('checks the RIFF size against the file', () => {
    const good = makeWav(mono16, i16le([1, 2, 3]));
    const big = Uint8Array.from(good);
    new DataView(big.buffer).setUint32(4, good.length + 100, true);
    expect(wavError(big).message).toBe(
      `WAV x.wav: truncated: the RIFF size ${good.length + 100} says the file is ${good.length + 108} bytes, it has ${good.length}`,
    );
    const small = Uint8Array.from(good);
    new DataView(small.buffer).setUint32(4, 40, true);
    expect(wavError(small).message).toMatch(
      /the data chunk declares 6 bytes, past the end of the RIFF chunk \(RIFF size 40 ends at byte 48\)/,
    );
    // bytes after the RIFF chunk (a pad byte, or more) are ignored
    expect(decodeWav(Uint8Array.from([...good, 0])).samples.length).toBe(3);
    expect(decodeWav(Uint8Array.from([...good, 1, 2, 3, 4, 5, 6, 7, 8, 9])).samples.length).toBe(3);
    const stray = assembleWav([riffChunk('fmt ', fmtBody(mono16)), riffChunk('data', i16le([1])), Uint8Array.of(1, 2, 3)]);
    expect(wavError(stray).message).toMatch(/3 stray bytes at byte 46 inside the RIFF chunk, too short for a chunk header/);
  });

  it('rejects non-finite float samples', () => {
    const nan = wavError(makeWav({ format: 3, channels: 1, rate: 8000, bits: 32 }, f32le([0, Number.NaN])));
    expect(nan.message).toMatch(/sample 1 of channel 0 is NaN; float samples must be finite/);
    expect(wavError(makeWav({ format: 3, channels: 1, rate: 8000, bits: 64 }, f64le([Number.NEGATIVE_INFINITY]))).message).toMatch(
      /sample 0 of channel 0 is -Infinity/,
    );
    expect(wavError(makeWav({ format: 3, channels: 1, rate: 8000, bits: 64 }, f64le([1e300]))).message).toMatch(
      /sample 0 does not fit a float32 \(it is Infinity\)/,
    );
  });
});

describe('WAV size limits', () => {
  const wav = makeWav(mono16, i16le(Array.from({ length: 1000 }, (_, i) => i)));

  it('refuses more than maxSamples frames from the data header, and more than maxBytes of input', () => {
    const e = wavError(wav, { maxSamples: 999 });
    expect(e.message).toBe(
      'WAV x.wav: data chunk holds 1000 sample frames, more than maxSamples = 999; pass { maxSamples } to raise the limit',
    );
    expect(e.kind).toBe('limit');
    expect(decodeWav(wav, 'x.wav', { maxSamples: 1000 }).samples.length).toBe(1000);
    expect(wavError(wav, { maxBytes: 2000 }).message).toMatch(/file is 2044 bytes, more than maxBytes = 2000; pass \{ maxBytes \}/);
    // a data header claiming 2^31 bytes in a 46-byte file: refused as truncated before anything is allocated
    const claim = Uint8Array.from(makeWav(mono8, [0, 0]));
    new DataView(claim.buffer).setUint32(40, 2 ** 31, true);
    new DataView(claim.buffer).setUint32(4, 2 ** 31 + 36, true);
    expect(wavError(claim, { maxBytes: Number.POSITIVE_INFINITY }).message).toMatch(/truncated: the data chunk declares 2147483648 bytes/);
    expect(WAV_DEFAULT_MAX_SAMPLES).toBe(2 ** 26);
    expect(() => decodeWav(wav, 'x.wav', { maxSamples: -1 })).toThrow(/maxSamples must be a positive integer or Infinity, got -1/);
  });

  it('readWav checks the file size before reading it', () => {
    const p = join(dir, 'big.wav');
    writeFileSync(p, wav);
    const e = (() => {
      try {
        readWav(p, { maxBytes: 100 });
      } catch (err) {
        return err as WavError;
      }
    })();
    expect(e).toBeInstanceOf(WavError);
    expect(e!.message).toBe(`WAV ${p}: file is 2044 bytes, more than maxBytes = 100; pass { maxBytes } to raise the limit`);
    expect(readWav(p).samples.length).toBe(1000);
  });
});

describe('WavError', () => {
  it('is one catchable type naming the file; bad options stay plain errors', () => {
    const p = join(dir, 'no-data.wav');
    writeFileSync(p, encodeWav([0, 0.5], 8000).subarray(0, 36));
    let caught: unknown;
    try {
      readWav(p);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(WavError);
    expect(caught).toBeInstanceOf(DecodeError);
    const e = caught as WavError;
    expect([e.name, e.format, e.source, e.kind]).toEqual(['WavError', 'WAV', p, 'corrupt']);
    expect(e.message).toBe(`WAV ${p}: no "data" chunk (truncated or corrupt)`);
    let missing: unknown;
    try {
      readWav(join(dir, 'missing.wav'));
    } catch (err) {
      missing = err;
    }
    expect((missing as WavError).kind).toBe('io');
    const bad = (() => {
      try {
        decodeWav(encodeWav([0], 8000), 'x', { channels: 'left' as never });
      } catch (err) {
        return err;
      }
    })();
    expect(bad).not.toBeInstanceOf(DecodeError);
    expect((bad as Error).message).toMatch(/channels must be 'mix', 'first' or 'error', got "left"/);
  });
});
