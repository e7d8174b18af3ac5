/**
 * Replacements for tfjs-backend-wasm 4.22 kernels that are slow on the training path, each with
 * tfjs-core's semantics (the cpu backend is the reference) and the stock kernel as fallback
 * outside its fast cases:
 * - Identity and same-dtype Cast share the input's buffer (reference-counted, as the cpu backend
 *   and the wasm Reshape do) instead of copying it.
 * - Slice / SplitV copy rows straight on the heap; the stock Slice first copies the whole input
 *   out of the heap (readSync) for every slice.
 * - Sum over a contiguous run of axes reduces in place (simd_ops.ts); the stock Sum transposes the
 *   reduced axes innermost first.
 * - Pow with a scalar integer exponent (|e| <= 8, as GELU's x^3 and its gradient's x^2) multiplies
 *   instead of calling powf per element.
 * - Tanh, Exp and Sqrt in SIMD (simd_ops.ts) instead of scalar libm calls.
 * - GatherV2 copies rows on the heap; the stock kernel took 25 ms for the 2048 x 256 embedding lookup
 *   of gpt-bench.
 * - MmlmGeluTanh / MmlmGeluTanhGrad, MmlmGeluErf / MmlmGeluErfGrad, MmlmSilu / MmlmSiluGrad: the fused GELUs and SiLU of fused.ts
 *   (new kernels, not replacements).
 * - MmlmRope: the rotary embedding's rotation in one pass (nn/rope.ts; new kernel), each product
 *   rounded to float32 before the sum, as the composite x cos + rot(x) sin.
 * - MmlmGroupNorm / MmlmGroupNormGrad: GroupNorm over NHWC forward and backward in one kernel each
 *   (nn/group_norm.ts; new kernels), plain loops on the heap with float64 sums.
 * - MmlmAttention / MmlmAttentionGrad: softmax attention's core (scores, scale, causal mask, softmax,
 *   weighted sum) forward and backward in one kernel call each (nn/attention.ts; new kernels), with
 *   the composite's GEMM calls, its Softmax kernel and its float32 steps, so bit-identical to it.
 * - MmlmLinearGrad: Linear's backward (dx, dW, db) in one kernel call with the composite's GEMM calls
 *   and bias sum (nn/linear.ts; new kernel), so bit-identical to its autodiff.
 * - MmlmNormTrain / MmlmNormGrad: LayerNorm and RMSNorm forward (with the per-row statistics) and
 *   backward in one kernel each while a gradient tape records (nn/norm.ts; new kernels), with the
 *   float32 steps of the composite and of tfjs's autodiff of it, so bit-identical to them.
 * - MmlmAdamW: one AdamW update of one parameter (new kernel; optim/adamw.ts uses it where the
 *   backend has it): the about 13 elementwise kernels of the composite update in one pass, each
 *   operation rounded to float32 in the composite's order, so the result is bit-identical to it.
 *   MmlmAdamWN runs the same update for every parameter of an optimizer step in one kernel call.
 * - Conv2D: see wasm_gaps.ts conv2DForwardGemm (GEMM convolutions on the native GEMM; else Winograd
 *   F(2x2, 3x3) on the SIMD GEMM for 3x3 stride-1 convolutions with channels in fours, XNNPACK otherwise).
 * - MmlmSumSquaresN / MmlmScaleN: global-norm gradient clipping's reduction and rescaling over all
 *   gradients in one kernel call each (new kernels; optim/grads.ts clipGradNorm uses them where the
 *   backend has them) instead of about three calls per gradient (Square, Sum, Mul) and an AddN. The
 *   per-tensor sums keep core's Sum order and the total AddN's left-to-right float32 order, so the
 *   norm and the scaled gradients are bit-identical to the composite's.
 */

import { tf } from '../../tf.js';
import {
  ADAMW_KERNEL,
  ADAMW_N_KERNEL,
  ATTENTION_GRAD_KERNEL,
  ATTENTION_KERNEL,
  DROPOUT_KERNEL,
  dropoutHash,
  dropoutKey,
  dropoutThreshold,
  FLUSH_KERNEL,
  GELU_ERF_GRAD_KERNEL,
  GELU_ERF_KERNEL,
  GELU_GRAD_KERNEL,
  GELU_KERNEL,
  GROUP_NORM_GRAD_KERNEL,
  GROUP_NORM_KERNEL,
  GUMBEL_KERNEL,
  gumbelBounds,
  gumbelKey,
  gumbelValue,
  LAYER_NORM_KERNEL,
  LINEAR_GRAD_KERNEL,
  NORM_GRAD_KERNEL,
  NORM_TRAIN_KERNEL,
  RMS_NORM_KERNEL,
  ROPE_KERNEL,
  SCALE_KERNEL,
  SILU_GRAD_KERNEL,
  SILU_KERNEL,
  SUM_SQUARES_KERNEL,
} from './fused.js';
import { nativeElementwise } from './native_blas.js';
import { GroupNormSimd } from './simd_norm.js';
import { SimdOps } from './simd_ops.js';
import { conv2DBackpropInputGemm, conv2DForwardGemm, type KernelArgs as GapKernelArgs } from './wasm_gaps.js';
import { type CausalBand, causalMatMulInto, type MatMulArgs, matMulInto, type WasmBackendInternals } from './wasm_matmul.js';

interface Backend extends WasmBackendInternals {
  incRef(dataId: object): void;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

export type StockLookup = (kernelName: string) => tf.KernelConfig | null;

const opsByBackend = new WeakMap<object, SimdOps>();

function opsFor(backend: Backend): SimdOps {
  let o = opsByBackend.get(backend);
  if (!o) {
    o = new SimdOps(backend.wasm.asm.memory, (n) => backend.wasm._malloc(n) >>> 0);
    opsByBackend.set(backend, o);
  }
  return o;
}

/** The attention kernels' GEMM: causalMatMulInto's banded strips where they apply, else matMulInto. */
function attentionGemm(backend: Backend, kernel: string, causal: boolean, off: number) {
  return (args: MatMulArgs, band: CausalBand): tf.TensorInfo =>
    (causal ? causalMatMulInto(backend, args, kernel, band, off) : null) ?? matMulInto(backend, args, kernel);
}

const normByBackend = new WeakMap<object, GroupNormSimd>();

function normFor(backend: Backend): GroupNormSimd {
  let o = normByBackend.get(backend);
  if (!o) {
    o = new GroupNormSimd(backend.wasm.asm.memory, (n) => backend.wasm._malloc(n) >>> 0);
    normByBackend.set(backend, o);
  }
  return o;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const offset = (backend: Backend, t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;

function share(backend: Backend, x: tf.TensorInfo, shape = x.shape): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

/**
 * Whether `small` broadcasts onto `big` as a block repeated along big's leading axes: its rank is at
 * most big's and, leading 1s aside, its dimensions are big's trailing ones (equal shapes included).
 */
export function isTrailingShape(small: readonly number[], big: readonly number[]): boolean {
  if (small.length > big.length) return false;
  let i = 0;
  while (i < small.length && small[i] === 1) i++;
  const rest = small.length - i;
  for (let j = 0; j < rest; j++) if (small[i + j] !== big[big.length - rest + j]) return false;
  return true;
}

/** The wasm heap's ArrayBuffer, for the native addon's kernels (read after makeOutput, which may grow it). */
function heapBuffer(backend: Backend): ArrayBuffer {
  return (backend.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32.buffer as ArrayBuffer;
}

function callStock(stock: StockLookup, name: string, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const k = stock(name);
  if (!k) throw new Error(`wasm ${name}: no stock kernel to fall back to`);
  return k.kernelFunc(args as never) as tf.TensorInfo | tf.TensorInfo[];
}

/** Slice parameters padded to the input's rank and checked against its shape; size -1 means "to the end". */
function sliceParams(x: tf.TensorInfo, begin: number[] | number, sz: number[] | number): [number[], number[]] {
  const r = x.shape.length;
  const b = typeof begin === 'number' ? [begin, ...new Array(r - 1).fill(0)] : [...begin, ...new Array(r - begin.length).fill(0)];
  const s = typeof sz === 'number' ? [sz, ...new Array(r - 1).fill(-1)] : [...sz, ...new Array(r - sz.length).fill(-1)];
  for (let i = 0; i < r; i++) {
    const dim = x.shape[i] as number;
    const bi = b[i] as number;
    const si = s[i] as number;
    if (bi < 0 || bi > dim) throw new Error(`Slice (wasm): begin[${i}] = ${bi} is outside [0, ${dim}] for input shape [${x.shape}]`);
    s[i] = si === -1 ? dim - bi : si;
    if ((s[i] as number) < 0 || bi + (s[i] as number) > dim)
      throw new Error(`Slice (wasm): begin[${i}] + size[${i}] = ${bi} + ${si} exceeds ${dim} for input shape [${x.shape}]`);
  }
  return [b, s];
}

/** Contiguous runs shorter than this (in 4-byte elements) are copied element by element. */
const SHORT_RUN = 64;

/**
 * Concat of numeric tensors along `axis` on the heap: out[b] = [x_0[b], x_1[b], ...] for each
 * index b over the axes before `axis` (the stock kernel makes a subarray per run, which dominates
 * for the short runs of RoPE's interleaved pairs).
 */
function concatOnHeap(backend: Backend, xs: tf.TensorInfo[], axis: number, outShape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(outShape, xs[0]!.dtype);
  const parts = xs.filter((x) => size(x.shape) > 0);
  if (size(outShape) === 0 || parts.length === 0) return out;
  const bpe = xs[0]!.dtype === 'bool' ? 1 : 4;
  const outer = size(outShape.slice(0, axis));
  const runs = parts.map((x) => size(x.shape.slice(axis)));
  const total = runs.reduce((a, b) => a + b, 0);
  const srcs = parts.map((x) => offset(backend, x));
  const dst = offset(backend, out);
  const w = backend.wasm as unknown as { HEAP32: Int32Array; HEAPU8: Uint8Array };
  const heap = w.HEAPU8;
  const words = w.HEAP32;
  let at = 0;
  parts.forEach((_, i) => {
    const run = runs[i] as number;
    const src = srcs[i] as number;
    if (bpe === 4 && run < SHORT_RUN) {
      const s0 = src >>> 2;
      const d0 = (dst >>> 2) + at;
      for (let b = 0; b < outer; b++) {
        const sb = s0 + b * run;
        const db = d0 + b * total;
        for (let j = 0; j < run; j++) words[db + j] = words[sb + j] as number;
      }
    } else for (let b = 0; b < outer; b++) heap.copyWithin(dst + (b * total + at) * bpe, src + b * run * bpe, src + (b + 1) * run * bpe);
    at += run;
  });
  return out;
}

/** out = x[begin : begin + size] (numeric dtypes), copying maximal contiguous runs on the heap. */
function sliceOnHeap(backend: Backend, x: tf.TensorInfo, begin: number[], sz: number[]): tf.TensorInfo {
  const out = backend.makeOutput(sz, x.dtype);
  const n = size(sz);
  if (n === 0) return out;
  const bpe = x.dtype === 'bool' ? 1 : 4;
  // Collapse trailing axes that are taken whole into one contiguous run.
  const r = x.shape.length;
  let run = 1;
  let d = r - 1;
  while (d >= 0 && sz[d] === x.shape[d] && begin[d] === 0) run *= sz[d--] as number;
  if (d >= 0) run *= sz[d] as number;
  const outer = Math.max(d, 0);
  const strides = rowMajorStrides(x.shape);
  let base = 0;
  for (let i = 0; i < r; i++) base += (begin[i] as number) * (strides[i] as number);
  if (bpe === 4 && outer <= 3) {
    // at most three grid axes: the runs by SIMD loads and stores in one call (copyRuns)
    const pad = 3 - outer;
    const extent = [...new Array<number>(pad).fill(1), ...sz.slice(0, outer)] as [number, number, number];
    const st = [...new Array<number>(pad).fill(0), ...strides.slice(0, outer)] as [number, number, number];
    opsFor(backend).copyRuns(offset(backend, x) + 4 * base, offset(backend, out), run, extent, st);
    return out;
  }
  copyGridRuns(backend, offset(backend, x), offset(backend, out), bpe, run, sz.slice(0, outer), (coord) => {
    let off = base;
    for (let i = 0; i < outer; i++) off += (coord[i] as number) * (strides[i] as number);
    return off;
  });
  return out;
}

/**
 * A transpose as contiguous runs: null unless `perm` keeps the last axis last (after dropping
 * size-1 axes and merging axes that stay adjacent and in order) and at most three axes remain
 * around the run. Otherwise the run length, the output grid (padded with 1s to three axes) and the
 * source stride (elements) of each grid axis.
 */
export function transposeRuns(
  shape: readonly number[],
  perm: readonly number[],
): { run: number; extent: [number, number, number]; strides: [number, number, number] } | null {
  const r = shape.length;
  if (perm.length !== r || r === 0) return null;
  const strides = rowMajorStrides(shape);
  // output axes as (size, source stride), size-1 axes dropped
  const axes: { n: number; s: number }[] = [];
  for (const p of perm) {
    const n = shape[p] as number;
    if (n !== 1) axes.push({ n, s: strides[p] as number });
  }
  // merge an output axis into the one before it when they are adjacent in the source too
  const merged: { n: number; s: number }[] = [];
  for (const a of axes) {
    const prev = merged[merged.length - 1];
    if (prev && prev.s === a.s * a.n) {
      prev.n *= a.n;
      prev.s = a.s;
    } else merged.push({ ...a });
  }
  const last = merged[merged.length - 1];
  if (last?.s !== 1 || merged.length > 4) return null;
  const grid = merged.slice(0, -1);
  while (grid.length < 3) grid.unshift({ n: 1, s: 0 });
  return {
    run: last.n,
    extent: grid.map((g) => g.n) as [number, number, number],
    strides: grid.map((g) => g.s) as [number, number, number],
  };
}

/** Element strides of a row-major tensor of this shape. */
function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let st = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = st;
    st *= shape[i] as number;
  }
  return strides;
}

/**
 * Copies one contiguous run of `run` elements per point of the grid `extent` (walked row-major, in
 * output order) from the heap at `src` to consecutive runs at `dst`; `srcOffset(coord)` is the
 * element offset in the source of the run at grid point `coord`. Short float32 runs are copied
 * element by element (a copyWithin call costs more than a few element copies).
 */
function copyGridRuns(
  backend: Backend,
  src: number,
  dst: number,
  bpe: number,
  run: number,
  extent: readonly number[],
  srcOffset: (coord: readonly number[]) => number,
): void {
  const heap = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
  const words = bpe === 4 && run < SHORT_RUN ? (backend.wasm as unknown as { HEAP32: Int32Array }).HEAP32 : null;
  const outer = extent.length;
  const coord = new Array<number>(outer).fill(0);
  const runs = size(extent);
  for (let k = 0; k < runs; k++) {
    const off = srcOffset(coord);
    if (words) {
      const d0 = (dst >>> 2) + k * run;
      const s0 = (src >>> 2) + off;
      for (let j = 0; j < run; j++) words[d0 + j] = words[s0 + j] as number;
    } else heap.copyWithin(dst + k * run * bpe, src + off * bpe, src + (off + run) * bpe);
    for (let i = outer - 1; i >= 0; i--) {
      coord[i] = (coord[i] as number) + 1;
      if ((coord[i] as number) < (extent[i] as number)) break;
      coord[i] = 0;
    }
  }
}

/**
 * tf.reverse on the heap: the trailing axes after the last reversed one form contiguous runs that
 * are copied whole (a conv filter [k, k, C, O] reversed over its two spatial axes is k^2 runs of
 * C O values); a reversed last axis is copied element by element. Pure data movement, so the
 * result is the stock kernel's bit for bit (which computes an index per element: about 1 ms for a
 * 3 x 3 x 64 x 64 filter).
 */
function reverseOnHeap(backend: Backend, x: tf.TensorInfo, axes: number[]): tf.TensorInfo {
  const out = backend.makeOutput(x.shape, x.dtype);
  const n = size(x.shape);
  if (n === 0) return out;
  const r = x.shape.length;
  const rev = new Array<boolean>(r).fill(false);
  for (const a of axes) rev[a] = !rev[a]; // an axis named twice is reversed twice, as the stock kernels do
  const bpe = x.dtype === 'bool' ? 1 : 4;
  let last = r - 1;
  while (last >= 0 && !rev[last]) last--;
  const src = offset(backend, x);
  const dst = offset(backend, out);
  const heap = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
  if (last < 0) {
    heap.copyWithin(dst, src, src + n * bpe);
    return out;
  }
  // runs of `run` elements below axis `last`; the grid of axes 0..last is walked in output order
  let run = 1;
  for (let i = last + 1; i < r; i++) run *= x.shape[i] as number;
  const strides = rowMajorStrides(x.shape);
  const outer = last + 1;
  copyGridRuns(backend, src, dst, bpe, run, x.shape.slice(0, outer), (coord) => {
    let off = 0;
    for (let i = 0; i < outer; i++) {
      const c = coord[i] as number;
      off += (rev[i] ? (x.shape[i] as number) - 1 - c : c) * (strides[i] as number);
    }
    return off;
  });
  return out;
}

/** Attributes of MmlmAdamW: the composite update's scalars, as the float32 values it multiplies by. */
export interface AdamWKernelAttrs {
  decay: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  bc2Sqrt: number;
  eps: number;
  stepSize: number;
}

/**
 * One AdamW update over the heap, elements start .. n - 1 (a plain loop at about 8 ns per element).
 * Every operation is rounded with Math.fround: float32 +, -, *, / and sqrt computed in float64
 * and rounded once are exactly the float32 operations, so this equals the composite bit for bit.
 * The kernel runs simd_ops.ts's adamw (the same operations on f32x4 lanes, about 1 ns per element)
 * on the first n - n % 4 elements and this loop on the rest; it is also the reference the SIMD
 * version is tested against.
 */
export function adamwOnHeap(
  heap: Float32Array,
  o: { p: number; m: number; s: number; g: number; P: number; M: number; S: number },
  n: number,
  a: AdamWKernelAttrs,
  start = 0,
): void {
  const f = Math.fround;
  const decay = f(a.decay);
  const b1 = f(a.beta1);
  const c1 = f(a.oneMinusBeta1);
  const b2 = f(a.beta2);
  const c2 = f(a.oneMinusBeta2);
  const bc = f(a.bc2Sqrt);
  const eps = f(a.eps);
  const ss = f(a.stepSize);
  const [p, m, s, g, P, M, S] = [o.p, o.m, o.s, o.g, o.P, o.M, o.S].map((b) => b >>> 2) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  for (let i = start; i < n; i++) {
    const gi = heap[g + i] as number;
    const pi = f((heap[p + i] as number) * decay);
    const mi = f(f((heap[m + i] as number) * b1) + f(gi * c1));
    const si = f(f((heap[s + i] as number) * b2) + f(f(gi * gi) * c2));
    const d = f(f(f(Math.sqrt(si)) / bc) + eps);
    heap[M + i] = mi;
    heap[S + i] = si;
    heap[P + i] = f(pi - f(f(mi / d) * ss));
  }
}

/**
 * GroupNorm over NHWC x [B, HW, C] on the heap (offsets in floats). Per sample: per-channel sums in
 * float64 (the inner loop runs over contiguous channels, no group index per element), reduced to
 * the group mean; the same for the centred sum of squares; then y = (x - mean_g) a_c + b_c with
 * a_c = rstd_g w_c (centred first: x a_c - mean_g a_c would cancel when |mean| >> std).
 * The kernel runs simd_norm.ts's bit-identical WebAssembly SIMD version when C is a multiple of 4;
 * this one is the reference for it and the path for other widths.
 */
export function groupNormForward(
  h: Float32Array,
  o: { x: number; w: number; b: number; y: number; mean: number; rstd: number },
  B: number,
  HW: number,
  C: number,
  G: number,
  eps: number,
): void {
  const Cg = C / G;
  const N = HW * Cg;
  const acc = new Float64Array(C);
  const meanC = new Float64Array(C);
  const a = new Float32Array(C);
  const m32 = new Float32Array(C);
  for (let b = 0; b < B; b++) {
    const base = o.x + b * HW * C;
    const end = base + HW * C;
    acc.fill(0);
    for (let row = base; row < end; row += C) for (let c = 0; c < C; c++) acc[c]! += h[row + c]!;
    for (let g = 0; g < G; g++) {
      let m = 0;
      for (let c = g * Cg; c < (g + 1) * Cg; c++) m += acc[c]!;
      m /= N;
      for (let c = g * Cg; c < (g + 1) * Cg; c++) meanC[c] = m;
      h[o.mean + b * G + g] = m;
    }
    acc.fill(0);
    for (let row = base; row < end; row += C)
      for (let c = 0; c < C; c++) {
        const d = h[row + c]! - meanC[c]!;
        acc[c]! += d * d;
      }
    for (let g = 0; g < G; g++) {
      let v = 0;
      for (let c = g * Cg; c < (g + 1) * Cg; c++) v += acc[c]!;
      const r = 1 / Math.sqrt(v / N + eps);
      h[o.rstd + b * G + g] = r;
      for (let c = g * Cg; c < (g + 1) * Cg; c++) {
        a[c] = r * h[o.w + c]!;
        m32[c] = meanC[c]!;
      }
    }
    const out = o.y - o.x; // y's offset relative to x's
    for (let row = base; row < end; row += C) for (let c = 0; c < C; c++) h[out + row + c] = (h[row + c]! - m32[c]!) * a[c]! + h[o.b + c]!;
  }
}

/**
 * The GroupNorm backward pass (see nn/group_norm.ts), sums in float64 and per channel as the
 * forward: with xhat = (x - mean_g) rstd_g,
 *   db_c = sum dy,  dw_c = sum dy xhat,  s1_g = sum_{c in g} w_c db_c,  s2_g = sum_{c in g} w_c dw_c,
 *   dx = rstd_g (dy w_c - s1_g / N - xhat s2_g / N) = dy A_c + (x - mean_g) K_g + L_g
 * with A_c = rstd_g w_c, K_g = -rstd_g^2 s2_g / N, L_g = -rstd_g s1_g / N.
 */
export function groupNormBackward(
  h: Float32Array,
  o: { dy: number; x: number; w: number; mean: number; rstd: number; dx: number; dw: number; db: number },
  B: number,
  HW: number,
  C: number,
  G: number,
): void {
  const Cg = C / G;
  const N = HW * Cg;
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  const sdy = new Float64Array(C); // per sample: sum dy
  const sdx = new Float64Array(C); // per sample: sum dy xhat
  const meanC = new Float64Array(C);
  const rC = new Float64Array(C);
  const A = new Float32Array(C);
  const K = new Float32Array(C);
  const L = new Float32Array(C);
  const m32 = new Float32Array(C);
  for (let b = 0; b < B; b++) {
    const base = b * HW * C;
    for (let g = 0; g < G; g++)
      for (let c = g * Cg; c < (g + 1) * Cg; c++) {
        meanC[c] = h[o.mean + b * G + g]!;
        rC[c] = h[o.rstd + b * G + g]!;
      }
    sdy.fill(0);
    sdx.fill(0);
    for (let row = base; row < base + HW * C; row += C)
      for (let c = 0; c < C; c++) {
        const dy = h[o.dy + row + c]!;
        sdy[c]! += dy;
        sdx[c]! += dy * ((h[o.x + row + c]! - meanC[c]!) * rC[c]!);
      }
    for (let g = 0; g < G; g++) {
      let s1 = 0;
      let s2 = 0;
      for (let c = g * Cg; c < (g + 1) * Cg; c++) {
        s1 += h[o.w + c]! * sdy[c]!;
        s2 += h[o.w + c]! * sdx[c]!;
      }
      const r = rC[g * Cg]!;
      for (let c = g * Cg; c < (g + 1) * Cg; c++) {
        A[c] = r * h[o.w + c]!;
        K[c] = (-r * r * s2) / N;
        L[c] = (-r * s1) / N;
        m32[c] = meanC[c]!;
      }
    }
    for (let c = 0; c < C; c++) {
      dw[c]! += sdx[c]!;
      db[c]! += sdy[c]!;
    }
    for (let row = base; row < base + HW * C; row += C)
      for (let c = 0; c < C; c++) h[o.dx + row + c] = h[o.dy + row + c]! * A[c]! + (h[o.x + row + c]! - m32[c]!) * K[c]! + L[c]!;
  }
  for (let c = 0; c < C; c++) {
    h[o.dw + c] = dw[c]!;
    h[o.db + c] = db[c]!;
  }
}

/**
 * AdamW updates of the given parameters (MmlmAdamW: one; MmlmAdamWN: a list), outputs p', m', v'
 * per parameter in order. Every input is checked before anything is computed.
 */
function adamwKernel(
  be: Backend,
  kernel: string,
  items: { p: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo; g: tf.TensorInfo; attrs: AdamWKernelAttrs; label?: string }[],
): tf.TensorInfo[] {
  for (const it of items) {
    const { p } = it;
    const suffix = it.label ?? '';
    for (const [name, t] of [
      ['p', p],
      ['m', it.m],
      ['v', it.v],
      ['g', it.g],
    ] as const) {
      if (t.dtype !== 'float32') throw new Error(`${kernel} (wasm): ${name}${suffix} must be float32, got ${t.dtype}`);
      if (t.shape.join() !== p.shape.join())
        throw new Error(`${kernel} (wasm): ${name}${suffix} has shape [${t.shape}], expected the parameter's [${p.shape}]`);
    }
  }
  // makeOutput may grow the heap (detaching views): all outputs first, then the heap view.
  const outs = items.map(
    ({ p }) => [be.makeOutput(p.shape, 'float32'), be.makeOutput(p.shape, 'float32'), be.makeOutput(p.shape, 'float32')] as const,
  );
  const ops = opsFor(be); // before the heap view: its first use allocates
  const heap = (be.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
  const at = (t: tf.TensorInfo) => offset(be, t);
  items.forEach(({ p, m, v, g, attrs }, i) => {
    const n = size(p.shape);
    if (n === 0) return;
    const [P, M, S] = outs[i]!;
    const ptrs = { p: at(p), m: at(m), s: at(v), g: at(g), P: at(P), M: at(M), S: at(S) };
    ops.adamw(ptrs, n, attrs);
    adamwOnHeap(heap, ptrs, n, attrs, n & ~3);
  });
  return outs.flat();
}

/** Inputs x0 .. x{n-1} of a list kernel (attr n), each float32. */
function listInputs(args: KernelArgs, kernel: string, prefix: string): tf.TensorInfo[] {
  const n = (args.attrs as { n?: unknown } | undefined)?.n;
  if (!(Number.isInteger(n) && (n as number) >= 0)) throw new Error(`${kernel} (wasm): attr n must be an integer >= 0, got ${String(n)}`);
  const xs: tf.TensorInfo[] = [];
  for (let i = 0; i < (n as number); i++) {
    const x = args.inputs[`${prefix}${i}`] as tf.TensorInfo | undefined;
    if (!x) throw new Error(`${kernel} (wasm): input ${prefix}${i} of ${String(n)} is missing`);
    if (x.dtype !== 'float32') throw new Error(`${kernel} (wasm): input ${prefix}${i} must be float32, got ${x.dtype}`);
    xs.push(x);
  }
  return xs;
}

export function makeWasmOpsKernels(stock: StockLookup): tf.KernelConfig[] {
  const k = (kernelName: string, fn: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelConfig => ({
    kernelName,
    backendName: 'wasm',
    kernelFunc: fn as unknown as tf.KernelFunc,
  });
  return [
    k('Conv2D', (args) => conv2DForwardGemm(args as GapKernelArgs, (a) => callStock(stock, 'Conv2D', a as KernelArgs) as tf.TensorInfo)),
    k('Conv2DBackpropInput', (args) =>
      conv2DBackpropInputGemm(args as GapKernelArgs, (a) => callStock(stock, 'Conv2DBackpropInput', a as KernelArgs) as tf.TensorInfo),
    ),
    k('Identity', (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string') return callStock(stock, 'Identity', args);
      return share(args.backend as Backend, x);
    }),
    k('Cast', (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const { dtype } = args.attrs as { dtype: tf.DataType };
      if (x.dtype === dtype && dtype !== 'string') return share(args.backend as Backend, x);
      return callStock(stock, 'Cast', args);
    }),
    k('Slice', (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string' || x.dtype === 'complex64') return callStock(stock, 'Slice', args);
      const { begin, size: sz } = args.attrs as { begin: number[] | number; size: number[] | number };
      const [b, s] = sliceParams(x, begin, sz);
      return sliceOnHeap(args.backend as Backend, x, b, s);
    }),
    k('Reverse', (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string' || x.dtype === 'complex64') return callStock(stock, 'Reverse', args);
      const { dims } = args.attrs as { dims: number | number[] };
      return reverseOnHeap(args.backend as Backend, x, tf.util.parseAxisParam(dims, x.shape));
    }),
    // a permutation that keeps the last axis (attention's [B, T, H, hs] <-> [B, H, T, hs]): runs of
    // the last axis copied by SIMD loads and stores (copyRuns) instead of the stock kernel's
    // per-element index walk; other permutations and dtypes keep the stock kernel
    k('Transpose', (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const { perm } = args.attrs as { perm: number[] };
      const plan = x.dtype === 'float32' || x.dtype === 'int32' ? transposeRuns(x.shape, perm) : null;
      if (!plan) return callStock(stock, 'Transpose', args);
      const be = args.backend as Backend;
      const out = be.makeOutput(
        perm.map((p) => x.shape[p] as number),
        x.dtype,
      );
      if (size(x.shape) === 0) return out;
      opsFor(be).copyRuns(offset(be, x), offset(be, out), plan.run, plan.extent, plan.strides);
      return out;
    }),
    k('SplitV', (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string' || x.dtype === 'complex64') return callStock(stock, 'SplitV', args);
      const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
      const r = x.shape.length;
      const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
      const dim = x.shape[ax] as number;
      let sizes: number[];
      if (typeof numOrSizeSplits === 'number') {
        if (dim % numOrSizeSplits !== 0)
          throw new Error(`SplitV (wasm): ${numOrSizeSplits} splits do not divide axis ${ax} of size ${dim}`);
        sizes = new Array(numOrSizeSplits).fill(dim / numOrSizeSplits);
      } else {
        sizes = [...numOrSizeSplits];
        const neg = sizes.indexOf(-1);
        if (neg >= 0) sizes[neg] = dim - sizes.reduce((a, b) => a + (b === -1 ? 0 : b), 0);
        const total = sizes.reduce((a, b) => a + b, 0);
        if (total !== dim) throw new Error(`SplitV (wasm): split sizes [${numOrSizeSplits}] sum to ${total}, expected ${dim}`);
      }
      const begin = new Array(r).fill(0);
      return sizes.map((s) => {
        const sz = [...x.shape];
        sz[ax] = s;
        const out = sliceOnHeap(args.backend as Backend, x, [...begin], sz);
        begin[ax] += s;
        return out;
      });
    }),
    k('Concat', (args) => {
      const xs = Object.values(args.inputs) as tf.TensorInfo[];
      const dtype = xs[0]?.dtype;
      if (!dtype || dtype === 'string' || dtype === 'complex64' || xs.some((x) => x.dtype !== dtype))
        return callStock(stock, 'Concat', args);
      const ax = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, xs[0]!.shape)[0] as number;
      const shapes = xs.map((x) => x.shape);
      tf.backend_util.assertParamsConsistent(shapes, ax);
      const outShape = tf.backend_util.computeOutShape(shapes, ax);
      return concatOnHeap(args.backend as Backend, xs, ax, outShape);
    }),
    // float32 a + b with equal shapes or one operand's shape a suffix of the other's (a bias [C] on
    // [B, H, W, C]): the addon's add, wide vectors over its threads (one IEEE addition per element, so
    // the bits of the stock kernel); everything else, and no addon, the stock XNNPACK kernel
    k('Add', (args) => {
      const a = args.inputs.a as tf.TensorInfo;
      const b = args.inputs.b as tf.TensorInfo;
      const ne = a.dtype === 'float32' && b.dtype === 'float32' ? nativeElementwise() : null;
      if (ne) {
        const [big, small] = size(a.shape) >= size(b.shape) ? [a, b] : [b, a];
        const n = size(big.shape);
        if (n > 0 && isTrailingShape(small.shape, big.shape)) {
          const be = args.backend as Backend;
          const out = be.makeOutput(big.shape, 'float32');
          const heap = heapBuffer(be);
          // a + b = b + a exactly in IEEE arithmetic, so the larger operand can come first
          ne.add(heap, n, size(small.shape), offset(be, big), offset(be, small), offset(be, out));
          return out;
        }
      }
      return callStock(stock, 'Add', args);
    }),
    k('Sum', (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const { axis, keepDims } = args.attrs as { axis: number | number[] | null; keepDims: boolean };
      const r = x.shape.length;
      const axes = [...new Set(axis == null ? x.shape.map((_, i) => i) : tf.util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
      const contiguous = axes.every((a, i) => i === 0 || a === (axes[i - 1] as number) + 1);
      if (x.dtype !== 'float32' || r === 0 || axes.length === 0 || !contiguous) return callStock(stock, 'Sum', args);
      const be = args.backend as Backend;
      const first = axes[0] as number;
      const last = axes[axes.length - 1] as number;
      const outer = size(x.shape.slice(0, first));
      const R = size(x.shape.slice(first, last + 1));
      const inner = size(x.shape.slice(last + 1));
      const outShape = keepDims
        ? x.shape.map((d, i) => (i >= first && i <= last ? 1 : d))
        : x.shape.filter((_, i) => i < first || i > last);
      const out = be.makeOutput(outShape, 'float32');
      if (outer * inner === 0) return out;
      if (R === 0) {
        (be.typedArrayFromHeap(out) as Float32Array).fill(0);
        return out;
      }
      opsFor(be).sum(offset(be, x), outer, R, inner, offset(be, out));
      return out;
    }),
    k('Pow', (args) => {
      const a = args.inputs.a as tf.TensorInfo;
      const b = args.inputs.b as tf.TensorInfo;
      const be = args.backend as Backend;
      if (a.dtype === 'float32' && b.dtype === 'float32' && size(b.shape) === 1 && b.shape.length <= a.shape.length) {
        const e = (be.typedArrayFromHeap(b) as Float32Array)[0] as number;
        if (Number.isInteger(e) && e !== 0 && Math.abs(e) <= 8) {
          const out = be.makeOutput(a.shape, 'float32');
          opsFor(be).powInt(offset(be, a), size(a.shape), e, offset(be, out));
          return out;
        }
      }
      return callStock(stock, 'Pow', args);
    }),
    ...(['Tanh', 'Exp', 'Sqrt'] as const).map((name) =>
      k(name, (args) => {
        const x = args.inputs.x as tf.TensorInfo;
        if (x.dtype !== 'float32') return callStock(stock, name, args);
        const be = args.backend as Backend;
        const out = be.makeOutput(x.shape, 'float32');
        const ops = opsFor(be);
        const f = name === 'Tanh' ? ops.tanh : name === 'Exp' ? ops.exp : ops.sqrt;
        f.call(ops, offset(be, x), size(x.shape), offset(be, out));
        return out;
      }),
    ),
    // the fused activations (fused.ts): y = f(x) and dx = dy f'(x), one SIMD pass each
    ...(
      [
        [GELU_KERNEL, 'gelu'],
        [GELU_ERF_KERNEL, 'geluErf'],
        [SILU_KERNEL, 'silu'],
      ] as const
    ).map(([name, op]) =>
      k(name, (args) => {
        const x = args.inputs.x as tf.TensorInfo;
        if (x.dtype !== 'float32') throw new Error(`${name} (wasm): x must be float32, got ${x.dtype}`);
        const be = args.backend as Backend;
        const out = be.makeOutput(x.shape, 'float32');
        const ne = op === 'silu' ? nativeElementwise() : null;
        // the addon's SiLU: the same bits, split over its threads
        if (ne) ne.silu(heapBuffer(be), 0, size(x.shape), offset(be, x), 0, offset(be, out));
        else opsFor(be)[op](offset(be, x), size(x.shape), offset(be, out));
        return out;
      }),
    ),
    ...(
      [
        [GELU_GRAD_KERNEL, 'geluGrad'],
        [GELU_ERF_GRAD_KERNEL, 'geluErfGrad'],
        [SILU_GRAD_KERNEL, 'siluGrad'],
      ] as const
    ).map(([name, op]) =>
      k(name, (args) => {
        const dy = args.inputs.dy as tf.TensorInfo;
        const x = args.inputs.x as tf.TensorInfo;
        if (dy.shape.join() !== x.shape.join()) throw new Error(`${name} (wasm): dy shape [${dy.shape}] must equal x shape [${x.shape}]`);
        if (dy.dtype !== 'float32' || x.dtype !== 'float32')
          throw new Error(`${name} (wasm): dy and x must be float32, got ${dy.dtype} and ${x.dtype}`);
        const be = args.backend as Backend;
        const out = be.makeOutput(x.shape, 'float32');
        const ne = op === 'siluGrad' ? nativeElementwise() : null;
        if (ne) ne.silu(heapBuffer(be), 1, size(x.shape), offset(be, x), offset(be, dy), offset(be, out));
        else opsFor(be)[op](offset(be, dy), offset(be, x), size(x.shape), offset(be, out));
        return out;
      }),
    ),
    k(DROPOUT_KERNEL, (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const { rate, seed } = args.attrs as unknown as { rate: number; seed: number };
      const be = args.backend as Backend;
      const out = be.makeOutput(x.shape, 'float32');
      const n = size(x.shape);
      const key = dropoutKey(seed);
      const thr = dropoutThreshold(rate);
      const scale = Math.fround(1 / (1 - rate));
      opsFor(be).dropout(offset(be, x), n, offset(be, out), key, thr, scale);
      const heap = (be.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
      const xo = offset(be, x) >>> 2;
      const oo = offset(be, out) >>> 2;
      for (let i = n & ~3; i < n; i++) heap[oo + i] = heap[xo + i]! * (dropoutHash(key, i) >= thr ? scale : 0);
      return out;
    }),
    k(FLUSH_KERNEL, (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const { below } = args.attrs as unknown as { below: number };
      const be = args.backend as Backend;
      const out = be.makeOutput(x.shape, 'float32');
      const n = size(x.shape);
      opsFor(be).flush(offset(be, x), n, below, offset(be, out));
      const heap = (be.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
      const xo = offset(be, x) >>> 2;
      const oo = offset(be, out) >>> 2;
      for (let i = n & ~3; i < n; i++) {
        const v = heap[xo + i] as number;
        heap[oo + i] = Math.abs(v) < below ? 0 : v;
      }
      return out;
    }),
    k(GUMBEL_KERNEL, (args) => {
      const { shape, seed, eps } = args.attrs as unknown as { shape: number[]; seed: number; eps: number };
      const be = args.backend as Backend;
      const out = be.makeOutput(shape, 'float32');
      const n = size(shape);
      const key = gumbelKey(seed);
      const [lo, hi] = gumbelBounds(eps);
      opsFor(be).gumbel(n, offset(be, out), key, lo, hi);
      const heap = (be.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
      const oo = offset(be, out) >>> 2;
      for (let i = n & ~3; i < n; i++) heap[oo + i] = gumbelValue(key, i, lo, hi);
      return out;
    }),
    k(ADAMW_KERNEL, (args) => {
      const { p, m, v, g } = args.inputs as Record<'p' | 'm' | 'v' | 'g', tf.TensorInfo>;
      return adamwKernel(args.backend as Backend, ADAMW_KERNEL, [{ p, m, v, g, attrs: args.attrs as unknown as AdamWKernelAttrs }]);
    }),
    k(ADAMW_N_KERNEL, (args) => {
      const { n, scalars } = (args.attrs ?? {}) as { n?: unknown; scalars?: unknown };
      if (!(Number.isInteger(n) && (n as number) >= 0))
        throw new Error(`${ADAMW_N_KERNEL} (wasm): attr n must be an integer >= 0, got ${String(n)}`);
      const sc = scalars as number[];
      if (!Array.isArray(sc) || sc.length !== 8 * (n as number))
        throw new Error(
          `${ADAMW_N_KERNEL} (wasm): attr scalars must hold 8 numbers per parameter (${8 * (n as number)}), got ${Array.isArray(sc) ? sc.length : typeof sc}`,
        );
      const items = Array.from({ length: n as number }, (_, i) => {
        const get = (name: string) => {
          const t = args.inputs[`${name}${i}`] as tf.TensorInfo | undefined;
          if (!t) throw new Error(`${ADAMW_N_KERNEL} (wasm): input ${name}${i} of ${String(n)} is missing`);
          return t;
        };
        const [decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, bc2Sqrt, eps, stepSize] = sc.slice(8 * i, 8 * i + 8) as number[];
        const attrs = { decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, bc2Sqrt, eps, stepSize } as AdamWKernelAttrs;
        return { p: get('p'), m: get('m'), v: get('v'), g: get('g'), attrs, label: `${i}` };
      });
      return adamwKernel(args.backend as Backend, ADAMW_N_KERNEL, items);
    }),
    k(SUM_SQUARES_KERNEL, (args) => {
      const xs = listInputs(args, SUM_SQUARES_KERNEL, 'x');
      const be = args.backend as Backend;
      const out = be.makeOutput([], 'float32');
      const ops = opsFor(be);
      // AddN's order: ((0 + s0) + s1) + ..., each a float32 addition
      let total = 0;
      for (const x of xs) {
        const n = size(x.shape);
        if (n > 0) total = Math.fround(total + ops.sumSquares(offset(be, x), n));
      }
      (be.typedArrayFromHeap(out) as Float32Array)[0] = total;
      return out;
    }),
    k(SCALE_KERNEL, (args) => {
      const xs = listInputs(args, SCALE_KERNEL, 'x');
      const coef = args.inputs.coef as tf.TensorInfo | undefined;
      if (coef?.dtype !== 'float32' || size(coef.shape) !== 1)
        throw new Error(
          `${SCALE_KERNEL} (wasm): coef must be a float32 tensor of one element, got ${coef ? `${coef.dtype} [${coef.shape}]` : 'none'}`,
        );
      const be = args.backend as Backend;
      // makeOutput may grow the heap (detaching views): all outputs first, then the heap reads.
      const outs = xs.map((x) => be.makeOutput(x.shape, 'float32'));
      const ops = opsFor(be);
      const heap = (be.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
      const c = heap[offset(be, coef) >>> 2] as number;
      xs.forEach((x, i) => {
        const n = size(x.shape);
        if (n === 0) return;
        const xo = offset(be, x);
        const oo = offset(be, outs[i]!);
        ops.scale(xo, n, c, oo);
        for (let j = n & ~3; j < n; j++) heap[(oo >>> 2) + j] = Math.fround(heap[(xo >>> 2) + j]! * c);
      });
      return outs;
    }),
    k(ROPE_KERNEL, (args) => {
      const { x, cos, sin } = args.inputs as Record<'x' | 'cos' | 'sin', tf.TensorInfo>;
      const { interleaved, inverse } = args.attrs as unknown as { interleaved: boolean; inverse: boolean };
      const r = x.shape.length;
      const T = x.shape[r - 2] as number;
      const d = x.shape[r - 1] as number;
      if (r < 2 || d % 2 !== 0 || cos.shape.join() !== `${T},${d}` || sin.shape.join() !== `${T},${d}`)
        throw new Error(
          `${ROPE_KERNEL} (wasm): expected x [..., T, d] with even d and cos, sin [T, d], got [${x.shape}], [${cos.shape}], [${sin.shape}]`,
        );
      const be = args.backend as Backend;
      const out = be.makeOutput(x.shape, 'float32');
      const n = size(x.shape);
      if (n === 0) return out;
      // pair (i0, i1): y_i0 = x_i0 c - x_i1 s, y_i1 = x_i1 c + x_i0 s (s -> -s for the inverse); simd_ops.ts
      opsFor(be).ropeRows(n / d, T, d, offset(be, x), offset(be, cos), offset(be, sin), offset(be, out), !!interleaved, !!inverse);
      return out;
    }),
    ...([RMS_NORM_KERNEL, LAYER_NORM_KERNEL] as const).map((name) =>
      k(name, (args) => {
        const { x, weight, bias } = args.inputs as Partial<Record<'x' | 'weight' | 'bias', tf.TensorInfo>>;
        const { eps } = args.attrs as unknown as { eps: number };
        const D = x?.shape[x.shape.length - 1];
        const bad = (t: tf.TensorInfo | undefined) => t !== undefined && (t.dtype !== 'float32' || t.shape.join() !== `${D}`);
        if (x?.dtype !== 'float32' || x.shape.length === 0 || bad(weight) || bad(bias) || (name === RMS_NORM_KERNEL && bias))
          throw new Error(
            `${name} (wasm): expected float32 x [..., D]${name === RMS_NORM_KERNEL ? ' and weight [D] or none' : ' and weight, bias [D] or none'}, got x ${x ? `${x.dtype} [${x.shape}]` : 'missing'}${weight ? `, weight ${weight.dtype} [${weight.shape}]` : ''}${bias ? `, bias ${bias.dtype} [${bias.shape}]` : ''}`,
          );
        if (!(typeof eps === 'number' && Number.isFinite(eps) && eps >= 0))
          throw new Error(`${name} (wasm): eps must be a finite number >= 0, got ${eps}`);
        const be = args.backend as Backend;
        const out = be.makeOutput(x.shape, 'float32');
        if (size(x.shape) === 0) return out;
        const o = (t: tf.TensorInfo | undefined) => (t ? offset(be, t) : -1);
        const kind = name === RMS_NORM_KERNEL ? 'rms' : 'layer';
        opsFor(be).normRows(kind, size(x.shape) / D!, D!, o(x), o(weight), o(bias), o(out), eps);
        return out;
      }),
    ),
    k(ATTENTION_KERNEL, (args) => {
      const { q, k: key, v } = args.inputs as Partial<Record<'q' | 'k' | 'v', tf.TensorInfo>>;
      const { scale, causal } = args.attrs as unknown as { scale: number; causal: boolean };
      const [B, H, T, hs] = (q?.shape ?? []) as number[];
      const S = key?.shape[2] as number;
      const is = (t: tf.TensorInfo | undefined, shape: number[]) => t?.dtype === 'float32' && t.shape.join() === shape.join();
      if (q?.shape.length !== 4 || !is(q, q.shape) || !is(key, [B!, H!, S, hs!]) || !is(v, [B!, H!, S, hs!]) || !Number.isFinite(scale))
        throw new Error(
          `${ATTENTION_KERNEL} (wasm): expected float32 q [B, H, T, hs], k and v [B, H, S, hs] and a finite scale, got ${(
            ['q', 'k', 'v'] as const
          )
            .map((n) => {
              const t = (args.inputs as Record<string, tf.TensorInfo | undefined>)[n];
              return t ? `${n} ${t.dtype} [${t.shape}]` : `${n} none`;
            })
            .join(', ')}, scale ${scale}`,
        );
      const be = args.backend as Backend;
      // scores = matMul(q, k, false, true) * scale (+ causalMask(T, S)); p = softmax; o = matMul(p, v)
      // causal with S >= T: the GEMMs leave out the blocks the mask zeroes (causalMatMulInto; the same bits)
      const off = S - T!;
      const mm = attentionGemm(be, ATTENTION_KERNEL, !!causal, off);
      const scores = mm({ a: q, b: key!, transposeA: false, transposeB: true }, 'nEnd');
      let p: tf.TensorInfo;
      try {
        if (size(scores.shape) > 0) opsFor(be).attnScaleMask(B! * H! * T!, T!, S, offset(be, scores), scale, !!causal, S - T!);
        const softmax = tf.getKernel('Softmax', 'wasm');
        if (!softmax) throw new Error(`${ATTENTION_KERNEL} (wasm): no Softmax kernel registered for wasm`);
        p = softmax.kernelFunc({ inputs: { logits: scores }, backend: be as never, attrs: { dim: 3 } }) as tf.TensorInfo;
      } finally {
        be.disposeData(scores.dataId);
      }
      const o = mm({ a: p, b: v!, transposeA: false, transposeB: false }, 'kEnd');
      return [o, p];
    }),
    k(ATTENTION_GRAD_KERNEL, (args) => {
      const { dy, q, k: key, v, p } = args.inputs as Partial<Record<'dy' | 'q' | 'k' | 'v' | 'p', tf.TensorInfo>>;
      const { scale, causal } = args.attrs as unknown as { scale: number; causal: boolean };
      const [B, H, T, hs] = (q?.shape ?? []) as number[];
      const S = key?.shape[2] as number;
      const is = (t: tf.TensorInfo | undefined, shape: number[]) => t?.dtype === 'float32' && t.shape.join() === shape.join();
      if (
        q?.shape.length !== 4 ||
        !is(q, q.shape) ||
        !is(dy, q.shape) ||
        !is(key, [B!, H!, S, hs!]) ||
        !is(v, [B!, H!, S, hs!]) ||
        !is(p, [B!, H!, T!, S]) ||
        !Number.isFinite(scale)
      )
        throw new Error(
          `${ATTENTION_GRAD_KERNEL} (wasm): expected float32 dy and q [B, H, T, hs], k and v [B, H, S, hs], p [B, H, T, S] and a finite scale, got ${(
            ['dy', 'q', 'k', 'v', 'p'] as const
          )
            .map((n) => {
              const t = (args.inputs as Record<string, tf.TensorInfo | undefined>)[n];
              return t ? `${n} ${t.dtype} [${t.shape}]` : `${n} none`;
            })
            .join(', ')}, scale ${scale}`,
        );
      const be = args.backend as Backend;
      // tfjs's gradients of the composite, in its order: o = matMul(p, v) gives dp = matMul(do, v,
      // false, true) and dv = matMul(p, do, true, false); softmax and the scale give ds (in place on
      // dp); scores = matMul(q, k, false, true) gives dq = matMul(ds, k) and dk = matMul(ds, q, true, false)
      // (causal with S >= T: without the blocks the mask zeroes, as the forward; the same bits)
      const off = S - T!;
      const mm = attentionGemm(be, ATTENTION_GRAD_KERNEL, !!causal, off);
      const dp = mm({ a: dy!, b: v!, transposeA: false, transposeB: true }, 'nEnd');
      try {
        const dv = mm({ a: p!, b: dy!, transposeA: true, transposeB: false }, 'kStart');
        if (size(dp.shape) > 0)
          opsFor(be).attnSoftmaxGrad(B! * H! * T!, T!, S, offset(be, dp), offset(be, p!), scale, !!causal && off >= 0, off);
        const dq = mm({ a: dp, b: key!, transposeA: false, transposeB: false }, 'kEnd');
        const dk = mm({ a: dp, b: q, transposeA: true, transposeB: false }, 'kStart');
        return [dq, dk, dv];
      } finally {
        be.disposeData(dp.dataId);
      }
    }),
    k(LINEAR_GRAD_KERNEL, (args) => {
      const { dy, x, weight } = args.inputs as Partial<Record<'dy' | 'x' | 'weight', tf.TensorInfo>>;
      const { hasBias } = args.attrs as unknown as { hasBias: boolean };
      const [O, I] = (weight?.shape ?? []) as number[];
      const r = x?.shape.length ?? 0;
      const ok =
        x?.dtype === 'float32' &&
        dy?.dtype === 'float32' &&
        weight?.dtype === 'float32' &&
        weight.shape.length === 2 &&
        r >= 2 &&
        x.shape[r - 1] === I &&
        dy.shape.length === r &&
        dy.shape.every((d, i) => d === (i === r - 1 ? O : x.shape[i]));
      if (!ok)
        throw new Error(
          `${LINEAR_GRAD_KERNEL} (wasm): expected float32 x [..., in] (rank >= 2), weight [out, in] and dy [..., out] with x's leading dimensions, got ${(
            ['dy', 'x', 'weight'] as const
          )
            .map((n) => {
              const t = (args.inputs as Record<string, tf.TensorInfo | undefined>)[n];
              return t ? `${n} ${t.dtype} [${t.shape}]` : `${n} none`;
            })
            .join(', ')}`,
        );
      const be = args.backend as Backend;
      const N = size(x.shape) / Math.max(I!, 1);
      const view = (t: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({ dataId: t.dataId, shape, dtype: t.dtype });
      // the composite's calls: dx2 = matMul(dy2, W) (here on dy as it is: its leading dimensions
      // fold into the same one GEMM of N rows), dW = matMul(dy2, x2, true, false), db = sum(dy2, 0)
      const dx = matMulInto(be, { a: dy, b: weight, transposeA: false, transposeB: false }, LINEAR_GRAD_KERNEL);
      const dw = matMulInto(be, { a: view(dy, [N, O!]), b: view(x, [N, I!]), transposeA: true, transposeB: false }, LINEAR_GRAD_KERNEL);
      if (!hasBias) return [dx, dw];
      const db = be.makeOutput([O!], 'float32');
      if (O! > 0) {
        if (N === 0) (be.typedArrayFromHeap(db) as Float32Array).fill(0);
        else opsFor(be).sum(offset(be, dy), 1, N, O!, offset(be, db));
      }
      return [dx, dw, db];
    }),
    k(NORM_TRAIN_KERNEL, (args) => {
      const { x, weight, bias } = args.inputs as Partial<Record<'x' | 'weight' | 'bias', tf.TensorInfo>>;
      const { eps, layer } = args.attrs as unknown as { eps: number; layer: boolean };
      const D = x?.shape[x.shape.length - 1];
      const bad = (t: tf.TensorInfo | undefined) => t !== undefined && (t.dtype !== 'float32' || t.shape.join() !== `${D}`);
      if (x?.dtype !== 'float32' || x.shape.length === 0 || bad(weight) || bad(bias) || (!layer && bias))
        throw new Error(
          `${NORM_TRAIN_KERNEL} (wasm): expected float32 x [..., D]${layer ? ' and weight, bias [D] or none' : ' and weight [D] or none'}, got x ${x ? `${x.dtype} [${x.shape}]` : 'missing'}${weight ? `, weight ${weight.dtype} [${weight.shape}]` : ''}${bias ? `, bias ${bias.dtype} [${bias.shape}]` : ''}`,
        );
      if (!(typeof eps === 'number' && Number.isFinite(eps) && eps >= 0))
        throw new Error(`${NORM_TRAIN_KERNEL} (wasm): eps must be a finite number >= 0, got ${eps}`);
      const be = args.backend as Backend;
      const rows = D === 0 ? 0 : size(x.shape) / D!;
      const y = be.makeOutput(x.shape, 'float32');
      const stats = be.makeOutput([3, rows], 'float32');
      if (size(x.shape) === 0) return [y, stats];
      const o = (t: tf.TensorInfo | undefined) => (t ? offset(be, t) : -1);
      const ve = be.makeOutput([rows], 'float32');
      const exponent = be.makeOutput([], 'float32');
      let p: tf.TensorInfo | undefined;
      try {
        const st = o(stats);
        opsFor(be).normRows(layer ? 'layer' : 'rms', rows, D!, o(x), o(weight), o(bias), o(y), eps, {
          mean: st,
          rs: st + 4 * rows,
          ve: o(ve),
        });
        // p = pow(ve, 1.5) by the registered Pow kernel, as the composite's Rsqrt gradient computes it
        (be.typedArrayFromHeap(exponent) as Float32Array)[0] = 1.5;
        const pow = tf.getKernel('Pow', 'wasm');
        if (!pow) throw new Error(`${NORM_TRAIN_KERNEL} (wasm): no Pow kernel registered for wasm`);
        p = pow.kernelFunc({ inputs: { a: ve, b: exponent }, backend: be as never, attrs: {} }) as tf.TensorInfo;
        const heap = (be.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32; // after the Pow kernel, which may grow the heap
        const from = o(p) >>> 2;
        heap.copyWithin((st >>> 2) + 2 * rows, from, from + rows);
      } finally {
        for (const t of [ve, exponent, p]) if (t) be.disposeData(t.dataId);
      }
      return [y, stats];
    }),
    k(NORM_GRAD_KERNEL, (args) => {
      const { dy, x, weight, stats } = args.inputs as Partial<Record<'dy' | 'x' | 'weight' | 'stats', tf.TensorInfo>>;
      const { layer, hasBias } = args.attrs as unknown as { layer: boolean; hasBias: boolean };
      const D = x?.shape[x.shape.length - 1] as number;
      const rows = x && D > 0 ? size(x.shape) / D : 0;
      const f32 = (t: tf.TensorInfo | undefined, shape: number[]) => t?.dtype === 'float32' && t.shape.join() === shape.join();
      if (
        !x ||
        x.shape.length === 0 ||
        D % 4 !== 0 ||
        !f32(x, x.shape) ||
        !f32(dy, x.shape) ||
        (weight && !f32(weight, [D])) ||
        !f32(stats, [3, rows])
      )
        throw new Error(
          `${NORM_GRAD_KERNEL} (wasm): expected float32 dy and x [..., D] with D a multiple of 4, weight [D] or none, stats [3, rows], got ${(
            ['dy', 'x', 'weight', 'stats'] as const
          )
            .map((n) => {
              const t = (args.inputs as Record<string, tf.TensorInfo | undefined>)[n];
              return t ? `${n} ${t.dtype} [${t.shape}]` : `${n} none`;
            })
            .join(', ')}`,
        );
      const be = args.backend as Backend;
      const dx1 = be.makeOutput(x.shape, 'float32');
      const dx2 = be.makeOutput(x.shape, 'float32');
      const dw = weight ? be.makeOutput([D], 'float32') : null;
      const db = hasBias ? be.makeOutput([D], 'float32') : null;
      const outs = [dx1, dx2, ...(dw ? [dw] : []), ...(db ? [db] : [])];
      if (D === 0) return outs;
      if (rows === 0) {
        for (const t of [dw, db]) if (t) (be.typedArrayFromHeap(t) as Float32Array).fill(0);
        return outs;
      }
      const o = (t: tf.TensorInfo | null | undefined) => (t ? offset(be, t) : -1);
      const st = o(stats);
      opsFor(be).normGradRows(layer ? 'layer' : 'rms', rows, D, {
        dy: o(dy),
        x: o(x),
        w: o(weight),
        mean: st,
        rs: st + 4 * rows,
        p: st + 8 * rows,
        dx1: o(dx1),
        dx2: o(dx2),
        dw: o(dw),
        db: o(db),
      });
      return outs;
    }),
    k(GROUP_NORM_KERNEL, (args) => {
      const { x, weight, bias } = args.inputs as Record<'x' | 'weight' | 'bias', tf.TensorInfo>;
      const { numGroups: G, eps } = args.attrs as unknown as { numGroups: number; eps: number };
      const [B, H, W, C] = x.shape as [number, number, number, number];
      if (x.shape.length !== 4 || C % G !== 0 || weight.shape.join() !== `${C}` || bias.shape.join() !== `${C}`)
        throw new Error(
          `${GROUP_NORM_KERNEL} (wasm): expected x [B, H, W, C] with C divisible by ${G} and weight, bias [C], got [${x.shape}], [${weight.shape}], [${bias.shape}]`,
        );
      const be = args.backend as Backend;
      const y = be.makeOutput(x.shape, 'float32');
      const mean = be.makeOutput([B, G], 'float32');
      const rstd = be.makeOutput([B, G], 'float32');
      const heapOf = () => (be.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
      const ne = nativeElementwise();
      if (ne && size(x.shape) > 0) {
        // the addon: the same bits as the kernels below, split by samples over its threads
        const o = (t: tf.TensorInfo) => offset(be, t) as number;
        ne.groupNorm(heapBuffer(be), 0, B, H * W, C, G, eps, o(x), o(weight), o(bias), o(y), o(mean), o(rstd), 0, 0);
      } else if (size(x.shape) > 0 && GroupNormSimd.supports(C)) {
        const o = (t: tf.TensorInfo) => offset(be, t) as number;
        normFor(be).forward(heapOf, { x: o(x), w: o(weight), b: o(bias), y: o(y), mean: o(mean), rstd: o(rstd) }, B, H * W, C, G, eps);
      } else if (size(x.shape) > 0) {
        const f = (t: tf.TensorInfo) => offset(be, t) >>> 2;
        groupNormForward(heapOf(), { x: f(x), w: f(weight), b: f(bias), y: f(y), mean: f(mean), rstd: f(rstd) }, B, H * W, C, G, eps);
      }
      return [y, mean, rstd];
    }),
    k(GROUP_NORM_GRAD_KERNEL, (args) => {
      const { dy, x, weight, mean, rstd } = args.inputs as Record<'dy' | 'x' | 'weight' | 'mean' | 'rstd', tf.TensorInfo>;
      const { numGroups: G } = args.attrs as unknown as { numGroups: number };
      const [B, H, W, C] = x.shape as [number, number, number, number];
      if (dy.shape.join() !== x.shape.join())
        throw new Error(`${GROUP_NORM_GRAD_KERNEL} (wasm): dy shape [${dy.shape}] must equal x shape [${x.shape}]`);
      const be = args.backend as Backend;
      const dx = be.makeOutput(x.shape, 'float32');
      const dw = be.makeOutput([C], 'float32');
      const db = be.makeOutput([C], 'float32');
      const f = (t: tf.TensorInfo) => offset(be, t) >>> 2;
      const heapOf = () => (be.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
      const ne = nativeElementwise();
      if (ne) {
        // the addon (zero samples: it zeroes dweight and dbias)
        const o = (t: tf.TensorInfo) => offset(be, t) as number;
        ne.groupNorm(heapBuffer(be), 1, B, H * W, C, G, 0, o(dy), o(x), o(weight), o(mean), o(rstd), o(dx), o(dw), o(db));
      } else if (size(x.shape) > 0 && GroupNormSimd.supports(C)) {
        const o = (t: tf.TensorInfo) => offset(be, t) as number;
        normFor(be).backward(
          heapOf,
          { dy: o(dy), x: o(x), w: o(weight), mean: o(mean), rstd: o(rstd), dx: o(dx), dw: o(dw), db: o(db) },
          B,
          H * W,
          C,
          G,
        );
      } else if (size(x.shape) > 0) {
        const heap = heapOf();
        groupNormBackward(
          heap,
          { dy: f(dy), x: f(x), w: f(weight), mean: f(mean), rstd: f(rstd), dx: f(dx), dw: f(dw), db: f(db) },
          B,
          H * W,
          C,
          G,
        );
      } else
        heapOf()
          .fill(0, f(dw), f(dw) + C)
          .fill(0, f(db), f(db) + C);
      return [dx, dw, db];
    }),
    k('GatherV2', (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const indices = args.inputs.indices as tf.TensorInfo;
      if (x.dtype === 'string' || x.dtype === 'complex64' || indices.dtype !== 'int32') return callStock(stock, 'GatherV2', args);
      const { axis, batchDims } = args.attrs as { axis: number; batchDims?: number };
      const be = args.backend as Backend;
      const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
      const dim = x.shape[ax] as number;
      const nIndices = size(indices.shape);
      const idx = be.typedArrayFromHeap(indices) as Int32Array;
      for (let i = 0; i < nIndices; i++) {
        const v = idx[i] as number;
        if (v < 0 || v >= dim) throw new Error(`GatherV2: the index value ${v} is not in [0, ${dim - 1}]`);
      }
      const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x as tf.Tensor, indices as tf.Tensor, ax, batchDims ?? 0);
      // makeOutput may grow the heap, which detaches every view taken before it: views are retaken below.
      const out = be.makeOutput(info.outputShape, x.dtype);
      const { batchSize, outerSize, dimSize, sliceSize } = info;
      const nIdx = nIndices / Math.max(batchSize, 1);
      if (size(info.outputShape) === 0) return out;
      const w = be.wasm as unknown as { HEAP32: Int32Array; HEAPU8: Uint8Array };
      const heap = x.dtype === 'bool' ? w.HEAPU8 : w.HEAP32;
      const unit = x.dtype === 'bool' ? 1 : 4;
      const src = offset(be, x) / unit;
      const dst = offset(be, out) / unit;
      const ids = be.typedArrayFromHeap(indices) as Int32Array;
      for (let b = 0; b < batchSize; b++)
        for (let o = 0; o < outerSize; o++)
          for (let i = 0; i < nIdx; i++) {
            const from = src + ((b * outerSize + o) * dimSize + (ids[b * nIdx + i] as number)) * sliceSize;
            const to = dst + ((b * outerSize + o) * nIdx + i) * sliceSize;
            if (sliceSize >= 16) heap.copyWithin(to, from, from + sliceSize);
            else for (let j = 0; j < sliceSize; j++) heap[to + j] = heap[from + j] as number;
          }
      return out;
    }),
  ];
}
