/**
 * Single-precision GEMM, C = op(A) op(B) (+ C), in WebAssembly SIMD, run on the tfjs-wasm heap.
 *
 * The layout follows Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication"
 * (ACM TOMS 34(3), 2008): K is split into blocks of KC, N into NC and M into MC; each block of B is
 * packed into strips of NR = 8 columns ([strip][k][8]) and each block of A into tiles of MR = 4 rows
 * ([tile][k][4]), zero-padded at the edges; a 4x8 register-blocked micro-kernel then multiplies a
 * tile by a strip, broadcasting one A value (v128.load32_splat) against two 4-lane B vectors per k
 * (the "broadcast" micro-kernel shape of XNNPACK's wasmsimd GEMMs). Packing absorbs transposes and
 * arbitrary strides, so NN, NT, TN and TT all run the same micro-kernel.
 *
 * 8 accumulators + 2 B vectors + 1 broadcast fit the 16 xmm registers V8 allocates; larger tiles
 * (6x8, 5x8) measured slower here because they spill. Where the engine has relaxed SIMD (Node >= 22)
 * the micro-kernel uses f32x4.relaxed_madd (about +20% measured under Node 20's flag).
 *
 * Measured on a 2-core AMD EPYC (Zen 4) under Node 20: about 42 GFLOP/s for every transpose variant
 * at gpt-bench shapes (50 with FMA), against 20-37 for XNNPACK's NN-only path and ~2 for the stock
 * kernel's transposed and batched paths.
 */

import { env } from '../../runtime.js';
import { nativeBlas, nativeGemm } from './native_blas.js';
import {
  assembleModule,
  br_if,
  type Code,
  call,
  FuncBuilder,
  f32,
  f32x4,
  get,
  i8x16,
  i32,
  if_,
  inc,
  type Local,
  loop,
  relaxed,
  select,
  seq,
  set,
  tee,
  v128,
  whileLoop,
} from './wasm_asm.js';

export const MR = 4;
export const NR = 8;

/** Cache blocking: packed A (MC x KC) stays in L2, a packed B strip (KC x NR) in L1. */
export interface Blocking {
  kc: number;
  mc: number;
  nc: number;
}
export const DEFAULT_BLOCKING: Blocking = { kc: 256, mc: 128, nc: 1024 };

/** packA(A, ai, ak, M, K, dst): dst[t][k][r] = A[(4t + r) * ai + k * ak] (bytes), 0 past row M. */
function packA(): FuncBuilder {
  const f = new FuncBuilder('packA', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [A, ai, ak, M, K, dst] = f.params as [Local, Local, Local, Local, Local, Local];
  const i0 = f.local('i32');
  const k = f.local('i32');
  const p = f.local('i32');
  const rows = f.local('i32');
  const r = f.local('i32');
  const ai2 = f.local('i32');
  const ai3 = f.local('i32');
  const [r0, r1, r2, r3, t0, t1, t2, t3] = Array.from({ length: 8 }, () => f.local('v128'));
  /** 32-bit lanes (x of a, y of b) as the 16 byte indices of i8x16.shuffle (lanes 4-7 are b's). */
  const lanes = (...ix: number[]) => ix.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
  const scalarRows: Code[] = [
    f32.store(get(dst), f32.load(get(p))),
    f32.store(get(dst), f32.load(i32.add(get(p), get(ai))), 4),
    f32.store(get(dst), f32.load(i32.add(get(p), get(ai2))), 8),
    f32.store(get(dst), f32.load(i32.add(get(p), get(ai3))), 12),
    inc(dst, i32.const(16)),
    inc(p, get(ak)),
    inc(k, i32.const(1)),
  ];
  f.body = seq(
    set(ai2, i32.shl(get(ai), i32.const(1))),
    set(ai3, i32.add(get(ai2), get(ai))),
    whileLoop(
      i32.lt_u(get(i0), get(M)),
      set(p, i32.add(get(A), i32.mul(get(i0), get(ai)))),
      set(rows, i32.sub(get(M), get(i0))),
      set(k, i32.const(0)),
      if_(
        i32.ge_u(get(rows), i32.const(MR)),
        [
          if_(
            i32.eq(get(ai), i32.const(4)),
            // the tile's four rows are adjacent floats (A transposed, as in a weight gradient x^T dy):
            // one vector copy per k
            [
              whileLoop(
                i32.lt_u(get(k), get(K)),
                v128.store(get(dst), v128.load(get(p))),
                inc(dst, i32.const(16)),
                inc(p, get(ak)),
                inc(k, i32.const(1)),
              ),
            ],
            [
              // rows of A in memory (k adjacent: ak = 4, as in x W): four k at a time as a 4 x 4
              // transpose of the four rows' vectors in registers, then the k % 4 tail one by one
              if_(i32.eq(get(ak), i32.const(4)), [
                whileLoop(
                  i32.le_u(i32.add(get(k), i32.const(4)), get(K)),
                  set(r0, v128.load(get(p))),
                  set(r1, v128.load(i32.add(get(p), get(ai)))),
                  set(r2, v128.load(i32.add(get(p), get(ai2)))),
                  set(r3, v128.load(i32.add(get(p), get(ai3)))),
                  set(t0, i8x16.shuffle(get(r0), get(r1), lanes(0, 4, 1, 5))), // r0[0] r1[0] r0[1] r1[1]
                  set(t1, i8x16.shuffle(get(r2), get(r3), lanes(0, 4, 1, 5))), // r2[0] r3[0] r2[1] r3[1]
                  set(t2, i8x16.shuffle(get(r0), get(r1), lanes(2, 6, 3, 7))), // r0[2] r1[2] r0[3] r1[3]
                  set(t3, i8x16.shuffle(get(r2), get(r3), lanes(2, 6, 3, 7))), // r2[2] r3[2] r2[3] r3[3]
                  v128.store(get(dst), i8x16.shuffle(get(t0), get(t1), lanes(0, 1, 4, 5))), // k: r0..r3
                  v128.store(get(dst), i8x16.shuffle(get(t0), get(t1), lanes(2, 3, 6, 7)), 16), // k + 1
                  v128.store(get(dst), i8x16.shuffle(get(t2), get(t3), lanes(0, 1, 4, 5)), 32), // k + 2
                  v128.store(get(dst), i8x16.shuffle(get(t2), get(t3), lanes(2, 3, 6, 7)), 48), // k + 3
                  inc(dst, i32.const(64)),
                  inc(p, i32.const(16)),
                  inc(k, i32.const(4)),
                ),
              ]),
              whileLoop(i32.lt_u(get(k), get(K)), ...scalarRows),
            ],
          ),
        ],
        [
          whileLoop(
            i32.lt_u(get(k), get(K)),
            set(r, i32.const(0)),
            whileLoop(
              i32.lt_u(get(r), i32.const(MR)),
              if_(
                i32.lt_u(get(r), get(rows)),
                [f32.store(get(dst), f32.load(i32.add(get(p), i32.mul(get(r), get(ai)))))],
                [f32.store(get(dst), f32.const(0))],
              ),
              inc(dst, i32.const(4)),
              inc(r, i32.const(1)),
            ),
            inc(p, get(ak)),
            inc(k, i32.const(1)),
          ),
        ],
      ),
      inc(i0, i32.const(MR)),
    ),
  );
  return f;
}

/** packB(B, bk, bn, K, N, dst): dst[s][k][c] = B[k * bk + (8s + c) * bn] (bytes), 0 past column N. */
function packB(): FuncBuilder {
  const f = new FuncBuilder('packB', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [B, bk, bn, K, N, dst] = f.params as [Local, Local, Local, Local, Local, Local];
  const n0 = f.local('i32');
  const k = f.local('i32');
  const p = f.local('i32');
  const q = f.local('i32');
  const cols = f.local('i32');
  const c = f.local('i32');
  const fullScalar: Code[] = [];
  for (let cc = 0; cc < NR; cc++) fullScalar.push(f32.store(get(dst), f32.load(get(q)), 4 * cc), inc(q, get(bn)));
  f.body = whileLoop(
    i32.lt_u(get(n0), get(N)),
    set(p, i32.add(get(B), i32.mul(get(n0), get(bn)))),
    set(cols, i32.sub(get(N), get(n0))),
    set(k, i32.const(0)),
    if_(
      i32.ge_u(get(cols), i32.const(NR)),
      [
        if_(
          i32.eq(get(bn), i32.const(4)),
          [
            whileLoop(
              i32.lt_u(get(k), get(K)),
              v128.store(get(dst), v128.load(get(p))),
              v128.store(get(dst), v128.load(get(p), 16), 16),
              inc(dst, i32.const(32)),
              inc(p, get(bk)),
              inc(k, i32.const(1)),
            ),
          ],
          [
            whileLoop(
              i32.lt_u(get(k), get(K)),
              set(q, get(p)),
              ...fullScalar,
              inc(dst, i32.const(32)),
              inc(p, get(bk)),
              inc(k, i32.const(1)),
            ),
          ],
        ),
      ],
      [
        whileLoop(
          i32.lt_u(get(k), get(K)),
          set(c, i32.const(0)),
          whileLoop(
            i32.lt_u(get(c), i32.const(NR)),
            if_(
              i32.lt_u(get(c), get(cols)),
              [f32.store(get(dst), f32.load(i32.add(get(p), i32.mul(get(c), get(bn)))))],
              [f32.store(get(dst), f32.const(0))],
            ),
            inc(dst, i32.const(4)),
            inc(c, i32.const(1)),
          ),
          inc(p, get(bk)),
          inc(k, i32.const(1)),
        ),
      ],
    ),
    inc(n0, i32.const(NR)),
  );
  return f;
}

/**
 * kernel(M, N, K, Ap, Bp, C, ldc, acc, tmp): C[i, j] (+)= sum_k A[i, k] B[k, j] over packed A and
 * B; C rows are ldc bytes apart; acc != 0 adds to C. K >= 1. tmp: 128 bytes of scratch.
 */
function kernel(fma: boolean): FuncBuilder {
  const f = new FuncBuilder('kernel', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [M, N, K, Ap, Bp, C, ldc, acc, tmp] = f.params as Local[] as [Local, Local, Local, Local, Local, Local, Local, Local, Local];
  const n0 = f.local('i32');
  const i0 = f.local('i32');
  const k = f.local('i32');
  const pa = f.local('i32');
  const pb = f.local('i32');
  const strip = f.local('i32');
  const pc = f.local('i32');
  const rows = f.local('i32');
  const cols = f.local('i32');
  const r = f.local('i32');
  const c = f.local('i32');
  const b0 = f.local('v128');
  const b1 = f.local('v128');
  const a = f.local('v128');
  const cv: Local[][] = [];
  for (let rr = 0; rr < MR; rr++) cv.push([f.local('v128'), f.local('v128')]);

  const step: Code[] = [set(b0, v128.load(get(pb))), set(b1, v128.load(get(pb), 16))];
  for (let rr = 0; rr < MR; rr++) {
    const [c0, c1] = cv[rr] as [Local, Local];
    step.push(
      set(a, v128.load32_splat(get(pa), 4 * rr)),
      set(c0, fma ? relaxed.f32x4_madd(get(a), get(b0), get(c0)) : f32x4.add(get(c0), f32x4.mul(get(a), get(b0)))),
      set(c1, fma ? relaxed.f32x4_madd(get(a), get(b1), get(c1)) : f32x4.add(get(c1), f32x4.mul(get(a), get(b1)))),
    );
  }
  const full: Code[] = [set(pc, i32.add(i32.add(get(C), i32.mul(get(i0), get(ldc))), i32.shl(get(n0), i32.const(2))))];
  for (let rr = 0; rr < MR; rr++) {
    const [c0, c1] = cv[rr] as [Local, Local];
    full.push(
      if_(get(acc), [set(c0, f32x4.add(get(c0), v128.load(get(pc)))), set(c1, f32x4.add(get(c1), v128.load(get(pc), 16)))]),
      v128.store(get(pc), get(c0)),
      v128.store(get(pc), get(c1), 16),
      inc(pc, get(ldc)),
    );
  }
  const partial: Code[] = [];
  for (let rr = 0; rr < MR; rr++) {
    const [c0, c1] = cv[rr] as [Local, Local];
    partial.push(v128.store(get(tmp), get(c0), 32 * rr), v128.store(get(tmp), get(c1), 32 * rr + 16));
  }
  const cAddr = () =>
    i32.add(i32.add(get(C), i32.mul(i32.add(get(i0), get(r)), get(ldc))), i32.shl(i32.add(get(n0), get(c)), i32.const(2)));
  partial.push(
    set(rows, select(i32.const(MR), i32.sub(get(M), get(i0)), i32.ge_u(i32.sub(get(M), get(i0)), i32.const(MR)))),
    set(cols, select(i32.const(NR), i32.sub(get(N), get(n0)), i32.ge_u(i32.sub(get(N), get(n0)), i32.const(NR)))),
    set(r, i32.const(0)),
    whileLoop(
      i32.lt_u(get(r), get(rows)),
      set(c, i32.const(0)),
      whileLoop(
        i32.lt_u(get(c), get(cols)),
        f32.store(
          cAddr(),
          f32.add(
            select(f32.load(cAddr()), f32.const(0), get(acc)), // cAddr is inside C for r < rows, c < cols
            f32.load(i32.add(get(tmp), i32.shl(i32.add(i32.shl(get(r), i32.const(3)), get(c)), i32.const(2)))),
          ),
        ),
        inc(c, i32.const(1)),
      ),
      inc(r, i32.const(1)),
    ),
  );

  f.body = seq(
    set(strip, get(Bp)),
    whileLoop(
      i32.lt_u(get(n0), get(N)),
      set(i0, i32.const(0)),
      set(pa, get(Ap)),
      whileLoop(
        i32.lt_u(get(i0), get(M)),
        ...cv.flat().map((l) => set(l, v128.zero())),
        set(pb, get(strip)),
        set(k, get(K)),
        loop(...step, inc(pa, i32.const(4 * MR)), inc(pb, i32.const(4 * NR)), br_if(0, tee(k, i32.sub(get(k), i32.const(1))))),
        if_(i32.and(i32.ge_u(i32.sub(get(M), get(i0)), i32.const(MR)), i32.ge_u(i32.sub(get(N), get(n0)), i32.const(NR))), full, partial),
        inc(i0, i32.const(MR)),
      ),
      inc(strip, i32.shl(get(K), i32.const(5))),
      inc(n0, i32.const(NR)),
    ),
  );
  return f;
}

const PACK_A = 0;
const PACK_B = 1;
const KERNEL = 2;

/**
 * gemm(M, N, K, A, ai, ak, B, bk, bn, C, ldc, acc, Ap, Bp, tmp, KC, MC, NC): the blocked driver
 * (K in blocks of KC, then N in blocks of NC packed into Bp, then M in blocks of MC packed into Ap),
 * all strides in bytes; K >= 1. Calls packA, packB and kernel by their module indices.
 */
function driver(): FuncBuilder {
  const f = new FuncBuilder('gemm', new Array<'i32'>(18).fill('i32'));
  const [M, N, K, A, ai, ak, B, bk, bn, C, ldc, acc, Ap, Bp, tmp, KC, MC, NC] = f.params as Local[] as [
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
    Local,
    Local,
    Local,
  ];
  const k0 = f.local('i32');
  const n0 = f.local('i32');
  const m0 = f.local('i32');
  const kc = f.local('i32');
  const nc = f.local('i32');
  const mc = f.local('i32');
  const accK = f.local('i32');
  const minU = (a: Code, b: Code): Code => select(a, b, i32.lt_u(a, b));
  f.body = whileLoop(
    i32.lt_u(get(k0), get(K)),
    set(kc, minU(get(KC), i32.sub(get(K), get(k0)))),
    set(accK, i32.or(get(acc), i32.ne(get(k0), i32.const(0)))),
    set(n0, i32.const(0)),
    whileLoop(
      i32.lt_u(get(n0), get(N)),
      set(nc, minU(get(NC), i32.sub(get(N), get(n0)))),
      call(
        PACK_B,
        i32.add(get(B), i32.add(i32.mul(get(k0), get(bk)), i32.mul(get(n0), get(bn)))),
        get(bk),
        get(bn),
        get(kc),
        get(nc),
        get(Bp),
      ),
      set(m0, i32.const(0)),
      whileLoop(
        i32.lt_u(get(m0), get(M)),
        set(mc, minU(get(MC), i32.sub(get(M), get(m0)))),
        call(
          PACK_A,
          i32.add(get(A), i32.add(i32.mul(get(m0), get(ai)), i32.mul(get(k0), get(ak)))),
          get(ai),
          get(ak),
          get(mc),
          get(kc),
          get(Ap),
        ),
        call(
          KERNEL,
          get(mc),
          get(nc),
          get(kc),
          get(Ap),
          get(Bp),
          i32.add(get(C), i32.add(i32.mul(get(m0), get(ldc)), i32.shl(get(n0), i32.const(2)))),
          get(ldc),
          get(accK),
          get(tmp),
        ),
        inc(m0, get(MC)),
      ),
      inc(n0, get(NC)),
    ),
    inc(k0, get(KC)),
  );
  return f;
}

/** addBias(C, M, N, bias): C[i, j] += bias[j] for a row-major [M, N] C (bytes addresses). */
function addBias(): FuncBuilder {
  const f = new FuncBuilder('addBias', ['i32', 'i32', 'i32', 'i32']);
  const [C, M, N, bias] = f.params as [Local, Local, Local, Local];
  const i = f.local('i32');
  const j = f.local('i32');
  const p = f.local('i32');
  const q = f.local('i32');
  f.body = whileLoop(
    i32.lt_u(get(i), get(M)),
    set(j, i32.const(0)),
    set(q, get(bias)),
    whileLoop(
      i32.le_u(i32.add(get(j), i32.const(4)), get(N)),
      v128.store(get(C), f32x4.add(v128.load(get(C)), v128.load(get(q)))),
      inc(C, i32.const(16)),
      inc(q, i32.const(16)),
      inc(j, i32.const(4)),
    ),
    whileLoop(
      i32.lt_u(get(j), get(N)),
      set(p, get(C)),
      f32.store(get(p), f32.add(f32.load(get(p)), f32.load(get(q)))),
      inc(C, i32.const(4)),
      inc(q, i32.const(4)),
      inc(j, i32.const(1)),
    ),
    inc(i, i32.const(1)),
  );
  return f;
}

/** The slice of the WebAssembly JS API used here (the project's lib settings carry no wasm types). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}
export const WasmJs = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const modules = new Map<string, object>();

/** Whether the engine runs relaxed SIMD (f32x4.relaxed_madd): Node >= 22, or with --experimental-wasm-relaxed-simd. */
export function hasRelaxedSimd(): boolean {
  const f = new FuncBuilder('probe', ['i32']);
  const [p] = f.params as [Local];
  f.body = v128.store(get(p), relaxed.f32x4_madd(v128.load(get(p)), v128.load(get(p)), v128.load(get(p))));
  return WasmJs.validate(assembleModule([f]));
}

/** The kernel module, with fused multiply-add (relaxed SIMD) or separate mul and add; compiled once each. */
export function simdGemmModule(fma: boolean, sharedMemory = false): object {
  const key = `${fma}/${sharedMemory}`;
  let m = modules.get(key);
  if (!m) {
    m = new WasmJs.Module(assembleModule([packA(), packB(), kernel(fma), addBias(), driver()], { sharedMemory }));
    modules.set(key, m);
  }
  return m;
}

export interface SimdGemmOptions {
  blocking?: Blocking;
  /** Use f32x4.relaxed_madd (default: when the engine supports it, unless MMLM_WASM_FMA=0). */
  fma?: boolean;
}

interface Exports {
  packA(A: number, ai: number, ak: number, M: number, K: number, dst: number): void;
  packB(B: number, bk: number, bn: number, K: number, N: number, dst: number): void;
  kernel(M: number, N: number, K: number, Ap: number, Bp: number, C: number, ldc: number, acc: number, tmp: number): void;
  addBias(C: number, M: number, N: number, bias: number): void;
  gemm(...args: number[]): void;
}

/** A strided matrix on the heap: element (r, c) at ptr + 4 (r * rs + c * cs); strides in elements. */
export interface StridedMatrix {
  ptr: number;
  rs: number;
  cs: number;
}

/** The GEMM bound to one heap (a WebAssembly.Memory) and a scratch area allocated on it. */
export class SimdGemm {
  private readonly x: Exports;
  private readonly Ap: number;
  private readonly Bp: number;
  private readonly tmp: number;
  private readonly heap: () => Float32Array;
  readonly blocking: Blocking;
  readonly fma: boolean;

  /** malloc: allocates bytes on the same heap (the scratch is kept for the life of the heap). */
  constructor(
    private readonly memory: WasmMemory,
    malloc: (bytes: number) => number,
    options: SimdGemmOptions = {},
  ) {
    this.blocking = options.blocking ?? DEFAULT_BLOCKING;
    this.fma = options.fma ?? (env('MMLM_WASM_FMA') !== '0' && hasRelaxedSimd());
    this.x = new WasmJs.Instance(simdGemmModule(this.fma), { env: { memory } }).exports as unknown as Exports;
    const { kc, mc, nc } = this.blocking;
    const mcPad = Math.ceil(mc / MR) * MR;
    const ncPad = Math.ceil(nc / NR) * NR;
    const base = malloc(4 * (mcPad * kc + kc * ncPad + MR * NR) + 64);
    const aligned = (base + 15) & ~15;
    this.Ap = aligned;
    this.Bp = aligned + 4 * mcPad * kc;
    this.tmp = this.Bp + 4 * kc * ncPad;
    this.heap = () => new Float32Array(memory.buffer);
  }

  /**
   * C[M, N] (row stride ldc elements) = A[M, K] B[K, N], or += with accumulate. Runs on the native
   * GEMM (native_blas.ts) when it is built and enabled, else on the SIMD kernels.
   */
  gemm(M: number, N: number, K: number, A: StridedMatrix, B: StridedMatrix, C: number, ldc: number, accumulate = false): void {
    if (M === 0 || N === 0) return;
    if (K === 0) {
      if (!accumulate) {
        const h = this.heap();
        for (let i = 0; i < M; i++) h.fill(0, C / 4 + i * ldc, C / 4 + i * ldc + N);
      }
      return;
    }
    const nb = nativeBlas();
    if (nb && nativeGemm(nb, this.memory.buffer, M, N, K, A, B, C, ldc, accumulate)) return;
    const { kc, mc, nc } = this.blocking;
    this.x.gemm(
      M,
      N,
      K,
      A.ptr,
      4 * A.rs,
      4 * A.cs,
      B.ptr,
      4 * B.rs,
      4 * B.cs,
      C,
      4 * ldc,
      accumulate ? 1 : 0,
      this.Ap,
      this.Bp,
      this.tmp,
      kc,
      mc,
      nc,
    );
  }

  /** Bytes of the scratch `gemmShiftedA` packs its source into: M rounded up to 4, times srcK floats. */
  static shiftedSourceBytes(M: number, srcK: number): number {
    return 4 * Math.ceil(M / MR) * MR * srcK;
  }

  /**
   * Several GEMMs sharing B whose A operands are windows of one source at different row offsets:
   *   C_t [M, N] (row stride ldc, at C + 4 t cStride) = A_t [M, K] B [K, N],  A_t(m, k) = src[(k + shifts[t]) M + m],
   * for t < shifts.length (src: srcK >= K + max(shifts) rows of M floats, i.e. A_t is stored
   * transposed, as x^T in the per-tap GEMMs of a convolution's weight gradient). Bit for bit the
   * result of one `gemm(M, N, K, { ptr: src + 4 shifts[t] M, rs: 1, cs: M }, B, C_t, ldc)` per t: the
   * same KC and NC blocks in the same order, the same micro-kernel on the same packed values. It packs
   * the source once (into `scratch`, SimdGemm.shiftedSourceBytes(M, srcK) bytes, 16-byte aligned)
   * and each block of B once, where the per-t GEMMs pack every t's A and B blocks again. On the
   * native GEMM (when built and enabled) it runs those per-t GEMMs.
   */
  gemmShiftedA(
    M: number,
    N: number,
    K: number,
    src: number,
    srcK: number,
    shifts: readonly number[],
    B: StridedMatrix,
    C: number,
    cStride: number,
    ldc: number,
    scratch: number,
  ): void {
    const maxShift = shifts.reduce((a, s) => Math.max(a, s), 0);
    if (shifts.some((s) => !Number.isInteger(s) || s < 0) || K + maxShift > srcK)
      throw new Error(`gemmShiftedA: shifts [${shifts}] must be integers >= 0 with K + max shift <= srcK (K ${K}, srcK ${srcK})`);
    if (scratch % 16 !== 0) throw new Error(`gemmShiftedA: scratch ${scratch} is not 16-byte aligned`);
    if (M === 0 || N === 0 || K === 0 || nativeBlas()) {
      for (let t = 0; t < shifts.length; t++)
        this.gemm(M, N, K, { ptr: src + 4 * (shifts[t] as number) * M, rs: 1, cs: M }, B, C + 4 * t * cStride, ldc);
      return;
    }
    const { kc, nc } = this.blocking;
    // packed[tile][k][4] = src rows k < srcK of the tile's four columns (the driver's packA layout,
    // so the panel of A_t for k0 .. k0 + kc of tile i starts at packed + 16 (i srcK + k0 + shift_t))
    this.x.packA(src, 4, 4 * M, M, srcK, scratch);
    for (let k0 = 0; k0 < K; k0 += kc) {
      const kb = Math.min(kc, K - k0);
      const acc = k0 === 0 ? 0 : 1;
      for (let n0 = 0; n0 < N; n0 += nc) {
        const nb = Math.min(nc, N - n0);
        this.x.packB(B.ptr + 4 * (k0 * B.rs + n0 * B.cs), 4 * B.rs, 4 * B.cs, kb, nb, this.Bp);
        for (let t = 0; t < shifts.length; t++) {
          const s = k0 + (shifts[t] as number);
          const c = C + 4 * (t * cStride + n0);
          for (let i0 = 0; i0 < M; i0 += MR)
            this.x.kernel(
              Math.min(MR, M - i0),
              nb,
              kb,
              scratch + 16 * ((i0 / MR) * srcK + s),
              this.Bp,
              c + 4 * i0 * ldc,
              4 * ldc,
              acc,
              this.tmp,
            );
        }
      }
    }
  }

  /** C[i, j] += bias[j] over a row-major [M, N] block at C. */
  addBias(C: number, M: number, N: number, bias: number): void {
    this.x.addBias(C, M, N, bias);
  }
}
