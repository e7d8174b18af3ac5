/**
 * Data providers for the staged runner: one TaskSampler per task slot of the schedule, over a corpus
 * of already-tokenized toy data (image codes, clip frames, shape stories, speech codes, edit pairs,
 * QA pairs, plain text). Pretraining slots (Table 9's image-text : text : interleaved + video :
 * speech) are formatted with the stage's App. B prompts (`formatPair`); Stage IV's tasks (Table 10)
 * are ChatML conversations (`chatExample`) with the loss on assistant turns only.
 *
 * Every sample is a pure function of (task, index, rng, stage), as runSchedule needs for exact
 * resume: the item is drawn with `rng` (the runner's stream per task and sample index), and so is
 * every direction choice. The corpus is built elsewhere (the toy one from @mmlm/data in
 * '@mmlm/mio/experiments'), so this module imports no dataset.
 *
 * Pretraining samples end with `eosId` when given (ours: MIO does not say how packed samples end;
 * without an end token a model cannot tell where a caption stops).
 */
import { Rng } from '@mmlm/core';
import { type ChatMode, type ChatTurn, chatExample } from './chat.js';
import type { PackSample } from './pack.js';
import type { SampleContext, TaskData } from './runner.js';
import { formatPair, MixtureSampler, type Schedule, type Stage } from './schedule.js';
import type { MioDocument, MultimodalTokenizer } from './vocab.js';

/** An image with its caption. */
export interface CorpusImage {
  codes: number[];
  caption: string;
}
/** A clip: frames of codes, its description and one question about it. */
export interface CorpusClip {
  frames: number[][];
  description: string;
  question: string;
  answer: string;
}
export type CorpusStorySegment = { type: 'text'; text: string } | { type: 'image'; codes: number[] };
/** An interleaved document: text, image, text, image, ... */
export interface CorpusStory {
  segments: CorpusStorySegment[];
}
/** An utterance: codes of every level [L][T] (input speech uses levels[0]) and its transcript. */
export interface CorpusSpeech {
  levels: number[][];
  text: string;
}
/** An instructional edit: source image codes, the instruction, the edited image's codes. */
export interface CorpusEdit {
  source: number[];
  instruction: string;
  target: number[];
}
/** A question about an image; `caption` serves as the reasoning of the chain-of-thought task. */
export interface CorpusQA {
  codes: number[];
  caption: string;
  question: string;
  answer: string;
}

/** One split of the corpus; a pool a task needs must be non-empty. */
export interface MioCorpusPools {
  images: CorpusImage[];
  texts: string[];
  stories: CorpusStory[];
  clips: CorpusClip[];
  speech: CorpusSpeech[];
  edits: CorpusEdit[];
  qa: CorpusQA[];
}

export interface MioCorpus {
  /** Training samples are drawn from here. */
  train: MioCorpusPools;
  /** The runner's validation samples; default the training pools. */
  validation?: MioCorpusPools;
}

/** Prompts of the Stage-IV toy tasks that the paper does not give (ours). */
export const SFT_TOY_PROMPTS = {
  continueText: 'Continue the text:',
  videoChat: 'What happens in this video?',
  repeatSpeech: 'Repeat this speech:',
  story: 'Continue the story:',
} as const;

/**
 * What each task slot becomes on the toy data. Pretraining slots follow App. B; Stage IV's tasks
 * are toy stand-ins for Table 10's datasets (ours).
 */
export const MIO_TOY_TASKS = {
  imageText: 'pretraining: image then "The caption of this image is:" caption, or the generation prompt then the image (50/50)',
  text: 'pretraining: a plain sentence; Stage IV: "Continue the text:" + the first half, the assistant writes the rest',
  interleavedVideo:
    'pretraining: a shape story (sentence, image, sentence, image, ...) or a clip with the video prompts (40% video-to-text), half each',
  speech: 'pretraining: ASR (content codes, then the ASR prompt and the transcript) or TTS (the TTS prompt, then all levels), 50/50',
  icl: 'two captioned images, then a third image to caption (the MMICL stand-in)',
  cot: 'a question about an image; the assistant states the caption, then "so the answer is" the answer (ScienceQA stand-in)',
  chart: 'a question about an image answered directly (Geo170K stand-in: no charts here)',
  imageEditing: 'source image and instruction; the assistant draws the edited image (InstructPix2Pix / MagicBrush stand-in)',
  asr: 'speech content codes and the ASR prompt; the assistant writes the transcript',
  videoChat: 'a clip and "What happens in this video?"; the assistant describes it',
  imageQA: 'a question about an image answered directly',
  speechInstruct: 'voice mode: speech content codes and "Repeat this speech:"; the assistant speaks it (all levels)',
  imageCaption: 'an image and the caption prompt; the assistant writes the caption',
  imageGeneration: 'the image-generation prompt; the assistant draws the image',
  tts: 'voice mode: the TTS prompt; the assistant speaks the text (all levels)',
  videoCaption: 'the video-description prompt and a clip; the assistant describes it',
  videoQA: 'a clip and a question about its motion; the assistant answers',
  visualStory: 'the first sentence and image of a story and "Continue the story:"; the assistant writes the rest with its images',
} as const;

export interface MioTaskDataOptions {
  /** Text id appended to every pretraining sample (default none). */
  eosId?: number;
  /** Share of interleavedVideo slots drawn from clips, the rest from stories (default 0.5, ours). */
  videoShare?: number;
}

/** A TaskSampler giving MioSamples (usable wherever TaskData is asked for). */
export type MioTaskSampler = (index: number, rng: Rng, ctx: SampleContext) => MioSample;

/** A provider's sample: ids, labels (Stage IV), and what it became (caption, tts, chat:asr, ...). */
export interface MioSample extends PackSample {
  ids: number[];
  labels?: number[];
  kind: string;
}

type Pools = MioCorpusPools;
interface Built {
  kind: string;
  doc?: MioDocument;
  turns?: ChatTurn<MioDocument>[];
  mode?: ChatMode;
}
type Builder = (p: Pools, rng: Rng, stage: Stage, o: { videoShare: number }) => Built;

const text = (t: string): MioDocument[number] => ({ type: 'text', text: t });
const image = (codes: number[]): MioDocument[number] => ({ type: 'image', codes });
const clip = (frames: number[][]): MioDocument[number] => ({ type: 'clip', frames });
const user = (content: MioDocument): ChatTurn<MioDocument> => ({ role: 'user', content });
const assistant = (content: MioDocument): ChatTurn<MioDocument> => ({ role: 'assistant', content });

function pick<K extends keyof Pools>(p: Pools, pool: K, rng: Rng, task: string): Pools[K][number] {
  const xs = p[pool] as readonly unknown[] | undefined;
  if (!Array.isArray(xs) || xs.length === 0)
    throw new Error(`mioTaskData: task "${task}" draws from the corpus pool "${pool}", which is empty; expected at least one item`);
  return xs[rng.int(0, xs.length)] as Pools[K][number];
}

/** The first half of a sentence's words and the rest. */
function splitHalf(s: string): [string, string] {
  const w = s.split(/\s+/).filter((x) => x.length > 0);
  const k = Math.max(1, Math.floor(w.length / 2));
  return [w.slice(0, k).join(' '), w.slice(k).join(' ')];
}

const PRETRAIN: Record<string, Builder> = {
  imageText: (p, rng, s) => {
    const it = pick(p, 'images', rng, 'imageText');
    const f = formatPair(s.prompts, { kind: 'imageText', image: it.codes, caption: it.caption }, rng);
    return { kind: f.task, doc: f.doc };
  },
  text: (p, rng) => ({ kind: 'text', doc: [text(pick(p, 'texts', rng, 'text'))] }),
  interleavedVideo: (p, rng, s, o) => {
    if (rng.uniform() < o.videoShare) {
      const c = pick(p, 'clips', rng, 'interleavedVideo');
      const f = formatPair(s.prompts, { kind: 'videoText', frames: c.frames, description: c.description }, rng);
      return { kind: f.task, doc: f.doc };
    }
    const st = pick(p, 'stories', rng, 'interleavedVideo');
    return { kind: 'interleaved', doc: st.segments.map((g) => (g.type === 'text' ? text(g.text) : image(g.codes))) };
  },
  speech: (p, rng, s) => {
    const u = pick(p, 'speech', rng, 'speech');
    const f = formatPair(s.prompts, { kind: 'speechText', content: u.levels[0]!, levels: u.levels, text: u.text }, rng);
    return { kind: f.task, doc: f.doc };
  },
};

const SFT: Record<string, Builder> = {
  text: (p, rng) => {
    const [a, b] = splitHalf(pick(p, 'texts', rng, 'text'));
    return { kind: 'chat:text', turns: [user([text(`${SFT_TOY_PROMPTS.continueText} ${a}`)]), assistant([text(b || a)])] };
  },
  icl: (p, rng, s) => {
    const xs = [0, 1, 2].map(() => pick(p, 'images', rng, 'icl'));
    const c = s.prompts.caption;
    const shots = xs.slice(0, 2).flatMap((x) => [image(x.codes), text(`${c} ${x.caption}`)]);
    return { kind: 'chat:icl', turns: [user([...shots, image(xs[2]!.codes), text(c)]), assistant([text(xs[2]!.caption)])] };
  },
  cot: (p, rng) => {
    const q = pick(p, 'qa', rng, 'cot');
    return {
      kind: 'chat:cot',
      turns: [user([image(q.codes), text(q.question)]), assistant([text(`${q.caption}, so the answer is ${q.answer}`)])],
    };
  },
  chart: (p, rng) => {
    const q = pick(p, 'qa', rng, 'chart');
    return { kind: 'chat:chart', turns: [user([image(q.codes), text(q.question)]), assistant([text(q.answer)])] };
  },
  imageEditing: (p, rng) => {
    const e = pick(p, 'edits', rng, 'imageEditing');
    return { kind: 'chat:imageEditing', turns: [user([image(e.source), text(e.instruction)]), assistant([image(e.target)])] };
  },
  asr: (p, rng, s) => {
    const u = pick(p, 'speech', rng, 'asr');
    return {
      kind: 'chat:asr',
      turns: [user([{ type: 'speech', levels: [u.levels[0]!] }, text(s.prompts.asr)]), assistant([text(u.text)])],
    };
  },
  videoChat: (p, rng) => {
    const c = pick(p, 'clips', rng, 'videoChat');
    return { kind: 'chat:videoChat', turns: [user([clip(c.frames), text(SFT_TOY_PROMPTS.videoChat)]), assistant([text(c.description)])] };
  },
  imageQA: (p, rng) => {
    const q = pick(p, 'qa', rng, 'imageQA');
    return { kind: 'chat:imageQA', turns: [user([image(q.codes), text(q.question)]), assistant([text(q.answer)])] };
  },
  speechInstruct: (p, rng) => {
    const u = pick(p, 'speech', rng, 'speechInstruct');
    return {
      kind: 'chat:speechInstruct',
      mode: 'voice',
      turns: [
        user([{ type: 'speech', levels: [u.levels[0]!] }, text(SFT_TOY_PROMPTS.repeatSpeech)]),
        assistant([{ type: 'speech', levels: u.levels }]),
      ],
    };
  },
  imageCaption: (p, rng, s) => {
    const it = pick(p, 'images', rng, 'imageCaption');
    return { kind: 'chat:imageCaption', turns: [user([image(it.codes), text(s.prompts.caption)]), assistant([text(it.caption)])] };
  },
  imageGeneration: (p, rng, s) => {
    const it = pick(p, 'images', rng, 'imageGeneration');
    return {
      kind: 'chat:imageGeneration',
      turns: [user([text(s.prompts.imageGeneration.replace('{caption}', it.caption))]), assistant([image(it.codes)])],
    };
  },
  tts: (p, rng, s) => {
    const u = pick(p, 'speech', rng, 'tts');
    return {
      kind: 'chat:tts',
      mode: 'voice',
      turns: [user([text(s.prompts.tts.replace('{text}', u.text))]), assistant([{ type: 'speech', levels: u.levels }])],
    };
  },
  videoCaption: (p, rng, s) => {
    const c = pick(p, 'clips', rng, 'videoCaption');
    return {
      kind: 'chat:videoCaption',
      turns: [user([text(s.prompts.videoDescription), clip(c.frames)]), assistant([text(c.description)])],
    };
  },
  videoQA: (p, rng) => {
    const c = pick(p, 'clips', rng, 'videoQA');
    return { kind: 'chat:videoQA', turns: [user([clip(c.frames), text(c.question)]), assistant([text(c.answer)])] };
  },
  visualStory: (p, rng) => {
    const st = pick(p, 'stories', rng, 'visualStory');
    const doc = st.segments.map((g) => (g.type === 'text' ? text(g.text) : image(g.codes)));
    const k = Math.min(2, doc.length - 1); // first sentence and its image
    return { kind: 'chat:visualStory', turns: [user([...doc.slice(0, k), text(SFT_TOY_PROMPTS.story)]), assistant(doc.slice(k))] };
  },
};

/** Tasks with a pretraining format, and tasks with a Stage-IV chat format. */
export const PRETRAIN_TASKS = Object.keys(PRETRAIN);
export const SFT_TOY_TASKS = Object.keys(SFT);

/** Chat turns of a stage in its mode: the stage's own system prompts when it has them (custom mode). */
function chatSample(
  tok: MultimodalTokenizer,
  turns: ChatTurn<MioDocument>[],
  mode: ChatMode,
  s: Stage,
): { ids: number[]; labels: number[] } {
  const sys = s.systemPrompts?.[mode === 'voice' ? 'voice' : 'std'];
  if (sys === undefined) return chatExample(tok, turns, { mode });
  return chatExample(tok, [{ role: 'system', content: [text(sys)] }, ...turns], { mode: 'custom' });
}

/**
 * One provider per task of the schedule presets (the pretraining slots and the 15 Stage-IV tasks),
 * over `corpus`, tokenized with `tok`. A stage with format 'pretrain' gets App. B documents, a
 * 'chat' stage gets ChatML conversations with labels on assistant turns only.
 */
export function mioTaskData(corpus: MioCorpus, tok: MultimodalTokenizer, opts: MioTaskDataOptions = {}): Record<string, MioTaskSampler> {
  if (!corpus || typeof corpus !== 'object' || !corpus.train)
    throw new Error(`mioTaskData: corpus must be { train, validation? } of pools, got ${corpus === null ? 'null' : typeof corpus}`);
  const share = opts.videoShare ?? 0.5;
  if (!(share >= 0 && share <= 1)) throw new Error(`mioTaskData: videoShare must be in [0, 1], got ${share}`);
  const eos = opts.eosId;
  if (eos !== undefined && !(Number.isInteger(eos) && eos >= 0 && eos < tok.vocab.textVocabSize))
    throw new Error(`mioTaskData: eosId must be a text id in [0, ${tok.vocab.textVocabSize}), got ${eos}`);
  const make =
    (task: string): MioTaskSampler =>
    (_index, rng, ctx) => {
      const pools = ctx.split === 'validation' ? (corpus.validation ?? corpus.train) : corpus.train;
      const chat = ctx.stage.format === 'chat';
      const b = (chat ? SFT : PRETRAIN)[task];
      if (!b)
        throw new Error(
          `mioTaskData: task "${task}" has no ${chat ? 'Stage-IV chat' : 'pretraining'} format (stage ${ctx.stage.name}); expected one of ${(chat ? SFT_TOY_TASKS : PRETRAIN_TASKS).join(', ')}`,
        );
      const out = b(pools, rng, ctx.stage, { videoShare: share });
      if (out.turns) {
        const ex = chatSample(tok, out.turns, out.mode ?? 'std', ctx.stage);
        return { ids: ex.ids, labels: ex.labels, kind: out.kind };
      }
      const ids = tok.encode(out.doc!);
      if (eos !== undefined) ids.push(eos);
      return { ids, kind: out.kind };
    };
  const data: Record<string, MioTaskSampler> = {};
  for (const t of new Set([...PRETRAIN_TASKS, ...SFT_TOY_TASKS])) data[t] = make(t);
  return data;
}

/** One step's draws, as runSchedule makes them. */
export interface DrawnBatch {
  stage: string;
  /** 1-based step inside the stage. */
  step: number;
  tasks: string[];
  indices: number[];
  samples: PackSample[];
}

/**
 * The batches runSchedule draws for `steps` steps of stage `stageIndex` (without training): the
 * stage's MixtureSampler on the stream `sampler/<stage>` of `seed`, each slot's sample index counted
 * per task over the whole run, each sample from `data[task](index, rng)` with the stream
 * `train/<task>` forked by the index. For tests and previews of a schedule's data.
 */
export function drawBatches(sch: Schedule, data: TaskData, seed: number, stageIndex: number, steps: number): DrawnBatch[] {
  const s = sch.stages[stageIndex];
  if (!s) throw new Error(`drawBatches: stage index ${stageIndex} is outside [0, ${sch.stages.length})`);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`drawBatches: steps must be an integer >= 1, got ${steps}`);
  const root = new Rng(seed);
  const offset: Record<string, number> = {};
  for (const prev of sch.stages.slice(0, stageIndex)) {
    if (prev.steps === null) throw new Error(`drawBatches: stage ${prev.name} has steps null; earlier stages need steps`);
    for (const [task, n] of Object.entries(prev.slots)) offset[task] = (offset[task] ?? 0) + (prev.gpus ?? 1) * n * prev.steps;
  }
  const devices = s.gpus ?? 1;
  const sampler = new MixtureSampler(s.slots, root.fork(`sampler/${s.name}`));
  const streams = new Map<string, Rng>();
  const stream = (task: string) => {
    let r = streams.get(task);
    if (!r) {
      r = root.fork(`train/${task}`);
      streams.set(task, r);
    }
    return r;
  };
  const out: DrawnBatch[] = [];
  for (let t = 1; t <= steps; t++) {
    const tasks = sampler.nextBatch(devices * s.batchPerGpu);
    const seen: Record<string, number> = {};
    const indices = tasks.map((task) => {
      const k = seen[task] ?? 0;
      seen[task] = k + 1;
      return (offset[task] ?? 0) + (t - 1) * devices * s.slots[task]! + k;
    });
    const samples = tasks.map((task, k) => {
      const f = data[task];
      if (!f) throw new Error(`drawBatches: stage ${s.name} has slots of task "${task}", but data has no provider for it`);
      return f(indices[k]!, stream(task).fork(indices[k]!), { task, split: 'train', index: indices[k]!, stage: s, step: t });
    });
    out.push({ stage: s.name, step: t, tasks, indices, samples });
  }
  return out;
}
