/**
 * MIO experiment 2 (issue 16; brief §2.7.1): the speech layout ablation. MIO (§2.1) writes output
 * speech as its 4 SpeechTokenizer levels laid out level after level ("sequential": every level-1
 * code, then level 2, 3, 4), because the alternating layout (a1 b1 c1 d1 a2 ...) "was hard to
 * converge for TTS and slowed ASR", and reads input speech as the content level only.
 *
 * Three arms train the same decoder (same init, same data draws, steps and lr) on TTS and ASR pairs
 * of 2-word tone speech coded by one SpeechCodec (4 levels), half of every batch each:
 *   sequential   A (MIO): TTS output sequential, ASR input content codes only;
 *   alternating  B: TTS output alternating, ASR input content codes only;
 *   fullInput    C: TTS output sequential, ASR input all 4 levels (sequential).
 * A vs B changes the output layout alone; A vs C the ASR input alone. Loss on every token (Eq. 1),
 * App. B's Stage I-II prompts, one stage of core's AdamW through the staged runner.
 *
 * Measured at `evalSteps` on seen test utterances (a word sequence some training utterance has, a
 * new rendering) and held-out ones (a word sequence no training utterance has), apart:
 *   ttsWer            greedy TTS constrained to the arm's block structure (speechBlockConstraint),
 *                     decoded by the codec, read by the tone decoder (as mio.staged);
 *   ttsDurationRatio  generated frames / the reference utterance's frames, same generations;
 *   ttsFreeDecodable  greedy TTS with the structure left to the model (speechSpanConstraint): the
 *                     fraction of spans MIO's decoder accepts (4 equal contiguous blocks in order, or
 *                     strict alternation of whole frames, closed by </spch>); ttsFreeWer reads them
 *                     (a span that does not decode reads as no words);
 *   ttsNll            mean next-token loss of the reference speech codes and </spch> given the TTS
 *                     prompt (both layouts order the same tokens, so the joint likelihoods compare);
 *   asrWer / asrNll   greedy transcript WER, and the loss of the transcript given the speech.
 * Beside them: the codec's resynthesis WER (the floor TTS can reach), the tone decoder's WER on the
 * original audio, and the memoriser WER (the best a model that only repeats training transcripts
 * can do: 0 on seen sequences). Claim tables over seeds in `aggregate` (mean ± std, a verdict only
 * beyond two standard errors).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModule, parseConfig, Rng, saveModule, TransformerDecoder, tf, writeFileAtomic } from '@mmlm/core';
import {
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  formatFixed,
  parsePresets,
  type SubrunContext,
  seedCell,
  seedsHeader,
  seedValues,
  seedVerdict,
  subrunDir,
  type Table,
} from '@mmlm/core/experiment';
import {
  corpusWer,
  decodeTone,
  makeToneSpeakers,
  synthesizeTone,
  TONE_VOCAB,
  type ToneUtterance,
  WordTokenizer,
  werCounts,
} from '@mmlm/data';
import { z } from 'zod';
import { CODEC_PRESET_NAMES, codecPreset, SpeechCodec, type SpeechCodecConfig } from '../codec.js';
import { CodecTrainSchema, trainSpeechCodec } from '../codec_train.js';
import { greedyGenerate, speechBlockConstraint, speechSpanConstraint, speechSpanLevels } from '../generate.js';
import { IGNORE_INDEX, type PackedBatch, type PackSample, packedLoss, packSamples } from '../pack.js';
import { type RunStepEvent, runSchedule, type TaskData } from '../runner.js';
import { type Prompts, PromptsSchema, schedule as parseSchedule, type Schedule } from '../schedule.js';
import { MultimodalTokenizer, type SpeechLayout } from '../vocab.js';
import { toneCodecExample } from './codec.js';

const ID = 'mio.speech-layout';
const int = () => z.number().int();

const SettingsSchema = z
  .strictObject({
    speech: z.strictObject({
      /** Training utterances (codec and LM); their word sequences are drawn from the held-in ones. */
      train: int().min(2),
      /** Test utterances per set: seen (a training utterance's word sequence, new rendering) and held-out. */
      test: int().min(1),
      /** Words per utterance (2 or 3: every word sequence is enumerated for the held-out split). */
      wordsPerUtterance: int().min(2).max(3),
      /** Nominal word duration (synthesizeTone's wordSeconds). */
      wordSeconds: z.number().min(0.1).max(2),
      /** Share of all word sequences that no training utterance has (the held-out sequences). */
      heldOutFraction: z.number().gt(0).lt(1),
      speakers: int().min(1),
      /** Training utterances the codec trains on (the first ones; default all). */
      codecUtterances: int().min(1).optional(),
    }),
    codec: z.enum(CODEC_PRESET_NAMES),
    codecTrain: CodecTrainSchema,
    lm: z.strictObject({ dim: int().min(1), numLayers: int().min(1), numHeads: int().min(1) }),
    train: z.strictObject({
      steps: int().min(1),
      /** Sequences per step: half TTS, half ASR. */
      batch: int().min(2),
      /** Packed row length, and the decoder's maxSeqLen. */
      seqLen: int().min(16),
      /** Peak and floor lr of the cosine schedule (the paper's 3e-5 is for a 6B model), warmup share. */
      lr: z.number().positive(),
      minLr: z.number().nonnegative(),
      warmupRatio: z.number().min(0).max(1),
    }),
    /** Global steps after which every arm is evaluated (ascending, the last = train.steps). */
    evalSteps: z.array(int().min(1)).min(1),
    /** Longest generated speech: this times the longest training utterance's frames (capped by the context). */
    maxFramesFactor: z.number().min(1),
    /** The runner's validation samples per task (seen test utterances). */
    valSamplesPerTask: int().min(1),
  })
  .superRefine((s, ctx) => {
    if (s.train.batch % 2 !== 0)
      ctx.addIssue({ code: 'custom', path: ['train', 'batch'], message: 'expected an even number (half TTS, half ASR)' });
    const e = s.evalSteps;
    if (e.some((x, i) => i > 0 && x <= e[i - 1]!) || e[e.length - 1] !== s.train.steps)
      ctx.addIssue({
        code: 'custom',
        path: ['evalSteps'],
        message: `expected ascending steps ending at train.steps = ${s.train.steps}`,
      });
    if (s.train.minLr > s.train.lr)
      ctx.addIssue({ code: 'custom', path: ['train', 'minLr'], message: `expected at most train.lr = ${s.train.lr}` });
  });
export type SpeechLayoutSettings = z.infer<typeof SettingsSchema>;
export type SpeechLayoutSettingsInput = z.input<typeof SettingsSchema>;

/** Validated settings; errors name each bad field, what it expected and what it got. */
export function speechLayoutSettings(input: SpeechLayoutSettingsInput): SpeechLayoutSettings {
  return parseConfig(`${ID} settings`, SettingsSchema, input);
}

// The recipe that speaks (see the package README, "Speech layout: the recipe"): 12.5 frames/s
// codes (the 50 frames/s codec's decoders did not speak), 16,000 training utterances (at 1,000
// the decoder memorised them: held-out TTS loss rose after 2,000 steps while the training loss
// fell), 8,000 steps in rows of 128 tokens. Time per seed: measured in the README's run.
const SMALL_LAYOUT = {
  speech: { train: 16000, test: 64, wordsPerUtterance: 2, wordSeconds: 0.3, heldOutFraction: 0.25, speakers: 8, codecUtterances: 1000 },
  codec: 'small-12.5hz',
  codecTrain: { steps: 2000, batchSize: 8, cropFrames: 12 },
  lm: { dim: 128, numLayers: 2, numHeads: 4 },
  train: { steps: 8000, batch: 16, seqLen: 128, lr: 1e-3, minLr: 1e-4, warmupRatio: 0.03 },
  evalSteps: [2000, 4000, 8000],
  maxFramesFactor: 1.5,
  valSamplesPerTask: 16,
} satisfies SpeechLayoutSettingsInput;

export const SPEECH_LAYOUT_SETTINGS = parsePresets(
  `${ID} settings`,
  {
    tiny: {
      speech: { train: 8, test: 2, wordsPerUtterance: 2, wordSeconds: 0.1, heldOutFraction: 0.25, speakers: 2 },
      codec: 'tiny',
      codecTrain: { steps: 2, batchSize: 2, cropFrames: 8, warmup: 1, logEvery: 2 },
      lm: { dim: 16, numLayers: 1, numHeads: 2 },
      train: { steps: 4, batch: 4, seqLen: 256, lr: 3e-3, minLr: 3e-4, warmupRatio: 0.03 },
      evalSteps: [2, 4],
      maxFramesFactor: 1.5,
      valSamplesPerTask: 2,
    },
    small: SMALL_LAYOUT,
    // small with 64 codes per codec level instead of 16: level 1 alone then names 99% of words (77%
    // with 16; README, "A codec whose first level carries the words")
    'small-k64': { ...SMALL_LAYOUT, codec: 'small-12.5hz-k64' },
  } satisfies Record<'tiny' | 'small' | 'small-k64', SpeechLayoutSettingsInput>,
  () => SettingsSchema,
);

// ---------------------------------------------------------------------------------------------
// Arms

export interface SpeechLayoutArm {
  name: 'sequential' | 'alternating' | 'fullInput';
  /** Layout of TTS output speech (all 4 levels). */
  ttsLayout: SpeechLayout;
  /** ASR input: the content level only (MIO, `add_timbre=False`) or all levels. */
  asrInput: 'content' | 'full';
  label: string;
}

export const SPEECH_LAYOUT_ARMS: readonly SpeechLayoutArm[] = [
  { name: 'sequential', ttsLayout: 'sequential', asrInput: 'content', label: 'A: sequential output, content-only ASR input (MIO)' },
  { name: 'alternating', ttsLayout: 'alternating', asrInput: 'content', label: 'B: alternating output, content-only ASR input' },
  { name: 'fullInput', ttsLayout: 'sequential', asrInput: 'full', label: 'C: sequential output, full 4-level ASR input' },
];

/** An utterance as the LM sees it: codes of every level [L][T] and the transcript. */
export interface CodedUtterance {
  levels: number[][];
  words: string[];
  text: string;
}

/** One training or scoring sequence: ids, and the range [start, end) of ids that are scored. */
export interface SpeechLayoutSample {
  ids: number[];
  /** TTS: the speech codes and `</spch>`; ASR: the transcript and the end token. */
  scored: [number, number];
}

/**
 * The sequence of one TTS or ASR pair in `arm`'s format, with App. B's prompts, ending with `eosId`:
 *   tts   `Please generate a speech of "{text}":` <spch> all levels in the arm's layout </spch> eos
 *   asr   <spch> content codes (or all levels) </spch> `Transcribe this speech:` transcript eos
 * `tok` must lay output speech out as the arm does (MultimodalTokenizer's speechLayout).
 */
export function speechLayoutSample(
  task: 'tts' | 'asr',
  u: Pick<CodedUtterance, 'levels' | 'text'>,
  arm: SpeechLayoutArm,
  tok: MultimodalTokenizer,
  o: { prompts: Pick<Prompts, 'tts' | 'asr'>; eosId: number },
): SpeechLayoutSample {
  const { speechLayout, speechLevels: L } = tok.vocab.config;
  if (speechLayout !== arm.ttsLayout)
    throw new Error(
      `speechLayoutSample: arm ${arm.name} lays output speech out '${arm.ttsLayout}', but the tokenizer's speechLayout is '${speechLayout}'`,
    );
  if (!Array.isArray(u.levels) || u.levels.length !== L)
    throw new Error(
      `speechLayoutSample: expected the utterance's ${L} code levels [${L}][T], got ${Array.isArray(u.levels) ? u.levels.length : typeof u.levels}`,
    );
  if (task === 'tts') {
    const prompt = tok.encode([{ type: 'text', text: o.prompts.tts.replace('{text}', u.text) }]);
    const block = tok.encode([{ type: 'speech', levels: u.levels }]); // <spch> L T codes </spch>
    return { ids: [...prompt, ...block, o.eosId], scored: [prompt.length + 1, prompt.length + block.length] };
  }
  if (task !== 'asr') throw new Error(`speechLayoutSample: task must be 'tts' or 'asr', got ${JSON.stringify(task)}`);
  const input = asrPrompt(u, arm, tok, o.prompts);
  const transcript = tok.encode([{ type: 'text', text: u.text }]);
  return { ids: [...input, ...transcript, o.eosId], scored: [input.length, input.length + transcript.length + 1] };
}

/**
 * The runner's data of one arm: tasks `tts` and `asr`, each sample an utterance drawn with the
 * runner's stream for (task, index), so every arm trains on the same utterances in the same order;
 * training samples from `train`, validation samples from `validation`. Loss on every token (Eq. 1).
 */
export function speechLayoutTaskData(
  arm: SpeechLayoutArm,
  tok: MultimodalTokenizer,
  pools: { train: readonly CodedUtterance[]; validation: readonly CodedUtterance[] },
  o: { prompts: Pick<Prompts, 'tts' | 'asr'>; eosId: number },
): TaskData {
  for (const [k, pool] of Object.entries(pools))
    if (!Array.isArray(pool) || pool.length === 0)
      throw new Error(`speechLayoutTaskData: expected at least one ${k} utterance, got ${Array.isArray(pool) ? 0 : typeof pool}`);
  const sample = (task: 'tts' | 'asr') => (_index: number, rng: Rng, ctx: { split: 'train' | 'validation' }) => {
    const pool = ctx.split === 'validation' ? pools.validation : pools.train;
    return { ids: speechLayoutSample(task, pool[rng.int(0, pool.length)]!, arm, tok, o).ids };
  };
  return { tts: sample('tts'), asr: sample('asr') };
}

/** ASR prompt ids: the input speech (content level or all levels) and the ASR prompt. */
function asrPrompt(
  u: Pick<CodedUtterance, 'levels'>,
  arm: SpeechLayoutArm,
  tok: MultimodalTokenizer,
  prompts: Pick<Prompts, 'asr'>,
): number[] {
  const levels = arm.asrInput === 'content' ? [u.levels[0]!] : u.levels;
  return tok.encode([
    { type: 'speech', levels },
    { type: 'text', text: prompts.asr },
  ]);
}

// ---------------------------------------------------------------------------------------------
// Data: utterances with a held-out split of word sequences

export interface SpeechLayoutSplitOptions {
  seed: number;
  train: number;
  test: number;
  wordsPerUtterance: number;
  wordSeconds: number;
  heldOutFraction: number;
  speakers: number;
  sampleRate: number;
}

export interface SpeechLayoutSplit {
  train: ToneUtterance[];
  /** Test utterances whose word sequence some training utterance has (new renderings). */
  seen: ToneUtterance[];
  /** Test utterances whose word sequence no training utterance has. */
  heldOut: ToneUtterance[];
  /** Distinct word sequences of the training utterances (words joined by spaces). */
  trainSequences: string[];
  /** The held-out word sequences. */
  heldOutSequences: string[];
}

/**
 * Tone-speech utterances with a held-out split of word sequences: every sequence of W words of the
 * 16-word vocabulary is enumerated, and a seeded share is held out such that every word still occurs
 * at every position in some held-in sequence (so held-out sequences test composition, not unseen
 * words). Training utterances draw held-in sequences; seen test utterances redraw the training
 * utterances' sequences with new renderings; held-out test utterances draw held-out sequences.
 * Speakers cycle over `speakers` voices.
 */
export function speechLayoutSplit(o: SpeechLayoutSplitOptions): SpeechLayoutSplit {
  const W = o.wordsPerUtterance;
  if (!Number.isInteger(W) || W < 2 || W > 3) throw new Error(`speechLayoutSplit: wordsPerUtterance must be 2 or 3, got ${W}`);
  const V = TONE_VOCAB.length;
  const all: number[][] = [];
  for (let n = 0; n < V ** W; n++) all.push(Array.from({ length: W }, (_, p) => Math.floor(n / V ** p) % V));
  const rng = new Rng(o.seed).fork('mio-speech-layout-split');
  rng.shuffle(all);
  const target = Math.min(all.length - 1, Math.max(1, Math.round(o.heldOutFraction * all.length)));
  const count = Array.from({ length: W }, () => new Array<number>(V).fill(all.length / V)); // held-in sequences with word w at p
  const heldOut: number[][] = [];
  const heldIn: number[][] = [];
  for (const s of all) {
    if (heldOut.length < target && s.every((w, p) => count[p]![w]! > 1)) {
      heldOut.push(s);
      s.forEach((w, p) => {
        count[p]![w]!--;
      });
    } else heldIn.push(s);
  }
  const words = (s: number[]) => s.map((w) => TONE_VOCAB[w]!.word);
  const speakers = makeToneSpeakers(o.speakers, o.seed);
  const utter = (s: number[], i: number, r: Rng) =>
    synthesizeTone(words(s), speakers[i % speakers.length]!, { seed: r.nextSeed(), sampleRate: o.sampleRate, wordSeconds: o.wordSeconds });
  const trainSeqs = Array.from({ length: o.train }, () => heldIn[rng.int(0, heldIn.length)]!);
  const train = trainSeqs.map((s, i) => utter(s, i, rng.fork(`train${i}`)));
  const distinct = [...new Map(trainSeqs.map((s) => [s.join(' '), s])).values()];
  const seen = Array.from({ length: o.test }, (_, i) => {
    const r = rng.fork(`seen${i}`);
    return utter(distinct[r.int(0, distinct.length)]!, o.train + i, r);
  });
  const held = Array.from({ length: o.test }, (_, i) => {
    const r = rng.fork(`heldOut${i}`);
    return utter(heldOut[i < heldOut.length ? i : r.int(0, heldOut.length)]!, o.train + o.test + i, r);
  });
  return {
    train,
    seen,
    heldOut: held,
    trainSequences: distinct.map((s) => words(s).join(' ')),
    heldOutSequences: heldOut.map((s) => words(s).join(' ')),
  };
}

/** Corpus WER of the best training transcript for each reference: what a model that only repeats training sequences reaches at best. */
export function memoriserWer(refs: readonly (readonly string[])[], trainSequences: readonly string[]): number {
  if (trainSequences.length === 0) throw new Error('memoriserWer: expected at least one training sequence, got none');
  const train = trainSequences.map((s) => s.split(' '));
  let edits = 0;
  let n = 0;
  for (const r of refs) {
    let best = Number.POSITIVE_INFINITY;
    for (const t of train) {
      const c = werCounts(r, t);
      best = Math.min(best, c.substitutions + c.deletions + c.insertions);
      if (best === 0) break;
    }
    edits += best;
    n += r.length;
  }
  if (n === 0) throw new Error('memoriserWer: the references have no words');
  return edits / n;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

const SETS = ['Seen', 'HeldOut'] as const;
type SetName = (typeof SETS)[number];

/** Metrics of one arm on one test set. */
export interface SpeechLayoutSetEval {
  asrWer: number;
  asrNll: number;
  ttsWer: number;
  ttsDurationRatio: number;
  ttsNll: number;
  ttsFreeDecodable: number;
  ttsFreeWer: number;
}
const SET_METRICS = ['asrWer', 'asrNll', 'ttsWer', 'ttsDurationRatio', 'ttsNll', 'ttsFreeDecodable', 'ttsFreeWer'] as const;
/** The metrics kept at intermediate evaluation steps. */
const STEP_METRICS = ['asrWer', 'asrNll', 'ttsWer', 'ttsNll', 'ttsFreeDecodable'] as const;

export interface SpeechLayoutEval {
  step: number;
  seconds: number;
  sets: Record<SetName, SpeechLayoutSetEval>;
  /** The first seen utterance: reference, ASR hypothesis, TTS read-backs (constrained, free). */
  example: { ref: string; asr: string; tts: string; ttsFree: string };
}

/** What an arm's evaluation needs beside the model. */
export interface SpeechLayoutEvalKit {
  /** The arm's tokenizer (its speechLayout is the arm's output layout). */
  tok: MultimodalTokenizer;
  words: WordTokenizer;
  eosId: number;
  prompts: Prompts;
  /** The trained codec: generated codes -> waveform. */
  codec: SpeechCodec;
  test: Record<SetName, CodedUtterance[]>;
  /** Longest generated speech in frames (free spans: maxFrames x L codes). */
  maxFrames: number;
  wordsPerUtterance: number;
  /** Row length for the scored losses (the decoder's maxSeqLen). */
  rowLength: number;
}

/** Mean next-token loss over the scored ids of `samples` (packed into rows of rowLength, 8 rows per forward). */
function scoredLoss(model: TransformerDecoder, samples: readonly SpeechLayoutSample[], rowLength: number): number {
  const packed = packSamples(
    samples.map(
      (s): PackSample => ({
        ids: s.ids,
        labels: s.ids.map((id, t) => (t >= s.scored[0] && t < s.scored[1] ? id : IGNORE_INDEX)),
      }),
    ),
    { rowLength },
  );
  let sum = 0;
  let n = 0;
  for (const row of packed.targets) for (const y of row) if (y !== IGNORE_INDEX) n++;
  for (let r = 0; r < packed.ids.length; r += 8) {
    const rows = (xs: Int32Array[]) => xs.slice(r, r + 8);
    const chunk: PackedBatch = {
      rowLength,
      ids: rows(packed.ids),
      targets: rows(packed.targets),
      segmentIds: rows(packed.segmentIds),
      positionIds: rows(packed.positionIds),
      placements: [],
    };
    sum += tf.tidy(() => packedLoss(model, chunk, 'sum').dataSync()[0]!);
  }
  return sum / n;
}

/** Words the tone decoder reads from generated speech ids (after `<spch>`), or null when the span does not decode. */
function readBack(k: SpeechLayoutEvalKit, g: readonly number[], layout: SpeechLayout): { words: string[]; frames: number } | null {
  let levels: number[][];
  try {
    levels = speechSpanLevels(k.tok.vocab, g, layout);
  } catch {
    return null;
  }
  const wave = k.codec.decode(levels); // T hop samples
  return { words: decodeTone(wave, { sampleRate: k.codec.config.sampleRate }).words, frames: levels[0]!.length };
}

/** Every metric of `arm`'s model on both test sets (the model in eval mode; its mode is restored). */
export function evaluateSpeechLayoutArm(
  model: TransformerDecoder,
  k: SpeechLayoutEvalKit,
  arm: SpeechLayoutArm,
  step: number,
): SpeechLayoutEval {
  const t0 = performance.now();
  const wasTraining = model.training;
  model.eval();
  const v = k.tok.vocab;
  const L = v.config.speechLevels;
  const sets = {} as Record<SetName, SpeechLayoutSetEval>;
  const example = { ref: '', asr: '', tts: '', ttsFree: '' };
  try {
    for (const set of SETS) {
      const us = k.test[set];
      const refs = us.map((u) => u.words);
      const samples = (task: 'tts' | 'asr') => us.map((u) => speechLayoutSample(task, u, arm, k.tok, k));
      // ASR: the input speech and the ASR prompt -> words until the end token
      const asrPrompts = us.map((u) => asrPrompt(u, arm, k.tok, k.prompts));
      const hyps = greedyGenerate(model, asrPrompts, {
        maxNewTokens: k.wordsPerUtterance + 4,
        allowed: () => [[0, v.textVocabSize]],
        done: (g) => g[g.length - 1] === k.eosId,
      }).map((g) =>
        k.words.decodeWords(
          g.filter((id) => id !== k.eosId && id < v.textVocabSize),
          { skipSpecial: true },
        ),
      );
      // TTS: the TTS prompt and <spch> -> speech ids -> codec -> tone decoder
      const ttsPrompts = us.map((u) => [
        ...k.tok.encode([{ type: 'text', text: k.prompts.tts.replace('{text}', u.text) }]),
        v.specials['<spch>'],
      ]);
      const forced = greedyGenerate(model, ttsPrompts, speechBlockConstraint(v, k.maxFrames, 1, arm.ttsLayout)).map((g) =>
        readBack(k, g, arm.ttsLayout),
      );
      const free = greedyGenerate(model, ttsPrompts, speechSpanConstraint(v, k.maxFrames * L)).map((g) => readBack(k, g, arm.ttsLayout));
      const ratios = forced.map((r, i) => (r ? r.frames / us[i]!.levels[0]!.length : Number.NaN)).filter((x) => Number.isFinite(x));
      sets[set] = {
        asrWer: corpusWer(refs, hyps).wer,
        asrNll: scoredLoss(model, samples('asr'), k.rowLength),
        ttsWer: corpusWer(
          refs,
          forced.map((r) => r?.words ?? []),
        ).wer,
        ttsDurationRatio: ratios.length ? ratios.reduce((a, b) => a + b, 0) / ratios.length : Number.NaN,
        ttsNll: scoredLoss(model, samples('tts'), k.rowLength),
        ttsFreeDecodable: free.filter((r) => r !== null).length / free.length,
        ttsFreeWer: corpusWer(
          refs,
          free.map((r) => r?.words ?? []),
        ).wer,
      };
      if (set === 'Seen') {
        example.ref = us[0]?.text ?? '';
        example.asr = (hyps[0] ?? []).join(' ');
        example.tts = (forced[0]?.words ?? []).join(' ');
        example.ttsFree = free[0] ? free[0].words.join(' ') : '(does not decode)';
      }
    }
  } finally {
    model.train(wasTraining);
  }
  return { step, seconds: (performance.now() - t0) / 1000, sets, example };
}

// ---------------------------------------------------------------------------------------------
// Training one arm

interface ArmResult {
  evals: SpeechLayoutEval[];
  finalLoss: number;
  /** Training seconds of this call (evaluations excluded), the steps it ran, and packed rows per step. */
  trainSeconds: number;
  stepsRun: number;
  rowsPerStep: number;
  evalSeconds: number;
}

async function readEvals(file: string): Promise<SpeechLayoutEval[]> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as SpeechLayoutEval[];
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw new Error(`${ID}: ${file} is unreadable (${(e as Error).message}); delete it to evaluate again`);
  }
}

async function trainArm(
  sub: SubrunContext,
  dir: string,
  arm: SpeechLayoutArm,
  o: {
    st: SpeechLayoutSettings;
    sch: Schedule;
    data: TaskData;
    kit: SpeechLayoutEvalKit;
    makeModel: () => TransformerDecoder;
    seed: number;
    dataKey: string;
  },
): Promise<ArmResult> {
  const { st } = o;
  const evalFile = join(dir, 'evals.json');
  const evals = await readEvals(evalFile); // a resumed run keeps its earlier evaluations
  const model = o.makeModel();
  const bar = sub.progress(`${ID} ${arm.name}`, st.train.steps);
  let evalSeconds = 0;
  let rows = 0;
  const evaluate = async (step: number) => {
    const ev = evaluateSpeechLayoutArm(model, o.kit, arm, step);
    evalSeconds += ev.seconds;
    evals.push(ev);
    evals.sort((a, b) => a.step - b.step);
    await writeFileAtomic(evalFile, `${JSON.stringify(evals)}\n`);
    const flat: Record<string, number> = {};
    for (const set of SETS) for (const m of SET_METRICS) flat[`${m}${set}`] = ev.sets[set][m];
    sub.metric({ step, arm: arm.name, eval: true, ...flat });
    const s = ev.sets;
    sub.log(
      `${ID} ${arm.name} step ${step}: TTS WER ${formatFixed(s.Seen.ttsWer)} / ${formatFixed(s.HeldOut.ttsWer)} (seen / held-out), free spans decoding ${formatFixed(s.Seen.ttsFreeDecodable)} / ${formatFixed(s.HeldOut.ttsFreeDecodable)}, ASR WER ${formatFixed(s.Seen.asrWer)} / ${formatFixed(s.HeldOut.asrWer)}; "${ev.example.ref}" -> ASR "${ev.example.asr}", TTS "${ev.example.tts}"`,
    );
  };
  try {
    const r = await runSchedule({
      schedule: o.sch,
      model,
      data: o.data,
      dir: join(dir, 'run'),
      seed: o.seed,
      valSamplesPerTask: st.valSamplesPerTask,
      dataKey: o.dataKey,
      progress: 'none',
      log: (l) => {
        if (!l.startsWith('|')) sub.log(l);
      },
      name: `${ID} ${arm.name}`,
      onStep: async (e: RunStepEvent) => {
        rows += e.rows;
        sub.metric({ step: e.globalStep, loss: e.loss, lr: e.lr, arm: arm.name });
        bar.tick(e.globalStep, { loss: e.loss });
        if (st.evalSteps.includes(e.globalStep) && !evals.some((x) => x.step === e.globalStep)) await evaluate(e.globalStep);
      },
    });
    if (r.interrupted) throw new Error(`${ID}: the ${arm.name} run was interrupted; rerun to resume`);
    const last = st.train.steps;
    if (!evals.some((x) => x.step === last)) await evaluate(last); // finished in an earlier call: the model holds the last checkpoint
    for (const s of st.evalSteps)
      if (!evals.some((x) => x.step === s))
        sub.log(`${ID} ${arm.name}: no evaluation at step ${s} (the run resumed past it); reported as missing`);
    const stepsRun = r.steps.length;
    return {
      evals,
      // the last step's loss, from an earlier call when this one had nothing left to train
      finalLoss: r.history[r.history.length - 1]?.loss ?? Number.NaN,
      // over every call on this arm (the runner's files): evaluations made inside the loop (before the
      // last step) fall between two steps' times, so their seconds come off; the last one is after it
      trainSeconds: r.trainSeconds - evals.filter((x) => x.step < last).reduce((a, x) => a + x.seconds, 0),
      stepsRun,
      rowsPerStep: stepsRun ? rows / stepsRun : Number.NaN,
      evalSeconds,
    };
  } finally {
    bar.done();
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The experiment

/** The single training stage of every arm: TTS and ASR slots, half each. */
export function speechLayoutSchedule(st: SpeechLayoutSettings): Schedule {
  const half = st.train.batch / 2;
  return parseSchedule({
    stages: [
      {
        name: 'S',
        title: 'speech-text pairs: TTS and ASR, half each',
        steps: st.train.steps,
        gpus: 1,
        batchPerGpu: st.train.batch,
        slots: { tts: half, asr: half },
        seqLen: st.train.seqLen,
        lr: { peak: st.train.lr, min: st.train.minLr, warmupRatio: st.train.warmupRatio, gradClip: 1 },
      },
    ],
  });
}

export const speechLayoutExperiment: Experiment = {
  // the codec is a shared sub-run; the three arms are independent sub-runs (same init and draws from
  // the seed): the lab's --jobs trains the arms side by side
  parallelSubruns: true,
  id: ID,
  settings: (preset: string) => SPEECH_LAYOUT_SETTINGS[preset as keyof typeof SPEECH_LAYOUT_SETTINGS],
  paper: 'MIO',
  claim:
    'Output speech laid out level after level (sequential: every level-1 code, then levels 2, 3, 4) trains and generates better than the alternating layout (a1 b1 c1 d1 a2 ...), which MIO found hard to converge for TTS and slower for ASR; ASR with the content level only as input beats ASR with all 4 levels (§2.1).',
  presets: {
    tiny: {
      description: 'a few steps on 8 two-word utterances; checks that every metric is computed, not the claim',
      expectedMinutes: 0.2,
    },
    small: {
      description:
        '2-word tone speech (16,000 training utterances, 25% of word pairs held out), SpeechCodec 4 x 16 at 12.5 frames/s (2,000 steps on 1,000 utterances); three 2-layer width-128 decoders (sequential, alternating, full ASR input), 8,000 steps of 8 TTS + 8 ASR pairs each, evaluated at steps 2,000, 4,000 and 8,000 on 64 seen + 64 held-out utterances; one seed per run (seed 0: 40 min with --jobs 2 on the idle 2-core machine)',
      // measured: seed 0 with --jobs 2 on the idle 2-core machine, 2,390 s (2026-12-05: codec 5 min,
      // then two arms side by side and the third alone, about 0.1 s a step); 5,138 s beside two other seeds
      expectedMinutes: 40,
    },
    'small-k64': {
      description:
        "small with the codec's 64 codes per level instead of 16 (small-12.5hz-k64), so that level 1 carries the words (a linear probe names 99% of words from level 1 alone, 77% with 16 codes): is MIO's content-only ASR input enough once the content level holds the content? one seed per run (seed 0: 41 min with --jobs 2 on the idle 2-core machine; ASR WER 0.000 held-out from level 1 alone)",
      // measured: seed 0, 3,338 s without --jobs beside one other training run (2026-12-05); retimed:
      // 2,471 s with --jobs 2 on the idle 2-core AMD EPYC, default backend (WebAssembly SIMD GEMM, no
      // addon), one run after another (2026-12-06, commit 6123d6d), every figure digit for digit the
      // 2026-12-05 run's
      expectedMinutes: 41,
    },
  },
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const st = Object.hasOwn(SPEECH_LAYOUT_SETTINGS, ctx.preset)
      ? SPEECH_LAYOUT_SETTINGS[ctx.preset as keyof typeof SPEECH_LAYOUT_SETTINGS]
      : undefined;
    if (!st) throw new Error(`${ID}: unknown preset "${ctx.preset}"; expected one of ${Object.keys(SPEECH_LAYOUT_SETTINGS).join(', ')}`);
    const seed = ctx.seed;
    const codecCfg: SpeechCodecConfig = { ...codecPreset(st.codec), seed };
    const split = speechLayoutSplit({ ...st.speech, seed, sampleRate: codecCfg.sampleRate });
    ctx.log(
      `${ID}: ${split.train.length} training utterances over ${split.trainSequences.length} word sequences; ${split.seen.length} seen + ${split.heldOut.length} held-out test utterances (${split.heldOutSequences.length} held-out sequences)`,
    );

    // ---- the codec (one per seed, frozen; every arm reads the same codes)
    const codec = new SpeechCodec(codecCfg);
    try {
      // shared: every arm reads its codes (under the lab's --jobs the other workers wait for it)
      const codecInfo = await ctx.subrun(
        'speech-codec',
        async (dir) => {
          const r = await trainSpeechCodec(
            codec,
            split.train.slice(0, st.speech.codecUtterances ?? split.train.length).map((u) => toneCodecExample(u, codec.config)),
            { train: { ...st.codecTrain, seed }, checkpointDir: join(dir, 'checkpoints'), resume: true, progress: 'none', log: ctx.log },
          );
          // SIGINT stops the codec's trainLoop after a step with a checkpoint: never save it as trained
          if (r.loop.interrupted) throw new Error(`${ID}: codec training interrupted after step ${r.loop.step}; rerun to resume`);
          await saveModule(join(dir, 'codec.safetensors'), codec);
          return { seconds: r.seconds };
        },
        { shared: true },
      );
      await loadModule(join(subrunDir(ctx, 'speech-codec'), 'codec.safetensors'), codec);
      codec.eval();

      const code = (us: readonly ToneUtterance[]): CodedUtterance[] =>
        us.map((u) => ({ levels: codec.encode(u.samples, { sampleRate: u.sampleRate }), words: u.words, text: u.words.join(' ') }));
      const train = code(split.train);
      const test = { Seen: code(split.seen), HeldOut: code(split.heldOut) };

      // ---- the text side, and one tokenizer per layout (same ids: only the order of output levels differs)
      const prompts = PromptsSchema.parse({}); // App. B, Stages I-II
      const words = WordTokenizer.fromText([prompts.asr, prompts.tts.replace('{text}', ''), ...TONE_VOCAB.map((w) => w.word)], {
        specialTokens: ['<pad>', '<bos>', '<eos>', '<unk>'],
      });
      const eosId = words.specialId('<eos>');
      const vocab = {
        textVocabSize: words.vocabSize,
        imageCodes: 1,
        tokensPerImage: 1,
        speechCodebookSize: codecCfg.codebookSize,
        speechLevels: codecCfg.levels,
      };
      const toks = {
        sequential: new MultimodalTokenizer(words, { ...vocab, speechLayout: 'sequential' }),
        alternating: new MultimodalTokenizer(words, { ...vocab, speechLayout: 'alternating' }),
      };
      const L = codecCfg.levels;
      const maxT = Math.max(...train.map((u) => u.levels[0]!.length));
      const longest = Math.max(
        ...SPEECH_LAYOUT_ARMS.flatMap((arm) =>
          [...train, ...test.Seen, ...test.HeldOut].flatMap((u) =>
            (['tts', 'asr'] as const).map((t) => speechLayoutSample(t, u, arm, toks[arm.ttsLayout], { prompts, eosId }).ids.length),
          ),
        ),
      );
      if (longest > st.train.seqLen)
        throw new Error(
          `${ID}: the longest sequence has ${longest} tokens, expected at most train.seqLen = ${st.train.seqLen} (raise seqLen or shorten the utterances)`,
        );
      const ttsPromptLen = Math.max(
        ...[...test.Seen, ...test.HeldOut].map(
          (u) => toks.sequential.encode([{ type: 'text', text: prompts.tts.replace('{text}', u.text) }]).length + 1,
        ),
      );
      const room = Math.floor((st.train.seqLen - ttsPromptLen - 1) / L);
      const maxFrames = Math.max(1, Math.min(Math.ceil(st.maxFramesFactor * maxT), room));

      // ---- what the arms are judged against: codec read-back, the tone decoder's ceiling, the memoriser
      const sr = codecCfg.sampleRate;
      const shared: ExperimentResult['metrics'] = {
        trainUtterances: train.length,
        trainSequences: split.trainSequences.length,
        heldOutSequences: split.heldOutSequences.length,
        meanTrainFrames: train.reduce((a, u) => a + u.levels[0]!.length, 0) / train.length,
        maxGeneratedFrames: maxFrames,
        codecSeconds: codecInfo.seconds,
      };
      for (const set of SETS) {
        const raw = set === 'Seen' ? split.seen : split.heldOut;
        const refs = raw.map((u) => u.words);
        shared[`codecResynthWer${set}`] = corpusWer(
          refs,
          test[set].map((u) => decodeTone(codec.decode(u.levels), { sampleRate: sr }).words),
        ).wer;
        shared[`toneDecoderWer${set}`] = corpusWer(
          refs,
          raw.map((u) => decodeTone(u.samples, { sampleRate: sr }).words),
        ).wer;
        shared[`memoriserWer${set}`] = memoriserWer(refs, split.trainSequences);
      }

      // ---- the three arms: same init (seed), same draws (runner seed), same steps and lr
      const sch = speechLayoutSchedule(st);
      const makeModel = () => new TransformerDecoder({ vocabSize: toks.sequential.size, ...st.lm, maxSeqLen: st.train.seqLen, seed });
      const results: Partial<Record<SpeechLayoutArm['name'], ArmResult>> = {};
      for (const arm of SPEECH_LAYOUT_ARMS) {
        const tok = toks[arm.ttsLayout];
        const kit: SpeechLayoutEvalKit = {
          tok,
          words,
          eosId,
          prompts,
          codec,
          test,
          maxFrames,
          wordsPerUtterance: st.speech.wordsPerUtterance,
          rowLength: st.train.seqLen,
        };
        results[arm.name] = await ctx.subrun(arm.name, (dir, sub) =>
          trainArm(sub, dir, arm, {
            st,
            sch,
            data: speechLayoutTaskData(arm, tok, { train, validation: test.Seen }, { prompts, eosId }),
            kit,
            makeModel,
            seed,
            dataKey: `${ID} ${arm.name} ${JSON.stringify(st.speech)} codec ${st.codec} ${JSON.stringify(st.codecTrain)}`,
          }),
        );
      }

      // ---- metrics: final evaluation as `<arm>_<metric><Set>`, earlier ones as `<arm>_step<N>_<metric><Set>`
      const metrics: ExperimentResult['metrics'] = { ...shared };
      const rows: Table['rows'] = [];
      const stepRows: Table['rows'] = [];
      const last = st.train.steps;
      for (const arm of SPEECH_LAYOUT_ARMS) {
        const a = results[arm.name]!;
        for (const step of st.evalSteps) {
          const ev = a.evals.find((x) => x.step === step);
          for (const set of SETS) {
            const m = ev?.sets[set];
            if (step === last) {
              for (const k of SET_METRICS) metrics[`${arm.name}_${k}${set}`] = m ? m[k] : null;
              rows.push([arm.label, set === 'Seen' ? 'seen' : 'held-out', ...SET_METRICS.map((k) => (m ? m[k] : null))]);
            } else for (const k of STEP_METRICS) metrics[`${arm.name}_step${step}_${k}${set}`] = m ? m[k] : null;
            stepRows.push([arm.name, step, set === 'Seen' ? 'seen' : 'held-out', ...STEP_METRICS.map((k) => (m ? m[k] : null))]);
          }
        }
        metrics[`${arm.name}_finalLoss`] = a.finalLoss;
        metrics[`${arm.name}_trainSeconds`] = a.trainSeconds;
        metrics[`${arm.name}_secondsPerStep`] = a.stepsRun ? a.trainSeconds / a.stepsRun : null;
        metrics[`${arm.name}_rowsPerStep`] = a.rowsPerStep;
        metrics[`${arm.name}_evalSeconds`] = a.evalSeconds;
      }
      const f = (arm: string, k: string) => formatFixed(metrics[`${arm}_${k}`] as number | null);
      const summary = [
        `**${ID} (${ctx.preset}, seed ${seed})**: three decoders from one init, ${st.train.steps} steps of ${st.train.batch / 2} TTS + ${st.train.batch / 2} ASR pairs each: A sequential output + content-only ASR input (MIO), B alternating output, C full 4-level ASR input.`,
        `Output layout (A vs B), held-out sequences: TTS WER ${f('sequential', 'ttsWerHeldOut')} vs ${f('alternating', 'ttsWerHeldOut')} (structure constrained), free spans that decode ${f('sequential', 'ttsFreeDecodableHeldOut')} vs ${f('alternating', 'ttsFreeDecodableHeldOut')}, speech loss ${f('sequential', 'ttsNllHeldOut')} vs ${f('alternating', 'ttsNllHeldOut')}; seen: TTS WER ${f('sequential', 'ttsWerSeen')} vs ${f('alternating', 'ttsWerSeen')}.`,
        `ASR input (A vs C), held-out: WER ${f('sequential', 'asrWerHeldOut')} vs ${f('fullInput', 'asrWerHeldOut')}, transcript loss ${f('sequential', 'asrNllHeldOut')} vs ${f('fullInput', 'asrNllHeldOut')}; seen: WER ${f('sequential', 'asrWerSeen')} vs ${f('fullInput', 'asrWerSeen')}.`,
        `Floors: codec resynthesis WER ${formatFixed(shared.codecResynthWerSeen as number)} / ${formatFixed(shared.codecResynthWerHeldOut as number)} (seen / held-out), tone decoder on the original audio ${formatFixed(shared.toneDecoderWerSeen as number)} / ${formatFixed(shared.toneDecoderWerHeldOut as number)}; memoriser WER ${formatFixed(shared.memoriserWerSeen as number)} / ${formatFixed(shared.memoriserWerHeldOut as number)}.`,
        `One seed (${seed}): no difference is called here; \`pnpm lab run ${ID} --preset ${ctx.preset} --seeds 0,1,2\` gives mean ± std and verdicts.`,
      ].join('\n');
      return {
        metrics,
        tables: [
          {
            title: `Speech layout and ASR input after ${last} steps`,
            columns: [
              'arm',
              'set',
              'ASR WER',
              'ASR loss',
              'TTS WER',
              'TTS duration ratio',
              'TTS loss',
              'free spans decoding',
              'free TTS WER',
            ],
            rows,
            note: `Greedy decoding. TTS WER and duration ratio: the block structure is constrained (the arm's layout); free spans: the model chooses the structure and MIO's completeness check decides whether the span decodes (a span that does not reads as no words). Losses in nats per scored token (TTS: the reference speech codes; ASR: the transcript). Floors: codec resynthesis WER ${formatFixed(shared.codecResynthWerSeen as number)} / ${formatFixed(shared.codecResynthWerHeldOut as number)}; memoriser WER ${formatFixed(shared.memoriserWerSeen as number)} / ${formatFixed(shared.memoriserWerHeldOut as number)} (seen / held-out).`,
          },
          {
            title: 'At every evaluation step',
            columns: ['arm', 'step', 'set', ...STEP_METRICS],
            rows: stepRows,
          },
        ],
        summary,
      };
    } finally {
      codec.dispose();
    }
  },

  aggregate(results: ExperimentResult[], seeds: number[]): { tables?: Table[]; summary?: string } {
    const v = (k: string) => seedValues(results, k);
    const cell = (k: string) => seedCell(results, k);
    const early = Math.max(
      ...results.flatMap((r) =>
        Object.keys(r.metrics)
          .map((k) => /^sequential_step(\d+)_/.exec(k)?.[1])
          .filter((x): x is string => x !== undefined)
          .map(Number),
      ),
      0,
    );
    const rows: Table['rows'] = [];
    for (const arm of SPEECH_LAYOUT_ARMS)
      for (const set of SETS)
        rows.push([arm.label, set === 'Seen' ? 'seen' : 'held-out', ...SET_METRICS.map((k) => cell(`${arm.name}_${k}${set}`))]);
    const verdict = (k: string, better: 'higher' | 'lower', a: SpeechLayoutArm['name'], b: SpeechLayoutArm['name']) =>
      seedVerdict(v(`${a}_${k}`), v(`${b}_${k}`), better, [a, b]).text;
    const setLabel = (s: SetName) => (s === 'Seen' ? 'seen' : 'held-out');
    const layout: string[] = [];
    const input: string[] = [];
    for (const set of SETS) {
      layout.push(`- TTS WER (constrained), ${setLabel(set)}: ${verdict(`ttsWer${set}`, 'lower', 'sequential', 'alternating')}.`);
      layout.push(
        `- free spans that decode, ${setLabel(set)}: ${verdict(`ttsFreeDecodable${set}`, 'higher', 'sequential', 'alternating')}.`,
      );
      layout.push(`- TTS speech loss, ${setLabel(set)}: ${verdict(`ttsNll${set}`, 'lower', 'sequential', 'alternating')}.`);
      layout.push(`- ASR WER, ${setLabel(set)}: ${verdict(`asrWer${set}`, 'lower', 'sequential', 'alternating')}.`);
      input.push(`- ASR WER, ${setLabel(set)}: ${verdict(`asrWer${set}`, 'lower', 'sequential', 'fullInput')}.`);
      input.push(`- ASR transcript loss, ${setLabel(set)}: ${verdict(`asrNll${set}`, 'lower', 'sequential', 'fullInput')}.`);
    }
    const before: string[] = [];
    if (early > 0)
      for (const set of SETS) {
        before.push(
          `- TTS WER at step ${early}, ${setLabel(set)}: ${verdict(`step${early}_ttsWer${set}`, 'lower', 'sequential', 'alternating')}.`,
        );
        before.push(
          `- free spans that decode at step ${early}, ${setLabel(set)}: ${verdict(`step${early}_ttsFreeDecodable${set}`, 'higher', 'sequential', 'alternating')}.`,
        );
        before.push(
          `- ASR WER at step ${early}, ${setLabel(set)}: ${verdict(`step${early}_asrWer${set}`, 'lower', 'sequential', 'fullInput')}.`,
        );
      }
    const ttsSeen = v('sequential_ttsWerSeen');
    const notLearned =
      ttsSeen.length && ttsSeen.reduce((a, b) => a + b, 0) / ttsSeen.length > 0.8
        ? "The MIO arm's mean seen TTS WER is above 0.8: TTS is not learned at this budget, so the WER verdicts on layout say little; the losses and the free-span decoding rate still compare."
        : '';
    return {
      tables: [
        {
          title: `${ID}: mean ± std over ${results.length} seed${results.length === 1 ? '' : 's'} (${seeds.join(', ')})`,
          columns: [
            'arm',
            'set',
            'ASR WER',
            'ASR loss',
            'TTS WER',
            'TTS duration ratio',
            'TTS loss',
            'free spans decoding',
            'free TTS WER',
          ],
          rows,
          note: `Mean ± sample standard deviation (n − 1) over seeds. Codec resynthesis WER ${cell('codecResynthWerSeen') ?? 'n/a'} / ${cell('codecResynthWerHeldOut') ?? 'n/a'}, memoriser WER ${cell('memoriserWerSeen') ?? 'n/a'} / ${cell('memoriserWerHeldOut') ?? 'n/a'} (seen / held-out).`,
        },
      ],
      summary: [
        `**${ID} over seeds ${seeds.join(', ')}**`,
        '',
        seedsHeader(seeds),
        '',
        'Output layout, sequential (A, MIO) vs alternating (B); paper: sequential trains and generates better, alternating slows ASR:',
        ...layout,
        '',
        'ASR input, content only (A, MIO) vs all 4 levels (C); paper: content only is better:',
        ...input,
        ...(before.length ? ['', 'Earlier in training (the last evaluation before the end):', ...before] : []),
        ...(notLearned ? ['', notLearned] : []),
      ].join('\n'),
    };
  },
};
