/**
 * BatchMatMul and _FusedMatMul for the tfjs wasm backend on the SIMD GEMM of simd_gemm.ts.
 *
 * The stock kernels (tfjs-backend-wasm 4.22, batch_mat_mul_impl.cc) use XNNPACK only for an
 * unbatched matmul without transposes and otherwise a scalar triple loop (~2 GFLOP/s), which is the
 * path every Linear (x W^T), every weight gradient (dY^T X) and all of attention take. These
 * replacements run every variant through one packed micro-kernel, read and write the wasm heap in
 * place, and follow tfjs-core's semantics: matMul(a, b, transposeA, transposeB) over broadcast
 * batch dimensions (numpy rules), float32 only, as the stock kernels.
 */
import { cpuCount } from '#platform';
import { env } from '../../runtime.js';
import { tf } from '../../tf.js';
import { type GemmItem, GemmPool, workersAvailable } from './gemm_pool.js';
import { nativeBlas } from './native_blas.js';
import { SimdGemm, type StridedMatrix, simdGemmModule, WasmJs, type WasmMemory } from './simd_gemm.js';

interface TensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
}

/** The parts of tfjs-backend-wasm's BackendWasm these kernels use. */
export interface WasmBackendInternals {
  wasm: {
    asm: { memory: WasmMemory };
    _malloc(bytes: number): number;
  };
  dataIdMap: { get(dataId: object): TensorData };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

const gemms = new WeakMap<object, SimdGemm>();

/** Whether core's WebAssembly kernels can run on this backend's heap (its memory is exported and importable). */
export function wasmHeapUsable(backend: WasmBackendInternals | null | undefined): boolean {
  const memory = backend?.wasm?.asm?.memory;
  if (!(memory instanceof (WasmJs.Memory as unknown as new () => WasmMemory))) return false;
  try {
    new WasmJs.Instance(simdGemmModule(false), { env: { memory } });
    return true;
  } catch {
    return false;
  }
}

/** The GEMM bound to this backend's heap (created on first use). */
export function gemmFor(backend: WasmBackendInternals): SimdGemm {
  let g = gemms.get(backend);
  if (!g) {
    const memory = backend.wasm.asm?.memory;
    if (!(memory instanceof (WasmJs.Memory as unknown as new () => WasmMemory)))
      throw new Error('wasm matmul: tfjs-backend-wasm does not expose its WebAssembly.Memory as wasm.asm.memory');
    g = new SimdGemm(memory, (n) => backend.wasm._malloc(n) >>> 0);
    gemms.set(backend, g);
  }
  return g;
}

function offset(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Broadcast two batch shapes (numpy rules); throws naming both shapes when they do not broadcast. */
export function broadcastBatch(a: number[], b: number[], what: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new Error(`${what}: batch dimensions [${a}] and [${b}] do not broadcast (dimension ${i}: ${da} vs ${db})`);
    out.push(Math.max(da, db));
  }
  return out;
}

/** For each output batch (row-major over outBatch), the batch index into an operand of batch shape `s`. */
function batchIndices(s: number[], outBatch: number[]): Int32Array {
  const n = size(outBatch);
  const idx = new Int32Array(n);
  const pad = outBatch.length - s.length;
  const strides = new Array<number>(s.length);
  let st = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    strides[i] = st;
    st *= s[i] as number;
  }
  const coord = new Array<number>(outBatch.length).fill(0);
  for (let o = 0; o < n; o++) {
    let v = 0;
    for (let i = 0; i < s.length; i++) if ((s[i] as number) !== 1) v += (coord[pad + i] as number) * (strides[i] as number);
    idx[o] = v;
    for (let d = outBatch.length - 1; d >= 0; d--) {
      coord[d] = (coord[d] as number) + 1;
      if ((coord[d] as number) < (outBatch[d] as number)) break;
      coord[d] = 0;
    }
  }
  return idx;
}

export interface MatMulArgs {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
}

/** out = matMul(a, b, transposeA, transposeB), allocated on the heap, shape [...batch, M, N]. */
export function matMulInto(backend: WasmBackendInternals, { a, b, transposeA, transposeB }: MatMulArgs, kernel: string): tf.TensorInfo {
  if (a.dtype !== 'float32' || b.dtype !== 'float32')
    throw new Error(`${kernel} (wasm): only float32 is supported, got a ${a.dtype} and b ${b.dtype}`);
  const ar = a.shape.length;
  const br = b.shape.length;
  if (ar < 2 || br < 2) throw new Error(`${kernel} (wasm): inputs must have rank >= 2, got shapes [${a.shape}] and [${b.shape}]`);
  const M = a.shape[transposeA ? ar - 1 : ar - 2] as number;
  const Ka = a.shape[transposeA ? ar - 2 : ar - 1] as number;
  const Kb = b.shape[transposeB ? br - 1 : br - 2] as number;
  const N = b.shape[transposeB ? br - 2 : br - 1] as number;
  if (Ka !== Kb)
    throw new Error(
      `${kernel} (wasm): inner dimensions must match, got ${Ka} (a [${a.shape}], transposeA=${transposeA}) and ${Kb} (b [${b.shape}], transposeB=${transposeB})`,
    );
  const K = Ka;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const outBatch = broadcastBatch(aBatch, bBatch, kernel);
  const out = backend.makeOutput([...outBatch, M, N], 'float32');
  const g = gemmFor(backend);
  const pa = offset(backend, a);
  const pb = offset(backend, b);
  const pc = offset(backend, out);
  const nOut = size(outBatch);
  if (nOut === 0 || M === 0 || N === 0) return out;
  const aStride = M * K;
  const bStride = K * N;
  const A = (p: number): StridedMatrix => (transposeA ? { ptr: p, rs: 1, cs: M } : { ptr: p, rs: K, cs: 1 });
  const B = (p: number): StridedMatrix => (transposeB ? { ptr: p, rs: 1, cs: K } : { ptr: p, rs: N, cs: 1 });
  if (K === 0) {
    new Float32Array(backend.wasm.asm.memory.buffer, pc, nOut * M * N).fill(0);
    return out;
  }
  const items: GemmItem[] = [];
  if (size(bBatch) === 1 && !transposeA && size(aBatch) === nOut) {
    // One B for every batch and A's batches are contiguous rows: a single [nOut*M, K] x [K, N].
    items.push({ M: nOut * M, N, K, A: A(pa), B: B(pb), C: pc, ldc: N });
  } else {
    const ia = batchIndices(aBatch, outBatch);
    const ib = batchIndices(bBatch, outBatch);
    for (let o = 0; o < nOut; o++)
      items.push({
        M,
        N,
        K,
        A: A(pa + 4 * aStride * (ia[o] as number)),
        B: B(pb + 4 * bStride * (ib[o] as number)),
        C: pc + 4 * M * N * o,
        ldc: N,
      });
  }
  runGemms(backend, g, items);
  return out;
}

/**
 * Which part of a causal attention GEMM causalMatMulInto leaves out (query i sees keys j <= i + offset):
 * - 'nEnd': C [T, S] = scores-shaped (q k^T, dy v^T): a strip of query rows [r0, r1) computes
 *   columns j < r1 + offset only; the rest of its row stays unwritten (every such entry is masked,
 *   and the caller's scale-and-mask / softmax-gradient pass overwrites it).
 * - 'kEnd': C [T, hs] = P X (p v, ds k): a strip's inner sum stops at key r1 + offset; the terms
 *   beyond multiply exact zeros of P.
 * - 'kStart': C [S, hs] = P^T X (p^T dy, ds^T q): a strip of key rows [c0, c1) sums from query
 *   c0 - offset on; the earlier terms multiply exact zeros of P.
 */
export type CausalBand = 'nEnd' | 'kEnd' | 'kStart';

/** Output rows per strip of causalMatMulInto (0: it does not apply; the attention kernels run the full GEMMs). */
let causalStripRows = 16;

/**
 * Strip height of causal attention's skipped GEMM blocks (causalMatMulInto): smaller strips skip
 * more of the masked triangle (about (1 + R / T) / 2 of the work remains) at more GEMM calls and
 * more repacking of the shared operand. 0 turns the skipping off (the full GEMMs, the same bits).
 */
export function setCausalStripRows(rows: number): void {
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`setCausalStripRows: rows must be an integer >= 0, got ${rows}`);
  causalStripRows = rows;
}

export function causalStripRowsSetting(): number {
  return causalStripRows;
}

/**
 * matMulInto for causal attention's rank-4 GEMMs (a and b of one batch shape [B, H], no
 * broadcast), computed in strips of causalStripRows output rows without the blocks the causal mask
 * zeroes (see CausalBand; off = S - T >= 0, the `offset` of CausalBand). Bit for bit the full GEMM wherever the operands are
 * finite: a left-out term is a product with an exact +0 (a masked key's probability underflows to
 * +0; the softmax gradient writes +0 there), and the micro-kernel's accumulators start at +0 and
 * never become -0, so adding such a term (+-0) changes nothing; the kept terms are summed in the
 * same order, and 'kStart' moves its first term back to the start of its KC block wherever the sum
 * spans more than one block, so the blocks' partial sums are the same ones. null where it does not
 * apply (skipping off, the native GEMM, offset < 0, fewer rows than two strips): the caller runs
 * matMulInto.
 */
export function causalMatMulInto(
  backend: WasmBackendInternals,
  { a, b, transposeA, transposeB }: MatMulArgs,
  kernel: string,
  band: CausalBand,
  off: number,
): tf.TensorInfo | null {
  const R = causalStripRows;
  if (R === 0 || nativeBlas() || off < 0 || a.shape.length !== 4 || b.shape.length !== 4) return null;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape[0] !== b.shape[0] || a.shape[1] !== b.shape[1]) return null;
  const M = a.shape[transposeA ? 3 : 2] as number;
  const K = a.shape[transposeA ? 2 : 3] as number;
  const N = b.shape[transposeB ? 2 : 3] as number;
  if ((b.shape[transposeB ? 3 : 2] as number) !== K || M < 2 * R || N === 0 || K === 0) return null;
  const batch = (a.shape[0] as number) * (a.shape[1] as number);
  const out = backend.makeOutput([a.shape[0] as number, a.shape[1] as number, M, N], 'float32');
  const g = gemmFor(backend);
  const KC = g.blocking.kc;
  const pa0 = offset(backend, a);
  const pb0 = offset(backend, b);
  const pc0 = offset(backend, out);
  const items: GemmItem[] = [];
  for (let o = 0; o < batch; o++) {
    const pa = pa0 + 4 * o * M * K;
    const pb = pb0 + 4 * o * K * N;
    const pc = pc0 + 4 * o * M * N;
    for (let r0 = 0; r0 < M; r0 += R) {
      const m = Math.min(R, M - r0);
      let n = N;
      let k0 = 0;
      let k1 = K;
      if (band === 'nEnd') n = Math.min(N, r0 + m + off);
      else if (band === 'kEnd') k1 = Math.min(K, r0 + m + off);
      else {
        k0 = Math.max(0, r0 - off);
        const blockStart = Math.floor(k0 / KC) * KC;
        if (K - blockStart > KC) k0 = blockStart; // the sum spans blocks: keep the full GEMM's block boundaries
      }
      // off >= 0 gives every strip at least one column and one term (kStart: r0 - off < M - off = K)
      if (n <= 0 || k1 <= k0) throw new Error(`${kernel} (wasm): empty causal strip at row ${r0} (${band}, offset ${off})`);
      items.push({
        M: m,
        N: n,
        K: k1 - k0,
        A: transposeA ? { ptr: pa + 4 * (k0 * M + r0), rs: 1, cs: M } : { ptr: pa + 4 * (r0 * K + k0), rs: K, cs: 1 },
        B: transposeB ? { ptr: pb + 4 * k0, rs: 1, cs: K } : { ptr: pb + 4 * k0 * N, rs: N, cs: 1 },
        C: pc + 4 * r0 * N,
        ldc: N,
      });
    }
  }
  runGemms(backend, g, items);
  return out;
}

let pool: GemmPool | null = null;
/**
 * Below this many flops a GEMM list is not worth handing to worker threads. Measured with
 * `pnpm --filter @mmlm/core bench:threads` (bench/results/threads.json; 2-core AMD EPYC, 2026-12-03):
 * 2 threads lose on every experiment GEMM of 5 MFLOP (x0.5-0.7), are mixed at 16-26 MFLOP (forward
 * x1.5-1.9, dW x0.6-0.8) and win on every layout from 79 MFLOP (x1.2-1.8); 2^26 = 67 MFLOP keeps
 * the mixed band on one thread (it was 2^24, a guess).
 */
let parallelMinFlops = 1 << 26;
/** null until first use: MMLM_WASM_THREADS is read lazily (no `process` read when the module loads). */
let poolThreads: number | null = null;

/**
 * MMLM_WASM_THREADS when set; else 1 under vitest (its parallel workers already fill the cores);
 * else the machine's parallelism, at most 4 (each worker copies its operands, which stops paying
 * beyond a few threads); 1 where there are no worker threads (a browser).
 */
function defaultThreads(): number {
  if (!workersAvailable()) return 1;
  const set = env('MMLM_WASM_THREADS');
  if (set !== undefined && set !== '') return Math.max(1, Math.floor(Number(set)) || 1);
  if (env('VITEST')) return 1;
  return Math.max(1, Math.min(4, cpuCount()));
}

/**
 * Threads for the WebAssembly SIMD GEMM (1 = the calling thread only; n > 1 adds n - 1
 * worker_threads; default: see defaultThreads). Not used while the native GEMM is active (it has
 * its own threads).
 * minFlops: matmuls with less work stay on the calling thread (default 2^26, measured: see parallelMinFlops).
 */
export function setWasmGemmThreads(n: number, minFlops?: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setWasmGemmThreads: threads must be a positive integer, got ${n}`);
  if (minFlops !== undefined) parallelMinFlops = minFlops;
  if (n > 1 && !workersAvailable())
    throw new Error(`setWasmGemmThreads: ${n} threads need worker threads, which this platform (a browser) does not have`);
  if (n !== wasmGemmThreads()) {
    pool?.dispose();
    pool = null;
    poolThreads = n;
  }
}

export function wasmGemmThreads(): number {
  poolThreads ??= defaultThreads();
  return poolThreads;
}

function runGemms(backend: WasmBackendInternals, g: SimdGemm, items: GemmItem[]): void {
  const local = (its: GemmItem[]) => {
    for (const it of its) g.gemm(it.M, it.N, it.K, it.A, it.B, it.C, it.ldc);
  };
  const flops = items.reduce((a, it) => a + 2 * it.M * it.N * it.K, 0);
  const threads = wasmGemmThreads();
  if (threads > 1 && flops >= parallelMinFlops && !nativeBlas()) {
    pool ??= new GemmPool(threads, g.fma, g.blocking);
    if (pool.run(backend.wasm.asm.memory.buffer, items, local)) return;
  }
  local(items);
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function batchMatMul({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
  return matMulInto(
    backend as WasmBackendInternals,
    { a: inputs.a as tf.TensorInfo, b: inputs.b as tf.TensorInfo, transposeA: !!transposeA, transposeB: !!transposeB },
    'BatchMatMul',
  );
}

/** Run another registered wasm kernel on `x` and free `x` (its result replaces it). */
function chain(backend: WasmBackendInternals, name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap, free: tf.TensorInfo) {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`_FusedMatMul (wasm): kernel ${name} is not registered for wasm`);
  const r = k.kernelFunc({ inputs, backend: backend as never, attrs }) as tf.TensorInfo;
  backend.disposeData(free.dataId);
  return r;
}

/**
 * _FusedMatMul: activation(matMul(a, b) + bias), as tfjs-core's fused.matMul. A bias whose size is
 * N (shape [N] or [1, ..., N]) is added in the GEMM's output pass; other broadcastable biases and
 * every activation go through the backend's own Add / activation kernels, so their semantics are
 * the stock ones.
 */
function fusedMatMul({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backend as WasmBackendInternals;
  const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as {
    transposeA: boolean;
    transposeB: boolean;
    activation: string;
    leakyreluAlpha?: number;
  };
  const a = inputs.a as tf.TensorInfo;
  const b = inputs.b as tf.TensorInfo;
  const bias = inputs.bias as tf.TensorInfo | undefined;
  const prelu = inputs.preluActivationWeights as tf.TensorInfo | undefined;
  let out = matMulInto(be, { a, b, transposeA: !!transposeA, transposeB: !!transposeB }, '_FusedMatMul');
  if (bias) {
    const N = out.shape[out.shape.length - 1] as number;
    const rows = size(out.shape) / Math.max(N, 1);
    if (
      bias.dtype === 'float32' &&
      size(bias.shape) === N &&
      bias.shape.slice(0, -1).every((d) => d === 1) &&
      bias.shape.length <= out.shape.length
    ) {
      gemmFor(be).addBias(offset(be, out), rows, N, offset(be, bias));
    } else {
      out = chain(be, 'Add', { a: out, b: bias }, {}, out);
    }
  }
  switch (activation ?? 'linear') {
    case 'linear':
      return out;
    case 'relu':
      return chain(be, 'Relu', { x: out }, {}, out);
    case 'relu6':
      return chain(be, 'Relu6', { x: out }, {}, out);
    case 'elu':
      return chain(be, 'Elu', { x: out }, {}, out);
    case 'sigmoid':
      return chain(be, 'Sigmoid', { x: out }, {}, out);
    case 'leakyrelu':
      return chain(be, 'LeakyRelu', { x: out }, { alpha: leakyreluAlpha ?? 0.2 }, out);
    case 'prelu':
      if (!prelu) throw new Error('_FusedMatMul (wasm): activation "prelu" needs preluActivationWeights');
      return chain(be, 'Prelu', { x: out, alpha: prelu }, {}, out);
    default:
      throw new Error(
        `_FusedMatMul (wasm): unknown activation "${activation}"; expected linear, relu, relu6, elu, sigmoid, leakyrelu or prelu`,
      );
  }
}

export const wasmMatMulKernels: tf.KernelConfig[] = [
  { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: batchMatMul as unknown as tf.KernelFunc },
  { kernelName: '_FusedMatMul', backendName: 'wasm', kernelFunc: fusedMatMul as unknown as tf.KernelFunc },
];
