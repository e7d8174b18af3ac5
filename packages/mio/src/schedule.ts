/**
 * MIO's four-stage training schedule as data (paper §2.2, Table 9, App. B/C): per stage the batch
 * mixture in per-GPU slots, steps, GPUs, the lr schedule, sequence length, prompt strings and the
 * loss mask; plus a seeded sampler of task slots and the paired-data prompt formats.
 *
 * Pretraining slots (Table 9): image-text pairs : text : interleaved + video : speech
 *   I 12:2:0:2, II 2:2:6:6, III 2:1:1:12 (16 sequences per GPU).
 * Stage IV (SFT) mixes the tasks of Table 10; the paper gives no mixture, so ours is one slot each.
 */
import { parseConfig, Rng, type RngState, warmupCosine } from '@mmlm/core';
import { z } from 'zod';
import { MIO_STD_MODE_SYSTEM, MIO_VOICE_MODE_SYSTEM } from './chat.js';
import type { MioDocument } from './vocab.js';

/** The four pretraining slot kinds of Table 9, in the paper's order. */
export const PRETRAIN_SLOTS = ['imageText', 'text', 'interleavedVideo', 'speech'] as const;
export type PretrainSlot = (typeof PRETRAIN_SLOTS)[number];

/**
 * Stage IV's tasks with their datasets (the brief's reading of Table 10; the paper counts 16 tasks
 * over 34 datasets, this grouping of the listed datasets gives 15).
 */
export const SFT_TASKS = {
  text: ['OpenHermes'],
  icl: ['MMICL'],
  cot: ['ScienceQA'],
  chart: ['Geo170K'],
  imageEditing: ['InstructPix2Pix', 'MagicBrush'],
  asr: ['LibriSpeech', 'GigaSpeech', 'CommonVoice'],
  videoChat: ['VideoChat2-IT'],
  imageQA: ['Vision-Flan', 'VizWiz', 'LAION-GPT4V', 'LLaVAR', 'OCR-VQA', 'VQAv2', 'TextVQA', 'OK-VQA', 'Mantis-Instruct'],
  speechInstruct: ['SpeechInstruct'],
  imageCaption: ['Flickr30K', 'COCO'],
  imageGeneration: ['Flickr30K', 'COCO'],
  tts: ['GigaSpeech', 'CommonVoice'],
  videoCaption: ['MSR-VTT', 'MSVD'],
  videoQA: ['MSVD-QA', 'MSRVTT-QA'],
  visualStory: ['VIST'],
} as const satisfies Record<string, readonly string[]>;
export type SftTask = keyof typeof SFT_TASKS;

/** Paired-data prompts of App. B, verbatim; `{caption}`, `{description}`, `{text}` are filled in. */
export const PromptsSchema = z.object({
  /** Image first, then this and the caption. */
  caption: z.string().default('The caption of this image is:'),
  /** This, then the image. */
  imageGeneration: z.string().default('Please generate an image of "{caption}":'),
  /** This, then the frames, then the description. */
  videoDescription: z.string().default('Please describe the following video:'),
  /** This, then the frames. */
  videoGeneration: z.string().default('Please generate a video for "{description}":'),
  /** Speech (content codes), then this and the transcript; Stage III uses 'The transcription of this speech is:'. */
  asr: z.string().default('Transcribe this speech:'),
  /** This, then the speech (all levels). */
  tts: z.string().default('Please generate a speech of "{text}":'),
  /** Share of image-text pairs drawn image-to-text ("chosen at random": 0.5 is our reading). */
  imageToTextShare: z.number().min(0).max(1).default(0.5),
  /** Share of video-text pairs drawn video-to-text (paper: 40%, against 60% text-to-video). */
  videoToTextShare: z.number().min(0).max(1).default(0.4),
  /** Share of speech-text pairs drawn as ASR (not stated; 0.5 is ours). */
  asrShare: z.number().min(0).max(1).default(0.5),
});
export type Prompts = z.infer<typeof PromptsSchema>;

export const LrSchema = z.object({
  /** Peak lr (all stages: 3e-5). */
  peak: z.number().positive().default(3e-5),
  /** Floor of the cosine (not stated; 0 is ours). */
  min: z.number().nonnegative().default(0),
  /** Warmup as a fraction of the stage's steps (0.03). */
  warmupRatio: z.number().min(0).max(1).default(0.03),
  /** Gradient clipping norm (1.0). */
  gradClip: z.number().positive().default(1),
});
export type LrSpec = z.infer<typeof LrSchema>;

export const StageSchema = z
  .object({
    /** I, II, III, IV. */
    name: z.string().min(1),
    /** What the stage is for. */
    title: z.string().default(''),
    /** Optimizer steps; null where the paper gives none (Stage IV). */
    steps: z.number().int().positive().nullable(),
    /** GPUs (A800-80GB); null where not given. */
    gpus: z.number().int().positive().nullable().default(null),
    /** Sequences per GPU per step: the batch slots must sum to it. */
    batchPerGpu: z.number().int().positive(),
    /** Batch slots per task kind (non-negative integers summing to batchPerGpu). */
    slots: z.record(z.string(), z.number().int().nonnegative()),
    /** Max sequence length in tokens (2,800). */
    seqLen: z.number().int().positive().default(2800),
    lr: LrSchema.default(() => LrSchema.parse({})),
    /** Eq. 1: next-token loss on every token; Stage IV: assistant responses only. */
    loss: z.enum(['allTokens', 'assistantOnly']).default('allTokens'),
    /** Pretraining stages format paired data with prompts; Stage IV uses the ChatML template. */
    format: z.enum(['pretrain', 'chat']).default('pretrain'),
    prompts: PromptsSchema.default(() => PromptsSchema.parse({})),
    /** Stage IV's system prompts (std and voice mode). */
    systemPrompts: z.object({ std: z.string(), voice: z.string() }).optional(),
    /** Where each value comes from: `paper ...`, `inferred`, `ours`, `not given`. */
    sources: z.record(z.string(), z.string()).default({}),
  })
  .superRefine((s, ctx) => {
    const sum = Object.values(s.slots).reduce((a, b) => a + b, 0);
    if (sum !== s.batchPerGpu)
      ctx.addIssue({
        code: 'custom',
        path: ['slots'],
        message: `stage ${s.name}: slots sum to ${sum}, expected batchPerGpu ${s.batchPerGpu}`,
      });
    if (s.steps !== null && Math.round(s.steps * s.lr.warmupRatio) > s.steps)
      ctx.addIssue({ code: 'custom', path: ['lr', 'warmupRatio'], message: `stage ${s.name}: warmup exceeds ${s.steps} steps` });
  });
export type StageInput = z.input<typeof StageSchema>;
export type Stage = z.infer<typeof StageSchema>;

export const ScheduleSchema = z.object({ stages: z.array(StageSchema).min(1) });
export type ScheduleInput = z.input<typeof ScheduleSchema>;
export type Schedule = z.infer<typeof ScheduleSchema>;

/** A validated schedule; errors name the field, the expected and the actual value. */
export function schedule(input: ScheduleInput): Schedule {
  return parseConfig('MIO schedule', ScheduleSchema, input);
}

/** One validated stage. */
export function stage(input: StageInput): Stage {
  return parseConfig('MIO stage', StageSchema, input);
}

const slots4 = (a: number, b: number, c: number, d: number) => ({ imageText: a, text: b, interleavedVideo: c, speech: d });
const SFT_SLOTS = Object.fromEntries(Object.keys(SFT_TASKS).map((k) => [k, 1]));
const ASR_STAGE_III = 'The transcription of this speech is:';
const SYSTEM = { std: MIO_STD_MODE_SYSTEM, voice: MIO_VOICE_MODE_SYSTEM };

/** The four stages with per-preset steps, GPUs and sequence length. */
function fourStages(o: {
  steps: [number, number, number, number | null];
  gpus: [number | null, number | null, number | null, number | null];
  seqLen: number;
  paper: boolean;
}): ScheduleInput {
  const src = (s: string) => (o.paper ? s : 'ours (scaled down)');
  return {
    stages: [
      {
        name: 'I',
        title: 'alignment',
        steps: o.steps[0],
        gpus: o.gpus[0],
        batchPerGpu: 16,
        slots: slots4(12, 2, 0, 2),
        seqLen: o.seqLen,
        sources: {
          steps: src('paper Table 9'),
          gpus: src('paper Table 9'),
          slots: 'paper Table 9',
          lr: 'paper App. B',
          seqLen: src('paper App. B'),
        },
      },
      {
        name: 'II',
        title: 'interleaved',
        steps: o.steps[1],
        gpus: o.gpus[1],
        batchPerGpu: 16,
        slots: slots4(2, 2, 6, 6),
        seqLen: o.seqLen,
        sources: {
          steps: src('paper Table 9'),
          gpus: src('paper Table 9'),
          slots: 'paper Table 9',
          lr: 'paper App. B',
          seqLen: src('paper App. B'),
        },
      },
      {
        name: 'III',
        title: 'speech-enhanced',
        steps: o.steps[2],
        gpus: o.gpus[2],
        batchPerGpu: 16,
        slots: slots4(2, 1, 1, 12),
        seqLen: o.seqLen,
        prompts: { asr: ASR_STAGE_III },
        sources: {
          steps: src('paper Table 9'),
          gpus: src('paper Table 9'),
          slots: 'paper Table 9',
          lr: 'paper App. B',
          seqLen: src('paper App. B'),
          prompts: 'paper App. B (ASR prompt changes in Stage III)',
        },
      },
      {
        name: 'IV',
        title: 'SFT',
        steps: o.steps[3],
        gpus: o.gpus[3],
        batchPerGpu: Object.keys(SFT_SLOTS).length,
        slots: SFT_SLOTS,
        seqLen: o.seqLen,
        loss: 'assistantOnly',
        format: 'chat',
        systemPrompts: SYSTEM,
        sources: {
          steps: o.paper ? 'not given' : 'ours',
          gpus: o.paper ? 'not given' : 'ours',
          slots: 'ours (Table 10 lists tasks and datasets, no mixture)',
          lr: 'paper App. C (same as pretraining)',
          systemPrompts: 'reference tokenization_mio.py',
        },
      },
    ],
  };
}

/**
 * Presets: `paper` (Table 9: steps 24,800 / 12,800 / 32,200 on 128 / 128 / 8 A800s; Stage IV's steps
 * and GPUs are not given), `small` (1% of the paper's steps, 256-token rows, one device) and `tiny`
 * (tests: a handful of steps, 64-token rows).
 */
export const SCHEDULE_PRESETS = {
  paper: schedule(fourStages({ steps: [24_800, 12_800, 32_200, null], gpus: [128, 128, 8, null], seqLen: 2800, paper: true })),
  small: schedule(fourStages({ steps: [248, 128, 322, 100], gpus: [1, 1, 1, 1], seqLen: 256, paper: false })),
  tiny: schedule(fourStages({ steps: [8, 4, 10, 4], gpus: [1, 1, 1, 1], seqLen: 64, paper: false })),
} as const;
export type SchedulePresetName = keyof typeof SCHEDULE_PRESETS;

/** A deep copy of a schedule preset. */
export function schedulePreset(name: string): Schedule {
  const p = Object.hasOwn(SCHEDULE_PRESETS, name) ? (SCHEDULE_PRESETS as Record<string, Schedule>)[name] : undefined;
  if (!p) throw new Error(`MIO schedule: unknown preset "${name}"; expected one of ${Object.keys(SCHEDULE_PRESETS).join(', ')}`);
  return structuredClone(p);
}

/** Sequences per optimizer step: GPUs x per-GPU batch (inferred in the brief: 2,048 in I-II, 128 in III); null when GPUs are not given. */
export function sequencesPerStep(s: Stage): number | null {
  return s.gpus === null ? null : s.gpus * s.batchPerGpu;
}

/** Share of batch slots of one kind (the paper's "speech share of training tokens" is slots.speech / 16: 12.5%, 37.5%, 75%). */
export function slotShare(s: Stage, kind: string): number {
  return (s.slots[kind] ?? 0) / s.batchPerGpu;
}

/** The stage's lr at a 0-based step: linear warmup over round(0.03 steps), then cosine to `min` (core's warmupCosine). */
export function stageLr(s: Stage, step: number): number {
  if (s.steps === null) throw new Error(`MIO stage ${s.name}: steps are not set (the paper gives none); set steps to get an lr schedule`);
  return warmupCosine({ peak: s.lr.peak, min: s.lr.min, warmup: Math.round(s.steps * s.lr.warmupRatio), total: s.steps })(step);
}

/** The resolved schedule as a markdown table. */
export function scheduleTable(sch: Schedule): string {
  const head = [
    'stage',
    'steps',
    'GPUs',
    'per-GPU slots',
    'speech share',
    'sequences/step',
    'seq len',
    'peak lr',
    'warmup',
    'loss',
    'ASR prompt',
  ];
  const slotStr = (s: Stage) =>
    s.format === 'chat'
      ? (() => {
          // equal slots (the presets): "15 SFT tasks x 1"; otherwise each task with its slots
          const v = Object.values(s.slots);
          return v.every((x) => x === v[0])
            ? `${v.length} SFT tasks x ${v[0]}`
            : Object.entries(s.slots)
                .map(([k, n]) => `${k}:${n}`)
                .join(' ');
        })()
      : PRETRAIN_SLOTS.map((k) => s.slots[k] ?? 0).join(':');
  const rows = sch.stages.map((s) => [
    `${s.name} ${s.title}`.trim(),
    s.steps === null ? 'not given' : s.steps.toLocaleString('en-US'),
    s.gpus === null ? 'not given' : String(s.gpus),
    slotStr(s),
    s.format === 'chat' ? '-' : `${(100 * slotShare(s, 'speech')).toFixed(1)}%`,
    sequencesPerStep(s)?.toLocaleString('en-US') ?? 'not given',
    String(s.seqLen),
    String(s.lr.peak),
    `${s.lr.warmupRatio}`,
    s.loss,
    s.format === 'chat' ? '(chat)' : s.prompts.asr,
  ]);
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Sampling task slots

export interface MixtureSamplerState {
  rng: RngState;
  bag: string[];
}

/**
 * Draws task slots in the proportions of a stage's slots: a bag holding one per-GPU batch
 * (e.g. 12 x imageText, 2 x text, 2 x speech) is shuffled and drawn without replacement, then
 * refilled; so every batchPerGpu draws hold the exact mixture, in a seeded random order.
 */
export class MixtureSampler {
  private readonly rng: Rng;
  private bag: string[] = [];
  readonly kinds: string[];

  constructor(
    readonly slots: Readonly<Record<string, number>>,
    seed: number | Rng = 0,
  ) {
    const entries = Object.entries(slots);
    for (const [k, n] of entries)
      if (!Number.isInteger(n) || n < 0) throw new Error(`MixtureSampler: slot ${k} must be a non-negative integer, got ${n}`);
    const total = entries.reduce((a, [, n]) => a + n, 0);
    if (total <= 0) throw new Error(`MixtureSampler: slots must sum to a positive number, got ${total}`);
    this.kinds = entries.filter(([, n]) => n > 0).map(([k]) => k);
    this.rng = typeof seed === 'number' ? new Rng(seed) : seed;
  }

  /** The next slot's task. */
  next(): string {
    if (this.bag.length === 0) {
      for (const [k, n] of Object.entries(this.slots)) for (let i = 0; i < n; i++) this.bag.push(k);
      this.rng.shuffle(this.bag);
    }
    return this.bag.pop()!;
  }

  /** The tasks of a batch of n sequences. */
  nextBatch(n: number): string[] {
    if (!Number.isInteger(n) || n < 1) throw new Error(`MixtureSampler.nextBatch: n must be an integer >= 1, got ${n}`);
    return Array.from({ length: n }, () => this.next());
  }

  getState(): MixtureSamplerState {
    return { rng: this.rng.getState(), bag: [...this.bag] };
  }

  setState(s: MixtureSamplerState): void {
    this.rng.setState(s.rng);
    this.bag = [...s.bag];
  }
}

// ---------------------------------------------------------------------------------------------
// Paired-data formats (App. B)

/** A paired example before formatting. */
export type Pair =
  | { kind: 'imageText'; image: number[]; caption: string }
  | { kind: 'videoText'; frames: number[][]; description: string }
  /** content: level-0 codes [T] (ASR input); levels: every level [L][T] (TTS output). */
  | { kind: 'speechText'; content: number[]; levels: number[][]; text: string };

/** Formatted pair: the document and the task it became. */
export interface PairExample {
  task: 'caption' | 'imageGeneration' | 'videoDescription' | 'videoGeneration' | 'asr' | 'tts';
  doc: MioDocument;
}

/**
 * Formats one paired example with a stage's prompts, drawing the direction with `rng`: image-text
 * both ways, video-text 40% video-to-text, speech-text ASR (content codes in) or TTS (all levels out).
 * Prompt and text are joined with one space (ours).
 */
export function formatPair(prompts: Prompts, pair: Pair, rng: Rng): PairExample {
  const u = rng.uniform();
  switch (pair.kind) {
    case 'imageText':
      return u < prompts.imageToTextShare
        ? {
            task: 'caption',
            doc: [
              { type: 'image', codes: pair.image },
              { type: 'text', text: `${prompts.caption} ${pair.caption}` },
            ],
          }
        : {
            task: 'imageGeneration',
            doc: [
              { type: 'text', text: prompts.imageGeneration.replace('{caption}', pair.caption) },
              { type: 'image', codes: pair.image },
            ],
          };
    case 'videoText':
      return u < prompts.videoToTextShare
        ? {
            task: 'videoDescription',
            doc: [
              { type: 'text', text: prompts.videoDescription },
              { type: 'clip', frames: pair.frames },
              { type: 'text', text: pair.description },
            ],
          }
        : {
            task: 'videoGeneration',
            doc: [
              { type: 'text', text: prompts.videoGeneration.replace('{description}', pair.description) },
              { type: 'clip', frames: pair.frames },
            ],
          };
    case 'speechText':
      return u < prompts.asrShare
        ? {
            task: 'asr',
            doc: [
              { type: 'speech', levels: [pair.content] },
              { type: 'text', text: `${prompts.asr} ${pair.text}` },
            ],
          }
        : {
            task: 'tts',
            doc: [
              { type: 'text', text: prompts.tts.replace('{text}', pair.text) },
              { type: 'speech', levels: pair.levels },
            ],
          };
    default:
      throw new Error(
        `formatPair: unknown pair kind ${JSON.stringify((pair as { kind?: unknown }).kind)}, expected imageText, videoText or speechText`,
      );
  }
}
