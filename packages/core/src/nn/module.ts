/**
 * A small PyTorch-like Module: named parameters with dotted paths (`blocks.0.attn.qkv.weight`),
 * children, freeze/unfreeze, parameter count, and a state dict in and out. Names follow the
 * reference implementations so safetensors files map name to name.
 */
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';

export type StateDict = Record<string, tf.Tensor>;

export class StateDictError extends Error {
  constructor(
    message: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { key: string; expected: number[]; actual: number[] }[],
  ) {
    super(message);
    this.name = 'StateDictError';
  }
}

export interface LoadStateDictOptions {
  /** Require exactly the module's keys (default true). With false, missing/unexpected are skipped. */
  strict?: boolean;
}

export abstract class Module {
  /** Parameters owned directly by this module, by local name. */
  private readonly _params = new Map<string, tf.Variable>();
  /** Non-trainable state saved with the module (e.g. running stats, EMA codebooks). */
  private readonly _buffers = new Map<string, tf.Variable>();
  private readonly _children = new Map<string, Module>();
  /** Random streams drawn from while the module runs (dropout, Gumbel noise), by local name. */
  private readonly _rngs = new Map<string, Rng>();
  /** Train mode enables dropout and other stochastic behaviour. */
  training = true;

  /** Register (and take ownership of) a parameter. The tensor is wrapped in a tf.Variable. */
  protected param(name: string, init: tf.Tensor, trainable = true): tf.Variable {
    checkLocalName(name, this);
    if (this._params.has(name) || this._buffers.has(name) || this._children.has(name))
      throw new Error(`${this.constructor.name}: "${name}" is already registered`);
    const v = tf.variable(init, trainable);
    if (v !== (init as unknown)) init.dispose();
    this._params.set(name, v);
    return v;
  }

  /** Register non-trainable persistent state (in the state dict, never trained). */
  protected buffer(name: string, init: tf.Tensor): tf.Variable {
    checkLocalName(name, this);
    if (this._params.has(name) || this._buffers.has(name) || this._children.has(name))
      throw new Error(`${this.constructor.name}: "${name}" is already registered`);
    const v = tf.variable(init, false);
    init.dispose();
    this._buffers.set(name, v);
    return v;
  }

  /**
   * Register a random stream this module draws from while it runs (dropout masks, Gumbel noise), so
   * `namedRngs()` lists it and `trainLoop` checkpoints and resumes it without being told.
   */
  protected rngStream(name: string, rng: Rng): Rng {
    checkLocalName(name, this);
    if (this._rngs.has(name)) throw new Error(`${this.constructor.name}: random stream "${name}" is already registered`);
    this._rngs.set(name, rng);
    return rng;
  }

  /** Every registered random stream of this module and its children, by dotted path ('blocks.0.dropout'). */
  namedRngs(prefix = ''): [string, Rng][] {
    const out: [string, Rng][] = [];
    for (const [k, r] of this._rngs) out.push([prefix + k, r]);
    for (const [k, c] of this._children) out.push(...c.namedRngs(`${prefix}${k}.`));
    return out;
  }

  /** Register a child module under `name`. */
  protected module<M extends Module>(name: string, m: M): M {
    checkLocalName(name, this);
    if (this._params.has(name) || this._buffers.has(name) || this._children.has(name))
      throw new Error(`${this.constructor.name}: "${name}" is already registered`);
    this._children.set(name, m);
    return m;
  }

  /** Replace a registered child (e.g. wrapping a Linear with LoRA). Returns the old one. */
  replaceChild(name: string, m: Module): Module {
    const old = this._children.get(name);
    if (!old)
      throw new Error(`${this.constructor.name}: no child "${name}" to replace; children: ${[...this._children.keys()].join(', ')}`);
    this._children.set(name, m);
    // fields and arrays that held the old child now hold the new one, so forward() uses it
    const self = this as unknown as Record<string, unknown>;
    for (const key of Object.keys(self)) {
      const v = self[key];
      if (v === old) self[key] = m;
      else if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (v[i] === old) v[i] = m;
      }
    }
    return old;
  }

  children(): [string, Module][] {
    return [...this._children.entries()];
  }

  /** Every module below and including this one, with its dotted path ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Parameters with dotted paths. */
  namedParameters(prefix = ''): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [n, v] of this._params) out.push([prefix ? `${prefix}.${n}` : n, v]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  namedBuffers(prefix = ''): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [n, v] of this._buffers) out.push([prefix ? `${prefix}.${n}` : n, v]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, v]) => v);
  }

  /** Parameters that receive gradients (not frozen). */
  namedTrainableParameters(): [string, tf.Variable][] {
    return this.namedParameters().filter(([, v]) => v.trainable);
  }

  trainableParameters(): tf.Variable[] {
    return this.namedTrainableParameters().map(([, v]) => v);
  }

  /** Number of scalar parameters (all, or only trainable ones). */
  numParameters(opts: { trainableOnly?: boolean } = {}): number {
    return this.namedParameters()
      .filter(([, v]) => !opts.trainableOnly || v.trainable)
      .reduce((a, [, v]) => a + v.size, 0);
  }

  /** Freeze every parameter (or only those whose dotted path matches `filter`). */
  freeze(filter?: (path: string) => boolean): this {
    for (const [n, v] of this.namedParameters()) if (!filter || filter(n)) v.trainable = false;
    return this;
  }

  unfreeze(filter?: (path: string) => boolean): this {
    for (const [n, v] of this.namedParameters()) if (!filter || filter(n)) v.trainable = true;
    return this;
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Parameters and buffers by dotted path. The tensors are the module's own variables (not
   * copies): read them, do not dispose them.
   */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [n, v] of this.namedParameters()) out[n] = v;
    for (const [n, v] of this.namedBuffers()) out[n] = v;
    return out;
  }

  /**
   * Copy values from `sd` into this module's variables. Reports every missing, unexpected and
   * mis-shaped key in one error (nothing is assigned when there is any error).
   */
  loadStateDict(sd: StateDict, opts: LoadStateDictOptions = {}): { missing: string[]; unexpected: string[] } {
    const strict = opts.strict ?? true;
    const own = new Map<string, tf.Variable>([...this.namedParameters(), ...this.namedBuffers()]);
    const missing = [...own.keys()].filter((k) => !(k in sd));
    const unexpected = Object.keys(sd).filter((k) => !own.has(k));
    const mismatched: { key: string; expected: number[]; actual: number[] }[] = [];
    for (const [k, v] of own) {
      const t = sd[k];
      if (t && !sameShape(t.shape, v.shape)) mismatched.push({ key: k, expected: v.shape, actual: t.shape });
    }
    const problems: string[] = [];
    if (strict && missing.length) problems.push(`missing keys: ${missing.join(', ')}`);
    if (strict && unexpected.length) problems.push(`unexpected keys: ${unexpected.join(', ')}`);
    if (mismatched.length)
      problems.push(`shape mismatch: ${mismatched.map((m) => `${m.key} expected [${m.expected}] got [${m.actual}]`).join('; ')}`);
    if (problems.length)
      throw new StateDictError(`${this.constructor.name}.loadStateDict: ${problems.join(' | ')}`, missing, unexpected, mismatched);
    for (const [k, v] of own) {
      const t = sd[k];
      if (!t) continue;
      if (t.dtype !== v.dtype) tf.tidy(() => v.assign(tf.cast(t, v.dtype)));
      else v.assign(t);
    }
    return { missing, unexpected };
  }

  /** Dispose every variable of this module and its children. */
  dispose(): void {
    for (const v of this._params.values()) v.dispose();
    for (const v of this._buffers.values()) v.dispose();
    for (const c of this._children.values()) c.dispose();
  }
}

function checkLocalName(name: string, m: Module): void {
  if (!name || name.includes('.')) throw new Error(`${m.constructor.name}: invalid name "${name}" (non-empty, no dots)`);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** An ordered list of modules named 0, 1, 2, ... (PyTorch's ModuleList). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];

  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }

  push(m: M): M {
    this.items.push(this.module(String(this.items.length), m));
    return m;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new Error(`ModuleList: index ${i} out of range [0, ${this.items.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
