/**
 * seed.retrieval at the tiny preset: it runs, logs per-phase losses, resumes its phases, leaks no
 * tensor, and its metrics are recomputed here by independent paths (R@1 from the saved features by
 * a float64 loop over full similarity matrices; the saved features from the saved tokenizer; code
 * usage and perplexity from the saved codes). The paper's claim is not asserted (the small preset
 * reports it); the aggregate and the metric helpers are checked on fabricated inputs.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdamW, crossEntropy, initBackend, loadModule, Rng, tf } from '@mmlm/core';
import { type ExperimentResult, runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPools,
  codeStats,
  experiments,
  poolRanks,
  RETRIEVAL_SETTINGS,
  type RetrievalFeatures,
  recallAt,
  retrievalExperiment,
  seedData,
  seedTokenizerConfig,
} from '../src/experiments/index.js';
import { SeedTokenizer, VisionTransformer } from '../src/index.js';
import { VitAttributeClassifier, vitPretrainStep } from '../src/train.js';

const root = mkdtempSync(join(tmpdir(), 'seed-exp-'));
const outDir = join(root, 'run');
let result: ExperimentResult;
let tensorsBefore = 0;
let tensorsAfter = 0;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
  tensorsBefore = tf.memory().numTensors;
  result = await runExperimentInline(retrievalExperiment, { preset: 'tiny', seed: 3, outDir });
  tensorsAfter = tf.memory().numTensors;
}, 60_000);
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await initBackend({ backend: 'cpu', log: false });
});

const ARMS = ['embedding', 'code'];
const SETS = ['Seen', 'HeldOut'];

function features(): RetrievalFeatures {
  return JSON.parse(readFileSync(join(outDir, 'features.json'), 'utf8')) as RetrievalFeatures;
}

/** R@1 of one direction by a plain float64 loop: for each query, the full similarity row, then whether its partner is the strict maximum of its pool. */
function referenceR1(from: number[][], to: number[][], pools: number[][]): number {
  let hit = 0;
  for (const pool of pools) {
    const q = pool[0]!;
    const sims = to.map((t) => t.reduce((s, v, d) => s + v * from[q]![d]!, 0));
    const best = Math.max(...pool.slice(1).map((j) => sims[j]!));
    if (sims[q]! > best) hit++;
  }
  return hit / pools.length;
}

describe('seed.retrieval (tiny)', () => {
  it('is exported and reports every retrieval metric in [0, 1], named Seen / HeldOut', () => {
    expect(experiments.map((e) => e.id)).toEqual([
      'seed.retrieval',
      'seed.lora-vs-full',
      'seed.causal-vs-bidirectional',
      'seed.semantic-vs-pixel',
    ]);
    for (const a of ARMS)
      for (const s of SETS)
        for (const m of ['i2tR1', 't2iR1', 'rmean']) {
          const v = result.metrics[`${a}_${m}${s}`];
          expect(typeof v, `${a}_${m}${s}`).toBe('number');
          expect(v as number).toBeGreaterThanOrEqual(0);
          expect(v as number).toBeLessThanOrEqual(1);
        }
    expect(result.metrics.chanceR1).toBeCloseTo(1 / (result.metrics.candidates as number), 12);
    expect(result.tables?.[0]?.rows).toHaveLength(4);
    expect(result.summary).toContain('seed.retrieval (tiny, seed 3)');
  });

  it('reports the pixel read-back on seen and held-out images, with its table and sample grids', () => {
    for (const k of [
      'pixelReadBackSeen',
      'pixelReadBackHeldOut',
      'pixelReadBackGroundTruthDecoderSeen',
      'pixelReadBackGroundTruthDecoderHeldOut',
      'pixelReadBackFromTargetSeen',
      'pixelReadBackFromTargetHeldOut',
      'pixelReadBackMemoriserSeen',
      'pixelReadBackMemoriserHeldOut',
    ]) {
      const v = result.metrics[k];
      expect(typeof v, k).toBe('number');
      expect(v as number).toBeGreaterThanOrEqual(0);
      expect(v as number).toBeLessThanOrEqual(1);
    }
    const t = result.tables?.find((x) => x.title.startsWith('Back to pixels'));
    expect(t?.rows[0]?.slice(2)).toEqual([result.metrics.pixelReadBackSeen, result.metrics.pixelReadBackHeldOut]);
    expect(result.summary).toMatch(/Back to pixels .*: seen \d\.\d{3}, held-out \d\.\d{3}/);
    expect(result.figures?.map((f) => f.path)).toEqual(['pixels-seen.png', 'pixels-heldout.png']);
    for (const f of result.figures ?? []) expect(existsSync(join(outDir, f.path)), f.path).toBe(true);
  });

  it('recomputes R@1 from the saved features by a float64 loop', () => {
    const f = features();
    const n = f.items.length;
    expect(n).toBe(2 * RETRIEVAL_SETTINGS.tiny.sizes.evalPrompts);
    expect(f.candidates).toBe(result.metrics.candidates);
    for (const [s, set] of [
      ['Seen', 'seen'],
      ['HeldOut', 'heldOut'],
    ] as const) {
      const pools = f.pools.filter((p) => f.items[p[0]!]!.set === set);
      expect(pools.length).toBe(n / 2);
      for (const a of ['embedding', 'code'] as const) {
        expect(result.metrics[`${a}_i2tR1${s}`]).toBeCloseTo(referenceR1(f[a], f.text, pools), 12);
        expect(result.metrics[`${a}_t2iR1${s}`]).toBeCloseTo(referenceR1(f.text, f[a], pools), 12);
      }
    }
  });

  it('builds pools of distinct attribute combinations with the query first', () => {
    const f = features();
    f.pools.forEach((p, i) => {
      expect(p[0]).toBe(i);
      expect(p).toHaveLength(f.candidates);
      expect(new Set(p.map((j) => f.items[j]!.key)).size).toBe(f.candidates);
    });
  });

  it('recomputes code usage and perplexity from the saved codes', () => {
    const f = features();
    const counts = new Map<number, number>();
    for (const c of f.codes) counts.set(c, (counts.get(c) ?? 0) + 1);
    let h = 0;
    for (const n of counts.values()) h -= (n / f.codes.length) * Math.log(n / f.codes.length);
    expect(result.metrics.codeUsage).toBeCloseTo(counts.size / f.numCodes, 12);
    expect(result.metrics.codePerplexity).toBeCloseTo(Math.exp(h), 9);
  });

  it('saved features match the saved tokenizer (codes by encodeCodes, features by vision_proj and text_proj)', async () => {
    const f = features();
    const st = RETRIEVAL_SETTINGS.tiny;
    const data = seedData({ imageSize: 16, train: st.sizes.train, evalPrompts: st.sizes.evalPrompts, seed: 3 });
    const model = new SeedTokenizer(seedTokenizerConfig('tiny', data, 3));
    await loadModule(join(outDir, 'subruns', 'stage2', 'tokenizer.safetensors'), model);
    model.eval();
    const item = data.heldOut[1]!;
    const i = data.seen.length + 1;
    expect(f.items[i]!.caption).toBe(item.caption);
    const x = tf.tensor4d(item.image, [1, 16, 16, 3]);
    const codes = model.encodeCodes(x);
    expect(Array.from(codes)).toEqual(f.codes.slice(i * model.numQueries, (i + 1) * model.numQueries));
    const norm = (v: number[]) => {
      const n = Math.hypot(...v);
      return v.map((z) => z / n);
    };
    const emb = tf.tidy(() => model.imageFeature(model.Qformer.forward(model.imageEmbeds(x))).arraySync()[0]!);
    const dec = model.decodeCodes(codes);
    const code = tf.tidy(() => model.imageFeature(dec.causal).arraySync()[0]!);
    dec.causal.dispose();
    dec.gen.dispose();
    x.dispose();
    norm(emb).forEach((v, d) => expect(f.embedding[i]![d]).toBeCloseTo(v, 4));
    norm(code).forEach((v, d) => expect(f.code[i]![d]).toBeCloseTo(v, 4));
    model.dispose();
  });

  it('logs each phase loss tagged with its sub-run and leaks no tensor', () => {
    const recs = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const name of ['vit', 'stage1', 'stage2', 'decoder', 'decoder-finetune'])
      expect(
        recs.some((r) => r.subrun === name && typeof r.loss === 'number'),
        name,
      ).toBe(true);
    expect(tensorsAfter).toBe(tensorsBefore);
  });

  it('resumes: a second run in the same folder reuses the five phases and gives the same metrics', async () => {
    for (const name of ['vit', 'stage1', 'stage2', 'decoder', 'decoder-finetune'])
      expect(existsSync(join(outDir, 'subruns', name, 'result.json'))).toBe(true);
    const lines: string[] = [];
    const again = await runExperimentInline(retrievalExperiment, { preset: 'tiny', seed: 3, outDir, log: (l) => lines.push(l) });
    expect(lines.some((l) => /^(vit|stage1|stage2|decoder|decoder-finetune):/.test(l))).toBe(false); // no training progress line
    for (const a of ARMS) for (const s of SETS) expect(again.metrics[`${a}_i2tR1${s}`]).toBe(result.metrics[`${a}_i2tR1${s}`]);
    expect(again.metrics.codeUsage).toBe(result.metrics.codeUsage);
    expect(again.metrics.pixelReadBackSeen).toBe(result.metrics.pixelReadBackSeen);
    expect(again.metrics.pixelMseHeldOut).toBe(result.metrics.pixelMseHeldOut);
  }, 60_000);

  it('rejects an unknown preset by name', async () => {
    await expect(runExperimentInline(retrievalExperiment, { preset: 'huge', outDir: join(root, 'bad') })).rejects.toThrow(
      /unknown preset "huge"; expected one of tiny, small/,
    );
  });
});

describe('seed.retrieval presets', () => {
  it('small-long is small with 5000 stage-II steps, nothing else changed', () => {
    const { small, 'small-long': long } = RETRIEVAL_SETTINGS;
    expect(long.recipe.stage2.steps).toBe(5000);
    expect(small.recipe.stage2.steps).toBe(2500);
    expect({ ...long, recipe: { ...long.recipe, stage2: { ...long.recipe.stage2, steps: 2500 } } }).toEqual(small);
    expect(Object.keys(retrievalExperiment.presets)).toEqual(['tiny', 'small', 'small-long', 'small-long-vit']);
  });

  it('small-long-vit is small-long with 8000 training images and 6000 ViT steps, nothing else changed', () => {
    const { 'small-long': long, 'small-long-vit': vit } = RETRIEVAL_SETTINGS;
    expect(vit.sizes.train).toBe(8000);
    expect(vit.recipe.vit.steps).toBe(6000);
    expect(long.sizes.train).toBe(2000);
    expect(long.recipe.vit.steps).toBe(1500);
    expect({ ...vit, sizes: { ...vit.sizes, train: 2000 }, recipe: { ...vit.recipe, vit: { ...vit.recipe.vit, steps: 1500 } } }).toEqual(
      long,
    );
  });
});

describe('metric helpers', () => {
  it('poolRanks counts ties against the true partner; recallAt', () => {
    const img = [
      [1, 0],
      [0, 1],
      [1, 0],
    ];
    const txt = [
      [1, 0],
      [0.6, 0.8],
      [0, 1],
    ];
    // query 0: own 1, candidates 1 -> 0.6, 2 -> 0 : rank 0; query 2: own 0, 0 -> 1, 1 -> 0.6: rank 2
    expect(poolRanks(img, txt, [[0, 1, 2]])).toEqual([0]);
    expect(poolRanks(img, txt, [[2, 0, 1]])).toEqual([2]);
    expect(poolRanks(img, img, [[0, 2]])).toEqual([1]); // a tie is a miss
    expect(recallAt([0, 2, 1, 0], 1)).toBe(0.5);
    expect(recallAt([0, 2, 1, 0], 2)).toBe(0.75);
  });

  it('buildPools needs as many distinct keys as candidates', () => {
    expect(() => buildPools(['a', 'a', 'b'], [0], 3, 0)).toThrow(/3 candidates need as many distinct keys, the items have 2/);
    expect(() => buildPools(['a', 'b'], [5], 2, 0)).toThrow(/query 5 out of range/);
    const p = buildPools(['a', 'b', 'a', 'c'], [0, 1, 2, 3], 3, 1);
    for (const [i, pool] of p.entries()) {
      expect(pool[0]).toBe(i);
      expect(new Set(pool.map((j) => ['a', 'b', 'a', 'c'][j])).size).toBe(3);
    }
  });

  it('codeStats: usage, perplexity, distinct sequences; bad codes', () => {
    const s = codeStats([0, 1, 0, 1, 2, 3], 8, 2);
    expect(s.usage).toBe(0.5);
    const p = [2 / 6, 2 / 6, 1 / 6, 1 / 6];
    expect(s.perplexity).toBeCloseTo(Math.exp(-p.reduce((a, q) => a + q * Math.log(q), 0)), 12);
    expect(s.distinctSequences).toBe(2);
    expect(() => codeStats([0, 9], 8, 2)).toThrow(/code 9 at 1 out of range \[0, 8\)/);
    expect(() => codeStats([0, 1, 2], 8, 2)).toThrow(/expected N x 2 codes, got 3/);
  });
});

describe('aggregate', () => {
  const fabricate = (e: number[], c: number[]): ExperimentResult[] =>
    e.map((v, i) => ({
      metrics: {
        embedding_i2tR1Seen: v,
        code_i2tR1Seen: c[i]!,
        embedding_t2iR1Seen: v,
        code_t2iR1Seen: c[i]!,
        embedding_rmeanSeen: v,
        code_rmeanSeen: c[i]!,
      },
    }));

  it('calls a difference only beyond two standard errors', () => {
    const sig = retrievalExperiment.aggregate!(fabricate([0.9, 0.92, 0.94], [0.5, 0.52, 0.54]), [0, 1, 2]);
    expect(sig.summary).toMatch(
      /I2T R@1, seen: embeddings 0\.920 ± 0\.020 vs codes 0\.520 ± 0\.020: .*exceeds two standard errors, embeddings better/,
    );
    const close = retrievalExperiment.aggregate!(fabricate([0.9, 0.95, 0.85], [0.91, 0.86, 0.93]), [0, 1, 2]);
    expect(close.summary).toMatch(/I2T R@1, seen: .*within two standard errors: not distinguishable/);
    expect(close.tables?.[0]?.rows[0]?.[2]).toBe('0.900 ± 0.050');
    const one = retrievalExperiment.aggregate!(fabricate([0.9], [0.5]), [0]);
    expect(one.summary).toMatch(/one seed, cannot judge/);
    expect(one.summary).toContain('Floor (code R@1 >= 0.9 both ways on seen combinations): 0 of 1 seeds meet it');
  });
});

describe('VitAttributeClassifier (ViT pre-training)', () => {
  it("an ignored label (-100) adds no loss: the loss equals the other attributes' mean cross-entropy in float64", () => {
    const model = new SeedTokenizer(seedTokenizerConfig('tiny', seedData({ imageSize: 16, train: 8, evalPrompts: 1, seed: 0 }), 0));
    const clf = new VitAttributeClassifier(model.visual_encoder, [5, 8, 3], new Rng(1));
    const x = new Rng(2).rand([4, 16, 16, 3]);
    const labels = [
      [0, 1, 2, 3],
      [0, 7, 2, 3],
      [1, -100, -100, 0], // size not named on two images
    ];
    const y = labels.map((l) => tf.tensor1d(l, 'int32'));
    const logits = clf.forward(x).map((l) => l.arraySync() as number[][]);
    // mean over the judged rows of each attribute, summed over attributes (float64 on the host)
    let want = 0;
    labels.forEach((lab, a) => {
      const rows = lab.map((t, i) => ({ t, z: logits[a]![i]! })).filter((r) => r.t !== -100);
      const ce = rows.map(({ t, z }) => {
        const m = Math.max(...z);
        return m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0)) - z[t]!;
      });
      want += ce.reduce((s, v) => s + v, 0) / rows.length;
    });
    const got = clf.loss(x, y);
    expect(got.dataSync()[0]).toBeCloseTo(want, 5);
    got.dispose();
    // every size ignored: that head adds nothing (no NaN from an empty mean)
    const ignored = tf.tensor1d([-100, -100, -100, -100], 'int32');
    const zeros = tf.tensor1d([0, 0, 0, 0], 'int32');
    const all = clf.loss(x, [y[0]!, y[1]!, zeros]);
    const sizeOnly = tf.tidy(() => crossEntropy(clf.forward(x)[2]!, zeros));
    const l = clf.loss(x, [y[0]!, y[1]!, ignored]);
    expect(l.dataSync()[0]).toBeCloseTo((all.dataSync()[0] as number) - (sizeOnly.dataSync()[0] as number), 5);
    for (const t of [l, all, sizeOnly, ignored, zeros, ...y, x]) t.dispose();
    clf.dispose();
    model.dispose();
  });

  it('trains the shared ViT without leaking tensors; setStage freezes it again', () => {
    const model = new SeedTokenizer(seedTokenizerConfig('tiny', seedData({ imageSize: 16, train: 8, evalPrompts: 1, seed: 0 }), 0));
    const clf = new VitAttributeClassifier(model.visual_encoder, [5, 8, 2], new Rng(1));
    model.visual_encoder.unfreeze();
    const opt = new AdamW(clf, { lr: 1e-2 });
    const x = new Rng(2).rand([4, 16, 16, 3]);
    const y = [tf.tensor1d([0, 1, 2, 3], 'int32'), tf.tensor1d([0, 7, 2, 3], 'int32'), tf.tensor1d([0, 1, 1, 0], 'int32')];
    const w0 = model.visual_encoder.pos_embed.arraySync();
    vitPretrainStep(clf, opt, x, y); // optimizer slots allocated
    const before = tf.memory().numTensors;
    const l1 = vitPretrainStep(clf, opt, x, y);
    expect(tf.memory().numTensors).toBe(before);
    expect(Number.isFinite(l1)).toBe(true);
    expect(model.visual_encoder.pos_embed.arraySync()).not.toEqual(w0);
    model.setStage(1);
    expect(model.visual_encoder.trainableParameters()).toHaveLength(0);
    expect(() => clf.loss(x, y.slice(0, 2))).toThrow(/expected 3 label tensors/);
    const vit = new VisionTransformer(model.config.vit);
    expect(() => new VitAttributeClassifier(vit, [1])).toThrow(/integers >= 2/);
    vit.dispose();
    opt.dispose();
    clf.dispose();
    x.dispose();
    for (const t of y) t.dispose();
    model.dispose();
  });
});
