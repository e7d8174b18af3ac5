/**
 * Finite-difference gradient checker: compares tfjs autodiff gradients of a scalar function with
 * central differences, on a random subset of coordinates. Runs in float32, so tolerances are
 * those of float32 central differences (use eps ~1e-2..1e-3 and rtol ~1e-2).
 */
import { readSync } from '../backend/read.js';
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

/** One host read the check asks its driver for: the tensor, disposed by the driver after reading. */
type Read = { t: tf.Tensor; dispose: boolean };

/**
 * The check as a generator of host reads, so one algorithm runs with synchronous reads
 * (checkGradients: cpu, wasm, tensorflow) and asynchronous ones (checkGradientsAsync: any backend,
 * webgpu included).
 */
function* gradCheckSteps(
  f: (xs: tf.Tensor[]) => tf.Scalar,
  inputs: tf.Tensor[],
  opts: GradCheckOptions,
): Generator<Read, GradCheckResult, Float32Array> {
  const eps = opts.eps ?? 1e-2;
  const rtol = opts.rtol ?? 2e-2;
  const atol = opts.atol ?? 1e-3;
  const maxChecks = opts.maxChecks ?? 24;
  const rng = new Rng(opts.seed ?? 1234);
  const wrt = opts.wrt ?? inputs.map((x, i) => (x.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);

  const gradTensors = tf.tidy(() => {
    const g = tf.grads((...xs: tf.Tensor[]) => f(xs))(inputs);
    return wrt.map((i) => g[i] as tf.Tensor);
  });
  const analytic: Float32Array[] = [];
  for (const g of gradTensors) analytic.push(yield { t: g, dispose: true });
  function* evalAt(i: number, values: Float32Array): Generator<Read, number, Float32Array> {
    const y = tf.tidy(() => {
      const xs = inputs.map((x, j) => (j === i ? tf.tensor(values, x.shape, 'float32') : x));
      const y = f(xs);
      if (y.size !== 1) throw new Error(`checkGradients: f must return a scalar, got shape [${y.shape}]`);
      return y;
    });
    return (yield { t: y, dispose: true })[0] as number;
  }

  const res: GradCheckResult = { checked: 0, maxAbsError: 0, maxRelError: 0, failures: [] };
  for (const [k, i] of wrt.entries()) {
    const x = inputs[i] as tf.Tensor;
    const base = yield { t: x, dispose: false };
    const idx = base.length <= maxChecks ? [...base.keys()] : Array.from({ length: maxChecks }, () => rng.int(0, base.length));
    for (const j of idx) {
      const v = base[j] as number;
      const plus = base.slice();
      plus[j] = v + eps;
      const minus = base.slice();
      minus[j] = v - eps;
      const numeric = ((yield* evalAt(i, plus)) - (yield* evalAt(i, minus))) / (2 * eps);
      const a = analytic[k]?.[j] as number;
      const abs = Math.abs(a - numeric);
      const rel = abs / Math.max(Math.abs(numeric), 1e-12);
      res.checked++;
      res.maxAbsError = Math.max(res.maxAbsError, abs);
      if (abs > atol) res.maxRelError = Math.max(res.maxRelError, rel);
      if (!(abs <= atol + rtol * Math.abs(numeric))) res.failures.push({ input: i, index: j, analytic: a, numeric });
    }
  }
  return res;
}

function finish(res: GradCheckResult, atol: number, rtol: number): GradCheckResult {
  if (res.failures.length) {
    const worst = res.failures
      .slice(0, 5)
      .map((e) => `input ${e.input}[${e.index}]: analytic ${e.analytic.toExponential(4)} vs numeric ${e.numeric.toExponential(4)}`)
      .join('; ');
    throw new Error(`checkGradients: ${res.failures.length}/${res.checked} coordinates disagree (atol ${atol}, rtol ${rtol}): ${worst}`);
  }
  return res;
}

/** Run the generator, answering each read with `read`; disposes what it was asked to, also on a throw. */
function drive(gen: Generator<Read, GradCheckResult, Float32Array>, read: (t: tf.Tensor) => Float32Array): GradCheckResult {
  let step = gen.next();
  while (!step.done) {
    const { t, dispose } = step.value;
    let v: Float32Array;
    try {
      v = Float32Array.from(read(t));
    } finally {
      if (dispose) t.dispose();
    }
    step = gen.next(v);
  }
  return step.value;
}

/**
 * Check d f(xs) / d xs[i] against central differences. Throws with the worst coordinates when any
 * |analytic - numeric| > atol + rtol * |numeric|; returns the error statistics otherwise. Reads
 * values synchronously (cpu, wasm, tensorflow); on webgpu use checkGradientsAsync.
 */
export function checkGradients(f: (xs: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[], opts: GradCheckOptions = {}): GradCheckResult {
  const res = drive(
    gradCheckSteps(f, inputs, opts),
    (t) => readSync(t, 'checkGradients', 'use await checkGradientsAsync(f, inputs, opts)') as Float32Array,
  );
  return finish(res, opts.atol ?? 1e-3, opts.rtol ?? 2e-2);
}

/** checkGradients with asynchronous reads (`await t.data()`): the same check on every backend, webgpu included. */
export async function checkGradientsAsync(
  f: (xs: tf.Tensor[]) => tf.Scalar,
  inputs: tf.Tensor[],
  opts: GradCheckOptions = {},
): Promise<GradCheckResult> {
  const gen = gradCheckSteps(f, inputs, opts);
  let step = gen.next();
  while (!step.done) {
    const { t, dispose } = step.value;
    let v: Float32Array;
    try {
      v = Float32Array.from((await t.data()) as Float32Array);
    } finally {
      if (dispose) t.dispose();
    }
    step = gen.next(v);
  }
  return finish(step.value, opts.atol ?? 1e-3, opts.rtol ?? 2e-2);
}
