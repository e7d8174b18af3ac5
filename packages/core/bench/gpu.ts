/**
 * `pnpm --filter @mmlm/core bench:gpu`: the GPU comparison of issue 18. The gpt-bench step, the
 * core-built experiment-shaped workloads (decoder steps at the lab's shapes, CFG generation with a
 * KV cache) and gpt-bench's matmul variants, on the opt-in `webgpu` backend and on `wasm` in the
 * same process, with every read-back awaited (webgpu cannot read synchronously in Node), next to the
 * PyTorch peer (bench/peers/workloads_torch.py, which builds gpt-bench as shared/peer's script does)
 * on CUDA and on the CPU, run in the same call. Prints a table and writes JSON.
 *
 * The workloads that are a paper package's own training step (Liquid's tokenizer, LatentLM's ViT VAE
 * and backbone, MaskLLM's mask step) read their loss synchronously and are not run here.
 *
 * Options:
 *   --backends <names>   comma-separated, in order (default webgpu,wasm)
 *   --steps <n>          timed steps per workload (default 10) after --warmup untimed ones (default 3:
 *                        webgpu compiles its shaders on first use)
 *   --reps <n>           timed calls per matmul variant (default 20)
 *   --workloads <names>  subset of gpt-bench and the core workloads below (default all)
 *   --peer <devices>     comma-separated torch devices for the peer: cuda, cpu (default cuda,cpu;
 *                        `none` skips it); the cpu peer uses every core
 *   --out <file>         JSON (default bench/results/gpu-results.json)
 *   --tf-flags <k=v,..>  TensorFlow.js flags set after each backend starts, e.g.
 *                        WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=64 (numbers and true/false are parsed)
 *   --overhead           also count the kernels of one step per workload (tf.profile) and time a
 *                        chain of 1,000 small element-wise ops and 20 awaited scalar reads: where a
 *                        GPU backend's step time goes when its kernels are small
 * Environment: MMLM_PYTHON picks the interpreter that has torch (default python3).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, tf } from '../src/index.js';
import { GPT_BENCH, GPT_BENCH_PARAMS, gptBenchFlops, makeGptBench } from './gpt.js';
import { MATMUL_CASES } from './matmul.js';
import { makeWorkload, WORKLOAD_BATCH } from './workloads.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The core-built workloads (no paper package: each has an awaited step). */
export const GPU_WORKLOADS = ['gpt-bench', 'lm-2x64-T20', 'lm-2x64-T60', 'lm-4x128-T20', 'lm-4x128-T60', 'gen-2x64-cfg'] as const;

const { values: opt } = parseArgs({
  options: {
    backends: { type: 'string', default: 'webgpu,wasm' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    reps: { type: 'string', default: '20' },
    workloads: { type: 'string' },
    peer: { type: 'string', default: 'cuda,cpu' },
    out: { type: 'string' },
    'tf-flags': { type: 'string' },
    overhead: { type: 'boolean', default: false },
  },
});

const positiveInt = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got "${v}"`);
  return n;
};
const steps = positiveInt('steps', opt.steps);
const warmup = positiveInt('warmup', opt.warmup);
const reps = positiveInt('reps', opt.reps);
const backends = opt.backends.split(',').map((s) => s.trim());
for (const b of backends)
  if (b !== 'webgpu' && b !== 'wasm' && b !== 'cpu') throw new Error(`--backends: expected some of webgpu, wasm, cpu; got "${b}"`);
const workloads = opt.workloads ? opt.workloads.split(',').map((s) => s.trim()) : [...GPU_WORKLOADS];
for (const w of workloads)
  if (!(GPU_WORKLOADS as readonly string[]).includes(w))
    throw new Error(`--workloads: unknown "${w}"; expected some of ${GPU_WORKLOADS.join(', ')}`);
const peerDevices = opt.peer === 'none' ? [] : opt.peer.split(',').map((s) => s.trim());
for (const d of peerDevices) if (d !== 'cuda' && d !== 'cpu') throw new Error(`--peer: expected cuda, cpu or none; got "${d}"`);
const tfFlags: [string, number | boolean][] = (opt['tf-flags'] ?? '')
  .split(',')
  .filter((s) => s.trim() !== '')
  .map((kv) => {
    const m = /^\s*([A-Z0-9_]+)=(.+?)\s*$/.exec(kv);
    if (!m) throw new Error(`--tf-flags: expected NAME=value, got "${kv}"`);
    const v = m[2] as string;
    const parsed = v === 'true' ? true : v === 'false' ? false : Number(v);
    if (typeof parsed === 'number' && !Number.isFinite(parsed))
      throw new Error(`--tf-flags: ${m[1]}: expected a number or true/false, got "${v}"`);
    return [m[1] as string, parsed];
  });
const userCwd = process.env.INIT_CWD ?? process.cwd();
const outFile = opt.out ? resolve(userCwd, opt.out) : join(here, 'results', 'gpu-results.json');

const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const round = (x: number, d = 2) => Number(x.toFixed(d));

interface Row {
  name: string;
  backend: string;
  params: number;
  msPerStep: number;
  msAll: number[];
  warmupMs: number;
  itemsPerSec: number;
  itemName: string;
  lastValue: number;
  numTensorsBefore: number;
  numTensorsAfter: number;
  /** --overhead: kernels one step launches (tf.profile) and the median step time per kernel */
  kernelsPerStep?: number;
  msPerKernel?: number;
}
interface MatRow {
  name: string;
  backend: string;
  msPerCall: number;
  gflops: number;
}

/** A timed workload: gpt-bench or one of core's, with its awaited step. */
async function timedWorkload(
  name: string,
): Promise<{ params: number; items: number; itemName: string; step: () => Promise<number>; dispose: () => void }> {
  if (name === 'gpt-bench') {
    const g = makeGptBench(0);
    return { params: g.params, items: GPT_BENCH.B * GPT_BENCH.T, itemName: 'tokens', step: g.stepAsync, dispose: g.dispose };
  }
  const w = await makeWorkload(name);
  if (!w.stepAsync) throw new Error(`${name}: no awaited step`);
  return { params: w.params, items: w.items, itemName: w.itemName, step: w.stepAsync, dispose: w.dispose };
}

async function benchBackend(label: string): Promise<{ rows: Row[]; mats: MatRow[] }> {
  const rows: Row[] = [];
  const mats: MatRow[] = [];
  for (const name of workloads) {
    const w = await timedWorkload(name);
    const t0 = performance.now();
    for (let i = 0; i < warmup; i++) await w.step();
    const warmupMs = performance.now() - t0;
    const before = tf.memory().numTensors;
    const times: number[] = [];
    let last = 0;
    for (let i = 0; i < steps; i++) {
      const t = performance.now();
      last = await w.step();
      times.push(performance.now() - t);
    }
    const after = tf.memory().numTensors;
    let kernels: number | undefined;
    if (opt.overhead) {
      const info = await tf.profile(async () => {
        await w.step();
      });
      kernels = info.kernels.length;
    }
    w.dispose();
    const ms = median(times);
    rows.push({
      name,
      backend: label,
      params: w.params,
      msPerStep: round(ms),
      msAll: times.map((x) => round(x)),
      warmupMs: round(warmupMs),
      itemsPerSec: Math.round((w.items / ms) * 1000),
      itemName: w.itemName,
      lastValue: last,
      numTensorsBefore: before,
      numTensorsAfter: after,
      ...(kernels !== undefined ? { kernelsPerStep: kernels, msPerKernel: round(ms / kernels, 4) } : {}),
    });
    log(
      `[gpu-bench] ${label} ${name}: ${ms.toFixed(2)} ms/step (warm-up ${warmupMs.toFixed(0)} ms), last ${last.toFixed(4)}, tensors ${before} -> ${after}${kernels !== undefined ? `, ${kernels} kernels a step, ${(ms / kernels).toFixed(3)} ms each` : ''}`,
    );
  }
  let overhead: Overhead | undefined;
  if (opt.overhead) {
    overhead = await measureOverhead();
    log(`[gpu-bench] ${label} overhead: ${JSON.stringify(overhead)}`);
  }
  // matmuls: `reps` calls queued back to back, then one awaited scalar read (a GPU backend runs them
  // asynchronously; on wasm each call finishes before it returns); the time per call
  for (const c of MATMUL_CASES) {
    const a = tf.randomNormal(c.a, 0, 1, 'float32', 1);
    const m = tf.randomNormal(c.b, 0, 1, 'float32', 2);
    const once = async (n: number) => {
      const t0 = performance.now();
      let y: tf.Tensor | null = null;
      for (let i = 0; i < n; i++) {
        y?.dispose();
        y = tf.matMul(a, m, c.transposeA, c.transposeB);
      }
      const s = tf.sum(y as tf.Tensor);
      await s.data();
      s.dispose();
      y?.dispose();
      return (performance.now() - t0) / n;
    };
    await once(2);
    const ms = await once(reps);
    a.dispose();
    m.dispose();
    mats.push({ name: c.name, backend: label, msPerCall: round(ms, 3), gflops: round(c.flops / ms / 1e6, 1) });
  }
  return { rows, mats, ...(overhead ? { overhead } : {}) };
}

interface Overhead {
  /** a chain of 1,000 element-wise adds on [16, 64] (each waits on the previous), one awaited read */
  msPerSmallOp: number;
  /** 20 awaited reads of a fresh scalar, each after one tiny op */
  msPerAwaitedRead: number;
}

/** Per-kernel launch cost and read-back latency, apart from any model. */
async function measureOverhead(): Promise<Overhead> {
  const b = tf.randomNormal([16, 64], 0, 1, 'float32', 3);
  const chain = async (n: number) => {
    const t0 = performance.now();
    let a = tf.zeros([16, 64]);
    for (let i = 0; i < n; i++) {
      const next = tf.add(a, b);
      a.dispose();
      a = next;
    }
    const s = tf.sum(a);
    await s.data();
    s.dispose();
    a.dispose();
    return (performance.now() - t0) / n;
  };
  await chain(50);
  const msPerSmallOp = await chain(1000);
  const reads = async (n: number) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = tf.sum(b);
      await s.data();
      s.dispose();
    }
    return (performance.now() - t0) / n;
  };
  await reads(3);
  const msPerAwaitedRead = await reads(20);
  b.dispose();
  return { msPerSmallOp: round(msPerSmallOp, 4), msPerAwaitedRead: round(msPerAwaitedRead, 3) };
}

interface PeerRun {
  device: string;
  command: string;
  info: Record<string, unknown> | null;
  results: { name: string; params: number; msAll: number[]; warmupMs: number; msPerStep: number }[];
  error?: string;
}

function runPeer(device: string): PeerRun {
  const script = join(here, 'peers', 'workloads_torch.py');
  const py = process.env.MMLM_PYTHON ?? 'python3';
  const threads = device === 'cpu' ? os.cpus().length : 1;
  const argv = [
    script,
    '--device',
    device,
    '--threads',
    String(threads),
    '--steps',
    String(steps),
    '--warmup',
    String(warmup),
    '--only',
    workloads.join(','),
  ];
  const command = `${py} ${argv.join(' ')}`;
  log(`[gpu-bench] peer: ${command}`);
  const r = spawnSync(py, argv, { encoding: 'utf8', timeout: 1_200_000 });
  const lines = (r.stdout ?? '')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const info = lines.find((l) => l.peer === 'torch') ?? null;
  const results = lines
    .filter((l) => typeof l.name === 'string')
    .map((l) => {
      const x = l as unknown as { name: string; params: number; msAll: number[]; warmupMs: number };
      return { ...x, msPerStep: round(median(x.msAll)) };
    });
  if (r.status !== 0 || !info) {
    const error = (r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-3).join(' ') || `exit ${r.status}`;
    log(`[gpu-bench] peer ${device} failed: ${error}`);
    return { device, command, info, results, error };
  }
  return { device, command, info, results };
}

async function main(): Promise<void> {
  const runs: { backend: string; label: string; adapter?: unknown; rows: Row[]; mats: MatRow[]; overhead?: Overhead }[] = [];
  const unavailable: { backend: string; error: string }[] = [];
  for (const b of backends) {
    let choice: Awaited<ReturnType<typeof initBackend>>;
    try {
      choice = await initBackend({ backend: b, log });
    } catch (e) {
      // the others still run; the JSON and the log say why this one did not
      const error = (e as Error).message;
      log(`[gpu-bench] ${b}: not available: ${error}`);
      unavailable.push({ backend: b, error });
      continue;
    }
    const label =
      b === 'webgpu' && choice.adapter
        ? `webgpu (${[choice.adapter.vendor, choice.adapter.architecture].filter(Boolean).join(' ')}${choice.adapter.description ? `, ${choice.adapter.description}` : ''})`
        : b;
    // a backend's own flags are registered when its module loads: one not registered here is skipped
    const setFlags = tfFlags.filter(([k, v]) => {
      try {
        tf.env().set(k, v);
        return true;
      } catch (e) {
        log(`[gpu-bench] ${b}: flag ${k} not set: ${(e as Error).message}`);
        return false;
      }
    });
    log(`[gpu-bench] backend ${label}${setFlags.length ? ` (flags ${setFlags.map(([k, v]) => `${k}=${v}`).join(', ')})` : ''}`);
    const r = await benchBackend(label);
    runs.push({ backend: b, label, ...(choice.adapter ? { adapter: choice.adapter } : {}), ...r });
  }
  const peers = peerDevices.map(runPeer);
  for (const p of peers)
    for (const r of p.results) {
      const ours = runs[0]?.rows.find((x) => x.name === r.name);
      if (ours && ours.params !== r.params) throw new Error(`${r.name}: ${ours.params} parameters here, ${r.params} in the torch peer`);
    }

  // the table: one row per workload, one column per backend and peer
  const cols = [
    ...runs.map((r) => r.label),
    ...peers.map((p) => `torch ${p.device}${p.device === 'cpu' ? ` (${os.cpus().length} threads)` : ''}`),
  ];
  const out: string[] = [];
  // the last step's loss (or generation checksum) on each backend: the same seeds and steps, so the
  // backends must agree (to float32 rounding for losses, exactly for the sampled ids' checksum)
  out.push(
    `| workload (batch ${WORKLOAD_BATCH}; gpt-bench ${GPT_BENCH.B}), median ms | params | ${cols.join(' | ')} | last value (${runs.map((r) => r.backend).join(' / ')}) |`,
  );
  out.push(`| --- | ---: | ${cols.map(() => '---:').join(' | ')} | ---: |`);
  for (const name of workloads) {
    const params = runs[0]?.rows.find((x) => x.name === name)?.params ?? (name === 'gpt-bench' ? GPT_BENCH_PARAMS : 0);
    const cells = [
      ...runs.map((r) => r.rows.find((x) => x.name === name)?.msPerStep.toFixed(2) ?? '-'),
      ...peers.map((p) => p.results.find((x) => x.name === name)?.msPerStep.toFixed(2) ?? '-'),
    ];
    const lasts = runs.map((r) => {
      const v = r.rows.find((x) => x.name === name)?.lastValue;
      return v === undefined ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(5);
    });
    out.push(`| ${name} | ${params.toLocaleString('en-US')} | ${cells.join(' | ')} | ${lasts.join(' / ')} |`);
  }
  out.push('');
  out.push(`| matmul (gpt-bench shapes), GFLOP/s | ${runs.map((r) => r.label).join(' | ')} |`);
  out.push(`| --- | ${runs.map(() => '---:').join(' | ')} |`);
  for (const c of MATMUL_CASES)
    out.push(`| ${c.name} | ${runs.map((r) => r.mats.find((m) => m.name === c.name)?.gflops ?? '-').join(' | ')} |`);
  console.log(out.join('\n'));

  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(
    outFile,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: {
          cpuModel: os.cpus()[0]?.model ?? 'unknown',
          cores: os.cpus().length,
          platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        },
        versions: { node: process.version, tfjs: tf.version_core },
        settings: { steps, warmup, reps, workloads, tfFlags: Object.fromEntries(tfFlags) },
        gptBenchFlops: gptBenchFlops(GPT_BENCH_PARAMS),
        runs,
        unavailable,
        peers,
        table: out.join('\n'),
      },
      null,
      2,
    )}\n`,
  );
  log(`[gpu-bench] wrote ${outFile}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
