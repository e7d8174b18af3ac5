/**
 * Exponential moving average of a module's parameters (Polyak averaging as timm's ModelEmaV2 /
 * diffusers' EMAModel without decay warmup): shadow <- decay * shadow + (1 - decay) * p, for every
 * parameter (frozen ones too, so the averaged model is complete). Shadows are keyed by dotted path.
 */
import type { Module } from '../nn/module.js';
import { tf } from '../tf.js';

export class EMA {
  readonly decay: number;
  /** Number of update() calls. */
  updates = 0;
  private readonly shadow = new Map<string, tf.Variable>();

  constructor(
    private readonly module: Module,
    decay = 0.999,
  ) {
    checkDecay('EMA', decay);
    this.decay = decay;
    for (const [p, v] of module.namedParameters()) {
      const c = v.clone();
      this.shadow.set(p, tf.variable(c, false));
      c.dispose();
    }
  }

  /** One averaging step (optionally with another decay, e.g. from a warmup rule). No host reads. */
  update(decay = this.decay): void {
    checkDecay('EMA.update', decay);
    const params = this.params(this.module, 'EMA.update');
    tf.tidy(() => {
      for (const [p, s] of this.shadow) s.assign(s.mul(decay).add(params.get(p)!.mul(1 - decay)));
    });
    this.updates += 1;
  }

  /** Copy the averaged weights into `target`'s parameters of the same paths (default: the tracked module). */
  copyTo(target: Module = this.module): void {
    const params = this.params(target, 'EMA.copyTo');
    for (const [p, s] of this.shadow) params.get(p)!.assign(s);
  }

  /** Exchange the module's weights and the averages (evaluate with the averages, then swap back). */
  swap(): void {
    const params = this.params(this.module, 'EMA.swap');
    tf.tidy(() => {
      for (const [p, s] of this.shadow) {
        const v = params.get(p)!;
        const tmp = v.clone();
        v.assign(s);
        s.assign(tmp);
      }
    });
  }

  /** The averages by dotted path (the EMA's own variables: read, do not dispose). */
  stateDict(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.shadow);
  }

  /** Copy averages in; every missing, unexpected or mis-shaped key is reported in one error. */
  loadStateDict(sd: Record<string, tf.Tensor>): void {
    const problems: string[] = [];
    for (const [p, s] of this.shadow) {
      const t = sd[p];
      if (!t) problems.push(`missing ${p}`);
      else if (t.shape.join() !== s.shape.join() || t.rank !== s.rank) problems.push(`${p} expected shape [${s.shape}] got [${t.shape}]`);
      else if (t.dtype !== s.dtype) problems.push(`${p} expected ${s.dtype} got ${t.dtype}`);
    }
    const unexpected = Object.keys(sd).filter((k) => !this.shadow.has(k));
    if (unexpected.length) problems.push(`unexpected ${unexpected.join(', ')}`);
    if (problems.length) throw new Error(`EMA.loadStateDict: ${problems.join('; ')}`);
    for (const [p, s] of this.shadow) s.assign(sd[p]!);
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
  }

  /** `m`'s parameters by path, checked to cover every shadow with the same shape. */
  private params(m: Module, who: string): Map<string, tf.Variable> {
    const params = new Map(m.namedParameters());
    const problems: string[] = [];
    for (const [p, s] of this.shadow) {
      const v = params.get(p);
      if (!v) problems.push(`missing parameter ${p}`);
      else if (v.shape.join() !== s.shape.join() || v.rank !== s.rank) problems.push(`${p} expected shape [${s.shape}] got [${v.shape}]`);
    }
    if (problems.length) throw new Error(`${who}: ${m.constructor.name} does not match the averaged parameters: ${problems.join('; ')}`);
    return params;
  }
}

function checkDecay(who: string, decay: number): void {
  if (!(typeof decay === 'number' && decay >= 0 && decay < 1)) throw new Error(`${who}: decay must be in [0, 1), got ${decay}`);
}
