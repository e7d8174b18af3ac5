/** Differentiable masks, MaskedLinear and decoder surgery: invariants, gradients, leaks, bad input. */
import { initBackend, Linear, Rng, TransformerDecoder, tf } from '@mmlm/core';
import { TEST_BACKENDS, useBackend } from '@mmlm/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  applyMasks,
  blockLinears,
  candidateTensor,
  DifferentiableMask,
  densify,
  gumbelNoise,
  hardMasks,
  injectPrior,
  invalidGroups,
  MaskedLinear,
  magnitudeMask,
  maskedLinears,
  PROB_FLOOR,
  softMask,
  softmaxFlushed,
  sparsify,
  validateNM,
} from '../src/index.js';

const tinyDecoder = (seed = 1) => new TransformerDecoder({ vocabSize: 11, dim: 16, numLayers: 2, numHeads: 2, maxSeqLen: 8, seed });

describe('differentiable N:M masks', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });

  it('soft groups sum to N and hard groups have exactly N ones (2:4, 1:4, 2:8, 4:8)', () => {
    for (const [n, m] of [
      [2, 4],
      [1, 4],
      [2, 8],
      [4, 8],
    ] as const) {
      const dm = new DifferentiableMask([6, 2 * m], { n, m, rng: new Rng(3), initStd: 0.5, kappa: 3, tau: 1.5 });
      const soft = tf.tidy(() => dm.sample().reshape([-1, m]).sum(1).dataSync());
      for (const s of soft) expect(Math.abs(s - n)).toBeLessThan(1e-5);
      const hard = tf.tidy(() => dm.hardMask().dataSync());
      expect(invalidGroups(hard, n, m)).toBe(0);
      expect(hard.every((v) => v === 0 || v === 1)).toBe(true);
      dm.dispose();
    }
  });

  it('Gumbel noise is finite over a million draws and has the Gumbel mean (Euler gamma) and variance pi^2/6', () => {
    const g = tf.tidy(() => gumbelNoise(new Rng(1), [1000, 1000]).dataSync());
    let sum = 0;
    let sq = 0;
    let nonFinite = 0;
    for (const v of g) {
      if (!Number.isFinite(v)) nonFinite++;
      sum += v;
      sq += v * v;
    }
    expect(nonFinite).toBe(0);
    const mean = sum / g.length;
    expect(Math.abs(mean - 0.5772156649)).toBeLessThan(0.01);
    expect(Math.abs(sq / g.length - mean * mean - Math.PI ** 2 / 6)).toBeLessThan(0.02);
  });

  it('the same seed gives the same logits and samples; eval mode gives the hard mask', () => {
    const a = new DifferentiableMask([4, 8], { rng: new Rng(9) });
    const b = new DifferentiableMask([4, 8], { rng: new Rng(9) });
    const sa = tf.tidy(() => a.sample().dataSync());
    const sb = tf.tidy(() => b.sample().dataSync());
    expect(Array.from(sa)).toEqual(Array.from(sb));
    a.eval();
    const fa = tf.tidy(() => a.forward().dataSync());
    const ha = tf.tidy(() => a.hardMask().dataSync());
    expect(Array.from(fa)).toEqual(Array.from(ha));
    a.dispose();
    b.dispose();
  });

  it('softmaxFlushed: softmax with probabilities below 1e-20 exactly 0 and its gradient with those zeros; no subnormal anywhere at the end of the schedule', async () => {
    const subnormal = (v: ArrayLike<number>) => Array.from(v).filter((x) => x !== 0 && Math.abs(x) < 1.1754943508222875e-38).length;
    for (const backend of TEST_BACKENDS) {
      await useBackend(backend);
      // moderate logits: no entry is flushed, values and gradients are softmax's
      const z = tf.tensor([[0.3, -1.2, 2.0, 0.5, -0.4, 1.1]]);
      const dy = tf.tensor([[0.7, -0.2, 0.1, 1.5, -0.9, 0.3]]);
      const [y1, y2, g1, g2] = tf.tidy(() => [
        softmaxFlushed(z).dataSync(),
        tf.softmax(z).dataSync(),
        tf
          .grad((a: tf.Tensor) => softmaxFlushed(a).mul(dy).sum())(z)
          .dataSync(),
        tf
          .grad((a: tf.Tensor) => tf.softmax(a).mul(dy).sum())(z)
          .dataSync(),
      ]);
      for (let i = 0; i < 6; i++) {
        expect(y1![i]).toBe(y2![i]);
        expect(Math.abs(g1![i]! - g2![i]!)).toBeLessThan(1e-7);
      }
      // a spread row: exp(-50) / sum = 1.9e-22 and smaller are 0 (not subnormal), the rest softmax's
      const w = tf.tensor([[0, -1, -50, -100, -120, -200]]);
      const [yw, gw] = tf.tidy(() => [
        softmaxFlushed(w).dataSync(),
        tf
          .grad((a: tf.Tensor) => softmaxFlushed(a).mul(dy).sum())(w)
          .dataSync(),
      ]);
      const e1 = Math.exp(-1);
      expect(Math.abs(yw![0]! - 1 / (1 + e1))).toBeLessThan(1e-7);
      expect(Math.abs(yw![1]! - e1 / (1 + e1))).toBeLessThan(1e-7);
      expect(Array.from(yw!.slice(2))).toEqual([0, 0, 0, 0]);
      expect(Array.from(gw!.slice(2)).every((v) => v === 0)).toBe(true); // +0 or -0
      expect(PROB_FLOOR).toBe(1e-20);
      // the end of MaskLLM's schedule (kappa 500, tau 0.05) on spread logits: plain softmax leaves
      // probabilities far below 1e-20 (tiny normals on wasm, whose Softmax flushes subnormals itself;
      // subnormals on cpu), whose products downstream fall into the subnormal range; the mask holds
      // none (each entry 0 or >= 1e-20) and the gate gradient no subnormal
      const dm = new DifferentiableMask([32, 64], { rng: new Rng(4), initStd: 0.005, kappa: 500, tau: 0.05 });
      const Wt = tf.tidy(() => tf.randomNormal([32, 64], 0, 1, 'float32', 2));
      const { value, grads } = tf.tidy(() => {
        const r = tf.variableGrads(() => dm.sample().mul(Wt).sum() as tf.Scalar, [dm.gate]);
        return { value: dm.sample().dataSync(), grads: r.grads[dm.gate.name]!.dataSync() };
      });
      const raw = tf.tidy(() => tf.softmax(dm.gate.mul(500).div(0.05)).dataSync());
      const tiny = (v: ArrayLike<number>) => Array.from(v).filter((x) => x !== 0 && Math.abs(x) < PROB_FLOOR).length;
      expect(tiny(raw)).toBeGreaterThan(0); // the case this guards against occurs
      expect(tiny(value)).toBe(0);
      expect(subnormal(grads)).toBe(0);
      Wt.dispose();
      dm.dispose();
      z.dispose();
      dy.dispose();
      w.dispose();
    }
    await useBackend('cpu');
  });

  it('candidate index per group reproduces the hard mask', () => {
    const dm = new DifferentiableMask([3, 8], { rng: new Rng(2), initStd: 1 });
    const idx = dm.candidateIndex();
    const S = [
      [1, 1, 0, 0],
      [1, 0, 1, 0],
      [1, 0, 0, 1],
      [0, 1, 1, 0],
      [0, 1, 0, 1],
      [0, 0, 1, 1],
    ];
    const hard = tf.tidy(() => dm.hardMask().dataSync());
    expect(Array.from(hard)).toEqual(Array.from(idx).flatMap((k) => S[k]!));
    dm.dispose();
  });

  it('hard (straight-through) samples are one candidate per group with the soft gradient', () => {
    const S = candidateTensor(2, 4);
    const logits = tf.tensor2d([
      [0.3, -0.1, 0.2, 0.0, 0.1, -0.2],
      [0.0, 0.5, -0.5, 0.2, 0.1, 0.0],
    ]);
    const noise = tf.tensor2d([
      [0.1, 0.2, -0.3, 0.0, 0.4, 0.1],
      [-0.2, 0.0, 0.3, 0.1, -0.1, 0.2],
    ]);
    const w = tf.tensor2d([
      [1, 2, 3, 4],
      [-1, 0.5, 2, -3],
    ]);
    const hard = tf.tidy(() => softMask(logits, noise, 5, 0.7, S, true).dataSync());
    expect(invalidGroups(hard, 2, 4)).toBe(0);
    const gHard = tf.tidy(() =>
      tf
        .grad((l: tf.Tensor) =>
          softMask(l as tf.Tensor2D, noise, 5, 0.7, S, true)
            .mul(w)
            .sum(),
        )(logits)
        .dataSync(),
    );
    const gSoft = tf.tidy(() =>
      tf
        .grad((l: tf.Tensor) =>
          softMask(l as tf.Tensor2D, noise, 5, 0.7, S, false)
            .mul(w)
            .sum(),
        )(logits)
        .dataSync(),
    );
    for (let i = 0; i < gHard.length; i++) expect(gHard[i]).toBeCloseTo(gSoft[i] as number, 6);
    [S, logits, noise, w].forEach((t) => t.dispose());
  });

  it('soft mask gradient matches finite differences', async () => {
    const { checkGradients } = await import('@mmlm/core/testing');
    const S = candidateTensor(2, 4);
    const noise = tf.tensor2d([[0.1, 0.2, -0.3, 0.0, 0.4, 0.1]]);
    const w = tf.tensor2d([[1, 2, 3, 4]]);
    const logits = tf.tensor2d([[0.03, -0.01, 0.02, 0.0, 0.01, -0.02]]);
    checkGradients(
      (xs) =>
        softMask(xs[0] as tf.Tensor2D, noise, 20, 1.3, S)
          .mul(w)
          .sum() as tf.Scalar,
      [logits],
      { eps: 1e-3, rtol: 2e-2, atol: 1e-3 },
    );
    [S, noise, w, logits].forEach((t) => t.dispose());
  });

  it('MaskedLinear computes x (W * M)^T + b with the step sample and trains only the gate', () => {
    const lin = new Linear(8, 3, { rng: new Rng(4) });
    const ml = MaskedLinear.fromLinear(lin, { rng: new Rng(5) });
    expect(ml.namedTrainableParameters().map(([p]) => p)).toEqual(['diff_mask.gate']);
    const x = tf.randomNormal([5, 8], 0, 1, 'float32', 7);
    const mask = tf.tidy(() => ml.diff_mask.sample());
    ml.sampled = mask;
    const got = tf.tidy(() => ml.forward(x).dataSync());
    const want = tf.tidy(() => tf.matMul(x, lin.weight.mul(mask), false, true).add(lin.bias!).dataSync());
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i] as number, 5);
    ml.sampled = null;
    mask.dispose();
    const { grads } = tf.variableGrads(() => ml.forward(x).square().sum() as tf.Scalar);
    expect(Object.keys(grads)).toEqual([ml.diff_mask.gate.name]);
    Object.values(grads).forEach((t) => t.dispose());
    // explicit gradient w.r.t. the frozen weight is not part of the trainable set
    expect(ml.weight.trainable).toBe(false);
    expect(ml.bias!.trainable).toBe(false);
    [x].forEach((t) => t.dispose());
    lin.dispose();
    ml.dispose();
  });

  it('prior injection raises the prior candidate and lowers its complement', () => {
    const dm = new DifferentiableMask([1, 4], { rng: new Rng(1) });
    const before = Array.from(dm.gate.dataSync());
    const mean = before.reduce((a, b) => a + b, 0) / 6;
    const sd = Math.sqrt(before.reduce((a, b) => a + (b - mean) ** 2, 0) / 5);
    dm.initFromPrior(new Uint8Array([0, 1, 0, 1]), 3); // candidate 4 (0101), complement 1 (1010)
    const after = Array.from(dm.gate.dataSync());
    const delta = after.map((v, i) => v - before[i]!);
    [0, -1, 0, 0, 1, 0].forEach((d, i) => expect(delta[i]).toBeCloseTo(3 * sd * d, 6));
    expect(() => dm.initFromPrior(new Uint8Array(8), 3)).toThrow(/prior mask must have shape \[1,4\].*got 8 entries/);
    dm.dispose();
  });
});

describe('sparsify / densify a core TransformerDecoder', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });

  it('masks every block linear (not the head or embeddings), keeps state-dict paths, trains only gates', () => {
    const dec = tinyDecoder();
    const keysBefore = Object.keys(dec.stateDict());
    const paths = blockLinears(dec).map(([p]) => p);
    expect(paths).toEqual([
      'blocks.0.attn.qkv',
      'blocks.0.attn.proj',
      'blocks.0.mlp.fc1',
      'blocks.0.mlp.fc2',
      'blocks.1.attn.qkv',
      'blocks.1.attn.proj',
      'blocks.1.mlp.fc1',
      'blocks.1.mlp.fc2',
    ]);
    const masked = sparsify(dec, { seed: 3 });
    expect(masked.map(([p]) => p)).toEqual(paths);
    expect(dec.blocks.at(0).attn.qkv).toBe(masked[0]![1]); // the field the block calls is swapped too
    const keysAfter = Object.keys(dec.stateDict());
    expect(keysAfter.filter((k) => !k.includes('diff_mask'))).toEqual(keysBefore);
    expect(dec.namedTrainableParameters().map(([p]) => p)).toEqual(paths.map((p) => `${p}.diff_mask.gate`));
    dec.dispose();
  });

  it('no gradient reaches frozen weights and a step leaks no tensors', () => {
    const dec = tinyDecoder();
    sparsify(dec, { seed: 3 });
    const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8]], [1, 8], 'int32');
    const frozen = dec.namedParameters().filter(([p]) => !p.endsWith('gate'));
    const before = frozen.map(([, v]) => v.dataSync().slice());
    const n0 = tf.memory().numTensors;
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => dec.forward(ids).square().mean() as tf.Scalar);
      const names = new Set(dec.trainableParameters().map((v) => v.name));
      expect(Object.keys(grads).every((k) => names.has(k))).toBe(true);
      expect(Object.keys(grads).length).toBe(8);
      for (const g of Object.values(grads)) expect(g.abs().sum().dataSync()[0]).toBeGreaterThan(0);
      const opt = tf.train.sgd(0.1);
      opt.applyGradients(grads);
      opt.dispose();
    });
    expect(tf.memory().numTensors).toBe(n0);
    frozen.forEach(([, v], i) => expect(Array.from(v.dataSync())).toEqual(Array.from(before[i]!)));
    ids.dispose();
    dec.dispose();
  });

  it('densify exports exactly N non-zeros in every group of M on every layer, equal to the eval forward', () => {
    for (const [n, m] of [
      [2, 4],
      [1, 4],
    ] as const) {
      const dec = tinyDecoder(5);
      sparsify(dec, { n, m, seed: 11, initStd: 1 });
      dec.eval();
      const ids = tf.tensor2d([[3, 1, 4, 1, 5, 9, 2, 6]], [1, 8], 'int32');
      const yMasked = tf.tidy(() => dec.forward(ids).dataSync());
      const masks = densify(dec);
      expect(maskedLinears(dec)).toEqual([]);
      for (const [p, l] of blockLinears(dec)) {
        const w = l.weight.dataSync();
        expect(invalidGroups(w, n, m), p).toBe(0);
        expect(invalidGroups(masks.get(p)!, n, m), p).toBe(0);
      }
      const yDense = tf.tidy(() => dec.forward(ids).dataSync());
      for (let i = 0; i < yDense.length; i++) expect(yDense[i]).toBeCloseTo(yMasked[i] as number, 5);
      ids.dispose();
      dec.dispose();
    }
  });

  it('hard masks applied to a dense copy equal the densified model', () => {
    const a = tinyDecoder(2);
    const b = tinyDecoder(2);
    sparsify(a, { seed: 1, initStd: 1 });
    const masks = hardMasks(a);
    densify(a);
    applyMasks(b, masks);
    for (const [p, l] of blockLinears(a)) {
      const lb = blockLinears(b).find(([q]) => q === p)![1];
      expect(Array.from(l.weight.dataSync())).toEqual(Array.from(lb.weight.dataSync()));
    }
    a.dispose();
    b.dispose();
  });

  it('a magnitude prior dominates the initial hard mask: mostly at alpha=3, always at alpha=50', () => {
    for (const alpha of [3, 50]) {
      const dec = tinyDecoder(4);
      const priors = new Map(blockLinears(dec).map(([p, l]) => [p, magnitudeMask(l.weight.dataSync(), l.outFeatures, l.inFeatures)]));
      sparsify(dec, { seed: 2 });
      injectPrior(dec, priors, alpha);
      let same = 0;
      let total = 0;
      for (const [p, mask] of hardMasks(dec)) {
        const prior = priors.get(p)!;
        for (let g = 0; g < mask.length / 4; g++) {
          total++;
          if ([0, 1, 2, 3].every((j) => mask[4 * g + j] === prior[4 * g + j])) same++;
        }
      }
      // alpha=3: the prior candidate leads each of the 4 half-overlap ones by N(3 sigma, 2 sigma^2): P ~ 0.98 each
      if (alpha === 3) expect(same / total).toBeGreaterThan(0.9);
      else expect(same).toBe(total);
      dec.dispose();
    }
  });

  it('runs on every test backend and the backends agree', async () => {
    const outs: Float32Array[] = [];
    for (const b of TEST_BACKENDS) {
      await useBackend(b);
      const dec = tinyDecoder(6);
      sparsify(dec, { seed: 6 });
      const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
      outs.push(tf.tidy(() => dec.forward(ids).dataSync() as Float32Array));
      ids.dispose();
      dec.dispose();
    }
    await useBackend('cpu');
    for (let i = 0; i < outs[0]!.length; i++) expect(Math.abs(outs[0]![i]! - outs[1]![i]!)).toBeLessThan(1e-4);
  });
});

describe('bad input', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });

  it('invalid N:M', () => {
    expect(() => validateNM(4, 4)).toThrow(/1 <= N < M, got N=4, M=4/);
    expect(() => validateNM(0, 4)).toThrow(/got N=0, M=4/);
    expect(() => validateNM(2.5, 4)).toThrow(/got N=2.5/);
    expect(() => validateNM(8, 16)).toThrow(/12870 candidate masks/);
    expect(() => new DifferentiableMask([4, 8], { n: 5, m: 4 })).toThrow(/got N=5, M=4/);
  });

  it('a layer whose input dimension is not divisible by M', () => {
    expect(() => new MaskedLinear(6, 3, { name: 'blocks.0.attn.qkv' })).toThrow(
      /MaskedLinear blocks\.0\.attn\.qkv: input dimension 6 must be divisible by M=4/,
    );
    const dec = new TransformerDecoder({ vocabSize: 5, dim: 6, numLayers: 1, numHeads: 2, maxSeqLen: 4, seed: 1 });
    expect(() => sparsify(dec)).toThrow(/layer blocks\.0\.attn\.qkv has input dimension 6, which is not divisible by M=4/);
    expect(dec.trainableParameters().length).toBeGreaterThan(0); // nothing was changed
    dec.dispose();
  });

  it('masks of the wrong shape for a model', () => {
    const dec = tinyDecoder();
    expect(() => applyMasks(dec, new Map([['blocks.0.attn.qkv', new Uint8Array(10)]]))).toThrow(
      /mask for blocks\.0\.attn\.qkv has 10 entries, expected 768 \(\[48, 16\]\)/,
    );
    expect(() => applyMasks(dec, new Map([['blocks.9.attn.qkv', new Uint8Array(10)]]))).toThrow(/no block linear "blocks\.9\.attn\.qkv"/);
    sparsify(dec);
    expect(() => injectPrior(dec, new Map(), 3)).toThrow(/no prior mask for layer blocks\.0\.attn\.qkv/);
    dec.dispose();
  });

  it('softMask shapes', () => {
    const S = candidateTensor(2, 4);
    expect(() => softMask(tf.zeros([2, 5]) as tf.Tensor2D, null, 1, 1, S)).toThrow(/logits must be \[G, 6\].*got shape \[2,5\]/);
    expect(() => softMask(tf.zeros([2, 6]) as tf.Tensor2D, tf.zeros([3, 6]) as tf.Tensor2D, 1, 1, S)).toThrow(/gumbel noise/);
    expect(() => softMask(tf.zeros([2, 6]) as tf.Tensor2D, null, 1, 0, S)).toThrow(/tau must be > 0, got 0/);
    S.dispose();
  });
});
