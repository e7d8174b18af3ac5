/**
 * mio.speech-layout: the tiny preset end to end (every metric named and in range, no tensor left
 * behind), the arms' training sequences laid out as claimed, the held-out split, and bad settings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@mmlm/core';
import { type ExperimentResult, inlineContext, runExperimentInline } from '@mmlm/core/experiment';
import { TONE_VOCAB, WordTokenizer } from '@mmlm/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CodedUtterance,
  experiments,
  memoriserWer,
  SPEECH_LAYOUT_ARMS,
  SPEECH_LAYOUT_SETTINGS,
  type SpeechLayoutArm,
  speechLayoutExperiment,
  speechLayoutSample,
  speechLayoutSchedule,
  speechLayoutSettings,
  speechLayoutSplit,
  speechLayoutTaskData,
} from '../src/experiments/index.js';
import { drawBatches, MultimodalTokenizer, PromptsSchema } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'mio-speech-layout-test-'));
let first: ExperimentResult;
let second: ExperimentResult;
let tensors: { before: number; after: number };

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
  // the first run fills module-level constant caches (the codec's DFT matrices); the second must leave the count as it found it
  first = await runExperimentInline(speechLayoutExperiment, { preset: 'tiny', seed: 0, outDir: join(root, 'seed0'), log: () => {} });
  const before = tf.memory().numTensors;
  second = await runExperimentInline(speechLayoutExperiment, { preset: 'tiny', seed: 1, outDir: join(root, 'seed1'), log: () => {} });
  tensors = { before, after: tf.memory().numTensors };
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SETS = ['Seen', 'HeldOut'];
const ARMS = SPEECH_LAYOUT_ARMS.map((a) => a.name);
const arm = (name: SpeechLayoutArm['name']) => SPEECH_LAYOUT_ARMS.find((a) => a.name === name)!;

describe('mio.speech-layout at tiny', () => {
  it('is registered with tiny, small and small-k64 presets (small-k64: small with the 64-code codec)', () => {
    expect(experiments.map((e) => e.id)).toContain('mio.speech-layout');
    expect(Object.keys(speechLayoutExperiment.presets).sort()).toEqual(['small', 'small-k64', 'tiny']);
    expect(Object.keys(SPEECH_LAYOUT_SETTINGS).sort()).toEqual(['small', 'small-k64', 'tiny']);
    expect(SPEECH_LAYOUT_SETTINGS['small-k64']).toEqual({ ...SPEECH_LAYOUT_SETTINGS.small, codec: 'small-12.5hz-k64' });
    expect(ARMS).toEqual(['sequential', 'alternating', 'fullInput']);
  });

  it('reports every metric of every arm on seen and held-out utterances, each in range', () => {
    for (const r of [first, second]) {
      const m = r.metrics;
      const num = (k: string) => {
        const v = m[k];
        expect(typeof v, `${k} = ${v}`).toBe('number');
        expect(Number.isFinite(v as number), `${k} = ${v}`).toBe(true);
        return v as number;
      };
      const step = SPEECH_LAYOUT_SETTINGS.tiny.evalSteps[0]!;
      for (const a of ARMS)
        for (const set of SETS) {
          for (const k of ['asrWer', 'ttsWer', 'ttsFreeWer']) expect(num(`${a}_${k}${set}`)).toBeGreaterThanOrEqual(0);
          for (const k of ['asrNll', 'ttsNll', 'ttsDurationRatio']) expect(num(`${a}_${k}${set}`)).toBeGreaterThan(0);
          const d = num(`${a}_ttsFreeDecodable${set}`);
          expect(d >= 0 && d <= 1, `${a}_ttsFreeDecodable${set} = ${d}`).toBe(true);
          // the duration ratio is at most the longest generation over the shortest reference
          expect(num(`${a}_ttsDurationRatio${set}`)).toBeLessThanOrEqual(num('maxGeneratedFrames'));
          for (const k of ['asrWer', 'asrNll', 'ttsWer', 'ttsNll', 'ttsFreeDecodable']) num(`${a}_step${step}_${k}${set}`);
        }
      for (const a of ARMS) {
        expect(num(`${a}_secondsPerStep`)).toBeGreaterThan(0);
        expect(num(`${a}_finalLoss`)).toBeGreaterThan(0);
      }
      expect(num('memoriserWerSeen')).toBe(0); // seen sequences are training sequences
      expect(num('memoriserWerHeldOut')).toBeGreaterThan(0);
      expect(num('memoriserWerHeldOut')).toBeLessThanOrEqual(1);
      for (const set of SETS) {
        expect(num(`codecResynthWer${set}`)).toBeGreaterThanOrEqual(0);
        expect(num(`toneDecoderWer${set}`)).toBeGreaterThanOrEqual(0);
      }
      expect(num('heldOutSequences')).toBe(64); // 25% of the 256 word pairs
      expect(r.tables?.[0]?.rows.length).toBe(6);
      expect(r.summary).toContain('no difference is called here');
    }
  });

  it('leaves no tensor behind', () => {
    expect(tensors.after).toBe(tensors.before);
  });

  it('aggregates seeds into a claim table and verdicts on both factors', () => {
    const agg = speechLayoutExperiment.aggregate!([first, second], [0, 1]);
    expect(agg.tables?.[0]?.rows.length).toBe(6);
    expect(agg.tables?.[0]?.rows[0]?.[2]).toMatch(/ ± /);
    expect(agg.summary).toMatch(/Output layout, sequential \(A, MIO\) vs alternating \(B\)/);
    expect(agg.summary).toMatch(/TTS WER \(constrained\), held-out: sequential .* vs alternating/);
    expect(agg.summary).toMatch(/ASR WER, held-out: sequential .* vs fullInput/);
    expect(agg.summary).toMatch(/Earlier in training/);
    const one = speechLayoutExperiment.aggregate!([first], [0]);
    expect(one.summary).toMatch(/one seed, cannot judge/);
  });
});

describe('the arms train on what they claim', () => {
  const words = WordTokenizer.fromText(['transcribe this speech: please generate a speech of "":', ...TONE_VOCAB.map((w) => w.word)], {
    specialTokens: ['<pad>', '<bos>', '<eos>', '<unk>'],
  });
  const eosId = words.specialId('<eos>');
  const prompts = PromptsSchema.parse({});
  const C = 8;
  const L = 4;
  const tok = (layout: 'sequential' | 'alternating') =>
    new MultimodalTokenizer(words, { textVocabSize: words.vocabSize, speechCodebookSize: C, speechLevels: L, speechLayout: layout });
  const toks = { sequential: tok('sequential'), alternating: tok('alternating') };
  const T = 5;
  const u: CodedUtterance = {
    levels: Array.from({ length: L }, (_, l) => Array.from({ length: T }, (_, t) => (l + 2 * t) % C)),
    words: ['red', 'circle'],
    text: 'red circle',
  };
  /** Level of every speech code inside the first <spch> ... </spch> block of `ids`. */
  const levelsOfBlock = (ids: readonly number[], a: SpeechLayoutArm) => {
    const v = toks[a.ttsLayout].vocab;
    const open = ids.indexOf(v.specials['<spch>']);
    const close = ids.indexOf(v.specials['</spch>']);
    expect(open, 'a <spch> block').toBeGreaterThanOrEqual(0);
    return ids.slice(open + 1, close).map((id) => Math.floor((id - v.speechOffset) / C));
  };
  const sample = (task: 'tts' | 'asr', a: SpeechLayoutArm) => speechLayoutSample(task, u, a, toks[a.ttsLayout], { prompts, eosId });

  it('TTS output: sequential arms write level blocks, the alternating arm whole frames', () => {
    const seq = levelsOfBlock(sample('tts', arm('sequential')).ids, arm('sequential'));
    expect(seq).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
    expect(levelsOfBlock(sample('tts', arm('fullInput')).ids, arm('fullInput'))).toEqual(seq);
    const alt = levelsOfBlock(sample('tts', arm('alternating')).ids, arm('alternating'));
    expect(alt).toEqual(Array.from({ length: L * T }, (_, i) => i % L));
    // the same codes, frame by frame: a1 b1 c1 d1 a2 ...
    const v = toks.alternating.vocab;
    const codes = sample('tts', arm('alternating'))
      .ids.filter((id) => id >= v.speechOffset && id < v.speechOffset + L * C)
      .map((id) => (id - v.speechOffset) % C);
    expect(codes).toEqual(Array.from({ length: L * T }, (_, i) => u.levels[i % L]![Math.floor(i / L)]));
  });

  it('ASR input: the content level only in arms A and B, all 4 levels in arm C', () => {
    for (const a of [arm('sequential'), arm('alternating')]) expect(levelsOfBlock(sample('asr', a).ids, a)).toEqual([0, 0, 0, 0, 0]);
    expect(levelsOfBlock(sample('asr', arm('fullInput')).ids, arm('fullInput'))).toEqual([
      0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
    ]);
  });

  it('scores the speech codes (TTS) and the transcript (ASR)', () => {
    const v = toks.sequential.vocab;
    const tts = sample('tts', arm('sequential'));
    const scoredTts = tts.ids.slice(...tts.scored);
    expect(scoredTts.length).toBe(L * T + 1);
    expect(scoredTts[scoredTts.length - 1]).toBe(v.specials['</spch>']);
    const asr = sample('asr', arm('sequential'));
    expect(words.decode(asr.ids.slice(...asr.scored))).toBe('red circle <eos>');
  });

  it("the runner's batches: the same utterances for every arm, each in its arm's layout", () => {
    const st = SPEECH_LAYOUT_SETTINGS.tiny;
    const pool = Array.from({ length: 6 }, (_, i) => ({
      ...u,
      levels: u.levels.map((l) => l.map((c) => (c + i) % C)),
      text: TONE_VOCAB[i]!.word,
    }));
    const drawn = Object.fromEntries(
      SPEECH_LAYOUT_ARMS.map((a) => [
        a.name,
        drawBatches(
          speechLayoutSchedule(st),
          speechLayoutTaskData(a, toks[a.ttsLayout], { train: pool, validation: pool }, { prompts, eosId }),
          0,
          0,
          2,
        ),
      ]),
    );
    const text = (ids: ArrayLike<number>) => words.decode(Array.from(ids).filter((id) => id < words.vocabSize));
    for (const a of SPEECH_LAYOUT_ARMS)
      drawn[a.name]!.forEach((b, k) => {
        expect(b.tasks).toEqual(drawn.sequential![k]!.tasks);
        b.samples.forEach((s, j) => {
          expect(text(s.ids)).toBe(text(drawn.sequential![k]!.samples[j]!.ids)); // same prompt and transcript
          const lv = levelsOfBlock(Array.from(s.ids), a);
          if (b.tasks[j] === 'asr') expect(new Set(lv)).toEqual(new Set(a.asrInput === 'content' ? [0] : [0, 1, 2, 3]));
          else if (a.ttsLayout === 'alternating') expect(lv).toEqual(lv.map((_, i) => i % L));
          else expect(lv).toEqual([...lv].sort((x, y) => x - y));
        });
      });
  });
});

describe('the held-out split', () => {
  const o = { seed: 3, train: 40, test: 6, wordsPerUtterance: 2, wordSeconds: 0.1, heldOutFraction: 0.25, speakers: 2, sampleRate: 8000 };
  const split = speechLayoutSplit(o);

  it('holds out word sequences no training utterance has, keeping every word at every position', () => {
    const train = new Set(split.train.map((x) => x.words.join(' ')));
    expect([...train].sort()).toEqual([...split.trainSequences].sort());
    expect(split.heldOutSequences).toHaveLength(64);
    for (const x of split.heldOut) expect(train.has(x.words.join(' '))).toBe(false);
    for (const x of split.seen) expect(train.has(x.words.join(' '))).toBe(true);
    const held = new Set(split.heldOutSequences);
    for (const s of split.trainSequences) expect(held.has(s)).toBe(false);
    for (let p = 0; p < 2; p++) expect(new Set(split.trainSequences.map((s) => s.split(' ')[p])).size).toBeGreaterThan(10);
    expect(
      memoriserWer(
        split.seen.map((x) => x.words),
        split.trainSequences,
      ),
    ).toBe(0);
    expect(memoriserWer([['red', 'red']], ['red green', 'blue blue'])).toBe(0.5);
  });

  it('is deterministic in the seed', () => {
    const again = speechLayoutSplit(o);
    expect(again.heldOutSequences).toEqual(split.heldOutSequences);
    expect(again.train[5]!.samples).toEqual(split.train[5]!.samples);
  });
});

describe('bad settings and inputs name expected and actual', () => {
  const tiny = () => structuredClone(SPEECH_LAYOUT_SETTINGS.tiny);

  it('settings', () => {
    expect(() => speechLayoutSettings({ ...tiny(), train: { ...tiny().train, batch: 5 } })).toThrow(
      /train\.batch: expected an even number \(half TTS, half ASR\) \(got 5\)/,
    );
    expect(() => speechLayoutSettings({ ...tiny(), evalSteps: [2, 3] })).toThrow(
      /evalSteps: expected ascending steps ending at train\.steps = 4 \(got \[2,3\]\)/,
    );
    expect(() => speechLayoutSettings({ ...tiny(), speech: { ...tiny().speech, wordsPerUtterance: 1 } })).toThrow(
      /speech\.wordsPerUtterance: .*2.* \(got 1\)/,
    );
    expect(() => speechLayoutSettings({ ...tiny(), train: { ...tiny().train, minLr: 1 } })).toThrow(
      /train\.minLr: expected at most train\.lr = 0\.003 \(got 1\)/,
    );
    expect(speechLayoutSettings(tiny())).toEqual(SPEECH_LAYOUT_SETTINGS.tiny);
  });

  it('samples, data and presets', () => {
    const words = WordTokenizer.fromText(['red'], { specialTokens: ['<eos>'] });
    const seq = new MultimodalTokenizer(words, { textVocabSize: words.vocabSize, speechCodebookSize: 8, speechLevels: 4 });
    const u = { levels: [[1], [2], [3], [4]], text: 'red' };
    const o = { prompts: PromptsSchema.parse({}), eosId: 0 };
    expect(() => speechLayoutSample('tts', u, arm('alternating'), seq, o)).toThrow(
      /arm alternating lays output speech out 'alternating', but the tokenizer's speechLayout is 'sequential'/,
    );
    expect(() => speechLayoutSample('tts', { levels: [[1]], text: 'red' }, arm('sequential'), seq, o)).toThrow(
      /expected the utterance's 4 code levels \[4\]\[T\], got 1/,
    );
    expect(() => speechLayoutTaskData(arm('sequential'), seq, { train: [], validation: [] }, o)).toThrow(
      /expected at least one train utterance, got 0/,
    );
    expect(() =>
      speechLayoutSplit({
        seed: 0,
        train: 2,
        test: 1,
        wordsPerUtterance: 4,
        wordSeconds: 0.1,
        heldOutFraction: 0.2,
        speakers: 1,
        sampleRate: 8000,
      }),
    ).toThrow(/wordsPerUtterance must be 2 or 3, got 4/);
  });

  it('an unknown preset', async () => {
    const ctx = inlineContext(speechLayoutExperiment, { preset: 'tiny', outDir: join(root, 'bad') });
    await expect(speechLayoutExperiment.run({ ...ctx, preset: 'huge' })).rejects.toThrow(
      /unknown preset "huge"; expected one of tiny, small/,
    );
  });
});
