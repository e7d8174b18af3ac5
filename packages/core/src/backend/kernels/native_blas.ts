/**
 * The optional native GEMM (native/mmlm_blas.c: cblas_sgemm on the wasm heap). Built only on
 * request (`pnpm --filter @mmlm/core build:native`, needs a C compiler and libopenblas-dev); when
 * it is absent or fails to load, core's WebAssembly SIMD GEMM runs instead.
 *
 * Environment: MMLM_NATIVE_BLAS=0 disables it; MMLM_NATIVE_BLAS_PATH points at another build;
 * MMLM_BLAS_THREADS sets its thread count (default: OpenBLAS' own, OPENBLAS_NUM_THREADS or all cores;
 * 1 under vitest, whose parallel workers would otherwise oversubscribe the cores);
 * MMLM_NATIVE_CONV_THREADS the threads of the addon's own kernels, its convolution, SiLU, GroupNorm
 * and Add (default: the GEMM's count; 1 runs each on the calling thread, a convolution over the pool's
 * threshold with OpenBLAS' threads inside its GEMMs, as before 2026-12-06); MMLM_GEMM_THREAD_MIN the
 * multiply-adds under which a GEMM (and a convolution under the pool's threshold) keeps OpenBLAS to
 * one thread (default 4M); MMLM_NATIVE_ELEMENTWISE=0 keeps SiLU and GroupNorm
 * on core's WebAssembly kernels and Add on tfjs-wasm's (the addon's give the same bits; it only moves
 * them onto threads and wider vectors).
 *
 * Node only: the loader (native_blas_node.ts) comes through `#platform`; in a browser bundle it
 * reports "not available in the browser" and the SIMD GEMM runs.
 */
import { loadNativeBlas } from '#platform';
import { env } from '../../runtime.js';
import type { StridedMatrix } from './simd_gemm.js';

export interface NativeBlas {
  sgemm(
    heap: ArrayBuffer,
    transA: number,
    transB: number,
    M: number,
    N: number,
    K: number,
    aOffset: number,
    lda: number,
    bOffset: number,
    ldb: number,
    cOffset: number,
    ldc: number,
    beta: number,
  ): void;
  /**
   * One NHWC float32 convolution on the heap (mode 0 forward into y, 1 filter gradient into w, 2 input
   * gradient into x; see mmlm_blas.c). Absent from addons built before 2026-12-06.
   */
  conv2d?(
    heap: ArrayBuffer,
    mode: number,
    B: number,
    H: number,
    W: number,
    Cin: number,
    OH: number,
    OW: number,
    Cout: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    top: number,
    left: number,
    xOffset: number,
    wOffset: number,
    yOffset: number,
  ): void;
  /**
   * SiLU over n floats on the heap (mode 0: out = x sigmoid(x); 1: out = dy silu'(x)), split over the
   * addon's threads; the bits of core's wasm kernel. Absent from addons built before 2026-12-06 (third build).
   */
  silu?(heap: ArrayBuffer, mode: number, n: number, xOffset: number, dyOffset: number, outOffset: number): void;
  /**
   * GroupNorm over NHWC [B, HW, C] on the heap, split by samples; the bits of core's wasm kernel.
   * mode 0: offsets x, weight, bias, y, mean, rstd (two unused); mode 1: dy, x, weight, mean, rstd,
   * dx, dweight, dbias. Absent from addons built before 2026-12-06 (third build).
   */
  groupNorm?(
    heap: ArrayBuffer,
    mode: number,
    B: number,
    HW: number,
    C: number,
    G: number,
    eps: number,
    o0: number,
    o1: number,
    o2: number,
    o3: number,
    o4: number,
    o5: number,
    o6: number,
    o7: number,
  ): void;
  /**
   * out [n] = a [n] + b [blen] repeated (blen divides n; blen = n: equal shapes) on the heap, split over
   * the addon's threads. Absent from addons built before 2026-12-06 (third build).
   */
  add?(heap: ArrayBuffer, n: number, blen: number, aOffset: number, bOffset: number, outOffset: number): void;
  setThreads(n: number): void;
  /** GEMMs of fewer multiply-adds run on one OpenBLAS thread (0: OpenBLAS decides). Absent before 2026-12-06 (third build). */
  setGemmThreadMin?(minMultiplyAdds: number): void;
  /**
   * The convolution's own threads (0: OpenBLAS' thread count) and the multiply-adds a convolution
   * needs before it is split over them. Absent from addons built before 2026-12-06 (second build).
   */
  setConvThreads?(threads: number, minMultiplyAdds: number): void;
  threads(): number;
  config(): string;
}

export interface NativeBlasInfo {
  available: boolean;
  enabled: boolean;
  path: string | null;
  threads: number | null;
  config: string | null;
  /** Why it is not available. */
  reason?: string;
}

let loaded: { blas: NativeBlas; path: string } | null = null;
let loadError: string | null = null;
let tried = false;
/** null until first read: MMLM_NATIVE_BLAS is read lazily, so importing this module reads no `process`. */
let enabled: boolean | null = null;

function isEnabled(): boolean {
  enabled ??= env('MMLM_NATIVE_BLAS') !== '0';
  return enabled;
}

function load(): void {
  if (tried) return;
  tried = true;
  const r = loadNativeBlas();
  if ('error' in r) {
    loadError = r.error;
    return;
  }
  const threads = Number(env('MMLM_BLAS_THREADS') ?? (env('VITEST') ? 1 : 0));
  if (Number.isInteger(threads) && threads > 0) r.blas.setThreads(threads);
  const convVar = env('MMLM_NATIVE_CONV_THREADS');
  if (convVar !== undefined && convVar !== '') {
    const convThreads = Number(convVar);
    if (Number.isInteger(convThreads) && convThreads > 0 && convThreads <= 64) r.blas.setConvThreads?.(convThreads, NATIVE_CONV_THREAD_MIN);
    else
      console.warn(
        `[mmlm] MMLM_NATIVE_CONV_THREADS must be an integer in 1..64, got "${convVar}"; ignored (the GEMM's thread count is used)`,
      );
  }
  const gemmMin = env('MMLM_GEMM_THREAD_MIN');
  if (gemmMin !== undefined && gemmMin !== '') {
    const m = Number(gemmMin);
    if (Number.isFinite(m) && m >= 0) r.blas.setGemmThreadMin?.(m);
    else console.warn(`[mmlm] MMLM_GEMM_THREAD_MIN must be a number >= 0, got "${gemmMin}"; ignored (default ${NATIVE_GEMM_THREAD_MIN})`);
  }
  loaded = r;
}

/** The native GEMM when it is built, loads and is enabled; else null. */
export function nativeBlas(): NativeBlas | null {
  if (!isEnabled()) return null;
  load();
  return loaded?.blas ?? null;
}

/** null until first read, as `enabled` above. */
let convEnabled: boolean | null = null;
function isConvEnabled(): boolean {
  convEnabled ??= env('MMLM_NATIVE_CONV') !== '0';
  return convEnabled;
}

/**
 * The native convolution (im2col + cblas_sgemm in C over chunks of output pixels) when the native
 * GEMM is active, the addon has it and MMLM_NATIVE_CONV is not 0; else null. Off, the wasm conv
 * kernels run their GEMMs on the native GEMM as before (the digits of runs before 2026-12-06).
 */
export function nativeConv(): (NativeBlas & { conv2d: NonNullable<NativeBlas['conv2d']> }) | null {
  const blas = nativeBlas();
  if (!blas || typeof blas.conv2d !== 'function') return null;
  return isConvEnabled() ? (blas as NativeBlas & { conv2d: NonNullable<NativeBlas['conv2d']> }) : null;
}

/** Turn the native convolution on or off at run time (returns the previous setting; tests and A/B runs). */
export function setNativeConvEnabled(on: boolean): boolean {
  const was = isConvEnabled();
  convEnabled = on;
  return was;
}

/** null until first read, as `enabled` above. */
let elementwiseEnabled: boolean | null = null;
function isElementwiseEnabled(): boolean {
  elementwiseEnabled ??= env('MMLM_NATIVE_ELEMENTWISE') !== '0';
  return elementwiseEnabled;
}

export type NativeElementwise = NativeBlas & {
  silu: NonNullable<NativeBlas['silu']>;
  groupNorm: NonNullable<NativeBlas['groupNorm']>;
  add: NonNullable<NativeBlas['add']>;
};

/**
 * The addon's SiLU, GroupNorm and float32 Add (the wasm kernels' arithmetic in C, split over its
 * threads) when the native GEMM is active, the addon has them and MMLM_NATIVE_ELEMENTWISE is not 0;
 * else null.
 */
export function nativeElementwise(): NativeElementwise | null {
  const blas = nativeBlas();
  if (!blas || typeof blas.silu !== 'function' || typeof blas.groupNorm !== 'function' || typeof blas.add !== 'function') return null;
  return isElementwiseEnabled() ? (blas as NativeElementwise) : null;
}

/** Turn the addon's SiLU, GroupNorm and Add on or off at run time (returns the previous setting; tests and A/B runs). */
export function setNativeElementwiseEnabled(on: boolean): boolean {
  const was = isElementwiseEnabled();
  elementwiseEnabled = on;
  return was;
}

/** Turn the native GEMM on or off at run time (it stays off if it is not built). */
export function setNativeBlasEnabled(on: boolean): boolean {
  const was = isEnabled();
  enabled = on;
  return was; // callers restore it (tests: in a finally), so MMLM_NATIVE_BLAS=0 is never overridden
}

/** The multiply-adds below which a native GEMM runs on one OpenBLAS thread (mmlm_blas.c's GEMM_THREAD_MIN_DEFAULT). */
export const NATIVE_GEMM_THREAD_MIN = 4e6;

/** The multiply-adds below which a native convolution runs on one thread (mmlm_blas.c; measured in bench/). */
export const NATIVE_CONV_THREAD_MIN = 1.6e7;

/**
 * Set the native convolution's threads (0: the native GEMM's thread count) and the multiply-adds a
 * convolution needs before it is split (default NATIVE_CONV_THREAD_MIN; tests pass 0 to split small
 * ones). No effect when the addon is not loaded or predates it.
 */
export function setNativeConvThreads(threads: number, minMultiplyAdds = NATIVE_CONV_THREAD_MIN): void {
  if (!Number.isInteger(threads) || threads < 0 || threads > 64)
    throw new Error(`setNativeConvThreads: threads must be an integer in 0..64, got ${threads}`);
  if (!(minMultiplyAdds >= 0)) throw new Error(`setNativeConvThreads: minMultiplyAdds must be >= 0, got ${minMultiplyAdds}`);
  load();
  loaded?.blas.setConvThreads?.(threads, minMultiplyAdds);
}

/** Set the native GEMM's thread count (no effect when it is not loaded). */
export function setNativeBlasThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setNativeBlasThreads: threads must be a positive integer, got ${n}`);
  load();
  loaded?.blas.setThreads(n);
}

export function nativeBlasInfo(): NativeBlasInfo {
  load();
  return {
    available: loaded !== null,
    enabled: isEnabled(),
    path: loaded?.path ?? null,
    threads: loaded ? loaded.blas.threads() : null,
    config: loaded ? loaded.blas.config() : null,
    ...(loaded ? {} : { reason: loadError ?? 'not loaded' }),
  };
}

/** BLAS form of an [rows, cols] strided matrix: row-major with leading dimension ld, or its transpose. */
function blasForm(m: StridedMatrix, rows: number, cols: number): { trans: number; ld: number } | null {
  if (m.cs === 1 && m.rs >= Math.max(cols, 1)) return { trans: 0, ld: m.rs };
  if (m.rs === 1 && m.cs >= Math.max(rows, 1)) return { trans: 1, ld: m.cs };
  if (rows === 1 && m.cs === 1) return { trans: 0, ld: Math.max(cols, 1) };
  if (cols === 1 && m.rs === 1) return { trans: 1, ld: Math.max(rows, 1) };
  return null;
}

/**
 * C[M, N] (row stride ldc) = A B (+ C) with the native GEMM; false when the strides have no BLAS
 * form (then the caller runs its own GEMM).
 */
export function nativeGemm(
  blas: NativeBlas,
  heap: ArrayBuffer,
  M: number,
  N: number,
  K: number,
  A: StridedMatrix,
  B: StridedMatrix,
  C: number,
  ldc: number,
  accumulate: boolean,
): boolean {
  const a = blasForm(A, M, K);
  const b = blasForm(B, K, N);
  if (!a || !b || ldc < N) return false;
  blas.sgemm(heap, a.trans, b.trans, M, N, K, A.ptr, a.ld, B.ptr, b.ld, C, ldc, accumulate ? 1 : 0);
  return true;
}
