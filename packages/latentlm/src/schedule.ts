/**
 * The diffusion process of LatentLM's head (Sun et al. 2024, §2.2; reference `schedule/ddpm.py` and
 * `schedule/dpm_solver.py`, both derived from diffusers):
 *
 * - GLIDE cosine schedule (Nichol & Dhariwal 2021, eq. 17) discretised as diffusers'
 *   `betas_for_alpha_bar` ("squaredcos_cap_v2"): alphaBar(u) = cos^2(((u + 0.008) / 1.008) pi / 2),
 *   beta_i = min(1 - alphaBar((i + 1) / T) / alphaBar(i / T), 0.999), alphas_cumprod = cumprod(1 - beta).
 * - add_noise x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (DDPM, Ho et al. 2020, eq. 4) and
 *   get_velocity v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022, §4).
 * - DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2, data prediction, midpoint
 *   variant), with the semantics of diffusers' DPMSolverMultistepScheduler as LatentLM configures it:
 *   solver order 2, "linspace" timestep spacing, lower-order final step, final sigma 0.
 *
 * Schedule values are stored at float32 precision exactly as diffusers stores them (betas,
 * alphas_cumprod and sigmas are torch.float32 there), so trajectories match its numbers; solver
 * coefficients are computed from them in float64 on the host.
 */
import { tf } from '@mmlm/core';

export type BetaSchedule = 'cosine';
export type PredictionType = 'epsilon' | 'v_prediction';

/** GLIDE's alphaBar(u) for u in [0, 1]. */
export function cosineAlphaBar(u: number): number {
  return Math.cos((((u + 0.008) / 1.008) * Math.PI) / 2) ** 2;
}

export interface NoiseScheduleOptions {
  /** T, the number of training timesteps (LatentLM: 1000). */
  numTrainTimesteps?: number;
  /** Only 'cosine' (GLIDE / diffusers "squaredcos_cap_v2") is used by LatentLM. */
  schedule?: BetaSchedule;
  /** Cap on beta_i, which keeps the last step finite (diffusers: 0.999). */
  maxBeta?: number;
}

export class NoiseSchedule {
  readonly numTrainTimesteps: number;
  readonly schedule: BetaSchedule;
  readonly betas: Float64Array; // [T]
  readonly alphasCumprod: Float64Array; // [T]

  constructor(opts: NoiseScheduleOptions = {}) {
    const T = opts.numTrainTimesteps ?? 1000;
    const schedule = opts.schedule ?? 'cosine';
    const maxBeta = opts.maxBeta ?? 0.999;
    if (!Number.isInteger(T) || T < 1) throw new Error(`NoiseSchedule: numTrainTimesteps must be a positive integer, got ${T}`);
    if ((schedule as string) !== 'cosine') throw new Error(`NoiseSchedule: schedule must be 'cosine', got ${JSON.stringify(schedule)}`);
    if (!(maxBeta > 0 && maxBeta < 1)) throw new Error(`NoiseSchedule: maxBeta must be in (0, 1), got ${maxBeta}`);
    this.numTrainTimesteps = T;
    this.schedule = schedule;
    this.betas = new Float64Array(T);
    this.alphasCumprod = new Float64Array(T);
    // float32 storage as diffusers (torch.float32 betas; cumprod accumulated in double, stored as float32)
    let prod = 1;
    for (let i = 0; i < T; i++) {
      const beta = Math.fround(Math.min(1 - cosineAlphaBar((i + 1) / T) / cosineAlphaBar(i / T), maxBeta));
      this.betas[i] = beta;
      prod *= Math.fround(1 - beta);
      this.alphasCumprod[i] = Math.fround(prod);
    }
  }

  /** Throws unless every t is an integer timestep in [0, T). */
  checkTimesteps(what: string, t: ArrayLike<number>): void {
    for (let i = 0; i < t.length; i++) {
      const v = t[i] as number;
      if (!Number.isInteger(v) || v < 0 || v >= this.numTrainTimesteps)
        throw new Error(`${what}: timestep t[${i}] must be an integer in [0, ${this.numTrainTimesteps}), got ${v}`);
    }
  }

  /** sqrt(abar_t) and sqrt(1 - abar_t) per row, shaped [N, 1, ..., 1] to broadcast against x of rank `rank`. */
  private coefficients(t: ArrayLike<number>, rank: number): { a: tf.Tensor; s: tf.Tensor } {
    const a = new Float32Array(t.length);
    const s = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++) {
      const ab = this.alphasCumprod[t[i] as number] as number;
      a[i] = Math.sqrt(ab);
      s[i] = Math.sqrt(1 - ab);
    }
    const shape = [t.length, ...Array.from({ length: rank - 1 }, () => 1)];
    return { a: tf.tensor(a, shape), s: tf.tensor(s, shape) };
  }

  private checkRows(what: string, x: tf.Tensor, other: tf.Tensor, t: ArrayLike<number>): void {
    if (x.shape.join(',') !== other.shape.join(','))
      throw new Error(`${what}: x0 and noise must have the same shape, got [${x.shape}] and [${other.shape}]`);
    if (x.rank < 1 || x.shape[0] !== t.length)
      throw new Error(`${what}: expected one timestep per row (${x.shape[0]} rows), got ${t.length} timesteps`);
    this.checkTimesteps(what, t);
  }

  /** x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; x0, eps: [N, ...], t: [N] integer timesteps. */
  addNoise(x0: tf.Tensor, eps: tf.Tensor, t: ArrayLike<number>): tf.Tensor {
    this.checkRows('addNoise', x0, eps, t);
    return tf.tidy(() => {
      const { a, s } = this.coefficients(t, x0.rank);
      return x0.mul(a).add(eps.mul(s));
    });
  }

  /** v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0. */
  getVelocity(x0: tf.Tensor, eps: tf.Tensor, t: ArrayLike<number>): tf.Tensor {
    this.checkRows('getVelocity', x0, eps, t);
    return tf.tidy(() => {
      const { a, s } = this.coefficients(t, x0.rank);
      return eps.mul(a).sub(x0.mul(s));
    });
  }
}

/** numpy's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface DpmSolverOptions {
  /** Head denoising steps (LatentLM: 20 for ImageNet; TTS saturates at about 5). */
  numInferenceSteps: number;
  /** 1 (DDIM-equivalent) or 2 (DPM-Solver++(2M), LatentLM's setting). */
  solverOrder?: 1 | 2;
  /** What the head predicts: eps (LatentLM's default) or v. */
  predictionType?: PredictionType;
  /** First-order final step for fewer than 15 steps (diffusers default true). */
  lowerOrderFinal?: boolean;
  /** Final sigma 0 (diffusers default) or the schedule's sigma at t = 0. */
  finalSigmasType?: 'zero' | 'sigma_min';
  /**
   * diffusers' lambda_min_clipped: timesteps whose log-SNR lambda = log(alpha / sigma) is below it
   * are left out of the "linspace" grid (default -Infinity: none, as LatentLM). diffusers calls it
   * critical for the cosine schedule, whose last timesteps have alpha ~ 5e-5.
   */
  lambdaMinClipped?: number;
}

/** The denoiser the solver integrates: x [N, ...] at integer timestep t -> the model output (eps or v). */
export type DenoiseFn = (x: tf.Tensor, t: number) => tf.Tensor;

/**
 * DPM-Solver++ multistep sampler. `timesteps` are diffusers' "linspace" timesteps
 * round(linspace(0, T - 1, n + 1))[::-1][:-1]; `sigmas` are sqrt((1 - abar) / abar) at those
 * timesteps followed by the final sigma.
 */
export class DPMSolverMultistep {
  readonly numInferenceSteps: number;
  readonly solverOrder: 1 | 2;
  readonly predictionType: PredictionType;
  readonly lowerOrderFinal: boolean;
  readonly finalSigmasType: 'zero' | 'sigma_min';
  readonly lambdaMinClipped: number;
  readonly timesteps: Int32Array; // [n]
  readonly sigmas: Float64Array; // [n + 1]

  constructor(
    readonly schedule: NoiseSchedule,
    opts: DpmSolverOptions,
  ) {
    const n = opts.numInferenceSteps;
    const T = schedule.numTrainTimesteps;
    if (!Number.isInteger(n) || n < 1 || n > T)
      throw new Error(`DPMSolverMultistep: numInferenceSteps must be an integer in [1, ${T}], got ${n}`);
    const order = opts.solverOrder ?? 2;
    if (order !== 1 && order !== 2) throw new Error(`DPMSolverMultistep: solverOrder must be 1 or 2, got ${order}`);
    const pred = opts.predictionType ?? 'epsilon';
    if (pred !== 'epsilon' && pred !== 'v_prediction')
      throw new Error(`DPMSolverMultistep: predictionType must be 'epsilon' or 'v_prediction', got ${JSON.stringify(pred)}`);
    const fst = opts.finalSigmasType ?? 'zero';
    if (fst !== 'zero' && fst !== 'sigma_min')
      throw new Error(`DPMSolverMultistep: finalSigmasType must be 'zero' or 'sigma_min', got ${JSON.stringify(fst)}`);
    this.numInferenceSteps = n;
    this.solverOrder = order;
    this.predictionType = pred;
    this.lowerOrderFinal = opts.lowerOrderFinal ?? true;
    this.finalSigmasType = fst;
    this.lambdaMinClipped = opts.lambdaMinClipped ?? Number.NEGATIVE_INFINITY;
    const lmin = opts.lambdaMinClipped ?? Number.NEGATIVE_INFINITY;
    if (Number.isNaN(lmin)) throw new Error('DPMSolverMultistep: lambdaMinClipped must be a number, got NaN');
    let clipped = 0; // timesteps (from the end) whose lambda is below lambdaMinClipped
    for (let t = T - 1; t >= 0; t--) {
      const ab = schedule.alphasCumprod[t] as number;
      if (0.5 * Math.log(ab) - 0.5 * Math.log(1 - ab) < lmin) clipped++;
      else break;
    }
    const last = T - clipped;
    if (last < 1) throw new Error(`DPMSolverMultistep: lambdaMinClipped ${lmin} removes every timestep`);
    this.timesteps = new Int32Array(n);
    const step = (last - 1) / n;
    for (let i = 0; i < n; i++) this.timesteps[i] = roundHalfEven((n - i) * step);
    this.timesteps[0] = last - 1; // numpy's linspace returns its end point exactly
    const sigmaAt = (k: number) => {
      const ab = schedule.alphasCumprod[k] as number;
      return Math.fround(Math.sqrt(Math.fround(Math.fround(1 - ab) / ab)));
    };
    this.sigmas = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) this.sigmas[i] = sigmaAt(this.timesteps[i] as number);
    this.sigmas[n] = fst === 'zero' ? 0 : sigmaAt(0);
  }

  /** (alpha_t, sigma_t, lambda_t) of the solver's sigma index i. */
  private alphaSigma(i: number): { alpha: number; sigma: number; lambda: number } {
    const s = this.sigmas[i] as number;
    const alpha = 1 / Math.sqrt(s * s + 1);
    const sigma = s * alpha;
    return { alpha, sigma, lambda: Math.log(alpha) - Math.log(sigma) };
  }

  /** Model output -> data prediction x0 at sigma index i. */
  private toX0(out: tf.Tensor, x: tf.Tensor, i: number): tf.Tensor {
    const { alpha, sigma } = this.alphaSigma(i);
    return this.predictionType === 'epsilon' ? x.sub(out.mul(sigma)).div(alpha) : x.mul(alpha).sub(out.mul(sigma));
  }

  /** Whether step i uses the first-order update (warm-up, order 1, or the lower-order final step). */
  isFirstOrder(i: number): boolean {
    const n = this.numInferenceSteps;
    const lowerOrderFinal = i === n - 1 && ((this.lowerOrderFinal && n < 15) || this.finalSigmasType === 'zero');
    return this.solverOrder === 1 || i === 0 || lowerOrderFinal;
  }

  /**
   * One update from sigma index i to i + 1 given the data predictions m0 (this step) and m1 (the
   * previous step; null for a first-order step).
   */
  update(x: tf.Tensor, m0: tf.Tensor, m1: tf.Tensor | null, i: number): tf.Tensor {
    return tf.tidy(() => {
      const t = this.alphaSigma(i + 1);
      const s0 = this.alphaSigma(i);
      const h = t.lambda - s0.lambda;
      const ratio = t.sigma / s0.sigma;
      const c = t.alpha * (Math.exp(-h) - 1); // alpha_t (e^{-h} - 1)
      const first = x.mul(ratio).sub(m0.mul(c));
      if (m1 === null) return first;
      const s1 = this.alphaSigma(i - 1);
      const r0 = (s0.lambda - s1.lambda) / h;
      const D1 = m0.sub(m1).mul(1 / r0);
      return first.sub(D1.mul(0.5 * c));
    });
  }

  /** Integrates the probability-flow ODE from x_T (standard normal) to x_0. Does not dispose xT. */
  sample(model: DenoiseFn, xT: tf.Tensor): tf.Tensor {
    let x = xT.clone();
    let prev: tf.Tensor | null = null;
    for (let i = 0; i < this.numInferenceSteps; i++) {
      const firstOrder = this.isFirstOrder(i);
      const [xNext, m0] = tf.tidy(() => {
        const out = model(x, this.timesteps[i] as number);
        if (out.shape.join(',') !== x.shape.join(','))
          throw new Error(`DPMSolverMultistep: the model must return the sample's shape [${x.shape}], got [${out.shape}]`);
        const m = this.toX0(out, x, i);
        return [this.update(x, m, firstOrder ? null : prev, i), m];
      });
      x.dispose();
      prev?.dispose();
      x = xNext as tf.Tensor;
      prev = m0 as tf.Tensor;
    }
    prev?.dispose();
    return x;
  }
}
