import { WordTokenizer } from '@mmlm/data';
import { describe, expect, it } from 'vitest';
import {
  classifyId,
  type MioDocument,
  MultimodalTokenizer,
  mioVocab,
  PAPER_VOCAB,
  PAPER_VOCAB_CONFIG,
  preset,
  speechTokenId,
  splitSpeechLevels,
  tokenName,
} from '../src/index.js';

const words = WordTokenizer.fromText('a red circle above a blue square the caption of this image is : transcribe speech');
const cfg = { textVocabSize: words.vocabSize, imageCodes: 16, tokensPerImage: 4, speechCodebookSize: 8, speechLevels: 4 };
const tok = new MultimodalTokenizer(words, cfg);
const alt = new MultimodalTokenizer(words, { ...cfg, speechLayout: 'alternating' });
const V = words.vocabSize;
const S = V + 16; // <spch0>
const X = V + 16 + 32; // <image>

describe('vocabulary', () => {
  it('has the paper arithmetic: 64,000 + 8,192 + 4 x 1,024 + 4 = 76,292 (12,292 added)', () => {
    expect(PAPER_VOCAB.added).toBe(12_292);
    expect(PAPER_VOCAB.size).toBe(76_292);
    const v = mioVocab(PAPER_VOCAB_CONFIG);
    expect(v.size).toBe(76_292);
    expect(v.added).toBe(12_292);
    expect([v.imageOffset, v.speechOffset]).toEqual([64_000, 72_192]);
    expect(v.specials).toEqual({ '<image>': 76_288, '</image>': 76_289, '<spch>': 76_290, '</spch>': 76_291 });
    expect(preset('paper').vocab).toEqual(PAPER_VOCAB_CONFIG);
  });

  it('names ids as MIO does: <img{k}>, <spch{1024 l + c}>', () => {
    const v = mioVocab(PAPER_VOCAB_CONFIG);
    expect(tokenName(v, 64_000 + 8191)).toBe('<img8191>');
    expect(tokenName(v, speechTokenId(v, 0, 1023))).toBe('<spch1023>');
    expect(tokenName(v, speechTokenId(v, 1, 0))).toBe('<spch1024>');
    expect(tokenName(v, speechTokenId(v, 3, 1023))).toBe('<spch4095>');
    expect(tokenName(v, 76_290)).toBe('<spch>');
    expect(classifyId(v, speechTokenId(v, 2, 5))).toEqual({ kind: 'speech', level: 2, code: 5 });
    expect(() => classifyId(v, 76_292)).toThrow('id 76292 is outside [0, 76292)');
    expect(() => mioVocab({ speechLevels: 0 })).toThrow(/speechLevels.*got 0/);
  });
});

describe('MultimodalTokenizer round trips', () => {
  const img = [3, 0, 15, 7];
  const docs: Record<string, MioDocument> = {
    text: [{ type: 'text', text: 'a red circle above a blue square' }],
    image: [{ type: 'image', codes: img }],
    clip: [{ type: 'clip', frames: [img, [1, 2, 3, 4], [5, 5, 5, 5]] }],
    'speech input (content only)': [{ type: 'speech', levels: [[0, 7, 3]] }],
    'speech output (4 levels)': [
      {
        type: 'speech',
        levels: [
          [0, 7, 3],
          [1, 1, 1],
          [6, 5, 4],
          [2, 0, 7],
        ],
      },
    ],
    mixed: [
      { type: 'image', codes: img },
      { type: 'text', text: 'the caption of this image is: a red circle' },
      { type: 'speech', levels: [[1, 2]] },
      { type: 'text', text: 'transcribe speech' },
      { type: 'clip', frames: [img, img] },
      { type: 'speech', levels: [[1], [2], [3], [4]] },
    ],
  };
  for (const [name, doc] of Object.entries(docs)) {
    it(`${name}: decode(encode(doc)) = doc, encode(decode(ids)) = ids, parse(render(doc)) = doc`, () => {
      for (const t of [tok, alt]) {
        const ids = t.encode(doc);
        expect(t.decode(ids)).toEqual(doc);
        expect(t.encode(t.decode(ids))).toEqual(ids);
        expect(t.parse(t.render(doc))).toEqual(doc);
      }
    });
  }

  it('lays out ids exactly: <image> codes </image>, speech sequential or alternating', () => {
    expect(tok.encode([{ type: 'image', codes: img }])).toEqual([X, V + 3, V, V + 15, V + 7, X + 1]);
    const levels = [
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ];
    // sequential: every level-0 code, then level 1 (+8), level 2 (+16), level 3 (+24)
    expect(tok.encode([{ type: 'speech', levels }])).toEqual([X + 2, ...[0, 1, 10, 11, 20, 21, 30, 31].map((n) => S + n), X + 3]);
    expect(alt.encode([{ type: 'speech', levels }])).toEqual([X + 2, ...[0, 10, 20, 30, 1, 11, 21, 31].map((n) => S + n), X + 3]);
    // input speech has no timbre codes
    expect(tok.encode([{ type: 'speech', levels: [[5, 6]] }])).toEqual([X + 2, S + 5, S + 6, X + 3]);
  });

  it('renders MIO strings and parses their spacing variants identically', () => {
    const doc: MioDocument = [
      { type: 'text', text: 'a red circle ' },
      { type: 'image', codes: [12, 7, 0, 1] },
      { type: 'speech', levels: [[1], [2], [3], [4]] },
    ];
    const s = tok.render(doc);
    expect(s).toBe('a red circle <image><img12><img7><img0><img1></image><spch><spch1><spch10><spch19><spch28></spch>');
    const spaced = 'a red circle <image> <img12>  <img7> <img0> <img1> </image> <spch> <spch1> <spch10> <spch19> <spch28> </spch>';
    expect(tok.parse(spaced)).toEqual(doc);
  });

  it('reads adjacent images as a clip unless clips: false', () => {
    const ids = tok.encode([
      { type: 'image', codes: img },
      { type: 'image', codes: img },
    ]);
    expect(tok.decode(ids)).toEqual([{ type: 'clip', frames: [img, img] }]);
    expect(tok.decode(ids, { clips: false })).toEqual([
      { type: 'image', codes: img },
      { type: 'image', codes: img },
    ]);
  });
});

describe('speech completeness (check_speech_completeness)', () => {
  it('splits 4 contiguous equal blocks and removes the offsets (view(4, -1))', () => {
    const C = 1024;
    const nums = [5, 9, 1024 + 3, 1024 + 4, 2048, 2049, 3072 + 1023, 3072];
    expect(splitSpeechLevels(nums, C, 4, 'sequential')).toEqual([
      [5, 9],
      [3, 4],
      [0, 1],
      [1023, 0],
    ]);
    expect(splitSpeechLevels([5, 9], C, 4, 'sequential')).toEqual([[5, 9]]);
  });

  it('fails on bad order, missing levels, unequal lengths and bad alternation, naming expected and actual', () => {
    const C = 8;
    expect(() => splitSpeechLevels([0, 16, 8, 24], C, 4, 'sequential')).toThrow(
      'expected 4 contiguous level blocks in order [0, 1, 2, 3], got level runs [0, 2, 1, 3]',
    );
    expect(() => splitSpeechLevels([0, 8, 16], C, 4, 'sequential')).toThrow('got level runs [0, 1, 2]');
    expect(() => splitSpeechLevels([0, 1, 8, 16, 24], C, 4, 'sequential')).toThrow(
      'expected 4 level blocks of equal length, got lengths [2, 1, 1, 1]',
    );
    expect(() => splitSpeechLevels([0, 8, 24, 16], C, 4, 'alternating')).toThrow('position 2 expected level 2, got level 3');
    expect(() => splitSpeechLevels([0, 8, 16], C, 4, 'alternating')).toThrow('expected a multiple of 4 codes, got 3');
    expect(() => splitSpeechLevels([32], C, 4, 'sequential')).toThrow('<spch32> at position 0 is outside [0, 32)');
  });

  it('decode names the block and the token on malformed ids', () => {
    const bad = [X + 2, S + 0, S + 16, S + 8, S + 24, X + 3];
    expect(() => tok.decode(bad)).toThrow(/<spch> block at position 0: .*got level runs \[0, 2, 1, 3\]/);
    expect(() => tok.decode([X, V + 1, S + 1, V + 2, V + 3, X + 1])).toThrow(
      'position 2 in the <image> block at 0: expected <img{k}> or </image>, got <spch1>',
    );
    expect(() => tok.decode([X + 2, V + 1, X + 3])).toThrow('expected <spch{n}> or </spch>, got <img1>');
    expect(() => tok.decode([X + 1])).toThrow('position 0: expected text, <image> or <spch>, got </image>');
    expect(() => tok.decode([X, V, V])).toThrow('the <image> block at position 0 has no </image>');
    expect(() => tok.decode([X, V, X + 1])).toThrow('expected 4 codes per image, got 1');
    expect(() => tok.decode([X + 4])).toThrow(`id ${X + 4} is outside [0, ${X + 4})`);
  });

  it('encode rejects malformed segments', () => {
    expect(() => tok.encode([{ type: 'speech', levels: [[1], [2]] }])).toThrow(
      'expected 1 level (input speech, content only) or 4 levels (output speech), got 2',
    );
    expect(() => tok.encode([{ type: 'speech', levels: [[1, 2], [2], [3], [4]] }])).toThrow('got lengths [2, 1, 1, 1]');
    expect(() => tok.encode([{ type: 'image', codes: [1, 2, 3, 16] }])).toThrow('image code 16 at index 3 is outside [0, 16)');
    expect(() => tok.encode([{ type: 'clip', frames: [] }])).toThrow('expected at least one frame, got 0');
    expect(() => tok.encode([{ type: 'audio' } as never])).toThrow('segment 0 has type "audio", expected text, image, clip or speech');
    expect(() => new MultimodalTokenizer(words, { textVocabSize: 10 })).toThrow(`vocabSize ${V}, expected textVocabSize 10`);
  });
});
