/**
 * LatentLM's optional image-position embedding (config.imagePositions, a deviation from the
 * reference): added only at <BOD> / <LAT> positions, the same in a full forward and in KV-cached
 * decoding, counted by parameterCount, trained by the loss.
 */
import { initBackend, Rng, tf, valueAndGrads } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildMixedBatch,
  LatentLM,
  latentLMLoss,
  type MixedSequence,
  NoiseSchedule,
  PRESETS,
  parameterCount,
  resolveModelConfig,
} from '../src/index.js';

const base = PRESETS.tiny.model; // V 16, C 4, D 32; <BOD> 12 <EOD> 13 <LAT> 14 <PAD> 15
const cfg = resolveModelConfig({ ...base, imagePositions: 3 });
const [BOD, EOD, LAT] = [12, 13, 14];
const lat = (n: number, seed: number) => Float32Array.from(new Rng(seed).randn([n * 4]).dataSync());

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

describe('LatentLM imagePositions', () => {
  it('the index of the latent each position predicts: 0 at <BOD>, k + 1 after latent k, -1 elsewhere', () => {
    const m = new LatentLM(cfg);
    const ids = [1, 2, BOD, LAT, LAT, LAT, EOD, 3, BOD, LAT, EOD, 4, BOD, LAT, 5, LAT];
    expect(Array.from(m.image_pos!.index(ids, 1, 16))).toEqual([-1, -1, 0, 1, 2, -1, -1, -1, 0, 1, -1, -1, 0, 1, -1, -1]);
    m.dispose();
  });

  it('adds only at span positions: the reference model (same seed) gives the same hidden states elsewhere', () => {
    const m = new LatentLM(cfg);
    const ref = new LatentLM(base);
    const ids = tf.tensor2d([1, 2, BOD, LAT, LAT, EOD, 3], [1, 7], 'int32');
    const l = tf.tensor3d(lat(7, 1), [1, 7, 4]);
    const d = tf.tidy(() => m.forwardHidden(ids, l).sub(ref.forwardHidden(ids, l)).abs().max(2).dataSync());
    // causal: positions before <BOD> agree; <BOD> and after differ
    expect(d[0]).toBeLessThan(1e-6);
    expect(d[1]).toBeLessThan(1e-6);
    for (const j of [2, 3, 4, 5, 6]) expect(d[j]).toBeGreaterThan(1e-4);
    expect(m.numParameters()).toBe(ref.numParameters() + 3 * cfg.dim);
    expect(m.numParameters()).toBe(parameterCount(cfg).total);
    tf.dispose([ids, l]);
    m.dispose();
    ref.dispose();
  });

  it('KV-cached decoding one token at a time equals the full forward (one row opens its span in the prefill, the other while stepping)', () => {
    const m = new LatentLM(cfg);
    const seqs: MixedSequence[] = [
      { tokens: [1, 2, BOD, LAT, LAT, LAT, EOD, 3], latents: lat(3, 3) },
      { tokens: [4, 5, 6, BOD, LAT, EOD, 7, 8], latents: lat(1, 4) },
    ];
    const b = buildMixedBatch(seqs, cfg);
    const ids = tf.tensor2d(b.ids, [2, 7], 'int32');
    const l = tf.tensor3d(b.latents, [2, 7, 4]);
    const full = m.forwardHidden(ids, l);
    const cache = m.newCache();
    const steps: tf.Tensor[] = [m.forwardHidden(ids.slice([0, 0], [2, 3]), l.slice([0, 0, 0], [2, 3, 4]), { cache })];
    for (let j = 3; j < 7; j++) steps.push(m.forwardHidden(ids.slice([0, j], [2, 1]), l.slice([0, j, 0], [2, 1, 4]), { cache }));
    const stepped = tf.concat(steps, 1);
    expect(stepped.sub(full).abs().max().dataSync()[0]).toBeLessThan(1e-5);
    // a fresh cache starts afresh: the same prefix gives the same states again
    const cache2 = m.newCache();
    const again = m.forwardHidden(ids.slice([0, 0], [2, 3]), l.slice([0, 0, 0], [2, 3, 4]), { cache: cache2 });
    expect(again.sub(steps[0]!).abs().max().dataSync()[0]).toBeLessThan(1e-6);
    cache.dispose();
    cache2.dispose();
    tf.dispose([ids, l, full, stepped, again, ...steps]);
    m.dispose();
  });

  it('the loss trains the rows it used, and nothing leaks', () => {
    const m = new LatentLM(cfg);
    const batch = buildMixedBatch([{ tokens: [1, 2, BOD, LAT, EOD, 3], latents: lat(1, 5) }], cfg);
    const before = tf.memory().numTensors;
    const { loss, grads } = valueAndGrads(m, () =>
      tf.tidy(() => {
        const r = latentLMLoss(m, batch, {
          schedule: new NoiseSchedule(),
          diffusion: { alpha: 5, batchMul: 2, predictionType: 'epsilon' },
          rng: new Rng(6),
        });
        return r.loss as tf.Scalar;
      }),
    );
    const g = grads.get('image_pos.weight')!.arraySync() as number[][];
    // one latent: row 0 (at <BOD>, predicts it) and row 1 (after it, predicts <EOD>) are used, row 2 never
    expect(Math.max(...g[0]!.map(Math.abs))).toBeGreaterThan(0);
    expect(Math.max(...g[1]!.map(Math.abs))).toBeGreaterThan(0);
    expect(Math.max(...g[2]!.map(Math.abs))).toBe(0);
    tf.dispose([loss, ...grads.values()]);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});
