/**
 * LatentLM (Sun et al. 2024, "Multimodal Latent Language Modeling with Next-Token Diffusion",
 * arXiv 2412.08635), top to bottom; names follow microsoft/unilm `LatentLM/models/Transformer.py`
 * and `DiT.py`.
 *
 * One causal Transformer reads a mixed sequence (§2.1): a discrete token goes through the token
 * embedding; a continuous latent x_i (a VAE latent vector, marked by the <LAT> placeholder id) goes
 * through the linear `x_embedder`. Each output state h_i feeds either the softmax LM head or, after
 * the `condition_layer` (RMSNorm, Linear), the diffusion head that denoises the next latent
 * (next-token diffusion, §2.2):
 *
 *   c = h_i + TimestepEmbedder(t)                          (sinusoid dim 256, cos then sin)
 *   x = noisy_x_embedder(x_t)
 *   x <- x + gate * SwiGLU(RMSNorm(x) (1 + scale) + shift),  (shift, scale, gate) = Linear(SiLU(c))
 *   eps_theta = Linear(RMSNorm(x) (1 + scale) + shift),       (shift, scale) = Linear(SiLU(c))
 *
 * adaLN weights and the final linear start at zero (adaLN-Zero), so the head outputs exactly 0 at
 * initialisation. The backbone is core's TransformerDecoder configured as the reference: RMSNorm
 * pre-norm, SwiGLU, no biases, GPT-J interleaved RoPE with the linspace exponent.
 */
import {
  AdaLNModulation,
  cfgLogits,
  type KVCache,
  Linear,
  Module,
  ModuleList,
  modulate,
  RMSNorm,
  Rng,
  SpanPositionEmbedding,
  SwiGLU,
  TimestepEmbedder,
  TransformerDecoder,
  tf,
} from '@mmlm/core';
import { type ModelConfig, type ModelConfigInput, mlpHiddenOf, resolveModelConfig } from './config.js';

/** adaLN-Zero residual MLP block of the head (reference `MLPBlock`). */
export class MLPBlock extends Module {
  readonly norm: RMSNorm;
  readonly mlp: SwiGLU;
  readonly adaLN_modulation: AdaLNModulation;

  constructor(dim: number, hidden: number, rng: Rng) {
    super();
    this.norm = this.module('norm', new RMSNorm(dim, { elementwiseAffine: false, eps: 1e-6 }));
    this.mlp = this.module('mlp', new SwiGLU(dim, hidden, { bias: false, rng }));
    this.adaLN_modulation = this.module('adaLN_modulation', new AdaLNModulation(dim, dim, 3, { bias: false, zeroInit: true, rng }));
  }

  forward(x: tf.Tensor /* [N, D] */, c: tf.Tensor /* [N, D] */): tf.Tensor /* [N, D] */ {
    return tf.tidy(() => {
      const [shift, scale, gate] = this.adaLN_modulation.forward(c); // 3 x [N, D]
      return x.add(gate!.mul(this.mlp.forward(modulate(this.norm.forward(x), shift!, scale!))));
    });
  }
}

/** adaLN output layer of the head (DiT `FinalLayer`): zero-initialised modulation and projection. */
export class FinalLayer extends Module {
  readonly norm_final: RMSNorm;
  readonly linear: Linear;
  readonly adaLN_modulation: AdaLNModulation;

  constructor(dim: number, out: number, rng: Rng) {
    super();
    this.norm_final = this.module('norm_final', new RMSNorm(dim, { elementwiseAffine: false, eps: 1e-6 }));
    this.linear = this.module('linear', new Linear(dim, out, { bias: false, init: { kind: 'zeros' }, rng }));
    this.adaLN_modulation = this.module('adaLN_modulation', new AdaLNModulation(dim, dim, 2, { bias: false, zeroInit: true, rng }));
  }

  forward(x: tf.Tensor /* [N, D] */, c: tf.Tensor /* [N, D] */): tf.Tensor /* [N, C] */ {
    return tf.tidy(() => {
      const [shift, scale] = this.adaLN_modulation.forward(c);
      return this.linear.forward(modulate(this.norm_final.forward(x), shift!, scale!));
    });
  }
}

/** Output state -> head condition h_i (reference `ConditionLayer`: RMSNorm without gain, Linear). */
class ConditionLayer extends Module {
  readonly norm_final: RMSNorm;
  readonly linear: Linear;

  constructor(dim: number, rng: Rng) {
    super();
    this.norm_final = this.module('norm_final', new RMSNorm(dim, { elementwiseAffine: false, eps: 1e-6 }));
    this.linear = this.module('linear', new Linear(dim, dim, { bias: false, rng }));
  }

  forward(h: tf.Tensor /* [..., D] */): tf.Tensor /* [..., D] */ {
    return tf.tidy(() => this.linear.forward(this.norm_final.forward(h)));
  }
}

/** The diffusion head eps_theta(x_t, t, h): a small adaLN MLP that denoises one latent vector per condition. */
export class DiffusionHead extends Module {
  readonly noisy_x_embedder: Linear;
  readonly t_embedder: TimestepEmbedder;
  readonly diffusion_blocks: ModuleList<MLPBlock>;
  readonly final_layer: FinalLayer;

  constructor(
    readonly latentDim: number,
    readonly dim: number,
    depth: number,
    hidden: number,
    freqDim: number,
    rng: Rng,
  ) {
    super();
    this.noisy_x_embedder = this.module('noisy_x_embedder', new Linear(latentDim, dim, { bias: false, rng }));
    this.t_embedder = this.module(
      't_embedder',
      new TimestepEmbedder(dim, freqDim, { bias: false, init: { kind: 'normal', std: 0.02 }, rng }),
    );
    this.diffusion_blocks = this.module('diffusion_blocks', new ModuleList<MLPBlock>());
    for (let i = 0; i < depth; i++) this.diffusion_blocks.push(new MLPBlock(dim, hidden, rng));
    this.final_layer = this.module('final_layer', new FinalLayer(dim, latentDim, rng));
  }

  /** x_t [N, C], t [N] (float timesteps, may be fractional), condition h [N, D] -> model output [N, C]. */
  forward(x: tf.Tensor, t: tf.Tensor, h: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const N = x.shape[0] as number;
      if (x.rank !== 2 || x.shape[1] !== this.latentDim)
        throw new Error(`DiffusionHead: x_t must be [N, ${this.latentDim}] (latent dim), got shape [${x.shape}]`);
      if (t.rank !== 1 || t.shape[0] !== N) throw new Error(`DiffusionHead: t must be [${N}], got shape [${t.shape}]`);
      if (h.rank !== 2 || h.shape[0] !== N || h.shape[1] !== this.dim)
        throw new Error(`DiffusionHead: condition must be [${N}, ${this.dim}], got shape [${h.shape}]`);
      const c = h.add(this.t_embedder.forward(t)); // [N, D]
      let y = this.noisy_x_embedder.forward(x); // [N, D]
      for (const block of this.diffusion_blocks.items) y = block.forward(y, c);
      return this.final_layer.forward(y, c); // [N, C]
    });
  }
}

/**
 * The reference `forward_with_cfg`: x [2N, C] whose first half is the noisy sample, conditions
 * [2N, D] (conditional rows first, unconditional rows second). The first half of x is run under
 * both conditions, the guided eps is computed, and it is returned duplicated into both halves.
 * Guidance in eps space as the reference (Ho & Salimans 2022): eps = eps_u + w (eps_c - eps_u),
 * core's `cfgLogits(eps_c, eps_u, w)`.
 */
export function forwardWithCfg(head: DiffusionHead, x: tf.Tensor, t: tf.Tensor, h: tf.Tensor, w: number): tf.Tensor {
  return tf.tidy(() => {
    const B2 = x.shape[0] as number;
    if (B2 % 2 !== 0) throw new Error(`forwardWithCfg: x must hold an even number of rows (conditional then unconditional), got ${B2}`);
    const half = x.slice([0, 0], [B2 / 2, -1]); // [N, C]
    const eps = head.forward(tf.concat([half, half], 0), t, h); // [2N, C]
    const [cond, uncond] = tf.split(eps, 2, 0);
    const guided = cfgLogits(cond!, uncond!, w); // [N, C] = eps_u + w (eps_c - eps_u)
    return tf.concat([guided, guided], 0);
  });
}

/** The mixed-sequence next-token-diffusion model. */
export class LatentLM extends Module {
  readonly config: ModelConfig;
  readonly backbone: TransformerDecoder;
  /** Linear input projection of continuous latents (reference `x_embedder`, flatten_input). */
  readonly x_embedder: Linear;
  readonly condition_layer: ConditionLayer;
  readonly diffusion: DiffusionHead;
  /** Latent standardisation z_std = (z + shift) * scale, stored with the checkpoint (reference train_hf.py). */
  /** Index of the latent each position predicts, when config.imagePositions > 0 (a deviation; null = reference). */
  readonly image_pos: SpanPositionEmbedding | null; // [N, D]
  readonly latent_shift: tf.Variable; // []
  readonly latent_scale: tf.Variable; // []

  constructor(input: ModelConfigInput | ModelConfig = {}) {
    super();
    const cfg = resolveModelConfig(input);
    this.config = cfg;
    const rng = new Rng(cfg.seed);
    const hidden = mlpHiddenOf(cfg);
    this.backbone = this.module(
      'backbone',
      new TransformerDecoder({
        vocabSize: cfg.vocabSize,
        dim: cfg.dim,
        numLayers: cfg.numLayers,
        numHeads: cfg.numHeads,
        numKvHeads: cfg.numKvHeads,
        maxSeqLen: cfg.maxSeqLen,
        mlp: 'swiglu',
        mlpHidden: hidden,
        norm: 'rmsnorm',
        normEps: 1e-6,
        bias: false,
        pos: 'rope',
        ropeBase: 10000 * cfg.posiScale,
        ropeStyle: 'interleaved',
        ropeFreqs: 'linspace',
        tieEmbeddings: cfg.tieEmbeddings,
        dropout: cfg.dropout,
        seed: rng.nextSeed(),
      }),
    );
    const headRng = rng.fork('head');
    this.x_embedder = this.module('x_embedder', new Linear(cfg.latentDim, cfg.dim, { bias: false, rng: headRng }));
    this.condition_layer = this.module('condition_layer', new ConditionLayer(cfg.dim, headRng));
    this.diffusion = this.module('diffusion', new DiffusionHead(cfg.latentDim, cfg.dim, cfg.diffusionDepth, hidden, cfg.freqDim, headRng));
    const { bodId, latId } = cfg;
    this.image_pos =
      cfg.imagePositions > 0
        ? this.module(
            'image_pos',
            new SpanPositionEmbedding(
              cfg.imagePositions,
              cfg.dim,
              { isStart: (id) => id === bodId, isInside: (id) => id === latId },
              { init: { kind: 'normal', std: 0.02 }, rng: new Rng(cfg.seed).fork('image_pos') },
            ),
          )
        : null;
    this.latent_shift = this.buffer('latent_shift', tf.scalar(0));
    this.latent_scale = this.buffer('latent_scale', tf.scalar(1));
  }

  newCache(): KVCache {
    return this.backbone.newCache();
  }

  /**
   * Input embeddings of a mixed batch: token embeddings, replaced by x_embedder(latent) wherever
   * ids == <LAT>. ids [B, T] int32; latents [B, T, C] (read only at <LAT> positions) or null.
   */
  embedInputs(ids: tf.Tensor, latents: tf.Tensor | null): tf.Tensor /* [B, T, D] */ {
    return tf.tidy(() => {
      if (ids.rank !== 2 || ids.dtype !== 'int32') throw new Error(`LatentLM: ids must be int32 [B, T], got ${ids.dtype} [${ids.shape}]`);
      const tok = this.backbone.embed(ids); // [B, T, D]
      if (latents === null) return tok;
      const [B, T] = ids.shape as [number, number];
      const C = this.config.latentDim;
      if (latents.rank !== 3 || latents.shape[0] !== B || latents.shape[1] !== T || latents.shape[2] !== C)
        throw new Error(`LatentLM: latents must be [${B}, ${T}, ${C}] (batch, time, latent dim), got shape [${latents.shape}]`);
      const isLat = ids.equal(this.config.latId).toFloat().expandDims(2); // [B, T, 1]
      const proj = this.x_embedder.forward(latents); // [B, T, D]
      return tok.mul(tf.scalar(1).sub(isLat)).add(proj.mul(isLat));
    });
  }

  /** Mixed inputs -> final hidden states [B, T, D]; with a cache, positions continue from cache.length. */
  forwardHidden(ids: tf.Tensor, latents: tf.Tensor | null, call: { cache?: KVCache; mask?: tf.Tensor | null } = {}): tf.Tensor {
    return tf.tidy(() => {
      const x = this.embedInputs(ids, latents); // [B, T, D]
      return this.backbone.forwardHidden(this.image_pos ? x.add(this.image_pos.embedSpans(ids, call.cache)) : x, call);
    });
  }

  /** Softmax head: h [B, T, D] -> logits [B, T, V]. */
  lmLogits(h: tf.Tensor): tf.Tensor {
    return this.backbone.logits(h);
  }

  /** Head condition h_i = condition_layer(output state). */
  condition(h: tf.Tensor): tf.Tensor {
    return this.condition_layer.forward(h);
  }

  /** Set the latent standardisation (shift = -mean, scale = 1 / std). */
  setLatentStats(stats: LatentStats): void {
    if (!(Number.isFinite(stats.shift) && Number.isFinite(stats.scale) && stats.scale > 0))
      throw new Error(`LatentLM.setLatentStats: need finite shift and positive scale, got ${JSON.stringify(stats)}`);
    tf.tidy(() => {
      this.latent_shift.assign(tf.scalar(stats.shift));
      this.latent_scale.assign(tf.scalar(stats.scale));
    });
  }

  latentStats(): LatentStats {
    return { shift: this.latent_shift.dataSync()[0] as number, scale: this.latent_scale.dataSync()[0] as number };
  }

  /** VAE latents -> model space: (z + shift) * scale. */
  normalizeLatents(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => z.add(this.latent_shift).mul(this.latent_scale));
  }

  /** Model space -> VAE latents: z / scale - shift. */
  denormalizeLatents(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => z.div(this.latent_scale).sub(this.latent_shift));
  }
}

/** The latent standardisation z_std = (z + shift) * scale (shift = -mean, scale = 1 / std of the training latents). */
export interface LatentStats {
  shift: number;
  scale: number;
}
