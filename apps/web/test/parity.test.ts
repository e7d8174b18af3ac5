/**
 * The page's in-memory image-token arms (src/imageTokens.ts) against the CLI's arms (each paper
 * package's imageTokenArm, which the lab runs): same data, budget, recipe and seeds, so the same
 * trained weights and the same outputs. Runs in Node at the tiny budget (a few
 * steps on wasm, the page's default backend: enough to catch a recipe, init, order-of-draws or sampling difference). A change to an arm
 * that is not made in the page's copy fails here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@mmlm/core';
import type { ImageTokenArm, ImageTokenArmFactory } from '@mmlm/core/experiment';
import { imageTokenArm as cliLatentArm } from '@mmlm/latentlm/experiments';
import { imageTokenArm as cliLiquidArm } from '@mmlm/liquid/experiments';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunHooks } from '../src/experiments.js';
import { type ArmBudget, IMAGE_TOKENS_PRESETS, latentArm, liquidArm, loadData } from '../src/imageTokens.js';

const hooks: RunHooks = { step: () => {}, log: () => {}, yieldToPage: async () => {} };
const dirs: string[] = [];

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    expect(a[i]!.length).toBe(b[i]!.length);
    for (let j = 0; j < a[i]!.length; j++) m = Math.max(m, Math.abs(a[i]![j]! - b[i]![j]!));
  }
  return m;
}

async function compare(
  page: (o: ArmBudget, h: RunHooks) => Promise<ImageTokenArm>,
  cli: ImageTokenArmFactory,
  imagePositions: boolean,
): Promise<void> {
  const p = { ...IMAGE_TOKENS_PRESETS.tiny!, tokenizerSteps: 3, backboneSteps: 3 };
  const seed = 3;
  const data = loadData(p, seed);
  const budget: ArmBudget = {
    data,
    backbone: { dim: p.dim, numLayers: p.numLayers, numHeads: p.numHeads },
    tokenizerSteps: p.tokenizerSteps,
    backboneSteps: p.backboneSteps,
    batchSize: p.batchSize,
    captionFraction: p.captionFraction,
    imagePositions,
    seed,
  };
  const before = tf.memory().numTensors;
  const dir = mkdtempSync(join(tmpdir(), 'web-parity-'));
  dirs.push(dir);
  const a = await page(budget, hooks);
  const b = await cli({
    data,
    backbone: budget.backbone,
    tokenizerSteps: budget.tokenizerSteps,
    backboneSteps: budget.backboneSteps,
    batchSize: budget.batchSize,
    captionFraction: budget.captionFraction,
    recipe: { backbone: { imagePositions } },
    seed,
    dir,
  });
  try {
    expect(a.name).toBe(b.name);
    expect(a.tokensPerImage).toBe(b.tokensPerImage);
    expect(a.parameterCounts).toEqual(b.parameterCounts);
    const images = data.seen.images.slice(0, 4);
    expect(maxDiff(await a.reconstruct(images), await b.reconstruct(images))).toBeLessThan(1e-6);
    const captions = data.seen.captions.slice(0, 4);
    const ga = await a.generate(captions, { seed: 11 });
    const gb = await b.generate(captions, { seed: 11 });
    expect(maxDiff(ga.images, gb.images)).toBeLessThan(1e-5);
    expect(ga.headEvalsPerImage).toBe(gb.headEvalsPerImage);
    expect(await a.caption(images, { seed: 12 })).toEqual(await b.caption(images, { seed: 12 }));
  } finally {
    a.dispose();
    b.dispose();
  }
  expect(tf.memory().numTensors).toBe(before); // both arms leave nothing behind
}

describe("the page's image-token arms equal the CLI's (tiny budget, wasm)", () => {
  it('Liquid (VQ codes): reconstructions, samples, captions, parameter counts', async () => {
    await compare(liquidArm, cliLiquidArm, false);
  }, 120_000);
  it('Liquid with learned image positions', async () => {
    await compare(liquidArm, cliLiquidArm, true);
  }, 120_000);
  it('LatentLM (sigma-VAE latents): reconstructions, samples, captions, parameter counts', async () => {
    await compare(latentArm, cliLatentArm, false);
  }, 120_000);
  it('LatentLM with learned image positions', async () => {
    await compare(latentArm, cliLatentArm, true);
  }, 120_000);
});
