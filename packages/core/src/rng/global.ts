/**
 * The default stream for parameter initialisation when a layer is not given an `rng`
 * (PyTorch's torch.manual_seed). Models that must be reproducible pass their own Rng.
 */
import { Rng } from './index.js';

let global = new Rng(0);

/** Reseed the default stream. */
export function manualSeed(seed: number): void {
  global = new Rng(seed);
}

export function defaultRng(): Rng {
  return global;
}
