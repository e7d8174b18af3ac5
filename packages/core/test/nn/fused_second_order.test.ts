/**
 * Second-order gradients (a gradient of a gradient, as gradient penalties and meta-learning take)
 * through Linear, LayerNorm, RMSNorm, attention, the fused GELUs, SiLU and GroupNorm on wasm: the layers keep their composites where
 * tapes nest (their fused training kernels are first order), so the result equals the composites'
 * bit for bit and does not throw; ordinary training still takes the fused kernels.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ATTENTION_KERNEL, geluErf, LINEAR_GRAD_KERNEL, NORM_TRAIN_KERNEL } from '../../src/backend/kernels/fused.js';
import {
  attentionComposite,
  geluTanh,
  groupNorm,
  LayerNorm,
  Linear,
  layerNormComposite,
  linearComposite,
  RMSNorm,
  Rng,
  rmsNormComposite,
  scaledDotProductAttention,
  silu,
  tf,
} from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { bits, kernelsOf } from '../kernels/helpers.js';

afterAll(async () => useBackend('cpu'));

describe('fused layers under nested tapes (wasm)', () => {
  it('a gradient of a gradient equals the composites and runs no fused training kernel', async () => {
    await useBackend('wasm');
    const rng = new Rng(2);
    const lin = new Linear(8, 8, { rng });
    const ln = new LayerNorm(8);
    const rms = new RMSNorm(8);
    for (const p of [...ln.parameters(), ...rms.parameters()]) tf.tidy(() => p.assign(rng.randn(p.shape).add(1)));
    const x = rng.randn([2, 3, 8]);
    const model = (fused: boolean) => (a: tf.Tensor) => {
      const h = fused ? lin.forward(a) : linearComposite(a, lin.weight, lin.bias);
      const n = fused
        ? rms.forward(ln.forward(h))
        : rmsNormComposite(layerNormComposite(h, ln.weight, ln.bias, ln.eps), rms.weight, rms.eps);
      const q = n.reshape([2, 3, 2, 4]).transpose([0, 2, 1, 3]); // [B, H, T, hs]
      const o = fused ? scaledDotProductAttention(q, q, q, { causal: true }) : attentionComposite(q, q, q, { causal: true });
      const g = geluErf(o).add(geluTanh(o)).add(silu(o)); // the fused activations too
      const img = g.reshape([2, 2, 3, 4]).transpose([0, 2, 3, 1]); // [B, H, W, C] for GroupNorm
      return groupNorm(img, tf.ones([2]), tf.zeros([2]), 2)
        .square()
        .sum();
    };
    // penalty = |d model / dx|^2, differentiated again with respect to x
    const secondOrder = (fused: boolean) => tf.grad((a: tf.Tensor) => tf.grad(model(fused))(a).square().sum())(x);
    let got: tf.Tensor | undefined;
    const names = kernelsOf(() => {
      got = secondOrder(true);
    });
    const want = secondOrder(false);
    expect(bits(got!)).toEqual(bits(want));
    for (const k of [LINEAR_GRAD_KERNEL, NORM_TRAIN_KERNEL, ATTENTION_KERNEL]) expect(names.has(k), k).toBe(false);
    // first order still takes them
    const first = kernelsOf(() => {
      tf.dispose(tf.grad(model(true))(x));
    });
    for (const k of [LINEAR_GRAD_KERNEL, NORM_TRAIN_KERNEL, ATTENTION_KERNEL]) expect(first.has(k), k).toBe(true);
    tf.dispose([got!, want, x]);
    for (const m of [lin, ln, rms]) m.dispose();
  });
});
