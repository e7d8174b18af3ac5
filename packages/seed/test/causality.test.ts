/** Brief 1.8.1: the gradient of query i's output w.r.t. query j's input is exactly zero for j > i. */
import { initBackend, Rng, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CausalQFormer, seedConfig } from '../src/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

/** |d (w . out_i) / d query_j| summed over the width, for every j, as a [Q] array. */
function gradNorms(qf: CausalQFormer, i: number, image: tf.Tensor, qe: tf.Tensor, w: tf.Tensor): number[] {
  return tf.tidy(() => {
    const H = qf.config.hiddenSize;
    const g = tf.grad((x: tf.Tensor) => qf.forwardQueries(x, image).slice([0, i, 0], [1, 1, H]).reshape([H]).mul(w).sum())(qe); // [1, Q, H]
    return Array.from(g.abs().sum(2).reshape([-1]).dataSync());
  });
}

describe('causality of the Causal Q-Former', () => {
  // the brief's mask check: 2 layers, d = 64, 8 queries, 16 x 32 random "ViT" tokens
  const qcfg = (causalMask: 'always' | 'reference' | 'bidirectional') =>
    seedConfig({ qformer: { numQueries: 8, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, causalMask } }).qformer;

  it('d out_i / d query_j == 0 exactly for j > i, and != 0 for j <= i', () => {
    const qf = new CausalQFormer(qcfg('always'), 32, new Rng(1));
    const rng = new Rng(2);
    const image = rng.randn([1, 16, 32]);
    const qe = rng.randn([1, 8, 64]);
    const w = rng.randn([64]);
    for (let i = 0; i < 8; i++) {
      const g = gradNorms(qf, i, image, qe, w);
      for (let j = 0; j < 8; j++) {
        if (j > i) expect(g[j], `d out_${i} / d q_${j}`).toBe(0);
        else expect(g[j], `d out_${i} / d q_${j}`).toBeGreaterThan(0);
      }
    }
    qf.dispose();
  });

  it("the reference's quirk: with 8 != 32 queries its mask is off, so later queries leak into earlier ones", () => {
    const qf = new CausalQFormer(qcfg('reference'), 32, new Rng(1));
    expect(qf.causal).toBe(false);
    const rng = new Rng(2);
    const g = gradNorms(qf, 0, rng.randn([1, 16, 32]), rng.randn([1, 8, 64]), rng.randn([64]));
    expect(g.slice(1).some((x) => x > 0)).toBe(true);
    qf.dispose();
  });

  it("'bidirectional' (section 4.3's bilateral arm): query i gets gradient from every query j, also j > i, even at 32 queries", () => {
    for (const Q of [8, 32]) {
      const cfg = seedConfig({
        qformer: { numQueries: Q, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, causalMask: 'bidirectional' },
      }).qformer;
      const qf = new CausalQFormer(cfg, 32, new Rng(1));
      expect(qf.causal).toBe(false);
      expect(qf.queryMask()).toBeNull();
      const rng = new Rng(2);
      const image = rng.randn([1, 16, 32]);
      const qe = rng.randn([1, Q, 64]);
      const w = rng.randn([64]);
      for (const i of [0, Q >> 1]) {
        const g = gradNorms(qf, i, image, qe, w);
        for (let j = 0; j < Q; j++) expect(g[j], `Q ${Q}: d out_${i} / d q_${j}`).toBeGreaterThan(0);
      }
      qf.dispose();
    }
  });

  it('every query sees the whole image: d out_0 / d image token k != 0 for every k', () => {
    const qf = new CausalQFormer(qcfg('always'), 32, new Rng(1));
    const rng = new Rng(3);
    const image = rng.randn([1, 16, 32]);
    const w = rng.randn([64]);
    const g = tf.tidy(() =>
      Array.from(
        tf
          .grad((im: tf.Tensor) => qf.forward(im).slice([0, 0, 0], [1, 1, 64]).reshape([64]).mul(w).sum())(image)
          .abs()
          .sum(2)
          .dataSync(),
      ),
    );
    expect(g.every((x) => x > 0)).toBe(true);
    qf.dispose();
  });
});
