import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AdamW,
  clipGradNorm,
  constantSchedule,
  EMA,
  Linear,
  Module,
  manualSeed,
  paramGroups,
  tf,
  valueAndGrads,
  warmupCosine,
  warmupLinear,
} from '../../src/index.js';
import { TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const val = (t: tf.Tensor): number[] => Array.from(t.dataSync());

/** Counts explicit host reads (dataSync / data / arraySync / array) made while `f` runs. */
function hostReads(f: () => void): number {
  const spies = (['dataSync', 'data', 'arraySync', 'array'] as const).map((m) => vi.spyOn(tf.Tensor.prototype, m));
  try {
    f();
    return spies.reduce((a, s) => a + s.mock.calls.length, 0);
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

class Two extends Module {
  a: Linear;
  b: Linear;
  constructor() {
    super();
    this.a = this.module('a', new Linear(2, 3));
    this.b = this.module('b', new Linear(3, 1, { bias: false }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.b.forward(this.a.forward(x));
  }
}

for (const backend of TEST_BACKENDS) {
  describe(`AdamW on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    it('two steps with a sign flip: 0.9, then 0.9 + 0.1/19 (hand-derived torch numbers)', () => {
      // lr 0.1, wd 0, betas (0.9, 0.999), p0 = 1, g = 1 then -1.
      // t=1: m = 0.1, v = 0.001, mhat = 1, vhat = 1 -> p = 1 - 0.1 * 1 / (1 + 1e-8) = 0.9
      // t=2: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999 = 1 - 0.999^2 -> vhat = 1,
      //      mhat = -0.01 / (1 - 0.81) = -1/19 -> p = 0.9 + 0.1/19
      const p = tf.variable(tf.scalar(1));
      const opt = new AdamW([['p', p]], { lr: 0.1, weightDecay: 0 });
      opt.step({ p: tf.scalar(1) });
      expect(val(p)[0]).toBeCloseTo(0.9, 6);
      opt.step({ p: tf.scalar(-1) });
      expect(val(p)[0]).toBeCloseTo(0.9 + 0.1 / 19, 6);
      expect(opt.t).toBe(2);
      opt.dispose();
      p.dispose();
    });

    it('constant gradient: closed form p_T = a^T p0 - c (1 - a^T) / (1 - a), a = 1 - lr wd, c = lr g / (|g| + eps)', () => {
      // with a constant g, mhat = g and vhat = g^2 at every t (bias correction is exact)
      const [lr, wd, g, p0, T] = [0.1, 0.1, 0.5, 1, 3];
      const a = 1 - lr * wd;
      const c = (lr * g) / (Math.abs(g) + 1e-8);
      const expected = a ** T * p0 - (c * (1 - a ** T)) / (1 - a); // 0.970299 - 0.29701 = 0.673289
      expect(expected).toBeCloseTo(0.673289, 6);
      const p = tf.variable(tf.tensor1d([p0, -p0]));
      const opt = new AdamW([['p', p]], { lr, weightDecay: wd });
      for (let t = 0; t < T; t++) opt.step({ p: tf.tensor1d([g, -g]) });
      expect(val(p)[0]).toBeCloseTo(expected, 6);
      expect(val(p)[1]).toBeCloseTo(-expected, 6);
      opt.dispose();
    });

    it('weight decay is decoupled: zero gradient gives p0 (1 - lr wd)^t, not an Adam-normalised step', () => {
      // coupled L2 (Adam + wd in the gradient) would move p by ~lr per step: 1 -> 0.9 -> 0.8
      const p = tf.variable(tf.tensor1d([1, -2]));
      const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.1 });
      for (let t = 0; t < 2; t++) opt.step(new Map([[p, tf.zeros([2])]]));
      expect(val(p)[0]).toBeCloseTo(0.99 ** 2, 6);
      expect(val(p)[1]).toBeCloseTo(-2 * 0.99 ** 2, 6);
      expect(opt.paths()).toEqual([p.name]);
      opt.dispose();
    });

    it('matches a float64 transcription of the torch rule over three irregular steps', () => {
      const ref = (p0: number, gs: number[], lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number => {
        let [p, m, v] = [p0, 0, 0];
        gs.forEach((g, i) => {
          const t = i + 1;
          p *= 1 - lr * wd;
          m = b1 * m + (1 - b1) * g;
          v = b2 * v + (1 - b2) * g * g;
          p -= ((lr / (1 - b1 ** t)) * m) / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps);
        });
        return p;
      };
      const gs = [
        [0.3, -1],
        [-0.2, 0.5],
        [1.5, 0.01],
      ];
      const p = tf.variable(tf.tensor1d([0.5, -2]));
      const opt = new AdamW([['w', p]], { lr: 0.05, weightDecay: 0.05, beta1: 0.8, beta2: 0.99 });
      for (const g of gs) opt.step({ w: tf.tensor1d(g) });
      const [x0, x1] = val(p);
      const g0 = gs.map((g) => g[0]!);
      const g1 = gs.map((g) => g[1]!);
      expect(x0).toBeCloseTo(ref(0.5, g0, 0.05, 0.05, 0.8, 0.99), 6);
      expect(x1).toBeCloseTo(ref(-2, g1, 0.05, 0.05, 0.8, 0.99), 6);
      opt.dispose();
    });

    it('a parameter without a gradient keeps its own step count (torch per-parameter state)', () => {
      const a = tf.variable(tf.scalar(1));
      const b = tf.variable(tf.scalar(1));
      const opt = new AdamW(
        [
          ['a', a],
          ['b', b],
        ],
        { lr: 0.1, weightDecay: 0 },
      );
      opt.step({ a: tf.scalar(1) });
      expect(val(b)[0]).toBe(1);
      opt.step({ a: tf.scalar(1), b: tf.scalar(-3) });
      // b's first step: bias correction at t = 1 gives exactly lr * sign(g)
      expect(val(b)[0]).toBeCloseTo(1.1, 6);
      expect((opt.stateDict().json as { steps: Record<string, number> }).steps).toEqual({ a: 2, b: 1 });
      opt.dispose();
    });

    it('paramGroups: lr multiplier and no decay for rank < 2; group lr = lr * multiplier in decay and step', () => {
      manualSeed(1);
      const lin = new Linear(2, 2);
      lin.weight.assign(tf.ones([2, 2]));
      lin.bias!.assign(tf.ones([2]));
      const groups = paramGroups(lin, { lrMultipliers: [[(p) => p === 'weight', 10]] });
      expect(groups.map((g) => [g.params.map(([p]) => p), g.lrMultiplier, g.weightDecay])).toEqual([
        [['weight'], 10, undefined],
        [['bias'], 1, 0],
      ]);
      const opt = new AdamW(groups, { lr: 0.01, weightDecay: 0.1 });
      opt.step({ weight: tf.zeros([2, 2]), bias: tf.zeros([2]) });
      expect(val(lin.weight)[0]).toBeCloseTo(1 - 0.01 * 10 * 0.1, 6); // decay with the group lr
      expect(val(lin.bias!)[0]).toBe(1); // no decay
      opt.step({ weight: tf.fill([2, 2], 2), bias: tf.fill([2], -2) });
      // t = 2 (the zero gradient counted as step 1): m = 0.1 * 2 = 0.2, v = 0.001 * 4 = 0.004,
      // mhat / sqrt(vhat) = (0.2 / 0.19) / sqrt(0.004 / 0.001999) = 0.744137...
      const u = 0.2 / 0.19 / Math.sqrt(0.004 / 0.001999);
      expect(u).toBeCloseTo(0.744137, 6);
      expect(val(lin.weight)[0]).toBeCloseTo(0.99 * 0.99 - 0.1 * u, 6);
      expect(val(lin.bias!)[0]).toBeCloseTo(1 + 0.01 * u, 6);
      opt.dispose();
      lin.dispose();
    });

    it('groups of bare variables and a custom noDecay rule', () => {
      const w = tf.variable(tf.ones([2, 2]));
      const g = tf.variable(tf.ones([2]));
      const opt = new AdamW(
        [
          { params: [w], lrMultiplier: 2 },
          { params: [g], weightDecay: 0 },
        ],
        { lr: 0.1, weightDecay: 0.5 },
      );
      opt.step({ [w.name]: tf.zeros([2, 2]), [g.name]: tf.zeros([2]) }); // keyed by Variable.name, as tf.variableGrads
      expect(val(w)[0]).toBeCloseTo(1 - 0.2 * 0.5, 6);
      expect(val(g)[0]).toBe(1);
      opt.dispose();
      manualSeed(1);
      const lin = new Linear(2, 2);
      const groups = paramGroups(lin, { noDecay: (path) => path === 'weight' });
      expect(groups.map((x) => [x.params.map(([p]) => p), x.weightDecay])).toEqual([
        [['weight'], 0],
        [['bias'], undefined],
      ]);
      lin.dispose();
    });

    it('state dict: a fresh optimizer on fresh variables continues exactly (restart), JSON survives stringify', () => {
      manualSeed(3);
      const x = tf.tensor2d([
        [1, -1],
        [0.5, 2],
      ]);
      const loss = (m: Two) => () => m.forward(x).square().mean() as tf.Scalar;
      const run = (m: Two, opt: AdamW, steps: number) => {
        for (let i = 0; i < steps; i++) {
          const { loss: l, grads } = valueAndGrads(m, loss(m));
          opt.step(grads);
          l.dispose();
          for (const g of grads.values()) g.dispose();
        }
      };
      const a = new Two();
      const sdA = Object.fromEntries(Object.entries(a.stateDict()).map(([k, t]) => [k, t.clone()]));
      const oa = new AdamW(paramGroups(a), { lr: 0.05 });
      run(a, oa, 2);
      // "restart": copy weights and optimizer state through host arrays and JSON
      const host = (r: Record<string, tf.Tensor>) => Object.entries(r).map(([k, t]) => [k, Array.from(t.dataSync()), t.shape] as const);
      const weights = host(a.stateDict());
      const st = oa.stateDict();
      const tensors = host(st.tensors);
      const json = JSON.parse(JSON.stringify(st.json));
      const b = new Two();
      b.loadStateDict(Object.fromEntries(weights.map(([k, v, s]) => [k, tf.tensor(v, s)])));
      const ob = new AdamW(paramGroups(b), { lr: 0.5 });
      ob.loadStateDict({ tensors: Object.fromEntries(tensors.map(([k, v, s]) => [k, tf.tensor(v, s)])), json });
      expect(ob.t).toBe(2);
      expect(ob.lr).toBe(0.05);
      run(a, oa, 2);
      run(b, ob, 2);
      for (const [k, t] of Object.entries(a.stateDict())) expect(val(b.stateDict()[k]!)).toEqual(val(t));
      // the run really moved: the weights differ from the initial ones
      expect(val(a.stateDict()['a.weight']!)).not.toEqual(val(sdA['a.weight']!));
      expect(Object.keys(st.tensors).sort()).toEqual([
        'a.bias.exp_avg',
        'a.bias.exp_avg_sq',
        'a.weight.exp_avg',
        'a.weight.exp_avg_sq',
        'b.weight.exp_avg',
        'b.weight.exp_avg_sq',
      ]);
      oa.dispose();
      ob.dispose();
      a.dispose();
      b.dispose();
    });

    it('a training step leaks no tensors and reads nothing to the host', () => {
      manualSeed(2);
      const lin = new Linear(4, 3);
      const opt = new AdamW(paramGroups(lin), { lr: 1e-2 });
      const ema = new EMA(lin, 0.9);
      const x = tf.randomNormal([5, 4], 0, 1, 'float32', 1);
      const step = () =>
        tf.tidy(() => {
          const { grads } = valueAndGrads(lin, () => lin.forward(x).square().mean() as tf.Scalar);
          clipGradNorm(grads, 0.1);
          opt.step(grads);
          ema.update();
        });
      step();
      const n = tf.memory().numTensors;
      expect(hostReads(() => x.dataSync())).toBe(1); // the probe sees reads
      expect(hostReads(step)).toBe(0);
      expect(tf.memory().numTensors).toBe(n);
      opt.dispose();
      ema.dispose();
      lin.dispose();
      x.dispose();
    });

    it('clipGradNorm: torch rule, returns the norm before clipping, Map / Record / Variable keys', () => {
      const grads = new Map<string, tf.Tensor>([
        ['a', tf.tensor1d([3, 0])],
        ['b', tf.tensor1d([4])],
      ]);
      const n = clipGradNorm(grads, 1);
      expect(val(n)[0]).toBeCloseTo(5, 5);
      // scale = 1 / (5 + 1e-6)
      expect(val(grads.get('a')!)[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
      expect(val(grads.get('b')!)[0]).toBeCloseTo(4 / (5 + 1e-6), 6);
      const rec = { a: tf.tensor1d([0.1, 0.2]) };
      expect(val(clipGradNorm(rec, 1))[0]).toBeCloseTo(Math.sqrt(0.05), 6);
      expect(val(rec.a)).toEqual([expect.closeTo(0.1, 7), expect.closeTo(0.2, 7)]); // below maxNorm: unchanged
      const v = tf.variable(tf.zeros([2]));
      const byVar = new Map([[v, tf.tensor1d([0, 2])]]);
      clipGradNorm(byVar, 0.5);
      expect(val(byVar.get(v)!)[1]).toBeCloseTo(0.5, 5);
      expect(val(clipGradNorm(new Map(), 1))).toEqual([0]);
      expect(() => clipGradNorm(grads, 0)).toThrow(/maxNorm must be a number > 0, got 0/);
    });

    it('valueAndGrads: gradients by path for trainable parameters only, inside tidy without leaks', () => {
      const lin = new Linear(2, 1);
      lin.weight.assign(tf.tensor2d([[2, -1]]));
      lin.bias!.assign(tf.tensor1d([0.5]));
      const x = tf.tensor2d([
        [1, 2],
        [3, 4],
      ]);
      // L = sum(W x + b): dL/dW = column sums of x = [4, 6], dL/db = 2, L = (0 + 0.5) + (2 + 0.5) = 3
      const n0 = tf.memory().numTensors;
      const r = tf.tidy(() => {
        const { loss, grads } = valueAndGrads(lin, () => lin.forward(x).sum() as tf.Scalar);
        return { loss: val(loss), w: val(grads.get('weight')!), b: val(grads.get('bias')!), keys: [...grads.keys()] };
      });
      expect(tf.memory().numTensors).toBe(n0);
      expect(r).toEqual({ loss: [3], w: [4, 6], b: [2], keys: ['weight', 'bias'] });
      lin.freeze((p) => p === 'bias');
      const { loss, grads } = valueAndGrads(lin, () => lin.forward(x).sum() as tf.Scalar);
      expect([...grads.keys()]).toEqual(['weight']);
      loss.dispose();
      for (const g of grads.values()) g.dispose();
      lin.freeze();
      expect(() => valueAndGrads(lin, () => lin.forward(x).sum() as tf.Scalar)).toThrow(/Linear has no trainable parameters/);
      lin.dispose();
    });

    it('bad input gives errors naming the thing, the expected and the actual value', () => {
      const a = tf.variable(tf.tensor1d([1, 2, 3]));
      expect(() => new AdamW([], {})).toThrow(/empty parameter list/);
      expect(() => new AdamW([['x', a]], { beta1: 1 })).toThrow(/beta1 must be in \[0, 1\), got 1/);
      expect(() => new AdamW([['x', a]], { lr: -1 })).toThrow(/lr must be a finite number >= 0, got -1/);
      expect(() => new AdamW([['x', a]], { eps: Number.NaN })).toThrow(/eps must be a finite number >= 0, got NaN/);
      expect(() => new AdamW([{ params: [['x', a]], lrMultiplier: -2 }])).toThrow(
        /group 0 lrMultiplier must be a finite number >= 0, got -2/,
      );
      expect(
        () =>
          new AdamW([
            ['x', a],
            ['x', tf.variable(tf.zeros([1]))],
          ]),
      ).toThrow(/parameter "x" appears twice/);
      expect(
        () =>
          new AdamW([
            ['x', a],
            ['y', a],
          ]),
      ).toThrow(/the variable of "y" is also given as "x"/);
      expect(() => new AdamW([['i', tf.variable(tf.tensor1d([1], 'int32'))]])).toThrow(/parameter "i" must be float32, got int32/);
      expect(() => new AdamW([['t', tf.zeros([1]) as tf.Variable]])).toThrow(
        /parameter "t" must be a tf.Variable, got a float32 tensor \[1\]/,
      );
      const opt = new AdamW([['x', a]], { lr: 0.1 });
      expect(() => opt.setLr(Number.POSITIVE_INFINITY)).toThrow(/setLr: lr must be a finite number >= 0, got Infinity/);
      expect(() => opt.step({ x: tf.zeros([4]) })).toThrow(/gradient of "x" has shape \[4\], expected \[3\]/);
      expect(() => opt.step({ x: tf.zeros([3], 'int32') })).toThrow(/gradient of "x" must be float32, got int32/);
      expect(() => opt.step({ y: tf.zeros([3]) })).toThrow(/none of the 1 gradients matches a parameter; expected keys like "x", got "y"/);
      expect(opt.t).toBe(0); // failed steps change nothing
      expect(val(a)).toEqual([1, 2, 3]);
      const st = opt.stateDict();
      const t3 = () => tf.zeros([3]);
      expect(() => opt.loadStateDict({ tensors: st.tensors, json: { kind: 'SGD', t: 0 } })).toThrow(/json.kind must be "AdamW", got "SGD"/);
      expect(() => opt.loadStateDict({ tensors: st.tensors, json: { kind: 'AdamW', t: 1.5 } })).toThrow(
        /json.t must be an integer >= 0, got 1.5/,
      );
      expect(() => opt.loadStateDict({ tensors: {}, json: st.json })).toThrow(/missing x.exp_avg; missing x.exp_avg_sq/);
      expect(() => opt.loadStateDict({ tensors: { 'x.exp_avg': tf.zeros([2]), 'x.exp_avg_sq': t3() }, json: st.json })).toThrow(
        /x.exp_avg expected shape \[3\] got \[2\]/,
      );
      expect(() => opt.loadStateDict({ tensors: { 'x.exp_avg': t3(), 'x.exp_avg_sq': t3(), 'y.exp_avg': t3() }, json: st.json })).toThrow(
        /unexpected y.exp_avg/,
      );
      expect(() => opt.loadStateDict({ tensors: st.tensors, json: { kind: 'AdamW', t: 1, steps: { x: -1 } } })).toThrow(
        /json.steps\["x"\] expected an integer >= 0 got -1/,
      );
      opt.dispose();
    });
  });
}

describe('schedules', () => {
  it('warmup + cosine at its boundaries: step 0, warmup end, quarter, middle, end, past the end', () => {
    const c = warmupCosine({ peak: 1, min: 0.1, warmup: 10, total: 110 });
    expect(c(0)).toBeCloseTo(0.1, 12); // peak * 1 / warmup
    expect(c(4)).toBeCloseTo(0.5, 12);
    expect(c(9)).toBeCloseTo(1, 12); // last warmup step reaches the peak
    expect(c(10)).toBeCloseTo(1, 12); // cos(0)
    expect(c(35)).toBeCloseTo(0.1 + 0.45 * (1 + Math.SQRT1_2), 12); // q = 1/4
    expect(c(60)).toBeCloseTo(0.55, 12); // q = 1/2
    expect(c(110)).toBeCloseTo(0.1, 12);
    expect(c(500)).toBeCloseTo(0.1, 12);
    expect(warmupCosine({ peak: 2, warmup: 0, total: 4 })(2)).toBeCloseTo(1, 12);
  });

  it('warmup + linear decay, and constant with warmup', () => {
    const l = warmupLinear({ peak: 2, warmup: 0, total: 4 });
    expect([0, 1, 2, 3, 4, 9].map(l)).toEqual([2, 1.5, 1, 0.5, 0, 0]);
    const lw = warmupLinear({ peak: 1, min: 0.5, warmup: 2, total: 4 });
    expect([0, 1, 2, 3, 4].map(lw)).toEqual([0.5, 1, 1, 0.75, 0.5]);
    const k = constantSchedule({ peak: 3, warmup: 3 });
    expect([0, 1, 2, 3, 100].map(k)).toEqual([1, 2, 3, 3, 3]);
    expect(constantSchedule({ peak: 3 })(0)).toBe(3);
    expect(warmupCosine({ peak: 1, warmup: 3, total: 3 })(3)).toBe(0); // no decay span: min
  });

  it('bad schedule arguments', () => {
    expect(() => warmupCosine({ peak: 1, warmup: 5, total: 3 })).toThrow(/warmupCosine: warmup \(5\) must not exceed total \(3\)/);
    expect(() => warmupLinear({ peak: 1, warmup: 1.5, total: 3 })).toThrow(/warmup must be an integer >= 0, got 1.5/);
    expect(() => warmupCosine({ peak: 1, warmup: 0, total: 0 })).toThrow(/total must be an integer >= 1, got 0/);
    expect(() => warmupCosine({ peak: -1, warmup: 0, total: 3 })).toThrow(/peak must be a finite number >= 0, got -1/);
    expect(() => warmupCosine({ peak: 1, min: Number.NaN, warmup: 0, total: 3 })).toThrow(/min must be a finite number >= 0, got NaN/);
    expect(() => warmupCosine({ peak: 1, warmup: 0, total: 3 })(-1)).toThrow(/step must be a finite number >= 0, got -1/);
    expect(() => constantSchedule({ peak: 1, warmup: -1 })).toThrow(/constantSchedule: warmup must be an integer >= 0, got -1/);
  });
});

describe('EMA', () => {
  beforeAll(async () => useBackend('cpu'));

  it('shadow_n = p + (shadow_0 - p) decay^n for a constant p; copyTo and swap', () => {
    const lin = new Linear(1, 1, { bias: false });
    lin.weight.assign(tf.tensor2d([[0]]));
    const ema = new EMA(lin, 0.9);
    lin.weight.assign(tf.tensor2d([[1]]));
    ema.update();
    ema.update();
    expect(ema.updates).toBe(2);
    expect(val(ema.stateDict().weight!)[0]).toBeCloseTo(1 - 0.9 ** 2, 6); // 0.19
    ema.update(0.5); // decay override: 0.19 * 0.5 + 0.5 = 0.595
    expect(val(ema.stateDict().weight!)[0]).toBeCloseTo(0.595, 6);
    ema.swap();
    expect(val(lin.weight)[0]).toBeCloseTo(0.595, 6);
    expect(val(ema.stateDict().weight!)[0]).toBe(1);
    ema.swap();
    expect(val(lin.weight)[0]).toBe(1);
    const other = new Linear(1, 1, { bias: false });
    ema.copyTo(other);
    expect(val(other.weight)[0]).toBeCloseTo(0.595, 6);
    expect(val(lin.weight)[0]).toBe(1);
    ema.copyTo();
    expect(val(lin.weight)[0]).toBeCloseTo(0.595, 6);
    other.dispose();
    ema.dispose();
    lin.dispose();
  });

  it('state dict round trip and bad input', () => {
    const lin = new Linear(2, 1);
    const ema = new EMA(lin, 0.5);
    const other = new EMA(lin, 0.5);
    lin.weight.assign(tf.tensor2d([[4, 8]]));
    ema.update();
    other.loadStateDict(ema.stateDict());
    expect(val(other.stateDict().weight!)).toEqual(val(ema.stateDict().weight!));
    expect(() => other.loadStateDict({ weight: tf.zeros([1, 2]) })).toThrow(/EMA.loadStateDict: missing bias/);
    expect(() => other.loadStateDict({ weight: tf.zeros([2, 1]), bias: tf.zeros([1]), extra: tf.zeros([1]) })).toThrow(
      /weight expected shape \[1,2\] got \[2,1\]; unexpected extra/,
    );
    expect(() => new EMA(lin, 1)).toThrow(/EMA: decay must be in \[0, 1\), got 1/);
    expect(() => ema.update(-0.1)).toThrow(/EMA.update: decay must be in \[0, 1\), got -0.1/);
    const wrong = new Linear(3, 1);
    expect(() => ema.copyTo(wrong)).toThrow(
      /EMA.copyTo: Linear does not match the averaged parameters: weight expected shape \[1,2\] got \[1,3\]/,
    );
    const noBias = new Linear(2, 1, { bias: false });
    expect(() => ema.copyTo(noBias)).toThrow(/missing parameter bias/);
    for (const x of [ema, other, lin, wrong, noBias]) x.dispose();
  });
});
