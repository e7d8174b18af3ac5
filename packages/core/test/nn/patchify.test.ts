/** patchify / unpatchify against the index formula on host arrays; round trip; bad inputs. */
import { describe, expect, it } from 'vitest';
import { patchify, tf, unpatchify } from '../../src/index.js';

describe('patchify', () => {
  it('patch (gy, gx), offset (py, px, c) holds pixel (gy ph + py, gx pw + px, c); unpatchify inverts it', () => {
    const [B, H, W, C, ph, pw] = [2, 6, 8, 3, 2, 4];
    const img = tf.tensor4d(
      Float32Array.from({ length: B * H * W * C }, (_, i) => i * 0.5 - 7),
      [B, H, W, C],
    );
    const x = img.arraySync() as number[][][][];
    const p = patchify(img, ph, pw);
    expect(p.shape).toEqual([B, (H / ph) * (W / pw), ph * pw * C]);
    const got = p.arraySync() as number[][][];
    const gw = W / pw;
    for (let b = 0; b < B; b++)
      for (let gy = 0; gy < H / ph; gy++)
        for (let gx = 0; gx < gw; gx++)
          for (let py = 0; py < ph; py++)
            for (let px = 0; px < pw; px++)
              for (let c = 0; c < C; c++)
                expect(got[b]![gy * gw + gx]![(py * pw + px) * C + c]).toBe(x[b]![gy * ph + py]![gx * pw + px]![c]);
    expect(Array.from(unpatchify(p, H, W, C, ph, pw).dataSync())).toEqual(Array.from(img.dataSync()));
    // square patches by default
    expect(patchify(tf.zeros([1, 4, 4, 1]), 2).shape).toEqual([1, 4, 4]);
  });

  it('names what was wrong', () => {
    expect(() => patchify(tf.zeros([4, 4, 3]), 2)).toThrow('images must be [B, H, W, C] (NHWC), got shape [4,4,3]');
    expect(() => patchify(tf.zeros([1, 6, 8, 3]), 4)).toThrow('image 6x8 is not a whole number of 4x4 patches');
    expect(() => patchify(tf.zeros([1, 4, 4, 3]), 0)).toThrow('patch height must be a positive integer, got 0');
    expect(() => unpatchify(tf.zeros([1, 4, 11]), 4, 4, 3, 2)).toThrow(
      'patches must be [B, 4, 12] for 4x4x3 in 2x2 patches, got shape [1,4,11]',
    );
  });
});
