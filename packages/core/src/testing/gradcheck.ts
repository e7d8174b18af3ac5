/**
 * Finite-difference gradient checker: compares tfjs autodiff gradients of a scalar function with
 * central differences, on a random subset of coordinates. Runs in float32, so tolerances are
 * those of float32 central differences (use eps ~1e-2..1e-3 and rtol ~1e-2).
 */
import { Rng } from '../rng/index.js';
import { tf } from '../tf.js';

export interface GradCheckOptions {
  /** Finite-difference step (default 1e-2). */
  eps?: number;
  /** Relative tolerance (default 2e-2). */
  rtol?: number;
  /** Absolute tolerance (default 1e-3). */
  atol?: number;
  /** Coordinates checked per input (default 24; all when the input is smaller). */
  maxChecks?: number;
  /** Which inputs to check (default all float32 inputs). */
  wrt?: number[];
  seed?: number;
}

export interface GradCheckResult {
  checked: number;
  maxAbsError: number;
  maxRelError: number;
  failures: { input: number; index: number; analytic: number; numeric: number }[];
}

/**
 * Check d f(xs) / d xs[i] against central differences. Throws with the worst coordinates when any
 * |analytic - numeric| > atol + rtol * |numeric|; returns the error statistics otherwise.
 */
export function checkGradients(f: (xs: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[], opts: GradCheckOptions = {}): GradCheckResult {
  const eps = opts.eps ?? 1e-2;
  const rtol = opts.rtol ?? 2e-2;
  const atol = opts.atol ?? 1e-3;
  const maxChecks = opts.maxChecks ?? 24;
  const rng = new Rng(opts.seed ?? 1234);
  const wrt = opts.wrt ?? inputs.map((x, i) => (x.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);

  const analytic = tf.tidy(() => {
    const g = tf.grads((...xs: tf.Tensor[]) => f(xs))(inputs);
    return wrt.map((i) => (g[i] as tf.Tensor).dataSync().slice());
  });
  const evalAt = (i: number, values: Float32Array): number =>
    tf.tidy(() => {
      const xs = inputs.map((x, j) => (j === i ? tf.tensor(values, x.shape, 'float32') : x));
      const y = f(xs);
      if (y.size !== 1) throw new Error(`checkGradients: f must return a scalar, got shape [${y.shape}]`);
      return y.dataSync()[0] as number;
    });

  const res: GradCheckResult = { checked: 0, maxAbsError: 0, maxRelError: 0, failures: [] };
  wrt.forEach((i, k) => {
    const x = inputs[i] as tf.Tensor;
    const base = x.dataSync().slice() as Float32Array;
    const idx = base.length <= maxChecks ? [...base.keys()] : Array.from({ length: maxChecks }, () => rng.int(0, base.length));
    for (const j of idx) {
      const v = base[j] as number;
      const plus = base.slice();
      plus[j] = v + eps;
      const minus = base.slice();
      minus[j] = v - eps;
      const numeric = (evalAt(i, plus) - evalAt(i, minus)) / (2 * eps);
      const a = analytic[k]?.[j] as number;
      const abs = Math.abs(a - numeric);
      const rel = abs / Math.max(Math.abs(numeric), 1e-12);
      res.checked++;
      res.maxAbsError = Math.max(res.maxAbsError, abs);
      if (abs > atol) res.maxRelError = Math.max(res.maxRelError, rel);
      if (!(abs <= atol + rtol * Math.abs(numeric))) res.failures.push({ input: i, index: j, analytic: a, numeric });
    }
  });
  if (res.failures.length) {
    const worst = res.failures
      .slice(0, 5)
      .map((e) => `input ${e.input}[${e.index}]: analytic ${e.analytic.toExponential(4)} vs numeric ${e.numeric.toExponential(4)}`)
      .join('; ');
    throw new Error(`checkGradients: ${res.failures.length}/${res.checked} coordinates disagree (atol ${atol}, rtol ${rtol}): ${worst}`);
  }
  return res;
}
