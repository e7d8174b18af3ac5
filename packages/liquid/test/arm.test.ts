/**
 * Liquid's image-token arm (core's ImageTokenArmFactory) at a microscopic size: it trains, returns
 * pixels and strings of the right shapes, is deterministic by seed, resumes from its folder without
 * retraining, leaks no tensors after dispose, and rejects bad options with errors naming them.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng, tf } from '@mmlm/core';
import type { ImageTextData, ImageTokenArmOptions } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageTokenArm } from '../src/experiments/index.js';

const root = mkdtempSync(join(tmpdir(), 'liquid-arm-'));
const S = 8;

function data(): ImageTextData {
  const rng = new Rng(3);
  const colours = ['red', 'green', 'blue'];
  const images: Float32Array[] = [];
  const captions: string[] = [];
  for (let i = 0; i < 12; i++) {
    const c = i % 3;
    const im = new Float32Array(S * S * 3);
    for (let p = 0; p < S * S; p++) im[p * 3 + c] = 0.5 + 0.5 * rng.uniform();
    images.push(im);
    captions.push(`a ${colours[c]} square`);
  }
  return { imageSize: S, train: { images, captions }, evalCaptions: ['a red square', 'a blue square on the left'] };
}

function options(dir: string, over: Partial<ImageTokenArmOptions> = {}): ImageTokenArmOptions {
  return {
    data: data(),
    backbone: { dim: 16, numLayers: 1, numHeads: 2 },
    tokenizerSteps: 3,
    backboneSteps: 4,
    batchSize: 4,
    captionFraction: 0.5,
    seed: 7,
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

describe('liquid imageTokenArm', () => {
  it('trains, produces images and captions of the right shapes, and leaks nothing after dispose', async () => {
    const before = tf.memory().numTensors;
    const ticks: string[] = [];
    const o = options('a', {
      progress: (name, total) => ({ tick: (step) => ticks.push(`${name}:${step}/${total}`), done: () => ticks.push(`${name}:done`) }),
    });
    const arm = await imageTokenArm(o);
    expect(arm.name).toBe('liquid-vq');
    expect(arm.tokensPerImage).toBe((S / 4) ** 2);
    expect(arm.parameterCounts.tokenizer).toBeGreaterThan(0);
    expect(arm.parameterCounts.backbone).toBeGreaterThan(0);
    expect(arm.parameterCounts.head % 16).toBe(0); // vocabulary rows x dim 16
    expect(ticks).toContain('tokenizer:3/3');
    expect(ticks).toContain('backbone:4/4');
    expect(ticks).toContain('backbone:done');

    const rec = await arm.reconstruct(o.data.train.images.slice(0, 3));
    expect(rec).toHaveLength(3);
    for (const r of rec) {
      expect(r).toBeInstanceOf(Float32Array);
      expect(r.length).toBe(S * S * 3);
      expect(Math.min(...r)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...r)).toBeLessThanOrEqual(1);
    }
    const g = await arm.generate(o.data.evalCaptions, { seed: 1 });
    expect(g.images).toHaveLength(2);
    expect(g.images[0]!.length).toBe(S * S * 3);
    expect(g.backboneStepsPerImage).toBe(arm.tokensPerImage);
    // the default CFG (1.5) runs a conditional and an unconditional row per code; s = 1 runs one
    expect(g.headEvalsPerImage).toBe(2 * arm.tokensPerImage);
    expect((await arm.generate(o.data.evalCaptions, { seed: 1, cfgScale: 1 })).headEvalsPerImage).toBe(arm.tokensPerImage);
    const again = await arm.generate(o.data.evalCaptions, { seed: 1 });
    expect(again.images).toEqual(g.images);
    const caps = await arm.caption(o.data.train.images.slice(0, 5), { seed: 0 });
    expect(caps).toHaveLength(5);
    for (const c of caps) expect(typeof c).toBe('string');
    expect(await arm.generate([], { seed: 0 })).toMatchObject({ images: [] });

    arm.dispose();
    arm.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(arm.generate(['a red square'], { seed: 0 })).rejects.toThrow(/after dispose/);
  });

  it('is deterministic by seed, and a finished folder is loaded instead of retrained', async () => {
    const lines: string[] = [];
    const ticks: string[] = [];
    const a = await imageTokenArm(
      options('a', { log: (l) => lines.push(l), progress: (n) => ({ tick: () => ticks.push(n), done: () => {} }) }),
    );
    expect(ticks).toEqual([]);
    expect(lines.join('\n')).toMatch(/loaded the trained backbone/);
    const b = await imageTokenArm(options('det-2'));
    const c = await imageTokenArm(options('det-3', { seed: 8 }));
    const imgs = o2(await a.generate(['a red square', 'a green square'], { seed: 2 }));
    expect(o2(await b.generate(['a red square', 'a green square'], { seed: 2 }))).toEqual(imgs);
    expect(o2(await c.generate(['a red square', 'a green square'], { seed: 2 }))).not.toEqual(imgs);
    const imagesIn = options('x').data.train.images.slice(0, 4);
    expect(await b.caption(imagesIn, { seed: 0 })).toEqual(await a.caption(imagesIn, { seed: 0 }));
    expect(await b.reconstruct(imagesIn)).toEqual(await a.reconstruct(imagesIn));
    for (const m of [a, b, c]) m.dispose();

    // an interrupted backbone phase (no completion marker) resumes from its last checkpoint
    rmSync(join(root, 'det-2', 'backbone.json'));
    const resumedLines: string[] = [];
    const r = await imageTokenArm(options('det-2', { log: (l) => resumedLines.push(l) }));
    expect(resumedLines.join('\n')).toMatch(/resumed from .*step-0+4/);
    expect(o2(await r.generate(['a red square', 'a green square'], { seed: 2 }))).toEqual(imgs);
    r.dispose();
    await expect(imageTokenArm(options('a', { backboneSteps: 5 }))).rejects.toThrow(/written for other settings/);
  });

  it('backboneBatchSize sets the backbone batch alone: the tokenizer is the same, the backbone another, and its key names it', async () => {
    const a = await imageTokenArm(options('a'));
    // the tokenizer's batch named explicitly: the same phases, loaded from the finished folder
    const same = await imageTokenArm(options('a', { backboneBatchSize: 4 }));
    const prompts = ['a red square', 'a green square'];
    const imgs = o2(await a.generate(prompts, { seed: 2 }));
    expect(o2(await same.generate(prompts, { seed: 2 }))).toEqual(imgs);
    same.dispose();
    // another backbone batch in the finished folder: refused, not loaded
    await expect(imageTokenArm(options('a', { backboneBatchSize: 2 }))).rejects.toThrow(/backbone\.json was written for other settings/);
    const ticks: string[] = [];
    const b2 = await imageTokenArm(
      options('bb-2', {
        backboneBatchSize: 2,
        progress: (n, total) => ({ tick: (s) => ticks.push(`${n}:${s}/${total}`), done: () => {} }),
      }),
    );
    expect(ticks).toContain('backbone:4/4');
    const imagesIn = options('x').data.train.images.slice(0, 4);
    expect(await b2.reconstruct(imagesIn)).toEqual(await a.reconstruct(imagesIn));
    // the trained backbones differ (generations of a microscopic model can coincide: too few codes)
    expect(readFileSync(join(root, 'bb-2', 'backbone.safetensors')).equals(readFileSync(join(root, 'a', 'backbone.safetensors')))).toBe(
      false,
    );
    expect(readFileSync(join(root, 'bb-2', 'tokenizer.safetensors')).equals(readFileSync(join(root, 'a', 'tokenizer.safetensors')))).toBe(
      true,
    );
    for (const m of [a, b2]) m.dispose();
  });

  it('a SIGINT mid-phase stops with an error and no completion marker; a rerun resumes to the uninterrupted result', async () => {
    const before = process.listeners('SIGINT');
    // trainLoop's own SIGINT handler, invoked directly as core's loop test does (no real signal)
    const sigint = () => {
      for (const l of process.listeners('SIGINT').filter((x) => !before.includes(x))) (l as () => void)();
    };
    const o = options('int', {
      progress: (name) => ({ tick: (step) => (name === 'backbone' && step === 2 ? sigint() : undefined), done: () => {} }),
    });
    await expect(imageTokenArm(o)).rejects.toThrow(/backbone training interrupted after step 2 of 4; run again to resume/);
    expect(existsSync(join(root, 'int', 'backbone.json'))).toBe(false);
    expect(existsSync(join(root, 'int', 'backbone.safetensors'))).toBe(false);
    expect(process.listeners('SIGINT')).toEqual(before);
    const lines: string[] = [];
    const resumed = await imageTokenArm(options('int', { log: (l) => lines.push(l) }));
    expect(lines.join('\n')).toMatch(/resumed from .*step-0+2/);
    // the training seconds count the interrupted call's too (kept in the checkpoint), and a reload reports the same
    const json = (f: string) => JSON.parse(readFileSync(join(root, 'int', f), 'utf8'));
    const before2 = json('backbone-ckpt/step-00000002/state.json').extra.trainLoop.trainSeconds as number;
    const { trainSeconds: bSec } = json('backbone.json') as { trainSeconds: number };
    expect(before2).toBeGreaterThan(0);
    expect(bSec).toBeGreaterThan(before2);
    expect(resumed.trainSeconds).toBeCloseTo(json('tokenizer.json').trainSeconds + bSec, 9);
    const reloaded = await imageTokenArm(options('int'));
    expect(reloaded.trainSeconds).toBe(resumed.trainSeconds);
    reloaded.dispose();
    const straight = await imageTokenArm(options('int-straight'));
    const prompts = ['a red square', 'a green square'];
    expect(o2(await resumed.generate(prompts, { seed: 2 }))).toEqual(o2(await straight.generate(prompts, { seed: 2 })));
    resumed.dispose();
    straight.dispose();
  });

  it('rejects bad options with errors naming them', async () => {
    const bad = async (over: Partial<ImageTokenArmOptions>, re: RegExp) => expect(imageTokenArm(options('bad', over))).rejects.toThrow(re);
    const d = data();
    await bad({ data: { ...d, imageSize: 6 } }, /imageSize must be a positive multiple of 4.*got 6/);
    await bad({ data: { ...d, train: { images: d.train.images, captions: d.train.captions.slice(1) } } }, /12 images but 11 captions/);
    await bad(
      { data: { ...d, train: { images: [new Float32Array(5), ...d.train.images.slice(1)], captions: d.train.captions } } },
      /images\[0\] must be a Float32Array of 8 x 8 x 3 = 192 values, got 5/,
    );
    await bad({ backbone: { dim: 15, numLayers: 1, numHeads: 2 } }, /backbone.*dim \(15\) must be divisible by numHeads \(2\)/);
    await bad({ backboneSteps: -1 }, /backboneSteps must be an integer >= 0, got -1/);
    await bad({ captionFraction: 1.5 }, /captionFraction must be in \[0, 1\], got 1.5/);
    await bad({ batchSize: 0 }, /batchSize must be a positive integer, got 0/);
    await bad({ backboneBatchSize: 0 }, /backboneBatchSize must be a positive integer, got 0/);
    await bad({ backboneBatchSize: 2.5 }, /backboneBatchSize must be a positive integer, got 2.5/);
    const arm = await imageTokenArm(options('a'));
    await expect(arm.reconstruct([new Float32Array(3)])).rejects.toThrow(/reconstruct: images\[0\] must be a Float32Array of 8 x 8 x 3/);
    await expect(arm.caption([new Float32Array(3)], { seed: 0 })).rejects.toThrow(/caption: images\[0\]/);
    arm.dispose();
  });
});

function o2(g: { images: Float32Array[] }): number[][] {
  return g.images.map((x) => Array.from(x));
}
