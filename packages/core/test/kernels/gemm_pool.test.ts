/**
 * The worker-thread GEMM pool (src/backend/kernels/gemm_pool.ts): how work is split, and results of
 * a pool run on a separate (unshared) heap against the single-threaded SIMD GEMM, bit for bit (both
 * run the same micro-kernel over the same blocks, so every sum is formed in the same order).
 */
import { describe, expect, it } from 'vitest';
import { type GemmItem, GemmPool, split } from '../../src/backend/kernels/gemm_pool.js';
import { setNativeBlasEnabled } from '../../src/backend/kernels/native_blas.js';
import { SimdGemm, WasmJs } from '../../src/backend/kernels/simd_gemm.js';
import { randn } from './helpers.js';

const item = (M: number, C = 0): GemmItem => ({ M, N: 3, K: 2, A: { ptr: 0, rs: 2, cs: 1 }, B: { ptr: 0, rs: 3, cs: 1 }, C, ldc: 3 });

describe('GemmPool', () => {
  it('splits a list into whole items, or one item into row blocks of multiples of 4', () => {
    const parts = split([item(1), item(2), item(3), item(4), item(5)], 2);
    expect(parts.map((p) => p.map((i) => i.M))).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    const rows = split([item(10, 1000)], 2);
    expect(rows.map((p) => p.map((i) => [i.M, i.A.ptr, i.C]))).toEqual([[[8, 0, 1000]], [[2, 4 * 8 * 2, 1000 + 4 * 8 * 3]]]);
    expect(split([item(3)], 2)[1]).toEqual([]);
  });

  it('gives the same bits as the single-threaded GEMM (batched and row-split, all transposes)', () => {
    const wasNative = setNativeBlasEnabled(false);
    const pool = new GemmPool(2, false);
    try {
      const memory = new WasmJs.Memory({ initial: 256 });
      let top = 64;
      const malloc = (n: number) => {
        const p = top;
        top += (n + 15) & ~15;
        return p;
      };
      const g = new SimdGemm(memory, malloc, { fma: false });
      for (const [batch, M, N, K, ta, tb] of [
        [3, 9, 13, 21, false, true],
        [1, 37, 17, 300, true, false],
        [4, 5, 8, 7, true, true],
        [1, 6, 5, 4, false, false],
      ] as [number, number, number, number, boolean, boolean][]) {
        const A = malloc(4 * batch * M * K);
        const B = malloc(4 * batch * K * N);
        const C1 = malloc(4 * batch * M * N);
        const C2 = malloc(4 * batch * M * N);
        const h = new Float32Array(memory.buffer);
        h.set(randn(M, batch * M * K), A / 4);
        h.set(randn(N, batch * K * N), B / 4);
        const items = (C: number): GemmItem[] =>
          Array.from({ length: batch }, (_, b) => ({
            M,
            N,
            K,
            A: ta ? { ptr: A + 4 * b * M * K, rs: 1, cs: M } : { ptr: A + 4 * b * M * K, rs: K, cs: 1 },
            B: tb ? { ptr: B + 4 * b * K * N, rs: 1, cs: K } : { ptr: B + 4 * b * K * N, rs: N, cs: 1 },
            C: C + 4 * b * M * N,
            ldc: N,
          }));
        for (const it of items(C1)) g.gemm(it.M, it.N, it.K, it.A, it.B, it.C, it.ldc);
        const ran = pool.run(memory.buffer, items(C2), (its) => {
          for (const it of its) g.gemm(it.M, it.N, it.K, it.A, it.B, it.C, it.ldc);
        });
        expect(ran).toBe(true);
        const out = new Float32Array(memory.buffer);
        expect(Array.from(out.subarray(C2 / 4, C2 / 4 + batch * M * N))).toEqual(Array.from(out.subarray(C1 / 4, C1 / 4 + batch * M * N)));
      }
    } finally {
      pool.dispose();
      setNativeBlasEnabled(wasNative);
    }
  });

  it('rejects fewer than two threads', () => {
    expect(() => new GemmPool(1, false)).toThrow(/threads must be an integer >= 2, got 1/);
  });
});
