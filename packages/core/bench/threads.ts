/**
 * `pnpm --filter @mmlm/core bench:threads`: where the worker-pool GEMM starts to pay. Each matmul
 * shape the experiments run (the lab's 2x64 and 4x128 decoders at batch 16 and sequences 20 / 60:
 * Linear forward NT, its dX NN and dW TN; gpt-bench's Linear for scale) is timed on the WebAssembly
 * SIMD GEMM with 1 thread and with 2 (the pool forced on: minFlops 0), rounds alternating, median of
 * `--reps`. The printed crossover is the smallest flop count from which 2 threads win in every
 * larger shape; wasm_matmul.ts's default threshold (parallelMinFlops) is set from this table.
 * The native GEMM is switched off for the run (it has its own threads).
 * With --native (the optional OpenBLAS addon built) it instead times the native GEMM against the
 * SIMD GEMM, one thread each, on the same shapes plus the small ones of generation (2 and 32 rows,
 * CFG pairs) and batched attention; its crossover sets simd_gemm.ts's nativeMinFlops.
 * Options: --reps <n> (default 15), --native, --out <file> (default bench/results/threads.json,
 * native-threshold.json with --native).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nativeBlasInfo, setNativeBlasEnabled, setNativeBlasThreads, setWasmGemmThreads } from '../src/backend/kernels/index.js';
import { initBackend, tf } from '../src/index.js';

const { values: opt } = parseArgs({ options: { reps: { type: 'string' }, out: { type: 'string' }, native: { type: 'boolean' } } });
const reps = Number(opt.reps ?? 15);
if (!Number.isInteger(reps) || reps < 3) throw new Error(`--reps: expected an integer >= 3, got ${opt.reps}`);
const here = dirname(fileURLToPath(import.meta.url));
const native = opt.native === true;
const out = opt.out ?? join(here, 'results', native ? 'native-threshold.json' : 'threads.json');

interface Shape {
  name: string;
  M: number;
  N: number;
  K: number;
  ta: boolean;
  tb: boolean;
  /** Batch of a batched matmul (attention); default 1. */
  batch?: number;
}
const shapes: Shape[] = [];
for (const [D, T] of [
  [64, 20],
  [64, 60],
  [128, 20],
  [128, 60],
  [256, 20],
  [256, 60],
  [256, 128],
] as const) {
  const rows = 16 * T;
  // hidden width: the SwiGLU rule int(8 D / 3 / 64) * 64 of the lab's decoders; gpt-bench's 4 D at D 256
  const H = D === 256 ? 4 * D : Math.floor((D * 8) / 3 / 64) * 64 || 64;
  // y [rows, H] = x [rows, D] W[H, D]^T; dX [rows, D] = dY [rows, H] W [H, D]; dW [H, D] = dY^T [H, rows] x [rows, D]
  shapes.push({ name: `Linear ${D}->${H}, ${rows} rows, forward NT`, M: rows, N: H, K: D, ta: false, tb: true });
  shapes.push({ name: `Linear ${D}->${H}, ${rows} rows, dX NN`, M: rows, N: D, K: H, ta: false, tb: false });
  shapes.push({ name: `Linear ${D}->${H}, ${rows} rows, dW TN`, M: H, N: D, K: rows, ta: true, tb: false });
}

if (native)
  for (const D of [64, 128]) {
    const H = Math.floor((D * 8) / 3 / 64) * 64 || 64;
    // generation: one token of a CFG pair (2 rows) or of 16 pairs (32 rows) through a Linear
    for (const rows of [2, 32]) {
      shapes.push({ name: `Linear ${D}->${H}, ${rows} rows, forward NT`, M: rows, N: H, K: D, ta: false, tb: true });
      shapes.push({ name: `Linear ${H}->${D}, ${rows} rows, forward NT`, M: rows, N: D, K: H, ta: false, tb: true });
    }
    // attention scores and values of 16 sequences x 4 heads, head width D / 4, T 20 and 60
    for (const T of [20, 60]) {
      shapes.push({ name: `attention QK^T 64 x [${T}, ${D / 4}]`, M: T, N: T, K: D / 4, ta: false, tb: true, batch: 64 });
      shapes.push({ name: `attention PV 64 x [${T}, ${T}]`, M: T, N: D / 4, K: T, ta: false, tb: false, batch: 64 });
    }
  }

await initBackend({ backend: 'wasm', log: false });
const wasNative = setNativeBlasEnabled(false);
if (native && !nativeBlasInfo().available)
  throw new Error(`--native: the native GEMM is not available (${nativeBlasInfo().reason}); run pnpm --filter @mmlm/core build:native`);
if (native) setNativeBlasThreads(1);
/** One timed matmul: `threads` SIMD threads, or (native mode, threads 2) the native GEMM on one thread. */
const time = (s: Shape, threads: number): number => {
  if (native) {
    setWasmGemmThreads(1);
    setNativeBlasEnabled(threads === 2);
  } else setWasmGemmThreads(threads, 0);
  const bt = s.batch ? [s.batch] : [];
  const a = tf.randomNormal([...bt, ...(s.ta ? [s.K, s.M] : [s.M, s.K])], 0, 1, 'float32', 1);
  const b = tf.randomNormal([...bt, ...(s.tb ? [s.N, s.K] : [s.K, s.N])], 0, 1, 'float32', 2);
  tf.matMul(a, b, s.ta, s.tb).dispose(); // warm-up (and the pool's start)
  // small shapes: time a run of calls (the per-call overhead is what decides them)
  const calls = Math.max(1, Math.min(200, Math.round(2e6 / (2 * s.M * s.N * s.K * (s.batch ?? 1)))));
  const t0 = performance.now();
  for (let c = 0; c < calls; c++) tf.matMul(a, b, s.ta, s.tb).dispose();
  const ms = (performance.now() - t0) / calls;
  tf.dispose([a, b]);
  return ms;
};
const rows: { name: string; flops: number; ms1: number; ms2: number; speedup: number }[] = [];
for (const s of shapes) {
  const t1: number[] = [];
  const t2: number[] = [];
  for (let r = 0; r < reps; r++) {
    t1.push(time(s, 1));
    t2.push(time(s, 2));
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  const flops = 2 * s.M * s.N * s.K * (s.batch ?? 1);
  const r = { name: s.name, flops, ms1: med(t1), ms2: med(t2), speedup: med(t1) / med(t2) };
  rows.push(r);
  console.log(
    `${r.name.padEnd(44)} ${(flops / 1e6).toFixed(2).padStart(8)} MFLOP  ${native ? 'SIMD' : '1t'} ${r.ms1.toFixed(4).padStart(9)} ms  ${native ? 'native' : '2t'} ${r.ms2.toFixed(4).padStart(9)} ms  x${r.speedup.toFixed(2)}`,
  );
}
setNativeBlasEnabled(wasNative);
const sorted = [...rows].sort((a, b) => a.flops - b.flops);
let crossover: number | null = null;
for (let i = sorted.length - 1; i >= 0; i--) {
  if (sorted[i]!.speedup > 1.05) crossover = sorted[i]!.flops;
  else break;
}
console.log(
  crossover === null
    ? `crossover: ${native ? 'the native GEMM does' : '2 threads do'} not win at the largest shape here`
    : `crossover: ${native ? 'the native GEMM wins' : '2 threads win'} from ${(crossover / 1e6).toFixed(2)} MFLOP on (every larger shape by > 5%)`,
);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), mode: native ? 'native vs SIMD, 1 thread each' : 'SIMD 1 vs 2 threads', cpu: os.cpus()[0]?.model, cores: os.cpus().length, load: os.loadavg(), reps, rows, crossover }, null, 2)}\n`,
);
console.log(`results written to ${out}`);
