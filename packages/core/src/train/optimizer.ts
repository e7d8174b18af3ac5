/**
 * The contract between optimizers and checkpoints: an optimizer's state is a set of named tensors
 * (moments, buffers) plus JSON (step count, hyperparameters), as PyTorch's `Optimizer.state_dict()`
 * splits state into tensors and plain values.
 */
import type { tf } from '../tf.js';

export interface OptimizerStateDict {
  tensors: Record<string, tf.Tensor>;
  json: unknown;
}

/** An optimizer whose state can be saved and restored (AdamW in src/optim implements it). */
export interface StatefulOptimizer {
  /** The current state; the tensors may be the optimizer's own (the caller must not dispose them). */
  stateDict(): OptimizerStateDict;
  /** Copy a state in; the caller keeps ownership of `s.tensors`. */
  loadStateDict(s: OptimizerStateDict): void;
}
