/**
 * `pnpm --filter @mmlm/core bench:paired`: our step and the PyTorch peer's step of each
 * experiment-shaped workload (bench/workloads.ts, bench/peers/workloads_torch.py) timed in
 * interleaved blocks, so both sides see the same machine.
 *
 * Why: on a shared (virtual) machine the speed drifts by tens of percent from minute to minute (the
 * 2-core AMD EPYC, 2026-12-08: PyTorch's 16 px tokenizer step measured 10.6 ms in one process and
 * 16.0 ms in the next, same settings). `pnpm bench` and bench/rounds.sh time one side for a whole
 * workload, then the other, so a drift between them lands in the ratio. Here the peer runs as a
 * second process that waits on its stdin (`workloads_torch.py --serve`) while ours runs, and the two
 * alternate blocks of about --block-s seconds each (A B B A A B ...), both warmed up first by the same
 * rule as `pnpm bench` (at least 2 untimed steps, then until --warmup-s seconds). Each block gives
 * its median step; each pair of adjacent blocks (one of each side) gives one ratio, ours / peer; the
 * table shows the median of those ratios with their lowest and highest, beside the two sides' medians
 * over all their timed steps.
 *
 * Options:
 *   --backend <b>       wasm-simd (default: core's WebAssembly SIMD GEMM, the addon off), wasm-blas1
 *                       (the optional OpenBLAS addon) or wasm (as configured)
 *   --threads <n>       threads of both sides (default 1): our GEMM threads, torch's and its BLAS's
 *   --workloads <names> comma-separated subset (default all)
 *   --blocks <n>        blocks per side (default 8)
 *   --block-s <s>       seconds a block takes on our side (default 1; at least 3 steps a block)
 *   --warmup-s <s>      warm-up of each side (default 3)
 *   --out <file>        JSON output (default bench/results/paired-results.json)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  nativeBlasInfo,
  setNativeBlasEnabled,
  setNativeBlasThreads,
  setWasmGemmThreads,
  useStockKernels,
} from '../src/backend/kernels/index.js';
import { initBackend, tf } from '../src/index.js';
import { peerEnv } from './peers.js';
import { makeWorkload, WORKLOADS } from './workloads.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm-simd' },
    threads: { type: 'string', default: '1' },
    workloads: { type: 'string' },
    blocks: { type: 'string', default: '8' },
    'block-s': { type: 'string', default: '1' },
    'warmup-s': { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});

function num(name: string, v: string | undefined, min: number, integer: boolean): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got "${v}"`);
  return n;
}
const BACKENDS = ['wasm-simd', 'wasm-blas1', 'wasm'] as const;
const backend = opt.backend as (typeof BACKENDS)[number];
if (!BACKENDS.includes(backend)) throw new Error(`--backend: expected one of ${BACKENDS.join(', ')}, got "${opt.backend}"`);
const threads = num('threads', opt.threads, 1, true);
const blocks = num('blocks', opt.blocks, 2, true);
const blockS = num('block-s', opt['block-s'], 0.05, false);
const warmupS = num('warmup-s', opt['warmup-s'], 0, false);
const names = opt.workloads ? opt.workloads.split(',').map((s) => s.trim()) : WORKLOADS.map((w) => w.name);
for (const n of names)
  if (!WORKLOADS.some((w) => w.name === n))
    throw new Error(`--workloads: unknown workload "${n}"; expected some of ${WORKLOADS.map((w) => w.name).join(', ')}`);
const userCwd = process.env.INIT_CWD ?? process.cwd();
const outFile = opt.out ? resolve(userCwd, opt.out) : join(here, 'results', 'paired-results.json');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const log = (s: string) => process.stderr.write(`${s}\n`);

/** The PyTorch peer in --serve mode: one JSON line back for each command line. */
class Peer {
  private readonly lines: string[] = [];
  private waiting: ((l: string) => void) | null = null;
  private exited: string | null = null;
  readonly command: string;
  private constructor(
    private readonly proc: ChildProcess,
    command: string,
  ) {
    this.command = command;
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (!l.startsWith('{')) return;
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(l);
      } else this.lines.push(l);
    });
    let err = '';
    proc.stderr!.on('data', (d) => {
      err = (err + String(d)).slice(-2000);
    });
    proc.on('error', (e) => {
      // the interpreter could not be started (not installed, not executable)
      this.exited = `the peer did not start: ${e.message}`;
      if (this.waiting) this.waiting(JSON.stringify({ error: this.exited }));
    });
    proc.on('exit', (code) => {
      this.exited = `the peer exited (${code}): ${err.trim().split('\n').pop() ?? ''}`;
      if (this.waiting) this.waiting(JSON.stringify({ error: this.exited }));
    });
  }

  static start(py: string): Peer {
    const argv = [join(here, 'peers', 'workloads_torch.py'), '--threads', String(threads), '--serve'];
    const proc = spawn(py, argv, { env: peerEnv(threads), stdio: ['pipe', 'pipe', 'pipe'] });
    return new Peer(proc, `${py} ${argv.join(' ')}`);
  }

  next(): Promise<Record<string, unknown>> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l));
    if (this.exited) return Promise.resolve({ error: this.exited });
    return new Promise((res) => {
      this.waiting = (x) => res(JSON.parse(x));
    });
  }

  async ask(cmd: string): Promise<Record<string, unknown>> {
    this.proc.stdin!.write(`${cmd}\n`);
    const r = await this.next();
    if (typeof r.error === 'string') throw new Error(`PyTorch peer, "${cmd}": ${r.error}`);
    return r;
  }

  close(): void {
    this.proc.stdin!.end('quit\n');
  }
}

/** The first interpreter whose torch imports, as bench/peers.ts looks for one. */
async function startPeer(): Promise<{ peer: Peer; info: Record<string, unknown> }> {
  const reasons: string[] = [];
  for (const py of [...new Set([process.env.MMLM_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p))]) {
    const peer = Peer.start(py);
    const info = await peer.next();
    if (info.peer === 'torch') return { peer, info };
    reasons.push(`${py}: ${String(info.error ?? 'no torch line')}`);
    peer.close();
  }
  throw new Error(`no python with torch (set MMLM_PYTHON): ${reasons.join('; ')}`);
}

await initBackend({ backend: 'wasm', log: false });
useStockKernels('wasm', false);
const native = nativeBlasInfo();
if (backend === 'wasm-blas1' && !native.available)
  throw new Error('--backend wasm-blas1: the OpenBLAS addon is not built (pnpm --filter @mmlm/core build:native)');
setNativeBlasEnabled(backend !== 'wasm-simd');
setWasmGemmThreads(threads);
if (native.available) setNativeBlasThreads(threads);
const kernels =
  nativeBlasInfo().enabled && nativeBlasInfo().available
    ? `core kernels, native GEMM (${threads} thread${threads === 1 ? '' : 's'})`
    : `core kernels, WebAssembly SIMD GEMM (${threads} thread${threads === 1 ? '' : 's'})`;

const { peer, info } = await startPeer();
log(
  `[paired] ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} cores; node ${process.version}; ours: ${kernels}; ` +
    `PyTorch ${String(info.torch)} with ${String(info.blas)}, ${threads} thread${threads === 1 ? '' : 's'}`,
);

interface PairedResult {
  name: string;
  params: { ours: number; torch: number };
  stepsPerBlock: number;
  warmup: { ours: { steps: number; ms: number }; torch: { steps: number; ms: number } };
  /** Block medians in run order, and the order (true: ours first) of each pair. */
  oursBlocks: number[];
  torchBlocks: number[];
  oursFirst: boolean[];
  oursMs: number;
  torchMs: number;
  /** ours / torch per pair of blocks: median, lowest, highest. */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  oursAll: number[];
  torchAll: number[];
}
const results: PairedResult[] = [];
try {
  for (const name of names) {
    const w = await makeWorkload(name);
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    let wSteps = 0;
    while (wSteps < 2 || (wSteps < 500 && performance.now() - t0 < warmupS * 1000)) {
      w.step();
      wSteps++;
    }
    const oursWarmMs = performance.now() - t0;
    // steps a block: about block-s seconds of ours at the warm-up's last rate
    const t1 = performance.now();
    w.step();
    const oneMs = performance.now() - t1;
    const k = Math.max(3, Math.round((blockS * 1000) / oneMs));
    const tw = await peer.ask(`warm ${name} ${warmupS}`);
    const oursBlocks: number[] = [];
    const torchBlocks: number[] = [];
    const oursFirst: boolean[] = [];
    const oursAll: number[] = [];
    const torchAll: number[] = [];
    const ours = () => {
      const ts: number[] = [];
      for (let i = 0; i < k; i++) {
        const t = performance.now();
        w.step();
        ts.push(performance.now() - t);
      }
      oursAll.push(...ts);
      oursBlocks.push(median(ts));
    };
    const torch = async () => {
      const r = await peer.ask(`run ${name} ${k}`);
      const ts = r.msAll as number[];
      torchAll.push(...ts);
      torchBlocks.push(median(ts));
    };
    // A B, B A, A B, ...: each side goes first in half the pairs
    for (let b = 0; b < blocks; b++) {
      const first = b % 2 === 0;
      oursFirst.push(first);
      if (first) {
        ours();
        await torch();
      } else {
        await torch();
        ours();
      }
    }
    const after = tf.memory().numTensors;
    w.dispose();
    if (after !== before) throw new Error(`${name}: tensors ${before} -> ${after} over the timed steps (a leak)`);
    const ratios = oursBlocks.map((o, i) => o / torchBlocks[i]!);
    const r: PairedResult = {
      name,
      params: { ours: w.params, torch: Number(tw.params) },
      stepsPerBlock: k,
      warmup: { ours: { steps: wSteps, ms: oursWarmMs }, torch: { steps: Number(tw.warmupSteps), ms: Number(tw.warmupMs) } },
      oursBlocks,
      torchBlocks,
      oursFirst,
      oursMs: median(oursAll),
      torchMs: median(torchAll),
      ratio: median(ratios),
      ratioMin: Math.min(...ratios),
      ratioMax: Math.max(...ratios),
      oursAll,
      torchAll,
    };
    results.push(r);
    log(
      `[paired] ${name}: ours ${r.oursMs.toFixed(1)} ms, torch ${r.torchMs.toFixed(1)} ms, ratio ${r.ratio.toFixed(2)}x ` +
        `(pairs ${r.ratioMin.toFixed(2)}-${r.ratioMax.toFixed(2)}; ${blocks} x ${k} steps a side)`,
    );
  }
} finally {
  peer.close();
}

const pad = (s: string, n: number) => s.padEnd(n);
const rows = results.map((r) => [
  r.name,
  `${r.params.ours} / ${r.params.torch}`,
  r.oursMs.toFixed(1),
  r.torchMs.toFixed(1),
  `${r.ratio.toFixed(2)}x`,
  `${r.ratioMin.toFixed(2)}-${r.ratioMax.toFixed(2)}`,
]);
const head = ['workload', 'params ours / torch', 'ours ms', 'torch ms', 'ratio (median of pairs)', 'pairs lowest-highest'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
console.log(`paired blocks, ${threads} thread${threads === 1 ? '' : 's'} a side; ours: ${kernels}; ratios > 1: ours slower`);
console.log(head.map((h, i) => pad(h, widths[i]!)).join('  '));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(r.map((c, i) => (i < 2 ? pad(c, widths[i]!) : c.padStart(widths[i]!))).join('  '));

mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      command: `bench/paired.ts ${process.argv.slice(2).join(' ')}`,
      machine: { cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version },
      ours: kernels,
      peer: { ...info, command: peer.command },
      settings: { threads, blocks, blockS, warmupS },
      results,
    },
    null,
    1,
  )}\n`,
);
console.log(`results written to ${outFile}`);
