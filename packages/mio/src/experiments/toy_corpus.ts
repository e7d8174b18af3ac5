/**
 * MIO's toy world from @mmlm/data, for the staged-schedule experiments: 16 px Shapes images with one
 * object (caption: the `sizes` template, "a large red triangle"), with **seen** and **held-out**
 * evaluation sets (`seenHeldOutSets`: held-out attribute combinations never appear in any training
 * image or text); clips of that world (one moving small object); shape stories (a caption, then one
 * or two narrated edits, each sentence followed by its image); edit pairs (recolour / reshape /
 * resize); Shapes QA; plain text (the other caption templates of the training scenes); and tone
 * speech of `wordsPerUtterance` random words per utterance.
 *
 * Every training image, clip frame, story image and edit target shows an attribute combination
 * (size, colour, shape) among the training images' own, so the held-out figures measure composition.
 * `toyCorpus` tokenizes the world with a trained ImageCodes and SpeechCodec into MioCorpus pools.
 */
import { Rng } from '@mmlm/core';
import {
  applyEdit,
  ClipsDataset,
  editInstruction,
  editNarration,
  makeToneSpeakers,
  renderScene,
  type Scene,
  type SceneEdit,
  type SeenHeldOutSets,
  type ShapeObject,
  type ShapesSample,
  sampleEdit,
  sceneCaptions,
  seenHeldOutSets,
  synthesizeTone,
  TONE_VOCAB,
  type ToneUtterance,
  WordTokenizer,
} from '@mmlm/data';
import { MIO_STD_MODE_SYSTEM, MIO_VOICE_MODE_SYSTEM } from '../chat.js';
import type { SpeechCodec } from '../codec.js';
import type { ImageCodes } from '../image_codes.js';
import type { CorpusClip, CorpusEdit, CorpusImage, CorpusQA, CorpusSpeech, CorpusStory, MioCorpus, MioCorpusPools } from '../providers.js';
import { SFT_TOY_PROMPTS } from '../providers.js';
import type { Schedule } from '../schedule.js';
import type { TextTokenizerLike } from '../vocab.js';

export interface ToyWorldOptions {
  seed: number;
  /** Image side (16: one object per image, Shapes' grid of 1 cell). */
  imageSize: number;
  /** Training images, and images per evaluation set (seen and held-out). */
  trainImages: number;
  evalImages: number;
  stories: number;
  clips: number;
  /** Frames per clip (MIO: 4-8 frames per video-text pair). */
  clipFrames: number;
  edits: number;
  /** Tone-speech utterances for training (codec and LM) and for the ASR / TTS evaluation. */
  speechTrain: number;
  speechTest: number;
  wordsPerUtterance: number;
  /** Nominal word duration in seconds (synthesizeTone's default 0.3). */
  wordSeconds: number;
  numSpeakers: number;
  sampleRate: number;
}

/** The raw toy world (pixels and waves), before tokenization. */
export interface ToyWorld {
  options: ToyWorldOptions;
  /** train / seen / held-out Shapes samples (one object each). */
  sets: SeenHeldOutSets;
  /** The training images' (size, colour, shape) combinations. */
  trainCombos: Set<string>;
  stories: { sentences: string[]; images: Float32Array[] }[];
  clips: { frames: Float32Array[]; description: string; question: string; answer: string }[];
  edits: { source: Float32Array; instruction: string; target: Float32Array; targetScene: Scene }[];
  qa: { image: Float32Array; caption: string; question: string; answer: string }[];
  texts: string[];
  speechTrain: ToneUtterance[];
  speechTest: ToneUtterance[];
}

const combo = (o: Pick<ShapeObject, 'size' | 'colour' | 'shape'>) => `${o.size} ${o.colour} ${o.shape}`;

/** The caption of a one-object sample: the `sizes` template ("a large red triangle"). */
export function sizesCaption(s: ShapesSample): string {
  const c = s.captions.find((x) => x.template === 'sizes');
  if (!c) throw new Error(`sizesCaption: sample ${s.index} (${s.key}) has no 'sizes' caption`);
  return c.text;
}

/** Builds the toy world (deterministic in options.seed). */
export function buildToyWorld(o: ToyWorldOptions): ToyWorld {
  const sets = seenHeldOutSets(
    { seed: o.seed, imageSize: o.imageSize, minObjects: 1, maxObjects: 1 },
    { train: o.trainImages, seen: o.evalImages, heldOut: o.evalImages },
  );
  const cfg = sets.config;
  const trainCombos = new Set(sets.train.map((s) => combo(s.scene.objects[0]!)));
  const inTrain = (sc: Scene) => sc.objects.every((x) => trainCombos.has(combo(x)));
  const rng = new Rng(o.seed).fork('mio-toy-world');
  const kinds = ['recolour', 'reshape', 'resize'] as const;
  /** An edit of `scene` whose result stays among the training combinations (null after 20 tries). */
  const editOf = (scene: Scene, r: Rng): { edit: SceneEdit; next: Scene } | null => {
    for (let t = 0; t < 20; t++) {
      const edit = sampleEdit(scene, cfg, r.fork(`edit${t}`), kinds);
      const next = applyEdit(scene, edit, cfg, r.fork(`apply${t}`));
      if (inTrain(next)) return { edit, next };
    }
    return null;
  };
  const trainPick = (r: Rng) => sets.train[r.int(0, sets.train.length)]!;

  const stories: ToyWorld['stories'] = [];
  for (let i = 0; stories.length < o.stories; i++) {
    if (i > o.stories * 20) throw new Error(`buildToyWorld: only ${stories.length} of ${o.stories} stories in ${i} draws`);
    const r = rng.fork(`story${i}`);
    const first = trainPick(r);
    let scene = first.scene;
    const sentences = [`${sizesCaption(first)}.`];
    const images = [first.image];
    const n = r.int(1, 3);
    for (let k = 0; k < n; k++) {
      const e = editOf(scene, r.fork(k));
      if (!e) break;
      sentences.push(editNarration(scene, e.edit));
      scene = e.next;
      images.push(renderScene(scene, { antialias: cfg.antialias }));
    }
    if (images.length >= 2) stories.push({ sentences, images });
  }

  const edits: ToyWorld['edits'] = [];
  for (let i = 0; edits.length < o.edits; i++) {
    if (i > o.edits * 20) throw new Error(`buildToyWorld: only ${edits.length} of ${o.edits} edit pairs in ${i} draws`);
    const r = rng.fork(`edit-pair${i}`);
    const src = trainPick(r);
    const e = editOf(src.scene, r);
    if (!e) continue;
    edits.push({
      source: src.image,
      instruction: editInstruction(src.scene, e.edit),
      target: renderScene(e.next, { antialias: cfg.antialias }),
      targetScene: e.next,
    });
  }

  // clips: continuous positions need room to move at 16 px, so small objects travelling 10-20% of the side
  const clipsDs = new ClipsDataset({
    seed: o.seed,
    imageSize: o.imageSize,
    sizes: ['small'],
    frames: o.clipFrames,
    distance: [0.1, 0.2],
    split: 'train',
  });
  const clips: ToyWorld['clips'] = [];
  for (let i = 0; clips.length < o.clips; i++) {
    if (i > o.clips * 50) throw new Error(`buildToyWorld: only ${clips.length} of ${o.clips} clips in ${i} draws`);
    const c = clipsDs.sample(i);
    if (!c.scenes.every(inTrain)) continue;
    const m = c.motions[0]!;
    const answer = m.direction === 'still' ? 'it stays still' : `it moves ${m.direction}`;
    clips.push({ frames: c.frames, description: c.description, question: `where does the ${m.colour} ${m.shape} go?`, answer });
  }

  const qa: ToyWorld['qa'] = [];
  const texts: string[] = [];
  for (const s of sets.train) {
    const caption = sizesCaption(s);
    for (const q of s.qa) qa.push({ image: s.image, caption, question: q.question, answer: q.answer });
    for (const c of sceneCaptions(s.scene)) if (c.template !== 'sizes') texts.push(`${c.text}.`);
  }
  if (texts.length === 0) for (const s of sets.train) texts.push(`${sizesCaption(s)}.`);

  const speakers = makeToneSpeakers(o.numSpeakers, o.seed);
  const utter = (i: number) => {
    const r = new Rng(o.seed).fork(`mio-utterance-${i}`);
    const words = Array.from({ length: o.wordsPerUtterance }, () => TONE_VOCAB[r.int(0, TONE_VOCAB.length)]!.word);
    return synthesizeTone(words, speakers[i % speakers.length]!, {
      seed: r.nextSeed(),
      sampleRate: o.sampleRate,
      wordSeconds: o.wordSeconds,
    });
  };
  const speechTrain = Array.from({ length: o.speechTrain }, (_, i) => utter(i));
  const speechTest = Array.from({ length: o.speechTest }, (_, i) => utter(o.speechTrain + i));
  return { options: o, sets, trainCombos, stories, clips, edits, qa, texts, speechTrain, speechTest };
}

/** The text tokenizer's special tokens (ChatML markers for Stage IV). */
export const TOY_SPECIAL_TOKENS = ['<pad>', '<bos>', '<eos>', '<unk>', '<|im_start|>', '<|im_end|>'] as const;

/**
 * A word tokenizer over every string the toy world and the schedule's prompts can produce (the
 * evaluation captions too: their words all occur in training, only their combinations are new),
 * and its TextTokenizerLike view (special tokens allowed in text).
 */
export function toyTextTokenizer(world: ToyWorld, sch: Schedule): { words: WordTokenizer; text: TextTokenizerLike } {
  const strings: string[] = [MIO_STD_MODE_SYSTEM, MIO_VOICE_MODE_SYSTEM, ...Object.values(SFT_TOY_PROMPTS), 'so the answer is'];
  for (const s of sch.stages) {
    const p = s.prompts;
    strings.push(p.caption, p.imageGeneration, p.videoDescription, p.videoGeneration, p.asr, p.tts);
    if (s.systemPrompts) strings.push(s.systemPrompts.std, s.systemPrompts.voice);
  }
  const { sets } = world;
  for (const s of [...sets.train, ...sets.seen, ...sets.heldOut]) strings.push(sizesCaption(s));
  for (const st of world.stories) strings.push(...st.sentences);
  for (const c of world.clips) strings.push(c.description, c.question, c.answer);
  for (const e of world.edits) strings.push(e.instruction);
  for (const q of world.qa) strings.push(q.question, q.answer);
  strings.push(...world.texts, ...TONE_VOCAB.map((w) => w.word));
  const words = WordTokenizer.fromText(strings, { specialTokens: TOY_SPECIAL_TOKENS });
  return {
    words,
    text: {
      vocabSize: words.vocabSize,
      encode: (s: string) => words.encode(s, { allowedSpecial: 'all' }),
      decode: (ids: ArrayLike<number>) => words.decode(ids),
    },
  };
}

/** The toy world's pools, tokenized: images with `imageCodes`, speech with `codec` (all levels). */
export function toyCorpus(world: ToyWorld, imageCodes: ImageCodes, codec: SpeechCodec): MioCorpus {
  const enc = (xs: readonly Float32Array[]) => (xs.length ? imageCodes.encode(xs) : []);
  const trainCodes = enc(world.sets.train.map((s) => s.image));
  const images: CorpusImage[] = world.sets.train.map((s, i) => ({ codes: trainCodes[i]!, caption: sizesCaption(s) }));
  const stories: CorpusStory[] = world.stories.map((st) => {
    const codes = enc(st.images);
    return {
      segments: st.sentences.flatMap((t, k) => [
        { type: 'text' as const, text: t },
        { type: 'image' as const, codes: codes[k]! },
      ]),
    };
  });
  const clips: CorpusClip[] = world.clips.map((c) => ({
    frames: enc(c.frames),
    description: c.description,
    question: c.question,
    answer: c.answer,
  }));
  const editCodes = enc(world.edits.flatMap((e) => [e.source, e.target]));
  const edits: CorpusEdit[] = world.edits.map((e, i) => ({
    source: editCodes[2 * i]!,
    instruction: e.instruction,
    target: editCodes[2 * i + 1]!,
  }));
  const qaCodes = enc(world.qa.map((q) => q.image));
  const qa: CorpusQA[] = world.qa.map((q, i) => ({ codes: qaCodes[i]!, caption: q.caption, question: q.question, answer: q.answer }));
  const speechOf = (us: readonly ToneUtterance[]): CorpusSpeech[] =>
    us.map((u) => ({ levels: codec.encode(u.samples, { sampleRate: u.sampleRate }), text: u.words.join(' ') }));
  const train: MioCorpusPools = { images, texts: world.texts, stories, clips, speech: speechOf(world.speechTrain), edits, qa };
  return { train };
}
