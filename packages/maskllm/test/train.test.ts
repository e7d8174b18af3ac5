/**
 * The MaskLLM objective and training step (§3.4, §4.1): schedules of tau, kappa, lambda and the
 * learning rate against closed forms, the sparse weight regulariser against a host recomputation,
 * and one step: only the gate logits move, the loss is L_LM - lambda_t R, no tensor leaks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, TransformerDecoder, tf, trainLoop } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  clearSampledMasks,
  cosineLr,
  denseOptimizer,
  denseTrainStep,
  lmLoss,
  maskedLinears,
  maskllmConfig,
  maskOptimizer,
  maskSchedule,
  maskTrainStep,
  sampleMasks,
  sparseWeightReg,
  sparsify,
} from '../src/index.js';

const tinyDecoder = (seed = 1) => new TransformerDecoder({ vocabSize: 11, dim: 16, numLayers: 2, numHeads: 2, maxSeqLen: 8, seed });
const ids = () => tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3, 4, 5, 6, 7], [2, 9], 'int32');

describe('MaskLLM training objective', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });

  it('schedules: tau, kappa linear; lambda_t = lambda (1 - t/T); lr cosine times the gate multiplier', () => {
    const cfg = maskllmConfig({ mask: { weightReg: 1e-5 }, train: { steps: 2000, lr: 5e-5, lrMin: 5e-6, lrMult: 10 } });
    const at = (t: number) => maskSchedule(cfg.mask, cfg.train, t);
    expect(at(0)).toMatchObject({ tau: 4, kappa: 100, lambda: 1e-5 });
    expect(at(0).lr).toBeCloseTo(5e-4, 12);
    expect(at(500).tau).toBeCloseTo(3.0125, 12);
    expect(at(500).kappa).toBeCloseTo(200, 9);
    expect(at(1000).lambda).toBeCloseTo(5e-6, 15);
    // cosine at the midpoint: lrMin + (lr - lrMin) / 2, times 10
    expect(at(1000).lr).toBeCloseTo(10 * (5e-6 + 0.5 * (5e-5 - 5e-6)), 12);
    expect(at(2000).tau).toBeCloseTo(0.05, 12);
    expect(at(2000)).toMatchObject({ kappa: 500, lambda: 0 });
    expect(at(2000).lr).toBeCloseTo(5e-5, 12);
    expect(cosineLr(1, 0, 500, 1000)).toBeCloseTo(0.5, 12);
    expect(cosineLr(1, 0, 250, 1000)).toBeCloseTo((1 + Math.SQRT1_2) / 2, 12);
  });

  it('the regulariser is sum ||W * M~||^2 over the masked layers, with the step sample', () => {
    const dec = tinyDecoder();
    sparsify(dec, { seed: 2 });
    tf.tidy(() => {
      sampleMasks(dec);
      let want = 0;
      for (const [, l] of maskedLinears(dec)) {
        const w = l.weight.dataSync();
        const m = (l.sampled as tf.Tensor).dataSync();
        for (let i = 0; i < w.length; i++) want += (w[i]! * m[i]!) ** 2;
      }
      const got = sparseWeightReg(dec).dataSync()[0]!;
      expect(Math.abs(got / want - 1)).toBeLessThan(1e-5);
      clearSampledMasks(dec);
    });
    dec.dispose();
  });

  it('one step moves only the gates, reports loss = L_LM - lambda_t R, and leaks no tensors', () => {
    const dec = tinyDecoder();
    sparsify(dec, { seed: 2 });
    dec.train();
    const cfg = maskllmConfig({ mask: { weightReg: 1e-3 }, train: { steps: 10, lr: 1e-2, lrMin: 1e-3, lrMult: 1 } });
    const opt = maskOptimizer(dec, cfg.train);
    const x = ids();
    const frozen = dec.namedParameters().filter(([p]) => !p.endsWith('.gate'));
    const before = frozen.map(([, v]) => v.dataSync().slice());
    const gates0 = maskedLinears(dec).map(([, l]) => l.diff_mask.gate.dataSync().slice());
    maskTrainStep(dec, opt, x, 0, cfg);
    const n0 = tf.memory().numTensors;
    const r = maskTrainStep(dec, opt, x, 1, cfg);
    expect(tf.memory().numTensors).toBe(n0);
    expect(r.lambda).toBeCloseTo(1e-3 * 0.9, 12);
    expect(Math.abs(r.loss - (r.lm - r.lambda * r.reg))).toBeLessThan(1e-5 * Math.max(1, Math.abs(r.loss)));
    expect(r.gradNorm).toBeGreaterThan(0);
    frozen.forEach(([p, v], i) => expect(Array.from(v.dataSync()), p).toEqual(Array.from(before[i]!)));
    maskedLinears(dec).forEach(([p, l], i) => expect(Array.from(l.diff_mask.gate.dataSync()), p).not.toEqual(Array.from(gates0[i]!)));
    expect(maskedLinears(dec).every(([, l]) => l.sampled === null)).toBe(true);
    opt.dispose();
    x.dispose();
    dec.dispose();
  });

  it('trainLoop resumes mask training bit-identically without being handed the Gumbel streams (the modules expose them)', async () => {
    const cfg = maskllmConfig({ train: { steps: 6, lr: 1e-2, lrMin: 1e-3, lrMult: 1 } });
    const setup = () => {
      const dec = tinyDecoder();
      sparsify(dec, { seed: 2 });
      dec.train();
      const opt = maskOptimizer(dec, cfg.train);
      const x = ids();
      return { dec, opt, x, step: (t: number) => maskTrainStep(dec, opt, x, t - 1, cfg).loss };
    };
    // every masked layer's noise stream is registered (plus the blocks' dropout streams)
    const probe = setup();
    const names = probe.dec.namedRngs().map(([k]) => k);
    expect(names.filter((k) => k.endsWith('.diff_mask.gumbel'))).toHaveLength(maskedLinears(probe.dec).length);
    const quiet = { progress: 'none' as const, log: () => {} };
    const full = await trainLoop({ steps: 6, step: probe.step, model: probe.dec, optimizer: probe.opt, ...quiet });
    const dir = mkdtempSync(join(tmpdir(), 'maskllm-resume-'));
    const a = setup();
    const r1 = await trainLoop({ steps: 3, step: a.step, model: a.dec, optimizer: a.opt, checkpointDir: dir, ...quiet });
    const b = setup();
    const r2 = await trainLoop({ steps: 6, step: b.step, model: b.dec, optimizer: b.opt, checkpointDir: dir, resume: true, ...quiet });
    expect(r2.resumedFrom).toBe(3);
    expect([...r1.losses, ...r2.losses]).toEqual(full.losses);
    for (const s of [probe, a, b]) {
      s.opt.dispose();
      s.x.dispose();
      s.dec.dispose();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('a dense step lowers the loss on its batch and leaks no tensors', () => {
    const dec = tinyDecoder(4);
    const opt = denseOptimizer(dec, 0.1);
    const x = ids();
    const loss0 = tf.tidy(() => lmLoss(dec, x).dataSync()[0]!);
    const step = { steps: 20, lr: 1e-2, lrMin: 1e-3, weightDecay: 0.1, gradClip: 1 };
    denseTrainStep(dec, opt, x, 0, step);
    const n0 = tf.memory().numTensors;
    for (let t = 1; t < 5; t++) denseTrainStep(dec, opt, x, t, step);
    expect(tf.memory().numTensors).toBe(n0);
    expect(tf.tidy(() => lmLoss(dec, x).dataSync()[0]!)).toBeLessThan(loss0);
    opt.dispose();
    x.dispose();
    dec.dispose();
  });

  it('bad input', () => {
    const dec = tinyDecoder();
    expect(() => maskOptimizer(dec, maskllmConfig().train)).toThrow(/no masked layers; call sparsify\(decoder\) first/);
    expect(() => lmLoss(dec, tf.tensor2d([[1, 2]], [1, 2], 'float32'))).toThrow(/ids must be int32 \[B, T\+1\], got float32 \[1,2\]/);
    expect(() => lmLoss(dec, tf.tensor2d([[1]], [1, 1], 'int32'))).toThrow(/need at least 2 tokens per sequence, got 1/);
    dec.dispose();
  });
});
