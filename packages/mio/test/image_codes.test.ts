/** ImageCodes: shapes, code range, determinism, save/load, a leak-free training run, bad inputs. */
import { initBackend, tf } from '@mmlm/core';
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
    expect(() => trainImageCodes(m, [])).toThrow('expected at least one training image, got none');
    m.dispose();
  });
});
