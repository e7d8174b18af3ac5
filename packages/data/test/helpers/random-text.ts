/** Seeded random strings for property-style round-trip tests: ASCII, whitespace, accents, CJK, emoji, specials. */
import { Rng } from '@mmlm/core';

const PIECES = [
  'a',
  'b',
  'z',
  'Q',
  ' ',
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  '0',
  '7',
  '42',
  '.',
  ',',
  '!',
  "'s",
  "'",
  '-',
  '(',
  ')',
  'é',
  'e\u0301',
  'ñ',
  'ü',
  'ß',
  'İ',
  'Ω',
  'я',
  '日',
  '本語',
  '한',
  'ا',
  '😀',
  '👍🏽',
  '👨‍👩‍👧',
  '🇫🇷',
  '𝔘',
  '\u0000',
  '\u007f',
  '\uFEFF',
  '\u00ff',
  '\uFFFD',
  '\u200b',
  '<eos>',
  '<pad>',
  '<',
  '>',
  'the',
  ' circle',
  '½',
  '²',
];

export function randomString(rng: Rng, maxPieces = 30): string {
  const n = rng.int(0, maxPieces + 1);
  let s = '';
  for (let i = 0; i < n; i++) s += PIECES[rng.int(0, PIECES.length)];
  return s;
}

export function randomStrings(seed: number, count: number, maxPieces = 30): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => randomString(rng, maxPieces));
}
