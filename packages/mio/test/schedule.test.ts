import { Rng } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import {
  formatPair,
  MIO_STD_MODE_SYSTEM,
  MIO_VOICE_MODE_SYSTEM,
  MixtureSampler,
  mioConfig,
  PRETRAIN_SLOTS,
  preset,
  SFT_TASKS,
  schedule,
  schedulePreset,
  scheduleTable,
  sequencesPerStep,
  slotShare,
  stage,
  stageLr,
} from '../src/index.js';

const paper = schedulePreset('paper');
const [I, II, III, IV] = paper.stages as [
  (typeof paper.stages)[0],
  (typeof paper.stages)[0],
  (typeof paper.stages)[0],
  (typeof paper.stages)[0],
];

describe('the paper preset (Table 9)', () => {
  it('has the steps, GPUs and per-GPU slots of Table 9', () => {
    expect(paper.stages.map((s) => s.name)).toEqual(['I', 'II', 'III', 'IV']);
    expect([I.steps, II.steps, III.steps, IV.steps]).toEqual([24_800, 12_800, 32_200, null]);
    expect([I.gpus, II.gpus, III.gpus, IV.gpus]).toEqual([128, 128, 8, null]);
    const slots = (s: typeof I) => PRETRAIN_SLOTS.map((k) => s.slots[k]).join(':');
    expect([slots(I), slots(II), slots(III)]).toEqual(['12:2:0:2', '2:2:6:6', '2:1:1:12']);
    expect([I, II, III].map((s) => slotShare(s, 'speech'))).toEqual([0.125, 0.375, 0.75]);
    expect([I, II, III, IV].map(sequencesPerStep)).toEqual([2048, 2048, 128, null]);
    for (const s of paper.stages) {
      expect(s.seqLen).toBe(2800);
      expect(s.lr).toEqual({ peak: 3e-5, min: 0, warmupRatio: 0.03, gradClip: 1 });
    }
    expect(IV.sources.steps).toBe('not given');
    expect(IV.sources.slots).toMatch(/^ours/);
    expect(Object.keys(IV.slots)).toEqual(Object.keys(SFT_TASKS));
  });

  it('carries the App. B prompts verbatim, with the Stage-III ASR prompt', () => {
    expect(I.prompts).toMatchObject({
      caption: 'The caption of this image is:',
      imageGeneration: 'Please generate an image of "{caption}":',
      videoDescription: 'Please describe the following video:',
      videoGeneration: 'Please generate a video for "{description}":',
      asr: 'Transcribe this speech:',
      tts: 'Please generate a speech of "{text}":',
      videoToTextShare: 0.4,
    });
    expect(II.prompts.asr).toBe('Transcribe this speech:');
    expect(III.prompts.asr).toBe('The transcription of this speech is:');
    expect([I.loss, III.loss, IV.loss]).toEqual(['allTokens', 'allTokens', 'assistantOnly']);
    expect(IV.systemPrompts).toEqual({ std: MIO_STD_MODE_SYSTEM, voice: MIO_VOICE_MODE_SYSTEM });
  });

  it('prints the resolved schedule as a table', () => {
    const t = scheduleTable(paper).split('\n');
    expect(t[0]).toBe(
      '| stage | steps | GPUs | per-GPU slots | speech share | sequences/step | seq len | peak lr | warmup | loss | ASR prompt |',
    );
    expect(t[2]).toBe(
      '| I alignment | 24,800 | 128 | 12:2:0:2 | 12.5% | 2,048 | 2800 | 0.00003 | 0.03 | allTokens | Transcribe this speech: |',
    );
    expect(t[4]).toContain('| III speech-enhanced | 32,200 | 8 | 2:1:1:12 | 75.0% | 128 |');
    expect(t[5]).toBe(
      '| IV SFT | not given | not given | 15 SFT tasks x 1 | - | not given | 2800 | 0.00003 | 0.03 | assistantOnly | (chat) |',
    );
  });

  it('prints a chat stage with unequal task slots task by task', () => {
    const custom = schedule({
      stages: [
        {
          name: 'S',
          steps: 2,
          gpus: 1,
          batchPerGpu: 4,
          slots: { asr: 1, tts: 3 },
          seqLen: 16,
          lr: { peak: 1e-3 },
          loss: 'assistantOnly',
          format: 'chat',
        },
      ],
    });
    expect(scheduleTable(custom).split('\n')[2]).toContain('| asr:1 tts:3 |');
  });

  it('gives the cosine lr of core warmupCosine with 3% warmup', () => {
    const w = Math.round(24_800 * 0.03); // 744
    expect(stageLr(I, 0)).toBeCloseTo(3e-5 / w, 12);
    expect(stageLr(I, w - 1)).toBeCloseTo(3e-5, 12);
    expect(stageLr(I, w + (24_800 - w) / 2)).toBeCloseTo(1.5e-5, 12);
    expect(stageLr(I, 24_800)).toBe(0);
    expect(() => stageLr(IV, 0)).toThrow('stage IV: steps are not set');
  });

  it('scales down in small and tiny with the same mixtures', () => {
    for (const name of ['small', 'tiny']) {
      const s = schedulePreset(name);
      expect(s.stages.map((x) => x.slots)).toEqual(paper.stages.map((x) => x.slots));
      expect(s.stages.every((x) => x.steps !== null)).toBe(true);
    }
    expect(preset('tiny').schedule).toEqual(schedulePreset('tiny'));
    expect(() => schedulePreset('constructor')).toThrow('unknown preset "constructor"');
  });
});

describe('stage validation', () => {
  const base = { name: 'X', steps: 10, batchPerGpu: 16, slots: { imageText: 12, text: 2, interleavedVideo: 0, speech: 2 } };
  it('accepts a valid stage', () => {
    expect(stage(base).slots.imageText).toBe(12);
  });
  it('names expected and actual when the slots do not sum to the batch', () => {
    expect(() => stage({ ...base, slots: { ...base.slots, speech: 1 } })).toThrow(
      'slots: stage X: slots sum to 15, expected batchPerGpu 16',
    );
    expect(() => schedule({ stages: [{ ...base, batchPerGpu: 17 }] })).toThrow(
      'stages.0.slots: stage X: slots sum to 16, expected batchPerGpu 17',
    );
  });
  it('names the negative slot', () => {
    expect(() => stage({ ...base, slots: { ...base.slots, text: -1 } })).toThrow(/slots\.text: .*>=0 \(got -1\)/);
  });
  it('rejects bad configs through mioConfig', () => {
    expect(() => mioConfig({ vocab: { imageCodes: 0 } })).toThrow(/vocab\.imageCodes: .*\(got 0\)/);
  });
});

describe('MixtureSampler', () => {
  it('draws each stage mixture within 2% over 1,000 batches', () => {
    for (const s of [I, II, III, IV])
      for (const batch of [4, 16]) {
        const sampler = new MixtureSampler(s.slots, 7);
        const counts: Record<string, number> = {};
        for (let b = 0; b < 1000; b++) for (const k of sampler.nextBatch(batch)) counts[k] = (counts[k] ?? 0) + 1;
        for (const [k, n] of Object.entries(s.slots))
          expect(Math.abs((counts[k] ?? 0) / (1000 * batch) - n / s.batchPerGpu)).toBeLessThan(0.02);
      }
  });

  it('is seeded and resumes exactly', () => {
    const a = new MixtureSampler(I.slots, 1);
    const b = new MixtureSampler(I.slots, 1);
    expect(a.nextBatch(20)).toEqual(b.nextBatch(20));
    expect(new MixtureSampler(I.slots, 2).nextBatch(20)).not.toEqual(new MixtureSampler(I.slots, 1).nextBatch(20));
    const st = a.getState();
    const next = a.nextBatch(30);
    const c = new MixtureSampler(I.slots, 99);
    c.setState(st);
    expect(c.nextBatch(30)).toEqual(next);
    expect(new MixtureSampler(I.slots, 3).nextBatch(16).filter((k) => k === 'interleavedVideo')).toEqual([]);
  });

  it('rejects bad slots', () => {
    expect(() => new MixtureSampler({ a: -1, b: 2 })).toThrow('slot a must be a non-negative integer, got -1');
    expect(() => new MixtureSampler({ a: 0 })).toThrow('slots must sum to a positive number, got 0');
  });
});

describe('formatPair (App. B)', () => {
  it('formats each direction with the stage prompts', () => {
    const rng = new Rng(0);
    const seen = new Map<string, unknown>();
    for (let i = 0; i < 40; i++) {
      for (const pair of [
        { kind: 'imageText', image: [1, 2], caption: 'a red circle' },
        {
          kind: 'speechText',
          content: [3, 4],
          levels: [
            [3, 4],
            [0, 0],
            [1, 1],
            [2, 2],
          ],
          text: 'red circle',
        },
      ] as const) {
        const e = formatPair(III.prompts, pair as never, rng);
        seen.set(e.task, e.doc);
      }
    }
    expect(seen.get('caption')).toEqual([
      { type: 'image', codes: [1, 2] },
      { type: 'text', text: 'The caption of this image is: a red circle' },
    ]);
    expect(seen.get('imageGeneration')).toEqual([
      { type: 'text', text: 'Please generate an image of "a red circle":' },
      { type: 'image', codes: [1, 2] },
    ]);
    expect(seen.get('asr')).toEqual([
      { type: 'speech', levels: [[3, 4]] },
      { type: 'text', text: 'The transcription of this speech is: red circle' },
    ]);
    expect(seen.get('tts')).toEqual([
      { type: 'text', text: 'Please generate a speech of "red circle":' },
      {
        type: 'speech',
        levels: [
          [3, 4],
          [0, 0],
          [1, 1],
          [2, 2],
        ],
      },
    ]);
  });

  it('splits video-text pairs 40% video-to-text', () => {
    const rng = new Rng(5);
    let toText = 0;
    for (let i = 0; i < 2000; i++)
      if (formatPair(II.prompts, { kind: 'videoText', frames: [[1]], description: 'd' }, rng).task === 'videoDescription') toText++;
    expect(Math.abs(toText / 2000 - 0.4)).toBeLessThan(0.03);
  });
});
