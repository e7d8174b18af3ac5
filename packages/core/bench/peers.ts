/**
 * The peer implementations of gpt-bench (shared/peer/): PyTorch on the CPU and the same model on
 * stock TensorFlow.js, and the PyTorch peer of the experiment-shaped workloads
 * (bench/peers/workloads_torch.py), run as child processes so their numbers come from the same
 * machine and run.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface PeerResult {
  name: string;
  backend: string;
  msPerStep: number;
  tokensPerSec: number;
  params: number;
  command: string;
}

export type PeerOutcome = { ok: true; result: PeerResult } | { ok: false; reason: string };

const STEP_LINE = /step=([\d.]+)ms tokens\/s=(\d+) params=(\d+)/;

/**
 * The environment of a PyTorch peer at `threads` threads. torch.set_num_threads (what the peer
 * scripts call) bounds torch's own OpenMP pool only; Debian's torch (BLAS_INFO=generic) calls the
 * BLAS through libblas.so.3, and when that is OpenBLAS pthread every GEMM runs on all cores unless
 * OPENBLAS_NUM_THREADS says otherwise (measured 2026-12-06: gpt-bench's "1 thread" peer used both
 * cores, 3.9 s user + 3.0 s sys in 6.7 s, against 3.4 + 0.25 s with OPENBLAS_NUM_THREADS=1). So
 * every BLAS's thread count is set to the peer's.
 */
const THREAD_VARS = ['OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'] as const;

/**
 * glibc malloc settings of every peer: no trimming of the heap back to the kernel and large blocks
 * kept on the heap. With glibc's defaults, PyTorch's steps alternated between two speeds within one
 * run (measured 2026-12-08, 2-core AMD EPYC, 20 steps: latentlm-lm-4x128 96-290 ms, median 210-278;
 * lm-4x128-T60 92-166 ms) as freed activations went back to the kernel and came back as fresh,
 * page-faulting pages; with these, 96-102 and 91-93 ms medians, steady. (The peers' own numbers
 * should not depend on the allocator; the wasm side's heap grows once and is reused.) Other libcs
 * ignore the variables.
 */
export const PEER_MALLOC_ENV = {
  MALLOC_TRIM_THRESHOLD_: '4294967296',
  MALLOC_TOP_PAD_: '268435456',
  MALLOC_MMAP_THRESHOLD_: '33554432',
} as const;

export function peerEnv(threads: number): NodeJS.ProcessEnv {
  return { ...process.env, ...PEER_MALLOC_ENV, ...Object.fromEntries(THREAD_VARS.map((v) => [v, String(threads)])) };
}

/** The shell prefix that reproduces peerEnv in a printed command. */
const envPrefix = (threads: number) =>
  [...Object.entries(PEER_MALLOC_ENV).map(([k, v]) => `${k}=${v}`), ...THREAD_VARS.map((v) => `${v}=${threads}`)].join(' ');

/**
 * `python3 gpt_step_torch.py <threads> <steps>` with the first interpreter that has torch
 * (MMLM_PYTHON, then python3 on PATH, then /usr/bin/python3, where Debian's python3-torch lives).
 */
export function runTorchPeer(peerDir: string, threads = 1, steps = 5): PeerOutcome {
  const script = join(peerDir, 'gpt_step_torch.py');
  if (!existsSync(script)) return { ok: false, reason: `${script} not found` };
  const candidates = [process.env.MMLM_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  const reasons: string[] = [];
  for (const py of [...new Set(candidates)]) {
    const r = spawnSync(py, [script, String(threads), String(steps)], { encoding: 'utf8', timeout: 600_000, env: peerEnv(threads) });
    const m = STEP_LINE.exec(r.stdout ?? '');
    if (r.status === 0 && m) {
      return {
        ok: true,
        result: {
          name: 'gpt-bench',
          backend: `pytorch (${threads} thread${threads === 1 ? '' : 's'})`,
          msPerStep: Number(m[1]),
          tokensPerSec: Number(m[2]),
          params: Number(m[3]),
          command: `${envPrefix(threads)} ${py} ${script} ${threads} ${steps}`,
        },
      };
    }
    const err = (r.error?.message ?? r.stderr ?? '').trim().split('\n').pop() ?? '';
    reasons.push(`${py}: ${err || `exit ${r.status}`}`);
  }
  return { ok: false, reason: reasons.join('; ') };
}

export interface TorchInfo {
  torch: string;
  threads: number;
  /** BLAS_INFO of torch.__config__.show() ('generic' for Debian's build: it calls libblas.so.3). */
  blasInfo: string | null;
  /** The BLAS that libblas.so.3 resolved to at run time (OpenBLAS, MKL, or the library's path). */
  blas: string;
  blasLib: string | null;
  /** BLAS, LAPACK, oneDNN and OpenMP libraries mapped into the peer process, resolved. */
  libs: string[];
  /** OpenBLAS' thread count inside the peer (null for another BLAS or an older peer script). */
  blasThreads?: number | null;
}

export interface TorchWorkloadResult {
  name: string;
  params: number;
  msAll: number[];
  warmupMs: number;
  /** Untimed steps before msAll (peers older than --warmup-s report none). */
  warmupSteps?: number;
}

export type TorchWorkloadsOutcome =
  | { ok: true; info: TorchInfo; results: TorchWorkloadResult[]; command: string }
  | { ok: false; reason: string };

/**
 * `python3 bench/peers/workloads_torch.py --threads <n> --steps <s> --warmup-s <w> --only <names>`: the
 * PyTorch peer of the experiment-shaped workloads (bench/workloads.ts), warmed up by the same rule as
 * ours (at least 2 untimed steps, then until w seconds); the first interpreter with torch wins, as above.
 */
export function runTorchWorkloads(script: string, threads: number, steps: number, names: string[], warmupS: number): TorchWorkloadsOutcome {
  if (!existsSync(script)) return { ok: false, reason: `${script} not found` };
  const candidates = [process.env.MMLM_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  const reasons: string[] = [];
  const argv = [script, '--threads', String(threads), '--steps', String(steps), '--warmup-s', String(warmupS), '--only', names.join(',')];
  for (const py of [...new Set(candidates)]) {
    const r = spawnSync(py, argv, { encoding: 'utf8', timeout: 1_200_000, env: peerEnv(threads) });
    const lines = (r.stdout ?? '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const info = lines.find((l) => l.peer === 'torch') as unknown as TorchInfo | undefined;
    if (r.status === 0 && info) {
      const results = lines.filter((l) => typeof l.name === 'string') as unknown as TorchWorkloadResult[];
      return { ok: true, info, results, command: `${envPrefix(threads)} ${py} ${argv.join(' ')}` };
    }
    const err = (r.error?.message ?? r.stderr ?? '').trim().split('\n').pop() ?? '';
    reasons.push(`${py}: ${err || `exit ${r.status}`}`);
  }
  return { ok: false, reason: reasons.join('; ') };
}

/**
 * `node gpt_step_tfjs.mjs wasm <steps>` (stock tfjs-backend-wasm plus a JS UnsortedSegmentSum).
 * The script is copied next to this package's node_modules so that its tfjs imports resolve.
 */
export function runTfjsPeer(peerDir: string, workDir: string, steps = 3): PeerOutcome {
  const script = join(peerDir, 'gpt_step_tfjs.mjs');
  if (!existsSync(script)) return { ok: false, reason: `${script} not found` };
  mkdirSync(workDir, { recursive: true });
  const copy = join(workDir, 'gpt_step_tfjs.mjs');
  copyFileSync(script, copy);
  const r = spawnSync(process.execPath, [copy, 'wasm', String(steps)], { encoding: 'utf8', timeout: 1_800_000, cwd: dirname(copy) });
  const m = STEP_LINE.exec(r.stdout ?? '');
  if (r.status !== 0 || !m)
    return { ok: false, reason: (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join(' ') };
  return {
    ok: true,
    result: {
      name: 'gpt-bench',
      backend: 'tfjs-wasm stock (peer script)',
      msPerStep: Number(m[1]),
      tokensPerSec: Number(m[2]),
      params: Number(m[3]),
      command: `node ${script} wasm ${steps}`,
    },
  };
}
