/**
 * LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", eq. 3 and sec. 4.1),
 * as HF PEFT's lora.Linear:
 *   y = base(x) + (alpha / r) dropout(x) A^T B^T,   A [r, in], B [out, r]
 * A is initialised as PEFT (kaiming_uniform with a = sqrt(5), which is U(-1/sqrt(in), 1/sqrt(in)))
 * and B with zeros, so a freshly wrapped layer computes exactly its base layer. The base layer is
 * frozen; dropout acts on the LoRA branch's input in training mode only, with seeds from the Rng.
 *
 * Names follow PEFT's module tree: `<path>.base_layer.weight`, `<path>.base_layer.bias`,
 * `<path>.lora_A.weight`, `<path>.lora_B.weight`. (PEFT keeps A and B in a dict keyed by adapter
 * name, `lora_A.default.weight`, and drops that key when it saves adapter_model.safetensors;
 * loraStateDict() returns the adapter-file names.) A checkpoint of the unwrapped model maps
 * `<path>.weight` to `<path>.base_layer.weight`; mergeAndUnloadLoRA() restores the plain names.
 *
 * Rank: r must be an integer in [1, min(in, out)]. PEFT accepts larger r, but B A has rank at most
 * min(in, out), so a larger r only adds parameters; we treat it as a configuration error.
 *
 * Fused layers (`splits`): a Linear whose output is the concatenation of n layers PEFT would wrap
 * one by one (core's fused attention `qkv` = LLaMA's q_proj, k_proj, v_proj) gets n independent
 * rank-r updates, exactly as n LoRALinear on the separate layers: A stacks the n A_i [r, in] into
 * [n r, in], B stacks the n B_i [out_i, r] into [out, r], and the update of output rows i is
 * scale B_i A_i (one rank-r LoRA on the fused layer instead would share A across the parts and
 * have two thirds of the parameters when every part is as wide as the input).
 */

import { dropout } from '../backend/kernels/fused.js';
import { Linear } from '../nn/linear.js';
import { Module, type StateDict } from '../nn/module.js';
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';

export interface LoRAOptions {
  /** Rank r, an integer in [1, min(in, out)]. */
  r: number;
  /** The update is scaled by alpha / r (PEFT's lora_alpha). Default r, i.e. scale 1. */
  alpha?: number;
  /** Dropout probability on the LoRA branch's input in training mode, in [0, 1). Default 0. */
  dropout?: number;
  rng?: Rng;
  /**
   * Output widths of the parts of a fused Linear (summing to its out features), each part getting
   * its own rank-r update as a separate PEFT layer would. Default: one part.
   */
  splits?: readonly number[];
}

const LORA_PARAM = /(^|\.)lora_[AB]\.weight$/;

function checkLoRAOptions(where: string, opts: LoRAOptions, inFeatures: number, outFeatures: number): void {
  const { r } = opts;
  const maxR = Math.min(inFeatures, outFeatures);
  if (!Number.isInteger(r) || r < 1 || r > maxR)
    throw new Error(`${where}: r must be an integer in [1, ${maxR}] (min(in, out) of a ${inFeatures} -> ${outFeatures} Linear), got ${r}`);
  const alpha = opts.alpha ?? r;
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new Error(`${where}: alpha must be a finite number > 0, got ${alpha}`);
  const dropout = opts.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`${where}: dropout must be in [0, 1), got ${dropout}`);
  if (opts.splits !== undefined) {
    const sp = opts.splits;
    if (!Array.isArray(sp) || sp.length === 0 || sp.some((w) => !Number.isInteger(w) || w < 1))
      throw new Error(`${where}: splits must be a non-empty list of positive integer widths, got ${JSON.stringify(sp)}`);
    const sum = sp.reduce((a, b) => a + b, 0);
    if (sum !== outFeatures)
      throw new Error(`${where}: splits ${JSON.stringify(sp)} sum to ${sum}, expected the layer's ${outFeatures} out features`);
    const minPart = Math.min(inFeatures, ...sp);
    if (r > minPart)
      throw new Error(`${where}: r must be an integer in [1, ${minPart}] (min(in, part width) of the split layer), got ${r}`);
  }
}

export class LoRALinear extends Module {
  readonly base_layer: Linear;
  readonly lora_A: Linear; // weight [n r, in] (n = splits.length, 1 unless fused)
  readonly lora_B: Linear; // weight [out, r]
  /** Output widths of the parts, each with its own rank-r update ([out] unless fused). */
  readonly splits: readonly number[];
  readonly r: number;
  readonly alpha: number;
  /** alpha / r */
  readonly scale: number;
  readonly dropout: number;
  private merged = false;
  private readonly rng: Rng;

  constructor(base: Linear, opts: LoRAOptions) {
    super();
    if (!(base instanceof Linear))
      throw new Error(`LoRALinear: base must be a Linear, got ${(base as object | null)?.constructor?.name ?? String(base)}`);
    checkLoRAOptions('LoRALinear', opts, base.inFeatures, base.outFeatures);
    this.rng = opts.rng ?? defaultRng();
    this.r = opts.r;
    this.alpha = opts.alpha ?? opts.r;
    this.scale = this.alpha / this.r;
    this.dropout = opts.dropout ?? 0;
    this.splits = opts.splits ? [...opts.splits] : [base.outFeatures];
    this.base_layer = this.module('base_layer', base);
    base.freeze();
    // torch_default on [n r, in] is U(+-1/sqrt(in)) per entry: each A_i as PEFT's kaiming_uniform(a = sqrt(5))
    this.lora_A = this.module(
      'lora_A',
      new Linear(base.inFeatures, this.r * this.splits.length, { bias: false, init: { kind: 'torch_default' }, rng: this.rng }),
    );
    this.lora_B = this.module('lora_B', new Linear(this.r, base.outFeatures, { bias: false, init: { kind: 'zeros' }, rng: this.rng }));
  }

  get inFeatures(): number {
    return this.base_layer.inFeatures;
  }

  get outFeatures(): number {
    return this.base_layer.outFeatures;
  }

  get isMerged(): boolean {
    return this.merged;
  }

  /** scale B A: [out, in] (fused: the parts' scale B_i A_i stacked by rows). */
  delta(): tf.Tensor2D {
    return tf.tidy(() => {
      if (this.splits.length === 1) return tf.matMul(this.lora_B.weight, this.lora_A.weight).mul(this.scale) as tf.Tensor2D;
      const Bs = tf.split(this.lora_B.weight, this.splits as number[], 0); // n x [out_i, r]
      const As = tf.split(this.lora_A.weight, this.splits.length, 0); // n x [r, in]
      return tf
        .concat(
          Bs.map((b, i) => tf.matMul(b, As[i]!)),
          0,
        )
        .mul(this.scale) as tf.Tensor2D;
    });
  }

  /** The LoRA branch without scale: dropout(x) A^T B^T, per part when fused. */
  private branch(h: tf.Tensor /* [..., in] */): tf.Tensor /* [..., out] */ {
    const a = this.lora_A.forward(h); // [..., n r]
    if (this.splits.length === 1) return this.lora_B.forward(a);
    const last = a.rank - 1;
    const as = tf.split(a, this.splits.length, last); // n x [..., r]
    const Bs = tf.split(this.lora_B.weight, this.splits as number[], 0); // n x [out_i, r]
    const lead = a.shape.slice(0, last);
    const ys = as.map((ai, i) => tf.matMul(ai.reshape([-1, this.r]), Bs[i]!, false, true).reshape([...lead, this.splits[i]!]));
    return tf.concat(ys, last);
  }

  forward(x: tf.Tensor /* [..., in] */): tf.Tensor /* [..., out] */ {
    return tf.tidy(() => {
      const y = this.base_layer.forward(x); // [..., out]
      if (this.merged) return y;
      const h = this.training && this.dropout > 0 ? dropout(x, this.dropout, this.rng.nextSeed()) : x;
      return y.add(this.branch(h).mul(this.scale));
    });
  }

  /** Fold the update into the base weight (W += scale B A); forward then skips the branch. */
  merge(): void {
    if (this.merged) return;
    this.checkPlainBase('merge');
    tf.tidy(() => this.base_layer.weight.assign(this.base_layer.weight.add(this.delta())));
    this.merged = true;
  }

  /** Undo merge() (W -= scale B A, exact up to float round-off). */
  unmerge(): void {
    if (!this.merged) return;
    tf.tidy(() => this.base_layer.weight.assign(this.base_layer.weight.sub(this.delta())));
    this.merged = false;
  }

  /** merge() assumes forward uses `weight` itself; a subclass with its own effectiveWeight (masks) would break that. */
  private checkPlainBase(what: string): void {
    if (this.base_layer.effectiveWeight !== Linear.prototype.effectiveWeight)
      throw new Error(
        `LoRALinear.${what}: the base layer (${this.base_layer.constructor.name}) overrides effectiveWeight(), so W += scale B A would not equal the unmerged forward`,
      );
  }
}

export interface ApplyLoRAOptions extends Omit<LoRAOptions, 'splits'> {
  /** Which Linear layers to wrap, by dotted path (default: every Linear). */
  targets?: (path: string, layer: Linear) => boolean;
  /** Output widths of a fused layer's parts (LoRAOptions.splits), by path; undefined: one part. */
  splits?: (path: string, layer: Linear) => readonly number[] | undefined;
}

/**
 * Wrap every Linear below `root` whose dotted path passes `targets` in a LoRALinear, in place (via
 * Module.replaceChild), then freeze every parameter except the `lora_A` / `lora_B` weights.
 * Layers already inside a LoRALinear are skipped, so applying twice does not nest; `root` itself is
 * never wrapped. Options are checked against every matched layer before anything is changed.
 * Returns the wrapped paths; throws when nothing matches.
 */
export function applyLoRA(root: Module, opts: ApplyLoRAOptions): string[] {
  const matches: { parent: Module; name: string; path: string; layer: Linear }[] = [];
  const visit = (m: Module, prefix: string): void => {
    if (m instanceof LoRALinear) return;
    for (const [name, child] of m.children()) {
      const path = prefix ? `${prefix}.${name}` : name;
      if (child instanceof Linear) {
        if (!opts.targets || opts.targets(path, child)) matches.push({ parent: m, name, path, layer: child });
      } else visit(child, path);
    }
  };
  visit(root, '');
  if (matches.length === 0)
    throw new Error(
      `applyLoRA: no Linear layer under ${root.constructor.name} matched the targets (layers already inside a LoRALinear are skipped)`,
    );
  const perLayer = matches.map(({ path, layer }) => {
    const o: LoRAOptions = { r: opts.r, alpha: opts.alpha, dropout: opts.dropout, splits: opts.splits?.(path, layer) };
    checkLoRAOptions(`applyLoRA (${path})`, o, layer.inFeatures, layer.outFeatures);
    return o;
  });
  const rng = opts.rng ?? defaultRng();
  for (const [i, { parent, name, layer }] of matches.entries()) parent.replaceChild(name, new LoRALinear(layer, { ...perLayer[i]!, rng }));
  root.freeze((p) => !LORA_PARAM.test(p));
  root.unfreeze((p) => LORA_PARAM.test(p));
  return matches.map((m) => m.path);
}

/** Every LoRALinear below `root` (and `root` itself), by dotted path. */
export function loraLayers(root: Module): [string, LoRALinear][] {
  return root.namedModules().filter((e): e is [string, LoRALinear] => e[1] instanceof LoRALinear);
}

/** The adapter weights only (`<path>.lora_A.weight`, `<path>.lora_B.weight`), as PEFT's adapter file. */
export function loraStateDict(root: Module): StateDict {
  const out: StateDict = {};
  for (const [n, v] of root.namedParameters()) if (LORA_PARAM.test(n)) out[n] = v;
  return out;
}

/**
 * PEFT's merge_and_unload: merge every LoRALinear below `root` into its base layer and put the base
 * layer back in its place (the LoRA weights are disposed). Trainable flags are left as they are.
 * Returns the unloaded paths.
 */
export function mergeAndUnloadLoRA(root: Module): string[] {
  const done: string[] = [];
  for (const [path, m] of root.namedModules()) {
    for (const [name, child] of m.children()) {
      if (!(child instanceof LoRALinear)) continue;
      child.merge();
      m.replaceChild(name, child.base_layer);
      child.lora_A.dispose();
      child.lora_B.dispose();
      done.push(path ? `${path}.${name}` : name);
    }
  }
  return done;
}
