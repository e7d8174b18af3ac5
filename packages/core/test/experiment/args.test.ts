import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkDataFile,
  checkPreset,
  ensureOutDir,
  hasPreset,
  parsePresets,
  parseSeedList,
  parseSeedText,
  UsageError,
} from '../../src/experiment/index.js';

describe('command-line checks', () => {
  it('seeds: decimal integers in [0, 2^32) only', () => {
    expect(parseSeedText('--seed', '0')).toBe(0);
    expect(parseSeedText('--seed', ' 4294967295 ')).toBe(4294967295);
    for (const bad of ['', ' ', '0x10', '1e30', '1e3', '-1', '1.5', '+1', 'Infinity', '4294967296', '99999999999999999999'])
      expect(() => parseSeedText('--seed', bad), bad).toThrow(UsageError);
    expect(() => parseSeedText('--seed', '4294967296')).toThrow('--seed "4294967296": seeds are 32-bit');
    expect(parseSeedList('--seeds', '2,0,1')).toEqual([0, 1, 2]);
    expect(() => parseSeedList('--seeds', '0,,1')).toThrow(
      '--seeds "0,,1": "" is not a decimal integer; expected integers in [0, 4294967295]',
    );
    expect(() => parseSeedList('--seeds', '0,-2')).toThrow('--seeds "0,-2": "-2" is negative');
    expect(() => parseSeedList('--seeds', '4294967296')).toThrow('"4294967296" is above 2^32 - 1');
    expect(() => parseSeedList('--seeds', '0x10')).toThrow('"0x10" is not a decimal integer');
    expect(() => parseSeedList('--seeds', '0,1,0')).toThrow('seed 0 is listed twice');
  });

  it('presets: own keys only (constructor, __proto__, toString are not presets)', () => {
    const exp = { id: 'x.y', presets: { tiny: { description: '', expectedMinutes: 0 } } };
    expect(hasPreset(exp, 'tiny')).toBe(true);
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(hasPreset(exp, name)).toBe(false);
      expect(() => checkPreset(exp, name)).toThrow(`--preset "${name}": x.y has no such preset; expected one of tiny`);
    }
    // parsePresets returns a table without a prototype, so SETTINGS[name] of a non-preset is undefined
    const S = parsePresets('t', { tiny: { a: 1 } }, () => ({
      safeParse: (x: unknown) => ({ success: true as const, data: x as { a: number } }),
    }));
    expect((S as Record<string, unknown>).constructor).toBeUndefined();
    expect((S as Record<string, unknown>).toString).toBeUndefined();
    expect(S.tiny).toEqual({ a: 1 });
  });

  it('--data: only for experiments that read a file, and a readable regular file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-args-'));
    const file = join(dir, 'c.txt');
    writeFileSync(file, 'hello\n');
    const reads = { id: 'a.reads', data: { description: 'text' } };
    expect(checkDataFile(file, [reads])).toBe(file);
    expect(() => checkDataFile(file, [reads, { id: 'b.ignores' }])).toThrow(`--data "${file}": b.ignores reads no data file; drop --data`);
    expect(() => checkDataFile(join(dir, 'missing.txt'), [reads])).toThrow(
      /--data ".*missing.txt": no such file or folder; expected an existing file/,
    );
    expect(() => checkDataFile(dir, [reads])).toThrow(/not a regular file/);
  });

  it('--out: creates missing folders one level at a time and fails clearly (never hangs) where it cannot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-args-'));
    expect(ensureOutDir(join(dir, 'a', 'b'))).toBe(join(dir, 'a', 'b'));
    writeFileSync(join(dir, 'f'), '');
    expect(() => ensureOutDir(join(dir, 'f'))).toThrow(/f is not a directory; expected a folder/);
    expect(() => ensureOutDir(join(dir, 'f', 'x'))).toThrow(/a path component is not a folder/);
    // Node's recursive mkdir never returns for /proc/x; this must throw at once
    const t0 = Date.now();
    expect(() => ensureOutDir('/proc/x/y')).toThrow(/--out "\/proc\/x\/y": cannot create \/proc\/x \(/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
