/**
 * saved_aliases.ts: with one gradient tape, the tensors tfjs saves for a gradient are new tensors on
 * the same data instead of engine clones (an Identity kernel call and two tape nodes each). The
 * gradients must have the same bits as with tfjs' clones, tensor and data-buffer counts must stay
 * flat over steps (a missing or extra reference would leak or free data still in use), a gradient
 * of a gradient (nested tapes) must still take tfjs' clone and match a closed form, and the kernel
 * calls it saves must be gone.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { savedTensorAliasesActive, setSavedTensorAliases } from '../../src/backend/saved_aliases.js';
import { GroupNorm, silu, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

afterAll(async () => useBackend('cpu'));

const bits = (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(t.dataSync() as Float32Array).buffer));

/** A small conv-like block: GroupNorm, SiLU, a matmul with a variable, a loss; its gradients' bits. */
function step(norm: GroupNorm, w: tf.Variable, x: tf.Tensor4D): number[][] {
  return tf.tidy(() => {
    const { grads, value } = tf.variableGrads(() => {
      const h = silu(norm.forward(x)) as tf.Tensor4D; // [2, 4, 4, 8]
      return h.reshape([32, 8]).matMul(w).square().mean() as tf.Scalar;
    });
    return [
      bits(value),
      ...Object.keys(grads)
        .sort()
        .map((k) => bits(grads[k]!)),
    ];
  });
}

describe('saved tensors as aliases (one gradient tape)', () => {
  for (const backend of ['wasm', 'cpu'] as const)
    it(`${backend}: the same gradient bits as tfjs' clones; tensors and data buffers flat over steps; no Identity calls`, async () => {
      await useBackend(backend);
      expect(savedTensorAliasesActive()).toBe(true); // initBackend installed it
      const norm = new GroupNorm(2, 8);
      const w = tf.variable(tf.randomNormal([8, 3], 0, 1, 'float32', 5));
      const x = tf.randomNormal([2, 4, 4, 8], 0, 1, 'float32', 6) as tf.Tensor4D;
      try {
        setSavedTensorAliases(false);
        const cloned = step(norm, w, x);
        setSavedTensorAliases(true);
        const aliased = step(norm, w, x);
        expect(aliased).toEqual(cloned);
        const eng = tf.engine() as unknown as { backend: { numDataIds(): number } };
        const before = [tf.memory().numTensors, eng.backend.numDataIds()];
        for (let i = 0; i < 5; i++) step(norm, w, x);
        expect([tf.memory().numTensors, eng.backend.numDataIds()]).toEqual(before);
        // the saved tensors no longer go through the Identity kernel
        let identities = 0;
        const k = tf.getKernel('Identity', backend)!;
        tf.unregisterKernel('Identity', backend);
        tf.registerKernel({
          ...k,
          kernelFunc: (a) => {
            identities++;
            return k.kernelFunc(a);
          },
        });
        try {
          step(norm, w, x);
          expect(identities).toBe(0);
          setSavedTensorAliases(false);
          step(norm, w, x);
          expect(identities).toBeGreaterThan(0);
        } finally {
          tf.unregisterKernel('Identity', backend);
          tf.registerKernel(k);
        }
      } finally {
        setSavedTensorAliases(true);
        tf.dispose([w, x, ...norm.parameters()]);
      }
    });

  it('a gradient of a gradient (nested tapes) still goes through the clones: the same bits as with the aliases off', async () => {
    for (const backend of ['wasm', 'cpu'] as const) {
      await useBackend(backend);
      const x = tf.tensor1d([-1.5, -0.2, 0.3, 1.1]);
      // d2/dx2 of sum(x^3) = 6x (through mul's saved inputs); a GroupNorm + SiLU chain (customGrad saves)
      const cubic = () =>
        tf.grad((a: tf.Tensor) =>
          tf
            .grad((b: tf.Tensor) => b.mul(b).mul(b).sum())(a)
            .sum(),
        )(x);
      const chain = () =>
        tf.grad((a: tf.Tensor) =>
          tf
            .grad((b: tf.Tensor) =>
              silu(b.reshape([1, 1, 2, 2]).exp())
                .square()
                .sum(),
            )(a)
            .square()
            .sum(),
        )(x);
      const on = [cubic(), chain()];
      setSavedTensorAliases(false);
      const off = [cubic(), chain()];
      setSavedTensorAliases(true);
      expect(on.map(bits)).toEqual(off.map(bits));
      const six = Array.from(on[0]!.dataSync());
      [-1.5, -0.2, 0.3, 1.1].forEach((v, i) => expect(six[i]).toBeCloseTo(6 * v, 5));
      tf.dispose([x, ...on, ...off]);
    }
  });
});
