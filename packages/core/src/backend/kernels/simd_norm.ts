/**
 * GroupNorm's per-element passes over NHWC in WebAssembly SIMD, on the tfjs-wasm heap.
 *
 * The JavaScript kernels in wasm_ops.ts (groupNormForward / groupNormBackward) accumulate the
 * per-channel statistics in float64 and evaluate each output in float64 before one rounding to
 * float32. These functions do the same arithmetic, in the same order, on f64x2 lanes: every f32 is
 * promoted exactly (f64x2.promote_low_f32x4), each channel's running sum sees the rows in the same
 * order, and the output is rounded once (f32x4.demote_f64x2_zero). So the results are bit-identical
 * to the JavaScript kernels (the tests compare them exactly), and the training trajectories of the
 * conv tokenizers do not move. The few per-group scalars stay in JavaScript.
 *
 * Layout: x [rows, C] row-major float32 (one sample's H*W pixels), C a multiple of 4; the
 * per-channel vectors (acc, mean, ...) are float64 [C] on the heap, 16-byte aligned. Pointers are
 * byte offsets.
 */

import { WasmJs, type WasmMemory } from './simd_gemm.js';
import {
  assembleModule,
  type Code,
  FuncBuilder,
  f32x4,
  f64x2,
  get,
  i8x16,
  i32,
  inc,
  type Local,
  seq,
  set,
  v128,
  whileLoop,
} from './wasm_asm.js';

const LOW = [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7];
const HIGH = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
/** Channels c, c + 1 (lo) and c + 2, c + 3 (hi) of an f32x4, as f64x2. */
const lo = (v: Code): Code => f64x2.promote_low_f32x4(v);
const hi = (v: Code): Code => f64x2.promote_low_f32x4(i8x16.shuffle(v, v, HIGH));
/** Two f64x2 back to one f32x4, each lane rounded once. */
const join = (a: Code, b: Code): Code =>
  i8x16.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), [...LOW.slice(0, 8), 16, 17, 18, 19, 20, 21, 22, 23]);

/**
 * A function (name, rows, C, ...pointers) whose body runs once per 4 channels of each row: `rowPtrs`
 * (float32 rows) advance 16 bytes each time, `j` is the byte offset of channel c in a float64 [C]
 * vector (0, 32, 64, ...). `zeroed` float64 vectors are cleared first.
 */
function channelPass(
  name: string,
  rowNames: string[],
  vecNames: string[],
  zeroed: string[],
  body: (rp: Record<string, Local>, vp: Record<string, Local>, j: Local, v: (k: string) => Local) => Code,
): FuncBuilder {
  const f = new FuncBuilder(name, ['i32', 'i32', ...rowNames.map(() => 'i32' as const), ...vecNames.map(() => 'i32' as const)]);
  const [rows, C] = f.params as [Local, Local];
  const rp = Object.fromEntries(rowNames.map((n, i) => [n, f.params[2 + i]!]));
  const vp = Object.fromEntries(vecNames.map((n, i) => [n, f.params[2 + rowNames.length + i]!]));
  const r = f.local('i32');
  const j = f.local('i32');
  const cb = f.local('i32');
  const scratch = new Map<string, Local>();
  const v = (k: string) => {
    if (!scratch.has(k)) scratch.set(k, f.local('v128'));
    return scratch.get(k)!;
  };
  const inner = body(rp, vp, j, v);
  f.body = seq(
    set(cb, i32.shl(get(C), i32.const(3))),
    ...zeroed.map((n) =>
      seq(
        set(j, i32.const(0)),
        whileLoop(i32.lt_u(get(j), get(cb)), v128.store(i32.add(get(vp[n]!), get(j)), v128.zero()), inc(j, i32.const(16))),
      ),
    ),
    set(r, i32.const(0)),
    whileLoop(
      i32.lt_u(get(r), get(rows)),
      set(j, i32.const(0)),
      whileLoop(i32.lt_u(get(j), get(cb)), inner, ...rowNames.map((n) => inc(rp[n]!, i32.const(16))), inc(j, i32.const(32))),
      inc(r, i32.const(1)),
    ),
  );
  return f;
}

/** vec[c..c+1] (off 0) or vec[c+2..c+3] (off 16) as an f64x2. */
const at = (p: Local, j: Local, off: number): Code => v128.load(i32.add(get(p), get(j)), off);
/** vec[c..] += value. */
const addTo = (p: Local, j: Local, off: number, value: Code): Code =>
  v128.store(i32.add(get(p), get(j)), f64x2.add(at(p, j, off), value), off);

/** colSums(rows, C, x, acc): acc[c] = sum_r x[r, c] in float64, rows in order. */
const colSums = () =>
  channelPass('colSums', ['x'], ['acc'], ['acc'], (rp, vp, j, v) => {
    const xv = v('x');
    return seq(set(xv, v128.load(get(rp.x!))), addTo(vp.acc!, j, 0, lo(get(xv))), addTo(vp.acc!, j, 16, hi(get(xv))));
  });

/** colSqDev(rows, C, x, mean, acc): acc[c] = sum_r (x[r, c] - mean[c])^2 in float64. */
const colSqDev = () =>
  channelPass('colSqDev', ['x'], ['mean', 'acc'], ['acc'], (rp, vp, j, v) => {
    const xv = v('x');
    const d = v('d');
    const half = (h: Code, off: number) =>
      seq(set(d, f64x2.sub(h, at(vp.mean!, j, off))), addTo(vp.acc!, j, off, f64x2.mul(get(d), get(d))));
    return seq(set(xv, v128.load(get(rp.x!))), half(lo(get(xv)), 0), half(hi(get(xv)), 16));
  });

/** affine(rows, C, x, y, m, a, b): y[r, c] = f32((x[r, c] - m[c]) a[c] + b[c]), evaluated in float64. */
const affine = () =>
  channelPass('affine', ['x', 'y'], ['m', 'a', 'b'], [], (rp, vp, j, v) => {
    const xv = v('x');
    const half = (h: Code, off: number) => f64x2.add(f64x2.mul(f64x2.sub(h, at(vp.m!, j, off)), at(vp.a!, j, off)), at(vp.b!, j, off));
    return seq(set(xv, v128.load(get(rp.x!))), v128.store(get(rp.y!), join(half(lo(get(xv)), 0), half(hi(get(xv)), 16))));
  });

/** gradSums(rows, C, dy, x, mean, r, sdy, sdx): sdy[c] = sum dy, sdx[c] = sum dy ((x - mean[c]) r[c]), float64. */
const gradSums = () =>
  channelPass('gradSums', ['dy', 'x'], ['mean', 'r', 'sdy', 'sdx'], ['sdy', 'sdx'], (rp, vp, j, v) => {
    const dv = v('dy');
    const xv = v('x');
    const d = v('d');
    const half = (dyh: Code, xh: Code, off: number) =>
      seq(
        set(d, dyh),
        addTo(vp.sdy!, j, off, get(d)),
        addTo(vp.sdx!, j, off, f64x2.mul(get(d), f64x2.mul(f64x2.sub(xh, at(vp.mean!, j, off)), at(vp.r!, j, off)))),
      );
    return seq(
      set(dv, v128.load(get(rp.dy!))),
      set(xv, v128.load(get(rp.x!))),
      half(lo(get(dv)), lo(get(xv)), 0),
      half(hi(get(dv)), hi(get(xv)), 16),
    );
  });

/** gradDx(rows, C, dy, x, dx, A, m, K, L): dx = f32(dy A[c] + (x - m[c]) K[c] + L[c]), float64, left to right. */
const gradDx = () =>
  channelPass('gradDx', ['dy', 'x', 'dx'], ['A', 'm', 'K', 'L'], [], (rp, vp, j, v) => {
    const dv = v('dy');
    const xv = v('x');
    const half = (dyh: Code, xh: Code, off: number) =>
      f64x2.add(
        f64x2.add(f64x2.mul(dyh, at(vp.A!, j, off)), f64x2.mul(f64x2.sub(xh, at(vp.m!, j, off)), at(vp.K!, j, off))),
        at(vp.L!, j, off),
      );
    return seq(
      set(dv, v128.load(get(rp.dy!))),
      set(xv, v128.load(get(rp.x!))),
      v128.store(get(rp.dx!), join(half(lo(get(dv)), lo(get(xv)), 0), half(hi(get(dv)), hi(get(xv)), 16))),
    );
  });

let moduleCache: object | null = null;

export function simdNormModule(): object {
  moduleCache ??= new WasmJs.Module(assembleModule([colSums(), colSqDev(), affine(), gradSums(), gradDx()]));
  return moduleCache;
}

interface Exports {
  colSums(rows: number, C: number, x: number, acc: number): void;
  colSqDev(rows: number, C: number, x: number, mean: number, acc: number): void;
  affine(rows: number, C: number, x: number, y: number, m: number, a: number, b: number): void;
  gradSums(rows: number, C: number, dy: number, x: number, mean: number, r: number, sdy: number, sdx: number): void;
  gradDx(rows: number, C: number, dy: number, x: number, dx: number, A: number, m: number, K: number, L: number): void;
}

/** Pointers (bytes) of one sample's float32 data; `C` must be a multiple of 4. */
export interface GroupNormPtrs {
  x: number;
  w: number;
  b: number;
  y: number;
  mean: number;
  rstd: number;
}

/**
 * GroupNorm forward and backward over NHWC on one heap, bit-identical to the JavaScript kernels of
 * wasm_ops.ts. `malloc` gives 16-byte-aligned scratch for the float64 [C] vectors.
 */
export class GroupNormSimd {
  private readonly x: Exports;
  private scratchPtr = 0;
  private scratchBytes = 0;

  constructor(
    private readonly memory: WasmMemory,
    private readonly malloc: (bytes: number) => number,
  ) {
    this.x = new WasmJs.Instance(simdNormModule(), { env: { memory } }).exports as unknown as Exports;
  }

  /** Whether these kernels take C channels (f32x4 loads of 4 channels at a time). */
  static supports(C: number): boolean {
    return C % 4 === 0 && C > 0;
  }

  /** `slots` float64 [C] vectors on the heap: their byte offsets, and a Float64Array over them. */
  private slots(C: number, slots: number): { ptr: (i: number) => number; f64: Float64Array } {
    const bytes = slots * C * 8;
    if (bytes > this.scratchBytes) {
      // the previous block is small and left to the heap: tfjs-wasm exposes no free for raw mallocs here
      this.scratchPtr = (this.malloc(bytes + 15) + 15) & ~15;
      this.scratchBytes = bytes;
    }
    const base = this.scratchPtr;
    // taken after malloc, which may grow (and detach) the heap
    const buf = (this.memory as unknown as { buffer: ArrayBuffer }).buffer;
    return { ptr: (i) => base + i * C * 8, f64: new Float64Array(buf, base, slots * C) };
  }

  /**
   * x [B, HW, C] at byte offset `x`, y likewise, weight / bias [C], mean / rstd [B, G]: the same
   * computation as wasm_ops.ts's groupNormForward. `heap` is read after the scratch is allocated.
   */
  forward(heapOf: () => Float32Array, p: GroupNormPtrs, B: number, HW: number, C: number, G: number, eps: number): void {
    const Cg = C / G;
    const N = HW * Cg;
    // slots: 0 acc, 1 mean (float64), 2 m (float32 mean), 3 a, 4 b
    const { ptr, f64 } = this.slots(C, 5);
    const h = heapOf();
    const [ACC, MEAN, M, A, BIAS] = [0, 1, 2, 3, 4].map((i) => i * C);
    for (let c = 0; c < C; c++) f64[BIAS + c] = h[(p.b >>> 2) + c]!;
    for (let s = 0; s < B; s++) {
      const xs = p.x + 4 * s * HW * C;
      this.x.colSums(HW, C, xs, ptr(0));
      for (let g = 0; g < G; g++) {
        let m = 0;
        for (let c = g * Cg; c < (g + 1) * Cg; c++) m += f64[ACC + c]!;
        m /= N;
        for (let c = g * Cg; c < (g + 1) * Cg; c++) f64[MEAN + c] = m;
        h[(p.mean >>> 2) + s * G + g] = m;
      }
      this.x.colSqDev(HW, C, xs, ptr(1), ptr(0));
      for (let g = 0; g < G; g++) {
        let v = 0;
        for (let c = g * Cg; c < (g + 1) * Cg; c++) v += f64[ACC + c]!;
        const r = 1 / Math.sqrt(v / N + eps);
        h[(p.rstd >>> 2) + s * G + g] = r;
        for (let c = g * Cg; c < (g + 1) * Cg; c++) {
          f64[A + c] = Math.fround(r * h[(p.w >>> 2) + c]!);
          f64[M + c] = Math.fround(f64[MEAN + c]!);
        }
      }
      this.x.affine(HW, C, xs, p.y + 4 * s * HW * C, ptr(2), ptr(3), ptr(4));
    }
  }

  /** The same computation as wasm_ops.ts's groupNormBackward (offsets in bytes). */
  backward(
    heapOf: () => Float32Array,
    p: { dy: number; x: number; w: number; mean: number; rstd: number; dx: number; dw: number; db: number },
    B: number,
    HW: number,
    C: number,
    G: number,
  ): void {
    const Cg = C / G;
    const N = HW * Cg;
    // slots: 0 mean, 1 rstd, 2 sum dy, 3 sum dy xhat, 4 A, 5 m, 6 K, 7 L
    const { ptr, f64 } = this.slots(C, 8);
    const h = heapOf();
    const [MEAN, R, SDY, SDX, A, M, K, L] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * C);
    const dw = new Float64Array(C);
    const db = new Float64Array(C);
    const w = (c: number) => h[(p.w >>> 2) + c]!;
    for (let s = 0; s < B; s++) {
      for (let g = 0; g < G; g++)
        for (let c = g * Cg; c < (g + 1) * Cg; c++) {
          f64[MEAN + c] = h[(p.mean >>> 2) + s * G + g]!;
          f64[R + c] = h[(p.rstd >>> 2) + s * G + g]!;
        }
      const off = 4 * s * HW * C;
      this.x.gradSums(HW, C, p.dy + off, p.x + off, ptr(0), ptr(1), ptr(2), ptr(3));
      for (let g = 0; g < G; g++) {
        let s1 = 0;
        let s2 = 0;
        for (let c = g * Cg; c < (g + 1) * Cg; c++) {
          s1 += w(c) * f64[SDY + c]!;
          s2 += w(c) * f64[SDX + c]!;
        }
        const r = f64[R + g * Cg]!;
        for (let c = g * Cg; c < (g + 1) * Cg; c++) {
          f64[A + c] = Math.fround(r * w(c));
          f64[K + c] = Math.fround((-r * r * s2) / N);
          f64[L + c] = Math.fround((-r * s1) / N);
          f64[M + c] = Math.fround(f64[MEAN + c]!);
        }
      }
      for (let c = 0; c < C; c++) {
        dw[c]! += f64[SDX + c]!;
        db[c]! += f64[SDY + c]!;
      }
      this.x.gradDx(HW, C, p.dy + off, p.x + off, p.dx + off, ptr(4), ptr(5), ptr(6), ptr(7));
    }
    for (let c = 0; c < C; c++) {
      h[(p.dw >>> 2) + c] = dw[c]!;
      h[(p.db >>> 2) + c] = db[c]!;
    }
  }
}
