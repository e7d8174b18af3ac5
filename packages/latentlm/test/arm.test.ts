/**
 * LatentLM's image-token arm (the lab's discrete-vs-continuous comparison) at a microscopic size:
 * it trains, resumes from its checkpoints, returns images and captions of the right shapes, is
 * deterministic by seed and leaks no tensors after dispose.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@mmlm/core';
import type { ImageTextData, ImageTokenArmOptions } from '@mmlm/core/experiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageTokenArm } from '../src/experiments/index.js';

const root = mkdtempSync(join(tmpdir(), 'latentlm-arm-'));
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const S = 8;
const COLOURS: Record<string, [number, number, number]> = { red: [1, 0, 0], green: [0, 1, 0], blue: [0, 0, 1] };
const PLACES = ['top left', 'top right', 'bottom left', 'bottom right'];

/** A 4x4 square of a colour in one quadrant of an 8x8 black image, and its caption. */
function item(k: number): { image: Float32Array; caption: string } {
  const colour = Object.keys(COLOURS)[k % 3]!;
  const place = Math.floor(k / 3) % 4;
  const image = new Float32Array(S * S * 3);
  const [y0, x0] = [place < 2 ? 0 : 4, place % 2 === 0 ? 0 : 4];
  for (let y = y0; y < y0 + 4; y++) for (let x = x0; x < x0 + 4; x++) image.set(COLOURS[colour]!, (y * S + x) * 3);
  return { image, caption: `a ${colour} square ${PLACES[place]}` };
}

const items = Array.from({ length: 12 }, (_, k) => item(k));
const data: ImageTextData = {
  imageSize: S,
  train: { images: items.map((i) => i.image), captions: items.map((i) => i.caption) },
  evalCaptions: ['a blue square bottom right', 'a red square top left'],
};

function options(dir: string, over: Partial<ImageTokenArmOptions> = {}): ImageTokenArmOptions {
  return {
    data,
    backbone: { dim: 16, numLayers: 1, numHeads: 2 },
    tokenizerSteps: 3,
    backboneSteps: 3,
    batchSize: 4,
    captionFraction: 0.5,
    seed: 7,
    dir: join(root, dir),
    ...over,
  };
}

describe('imageTokenArm (microscopic)', () => {
  it('trains, generates, captions and reconstructs with the right shapes; deterministic; resumes; no leaks', async () => {
    const before = tf.memory().numTensors;
    const ticks: Record<string, number> = {};
    const progress = (name: string, total: number) => ({
      tick: (step: number) => {
        ticks[name] = step;
        expect(step).toBeLessThanOrEqual(total);
      },
      done: () => {},
    });
    const arm = await imageTokenArm({ ...options('a'), progress });
    expect(ticks).toEqual({ 'sigma-VAE': 3, LatentLM: 3 });
    expect(arm.name).toBe('latentlm-sigma-vae');
    expect(arm.tokensPerImage).toBe(16);
    for (const v of Object.values(arm.parameterCounts)) expect(v).toBeGreaterThan(0);
    expect(readdirSync(join(root, 'a')).sort()).toEqual(['backbone', 'tokenizer']);

    const recon = await arm.reconstruct(data.train.images.slice(0, 3));
    expect(recon.map((r) => r.length)).toEqual([192, 192, 192]);
    expect(recon.every((r) => r.every((v) => v >= 0 && v <= 1))).toBe(true);

    const gen = await arm.generate(['a red square top left', 'a blue square bottom right', 'a green square top right'], { seed: 1 });
    expect(gen.images.map((r) => r.length)).toEqual([192, 192, 192]);
    expect(gen.images.every((r) => r.every((v) => Number.isFinite(v) && v >= 0 && v <= 1))).toBe(true);
    // 16 latents: the prompt's forward and 15 fed-back latents; 10 head steps x (conditional + unconditional)
    expect(gen.backboneStepsPerImage).toBe(16);
    expect(gen.headEvalsPerImage).toBe(16 * 10 * 2);
    expect((await arm.generate(['a red square top left'], { seed: 1, cfgScale: 1 })).headEvalsPerImage).toBe(160);

    const caps = await arm.caption(data.train.images.slice(0, 2), { seed: 0 });
    expect(caps).toHaveLength(2);
    const vocab = new Set(['a', 'red', 'green', 'blue', 'square', 'top', 'bottom', 'left', 'right']);
    for (const c of caps) for (const w of c.split(' ').filter(Boolean)) expect(vocab.has(w)).toBe(true);

    // same seed in a fresh folder: identical outputs; same folder: loaded from the checkpoints, no training
    const twin = await imageTokenArm(options('b'));
    // the same call (same prompts, same batch: a batch of another size may round differently in the last bit)
    const prompts = ['a red square top left', 'a blue square bottom right', 'a green square top right'];
    expect((await twin.generate(prompts, { seed: 1 })).images).toEqual(gen.images);
    expect(await twin.caption(data.train.images.slice(0, 2), { seed: 0 })).toEqual(caps);
    twin.dispose();
    const resumedTicks: string[] = [];
    const again = await imageTokenArm({
      ...options('a'),
      progress: (name) => ({ tick: () => resumedTicks.push(name), done: () => {} }),
    });
    expect(resumedTicks).toEqual([]);
    // its training seconds are read back from the checkpoints: the same total, nothing added
    expect(arm.trainSeconds).toBeGreaterThan(0);
    expect(again.trainSeconds).toBe(arm.trainSeconds);
    expect((await again.reconstruct(data.train.images.slice(0, 3)))[2]).toEqual(recon[2]);
    again.dispose();
    // another vocabulary in the same folder would load permuted word ids: refused
    await expect(imageTokenArm(options('a', { data: { ...data, evalCaptions: ['a purple square'] } }))).rejects.toThrow(
      /holds checkpoints of a different run/,
    );
    // the tokenizer's batch named as backboneBatchSize: the same checkpoints, loaded; another batch is
    // another run: refused in this folder, and in its own folder the same sigma-VAE under another backbone
    const sameBatch = await imageTokenArm(options('a', { backboneBatchSize: 4 }));
    expect((await sameBatch.generate(prompts, { seed: 1 })).images).toEqual(gen.images);
    sameBatch.dispose();
    await expect(imageTokenArm(options('a', { backboneBatchSize: 2 }))).rejects.toThrow(/holds checkpoints of a different run/);
    const b2 = await imageTokenArm(options('bb-2', { backboneBatchSize: 2 }));
    expect((await b2.reconstruct(data.train.images.slice(0, 3)))[2]).toEqual(recon[2]);
    expect((await b2.generate(prompts, { seed: 1 })).images).not.toEqual(gen.images);
    b2.dispose();
    const other = await imageTokenArm(options('c', { seed: 8 }));
    expect((await other.reconstruct(data.train.images.slice(0, 1)))[0]).not.toEqual(recon[0]);
    other.dispose();

    arm.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('recipe.tokenizer.dim widens the ViT tokenizer alone (null: the backbone width)', async () => {
    const narrow = await imageTokenArm(options('w16'));
    const wide = await imageTokenArm(options('w32', { recipe: { tokenizer: { dim: 32 } } }));
    const n: Record<string, number> = narrow.parameterCounts;
    const w: Record<string, number> = wide.parameterCounts;
    narrow.dispose();
    wide.dispose();
    expect(Object.keys(w).sort()).toEqual(Object.keys(n).sort());
    expect(w.tokenizer).toBeGreaterThan(n.tokenizer!);
    for (const k of Object.keys(n)) if (k !== 'tokenizer') expect(w[k], k).toBe(n[k]);
  });

  it('bad inputs name the option, the expectation and the value', async () => {
    await expect(imageTokenArm(options('x', { data: { ...data, imageSize: 10 } }))).rejects.toThrow(
      /data.imageSize must be divisible by 4 \(the latent grid\), got 10/,
    );
    await expect(imageTokenArm(options('x', { data: { ...data, train: { images: data.train.images, captions: ['a'] } } }))).rejects.toThrow(
      /one caption per image \(12\), got 1/,
    );
    await expect(
      imageTokenArm(options('x', { data: { ...data, train: { images: [new Float32Array(5)], captions: ['a'] } } })),
    ).rejects.toThrow(/data.train.images\[0\] must be a Float32Array of 192 values \(8x8x3\), got 5/);
    await expect(imageTokenArm(options('x', { backboneSteps: 0 }))).rejects.toThrow(/backboneSteps must be an integer >= 1, got 0/);
    await expect(imageTokenArm(options('x', { captionFraction: 1.5 }))).rejects.toThrow(/captionFraction must be in \[0, 1\], got 1.5/);
    await expect(imageTokenArm(options('x', { backboneBatchSize: 0 }))).rejects.toThrow(/backboneBatchSize must be an integer >= 1, got 0/);
    await expect(imageTokenArm(options('x', { backbone: { dim: 18, numLayers: 1, numHeads: 4 } }))).rejects.toThrow(
      /dim \(18\) must be divisible by numHeads \(4\)/,
    );
    const before = tf.memory().numTensors;
    const arm = await imageTokenArm(options('y', { tokenizerSteps: 1, backboneSteps: 1 }));
    await expect(arm.reconstruct([new Float32Array(3)])).rejects.toThrow(/reconstruct: image 0 must be a Float32Array of 192 values/);
    await expect(arm.generate(['a red square'], { seed: 0.5 })).rejects.toThrow(/generate: seed must be an integer, got 0.5/);
    arm.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
