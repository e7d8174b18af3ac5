/**
 * Training and evaluation of the speech codec (codec.ts), data-agnostic: examples are waveforms
 * with a word label per frame and a pitch target per subframe (`toneCodecExamples` in
 * '@mmlm/mio/experiments' builds them from @mmlm/data's tone speech).
 *
 *   trainSpeechCodec   random frame-aligned crops, AdamW (warmup + cosine), global-norm clip, through
 *                      core's trainLoop: checkpoints, exact resume of weights, optimizer, crop order
 *                      and the quantizer's random stream; running means of every loss term logged
 *   codebookUsage      per level: fraction of the K codes used and the perplexity of their counts
 *   levelProbe         what a set of levels says about the word of a frame: softmax regression on
 *                      the one-hot codes of those levels (fitted on one set, scored on another),
 *                      per frame and per word (majority vote over the word's frames)
 */
import {
  AdamW,
  clipGradNorm,
  paramGroups,
  parseConfig,
  Rng,
  type TrainLoopResult,
  tf,
  trainLoop,
  valueAndGrads,
  warmupCosine,
} from '@mmlm/core';
import { z } from 'zod';
import { CODEC_IGNORE, type CodecBatch, type SpeechCodec, type SpeechCodes } from './codec.js';

/** One utterance for the codec: T = wave.length / hop frames, N = T subframes. */
export interface CodecExample {
  /** Samples at the codec's rate, zero-padded to a multiple of the hop. [T hop] */
  wave: Float32Array;
  /** Content class of each frame (CODEC_IGNORE in pauses). [T] */
  labels: Int32Array;
  /** Target pitch of each subframe in Hz, 0 where unvoiced. [N] */
  f0: Float32Array;
}

const pos = () => z.number().int().positive();

export const CodecTrainSchema = z.object({
  /** Optimizer steps. */
  steps: pos().default(1500),
  /** Crops per step. */
  batchSize: pos().default(8),
  /** Frames per crop (50 = 1 s at 50 frames/s); shorter utterances are zero-padded. */
  cropFrames: pos().default(50),
  /** Peak learning rate, reached after `warmup` steps, then cosine to lr / 10. */
  lr: z.number().positive().default(2e-3),
  warmup: z.number().int().nonnegative().default(50),
  /** Learning-rate multiplier of the content head (its code-to-word table starts at zero and must move fast). */
  contentLrMultiplier: z.number().nonnegative().default(20),
  /** Global gradient-norm clip. */
  gradClip: z.number().positive().default(1),
  /** AdamW decoupled weight decay (matrices only; biases, codebooks-as-vectors none). */
  weightDecay: z.number().nonnegative().default(0),
  /** Seed of the crop order. */
  seed: z.number().int().default(0),
  /** Running means of the loss terms are logged (and returned) every this many steps. */
  logEvery: pos().default(50),
  /** Checkpoint every this many steps (with checkpointDir). */
  checkpointEvery: pos().default(250),
});
export type CodecTrainInput = z.input<typeof CodecTrainSchema>;
export type CodecTrainConfig = z.infer<typeof CodecTrainSchema>;

export const CODEC_TRAIN_PRESETS = {
  /** Tests: a handful of steps on 2 short crops. */
  tiny: parseConfig('codec training', CodecTrainSchema, { steps: 4, batchSize: 2, cropFrames: 8, warmup: 1, logEvery: 2 }),
  /** The README's measured run. */
  small: parseConfig('codec training', CodecTrainSchema, {}),
} as const;

export interface TrainSpeechCodecOptions {
  /** Training settings (or a preset name); defaults as CodecTrainSchema. */
  train?: CodecTrainInput | keyof typeof CODEC_TRAIN_PRESETS;
  /** Checkpoints here (trainLoop's); with `resume` a run continues from the newest one. */
  checkpointDir?: string;
  resume?: boolean;
  /** Per-step JSONL (trainLoop's). */
  metricsPath?: string;
  log?: (line: string) => void;
  progress?: 'auto' | 'bar' | 'lines' | 'none';
  signal?: AbortSignal;
}

/** Running means of the loss terms over one logging window. */
export interface CodecTrainRecord {
  step: number;
  loss: number;
  spectral: number;
  f0: number;
  content: number;
  vq: number;
  contentAcc: number;
  /** Mean fraction of the K codes used per batch, per level. */
  usage: number[];
}

export interface TrainSpeechCodecResult {
  loop: TrainLoopResult;
  records: CodecTrainRecord[];
  seconds: number;
}

/** Crops of B random examples at random frame offsets: wave [B, C hop], labels [B, C], f0 [B][C subframes]. */
function sampleCrops(examples: readonly CodecExample[], codec: SpeechCodec, B: number, C: number, rng: Rng) {
  const { hop, subframes } = codec.config;
  const wave = new Float32Array(B * C * hop);
  const labels = new Int32Array(B * C).fill(CODEC_IGNORE);
  const f0: Float32Array[] = [];
  for (let b = 0; b < B; b++) {
    const ex = examples[rng.int(0, examples.length)]!;
    const T = ex.labels.length;
    const t0 = T > C ? rng.int(0, T - C + 1) : 0;
    const n = Math.min(C, T - t0);
    wave.set(ex.wave.subarray(t0 * hop, (t0 + n) * hop), b * C * hop);
    labels.set(ex.labels.subarray(t0, t0 + n), b * C);
    const f = new Float32Array(C * subframes);
    f.set(ex.f0.subarray(t0 * subframes, (t0 + n) * subframes));
    f0.push(f);
  }
  return { wave, labels, f0 };
}

function checkExamples(codec: SpeechCodec, examples: readonly CodecExample[]): void {
  if (!Array.isArray(examples) || examples.length === 0) throw new Error('trainSpeechCodec: expected at least one example, got none');
  const { hop, subframes } = codec.config;
  examples.forEach((ex, i) => {
    const T = ex.labels?.length ?? 0;
    if (T < 1 || ex.wave?.length !== T * hop || ex.f0?.length !== T * subframes)
      throw new Error(
        `trainSpeechCodec: example ${i} needs wave of T x ${hop} samples, T labels and T x ${subframes} pitch values, got ${ex.wave?.length} samples, ${T} labels, ${ex.f0?.length} pitch values`,
      );
  });
}

/**
 * Train `codec` on `examples` with core's trainLoop (resumable: weights, AdamW state, the crop
 * order and the quantizer's random stream are checkpointed).
 */
export async function trainSpeechCodec(
  codec: SpeechCodec,
  examples: readonly CodecExample[],
  opts: TrainSpeechCodecOptions = {},
): Promise<TrainSpeechCodecResult> {
  const cfg =
    typeof opts.train === 'string'
      ? (() => {
          const p = Object.hasOwn(CODEC_TRAIN_PRESETS, opts.train) ? CODEC_TRAIN_PRESETS[opts.train] : undefined;
          if (!p)
            throw new Error(
              `trainSpeechCodec: unknown preset "${opts.train}"; expected one of ${Object.keys(CODEC_TRAIN_PRESETS).join(', ')}`,
            );
          return p;
        })()
      : parseConfig('codec training', CodecTrainSchema, opts.train ?? {});
  checkExamples(codec, examples);
  codec.train();
  const rng = new Rng(cfg.seed).fork('codec-crops');
  const schedule = warmupCosine({ peak: cfg.lr, min: cfg.lr / 10, warmup: Math.min(cfg.warmup, cfg.steps), total: cfg.steps });
  const optimizer = new AdamW(paramGroups(codec, { lrMultipliers: [[(p) => p.startsWith('content.'), cfg.contentLrMultiplier]] }), {
    lr: schedule(0),
    weightDecay: cfg.weightDecay,
  });
  const Lq = codec.config.levels;
  const NPARTS = 6 + Lq; // loss, spectral, f0, content, vq, contentAcc, usage_1..Lq
  let sums = new Float64Array(NPARTS);
  let count = 0;
  const records: CodecTrainRecord[] = [];
  const t0 = performance.now();
  const loop = await trainLoop({
    steps: cfg.steps,
    model: codec,
    optimizer,
    rng,
    config: { codec: codec.config, train: cfg },
    lr: (s) => schedule(s - 1),
    checkpointDir: opts.checkpointDir,
    checkpointEvery: opts.checkpointDir ? cfg.checkpointEvery : undefined,
    resume: opts.resume,
    metricsPath: opts.metricsPath,
    progress: opts.progress ?? 'lines',
    logEvery: cfg.logEvery,
    log: opts.log,
    name: 'codec',
    signal: opts.signal,
    evalEvery: cfg.logEvery,
    evalFn: (step) => {
      const m = sums.map((s) => s / Math.max(count, 1));
      const rec: CodecTrainRecord = {
        step,
        loss: m[0]!,
        spectral: m[1]!,
        f0: m[2]!,
        content: m[3]!,
        vq: m[4]!,
        contentAcc: m[5]!,
        usage: Array.from(m.subarray(6)),
      };
      records.push(rec);
      sums = new Float64Array(NPARTS);
      count = 0;
      const out: Record<string, number> = {
        spectral: rec.spectral,
        f0_st: rec.f0,
        content: rec.content,
        vq: rec.vq,
        contentAcc: rec.contentAcc,
      };
      rec.usage.forEach((u, l) => {
        out[`usage${l + 1}`] = u;
      });
      return out;
    },
    step: (step) => {
      optimizer.setLr(schedule(step - 1));
      const crops = sampleCrops(examples, codec, cfg.batchSize, cfg.cropFrames, rng);
      const wave = tf.tensor2d(crops.wave, [cfg.batchSize, cfg.cropFrames * codec.hop]);
      const labels = tf.tensor2d(crops.labels, [cfg.batchSize, cfg.cropFrames], 'int32');
      try {
        const values = codecTrainStep(codec, optimizer, { wave, labels, f0: crops.f0 }, cfg.gradClip);
        for (let i = 0; i < NPARTS; i++) sums[i]! += values[i]!;
        count++;
        return values[0]!;
      } finally {
        tf.dispose([wave, labels]);
      }
    },
  });
  optimizer.dispose();
  codec.eval();
  return { loop, records, seconds: (performance.now() - t0) / 1000 };
}

/**
 * One optimisation step on `batch`: the codec's losses, their gradients, global-norm clip at
 * `gradClip`, an AdamW update. Returns [loss, spectral, f0, content, vq, contentAcc, usage_1..Lq].
 */
export function codecTrainStep(codec: SpeechCodec, optimizer: AdamW, batch: CodecBatch, gradClip: number): Float32Array {
  let parts: tf.Tensor | null = null;
  try {
    return tf.tidy(() => {
      const { grads } = valueAndGrads(codec, () => {
        const p = codec.losses(batch);
        parts = tf.keep(tf.concat([tf.stack([p.loss, p.spectral, p.f0, p.content, p.vq, p.contentAcc]), p.usage]));
        return p.loss;
      });
      clipGradNorm(grads, gradClip);
      optimizer.step(grads);
      return Float32Array.from((parts as tf.Tensor | null)?.dataSync() ?? []);
    });
  } finally {
    (parts as tf.Tensor | null)?.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation helpers

export interface LevelUsage {
  /** Fraction of the K codes that occur. */
  used: number;
  /** exp(entropy) of the code counts (K for uniform use, 1 for one code). */
  perplexity: number;
}

/** Per level, how many of the K codes a set of utterances' codes [Lq][T] uses. */
export function codebookUsage(codes: readonly SpeechCodes[], K: number): LevelUsage[] {
  if (codes.length === 0) throw new Error('codebookUsage: expected at least one utterance, got none');
  const Lq = codes[0]!.length;
  return Array.from({ length: Lq }, (_, l) => {
    const counts = new Float64Array(K);
    let n = 0;
    for (const u of codes) {
      if (u.length !== Lq) throw new Error(`codebookUsage: every utterance needs ${Lq} levels, got ${u.length}`);
      for (const c of u[l]!) {
        if (!(c >= 0 && c < K)) throw new Error(`codebookUsage: code ${c} at level ${l} is outside [0, ${K})`);
        counts[c]!++;
        n++;
      }
    }
    let h = 0;
    let used = 0;
    for (const c of counts) {
      if (c > 0) {
        used++;
        h -= (c / n) * Math.log(c / n);
      }
    }
    return { used: used / K, perplexity: Math.exp(h) };
  });
}

/** Codes and frame labels of a set of utterances. */
export interface ProbeSet {
  /** Per utterance [Lq][T]. */
  codes: readonly SpeechCodes[];
  /** Per utterance [T], CODEC_IGNORE in pauses (runs of one label are the words). */
  labels: readonly ArrayLike<number>[];
}

export interface ProbeResult {
  /** Levels the probe reads (0-based). */
  levels: number[];
  /** Accuracy per labelled frame of the held-out set. */
  frameAccuracy: number;
  /** Accuracy per word (majority vote of its frames' predictions). */
  wordAccuracy: number;
  /** The most frequent training class, predicted everywhere (frame accuracy). */
  chanceFrameAccuracy: number;
  frames: number;
  words: number;
}

function probeRows(set: ProbeSet, levels: number[], K: number) {
  const feats: number[] = [];
  const ys: number[] = [];
  const wordOf: number[] = [];
  let word = -1;
  set.codes.forEach((u, i) => {
    const lab = set.labels[i]!;
    const T = lab.length;
    if (u.length === 0 || u.some((l) => l.length !== T))
      throw new Error(`levelProbe: utterance ${i} needs codes [Lq][${T}] for its ${T} labels, got lengths [${u.map((l) => l.length)}]`);
    let prev = CODEC_IGNORE;
    for (let t = 0; t < T; t++) {
      const y = lab[t]!;
      if (y === CODEC_IGNORE) {
        prev = y;
        continue;
      }
      if (y !== prev) word++;
      prev = y;
      levels.forEach((l, j) => {
        const c = u[l]![t]!;
        feats.push(j * K + c);
      });
      ys.push(y);
      wordOf.push(word);
    }
  });
  return { feats, ys, wordOf, words: word + 1 };
}

/**
 * How much levels `levels` say about the word of each frame: multinomial logistic regression on the
 * one-hot codes of those levels (|levels| K features; 300 full-batch Adam steps at lr 0.1, L2 1e-4),
 * fitted on `train`, scored on `test`. For one level this converges to each code's majority word.
 */
export function levelProbe(train: ProbeSet, test: ProbeSet, levels: number[], K: number, numClasses: number): ProbeResult {
  if (levels.length === 0) throw new Error('levelProbe: expected at least one level, got none');
  const tr = probeRows(train, levels, K);
  const te = probeRows(test, levels, K);
  if (tr.ys.length === 0 || te.ys.length === 0)
    throw new Error(`levelProbe: need labelled frames in both sets, got ${tr.ys.length} (train) and ${te.ys.length} (test)`);
  const F = levels.length * K;
  const hot = (feats: number[], n: number) => {
    const x = new Float32Array(n * F);
    const per = levels.length;
    for (let i = 0; i < n; i++) for (let j = 0; j < per; j++) x[i * F + feats[i * per + j]!] = 1;
    return x;
  };
  const W = tf.variable(tf.zeros([F, numClasses]));
  const b = tf.variable(tf.zeros([numClasses]));
  const opt = tf.train.adam(0.1);
  const Xtr = tf.tensor2d(hot(tr.feats, tr.ys.length), [tr.ys.length, F]);
  const Ytr = tf.oneHot(tf.tensor1d(tr.ys, 'int32'), numClasses);
  for (let i = 0; i < 300; i++)
    tf.tidy(() => {
      opt.minimize(() => tf.losses.softmaxCrossEntropy(Ytr, tf.matMul(Xtr, W).add(b)).add(W.square().sum().mul(1e-4)) as tf.Scalar, false, [
        W,
        b,
      ]);
    });
  const Xte = tf.tensor2d(hot(te.feats, te.ys.length), [te.ys.length, F]);
  const pred = tf.tidy(() => tf.matMul(Xte, W).add(b).argMax(-1));
  const p = pred.dataSync() as Int32Array;
  tf.dispose([W, b, Xtr, Ytr, Xte, pred]);
  opt.dispose();
  let hits = 0;
  const votes = Array.from({ length: te.words }, () => new Map<number, number>());
  const truth = new Int32Array(te.words);
  te.ys.forEach((y, i) => {
    if (p[i] === y) hits++;
    const v = votes[te.wordOf[i]!]!;
    v.set(p[i]!, (v.get(p[i]!) ?? 0) + 1);
    truth[te.wordOf[i]!] = y;
  });
  let wordHits = 0;
  votes.forEach((v, w) => {
    let best = -1;
    let bestN = -1;
    for (const [c, n] of v) if (n > bestN || (n === bestN && c < best)) [best, bestN] = [c, n];
    if (best === truth[w]) wordHits++;
  });
  const freq = new Map<number, number>();
  for (const y of tr.ys) freq.set(y, (freq.get(y) ?? 0) + 1);
  const major = [...freq.entries()].sort((a, c) => c[1] - a[1] || a[0] - c[0])[0]![0];
  return {
    levels,
    frameAccuracy: hits / te.ys.length,
    wordAccuracy: wordHits / te.words,
    chanceFrameAccuracy: te.ys.filter((y) => y === major).length / te.ys.length,
    frames: te.ys.length,
    words: te.words,
  };
}
