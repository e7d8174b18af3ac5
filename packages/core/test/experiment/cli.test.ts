import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Experiment, formatCell, markdownText, runExperimentCli, tableToMarkdown, warningText } from '../../src/experiment/index.js';
import { parseConfig } from '../../src/index.js';

const toy: Experiment = {
  id: 'toy.sum',
  paper: 'Toy',
  claim: 'adds',
  presets: { tiny: { description: 'one', expectedMinutes: 0 }, small: { description: 'two', expectedMinutes: 0 } },
  async run(ctx) {
    const v = await ctx.subrun('part', async () => ({ x: ctx.seed + (ctx.preset === 'small' ? 2 : 1) }));
    return {
      metrics: { x: v.x },
      tables: [{ title: 'T', columns: ['a', 'b|c'], rows: [[1, 'p|q']], note: 'n' }],
      summary: `x = ${v.x}`,
    };
  },
};

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, opts: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

describe('runExperimentCli', () => {
  it('runs an experiment, writes result.json and prints markdown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-cli-'));
    const c = capture();
    const r = await runExperimentCli([toy], { name: 'toy', argv: ['toy.sum', 'small', '--seed', '3', '--out', dir], ...c.opts });
    expect(r.code).toBe(0);
    expect(r.result?.metrics.x).toBe(5);
    // --out is the runs folder, as in the lab
    const runDir = join(dir, 'toy.sum', 'small-seed3');
    expect(r.outDir).toBe(runDir);
    const saved = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8'));
    expect(saved).toMatchObject({ id: 'toy.sum', preset: 'small', seed: 3, metrics: { x: 5 } });
    expect(existsSync(join(runDir, 'result.json.tmp'))).toBe(false);
    const text = c.out.join('\n');
    expect(text).toContain('| a | b\\|c |');
    expect(text).toContain('| 1 | p\\|q |');
    expect(text).toContain('x = 5');
  });

  it('rejects bad arguments with exit code 2 and a message naming them', async () => {
    const cases: [string[], RegExp][] = [
      [[], /no experiment id given/],
      [['nope'], /unknown experiment "nope"/],
      [['toy.sum', 'huge'], /preset "huge": toy.sum has no such preset; expected one of tiny, small/],
      [['toy.sum', 'tiny', '--seed', '1.5'], /--seed "1.5": expected a decimal integer in \[0, 4294967295\]/],
      [['toy.sum', '--bogus'], /Unknown option '--bogus'/],
      // the lab's flags, checked the same way
      [['toy.sum', '--preset', 'constructor'], /--preset "constructor": toy.sum has no such preset/],
      [['toy.sum', '--preset', '__proto__'], /--preset "__proto__": toy.sum has no such preset/],
      [['toy.sum', 'tiny', '--preset', 'small'], /the preset is given twice/],
      [['toy.sum', '--seed', '1', '--seed', '2'], /--seed is given more than once/],
      [['toy.sum', '--seed', '0x10'], /--seed "0x10": expected a decimal integer/],
      [['toy.sum', '--seed', '1e30'], /--seed "1e30": expected a decimal integer/],
      [['toy.sum', '--seed', ''], /--seed "": expected a decimal integer/],
      [['toy.sum', '--seed', '4294967296'], /--seed "4294967296": seeds are 32-bit/],
      [['toy.sum', '--seeds', '0,0'], /seed 0 is listed twice/],
      [['toy.sum', '--backend', 'gpu'], /--backend "gpu": expected tensorflow, wasm or cpu/],
      [['toy.sum', '--data', '/etc/hostname'], /--data "\/etc\/hostname": toy.sum reads no data file; drop --data/],
    ];
    for (const [argv, re] of cases) {
      const c = capture();
      const r = await runExperimentCli([toy], { name: 'toy', argv, ...c.opts });
      expect(r.code, argv.join(' ')).toBe(2);
      expect(c.err.join('\n')).toMatch(re);
    }
  });

  it('takes --preset, --seeds (with the aggregate), --force and --help', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-cli-'));
    const withAgg: Experiment = { ...toy, aggregate: (rs, seeds) => ({ summary: `n=${rs.length} seeds=${seeds.join('+')}` }) };
    const c = capture();
    const r = await runExperimentCli([withAgg], {
      name: 'toy',
      argv: ['toy.sum', '--preset', 'tiny', '--seeds', '2,1', '--out', dir],
      ...c.opts,
    });
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'toy.sum', 'tiny-seed1', 'result.json'))).toBe(true);
    expect(r.result?.metrics.x).toBe(3); // seed 2, tiny: the last seed's
    expect(c.out.join('\n')).toContain('n=2 seeds=1+2');
    // a finished run is shown again, not rerun; --force reruns it from an empty folder
    const again = capture();
    await runExperimentCli([withAgg], { name: 'toy', argv: ['toy.sum', 'tiny', '--seed', '1', '--out', dir], ...again.opts });
    expect(again.err.join('\n')).toContain('already finished');
    const forced = capture();
    await runExperimentCli([withAgg], { name: 'toy', argv: ['toy.sum', 'tiny', '--seed', '1', '--out', dir, '--force'], ...forced.opts });
    expect(forced.err.join('\n')).not.toContain('already finished');
    const h = capture();
    expect((await runExperimentCli([withAgg], { name: 'toy', argv: ['--help'], ...h.opts })).code).toBe(0);
    expect(h.out.join('\n')).toMatch(/usage: toy repro <experiment-id> \[preset\] \[--preset P\]/);
  });

  it('markdownText escapes < outside code spans only; formatCell rounds to 4 significant digits', () => {
    expect(markdownText('ends at <EOD>, see `<EOD>` and a < b')).toBe('ends at &lt;EOD>, see `<EOD>` and a &lt; b');
    // the warning span survives, any other tag (another colour, a script) is escaped
    expect(markdownText(warningText('agreement 0.62 < 0.95'))).toBe('<span style="color:#c00">⚠ agreement 0.62 &lt; 0.95</span>');
    expect(markdownText('<span style="color:#0c0">x</span><script>')).toBe('&lt;span style="color:#0c0">x</span>&lt;script>');
    expect(markdownText(markdownText('<BOD>'))).toBe('&lt;BOD>');
    expect([0.30472034650544316, 12, 1234.5, 0.0001234, null, 'x'].map(formatCell)).toEqual([
      '0.3047',
      '12',
      '1.235e+3',
      '1.234e-4',
      '—',
      'x',
    ]);
    expect(tableToMarkdown({ title: 'T <x>', columns: ['forced <EOD>'], rows: [[0.5]], note: 'plus <EOD>' })).toBe(
      '**T &lt;x>**\n\n| forced &lt;EOD> |\n| --- |\n| 0.5000 |\n\nplus &lt;EOD>',
    );
  });

  it('tableToMarkdown omits an absent note', () => {
    expect(tableToMarkdown({ title: 'A', columns: ['x'], rows: [[1]] })).toBe('**A**\n\n| x |\n| --- |\n| 1 |');
  });
});

describe('parseConfig', () => {
  // A hand-written schema with zod's safeParse result shape (core does not depend on zod).
  const schema = {
    safeParse(input: unknown) {
      const o = input as { a?: { b?: unknown }; c?: unknown };
      const issues = [];
      if (typeof o.a?.b !== 'number') issues.push({ path: ['a', 'b'], message: 'expected number' });
      if (o.c !== undefined && o.c !== 'x') issues.push({ path: ['c'], message: 'expected "x"' });
      return issues.length ? ({ success: false, error: { issues } } as const) : ({ success: true, data: { b: o.a!.b as number } } as const);
    },
  };
  it('returns the parsed value', () => {
    expect(parseConfig('Toy', schema, { a: { b: 2 } })).toEqual({ b: 2 });
  });
  it('names every bad field, the expectation and the value', () => {
    expect(() => parseConfig('Toy', schema, { a: { b: 'two' }, c: 5 })).toThrow(
      'Toy config: a.b: expected number (got "two"); c: expected "x" (got 5)',
    );
    expect(() => parseConfig('Toy', schema, {})).toThrow('Toy config: a.b: expected number (got undefined)');
  });
});
