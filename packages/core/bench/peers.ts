/**
 * The peer implementations of gpt-bench (shared/peer/): PyTorch on the CPU and the same model on
 * stock TensorFlow.js, run as child processes so their numbers come from the same machine and run.
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
 * `python3 gpt_step_torch.py <threads> <steps>` with the first interpreter that has torch
 * (MMLM_PYTHON, then python3 on PATH, then /usr/bin/python3, where Debian's python3-torch lives).
 */
export function runTorchPeer(peerDir: string, threads = 1, steps = 5): PeerOutcome {
  const script = join(peerDir, 'gpt_step_torch.py');
  if (!existsSync(script)) return { ok: false, reason: `${script} not found` };
  const candidates = [process.env.MMLM_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  const reasons: string[] = [];
  for (const py of [...new Set(candidates)]) {
    const r = spawnSync(py, [script, String(threads), String(steps)], { encoding: 'utf8', timeout: 600_000 });
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
          command: `${py} ${script} ${threads} ${steps}`,
        },
      };
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
