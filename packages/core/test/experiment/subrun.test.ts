import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Experiment, runExperimentInline } from '../../src/experiment/index.js';

describe('inline sub-run context', () => {
  it('tags sub.metric records with the sub-run name, nests folders and names, and reuses finished sub-runs', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'mmlm-subrun-'));
    let bodies = 0;
    const exp: Experiment = {
      id: 'toy.subruns',
      paper: 'Toy',
      claim: 'sub-runs',
      presets: { tiny: { description: 'instant', expectedMinutes: 0 } },
      async run(ctx) {
        const plain = await ctx.subrun('plain', async (dir) => dir); // the one-argument form still works
        const v = await ctx.subrun('outer', async (dir, sub) => {
          bodies++;
          sub.metric({ step: 1, loss: 2 });
          return sub.subrun('in ner', async (innerDir, inner) => {
            inner.metric({ subrun: 'replaced', step: 1, loss: 1 });
            return { innerDir, name: inner.name, outer: dir };
          });
        });
        return { metrics: { plain, ...v } };
      },
    };
    const r = await runExperimentInline(exp, { outDir });
    expect(r.metrics).toEqual({
      plain: join(outDir, 'subruns', 'plain'),
      innerDir: join(outDir, 'subruns', 'outer', 'subruns', 'in_ner'),
      name: 'outer/in ner',
      outer: join(outDir, 'subruns', 'outer'),
    });
    expect(existsSync(join(outDir, 'subruns', 'outer', 'subruns', 'in_ner', 'result.json'))).toBe(true);
    const lines = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { subrun: 'outer', step: 1, loss: 2 },
      { subrun: 'outer/in ner', step: 1, loss: 1 },
    ]);
    await runExperimentInline(exp, { outDir });
    expect(bodies).toBe(1);
  });
});
