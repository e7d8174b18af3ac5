/**
 * Backend selection against the real tfjs-node packages. This workspace lists them as optional
 * dependencies of tests/; where libtensorflow could not be downloaded at install time, loading
 * them fails and initBackend must fall back with the reason, or fail clearly when asked for them.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const here = resolve(import.meta.dirname);

function run(code: string, env: Record<string, string> = {}): { out: string; err: string; status: number } {
  try {
    // Runs the built package (turbo builds dependencies before this project's tests).
    const out = execFileSync('node', ['--input-type=module', '-e', code], {
      cwd: here,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { out, err: '', status: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; status: number };
    return { out: x.stdout, err: x.stderr, status: x.status };
  }
}

const IMPORT = `const { initBackend } = await import('@mmlm/core');`;

describe('initBackend', () => {
  it('auto-selects a working backend and logs why faster ones were skipped', async () => {
    const { initBackend, tf } = await import('@mmlm/core');
    const lines: string[] = [];
    const choice = await initBackend({ log: (l) => lines.push(l) });
    expect(['tensorflow', 'wasm', 'cpu']).toContain(choice.backend);
    expect(tf.getBackend()).toBe(choice.backend);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^\\[mmlm\\] backend: ${choice.backend}`));
    if (choice.backend !== 'tensorflow') {
      const tfSkip = choice.skipped.find((s) => s.candidate === 'tensorflow');
      expect(tfSkip?.reason).toMatch(/tfjs-node-gpu: (not installed|libtensorflow missing|CUDA library missing)/);
      expect(lines[0]).toContain('skipped tensorflow');
    }
    // A second call is a no-op and logs nothing new.
    await initBackend({ log: (l) => lines.push(l) });
    expect(lines).toHaveLength(1);
  });

  it('fails clearly when MMLM_BACKEND=tensorflow cannot load, saying what to install', async () => {
    const { initBackend, tf } = await import('@mmlm/core');
    let msg = '';
    try {
      const c = await initBackend({ backend: 'tensorflow', log: false });
      // libtensorflow is present on this machine: then the request must have been honoured
      expect(c.backend).toBe('tensorflow');
      expect(tf.getBackend()).toBe('tensorflow');
      return;
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/backend "tensorflow" was requested/);
    expect(msg).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
    expect(msg).toMatch(/Node <= 22/);
    expect(msg).toMatch(/npm i @tensorflow\/tfjs-node-gpu@4\.22\.0/);
  });

  it('rejects a log option that is neither a function nor false', async () => {
    const { initBackend } = await import('@mmlm/core');
    await expect(initBackend({ log: true as unknown as false })).rejects.toThrow(
      /initBackend: log must be a function \(line: string\) => void or false, got boolean true/,
    );
  });

  it('rejects an unknown backend name', async () => {
    const { initBackend } = await import('@mmlm/core');
    await expect(initBackend({ backend: 'metal' as 'cpu' })).rejects.toThrow(
      /unknown backend "metal"; expected one of tensorflow, wasm, cpu, webgpu/,
    );
  });

  it('honours MMLM_BACKEND in a fresh process', () => {
    const r = run(`${IMPORT} const c = await initBackend(); console.log('chose', c.backend);`, { MMLM_BACKEND: 'cpu' });
    expect(r.err).toBe('');
    expect(r.out).toMatch(/chose cpu/);
  });

  it('classifies load failures', async () => {
    const { classifyNodeBackendError } = await import('@mmlm/core');
    const nf = Object.assign(new Error("Cannot find module '@tensorflow/tfjs-node'"), { code: 'MODULE_NOT_FOUND' });
    expect(classifyNodeBackendError('@tensorflow/tfjs-node', nf)).toBe('not installed');
    expect(classifyNodeBackendError('@tensorflow/tfjs-node-gpu', new Error('libcudart.so.11.0: cannot open shared object file'))).toMatch(
      /^CUDA library missing/,
    );
    expect(
      classifyNodeBackendError('@tensorflow/tfjs-node', new Error('The Node.js native addon module (tfjs_binding.node) can not be found')),
    ).toMatch(/^libtensorflow missing/);
  });
});
