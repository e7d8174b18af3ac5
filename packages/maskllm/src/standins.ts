/**
 * Local stand-ins for pieces @mmlm/core does not export yet (its optim and losses areas were empty
 * when this package was written): AdamW with per-variable learning-rate multipliers and decoupled
 * weight decay (Loshchilov & Hutter 2019, torch.optim.AdamW), global gradient-norm clipping
 * (torch.nn.utils.clip_grad_norm_), the cosine learning-rate decay of Megatron-LM, and token
 * cross-entropy. Replace with core's versions once they exist.
 */
import { tf } from '@mmlm/core';

/** Mean next-token cross-entropy (nats): logits [N, V], integer targets [N]. */
export function crossEntropy(logits: tf.Tensor /* [N, V] */, targets: tf.Tensor /* [N] int32 */): tf.Scalar {
  return tf.tidy(() => {
    if (logits.rank !== 2) throw new Error(`crossEntropy: logits must be [N, V], got shape [${logits.shape}]`);
    const [N, V] = logits.shape as [number, number];
    if (targets.size !== N) throw new Error(`crossEntropy: expected ${N} targets, got ${targets.size}`);
    const logp = tf.logSoftmax(logits, -1); // [N, V]
    return logp
      .mul(tf.oneHot(targets.reshape([N]).toInt(), V))
      .sum(-1)
      .mean()
      .neg() as tf.Scalar;
  });
}

/** Megatron cosine decay: lrMin + (lr - lrMin) (1 + cos(pi t / T)) / 2, no warmup. */
export function cosineLr(lr: number, lrMin: number, t: number, T: number): number {
  const r = Math.min(Math.max(t / T, 0), 1);
  return lrMin + 0.5 * (lr - lrMin) * (1 + Math.cos(Math.PI * r));
}

/** Scale gradients in place so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(grads: Record<string, tf.Tensor>, maxNorm: number): number {
  const gs = Object.values(grads);
  let sq = 0;
  for (const g of gs) sq += tf.tidy(() => g.square().reshape([-1]).sum().dataSync()[0] as number);
  const norm = Math.sqrt(sq);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const k of Object.keys(grads)) {
      const g = grads[k]!;
      grads[k] = tf.tidy(() => g.mul(s));
      g.dispose();
    }
  }
  return norm;
}

export interface ParamGroup {
  params: tf.Variable[];
  /** Multiplies the step's learning rate (MaskLLM's --lr-mult for the gates). Default 1. */
  lrMult?: number;
  weightDecay?: number;
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** AdamW (decoupled weight decay) over parameter groups; state in tf.Variables. */
export class AdamW {
  private readonly groups: { params: tf.Variable[]; lrMult: number; weightDecay: number }[];
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private t = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;

  constructor(groups: ParamGroup[], opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.groups = groups.map((g) => ({ params: g.params, lrMult: g.lrMult ?? 1, weightDecay: g.weightDecay ?? opts.weightDecay ?? 0 }));
    for (const g of this.groups)
      for (const p of g.params) {
        this.m.set(p.name, tf.variable(tf.zerosLike(p), false));
        this.v.set(p.name, tf.variable(tf.zerosLike(p), false));
      }
  }

  /** Steps taken. */
  get steps(): number {
    return this.t;
  }

  /** One update with learning rate `lr` (times each group's multiplier). Missing gradients are skipped. */
  step(grads: Record<string, tf.Tensor>, lr: number): void {
    this.t++;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    tf.tidy(() => {
      for (const g of this.groups) {
        const a = lr * g.lrMult;
        for (const p of g.params) {
          const grad = grads[p.name];
          if (!grad) continue;
          const m = this.m.get(p.name)!;
          const v = this.v.get(p.name)!;
          m.assign(m.mul(b1).add(grad.mul(1 - b1)));
          v.assign(v.mul(b2).add(grad.square().mul(1 - b2)));
          const upd = m.div(c1).div(v.div(c2).sqrt().add(this.eps)); // Adam direction
          const decayed = g.weightDecay > 0 ? p.mul(1 - a * g.weightDecay) : p;
          p.assign(decayed.sub(upd.mul(a)));
        }
      }
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
