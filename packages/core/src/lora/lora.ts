/**
 * LoRA (Hu et al. 2021): y = W x + b + (alpha / r) * B A dropout(x), with A [r, in] initialised as
 * PEFT does (kaiming-uniform, a = sqrt 5, i.e. U(+-1/sqrt(in))) and B [out, r] zeros, so a freshly
 * wrapped layer equals the base layer. Parameter names follow PEFT: `base_layer.weight`,
 * `base_layer.bias`, `lora_A.weight`, `lora_B.weight`. The base layer is frozen.
 */
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';

export interface LoRAOptions {
  /** Rank r (>= 1, at most min(in, out)). */
  r: number;
  /** Scale numerator: the update is multiplied by alpha / r. Default r (scale 1). */
  alpha?: number;
  /** Dropout on the LoRA branch's input in training mode. Default 0. */
  dropout?: number;
  rng?: Rng;
}

export class LoRALinear extends Module {
  readonly base_layer: Linear;
  readonly lora_A: Linear; // weight [r, in]
  readonly lora_B: Linear; // weight [out, r]
  readonly r: number;
  readonly scale: number;
  readonly dropout: number;
  private merged = false;
  private readonly rng: Rng;

  constructor(base: Linear, opts: LoRAOptions) {
    super();
    if (!(base instanceof Linear)) throw new Error(`LoRALinear: base must be a Linear, got ${(base as object)?.constructor?.name}`);
    const { r } = opts;
    const maxR = Math.min(base.inFeatures, base.outFeatures);
    if (!Number.isInteger(r) || r < 1 || r > maxR)
      throw new Error(`LoRALinear: r must be an integer in [1, ${maxR}] (min(in, out)), got ${r}`);
    const dropout = opts.dropout ?? 0;
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRALinear: dropout must be in [0, 1), got ${dropout}`);
    this.rng = opts.rng ?? defaultRng();
    this.r = r;
    this.scale = (opts.alpha ?? r) / r;
    this.dropout = dropout;
    this.base_layer = this.module('base_layer', base);
    base.freeze();
    this.lora_A = this.module('lora_A', new Linear(base.inFeatures, r, { bias: false, init: { kind: 'torch_default' }, rng: this.rng }));
    this.lora_B = this.module('lora_B', new Linear(r, base.outFeatures, { bias: false, init: { kind: 'zeros' }, rng: this.rng }));
  }

  get inFeatures(): number {
    return this.base_layer.inFeatures;
  }

  get outFeatures(): number {
    return this.base_layer.outFeatures;
  }

  /** scale * B A: [out, in]. */
  delta(): tf.Tensor {
    return tf.tidy(() => tf.matMul(this.lora_B.weight, this.lora_A.weight).mul(this.scale));
  }

  forward(x: tf.Tensor /* [..., in] */): tf.Tensor /* [..., out] */ {
    return tf.tidy(() => {
      const y = this.base_layer.forward(x);
      if (this.merged) return y;
      const h = this.training && this.dropout > 0 ? tf.dropout(x, this.dropout, undefined, this.rng.nextSeed()) : x;
      return y.add(this.lora_B.forward(this.lora_A.forward(h)).mul(this.scale));
    });
  }

  /** Fold the update into the base weight (W += scale B A); forward then skips the branch. */
  merge(): void {
    if (this.merged) return;
    tf.tidy(() => this.base_layer.weight.assign(this.base_layer.weight.add(this.delta())));
    this.merged = true;
  }

  unmerge(): void {
    if (!this.merged) return;
    tf.tidy(() => this.base_layer.weight.assign(this.base_layer.weight.sub(this.delta())));
    this.merged = false;
  }

  get isMerged(): boolean {
    return this.merged;
  }
}

/**
 * Wrap every Linear below `root` whose dotted path passes `targets` in a LoRALinear (in place, via
 * replaceChild), and freeze every other parameter. Returns the wrapped paths.
 */
export function applyLoRA(root: Module, opts: LoRAOptions & { targets?: (path: string, layer: Linear) => boolean }): string[] {
  const wrapped: string[] = [];
  const rng = opts.rng ?? defaultRng();
  for (const [path, m] of root.namedModules()) {
    if (m instanceof LoRALinear) continue;
    for (const [name, child] of m.children()) {
      const childPath = path ? `${path}.${name}` : name;
      if (!(child instanceof Linear) || m instanceof LoRALinear) continue;
      if (opts.targets && !opts.targets(childPath, child)) continue;
      m.replaceChild(name, new LoRALinear(child, { ...opts, rng }));
      wrapped.push(childPath);
    }
  }
  if (wrapped.length === 0) throw new Error(`applyLoRA: no Linear layer matched the targets under ${root.constructor.name}`);
  root.freeze((p) => !/(^|\.)lora_[AB]\.weight$/.test(p));
  root.unfreeze((p) => /(^|\.)lora_[AB]\.weight$/.test(p));
  return wrapped;
}
