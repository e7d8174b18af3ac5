/**
 * Data providers: stage mixtures over 1,000 sampled batches within 2% of spec (slots and the paired
 * directions), SFT label masks against hand-written expectations, same seed -> same batches, the
 * runner draws exactly what drawBatches previews, and bad inputs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng, TransformerDecoder } from '@mmlm/core';
import { WordTokenizer } from '@mmlm/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  drawBatches,
  IGNORE_INDEX,
  MIO_STD_MODE_SYSTEM,
  MIO_VOICE_MODE_SYSTEM,
  type MioCorpus,
  type MioSample,
  MultimodalTokenizer,
  mioTaskData,
  PRETRAIN_TASKS,
  runSchedule,
  type SampleContext,
  type Schedule,
  SFT_TASKS,
  SFT_TOY_PROMPTS,
  SFT_TOY_TASKS,
  schedule,
  schedulePreset,
} from '../src/index.js';

const I = IGNORE_INDEX;
const specials = ['<pad>', '<bos>', '<eos>', '<unk>', '<|im_start|>', '<|im_end|>'];
const sch = schedulePreset('tiny');
const prompts = sch.stages.flatMap((s) => Object.values(s.prompts).filter((p): p is string => typeof p === 'string'));
const words = WordTokenizer.fromText(
  [
    ...prompts,
    MIO_STD_MODE_SYSTEM,
    MIO_VOICE_MODE_SYSTEM,
    ...Object.values(SFT_TOY_PROMPTS),
    'so the answer is a large red circle small blue square it moves left what colour is the shape? red then the circle turns blue. make the circle blue a square goes up system user assistant',
  ],
  { specialTokens: specials },
);
const text = {
  vocabSize: words.vocabSize,
  encode: (s: string) => words.encode(s, { allowedSpecial: 'all' }),
  decode: (ids: ArrayLike<number>) => words.decode(ids),
};
const tok = new MultimodalTokenizer(text, {
  textVocabSize: words.vocabSize,
  imageCodes: 16,
  tokensPerImage: 4,
  speechCodebookSize: 8,
  speechLevels: 4,
});
const eos = words.specialId('<eos>');
const img = (k: number) => [k % 16, (k + 1) % 16, (k + 2) % 16, (k + 3) % 16];
const corpus: MioCorpus = {
  train: {
    images: [
      { codes: img(0), caption: 'a large red circle' },
      { codes: img(5), caption: 'a small blue square' },
    ],
    texts: ['a large red circle', 'then the circle turns blue.'],
    stories: [
      {
        segments: [
          { type: 'text', text: 'a large red circle.' },
          { type: 'image', codes: img(1) },
          { type: 'text', text: 'then the circle turns blue.' },
          { type: 'image', codes: img(2) },
        ],
      },
    ],
    clips: [{ frames: [img(3), img(4)], description: 'a square goes up', question: 'what colour is the shape?', answer: 'red' }],
    speech: [
      {
        levels: [
          [1, 2],
          [3, 4],
          [5, 6],
          [7, 0],
        ],
        text: 'red circle',
      },
    ],
    edits: [{ source: img(6), instruction: 'make the circle blue', target: img(7) }],
    qa: [{ codes: img(8), caption: 'a large red circle', question: 'what colour is the shape?', answer: 'red' }],
  },
};
const data = mioTaskData(corpus, tok, { eosId: eos });
const ctxOf = (stage: number, task: string, index = 0): SampleContext => ({
  task,
  split: 'train',
  index,
  stage: sch.stages[stage]!,
  step: 1,
});

describe('mioTaskData: mixtures over 1,000 batches', () => {
  it('holds each stage slot mix and each pair direction within 2% of spec', () => {
    for (let si = 0; si < 3; si++) {
      const st = sch.stages[si]!;
      const batches = drawBatches(sch, data, 7, si, 1000);
      const tasks = batches.flatMap((b) => b.tasks);
      const kinds = batches.flatMap((b) => b.samples.map((s) => (s as MioSample).kind));
      const share = (xs: string[], x: string) => xs.filter((y) => y === x).length / xs.length;
      for (const [task, n] of Object.entries(st.slots)) expect(Math.abs(share(tasks, task) - n / st.batchPerGpu)).toBeLessThan(0.02);
      const within = (a: string, b: string, want: number) => {
        const na = share(kinds, a);
        const nb = share(kinds, b);
        if (na + nb > 0) expect(Math.abs(na / (na + nb) - want), `${st.name}: ${a} vs ${b}`).toBeLessThan(0.02);
      };
      within('caption', 'imageGeneration', st.prompts.imageToTextShare);
      within('asr', 'tts', st.prompts.asrShare);
      if (st.slots.interleavedVideo! > 0) {
        within('videoDescription', 'videoGeneration', st.prompts.videoToTextShare);
        const video = share(kinds, 'videoDescription') + share(kinds, 'videoGeneration');
        expect(Math.abs(video / (video + share(kinds, 'interleaved')) - 0.5)).toBeLessThan(0.02);
      }
    }
    // Stage IV: one slot per SFT task, every sample a chat with labels
    const iv = drawBatches(sch, data, 7, 3, 20);
    const n = Object.keys(SFT_TASKS).length;
    for (const b of iv) {
      expect([...b.tasks].sort()).toEqual(Object.keys(SFT_TASKS).sort());
      for (const s of b.samples) expect((s as MioSample).labels?.length).toBe(s.ids.length);
    }
    expect(iv[0]!.tasks.length).toBe(n);
  });

  it('uses the stage prompts: Stage III changes the ASR prompt', () => {
    const asr = (stage: number) => {
      for (let i = 0; ; i++) {
        const s = data.speech!(i, new Rng(i), ctxOf(stage, 'speech'));
        if (s.kind === 'asr') return words.decode(s.ids.filter((id) => id < words.vocabSize));
      }
    };
    expect(asr(0)).toBe('transcribe this speech: red circle <eos>');
    expect(asr(2)).toBe('the transcription of this speech is: red circle <eos>');
  });
});

describe('mioTaskData: SFT label masks (loss on assistant turns only)', () => {
  const w = (s: string) => words.encode(s, { allowedSpecial: 'all' });
  const start = words.specialId('<|im_start|>');
  const end = words.specialId('<|im_end|>');
  const v = tok.vocab;
  const imageIds = (codes: number[]) => [v.specials['<image>'], ...codes.map((k) => v.imageOffset + k), v.specials['</image>']];

  it('imageCaption: system, user image + prompt carry no loss; the caption and its <|im_end|> do', () => {
    const s = data.imageCaption!(0, new Rng(1), ctxOf(3, 'imageCaption'));
    const cap = corpus.train.images.find((x) => s.ids.join(',').includes(imageIds(x.codes).join(',')))!;
    const head = [
      start,
      ...w('system'),
      ...w(MIO_STD_MODE_SYSTEM),
      end,
      start,
      ...w('user'),
      ...imageIds(cap.codes),
      ...w('The caption of this image is:'),
      end,
      start,
      ...w('assistant'),
    ];
    const answer = [...w(cap.caption), end];
    expect(s.ids).toEqual([...head, ...answer]);
    expect(s.labels).toEqual([...head.map(() => I), ...answer]);
    expect(s.kind).toBe('chat:imageCaption');
  });

  it('tts: voice mode; the loss is on the 4-level speech block and <|im_end|>', () => {
    const s = data.tts!(0, new Rng(1), ctxOf(3, 'tts'));
    const u = corpus.train.speech[0]!;
    const speech = [
      v.specials['<spch>'],
      ...u.levels.flatMap((codes, l) => codes.map((c) => v.speechOffset + 8 * l + c)),
      v.specials['</spch>'],
    ];
    const head = [
      start,
      ...w('system'),
      ...w(MIO_VOICE_MODE_SYSTEM),
      end,
      start,
      ...w('user'),
      ...w('Please generate a speech of "red circle":'),
      end,
      start,
      ...w('assistant'),
    ];
    expect(s.ids).toEqual([...head, ...speech, end]);
    expect(s.labels).toEqual([...head.map(() => I), ...speech, end]);
  });

  it('text in Stage IV is a chat; in Stage I a plain sentence ending with <eos>, loss everywhere', () => {
    const chat = data.text!(0, new Rng(3), ctxOf(3, 'text'));
    expect(chat.kind).toBe('chat:text');
    const kept = chat.ids.filter((_, i) => chat.labels![i] !== I);
    expect(words.decode(kept)).toMatch(/<\|im_end\|>$/);
    expect(chat.labels!.filter((l) => l !== I).length).toBeLessThan(chat.ids.length / 2);
    const plain = data.text!(0, new Rng(3), ctxOf(0, 'text'));
    expect(plain.labels).toBeUndefined();
    expect(plain.ids[plain.ids.length - 1]).toBe(eos);
  });

  it('every SFT task gives labels on assistant tokens only, with something to learn', () => {
    for (const t of Object.keys(SFT_TASKS)) {
      const s = data[t]!(0, new Rng(2), ctxOf(3, t));
      expect(s.labels!.length, t).toBe(s.ids.length);
      const n = s.labels!.filter((l) => l !== I).length;
      expect(n > 0 && n < s.ids.length, t).toBe(true);
      s.labels!.forEach((l, i) => {
        if (l !== I) expect(l).toBe(s.ids[i]);
      });
    }
    expect(SFT_TOY_TASKS.sort()).toEqual(Object.keys(SFT_TASKS).sort());
    expect(PRETRAIN_TASKS).toEqual(['imageText', 'text', 'interleavedVideo', 'speech']);
  });
});

describe('determinism and the runner', () => {
  let root = '';
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: false });
    root = mkdtempSync(join(tmpdir(), 'mio-providers-test-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('same seed, same batches; another seed, other batches', () => {
    const a = drawBatches(sch, data, 3, 1, 5);
    const b = drawBatches(sch, mioTaskData(corpus, tok, { eosId: eos }), 3, 1, 5);
    const c = drawBatches(sch, data, 4, 1, 5);
    expect(b).toEqual(a);
    expect(c.map((x) => x.samples)).not.toEqual(a.map((x) => x.samples));
  });

  it('runSchedule draws exactly the batches drawBatches previews', async () => {
    const small: Schedule = schedule({
      stages: [
        { ...sch.stages[0]!, steps: 2, seqLen: 160 },
        { ...sch.stages[3]!, steps: 2, seqLen: 160 },
      ],
    });
    const seen: { tasks: string[]; indices: number[] }[] = [];
    const model = new TransformerDecoder({ vocabSize: tok.size, dim: 8, numLayers: 1, numHeads: 1, maxSeqLen: 160, seed: 0 });
    await runSchedule({
      schedule: small,
      model,
      data,
      dir: join(root, 'run'),
      seed: 11,
      valSamplesPerTask: 1,
      progress: 'none',
      log: () => {},
      onStep: (e) => {
        seen.push({ tasks: e.tasks, indices: e.indices });
      },
    });
    const want = [0, 1].flatMap((si) => drawBatches(small, data, 11, si, 2).map((b) => ({ tasks: b.tasks, indices: b.indices })));
    expect(seen).toEqual(want);
    model.dispose();
  });

  it('names the task, the pool and the expected value of bad inputs', () => {
    const empty = mioTaskData({ train: { ...corpus.train, clips: [] } }, tok);
    expect(() => empty.videoChat!(0, new Rng(0), ctxOf(3, 'videoChat'))).toThrow(
      'task "videoChat" draws from the corpus pool "clips", which is empty',
    );
    expect(() => data.icl!(0, new Rng(0), ctxOf(0, 'icl'))).toThrow(
      'task "icl" has no pretraining format (stage I); expected one of imageText, text, interleavedVideo, speech',
    );
    expect(() => mioTaskData(corpus, tok, { eosId: 10_000 })).toThrow(`eosId must be a text id in [0, ${words.vocabSize}), got 10000`);
    expect(() => mioTaskData(corpus, tok, { videoShare: 2 })).toThrow('videoShare must be in [0, 1], got 2');
    expect(() => drawBatches(sch, data, 0, 9, 1)).toThrow('stage index 9 is outside [0, 4)');
  });
});
