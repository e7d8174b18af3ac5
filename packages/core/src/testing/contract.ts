/**
 * The model contract of DESIGN.md, shared by every package's tests: tiny config; output shape;
 * same seed gives the same output; save then load gives the same output; gradients finite and
 * non-zero for every trainable parameter; no tensor leak over a training step (the package's own,
 * `trainStep`, where given); runs on cpu and
 * wasm (and the two agree). Framework-agnostic: each check throws a descriptive Error. Values are
 * read with `await t.data()`, so the contract also runs on webgpu (`backends: ['cpu', 'webgpu']`),
 * where data on the GPU cannot be read synchronously.
 */
import type { BackendName } from '../backend/init.js';
import type { Module, StateDict } from '../nn/module.js';
import { tf } from '../tf.js';
import { TEST_BACKENDS, useBackend } from './backends.js';

export interface ModelContract<M extends Module> {
  name: string;
  /** Build the model with a seed (same seed, same weights). */
  make: (seed: number) => M;
  /** Inputs for one forward (fresh tensors each call; the contract disposes them). */
  inputs: () => tf.Tensor[];
  /** Forward pass to the tensor whose shape is checked. */
  forward: (m: M, inputs: tf.Tensor[]) => tf.Tensor;
  expectedShape: number[];
  /** Scalar training loss (default: mean of squares of forward's output). */
  loss?: (m: M, inputs: tf.Tensor[]) => tf.Scalar;
  /** Parameters allowed to have an all-zero gradient at init (e.g. zero-initialised gates' inputs). */
  zeroGradOk?: (path: string) => boolean;
  /** Save/load round trip (default: in-memory copy of the state dict). */
  saveLoad?: (sd: StateDict) => Promise<StateDict> | StateDict;
  /**
   * The package's own training step for model `m` (its optimizer, loss and update), checked for
   * tensor leaks instead of the contract's plain SGD step: `step(inputs)` runs one step; `dispose`
   * frees what the factory made (the optimizer). Give it wherever the package has a train step.
   */
  trainStep?: (m: M) => { step: (inputs: tf.Tensor[], t: number) => void; dispose: () => void };
  backends?: readonly BackendName[];
  /** Max abs difference allowed between backends (default 1e-3). */
  crossBackendTol?: number;
}

export interface ContractReport {
  backends: BackendName[];
  numParameters: number;
  maxCrossBackendDiff: number;
}

function maxAbsDiff(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

function withInputs<T>(c: { inputs: () => tf.Tensor[] }, f: (xs: tf.Tensor[]) => T): T {
  const xs = c.inputs();
  try {
    return f(xs);
  } finally {
    for (const x of xs) x.dispose();
  }
}

/** t's values read asynchronously (a GPU backend cannot read synchronously), then t disposed. */
async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  try {
    return Float32Array.from((await t.data()) as Float32Array);
  } finally {
    t.dispose();
  }
}

export async function runModelContract<M extends Module>(c: ModelContract<M>): Promise<ContractReport> {
  const backends = [...(c.backends ?? TEST_BACKENDS)];
  const outputs: Float32Array[] = [];
  let numParameters = 0;
  const fail = (b: string, what: string) => {
    throw new Error(`model contract "${c.name}" on ${b}: ${what}`);
  };
  for (const b of backends) {
    await useBackend(b);
    const m = c.make(1);
    numParameters = m.numParameters();
    // 1. output shape
    const out = withInputs(c, (xs) => tf.tidy(() => c.forward(m, xs)));
    if (out.shape.join(',') !== c.expectedShape.join(',')) fail(b, `output shape: expected [${c.expectedShape}], got [${out.shape}]`);
    const y1 = await readAndDispose(out);
    if (!y1.every(Number.isFinite)) fail(b, 'output has non-finite values');
    outputs.push(y1);
    // 2. determinism: same seed, same output
    const m2 = c.make(1);
    const y2 = await readAndDispose(withInputs(c, (xs) => tf.tidy(() => c.forward(m2, xs))));
    const dSeed = maxAbsDiff(y1, y2);
    if (dSeed !== 0) fail(b, `same seed gave different outputs (max abs diff ${dSeed})`);
    m2.dispose();
    // 3. save then load: a model built with another seed, loaded with m's state, gives m's output
    const m3 = c.make(2);
    const sd = await (c.saveLoad ?? ((s: StateDict) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.clone()]))))(
      m.stateDict(),
    );
    m3.loadStateDict(sd);
    for (const t of Object.values(sd)) t.dispose();
    const y3 = await readAndDispose(withInputs(c, (xs) => tf.tidy(() => c.forward(m3, xs))));
    const dLoad = maxAbsDiff(y1, y3);
    if (dLoad > 1e-6) fail(b, `save/load changed the output (max abs diff ${dLoad})`);
    m3.dispose();
    // 4. gradients finite and non-zero for every trainable parameter
    const named = m.namedTrainableParameters();
    if (named.length === 0) fail(b, 'no trainable parameters');
    const lossFn = (xs: tf.Tensor[]) => (c.loss ? c.loss(m, xs) : (tf.tidy(() => c.forward(m, xs).square().mean()) as tf.Scalar));
    const grads = withInputs(c, (xs) =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(
          () => lossFn(xs),
          named.map(([, v]) => v),
        );
        return named.map(([, v]) => grads[v.name] ?? null);
      }),
    );
    const gradStats: { p: string; finite: boolean; nonZero: boolean; missing: boolean }[] = [];
    for (const [i, [p]] of named.entries()) {
      const g = grads[i];
      if (!g) {
        gradStats.push({ p, finite: false, nonZero: false, missing: true });
        continue;
      }
      const gv = await readAndDispose(g);
      gradStats.push({ p, finite: gv.every(Number.isFinite), nonZero: gv.some((x) => x !== 0), missing: false });
    }
    const missing = gradStats.filter((s) => s.missing).map((s) => s.p);
    const nonFinite = gradStats.filter((s) => !s.missing && !s.finite).map((s) => s.p);
    const zero = gradStats.filter((s) => !s.missing && s.finite && !s.nonZero && !c.zeroGradOk?.(s.p)).map((s) => s.p);
    if (missing.length) fail(b, `no gradient reached: ${missing.join(', ')}`);
    if (nonFinite.length) fail(b, `non-finite gradients: ${nonFinite.join(', ')}`);
    if (zero.length) fail(b, `all-zero gradients: ${zero.join(', ')}`);
    // 5. no tensor leak over a training step: the package's own (c.trainStep), else forward, backward
    // and a plain SGD update. Two warm-up steps first (optimizer slots are made on the first).
    const own = c.trainStep?.(m);
    let t = 0;
    const step = own
      ? () => withInputs(c, (xs) => own.step(xs, t++))
      : () =>
          withInputs(c, (xs) =>
            tf.tidy(() => {
              const { grads } = tf.variableGrads(
                () => lossFn(xs),
                named.map(([, v]) => v),
              );
              for (const [, v] of named) v.assign(v.sub(grads[v.name]!.mul(1e-3)));
            }),
          );
    try {
      step();
      step();
      const before = tf.memory().numTensors;
      step();
      const after = tf.memory().numTensors;
      if (after !== before)
        fail(b, `tensor leak over ${own ? "the package's training step" : 'a training step'}: ${before} tensors before, ${after} after`);
    } finally {
      own?.dispose();
    }
    m.dispose();
  }
  let maxCrossBackendDiff = 0;
  for (let i = 1; i < outputs.length; i++) maxCrossBackendDiff = Math.max(maxCrossBackendDiff, maxAbsDiff(outputs[0]!, outputs[i]!));
  const tol = c.crossBackendTol ?? 1e-3;
  if (maxCrossBackendDiff > tol)
    throw new Error(
      `model contract "${c.name}": backends ${backends.join(' vs ')} disagree (max abs diff ${maxCrossBackendDiff} > ${tol})`,
    );
  return { backends, numParameters, maxCrossBackendDiff };
}
