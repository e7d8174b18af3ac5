/**
 * LatentLM's tokenizers (Sun et al. 2024, §2.3 "sigma-VAE"; reference
 * `tokenizer_models/modeling_sigma_vae.py`, and microsoft/VibeVoice's speech tokenizer for the
 * causal-conv design), beside the learned-variance VAE baseline (Kingma & Welling 2014).
 *
 * sigma-VAE: the encoder outputs the mean mu only. Sampling is z = mu + sigma eps with eps ~ N(0, I)
 * and ONE scalar sigma per example, sigma = s * C_sigma / 0.8, s ~ N(0, 1) (so E|sigma| ~ C_sigma,
 * 0.8 ~ sqrt(2 / pi)); `fixedStd` replaces the draw by a constant. KL term = mean(mu^2).
 * Gaussian baseline: the encoder also outputs log sigma^2 per element; z = mu + exp(logvar / 2) eps;
 * KL = mean over elements of (mu^2 + sigma^2 - 1 - log sigma^2) / 2.
 *
 * ImageVAE: a ViT on non-overlapping patches (reference: BEiT-3 encoder, patch 16; ViT decoder with
 * a Linear-Tanh-Linear pixel head), sized for 32 px Shapes images (patch 8 -> a 4x4 latent grid).
 * SpeechVAE: 1-D causal convolutions with ConvNeXt blocks along time (paper §2.3), downsampling and
 * upsampling by causal strided convolutions whose kernel equals the stride (reshape + linear). Unlike
 * the paper's waveform tokenizer (trained with GAN and perceptual losses, ~120M parameters), ours
 * reads and predicts log-magnitude STFT frames and renders waveforms with Griffin-Lim (Griffin & Lim
 * 1984): a waveform decoder did not learn within a CPU budget of minutes (see the README).
 */
import { Conv1d, LayerNorm, Linear, MLP, Module, ModuleList, MultiHeadAttention, patchify, Rng, tf, unpatchify } from '@mmlm/core';
import {
  hopLength,
  type ImageVaeConfig,
  type ImageVaeConfigInput,
  imageVaeConfig,
  type SpeechVaeConfig,
  type SpeechVaeConfigInput,
  speechVaeConfig,
} from './config.js';

// ---------------------------------------------------------------------------------------------
// Posterior sampling and KL terms

/** z = mu + (s * cSigma / 0.8) eps with one s per example: mu, eps [B, ...], s [B]. */
export function sigmaVaeSample(mu: tf.Tensor, s: tf.Tensor, eps: tf.Tensor, cSigma: number): tf.Tensor {
  return tf.tidy(() => {
    if (mu.shape.join(',') !== eps.shape.join(','))
      throw new Error(`sigmaVaeSample: mu [${mu.shape}] and eps [${eps.shape}] must have the same shape`);
    if (s.rank !== 1 || s.shape[0] !== mu.shape[0])
      throw new Error(`sigmaVaeSample: s must be [${mu.shape[0]}] (one per example), got [${s.shape}]`);
    const sigma = s.mul(cSigma / 0.8).reshape([mu.shape[0] as number, ...mu.shape.slice(1).map(() => 1)]); // [B, 1, ...]
    return mu.add(sigma.mul(eps));
  });
}

/** The sigma-VAE KL term: mean(mu^2). */
export function sigmaVaeKl(mu: tf.Tensor): tf.Scalar {
  return tf.tidy(() => mu.square().mean() as tf.Scalar);
}

/** Gaussian KL(N(mu, exp(logvar)) || N(0, 1)), averaged over elements. */
export function gaussianKl(mu: tf.Tensor, logvar: tf.Tensor): tf.Scalar {
  return tf.tidy(() => mu.square().add(logvar.exp()).sub(1).sub(logvar).mul(0.5).mean() as tf.Scalar);
}

export interface Posterior {
  /** [B, N, C] */
  mu: tf.Tensor;
  /** [B, N, C] for the Gaussian baseline, null for the sigma-VAE. */
  logvar: tf.Tensor | null;
}

interface PosteriorConfig {
  posterior: 'sigma' | 'gaussian';
  cSigma: number;
  fixedStd?: number;
}

/** Draw z from a posterior (sigma-VAE: per-example sigma; Gaussian: per-element sigma). */
export function samplePosterior(p: Posterior, c: PosteriorConfig, rng: Rng): tf.Tensor {
  return tf.tidy(() => {
    const eps = rng.randn(p.mu.shape);
    if (p.logvar) return p.mu.add(p.logvar.mul(0.5).exp().mul(eps));
    const B = p.mu.shape[0] as number;
    if (c.fixedStd !== undefined) return p.mu.add(eps.mul(c.fixedStd));
    return sigmaVaeSample(p.mu, rng.randn([B]), eps, c.cSigma);
  });
}

function posteriorKl(p: Posterior): tf.Scalar {
  return p.logvar ? gaussianKl(p.mu, p.logvar) : sigmaVaeKl(p.mu);
}

/** Encoder output [..., C] (sigma-VAE) or [..., 2C] (mu, logvar) -> posterior; takes ownership of `out`. */
function splitHead(out: tf.Tensor, C: number, gaussian: boolean): Posterior {
  if (!gaussian) return { mu: out, logvar: null };
  const [mu, logvar] = tf.tidy(() => {
    const [m, lv] = tf.split(out, [C, C], -1);
    return [m!, lv!.clipByValue(-30, 20)];
  });
  out.dispose();
  return { mu: mu!, logvar: logvar! };
}

export interface VaeLoss {
  loss: tf.Scalar;
  rec: tf.Scalar;
  kl: tf.Scalar;
}

/** Shared interface of the tokenizers: data <-> latent frames [B, N, C]. */
export interface LatentTokenizer {
  readonly latentDim: number;
  encode(x: tf.Tensor): Posterior;
  decode(z: tf.Tensor): tf.Tensor;
  loss(x: tf.Tensor, rng: Rng): VaeLoss;
}

// ---------------------------------------------------------------------------------------------
// Image VAE (ViT)

/** Pre-norm ViT block (bidirectional attention, GELU MLP). */
class ViTBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: MultiHeadAttention;
  readonly norm2: LayerNorm;
  readonly mlp: MLP;

  constructor(dim: number, numHeads: number, rng: Rng) {
    super();
    const init = { kind: 'normal', std: 0.02 } as const;
    this.norm1 = this.module('norm1', new LayerNorm(dim));
    this.attn = this.module('attn', new MultiHeadAttention({ dim, numHeads, causal: false, init, rng }));
    this.norm2 = this.module('norm2', new LayerNorm(dim));
    this.mlp = this.module('mlp', new MLP(dim, 4 * dim, { activation: 'gelu', init, rng }));
  }

  forward(x: tf.Tensor /* [B, N, D] */): tf.Tensor {
    return tf.tidy(() => {
      const h = x.add(this.attn.forward(this.norm1.forward(x)));
      return h.add(this.mlp.forward(this.norm2.forward(h)));
    });
  }
}

class ViTStack extends Module {
  readonly pos_embed: tf.Variable; // [N, D]
  readonly blocks: ModuleList<ViTBlock>;
  readonly norm: LayerNorm;

  constructor(N: number, dim: number, depth: number, numHeads: number, rng: Rng) {
    super();
    this.pos_embed = this.param('pos_embed', rng.randn([N, dim], 0, 0.02));
    this.blocks = this.module('blocks', new ModuleList<ViTBlock>());
    for (let i = 0; i < depth; i++) this.blocks.push(new ViTBlock(dim, numHeads, rng));
    this.norm = this.module('norm', new LayerNorm(dim));
  }

  forward(x: tf.Tensor /* [B, N, D] */): tf.Tensor {
    return tf.tidy(() => {
      let h = x.add(this.pos_embed);
      for (const b of this.blocks.items) h = b.forward(h);
      return this.norm.forward(h);
    });
  }
}

class ImageEncoder extends Module {
  readonly patch_embed: Linear;
  readonly vit: ViTStack;
  readonly head: Linear;

  constructor(c: ImageVaeConfig, rng: Rng) {
    super();
    const N = (c.imageSize / c.patchSize) ** 2;
    this.patch_embed = this.module('patch_embed', new Linear(c.patchSize * c.patchSize * c.channels, c.dim, { rng }));
    this.vit = this.module('vit', new ViTStack(N, c.dim, c.depth, c.numHeads, rng));
    this.head = this.module('head', new Linear(c.dim, c.posterior === 'gaussian' ? 2 * c.latentDim : c.latentDim, { rng }));
  }
}

class ImageDecoder extends Module {
  readonly latent_embed: Linear;
  readonly vit: ViTStack;
  readonly fc: Linear;
  readonly out: Linear;

  constructor(c: ImageVaeConfig, rng: Rng) {
    super();
    const N = (c.imageSize / c.patchSize) ** 2;
    this.latent_embed = this.module('latent_embed', new Linear(c.latentDim, c.dim, { rng }));
    this.vit = this.module('vit', new ViTStack(N, c.dim, c.depth, c.numHeads, rng));
    this.fc = this.module('fc', new Linear(c.dim, c.dim, { rng }));
    this.out = this.module('out', new Linear(c.dim, c.patchSize * c.patchSize * c.channels, { rng }));
  }
}

/** Image sigma-VAE (or, with posterior 'gaussian', the learned-variance baseline). Images [B, H, W, ch] in [0, 1]. */
export class ImageVAE extends Module implements LatentTokenizer {
  readonly config: ImageVaeConfig;
  readonly encoder: ImageEncoder;
  readonly decoder: ImageDecoder;
  /** Latent grid side (imageSize / patchSize). */
  readonly grid: number;

  constructor(input: ImageVaeConfigInput | ImageVaeConfig = {}) {
    super();
    this.config = imageVaeConfig(input);
    const rng = new Rng(this.config.seed);
    this.grid = this.config.imageSize / this.config.patchSize;
    this.encoder = this.module('encoder', new ImageEncoder(this.config, rng.fork('encoder')));
    this.decoder = this.module('decoder', new ImageDecoder(this.config, rng.fork('decoder')));
  }

  get latentDim(): number {
    return this.config.latentDim;
  }

  /** Latent vectors per image (grid^2). */
  get numTokens(): number {
    return this.grid * this.grid;
  }

  /** [B, H, W, ch] -> [B, N, p*p*ch], patches in raster order. */
  patchify(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const { imageSize: S, patchSize: p, channels: ch } = this.config;
      if (x.rank !== 4 || x.shape[1] !== S || x.shape[2] !== S || x.shape[3] !== ch)
        throw new Error(`ImageVAE: images must be [B, ${S}, ${S}, ${ch}], got shape [${x.shape}]`);
      return patchify(x, p); // [B, g g, p p ch], raster order
    });
  }

  /** [B, N, p*p*ch] -> [B, H, W, ch]. */
  unpatchify(x: tf.Tensor): tf.Tensor {
    const { imageSize: S, patchSize: p, channels: ch } = this.config;
    return unpatchify(x, S, S, ch, p);
  }

  encode(x: tf.Tensor): Posterior {
    const out = tf.tidy(() => {
      const e = this.encoder;
      return e.head.forward(e.vit.forward(e.patch_embed.forward(this.patchify(x)))); // [B, N, C or 2C]
    });
    return splitHead(out, this.config.latentDim, this.config.posterior === 'gaussian');
  }

  decode(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const { latentDim: C } = this.config;
      if (z.rank !== 3 || z.shape[1] !== this.numTokens || z.shape[2] !== C)
        throw new Error(
          `ImageVAE.decode: latents must be [B, ${this.numTokens}, ${C}] (batch, grid^2, latent dim), got shape [${z.shape}]`,
        );
      const d = this.decoder;
      const h = d.vit.forward(d.latent_embed.forward(z)); // [B, N, D]
      return this.unpatchify(d.out.forward(d.fc.forward(h).tanh())); // [B, H, W, ch]
    });
  }

  /** ||x_hat - x||^2 (mean) + klWeight * KL, with z sampled from the posterior. */
  loss(x: tf.Tensor, rng: Rng): VaeLoss {
    return tf.tidy(() => {
      const p = this.encode(x);
      const z = samplePosterior(p, this.config, rng);
      const rec = this.decode(z).sub(x).square().mean() as tf.Scalar;
      const kl = posteriorKl(p);
      return { loss: rec.add(kl.mul(this.config.klWeight)) as tf.Scalar, rec, kl };
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Speech VAE (1-D causal convolutions)

/**
 * Causal 1-D convolution (stride 1, left padding k - 1): core's Conv1d with 'causal' padding and a
 * zero-initialised bias. x [B, L, cin] -> [B, L, cout]; weight [k, cin, cout].
 */
export class CausalConv1d extends Conv1d {
  constructor(cin: number, cout: number, kernelSize: number, rng: Rng) {
    super(cin, cout, kernelSize, { padding: 'causal', biasInit: 'zeros', rng });
  }
}

/** Causal depthwise convolution (one kernel per channel). x [B, L, c] -> [B, L, c]. */
class CausalDepthwiseConv1d extends Module {
  readonly weight: tf.Variable; // [1, k, c, 1]
  readonly bias: tf.Variable; // [c]

  constructor(
    readonly channels: number,
    readonly kernelSize: number,
    rng: Rng,
  ) {
    super();
    const b = 1 / Math.sqrt(kernelSize);
    this.weight = this.param('weight', rng.rand([1, kernelSize, channels, 1], -b, b));
    this.bias = this.param('bias', tf.zeros([channels]));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [B, L, c] = x.shape as [number, number, number];
      const xp = tf
        .pad(x, [
          [0, 0],
          [this.kernelSize - 1, 0],
          [0, 0],
        ])
        .reshape([B, 1, L + this.kernelSize - 1, c]);
      return tf
        .depthwiseConv2d(xp as tf.Tensor4D, this.weight as unknown as tf.Tensor4D, 1, 'valid')
        .reshape([B, L, c])
        .add(this.bias);
    });
  }
}

/** ConvNeXt block, 1-D and causal: depthwise conv, LayerNorm, Linear(c, 2c), GELU, Linear(2c, c), residual. */
class ConvNeXtBlock1d extends Module {
  readonly dwconv: CausalDepthwiseConv1d;
  readonly norm: LayerNorm;
  readonly mlp: MLP;

  constructor(channels: number, kernelSize: number, rng: Rng) {
    super();
    this.dwconv = this.module('dwconv', new CausalDepthwiseConv1d(channels, kernelSize, rng));
    this.norm = this.module('norm', new LayerNorm(channels));
    this.mlp = this.module('mlp', new MLP(channels, 2 * channels, { activation: 'gelu', rng }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => x.add(this.mlp.forward(this.norm.forward(this.dwconv.forward(x)))));
  }
}

/** Causal strided conv with kernel = stride: [B, L, cin] -> [B, L / s, cout]. */
class Downsample1d extends Module {
  readonly proj: Linear;

  constructor(
    readonly cin: number,
    cout: number,
    readonly stride: number,
    rng: Rng,
  ) {
    super();
    this.proj = this.module('proj', new Linear(stride * cin, cout, { rng }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [B, L, c] = x.shape as [number, number, number];
      if (L % this.stride !== 0) throw new Error(`Downsample1d: length ${L} must be a multiple of the stride ${this.stride}`);
      return this.proj.forward(x.reshape([B, L / this.stride, this.stride * c]));
    });
  }
}

/** Transposed conv with kernel = stride: [B, L, cin] -> [B, L * s, cout]. */
class Upsample1d extends Module {
  readonly proj: Linear;

  constructor(
    cin: number,
    readonly cout: number,
    readonly stride: number,
    rng: Rng,
  ) {
    super();
    this.proj = this.module('proj', new Linear(cin, stride * cout, { rng }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [B, L] = x.shape as [number, number, number];
      return this.proj.forward(x).reshape([B, L * this.stride, this.cout]);
    });
  }
}

class SpeechEncoder extends Module {
  readonly conv_in: CausalConv1d;
  readonly stages: ModuleList<Module>;
  readonly norm: LayerNorm;
  readonly head: Linear;

  constructor(c: SpeechVaeConfig, rng: Rng) {
    super();
    let ch = c.channels;
    this.conv_in = this.module('conv_in', new CausalConv1d(c.nFft / 2 + 1, ch, c.kernelSize, rng));
    this.stages = this.module('stages', new ModuleList<Module>());
    for (const s of c.strides) {
      this.stages.push(new ConvNeXtBlock1d(ch, c.kernelSize, rng));
      this.stages.push(new Downsample1d(ch, 2 * ch, s, rng));
      ch *= 2;
    }
    this.stages.push(new ConvNeXtBlock1d(ch, c.kernelSize, rng));
    this.norm = this.module('norm', new LayerNorm(ch));
    this.head = this.module('head', new Linear(ch, c.posterior === 'gaussian' ? 2 * c.latentDim : c.latentDim, { rng }));
  }
}

class SpeechDecoder extends Module {
  readonly latent_in: Linear;
  readonly stages: ModuleList<Module>;
  readonly conv_out: CausalConv1d;

  constructor(c: SpeechVaeConfig, rng: Rng) {
    super();
    let ch = c.channels * 2 ** c.strides.length;
    this.latent_in = this.module('latent_in', new Linear(c.latentDim, ch, { rng }));
    this.stages = this.module('stages', new ModuleList<Module>());
    this.stages.push(new ConvNeXtBlock1d(ch, c.kernelSize, rng));
    for (const s of [...c.strides].reverse()) {
      this.stages.push(new Upsample1d(ch, ch / 2, s, rng));
      ch /= 2;
      this.stages.push(new ConvNeXtBlock1d(ch, c.kernelSize, rng));
    }
    this.conv_out = this.module('conv_out', new CausalConv1d(ch, c.nFft / 2 + 1, c.kernelSize, rng));
  }
}

type Forwardable = Module & { forward(x: tf.Tensor): tf.Tensor };

/** Periodic Hann window of length n. */
function hannWindow(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
}

/**
 * Short-time Fourier transform by matrix products (no FFT kernel needed, so it runs on every
 * backend): frame j covers samples [j hop, j hop + n) of the zero-padded signal, Hann window.
 */
export class Stft {
  readonly K: number;
  readonly window: Float32Array;
  /** [n, 2K]: windowed cos columns then -sin columns (real DFT). */
  private readonly forwardBasis: tf.Tensor2D;
  /** [2K, n]: inverse real DFT (Hermitian weights 1 at DC and Nyquist, 2 elsewhere). */
  private readonly inverseBasis: tf.Tensor2D;

  constructor(
    readonly n: number,
    readonly hop: number,
  ) {
    if (!Number.isInteger(n) || n < 8 || (n & (n - 1)) !== 0) throw new Error(`Stft: n must be a power of two >= 8, got ${n}`);
    if (!Number.isInteger(hop) || hop < 1 || hop > n) throw new Error(`Stft: hop must be an integer in [1, ${n}], got ${hop}`);
    const K = n / 2 + 1;
    this.K = K;
    this.window = hannWindow(n);
    const f = new Float32Array(n * 2 * K);
    const inv = new Float32Array(2 * K * n);
    for (let i = 0; i < n; i++)
      for (let k = 0; k < K; k++) {
        const a = (2 * Math.PI * i * k) / n;
        f[i * 2 * K + k] = (this.window[i] as number) * Math.cos(a);
        f[i * 2 * K + K + k] = -(this.window[i] as number) * Math.sin(a);
        const c = k === 0 || k === n / 2 ? 1 : 2;
        inv[k * n + i] = (c * Math.cos(a)) / n;
        inv[(K + k) * n + i] = (-c * Math.sin(a)) / n;
      }
    this.forwardBasis = tf.keep(tf.tensor2d(f, [n, 2 * K]));
    this.inverseBasis = tf.keep(tf.tensor2d(inv, [2 * K, n]));
  }

  /** Frames of a batch of signals: x [B, L] -> [B, F, n] with F = ceil(L / hop). */
  frames(x: tf.Tensor, F = Math.ceil((x.shape[1] as number) / this.hop)): tf.Tensor {
    return tf.tidy(() => {
      const [B, L] = x.shape as [number, number];
      const need = (F - 1) * this.hop + this.n;
      const xp =
        need > L
          ? tf.pad(x, [
              [0, 0],
              [0, need - L],
            ])
          : x;
      const idx = new Int32Array(F * this.n);
      for (let j = 0; j < F; j++) for (let i = 0; i < this.n; i++) idx[j * this.n + i] = j * this.hop + i;
      return tf.gather(xp, tf.tensor1d(idx, 'int32'), 1).reshape([B, F, this.n]);
    });
  }

  /** Complex spectrum [B, F, 2K] (real parts then imaginary parts). */
  spectrum(x: tf.Tensor, F?: number): tf.Tensor {
    return tf.tidy(() => {
      const fr = this.frames(x, F);
      const [B, Fn] = fr.shape as [number, number, number];
      return tf.matMul(fr.reshape([B * Fn, this.n]), this.forwardBasis).reshape([B, Fn, 2 * this.K]);
    });
  }

  /** Magnitudes [B, F, K]. */
  magnitude(x: tf.Tensor, F?: number): tf.Tensor {
    return tf.tidy(() => {
      const [re, im] = tf.split(this.spectrum(x, F), 2, 2);
      return re!.square().add(im!.square()).sqrt();
    });
  }

  /** Inverse STFT of one signal: spectrum [F, 2K] -> samples [L] (windowed overlap-add / sum of squared windows). */
  inverse(spec: tf.Tensor, L: number): Float32Array {
    const F = spec.shape[0] as number;
    const fr = tf.tidy(() => tf.matMul(spec, this.inverseBasis).dataSync()) as Float32Array; // [F, n]
    const y = new Float32Array(L);
    const wsum = new Float32Array(L);
    for (let j = 0; j < F; j++)
      for (let i = 0; i < this.n; i++) {
        const t = j * this.hop + i;
        if (t >= L) break;
        const w = this.window[i] as number;
        y[t] = (y[t] as number) + (fr[j * this.n + i] as number) * w;
        wsum[t] = (wsum[t] as number) + w * w;
      }
    for (let t = 0; t < L; t++) y[t] = (wsum[t] as number) > 1e-3 ? (y[t] as number) / (wsum[t] as number) : 0;
    return y;
  }

  /**
   * Griffin-Lim (Griffin & Lim 1984): a waveform of length L whose STFT magnitude approaches
   * `mag` [F, K], from random phases (seeded) and `iters` projections.
   */
  griffinLim(mag: tf.Tensor, L: number, iters: number, rng: Rng): Float32Array {
    const [F, K] = mag.shape as [number, number];
    if (K !== this.K) throw new Error(`Stft.griffinLim: magnitudes must have ${this.K} bins, got shape [${mag.shape}]`);
    const phase = rng.rand([F, K], 0, 2 * Math.PI);
    let spec = tf.tidy(() => tf.concat([mag.mul(phase.cos()), mag.mul(phase.sin())], 1));
    phase.dispose();
    let y = this.inverse(spec, L);
    for (let it = 0; it < iters; it++) {
      const next = tf.tidy(() => {
        const s = this.spectrum(tf.tensor2d(y, [1, L]), F).reshape([F, 2 * K]);
        const [re, im] = tf.split(s, 2, 1);
        const a = re!.square().add(im!.square()).sqrt().add(1e-12);
        return tf.concat([mag.mul(re!).div(a), mag.mul(im!).div(a)], 1);
      });
      spec.dispose();
      spec = next;
      y = this.inverse(spec, L);
    }
    spec.dispose();
    return y;
  }

  dispose(): void {
    this.forwardBasis.dispose();
    this.inverseBasis.dispose();
  }
}

/**
 * Speech sigma-VAE (or the learned-variance baseline) over log-magnitude STFT frames: causal 1-D
 * conv encoder and decoder along time, waveforms rendered by Griffin-Lim. Waveforms [B, L] with L a
 * multiple of `hop`; latent frames [B, L / hop, C].
 */
export class SpeechVAE extends Module implements LatentTokenizer {
  readonly config: SpeechVaeConfig;
  readonly encoder: SpeechEncoder;
  readonly decoder: SpeechDecoder;
  /** Waveform samples per latent frame (stftHop times the strides). */
  readonly hop: number;
  readonly stft: Stft;

  constructor(input: SpeechVaeConfigInput | SpeechVaeConfig = {}) {
    super();
    this.config = speechVaeConfig(input);
    const rng = new Rng(this.config.seed);
    this.hop = hopLength(this.config);
    this.stft = new Stft(this.config.nFft, this.config.stftHop);
    this.encoder = this.module('encoder', new SpeechEncoder(this.config, rng.fork('encoder')));
    this.decoder = this.module('decoder', new SpeechDecoder(this.config, rng.fork('decoder')));
  }

  get latentDim(): number {
    return this.config.latentDim;
  }

  /** Latent frames per second: the decoding steps per second of audio of a model over these latents. */
  get frameRate(): number {
    return this.config.sampleRate / this.hop;
  }

  private checkWave(x: tf.Tensor): void {
    if (x.rank !== 2) throw new Error(`SpeechVAE: waveforms must be [B, L], got shape [${x.shape}]`);
    if ((x.shape[1] as number) % this.hop !== 0 || x.shape[1] === 0)
      throw new Error(`SpeechVAE: waveform length must be a positive multiple of the hop ${this.hop}, got ${x.shape[1]}`);
  }

  /** Waveforms [B, L] -> log(|STFT| + logFloor) [B, L / stftHop, K], the VAE's input and target. */
  features(x: tf.Tensor): tf.Tensor {
    this.checkWave(x);
    return tf.tidy(() =>
      this.stft
        .magnitude(x, (x.shape[1] as number) / this.config.stftHop)
        .add(this.config.logFloor)
        .log(),
    );
  }

  encode(x: tf.Tensor): Posterior {
    const out = tf.tidy(() => {
      const e = this.encoder;
      let h = e.conv_in.forward(this.features(x)); // [B, F, c0]
      for (const s of e.stages.items as Forwardable[]) h = s.forward(h);
      return e.head.forward(e.norm.forward(h)); // [B, F / prod(strides), C or 2C]
    });
    return splitHead(out, this.config.latentDim, this.config.posterior === 'gaussian');
  }

  /** Latent frames [B, N, C] -> predicted log-magnitude frames [B, N * prod(strides), K]. */
  decode(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const C = this.config.latentDim;
      if (z.rank !== 3 || z.shape[2] !== C)
        throw new Error(`SpeechVAE.decode: latents must be [B, frames, ${C}] (latent dim ${C}), got shape [${z.shape}]`);
      const d = this.decoder;
      let h = d.latent_in.forward(z);
      for (const s of d.stages.items as Forwardable[]) h = s.forward(h);
      return d.conv_out.forward(h);
    });
  }

  /** Latent frames [B, N, C] -> waveforms (N * hop samples each) via Griffin-Lim (log-magnitudes clipped to [-30, 10], so wild latents stay finite). */
  decodeWaveform(z: tf.Tensor, opts: { iters?: number; seed?: number } = {}): Float32Array[] {
    const logMag = this.decode(z);
    const [B, F] = logMag.shape as [number, number, number];
    const rng = new Rng(opts.seed ?? 0);
    const out: Float32Array[] = [];
    for (let b = 0; b < B; b++) {
      const mag = tf.tidy(() =>
        logMag.slice([b, 0, 0], [1, F, this.stft.K]).reshape([F, this.stft.K]).clipByValue(-30, 10).exp().sub(this.config.logFloor).relu(),
      );
      out.push(this.stft.griffinLim(mag, F * this.config.stftHop, opts.iters ?? this.config.glIters, rng));
      mag.dispose();
    }
    logMag.dispose();
    return out;
  }

  /** mean |log-magnitude error| + klWeight * KL, with z sampled from the posterior. */
  loss(x: tf.Tensor, rng: Rng): VaeLoss {
    return tf.tidy(() => {
      const target = this.features(x);
      const p = this.encode(x);
      const z = samplePosterior(p, this.config, rng);
      const rec = this.decode(z).sub(target).abs().mean() as tf.Scalar;
      const kl = posteriorKl(p);
      return { loss: rec.add(kl.mul(this.config.klWeight)) as tf.Scalar, rec, kl };
    });
  }

  override dispose(): void {
    this.stft.dispose();
    super.dispose();
  }
}
