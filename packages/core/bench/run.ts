/**
 * `pnpm bench`: the gpt-bench training step (shared/peer/GPT_BENCH.md), the matmul variants it runs
 * and the experiment-shaped workloads (bench/workloads.ts: Liquid's VQ tokenizer step, decoder LM
 * steps, CFG generation with a KV cache), on every available backend, next to the PyTorch peers
 * measured in the same run (gpt-bench: 1 thread; workloads: 1 and 2 threads).
 *
 * Options:
 *   --backend <names>   comma-separated subset of wasm, wasm-simd, wasm-simd2, wasm-blas1,
 *                       wasm-stock, cpu, tensorflow (default: all that load). wasm runs core's
 *                       kernels as configured (the native GEMM when built); wasm-simd forces the
 *                       WebAssembly SIMD GEMM on one thread, wasm-simd2 on two (one worker);
 *                       wasm-blas1 the native GEMM on one thread; wasm-stock the stock tfjs kernels.
 *   --out <file>        JSON output (default bench/results/bench-results.json)
 *   --steps <n>         timed gpt-bench steps (and workload steps) after the warm-up (default 5)
 *   --warmup-s <s>      workloads (ours and the PyTorch peer alike): untimed warm-up steps, at least 2
 *                       and until s seconds have passed (default 3; at most 500 steps). V8 keeps
 *                       optimising tfjs's JavaScript for the first tens of steps: after one warm-up
 *                       step the 16 px tokenizer's median was 30 ms, after 30 steps 15-23 ms, and the
 *                       experiments run thousands of steps. gpt-bench keeps the spec's one warm-up step.
 *   --reps <n>          timed calls per matmul variant after one warm-up call (default 7)
 *   --only <what>       matmul | gpt | workloads
 *   --workloads <names> comma-separated subset of the workloads (default all; see bench/workloads.ts)
 *   --gpt-cpu           also run gpt-bench and the workloads on cpu (about a minute per gpt-bench
 *                       step; --cpu-steps, default 2)
 *   --gpt-stock         also run gpt-bench and the workloads on wasm-stock (about 20 s per gpt step)
 *   --long <n>          after the timed steps, run n more and record RSS and tensor counts (gpt-bench
 *                       and each workload; the trace goes to the JSON, a summary line to stderr)
 *   --profile           print per-kernel times of one gpt-bench step (and of one step of each
 *                       workload) per backend; MMLM_PROFILE_STEPS=n sums n workload steps (the
 *                       printed times are their totals), MMLM_PROFILE_TOP=n prints n rows
 *   --no-peers          skip the PyTorch peers;  --peer-tfjs  also run the stock tfjs peer script
 *   --peer-dir <dir>    folder of the peer scripts (default <repo>/../shared/peer)
 * The workloads on wasm configurations whose kernels equal an earlier one's (wasm-simd2 when there
 * is no native GEMM: it is then `wasm`) are not run twice.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  nativeBlasInfo,
  setNativeBlasEnabled,
  setNativeBlasThreads,
  setWasmGemmThreads,
  useStockKernels,
  wasmGemmThreads,
} from '../src/backend/kernels/index.js';
import { hasRelaxedSimd } from '../src/backend/kernels/simd_gemm.js';
import { initBackend, tf } from '../src/index.js';
import { GPT_BENCH, gptBenchFlops, makeGptBench } from './gpt.js';
import { MATMUL_CASES, timeMatMul } from './matmul.js';
import { runTfjsPeer, runTorchPeer, runTorchWorkloads, type TorchInfo, type TorchWorkloadResult } from './peers.js';
import { KernelProfiler } from './profile.js';
import { makeWorkload, WORKLOADS } from './workloads.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');

const { values: opt } = parseArgs({
  options: {
    backend: { type: 'string' },
    out: { type: 'string' },
    steps: { type: 'string' },
    reps: { type: 'string' },
    only: { type: 'string' },
    workloads: { type: 'string' },
    'gpt-cpu': { type: 'boolean', default: false },
    'cpu-steps': { type: 'string' },
    'gpt-stock': { type: 'boolean', default: false },
    long: { type: 'string' },
    'warmup-s': { type: 'string' },
    profile: { type: 'boolean', default: false },
    'no-peers': { type: 'boolean', default: false },
    'peer-tfjs': { type: 'boolean', default: false },
    'peer-dir': { type: 'string' },
  },
});

type BenchBackend = 'wasm' | 'wasm-simd' | 'wasm-simd2' | 'wasm-blas1' | 'wasm-stock' | 'cpu' | 'tensorflow';
const ALL: BenchBackend[] = ['wasm', 'wasm-simd', 'wasm-simd2', 'wasm-blas1', 'wasm-stock', 'cpu', 'tensorflow'];
const simdThreads = wasmGemmThreads();
const native = nativeBlasInfo();
const nativeThreads = native.threads ?? 1;
const requested = opt.backend
  ? (opt.backend.split(',').map((s) => s.trim()) as BenchBackend[])
  : ALL.filter(
      (b) =>
        (native.available || b !== 'wasm-blas1') &&
        // without the native GEMM, wasm-simd differs from wasm only when wasm runs more than one thread
        (native.available || b !== 'wasm-simd' || simdThreads !== 1) &&
        (b !== 'wasm-simd2' || os.cpus().length > 1),
    );
for (const b of requested) if (!ALL.includes(b)) throw new Error(`--backend: unknown backend "${b}"; expected one of ${ALL.join(', ')}`);
const ONLY = ['matmul', 'gpt', 'workloads'];
if (opt.only && !ONLY.includes(opt.only)) throw new Error(`--only: expected one of ${ONLY.join(', ')}, got "${opt.only}"`);
const runs = (what: string) => !opt.only || opt.only === what;
const workloadNames = opt.workloads ? opt.workloads.split(',').map((s) => s.trim()) : WORKLOADS.map((w) => w.name);
for (const w of workloadNames)
  if (!WORKLOADS.some((x) => x.name === w))
    throw new Error(`--workloads: unknown workload "${w}"; expected some of ${WORKLOADS.map((x) => x.name).join(', ')}`);
const steps = Number(opt.steps ?? 5);
const reps = Number(opt.reps ?? 7);
const longSteps = Number(opt.long ?? 0);
const warmupS = Number(opt['warmup-s'] ?? 3);
if (!Number.isFinite(warmupS) || warmupS < 0) throw new Error(`--warmup-s: expected seconds >= 0, got "${opt['warmup-s']}"`);
/** Workload warm-up: at least this many untimed steps, then more until warmupS seconds have passed. */
const WARMUP_MIN_STEPS = 2;
const WARMUP_MAX_STEPS = 500;
// pnpm runs the script in this package; INIT_CWD is where the user typed the command.
const userCwd = process.env.INIT_CWD ?? process.cwd();
const outFile = opt.out ? resolve(userCwd, opt.out) : join(here, 'results', 'bench-results.json');
const peerDir = opt['peer-dir'] ? resolve(userCwd, opt['peer-dir']) : join(repoRoot, '..', 'shared', 'peer');

const machine = {
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  totalMemGB: Math.round(os.totalmem() / 2 ** 30),
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  loadAvgStart: os.loadavg().map((x) => Number(x.toFixed(2))),
};
const versions = { node: process.version, tfjs: { 'tfjs-core': tf.version_core } as Record<string, string> };

interface Entry {
  name: string;
  backend: string;
  kernels: string;
  msPerStep: number;
  msMin: number;
  msAll: number[];
  tokensPerSec: number | null;
  gflops: number;
  peakRssMB: number;
  numTensorsBefore?: number;
  numTensorsAfter?: number;
  rssTraceMB?: { step: number; rssMB: number; numTensors: number }[];
  note?: string;
  versions: typeof versions;
  machine: typeof machine;
}
const results: Entry[] = [];
const peers: object[] = [];

interface WorkloadEntry {
  name: string;
  backend: string;
  kernels: string;
  unit: string;
  params: number;
  msPerStep: number;
  msMin: number;
  msAll: number[];
  warmupMs: number;
  warmupSteps: number;
  itemsPerSec: number;
  itemName: string;
  /** Loss of the last step (training) or a checksum of the generated ids. */
  lastValue: number;
  peakRssMB: number;
  numTensorsBefore: number;
  numTensorsAfter: number;
  /** --long: RSS and tensor count every longSteps / 20 steps after the timed ones. */
  rssTraceMB?: { step: number; rssMB: number; numTensors: number }[];
}
const workloadResults: WorkloadEntry[] = [];
interface WorkloadPeer {
  threads: number;
  info: TorchInfo;
  command: string;
  results: (TorchWorkloadResult & { msPerStep: number })[];
}
const workloadPeers: WorkloadPeer[] = [];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const rssMB = () => process.memoryUsage.rss() / 2 ** 20;
const log = (s: string) => process.stderr.write(`${s}\n`);

let kernels = '';

async function activate(b: BenchBackend): Promise<boolean> {
  const name = b.startsWith('wasm') ? 'wasm' : b;
  if (b === 'wasm-blas1' && !native.available) {
    log(`[bench] ${b}: skipped (native GEMM ${native.reason})`);
    return false;
  }
  try {
    await initBackend({ backend: name, log: false });
  } catch (e) {
    log(`[bench] ${b}: skipped (${String((e as Error).message).split('\n')[0]})`);
    return false;
  }
  if (name !== 'wasm') {
    kernels = `stock ${name}`;
    return true;
  }
  useStockKernels('wasm', b === 'wasm-stock');
  setNativeBlasEnabled(b !== 'wasm-simd' && b !== 'wasm-simd2');
  setWasmGemmThreads(b === 'wasm-simd2' ? 2 : b === 'wasm-simd' ? 1 : simdThreads);
  if (native.available) setNativeBlasThreads(b === 'wasm-blas1' ? 1 : nativeThreads);
  const info = nativeBlasInfo();
  if (b === 'wasm-stock') kernels = 'stock tfjs-backend-wasm (+ core UnsortedSegmentSum)';
  else if (info.available && info.enabled)
    kernels = `core kernels, native GEMM ${info.config?.split(' ').slice(0, 2).join(' ')} (${info.threads} thread${info.threads === 1 ? '' : 's'})`;
  else {
    // relaxed SIMD's fused multiply-add: on by default where the engine has it (Node >= 22)
    const fma = process.env.MMLM_WASM_FMA !== '0' && hasRelaxedSimd() ? ', FMA' : '';
    kernels = `core kernels, WebAssembly SIMD GEMM (${wasmGemmThreads()} thread${wasmGemmThreads() === 1 ? '' : 's'}${fma})`;
  }
  return true;
}

function benchMatMuls(b: BenchBackend): void {
  for (const c of MATMUL_CASES) {
    const r0 = rssMB();
    const times = timeMatMul(c, 1, reps);
    const ms = median(times);
    results.push({
      name: c.name,
      backend: b,
      kernels,
      msPerStep: ms,
      msMin: Math.min(...times),
      msAll: times,
      tokensPerSec: null,
      gflops: c.flops / ms / 1e6,
      peakRssMB: Math.max(r0, rssMB()),
      versions,
      machine,
    });
    log(`[bench] ${b} ${c.name}: ${ms.toFixed(2)} ms, ${(c.flops / ms / 1e6).toFixed(1)} GFLOP/s`);
  }
}

function benchGpt(b: BenchBackend, nSteps: number): void {
  const g = makeGptBench(0);
  const flops = gptBenchFlops(g.params);
  const tokens = GPT_BENCH.B * GPT_BENCH.T;
  let peak = rssMB();
  const t0 = performance.now();
  g.step();
  log(`[bench] ${b} gpt-bench warm-up step: ${(performance.now() - t0).toFixed(0)} ms`);
  const before = tf.memory().numTensors;
  const times: number[] = [];
  for (let i = 0; i < nSteps; i++) {
    const t = performance.now();
    const loss = g.step();
    times.push(performance.now() - t);
    peak = Math.max(peak, rssMB());
    log(`[bench] ${b} gpt-bench step ${i + 1}/${nSteps}: ${times[i]?.toFixed(0)} ms, loss ${loss.toFixed(4)}`);
  }
  const after = tf.memory().numTensors;
  const trace: { step: number; rssMB: number; numTensors: number }[] = [];
  if (longSteps > 0) {
    trace.push({ step: 0, rssMB: rssMB(), numTensors: tf.memory().numTensors });
    for (let i = 1; i <= longSteps; i++) {
      g.step();
      peak = Math.max(peak, rssMB());
      if (i % 10 === 0 || i === longSteps) {
        trace.push({ step: i, rssMB: Number(rssMB().toFixed(1)), numTensors: tf.memory().numTensors });
        log(`[bench] ${b} long run: step ${i}/${longSteps}, rss ${rssMB().toFixed(0)} MB, tensors ${tf.memory().numTensors}`);
      }
    }
  }
  if (opt.profile) {
    const p = new KernelProfiler(tf.getBackend());
    p.start();
    const t = performance.now();
    g.step();
    const total = performance.now() - t;
    const ks = p.stop();
    log(`[bench] ${b} kernel profile of one step (${total.toFixed(0)} ms):`);
    for (const k of ks.slice(0, 25))
      log(`    ${k.kernel.padEnd(28)} ${String(k.calls).padStart(5)} calls ${k.ms.toFixed(1).padStart(9)} ms`);
  }
  g.dispose();
  const ms = median(times);
  results.push({
    name: 'gpt-bench',
    backend: b,
    kernels,
    msPerStep: ms,
    msMin: Math.min(...times),
    msAll: times,
    tokensPerSec: (tokens / ms) * 1000,
    gflops: flops / ms / 1e6,
    peakRssMB: peak,
    numTensorsBefore: before,
    numTensorsAfter: after,
    ...(trace.length ? { rssTraceMB: trace } : {}),
    note: `${g.params} parameters; ${(flops / 1e9).toFixed(1)} GFLOP per step (6 N P + 12 L B T^2 D)`,
    versions,
    machine,
  });
}

const workloadKernelsDone = new Set<string>();

async function benchWorkloads(b: BenchBackend, nSteps: number): Promise<void> {
  if (workloadKernelsDone.has(kernels)) {
    log(`[bench] ${b} workloads skipped: same kernels as an earlier configuration (${kernels})`);
    return;
  }
  workloadKernelsDone.add(kernels);
  for (const name of workloadNames) {
    const w = await makeWorkload(name);
    let peak = rssMB();
    const t0 = performance.now();
    let warmupSteps = 0;
    while (warmupSteps < WARMUP_MIN_STEPS || (warmupSteps < WARMUP_MAX_STEPS && performance.now() - t0 < warmupS * 1000)) {
      w.step();
      warmupSteps++;
    }
    const warmupMs = performance.now() - t0;
    const before = tf.memory().numTensors;
    const times: number[] = [];
    let last = 0;
    for (let i = 0; i < nSteps; i++) {
      const t = performance.now();
      last = w.step();
      times.push(performance.now() - t);
      peak = Math.max(peak, rssMB());
    }
    const after = tf.memory().numTensors;
    const trace: { step: number; rssMB: number; numTensors: number }[] = [];
    if (longSteps > 0) {
      const every = Math.max(1, Math.round(longSteps / 20));
      trace.push({ step: 0, rssMB: Number(rssMB().toFixed(1)), numTensors: tf.memory().numTensors });
      for (let i = 1; i <= longSteps; i++) {
        w.step();
        peak = Math.max(peak, rssMB());
        if (i % every === 0 || i === longSteps)
          trace.push({ step: i, rssMB: Number(rssMB().toFixed(1)), numTensors: tf.memory().numTensors });
      }
      const counts = trace.map((x) => x.numTensors);
      const rss = trace.map((x) => x.rssMB);
      // the first tenth lets the allocator settle; the rest is what "flat" is judged on
      const settled = trace.filter((x) => x.step >= longSteps / 10).map((x) => x.rssMB);
      log(
        `[bench] ${b} ${name} long run of ${longSteps} steps: tensors ${Math.min(...counts)}-${Math.max(...counts)} (${before} before), ` +
          `RSS ${rss[0]!.toFixed(0)} -> ${rss[rss.length - 1]!.toFixed(0)} MB (from step ${longSteps / 10}: ${Math.min(...settled).toFixed(0)}-${Math.max(...settled).toFixed(0)} MB), peak ${peak.toFixed(0)} MB`,
      );
    }
    if (opt.profile) {
      const p = new KernelProfiler(tf.getBackend());
      p.start();
      const t = performance.now();
      const PS = Number(process.env.MMLM_PROFILE_STEPS ?? 1);
      if (!Number.isInteger(PS) || PS < 1)
        throw new Error(`MMLM_PROFILE_STEPS: expected an integer >= 1, got "${process.env.MMLM_PROFILE_STEPS}"`);
      for (let i = 0; i < PS; i++) w.step();
      const total = performance.now() - t;
      const ks = p.stop();
      const inKernels = ks.reduce((a, k) => a + k.ms, 0);
      log(
        `[bench] ${b} ${name} kernel profile of ${PS === 1 ? 'one step' : `${PS} steps`} (${total.toFixed(1)} ms, ${inKernels.toFixed(1)} ms in kernels):`,
      );
      for (const k of ks.slice(0, Number(process.env.MMLM_PROFILE_TOP ?? 12)))
        log(`    ${k.kernel.padEnd(28)} ${String(k.calls).padStart(5)} calls ${k.ms.toFixed(2).padStart(9)} ms`);
      log(`[bench] ${b} ${name} matmuls of ${PS === 1 ? 'that step' : 'those steps'} by shape (GFLOP/s = 2 x batch x M x N x K / time):`);
      for (const m of p.matmulShapes().slice(0, Number(process.env.MMLM_PROFILE_TOP ?? 12)))
        log(
          `    ${m.shape.padEnd(36)} ${String(m.calls).padStart(4)} calls ${m.ms.toFixed(2).padStart(8)} ms ${m.gflops.toFixed(1).padStart(6)} GFLOP/s`,
        );
    }
    w.dispose();
    const ms = median(times);
    workloadResults.push({
      name,
      backend: b,
      kernels,
      unit: w.unit,
      params: w.params,
      msPerStep: ms,
      msMin: Math.min(...times),
      msAll: times,
      warmupMs,
      warmupSteps,
      itemsPerSec: (w.items / ms) * 1000,
      itemName: w.itemName,
      lastValue: last,
      peakRssMB: peak,
      numTensorsBefore: before,
      numTensorsAfter: after,
      ...(trace.length ? { rssTraceMB: trace } : {}),
    });
    log(
      `[bench] ${b} ${name}: ${ms.toFixed(1)} ms/${w.unit === 'generation' ? 'generation' : 'step'} (warm-up ${warmupSteps} steps, ${warmupMs.toFixed(0)} ms), ${w.params} params, tensors ${before} -> ${after}`,
    );
  }
}

/** The workload table: params ours / torch, ms per configuration, torch 1 and 2 threads, ratio. */
function workloadTable(): { rows: string[][]; ratios: Record<string, Record<string, number>>; mismatches: string[] } {
  const backends = [...new Set(workloadResults.map((r) => r.backend))];
  const torchThreads = workloadPeers.map((p) => p.threads);
  const kernelsOf = (b: string) => workloadResults.find((r) => r.backend === b)?.kernels ?? '';
  const threadsOf = (b: string) => Number(/\((\d+) threads?\)/.exec(kernelsOf(b))?.[1] ?? Number.NaN);
  const short = (b: string) => {
    const k = kernelsOf(b);
    const kind = k.includes('native GEMM') ? 'BLAS' : k.includes('SIMD') ? 'SIMD' : k.startsWith('stock') ? 'stock' : '';
    return Number.isNaN(threadsOf(b)) ? `${b} ${kind}`.trim() : `${b} ${kind} ${threadsOf(b)}t`;
  };
  // ours on one thread against torch on one thread (the best one-thread configuration)
  const oneThread = backends.filter((b) => threadsOf(b) === 1);
  const header = [
    'workload',
    'params ours / torch',
    ...backends.map((b) => `${short(b)} ms`),
    ...torchThreads.map((t) => `torch ${t}t ms`),
    ...(oneThread.length && torchThreads.includes(1) ? ['ours 1t / torch 1t'] : []),
    'best ours / best torch',
    'same, fastest steps',
  ];
  const rows: string[][] = [header];
  const ratios: Record<string, Record<string, number>> = {};
  const mismatches: string[] = [];
  for (const name of workloadNames) {
    const ours = workloadResults.filter((r) => r.name === name);
    if (!ours.length) continue;
    const params = ours[0]!.params;
    const peer = workloadPeers.map((p) => p.results.find((r) => r.name === name));
    const torchParams = peer.find((r) => r)?.params;
    if (torchParams !== undefined && torchParams !== params) mismatches.push(`${name}: ours ${params}, torch ${torchParams}`);
    const bestOurs = Math.min(...ours.map((r) => r.msPerStep));
    const torchMs = peer.filter((r): r is NonNullable<typeof r> => !!r).map((r) => r.msPerStep);
    const bestTorch = torchMs.length ? Math.min(...torchMs) : Number.NaN;
    ratios[name] = {};
    for (const r of ours)
      workloadPeers.forEach((p, i) => {
        const t = peer[i];
        if (t) (ratios[name] as Record<string, number>)[`${r.backend} / torch ${p.threads}t`] = r.msPerStep / t.msPerStep;
      });
    // On a loaded machine the fastest step of each side is the steadier statistic.
    const minOurs = Math.min(...ours.map((r) => r.msMin));
    const torchMin = peer.filter((r): r is NonNullable<typeof r> => !!r).map((r) => Math.min(...r.msAll));
    const minRatio = torchMin.length ? minOurs / Math.min(...torchMin) : Number.NaN;
    if (torchMs.length) {
      (ratios[name] as Record<string, number>)['best ours / best torch'] = bestOurs / bestTorch;
      (ratios[name] as Record<string, number>)['fastest step ours / fastest step torch'] = minRatio;
    }
    rows.push([
      name,
      `${params} / ${torchParams ?? '-'}`,
      ...backends.map((b) => {
        const r = ours.find((x) => x.backend === b);
        return r ? r.msPerStep.toFixed(1) : '-';
      }),
      ...peer.map((r) => (r ? r.msPerStep.toFixed(1) : '-')),
      ...(oneThread.length && torchThreads.includes(1)
        ? [
            (() => {
              const t1 = peer[torchThreads.indexOf(1)];
              const o1 = Math.min(...ours.filter((r) => oneThread.includes(r.backend)).map((r) => r.msPerStep));
              return t1 && Number.isFinite(o1) ? `${(o1 / t1.msPerStep).toFixed(2)}x` : '-';
            })(),
          ]
        : []),
      torchMs.length ? `${(bestOurs / bestTorch).toFixed(2)}x` : '-',
      torchMs.length ? `${minRatio.toFixed(2)}x` : '-',
    ]);
  }
  return { rows, ratios, mismatches };
}

function printTable(rows: string[][], leftCols: number): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(rows[0]!));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
}

async function main(): Promise<void> {
  log(
    `[bench] ${machine.cpuModel}, ${machine.cores} cores, load ${machine.loadAvgStart.join(' ')}; node ${versions.node}, tfjs ${versions.tfjs['tfjs-core']}`,
  );
  for (const b of requested) {
    if (!(await activate(b))) continue;
    if (runs('matmul')) benchMatMuls(b);
    if (opt.only === 'matmul') continue;
    if (b === 'cpu' && !opt['gpt-cpu']) {
      log('[bench] cpu gpt-bench and workloads skipped (about a minute per gpt-bench step); add --gpt-cpu to run them');
      continue;
    }
    if (b === 'wasm-stock' && !opt['gpt-stock']) {
      log('[bench] wasm-stock gpt-bench and workloads skipped (about 20 s per gpt-bench step); add --gpt-stock to run them');
      continue;
    }
    if (runs('gpt')) benchGpt(b, b === 'cpu' ? Number(opt['cpu-steps'] ?? 2) : steps);
    if (runs('workloads')) await benchWorkloads(b, b === 'cpu' ? Number(opt['cpu-steps'] ?? 2) : steps);
  }
  if (tf.findBackend('wasm')) {
    useStockKernels('wasm', false);
    setNativeBlasEnabled(true);
    setWasmGemmThreads(simdThreads);
    if (native.available) setNativeBlasThreads(nativeThreads);
  }

  if (!opt['no-peers'] && runs('gpt')) {
    const torch = runTorchPeer(peerDir, 1, 5);
    if (torch.ok) peers.push(torch.result);
    else log(`[bench] PyTorch peer skipped: ${torch.reason}`);
  }
  if (!opt['no-peers'] && workloadResults.length) {
    const ran = workloadNames.filter((n) => workloadResults.some((r) => r.name === n));
    for (const threads of [1, 2]) {
      const p = runTorchWorkloads(join(here, 'peers', 'workloads_torch.py'), threads, steps, ran, warmupS);
      if (!p.ok) {
        log(`[bench] PyTorch workload peer (${threads} thread${threads === 1 ? '' : 's'}) skipped: ${p.reason}`);
        continue;
      }
      workloadPeers.push({
        threads,
        info: p.info,
        command: p.command,
        results: p.results.map((r) => ({ ...r, msPerStep: median(r.msAll) })),
      });
      log(
        `[bench] PyTorch ${p.info.torch}, ${p.info.threads} thread${p.info.threads === 1 ? '' : 's'}, BLAS ${p.info.blas} (${p.info.blasLib ?? 'no BLAS library mapped'}; BLAS_INFO=${p.info.blasInfo}${p.info.blasThreads != null ? `; OpenBLAS threads ${p.info.blasThreads}` : ''})`,
      );
      for (const r of p.results) log(`[bench] torch ${threads}t ${r.name}: ${median(r.msAll).toFixed(1)} ms, ${r.params} params`);
    }
  }
  if (opt['peer-tfjs']) {
    const p = runTfjsPeer(peerDir, join(here, 'results', '.peer'), 3);
    if (p.ok) peers.push(p.result);
    else log(`[bench] tfjs peer skipped: ${p.reason}`);
  }

  const rows = [
    ['benchmark', 'backend', 'ms (median)', 'ms (min)', 'tokens/s', 'GFLOP/s', 'peak RSS MB'],
    ...results.map((r) => [
      r.name,
      r.backend,
      r.msPerStep.toFixed(2),
      r.msMin.toFixed(2),
      r.tokensPerSec ? r.tokensPerSec.toFixed(0) : '',
      r.gflops.toFixed(1),
      r.peakRssMB.toFixed(0),
    ]),
    ...(peers as { name: string; backend: string; msPerStep: number; tokensPerSec: number }[]).map((p) => [
      p.name,
      p.backend,
      p.msPerStep.toFixed(1),
      '',
      p.tokensPerSec.toFixed(0),
      '',
      '',
    ]),
  ];
  if (rows.length > 1) printTable(rows, 2);
  const wt = workloadTable();
  if (workloadResults.length) {
    console.log('');
    console.log(
      'workloads at batch 16: median ms per step (gen-2x64-cfg: per generation of 16 new tokens for 16 prompts); ratios > 1: ours slower',
    );
    const torchInfo = workloadPeers[0]?.info;
    if (torchInfo)
      console.log(`PyTorch peer: torch ${torchInfo.torch}, BLAS ${torchInfo.blas} (${torchInfo.blasLib}; BLAS_INFO=${torchInfo.blasInfo})`);
    printTable(wt.rows, 2);
  }

  const torch = peers.find((p) => (p as { backend: string }).backend.startsWith('pytorch')) as { msPerStep: number } | undefined;
  const ratios: Record<string, number> = {};
  if (torch) {
    for (const r of results.filter((x) => x.name === 'gpt-bench')) {
      ratios[r.backend] = r.msPerStep / torch.msPerStep;
      console.log(`gpt-bench ${r.backend} / PyTorch 1 thread: ${(r.msPerStep / torch.msPerStep).toFixed(2)}x`);
    }
  }
  const report = {
    date: new Date().toISOString(),
    nativeGemm: native,
    command: `pnpm bench ${process.argv.slice(2).join(' ')}`.trim(),
    versions,
    machine: { ...machine, loadAvgEnd: os.loadavg().map((x) => Number(x.toFixed(2))) },
    results,
    peers,
    ratioToPytorch: ratios,
    workloads: {
      batch: 16,
      steps,
      results: workloadResults,
      peers: workloadPeers,
      torch: workloadPeers[0]?.info ?? null,
      ratios: wt.ratios,
      table: wt.rows,
      paramMismatches: wt.mismatches,
    },
  };
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${outFile}`);
  if (wt.mismatches.length)
    throw new Error(`workload parameter counts differ between ours and the PyTorch peer: ${wt.mismatches.join('; ')}`);
}

await main();
