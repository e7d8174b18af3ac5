import { describe, expect, it } from 'vitest';
import {
  ByteTokenizer,
  CharTokenizer,
  DEFAULT_SPECIAL_TOKENS,
  firstInvalidUtf8,
  joinWords,
  splitWords,
  WordTokenizer,
  withSpecialTokens,
} from '../../src/tokenizers/index.js';
import { randomStrings } from '../helpers/random-text.js';

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer({ specialTokens: withSpecialTokens('<boi>', '<eoi>') });

  it('encodes UTF-8 bytes and puts specials after 255', () => {
    expect(tok.encode('aé€😀')).toEqual([0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]);
    expect(tok.vocabSize).toBe(262);
    expect(tok.specialTokens).toEqual(['<pad>', '<bos>', '<eos>', '<unk>', '<boi>', '<eoi>']);
    expect(tok.specialId('<pad>')).toBe(256);
    expect(tok.specialId('<eoi>')).toBe(261);
    expect(tok.isSpecial(261)).toBe(true);
    expect(tok.isSpecial(255)).toBe(false);
  });

  it('round-trips random strings exactly (emoji, combining marks, NUL, BOM, U+FFFD)', () => {
    for (const s of randomStrings(1, 400)) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('never produces a special id from ordinary text', () => {
    for (const s of randomStrings(2, 200)) expect(tok.encode(s).every((id) => id < 256)).toBe(true);
    expect(tok.encode('<eos>')).toHaveLength(5);
  });

  it('maps allowed special strings to their single id, and adds bos/eos', () => {
    expect(tok.encode('a<boi>b<eos>', { allowedSpecial: ['<boi>'] })).toEqual([97, 260, 98, ...tok.encode('<eos>')]);
    expect(tok.encode('a<boi>b<eos>', { allowedSpecial: 'all' })).toEqual([97, 260, 98, 258]);
    expect(tok.encode('x', { bos: true, eos: true })).toEqual([257, 120, 258]);
    expect(tok.decode([257, 120, 258])).toBe('<bos>x<eos>');
    expect(tok.decode([257, 120, 258], { skipSpecial: true })).toBe('x');
  });

  it('decodes a sequence cut inside a character with U+FFFD, and gives the raw bytes', () => {
    const ids = tok.encode('😀').slice(0, 2);
    expect(tok.decode(ids)).toBe('\uFFFD');
    expect(Array.from(tok.decodeBytes(ids))).toEqual([0xf0, 0x9f]);
  });

  it('rejects bad input with clear errors', () => {
    expect(() => tok.encode('a\ud800b')).toThrow(/lone surrogate U\+D800 at index 1/);
    expect(() => tok.decode([1, 262])).toThrow(/ids\[1\] must be an integer in \[0, 262\), got 262/);
    expect(() => tok.decode([1.5])).toThrow(/got 1.5/);
    expect(() => tok.specialId('<mask>')).toThrow(/no special token "<mask>"/);
    expect(() => tok.encode('x', { allowedSpecial: ['<mask>'] })).toThrow(/allowedSpecial names "<mask>"/);
    expect(() => new ByteTokenizer({ specialTokens: ['<a>', '<a>'] })).toThrow(/"<a>" is listed twice/);
    expect(() => new ByteTokenizer({ specialTokens: ['< a>'] })).toThrow(/must not contain whitespace/);
    expect(() => new ByteTokenizer({ specialTokens: [''] })).toThrow(/non-empty string/);
    expect(() => new ByteTokenizer({ specialTokens: [] }).encode('x', { bos: true })).toThrow(/no special token "<bos>"/);
  });
});

describe('CharTokenizer', () => {
  it('builds the vocabulary from code points, specials first, sorted by code point', () => {
    const tok = CharTokenizer.fromText('banana 😀');
    expect(tok.chars).toEqual([' ', 'a', 'b', 'n', '😀']);
    expect(tok.specialId('<pad>')).toBe(0);
    expect(tok.vocabSize).toBe(DEFAULT_SPECIAL_TOKENS.length + 5);
    expect(tok.encode('nab😀')).toEqual([7, 5, 6, 8]);
    expect(tok.decode(tok.encode('a banana😀'))).toBe('a banana😀');
  });

  it('maps unknown characters to <unk> and decodes it as the <unk> string', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(tok.encode('abz')).toEqual([4, 5, 3]);
    expect(tok.decode(tok.encode('abz'))).toBe('ab<unk>');
  });

  it('round-trips random strings over its own vocabulary', () => {
    const texts = randomStrings(3, 200);
    const tok = CharTokenizer.fromText(texts.join(''), { specialTokens: withSpecialTokens('<BOD>', '<EOD>') });
    for (const s of texts) expect(tok.decode(tok.encode(s))).toBe(s);
    expect(tok.encode('<BOD>x<EOD>', { allowedSpecial: 'all' })).toEqual([4, tok.encode('x')[0], 5]);
  });

  it('honours minCount and survives a JSON round trip', () => {
    const tok = CharTokenizer.fromText('aaabbc', { minCount: 2 });
    expect(tok.chars).toEqual(['a', 'b']);
    expect(tok.toJSON()).toEqual({ type: 'mmlm-char', version: 1, specialTokens: [...DEFAULT_SPECIAL_TOKENS], chars: ['a', 'b'] });
  });

  it('rejects bad input', () => {
    const noUnk = CharTokenizer.fromText('ab', { specialTokens: ['<pad>'] });
    expect(() => noUnk.encode('abc')).toThrow(/character "c" \(U\+63\) at index 2 is not in the vocabulary and there is no <unk>/);
    expect(() => new CharTokenizer(['a', 'a'])).toThrow(/"a" is listed twice/);
    expect(() => new CharTokenizer(['ab'])).toThrow(/chars\[0\] must be a single code point/);
    expect(() => CharTokenizer.fromText('ab', { minCount: 0 })).toThrow(/minCount must be an integer >= 1, got 0/);
    expect(() => CharTokenizer.fromText('a\udc00')).toThrow(/lone surrogate at index 1/);
    expect(() => noUnk.decode([9])).toThrow(/ids\[0\] must be an integer in \[0, 3\), got 9/);
  });
});

describe('WordTokenizer', () => {
  it('lowercases and splits on spaces and punctuation', () => {
    expect(splitWords("The RED circle, isn't   it?  (yes)")).toEqual(['the', 'red', 'circle', ',', "isn't", 'it', '?', '(', 'yes', ')']);
    expect(joinWords(['the', 'red', 'circle', ',', 'is', 'it', '?', '(', 'yes', ')'])).toBe('the red circle, is it? (yes)');
  });

  it('orders words by count then alphabetically, after the specials', () => {
    const tok = WordTokenizer.fromText(['a red circle.', 'a blue circle.', 'a red square.']);
    expect(tok.words).toEqual(['.', 'a', 'circle', 'red', 'blue', 'square']);
    expect(tok.encode('A red circle.')).toEqual([5, 7, 6, 4]);
    expect(tok.decode(tok.encode('A  red circle .'))).toBe('a red circle.');
    expect(tok.encode('a green circle')).toEqual([5, 3, 6]);
    expect(WordTokenizer.fromText('a a b c', { maxWords: 2 }).words).toEqual(['a', 'b']);
    expect(WordTokenizer.fromText('a a b c', { minCount: 2 }).words).toEqual(['a']);
  });

  it('keeps user special tokens as single ids never produced by text', () => {
    const tok = WordTokenizer.fromText('what colour is the square ?', { specialTokens: withSpecialTokens('<boi>', '<eoi>') });
    expect(tok.encode('<boi> what')).toEqual([3, 3, 3, tok.encode('what')[0]]);
    expect(tok.encode('<boi> what <eoi>', { allowedSpecial: ['<boi>', '<eoi>'], bos: true })).toEqual([1, 4, tok.encode('what')[0], 5]);
    expect(tok.decode([1, 4, 5, 2], { skipSpecial: true })).toBe('');
  });

  it('rejects bad input', () => {
    expect(() => new WordTokenizer(['Red'])).toThrow(/words\[0\] must be a non-empty lowercase string/);
    expect(() => new WordTokenizer(['red', 'red'])).toThrow(/"red" is listed twice/);
    expect(() => new WordTokenizer(['red'], { specialTokens: [] }).encode('blue')).toThrow(/word "blue" is not in the vocabulary/);
    expect(() => WordTokenizer.fromText('a', { minCount: 1.5 })).toThrow(/minCount must be an integer >= 1, got 1.5/);
  });
});

describe('firstInvalidUtf8', () => {
  it('finds the first invalid byte sequence (RFC 3629 examples)', () => {
    expect(firstInvalidUtf8(new TextEncoder().encode('aé😀'))).toBe(-1);
    expect(firstInvalidUtf8(Uint8Array.of(0x61, 0xff))).toBe(1);
    expect(firstInvalidUtf8(Uint8Array.of(0xc0, 0x80))).toBe(0); // overlong NUL
    expect(firstInvalidUtf8(Uint8Array.of(0x61, 0xed, 0xa0, 0x80))).toBe(1); // UTF-16 surrogate D800
    expect(firstInvalidUtf8(Uint8Array.of(0x61, 0x62, 0xe2, 0x82))).toBe(2); // truncated euro sign
    expect(firstInvalidUtf8(Uint8Array.of(0xf4, 0x90, 0x80, 0x80))).toBe(0); // above U+10FFFF
    expect(firstInvalidUtf8(Uint8Array.of(0xe2, 0x28, 0xa1))).toBe(0); // bad continuation
  });
});
