/**
 * Golden values (brief §1.9). Every expected number comes from outside the code under test: float64
 * closed forms written here, hand-computed numbers, or numpy (scripts/golden_values.py, which
 * mirrors diffusers' DPMSolverMultistepScheduler as LatentLM configures it).
 */
import { cfgLogits, initBackend, Rng, tf, timestepEmbedding } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DPMSolverMultistep,
  FinalLayer,
  forwardWithCfg,
  gaussianKl,
  LatentLM,
  MLPBlock,
  NoiseSchedule,
  PRESETS,
  samplePosterior,
  sigmaVaeKl,
  sigmaVaeSample,
} from '../src/index.js';
import { cosineAlphaBar, roundHalfEven } from '../src/schedule.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

const close = (a: ArrayLike<number>, b: ArrayLike<number>, atol: number) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs((a[i] as number) - (b[i] as number))).toBeLessThanOrEqual(atol);
};

// numpy (scripts/golden_values.py), float64
const GOLDEN_ACP: Record<number, number> = {
  0: 0.999958715775178,
  1: 0.9999125759273678,
  9: 0.9993687184016583,
  99: 0.9720927371139696,
  249: 0.847012161326905,
  499: 0.4938435904406382,
  749: 0.14427210238573596,
  899: 0.02409172414008589,
  998: 2.4287669070348544e-6,
  999: 2.4287669070348567e-9,
};

describe('cosine schedule (GLIDE, diffusers squaredcos_cap_v2)', () => {
  const s = new NoiseSchedule();

  it('alphas_cumprod telescopes to alphaBar((i+1)/T) / alphaBar(0) below the cap (float64 closed form, fp32 storage)', () => {
    const ab0 = Math.cos(((0.008 / 1.008) * Math.PI) / 2) ** 2;
    for (const i of [0, 1, 9, 99, 249, 499, 749, 899, 998]) {
      const closed = Math.cos((((i + 1) / 1000 + 0.008) / 1.008) * (Math.PI / 2)) ** 2 / ab0;
      // fp32 storage: each of up to 999 factors (1 - beta) is rounded to 2^-24, so up to ~6e-5 relative drift
      expect(Math.abs((s.alphasCumprod[i] as number) - closed) / closed).toBeLessThan(1e-4);
    }
    for (const [i, v] of Object.entries(GOLDEN_ACP)) expect(Math.abs((s.alphasCumprod[Number(i)] as number) - v) / v).toBeLessThan(1e-4);
    // bit-exact against numpy's mirror of diffusers' float32 storage
    expect([0, 499, 998, 999].map((i) => s.alphasCumprod[i])).toEqual([
      0.9999586939811707, 0.4938434660434723, 2.428766265438753e-6, 2.4287349909002387e-9,
    ]);
  });

  it('betas: first, middle and the capped last one', () => {
    const rel = (a: number, b: number) => Math.abs(a - b) / b;
    expect(rel(s.betas[0] as number, 4.128422482196914e-5)).toBeLessThan(1e-7);
    expect(rel(s.betas[499] as number, 0.0031458862304780677)).toBeLessThan(1e-7);
    expect(rel(s.betas[998] as number, 0.7499993929011166)).toBeLessThan(1e-7);
    expect(s.betas[999]).toBe(Math.fround(0.999));
    expect(cosineAlphaBar(1)).toBeLessThan(1e-30);
  });

  it('add_noise and get_velocity at t = 499 (hand formula with numpy abar)', () => {
    const ab = s.alphasCumprod[499] as number;
    const x0 = tf.tensor2d([[1, -2]]);
    const eps = tf.tensor2d([[0.5, 0.25]]);
    close(s.addNoise(x0, eps, [499]).dataSync(), [1.0584634098612915, -1.2276184424222776], 2e-6);
    close(s.getVelocity(x0, eps, [499]).dataSync(), [-0.36007667236965984, 1.5985784184157814], 2e-6);
    close(
      s.addNoise(x0, eps, [499]).dataSync(),
      [Math.sqrt(ab) - 0.5 * -Math.sqrt(1 - ab), -2 * Math.sqrt(ab) + 0.25 * Math.sqrt(1 - ab)],
      1e-6,
    );
    // v-parameterisation identity: x0 = sqrt(ab) x_t - sqrt(1-ab) v
    const xt = s.addNoise(x0, eps, [499]);
    const v = s.getVelocity(x0, eps, [499]);
    close(
      xt
        .mul(Math.sqrt(ab))
        .sub(v.mul(Math.sqrt(1 - ab)))
        .dataSync(),
      [1, -2],
      1e-6,
    );
    tf.dispose([x0, eps, xt, v]);
  });

  it('per-row timesteps broadcast over higher-rank latents', () => {
    const x0 = tf.ones([2, 3, 4]);
    const eps = tf.zeros([2, 3, 4]);
    const out = s.addNoise(x0, eps, [0, 999]).dataSync();
    expect(out[0]).toBeCloseTo(Math.sqrt(GOLDEN_ACP[0]!), 6);
    expect(out[12]).toBeCloseTo(Math.sqrt(GOLDEN_ACP[999]!), 6);
    tf.dispose([x0, eps]);
  });

  it('bad inputs: invalid schedule, timestep out of range, shape mismatch', () => {
    expect(() => new NoiseSchedule({ schedule: 'linear' as 'cosine' })).toThrow(/schedule must be 'cosine', got "linear"/);
    expect(() => new NoiseSchedule({ numTrainTimesteps: 0 })).toThrow(/numTrainTimesteps must be a positive integer, got 0/);
    expect(() => new NoiseSchedule({ maxBeta: 1.5 })).toThrow(/maxBeta must be in \(0, 1\), got 1.5/);
    const x = tf.zeros([2, 3]);
    expect(() => s.addNoise(x, x, [0, 1000])).toThrow(/t\[1\] must be an integer in \[0, 1000\), got 1000/);
    expect(() => s.addNoise(x, x, [0])).toThrow(/one timestep per row \(2 rows\), got 1/);
    expect(() => s.getVelocity(x, tf.zeros([2, 4]), [0, 1])).toThrow(/same shape, got \[2,3\] and \[2,4\]/);
    x.dispose();
  });
});

describe('timestep embedding (dim 256, cos then sin)', () => {
  it('matches the float64 closed form for integer and fractional t', () => {
    const ts = [0, 1, 17.5, 999];
    const emb = timestepEmbedding(tf.tensor1d(ts), 256).arraySync() as number[][];
    ts.forEach((t, n) => {
      const want: number[] = [];
      for (let k = 0; k < 128; k++) want.push(Math.cos(t * Math.exp((-Math.log(10000) * k) / 128)));
      for (let k = 0; k < 128; k++) want.push(Math.sin(t * Math.exp((-Math.log(10000) * k) / 128)));
      close(emb[n]!, want, 2e-4 * Math.max(1, t / 100));
    });
    expect(emb[0]!.slice(0, 128).every((v) => v === 1)).toBe(true);
    expect(emb[0]!.slice(128).every((v) => v === 0)).toBe(true);
  });
});

describe('diffusion head', () => {
  it('outputs exactly 0 at initialisation (adaLN-Zero and zero final linear)', () => {
    const m = new LatentLM(PRESETS.tiny.model);
    const rng = new Rng(3);
    const N = 5;
    const out = m.diffusion.forward(rng.randn([N, 4]), tf.tensor1d([0, 10, 500, 999, 3.5]), rng.randn([N, 32]));
    expect(Array.from(out.dataSync()).every((v) => v === 0)).toBe(true);
    out.dispose();
    m.dispose();
  });

  it('MLPBlock and FinalLayer with random weights match the reference formulas in float64 on the host', () => {
    // reference DiT.py: (shift, scale, gate) = Linear(SiLU(c)).chunk(3); x + gate * fc2(silu(fc1(m)) * gate_lin(m)),
    // m = RMSNorm(x) (1 + scale) + shift; FinalLayer: Linear(RMSNorm(x) (1 + scale) + shift), (shift, scale) = Linear(SiLU(c)).chunk(2)
    const D = 6;
    const H = 8;
    const N = 3;
    const rng = new Rng(21);
    const block = new MLPBlock(D, H, rng);
    const fin = new FinalLayer(D, 4, rng);
    for (const m of [block, fin]) for (const [, v] of m.namedParameters()) v.assign(rng.randn(v.shape, 0, 0.5));
    const W = (m: MLPBlock | FinalLayer, name: string) => {
      const p = m.namedParameters().find(([k]) => k === name);
      if (!p) throw new Error(`no parameter ${name}: ${m.namedParameters().map(([k]) => k)}`);
      return p[1].arraySync() as number[][]; // [out, in]
    };
    const lin = (w: number[][], x: number[]) => w.map((row) => row.reduce((a, v, i) => a + v * x[i]!, 0));
    const silu = (v: number) => v / (1 + Math.exp(-v));
    const rms = (x: number[]) => {
      const r = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + 1e-6);
      return x.map((v) => v * r);
    };
    const x = rng.randn([N, D]);
    const c = rng.randn([N, D]);
    const xs = x.arraySync() as number[][];
    const cs = c.arraySync() as number[][];
    const got = block.forward(x, c).arraySync() as number[][];
    const gotF = fin.forward(x, c).arraySync() as number[][];
    for (let n = 0; n < N; n++) {
      const mod = lin(W(block, 'adaLN_modulation.linear.weight'), cs[n]!.map(silu));
      const [shift, scale, gate] = [mod.slice(0, D), mod.slice(D, 2 * D), mod.slice(2 * D)];
      const m = rms(xs[n]!).map((v, i) => v * (1 + scale[i]!) + shift[i]!);
      const a = lin(W(block, 'mlp.fc1.weight'), m).map(silu);
      const g = lin(W(block, 'mlp.gate.weight'), m);
      const y = lin(
        W(block, 'mlp.fc2.weight'),
        a.map((v, i) => v * g[i]!),
      );
      close(
        got[n]!,
        xs[n]!.map((v, i) => v + gate[i]! * y[i]!),
        1e-4,
      );
      const modF = lin(W(fin, 'adaLN_modulation.linear.weight'), cs[n]!.map(silu));
      const mF = rms(xs[n]!).map((v, i) => v * (1 + modF[D + i]!) + modF[i]!);
      close(gotF[n]!, lin(W(fin, 'linear.weight'), mF), 1e-4);
    }
    tf.dispose([x, c]);
    block.dispose();
    fin.dispose();
  });

  it('CFG (core cfgLogits, used by the head): eps_u + w (eps_c - eps_u) by hand', () => {
    const c = tf.tensor1d([1, 2, 3]);
    const u = tf.tensor1d([0.5, 2, 5]);
    close(cfgLogits(c, u, 4).dataSync(), [0.5 + 4 * 0.5, 2, 5 + 4 * -2], 1e-6);
    close(cfgLogits(c, u, 1).dataSync(), [1, 2, 3], 1e-6);
    tf.dispose([c, u]);
  });

  it('forward_with_cfg: first half run under both conditions, guided eps duplicated into both halves', () => {
    const m = new LatentLM(PRESETS.tiny.model);
    // make the head non-trivial: random final layer and modulations
    const rng = new Rng(9);
    for (const [, v] of m.diffusion.namedParameters()) v.assign(rng.randn(v.shape, 0, 0.3));
    const x = tf.concat([rng.randn([3, 4]), rng.randn([3, 4]).mul(100)], 0); // second half must be ignored
    const t = tf.tensor1d([5, 400, 999, 5, 400, 999]);
    const h = rng.randn([6, 32]);
    const out = forwardWithCfg(m.diffusion, x, t, h, 1.65).arraySync() as number[][];
    const half = x.slice([0, 0], [3, 4]);
    const ec = m.diffusion.forward(half, t.slice(0, 3), h.slice([0, 0], [3, 32]));
    const eu = m.diffusion.forward(half, t.slice(3, 3), h.slice([3, 0], [3, 32]));
    const want = (eu.add(ec.sub(eu).mul(1.65)).arraySync() as number[][]).flat();
    close(out.slice(0, 3).flat(), want, 1e-5);
    close(out.slice(3).flat(), want, 1e-5);
    expect(() => forwardWithCfg(m.diffusion, x.slice([0, 0], [5, 4]), t.slice(0, 5), h.slice([0, 0], [5, 32]), 2)).toThrow(
      /even number of rows/,
    );
    tf.dispose([x, t, h, half, ec, eu]);
    m.dispose();
  });
});

describe('sigma-VAE sampling and KL (modeling_sigma_vae.GaussianDistribution)', () => {
  it('z = mu + (s C / 0.8) eps with one s per example (injected s and eps)', () => {
    const mu = tf.tensor3d([
      [
        [1, 2],
        [3, 4],
      ],
      [
        [-1, 0],
        [0.5, 0.25],
      ],
    ]);
    const eps = tf.tensor3d([
      [
        [0.1, -0.2],
        [0.3, 0.4],
      ],
      [
        [1, 1],
        [-1, 2],
      ],
    ]);
    const s = tf.tensor1d([2, -0.5]);
    const z = sigmaVaeSample(mu, s, eps, 0.75).arraySync() as number[][][];
    const k0 = (2 * 0.75) / 0.8; // 1.875
    const k1 = (-0.5 * 0.75) / 0.8; // -0.46875
    close(z.flat(2), [1 + k0 * 0.1, 2 - k0 * 0.2, 3 + k0 * 0.3, 4 + k0 * 0.4, -1 + k1, k1, 0.5 - k1, 0.25 + 2 * k1], 1e-6);
    expect(sigmaVaeKl(mu).dataSync()[0]).toBeCloseTo((1 + 4 + 9 + 16 + 1 + 0 + 0.25 + 0.0625) / 8, 6);
    expect(() => sigmaVaeSample(mu, tf.tensor1d([1]), eps, 0.75)).toThrow(/s must be \[2\] \(one per example\), got \[1\]/);
    tf.dispose([mu, eps, s]);
  });

  it('sigma ~ N(0, (C/0.8)^2): E|sigma| = C sqrt(2/pi) / 0.8 ~ 0.748 for C = 0.75', () => {
    const rng = new Rng(1);
    const B = 20000;
    const z = sigmaVaeSample(tf.zeros([B, 1]), rng.randn([B]), tf.ones([B, 1]), 0.75);
    const absMean = z.abs().mean().dataSync()[0] as number;
    expect(Math.abs(absMean - (0.75 * Math.sqrt(2 / Math.PI)) / 0.8)).toBeLessThan(0.02);
    z.dispose();
  });

  it('fixed-sigma mode (reference sampling_std) and the Gaussian baseline with injected noise statistics', () => {
    const mu = tf.zeros([4000, 2]);
    const fixed = samplePosterior({ mu, logvar: null }, { posterior: 'sigma', cSigma: 0.75, fixedStd: 0.5 }, new Rng(0));
    expect(Math.sqrt(tf.moments(fixed).variance.dataSync()[0]!)).toBeCloseTo(0.5, 1);
    const lv = tf.fill([4000, 2], Math.log(0.09)); // sigma 0.3
    const g = samplePosterior({ mu, logvar: lv }, { posterior: 'gaussian', cSigma: 0.75 }, new Rng(0));
    expect(Math.sqrt(tf.moments(g).variance.dataSync()[0]!)).toBeCloseTo(0.3, 1);
    tf.dispose([mu, fixed, lv, g]);
  });

  it('Gaussian KL per element by hand', () => {
    const mu = tf.tensor1d([0, 1]);
    const lv = tf.tensor1d([0, Math.log(4)]);
    // (0 + 1 - 1 - 0)/2 = 0 ; (1 + 4 - 1 - ln4)/2
    expect(gaussianKl(mu, lv).dataSync()[0]).toBeCloseTo((0 + (4 - Math.log(4)) / 2) / 2, 6);
    tf.dispose([mu, lv]);
  });
});

/** N(m, s^2) data: the optimal eps(x_t, t) = sqrt(1-ab) (x_t - sqrt(ab) m) / (ab s^2 + 1 - ab). */
function gaussianEps(schedule: NoiseSchedule, m: number, s: number) {
  return (x: tf.Tensor, t: number) => {
    const ab = schedule.alphasCumprod[t] as number;
    return x.sub(Math.sqrt(ab) * m).mul(Math.sqrt(1 - ab) / (ab * s * s + 1 - ab));
  };
}

/** v* = sqrt(ab) E[eps | x_t] - sqrt(1-ab) E[x_0 | x_t] = sqrt(1-ab) (sqrt(ab) (x_t - sqrt(ab) m) (1 - s^2) / V - m), V = ab s^2 + 1 - ab. */
function gaussianV(schedule: NoiseSchedule, m: number, s: number) {
  return (x: tf.Tensor, t: number) => {
    const ab = schedule.alphasCumprod[t] as number;
    const V = ab * s * s + 1 - ab;
    return x
      .sub(Math.sqrt(ab) * m)
      .mul((Math.sqrt(ab) * (1 - s * s)) / V)
      .sub(m)
      .mul(Math.sqrt(1 - ab));
  };
}

const DPM_GOLDEN_V: Record<number, number[]> = {
  1: [0.699975358475208, 0.6999938393000306, 0.6999999995749714, 0.7000086239598885, 0.7000184803997936],
  5: [-0.08610413111157977, 0.5034637973386715, 0.699986440155422, 0.9751181400988724, 1.2895543686056734],
  10: [-0.2497078647326393, 0.46256074792025215, 0.6999836188045494, 1.0323756380425655, 1.4122522314574417],
  20: [-0.2961457698055001, 0.4509506704828328, 0.6999828172456102, 1.0486278227134993, 1.447079257533943],
};

// numpy mirror of diffusers (scripts/golden_values.py): m = 0.7, s = 0.5
const DPM_XT = [-2.0, -0.5, 0.0, 0.7, 1.5];
const DPM_GOLDEN: Record<number, number[]> = {
  1: [0.6999753516265014, 0.6999938324424998, 0.6999999927143681, 0.7000086170993536, 0.7000184735365051],
  5: [-0.08610413218989768, 0.5034637976366614, 0.6999864409121653, 0.9751181414983936, 1.2895543707394583],
  10: [-0.24970786553136148, 0.4625607475255634, 0.699983618544529, 1.0323756379713918, 1.4122522316018904],
  20: [-0.2961457723367656, 0.4509506685896181, 0.6999828155650737, 1.0486278213308748, 1.4470792564916846],
};

describe('DPM-Solver++(2M), diffusers semantics', () => {
  const schedule = new NoiseSchedule();

  it('linspace timesteps (numpy round-half-even) and sigmas', () => {
    const golden: Record<number, number[]> = {
      1: [999],
      2: [999, 500],
      5: [999, 799, 599, 400, 200],
      10: [999, 899, 799, 699, 599, 500, 400, 300, 200, 100],
      20: [999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300, 250, 200, 150, 100, 50],
    };
    for (const [n, ts] of Object.entries(golden))
      expect(Array.from(new DPMSolverMultistep(schedule, { numInferenceSteps: Number(n) }).timesteps)).toEqual(ts);
    expect([roundHalfEven(0.5), roundHalfEven(1.5), roundHalfEven(2.5), roundHalfEven(2.6)]).toEqual([0, 2, 2, 3]);
    const s20 = new DPMSolverMultistep(schedule, { numInferenceSteps: 20 }).sigmas;
    expect(s20.length).toBe(21);
    expect(s20[20]).toBe(0);
    expect(Math.abs((s20[1] as number) - 12.807271003723145) / 12.807).toBeLessThan(1e-6);
    expect(Math.abs((s20[19] as number) - 0.0913475975394249) / 0.0913).toBeLessThan(1e-6);
    expect(Math.abs((s20[0] as number) - 20291.302734375) / 20291).toBeLessThan(1e-4);
  });

  it('lambda_min_clipped drops the lowest-SNR timesteps from the grid (numpy mirror of diffusers)', () => {
    const ts = (l: number) => Array.from(new DPMSolverMultistep(schedule, { numInferenceSteps: 10, lambdaMinClipped: l }).timesteps);
    expect(ts(-5.1)).toEqual([995, 896, 796, 696, 597, 498, 398, 298, 199, 100]);
    expect(ts(-3)).toEqual([967, 870, 774, 677, 580, 484, 387, 290, 193, 97]);
    expect(ts(Number.NEGATIVE_INFINITY)).toEqual([999, 899, 799, 699, 599, 500, 400, 300, 200, 100]);
    expect(() => new DPMSolverMultistep(schedule, { numInferenceSteps: 2, lambdaMinClipped: 100 })).toThrow(/removes every timestep/);
  });

  it('first-order steps: the warm-up, and the final step (final sigma 0)', () => {
    const s = new DPMSolverMultistep(schedule, { numInferenceSteps: 20 });
    expect(Array.from({ length: 20 }, (_, i) => s.isFirstOrder(i))).toEqual([true, ...Array(18).fill(false), true]);
    const s1 = new DPMSolverMultistep(schedule, { numInferenceSteps: 5, solverOrder: 1 });
    expect(Array.from({ length: 5 }, (_, i) => s1.isFirstOrder(i)).every(Boolean)).toBe(true);
  });

  // The eps-prediction update x0 = (x - sigma eps) / alpha cancels catastrophically at t = 999
  // (alpha = 4.9e-5): float32 rounding of x (~2^-24 |x|) is amplified by 1/alpha ~ 2e4 in the first
  // step and damped by later steps, so the float32 trajectory can differ from the float64 mirror by
  // ~2^-24 * 2 / alpha = 2.4e-3 after one step. The v-prediction update x0 = alpha x - sigma v has
  // no such cancellation and is held to 2e-5.
  const EPS_TOL: Record<number, number> = { 1: 3e-3, 5: 3e-4, 10: 3e-4, 20: 3e-4 };
  for (const n of [1, 5, 10, 20]) {
    it(`trajectory on the analytic Gaussian eps-model matches the numpy diffusers mirror (${n} steps)`, () => {
      const solver = new DPMSolverMultistep(schedule, { numInferenceSteps: n });
      const xT = tf.tensor2d(DPM_XT, [5, 1]);
      const before = tf.memory().numTensors;
      const x0 = solver.sample(gaussianEps(schedule, 0.7, 0.5), xT);
      expect(tf.memory().numTensors).toBe(before + 1);
      close(x0.dataSync(), DPM_GOLDEN[n]!, EPS_TOL[n]!);
      tf.dispose([xT, x0]);
    });

    it(`trajectory on the analytic Gaussian v-model matches the numpy diffusers mirror (${n} steps)`, () => {
      const solver = new DPMSolverMultistep(schedule, { numInferenceSteps: n, predictionType: 'v_prediction' });
      const xT = tf.tensor2d(DPM_XT, [5, 1]);
      const x0 = solver.sample(gaussianV(schedule, 0.7, 0.5), xT);
      close(x0.dataSync(), DPM_GOLDEN_V[n]!, 2e-5);
      tf.dispose([xT, x0]);
    });
  }

  it('recovers the target mean and variance within 2% at 20 steps (N(0.7, 0.5^2) data)', () => {
    const rng = new Rng(0);
    const N = 4000;
    // a standard-normal sample standardised to exact moments, so only the solver's error remains
    const raw = rng.randn([N, 1]);
    const { mean, variance } = tf.moments(raw);
    const xT = raw.sub(mean).div(variance.sqrt());
    const solver = new DPMSolverMultistep(schedule, { numInferenceSteps: 20 });
    const x0 = solver.sample(gaussianEps(schedule, 0.7, 0.5), xT);
    const mo = tf.moments(x0);
    const m = mo.mean.dataSync()[0] as number;
    const v = mo.variance.dataSync()[0] as number;
    expect(Math.abs(m - 0.7) / 0.7).toBeLessThan(0.02);
    expect(Math.abs(v - 0.25) / 0.25).toBeLessThan(0.02);
    // and the exact probability-flow map x0 = m + s (x_T - sqrt(ab_T) m) / sqrt(ab_T s^2 + 1 - ab_T)
    const abT = schedule.alphasCumprod[999] as number;
    const exact = xT
      .sub(Math.sqrt(abT) * 0.7)
      .mul(0.5 / Math.sqrt(abT * 0.25 + 1 - abT))
      .add(0.7);
    expect(x0.sub(exact).abs().max().dataSync()[0]).toBeLessThan(0.02);
    tf.dispose([raw, mean, variance, xT, x0, mo.mean, mo.variance, exact]);
  });

  it('v-prediction gives the same trajectory as the equivalent eps-model', () => {
    const eps = gaussianEps(schedule, 0.7, 0.5);
    // v = sqrt(ab) eps - sqrt(1-ab) x0 with x0 = (x - sqrt(1-ab) eps) / sqrt(ab)  =>  v = (eps - sqrt(1-ab) x) / sqrt(ab)
    const vModel = (x: tf.Tensor, t: number) => {
      const ab = schedule.alphasCumprod[t] as number;
      return eps(x, t)
        .sub(x.mul(Math.sqrt(1 - ab)))
        .div(Math.sqrt(ab));
    };
    const xT = tf.tensor2d(DPM_XT, [5, 1]);
    const a = new DPMSolverMultistep(schedule, { numInferenceSteps: 10 }).sample(eps, xT);
    const b = new DPMSolverMultistep(schedule, { numInferenceSteps: 10, predictionType: 'v_prediction' }).sample(vModel, xT);
    close(a.dataSync(), b.dataSync(), 1e-4);
    tf.dispose([xT, a, b]);
  });

  it('bad inputs: steps out of range, unknown options, wrong model output shape', () => {
    expect(() => new DPMSolverMultistep(schedule, { numInferenceSteps: 0 })).toThrow(
      /numInferenceSteps must be an integer in \[1, 1000\], got 0/,
    );
    expect(() => new DPMSolverMultistep(schedule, { numInferenceSteps: 1001 })).toThrow(/got 1001/);
    expect(() => new DPMSolverMultistep(schedule, { numInferenceSteps: 5, solverOrder: 3 as 2 })).toThrow(
      /solverOrder must be 1 or 2, got 3/,
    );
    expect(() => new DPMSolverMultistep(schedule, { numInferenceSteps: 5, predictionType: 'sample' as 'epsilon' })).toThrow(
      /predictionType must be 'epsilon' or 'v_prediction', got "sample"/,
    );
    const xT = tf.zeros([2, 3]);
    expect(() => new DPMSolverMultistep(schedule, { numInferenceSteps: 2 }).sample(() => tf.zeros([2, 4]), xT)).toThrow(
      /must return the sample's shape \[2,3\], got \[2,4\]/,
    );
    xT.dispose();
  });
});
