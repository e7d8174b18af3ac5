/** Linear and Embedding, with PyTorch's weight layouts so checkpoints map name to name. */
import { LINEAR_GRAD_KERNEL, oneTapeRecording } from '../backend/kernels/fused.js';
import { coreKernelsActive } from '../backend/kernels/index.js';
import { readSync } from '../backend/read.js';
import { defaultRng } from '../rng/global.js';
import type { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import { type Init, initTensor } from './init.js';
import { Module } from './module.js';

export interface LinearOptions {
  /** Add a bias vector (default true, as nn.Linear). */
  bias?: boolean;
  /** Weight init (default: PyTorch's U(+-1/sqrt(in))). */
  init?: Init;
  /** Bias init (default zeros). */
  biasInit?: Init;
  rng?: Rng;
}

/** y = x W^T + b, W: [out, in] (PyTorch layout). */
export class Linear extends Module {
  readonly weight: tf.Variable; // [out, in]
  readonly bias: tf.Variable | null; // [out]

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    checkPositiveInt('Linear inFeatures', inFeatures);
    checkPositiveInt('Linear outFeatures', outFeatures);
    const rng = opts.rng ?? defaultRng();
    this.weight = this.param(
      'weight',
      initTensor([outFeatures, inFeatures], opts.init ?? { kind: 'torch_default' }, rng, inFeatures, outFeatures),
    );
    this.bias =
      opts.bias === false
        ? null
        : this.param('bias', initTensor([outFeatures], opts.biasInit ?? { kind: 'zeros' }, rng, inFeatures, outFeatures));
  }

  /** The weight actually used in the forward pass (subclasses such as masked or LoRA layers override). */
  effectiveWeight(): tf.Tensor {
    return this.weight;
  }

  forward(x: tf.Tensor /* [..., in] */): tf.Tensor /* [..., out] */ {
    return tf.tidy(() => {
      const last = x.shape[x.shape.length - 1];
      if (last !== this.inFeatures)
        throw new Error(`Linear.forward: input last dim must be ${this.inFeatures} (in_features), got shape [${x.shape}]`);
      const w = this.effectiveWeight();
      if (x.rank >= 2 && x.dtype === 'float32' && w.dtype === 'float32' && coreKernelsActive(tf.getBackend())) {
        // Core's wasm kernels: one _FusedMatMul call on x [..., N, in] as it is. Its leading
        // dimensions fold into one GEMM of N' = prod(leading) rows and the bias is added in float32
        // after it, as the composite below: the same numbers bit for bit, one kernel call instead
        // of four. While a tape records, its gradient is one MmlmLinearGrad call with the
        // composite's GEMMs and bias sum (instead of about seven calls), bit-identical too.
        // A frozen weight (a non-trainable variable, e.g. LoRA's base) keeps the composite, whose
        // autodiff skips the weight gradient that the fused backward would compute for nothing; so
        // do nested tapes (second-order gradients: the fused backward is first order).
        if (!tf.engine().isTapeOn()) return fusedLinear(x, w, this.bias);
        const frozen = w instanceof tf.Variable && !w.trainable;
        if (!frozen && oneTapeRecording() && tf.getKernel(LINEAR_GRAD_KERNEL, tf.getBackend()) !== undefined)
          return trainLinear(x, w, this.bias);
      }
      return linearComposite(x, w, this.bias);
    });
  }
}

/**
 * y = x W^T + b as tfjs ops (reshape to [N, in], matMul, add, reshape back), differentiated by
 * tfjs's autodiff: what Linear computes without core's kernels, and the reference they reproduce.
 */
export function linearComposite(
  x: tf.Tensor /* [..., in] */,
  weight: tf.Tensor /* [out, in] */,
  bias: tf.Tensor | null /* [out] */,
): tf.Tensor {
  return tf.tidy(() => {
    const [out, inF] = weight.shape as [number, number];
    const x2 = x.reshape([-1, inF]); // [N, in]
    let y = tf.matMul(x2, weight, false, true); // [N, out]
    if (bias) y = y.add(bias);
    return y.reshape([...x.shape.slice(0, -1), out]);
  });
}

function fusedLinear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  const inputs: tf.NamedTensorMap = { a: x, b: weight };
  if (bias) inputs.bias = bias;
  const attrs = { transposeA: false, transposeB: true, activation: 'linear' };
  return tf.engine().runKernel('_FusedMatMul', inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

type LinearCustom = (...inputs: tf.Tensor[]) => tf.Tensor;

function makeTrainLinear(hasBias: boolean): LinearCustom {
  return tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [x, w, b] = args as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    save([x, w]);
    return {
      value: fusedLinear(x, w, b ?? null),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor, tf.Tensor];
        return tf
          .engine()
          .runKernel(LINEAR_GRAD_KERNEL, { dy, x: xs, weight: ws }, { hasBias } as unknown as tf.NamedAttrMap) as tf.Tensor[];
      },
    };
  }) as unknown as (...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    value: tf.Tensor;
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
  }) as unknown as LinearCustom;
}

const trainLinearByBias: { yes?: LinearCustom; no?: LinearCustom } = {};

function trainLinear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  const key = bias ? 'yes' : 'no';
  trainLinearByBias[key] ??= makeTrainLinear(!!bias);
  return bias ? trainLinearByBias[key](x, weight, bias) : trainLinearByBias[key](x, weight);
}

export interface EmbeddingOptions {
  /** Default N(0, 1) as nn.Embedding; GPTs use N(0, 0.02). */
  init?: Init;
  rng?: Rng;
}

/** Lookup table: ids [...] -> [..., dim]. weight: [num, dim]. */
export class Embedding extends Module {
  readonly weight: tf.Variable; // [num, dim]

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: EmbeddingOptions = {},
  ) {
    super();
    checkPositiveInt('Embedding numEmbeddings', numEmbeddings);
    checkPositiveInt('Embedding embeddingDim', embeddingDim);
    const rng = opts.rng ?? defaultRng();
    this.weight = this.param(
      'weight',
      initTensor([numEmbeddings, embeddingDim], opts.init ?? { kind: 'normal', std: 1 }, rng, numEmbeddings, embeddingDim),
    );
  }

  forward(ids: tf.Tensor /* [...] int32 */): tf.Tensor /* [..., dim] */ {
    return tf.tidy(() => {
      if (ids.dtype !== 'int32') throw new Error(`Embedding.forward: ids must be int32, got ${ids.dtype}`);
      const flat = ids.reshape([-1]);
      const out = tf.gather(this.weight, flat); // [N, dim]
      return out.reshape([...ids.shape, this.embeddingDim]);
    });
  }

  /**
   * Check ids are in range (reads ids to the host: use in validation paths, not hot loops). Sync:
   * on webgpu, ids already on the GPU cannot be read this way (it throws, naming checkIdsAsync).
   */
  checkIds(ids: tf.Tensor): void {
    this.checkIdValues(readSync(ids, 'Embedding.checkIds', 'use await embedding.checkIdsAsync(ids)'));
  }

  /** checkIds with an asynchronous read: works on every backend, webgpu included. */
  async checkIdsAsync(ids: tf.Tensor): Promise<void> {
    this.checkIdValues(await ids.data());
  }

  private checkIdValues(v: ArrayLike<number>): void {
    for (let i = 0; i < v.length; i++) {
      const id = v[i] as number;
      if (id < 0 || id >= this.numEmbeddings || !Number.isInteger(id))
        throw new Error(`Embedding: id ${id} at flat index ${i} is out of range [0, ${this.numEmbeddings})`);
    }
  }
}

export function checkPositiveInt(what: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${what} must be a positive integer, got ${n}`);
}

/** Which ids open a span and which continue it (SpanPositionEmbedding). */
export interface SpanRule {
  /** An id that opens a span (e.g. <boi>, <BOD>); the position holding it predicts the span's token 0. */
  isStart(id: number): boolean;
  /** An id inside a span (an image code, <LAT>); any other id closes the span. */
  isInside(id: number): boolean;
}

/**
 * A learned embedding of the index, inside a span of `numEmbeddings` tokens, of the token each
 * position predicts: index 0 at the span's start id, k + 1 after the span's k-th token, none
 * (-1, zero vector) elsewhere and once the span is full. The index is computed on the host from the
 * ids alone, so a full forward, captioning and KV-cached decoding one token at a time agree: with a
 * cache, the open/count state of each row carries over between calls (a fresh cache, length 0,
 * starts afresh). Used for image grids (a decoder with RoPE only has to count from <boi> to know
 * which grid cell comes next). The parameter keeps Embedding's name `weight` [N, D].
 */
export class SpanPositionEmbedding extends Embedding {
  private readonly states = new WeakMap<object, { open: Uint8Array; count: Int32Array }>();

  constructor(
    numEmbeddings: number,
    embeddingDim: number,
    readonly rule: SpanRule,
    opts: EmbeddingOptions = {},
  ) {
    super(numEmbeddings, embeddingDim, opts);
  }

  /** ids [B, T] row-major -> index [B * T] of the span token each position predicts, or -1. */
  index(ids: ArrayLike<number>, B: number, T: number, cache?: { readonly length: number }): Int32Array {
    if (ids.length !== B * T)
      throw new Error(`SpanPositionEmbedding.index: expected B * T = ${B} * ${T} = ${B * T} ids, got ${ids.length}`);
    const N = this.numEmbeddings;
    let st = cache && cache.length > 0 ? this.states.get(cache) : undefined;
    if (!st || st.open.length !== B) st = { open: new Uint8Array(B), count: new Int32Array(B) };
    const out = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const id = ids[b * T + t]!;
        if (this.rule.isStart(id)) {
          st.open[b] = 1;
          st.count[b] = 0;
        } else if (st.open[b] && this.rule.isInside(id)) st.count[b]! += 1;
        else st.open[b] = 0;
        out[b * T + t] = st.open[b] && st.count[b]! < N ? st.count[b]! : -1;
      }
    }
    if (cache) this.states.set(cache, st);
    return out;
  }

  /**
   * ids [B, T] int32 -> [B, T, D]: the embedding of each position's span index, zero outside spans.
   * Reads ids to the host (sync; CPU and wasm backends, or ids created on the host).
   */
  embedSpans(ids: tf.Tensor, cache?: { readonly length: number }): tf.Tensor /* [B, T, D] */ {
    if (ids.rank !== 2 || ids.dtype !== 'int32')
      throw new Error(`SpanPositionEmbedding: ids must be int32 [B, T], got ${ids.dtype} [${ids.shape}]`);
    const [B, T] = ids.shape as [number, number];
    const idx = this.index(readSync(ids, 'SpanPositionEmbedding.embedSpans', 'read the ids on the host first'), B, T, cache);
    return tf.tidy(() => {
      const at = tf.tensor2d(
        Int32Array.from(idx, (j) => Math.max(j, 0)),
        [B, T],
        'int32',
      );
      const on = tf.tensor3d(
        Float32Array.from(idx, (j) => (j >= 0 ? 1 : 0)),
        [B, T, 1],
      );
      return this.forward(at).mul(on);
    });
  }
}
