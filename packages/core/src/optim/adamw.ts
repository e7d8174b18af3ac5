/**
 * AdamW (Loshchilov & Hutter 2019) exactly as torch.optim.AdamW:
 *   p <- p - lr*wd*p;  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
 *   p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * with parameter groups (lr multiplier, own weight decay). State is keyed by the parameter's dotted
 * path, so it survives a process restart (checkpoints).
 */
import type { Module } from '../nn/module.js';
import { tf } from '../tf.js';

export interface ParamGroup {
  /** Parameters as [dotted path, variable]. */
  params: [string, tf.Variable][];
  /** Multiplies the optimizer's lr (e.g. MaskLLM's logits multiplier). Default 1. */
  lrMultiplier?: number;
  /** Overrides the optimizer's weight decay (0 for biases and norm gains). */
  weightDecay?: number;
}

export interface AdamWOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface OptimizerState {
  tensors: Record<string, tf.Tensor>;
  json: unknown;
}

/** Groups a module's trainable parameters: no weight decay for rank < 2 (biases, norm gains) by default. */
export function paramGroups(
  module: Module,
  opts: { noDecay?: (path: string, v: tf.Variable) => boolean; lrMultipliers?: [(path: string) => boolean, number][] } = {},
): ParamGroup[] {
  const noDecay = opts.noDecay ?? ((_p: string, v: tf.Variable) => v.rank < 2);
  const groups = new Map<string, ParamGroup>();
  for (const [path, v] of module.namedTrainableParameters()) {
    const mult = opts.lrMultipliers?.find(([f]) => f(path))?.[1] ?? 1;
    const nd = noDecay(path, v);
    const key = `${mult}|${nd}`;
    if (!groups.has(key)) groups.set(key, { params: [], lrMultiplier: mult, ...(nd ? { weightDecay: 0 } : {}) });
    groups.get(key)!.params.push([path, v]);
  }
  return [...groups.values()];
}

interface Slot {
  path: string;
  v: tf.Variable;
  m: tf.Variable;
  s: tf.Variable; // second moment
  lrMult: number;
  wd: number;
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of steps taken. */
  t = 0;
  private readonly slots: Slot[] = [];
  private readonly byPath = new Map<string, Slot>();
  private readonly byVar = new Map<tf.Variable, Slot>();

  constructor(params: ParamGroup[] | [string, tf.Variable][] | Module, opts: AdamWOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    for (const [name, x] of [
      ['lr', this.lr],
      ['eps', this.eps],
      ['weightDecay', this.weightDecay],
    ] as const)
      if (!(x >= 0 && Number.isFinite(x))) throw new Error(`AdamW: ${name} must be a finite number >= 0, got ${x}`);
    for (const [name, b] of [
      ['beta1', this.beta1],
      ['beta2', this.beta2],
    ] as const)
      if (!(b >= 0 && b < 1)) throw new Error(`AdamW: ${name} must be in [0, 1), got ${b}`);
    const groups: ParamGroup[] =
      params instanceof Object && 'namedTrainableParameters' in params
        ? [{ params: (params as Module).namedTrainableParameters() }]
        : Array.isArray(params) && params.length > 0 && Array.isArray(params[0])
          ? [{ params: params as [string, tf.Variable][] }]
          : (params as ParamGroup[]);
    for (const g of groups) {
      for (const [path, v] of g.params) {
        if (this.byPath.has(path)) throw new Error(`AdamW: parameter "${path}" appears twice`);
        const slot: Slot = {
          path,
          v,
          m: tf.variable(tf.zerosLike(v), false),
          s: tf.variable(tf.zerosLike(v), false),
          lrMult: g.lrMultiplier ?? 1,
          wd: g.weightDecay ?? this.weightDecay,
        };
        this.slots.push(slot);
        this.byPath.set(path, slot);
        this.byVar.set(v, slot);
      }
    }
  }

  /** Paths of the parameters this optimizer updates. */
  paths(): string[] {
    return this.slots.map((s) => s.path);
  }

  setLr(lr: number): void {
    if (!(lr >= 0 && Number.isFinite(lr))) throw new Error(`AdamW.setLr: lr must be a finite number >= 0, got ${lr}`);
    this.lr = lr;
  }

  /**
   * One update from gradients keyed by path (Record or Map) or by variable (Map). Parameters
   * without a gradient are left unchanged (their moments too). No host reads.
   */
  step(grads: Map<string | tf.Variable, tf.Tensor> | Record<string, tf.Tensor>): void {
    const get = (s: Slot): tf.Tensor | undefined =>
      grads instanceof Map ? (grads.get(s.path) ?? grads.get(s.v)) : (grads as Record<string, tf.Tensor>)[s.path];
    this.t += 1;
    const bc1 = 1 - this.beta1 ** this.t;
    const bc2 = 1 - this.beta2 ** this.t;
    tf.tidy(() => {
      for (const s of this.slots) {
        const g = get(s);
        if (!g) continue;
        if (g.shape.join() !== s.v.shape.join())
          throw new Error(`AdamW.step: gradient of "${s.path}" has shape [${g.shape}], expected [${s.v.shape}]`);
        const lr = this.lr * s.lrMult;
        const m = s.m.mul(this.beta1).add(g.mul(1 - this.beta1));
        const v2 = s.s.mul(this.beta2).add(g.square().mul(1 - this.beta2));
        s.m.assign(m);
        s.s.assign(v2);
        const denom = v2.div(bc2).sqrt().add(this.eps);
        let p: tf.Tensor = s.v;
        if (s.wd !== 0) p = p.mul(1 - lr * s.wd);
        s.v.assign(p.sub(m.div(bc1).div(denom).mul(lr)));
      }
    });
  }

  stateDict(): OptimizerState {
    const tensors: Record<string, tf.Tensor> = {};
    for (const s of this.slots) {
      tensors[`${s.path}.exp_avg`] = s.m;
      tensors[`${s.path}.exp_avg_sq`] = s.s;
    }
    return {
      tensors,
      json: { kind: 'AdamW', t: this.t, lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay },
    };
  }

  loadStateDict(state: OptimizerState): void {
    const j = state.json as { kind?: string; t?: number; lr?: number };
    if (j?.kind !== 'AdamW' || !Number.isInteger(j.t))
      throw new Error(`AdamW.loadStateDict: not an AdamW state (json ${JSON.stringify(state.json)})`);
    const problems: string[] = [];
    for (const s of this.slots) {
      for (const [suffix, slot] of [
        ['exp_avg', s.m],
        ['exp_avg_sq', s.s],
      ] as const) {
        const t = state.tensors[`${s.path}.${suffix}`];
        if (!t) problems.push(`missing ${s.path}.${suffix}`);
        else if (t.shape.join() !== slot.shape.join()) problems.push(`${s.path}.${suffix} expected [${slot.shape}] got [${t.shape}]`);
      }
    }
    const known = new Set(this.slots.flatMap((s) => [`${s.path}.exp_avg`, `${s.path}.exp_avg_sq`]));
    const unexpected = Object.keys(state.tensors).filter((k) => !known.has(k));
    if (unexpected.length) problems.push(`unexpected ${unexpected.join(', ')}`);
    if (problems.length) throw new Error(`AdamW.loadStateDict: ${problems.join('; ')}`);
    for (const s of this.slots) {
      s.m.assign(state.tensors[`${s.path}.exp_avg`]!);
      s.s.assign(state.tensors[`${s.path}.exp_avg_sq`]!);
    }
    this.t = j.t as number;
    if (typeof j.lr === 'number') this.lr = j.lr;
  }

  dispose(): void {
    for (const s of this.slots) {
      s.m.dispose();
      s.s.dispose();
    }
  }
}
