/**
 * Token cross-entropy with the HF causal-LM conventions (transformers' `ForCausalLMLoss` over
 * already-shifted targets): targets equal to `ignoreIndex` (-100) contribute nothing and the mean is
 * over the remaining targets; an all-ignored batch gives 0, not NaN. Per target y with
 * log Z = logsumexp(x) (stable: max-shifted):
 *   nll = log Z - x_y
 *   label smoothing eps (torch.nn.CrossEntropyLoss): (1 - eps) nll + eps (log Z - mean_v x_v)
 *   PaLM z-loss (Chowdhery et al. 2022, sec. 5): + zLoss * (log Z)^2
 */
import { hostValuesIfReady } from '../backend/read.js';
import { tf } from '../tf.js';

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  /** Targets with this value are skipped. Default -100. */
  ignoreIndex?: number;
  /** Coefficient of the z-loss (log Z)^2 (PaLM uses 1e-4). Default 0. */
  zLoss?: number;
  /** Label smoothing eps in [0, 1): mass 1 - eps on the label, eps spread uniformly. Default 0. */
  labelSmoothing?: number;
  /** 'mean' over non-ignored targets (default), 'sum', or 'none' (shape of targets, 0 where ignored). */
  reduction?: Reduction;
}

const REDUCTIONS: readonly Reduction[] = ['mean', 'sum', 'none'];

/**
 * log sum_v exp(x[n, v]) for x [N, V] -> [N], with the gradient written as dy * softmax(x): one
 * exp over [N, V] in the backward pass. tf.logSumExp's own gradient also differentiates its
 * max-shift (Max's gradient builds an equality mask over [N, V]) although that term is zero.
 */
const logSumExpRows = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const value = tf.logSumExp(x, 1);
  save([x, value]);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, lse] = saved as [tf.Tensor, tf.Tensor];
      return tf.exp(xs.sub(lse.expandDims(1))).mul(dy.expandDims(1));
    },
  };
}) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor });

export function checkReduction(who: string, r: unknown): Reduction {
  if (!REDUCTIONS.includes(r as Reduction)) throw new Error(`${who}: reduction must be one of ${REDUCTIONS.join(', ')}, got ${String(r)}`);
  return r as Reduction;
}

/**
 * logits float32 [..., V], targets int32 [...] -> scalar ('mean', 'sum') or [...] ('none').
 * Reads the targets on the host to check that each is in [0, V) or is ignoreIndex (on webgpu only
 * while they are host data: targets already on the GPU cannot be read synchronously, and go unchecked).
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor, opts?: CrossEntropyOptions & { reduction?: 'mean' | 'sum' }): tf.Scalar;
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor, opts: CrossEntropyOptions): tf.Tensor;
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor, opts: CrossEntropyOptions = {}): tf.Tensor {
  const ignore = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  const zLoss = opts.zLoss ?? 0;
  const reduction = checkReduction('crossEntropy', opts.reduction ?? 'mean');
  if (logits.dtype !== 'float32') throw new Error(`crossEntropy: logits must be float32, got ${logits.dtype}`);
  if (targets.dtype !== 'int32') throw new Error(`crossEntropy: targets must be int32, got ${targets.dtype}`);
  if (logits.rank < 1 || logits.rank !== targets.rank + 1 || logits.shape.slice(0, -1).join() !== targets.shape.join())
    throw new Error(`crossEntropy: logits [${logits.shape}] must be targets [${targets.shape}] plus a class axis`);
  if (!Number.isInteger(ignore)) throw new Error(`crossEntropy: ignoreIndex must be an integer, got ${ignore}`);
  if (!(eps >= 0 && eps < 1)) throw new Error(`crossEntropy: labelSmoothing must be in [0, 1), got ${eps}`);
  if (!(zLoss >= 0 && Number.isFinite(zLoss))) throw new Error(`crossEntropy: zLoss must be a finite number >= 0, got ${zLoss}`);
  const V = logits.shape[logits.rank - 1] as number;
  if (V < 1) throw new Error(`crossEntropy: logits need at least 1 class, got [${logits.shape}]`);
  // The range check reads the targets on the host where that needs no wait for a GPU (always on
  // cpu / wasm / tensorflow; on webgpu while they are still host data): GPU-resident targets on
  // webgpu are not checked (a sync read of them is impossible there).
  const ys = hostValuesIfReady(targets);
  const N = targets.size;
  // flat index of each target logit in x [N, V] (row i, column y_i; column 0 for ignored targets,
  // whose loss is masked out below)
  const flat = ys ? new Int32Array(N * V < 2 ** 31 ? N : 0) : null;
  if (ys)
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i] as number;
      if (y !== ignore && (y < 0 || y >= V))
        throw new Error(`crossEntropy: target ${y} at flat index ${i} must be in [0, ${V}) or be ignoreIndex ${ignore}`);
      if (flat?.length) flat[i] = i * V + (y === ignore ? 0 : y);
    }
  return tf.tidy(() => {
    const x = logits.reshape([-1, V]); // [N, V]
    const y = targets.reshape([-1]); // [N]
    const valid = tf.notEqual(y, ignore); // [N]
    const logZ = logSumExpRows(x) as tf.Tensor; // [N]
    // x_y by a gather (its gradient scatters into the target entries only), not a one-hot [N, V]
    // mask: one pass over N entries instead of three over N x V, and -inf logits elsewhere stay harmless
    const flatIdx = () =>
      flat
        ? tf.tensor1d(flat, 'int32')
        : tf
            .range(0, N, 1, 'int32')
            .mul(tf.scalar(V, 'int32'))
            .add(tf.where(valid, y, tf.zerosLike(y))); // the same, on the device
    const xy =
      N * V < 2 ** 31
        ? tf.gather(x.reshape([-1]), flatIdx()) // [N]
        : tf.where(tf.equal(tf.range(0, V, 1, 'int32').expandDims(0), y.expandDims(1)), x, tf.zerosLike(x)).sum(1); // flat indices past int32
    let loss = logZ.sub(xy); // [N]
    if (eps > 0) loss = loss.mul(1 - eps).add(logZ.sub(x.mean(1)).mul(eps));
    if (zLoss > 0) loss = loss.add(logZ.square().mul(zLoss));
    loss = tf.where(valid, loss, tf.zerosLike(loss));
    if (reduction === 'none') return loss.reshape(targets.shape);
    if (reduction === 'sum') return loss.sum();
    return loss.sum().div(tf.maximum(valid.cast('float32').sum(), 1));
  });
}
