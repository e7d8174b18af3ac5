/**
 * WAV read/write (RIFF WAVE: Microsoft/IBM Multimedia Programming Interface 1.0, 1991; PCM, IEEE
 * float and WAVE_FORMAT_EXTENSIBLE), on bytes in Node and in a browser (`readWav` / `writeWav`
 * need Node). Writing makes the canonical 44-byte header (the bytes wavefile 11, used here before,
 * wrote). Reading is done here: the RIFF chunk walk checks the file, then the samples are read
 * straight from the `data` chunk. wavefile is not used to read because it disagrees with a strict reading of the header in ways that return wrong
 * audio without an error: it reads the first `fmt `/`data` chunk wherever it is, counts samples
 * from its own view of the data (an 8-bit file with an odd number of samples gets the RIFF pad byte
 * as an extra full-scale sample), decodes extensible float files as integers, and copies the data
 * several times (bytes, its sample buffer, one Float64Array per channel).
 *
 * Checked: RIFF/WAVE ids; the RIFF size against the file (a RIFF size past the end of the file is a
 * truncation; bytes after the RIFF chunk are ignored); every chunk inside the RIFF chunk, with the
 * pad byte after an odd-sized chunk; exactly one `fmt ` and one `data` chunk; format tag and bit
 * depth together (PCM 8/16/24/32, IEEE float 32/64, extensible by its subformat);
 * blockAlign = channels * bits / 8 and byteRate = sampleRate * blockAlign; the data size a
 * multiple of blockAlign; float samples finite. Every failure is a `WavError`.
 *
 * Reading returns mono Float32Array samples in [-1, 1]: signed PCM of b bits is divided by
 * 2^(b-1), 8-bit unsigned PCM is (x - 128) / 128, float data is passed through. Multi-channel files
 * are mixed to mono by averaging the channels (`channels: 'mix'`, the default), reduced to their
 * first channel (`'first'`), or rejected (`'error'`).
 */
import { fs, nodeOnly } from '#platform';
import { checkLimitOption, messageOf, WavError } from './errors.js';

export interface WavAudio {
  /** Mono samples in [-1, 1] (float files may exceed it). */
  samples: Float32Array;
  sampleRate: number;
  /** Channel count of the file (before mixing to mono). */
  numChannels: number;
  /** Bit-depth code (as wavefile names them): '8', '16', '24', '32' (PCM) or '32f', '64' (float). */
  bitDepth: string;
}

/** Default `maxBytes` of a WAV input: 2^28 bytes (256 MiB). */
export const WAV_DEFAULT_MAX_BYTES = 2 ** 28;
/** Default `maxSamples` (sample frames returned): 2^26 (256 MiB of float32; 70 min at 16 kHz). */
export const WAV_DEFAULT_MAX_SAMPLES = 2 ** 26;

export interface ReadWavOptions {
  /** What to do with more than one channel (default 'mix'). */
  channels?: 'mix' | 'first' | 'error';
  /**
   * Largest input accepted, in bytes (default `WAV_DEFAULT_MAX_BYTES` = 2^28); `readWav` checks the
   * file size before reading the file. `Infinity` for no limit.
   */
  maxBytes?: number;
  /**
   * Most sample frames (samples per channel) accepted (default `WAV_DEFAULT_MAX_SAMPLES` = 2^26),
   * checked from the data chunk header before any sample is decoded. `Infinity` for no limit.
   */
  maxSamples?: number;
}

type SampleKind = 'u8' | 's16' | 's24' | 's32' | 'f32' | 'f64';

interface WavLayout {
  numChannels: number;
  sampleRate: number;
  blockAlign: number;
  kind: SampleKind;
  bitDepth: string;
  dataOffset: number;
  frames: number;
}

function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

/** The 14 bytes after the format code in a KSDATAFORMAT_SUBTYPE_* GUID (…-0000-0010-8000-00AA00389B71). */
const SUBFORMAT_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

/** Walks the RIFF chunks and checks fmt and data (see the module comment); throws a WavError. */
function checkRiff(bytes: Uint8Array, name: string, maxSamples: number): WavLayout {
  const fail = (msg: string, kind: 'corrupt' | 'unsupported' | 'limit' = 'corrupt'): never => {
    throw new WavError(name, msg, kind);
  };
  if (bytes.length < 12) fail(`file is ${bytes.length} bytes, too short for a RIFF header (12 bytes)`);
  const id = fourcc(bytes, 0);
  if (id === 'RF64') fail('RF64 (64-bit WAV) is not supported', 'unsupported');
  if (id !== 'RIFF') fail(`not a WAV file: starts with ${JSON.stringify(id)}, expected "RIFF"`);
  if (fourcc(bytes, 8) !== 'WAVE') fail(`not a WAV file: RIFF form type is ${JSON.stringify(fourcc(bytes, 8))}, expected "WAVE"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const riffEnd = view.getUint32(4, true) + 8;
  if (riffEnd < 12) fail(`RIFF size ${riffEnd - 8} is too small to hold the "WAVE" form type (at least 4)`);
  // Chunks are walked up to the end of the RIFF chunk or of the file, whichever comes first; a
  // RIFF size past the end of the file is reported after the walk (which names the cut chunk).
  const end = Math.min(riffEnd, bytes.length);
  let fmtAt = -1;
  let fmtSize = 0;
  let dataAt = -1;
  let dataSize = 0;
  let lastEnd = 12; // end of the last chunk's data, before its pad byte
  let lastOdd = false;
  let at = 12;
  while (at < end) {
    if (end - at < 8)
      fail(
        end === bytes.length && riffEnd > end
          ? `truncated: chunk header at byte ${at} needs 8 bytes, the file has ${end - at} left`
          : `${end - at} stray bytes at byte ${at} inside the RIFF chunk, too short for a chunk header (8 bytes)`,
      );
    const cid = fourcc(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    const remaining = end - body;
    if (cid === 'fmt ') {
      if (fmtAt >= 0) fail(`second "fmt " chunk at byte ${at} (the first is at byte ${fmtAt}); a WAV file has exactly one`);
      if (size < 16 || remaining < 16)
        fail(`"fmt " chunk is ${Math.min(size, remaining)} bytes, expected at least 16 (truncated or corrupt)`);
      [fmtAt, fmtSize] = [at, Math.min(size, remaining)];
    } else if (cid === 'data') {
      if (dataAt >= 0) fail(`second "data" chunk at byte ${at} (the first is at byte ${dataAt}); a WAV file has exactly one`);
      [dataAt, dataSize] = [at, size];
    }
    if (size > remaining) {
      const what = cid === 'data' ? 'the data chunk' : `chunk ${JSON.stringify(cid)} at byte ${at}`;
      if (end === bytes.length) fail(`truncated: ${what} declares ${size} bytes but only ${remaining} follow`);
      fail(`${what} declares ${size} bytes, past the end of the RIFF chunk (RIFF size ${riffEnd - 8} ends at byte ${riffEnd})`);
    }
    lastEnd = body + size;
    lastOdd = size % 2 === 1;
    at = body + size + (size % 2); // RIFF: an odd-sized chunk is followed by a pad byte
  }
  if (fmtAt < 0) fail('no "fmt " chunk (truncated or corrupt)');
  if (dataAt < 0) fail('no "data" chunk (truncated or corrupt)');

  const f = fmtAt + 8;
  let format = view.getUint16(f, true);
  const numChannels = view.getUint16(f + 2, true);
  const sampleRate = view.getUint32(f + 4, true);
  const byteRate = view.getUint32(f + 8, true);
  const blockAlign = view.getUint16(f + 12, true);
  const bits = view.getUint16(f + 14, true);
  if (format === 0xfffe) {
    if (fmtSize < 40) fail(`"fmt " chunk is ${fmtSize} bytes, expected at least 40 for WAVE_FORMAT_EXTENSIBLE`);
    const cbSize = view.getUint16(f + 16, true);
    if (cbSize < 22) fail(`WAVE_FORMAT_EXTENSIBLE extension is ${cbSize} bytes, expected at least 22`);
    const validBits = view.getUint16(f + 18, true);
    if (validBits > bits) fail(`WAVE_FORMAT_EXTENSIBLE has ${validBits} valid bits per sample, more than the container's ${bits}`);
    if (SUBFORMAT_TAIL.some((b, i) => bytes[f + 26 + i] !== b))
      fail('WAVE_FORMAT_EXTENSIBLE subformat is not a KSDATAFORMAT_SUBTYPE GUID', 'unsupported');
    format = view.getUint16(f + 24, true);
  }
  let kind: SampleKind | undefined;
  if (format === 1) kind = ({ 8: 'u8', 16: 's16', 24: 's24', 32: 's32' } as const)[bits as 8];
  else if (format === 3) kind = ({ 32: 'f32', 64: 'f64' } as const)[bits as 32];
  else
    fail(
      `unsupported audio format ${format}; expected 1 (PCM), 3 (IEEE float) or 0xFFFE (extensible) with subformat 1 or 3`,
      'unsupported',
    );
  if (!kind)
    fail(
      format === 1
        ? `PCM with ${bits} bits per sample; expected 8, 16, 24 or 32`
        : `IEEE float with ${bits} bits per sample; expected 32 or 64`,
      'unsupported',
    );
  if (numChannels < 1) fail(`numChannels is ${numChannels}, expected >= 1`);
  if (sampleRate < 1) fail(`sampleRate is ${sampleRate}, expected > 0`);
  const expectedAlign = (numChannels * bits) / 8;
  if (blockAlign !== expectedAlign) fail(`blockAlign is ${blockAlign}, expected numChannels * bitsPerSample / 8 = ${expectedAlign}`);
  if (byteRate !== sampleRate * blockAlign)
    fail(`byteRate is ${byteRate}, expected sampleRate * blockAlign = ${sampleRate} * ${blockAlign} = ${sampleRate * blockAlign}`);
  if (dataSize % blockAlign !== 0) fail(`data chunk size ${dataSize} is not a multiple of the block size ${blockAlign} (truncated)`);
  if (riffEnd > bytes.length && !(riffEnd === bytes.length + 1 && lastOdd && lastEnd === bytes.length))
    // (a RIFF size that counts the final pad byte the writer then left out is accepted)
    fail(`truncated: the RIFF size ${riffEnd - 8} says the file is ${riffEnd} bytes, it has ${bytes.length}`);
  // The frame count comes from the data chunk header, never from the bytes that follow it.
  const frames = dataSize / blockAlign;
  if (frames > maxSamples)
    fail(`data chunk holds ${frames} sample frames, more than maxSamples = ${maxSamples}; pass { maxSamples } to raise the limit`, 'limit');
  const bitDepth = kind === 'f32' ? '32f' : kind === 'f64' ? '64' : String(bits);
  return { numChannels, sampleRate, blockAlign, kind: kind!, bitDepth, dataOffset: dataAt + 8, frames };
}

/**
 * Decodes WAV bytes; `name` (a path) is used in errors. Failures caused by the file are
 * `WavError`s (see the module comment for what is checked).
 */
export function decodeWav(bytes: Uint8Array, name = '<buffer>', opts: ReadWavOptions = {}): WavAudio {
  const mode = opts.channels ?? 'mix';
  if (mode !== 'mix' && mode !== 'first' && mode !== 'error')
    throw new Error(`decodeWav ${name}: channels must be 'mix', 'first' or 'error', got ${JSON.stringify(mode)}`);
  const maxBytes = checkLimitOption(`decodeWav ${name}`, 'maxBytes', opts.maxBytes ?? WAV_DEFAULT_MAX_BYTES);
  const maxSamples = checkLimitOption(`decodeWav ${name}`, 'maxSamples', opts.maxSamples ?? WAV_DEFAULT_MAX_SAMPLES);
  if (bytes.length > maxBytes)
    throw new WavError(
      name,
      `file is ${bytes.length} bytes, more than maxBytes = ${maxBytes}; pass { maxBytes } to raise the limit`,
      'limit',
    );
  const w = checkRiff(bytes, name, maxSamples);
  if (mode === 'error' && w.numChannels > 1)
    throw new WavError(name, `has ${w.numChannels} channels, expected mono (pass channels: 'mix' or 'first' to accept it)`, 'unsupported');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = w.frames;
  const samples = new Float32Array(n);
  const used = mode === 'first' ? 1 : w.numChannels;
  const width = w.blockAlign / w.numChannels;
  const float = w.kind === 'f32' || w.kind === 'f64';
  for (let c = 0; c < used; c++) {
    let p = w.dataOffset + c * width;
    for (let i = 0; i < n; i++, p += w.blockAlign) {
      let v: number;
      switch (w.kind) {
        case 'u8':
          v = (bytes[p]! - 128) / 128;
          break;
        case 's16':
          v = view.getInt16(p, true) / 32768;
          break;
        case 's24':
          v = (((bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16)) << 8) >> 8) / 8388608;
          break;
        case 's32':
          v = view.getInt32(p, true) / 2147483648;
          break;
        case 'f32':
          v = view.getFloat32(p, true);
          break;
        default:
          v = view.getFloat64(p, true);
      }
      if (float && !Number.isFinite(v))
        throw new WavError(name, `sample ${i} of channel ${c} is ${v}; float samples must be finite (corrupt data)`);
      samples[i]! += v / used;
    }
  }
  if (float)
    for (let i = 0; i < n; i++)
      if (!Number.isFinite(samples[i]!)) throw new WavError(name, `sample ${i} does not fit a float32 (it is ${samples[i]}); corrupt data`);
  return { samples, sampleRate: w.sampleRate, numChannels: w.numChannels, bitDepth: w.bitDepth };
}

/** Reads a WAV file as mono float samples (see the module comment for formats and channels). Node only. */
export function readWav(path: string, opts: ReadWavOptions = {}): WavAudio {
  nodeOnly('readWav');
  const maxBytes = checkLimitOption(`readWav ${path}`, 'maxBytes', opts.maxBytes ?? WAV_DEFAULT_MAX_BYTES);
  let st: ReturnType<typeof fs.statSync>;
  try {
    st = fs.statSync(path);
  } catch (e) {
    throw new WavError(path, 'file not found', 'io', { cause: e });
  }
  if (!st.isFile()) throw new WavError(path, 'not a regular file', 'io');
  if (st.size > maxBytes)
    throw new WavError(path, `file is ${st.size} bytes, more than maxBytes = ${maxBytes}; pass { maxBytes } to raise the limit`, 'limit');
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path); // a Buffer is a Uint8Array: no copy
  } catch (e) {
    throw new WavError(path, `cannot read: ${messageOf(e)}`, 'io', { cause: e });
  }
  return decodeWav(bytes, path, opts);
}

export interface WriteWavOptions {
  /** 'pcm16' (default; samples clipped to [-1, 1], scaled by 32768 and rounded) or 'float32'. */
  format?: 'pcm16' | 'float32';
}

/** Encodes mono samples as WAV bytes. */
export function encodeWav(samples: ArrayLike<number>, sampleRate: number, opts: WriteWavOptions = {}): Uint8Array {
  if (!Number.isInteger(sampleRate) || sampleRate < 1)
    throw new Error(`encodeWav: sampleRate must be a positive integer, got ${sampleRate}`);
  const format = opts.format ?? 'pcm16';
  if (format !== 'pcm16' && format !== 'float32')
    throw new Error(`encodeWav: format must be 'pcm16' or 'float32', got ${JSON.stringify(format)}`);
  for (let i = 0; i < samples.length; i++)
    if (!Number.isFinite(samples[i]!)) throw new Error(`encodeWav: samples[${i}] is ${samples[i]}, expected a finite number`);
  // RIFF header, a 16-byte "fmt " chunk (PCM: format 1, IEEE float: format 3; mono), then "data".
  const width = format === 'float32' ? 4 : 2;
  const size = samples.length * width;
  const out = new Uint8Array(44 + size);
  const v = new DataView(out.buffer);
  const ascii = (at: number, id: string) => {
    for (let i = 0; i < 4; i++) out[at + i] = id.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  v.setUint32(4, 36 + size, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, format === 'float32' ? 3 : 1, true);
  v.setUint16(22, 1, true); // channels
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * width, true); // byte rate
  v.setUint16(32, width, true); // block align
  v.setUint16(34, 8 * width, true); // bits per sample
  ascii(36, 'data');
  v.setUint32(40, size, true);
  for (let i = 0; i < samples.length; i++)
    if (format === 'float32') v.setFloat32(44 + 4 * i, samples[i]!, true);
    else v.setInt16(44 + 2 * i, Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768))), true);
  return out;
}

/** Writes mono samples to a WAV file. Node only. */
export function writeWav(path: string, samples: ArrayLike<number>, sampleRate: number, opts: WriteWavOptions = {}): void {
  nodeOnly('writeWav');
  fs.writeFileSync(path, encodeWav(samples, sampleRate, opts));
}
