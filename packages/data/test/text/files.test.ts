import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '@mmlm/core';
import { describe, expect, it } from 'vitest';
import {
  batchToTensors,
  grammarCorpus,
  inputsAndTargets,
  readTextFile,
  sequentialWindows,
  splitItems,
  splitText,
  WindowBatcher,
} from '../../src/text/index.js';
import { CharTokenizer, trainBpe } from '../../src/tokenizers/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHAKESPEARE = process.env.MMLM_SHARED_DATA
  ? join(process.env.MMLM_SHARED_DATA, 'tinyshakespeare.txt')
  : resolve(here, '../../../../../shared/data/tinyshakespeare.txt');
const hasShakespeare = existsSync(SHAKESPEARE);
if (!hasShakespeare) console.warn(`skipping tinyshakespeare tests: ${SHAKESPEARE} is absent (set MMLM_SHARED_DATA to its folder)`);

describe('readTextFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmlm-text-'));

  it('reads UTF-8 text and drops a byte-order mark', () => {
    writeFileSync(join(dir, 'a.txt'), 'héllo 😀\n');
    expect(readTextFile(join(dir, 'a.txt'))).toBe('héllo 😀\n');
    writeFileSync(join(dir, 'bom.txt'), Buffer.from([0xef, 0xbb, 0xbf, 0x61]));
    expect(readTextFile(join(dir, 'bom.txt'))).toBe('a');
  });

  it('names the file and the problem for bad files', () => {
    expect(() => readTextFile(join(dir, 'nope.txt'))).toThrow(/readTextFile: .*nope\.txt: file not found/);
    mkdirSync(join(dir, 'sub'));
    expect(() => readTextFile(join(dir, 'sub'))).toThrow(/sub: is a directory, expected a text file/);
    writeFileSync(join(dir, 'empty.txt'), '');
    expect(() => readTextFile(join(dir, 'empty.txt'))).toThrow(/empty\.txt: file is empty \(0 bytes\)/);
    writeFileSync(join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])); // "café" in Latin-1
    expect(() => readTextFile(join(dir, 'latin1.txt'))).toThrow(
      /latin1\.txt: not valid UTF-8: invalid byte sequence at offset 3 \(byte 0xe9\)/,
    );
    writeFileSync(join(dir, 'bin.dat'), Buffer.from([0x00, 0xff, 0xfe]));
    expect(() => readTextFile(join(dir, 'bin.dat'))).toThrow(/bin\.dat: not valid UTF-8: .*offset 1 \(byte 0xff\)/);
    expect(() => readTextFile('')).toThrow(/path must be a non-empty string/);
  });

  it.skipIf(!hasShakespeare)('reads tinyshakespeare (skipped when ../shared/data beside the repository is absent)', () => {
    const text = readTextFile(SHAKESPEARE);
    expect(text.length).toBeGreaterThan(1_000_000);
    expect(text.startsWith('First Citizen:')).toBe(true);
    const tok = CharTokenizer.fromText(text);
    expect(tok.chars.length).toBe(65);
    const t0 = performance.now();
    const bpe = trainBpe(text, { vocabSize: 1024 });
    expect(performance.now() - t0).toBeLessThan(10_000);
    const sample = text.slice(500_000, 510_000);
    expect(bpe.decode(bpe.encode(sample))).toBe(sample);
    expect(bpe.encode(sample).length).toBeLessThan(sample.length / 2.2);
  });
});

describe('splits', () => {
  it('cuts text contiguously, optionally at a line break, never inside a surrogate pair', () => {
    expect(splitText('abcdefghij')).toEqual({ train: 'abcdefghi', val: 'j' });
    expect(splitText('aaaa\nbbbb\ncccc\n', { valFraction: 0.5, atLineBreak: true })).toEqual({ train: 'aaaa\nbbbb\n', val: 'cccc\n' });
    expect(splitText('a😀b', { valFraction: 0.5 })).toEqual({ train: 'a😀', val: 'b' });
    expect(() => splitText('abc', { valFraction: 1.5 })).toThrow(/valFraction must be in \[0, 1\], got 1.5/);
  });

  it('splits items into disjoint seeded parts', () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    const s = splitItems(items, { valFraction: 0.1, testFraction: 0.2, seed: 5 });
    expect([s.train.length, s.val.length, s.test.length]).toEqual([70, 10, 20]);
    expect(new Set([...s.train, ...s.val, ...s.test]).size).toBe(100);
    expect(splitItems(items, { valFraction: 0.1, testFraction: 0.2, seed: 5 })).toEqual(s);
    expect(splitItems(items, { valFraction: 0.1, testFraction: 0.2, seed: 6 }).val).not.toEqual(s.val);
    expect(() => splitItems(items, { valFraction: 0.6, testFraction: 0.6, seed: 1 })).toThrow(/sum <= 1, got 0.6 and 0.6/);
  });
});

describe('WindowBatcher', () => {
  const text = grammarCorpus({ seed: 0, chars: 5000 });
  const tok = CharTokenizer.fromText(text);
  const ids = Int32Array.from(tok.encode(text));

  it('yields [B, T+1] windows of consecutive ids, deterministic by seed', () => {
    const a = new WindowBatcher(ids, { batchSize: 4, blockSize: 16, seed: 1 });
    const b = new WindowBatcher(ids, { batchSize: 4, blockSize: 16, seed: 1 });
    const x = a.next();
    expect(x.shape).toEqual([4, 17]);
    expect(x.data).toHaveLength(68);
    for (let r = 0; r < 4; r++)
      expect(Array.from(x.data.subarray(r * 17, r * 17 + 17))).toEqual(Array.from(ids.subarray(x.offsets[r], x.offsets[r]! + 17)));
    expect(b.next()).toEqual(x);
    const state = a.getState();
    const y = a.next();
    b.next();
    b.setState(state);
    expect(b.next()).toEqual(y);
    expect(new WindowBatcher(ids, { batchSize: 4, blockSize: 16, seed: 2 }).next().offsets).not.toEqual(x.offsets);
    const { inputs, targets, shape } = inputsAndTargets(x);
    expect(shape).toEqual([4, 16]);
    expect(inputs[17]).toBe(x.data[18]);
    expect(targets[0]).toBe(x.data[1]);
  });

  it('covers every target once in sequential evaluation windows', () => {
    const small = Int32Array.from({ length: 50 }, (_, i) => i);
    const batches = [...sequentialWindows(small, { batchSize: 2, blockSize: 8 })];
    const targets = batches.flatMap((b) => Array.from(inputsAndTargets(b).targets));
    expect(targets).toEqual(Array.from({ length: 48 }, (_, i) => i + 1));
    expect(batches.map((b) => b.shape[0])).toEqual([2, 2, 2]);
  });

  it('makes int32 tensors without leaking', () => {
    const before = tf.memory().numTensors;
    const { x, y } = batchToTensors(new WindowBatcher(ids, { batchSize: 2, blockSize: 8, seed: 0 }).next());
    expect(x.shape).toEqual([2, 8]);
    expect(y.dtype).toBe('int32');
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad options', () => {
    expect(() => new WindowBatcher([1, 2, 3], { batchSize: 1, blockSize: 3, seed: 0 })).toThrow(
      /need at least blockSize \+ 1 = 4 ids, got 3/,
    );
    expect(() => new WindowBatcher(ids, { batchSize: 0, blockSize: 3, seed: 0 })).toThrow(/batchSize must be an integer >= 1, got 0/);
    expect(() => new WindowBatcher(ids, { batchSize: 1, blockSize: 2.5, seed: 0 })).toThrow(/blockSize must be an integer >= 1, got 2.5/);
  });
});
