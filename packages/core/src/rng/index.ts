/**
 * Seeded random streams. Every random draw in mmlm takes its seed from an `Rng`, so the same seed
 * on the same backend gives the same numbers, and the stream state can be checkpointed.
 *
 * The generator is pure-rand's xoroshiro128+ (serialisable state). tfjs random ops take a seed per
 * call and generate on the host in JS (seedrandom), so tensors drawn with the same seed are
 * identical on every backend.
 */
import { xoroshiro128plus } from 'pure-rand/generator/XoroShiro';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { gumbelNoise } from '../backend/kernels/fused.js';
import { tf } from '../tf.js';
import { mix32 } from './hash.js';

export { mix32 };

function hashString(s: string): number {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A stable 32-bit hash of a string: FNV-1a finished with MurmurHash3's fmix32 so every bit is mixed. */
export function stableHash32(s: string): number {
  return mix32(hashString(s));
}

export interface RngState {
  /** xoroshiro128+ state words. */
  state: number[];
}

export class Rng {
  private gen: RandomGenerator;

  constructor(seed: number | RngState = 0) {
    if (typeof seed === 'number') {
      if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
      // pure-rand seeds xoroshiro128+ from the 32-bit seed directly, and its first outputs for small
      // seeds are all near 2^32 - 1: mix the seed and discard a warm-up.
      this.gen = xoroshiro128plus(mix32((seed | 0) ^ 0x9e3779b9) | 0);
      for (let i = 0; i < 16; i++) this.gen.unsafeNext();
    } else {
      if (!Array.isArray(seed.state) || seed.state.length !== 4)
        throw new Error(`Rng: state must hold 4 numbers, got ${JSON.stringify(seed.state)}`);
      this.gen = xoroshiro128plus.fromState(seed.state);
    }
  }

  /** A uint32. */
  nextUint32(): number {
    return this.gen.unsafeNext() >>> 0;
  }

  /** A seed for a tfjs random op (a positive integer below 2^31). */
  nextSeed(): number {
    return this.nextUint32() & 0x7fffffff;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    if (!(hi > lo)) throw new Error(`Rng.int: need hi > lo, got [${lo}, ${hi})`);
    return lo + Math.floor(this.uniform() * (hi - lo));
  }

  /** Fisher-Yates shuffle, in place. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
    }
    return xs;
  }

  /** An independent child stream; does not advance this one. */
  fork(stream: number | string): Rng {
    const s = typeof stream === 'number' ? stream >>> 0 : hashString(stream);
    const st = this.gen.getState();
    return new Rng(mix32((st[0] ?? 0) ^ mix32(s + 0x9e3779b9) ^ mix32((st[2] ?? 0) + 1)) | 0);
  }

  getState(): RngState {
    return { state: [...this.gen.getState()] };
  }

  setState(s: RngState): void {
    this.gen = new Rng(s).gen;
  }

  // --- tensors (seeded tfjs ops) ---
  randn(shape: number[], mean = 0, std = 1): tf.Tensor {
    return tf.randomNormal(shape, mean, std, 'float32', this.nextSeed());
  }

  truncatedNormal(shape: number[], mean = 0, std = 1): tf.Tensor {
    return tf.truncatedNormal(shape, mean, std, 'float32', this.nextSeed());
  }

  rand(shape: number[], min = 0, max = 1): tf.Tensor {
    return tf.randomUniform(shape, min, max, 'float32', this.nextSeed());
  }

  randint(shape: number[], lo: number, hi: number): tf.Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Int32Array(n);
    for (let i = 0; i < n; i++) v[i] = this.int(lo, hi);
    return tf.tensor(v, shape, 'int32');
  }

  /**
   * Gumbel(0, 1) noise -ln(-ln U), U clamped to [eps, 1 - eps], from one seed of this stream: core's
   * counter-based gumbelNoise (one WebAssembly SIMD pass on wasm; see backend/kernels/fused.ts).
   * U never rounds to 1 (it is at most 1 - 2^-24), so the noise is finite for every eps in [0, 1/2).
   */
  gumbel(shape: number[], eps = 1e-10): tf.Tensor {
    return gumbelNoise(shape, this.nextSeed(), eps);
  }
}
