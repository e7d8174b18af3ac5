/**
 * Tokenizers: the image sigma-VAE / learned-variance baseline (ViT, no convolutions: cpu and wasm)
 * and the speech sigma-VAE (causal convolutions). The speech VAE's contract runs on cpu only:
 * tfjs-backend-wasm has no Conv2DBackpropFilter until core supplies one, so conv weight gradients
 * cannot be taken there yet.
 */
import { initBackend, Rng, tf } from '@mmlm/core';
import { runModelContract } from '@mmlm/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { hopLength, ImageVAE, imageVaeConfig, SpeechVAE, Stft, speechVaeConfig } from '../src/index.js';
import { CausalConv1d } from '../src/vae.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

const tinyImage = { imageSize: 8, patchSize: 4, channels: 3, latentDim: 4, dim: 16, depth: 1, numHeads: 2 } as const;
const tinySpeech = { nFft: 32, stftHop: 8, strides: [2], channels: 4, latentDim: 4, kernelSize: 3, glIters: 4 };

describe('image VAE', () => {
  it('patchify / unpatchify are inverse and patches are raster-ordered squares', () => {
    const vae = new ImageVAE(tinyImage);
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => i),
      [2, 8, 8, 3],
    );
    const p = vae.patchify(x);
    expect(p.shape).toEqual([2, 4, 48]);
    // patch 1 (row 0, col 1) of image 0 starts at pixel (0, 4)
    expect(p.arraySync() as number[][][]).toSatisfy(
      (a: number[][][]) => a[0]![1]![0] === (0 * 8 + 4) * 3 && a[0]![1]![12] === (1 * 8 + 4) * 3,
    );
    expect(Array.from(vae.unpatchify(p).dataSync())).toEqual(Array.from(x.dataSync()));
    vae.dispose();
  });

  for (const posterior of ['sigma', 'gaussian'] as const) {
    it(`contract: ${posterior} posterior (cpu and wasm)`, async () => {
      const x = () => [new Rng(1).rand([2, 8, 8, 3])];
      await runModelContract<ImageVAE>({
        name: `ImageVAE ${posterior}`,
        make: (seed) => new ImageVAE({ ...tinyImage, posterior, seed }),
        inputs: x,
        forward: (m, [img]) => {
          const p = m.encode(img!);
          const out = m.decode(p.mu);
          tf.dispose([p.mu, p.logvar ?? []].flat());
          return out;
        },
        expectedShape: [2, 8, 8, 3],
        loss: (m, [img]) => m.loss(img!, new Rng(3)).loss,
      });
      await initBackend({ backend: 'cpu', log: false });
    });
  }

  it('latent shapes, sigma-VAE has no variance head, KL terms', () => {
    const s = new ImageVAE(tinyImage);
    const g = new ImageVAE({ ...tinyImage, posterior: 'gaussian' });
    expect(s.encoder.head.outFeatures).toBe(4);
    expect(g.encoder.head.outFeatures).toBe(8);
    const x = new Rng(0).rand([3, 8, 8, 3]);
    const ps = s.encode(x);
    expect(ps.mu.shape).toEqual([3, 4, 4]);
    expect(ps.logvar).toBeNull();
    const l = s.loss(x, new Rng(0));
    expect(l.kl.dataSync()[0]).toBeCloseTo(ps.mu.square().mean().dataSync()[0]!, 6);
    expect(l.loss.dataSync()[0]).toBeCloseTo(l.rec.dataSync()[0]! + 1e-2 * l.kl.dataSync()[0]!, 6);
    // same rng, same loss
    expect(s.loss(x, new Rng(0)).loss.dataSync()[0]).toBe(l.loss.dataSync()[0]);
    s.dispose();
    g.dispose();
  });

  it('bad inputs and configs', () => {
    const v = new ImageVAE(tinyImage);
    expect(() => v.encode(tf.zeros([1, 8, 8, 1]))).toThrow(/images must be \[B, 8, 8, 3\], got shape \[1,8,8,1\]/);
    expect(() => v.decode(tf.zeros([1, 4, 5]))).toThrow(/latents must be \[B, 4, 4\] \(batch, grid\^2, latent dim\), got shape \[1,4,5\]/);
    expect(() => imageVaeConfig({ imageSize: 30, patchSize: 8 })).toThrow(/imageSize \(30\) must be divisible by patchSize \(8\)/);
    expect(() => imageVaeConfig({ posterior: 'laplace' as 'sigma' })).toThrow(/posterior/);
    v.dispose();
  });
});

describe('speech VAE', () => {
  it('causal along time: latent frames depend only on the audio up to their end (plus the STFT window)', () => {
    const conv = new CausalConv1d(1, 3, 5, new Rng(0));
    const a = new Rng(1).randn([1, 40, 1]);
    const b = tf.concat([a.slice([0, 0, 0], [1, 20, 1]), new Rng(2).randn([1, 20, 1])], 1);
    const ya = conv.forward(a);
    const yb = conv.forward(b);
    expect(
      ya
        .slice([0, 0, 0], [1, 20, 3])
        .sub(yb.slice([0, 0, 0], [1, 20, 3]))
        .abs()
        .max()
        .dataSync()[0],
    ).toBe(0);
    expect(
      ya
        .slice([0, 20, 0], [1, 20, 3])
        .sub(yb.slice([0, 20, 0], [1, 20, 3]))
        .abs()
        .max()
        .dataSync()[0],
    ).toBeGreaterThan(0);
    const vae = new SpeechVAE(tinySpeech); // hop 16, STFT frames of 32 samples every 8
    expect(vae.hop).toBe(16);
    const wa = new Rng(1).randn([1, 128]);
    const wb = tf.concat([wa.slice([0, 0], [1, 64]), new Rng(2).randn([1, 64])], 1);
    const za = vae.encode(wa).mu;
    const zb = vae.encode(wb).mu;
    expect(za.shape).toEqual([1, 8, 4]);
    // STFT frames 0..4 end by sample 4*8+32 = 64: latent frames 0..1 (STFT frames 0..3) see only samples < 64
    expect(
      za
        .slice([0, 0, 0], [1, 2, 4])
        .sub(zb.slice([0, 0, 0], [1, 2, 4]))
        .abs()
        .max()
        .dataSync()[0],
    ).toBe(0);
    expect(vae.decode(za).shape).toEqual([1, 16, 17]);
    expect(vae.decodeWaveform(za).map((w) => w.length)).toEqual([128]);
    vae.dispose();
  });

  it('STFT: a pure tone peaks at its bin; inverse STFT of the spectrum is the identity; Griffin-Lim recovers |X|', () => {
    const stft = new Stft(64, 16);
    const f = 8; // bin 8
    const x = Float32Array.from({ length: 256 }, (_, i) => Math.sin((2 * Math.PI * f * i) / 64));
    const S = stft.magnitude(tf.tensor2d(x, [1, 256])).arraySync() as number[][][];
    expect(S[0]!.length).toBe(16);
    for (const row of S[0]!.slice(0, 12)) expect(row.indexOf(Math.max(...row))).toBe(f);
    // DFT of the windowed frame by hand at bin f: |sum w_i sin(2 pi f i / n) e^{-2 pi i f i/n}| = n/4 for the Hann window
    expect(S[0]![4]![f]).toBeCloseTo(64 / 4, 3);
    const spec = stft.spectrum(tf.tensor2d(x, [1, 256])).reshape([16, 66]);
    const y = stft.inverse(spec, 256);
    for (let i = 16; i < 200; i++) expect(Math.abs(y[i]! - x[i]!)).toBeLessThan(1e-4); // interior: covered by several windows
    const mag = tf.tensor2d(S[0]!);
    const g = stft.griffinLim(mag, 256, 30, new Rng(0));
    const Sg = stft.magnitude(tf.tensor2d(g, [1, 256]));
    expect(
      Sg.reshape([16, 33])
        .slice([0, 0], [12, 33])
        .sub(mag.slice([0, 0], [12, 33]))
        .abs()
        .mean()
        .dataSync()[0],
    ).toBeLessThan(0.5);
    stft.dispose();
  });

  it('contract (cpu only: wasm lacks conv weight gradients until core registers Conv2DBackpropFilter)', async () => {
    for (const posterior of ['sigma', 'gaussian'] as const)
      await runModelContract<SpeechVAE>({
        name: `SpeechVAE ${posterior}`,
        make: (seed) => new SpeechVAE({ ...tinySpeech, posterior, seed }),
        inputs: () => [new Rng(1).randn([2, 64], 0, 0.3)],
        forward: (m, [w]) => {
          const p = m.encode(w!);
          const out = m.decode(p.mu);
          tf.dispose([p.mu, p.logvar ?? []].flat());
          return out;
        },
        expectedShape: [2, 8, 17],
        loss: (m, [w]) => m.loss(w!, new Rng(3)).loss,
        backends: ['cpu'],
      });
  });

  it('bad inputs and configs', () => {
    const v = new SpeechVAE(tinySpeech);
    expect(() => v.encode(tf.zeros([1, 30]))).toThrow(/waveform length must be a positive multiple of the hop 16, got 30/);
    expect(() => v.encode(tf.zeros([1, 8, 1]))).toThrow(/waveforms must be \[B, L\], got shape \[1,8,1\]/);
    expect(() => v.decode(tf.zeros([1, 3, 5]))).toThrow(/latents must be \[B, frames, 4\] \(latent dim 4\), got shape \[1,3,5\]/);
    expect(() => speechVaeConfig({ nFft: 100 })).toThrow(/nFft must be a power of two >= 8, got 100/);
    expect(() => speechVaeConfig({ nFft: 64, stftHop: 128 })).toThrow(/stftHop \(128\) must be <= nFft \(64\)/);
    expect(() => new Stft(64, 0)).toThrow(/hop must be an integer in \[1, 64\], got 0/);
    expect(hopLength(speechVaeConfig({ strides: [2, 2, 2] }))).toBe(512);
    v.dispose();
  });
});
