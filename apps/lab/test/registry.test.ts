import { experiments as latentlm } from '@mmlm/latentlm/experiments';
import { experiments as liquid } from '@mmlm/liquid/experiments';
import { experiments as maskllm } from '@mmlm/maskllm/experiments';
import { experiments as mio } from '@mmlm/mio/experiments';
import { experiments as seed } from '@mmlm/seed/experiments';
import { describe, expect, it } from 'vitest';
import { listText } from '../src/cli.js';
import { canonicalJson, settingsFingerprint } from '../src/index.js';
import { allExperiments, PAPER_PACKAGES, QUICKSTART, resolveTargets } from '../src/registry.js';

describe('registry', () => {
  it('lists every experiment of every paper package, each with a tiny preset and its expected time', () => {
    const text = listText();
    const lists = { '@mmlm/maskllm': maskllm, '@mmlm/latentlm': latentlm, '@mmlm/liquid': liquid, '@mmlm/seed': seed, '@mmlm/mio': mio };
    expect(Object.keys(PAPER_PACKAGES).sort()).toEqual(Object.keys(lists).sort());
    for (const [pkg, exps] of Object.entries(lists)) {
      expect(exps.length, `${pkg} exports no experiments`).toBeGreaterThan(0);
      for (const e of exps) {
        expect(text).toContain(`${e.id}  [${e.paper}]`);
        expect(e.presets.tiny, `${e.id} has no tiny preset`).toBeDefined();
        for (const [name, p] of Object.entries(e.presets)) {
          expect(p.expectedMinutes).toBeGreaterThan(0);
          expect(text).toContain(`--preset ${name.padEnd(6)} ~${p.expectedMinutes} min`);
        }
      }
    }
    const ids = allExperiments().map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every experiment declares its resolved preset settings: plain data, one fingerprint per preset', () => {
    for (const e of allExperiments()) {
      expect(typeof e.settings, `${e.id} declares no settings (run folders could mix recipes)`).toBe('function');
      const prints = new Map<string, string>();
      for (const name of Object.keys(e.presets)) {
        const st = e.settings!(name);
        expect(st, `${e.id} [${name}]`).toBeTruthy();
        expect(JSON.parse(canonicalJson(st)), `${e.id} [${name}] is not plain JSON data`).toEqual(JSON.parse(JSON.stringify(st)));
        const f = settingsFingerprint(e, name)!;
        expect(prints.get(f), `${e.id}: presets ${prints.get(f)} and ${name} have the same settings`).toBeUndefined();
        prints.set(f, name);
      }
    }
  });

  it('resolves a paper name to all its experiments and the quickstart to its curated presets', () => {
    expect(resolveTargets('maskllm', 'tiny').map((t) => t.experiment.id)).toEqual(maskllm.map((e) => e.id));
    expect(resolveTargets('quickstart').map((t) => `${t.experiment.id}:${t.preset}`)).toEqual(QUICKSTART.map((q) => `${q.id}:${q.preset}`));
    expect(() => resolveTargets('nope')).toThrow(/unknown experiment or paper "nope"; experiments: .*maskllm\.ladder/);
    expect(() => resolveTargets('maskllm.ladder', 'huge')).toThrow(
      /--preset "huge": maskllm.ladder has no such preset; expected one of tiny, quick, small/,
    );
  });
});
