/** Shared helpers of the kernel tests: host data from a seeded Rng, cpu-vs-wasm runs, errors. */
import { type BackendName, Rng, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

/** Host array of n draws from N(0, 1), reproducible by seed. */
export function randn(seed: number, n: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return out;
}

export const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** An independent re-statement of core's fmix32 hash (BigInt arithmetic, not Math.imul), for the dropout and Gumbel tests. */
const M32 = (1n << 32n) - 1n;
/** fmix32 in BigInt: h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16 (mod 2^32). */
export function fmix(h: bigint): bigint {
  h &= M32;
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M32;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M32;
  return h ^ (h >> 16n);
}

/** Run fn on `backend` and return its host results (tensors are created and freed inside). */
export async function on<T>(backend: BackendName, fn: () => T): Promise<T> {
  await useBackend(backend);
  return fn();
}

/**
 * Norm-wise relative error max_i |a_i - b_i| / max_i |b_i| (elementwise relative error is
 * meaningless for entries that are sums cancelling to near zero).
 */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths ${a.length} and ${b.length} differ`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (Number.isNaN(x) !== Number.isNaN(y)) return Number.POSITIVE_INFINITY;
    if (Number.isNaN(y) || x === y) continue;
    num = Math.max(num, Math.abs(x - y));
    den = Math.max(den, Math.abs(y));
  }
  return num === 0 ? 0 : num / Math.max(den, 1e-30);
}

/** Values of every tensor in `ts` as plain arrays, then dispose them. */
export function take(ts: tf.Tensor | tf.Tensor[]): Float32Array[] {
  const list = Array.isArray(ts) ? ts : [ts];
  const out = list.map((t) => Float32Array.from(t.dataSync()));
  for (const t of list) t.dispose();
  return out;
}

/** A deterministic shape-dependent seed. */
export const seedOf = (...xs: (number | boolean | string)[]) =>
  xs.reduce<number>((h, x) => (Math.imul(h, 31) + (typeof x === 'number' ? x : String(x).length + (x === true ? 7 : 0))) | 0, 17) >>> 0;

/** A tensor's float32 bit patterns, for bit-for-bit comparisons. */
export const bits = (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(t.dataSync()).buffer));

/**
 * A module's forward with a gradient tape recording (the training path: what tfjs differentiates),
 * for layers that take a one-call path when no tape records. The caller disposes the result.
 */
export function tapedForward(m: { forward(x: tf.Tensor): tf.Tensor }, x: tf.Tensor): tf.Tensor {
  let y: tf.Tensor | null = null;
  tf.grad((xx: tf.Tensor) => {
    y = tf.keep(m.forward(xx));
    return y.sum();
  })(x).dispose();
  return y!;
}

/** The names of the kernels one call of fn runs (through the engine), to check which path a layer takes. */
export function kernelsOf(fn: () => void): Set<string> {
  const seen = new Set<string>();
  const eng = tf.engine() as unknown as { runKernel: (...a: unknown[]) => unknown };
  const orig = eng.runKernel.bind(eng);
  eng.runKernel = (name: unknown, ...rest: unknown[]) => {
    seen.add(name as string);
    return orig(name, ...rest);
  };
  try {
    fn();
  } finally {
    eng.runKernel = orig;
  }
  return seen;
}
