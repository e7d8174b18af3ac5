/**
 * SEED's image-token arm (core's ImageTokenArmFactory) at the `tiny` tokenizer preset on a few
 * 16 px Shapes images: it trains every phase, returns pixels, codes and strings of the right counts
 * and shapes, leaks no tensor across a generate call or after dispose, resumes from its folder, and
 * rejects bad options with errors naming the expectation and the value.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@mmlm/core';
import type { ImageTextData, ImageTokenArmOptions } from '@mmlm/core/experiment';
import { seenHeldOutSets } from '@mmlm/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captionLabels, seedArm, seedArmRecipe, splitSteps } from '../src/experiments/index.js';

const root = mkdtempSync(join(tmpdir(), 'seed-arm-'));
const S = 16;
const Q = 4; // the tiny preset's queries

let cached: ImageTextData | null = null;
function data(): ImageTextData {
  if (cached) return cached;
  const sets = seenHeldOutSets({ imageSize: S, minObjects: 1, maxObjects: 1, seed: 0 }, { train: 12, seen: 2, heldOut: 2 });
  cached = {
    imageSize: S,
    train: { images: sets.train.map((s) => s.image), captions: sets.train.map((s) => s.caption) },
    evalCaptions: [...sets.seen, ...sets.heldOut].map((s) => s.caption),
  };
  return cached;
}

function options(dir: string, over: Partial<ImageTokenArmOptions> = {}): ImageTokenArmOptions {
  return {
    data: data(),
    backbone: { dim: 16, numLayers: 1, numHeads: 2 },
    tokenizerSteps: 5,
    backboneSteps: 3,
    batchSize: 4,
    captionFraction: 0.5,
    recipe: { tokenizer: { preset: 'tiny' } },
    seed: 3,
    dir: join(root, dir),
    ...over,
  };
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await initBackend({ backend: 'cpu', log: false });
});

function expectImages(images: Float32Array[], n: number): void {
  expect(images).toHaveLength(n);
  for (const im of images) {
    expect(im).toBeInstanceOf(Float32Array);
    expect(im.length).toBe(S * S * 3);
    expect(Math.min(...im)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...im)).toBeLessThanOrEqual(1);
  }
}

describe('seed imageTokenArm', () => {
  it('trains, reconstructs, generates and captions with the right counts, leaking no tensor', async () => {
    const before = tf.memory().numTensors;
    const ticks: string[] = [];
    const o = options('a', {
      progress: (name, total) => ({ tick: (step) => ticks.push(`${name}:${step}/${total}`), done: () => ticks.push(`${name}:done`) }),
    });
    const arm = await seedArm(o);
    expect(arm.name).toBe('seed-causal-codes');
    expect(arm.tokensPerImage).toBe(Q);
    expect(arm.description).toContain('K = 16');
    expect(arm.parameterCounts.tokenizer).toBeGreaterThan(0);
    expect(arm.parameterCounts.backbone).toBeGreaterThan(0);
    expect(arm.parameterCounts.head % 16).toBe(0); // vocabulary rows x dim 16
    expect(ticks).toContain('backbone:3/3');
    for (const p of ['vit', 'stage1', 'stage2', 'decoder', 'decoder-finetune']) expect(existsSync(join(o.dir, 'subruns', p))).toBe(true);

    expectImages(await arm.reconstruct(o.data.train.images.slice(0, 3)), 3);
    expect(await arm.reconstruct([])).toEqual([]);

    const mid = tf.memory().numTensors;
    const g = await arm.generate(o.data.evalCaptions.slice(0, 3), { seed: 1 });
    expect(tf.memory().numTensors).toBe(mid);
    expectImages(g.images, 3);
    expect(g.backboneStepsPerImage).toBe(Q);
    expect(g.headEvalsPerImage).toBe(2 * Q); // CFG s = 1.5: conditional + unconditional rows
    const g1 = await arm.generate(['a red circle'], { seed: 1, cfgScale: 1, temperature: 0 });
    expect(g1.headEvalsPerImage).toBe(Q);
    expectImages(g1.images, 1);
    const again = await arm.generate(o.data.evalCaptions.slice(0, 3), { seed: 1 });
    expect(again.images.map((x) => Array.from(x.subarray(0, 8)))).toEqual(g.images.map((x) => Array.from(x.subarray(0, 8))));

    const caps = await arm.caption(o.data.train.images.slice(0, 2), { seed: 0 });
    expect(caps).toHaveLength(2);
    for (const c of caps) expect(typeof c).toBe('string');
    expect(tf.memory().numTensors).toBe(mid);

    arm.dispose();
    arm.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(arm.caption([], { seed: 0 })).rejects.toThrow(/after dispose/);

    // resume: every phase is loaded from the folder, the same round trip comes back
    const b = await seedArm(o);
    const a2 = await b.reconstruct(o.data.train.images.slice(0, 1));
    expect(a2[0]!.length).toBe(S * S * 3);
    // its training seconds come back from the phases' saved results: the same total
    expect(arm.trainSeconds).toBeGreaterThan(0);
    expect(b.trainSeconds).toBe(arm.trainSeconds);
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);

  it('a SIGINT in the backbone phase stops with an error and no completion marker; a rerun resumes it', async () => {
    const before = process.listeners('SIGINT');
    // trainLoop's own SIGINT handler, invoked directly as core's loop test does (no real signal)
    const sigint = () => {
      for (const l of process.listeners('SIGINT').filter((x) => !before.includes(x))) (l as () => void)();
    };
    const o = options('int', {
      progress: (name) => ({ tick: (step) => (name === 'backbone' && step === 1 ? sigint() : undefined), done: () => {} }),
    });
    await expect(seedArm(o)).rejects.toThrow(/backbone training interrupted after step 1 of 3; run again to resume/);
    expect(existsSync(join(root, 'int', 'backbone.json'))).toBe(false);
    expect(process.listeners('SIGINT')).toEqual(before);
    const lines: string[] = [];
    const resumed = await seedArm(options('int', { log: (l) => lines.push(l) }));
    expect(lines.join('\n')).toMatch(/resumed from .*step-0+1/);
    expect(existsSync(join(root, 'int', 'backbone.json'))).toBe(true);
    // the interrupted call's backbone seconds (in its checkpoint) are in the resumed arm's total
    const json = (f: string) => JSON.parse(readFileSync(join(root, 'int', f), 'utf8'));
    const before1 = json('backbone-ckpt/step-00000001/state.json').extra.trainLoop.trainSeconds as number;
    expect(json('backbone.json').trainSeconds).toBeGreaterThan(before1);
    resumed.dispose();
  }, 60_000);

  it("with unnamedSize 'ignore' the arm trains on captions that name no size and reads its ViT accuracy over named attributes", async () => {
    const o = options('ign', { recipe: { tokenizer: { preset: 'tiny', unnamedSize: 'ignore' } }, backboneSteps: 1 });
    const caps = o.data.train.captions;
    // the data has both kinds of caption ("a red cross", "a large red triangle")
    expect(caps.filter((c) => captionLabels(c, 'ignore')[2] === -100).length).toBeGreaterThan(0);
    expect(caps.filter((c) => captionLabels(c, 'ignore')[2] !== -100).length).toBeGreaterThan(0);
    const lines: string[] = [];
    const arm = await seedArm({ ...o, log: (l) => lines.push(l) });
    const acc = Number(/ViT attribute accuracy \(train\) ([0-9.]+)/.exec(lines.join('\n'))?.[1]);
    expect(acc).toBeGreaterThanOrEqual(0);
    expect(acc).toBeLessThanOrEqual(1);
    expectImages(await arm.reconstruct(o.data.train.images.slice(0, 1)), 1);
    arm.dispose();
  }, 60_000);

  it('splits the tokenizer budget and parses attribute labels from captions', () => {
    expect(splitSteps(1000, [0.2, 0.2, 0.3, 0.15, 0.15])).toEqual([200, 200, 300, 150, 150]);
    expect(splitSteps(5, [0.2, 0.2, 0.3, 0.15, 0.15]).reduce((a, b) => a + b, 0)).toBe(5);
    expect(captionLabels('a large red triangle')).toEqual([2, 0, 1]);
    expect(captionLabels('there is a white square')).toEqual([1, 6, 2]); // size not named: the extra class
    expect(captionLabels('there is a white square', 'ignore')).toEqual([1, 6, -100]); // or no size loss
    expect(captionLabels('a large red triangle', 'ignore')).toEqual([2, 0, 1]);
    expect(captionLabels('a small red triangle', 'ignore')).toEqual([2, 0, 0]);
    expect(seedArmRecipe().tokenizer.unnamedSize).toBe('class');
    expect(() => seedArmRecipe({ tokenizer: { unnamedSize: 'drop' } })).toThrow(/unnamedSize/);
    expect(seedArmRecipe().tokenizer.preset).toBe('small');
  });

  it('rejects bad options with the expectation and the value', async () => {
    await expect(seedArm(options('bad', { batchSize: 1 }))).rejects.toThrow(/batchSize must be an integer >= 2, got 1/);
    await expect(seedArm(options('bad', { backboneBatchSize: 0 }))).rejects.toThrow(/backboneBatchSize must be a positive integer, got 0/);
    await expect(seedArm(options('bad', { captionFraction: 2 }))).rejects.toThrow(/captionFraction must be in \[0, 1\], got 2/);
    await expect(seedArm(options('bad', { backbone: { dim: 10, numLayers: 1, numHeads: 4 } }))).rejects.toThrow(/dim 10 with 4 heads/);
    const d = data();
    await expect(
      seedArm(options('bad', { data: { ...d, train: { images: d.train.images, captions: d.train.captions.slice(1) } } })),
    ).rejects.toThrow(/12 images but 11 captions/);
    await expect(seedArm(options('bad', { data: { ...d, imageSize: 8 } }))).rejects.toThrow(/8 x 8 x 3 = 192 values, got 768/);
    await expect(seedArm(options('bad', { recipe: { tokenizer: { preset: 'huge' } } }))).rejects.toThrow(/preset/);
    await expect(seedArm(options('bad', { recipe: { tokenizer: { split: [1, 2] } } }))).rejects.toThrow(/split/);
    await expect(
      seedArm(
        options('bad', { data: { ...d, train: { images: d.train.images, captions: d.train.captions.map(() => 'there is nothing') } } }),
      ),
    ).rejects.toThrow(/must name a shape and a colour/);
  });
});
