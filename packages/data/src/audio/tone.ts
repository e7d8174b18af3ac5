/**
 * Tone speech: a stand-in for speech in TTS/ASR experiments. Each word of a 16-word vocabulary is
 * a pitch contour (as lexical tones are in Mandarin or Yoruba): a piecewise-linear curve through 5
 * knots, in semitones relative to the speaker's base pitch. A speaker has a base pitch, a pitch
 * range (contour scale), a speaking rate and a timbre: the amplitudes of the first 10 harmonics of
 * a harmonic oscillator. Utterances are words separated by short pauses, with word-level
 * alignments, optional white noise at a given SNR, all deterministic by seed.
 */
import { Rng } from '@mmlm/core';

export const TONE_SAMPLE_RATE = 16000;

/** Knot positions (fraction of the word) of every contour. */
export const CONTOUR_KNOTS: readonly number[] = [0, 0.25, 0.5, 0.75, 1];

export interface ToneWord {
  word: string;
  /** Semitones relative to the speaker's base pitch at `CONTOUR_KNOTS`. */
  contour: readonly number[];
  /** The contour's shape in words. */
  shape: string;
}

/**
 * The vocabulary. The contours were chosen so that every pair differs by at least 2.9 semitones RMS
 * over the word (a greedy max-min selection over natural one-turn contours, from 6 basic tones).
 */
export const TONE_VOCAB: readonly ToneWord[] = [
  { word: 'red', contour: [5, 5, 5, 5, 5], shape: 'level high' },
  { word: 'green', contour: [-5, -5, -5, -5, -5], shape: 'level low' },
  { word: 'blue', contour: [-5, -2.5, 0, 2.5, 5], shape: 'rise' },
  { word: 'yellow', contour: [5, 2.5, 0, -2.5, -5], shape: 'fall' },
  { word: 'white', contour: [-4, 1, 6, 1, -4], shape: 'rise-fall' },
  { word: 'black', contour: [4, -1, -6, -1, 4], shape: 'fall-rise' },
  { word: 'circle', contour: [-5, -5, -5, -2.5, 5], shape: 'late rise' },
  { word: 'square', contour: [-5, 2.5, 5, 5, 5], shape: 'early rise' },
  { word: 'triangle', contour: [5, 5, 5, 2.5, -5], shape: 'late fall' },
  { word: 'ring', contour: [5, -2.5, -5, -5, -5], shape: 'early fall' },
  { word: 'cross', contour: [-5, -5, 2.5, -2.5, -2.5], shape: 'low, mid peak' },
  { word: 'star', contour: [2.5, 2.5, -2.5, 5, 5], shape: 'high, mid dip' },
  { word: 'moves', contour: [5, 5, 2.5, -2.5, 5], shape: 'high, late dip' },
  { word: 'jumps', contour: [-5, 2.5, -2.5, -5, -5], shape: 'low, early peak' },
  { word: 'left', contour: [-5, -5, -5, 2.5, -5], shape: 'low, late peak' },
  { word: 'right', contour: [5, -2.5, 5, 5, 5], shape: 'high, early dip' },
];

const VOCAB_INDEX = new Map(TONE_VOCAB.map((w, i) => [w.word, i]));

/** The vocabulary entry of `word`; throws naming the word and the vocabulary when unknown. */
export function toneWord(word: string): ToneWord {
  const i = VOCAB_INDEX.get(word);
  if (i === undefined)
    throw new Error(`tone speech: unknown word ${JSON.stringify(word)}; the vocabulary is ${TONE_VOCAB.map((w) => w.word).join(' ')}`);
  return TONE_VOCAB[i]!;
}

/** Contour value (semitones) at fraction u in [0, 1] of the word, by linear interpolation of the knots. */
export function contourAt(contour: readonly number[], u: number): number {
  const x = Math.min(1, Math.max(0, u)) * (contour.length - 1);
  const i = Math.min(contour.length - 2, Math.floor(x));
  const t = x - i;
  return contour[i]! * (1 - t) + contour[i + 1]! * t;
}

export interface ToneSpeaker {
  id: string;
  /** Pitch of contour value 0, in Hz. */
  basePitchHz: number;
  /** Multiplies every contour (a more or less expressive voice). */
  range: number;
  /** Multiplies word durations (> 1 is slower). */
  rate: number;
  /** Linear amplitudes of harmonics 1..10, the first being 1. */
  harmonics: number[];
}

export const NUM_HARMONICS = 10;

/**
 * `n` speakers drawn with `seed`: base pitch log-uniform in 95-230 Hz, range 0.85-1.15, rate
 * 0.85-1.2, harmonic k at -tilt * log2(k) dB with tilt 3-9 dB/octave plus N(0, 4 dB) per harmonic,
 * capped at +3 dB over the fundamental (so the fundamental stays strong enough for pitch tracking).
 */
export function makeToneSpeakers(n: number, seed: number): ToneSpeaker[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`makeToneSpeakers: n must be an integer >= 1, got ${n}`);
  const rng = new Rng(seed).fork('tone-speakers');
  return Array.from({ length: n }, (_, s) => {
    const basePitchHz = 95 * (230 / 95) ** rng.uniform();
    const range = 0.85 + 0.3 * rng.uniform();
    const rate = 0.85 + 0.35 * rng.uniform();
    const tilt = 3 + 6 * rng.uniform();
    const harmonics = [1];
    for (let k = 2; k <= NUM_HARMONICS; k++) {
      const db = Math.min(3, -tilt * Math.log2(k) + 4 * rng.normal());
      harmonics.push(10 ** (db / 20));
    }
    return { id: `spk${s}`, basePitchHz, range, rate, harmonics };
  });
}

export interface WordAlignment {
  word: string;
  /** First sample of the word. */
  start: number;
  /** One past the last sample of the word. */
  end: number;
}

export interface ToneUtterance {
  samples: Float32Array;
  sampleRate: number;
  words: string[];
  text: string;
  alignment: WordAlignment[];
  speaker: ToneSpeaker;
}

export interface SynthesizeOptions {
  seed: number;
  sampleRate?: number;
  /** White Gaussian noise at this SNR in dB (signal power measured over the words); none when undefined. */
  noiseSnrDb?: number;
  /** Nominal word duration in seconds before the speaker's rate (default 0.3). */
  wordSeconds?: number;
  /** Pause between words, uniform in [min, max] seconds (default [0.08, 0.16]). */
  pauseSeconds?: [number, number];
}

/**
 * Renders `words` (an array or a space-separated string) with `speaker`. Per word: duration jitter
 * +-10%, contour offset N(0, 0.3 st) and scale 1 + N(0, 0.05), loudness 0.3-0.6, 20 ms raised-cosine
 * onset and offset, random start phase.
 */
export function synthesizeTone(words: string | readonly string[], speaker: ToneSpeaker, opts: SynthesizeOptions): ToneUtterance {
  const list = typeof words === 'string' ? words.split(/\s+/).filter((w) => w.length > 0) : [...words];
  if (list.length === 0) throw new Error('synthesizeTone: need at least one word, got none');
  const entries = list.map(toneWord);
  const sr = opts.sampleRate ?? TONE_SAMPLE_RATE;
  if (!Number.isInteger(sr) || sr < 8000) throw new Error(`synthesizeTone: sampleRate must be an integer >= 8000, got ${sr}`);
  const wordSeconds = opts.wordSeconds ?? 0.3;
  if (!(wordSeconds >= 0.1 && wordSeconds <= 2)) throw new Error(`synthesizeTone: wordSeconds must be in [0.1, 2], got ${wordSeconds}`);
  const [pMin, pMax] = opts.pauseSeconds ?? [0.08, 0.16];
  if (!(pMin >= 0.06 && pMax >= pMin))
    throw new Error(`synthesizeTone: pauseSeconds must satisfy 0.06 <= min <= max, got [${pMin}, ${pMax}]`);
  if (!(speaker.basePitchHz > 0) || speaker.harmonics.length === 0)
    throw new Error(
      `synthesizeTone: speaker ${speaker.id} needs basePitchHz > 0 and harmonics, got ${speaker.basePitchHz} and ${speaker.harmonics.length}`,
    );
  const rng = new Rng(opts.seed);

  const lead = Math.round(sr * (0.1 + 0.1 * rng.uniform()));
  const plan: { start: number; len: number; offset: number; scale: number; gain: number; phase: number }[] = [];
  let t = lead;
  for (let w = 0; w < entries.length; w++) {
    const len = Math.round(sr * wordSeconds * speaker.rate * (0.9 + 0.2 * rng.uniform()));
    plan.push({
      start: t,
      len,
      offset: 0.3 * rng.normal(),
      scale: 1 + 0.05 * rng.normal(),
      gain: 0.3 + 0.3 * rng.uniform(),
      phase: rng.uniform(),
    });
    t += len;
    if (w + 1 < entries.length) t += Math.round(sr * (pMin + (pMax - pMin) * rng.uniform()));
  }
  const total = t + Math.round(sr * (0.1 + 0.1 * rng.uniform()));
  const samples = new Float32Array(total);
  const ramp = Math.round(0.02 * sr);
  const nyquist = sr / 2;
  let signalPower = 0;
  let signalCount = 0;
  entries.forEach((e, w) => {
    const p = plan[w]!;
    let phase = p.phase;
    for (let i = 0; i < p.len; i++) {
      const u = i / (p.len - 1);
      const st = speaker.range * p.scale * contourAt(e.contour, u) + p.offset;
      const f0 = speaker.basePitchHz * 2 ** (st / 12);
      phase += f0 / sr;
      phase -= Math.floor(phase);
      const env =
        i < ramp
          ? 0.5 - 0.5 * Math.cos((Math.PI * i) / ramp)
          : i >= p.len - ramp
            ? 0.5 - 0.5 * Math.cos((Math.PI * (p.len - 1 - i)) / ramp)
            : 1;
      let x = 0;
      for (let k = 1; k <= speaker.harmonics.length && k * f0 < nyquist * 0.9; k++)
        x += speaker.harmonics[k - 1]! * Math.sin(2 * Math.PI * k * phase);
      const y = p.gain * env * x * 0.35;
      samples[p.start + i] = y;
      signalPower += y * y;
      signalCount++;
    }
  });
  if (opts.noiseSnrDb !== undefined) {
    if (!Number.isFinite(opts.noiseSnrDb)) throw new Error(`synthesizeTone: noiseSnrDb must be finite, got ${opts.noiseSnrDb}`);
    const sigma = Math.sqrt(signalPower / signalCount / 10 ** (opts.noiseSnrDb / 10));
    const nrng = rng.fork('noise');
    for (let i = 0; i < total; i++) samples[i]! += sigma * nrng.normal();
  }
  return {
    samples,
    sampleRate: sr,
    words: list,
    text: list.join(' '),
    alignment: entries.map((e, w) => ({ word: e.word, start: plan[w]!.start, end: plan[w]!.start + plan[w]!.len })),
    speaker,
  };
}

const COLOURS = ['red', 'green', 'blue', 'yellow', 'white', 'black'];
const SHAPES = ['circle', 'square', 'triangle', 'ring', 'cross', 'star'];

/** A sentence "[colour] shape verb [direction]" (e.g. "red circle moves left") from the vocabulary. */
export function toneSentence(rng: Rng): string[] {
  const out: string[] = [];
  if (rng.uniform() < 0.8) out.push(COLOURS[rng.int(0, COLOURS.length)]!);
  out.push(SHAPES[rng.int(0, SHAPES.length)]!);
  out.push(rng.uniform() < 0.5 ? 'moves' : 'jumps');
  if (rng.uniform() < 0.7) out.push(rng.uniform() < 0.5 ? 'left' : 'right');
  return out;
}

export interface ToneSpeechConfig {
  seed: number;
  /** Number of speakers (utterance i is spoken by speaker i mod numSpeakers). Default 8. */
  numSpeakers?: number;
  /** 'sentences' (default): toneSentence; 'random': 3-6 uniformly random vocabulary words. */
  text?: 'sentences' | 'random';
  noiseSnrDb?: number;
  sampleRate?: number;
}

/** An indexable, deterministic tone-speech dataset. */
export class ToneSpeechDataset {
  readonly config: Required<Omit<ToneSpeechConfig, 'noiseSnrDb'>> & { noiseSnrDb?: number };
  readonly speakers: ToneSpeaker[];

  constructor(config: ToneSpeechConfig) {
    if (!Number.isFinite(config.seed)) throw new Error(`ToneSpeechDataset: seed must be a finite number, got ${config.seed}`);
    const text = config.text ?? 'sentences';
    if (text !== 'sentences' && text !== 'random')
      throw new Error(`ToneSpeechDataset: text must be 'sentences' or 'random', got ${JSON.stringify(text)}`);
    this.config = { seed: config.seed, numSpeakers: config.numSpeakers ?? 8, text, sampleRate: config.sampleRate ?? TONE_SAMPLE_RATE };
    if (config.noiseSnrDb !== undefined) this.config.noiseSnrDb = config.noiseSnrDb;
    this.speakers = makeToneSpeakers(this.config.numSpeakers, config.seed);
  }

  /** The words of utterance `i` (cheap: no audio). */
  words(i: number): string[] {
    if (!Number.isInteger(i) || i < 0) throw new Error(`ToneSpeechDataset: index must be an integer >= 0, got ${i}`);
    const rng = new Rng(this.config.seed).fork(`utterance-${i}`);
    if (this.config.text === 'sentences') return toneSentence(rng);
    return Array.from({ length: rng.int(3, 7) }, () => TONE_VOCAB[rng.int(0, TONE_VOCAB.length)]!.word);
  }

  sample(i: number): ToneUtterance {
    const words = this.words(i);
    const seed = new Rng(this.config.seed).fork(`audio-${i}`).nextSeed();
    const opts: SynthesizeOptions = { seed, sampleRate: this.config.sampleRate };
    if (this.config.noiseSnrDb !== undefined) opts.noiseSnrDb = this.config.noiseSnrDb;
    return synthesizeTone(words, this.speakers[i % this.speakers.length]!, opts);
  }

  describe(): ToneSpeechDescription {
    return describeToneSpeech(this.config);
  }
}

export interface ToneSpeechDescription {
  kind: 'tone-speech';
  config: ToneSpeechConfig;
  vocabulary: { word: string; contour: readonly number[]; shape: string }[];
  speakers: ToneSpeaker[];
}

/** The exact configuration of a tone-speech dataset (vocabulary and speakers included), for experiment records. */
export function describeToneSpeech(config: ToneSpeechConfig): ToneSpeechDescription {
  return {
    kind: 'tone-speech',
    config: { ...config },
    vocabulary: TONE_VOCAB.map((w) => ({ ...w })),
    speakers: makeToneSpeakers(config.numSpeakers ?? 8, config.seed),
  };
}
