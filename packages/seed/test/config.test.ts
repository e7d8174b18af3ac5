import { initBackend } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  crossAttentionLayers,
  numVisionTokens,
  PRESETS,
  parameterCount,
  preset,
  queryMaskIsCausal,
  SeedTokenizer,
  seedConfig,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

describe('config', () => {
  it('parameterCount matches the built tokenizer part by part (tiny and a variant)', () => {
    for (const cfg of [
      PRESETS.tiny,
      seedConfig({
        ...PRESETS.tiny,
        qformer: { ...PRESETS.tiny.qformer, numLayers: 3 },
        decoder: { ...PRESETS.tiny.decoder, imageDown: [6] },
      }),
    ]) {
      const m = new SeedTokenizer(cfg);
      const n = parameterCount(cfg);
      const sum = (prefixes: string[]) =>
        m
          .namedParameters()
          .filter(([p]) => prefixes.includes(p.split('.')[0]!))
          .reduce((a, [, v]) => a + v.size, 0);
      expect(n.vit).toBe(m.visual_encoder.numParameters());
      expect(n.lnVision).toBe(m.ln_vision.numParameters());
      expect(n.qformer).toBe(m.Qformer.numParameters());
      expect(n.contrastive).toBe(sum(['vision_proj', 'text_proj', 'temp']));
      expect(n.encodeTaskLayer).toBe(m.encode_task_layer.numParameters());
      expect(n.codebook).toBe(m.quantize.numParameters());
      expect(n.decodeTaskLayer).toBe(m.decode_task_layer.numParameters());
      expect(n.reconstruction).toBe(sum(['pos_embed', 'blocks']));
      expect(n.generation).toBe(sum(['pos_embed_image', 'blocks_image', 'image_down', 'distill_image_proj']));
      expect(n.total).toBe(m.numParameters());
      m.setStage(2);
      expect(n.stage2).toBe(m.numParameters({ trainableOnly: true }));
      m.dispose();
    }
  });

  it('paper preset: the counts the brief gives (sec. 1.2)', () => {
    const c = PRESETS.paper;
    const n = parameterCount(c);
    // 224 px, patch 14 -> 16 x 16 patches + CLS
    expect(numVisionTokens(c.vit)).toBe(257);
    // K = 8192 codes of dimension 32
    expect(n.codebook).toBe(8192 * 32);
    // z = Lin(768 -> 32)(tanh(Lin(768 -> 768)(q)))
    expect(n.encodeTaskLayer).toBe(768 * 768 + 768 + 768 * 32 + 32);
    // Lin(32 -> 32), tanh, Lin(32 -> 768)
    expect(n.decodeTaskLayer).toBe(32 * 32 + 32 + 32 * 768 + 768);
    // pos_embed 32 x 768 + 4 ViT blocks (768, mlp 4x)
    const block = 4 * 768 + (768 * 2304 + 2304) + (768 * 768 + 768) + (768 * 3072 + 3072) + (3072 * 768 + 768);
    expect(n.reconstruction).toBe(32 * 768 + 4 * block);
    // pos_embed_image + 4 blocks + image_down (768 -> 256 -> 128 -> 32, no biases) + Lin(1024 -> 1024)
    expect(n.generation).toBe(32 * 768 + 4 * block + (768 * 256 + 256 * 128 + 128 * 32) + (1024 * 1024 + 1024));
    // 12 layers, cross-attention in 6 of them (0, 2, ..., 10); 32 learnable queries
    expect(crossAttentionLayers(c.qformer)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(c.qformer.numQueries * c.qformer.hiddenSize).toBe(24_576);
    // Not in the brief (unverified here): BLIP-2 reports 188M for its Q-Former and about 1B for ViT-g.
    expect(n.qformer / 1e6).toBeGreaterThan(180);
    expect(n.qformer / 1e6).toBeLessThan(190);
    expect(n.vit / 1e9).toBeGreaterThan(0.9);
    expect(n.vit / 1e9).toBeLessThan(1.1);
  });

  it('the reference mask rule: causal only at exactly 32 queries', () => {
    expect(queryMaskIsCausal({ numQueries: 32, causalMask: 'reference' })).toBe(true);
    expect(queryMaskIsCausal({ numQueries: 31, causalMask: 'reference' })).toBe(false);
    expect(queryMaskIsCausal({ numQueries: 8, causalMask: 'always' })).toBe(true);
    expect(queryMaskIsCausal({ numQueries: 32, causalMask: 'bidirectional' })).toBe(false);
  });

  it('presets are copies; bad configs name the field, the expectation and the value', () => {
    const a = preset('tiny');
    a.qformer.numQueries = 99;
    expect(PRESETS.tiny.qformer.numQueries).toBe(4);
    expect(() => preset('huge')).toThrow(/unknown preset "huge"; expected one of tiny, small, paper/);
    expect(() => seedConfig({ vit: { imageSize: 18, patchSize: 4 } })).toThrow(
      /vit.imageSize \(18\) must be divisible by vit.patchSize \(4\)/,
    );
    expect(() => seedConfig({ qformer: { numQueries: 0 } })).toThrow(/qformer.numQueries: .*\(got 0\)/);
    expect(() => seedConfig({ qformer: { causalMask: 'sometimes' as 'always' } })).toThrow(/qformer.causalMask/);
  });
});
