/**
 * Linear's inference shortcut (one _FusedMatMul call on x [..., in] as it is, taken on core's wasm
 * kernels while no gradient tape records) against the training path (reshape, matMul, add,
 * reshape): bit for bit over ranks 2-4, with and without bias, on each GEMM core has here; the
 * shortcut is not taken with the stock kernels swapped back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { coreKernelsActive, setNativeBlasEnabled, useStockKernels } from '../../src/backend/kernels/index.js';
import { nativeBlas } from '../../src/backend/kernels/native_blas.js';
import { Linear, Rng, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { bits, tapedForward } from '../kernels/helpers.js';

afterAll(async () => {
  setNativeBlasEnabled(true);
  await useBackend('cpu');
});

/** Kernel calls of one forward (engine.runKernel counted while it runs). */
function calls(f: () => tf.Tensor): number {
  const engine = tf.engine() as unknown as { runKernel: (...a: unknown[]) => unknown };
  const orig = engine.runKernel;
  let n = 0;
  engine.runKernel = (...a: unknown[]) => {
    n++;
    return orig.apply(engine, a);
  };
  try {
    f().dispose();
  } finally {
    engine.runKernel = orig;
  }
  return n;
}

describe('Linear inference on core wasm kernels', () => {
  it('equals the taped path bit for bit (ranks 2-4, bias or none, each GEMM) and is one kernel call', async () => {
    await useBackend('wasm');
    expect(coreKernelsActive('wasm')).toBe(true);
    const rng = new Rng(8);
    const n0 = tf.memory().numTensors;
    const gemms = nativeBlas() ? [true, false] : [false];
    for (const native of gemms) {
      setNativeBlasEnabled(native);
      for (const [inF, outF] of [
        [5, 3],
        [64, 192],
        [33, 7],
      ] as const) {
        for (const bias of [true, false]) {
          const m = new Linear(inF, outF, { bias, rng });
          if (m.bias) tf.tidy(() => m.bias!.assign(rng.randn([outF])));
          for (const shape of [
            [6, inF],
            [2, 5, inF],
            [2, 3, 4, inF],
          ]) {
            const x = rng.randn(shape);
            const fast = m.forward(x);
            const slow = tapedForward(m, x);
            expect(fast.shape).toEqual([...shape.slice(0, -1), outF]);
            expect(bits(fast), `native ${native}, ${inF}->${outF}, bias ${bias}, [${shape}]`).toEqual(bits(slow));
            fast.dispose();
            slow.dispose();
            x.dispose();
          }
          m.dispose();
        }
      }
    }
    setNativeBlasEnabled(true);
    const m = new Linear(4, 3);
    const x = tf.ones([2, 5, 4]);
    expect(calls(() => m.forward(x))).toBe(1);
    useStockKernels('wasm', true);
    try {
      expect(coreKernelsActive('wasm')).toBe(false);
      expect(calls(() => m.forward(x))).toBe(4); // reshape, matMul, add, reshape
    } finally {
      useStockKernels('wasm', false);
    }
    expect(coreKernelsActive('wasm')).toBe(true);
    m.dispose();
    x.dispose();
    expect(tf.memory().numTensors).toBe(n0);
  });
});
