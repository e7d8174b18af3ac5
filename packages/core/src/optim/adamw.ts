/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") with the update of
 * torch.optim.AdamW (single-tensor path, amsgrad off), per parameter with its own step t:
 *   p <- p - lr*wd*p
 *   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Parameter groups carry an lr multiplier (the group's lr is lr * lrMultiplier, as MaskLLM's
 * `--lr-mult`) and their own weight decay. State is keyed by the parameter's dotted path
 * (`<path>.exp_avg`, `<path>.exp_avg_sq`, as torch's state names), so it survives a restart.
 */

import { ADAMW_KERNEL, ADAMW_N_KERNEL } from '../backend/kernels/fused.js';
import type { Module } from '../nn/module.js';
import { tf } from '../tf.js';

/** Parameters as [dotted path, variable] pairs, or bare variables (keyed by `Variable.name`). */
export type Params = [string, tf.Variable][] | tf.Variable[];

export interface ParamGroup {
  params: Params;
  /** The group's lr is the optimizer's lr times this (e.g. MaskLLM's gate multiplier 10). Default 1. */
  lrMultiplier?: number;
  /** Overrides the optimizer's weight decay (0 for biases and norm gains). */
  weightDecay?: number;
}

/** A group whose parameters carry their dotted paths (what paramGroups returns). */
export type NamedParamGroup = ParamGroup & { params: [string, tf.Variable][] };

export interface AdamWOptions {
  /** Default 1e-3 (torch). */
  lr?: number;
  /** Default 0.9 (torch). */
  beta1?: number;
  /** Default 0.999 (torch). */
  beta2?: number;
  /** Default 1e-8 (torch). */
  eps?: number;
  /** Decoupled weight decay; default 0.01 (torch.optim.AdamW). */
  weightDecay?: number;
}

export interface OptimizerState {
  tensors: Record<string, tf.Tensor>;
  json: unknown;
}

export interface ParamGroupsOptions {
  /** Parameters that get weight decay 0. Default: rank < 2 (biases, norm gains). */
  noDecay?: (path: string, v: tf.Variable) => boolean;
  /** [predicate on the path, lr multiplier]; the first matching entry wins. */
  lrMultipliers?: [(path: string) => boolean, number][];
}

/**
 * A module's trainable parameters split into AdamW groups: one group per (lr multiplier,
 * decay / no decay) pair that occurs, in order of first appearance.
 */
export function paramGroups(module: Module, opts: ParamGroupsOptions = {}): NamedParamGroup[] {
  const noDecay = opts.noDecay ?? ((_p: string, v: tf.Variable) => v.rank < 2);
  for (const [, mult] of opts.lrMultipliers ?? []) checkNonNegative('paramGroups', 'lr multiplier', mult);
  const groups = new Map<string, NamedParamGroup>();
  for (const [path, v] of module.namedTrainableParameters()) {
    const mult = opts.lrMultipliers?.find(([f]) => f(path))?.[1] ?? 1;
    const nd = noDecay(path, v);
    const key = `${mult}|${nd}`;
    let g = groups.get(key);
    if (!g) {
      g = { params: [], lrMultiplier: mult, ...(nd ? { weightDecay: 0 } : {}) };
      groups.set(key, g);
    }
    g.params.push([path, v]);
  }
  return [...groups.values()];
}

interface Slot {
  path: string;
  v: tf.Variable;
  m: tf.Variable; // exp_avg
  s: tf.Variable; // exp_avg_sq
  lrMult: number;
  wd: number;
  /** Steps this parameter has taken (torch keeps `step` per parameter). */
  t: number;
}

type Grads = Map<string | tf.Variable, tf.Tensor> | Map<string, tf.Tensor> | Map<tf.Variable, tf.Tensor> | Record<string, tf.Tensor>;

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of step() calls. */
  t = 0;
  private readonly slots: Slot[] = [];

  /** `params`: a module (all trainable parameters, one group), named pairs, bare variables, or groups. */
  constructor(params: Module | Params | ParamGroup[], opts: AdamWOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    checkNonNegative('AdamW', 'lr', this.lr);
    checkNonNegative('AdamW', 'eps', this.eps);
    checkNonNegative('AdamW', 'weightDecay', this.weightDecay);
    for (const [name, b] of [
      ['beta1', this.beta1],
      ['beta2', this.beta2],
    ] as const)
      if (!(b >= 0 && b < 1)) throw new Error(`AdamW: ${name} must be in [0, 1), got ${b}`);
    const seenPath = new Set<string>();
    const seenVar = new Map<tf.Variable, string>();
    for (const [gi, g] of toGroups(params).entries()) {
      if (!g || !Array.isArray(g.params)) throw new Error(`AdamW: group ${gi} must be { params: [...] }, got ${JSON.stringify(g)}`);
      const lrMult = g.lrMultiplier ?? 1;
      const wd = g.weightDecay ?? this.weightDecay;
      checkNonNegative('AdamW', `group ${gi} lrMultiplier`, lrMult);
      checkNonNegative('AdamW', `group ${gi} weightDecay`, wd);
      for (const [path, v] of named(g.params)) {
        if (!(v instanceof tf.Variable)) throw new Error(`AdamW: parameter "${path}" must be a tf.Variable, got ${describe(v)}`);
        if (v.dtype !== 'float32') throw new Error(`AdamW: parameter "${path}" must be float32, got ${v.dtype}`);
        if (seenPath.has(path)) throw new Error(`AdamW: parameter "${path}" appears twice`);
        const other = seenVar.get(v);
        if (other !== undefined) throw new Error(`AdamW: the variable of "${path}" is also given as "${other}"`);
        seenPath.add(path);
        seenVar.set(v, path);
        this.slots.push({
          path,
          v,
          m: zerosVariable(v),
          s: zerosVariable(v),
          lrMult,
          wd,
          t: 0,
        });
      }
    }
    if (this.slots.length === 0) throw new Error('AdamW: got an empty parameter list');
  }

  /** Paths of the parameters this optimizer updates, in order. */
  paths(): string[] {
    return this.slots.map((s) => s.path);
  }

  setLr(lr: number): void {
    checkNonNegative('AdamW.setLr', 'lr', lr);
    this.lr = lr;
  }

  /**
   * One update, in place (Variable.assign), from gradients keyed by dotted path (Map or Record),
   * by variable (Map), or by `Variable.name` (as tf.variableGrads returns them). Parameters without
   * a gradient are left alone (their moments and step too, as in torch). No host reads.
   */
  step(grads: Grads): void {
    const work: [Slot, tf.Tensor][] = [];
    const size = grads instanceof Map ? grads.size : Object.keys(grads).length;
    for (const s of this.slots) {
      const g = lookup(grads, s);
      if (g === undefined) continue;
      if (!(g instanceof tf.Tensor)) throw new Error(`AdamW.step: gradient of "${s.path}" must be a tensor, got ${describe(g)}`);
      if (g.dtype !== 'float32') throw new Error(`AdamW.step: gradient of "${s.path}" must be float32, got ${g.dtype}`);
      if (!sameShape(g.shape, s.v.shape))
        throw new Error(`AdamW.step: gradient of "${s.path}" has shape [${g.shape}], expected [${s.v.shape}]`);
      work.push([s, g]);
    }
    if (work.length === 0 && size > 0)
      throw new Error(
        `AdamW.step: none of the ${size} gradients matches a parameter; expected keys like "${this.slots[0]!.path}", got "${firstKey(grads)}"`,
      );
    this.t += 1;
    const { beta1: b1, beta2: b2, eps } = this;
    // core's one-pass kernels where the backend has them (wasm; bit-identical to the composite
    // below): every parameter in one call (MmlmAdamWN), else one call per parameter (MmlmAdamW)
    const backend = tf.getBackend();
    const list = tf.getKernel(ADAMW_N_KERNEL, backend) !== undefined;
    const fused = tf.getKernel(ADAMW_KERNEL, backend) !== undefined;
    tf.tidy(() => {
      if (list && work.length > 0) {
        const inputs: tf.NamedTensorMap = {};
        const scalars: number[] = [];
        work.forEach(([s, g], i) => {
          s.t += 1;
          const lr = this.lr * s.lrMult;
          scalars.push(1 - lr * s.wd, b1, 1 - b1, b2, 1 - b2, Math.sqrt(1 - b2 ** s.t), eps, lr / (1 - b1 ** s.t));
          Object.assign(inputs, { [`p${i}`]: s.v, [`m${i}`]: s.m, [`v${i}`]: s.s, [`g${i}`]: g });
        });
        const out = tf.engine().runKernel(ADAMW_N_KERNEL, inputs, { n: work.length, scalars } as unknown as tf.NamedAttrMap) as
          | tf.Tensor
          | tf.Tensor[];
        const outs = Array.isArray(out) ? out : [out];
        work.forEach(([s], i) => {
          s.m.assign(outs[3 * i + 1]!);
          s.s.assign(outs[3 * i + 2]!);
          s.v.assign(outs[3 * i]!);
        });
        return;
      }
      for (const [s, g] of work) {
        s.t += 1;
        const lr = this.lr * s.lrMult;
        const stepSize = lr / (1 - b1 ** s.t);
        const bc2Sqrt = Math.sqrt(1 - b2 ** s.t);
        const decay = 1 - lr * s.wd;
        if (fused) {
          const attrs = { decay, beta1: b1, oneMinusBeta1: 1 - b1, beta2: b2, oneMinusBeta2: 1 - b2, bc2Sqrt, eps, stepSize };
          const [p, m, v] = tf
            .engine()
            .runKernel(ADAMW_KERNEL, { p: s.v, m: s.m, v: s.s, g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          s.m.assign(m!);
          s.s.assign(v!);
          s.v.assign(p!);
          continue;
        }
        const p = decay !== 1 ? s.v.mul(decay) : s.v;
        const m = s.m.mul(b1).add(g.mul(1 - b1));
        const v = s.s.mul(b2).add(g.square().mul(1 - b2));
        const denom = v.sqrt().div(bc2Sqrt).add(eps);
        s.m.assign(m);
        s.s.assign(v);
        s.v.assign(p.sub(m.div(denom).mul(stepSize)));
      }
    });
  }

  /**
   * Moments by `<path>.exp_avg` / `<path>.exp_avg_sq` (the optimizer's own variables: read, do not
   * dispose) and JSON with the step counters and hyperparameters.
   */
  stateDict(): OptimizerState {
    const tensors: Record<string, tf.Tensor> = {};
    const steps: Record<string, number> = {};
    for (const s of this.slots) {
      tensors[`${s.path}.exp_avg`] = s.m;
      tensors[`${s.path}.exp_avg_sq`] = s.s;
      steps[s.path] = s.t;
    }
    const { t, lr, beta1, beta2, eps, weightDecay } = this;
    return { tensors, json: { kind: 'AdamW', t, lr, beta1, beta2, eps, weightDecay, steps } };
  }

  /**
   * Copy a saved state in (the caller keeps `state.tensors`). Restores moments, step counters and
   * lr; betas, eps and weight decay stay as constructed. Every missing, unexpected, mis-shaped or
   * mis-typed entry is reported in one error, and nothing is assigned then.
   */
  loadStateDict(state: OptimizerState): void {
    const j = state?.json as { kind?: unknown; t?: unknown; lr?: unknown; steps?: unknown } | undefined;
    if (j?.kind !== 'AdamW') throw new Error(`AdamW.loadStateDict: json.kind must be "AdamW", got ${JSON.stringify(j?.kind)}`);
    if (!Number.isInteger(j.t) || (j.t as number) < 0)
      throw new Error(`AdamW.loadStateDict: json.t must be an integer >= 0, got ${JSON.stringify(j.t)}`);
    if (j.lr !== undefined && !(typeof j.lr === 'number' && j.lr >= 0 && Number.isFinite(j.lr)))
      throw new Error(`AdamW.loadStateDict: json.lr must be a finite number >= 0, got ${JSON.stringify(j.lr)}`);
    const steps = (j.steps ?? {}) as Record<string, unknown>;
    const problems: string[] = [];
    for (const s of this.slots) {
      for (const [suffix, slot] of [
        ['exp_avg', s.m],
        ['exp_avg_sq', s.s],
      ] as const) {
        const key = `${s.path}.${suffix}`;
        const t = state.tensors[key];
        if (!t) problems.push(`missing ${key}`);
        else if (!sameShape(t.shape, slot.shape)) problems.push(`${key} expected shape [${slot.shape}] got [${t.shape}]`);
        else if (t.dtype !== 'float32') problems.push(`${key} expected float32 got ${t.dtype}`);
      }
      const st = steps[s.path];
      if (j.steps !== undefined && !(Number.isInteger(st) && (st as number) >= 0))
        problems.push(`json.steps["${s.path}"] expected an integer >= 0 got ${JSON.stringify(st)}`);
    }
    const known = new Set(this.slots.flatMap((s) => [`${s.path}.exp_avg`, `${s.path}.exp_avg_sq`]));
    const unexpected = Object.keys(state.tensors).filter((k) => !known.has(k));
    if (unexpected.length) problems.push(`unexpected ${unexpected.join(', ')}`);
    if (problems.length) throw new Error(`AdamW.loadStateDict: ${problems.join('; ')}`);
    for (const s of this.slots) {
      s.m.assign(state.tensors[`${s.path}.exp_avg`]!);
      s.s.assign(state.tensors[`${s.path}.exp_avg_sq`]!);
      s.t = j.steps === undefined ? (j.t as number) : (steps[s.path] as number);
    }
    this.t = j.t as number;
    if (typeof j.lr === 'number') this.lr = j.lr;
  }

  /** Dispose the moment variables (not the parameters). */
  dispose(): void {
    for (const s of this.slots) {
      s.m.dispose();
      s.s.dispose();
    }
  }
}

function zerosVariable(v: tf.Variable): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zerosLike(v), false));
}

function toGroups(params: Module | Params | ParamGroup[]): ParamGroup[] {
  if (params !== null && typeof params === 'object' && 'namedTrainableParameters' in params)
    return [{ params: (params as Module).namedTrainableParameters() }];
  if (!Array.isArray(params))
    throw new Error(`AdamW: params must be a Module, an array of parameters or of groups, got ${describe(params)}`);
  const first = params[0];
  if (Array.isArray(first) || first instanceof tf.Variable) return [{ params: params as Params }];
  return params as ParamGroup[];
}

function named(params: Params): [string, tf.Variable][] {
  return (params as ([string, tf.Variable] | tf.Variable)[]).map((x) => (Array.isArray(x) ? x : [x?.name, x]));
}

function lookup(grads: Grads, s: Slot): tf.Tensor | undefined {
  if (grads instanceof Map) {
    const m = grads as Map<string | tf.Variable, tf.Tensor>;
    return m.get(s.path) ?? m.get(s.v);
  }
  const r = grads as Record<string, tf.Tensor>;
  return Object.hasOwn(r, s.path) ? r[s.path] : Object.hasOwn(r, s.v.name) ? r[s.v.name] : undefined;
}

function firstKey(grads: Grads): string {
  const k = grads instanceof Map ? grads.keys().next().value : Object.keys(grads)[0];
  return k instanceof tf.Variable ? `Variable ${k.name}` : String(k);
}

function checkNonNegative(who: string, name: string, x: number): void {
  if (!(typeof x === 'number' && x >= 0 && Number.isFinite(x))) throw new Error(`${who}: ${name} must be a finite number >= 0, got ${x}`);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function describe(x: unknown): string {
  if (x instanceof tf.Tensor) return `a ${x.dtype} tensor [${x.shape}]`;
  return x === null ? 'null' : typeof x === 'object' ? (x.constructor?.name ?? 'object') : `${typeof x} ${String(x)}`;
}
