/** The config: validation errors that name the field, the decoder a config builds, its parameter counts, and saved weights. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, saveModule, swigluHidden } from '@mmlm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blockLinearShapes,
  blockLinears,
  buildDecoder,
  loadDecoder,
  maskllmConfig,
  PRESETS,
  parameterCount,
  preset,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'maskllm-config-'));

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('maskllmConfig', () => {
  it('fills in the defaults', () => {
    const c = maskllmConfig();
    expect(c.mask).toMatchObject({ n: 2, m: 4, tauStart: 4, tauEnd: 0.05, kappaStart: 100, kappaEnd: 500, priorStrength: 3 });
    expect(c.model.mlp).toBe('gelu');
    expect(c.train.steps).toBe(2000);
  });

  it('names every bad field, what it expects and the value it got', () => {
    expect(() => maskllmConfig({ model: { dim: -3 } })).toThrow(/^MaskLLM config: model\.dim: .*\(got -3\)/);
    expect(() => maskllmConfig({ mask: { tauStart: 0 }, train: { lr: 'fast' as unknown as number } })).toThrow(
      /mask\.tauStart: .*\(got 0\); train\.lr: .*\(got "fast"\)/,
    );
    expect(() => maskllmConfig({ model: { mlp: 'relu' as 'gelu' } })).toThrow(/model\.mlp: .*\(got "relu"\)/);
  });

  it('checks fields against each other, naming both', () => {
    expect(() => maskllmConfig({ mask: { n: 4, m: 4 } })).toThrow(/mask\.n: must be < mask\.m \(4\) \(got 4\)/);
    expect(() => maskllmConfig({ model: { dim: 30, numHeads: 4 }, mask: { m: 2, n: 1 } })).toThrow(
      /model\.dim: must be divisible by model\.numHeads \(4\) \(got 30\)/,
    );
    expect(() => maskllmConfig({ model: { dim: 36, numHeads: 4 }, mask: { m: 8 } })).toThrow(
      /model\.dim: must be divisible by mask\.m \(8\) \(got 36\)/,
    );
    expect(() => maskllmConfig({ model: { mlpHidden: 130 } })).toThrow(/model\.mlpHidden: must be divisible by mask\.m \(4\) \(got 130\)/);
    // unset: the SwiGLU rule's width (a multiple of 64) is checked too
    expect(() => maskllmConfig({ model: { dim: 96, numHeads: 4, mlp: 'swiglu' }, mask: { n: 1, m: 3 } })).toThrow(
      /model\.mlpHidden: unset, core's SwiGLU rule gives 256 for dim 96, which must be divisible by mask\.m \(3\)/,
    );
  });

  it('an unknown preset is named with the known ones', () => {
    expect(() => preset('huge')).toThrow(/unknown preset "huge"; expected one of tiny, small, quick, paper/);
    expect(() => preset('constructor')).toThrow(/unknown preset/);
  });
});

describe('the decoder a config describes', () => {
  it('LLaMA-2 7B counts (paper preset, never built)', () => {
    expect(parameterCount(PRESETS.paper)).toEqual({ total: 6_738_415_616, sparsifiable: 6_476_005_376, gates: 9_714_008_064 });
  });

  it('buildDecoder matches blockLinearShapes and parameterCount (gelu and swiglu)', () => {
    const swiglu = maskllmConfig({
      model: { vocabSize: 20, dim: 32, numLayers: 2, numHeads: 2, maxSeqLen: 8, mlp: 'swiglu', norm: 'rmsnorm', pos: 'rope', bias: false },
    });
    expect(blockLinearShapes(swiglu.model)[2]).toEqual([swigluHidden(32), 32]);
    for (const cfg of [preset('tiny'), swiglu]) {
      const dec = buildDecoder(cfg, 3);
      const shapes = blockLinears(dec).map(([, l]) => [l.outFeatures, l.inFeatures]);
      const perBlock = blockLinearShapes(cfg.model);
      expect(shapes).toEqual(Array.from({ length: cfg.model.numLayers }, () => perBlock).flat());
      const total = Object.values(dec.stateDict()).reduce((a, t) => a + t.size, 0);
      expect(total).toBe(parameterCount(cfg).total);
      dec.dispose();
    }
  });

  it('loadDecoder restores weights saved with saveModule, and names a mismatch', async () => {
    const cfg = preset('tiny');
    const dec = buildDecoder(cfg, 5);
    const path = join(dir, 'dense.safetensors');
    await saveModule(path, dec);
    const back = await loadDecoder(cfg, path);
    const a = dec.stateDict();
    const b = back.stateDict();
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a)) expect(Array.from(b[k]!.dataSync()), k).toEqual(Array.from(a[k]!.dataSync()));
    const wider = preset('tiny');
    wider.model.dim = 32;
    await expect(loadDecoder(wider, path)).rejects.toThrow(/shape/);
    await expect(loadDecoder(cfg, join(dir, 'missing.safetensors'))).rejects.toThrow(/missing\.safetensors/);
    dec.dispose();
    back.dispose();
  });
});
