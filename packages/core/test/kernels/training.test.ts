/**
 * End to end through core's wasm kernels: a small decoder (the gpt-bench architecture, shrunk)
 * trained for a few AdamW steps on wasm follows the cpu backend's loss trajectory and parameters,
 * without leaking tensors per step.
 *
 * Tolerance: 1e-4 relative on losses and parameters after 4 steps (float32 round-off of different
 * summation orders, amplified by AdamW's division by sqrt(v) early in training).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { AdamW, crossEntropy, Rng, TransformerDecoder, tf, valueAndGrads } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, relErr } from './helpers.js';

afterAll(async () => useBackend('cpu'));

function train(steps: number) {
  const model = new TransformerDecoder({ vocabSize: 37, dim: 24, numLayers: 2, numHeads: 3, maxSeqLen: 9, seed: 5 });
  const opt = new AdamW(model, { lr: 1e-2 });
  const rng = new Rng(6);
  const x = rng.randint([3, 9], 0, 37);
  const y = rng.randint([3, 9], 0, 37);
  const losses: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < steps; i++) {
    const { loss, grads } = valueAndGrads(model, () => crossEntropy(model.forward(x), y) as tf.Scalar);
    opt.step(grads);
    losses.push(loss.dataSync()[0] as number);
    loss.dispose();
    for (const g of grads.values()) g.dispose();
    counts.push(tf.memory().numTensors);
  }
  const params = Float32Array.from(model.parameters().flatMap((p) => Array.from(p.dataSync())));
  opt.dispose();
  model.dispose();
  tf.dispose([x, y]);
  return { losses, counts, params };
}

describe('training through the wasm kernels', () => {
  it('follows the cpu trajectory and keeps the tensor count fixed', async () => {
    const w = await on('wasm', () => train(4));
    const c = await on('cpu', () => train(4));
    expect(relErr(w.losses, c.losses)).toBeLessThanOrEqual(1e-4);
    expect(relErr(w.params, c.params)).toBeLessThanOrEqual(1e-4);
    expect(new Set(w.counts.slice(1)).size).toBe(1);
    expect(w.losses[3] as number).toBeLessThan(w.losses[0] as number);
  });
});
