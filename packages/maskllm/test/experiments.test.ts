/**
 * Every experiment runs at the `tiny` preset, and its metrics are recomputed here by an independent
 * path (the saved dense weights and mask files, a plain log-softmax in float64) to check they are
 * computed correctly. The paper's claims are not asserted: they are reported by the small preset.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, type TransformerDecoder, tf } from '@mmlm/core';
import { runExperimentInline } from '@mmlm/core/experiment';
import { grammarCorpus } from '@mmlm/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { charCorpora, configFor } from '../src/experiments/common.js';
import { ablationsExperiment, experiments, ladderExperiment, transferExperiment } from '../src/experiments/index.js';
import { applyMaskFile, blockLinears, invalidGroups, loadDecoder, loadMasks, magnitudeMask, preset } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'maskllm-exp-'));

/** Mean next-token NLL over the first `windows` non-overlapping windows of T, via float64 log-softmax. */
function referenceLoss(dec: TransformerDecoder, val: Int32Array, T: number, windows: number): number {
  dec.eval();
  let sum = 0;
  for (let w = 0; w < windows; w++) {
    const x = Array.from(val.subarray(w * T, w * T + T));
    const logits = tf.tidy(() => dec.forward(tf.tensor2d([x], [1, T], 'int32')).dataSync());
    const V = logits.length / T;
    for (let t = 0; t < T; t++) {
      const row = Array.from(logits.subarray(t * V, t * V + V));
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
      sum += lse - row[val[w * T + t + 1]!]!;
    }
  }
  return sum / (windows * T);
}

describe('experiments at the tiny preset', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('are registered with ids, claims and tiny/small presets', () => {
    expect(experiments.map((e) => e.id)).toEqual(['maskllm.ladder', 'maskllm.transfer', 'maskllm.ablations']);
    for (const e of experiments) {
      expect(e.paper).toBe('MaskLLM');
      expect(Object.keys(e.presets)).toEqual(e.id === 'maskllm.ladder' ? ['tiny', 'quick', 'small'] : ['tiny', 'small']);
    }
  });

  it('ladder: metrics match an independent recomputation from the saved weights and masks', async () => {
    const outDir = join(root, 'ladder');
    const r = await runExperimentInline(ladderExperiment, { preset: 'tiny', seed: 0, outDir });
    const m = r.metrics;
    for (const k of [
      'dense',
      'magnitude',
      'wanda',
      'sparsegpt',
      'sparsegpt_update',
      'maskllm_none',
      'maskllm_magnitude',
      'maskllm_sparsegpt',
    ]) {
      expect(Number.isFinite(m[`${k}_ppl`]), k).toBe(true);
      expect(m[`${k}_bpc`]).toBeCloseTo(Math.log(m[`${k}_ppl`] as number) / Math.LN2, 10);
    }
    expect(m.invalid_groups).toBe(0);
    expect(r.tables?.[0]?.rows.length).toBe(8);
    expect(r.tables?.[1]?.rows.length).toBe(3);
    expect(r.summary).toMatch(/^Dense [\d.]+ PPL\. Best sparse: /);
    expect(r.summary).not.toContain('|'); // tables travel in `tables`, not in the summary
    expect(r.summary).toMatch(/One seed \(seed 0\)/);
    for (const p of ['magnitude', 'sparsegpt']) expect(Number.isFinite(m[`maskllm_${p}_prior_ppl`]), p).toBe(true);
    for (const p of ['none', 'magnitude', 'sparsegpt']) expect(m[`maskllm_${p}_changed`] as number).toBeGreaterThanOrEqual(0);
    // training metrics are tagged with their sub-run: one loss curve per training phase
    const records = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(new Set(records.map((x) => x.subrun))).toEqual(new Set(['dense', 'maskllm-none', 'maskllm-magnitude', 'maskllm-sparsegpt']));
    expect(records.every((x) => x.run === undefined && typeof x.step === 'number' && typeof x.loss === 'number')).toBe(true);
    // the lab's aggregate of one seed: the tables with no standard deviation, and nothing judged
    const one = ladderExperiment.aggregate!([r], [0]);
    expect(one.tables![0]!.rows).toHaveLength(8);
    expect(one.summary).toMatch(/^One seed \(seed 0\)/);
    expect(one.summary).toMatch(/one seed, cannot judge/);

    const { tokenizer, corpora } = charCorpora([{ name: 'A', text: grammarCorpus({ grammar: 'shapes', seed: 0, chars: 6000 }) }]);
    const cfg = configFor('tiny', tokenizer.vocabSize);
    const T = cfg.model.maxSeqLen;
    const val = corpora[0]!.val;
    const densePath = join(outDir, 'subruns', 'dense', 'dense.safetensors');
    const check = (dec: TransformerDecoder, key: string) => {
      const want = Math.exp(referenceLoss(dec, val, T, 4));
      expect(Math.abs((m[`${key}_ppl`] as number) / want - 1), key).toBeLessThan(1e-4);
      dec.dispose();
    };
    check(await loadDecoder(cfg, densePath), 'dense');
    const mag = await loadDecoder(cfg, densePath);
    for (const [, l] of blockLinears(mag)) {
      const w = l.weight.dataSync();
      const mask = magnitudeMask(w, l.outFeatures, l.inFeatures);
      l.weight.assign(
        tf.tensor2d(
          w.map((v, i) => v * mask[i]!),
          [l.outFeatures, l.inFeatures],
        ),
      );
    }
    check(mag, 'magnitude');
    const learned = await loadDecoder(cfg, densePath);
    const file = loadMasks(join(outDir, 'subruns', 'maskllm-sparsegpt', 'mask.safetensors'));
    applyMaskFile(learned, file);
    for (const [p, l] of blockLinears(learned)) expect(invalidGroups(l.weight.dataSync(), 2, 4), p).toBe(0);
    check(learned, 'maskllm_sparsegpt');

    // a second run in the same folder resumes every sub-run and reports the same numbers
    const again = await runExperimentInline(ladderExperiment, { preset: 'tiny', seed: 0, outDir });
    expect(again.metrics).toEqual(m);
  });

  it('transfer: metrics match an independent recomputation on corpus B', async () => {
    const outDir = join(root, 'transfer');
    const r = await runExperimentInline(transferExperiment, { preset: 'tiny', seed: 0, outDir });
    const m = r.metrics;
    for (const k of ['B_dense_ppl', 'B_sparsegpt_ppl', 'B_general_ppl', 'B_scratch_ppl', 'B_transfer_ppl', 'A_dense_ppl', 'A_general_ppl'])
      expect(Number.isFinite(m[k]), k).toBe(true);
    expect(m.invalid_groups).toBe(0);
    expect(typeof m.claim_transfer_beats_general).toBe('boolean');
    expect(r.tables?.[0]?.rows.length).toBe(5);
    const { tokenizer, corpora } = charCorpora([
      { name: 'A', text: grammarCorpus({ grammar: 'shapes', seed: 0, chars: 6000 }) },
      { name: 'B', text: grammarCorpus({ grammar: 'recipes', seed: 0, chars: 6000 }) },
    ]);
    const cfg = configFor('tiny', tokenizer.vocabSize);
    const densePath = join(outDir, 'subruns', 'dense', 'dense.safetensors');
    for (const [key, sub] of [
      ['B_general_ppl', 'general-A'],
      ['B_transfer_ppl', 'transfer-A-to-B'],
    ] as const) {
      const dec = await loadDecoder(cfg, densePath);
      applyMaskFile(dec, loadMasks(join(outDir, 'subruns', sub, 'mask.safetensors')));
      const want = Math.exp(referenceLoss(dec, corpora[1]!.val, cfg.model.maxSeqLen, 4));
      expect(Math.abs((m[key] as number) / want - 1), key).toBeLessThan(1e-4);
      dec.dispose();
    }
  });

  it('ablations: five variants with finite metrics and the regulariser value reported', async () => {
    const r = await runExperimentInline(ablationsExperiment, { preset: 'tiny', seed: 0, outDir: join(root, 'ablations') });
    const m = r.metrics;
    for (const k of ['default', 'no_reg', 'hard', 'const_start', 'const_end']) {
      expect(Number.isFinite(m[`${k}_ppl`]), k).toBe(true);
      expect(m[`${k}_reg`] as number, k).toBeGreaterThan(0);
    }
    expect(m.invalid_groups).toBe(0);
    expect(r.tables?.[0]?.rows.length).toBe(5);
  });

  it('an unknown preset is a clear error', async () => {
    await expect(runExperimentInline(ladderExperiment, { preset: 'paper', seed: 0, outDir: join(root, 'bad') })).rejects.toThrow(
      /unknown preset "paper"; expected one of tiny, quick, small/,
    );
    expect(preset('tiny').model.dim).toBe(16);
  });

  it('ladder --data: a corpus whose last 10% has no line break fails before any training, naming the split', async () => {
    const dir = join(root, 'no-newline');
    const file = join(root, 'no-newline.txt');
    // 90% in lines, then one long line: the line-break split leaves the validation part empty
    writeFileSync(file, `${'the red ball.\n'.repeat(300)}${'x'.repeat(1200)}`);
    await expect(runExperimentInline(ladderExperiment, { preset: 'tiny', seed: 0, outDir: dir, dataPath: file })).rejects.toThrow(
      /corpus A \(.*no-newline\.txt.*\): the validation split has 0 tokens, need at least \d+ .*a text whose last 10% has no line break/,
    );
    expect(existsSync(join(dir, 'subruns'))).toBe(false); // nothing trained
    expect(ladderExperiment.data?.description).toMatch(/UTF-8 text corpus/);
    expect(transferExperiment.data).toBeUndefined();
  });
});
