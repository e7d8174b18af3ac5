/**
 * Fused ops with their own kernels where core supplies them (wasm) and the composite tfjs formula
 * elsewhere, so they are drop-in on every backend:
 * - geluTanh: GELU, tanh approximation (Hendrycks & Gimpel 2016, "Gaussian Error Linear Units",
 *   eq. 2; GPT-2 / PyTorch approximate='tanh'): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 *   Forward and backward are one pass each instead of about 8 and 15 elementwise ops.
 * - geluErf: GELU, exact (eq. 1; PyTorch's default): x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); erf
 *   by Abramowitz & Stegun 7.1.26 as tfjs's Erf kernels. Forward one pass instead of 5 ops (Erf
 *   scalar), backward one pass instead of about 10. Backends without the kernel keep the composite
 *   and its autodiff gradient, digit for digit as before.
 * - silu: SiLU / swish x sigmoid(x) (Elfwing et al. 2018; Ramachandran et al. 2017); forward and
 *   backward one pass each instead of 2 and about 6 ops.
 *
 * Gradients are defined with tf.customGrad (first order; the fused backward has no gradient of
 * its own), so under nested tapes (a gradient of a gradient) these ops run their composites.
 */
import { mix32 } from '../../rng/hash.js';
import { tf } from '../../tf.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
export const GELU_KERNEL = 'MmlmGeluTanh';
export const GELU_GRAD_KERNEL = 'MmlmGeluTanhGrad';
/** GELU, exact erf form, and its gradient (inputs dy, x). */
export const GELU_ERF_KERNEL = 'MmlmGeluErf';
export const GELU_ERF_GRAD_KERNEL = 'MmlmGeluErfGrad';
export const SILU_KERNEL = 'MmlmSilu';
/**
 * RoPE rotation of x [..., T, d] by cos / sin tables [T, d] (inputs x, cos, sin; attrs
 * interleaved, inverse): y = R(theta) x, or R(-theta) x when inverse, its own gradient.
 */
export const ROPE_KERNEL = 'MmlmRope';
/** GroupNorm NHWC (inputs x, weight, bias; outputs y, mean [B, G], rstd [B, G]) and its gradient; see nn/group_norm.ts. */
export const GROUP_NORM_KERNEL = 'MmlmGroupNorm';
export const GROUP_NORM_GRAD_KERNEL = 'MmlmGroupNormGrad';
export const SILU_GRAD_KERNEL = 'MmlmSiluGrad';
/**
 * Inference forwards of the transformer norms over the last dimension (inputs x [..., D] and, when
 * present, weight [D] / bias [D]; attrs eps, hasWeight, hasBias; output y): one kernel call
 * instead of the composite's 6 (RMSNorm) or 9 (LayerNorm) with the composite's float32 arithmetic
 * in its order, so bit-identical to it. Used only while no gradient tape records (nn/norm.ts).
 */
export const RMS_NORM_KERNEL = 'MmlmRmsNorm';
export const LAYER_NORM_KERNEL = 'MmlmLayerNorm';
/**
 * The training forward of both norms (inputs x [..., D], weight [D] / bias [D] when present; attrs
 * eps, layer (LayerNorm when true, RMSNorm otherwise); outputs y and stats [3, rows]: per row of x
 * the mean (LayerNorm; +0 for RMSNorm), rs = 1 / sqrt(ve) and p = pow(ve, 1.5) by the registered Pow
 * kernel, with ve = mean of squares + eps): the inference kernels' arithmetic plus what the backward
 * reads.
 */
export const NORM_TRAIN_KERNEL = 'MmlmNormTrain';
/**
 * Its backward (inputs dy, x, weight when present, stats; attrs layer, hasBias;
 * outputs dx1 and dx2, x's gradient as the composite's two contributions to it (see simd_ops.ts
 * normGradRows), then dweight [D] when there is a weight, then dbias [D] when hasBias): the float32
 * steps of tfjs's autodiff of the composite, in their order, so bit-identical to it (nn/norm.ts).
 */
export const NORM_GRAD_KERNEL = 'MmlmNormGrad';
/**
 * The backward of Linear's training forward y = x W^T + b (x [..., in] of rank >= 2, W [out, in]):
 * inputs dy [..., out], x, weight; attr hasBias; outputs dx [..., in], dweight [out, in] and, with
 * hasBias, dbias [out]. The same GEMM calls and bias sum as tfjs's autodiff of the composite
 * (reshape, matMul, add, reshape) on core's wasm kernels, so bit-identical to it (nn/linear.ts).
 */
export const LINEAR_GRAD_KERNEL = 'MmlmLinearGrad';
/**
 * The core of softmax attention, o = softmax(q k^T scale + causal mask) v, for q [B, H, T, hs], k and
 * v [B, H, S, hs] (attrs scale, causal; outputs o [B, H, T, hs] and p [B, H, T, S], the
 * probabilities the backward reads): the composite's matMul, Multiply, Add of causalMask(T, S),
 * Softmax and matMul in one call, with the same GEMM calls and the registered Softmax kernel, so
 * bit-identical to it (nn/attention.ts).
 */
export const ATTENTION_KERNEL = 'MmlmAttention';
/** Its backward (inputs dy = do, q, k, v, p; attr scale; outputs dq, dk, dv): tfjs's autodiff steps of the composite. */
export const ATTENTION_GRAD_KERNEL = 'MmlmAttentionGrad';
/** One AdamW update of one parameter (inputs p, m, v, g; outputs p', m', v'); see wasm_ops.ts. */
export const ADAMW_KERNEL = 'MmlmAdamW';
/**
 * AdamW updates of several parameters in one call (inputs p0, m0, v0, g0, p1, ...; attrs n and
 * `scalars`, MmlmAdamW's eight attributes per parameter in AdamWKernelAttrs order; outputs p0', m0',
 * v0', p1', ...): the per-parameter kernel's arithmetic, one kernel call per optimizer step.
 */
export const ADAMW_N_KERNEL = 'MmlmAdamWN';
/**
 * Sum of squares over several float32 tensors (inputs x0 .. x{n-1}; output a scalar): the total of
 * clipGradNorm's composite, addN([sum(square(x0)), ...]), in one kernel call; see wasm_ops.ts.
 */
export const SUM_SQUARES_KERNEL = 'MmlmSumSquaresN';
/** Several float32 tensors times one scalar (inputs coef [] or [1], x0 .. x{n-1}; outputs x_i * coef). */
export const SCALE_KERNEL = 'MmlmScaleN';

/**
 * Whether exactly one gradient tape records (ordinary training). The fused training kernels are
 * first order (their backward kernels have no gradient of their own), so where tapes nest (a
 * gradient of a gradient: penalties, meta-learning) the layers keep their composites, whose tfjs
 * gradients are differentiable again.
 */
export function oneTapeRecording(): boolean {
  const e = tf.engine() as unknown as { isTapeOn(): boolean; state: { gradientDepth: number } };
  return e.isTapeOn() && e.state.gradientDepth === 1;
}

/** More than one gradient tape records (a gradient of a gradient): the fused ops take their composites. */
export function nestedTapes(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 1;
}

function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

function geluComposite(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(0.5).mul(tf.tanh(x.add(x.mul(x).mul(x).mul(0.044715)).mul(SQRT_2_OVER_PI)).add(1)));
}

function geluGradComposite(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const x2 = x.square();
    const t = tf.tanh(x.add(x2.mul(x).mul(0.044715)).mul(SQRT_2_OVER_PI));
    const dt = tf
      .scalar(1)
      .sub(t.square())
      .mul(x2.mul(3 * 0.044715).add(1))
      .mul(x.mul(0.5 * SQRT_2_OVER_PI));
    return dy.mul(t.add(1).mul(0.5).add(dt));
  });
}

const geluCustom = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  const fused = x.dtype === 'float32' && hasKernel(GELU_KERNEL);
  const value = fused ? (tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor) : geluComposite(x);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const xs = saved[0] as tf.Tensor;
      return dy.dtype === 'float32' && hasKernel(GELU_GRAD_KERNEL)
        ? (tf.engine().runKernel(GELU_GRAD_KERNEL, { dy, x: xs }) as tf.Tensor)
        : geluGradComposite(dy, xs);
    },
  };
}) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor });

/** GELU (tanh form), fused where the backend has core's kernel. */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`geluTanh: x must be float32, got ${x.dtype}`);
  return nestedTapes() ? geluComposite(x) : geluCustom(x);
}

/** The exact GELU as tfjs ops (0.5 x (1 + erf(x / sqrt 2))), differentiated by autodiff. */
export function geluErfComposite(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(0.5).mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)));
}

const geluErfCustom = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.engine().runKernel(GELU_ERF_KERNEL, { x }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.engine().runKernel(GELU_ERF_GRAD_KERNEL, { dy, x: saved[0] as tf.Tensor }) as tf.Tensor,
  };
}) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor });

/** GELU, exact: one fused kernel forward and one backward where the backend has core's kernels (wasm), the tfjs composite elsewhere. */
export function geluErf(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`geluErf: x must be float32, got ${x.dtype}`);
  return hasKernel(GELU_ERF_KERNEL) && hasKernel(GELU_ERF_GRAD_KERNEL) && !nestedTapes() ? geluErfCustom(x) : geluErfComposite(x);
}

function siluComposite(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(tf.sigmoid(x)));
}

function siluGradComposite(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const s = tf.sigmoid(x);
    return dy.mul(s.mul(x.mul(tf.scalar(1).sub(s)).add(1)));
  });
}

const siluCustom = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  const fused = x.dtype === 'float32' && hasKernel(SILU_KERNEL);
  const value = fused ? (tf.engine().runKernel(SILU_KERNEL, { x }) as tf.Tensor) : siluComposite(x);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const xs = saved[0] as tf.Tensor;
      return dy.dtype === 'float32' && hasKernel(SILU_GRAD_KERNEL)
        ? (tf.engine().runKernel(SILU_GRAD_KERNEL, { dy, x: xs }) as tf.Tensor)
        : siluGradComposite(dy, xs);
    },
  };
}) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor });

/** SiLU / swish x sigmoid(x), fused where the backend has core's kernel. */
export function silu(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`silu: x must be float32, got ${x.dtype}`);
  return nestedTapes() ? siluComposite(x) : siluCustom(x);
}

/**
 * Inverted dropout (Srivastava et al. 2014) with a counter-based mask: element i is kept when
 * dropoutHash(dropoutKey(seed), i) >= rate 2^32 and then scaled by 1 / (1 - rate). The hash is
 * MurmurHash3's fmix32 finalizer of a Weyl sequence i * 0x9e3779b9 + key, so the mask is a pure
 * function of (seed, i): the same on every backend, recomputed for the gradient instead of stored,
 * and drawn in WebAssembly SIMD on wasm. tf.dropout instead draws every uniform with seedrandom's
 * Alea in JavaScript, which was about 9% of a 4 x 128 decoder step with dropout 0.1 on wasm.
 */
export const DROPOUT_KERNEL = 'MmlmDropout';

/** The per-call key of a dropout seed. */
export function dropoutKey(seed: number): number {
  return mix32((seed ^ 0x9e3779b9) | 0);
}

/** The uint32 hash of element i under a key (the wasm kernel computes the same per lane). */
export function dropoutHash(key: number, i: number): number {
  return mix32((Math.imul(i, 0x9e3779b9) + key) | 0);
}

/** The drop threshold of a rate: elements whose hash is below it are dropped. */
export function dropoutThreshold(rate: number): number {
  return Math.min(4294967295, Math.round(rate * 4294967296));
}

/** The mask of n elements: 0 where dropped, fround(1 / (1 - rate)) where kept. */
export function dropoutMask(n: number, rate: number, seed: number): Float32Array {
  const key = dropoutKey(seed);
  const thr = dropoutThreshold(rate);
  const keep = Math.fround(1 / (1 - rate));
  const m = new Float32Array(n);
  for (let i = 0; i < n; i++) m[i] = dropoutHash(key, i) >= thr ? keep : 0;
  return m;
}

function dropoutApply(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (x.dtype === 'float32' && hasKernel(DROPOUT_KERNEL)) return tf.engine().runKernel(DROPOUT_KERNEL, { x }, { rate, seed }) as tf.Tensor;
  return tf.tidy(() => x.mul(tf.tensor(dropoutMask(x.size, rate, seed), x.shape, 'float32')));
}

/**
 * Dropout of x at `rate` in [0, 1) with an integer seed (same seed, same mask, on every backend);
 * its gradient applies the same mask to dy.
 */
export function dropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`dropout: x must be float32, got ${x.dtype}`);
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${rate}`);
  if (!Number.isInteger(seed)) throw new Error(`dropout: seed must be an integer, got ${seed}`);
  if (rate === 0) return x.clone();
  const f = tf.customGrad(((a: tf.Tensor) => ({
    value: dropoutApply(a, rate, seed),
    gradFunc: (dy: tf.Tensor) => dropoutApply(dy, rate, seed),
  })) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor) => tf.Tensor });
  return f(x);
}

/**
 * Gumbel(0, 1) noise g_i = -ln(-ln u_i) with a counter-based uniform: h = dropoutHash(gumbelKey(seed), i),
 * u_i = ((h >>> 9) + 1/2) 2^-23 (exact in float32, in [2^-24, 1 - 2^-24], so never 0 or 1) clamped to
 * [fround(eps), fround(1 - eps)]. A pure function of (seed, i) like dropout's mask, drawn in one
 * WebAssembly SIMD pass on wasm (its ln within 2 ulp, see simd_ops.ts's logVec) instead of Alea
 * uniforms in JavaScript and four elementwise kernels; elsewhere ln is Math.log rounded to float32,
 * so backends agree to float32 rounding (the uniforms exactly).
 */
export const GUMBEL_KERNEL = 'MmlmGumbel';

/** The per-call key of a Gumbel-noise seed (another constant than dropout's, so equal seeds draw apart). */
export function gumbelKey(seed: number): number {
  return mix32((seed ^ 0x2545f491) | 0);
}

/** u_i of gumbelNoise before the clamp: ((h >>> 9) + 1/2) 2^-23 for h = dropoutHash(key, i). */
export function gumbelUniform(key: number, i: number): number {
  return ((dropoutHash(key, i) >>> 9) + 0.5) * 2 ** -23;
}

/** The float32 clamp bounds of u for eps. */
export function gumbelBounds(eps: number): [number, number] {
  return [Math.fround(eps), Math.fround(1 - eps)];
}

/** g_i in JavaScript: the same u_i, ln as Math.log rounded to float32 after each step. */
export function gumbelValue(key: number, i: number, lo: number, hi: number): number {
  const u = Math.min(Math.max(gumbelUniform(key, i), lo), hi);
  return Math.fround(-Math.log(Math.fround(-Math.log(u))));
}

/**
 * Gumbel(0, 1) noise of `shape` from an integer seed (same seed, same noise; see GUMBEL_KERNEL), u
 * clamped to [eps, 1 - eps] with eps in [0, 1/2).
 */
export function gumbelNoise(shape: number[], seed: number, eps = 1e-10): tf.Tensor {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new Error(`gumbelNoise: shape must be non-negative integers, got [${shape}]`);
  if (!Number.isInteger(seed)) throw new Error(`gumbelNoise: seed must be an integer, got ${seed}`);
  if (!(eps >= 0 && eps < 0.5)) throw new Error(`gumbelNoise: eps must be in [0, 0.5), got ${eps}`);
  if (hasKernel(GUMBEL_KERNEL)) return tf.engine().runKernel(GUMBEL_KERNEL, {}, { shape, seed, eps }) as tf.Tensor;
  const n = shape.reduce((a, b) => a * b, 1);
  const key = gumbelKey(seed);
  const [lo, hi] = gumbelBounds(eps);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = gumbelValue(key, i, lo, hi);
  return tf.tensor(v, shape, 'float32');
}

/**
 * Flush to zero: x with every entry of magnitude below `below` set to +0 (NaN, infinities and the rest
 * unchanged), one SIMD pass on wasm. WebAssembly has no flush-to-zero mode, and x86 computes with
 * subnormal float32 numbers through microcode assists, tens of times slower: a tensor whose tiny
 * entries would put subnormals into later products (MaskLLM's late Gumbel-softmax probabilities) can
 * be flushed first. The gradient passes dy where x was kept and 0 where it was flushed.
 */
export const FLUSH_KERNEL = 'MmlmFlushToZero';

function flushComposite(x: tf.Tensor, below: number): tf.Tensor {
  return tf.tidy(() => tf.where(tf.abs(x).less(below), tf.zerosLike(x), x));
}

export function flushToZero(x: tf.Tensor, below: number): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`flushToZero: x must be float32, got ${x.dtype}`);
  if (!(below >= 0 && below < Number.POSITIVE_INFINITY)) throw new Error(`flushToZero: below must be a finite number >= 0, got ${below}`);
  const f = tf.customGrad(((a: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a]);
    const value = hasKernel(FLUSH_KERNEL)
      ? (tf.engine().runKernel(FLUSH_KERNEL, { x: a }, { below: Math.fround(below) }) as tf.Tensor)
      : flushComposite(a, Math.fround(below));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.where(tf.abs(saved[0] as tf.Tensor).less(Math.fround(below)), tf.zerosLike(dy), dy),
    };
  }) as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor });
  return f(x);
}
