/** Exponential moving average of weights: shadow <- decay*shadow + (1-decay)*p. */
import type { Module } from '../nn/module.js';
import { tf } from '../tf.js';

export class EMA {
  private readonly shadow = new Map<string, tf.Variable>();

  constructor(
    private readonly module: Module,
    readonly decay = 0.999,
  ) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`EMA: decay must be in [0, 1), got ${decay}`);
    for (const [p, v] of module.namedParameters()) this.shadow.set(p, tf.variable(v.clone(), false));
  }

  update(): void {
    tf.tidy(() => {
      for (const [p, v] of this.module.namedParameters()) {
        const s = this.shadow.get(p);
        if (s) s.assign(s.mul(this.decay).add(v.mul(1 - this.decay)));
      }
    });
  }

  /** Copy the averaged weights into `target` (default: the tracked module). */
  copyTo(target: Module = this.module): void {
    target.loadStateDict(Object.fromEntries(this.shadow), { strict: false });
  }

  stateDict(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.shadow);
  }

  loadStateDict(sd: Record<string, tf.Tensor>): void {
    for (const [p, s] of this.shadow) {
      const t = sd[p];
      if (!t) throw new Error(`EMA.loadStateDict: missing ${p}`);
      if (t.shape.join() !== s.shape.join()) throw new Error(`EMA.loadStateDict: ${p} expected [${s.shape}] got [${t.shape}]`);
      s.assign(t);
    }
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
  }
}
