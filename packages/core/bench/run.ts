/**
 * `pnpm bench`: the gpt-bench training step (shared/peer/GPT_BENCH.md) and the matmul variants it
 * runs, on every available backend, next to the PyTorch peer measured in the same run.
 *
 * Options:
 *   --backend <names>   comma-separated subset of wasm, wasm-simd, wasm-simd2, wasm-blas1,
 *                       wasm-stock, cpu, tensorflow (default: all that load). wasm runs core's
 *                       kernels as configured (the native GEMM when built); wasm-simd forces the
 *                       WebAssembly SIMD GEMM on one thread, wasm-simd2 on two (one worker);
 *                       wasm-blas1 the native GEMM on one thread; wasm-stock the stock tfjs kernels.
 *   --out <file>        JSON output (default bench/results/bench-results.json)
 *   --steps <n>         timed gpt-bench steps after one warm-up step (default 5)
 *   --reps <n>          timed calls per matmul variant after one warm-up call (default 7)
 *   --only <what>       matmul | gpt
 *   --gpt-cpu           also run gpt-bench on cpu (about a minute per step; --cpu-steps, default 2)
 *   --gpt-stock         also run gpt-bench on wasm-stock (about 20 s per step)
 *   --long <n>          after the timed steps, run n more and record RSS and tensor counts
 *   --profile           print per-kernel times of one gpt-bench step per backend
 *   --no-peers          skip the PyTorch peer;  --peer-tfjs  also run the stock tfjs peer script
 *   --peer-dir <dir>    folder of the peer scripts (default <repo>/../shared/peer)
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
import { initBackend, tf } from '../src/index.js';
import { GPT_BENCH, gptBenchFlops, makeGptBench } from './gpt.js';
import { MATMUL_CASES, timeMatMul } from './matmul.js';
import { runTfjsPeer, runTorchPeer } from './peers.js';
import { KernelProfiler } from './profile.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');

const { values: opt } = parseArgs({
  options: {
    backend: { type: 'string' },
    out: { type: 'string' },
    steps: { type: 'string' },
    reps: { type: 'string' },
    only: { type: 'string' },
    'gpt-cpu': { type: 'boolean', default: false },
    'cpu-steps': { type: 'string' },
    'gpt-stock': { type: 'boolean', default: false },
    long: { type: 'string' },
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
  : ALL.filter((b) => (native.available || (b !== 'wasm-simd' && b !== 'wasm-blas1')) && (b !== 'wasm-simd2' || os.cpus().length > 1));
for (const b of requested) if (!ALL.includes(b)) throw new Error(`--backend: unknown backend "${b}"; expected one of ${ALL.join(', ')}`);
const steps = Number(opt.steps ?? 5);
const reps = Number(opt.reps ?? 7);
const longSteps = Number(opt.long ?? 0);
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
const versions = { node: process.version, tfjs: tf.version as Record<string, string> };

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
  else kernels = `core kernels, WebAssembly SIMD GEMM (${wasmGemmThreads()} thread${wasmGemmThreads() === 1 ? '' : 's'})`;
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

async function main(): Promise<void> {
  log(
    `[bench] ${machine.cpuModel}, ${machine.cores} cores, load ${machine.loadAvgStart.join(' ')}; node ${versions.node}, tfjs ${versions.tfjs['tfjs-core']}`,
  );
  for (const b of requested) {
    if (!(await activate(b))) continue;
    if (opt.only !== 'gpt') benchMatMuls(b);
    if (opt.only === 'matmul') continue;
    if (b === 'cpu' && !opt['gpt-cpu']) {
      log('[bench] cpu gpt-bench skipped (about a minute per step); add --gpt-cpu to run it');
      continue;
    }
    if (b === 'wasm-stock' && !opt['gpt-stock']) {
      log('[bench] wasm-stock gpt-bench skipped (about 20 s per step); add --gpt-stock to run it');
      continue;
    }
    benchGpt(b, b === 'cpu' ? Number(opt['cpu-steps'] ?? 2) : steps);
  }
  if (tf.findBackend('wasm')) {
    useStockKernels('wasm', false);
    setNativeBlasEnabled(true);
    setWasmGemmThreads(simdThreads);
    if (native.available) setNativeBlasThreads(nativeThreads);
  }

  if (!opt['no-peers'] && opt.only !== 'matmul') {
    const torch = runTorchPeer(peerDir, 1, 5);
    if (torch.ok) peers.push(torch.result);
    else log(`[bench] PyTorch peer skipped: ${torch.reason}`);
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
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(rows[0]!));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));

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
  };
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${outFile}`);
}

await main();
