import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  checkGradients,
  clipGradNorm,
  constantSchedule,
  cosineLoss,
  crossEntropy,
  EMA,
  infoNCE,
  Linear,
  manualSeed,
  mse,
  paramGroups,
  TEST_BACKENDS,
  tf,
  useBackend,
  valueAndGrads,
  warmupCosine,
  warmupLinear,
} from '../../src/index.js';

/** torch.optim.AdamW on one scalar, in float64 (the reference rule, written out). */
function adamwRef(p0: number, grads: number[], lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  let p = p0;
  let m = 0;
  let v = 0;
  const out: number[] = [];
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    p -= (lr * (m / (1 - b1 ** t))) / (Math.sqrt(v / (1 - b2 ** t)) + eps);
    out.push(p);
  });
  return out;
}

for (const backend of TEST_BACKENDS) {
  describe(`optim on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('AdamW matches the torch update rule step by step (decay, bias correction)', () => {
      const v = tf.variable(tf.tensor1d([0.5, -2]));
      const opt = new AdamW([['w', v]], { lr: 0.1, weightDecay: 0.05 });
      const g = [
        [0.3, -1],
        [-0.2, 0.5],
        [1.5, 0.01],
      ];
      for (const gs of g) opt.step({ w: tf.tensor1d(gs) });
      const exp0 = adamwRef(
        0.5,
        g.map((x) => x[0]!),
        0.1,
        0.05,
      );
      const exp1 = adamwRef(
        -2,
        g.map((x) => x[1]!),
        0.1,
        0.05,
      );
      const got = v.dataSync();
      expect(got[0]).toBeCloseTo(exp0[2]!, 5);
      expect(got[1]).toBeCloseTo(exp1[2]!, 5);
      expect(opt.t).toBe(3);
    });

    it('parameter groups: lr multiplier and no weight decay for rank < 2', () => {
      manualSeed(1);
      const lin = new Linear(2, 2);
      lin.weight.assign(
        tf.tensor2d([
          [1, 1],
          [1, 1],
        ]),
      );
      lin.bias!.assign(tf.tensor1d([1, 1]));
      const groups = paramGroups(lin, { lrMultipliers: [[(p) => p === 'weight', 10]] });
      expect(groups.map((g) => [g.params.map(([p]) => p), g.lrMultiplier, g.weightDecay])).toEqual([
        [['weight'], 10, undefined],
        [['bias'], 1, 0],
      ]);
      const opt = new AdamW(groups, { lr: 0.01, weightDecay: 0.1 });
      opt.step({ weight: tf.zeros([2, 2]), bias: tf.zeros([2]) }); // zero grads: only decay acts
      expect(lin.weight.dataSync()[0]).toBeCloseTo(1 - 0.01 * 10 * 0.1, 6);
      expect(lin.bias!.dataSync()[0]).toBe(1);
    });

    it('state dict round trip continues identically, and bad state is rejected', () => {
      const make = () => tf.variable(tf.tensor1d([1, 2, 3]));
      const a = make();
      const b = make();
      const oa = new AdamW([['x', a]], { lr: 0.1 });
      const ob = new AdamW([['x', b]], { lr: 0.1 });
      oa.step({ x: tf.tensor1d([1, -1, 0.5]) });
      ob.step({ x: tf.tensor1d([1, -1, 0.5]) });
      const st = oa.stateDict();
      const oc = new AdamW([['x', b]], { lr: 0.5 });
      oc.loadStateDict({ tensors: Object.fromEntries(Object.entries(st.tensors).map(([k, t]) => [k, t.clone()])), json: st.json });
      expect(oc.t).toBe(1);
      expect(oc.lr).toBe(0.1);
      oa.step({ x: tf.tensor1d([0.2, 0.2, 0.2]) });
      oc.step({ x: tf.tensor1d([0.2, 0.2, 0.2]) });
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      expect(() => oc.loadStateDict({ tensors: {}, json: st.json })).toThrow(/missing x.exp_avg/);
      expect(() => oc.loadStateDict({ tensors: { 'x.exp_avg': tf.zeros([2]), 'x.exp_avg_sq': tf.zeros([3]) }, json: st.json })).toThrow(
        /x.exp_avg expected \[3\] got \[2\]/,
      );
      expect(() => oc.step({ x: tf.zeros([4]) })).toThrow(/gradient of "x" has shape \[4\], expected \[3\]/);
      expect(() => new AdamW([['x', a]], { beta1: 1 })).toThrow(/beta1 must be in \[0, 1\), got 1/);
    });

    it('a training step leaks no tensors', () => {
      manualSeed(2);
      const lin = new Linear(4, 3);
      const opt = new AdamW(lin, { lr: 1e-2 });
      const x = tf.randomNormal([5, 4], 0, 1, 'float32', 1);
      const step = () => {
        const { loss, grads } = valueAndGrads(lin, () => lin.forward(x).square().mean() as tf.Scalar);
        const norm = clipGradNorm(grads, 1);
        opt.step(grads);
        for (const g of grads.values()) g.dispose();
        loss.dispose();
        norm.dispose();
      };
      step();
      const n = tf.memory().numTensors;
      step();
      expect(tf.memory().numTensors).toBe(n);
    });

    it('clipGradNorm scales to maxNorm and reports the original norm', () => {
      const grads = new Map<string, tf.Tensor>([
        ['a', tf.tensor1d([3, 0])],
        ['b', tf.tensor1d([4])],
      ]);
      const n = clipGradNorm(grads, 1);
      expect(n.dataSync()[0]).toBeCloseTo(5, 5);
      expect(grads.get('a')!.dataSync()[0]).toBeCloseTo(3 / 5, 5);
      expect(grads.get('b')!.dataSync()[0]).toBeCloseTo(4 / 5, 5);
      const small = new Map<string, tf.Tensor>([['a', tf.tensor1d([0.1])]]);
      clipGradNorm(small, 1);
      expect(small.get('a')!.dataSync()[0]).toBeCloseTo(0.1, 7);
    });

    it('cross-entropy: closed form, ignore index, z-loss, smoothing, gradients', () => {
      const logits = tf.tensor2d([
        [1, 2, 3],
        [0, 0, 0],
        [5, 1, -1],
      ]);
      const y = tf.tensor1d([2, -100, 0], 'int32');
      const lse = (r: number[]) => Math.log(r.reduce((a, x) => a + Math.exp(x), 0));
      const l0 = lse([1, 2, 3]) - 3;
      const l2 = lse([5, 1, -1]) - 5;
      expect(crossEntropy(logits, y).dataSync()[0]).toBeCloseTo((l0 + l2) / 2, 5);
      expect(crossEntropy(logits, y, { reduction: 'sum' }).dataSync()[0]).toBeCloseTo(l0 + l2, 5);
      expect(Array.from(crossEntropy(logits, y, { reduction: 'none' }).dataSync())[1]).toBe(0);
      expect(crossEntropy(logits, y, { zLoss: 1e-2 }).dataSync()[0]).toBeCloseTo(
        (l0 + l2 + 1e-2 * (lse([1, 2, 3]) ** 2 + lse([5, 1, -1]) ** 2)) / 2,
        5,
      );
      const smooth = (r: number[], k: number, e: number) =>
        (1 - e) * (lse(r) - r[k]!) + e * (lse(r) - r.reduce((a, b) => a + b) / r.length);
      expect(crossEntropy(logits, y, { labelSmoothing: 0.1 }).dataSync()[0]).toBeCloseTo(
        (smooth([1, 2, 3], 2, 0.1) + smooth([5, 1, -1], 0, 0.1)) / 2,
        5,
      );
      expect(crossEntropy(logits, tf.tensor1d([-100, -100, -100], 'int32')).dataSync()[0]).toBe(0);
      checkGradients(([l]) => crossEntropy(l!, y, { zLoss: 1e-2 }) as tf.Scalar, [logits], { atol: 1e-3 });
      expect(() => crossEntropy(logits, tf.tensor1d([0, 1, 2]))).toThrow(/targets must be int32, got float32/);
      expect(() => crossEntropy(logits, tf.tensor1d([0, 1], 'int32'))).toThrow(/logits \[3,3\] must be targets \[2\] plus a class axis/);
    });

    it('mse, cosine and symmetric InfoNCE match hand computations', () => {
      expect(mse(tf.tensor1d([1, 2]), tf.tensor1d([0, 0])).dataSync()[0]).toBeCloseTo(2.5, 6);
      expect(cosineLoss(tf.tensor2d([[1, 0]]), tf.tensor2d([[1, 1]])).dataSync()[0]).toBeCloseTo(1 - Math.SQRT1_2, 6);
      // a = [[1,0],[0,1]], b = [[1,0],[1,1]/sqrt2]: cos matrix [[1, 1/sqrt2],[0, 1/sqrt2]]
      const tau = 0.5;
      const c = [
        [1, Math.SQRT1_2],
        [0, Math.SQRT1_2],
      ];
      const ce = (row: number[], k: number, e: number) => {
        const z = row.map((x) => x / tau);
        const l = Math.log(z.reduce((a, x) => a + Math.exp(x), 0));
        return (1 - e) * (l - z[k]!) + e * (l - z.reduce((a, x) => a + x, 0) / z.length);
      };
      for (const e of [0, 0.1]) {
        const ab = (ce(c[0]!, 0, e) + ce(c[1]!, 1, e)) / 2;
        const ba = (ce([c[0]![0]!, c[1]![0]!], 0, e) + ce([c[0]![1]!, c[1]![1]!], 1, e)) / 2;
        const got = infoNCE(
          tf.tensor2d([
            [2, 0],
            [0, 3],
          ]),
          tf.tensor2d([
            [1, 0],
            [1, 1],
          ]),
          { temperature: tau, labelSmoothing: e },
        );
        expect(got.dataSync()[0]).toBeCloseTo((ab + ba) / 2, 5);
      }
    });
  });
}

describe('schedules and EMA', () => {
  it('warmup + cosine / linear / constant at their boundaries', () => {
    const c = warmupCosine({ peak: 1, min: 0.1, warmup: 10, total: 110 });
    expect(c(0)).toBeCloseTo(0.1, 10);
    expect(c(9)).toBeCloseTo(1, 10);
    expect(c(10)).toBeCloseTo(1, 10);
    expect(c(60)).toBeCloseTo(0.55, 10);
    expect(c(110)).toBeCloseTo(0.1, 10);
    expect(c(500)).toBeCloseTo(0.1, 10);
    const l = warmupLinear({ peak: 2, warmup: 0, total: 4 });
    expect([0, 1, 2, 4].map(l)).toEqual([2, 1.5, 1, 0]);
    expect(constantSchedule({ peak: 3, warmup: 3 })(1)).toBe(2);
    expect(() => warmupCosine({ peak: 1, warmup: 5, total: 3 })).toThrow(/warmup \(5\) must not exceed total \(3\)/);
  });

  it('EMA tracks decay*shadow + (1-decay)*p', async () => {
    await useBackend('cpu');
    const lin = new Linear(1, 1, { bias: false });
    lin.weight.assign(tf.tensor2d([[0]]));
    const ema = new EMA(lin, 0.9);
    lin.weight.assign(tf.tensor2d([[1]]));
    ema.update();
    ema.update();
    expect(ema.stateDict().weight!.dataSync()[0]).toBeCloseTo(1 - 0.81, 6);
    ema.copyTo();
    expect(lin.weight.dataSync()[0]).toBeCloseTo(0.19, 6);
  });
});
