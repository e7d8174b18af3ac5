/**
 * Multi-threaded SIMD GEMM for the wasm backend: worker_threads running the same kernel module as
 * the main thread on a shared WebAssembly.Memory. tfjs-backend-wasm's heap is not shared in Node
 * (its threaded build is browser-only), so each worker's operands are copied into the shared
 * memory and its results copied back; the main thread computes its own share in place. A batch of
 * GEMMs is split by batch entries, a single GEMM by row blocks (multiples of the 4-row tile).
 *
 * Thread count: MMLM_WASM_THREADS=n or setWasmGemmThreads(n) (n threads in all, n - 1 workers);
 * the default is in wasm_matmul.ts. Measured on gpt-bench (2-core Zen 4, quiet): 1232 ms a step on
 * one thread, 810 ms on two.
 *
 * Node only: the workers come from `#platform` (node:worker_threads); in a browser there are none
 * (`workersAvailable()` is false) and every GEMM runs on the calling thread.
 */
import { runtime, startEvalWorker } from '#platform';
import { type Blocking, DEFAULT_BLOCKING, MR, NR, type StridedMatrix, simdGemmModule, WasmJs, type WasmMemory } from './simd_gemm.js';

/** One C = op(A) op(B) with byte pointers into a heap and element strides. */
export interface GemmItem {
  M: number;
  N: number;
  K: number;
  A: StridedMatrix;
  B: StridedMatrix;
  /** Byte offset of C (row-major, row stride ldc elements). */
  C: number;
  ldc: number;
}

const PAGE = 65536;
const MAX_PAGES = 16384; // 1 GiB of shared operands at most; larger jobs run on the main thread
const CTRL_BYTES = 64; // per worker: [state, count, listPtr]
const IDLE = 0;
const GO = 1;
const DONE = 2;
const FAILED = 3;
const STOP = 4;
const WAIT_MS = 120_000;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctrl: ctrlOff, Ap, Bp, tmp, kc, mc, nc } = workerData;
const x = new WebAssembly.Instance(module, { env: { memory } }).exports;
const ctrl = new Int32Array(memory.buffer, ctrlOff, 4);
let seen = ${IDLE};
for (;;) {
  Atomics.wait(ctrl, 0, seen);
  const s = Atomics.load(ctrl, 0);
  if (s === ${STOP}) break;
  if (s !== ${GO}) {
    seen = s;
    continue;
  }
  let done = ${DONE};
  try {
    const I = new Int32Array(memory.buffer);
    const n = ctrl[1];
    const list = ctrl[2] >> 2;
    for (let i = 0; i < n; i++) {
      const o = list + 12 * i;
      x.gemm(I[o], I[o + 1], I[o + 2], I[o + 3], I[o + 4], I[o + 5], I[o + 6], I[o + 7], I[o + 8], I[o + 9], I[o + 10], I[o + 11], Ap, Bp, tmp, kc, mc, nc);
    }
  } catch (e) {
    done = ${FAILED};
  }
  Atomics.store(ctrl, 0, done);
  Atomics.notify(ctrl, 0);
  seen = done;
}
`;

/** Whether this platform can start the pool's worker threads (Node: yes; a browser bundle: no). */
export function workersAvailable(): boolean {
  return runtime === 'node';
}

interface WorkerSlot {
  worker: { unref(): void };
  ctrl: Int32Array;
}

/** Copies operands into the shared memory, bump-allocated per call. */
class SharedArena {
  top: number;

  constructor(
    private readonly memory: WasmMemory & { grow(pages: number): number },
    private readonly base: number,
  ) {
    this.top = base;
  }

  reset(): void {
    this.top = this.base;
  }

  /** Reserve bytes (16-aligned); false when the shared memory cannot grow that far. */
  reserve(bytes: number): number | null {
    const p = (this.top + 15) & ~15;
    const end = p + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) return null;
      this.memory.grow(pages);
    }
    this.top = end;
    return p;
  }
}

export class GemmPool {
  private readonly memory: WasmMemory & { grow(pages: number): number };
  private readonly slots: WorkerSlot[] = [];
  private readonly arena: SharedArena;

  constructor(
    readonly threads: number,
    fma: boolean,
    blocking: Blocking = DEFAULT_BLOCKING,
  ) {
    if (!Number.isInteger(threads) || threads < 2) throw new Error(`GemmPool: threads must be an integer >= 2, got ${threads}`);
    const workers = threads - 1;
    const { kc, mc, nc } = blocking;
    const scratch = 4 * (Math.ceil(mc / MR) * MR * kc + kc * Math.ceil(nc / NR) * NR + MR * NR) + 64;
    const fixed = CTRL_BYTES * workers + scratch * workers;
    this.memory = new WasmJs.Memory({ initial: Math.ceil((fixed + (16 << 20)) / PAGE), maximum: MAX_PAGES, shared: true }) as WasmMemory & {
      grow(pages: number): number;
    };
    const module = simdGemmModule(fma, true);
    for (let w = 0; w < workers; w++) {
      const ctrlOff = CTRL_BYTES * w;
      const base = CTRL_BYTES * workers + scratch * w;
      const Ap = (base + 15) & ~15;
      const Bp = Ap + 4 * Math.ceil(mc / MR) * MR * kc;
      const tmp = Bp + 4 * kc * Math.ceil(nc / NR) * NR;
      const worker = startEvalWorker(WORKER_SOURCE, { module, memory: this.memory, ctrl: ctrlOff, Ap, Bp, tmp, kc, mc, nc });
      if (!worker) throw new Error('GemmPool: worker threads are not available on this platform (a browser); use one thread');
      worker.unref();
      this.slots.push({ worker, ctrl: new Int32Array(this.memory.buffer, ctrlOff, 4) });
    }
    this.arena = new SharedArena(this.memory, fixed);
  }

  /**
   * Run `items` (on `heap`, which this pool does not share) split over the threads: `local` runs a
   * share in place on the calling thread; the rest run on workers over copies. Returns false (having
   * done nothing) when the operands do not fit the shared memory.
   */
  run(heap: ArrayBuffer, items: GemmItem[], local: (items: GemmItem[]) => void): boolean {
    const parts = split(items, this.threads);
    const h = new Uint8Array(heap);
    this.arena.reset();
    const jobs: { slot: WorkerSlot; out: { from: number; to: number; rows: number; rowBytes: number; ldcBytes: number }[] }[] = [];
    for (let w = 0; w < parts.length - 1; w++) {
      const part = parts[w + 1] as GemmItem[];
      if (part.length === 0) continue;
      const staged = this.stage(h, part);
      if (!staged) return false;
      jobs.push({ slot: this.slots[w] as WorkerSlot, out: staged.out });
      const c = (this.slots[w] as WorkerSlot).ctrl;
      c[1] = part.length;
      c[2] = staged.list;
      Atomics.store(c, 0, GO);
      Atomics.notify(c, 0);
    }
    let failure: unknown = null;
    try {
      local(parts[0] as GemmItem[]);
    } catch (e) {
      failure = e;
    }
    const s = new Uint8Array(this.memory.buffer);
    const out = new Uint8Array(heap);
    for (const j of jobs) {
      const t0 = Date.now();
      while (Atomics.load(j.slot.ctrl, 0) === GO) {
        Atomics.wait(j.slot.ctrl, 0, GO, 1000);
        if (Date.now() - t0 > WAIT_MS) throw new Error(`GemmPool: a worker did not finish within ${WAIT_MS / 1000} s`);
      }
      const state = Atomics.load(j.slot.ctrl, 0);
      Atomics.store(j.slot.ctrl, 0, IDLE);
      if (state === FAILED) failure ??= new Error('GemmPool: a worker trapped while running its GEMMs');
      for (const o of j.out)
        for (let r = 0; r < o.rows; r++) out.set(s.subarray(o.from + r * o.rowBytes, o.from + (r + 1) * o.rowBytes), o.to + r * o.ldcBytes);
    }
    if (failure) throw failure;
    return true;
  }

  /** Copy a part's operands into the arena and write its job list; null when it does not fit. */
  private stage(h: Uint8Array, part: GemmItem[]) {
    const copied = new Map<string, number>();
    const copy = (m: StridedMatrix, rows: number, cols: number): StridedMatrix | null => {
      // the smallest contiguous byte range holding the matrix
      const span = 4 * ((rows - 1) * m.rs + (cols - 1) * m.cs + 1);
      const key = `${m.ptr}/${span}`;
      let p = copied.get(key);
      if (p === undefined) {
        const r = this.arena.reserve(span);
        if (r === null) return null;
        new Uint8Array(this.memory.buffer).set(h.subarray(m.ptr, m.ptr + span), r);
        copied.set(key, r);
        p = r;
      }
      return { ptr: p, rs: m.rs, cs: m.cs };
    };
    const list = this.arena.reserve(48 * part.length);
    if (list === null) return null;
    const out: { from: number; to: number; rows: number; rowBytes: number; ldcBytes: number }[] = [];
    for (let i = 0; i < part.length; i++) {
      const it = part[i] as GemmItem;
      const A = copy(it.A, it.M, it.K);
      const B = copy(it.B, it.K, it.N);
      const C = this.arena.reserve(4 * it.M * it.N);
      if (!A || !B || C === null) return null;
      new Int32Array(this.memory.buffer, list + 48 * i, 12).set([
        it.M,
        it.N,
        it.K,
        A.ptr,
        4 * A.rs,
        4 * A.cs,
        B.ptr,
        4 * B.rs,
        4 * B.cs,
        C,
        4 * it.N,
        0,
      ]);
      out.push({ from: C, to: it.C, rows: it.M, rowBytes: 4 * it.N, ldcBytes: 4 * it.ldc });
    }
    return { list, out };
  }

  dispose(): void {
    for (const s of this.slots) {
      Atomics.store(s.ctrl, 0, STOP);
      Atomics.notify(s.ctrl, 0);
    }
    this.slots.length = 0;
  }
}

/** Split items into `n` parts of about equal work: whole items when there are enough, else row blocks. */
export function split(items: GemmItem[], n: number): GemmItem[][] {
  const parts: GemmItem[][] = Array.from({ length: n }, () => []);
  if (items.length >= n) {
    const per = Math.ceil(items.length / n);
    items.forEach((it, i) => (parts[Math.floor(i / per)] as GemmItem[]).push(it));
    return parts;
  }
  for (const it of items) {
    const rows = Math.ceil(it.M / n / MR) * MR;
    for (let p = 0; p < n; p++) {
      const m0 = p * rows;
      const m = Math.min(rows, it.M - m0);
      if (m <= 0) continue;
      (parts[p] as GemmItem[]).push({ ...it, M: m, A: { ...it.A, ptr: it.A.ptr + 4 * m0 * it.A.rs }, C: it.C + 4 * m0 * it.ldc });
    }
  }
  return parts;
}
