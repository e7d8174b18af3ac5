/**
 * Elementwise and reduction kernels in WebAssembly SIMD on the tfjs-wasm heap: float32 sums over
 * a contiguous block of axes, integer powers, exp, sqrt, tanh, and GELU (tanh form) and SiLU with
 * their derivatives.
 *
 * e^x = 2^n e^r with n = round(x log2 e), r = x - n ln 2 (Cody-Waite split of ln 2, so |r| <= ln2/2)
 * and e^r by its Taylor polynomial to r^7 (truncation error < 1e-8 relative).
 * tanh(x) for |x| < 1/2 is its Maclaurin series to x^13 (coefficients from the Bernoulli-number
 * expansion, Abramowitz & Stegun 4.5.64; the first omitted term is < 5e-8 relative there); for
 * |x| >= 1/2 it is sign(x) (1 - 2 / (e^{2|x|} + 1)), |x| clamped at 20 where tanh is 1 in float32.
 */

import { WasmJs, type WasmMemory } from './simd_gemm.js';
import {
  assembleModule,
  block,
  br_if,
  type Code,
  FuncBuilder,
  f32,
  f32x4,
  get,
  i32,
  i32x4,
  if_,
  inc,
  type Local,
  select,
  seq,
  set,
  v128,
  v128ops,
  whileLoop,
} from './wasm_asm.js';
import type { AdamWKernelAttrs } from './wasm_ops.js';

/**
 * The four lanes of an f32x4 partial sum added as core's Sum kernel (rowSums) adds them,
 * (l0 + l1) + (l2 + l3): every kernel that reproduces a Sum over the last axis uses this order.
 */
const laneSum = (v: Local): Code =>
  f32.add(
    f32.add(f32x4.extract_lane(get(v), 0), f32x4.extract_lane(get(v), 1)),
    f32.add(f32x4.extract_lane(get(v), 2), f32x4.extract_lane(get(v), 3)),
  );

/** sumRows(x, R, inner, out): out[i] = sum_r x[r * inner + i], i < inner (addresses in bytes). */
function sumRows(): FuncBuilder {
  const f = new FuncBuilder('sumRows', ['i32', 'i32', 'i32', 'i32']);
  const [x, R, inner, out] = f.params as [Local, Local, Local, Local];
  const r = f.local('i32');
  const i = f.local('i32');
  const p = f.local('i32');
  const q = f.local('i32');
  const vecEnd = f.local('i32');
  f.body = seq(
    set(vecEnd, i32.and(get(inner), i32.const(~3))),
    set(i, i32.const(0)),
    whileLoop(
      i32.lt_u(get(i), get(inner)),
      f32.store(i32.add(get(out), i32.shl(get(i), i32.const(2))), f32.const(0)),
      inc(i, i32.const(1)),
    ),
    set(p, get(x)),
    whileLoop(
      i32.lt_u(get(r), get(R)),
      set(q, get(out)),
      set(i, i32.const(0)),
      whileLoop(
        i32.lt_u(get(i), get(vecEnd)),
        v128.store(get(q), f32x4.add(v128.load(get(q)), v128.load(get(p)))),
        inc(p, i32.const(16)),
        inc(q, i32.const(16)),
        inc(i, i32.const(4)),
      ),
      whileLoop(
        i32.lt_u(get(i), get(inner)),
        f32.store(get(q), f32.add(f32.load(get(q)), f32.load(get(p)))),
        inc(p, i32.const(4)),
        inc(q, i32.const(4)),
        inc(i, i32.const(1)),
      ),
      inc(r, i32.const(1)),
    ),
  );
  return f;
}

/**
 * rowSums(x, rows, R, out): out[o] = sum_r x[o * R + r] (four interleaved partial sums per row, the
 * lanes added (0 + 1) + (2 + 3), then the tail). rowSumSquares: the same sums of the float32 squares
 * x^2, so it gives the bits of Square followed by core's Sum.
 */
function rowSums(square = false): FuncBuilder {
  const f = new FuncBuilder(square ? 'rowSumSquares' : 'rowSums', ['i32', 'i32', 'i32', 'i32']);
  const [x, rows, R, out] = f.params as [Local, Local, Local, Local];
  const o = f.local('i32');
  const r = f.local('i32');
  const vecEnd = f.local('i32');
  const acc = f.local('v128');
  const s = f.local('f32');
  const v = f.local('v128');
  const e = f.local('f32');
  const vec = (load: Code): Code => (square ? seq(set(v, load), f32x4.mul(get(v), get(v))) : load);
  const sca = (load: Code): Code => (square ? seq(set(e, load), f32.mul(get(e), get(e))) : load);
  f.body = seq(
    set(vecEnd, i32.and(get(R), i32.const(~3))),
    whileLoop(
      i32.lt_u(get(o), get(rows)),
      set(acc, v128.zero()),
      set(r, i32.const(0)),
      whileLoop(
        i32.lt_u(get(r), get(vecEnd)),
        set(acc, f32x4.add(get(acc), vec(v128.load(get(x))))),
        inc(x, i32.const(16)),
        inc(r, i32.const(4)),
      ),
      set(s, laneSum(acc)),
      whileLoop(i32.lt_u(get(r), get(R)), set(s, f32.add(get(s), sca(f32.load(get(x))))), inc(x, i32.const(4)), inc(r, i32.const(1))),
      f32.store(get(out), get(s)),
      inc(out, i32.const(4)),
      inc(o, i32.const(1)),
    ),
  );
  return f;
}

/** scale(x, n, c, out): out[i] = x[i] c in float32, i < n (n a multiple of 4). */
function scaleFunc(): FuncBuilder {
  const f = new FuncBuilder('scale', ['i32', 'i32', 'f32', 'i32']);
  const [x, n, c, out] = f.params as [Local, Local, Local, Local];
  const i = f.local('i32');
  const vc = f.local('v128');
  f.body = seq(
    set(vc, f32x4.splat(get(c))),
    whileLoop(
      i32.lt_u(get(i), get(n)),
      v128.store(get(out), f32x4.mul(v128.load(get(x)), get(vc))),
      inc(x, i32.const(16)),
      inc(out, i32.const(16)),
      inc(i, i32.const(4)),
    ),
  );
  return f;
}

/**
 * flush(x, n, below, out): out[i] = +0 where |x[i]| < below, else x[i] (NaN kept: the comparison is
 * false), i < n (n a multiple of 4).
 */
function flushFunc(): FuncBuilder {
  const f = new FuncBuilder('flush', ['i32', 'i32', 'f32', 'i32']);
  const [x, n, below, out] = f.params as [Local, Local, Local, Local];
  const i = f.local('i32');
  const vb = f.local('v128');
  const v = f.local('v128');
  f.body = seq(
    set(vb, f32x4.splat(get(below))),
    whileLoop(
      i32.lt_u(get(i), get(n)),
      set(v, v128.load(get(x))),
      v128.store(get(out), v128ops.bitselect(v128.zero(), get(v), f32x4.lt(f32x4.abs(get(v)), get(vb)))),
      inc(x, i32.const(16)),
      inc(out, i32.const(16)),
      inc(i, i32.const(4)),
    ),
  );
  return f;
}

/** powInt(x, n, e, inv, out): out[i] = x[i]^e (e >= 1), or 1 / x[i]^e when inv != 0. */
function powInt(): FuncBuilder {
  const f = new FuncBuilder('powInt', ['i32', 'i32', 'i32', 'i32', 'i32']);
  const [x, n, e, inv, out] = f.params as [Local, Local, Local, Local, Local];
  const i = f.local('i32');
  const j = f.local('i32');
  const vecEnd = f.local('i32');
  const v = f.local('v128');
  const acc = f.local('v128');
  const sv = f.local('f32');
  const sacc = f.local('f32');
  f.body = seq(
    set(vecEnd, i32.and(get(n), i32.const(~3))),
    whileLoop(
      i32.lt_u(get(i), get(vecEnd)),
      set(v, v128.load(get(x))),
      set(acc, get(v)),
      set(j, i32.const(1)),
      whileLoop(i32.lt_u(get(j), get(e)), set(acc, f32x4.mul(get(acc), get(v))), inc(j, i32.const(1))),
      v128.store(get(out), get(acc)),
      block(br_if(0, i32.eqz(get(inv))), v128.store(get(out), f32x4.div(v128ops.f32(1), get(acc)))),
      inc(x, i32.const(16)),
      inc(out, i32.const(16)),
      inc(i, i32.const(4)),
    ),
    whileLoop(
      i32.lt_u(get(i), get(n)),
      set(sv, f32.load(get(x))),
      set(sacc, get(sv)),
      set(j, i32.const(1)),
      whileLoop(i32.lt_u(get(j), get(e)), set(sacc, f32.mul(get(sacc), get(sv))), inc(j, i32.const(1))),
      f32.store(get(out), get(sacc)),
      block(br_if(0, i32.eqz(get(inv))), f32.store(get(out), f32.div(f32.const(1), get(sacc)))),
      inc(x, i32.const(4)),
      inc(out, i32.const(4)),
      inc(i, i32.const(1)),
    ),
  );
  return f;
}

const TANH_SERIES = [1, -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925, 21844 / 6081075];
const EXP_TAYLOR = [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040];
const LN2_HI = 0.693359375; // 9 significant bits: n * LN2_HI is exact for |n| < 2^15
const LN2_LO = -2.1219444e-4;
/** 2 / (2k + 1), k = 0..4: ln m = s sum_k LOG_ATANH[k] s^2k (2 atanh s). */
const LOG_ATANH = [2, 2 / 3, 2 / 5, 2 / 7, 2 / 9];
const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;
/**
 * erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), the formula of tfjs's own Erf kernels:
 * erf(z) = 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) e^{-z^2}, t = 1 / (1 + p z), z >= 0.
 */
const ERF_P = 0.3275911;
const ERF_A = [0, 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429];
/** 1 / sqrt(2 pi): the standard normal density at 0. */
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * Scratch v128 locals (v) and constants (f32 splats, i32 splats) of the function being built; the
 * constants are materialised once before its loop (V8 rebuilds a v128.const at every use).
 */
interface Vars {
  (): Local;
  f(x: number): Code;
  i(x: number): Code;
}

function makeVars(f: FuncBuilder): { v: Vars; init: () => Code } {
  const consts = new Map<string, { local: Local; value: Code }>();
  const constant = (key: string, value: Code): Code => {
    let e = consts.get(key);
    if (!e) {
      e = { local: f.local('v128'), value };
      consts.set(key, e);
    }
    return get(e.local);
  };
  const v = (() => f.local('v128')) as Vars;
  v.f = (x) => constant(`f${x}`, v128ops.f32(x));
  v.i = (x) => constant(`i${x}`, v128ops.i32(x));
  return { v, init: () => seq(...[...consts.values()].map((e) => set(e.local, e.value))) };
}

/**
 * sum_k coef[k] z^k by Estrin's scheme (pairs (c_2k + c_2k+1 z) combined with z^2, z^4, ...): the
 * same terms as Horner's rule with a dependency chain of depth log2(degree) instead of degree.
 */
function poly(coef: number[], z: Code, v: Vars): Code {
  const zs = v();
  const pre: Code[] = [set(zs, z)];
  let terms: Code[] = [];
  for (let k = 0; k < coef.length; k += 2)
    terms.push(
      k + 1 < coef.length ? f32x4.add(v.f(coef[k] as number), f32x4.mul(get(zs), v.f(coef[k + 1] as number))) : v.f(coef[k] as number),
    );
  let zp = zs;
  while (terms.length > 1) {
    const z2 = v();
    pre.push(set(z2, f32x4.mul(get(zp), get(zp))));
    const next: Code[] = [];
    for (let k = 0; k < terms.length; k += 2)
      next.push(k + 1 < terms.length ? f32x4.add(terms[k] as Code, f32x4.mul(get(z2), terms[k + 1] as Code)) : (terms[k] as Code));
    terms = next;
    zp = z2;
  }
  return seq(...pre, terms[0] as Code);
}

/**
 * Round-to-nearest by the float adder: t = y + 1.5 * 2^23 holds round(y) in its low mantissa bits
 * (|y| < 2^22), so n = t - 1.5 * 2^23 and the bits of 2^n are (bits(t) - bits(1.5 * 2^23) + 127) << 23.
 */
const MAGIC = 12582912;
const MAGIC_BITS = 0x4b400000;
/** 2^n from t = n + MAGIC, for n in [-126, 127]. */
const pow2FromMagic = (t: Code, v: Vars): Code => i32x4.shl(i32x4.add(t, v.i(127 - MAGIC_BITS)), i32.const(23));

/**
 * e^x: x clamped to [-104, 89] (beyond, e^x is 0 or overflows in float32), n = round(x log2 e),
 * r = x - n ln 2, e^r by Taylor to r^7, times 2^n applied as 2^(n - 64) 2^64 when n > 63 and as
 * 2^(n + 64) 2^-64 when n < -63, so that the overflow to infinity and subnormal results come out right.
 */
function expVec(x: Code, v: Vars): Code {
  const y = v();
  const t = v();
  const n = v();
  const r = v();
  const hi = v();
  const lo = v();
  return seq(
    set(y, f32x4.pmax(f32x4.pmin(x, v.f(89)), v.f(-104))),
    set(t, f32x4.add(f32x4.mul(get(y), v.f(Math.LOG2E)), v.f(MAGIC))),
    set(n, f32x4.sub(get(t), v.f(MAGIC))),
    set(r, f32x4.sub(f32x4.sub(get(y), f32x4.mul(get(n), v.f(LN2_HI))), f32x4.mul(get(n), v.f(LN2_LO)))),
    set(hi, f32x4.gt(get(n), v.f(63))),
    set(lo, f32x4.lt(get(n), v.f(-63))),
    f32x4.mul(
      f32x4.mul(
        poly(EXP_TAYLOR, get(r), v),
        // 2^(n - 64 [hi] + 64 [lo]): bias 127 shifted by -64 / +64 where the lane is out of the normal range
        pow2FromMagic(i32x4.sub(i32x4.add(get(t), v128ops.and(get(lo), v.i(64))), v128ops.and(get(hi), v.i(64))), v),
      ),
      v128ops.bitselect(v.f(2 ** 64), v128ops.bitselect(v.f(2 ** -64), v.f(1), get(lo)), get(hi)),
    ),
  );
}

/**
 * ln x for positive, normal, finite x (the only inputs gumbelFunc gives it; no special cases):
 * x = 2^e m with m in [sqrt(1/2), sqrt(2)) taken from the bits (e = (bits(x) - bits(sqrt(1/2))) >> 23,
 * bits(m) = bits(x) - (e << 23)), then ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^9/9) with
 * s = (m - 1) / (m + 1), |s| <= 0.172 (the first omitted term, 2 s^11 / 11, is < 1e-9 relative), and
 * ln x = e LN2_HI + (ln m + e LN2_LO). Within 2 ulp of ln x (test/kernels/gumbel.test.ts).
 */
function logVec(x: Code, v: Vars): Code {
  const xs = v();
  const e = v();
  const f = v();
  const s = v();
  const ef = v();
  return seq(
    set(xs, x),
    set(e, i32x4.shr_s(i32x4.sub(get(xs), v.i(0x3f3504f3)), i32.const(23))),
    // f = m - 1 (exact: m is within a factor 2 of 1)
    set(f, f32x4.sub(i32x4.sub(get(xs), i32x4.shl(get(e), i32.const(23))), v.f(1))),
    set(s, f32x4.div(get(f), f32x4.add(get(f), v.f(2)))),
    set(ef, f32x4.convert_i32x4_s(get(e))),
    f32x4.add(
      f32x4.mul(get(ef), v.f(LN2_HI)),
      f32x4.add(f32x4.mul(get(s), poly(LOG_ATANH, f32x4.mul(get(s), get(s)), v)), f32x4.mul(get(ef), v.f(LN2_LO))),
    ),
  );
}

/** tanh (see the file comment). */
function tanhVec(x: Code, v: Vars): Code {
  const xs = v();
  const ax = v();
  const small = v();
  const y = v();
  const t = v();
  const n = v();
  const r = v();
  const p = v();
  return seq(
    set(xs, x),
    set(ax, f32x4.abs(get(xs))),
    set(small, f32x4.mul(get(xs), poly(TANH_SERIES, f32x4.mul(get(xs), get(xs)), v))),
    set(y, f32x4.pmin(f32x4.add(get(ax), get(ax)), v.f(40))),
    set(t, f32x4.add(f32x4.mul(get(y), v.f(Math.LOG2E)), v.f(MAGIC))),
    set(n, f32x4.sub(get(t), v.f(MAGIC))),
    set(r, f32x4.sub(f32x4.sub(get(y), f32x4.mul(get(n), v.f(LN2_HI))), f32x4.mul(get(n), v.f(LN2_LO)))),
    set(p, f32x4.mul(poly(EXP_TAYLOR, get(r), v), pow2FromMagic(get(t), v))), // e^{2|x|}
    set(p, f32x4.sub(v.f(1), f32x4.div(v.f(2), f32x4.add(get(p), v.f(1))))),
    set(p, v128ops.bitselect(get(p), get(xs), v.i(0x7fffffff))),
    v128ops.bitselect(get(small), get(p), f32x4.lt(get(ax), v.f(0.5))),
  );
}

/** GELU, tanh form (Hendrycks & Gimpel 2016, eq. 2): 0.5 x (1 + tanh(c (x + a x^3))). */
function geluVec(x: Code, v: Vars): Code {
  const xs = v();
  const t = v();
  return seq(
    set(xs, x),
    set(t, tanhVec(f32x4.mul(v.f(GELU_C), f32x4.mul(get(xs), f32x4.add(v.f(1), f32x4.mul(v.f(GELU_A), f32x4.mul(get(xs), get(xs)))))), v)),
    f32x4.mul(f32x4.mul(v.f(0.5), get(xs)), f32x4.add(v.f(1), get(t))),
  );
}

/** dy * d/dx GELU_tanh(x) = dy (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)), t = tanh(c (x + a x^3)). */
function geluGradVec(dy: Code, x: Code, v: Vars): Code {
  const xs = v();
  const x2 = v();
  const t = v();
  return seq(
    set(xs, x),
    set(x2, f32x4.mul(get(xs), get(xs))),
    set(t, tanhVec(f32x4.mul(v.f(GELU_C), f32x4.mul(get(xs), f32x4.add(v.f(1), f32x4.mul(v.f(GELU_A), get(x2))))), v)),
    f32x4.mul(
      dy,
      f32x4.add(
        f32x4.mul(v.f(0.5), f32x4.add(v.f(1), get(t))),
        f32x4.mul(
          f32x4.mul(f32x4.mul(v.f(0.5 * GELU_C), get(xs)), f32x4.sub(v.f(1), f32x4.mul(get(t), get(t)))),
          f32x4.add(v.f(1), f32x4.mul(v.f(3 * GELU_A), get(x2))),
        ),
      ),
    ),
  );
}

/**
 * Phi(x) = 0.5 (1 + erf(x / sqrt 2)) with erf by ERF_A above (odd: the magnitude for |z|, the sign
 * bit of z), given e = e^{-z^2} = e^{-x^2 / 2}, which the gradient needs as well (phi(x) = e / sqrt(2 pi)).
 */
function phiFromExp(z: Code, az: Code, e: Code, v: Vars): Code {
  const t = v();
  return seq(
    set(t, f32x4.div(v.f(1), f32x4.add(v.f(1), f32x4.mul(v.f(ERF_P), az)))),
    f32x4.mul(v.f(0.5), f32x4.add(v.f(1), v128ops.bitselect(f32x4.sub(v.f(1), f32x4.mul(poly(ERF_A, get(t), v), e)), z, v.i(0x7fffffff)))),
  );
}

/** z = x / sqrt 2, |z| and e^{-z^2} into the given locals. */
function erfArgs(x: Code, zs: Local, az: Local, e: Local, v: Vars): Code {
  return seq(
    set(zs, f32x4.mul(x, v.f(Math.SQRT1_2))),
    set(az, f32x4.abs(get(zs))),
    set(e, expVec(f32x4.neg(f32x4.mul(get(az), get(az))), v)),
  );
}

/** GELU, exact (Hendrycks & Gimpel 2016, eq. 1): x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). */
function geluErfVec(x: Code, v: Vars): Code {
  const [xs, zs, az, e] = [v(), v(), v(), v()];
  return seq(set(xs, x), erfArgs(get(xs), zs, az, e, v), f32x4.mul(get(xs), phiFromExp(get(zs), get(az), get(e), v)));
}

/** dy * d/dx x Phi(x) = dy (Phi(x) + x phi(x)), phi(x) = e^{-x^2 / 2} / sqrt(2 pi): one e^{-x^2 / 2} for both terms. */
function geluErfGradVec(dy: Code, x: Code, v: Vars): Code {
  const [xs, zs, az, e] = [v(), v(), v(), v()];
  return seq(
    set(xs, x),
    erfArgs(get(xs), zs, az, e, v),
    f32x4.mul(dy, f32x4.add(phiFromExp(get(zs), get(az), get(e), v), f32x4.mul(f32x4.mul(get(xs), v.f(INV_SQRT_2PI)), get(e)))),
  );
}

/** SiLU x sigmoid(x), sigmoid(x) = 1 / (1 + e^-x) (e^-x = inf past x = -89 gives exactly -0 * 0). */
function siluVec(x: Code, v: Vars): Code {
  const xs = v();
  return seq(set(xs, x), f32x4.mul(get(xs), f32x4.div(v.f(1), f32x4.add(v.f(1), expVec(f32x4.neg(get(xs)), v)))));
}

/** dy * d/dx SiLU(x) = dy s (1 + x (1 - s)), s = sigmoid(x). */
function siluGradVec(dy: Code, x: Code, v: Vars): Code {
  const xs = v();
  const sg = v();
  return seq(
    set(xs, x),
    set(sg, f32x4.div(v.f(1), f32x4.add(v.f(1), expVec(f32x4.neg(get(xs)), v)))),
    f32x4.mul(dy, f32x4.mul(get(sg), f32x4.add(v.f(1), f32x4.mul(get(xs), f32x4.sub(v.f(1), get(sg)))))),
  );
}

/**
 * name(in_0 .. in_{k-1}, n, out, tmp): out[i] = body(in_0[i], ..) over n floats; the last n mod 4
 * go through zero-padded copies at tmp (16 (k + 1) bytes).
 */
function mapFunc(name: string, arity: number, body: (ins: Code[], v: Vars) => Code): FuncBuilder {
  const f = new FuncBuilder(name, [...new Array<'i32'>(arity).fill('i32'), 'i32', 'i32', 'i32']);
  const ins = f.params.slice(0, arity);
  const [n, out, tmp] = f.params.slice(arity) as [Local, Local, Local];
  const i = f.local('i32');
  const k = f.local('i32');
  const vecEnd = f.local('i32');
  const { v, init } = makeVars(f);
  const at = (p: Code, kk: Local) => i32.add(p, i32.shl(get(kk), i32.const(2)));
  const tail: Code[] = [];
  ins.forEach((p, j) => {
    tail.push(
      v128.store(get(tmp), v128.zero(), 16 * j),
      set(k, i32.const(0)),
      whileLoop(
        i32.lt_u(i32.add(get(i), get(k)), get(n)),
        f32.store(at(get(tmp), k), f32.load(at(get(p), k)), 16 * j),
        inc(k, i32.const(1)),
      ),
    );
  });
  tail.push(
    v128.store(
      get(tmp),
      body(
        ins.map((_, j) => v128.load(get(tmp), 16 * j)),
        v,
      ),
      16 * arity,
    ),
    set(k, i32.const(0)),
    whileLoop(
      i32.lt_u(i32.add(get(i), get(k)), get(n)),
      f32.store(at(get(out), k), f32.load(at(get(tmp), k), 16 * arity)),
      inc(k, i32.const(1)),
    ),
  );
  const main = whileLoop(
    i32.lt_u(get(i), get(vecEnd)),
    v128.store(
      get(out),
      body(
        ins.map((p) => v128.load(get(p))),
        v,
      ),
    ),
    ...ins.map((p) => inc(p, i32.const(16))),
    inc(out, i32.const(16)),
    inc(i, i32.const(4)),
  );
  f.body = seq(set(vecEnd, i32.and(get(n), i32.const(~3))), init(), main, block(br_if(0, i32.eq(get(i), get(n))), ...tail));
  return f;
}

/** The hash of dropoutFunc / dropoutHash (fmix32 of ctr 0x9e3779b9 + key) per lane, into h. */
function hashInto(h: Local, ctr: Code, vkey: Code, v: Vars): Code {
  const xorShift = (bits: number): Code => set(h, v128ops.xor(get(h), i32x4.shr_u(get(h), i32.const(bits))));
  return seq(
    set(h, i32x4.add(i32x4.mul(ctr, v.i(0x9e3779b9 | 0)), vkey)),
    xorShift(16),
    set(h, i32x4.mul(get(h), v.i(0x85ebca6b | 0))),
    xorShift(13),
    set(h, i32x4.mul(get(h), v.i(0xc2b2ae35 | 0))),
    xorShift(16),
  );
}

/**
 * dropout(x, n, out, key, thr, scale): out[i] = x[i] * (dropoutHash(key, i) >= thr (unsigned) ? scale : 0)
 * for the first n floats (n a multiple of 4; the caller does the rest with the same hash, see
 * dropoutHash in fused.ts).
 */
function dropoutFunc(): FuncBuilder {
  const f = new FuncBuilder('dropout', ['i32', 'i32', 'i32', 'i32', 'i32', 'f32']);
  const [x, n, out, key, thr, scale] = f.params as [Local, Local, Local, Local, Local, Local];
  const i = f.local('i32');
  const ctr = f.local('v128');
  const h = f.local('v128');
  const vkey = f.local('v128');
  const vthr = f.local('v128');
  const vscale = f.local('v128');
  const { v, init } = makeVars(f);
  // built before init(): building it registers the constants init() materialises ahead of the loop
  const main = whileLoop(
    i32.lt_u(get(i), get(n)),
    hashInto(h, get(ctr), get(vkey), v),
    // x * (kept ? scale : 0), as the composite x * mask (a dropped negative x gives -0 in both)
    v128.store(get(out), f32x4.mul(v128.load(get(x)), v128ops.and(get(vscale), i32x4.ge_u(get(h), get(vthr))))),
    set(ctr, i32x4.add(get(ctr), v.i(4))),
    inc(x, i32.const(16)),
    inc(out, i32.const(16)),
    inc(i, i32.const(4)),
  );
  f.body = seq(
    init(),
    set(ctr, v128ops.i32x4([0, 1, 2, 3])),
    set(vkey, i32x4.splat(get(key))),
    set(vthr, i32x4.splat(get(thr))),
    set(vscale, f32x4.splat(get(scale))),
    main,
  );
  return f;
}

/**
 * Gumbel noise -ln(-ln u) per lane from the hash h (see gumbelFunc): u = ((h >>> 9) + 1/2) 2^-23
 * ((h >>> 9) < 2^23 converts exactly; k 2^-23 + 2^-24 = (2k + 1) 2^-24 is exact in float32), clamped
 * to [vlo, vhi].
 */
function gumbelFromHash(h: Local, vlo: Code, vhi: Code, v: Vars): Code {
  const u = v();
  return seq(
    set(u, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.shr_u(get(h), i32.const(9))), v.f(2 ** -23)), v.f(2 ** -24))),
    set(u, f32x4.pmin(f32x4.pmax(get(u), vlo), vhi)),
    f32x4.neg(logVec(f32x4.neg(logVec(get(u), v)), v)),
  );
}

/**
 * gumbel(n, out, key, lo, hi): out[i] = -ln(-ln u_i) for the first n floats (n a multiple of 4; the
 * caller does the rest with gumbelUniform in fused.ts), where h = fmix32(i 0x9e3779b9 + key) (the
 * dropout hash), u_i = ((h >>> 9) + 1/2) 2^-23, exactly representable and in [2^-24, 1 - 2^-24],
 * then clamped to [lo, hi]. -ln u is then in [6e-8, 16.7], where logVec holds.
 */
function gumbelFunc(): FuncBuilder {
  const f = new FuncBuilder('gumbel', ['i32', 'i32', 'i32', 'f32', 'f32']);
  const [n, out, key, lo, hi] = f.params as [Local, Local, Local, Local, Local];
  const i = f.local('i32');
  const ctr = f.local('v128');
  const h = f.local('v128');
  const vkey = f.local('v128');
  const vlo = f.local('v128');
  const vhi = f.local('v128');
  const { v, init } = makeVars(f);
  // built before init(): building it registers the constants init() materialises ahead of the loop
  const main = whileLoop(
    i32.lt_u(get(i), get(n)),
    hashInto(h, get(ctr), get(vkey), v),
    v128.store(get(out), gumbelFromHash(h, get(vlo), get(vhi), v)),
    set(ctr, i32x4.add(get(ctr), v.i(4))),
    inc(out, i32.const(16)),
    inc(i, i32.const(4)),
  );
  f.body = seq(
    init(),
    set(ctr, v128ops.i32x4([0, 1, 2, 3])),
    set(vkey, i32x4.splat(get(key))),
    set(vlo, f32x4.splat(get(lo))),
    set(vhi, f32x4.splat(get(hi))),
    main,
  );
  return f;
}

/**
 * adamw(p, m, s, g, P, M, S, n, decay, b1, c1, b2, c2, bc, eps, ss): one AdamW update of n elements
 * (n a multiple of 4), in float32 in the order of wasm_ops.ts's adamwOnHeap, whose Math.fround of
 * each float64 +, *, / and sqrt is exactly the float32 operation, so both give the same bits:
 *   P = p decay - ((m b1 + g c1) / (sqrt(s b2 + (g g) c2) / bc + eps)) ss,  M = m b1 + g c1,  S = s b2 + (g g) c2.
 */
function adamwFunc(): FuncBuilder {
  const f = new FuncBuilder('adamw', [...new Array<'i32'>(8).fill('i32'), ...new Array<'f32'>(8).fill('f32')]);
  const [p, m, s, g, P, M, S, n, decay, b1, c1, b2, c2, bc, eps, ss] = f.params as Local[];
  const i = f.local('i32');
  const v = (l: Local) => {
    const x = f.local('v128');
    return { x, init: set(x, f32x4.splat(get(l))) };
  };
  const [vd, vb1, vc1, vb2, vc2, vbc, veps, vss] = [decay, b1, c1, b2, c2, bc, eps, ss].map((l) => v(l!));
  const gi = f.local('v128');
  const mi = f.local('v128');
  const si = f.local('v128');
  f.body = seq(
    ...[vd, vb1, vc1, vb2, vc2, vbc, veps, vss].map((x) => x!.init),
    whileLoop(
      i32.lt_u(get(i), get(n!)),
      set(gi, v128.load(get(g!))),
      set(mi, f32x4.add(f32x4.mul(v128.load(get(m!)), get(vb1!.x)), f32x4.mul(get(gi), get(vc1!.x)))),
      set(si, f32x4.add(f32x4.mul(v128.load(get(s!)), get(vb2!.x)), f32x4.mul(f32x4.mul(get(gi), get(gi)), get(vc2!.x)))),
      v128.store(get(M!), get(mi)),
      v128.store(get(S!), get(si)),
      v128.store(
        get(P!),
        f32x4.sub(
          f32x4.mul(v128.load(get(p!)), get(vd!.x)),
          f32x4.mul(f32x4.div(get(mi), f32x4.add(f32x4.div(f32x4.sqrt(get(si)), get(vbc!.x)), get(veps!.x))), get(vss!.x)),
        ),
      ),
      ...[p, m, s, g, P, M, S].map((l) => inc(l!, i32.const(16))),
      inc(i, i32.const(4)),
    ),
  );
  return f;
}

/**
 * normRows(rows, D, x, w, b, y, eps, layer, hasW, hasB): RMSNorm (layer = 0) or LayerNorm
 * (layer != 0) forward over rows of D float32 values, with the float32 steps of the composite's
 * wasm kernels in their order (so bit-identical to it): Mean is a sequential float32 sum divided
 * by D; then + eps, 1 / sqrt, the multiplies (and LayerNorm's subtract, add). The sums must run in
 * index order, so they are scalar, over NORM_ROWS rows at once (independent chains); the
 * elementwise pass is f32x4 (each lane rounds as the scalar op would) with a scalar tail. When
 * `stats` is set, row r's mean (LayerNorm; +0 for RMSNorm), rs = 1 / sqrt(ve) and ve = mean of
 * squares + eps go to meanOut[r], rsOut[r], veOut[r]: what the training backward (normGradRows) reads.
 */
const NORM_ROWS = 4;
function normRowsFunc(): FuncBuilder {
  const f = new FuncBuilder('normRows', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [rows, D, x, w, b, y, eps, layer, hasW, hasB, stats, meanOut, rsOut, veOut] = f.params as Local[] as [
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
  ];
  const r = f.local('i32');
  const i = f.local('i32');
  const v = f.local('f32');
  const vv = f.local('v128');
  const Df = f.local('f32');
  const bytes = f.local('i32');
  const vecBytes = f.local('i32');
  const ptr = Array.from({ length: NORM_ROWS }, () => f.local('i32'));
  const sum = Array.from({ length: NORM_ROWS }, () => f.local('f32'));
  const mean = Array.from({ length: NORM_ROWS }, () => f.local('f32'));
  const rs = Array.from({ length: NORM_ROWS }, () => f.local('f32'));
  const ve = Array.from({ length: NORM_ROWS }, () => f.local('f32'));
  const j4 = Array.from({ length: NORM_ROWS }, (_, j) => j);
  /** Byte offset of row r + j's entry in a float32 [rows] vector. */
  const rowAt = (vec: Local, j: number): Code => i32.add(get(vec), i32.shl(i32.add(get(r), i32.const(j)), i32.const(2)));
  /** k rows starting at x: statistics with k interleaved sums, then the elementwise pass row by row. */
  const block_ = (k: number): Code => {
    const js = j4.slice(0, k);
    const setPtrs = seq(...js.map((j) => set(ptr[j]!, i32.add(get(x), i32.mul(get(bytes), i32.const(j))))));
    const overRow = (...body: Code[]): Code =>
      seq(set(i, i32.const(0)), whileLoop(i32.lt_u(get(i), get(bytes)), ...body, inc(i, i32.const(4))));
    const at = (j: number): Code => f32.load(i32.add(get(ptr[j]!), get(i)));
    const centred = (j: number): Code => f32.sub(at(j), get(mean[j]!)); // RMSNorm: mean +0, x - (+0) is x bit for bit
    return seq(
      setPtrs,
      ...js.map((j) => set(mean[j]!, f32.const(0))),
      if_(get(layer), [
        ...js.map((j) => set(sum[j]!, f32.const(0))),
        overRow(...js.map((j) => set(sum[j]!, f32.add(get(sum[j]!), at(j))))),
        ...js.map((j) => set(mean[j]!, f32.div(get(sum[j]!), get(Df)))),
      ]),
      ...js.map((j) => set(sum[j]!, f32.const(0))),
      overRow(...js.map((j) => seq(set(v, centred(j)), set(sum[j]!, f32.add(get(sum[j]!), f32.mul(get(v), get(v))))))),
      ...js.map((j) => set(ve[j]!, f32.add(f32.div(get(sum[j]!), get(Df)), get(eps)))),
      ...js.map((j) => set(rs[j]!, f32.div(f32.const(1), f32.sqrt(get(ve[j]!))))),
      if_(
        get(stats),
        js.map((j) =>
          seq(
            f32.store(rowAt(meanOut, j), get(mean[j]!)),
            f32.store(rowAt(rsOut, j), get(rs[j]!)),
            f32.store(rowAt(veOut, j), get(ve[j]!)),
          ),
        ),
      ),
      ...js.map((j) =>
        seq(
          // y = ((x - mean) rs) w + b: f32x4 over the first D - D % 4, then scalar
          set(i, i32.const(0)),
          whileLoop(
            i32.lt_u(get(i), get(vecBytes)),
            set(vv, f32x4.mul(f32x4.sub(v128.load(i32.add(get(ptr[j]!), get(i))), f32x4.splat(get(mean[j]!))), f32x4.splat(get(rs[j]!)))),
            if_(get(hasW), [set(vv, f32x4.mul(get(vv), v128.load(i32.add(get(w), get(i)))))]),
            if_(get(hasB), [set(vv, f32x4.add(get(vv), v128.load(i32.add(get(b), get(i)))))]),
            v128.store(i32.add(get(y), get(i)), get(vv)),
            inc(i, i32.const(16)),
          ),
          whileLoop(
            i32.lt_u(get(i), get(bytes)),
            set(v, f32.mul(centred(j), get(rs[j]!))),
            if_(get(hasW), [set(v, f32.mul(get(v), f32.load(i32.add(get(w), get(i)))))]),
            if_(get(hasB), [set(v, f32.add(get(v), f32.load(i32.add(get(b), get(i)))))]),
            f32.store(i32.add(get(y), get(i)), get(v)),
            inc(i, i32.const(4)),
          ),
          inc(y, get(bytes)),
        ),
      ),
      inc(x, i32.mul(get(bytes), i32.const(k))),
      inc(r, i32.const(k)),
    );
  };
  f.body = seq(
    set(Df, f32.convert_i32_u(get(D))),
    set(bytes, i32.shl(get(D), i32.const(2))),
    set(vecBytes, i32.shl(i32.and(get(D), i32.const(~3)), i32.const(2))),
    whileLoop(i32.le_u(i32.add(get(r), i32.const(NORM_ROWS)), get(rows)), block_(NORM_ROWS)),
    whileLoop(i32.lt_u(get(r), get(rows)), block_(1)),
  );
  return f;
}

/**
 * normGradRows(rows, D, dy, x, w, mean, rs, p, dx1, dx2, dw, db, layer, hasW, hasB): the backward of
 * normRows (D a multiple of 4), with the float32 steps that tfjs's autodiff of the composite takes
 * on wasm, in their order, so bit-identical to it (nn/norm.ts; the tests compare bits). Per row, with
 * xc = x - mean (x itself for RMSNorm), g = dy w (dy without weight), rs and p = pow(ve, 1.5) (the
 * stock Pow kernel, as Rsqrt's gradient calls it):
 *   dr = sum_c g xc (core's Sum over the last axis: four lanes, (l0 + l1) + (l2 + l3));
 *   s1 = -(dr / (p 2)) / D (Rsqrt's, Add's and Mean's gradients; Mean's times-ones is exact);
 *   LayerNorm: dx1 = dxc = g rs + s1 (xc 2) (Mul's and Square's gradients of xc, accumulated) and
 *     dx2 = (-(sum_c dxc)) / D (Mean's gradient of x, through Sub's);
 *   RMSNorm: dx1 = g rs (Mul's gradient of x) and dx2 = s1 (x 2) (Square's);
 *   dw[c] += dy (xc rs) and db[c] += dy over the rows in order (core's Sum over the leading axes).
 * x's gradient is two tensors because the composite hands it to the tape as two contributions, which
 * the tape adds to the rest of x's gradient one after the other, dx1 first (reverse tape order).
 */
function normGradRowsFunc(): FuncBuilder {
  const f = new FuncBuilder(
    'normGradRows',
    Array.from({ length: 15 }, () => 'i32' as const),
  );
  const [rows, D, dy, x, w, mean, rs, p, dx, dx2, dw, db, layer, hasW, hasB] = f.params as Local[] as [
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
  ];
  const r = f.local('i32');
  const i = f.local('i32');
  const bytes = f.local('i32');
  const Df = f.local('f32');
  const mu = f.local('v128');
  const rsv = f.local('v128');
  const s = f.local('v128');
  const acc = f.local('v128');
  const xc = f.local('v128');
  const g = f.local('v128');
  const d = f.local('v128');
  const t = f.local('f32');
  const two = f.local('v128');
  const dSq = f.local('v128');
  const at = (base: Local): Code => i32.add(get(base), get(i));
  const rowScalar = (vec: Local): Code => f32.load(i32.add(get(vec), i32.shl(get(r), i32.const(2))));
  const overRow = (...body: Code[]): Code =>
    seq(set(i, i32.const(0)), whileLoop(i32.lt_u(get(i), get(bytes)), ...body, inc(i, i32.const(16))));
  const loadXcG = seq(
    set(xc, f32x4.sub(v128.load(at(x)), get(mu))),
    set(d, v128.load(at(dy))),
    set(g, get(d)),
    if_(get(hasW), [set(g, f32x4.mul(get(d), v128.load(i32.add(get(w), get(i)))))]),
  );
  f.body = seq(
    set(Df, f32.convert_i32_u(get(D))),
    set(bytes, i32.shl(get(D), i32.const(2))),
    set(two, f32x4.splat(f32.const(2))),
    set(mu, v128.zero()),
    // the column sums start at +0, as core's Sum
    if_(get(hasW), [overRow(v128.store(at(dw), v128.zero()))]),
    if_(get(hasB), [overRow(v128.store(at(db), v128.zero()))]),
    whileLoop(
      i32.lt_u(get(r), get(rows)),
      if_(get(layer), [set(mu, f32x4.splat(rowScalar(mean)))]),
      set(rsv, f32x4.splat(rowScalar(rs))),
      // dr = sum_c g xc
      set(acc, v128.zero()),
      overRow(loadXcG, set(acc, f32x4.add(get(acc), f32x4.mul(get(g), get(xc))))),
      set(t, f32.div(f32.neg(f32.div(laneSum(acc), f32.mul(rowScalar(p), f32.const(2)))), get(Df))),
      set(s, f32x4.splat(get(t))),
      // LayerNorm: dxc = g rs + s1 (xc 2) and its sum; RMSNorm: g rs and s1 (x 2) apart; the column sums
      set(acc, v128.zero()),
      overRow(
        loadXcG,
        set(dSq, f32x4.mul(get(s), f32x4.mul(get(xc), get(two)))),
        set(g, f32x4.mul(get(g), get(rsv))),
        if_(get(layer), [set(g, f32x4.add(get(g), get(dSq))), set(acc, f32x4.add(get(acc), get(g)))], [v128.store(at(dx2), get(dSq))]),
        v128.store(at(dx), get(g)),
        if_(get(hasW), [v128.store(at(dw), f32x4.add(v128.load(at(dw)), f32x4.mul(get(d), f32x4.mul(get(xc), get(rsv)))))]),
        if_(get(hasB), [v128.store(at(db), f32x4.add(v128.load(at(db)), get(d)))]),
      ),
      if_(get(layer), [set(s, f32x4.splat(f32.div(f32.neg(laneSum(acc)), get(Df)))), overRow(v128.store(at(dx2), get(s)))]),
      inc(dy, get(bytes)),
      inc(x, get(bytes)),
      inc(dx, get(bytes)),
      inc(dx2, get(bytes)),
      inc(r, i32.const(1)),
    ),
  );
  return f;
}

/**
 * attnScaleMask(rows, T, S, s, scale, causal, offset): attention scores s [rows = B H T, S] in place,
 * s = s scale, then, when causal, s + m with m = 0 where j <= offset + (r mod T) (the key is seen)
 * and NEG_INF (-1e9) elsewhere: the composite's Multiply by the scalar and Add of causalMask(T, S),
 * each rounded to float32 once per element. Where offset >= 0 (every row sees key 0) a masked score
 * is then NEG_INF itself instead of s scale + NEG_INF: the same value wherever |s scale| < 32, and
 * either way its probability underflows to exactly 0 beside any seen score above NEG_INF, so the
 * softmax is bit-identical; a masked score's old value is then never read, so the causal GEMMs may
 * leave it unwritten (wasm_matmul.ts causalMatMulInto).
 */
function attnScaleMaskFunc(): FuncBuilder {
  const f = new FuncBuilder('attnScaleMask', ['i32', 'i32', 'i32', 'i32', 'f32', 'i32', 'i32']);
  const [rows, T, S, sp, scale, causal, offset] = f.params as [Local, Local, Local, Local, Local, Local, Local];
  const r = f.local('i32');
  const j = f.local('i32');
  const lim = f.local('i32');
  const vecEnd = f.local('i32');
  const sc = f.local('v128');
  const neg = f.local('v128');
  const idx = f.local('v128');
  const vis = f.local('v128');
  const v = f.local('v128');
  const x = f.local('f32');
  const at = (): Code => i32.add(get(sp), i32.shl(get(j), i32.const(2)));
  f.body = seq(
    set(vecEnd, i32.and(get(S), i32.const(~3))),
    set(sc, f32x4.splat(get(scale))),
    set(neg, f32x4.splat(f32.const(-1e9))),
    whileLoop(
      i32.lt_u(get(r), get(rows)),
      // lim = offset + r mod T: the last key row r may see
      set(lim, i32.add(get(offset), i32.sub(get(r), i32.mul(i32.div_u(get(r), get(T)), get(T))))),
      set(j, i32.const(0)),
      whileLoop(
        i32.lt_u(get(j), get(vecEnd)),
        set(v, f32x4.mul(v128.load(at()), get(sc))),
        if_(get(causal), [
          set(idx, i32x4.add(i32x4.splat(get(j)), v128ops.i32x4([0, 1, 2, 3]))),
          // lanes with lim >= j get +0, the others NEG_INF (signed: lim < 0 where S < T)
          set(vis, i32x4.ge_s(i32x4.splat(get(lim)), get(idx))),
          set(v, f32x4.add(get(v), v128ops.bitselect(v128.zero(), get(neg), get(vis)))),
          // offset >= 0 (every row sees a key): a masked score is NEG_INF itself
          if_(i32.ge_s(get(offset), i32.const(0)), [set(v, v128ops.bitselect(get(v), get(neg), get(vis)))]),
        ]),
        v128.store(at(), get(v)),
        inc(j, i32.const(4)),
      ),
      whileLoop(
        i32.lt_u(get(j), get(S)),
        set(x, f32.mul(f32.load(at()), get(scale))),
        if_(get(causal), [
          set(x, f32.add(get(x), select(f32.const(0), f32.const(-1e9), i32.ge_s(get(lim), get(j))))),
          if_(i32.and(i32.ge_s(get(offset), i32.const(0)), i32.eqz(i32.ge_s(get(lim), get(j)))), [set(x, f32.const(-1e9))]),
        ]),
        f32.store(at(), get(x)),
        inc(j, i32.const(1)),
      ),
      inc(sp, i32.shl(get(S), i32.const(2))),
      inc(r, i32.const(1)),
    ),
  );
  return f;
}

/**
 * attnSoftmaxGrad(rows, T, S, dp, p, scale, causal, offset): in place on dp [rows = B H T, S], the
 * composite's softmax gradient then its Multiply by the scale: t = dp p; r = sum_j t (core's Sum
 * over the last axis: four lanes over the first S - S % 4, (l0 + l1) + (l2 + l3), then the rest in
 * order); dp = ((t - r p) scale), each operation rounded to float32 as the composite's kernels do.
 * When causal (the caller passes it only where offset >= 0: every row then sees a key), t = +0
 * where j > offset + (r mod T) (a masked key, p = +0 there): the composite's
 * t there is +-0, and a lane sum that starts at +0 never becomes -0, so adding +-0 or +0 changes
 * nothing: the same bits, and dp may be unwritten (any bits) there (wasm_matmul.ts causalMatMulInto).
 */
function attnSoftmaxGradFunc(): FuncBuilder {
  const f = new FuncBuilder('attnSoftmaxGrad', ['i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'i32', 'i32']);
  const [rows, T, S, dp, p, scale, causal, offset] = f.params as [Local, Local, Local, Local, Local, Local, Local, Local];
  const r = f.local('i32');
  const j = f.local('i32');
  const vecEnd = f.local('i32');
  const lim = f.local('i32');
  const acc = f.local('v128');
  const t = f.local('v128');
  const rs = f.local('f32');
  const x = f.local('f32');
  const rv = f.local('v128');
  const sc = f.local('v128');
  const atD = (): Code => i32.add(get(dp), i32.shl(get(j), i32.const(2)));
  const atP = (): Code => i32.add(get(p), i32.shl(get(j), i32.const(2)));
  f.body = seq(
    set(vecEnd, i32.and(get(S), i32.const(~3))),
    set(sc, f32x4.splat(get(scale))),
    whileLoop(
      i32.lt_u(get(r), get(rows)),
      // lim = offset + r mod T: the last key row r sees (every key when not causal)
      set(lim, select(i32.add(get(offset), i32.sub(get(r), i32.mul(i32.div_u(get(r), get(T)), get(T)))), get(S), get(causal))),
      set(acc, v128.zero()),
      set(j, i32.const(0)),
      whileLoop(
        i32.lt_u(get(j), get(vecEnd)),
        set(t, f32x4.mul(v128.load(atD()), v128.load(atP()))),
        if_(get(causal), [
          set(
            t,
            v128ops.bitselect(
              get(t),
              v128.zero(),
              i32x4.ge_s(i32x4.splat(get(lim)), i32x4.add(i32x4.splat(get(j)), v128ops.i32x4([0, 1, 2, 3]))),
            ),
          ),
        ]),
        v128.store(atD(), get(t)),
        set(acc, f32x4.add(get(acc), get(t))),
        inc(j, i32.const(4)),
      ),
      set(rs, laneSum(acc)),
      whileLoop(
        i32.lt_u(get(j), get(S)),
        set(x, select(f32.mul(f32.load(atD()), f32.load(atP())), f32.const(0), i32.ge_s(get(lim), get(j)))),
        f32.store(atD(), get(x)),
        set(rs, f32.add(get(rs), get(x))),
        inc(j, i32.const(1)),
      ),
      set(rv, f32x4.splat(get(rs))),
      set(j, i32.const(0)),
      whileLoop(
        i32.lt_u(get(j), get(vecEnd)),
        v128.store(atD(), f32x4.mul(f32x4.sub(v128.load(atD()), f32x4.mul(get(rv), v128.load(atP()))), get(sc))),
        inc(j, i32.const(4)),
      ),
      whileLoop(
        i32.lt_u(get(j), get(S)),
        f32.store(atD(), f32.mul(f32.sub(f32.load(atD()), f32.mul(get(rs), f32.load(atP()))), get(scale))),
        inc(j, i32.const(1)),
      ),
      inc(dp, i32.shl(get(S), i32.const(2))),
      inc(p, i32.shl(get(S), i32.const(2))),
      inc(r, i32.const(1)),
    ),
  );
  return f;
}

/**
 * ropeRows(rows, T, d, x, cos, sin, y, interleaved, inverse): RoPE rotation of rows of d float32
 * values, row r at position r % T of the [T, d] tables: for each pair (i0, i1) (i0 = 2k, i1 = 2k + 1
 * interleaved; i0 = k, i1 = k + d/2 otherwise) y_i0 = x_i0 c_i0 - x_i1 s_i0, y_i1 = x_i1 c_i1 +
 * x_i0 s_i1, with s -> -s for the inverse (computed as the opposite add / subtract: exact). Every
 * product and sum rounds to float32 once, so lanes of f32x4 (the rotate-half layout, 4 pairs at a
 * time) and scalars give the same bits.
 */
function ropeRowsFunc(): FuncBuilder {
  const f = new FuncBuilder('ropeRows', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [rows, T, d, x, cos, sin, y, interleaved, inverse] = f.params as [Local, Local, Local, Local, Local, Local, Local, Local, Local];
  const r = f.local('i32');
  const t = f.local('i32');
  const k = f.local('i32');
  const o0 = f.local('i32');
  const o1 = f.local('i32');
  const cb = f.local('i32');
  const sb = f.local('i32');
  const rowBytes = f.local('i32');
  const halfBytes = f.local('i32');
  const vecEnd = f.local('i32');
  const a = f.local('f32');
  const b = f.local('f32');
  const va = f.local('v128');
  const vb = f.local('v128');
  /** y[o0] = a c[o0] -+ b s[o0]; y[o1] = b c[o1] +- a s[o1] (byte offsets into the row / table row). */
  type Ops = { load: (addr: Code) => Code; store: (addr: Code, v: Code) => Code; add: Bin; sub: Bin; mul: Bin };
  type Bin = (p: Code, q: Code) => Code;
  const scalar: Ops = { load: (p) => f32.load(p), store: (p, v) => f32.store(p, v), add: f32.add, sub: f32.sub, mul: f32.mul };
  const vector: Ops = { load: (p) => v128.load(p), store: (p, v) => v128.store(p, v), add: f32x4.add, sub: f32x4.sub, mul: f32x4.mul };
  /**
   * One pair (or four pairs as f32x4) at byte offsets o0 / o1 of the row and the table row:
   * y0 = a c0 - b s0, y1 = b c1 + a s1; the inverse swaps the add and the subtract.
   */
  const pair = (o: Ops, va: Local, vb: Local): Code => {
    const at = (base: Local, off: Local) => o.load(i32.add(get(base), get(off)));
    const rotate = (first: Bin, second: Bin) => [
      o.store(i32.add(get(y), get(o0)), first(o.mul(get(va), at(cb, o0)), o.mul(get(vb), at(sb, o0)))),
      o.store(i32.add(get(y), get(o1)), second(o.mul(get(vb), at(cb, o1)), o.mul(get(va), at(sb, o1)))),
    ];
    return seq(set(va, at(x, o0)), set(vb, at(x, o1)), if_(get(inverse), rotate(o.add, o.sub), rotate(o.sub, o.add)));
  };
  const scalarPair = (): Code => pair(scalar, a, b);
  const vecPair = (): Code => pair(vector, va, vb);
  f.body = seq(
    set(rowBytes, i32.shl(get(d), i32.const(2))),
    set(halfBytes, i32.shl(get(d), i32.const(1))),
    set(vecEnd, i32.and(get(halfBytes), i32.const(~15))),
    whileLoop(
      i32.lt_u(get(r), get(rows)),
      set(cb, i32.add(get(cos), i32.mul(get(t), get(rowBytes)))),
      set(sb, i32.add(get(sin), i32.mul(get(t), get(rowBytes)))),
      set(k, i32.const(0)),
      if_(
        get(interleaved),
        [
          whileLoop(
            i32.lt_u(get(k), get(halfBytes)),
            set(o0, i32.shl(get(k), i32.const(1))),
            set(o1, i32.add(get(o0), i32.const(4))),
            scalarPair(),
            inc(k, i32.const(4)),
          ),
        ],
        [
          whileLoop(
            i32.lt_u(get(k), get(vecEnd)),
            set(o0, get(k)),
            set(o1, i32.add(get(k), get(halfBytes))),
            vecPair(),
            inc(k, i32.const(16)),
          ),
          whileLoop(
            i32.lt_u(get(k), get(halfBytes)),
            set(o0, get(k)),
            set(o1, i32.add(get(k), get(halfBytes))),
            scalarPair(),
            inc(k, i32.const(4)),
          ),
        ],
      ),
      inc(x, get(rowBytes)),
      inc(y, get(rowBytes)),
      inc(t, i32.const(1)),
      if_(i32.eq(get(t), get(T)), [set(t, i32.const(0))]),
      inc(r, i32.const(1)),
    ),
  );
  return f;
}

/**
 * copyRuns(src, dst, run, n0, n1, n2, s0, s1, s2): for the grid i0 < n0, i1 < n1, i2 < n2 walked
 * row-major, copies `run` 32-bit words from src + i0 s0 + i1 s1 + i2 s2 (strides in bytes) to the
 * next `run` words at dst (dst advances contiguously): a transpose that keeps the last axis, as runs
 * (four words a v128 load / store, then one at a time). Pure data movement.
 */
function copyRunsFunc(): FuncBuilder {
  const f = new FuncBuilder('copyRuns', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [src, dst, run, n0, n1, n2, s0, s1, s2] = f.params as [Local, Local, Local, Local, Local, Local, Local, Local, Local];
  const i0 = f.local('i32');
  const i1 = f.local('i32');
  const i2 = f.local('i32');
  const p0 = f.local('i32');
  const p1 = f.local('i32');
  const p = f.local('i32');
  const j = f.local('i32');
  const vecEnd = f.local('i32');
  f.body = seq(
    set(vecEnd, i32.and(get(run), i32.const(~3))),
    set(p0, get(src)),
    whileLoop(
      i32.lt_u(get(i0), get(n0)),
      set(p1, get(p0)),
      set(i1, i32.const(0)),
      whileLoop(
        i32.lt_u(get(i1), get(n1)),
        set(p, get(p1)),
        set(i2, i32.const(0)),
        whileLoop(
          i32.lt_u(get(i2), get(n2)),
          set(j, i32.const(0)),
          whileLoop(
            i32.lt_u(get(j), get(vecEnd)),
            v128.store(get(dst), v128.load(i32.add(get(p), i32.shl(get(j), i32.const(2))))),
            inc(dst, i32.const(16)),
            inc(j, i32.const(4)),
          ),
          whileLoop(
            i32.lt_u(get(j), get(run)),
            i32.store(get(dst), i32.load(i32.add(get(p), i32.shl(get(j), i32.const(2))))),
            inc(dst, i32.const(4)),
            inc(j, i32.const(1)),
          ),
          inc(p, get(s2)),
          inc(i2, i32.const(1)),
        ),
        inc(p1, get(s1)),
        inc(i1, i32.const(1)),
      ),
      inc(p0, get(s0)),
      inc(i0, i32.const(1)),
    ),
  );
  return f;
}

let moduleCache: object | null = null;

export function simdOpsModule(): object {
  moduleCache ??= new WasmJs.Module(
    assembleModule([
      sumRows(),
      rowSums(),
      rowSums(true),
      scaleFunc(),
      flushFunc(),
      powInt(),
      mapFunc('tanh', 1, ([x], v) => tanhVec(x as Code, v)),
      mapFunc('exp', 1, ([x], v) => expVec(x as Code, v)),
      mapFunc('sqrt', 1, ([x]) => f32x4.sqrt(x as Code)),
      mapFunc('gelu', 1, ([x], v) => geluVec(x as Code, v)),
      mapFunc('geluGrad', 2, ([dy, x], v) => geluGradVec(dy as Code, x as Code, v)),
      mapFunc('geluErf', 1, ([x], v) => geluErfVec(x as Code, v)),
      mapFunc('geluErfGrad', 2, ([dy, x], v) => geluErfGradVec(dy as Code, x as Code, v)),
      mapFunc('silu', 1, ([x], v) => siluVec(x as Code, v)),
      mapFunc('siluGrad', 2, ([dy, x], v) => siluGradVec(dy as Code, x as Code, v)),
      dropoutFunc(),
      gumbelFunc(),
      adamwFunc(),
      normRowsFunc(),
      normGradRowsFunc(),
      attnScaleMaskFunc(),
      attnSoftmaxGradFunc(),
      ropeRowsFunc(),
      copyRunsFunc(),
    ]),
  );
  return moduleCache;
}

interface Exports {
  sumRows(x: number, R: number, inner: number, out: number): void;
  rowSums(x: number, rows: number, R: number, out: number): void;
  rowSumSquares(x: number, rows: number, R: number, out: number): void;
  scale(x: number, n: number, c: number, out: number): void;
  flush(x: number, n: number, below: number, out: number): void;
  powInt(x: number, n: number, e: number, inv: number, out: number): void;
  tanh(x: number, n: number, out: number, tmp: number): void;
  exp(x: number, n: number, out: number, tmp: number): void;
  sqrt(x: number, n: number, out: number, tmp: number): void;
  gelu(x: number, n: number, out: number, tmp: number): void;
  geluGrad(dy: number, x: number, n: number, out: number, tmp: number): void;
  geluErf(x: number, n: number, out: number, tmp: number): void;
  geluErfGrad(dy: number, x: number, n: number, out: number, tmp: number): void;
  silu(x: number, n: number, out: number, tmp: number): void;
  siluGrad(dy: number, x: number, n: number, out: number, tmp: number): void;
  dropout(x: number, n: number, out: number, key: number, thr: number, scale: number): void;
  gumbel(n: number, out: number, key: number, lo: number, hi: number): void;
  adamw(p: number, m: number, s: number, g: number, P: number, M: number, S: number, n: number, ...scalars: number[]): void;
  normRows(
    rows: number,
    D: number,
    x: number,
    w: number,
    b: number,
    y: number,
    eps: number,
    layer: number,
    hasW: number,
    hasB: number,
    stats: number,
    meanOut: number,
    rsOut: number,
    veOut: number,
  ): void;
  normGradRows(
    rows: number,
    D: number,
    dy: number,
    x: number,
    w: number,
    mean: number,
    rs: number,
    p: number,
    dx1: number,
    dx2: number,
    dw: number,
    db: number,
    layer: number,
    hasW: number,
    hasB: number,
  ): void;
  ropeRows(rows: number, T: number, d: number, x: number, cos: number, sin: number, y: number, interleaved: number, inverse: number): void;
  attnScaleMask(rows: number, T: number, S: number, s: number, scale: number, causal: number, offset: number): void;
  copyRuns(src: number, dst: number, run: number, n0: number, n1: number, n2: number, s0: number, s1: number, s2: number): void;
  attnSoftmaxGrad(rows: number, T: number, S: number, dp: number, p: number, scale: number, causal: number, offset: number): void;
}

/** The ops bound to one heap; all pointers are byte offsets of float32 data on it. */
export class SimdOps {
  private readonly x: Exports;
  private readonly tmp: number;

  constructor(
    private readonly memory: WasmMemory,
    malloc: (bytes: number) => number,
  ) {
    this.x = new WasmJs.Instance(simdOpsModule(), { env: { memory } }).exports as unknown as Exports;
    this.tmp = (malloc(64 + 15) + 15) & ~15;
  }

  /** out[o, i] = sum_r x[o, r, i] for x [outer, R, inner]. */
  sum(x: number, outer: number, R: number, inner: number, out: number): void {
    if (inner === 1) {
      this.x.rowSums(x, outer, R, out);
      return;
    }
    for (let o = 0; o < outer; o++) this.x.sumRows(x + 4 * o * R * inner, R, inner, out + 4 * o * inner);
  }

  /** sum_i x[i]^2 over n floats at byte offset x, as Square + core's Sum (rowSums' order) give it. */
  sumSquares(x: number, n: number): number {
    this.x.rowSumSquares(x, 1, n, this.tmp);
    return new Float32Array(this.memory.buffer, this.tmp, 1)[0] as number;
  }

  /** out[i] = x[i] c (float32) for i < n rounded down to a multiple of 4; the caller does the rest. */
  scale(x: number, n: number, c: number, out: number): void {
    this.x.scale(x, n & ~3, c, out);
  }

  /** out[i] = +0 where |x[i]| < below, else x[i], for i < n rounded down to a multiple of 4; the caller does the rest. */
  flush(x: number, n: number, below: number, out: number): void {
    this.x.flush(x, n & ~3, below, out);
  }

  /** out = x^e for an integer e != 0. */
  powInt(x: number, n: number, e: number, out: number): void {
    this.x.powInt(x, n, Math.abs(e), e < 0 ? 1 : 0, out);
  }

  tanh(x: number, n: number, out: number): void {
    this.x.tanh(x, n, out, this.tmp);
  }

  exp(x: number, n: number, out: number): void {
    this.x.exp(x, n, out, this.tmp);
  }

  sqrt(x: number, n: number, out: number): void {
    this.x.sqrt(x, n, out, this.tmp);
  }

  /** RoPE rotation of rows of d (byte offsets), row r at table row r % T. */
  ropeRows(
    rows: number,
    T: number,
    d: number,
    x: number,
    cos: number,
    sin: number,
    y: number,
    interleaved: boolean,
    inverse: boolean,
  ): void {
    this.x.ropeRows(rows, T, d, x, cos, sin, y, interleaved ? 1 : 0, inverse ? 1 : 0);
  }

  /**
   * RMSNorm / LayerNorm forward over rows of D (byte offsets; w, b < 0: absent); with `stats`, each
   * row's mean, rs and ve go to the float32 [rows] vectors at those offsets.
   */
  normRows(
    kind: 'rms' | 'layer',
    rows: number,
    D: number,
    x: number,
    w: number,
    b: number,
    y: number,
    eps: number,
    stats?: { mean: number; rs: number; ve: number },
  ): void {
    const l = kind === 'layer' ? 1 : 0;
    this.x.normRows(
      rows,
      D,
      x,
      Math.max(w, 0),
      Math.max(b, 0),
      y,
      eps,
      l,
      w >= 0 ? 1 : 0,
      b >= 0 ? 1 : 0,
      stats ? 1 : 0,
      stats?.mean ?? 0,
      stats?.rs ?? 0,
      stats?.ve ?? 0,
    );
  }

  /**
   * The backward of normRows (D a multiple of 4; byte offsets; w < 0: no weight, and then dw is
   * unused; db < 0: no bias): x's gradient as the composite's two contributions dx1, dx2, and the
   * weight / bias gradients summed over the rows; p[r] = pow(ve[r], 1.5) from the stock Pow kernel.
   */
  normGradRows(
    kind: 'rms' | 'layer',
    rows: number,
    D: number,
    o: { dy: number; x: number; w: number; mean: number; rs: number; p: number; dx1: number; dx2: number; dw: number; db: number },
  ): void {
    if (D % 4 !== 0) throw new Error(`normGradRows: D must be a multiple of 4, got ${D}`);
    this.x.normGradRows(
      rows,
      D,
      o.dy,
      o.x,
      Math.max(o.w, 0),
      o.mean,
      o.rs,
      o.p,
      o.dx1,
      o.dx2,
      Math.max(o.dw, 0),
      Math.max(o.db, 0),
      kind === 'layer' ? 1 : 0,
      o.w >= 0 ? 1 : 0,
      o.db >= 0 ? 1 : 0,
    );
  }

  /** Attention scores [rows = B H T, S] at byte offset s, in place: times scale, plus the causal mask (key j <= offset + r mod T). */
  /**
   * Copies run-word rows of the grid [n0, n1, n2] (source strides s0, s1, s2 in words) from src to
   * dst contiguously (byte addresses; see copyRunsFunc).
   */
  copyRuns(src: number, dst: number, run: number, n: [number, number, number], strides: [number, number, number]): void {
    this.x.copyRuns(src, dst, run, n[0], n[1], n[2], 4 * strides[0], 4 * strides[1], 4 * strides[2]);
  }

  attnScaleMask(rows: number, T: number, S: number, s: number, scale: number, causal: boolean, offset: number): void {
    this.x.attnScaleMask(rows, T, S, s, scale, causal ? 1 : 0, offset);
  }

  /** In place on dp [rows, S]: the softmax gradient (dp p - sum(dp p) p) times scale (byte offsets). */
  attnSoftmaxGrad(rows: number, T: number, S: number, dp: number, p: number, scale: number, causal: boolean, offset: number): void {
    this.x.attnSoftmaxGrad(rows, T, S, dp, p, scale, causal ? 1 : 0, offset);
  }

  /** GELU, tanh form, and its vector-Jacobian product dy * gelu'(x). */
  gelu(x: number, n: number, out: number): void {
    this.x.gelu(x, n, out, this.tmp);
  }

  geluGrad(dy: number, x: number, n: number, out: number): void {
    this.x.geluGrad(dy, x, n, out, this.tmp);
  }

  /** GELU, exact (erf form), and its vector-Jacobian product dy * gelu'(x). */
  geluErf(x: number, n: number, out: number): void {
    this.x.geluErf(x, n, out, this.tmp);
  }

  geluErfGrad(dy: number, x: number, n: number, out: number): void {
    this.x.geluErfGrad(dy, x, n, out, this.tmp);
  }

  /** SiLU x sigmoid(x) and its vector-Jacobian product dy * silu'(x). */
  silu(x: number, n: number, out: number): void {
    this.x.silu(x, n, out, this.tmp);
  }

  siluGrad(dy: number, x: number, n: number, out: number): void {
    this.x.siluGrad(dy, x, n, out, this.tmp);
  }

  /** out[i] = x[i] scale or 0 by dropoutHash(key, i) >= thr, for i < n rounded down to a multiple of 4. */
  dropout(x: number, n: number, out: number, key: number, thr: number, scale: number): void {
    this.x.dropout(x, n & ~3, out, key | 0, thr | 0, scale);
  }

  /** out[i] = Gumbel noise of element i under key, u clamped to [lo, hi] (float32), for i < n rounded down to a multiple of 4. */
  gumbel(n: number, out: number, key: number, lo: number, hi: number): void {
    this.x.gumbel(n & ~3, out, key | 0, lo, hi);
  }

  /**
   * One AdamW update of the first n - n % 4 elements (byte offsets; wasm_ops.ts's adamwOnHeap does
   * the rest); the scalars are the kernel's float32 attributes, in AdamWKernelAttrs order.
   */
  adamw(o: { p: number; m: number; s: number; g: number; P: number; M: number; S: number }, n: number, a: AdamWKernelAttrs): void {
    this.x.adamw(
      o.p,
      o.m,
      o.s,
      o.g,
      o.P,
      o.M,
      o.S,
      n & ~3,
      a.decay,
      a.beta1,
      a.oneMinusBeta1,
      a.beta2,
      a.oneMinusBeta2,
      a.bc2Sqrt,
      a.eps,
      a.stepSize,
    );
  }
}
