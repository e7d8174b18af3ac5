/**
 * The GEMM engines behind core's wasm matmul kernels, on a standalone WebAssembly.Memory, against a
 * float64 host reference: the SIMD GEMM with separate mul/add and with relaxed-SIMD FMA (enabled
 * here through V8's flag where the engine does not ship it), with tiny cache blocks so that every
 * blocking loop and edge tile runs, strided output, accumulation and K = 0; and the optional native
 * GEMM when it is built (its bounds check included).
 *
 * Tolerance: |C - C_ref| <= 1e-5 * sum_k |A_ik B_kj| elementwise (the float32 rounding bound of a
 * K-term dot product is about K * 2^-24 times that sum; K <= 70 here).
 */
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { nativeBlas, nativeGemm, setNativeBlasEnabled } from '../../src/backend/kernels/native_blas.js';
import { hasRelaxedSimd, SimdGemm, type StridedMatrix, WasmJs } from '../../src/backend/kernels/simd_gemm.js';
import { randn } from './helpers.js';

if (!hasRelaxedSimd()) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

function heap() {
  const memory = new WasmJs.Memory({ initial: 64 });
  let top = 64;
  const malloc = (n: number) => {
    const p = top;
    top += (n + 15) & ~15;
    return p;
  };
  return { memory, malloc };
}

interface Problem {
  M: number;
  N: number;
  K: number;
  ta: boolean;
  tb: boolean;
  ldc: number;
  accumulate: boolean;
}

/** Runs `gemm` on random A, B (and C when accumulating) and checks against float64. */
function check(
  p: Problem,
  gemm: (mem: ArrayBuffer, A: StridedMatrix, B: StridedMatrix, C: number) => void,
  memory: { buffer: ArrayBuffer },
  malloc: (n: number) => number,
) {
  const { M, N, K, ta, tb, ldc, accumulate } = p;
  const Ap = malloc(4 * M * K + 4);
  const Bp = malloc(4 * K * N + 4);
  const Cp = malloc(4 * M * ldc + 4);
  const h = new Float32Array(memory.buffer);
  h.set(randn(M * 100 + K, M * K), Ap / 4);
  h.set(randn(N * 100 + K, K * N), Bp / 4);
  const c0 = randn(M + N, M * ldc);
  h.set(c0, Cp / 4);
  const A: StridedMatrix = ta ? { ptr: Ap, rs: 1, cs: M } : { ptr: Ap, rs: K, cs: 1 };
  const B: StridedMatrix = tb ? { ptr: Bp, rs: 1, cs: K } : { ptr: Bp, rs: N, cs: 1 };
  gemm(memory.buffer, A, B, Cp);
  const out = new Float32Array(memory.buffer);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < ldc; j++) {
      const got = out[Cp / 4 + i * ldc + j] as number;
      if (j >= N) {
        expect(got).toBe(c0[i * ldc + j]); // outside the [M, N] block: untouched
        continue;
      }
      let s = accumulate ? (c0[i * ldc + j] as number) : 0;
      let mag = Math.abs(s);
      for (let k = 0; k < K; k++) {
        const t = (out[(A.ptr >> 2) + i * A.rs + k * A.cs] as number) * (out[(B.ptr >> 2) + k * B.rs + j * B.cs] as number);
        s += t;
        mag += Math.abs(t);
      }
      expect(Math.abs(got - s)).toBeLessThanOrEqual(1e-5 * mag + 1e-30);
    }
}

const PROBLEMS: Problem[] = [];
for (const [M, N, K] of [
  [1, 1, 1],
  [3, 5, 7],
  [4, 8, 16],
  [13, 17, 23],
  [9, 33, 70],
])
  for (const ta of [false, true])
    for (const tb of [false, true]) PROBLEMS.push({ M, N, K, ta, tb, ldc: N + (M % 3), accumulate: (M + N) % 2 === 1 });

describe('SimdGemm', () => {
  for (const fma of [false, true])
    for (const blocking of [undefined, { kc: 5, mc: 6, nc: 9 }]) {
      it(`${fma ? 'FMA' : 'mul+add'} micro-kernel, ${blocking ? 'tiny' : 'default'} blocking: all transposes, edge tiles, strided C, accumulate`, () => {
        const wasNative = setNativeBlasEnabled(false);
        try {
          const { memory, malloc } = heap();
          const g = new SimdGemm(memory, malloc, { fma, ...(blocking ? { blocking } : {}) });
          expect(g.fma).toBe(fma);
          for (const p of PROBLEMS) check(p, (_m, A, B, C) => g.gemm(p.M, p.N, p.K, A, B, C, p.ldc, p.accumulate), memory, malloc);
        } finally {
          setNativeBlasEnabled(wasNative);
        }
      });
    }

  it('K = 0 gives zeros (or leaves C when accumulating)', () => {
    const wasNative = setNativeBlasEnabled(false);
    try {
      const { memory, malloc } = heap();
      const g = new SimdGemm(memory, malloc);
      const C = malloc(4 * 6);
      const h = new Float32Array(memory.buffer);
      h.fill(7, C / 4, C / 4 + 6);
      g.gemm(2, 3, 0, { ptr: 0, rs: 0, cs: 1 }, { ptr: 0, rs: 3, cs: 1 }, C, 3, true);
      expect(Array.from(h.slice(C / 4, C / 4 + 6))).toEqual([7, 7, 7, 7, 7, 7]);
      g.gemm(2, 3, 0, { ptr: 0, rs: 0, cs: 1 }, { ptr: 0, rs: 3, cs: 1 }, C, 3);
      expect(Array.from(h.slice(C / 4, C / 4 + 6))).toEqual([0, 0, 0, 0, 0, 0]);
    } finally {
      setNativeBlasEnabled(wasNative);
    }
  });

  it('an A whose tile rows are adjacent floats (row stride 1) or whose rows are runs of adjacent k (column stride 1): the vector packing paths give bit for bit the result of the same A at other strides', () => {
    // packing copies values without arithmetic, so both layouts must pack to the same buffer and the
    // kernel must return identical bits; a wrong lane or offset in the vector copy changes them
    const wasNative = setNativeBlasEnabled(false);
    try {
      for (const fma of [false, true])
        for (const blocking of [undefined, { kc: 5, mc: 6, nc: 9 }])
          for (const [M, N, K] of [
            [4, 8, 16],
            [13, 17, 23],
            [32, 3, 70],
            [9, 33, 7],
          ] as const) {
            const { memory, malloc } = heap();
            const g = new SimdGemm(memory, malloc, { fma, ...(blocking ? { blocking } : {}) });
            const a = randn(M * 7 + K, M * K); // A[i, k] = a[k M + i] (A transposed in memory: row stride 1)
            const b = randn(N * 5 + K, K * N);
            const A1 = malloc(4 * M * K);
            const A2 = malloc(4 * 2 * M * K); // A[i, k] at 2 (k M + i): row stride 2, the scalar path
            const Bp = malloc(4 * K * N);
            const C1 = malloc(4 * M * N);
            const C2 = malloc(4 * M * N);
            const h = new Float32Array(memory.buffer);
            h.set(a, A1 / 4);
            for (let i = 0; i < a.length; i++) h[A2 / 4 + 2 * i] = a[i] as number;
            h.set(b, Bp / 4);
            g.gemm(M, N, K, { ptr: A1, rs: 1, cs: M }, { ptr: Bp, rs: N, cs: 1 }, C1, N);
            g.gemm(M, N, K, { ptr: A2, rs: 2, cs: 2 * M }, { ptr: Bp, rs: N, cs: 1 }, C2, N);
            const out = new Float32Array(memory.buffer);
            expect(Array.from(out.subarray(C1 / 4, C1 / 4 + M * N))).toEqual(Array.from(out.subarray(C2 / 4, C2 / 4 + M * N)));
            // A in rows (k adjacent: the 4 x 4 transposing path, then the K % 4 tail) against the same
            // A with its k two floats apart (scalar path)
            const C3 = malloc(4 * M * N);
            const C4 = malloc(4 * M * N);
            g.gemm(M, N, K, { ptr: A1, rs: K, cs: 1 }, { ptr: Bp, rs: N, cs: 1 }, C3, N);
            g.gemm(M, N, K, { ptr: A2, rs: 2 * K, cs: 2 }, { ptr: Bp, rs: N, cs: 1 }, C4, N);
            const out2 = new Float32Array(memory.buffer);
            expect(Array.from(out2.subarray(C3 / 4, C3 / 4 + M * N))).toEqual(Array.from(out2.subarray(C4 / 4, C4 / 4 + M * N)));
          }
    } finally {
      setNativeBlasEnabled(wasNative);
    }
  });

  it('gemmShiftedA (one source packed once, B blocks shared by every window) gives bit for bit one gemm per shifted window, and names bad shifts', () => {
    const wasNative = setNativeBlasEnabled(false);
    try {
      for (const fma of [false, true])
        for (const blocking of [undefined, { kc: 5, mc: 6, nc: 9 }])
          for (const [M, N, K, shifts] of [
            [4, 8, 16, [0, 1, 2, 6, 7, 8]],
            [3, 17, 23, [5, 0, 3]],
            [13, 3, 70, [0, 9, 2]],
            [32, 20, 300, [0, 1, 2, 34, 35, 36, 68, 69, 70]],
          ] as const) {
            const { memory, malloc } = heap();
            const g = new SimdGemm(memory, malloc, { fma, ...(blocking ? { blocking } : {}) });
            const srcK = K + Math.max(...shifts) + 1;
            const src = malloc(4 * srcK * M);
            const Bp = malloc(4 * K * (N + 2));
            const ldc = N + 1;
            const C1 = malloc(4 * shifts.length * M * ldc);
            const C2 = malloc(4 * shifts.length * M * ldc);
            const scratch = malloc(SimdGemm.shiftedSourceBytes(M, srcK));
            const h = new Float32Array(memory.buffer);
            h.set(randn(M * 3 + K, srcK * M), src / 4);
            h.set(randn(N * 7 + K, K * (N + 2)), Bp / 4);
            const fill = randn(11, shifts.length * M * ldc);
            h.set(fill, C1 / 4);
            h.set(fill, C2 / 4);
            const B = { ptr: Bp, rs: N + 2, cs: 1 }; // B with a row stride past its width
            const cStride = M * ldc;
            for (let t = 0; t < shifts.length; t++)
              g.gemm(M, N, K, { ptr: src + 4 * (shifts[t] as number) * M, rs: 1, cs: M }, B, C1 + 4 * t * cStride, ldc);
            g.gemmShiftedA(M, N, K, src, srcK, shifts, B, C2, cStride, ldc, scratch);
            const out = new Float32Array(memory.buffer);
            const n = shifts.length * cStride;
            expect(Array.from(out.subarray(C2 / 4, C2 / 4 + n))).toEqual(Array.from(out.subarray(C1 / 4, C1 / 4 + n)));
            // the column past N in every row stays as it was
            for (let r = 0; r < shifts.length * M; r++) expect(out[C2 / 4 + r * ldc + N]).toBe(fill[r * ldc + N]);
          }
      const { memory, malloc } = heap();
      const g = new SimdGemm(memory, malloc);
      const B = { ptr: 64, rs: 4, cs: 1 };
      expect(() => g.gemmShiftedA(4, 4, 10, 64, 12, [0, 3], B, 1024, 16, 4, 2048)).toThrow(
        /shifts \[0,3\] must be integers >= 0 with K \+ max shift <= srcK \(K 10, srcK 12\)/,
      );
      expect(() => g.gemmShiftedA(4, 4, 10, 64, 12, [-1], B, 1024, 16, 4, 2048)).toThrow(/shifts \[-1\]/);
      expect(() => g.gemmShiftedA(4, 4, 10, 64, 12, [1], B, 1024, 16, 4, 2052)).toThrow(/scratch 2052 is not 16-byte aligned/);
    } finally {
      setNativeBlasEnabled(wasNative);
    }
  });

  it('setNativeBlasEnabled returns the setting it replaced, so tests restore MMLM_NATIVE_BLAS=0 instead of overriding it', () => {
    const was = setNativeBlasEnabled(false);
    try {
      expect(setNativeBlasEnabled(false)).toBe(false);
      expect(setNativeBlasEnabled(true)).toBe(false);
      expect(setNativeBlasEnabled(false)).toBe(true);
    } finally {
      setNativeBlasEnabled(was);
    }
    expect(setNativeBlasEnabled(was)).toBe(was);
  });
});

describe.runIf(nativeBlas() !== null)('native GEMM (built)', () => {
  it('matches the float64 reference for all transposes, strided C and accumulate', () => {
    const blas = nativeBlas()!;
    const { memory, malloc } = heap();
    for (const p of PROBLEMS)
      check(p, (buf, A, B, C) => expect(nativeGemm(blas, buf, p.M, p.N, p.K, A, B, C, p.ldc, p.accumulate)).toBe(true), memory, malloc);
  });

  it('declines strides without a BLAS form and rejects matrices outside the heap', () => {
    const blas = nativeBlas()!;
    const { memory } = heap();
    expect(nativeGemm(blas, memory.buffer, 2, 2, 2, { ptr: 0, rs: 3, cs: 2 }, { ptr: 0, rs: 2, cs: 1 }, 64, 2, false)).toBe(false);
    expect(() =>
      nativeGemm(blas, memory.buffer, 2000, 2000, 10, { ptr: 0, rs: 10, cs: 1 }, { ptr: 0, rs: 2000, cs: 1 }, 0, 2000, false),
    ).toThrow(/a matrix lies outside the heap/);
  });
});
