/** ImageCodes: shapes, code range, determinism, save/load, a leak-free training run, causality of the codes, bad inputs. */
import { initBackend, QFormerLayer, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_CODES_PRESETS, ImageCodes, imageCodesConfig, trainImageCodes } from '../src/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

const S = 16;
/** A black image with one coloured square of side 4 + k at (k, k). */
function square(k: number, rgb: [number, number, number]): Float32Array {
  const im = new Float32Array(S * S * 3);
  for (let y = k; y < k + 4 + (k % 3); y++) for (let x = k; x < k + 4 + (k % 3); x++) im.set(rgb, (y * S + x) * 3);
  return im;
}
const images = Array.from({ length: 12 }, (_, i) => square(i % 8, [i % 2, (i >> 1) % 2, 1 - (i % 2)]));

describe('ImageCodes', () => {
  it('encodes images to N codes in [0, K) and decodes them to S*S*3 pixels in (0, 1)', () => {
    const m = new ImageCodes(IMAGE_CODES_PRESETS.tiny);
    const { tokens: N, codes: K } = m.config;
    const codes = m.encode(images);
    expect(codes.length).toBe(images.length);
    for (const c of codes) {
      expect(c.length).toBe(N);
      for (const k of c) expect(Number.isInteger(k) && k >= 0 && k < K).toBe(true);
    }
    const px = m.decode(codes);
    expect(px.length).toBe(images.length);
    for (const p of px) {
      expect(p).toBeInstanceOf(Float32Array);
      expect(p.length).toBe(S * S * 3);
      expect(p.every((v) => v > 0 && v < 1)).toBe(true);
    }
    const z = m.encodeLatents(m.imagesTensor(images.slice(0, 3)));
    expect(z.shape).toEqual([3, N, m.config.dim]);
    z.dispose();
    m.dispose();
  });

  it('is deterministic: same seed, same weights, same codes; encode and decode change no state', () => {
    const a = new ImageCodes({ ...IMAGE_CODES_PRESETS.tiny, seed: 5 });
    const b = new ImageCodes({ ...IMAGE_CODES_PRESETS.tiny, seed: 5 });
    const c = new ImageCodes({ ...IMAGE_CODES_PRESETS.tiny, seed: 6 });
    const ca = a.encode(images);
    expect(b.encode(images)).toEqual(ca);
    expect(a.encode(images)).toEqual(ca);
    expect(Array.from(a.decode(ca)[0]!)).toEqual(Array.from(b.decode(ca)[0]!));
    expect(Array.from(c.decode(ca)[0]!)).not.toEqual(Array.from(a.decode(ca)[0]!));
    // save / load gives the same codes
    const sd = a.stateDict();
    c.loadStateDict(sd);
    expect(c.encode(images)).toEqual(ca);
    for (const m of [a, b, c]) m.dispose();
  });

  it('trains without leaking tensors: k-means init, loss falls, codebook state in the state dict', () => {
    const m = new ImageCodes({ ...IMAGE_CODES_PRESETS.tiny, seed: 1 });
    expect(m.quantizer.needsInit).toBe(true);
    const before = tf.memory().numTensors;
    const recs = trainImageCodes(m, images, { steps: 30, batchSize: 8, lr: 1e-2, warmup: 2, initImages: 12, logEvery: 10 });
    expect(tf.memory().numTensors).toBe(before);
    expect(m.quantizer.needsInit).toBe(false);
    expect(recs.map((r) => r.step)).toEqual([10, 20, 30]);
    for (const r of recs) expect(Number.isFinite(r.loss) && r.usage > 0 && r.usage <= 1).toBe(true);
    expect(recs[2]!.rec).toBeLessThan(recs[0]!.rec);
    expect(Object.keys(m.stateDict())).toContain('quantizer.initted');
    m.dispose();
  });

  it('causal encoder (default): code vector i depends on queries <= i only, and on every patch', () => {
    const m = new ImageCodes({ ...IMAGE_CODES_PRESETS.tiny, qformerLayers: 2, seed: 3 });
    expect(m.config.encoder).toBe('causal');
    expect(m.enc1).toBeNull();
    const qf = m.qformer!;
    const { tokens: N, dim: D } = m.config;
    const x = m.imagesTensor(images.slice(0, 2));
    const ctx = m.patchTokens(x); // [2, P, W]
    expect(ctx.shape).toEqual([2, m.numPatches, m.config.qformerWidth]);
    expect(m.numPatches).toBe(16);
    const qe = tf.randomNormal([2, N, m.config.qformerWidth], 0, 1, 'float32', 7);
    const before = tf.memory().numTensors;
    for (let i = 0; i < N; i++) {
      // z_i = code_proj(Q-Former(queries, patches)_i): gradient w.r.t. the query inputs and the patch tokens
      const zi = (q: tf.Tensor, c: tf.Tensor) => m.code_proj!.forward(qf.forwardQueries(q, c)).slice([0, i, 0], [2, 1, D]).sum();
      const gq = tf.tidy(() =>
        Array.from(
          tf
            .grad((q: tf.Tensor) => zi(q, ctx))(qe)
            .abs()
            .sum([0, 2])
            .dataSync(),
        ),
      );
      for (let j = 0; j < N; j++) expect(gq[j]! > 0, `d z_${i} / d query_${j}`).toBe(j <= i);
      const gc = tf.tidy(() =>
        Array.from(
          tf
            .grad((c: tf.Tensor) => zi(qe, c))(ctx)
            .abs()
            .sum([0, 2])
            .dataSync(),
        ),
      );
      expect(
        gc.every((g) => g > 0),
        `z_${i} reads every patch`,
      ).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(before);
    // the patch tokens are raster-order 4x4 patches: changing one pixel changes exactly its patch's token
    const im = new Float32Array(images[0]!);
    im[(5 * S + 9) * 3] = 0.5 - im[(5 * S + 9) * 3]!; // pixel (y 5, x 9) -> patch (1, 2) = index 6
    const y = m.imagesTensor([images[0]!, im]);
    const d = tf.tidy(() =>
      Array.from(
        m
          .patchTokens(y)
          .slice([0, 0, 0], [1, -1, -1])
          .sub(m.patchTokens(y).slice([1, 0, 0], [1, -1, -1]))
          .abs()
          .sum([0, 2])
          .dataSync(),
      ),
    );
    expect(d.map((v) => v > 0)).toEqual(d.map((_, k) => k === 6));
    expect(qf.layer.at(0)).toBeInstanceOf(QFormerLayer);
    tf.dispose([x, ctx, qe, y]);
    m.dispose();
  });

  it("encoder 'mlp' (the first stand-in) still encodes, decodes and trains", () => {
    const m = new ImageCodes({ ...IMAGE_CODES_PRESETS.tiny, encoder: 'mlp', seed: 2 });
    expect(m.qformer).toBeNull();
    const recs = trainImageCodes(m, images, { steps: 20, batchSize: 8, lr: 1e-2, warmup: 2, initImages: 12, logEvery: 10 });
    expect(recs[1]!.rec).toBeLessThan(recs[0]!.rec);
    expect(m.decode(m.encode(images.slice(0, 2))).length).toBe(2);
    expect(() => m.patchTokens(m.imagesTensor(images.slice(0, 1)))).toThrow("encoder is 'mlp', not 'causal'");
    m.dispose();
  });

  it('names the expected and the actual value of bad inputs', () => {
    const m = new ImageCodes(IMAGE_CODES_PRESETS.tiny);
    expect(() => m.encode([new Float32Array(8 * 8 * 3)])).toThrow('image 0 has 192 values, expected 768 (16x16x3 HWC in [0, 1])');
    expect(() => m.encode([images[0]!, new Float32Array(10)])).toThrow('image 1 has 10 values, expected 768');
    expect(() => m.encode([])).toThrow('expected at least one image, got none');
    expect(() => m.decode([[1, 2, 3]])).toThrow('code sequence 0 has 3 codes, expected 4');
    expect(() => m.decode([[1, 2, 3, 16]])).toThrow('code 16 at index 3 is outside [0, 16)');
    const x = tf.zeros([2, 10]);
    expect(() => m.encodeLatents(x)).toThrow('expected float32 images [B, 768]');
    x.dispose();
    expect(() => imageCodesConfig({ tokens: 0 })).toThrow(/tokens/);
    expect(() => imageCodesConfig({ imageSize: 18 })).toThrow('imageSize 18 must be a multiple of patchSize 4');
    expect(() => imageCodesConfig({ qformerWidth: 30, qformerHeads: 4 })).toThrow('qformerWidth 30 must be divisible by qformerHeads 4');
    expect(() => imageCodesConfig({ encoder: 'vit' as never })).toThrow(/encoder/);
    expect(() => trainImageCodes(m, [])).toThrow('expected at least one training image, got none');
    m.dispose();
  });
});
