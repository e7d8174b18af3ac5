import { beforeAll, describe, expect, it } from 'vitest';
import {
  applyLoRA,
  Embedding,
  Linear,
  LoRALinear,
  loraLayers,
  loraStateDict,
  Module,
  mergeAndUnloadLoRA,
  Rng,
  TransformerDecoder,
  tf,
} from '../../src/index.js';
import { checkGradients, TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.abs(a.sub(b)).max().dataSync()[0] as number;

class Masked extends Linear {
  override effectiveWeight(): tf.Tensor {
    return tf.tidy(() => this.weight.mul(tf.onesLike(this.weight).mul(0.5)));
  }
}

class Net extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly emb: Embedding;
  constructor(rng: Rng) {
    super();
    this.emb = this.module('emb', new Embedding(5, 4, { rng }));
    this.fc1 = this.module('fc1', new Linear(4, 6, { rng }));
    this.fc2 = this.module('fc2', new Linear(6, 3, { rng }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(tf.relu(this.fc1.forward(x))));
  }
}

for (const backend of TEST_BACKENDS) {
  describe(`LoRA on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('starts equal to the base layer, then adds (alpha/r) x A^T B^T; PEFT names; only A and B train', () => {
      const rng = new Rng(1);
      const base = new Linear(6, 4, { rng });
      const x = rng.randn([2, 3, 6]);
      const y0 = base.forward(x);
      const l = new LoRALinear(base, { r: 2, alpha: 4, rng });
      expect(l.scale).toBe(2);
      expect(Array.from(l.forward(x).dataSync())).toEqual(Array.from(y0.dataSync()));
      l.lora_B.weight.assign(rng.randn([4, 2]));
      const expected = y0.add(
        tf
          .matMul(tf.matMul(x.reshape([6, 6]), l.lora_A.weight, false, true), l.lora_B.weight, false, true)
          .reshape([2, 3, 4])
          .mul(2),
      );
      expect(maxAbs(l.forward(x), expected)).toBeLessThan(1e-5);
      expect(l.namedParameters().map(([n]) => n)).toEqual(['base_layer.weight', 'base_layer.bias', 'lora_A.weight', 'lora_B.weight']);
      expect(l.lora_A.weight.shape).toEqual([2, 6]);
      expect(l.lora_B.weight.shape).toEqual([4, 2]);
      expect(l.namedTrainableParameters().map(([n]) => n)).toEqual(['lora_A.weight', 'lora_B.weight']);
    });

    it('A is PEFT kaiming_uniform(a = sqrt 5) = U(+-1/sqrt(in)); B is zero; the same seed gives the same A', () => {
      const inF = 64;
      const a = new LoRALinear(new Linear(inF, 32, { rng: new Rng(1) }), { r: 16, rng: new Rng(2) });
      const v = Array.from(a.lora_A.weight.dataSync());
      const bound = 1 / Math.sqrt(inF); // gain sqrt(2 / (1 + 5)) * sqrt(3 / in)
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
      const variance = v.reduce((s, x) => s + x * x, 0) / v.length;
      expect(variance).toBeGreaterThan((bound * bound) / 3 - 0.1 * (bound * bound));
      expect(variance).toBeLessThan((bound * bound) / 3 + 0.1 * (bound * bound));
      expect(Array.from(a.lora_B.weight.dataSync()).every((x) => x === 0)).toBe(true);
      const b = new LoRALinear(new Linear(inF, 32, { rng: new Rng(1) }), { r: 16, rng: new Rng(2) });
      expect(Array.from(b.lora_A.weight.dataSync())).toEqual(v);
    });

    it('gradients: only A and B receive them; they match closed forms and finite differences', () => {
      const rng = new Rng(7);
      const l = new LoRALinear(new Linear(4, 3, { rng }), { r: 2, alpha: 3, rng });
      l.lora_B.weight.assign(rng.randn([3, 2]));
      const x = rng.randn([5, 4]);
      const g = rng.randn([5, 3]); // L = sum(y * g)
      const { grads } = tf.variableGrads(() => l.forward(x).mul(g).sum() as tf.Scalar);
      expect(Object.keys(grads).sort()).toEqual([l.lora_A.weight.name, l.lora_B.weight.name].sort());
      // dL/dB = s g^T (x A^T), dL/dA = s B^T g^T x
      const s = 1.5;
      const dB = tf.matMul(g, tf.matMul(x, l.lora_A.weight, false, true), true, false).mul(s);
      const dA = tf.matMul(l.lora_B.weight, tf.matMul(g, x, true, false), true, false).mul(s);
      expect(maxAbs(grads[l.lora_B.weight.name] as tf.Tensor, dB)).toBeLessThan(1e-5);
      expect(maxAbs(grads[l.lora_A.weight.name] as tf.Tensor, dA)).toBeLessThan(1e-5);
      checkGradients(([xx]) => l.forward(xx!).square().sum() as tf.Scalar, [x], { atol: 2e-3 });
      // and with respect to A and B, through a functional copy that swaps them in
      const f = ([a, b]: tf.Tensor[]) => {
        l.lora_A.weight.assign(a!);
        l.lora_B.weight.assign(b!);
        return l.forward(x).square().sum() as tf.Scalar;
      };
      const a0 = l.lora_A.weight.clone();
      const b0 = l.lora_B.weight.clone();
      const auto = tf.variableGrads(() => l.forward(x).square().sum() as tf.Scalar).grads;
      for (const [i, v, t] of [
        [0, l.lora_A.weight, a0],
        [1, l.lora_B.weight, b0],
      ] as const) {
        const fd = Array.from(t.dataSync()).map((_, j) => {
          const e = 1e-2;
          const p = t.dataSync().slice();
          const m = t.dataSync().slice();
          p[j]! += e;
          m[j]! -= e;
          const fp = f(i === 0 ? [tf.tensor(p, t.shape), b0] : [a0, tf.tensor(p, t.shape)]).dataSync()[0]!;
          const fm = f(i === 0 ? [tf.tensor(m, t.shape), b0] : [a0, tf.tensor(m, t.shape)]).dataSync()[0]!;
          return (fp - fm) / (2 * e);
        });
        const an = (auto[v.name] as tf.Tensor).dataSync();
        fd.forEach((n, j) => expect(Math.abs(an[j]! - n)).toBeLessThanOrEqual(2e-3 + 2e-2 * Math.abs(n)));
      }
    });

    it('merge / unmerge: same output within 1e-5, base weight restored, merged forward skips the branch', () => {
      const rng = new Rng(4);
      const l = new LoRALinear(new Linear(5, 5, { rng }), { r: 3, alpha: 6, rng });
      l.lora_B.weight.assign(rng.randn([5, 3]));
      const x = rng.randn([2, 5]);
      const w0 = l.base_layer.weight.clone();
      const y = l.forward(x);
      l.merge();
      expect(l.isMerged).toBe(true);
      expect(maxAbs(l.base_layer.weight, w0.add(tf.matMul(l.lora_B.weight, l.lora_A.weight).mul(2)))).toBeLessThan(1e-5);
      expect(maxAbs(l.forward(x), y)).toBeLessThan(1e-5);
      l.merge(); // idempotent
      expect(maxAbs(l.forward(x), y)).toBeLessThan(1e-5);
      l.unmerge();
      expect(maxAbs(l.base_layer.weight, w0)).toBeLessThan(1e-6);
      expect(maxAbs(l.forward(x), y)).toBeLessThan(1e-5);
      expect(() => new LoRALinear(new Masked(3, 3), { r: 1 }).merge()).toThrow(/the base layer \(Masked\) overrides effectiveWeight\(\)/);
    });

    it('dropout: seeded, training mode only, on the LoRA branch only', () => {
      const mk = () => {
        const rng = new Rng(9);
        const l = new LoRALinear(new Linear(8, 8, { rng }), { r: 4, dropout: 0.5, rng });
        l.lora_B.weight.assign(tf.ones([8, 4]));
        return l;
      };
      const a = mk();
      const b = mk();
      const x = tf.ones([3, 8]);
      const ya = a.forward(x);
      expect(Array.from(b.forward(x).dataSync())).toEqual(Array.from(ya.dataSync()));
      a.eval();
      const clean = a.forward(x);
      expect(maxAbs(ya, clean)).toBeGreaterThan(1e-3);
      expect(Array.from(a.forward(x).dataSync())).toEqual(Array.from(clean.dataSync()));
      // the base path is not dropped: with B = 0 the training output equals the base output
      const c = new LoRALinear(new Linear(8, 8, { rng: new Rng(1) }), { r: 2, dropout: 0.9, rng: new Rng(2) });
      expect(Array.from(c.forward(x).dataSync())).toEqual(Array.from(c.base_layer.forward(x).dataSync()));
    });

    it('fused splits = separate PEFT layers: same output, gradients, merge and parameter count', () => {
      const rng = new Rng(7);
      // a fused q/k/v-like Linear 6 -> 4 + 2 + 2 and the three Linears its row blocks would be
      const fused = new Linear(6, 8, { rng });
      const parts = [4, 2, 2];
      const W = tf.split(fused.weight, parts, 0);
      const bias = tf.split(fused.bias!, parts, 0);
      const sep = parts.map((w, i) => {
        const l = new Linear(6, w, { rng });
        l.weight.assign(W[i]!);
        l.bias!.assign(bias[i]!);
        return new LoRALinear(l, { r: 2, alpha: 3, rng });
      });
      const lf = new LoRALinear(fused, { r: 2, alpha: 3, rng, splits: parts });
      expect(lf.lora_A.weight.shape).toEqual([6, 6]); // 3 parts x r 2 rows
      expect(lf.lora_B.weight.shape).toEqual([8, 2]);
      // independent A_i and B_i per part, copied into the separate layers
      for (const [i, s] of sep.entries()) {
        s.lora_A.weight.assign(lf.lora_A.weight.slice([2 * i, 0], [2, 6]));
        const b = rng.randn([parts[i]!, 2]);
        s.lora_B.weight.assign(b);
      }
      lf.lora_B.weight.assign(
        tf.concat(
          sep.map((s) => s.lora_B.weight),
          0,
        ),
      );
      const x = rng.randn([2, 3, 6]);
      const ySep = tf.concat(
        sep.map((s) => s.forward(x)),
        2,
      );
      expect(maxAbs(lf.forward(x), ySep)).toBeLessThan(1e-5);
      // the fused update is not one rank-2 matrix: parts have their own row spaces
      const d = lf.delta();
      expect(
        maxAbs(
          d,
          tf.concat(
            sep.map((s) => s.delta()),
            0,
          ),
        ),
      ).toBeLessThan(1e-6);
      // gradients w.r.t. A and B equal the separate layers' (same loss: sum of squares of the output)
      const loss = () => lf.forward(x).square().sum() as tf.Scalar;
      const { grads } = tf.variableGrads(loss, [lf.lora_A.weight, lf.lora_B.weight]);
      const lossSep = () =>
        tf
          .concat(
            sep.map((s) => s.forward(x)),
            2,
          )
          .square()
          .sum() as tf.Scalar;
      const gs = tf.variableGrads(
        lossSep,
        sep.flatMap((s) => [s.lora_A.weight, s.lora_B.weight]),
      ).grads;
      const gA = tf.concat(
        sep.map((s) => gs[s.lora_A.weight.name]!),
        0,
      );
      const gB = tf.concat(
        sep.map((s) => gs[s.lora_B.weight.name]!),
        0,
      );
      expect(maxAbs(grads[lf.lora_A.weight.name]!, gA)).toBeLessThan(1e-4);
      expect(maxAbs(grads[lf.lora_B.weight.name]!, gB)).toBeLessThan(1e-4);
      // PEFT's count on the separate layers: r (in + out_i) per part
      const count = (m: Module) => m.numParameters({ trainableOnly: true });
      expect(count(lf)).toBe(sep.reduce((a, s) => a + count(s), 0));
      expect(count(lf)).toBe(2 * (6 + 4) + 2 * (6 + 2) * 2);
      // merge folds every part's update in
      const y = lf.forward(x);
      lf.merge();
      expect(maxAbs(lf.forward(x), y)).toBeLessThan(1e-5);
      const w0 = tf.concat(W, 0);
      lf.unmerge();
      expect(maxAbs(lf.base_layer.weight, w0)).toBeLessThan(1e-6);
    });

    it('no leak in a training step', () => {
      const rng = new Rng(2);
      const l = new LoRALinear(new Linear(4, 4, { rng }), { r: 2, dropout: 0.1, rng });
      const x = rng.randn([3, 4]);
      const step = () => tf.dispose(tf.variableGrads(() => l.forward(x).square().sum() as tf.Scalar));
      step();
      const n = tf.memory().numTensors;
      step();
      l.merge();
      l.unmerge();
      expect(tf.memory().numTensors).toBe(n);
    });
  });
}

describe('applyLoRA, loraStateDict, mergeAndUnloadLoRA', () => {
  beforeAll(async () => useBackend('cpu'));

  it('wraps matching Linears of a decoder, freezes the rest, and the forward uses the wrappers', () => {
    const m = new TransformerDecoder({ vocabSize: 7, dim: 8, numLayers: 2, numHeads: 2, maxSeqLen: 4, seed: 1 });
    const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    const y0 = m.forward(ids);
    const seen: string[] = [];
    const wrapped = applyLoRA(m, {
      r: 2,
      rng: new Rng(3),
      targets: (p, layer) => {
        seen.push(p);
        expect(layer).toBeInstanceOf(Linear);
        return /attn\.(qkv|proj)$/.test(p);
      },
    });
    expect(seen).toContain('blocks.0.attn.qkv');
    expect(wrapped).toEqual(['blocks.0.attn.qkv', 'blocks.0.attn.proj', 'blocks.1.attn.qkv', 'blocks.1.attn.proj']);
    expect(loraLayers(m).map(([p]) => p)).toEqual(wrapped);
    expect(m.namedTrainableParameters().every(([p]) => /lora_[AB]\.weight$/.test(p))).toBe(true);
    expect(m.numParameters({ trainableOnly: true })).toBe(2 * (2 * 8 + 24 * 2 + 2 * 8 + 8 * 2));
    expect(Object.keys(loraStateDict(m))).toEqual(wrapped.flatMap((p) => [`${p}.lora_A.weight`, `${p}.lora_B.weight`]));
    expect(Object.keys(m.stateDict())).toContain('blocks.0.attn.qkv.base_layer.weight');
    expect(Array.from(m.forward(ids).dataSync())).toEqual(Array.from(y0.dataSync())); // B = 0 at init
    const q = m.blocks.at(0).attn.qkv as unknown as LoRALinear;
    expect(q).toBeInstanceOf(LoRALinear);
    q.lora_B.weight.assign(tf.onesLike(q.lora_B.weight));
    const y1 = m.forward(ids);
    expect(maxAbs(y1, y0)).toBeGreaterThan(0);
    expect(() => applyLoRA(m, { r: 2, targets: (p) => /attn\.(qkv|proj)$/.test(p) })).toThrow(/already inside a LoRALinear are skipped/); // no nesting
  });

  it('applyLoRA on a small net trains only the adapters; merge-and-unload restores plain names and keeps the output', () => {
    const rng = new Rng(5);
    const net = new Net(rng);
    expect(applyLoRA(net, { r: 2, alpha: 4, rng })).toEqual(['fc1', 'fc2']);
    expect(net.emb.weight.trainable).toBe(false);
    const x = rng.randn([3, 4]);
    const opt = tf.train.sgd(0.1);
    const target = rng.randn([3, 3]);
    const loss = () => net.forward(x).sub(target).square().mean() as tf.Scalar;
    const before = loss().dataSync()[0]!;
    const frozen = (net.fc1 as unknown as LoRALinear).base_layer.weight.clone();
    for (let i = 0; i < 5; i++) opt.minimize(loss, true)?.dispose();
    expect(loss().dataSync()[0]).toBeLessThan(before);
    expect(maxAbs((net.fc1 as unknown as LoRALinear).base_layer.weight, frozen)).toBe(0);
    const y = net.forward(x);
    expect(mergeAndUnloadLoRA(net)).toEqual(['fc1', 'fc2']);
    expect(net.fc1).toBeInstanceOf(Linear);
    expect(Object.keys(net.stateDict()).sort()).toEqual(['emb.weight', 'fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']);
    expect(maxAbs(net.forward(x), y)).toBeLessThan(1e-5);
  });

  it('rejects bad inputs, before changing anything', () => {
    expect(() => new LoRALinear(new Linear(4, 3), { r: 4 })).toThrow(
      /r must be an integer in \[1, 3\] \(min\(in, out\) of a 4 -> 3 Linear\), got 4/,
    );
    expect(() => new LoRALinear(new Linear(4, 3), { r: 0 })).toThrow(/r must be an integer in \[1, 3\].*got 0/);
    expect(() => new LoRALinear(new Linear(4, 3), { r: 1.5 })).toThrow(/got 1.5/);
    expect(() => new LoRALinear(new Linear(4, 3), { r: 1, alpha: 0 })).toThrow(/alpha must be a finite number > 0, got 0/);
    expect(() => new LoRALinear(new Linear(4, 3), { r: 1, dropout: 1 })).toThrow(/dropout must be in \[0, 1\), got 1/);
    expect(() => new LoRALinear(new Embedding(4, 3) as unknown as Linear, { r: 1 })).toThrow(/base must be a Linear, got Embedding/);
    expect(() => applyLoRA(new Linear(2, 2), { r: 1 })).toThrow(/no Linear layer under Linear matched the targets/);
    expect(() => new LoRALinear(new Linear(4, 6), { r: 1, splits: [4, 1] })).toThrow(
      /splits \[4,1\] sum to 5, expected the layer's 6 out features/,
    );
    expect(() => new LoRALinear(new Linear(4, 6), { r: 3, splits: [4, 2] })).toThrow(
      /r must be an integer in \[1, 2\] \(min\(in, part width\)/,
    );
    expect(() => new LoRALinear(new Linear(4, 6), { r: 1, splits: [] })).toThrow(/splits must be a non-empty list/);
    expect(() => new LoRALinear(new Linear(4, 6), { r: 1, splits: [3, 3.5] as number[] })).toThrow(/splits must be a non-empty list/);
    const net = new Net(new Rng(1));
    expect(() => applyLoRA(net, { r: 1, targets: (p) => p === 'emb' })).toThrow(/no Linear layer under Net matched/);
    // r = 4 fits fc1 (4 -> 6) but not fc2 (6 -> 3): nothing is wrapped or frozen
    expect(() => applyLoRA(net, { r: 4 })).toThrow(/applyLoRA \(fc2\): r must be an integer in \[1, 3\]/);
    expect(net.fc1).toBeInstanceOf(Linear);
    expect(net.fc1).not.toBeInstanceOf(LoRALinear);
    expect(net.numParameters({ trainableOnly: true })).toBe(net.numParameters());
  });
});
