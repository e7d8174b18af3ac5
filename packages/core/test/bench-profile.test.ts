/**
 * bench/profile.ts: the kernel profiler counts calls per kernel and, for matmuls, the shapes with
 * 2 x batch x M x N x K flops per call (transposes read from the attributes), and restores the
 * backend's kernels when it stops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelProfiler } from '../bench/profile.js';
import { tf } from '../src/index.js';
import { useBackend } from '../src/testing/index.js';

describe('KernelProfiler', () => {
  beforeAll(async () => useBackend('wasm'));
  afterAll(async () => useBackend('cpu'));

  it('lists matmul shapes with their flops, transposed operands marked', () => {
    const a = tf.ones([3, 4, 5]);
    const b = tf.ones([3, 5, 6]);
    const bt = tf.ones([3, 6, 5]);
    const w = tf.ones([7, 5]);
    const x = tf.ones([8, 5]);
    const p = new KernelProfiler(tf.getBackend());
    p.start();
    tf.tidy(() => {
      tf.matMul(a, b); // [3,4,5] x [3,5,6]: 2 * 3 * 4 * 6 * 5
      tf.matMul(a, b);
      tf.matMul(a, bt, false, true); // the same product, b transposed
      tf.matMul(x, w, false, true); // [8,5] x [7,5]^T: 2 * 8 * 7 * 5
      tf.matMul(x, x, true, false); // [8,5]^T x [8,5]: 2 * 5 * 5 * 8
    });
    const kernels = p.stop();
    const shapes = p.matmulShapes();
    const by = Object.fromEntries(shapes.map((s) => [s.shape, s]));
    expect(Object.keys(by).sort()).toEqual(['[3,4,5] x [3,5,6]', '[3,4,5] x [3,6,5]^T', '[8,5] x [7,5]^T', '[8,5]^T x [8,5]'].sort());
    expect(by['[3,4,5] x [3,5,6]']!.calls).toBe(2);
    expect(by['[3,4,5] x [3,5,6]']!.flops).toBe(720);
    expect(by['[3,4,5] x [3,6,5]^T']!.flops).toBe(720);
    expect(by['[8,5] x [7,5]^T']!.flops).toBe(560);
    expect(by['[8,5]^T x [8,5]']!.flops).toBe(400);
    for (const s of shapes) expect(s.gflops).toBeGreaterThan(0);
    expect(kernels.find((k) => k.kernel === 'BatchMatMul')?.calls).toBe(5);
    // stopped: a later matmul is not counted
    tf.tidy(() => tf.matMul(x, w, false, true));
    expect(p.matmulShapes().reduce((n, s) => n + s.calls, 0)).toBe(5);
    p.reset();
    expect(p.matmulShapes()).toEqual([]);
    for (const t of [a, b, bt, w, x]) t.dispose();
  });
});
