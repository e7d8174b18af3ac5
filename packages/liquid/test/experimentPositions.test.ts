/**
 * The paper experiments with the recipe's learned image positions (cfg-sweep preset `small-pos`):
 * the extended text LM becomes an ImagePositionLM that keeps every weight of the extension, gives
 * the extension's logits on text (the image-position rows only act inside images), and the unified
 * stage trains and reloads that model; the settings table parses the preset and its recipe.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, loadModule, tf } from '@mmlm/core';
import { runExperimentInline } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CFG_SETTINGS, cfgSweepExperiment } from '../src/experiments/cfg.js';
import { loadUnified, recipeDeviations, setupStages, textStage, unifiedStage, withImagePositions } from '../src/experiments/common.js';
import { INIT_SETTINGS, initExperiment } from '../src/experiments/init.js';
import { liquidArmRecipe } from '../src/experiments/recipe.js';
import { buildImagePositionLM, buildLM, extendVocabulary, ImagePositionLM, liquidVocab, lmConfig, VQTokenizer } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'liquid-pos-'));
const tinySizes = { images: { train: 48, evalPrompts: 6 }, textChars: 6000, textEvalWindows: 4 };

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await initBackend({ backend: 'cpu', log: false });
});

describe('liquid experiments with image positions', () => {
  it('withImagePositions keeps every weight of the extended LM and its logits on text', () => {
    const vocab = liquidVocab({ textVocabSize: 8, numCodes: 4, tokensPerImage: 3, bos: 1, eos: 2, pad: 0 });
    const lm = lmConfig({ textVocabSize: 8, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 16, dropout: 0 });
    const before = tf.memory().numTensors;
    const text = buildLM(lm, 8, 3);
    const grown = extendVocabulary(text, vocab.size - 8, { seed: 3 });
    text.dispose();
    const want = Object.fromEntries(Object.entries(grown.stateDict()).map(([k, v]) => [k, Array.from(v.dataSync())]));
    const ids = tf.tensor2d([[1, 5, 6, 7, 2]], [1, 5], 'int32'); // text only: no image span
    grown.eval();
    const textLogits = tf.tidy(() => Array.from(grown.forward(ids).dataSync()));
    const m = withImagePositions(grown, lm, vocab, 3); // disposes grown
    expect(m).toBeInstanceOf(ImagePositionLM);
    const sd = m.stateDict();
    expect(Object.keys(sd).sort()).toEqual([...Object.keys(want), 'image_pos.weight'].sort());
    for (const [k, v] of Object.entries(want)) expect(Array.from(sd[k]!.dataSync()), k).toEqual(v);
    expect(sd['image_pos.weight']!.shape).toEqual([3, 16]);
    m.eval();
    const got = tf.tidy(() => Array.from(m.forward(ids).dataSync()));
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(textLogits[i]!, 6);
    // inside an image the positions change the logits
    const img = tf.tensor2d([[1, 5, vocab.boi, vocab.codeOffset, vocab.codeOffset + 1]], [1, 5], 'int32');
    const plain = buildLM(lm, vocab.size, 3);
    plain.loadStateDict(Object.fromEntries(Object.entries(sd).filter(([k]) => k !== 'image_pos.weight')));
    plain.eval();
    const a = tf.tidy(
      () =>
        m
          .forward(img)
          .slice([0, 3, 0], [1, 1, -1])
          .sub(plain.forward(img).slice([0, 3, 0], [1, 1, -1]))
          .abs()
          .max()
          .dataSync()[0]!,
    );
    expect(a).toBeGreaterThan(1e-4);
    for (const t of [ids, img]) t.dispose();
    plain.dispose();
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('withImagePositions refuses an LM of another shape, naming the keys, and leaks nothing', () => {
    const vocab = liquidVocab({ textVocabSize: 8, numCodes: 4, tokensPerImage: 3, bos: 1, eos: 2, pad: 0 });
    const lm = lmConfig({ textVocabSize: 8, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 16, dropout: 0 });
    const before = tf.memory().numTensors;
    const deeper = buildLM({ ...lm, numLayers: 2 }, vocab.size, 0);
    expect(() => withImagePositions(deeper, lm, vocab, 0)).toThrow(/differ beyond image_pos.weight.*unexpected: blocks\.1\./);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the unified stage trains and reloads an ImagePositionLM when the recipe asks for it', async () => {
    const settings = {
      tiny: { sizes: tinySizes, recipe: liquidArmRecipe({ backbone: { imagePositions: true } }), tokenizerSteps: 3, tokenizerCh: 12 },
    };
    const outDir = join(root, 'run');
    const exp = {
      ...cfgSweepExperiment,
      async run(ctx: Parameters<typeof cfgSweepExperiment.run>[0]) {
        const { prep, cfg, tok } = await setupStages(ctx, settings);
        expect(prep.recipe.backbone.imagePositions).toBe(true);
        expect(prep.cfg.train.tokenizer.steps).toBe(3);
        expect(prep.cfg.tokenizer.ch).toBe(12); // tiny's is 8
        const ref = new VQTokenizer(prep.cfg.tokenizer);
        expect(tok.vq.numParameters()).toBe(ref.numParameters());
        ref.dispose();
        const text = await textStage(ctx, prep, 'base', cfg.lm, { ...cfg.train.text, steps: 2 }, 0);
        const uni = await unifiedStage(ctx, prep, tok, {
          tag: 'mix',
          lm: cfg.lm,
          textPath: text.path,
          mix: cfg.mix,
          phase: { ...cfg.train.unified, steps: 2 },
          seed: 0,
        });
        const m = await loadUnified(prep, cfg.lm, uni.path);
        expect(m).toBeInstanceOf(ImagePositionLM);
        // the saved file holds the image-position rows, and they moved from their init in training
        const fresh = buildImagePositionLM(cfg.lm, prep.vocab, 0);
        const moved = tf.tidy(
          () => m.stateDict()['image_pos.weight']!.sub(fresh.stateDict()['image_pos.weight']!).abs().max().dataSync()[0]!,
        );
        expect(moved).toBeGreaterThan(0);
        await loadModule(uni.path, fresh); // strict: same keys
        fresh.dispose();
        m.dispose();
        tok.vq.dispose();
        return { metrics: {}, summary: recipeDeviations(prep.recipe) };
      },
    };
    const r = await runExperimentInline(exp, { preset: 'tiny', seed: 0, outDir });
    expect(r.summary).toContain('learned embedding of the grid index');
    expect(recipeDeviations()).not.toContain('grid index');
  });

  it('cfg-sweep small-pos: the small settings with the recipe turned on', () => {
    const pos = CFG_SETTINGS['small-pos'];
    expect(pos.base).toBe('small');
    expect(pos.recipe).toEqual(liquidArmRecipe({ backbone: { imagePositions: true } }));
    expect(pos.tokenizerSteps).toBe(2000);
    expect(pos.tokenizerCh).toBe(32);
    const strip = { base: undefined, recipe: undefined, tokenizerSteps: undefined, tokenizerCh: undefined };
    expect({ ...pos, ...strip }).toEqual({ ...CFG_SETTINGS.small, ...strip });
    expect(cfgSweepExperiment.presets['small-pos']?.description).toContain('learned image-position embeddings');
  });

  it("init small-pos: cfg-sweep small-pos's recipe and tokenizer, 3,000 steps per run", () => {
    const pos = INIT_SETTINGS['small-pos'];
    const cfg = CFG_SETTINGS['small-pos'];
    expect([pos.base, pos.tokenizerSteps, pos.tokenizerCh]).toEqual([cfg.base, cfg.tokenizerSteps, cfg.tokenizerCh]);
    expect(pos.recipe).toEqual(cfg.recipe);
    expect([pos.steps, pos.evalEvery]).toEqual([3000, 500]);
    expect(initExperiment.presets['small-pos']?.description).toContain('learned image-position embeddings');
    // the settings the runner fingerprints carry the recipe and the tokenizer config
    const st = initExperiment.settings?.('small-pos') as {
      recipe: { backbone: { imagePositions: boolean } };
      config: { tokenizer: { ch: number } };
    };
    expect(st.recipe.backbone.imagePositions).toBe(true);
  });
});
