import { describe, expect, it } from 'vitest';
import { tf } from '../src/index.js';
import { checkGradients, useBackend } from '../src/testing/index.js';

describe('checkGradients', () => {
  it('accepts a correct gradient and rejects a wrong one', async () => {
    await useBackend('cpu');
    const x = tf.tensor1d([0.3, -1.2, 2.0]);
    expect(checkGradients(([a]) => a!.square().sum(), [x]).checked).toBe(3);
    // A custom op whose declared gradient is wrong by a factor 2 must be caught.
    const wrong = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [a, save] = args as [tf.Tensor, tf.GradSaveFunc];
      save([a]);
      return { value: a.square().sum(), gradFunc: (dy: tf.Tensor, [s]: tf.Tensor[]) => dy.mul(s!).mul(4) };
    });
    expect(() => checkGradients(([a]) => wrong(a!) as tf.Scalar, [x])).toThrow(/disagree/);
  });
});
