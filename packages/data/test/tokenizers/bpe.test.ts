import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BpeTokenizer,
  ByteTokenizer,
  CharTokenizer,
  loadTokenizer,
  pretokenize,
  saveTokenizer,
  tokenizerFromJSON,
  trainBpe,
  WordTokenizer,
  withSpecialTokens,
} from '../../src/tokenizers/index.js';
import { randomStrings } from '../helpers/random-text.js';

const ENGLISH =
  'the red circle is above the blue square. the small green triangle moves to the left of the big ring. ' +
  "what colour is the square? it's blue. there are 3 circles and 12 squares; 2024 was a year. " +
  'once upon a time there was a yellow cross who lived in the middle of the picture.\n';

describe('pretokenize', () => {
  it('splits like GPT-2: contractions, words with one leading space, digit groups, symbols, whitespace', () => {
    expect(pretokenize("Hello world's 12345 ok!!  x")).toEqual(['Hello', ' world', "'s", ' 123', '45', ' ok', '!!', ' ', ' x']);
    expect(pretokenize('café\n\nthe end  ')).toEqual(['café', '\n', '\n', 'the', ' end', '  ']);
    expect(pretokenize('e\u0301t\u00e9 😀😀 a')).toEqual(['e\u0301t\u00e9', ' 😀😀', ' a']);
  });

  it('loses no character: the pieces concatenate to the text', () => {
    for (const s of randomStrings(11, 300)) expect(pretokenize(s).join('')).toBe(s);
    expect(pretokenize('ab  cd', 'b')).toEqual(['a', 'b', '  cd']);
  });
});

describe('trainBpe', () => {
  it('learns the hand-worked merges of "aaabdaaabac" (aa, then ab over the tie with Za, then ZY)', () => {
    const tok = trainBpe('aaabdaaabac', { vocabSize: 256 + 3 + 4 });
    expect(tok.merges).toEqual([
      [97, 97],
      [97, 98],
      [256, 257],
    ]);
    expect(tok.encode('aaabdaaabac')).toEqual([258, 100, 258, 97, 99]);
    expect(tok.specialId('<pad>')).toBe(259);
    expect(tok.vocabSize).toBe(263);
    // every remaining pair occurs once: training stops early at minFrequency 2
    expect(trainBpe('aaabdaaabac', { vocabSize: 1000 }).merges).toHaveLength(3);
    expect(trainBpe('aaabdaaabac', { vocabSize: 1000, minFrequency: 1 }).merges.length).toBeGreaterThan(3);
  });

  it('never merges across pre-tokens ("low lower lowest")', () => {
    const tok = trainBpe('low lower lowest', { vocabSize: 256 + 4 + 4 });
    // lo (3, tie with ow broken by smaller ids), low (3), " low" (2, tie with "lowe"), " lowe" (2)
    expect(tok.merges).toEqual([
      [108, 111],
      [256, 119],
      [32, 257],
      [258, 101],
    ]);
    expect(tok.encode(' lowest')).toEqual([259, 115, 116]);
    expect(tok.encode('lowlow')).toEqual([257, 257]);
    expect(tok.idToToken(259)).toBe(' lowe');
  });

  it('is deterministic and independent of document order', () => {
    const docs = [ENGLISH, ...randomStrings(5, 50)];
    const a = trainBpe(docs, { vocabSize: 400 });
    const b = trainBpe(docs, { vocabSize: 400 });
    const c = trainBpe([...docs].reverse(), { vocabSize: 400 });
    expect(JSON.stringify(a.toJSON())).toBe(JSON.stringify(b.toJSON()));
    expect(c.merges).toEqual(a.merges);
  });

  it('round-trips random UTF-8 exactly and never emits a special id for ordinary text', () => {
    const train = [ENGLISH.repeat(3), ...randomStrings(6, 300)];
    const tok = trainBpe(train, { vocabSize: 600, specialTokens: withSpecialTokens('<boi>', '<eoi>', '<BOD>', '<EOD>') });
    expect(tok.merges.length).toBeGreaterThan(100);
    for (const s of [...randomStrings(7, 400), ENGLISH]) {
      const ids = tok.encode(s);
      expect(ids.every((id) => !tok.isSpecial(id))).toBe(true);
      expect(tok.decode(ids)).toBe(s);
    }
    expect(tok.encode(ENGLISH).length).toBeLessThan(new TextEncoder().encode(ENGLISH).length / 2.5);
    const withSpecial = tok.encode('<boi>the<eoi>', { allowedSpecial: ['<boi>', '<eoi>'] });
    expect(withSpecial[0]).toBe(tok.specialId('<boi>'));
    expect(withSpecial.at(-1)).toBe(tok.specialId('<eoi>'));
    expect(tok.decode(withSpecial)).toBe('<boi>the<eoi>');
  });

  it('rejects bad options', () => {
    expect(() => trainBpe('ab', { vocabSize: 259 })).toThrow(/vocabSize must be an integer in \[260, .*got 259/);
    expect(() => trainBpe('ab', { vocabSize: 300, minFrequency: 0 })).toThrow(/minFrequency must be an integer >= 1, got 0/);
    expect(() => trainBpe('ab', { vocabSize: 300, pattern: '(' })).toThrow(/pattern is not a valid regular expression/);
    expect(() => trainBpe(['a', 3 as unknown as string], { vocabSize: 300 })).toThrow(/text\[1\] must be a string, got number/);
  });
});

describe('tokenizer JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmlm-tok-'));

  it('saves and loads every tokenizer kind with identical behaviour', () => {
    const sample = 'the red circle 😀 <boi>';
    const toks = [
      trainBpe(ENGLISH, { vocabSize: 320 }),
      new ByteTokenizer(),
      CharTokenizer.fromText(ENGLISH),
      WordTokenizer.fromText(ENGLISH, { specialTokens: withSpecialTokens('<boi>') }),
    ];
    for (const [i, tok] of toks.entries()) {
      const path = join(dir, `tok${i}.json`);
      saveTokenizer(path, tok);
      const back = loadTokenizer(path);
      expect(back.kind).toBe(tok.kind);
      expect(back.vocabSize).toBe(tok.vocabSize);
      expect(back.encode(sample)).toEqual(tok.encode(sample));
      expect(back.toJSON()).toEqual(tok.toJSON());
    }
    expect(trainBpe(ENGLISH, { vocabSize: 320 }).toJSON()).toMatchObject({ type: 'mmlm-bpe', version: 1 });
  });

  it('gives clear errors for corrupt or wrong files', () => {
    const good = JSON.stringify(trainBpe(ENGLISH, { vocabSize: 300 }).toJSON());
    const cases: [string, string, RegExp][] = [
      ['truncated.json', good.slice(0, good.length / 2), /truncated\.json: invalid JSON/],
      ['garbage.json', '\u0000\u0001 not json', /garbage\.json: invalid JSON/],
      ['array.json', '[1, 2]', /array\.json: expected an object/],
      ['type.json', '{"type":"sentencepiece","version":1}', /type\.json: expected type .* got "sentencepiece"/],
      ['version.json', good.replace('"version":1', '"version":7'), /version\.json: unsupported version 7; this build reads version 1/],
      [
        'merge.json',
        good.replace('"merges":[[', '"merges":[[999,1],['),
        /merge\.json: merges\[0\] must be a pair of token ids below 256, got \[999,1\]/,
      ],
      [
        'dup.json',
        '{"type":"mmlm-bpe","version":1,"pattern":"a","specialTokens":[],"merges":[[1,2],[1,2]]}',
        /dup\.json: merges\[1\] \[1,2\] repeats merges\[0\]/,
      ],
      [
        'pattern.json',
        '{"type":"mmlm-bpe","version":1,"pattern":"(","specialTokens":[],"merges":[]}',
        /pattern\.json: .*not a valid regular expression/,
      ],
      [
        'specials.json',
        '{"type":"mmlm-bpe","version":1,"pattern":"a","specialTokens":"<pad>","merges":[]}',
        /specials\.json: "specialTokens" must be an array/,
      ],
      [
        'chars.json',
        '{"type":"mmlm-char","version":1,"specialTokens":[],"chars":["a","a"]}',
        /chars\.json: CharTokenizer: character "a" is listed twice/,
      ],
      ['words.json', '{"type":"mmlm-word","version":1,"specialTokens":[]}', /words\.json: "words" must be an array of strings/],
    ];
    for (const [name, text, re] of cases) {
      writeFileSync(join(dir, name), text);
      expect(() => loadTokenizer(join(dir, name))).toThrow(re);
    }
    expect(() => loadTokenizer(join(dir, 'missing.json'))).toThrow(/missing\.json: file not found/);
    mkdirSync(join(dir, 'folder.json'), { recursive: true });
    expect(() => loadTokenizer(join(dir, 'folder.json'))).toThrow(/folder\.json: not a regular file/);
    expect(() => tokenizerFromJSON(null)).toThrow(/expected an object/);
    expect(() => BpeTokenizer.fromJSON({ type: 'mmlm-bpe', version: 1, pattern: 'a', specialTokens: [], merges: 'x' })).toThrow(
      /"merges" must be an array/,
    );
  });
});
