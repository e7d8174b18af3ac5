/** Parameter initialisers; every one draws from a seeded Rng. */
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';

export type Init =
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; bound: number }
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  /** PyTorch nn.Linear default: U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
  | { kind: 'torch_default' }
  | { kind: 'xavier_uniform'; gain?: number };

export function initTensor(shape: number[], init: Init, rng: Rng, fanIn: number, fanOut: number): tf.Tensor {
  switch (init.kind) {
    case 'normal':
      return rng.randn(shape, init.mean ?? 0, init.std);
    case 'uniform':
      return rng.rand(shape, -init.bound, init.bound);
    case 'zeros':
      return tf.zeros(shape);
    case 'ones':
      return tf.ones(shape);
    case 'constant':
      return tf.fill(shape, init.value);
    case 'torch_default': {
      const b = 1 / Math.sqrt(Math.max(1, fanIn));
      return rng.rand(shape, -b, b);
    }
    case 'xavier_uniform': {
      const b = (init.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
      return rng.rand(shape, -b, b);
    }
  }
}
