import { readFileSync } from 'node:fs';
import * as mio from '@mmlm/mio';
import { experiments } from '@mmlm/mio/experiments';
import { expect, it } from 'vitest';

it('the entry point lists its exports by name and never re-exports a whole module', () => {
  const src = readFileSync(new URL('../src/index.ts', import.meta.url), 'utf8');
  expect(src).not.toMatch(/export \*/);
  for (const name of [
    'MultimodalTokenizer',
    'mioVocab',
    'PAPER_VOCAB',
    'packSamples',
    'packedLoss',
    'MixtureSampler',
    'schedulePreset',
    'scheduleTable',
    'renderChat',
    'preset',
    'ImageCodes',
    'trainImageCodes',
    'mioTaskData',
    'drawBatches',
    'greedyGenerate',
  ])
    expect(mio).toHaveProperty(name);
});

it('the main entry imports nothing from node: and no other paper package', () => {
  for (const f of ['index', 'vocab', 'pack', 'schedule', 'chat', 'config', 'image_codes', 'providers', 'generate']) {
    const src = readFileSync(new URL(`../src/${f}.ts`, import.meta.url), 'utf8');
    expect(src).not.toMatch(/from 'node:/);
    expect(src).not.toMatch(/from '@mmlm\/(seed|liquid|latentlm|maskllm|data)/);
  }
});

it('registers its experiments', () => {
  expect(experiments.map((e) => e.id)).toEqual(['mio.staged', 'mio.speech-layout', 'mio.any-to-any']);
});
