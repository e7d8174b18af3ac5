/**
 * The speech codec on @mmlm/data's tone speech: training examples (word label per frame from the
 * alignment, pitch targets from the YIN tracker) and the evaluation of issue 16:
 *   (a) resynthesis read-back: decodeTone(decode(encode(wave))) against the reference words (WER),
 *       beside the tone decoder's WER on the original audio (the ceiling);
 *   (b) content: a word probe on level-1 codes alone against one on levels 2-4 alone (codec_train.ts);
 *   (c) codebook usage per level.
 */
import { corpusWer, decodeTone, TONE_VOCAB, ToneSpeechDataset, type ToneUtterance, trackPitch } from '@mmlm/data';
import { CODEC_IGNORE, type SpeechCodec, type SpeechCodecConfig, type SpeechCodes } from '../codec.js';
import { type CodecExample, codebookUsage, type LevelUsage, levelProbe, type ProbeResult } from '../codec_train.js';

const WORD_INDEX = new Map(TONE_VOCAB.map((w, i) => [w.word, i]));

/** YIN frames with aperiodicity above this are unvoiced for the pitch target. */
const MAX_APERIODICITY = 0.3;

/**
 * One tone utterance as a codec example: the wave zero-padded to whole frames; each frame labelled
 * with the word (index in TONE_VOCAB) its centre falls in, CODEC_IGNORE in pauses; each subframe's
 * pitch from trackPitch (YIN at the subframe hop, linearly interpolated to the subframe centre), 0
 * outside the words or where YIN finds no period.
 */
export function toneCodecExample(u: ToneUtterance, config: Pick<SpeechCodecConfig, 'sampleRate' | 'hop' | 'subframes'>): CodecExample {
  const { sampleRate, hop, subframes } = config;
  if (u.sampleRate !== sampleRate) throw new Error(`toneCodecExample: utterance at ${u.sampleRate} Hz, expected ${sampleRate} Hz`);
  const T = Math.ceil(u.samples.length / hop);
  const wave = new Float32Array(T * hop);
  wave.set(u.samples);
  const inWord = (s: number) => u.alignment.find((a) => s >= a.start && s < a.end);
  const labels = new Int32Array(T);
  for (let t = 0; t < T; t++) {
    const a = inWord(t * hop + hop / 2);
    labels[t] = a ? WORD_INDEX.get(a.word)! : CODEC_IGNORE;
  }
  const hs = hop / subframes;
  const track = trackPitch(u.samples, { sampleRate, hopSeconds: hs / sampleRate });
  const n = track.f0.length;
  const f0 = new Float32Array(T * subframes);
  for (let j = 0; j < f0.length; j++) {
    const c = j * hs + hs / 2;
    if (!inWord(c) || n === 0) continue;
    // track frame f is centred on centers[f] = f hs + W / 2
    const x = Math.min(n - 1, Math.max(0, (c - track.centers[0]!) / hs));
    const f = Math.min(n - 2, Math.floor(x));
    if (f < 0) continue;
    const a = Math.min(1, x - f);
    const ap = Math.max(track.aperiodicity[f]!, track.aperiodicity[f + 1]!);
    if (ap > MAX_APERIODICITY) continue;
    f0[j] = track.f0[f]! * (1 - a) + track.f0[f + 1]! * a;
  }
  return { wave, labels, f0 };
}

export interface ToneCodecDataOptions {
  /** Dataset seed (speakers and utterances). */
  seed: number;
  numSpeakers?: number;
  /** Utterance indices [start, start + count). */
  start: number;
  count: number;
  sampleRate: number;
  text?: 'sentences' | 'random';
}

/** Utterances [start, start + count) of ToneSpeechDataset at the codec's sample rate. */
export function toneUtterances(o: ToneCodecDataOptions): ToneUtterance[] {
  const ds = new ToneSpeechDataset({
    seed: o.seed,
    numSpeakers: o.numSpeakers ?? 8,
    sampleRate: o.sampleRate,
    text: o.text ?? 'sentences',
  });
  return Array.from({ length: o.count }, (_, i) => ds.sample(o.start + i));
}

export interface ToneCodecEvaluation {
  utterances: number;
  words: number;
  /** Tone-decoder WER of decode(encode(wave)). */
  resynthWer: number;
  /** Tone-decoder WER of the original audio (the ceiling). */
  originalWer: number;
  /** Word probes from level 1 alone and from levels 2..Lq alone. */
  probeLevel1: ProbeResult;
  probeRest: ProbeResult;
  /** The same probe on each level alone (equal feature counts: K one-hot codes each). */
  probePerLevel: ProbeResult[];
  usage: LevelUsage[];
  /** Reference and read-back words of the first few test utterances. */
  examples: { ref: string; original: string; resynth: string }[];
  seconds: number;
}

/**
 * Issue 16's evaluation of `codec` on held-out `test` utterances, the probes fitted on `probeTrain`
 * (utterances other than the test ones).
 */
export function evaluateToneCodec(
  codec: SpeechCodec,
  probeTrain: readonly ToneUtterance[],
  test: readonly ToneUtterance[],
): ToneCodecEvaluation {
  const t0 = performance.now();
  const c = codec.config;
  const sr = c.sampleRate;
  const codesOf = (us: readonly ToneUtterance[]) => us.map((u) => codec.encode(u.samples, { sampleRate: u.sampleRate }));
  const labelsOf = (us: readonly ToneUtterance[]) => us.map((u) => toneCodecExample(u, c).labels);
  const testCodes: SpeechCodes[] = codesOf(test);
  const refs = test.map((u) => u.words);
  const resynth = testCodes.map((codes) => decodeTone(codec.decode(codes), { sampleRate: sr }).words);
  const original = test.map((u) => decodeTone(u.samples, { sampleRate: sr }).words);
  const trainSet = { codes: codesOf(probeTrain), labels: labelsOf(probeTrain) };
  const testSet = { codes: testCodes, labels: labelsOf(test) };
  const rest = Array.from({ length: c.levels - 1 }, (_, i) => i + 1);
  return {
    utterances: test.length,
    words: refs.reduce((a, r) => a + r.length, 0),
    resynthWer: corpusWer(refs, resynth).wer,
    originalWer: corpusWer(refs, original).wer,
    probeLevel1: levelProbe(trainSet, testSet, [0], c.codebookSize, c.numClasses),
    probeRest: levelProbe(trainSet, testSet, rest, c.codebookSize, c.numClasses),
    probePerLevel: Array.from({ length: c.levels }, (_, l) => levelProbe(trainSet, testSet, [l], c.codebookSize, c.numClasses)),
    usage: codebookUsage(testCodes, c.codebookSize),
    examples: test.slice(0, 5).map((u, i) => ({ ref: u.text, original: original[i]!.join(' '), resynth: resynth[i]!.join(' ') })),
    seconds: (performance.now() - t0) / 1000,
  };
}
