import { beforeAll, describe, expect, it } from 'vitest';
import {
  applyLoRA,
  checkGradients,
  Linear,
  LoRALinear,
  manualSeed,
  TEST_BACKENDS,
  TransformerDecoder,
  tf,
  useBackend,
} from '../../src/index.js';

for (const backend of TEST_BACKENDS) {
  describe(`LoRA on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('starts equal to the base layer and adds scale * B A x', () => {
      manualSeed(1);
      const base = new Linear(6, 4);
      const x = tf.randomNormal([3, 6], 0, 1, 'float32', 2);
      const y0 = base.forward(x).dataSync().slice();
      const l = new LoRALinear(base, { r: 2, alpha: 4 });
      expect(Array.from(l.forward(x).dataSync())).toEqual(Array.from(y0));
      l.lora_B.weight.assign(tf.randomNormal([4, 2], 0, 1, 'float32', 3));
      const exp = tf.add(tf.tensor(y0, [3, 4]), tf.matMul(tf.matMul(x, l.lora_A.weight, false, true), l.lora_B.weight, false, true).mul(2));
      expect(tf.abs(l.forward(x).sub(exp)).max().dataSync()[0]).toBeLessThan(1e-5);
      expect(l.namedParameters().map(([n]) => n)).toEqual(['base_layer.weight', 'base_layer.bias', 'lora_A.weight', 'lora_B.weight']);
      expect(l.namedTrainableParameters().map(([n]) => n)).toEqual(['lora_A.weight', 'lora_B.weight']);
    });

    it('merge / unmerge keep the output and restore the base weight', () => {
      manualSeed(4);
      const l = new LoRALinear(new Linear(5, 5), { r: 3, alpha: 6 });
      l.lora_B.weight.assign(tf.randomNormal([5, 3], 0, 1, 'float32', 5));
      const x = tf.randomNormal([2, 5], 0, 1, 'float32', 6);
      const w0 = l.base_layer.weight.dataSync().slice();
      const y = l.forward(x).dataSync().slice();
      l.merge();
      expect(
        tf
          .abs(l.forward(x).sub(tf.tensor(y, [2, 5])))
          .max()
          .dataSync()[0],
      ).toBeLessThan(1e-5);
      l.unmerge();
      expect(
        tf
          .abs(l.base_layer.weight.sub(tf.tensor(w0, [5, 5])))
          .max()
          .dataSync()[0],
      ).toBeLessThan(1e-6);
    });

    it('gradients reach only the LoRA weights and match finite differences', () => {
      manualSeed(7);
      const l = new LoRALinear(new Linear(4, 3), { r: 2 });
      l.lora_B.weight.assign(tf.randomNormal([3, 2], 0, 1, 'float32', 8));
      const x = tf.randomNormal([2, 4], 0, 1, 'float32', 9);
      const { grads } = tf.variableGrads(() => l.forward(x).square().sum() as tf.Scalar);
      expect(Object.keys(grads).sort()).toEqual([l.lora_A.weight.name, l.lora_B.weight.name].sort());
      checkGradients(([xx]) => l.forward(xx!).square().sum() as tf.Scalar, [x], { atol: 2e-3 });
    });
  });
}

describe('applyLoRA', () => {
  beforeAll(async () => useBackend('cpu'));
  it('wraps matching Linears of a decoder, freezes the rest, and the forward uses the wrappers', () => {
    const m = new TransformerDecoder({ vocabSize: 7, dim: 8, numLayers: 2, numHeads: 2, maxSeqLen: 4, seed: 1 });
    const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    const y0 = m.forward(ids).dataSync().slice();
    const wrapped = applyLoRA(m, { r: 2, targets: (p) => /attn\.(qkv|proj)$/.test(p) });
    expect(wrapped).toEqual(['blocks.0.attn.qkv', 'blocks.0.attn.proj', 'blocks.1.attn.qkv', 'blocks.1.attn.proj']);
    expect(m.namedTrainableParameters().every(([p]) => /lora_[AB]\.weight$/.test(p))).toBe(true);
    expect(m.numParameters({ trainableOnly: true })).toBe(2 * (2 * 8 + 24 * 2 + 2 * 8 + 8 * 2));
    expect(Array.from(m.forward(ids).dataSync())).toEqual(Array.from(y0)); // B = 0 at init
    const q = m.blocks.at(0).attn.qkv as unknown as LoRALinear;
    expect(q).toBeInstanceOf(LoRALinear);
    q.lora_B.weight.assign(tf.onesLike(q.lora_B.weight));
    expect(
      tf
        .abs(m.forward(ids).sub(tf.tensor(y0, [1, 3, 7])))
        .max()
        .dataSync()[0],
    ).toBeGreaterThan(0);
  });
  it('rejects bad inputs', () => {
    expect(() => new LoRALinear(new Linear(4, 3), { r: 4 })).toThrow(/r must be an integer in \[1, 3\] \(min\(in, out\)\), got 4/);
    expect(() => new LoRALinear(new Linear(4, 3), { r: 1, dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => applyLoRA(new Linear(2, 2), { r: 1 })).toThrow(/no Linear layer matched/);
  });
});
