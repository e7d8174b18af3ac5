/**
 * WAV read/write (RIFF WAVE: Microsoft/IBM Multimedia Programming Interface 1.0, 1991; PCM and IEEE
 * float formats) on top of wavefile. The RIFF chunk layout is checked here before wavefile decodes
 * the samples, because wavefile silently returns fewer samples for a truncated data chunk.
 *
 * Reading returns mono Float32Array samples in [-1, 1]: signed PCM of b bits is divided by
 * 2^(b-1), 8-bit unsigned PCM is (x - 128) / 128, float data is passed through. Multi-channel files
 * are mixed to mono by averaging the channels (`channels: 'mix'`, the default), reduced to their
 * first channel (`'first'`), or rejected (`'error'`).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import wavefile from 'wavefile';

export interface WavAudio {
  /** Mono samples in [-1, 1] (float files may exceed it). */
  samples: Float32Array;
  sampleRate: number;
  /** Channel count of the file (before mixing to mono). */
  numChannels: number;
  /** wavefile's bit-depth code: '8', '16', '24', '32' (PCM) or '32f', '64' (float). */
  bitDepth: string;
}

export interface ReadWavOptions {
  /** What to do with more than one channel (default 'mix'). */
  channels?: 'mix' | 'first' | 'error';
}

interface FmtInfo {
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
  bitsPerSample: number;
  blockAlign: number;
}

function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

/** Walks the RIFF chunks and checks fmt and data; throws naming `name` and the problem. */
function checkRiff(bytes: Uint8Array, name: string): FmtInfo {
  const fail = (msg: string): never => {
    throw new Error(`WAV ${name}: ${msg}`);
  };
  if (bytes.length < 12) fail(`file is ${bytes.length} bytes, too short for a RIFF header (12 bytes)`);
  const id = fourcc(bytes, 0);
  if (id === 'RF64') fail('RF64 (64-bit WAV) is not supported');
  if (id !== 'RIFF') fail(`not a WAV file: starts with ${JSON.stringify(id)}, expected "RIFF"`);
  if (fourcc(bytes, 8) !== 'WAVE') fail(`not a WAV file: RIFF form type is ${JSON.stringify(fourcc(bytes, 8))}, expected "WAVE"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fmt: FmtInfo | undefined;
  let dataSize = -1;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const cid = fourcc(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    const remaining = bytes.length - body;
    if (cid === 'fmt ') {
      if (size < 16 || remaining < 16)
        fail(`"fmt " chunk is ${Math.min(size, remaining)} bytes, expected at least 16 (truncated or corrupt)`);
      fmt = {
        audioFormat: view.getUint16(body, true),
        numChannels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        blockAlign: view.getUint16(body + 12, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    } else if (cid === 'data') {
      if (size > remaining) fail(`truncated: the data chunk declares ${size} bytes but only ${remaining} follow`);
      dataSize = size;
    }
    if (size > remaining && cid !== 'data') {
      if (fmt && dataSize >= 0) break;
      fail(`truncated: chunk ${JSON.stringify(cid)} at byte ${at} declares ${size} bytes but only ${remaining} follow`);
    }
    at = body + size + (size % 2);
  }
  if (!fmt) fail('no "fmt " chunk (truncated or corrupt)');
  if (dataSize < 0) fail('no "data" chunk (truncated or corrupt)');
  const f = fmt!;
  if (f.audioFormat !== 1 && f.audioFormat !== 3 && f.audioFormat !== 0xfffe)
    fail(`unsupported audio format ${f.audioFormat}; expected 1 (PCM), 3 (IEEE float) or 0xFFFE (extensible)`);
  if (f.numChannels < 1) fail(`numChannels is ${f.numChannels}, expected >= 1`);
  if (f.sampleRate < 1) fail(`sampleRate is ${f.sampleRate}, expected > 0`);
  if (![8, 16, 24, 32, 64].includes(f.bitsPerSample)) fail(`bitsPerSample is ${f.bitsPerSample}, expected 8, 16, 24, 32 or 64`);
  const expectedAlign = (f.numChannels * f.bitsPerSample) / 8;
  if (f.blockAlign !== expectedAlign) fail(`blockAlign is ${f.blockAlign}, expected numChannels * bitsPerSample / 8 = ${expectedAlign}`);
  if (dataSize % f.blockAlign !== 0) fail(`data chunk size ${dataSize} is not a multiple of the block size ${f.blockAlign} (truncated)`);
  return f;
}

/** Decodes WAV bytes; `name` (a path) is used in errors. */
export function decodeWav(bytes: Uint8Array, name = '<buffer>', opts: ReadWavOptions = {}): WavAudio {
  const fmt = checkRiff(bytes, name);
  const mode = opts.channels ?? 'mix';
  if (mode === 'error' && fmt.numChannels > 1)
    throw new Error(`WAV ${name}: has ${fmt.numChannels} channels, expected mono (pass channels: 'mix' or 'first' to accept it)`);
  let wav: InstanceType<typeof wavefile.WaveFile>;
  try {
    wav = new wavefile.WaveFile(bytes);
  } catch (e) {
    throw new Error(`WAV ${name}: cannot decode (${(e as Error).message})`);
  }
  const bitDepth = wav.bitDepth;
  const isFloat = bitDepth === '32f' || bitDepth === '64';
  const raw = wav.getSamples(false, Float64Array) as unknown as Float64Array | Float64Array[];
  const chans = fmt.numChannels === 1 ? [raw as Float64Array] : (raw as Float64Array[]);
  const scale = (x: number) => (isFloat ? x : bitDepth === '8' ? (x - 128) / 128 : x / 2 ** (fmt.bitsPerSample - 1));
  const n = chans[0]!.length;
  const samples = new Float32Array(n);
  const used = mode === 'first' ? 1 : chans.length;
  for (let c = 0; c < used; c++) {
    const ch = chans[c]!;
    for (let i = 0; i < n; i++) samples[i]! += scale(ch[i]!) / used;
  }
  return { samples, sampleRate: fmt.sampleRate, numChannels: fmt.numChannels, bitDepth };
}

/** Reads a WAV file as mono float samples (see the module comment for formats and channels). */
export function readWav(path: string, opts: ReadWavOptions = {}): WavAudio {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`WAV ${path}: file not found`);
  }
  if (!st.isFile()) throw new Error(`WAV ${path}: not a regular file`);
  return decodeWav(new Uint8Array(readFileSync(path)), path, opts);
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
  const wav = new wavefile.WaveFile();
  if (format === 'float32') wav.fromScratch(1, sampleRate, '32f', Float32Array.from(samples));
  else {
    const pcm = new Int16Array(samples.length);
    for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768)));
    wav.fromScratch(1, sampleRate, '16', pcm);
  }
  return wav.toBuffer();
}

/** Writes mono samples to a WAV file. */
export function writeWav(path: string, samples: ArrayLike<number>, sampleRate: number, opts: WriteWavOptions = {}): void {
  writeFileSync(path, encodeWav(samples, sampleRate, opts));
}
