import { describe, expect, it } from 'vitest';
import {
  DECODER_CONFIG_KEY,
  decodeDecoderFile,
  encodeDecoderFile,
  encodeSafetensors,
  parseSafetensorsHeader,
  TransformerDecoder,
  tf,
} from '../../src/index.js';

const ids = () => tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');

describe('decoder file (weights + config in one safetensors file)', () => {
  it('round trip: same config, bit-identical weights and logits, the caller metadata kept; no leak', async () => {
    const cfg = { vocabSize: 11, dim: 16, numLayers: 2, numHeads: 2, maxSeqLen: 8, mlp: 'swiglu' as const, pos: 'rope' as const, seed: 3 };
    const a = new TransformerDecoder(cfg);
    const bytes = await encodeDecoderFile(a, { chars: JSON.stringify(['a', 'b']) });
    expect(JSON.parse(parseSafetensorsHeader(bytes).metadata[DECODER_CONFIG_KEY]!)).toEqual(a.config);
    const x = ids();
    const want = Array.from(a.forward(x).dataSync()); // (a's RoPE tables are cached here, before the count)
    const before = tf.memory().numTensors;
    const { model: b, metadata } = decodeDecoderFile(bytes);
    expect(metadata).toEqual({ chars: '["a","b"]' });
    expect(b.config).toEqual(a.config);
    for (const [k, v] of Object.entries(a.stateDict()))
      expect(Array.from(b.stateDict()[k]!.dataSync()), k).toEqual(Array.from(v.dataSync()));
    const y = b.forward(x);
    expect(Array.from(y.dataSync())).toEqual(want);
    y.dispose();
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    a.dispose();
  });

  it('refuses files that are not decoder files or do not match their config, naming what is wrong, and leaks nothing', async () => {
    const a = new TransformerDecoder({ vocabSize: 7, dim: 8, numLayers: 1, numHeads: 2, maxSeqLen: 4, seed: 1 });
    const before = tf.memory().numTensors;
    const plain = encodeSafetensors(a.stateDict(), { other: 'x' });
    expect(() => decodeDecoderFile(plain, { name: 'w.safetensors' })).toThrow(
      /decodeDecoderFile \(w.safetensors\): the safetensors metadata has no mmlm.decoder.config.*metadata keys: other/,
    );
    const bad = encodeSafetensors(a.stateDict(), { [DECODER_CONFIG_KEY]: '{"vocabSize": 7, "dim": 8' });
    expect(() => decodeDecoderFile(bad)).toThrow(/mmlm.decoder.config is not JSON/);
    const neg = encodeSafetensors(a.stateDict(), { [DECODER_CONFIG_KEY]: JSON.stringify({ ...a.config, numLayers: -1 }) });
    expect(() => decodeDecoderFile(neg)).toThrow(/config.numLayers must be an integer in \[1, 2\^24\], got -1/);
    // a config that says two layers over the weights of one: strict loading names the missing tensors
    const wrong = encodeSafetensors(a.stateDict(), { [DECODER_CONFIG_KEY]: JSON.stringify({ ...a.config, numLayers: 2 }) });
    expect(() => decodeDecoderFile(wrong)).toThrow(/missing keys: blocks\.1\./);
    const wide = encodeSafetensors(a.stateDict(), { [DECODER_CONFIG_KEY]: JSON.stringify({ ...a.config, vocabSize: 9 }) });
    expect(() => decodeDecoderFile(wide)).toThrow(/shape mismatch: tok_embed.weight expected \[9,8\] got \[7,8\]/);
    expect(tf.memory().numTensors).toBe(before);
    await expect(encodeDecoderFile(a, { [DECODER_CONFIG_KEY]: '{}' })).rejects.toThrow(/must not set mmlm.decoder.config/);
    a.dispose();
  });
});
