/**
 * The measurements behind the README's tone-speech figures: decoder word accuracy over generated
 * utterances, and same- versus different-speaker separation of the timbre embedding. Shared by the
 * tests and `pnpm --filter @mmlm/data tone-report`.
 */
import { decodeTone } from './decoder.js';
import { cosineSimilarity, equalErrorRate, speakerEmbedding } from './speaker.js';
import { ToneSpeechDataset } from './tone.js';
import { corpusWer, type WerCounts } from './wer.js';

export interface DecoderBenchmarkOptions {
  seed: number;
  utterances: number;
  numSpeakers?: number;
  noiseSnrDb?: number;
  text?: 'sentences' | 'random';
}

export interface DecoderBenchmark extends WerCounts {
  wer: number;
  /** 1 - WER. */
  wordAccuracy: number;
  utterances: number;
  /** Utterances decoded without any error. */
  exactUtterances: number;
}

/** Decodes `utterances` generated utterances and scores them against their text. */
export function benchmarkToneDecoder(opts: DecoderBenchmarkOptions): DecoderBenchmark {
  const ds = new ToneSpeechDataset({ seed: opts.seed, numSpeakers: opts.numSpeakers ?? 8, noiseSnrDb: opts.noiseSnrDb, text: opts.text });
  const refs: string[][] = [];
  const hyps: string[][] = [];
  let exact = 0;
  for (let i = 0; i < opts.utterances; i++) {
    const u = ds.sample(i);
    const words = decodeTone(u.samples, { sampleRate: u.sampleRate }).words;
    refs.push(u.words);
    hyps.push(words);
    if (words.join(' ') === u.text) exact++;
  }
  const c = corpusWer(refs, hyps);
  return { ...c, wordAccuracy: 1 - c.wer, utterances: opts.utterances, exactUtterances: exact };
}

export interface SpeakerBenchmarkOptions {
  seed: number;
  numSpeakers: number;
  utterancesPerSpeaker: number;
  noiseSnrDb?: number;
}

export interface SpeakerBenchmark {
  samePairs: number;
  differentPairs: number;
  minSame: number;
  meanSame: number;
  maxDifferent: number;
  meanDifferent: number;
  /** Equal error rate of verification by cosine similarity. */
  eer: number;
}

/** Cosine similarity of speaker embeddings over all pairs of utterances (different words in each). */
export function benchmarkSpeakerSimilarity(opts: SpeakerBenchmarkOptions): SpeakerBenchmark {
  const ds = new ToneSpeechDataset({ seed: opts.seed, numSpeakers: opts.numSpeakers, noiseSnrDb: opts.noiseSnrDb });
  const n = opts.numSpeakers * opts.utterancesPerSpeaker;
  const embs = Array.from({ length: n }, (_, i) => speakerEmbedding(ds.sample(i).samples));
  const same: number[] = [];
  const different: number[] = [];
  for (let a = 0; a < n; a++)
    for (let b = a + 1; b < n; b++)
      (a % opts.numSpeakers === b % opts.numSpeakers ? same : different).push(cosineSimilarity(embs[a]!, embs[b]!));
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return {
    samePairs: same.length,
    differentPairs: different.length,
    minSame: Math.min(...same),
    meanSame: mean(same),
    maxDifferent: Math.max(...different),
    meanDifferent: mean(different),
    eer: equalErrorRate(same, different).eer,
  };
}
