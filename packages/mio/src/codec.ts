/**
 * A SpeechTokenizer-style residual-VQ speech codec (Zhang et al. 2024, "SpeechTokenizer", arXiv
 * 2308.16692; the tokenizer MIO keeps levels 1-4 of, brief §2.1) at tone-speech scale: a 1-D conv
 * encoder, an L-level residual VQ (core's ResidualVQ, one codebook per level) and a conv decoder
 * back to a waveform. Level 1 is trained to carry content: a frame classifier on the level-1 codes
 * predicts the word of each frame from the data's alignment. SpeechTokenizer distils HuBERT into
 * RVQ-1; here a supervised word-identity target is the stand-in for HuBERT.
 *
 *   wave [B, L], L = T hop
 *   -> front end   log |STFT| (Hann window `fftSize`, hop h = hop / subframes), as a strided conv
 *                  with fixed Fourier filters: [B, N, F], N = T subframes, F = fftSize / 2 + 1
 *   -> encoder     conv k3, residual conv blocks at the subframe rate, a conv of kernel = stride =
 *                  subframes down to the frame rate, dilated residual blocks, conv k1: z [B, T, D]
 *   -> quantizer   RVQ: level l codes the residual z - sum_{j<l} q_j (SoundStream, Alg. 1)
 *                  indices [B, T, Lq], zq = z + sg(sum_l q_l - z)
 *   -> content     log p(word | z) over the level-1 codes (CodeClassifier; or a Linear on the
 *                  straight-through level-1 vector): [B, T, classes]
 *   -> decoder     conv k5, dilated residual blocks, conv of kernel = stride up to the subframe rate,
 *                  residual block, conv k1 -> controls [B, N, 2 + H]:
 *                  f0 = 150 Hz 2^c0, amplitude = 2 sigmoid(c1)^ln 10 + 1e-7 (DDSP's exp_sigmoid),
 *                  harmonic distribution softmax(c2..)
 *   -> oscillator  controls linearly interpolated to samples, y[n] = a[n] sum_k h_k[n] sin(2 pi k phi[n]),
 *                  phi[n] = sum_{m <= n} f0[m] / sr, harmonics at or above 0.9 Nyquist muted
 *                  (DDSP's harmonic synthesiser, Engel et al. 2020): wave [B, L]
 *
 * Where we depart from SpeechTokenizer, and why (each measured or forced by a CPU budget of minutes):
 * - The decoder ends in a harmonic oscillator instead of SEANet's transposed-conv waveform stack: on
 *   2 CPU cores a waveform-to-waveform conv decoder does not learn to produce readable speech within
 *   minutes (LatentLM's README: a waveform decoder with a multi-resolution STFT loss read back at WER
 *   0.96 after 100 steps), while tone speech is a harmonic voice that an oscillator renders exactly.
 *   The oscillator's frequency is trained against the YIN pitch track of the input (an auxiliary
 *   L1 loss in semitones, as neural source-filter vocoders condition on f0); during training the
 *   oscillator runs at the target pitch (teacher forcing), at decode time at the predicted one.
 * - No sample-wise waveform loss: the oscillator's phase is free (the data's start phases are random),
 *   so an L1 / MSE on samples would punish a correct signal; the reconstruction loss is the
 *   multi-resolution STFT loss of Parallel WaveGAN (Yamamoto et al. 2020): spectral convergence plus
 *   log-magnitude L1, at windows `stftSizes` (hop = window / 4).
 * - The encoder reads a fixed log-magnitude STFT (a first conv layer with frozen Fourier filters)
 *   instead of learning its filters from samples; no GAN or feature-matching losses; no weight norm
 *   and no normalisation layer other than the one on z (below).
 * - Content supervision is a word label per frame (frames in pauses carry no label) instead of
 *   HuBERT features, through a classifier over the level-1 codes instead of SpeechTokenizer's
 *   projection of the RVQ-1 output and its cosine loss.
 * - z is layer-normalised (no gain or bias) before the RVQ, so the content loss cannot grow z and
 *   the VQ losses with it (without it, with the Linear head, a content weight of 5 drove the summed
 *   VQ loss to 6 within 300 steps, against 0.4 at weight 1).
 *
 * Loss = spectral + f0Weight f0 + contentWeight CE(level 1) + vqWeight sum_l VQ loss_l (core's
 * VectorQuantizer: commitment, plus the codebook term unless the codebook is EMA-updated).
 */
import {
  Conv1d as CoreConv1d,
  crossEntropy,
  Linear,
  Module,
  ModuleList,
  parseConfig,
  ResidualVQ,
  Rng,
  silu,
  stopGradient,
  tf,
  type VectorQuantizerOptions,
} from '@mmlm/core';
import { z } from 'zod';

/** Label of a frame that carries no content target (a pause): core crossEntropy's ignore index. */
export const CODEC_IGNORE = -100;

const int = (min: number) => z.number().int().min(min);

export const SpeechCodecConfigSchema = z
  .object({
    /** Input and output sample rate in Hz (tone speech's content lies below 3.6 kHz: 8 kHz keeps all of it). */
    sampleRate: int(4000).default(8000),
    /** Samples per code frame: 160 at 8 kHz is 20 ms, SpeechTokenizer's 50 frames/s (320 at 16 kHz). */
    hop: int(2).default(160),
    /** Decoder controls (and encoder STFT frames) per code frame: 4 gives a 5 ms control rate, so pauses stay sharp. */
    subframes: int(1).default(4),
    /** Encoder front-end window in samples (30 ms); a multiple of hop / subframes. */
    fftSize: int(4).default(240),
    /** Conv width. */
    channels: int(1).default(64),
    /** Conv kernel of the residual blocks. */
    kernelSize: int(1).default(5),
    /** Dilations of the residual blocks at the frame rate (receptive field +-14 frames: a whole word). */
    dilations: z.array(int(1)).min(1).default([1, 2, 4]),
    /** Residual blocks at the subframe rate, in the encoder and in the decoder. */
    subframeBlocks: int(0).default(1),
    /** z = LayerNorm(encoder output) without gain or bias, so ||z||^2 = D: the content loss cannot inflate z (and the VQ losses with it). */
    latentNorm: z.boolean().default(true),
    /** D, the width of z and of each codebook vector. */
    dim: int(1).default(32),
    /** Lq, RVQ levels (MIO keeps SpeechTokenizer's levels 1-4). */
    levels: int(1).default(4),
    /** K, codes per level: must equal the vocabulary's speechCodebookSize (MIO: 1,024). */
    codebookSize: int(2).default(16),
    /** Content classes of the level-1 head (tone speech: its 16 words). */
    numClasses: int(2).default(16),
    /** Harmonics of the decoder's oscillator (tone speech voices have 10). */
    harmonics: int(1).default(10),
    /** Windows of the multi-resolution STFT loss in samples (hop = window / 4, which must divide the frame hop). */
    stftSizes: z.array(int(8)).min(1).default([160, 320, 640]),
    /** Loss weights (the spectral loss has weight 1). */
    f0Weight: z.number().nonnegative().default(0.1),
    contentWeight: z.number().nonnegative().default(2),
    /** Level-1 content head: 'codes' (soft assignment to the level-1 codes, each code's word distribution learned) or 'linear' (a Linear on the level-1 vector). */
    contentHead: z.enum(['codes', 'linear']).default('codes'),
    /** Temperature of the soft assignment of the 'codes' head: p(k | z) = softmax_k(-||z - e_k||^2 / tau). */
    contentTemperature: z.number().positive().default(4),
    vqWeight: z.number().nonnegative().default(1),
    /**
     * Quantizer dropout (SoundStream, Zeghidour et al. 2021, section 3.3): in training, each example is
     * reconstructed from its first n levels only, n uniform in [1, levels], with this probability
     * (else from all levels), so that the first levels decode on their own. 0 (default): off.
     */
    quantizerDropout: z.number().min(0).max(1).default(0),
    /** Quantizer: commitment weight beta (core VectorQuantizer), legacy layout. */
    beta: z.number().nonnegative().default(0.25),
    /** EMA codebooks with this decay (null: codebooks learned by gradient, the codebook loss term). */
    emaDecay: z.number().gt(0).lt(1).nullable().default(null),
    /** Initialise each level's codebook by k-means on its first training batch (core kmeansInit). */
    kmeansInit: z.boolean().default(true),
    /** Restart a code unused for this many training steps with a batch vector (0 = off). */
    deadCodeSteps: int(0).default(20),
    /** Seed of the initial weights. */
    seed: z.number().int().default(0),
  })
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (c.hop % c.subframes !== 0) issue('hop', `hop ${c.hop} must be a multiple of subframes ${c.subframes}`);
    const hs = c.hop / c.subframes;
    if (Number.isInteger(hs) && c.fftSize % hs !== 0)
      issue('fftSize', `fftSize ${c.fftSize} must be a multiple of hop / subframes = ${hs}`);
    for (const w of c.stftSizes)
      if (w % 4 !== 0 || c.hop % (w / 4) !== 0)
        issue('stftSizes', `STFT window ${w} must be a multiple of 4 whose hop ${w / 4} divides the frame hop ${c.hop}`);
  });
export type SpeechCodecConfigInput = z.input<typeof SpeechCodecConfigSchema>;
export type SpeechCodecConfig = z.infer<typeof SpeechCodecConfigSchema>;

/** A validated codec config; errors name each bad field with its expected and actual value. */
export function speechCodecConfig(input: SpeechCodecConfigInput = {}): SpeechCodecConfig {
  return parseConfig('SpeechCodec', SpeechCodecConfigSchema, input);
}

export const CODEC_PRESETS = {
  /** Tests: width 8, 8 codes per level (the `tiny` vocabulary's speechCodebookSize), 4 harmonics. */
  tiny: speechCodecConfig({
    channels: 8,
    dim: 8,
    codebookSize: 8,
    harmonics: 4,
    dilations: [1],
    subframeBlocks: 0,
    stftSizes: [160, 320],
  }),
  /** Width 64, 4 levels of 16 codes (the `small` vocabulary's speechCodebookSize), 10 harmonics. */
  small: speechCodecConfig({}),
  /**
   * The `small` codec at 12.5 frames/s (hop 640 at 8 kHz, 16 subframes: controls still every 5 ms)
   * with quantizer dropout 0.5: a quarter of SpeechTokenizer's 50 frames/s, so a 2-word utterance is
   * about 14 frames (56 output codes) instead of 53 (212). Chosen for mio.speech-layout, where a
   * decoder trained on the 50 frames/s codes did not speak (TTS WER 0.86 after 2,000 steps on 16,000
   * utterances; 0.55 at 12.5 frames/s after 3,000): see the package README.
   */
  'small-12.5hz': speechCodecConfig({ hop: 640, subframes: 16, quantizerDropout: 0.5 }),
  /**
   * `small-12.5hz` with 64 codes per level instead of 16 (MIO's SpeechTokenizer has 1,024): with 16
   * codes level 1 alone names 75% of words (linear probe) and the decoder cannot speak from it; with
   * 64, 99% (see the package README, "A codec whose first level carries the words").
   */
  'small-12.5hz-k64': speechCodecConfig({ hop: 640, subframes: 16, quantizerDropout: 0.5, codebookSize: 64 }),
} as const;

export type CodecPresetName = keyof typeof CODEC_PRESETS;
/** The codec preset names (the experiments' `codec` setting), in CODEC_PRESETS' order. */
export const CODEC_PRESET_NAMES = Object.keys(CODEC_PRESETS) as [CodecPresetName, ...CodecPresetName[]];

/** A deep copy of a codec preset. */
export function codecPreset(name: string): SpeechCodecConfig {
  const p = Object.hasOwn(CODEC_PRESETS, name) ? (CODEC_PRESETS as Record<string, SpeechCodecConfig>)[name] : undefined;
  if (!p) throw new Error(`SpeechCodec: unknown preset "${name}"; expected one of ${Object.keys(CODEC_PRESETS).join(', ')}`);
  return structuredClone(p);
}

// ---------------------------------------------------------------------------------------------
// Layers.

/**
 * 1-D convolution, 'same' padding, stride 1: x [B, N, cin] -> [B, N, cout], weight [k, cin, cout]:
 * core's Conv1d (im2col + one matmul; PyTorch's default U(+-1/sqrt(cin k)) init for weight and
 * bias), with this package's positional constructor.
 */
export class Conv1d extends CoreConv1d {
  constructor(cin: number, cout: number, kernelSize: number, rng: Rng, dilation = 1) {
    super(cin, cout, kernelSize, { padding: 'same', dilation, rng });
  }
}

/** x + conv_k1(silu(conv_k,d(silu(x)))): SEANet's residual unit (ELU -> conv k, d -> ELU -> conv 1), SiLU for ELU. */
class ResBlock extends Module {
  readonly block: ModuleList<Conv1d>;
  constructor(ch: number, k: number, d: number, rng: Rng) {
    super();
    this.block = this.module('block', new ModuleList([new Conv1d(ch, ch, k, rng, d), new Conv1d(ch, ch, 1, rng)]));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => x.add(this.block.at(1).forward(silu(this.block.at(0).forward(silu(x))))));
  }
}

/** [B, N, C] -> [B, N / r, C']: a conv of kernel = stride = r, as a reshape and a Linear. */
class Down extends Module {
  readonly proj: Linear;
  constructor(
    readonly ch: number,
    readonly r: number,
    out: number,
    rng: Rng,
  ) {
    super();
    this.proj = this.module('proj', new Linear(ch * r, out, { rng }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [B, N] = x.shape as [number, number, number];
      return this.proj.forward(x.reshape([B, N / this.r, this.r * this.ch]));
    });
  }
}

/** [B, T, C] -> [B, T r, C']: a transposed conv of kernel = stride = r, as a Linear and a reshape. */
class Up extends Module {
  readonly proj: Linear;
  constructor(
    ch: number,
    readonly r: number,
    readonly out: number,
    rng: Rng,
  ) {
    super();
    this.proj = this.module('proj', new Linear(ch, out * r, { rng }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [B, T] = x.shape as [number, number, number];
      return this.proj.forward(x).reshape([B, T * this.r, this.out]);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Fourier helpers (matmuls, so they run and differentiate on every backend; wasm has no FFT)

const dftCache = new Map<string, tf.Tensor2D>();

/** Periodic Hann window times the real DFT, normalised by the window's sum: [n, 2 F], columns re_0..re_F-1, im_0..im_F-1. */
function dftMatrix(n: number): tf.Tensor2D {
  const key = `${tf.getBackend()}:${n}`;
  const hit = dftCache.get(key);
  if (hit && !hit.isDisposed) return hit;
  const F = n / 2 + 1;
  const m = new Float32Array(n * 2 * F);
  const win = Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
  const sum = win.reduce((a, b) => a + b, 0);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < F; k++) {
      const a = (2 * Math.PI * k * i) / n;
      m[i * 2 * F + k] = (win[i]! * Math.cos(a)) / sum;
      m[i * 2 * F + F + k] = (-win[i]! * Math.sin(a)) / sum;
    }
  const t = tf.keep(tf.tensor2d(m, [n, 2 * F]));
  dftCache.set(key, t);
  return t;
}

/**
 * |STFT| of wave [B, L] with a Hann window `n` and hop `h` (n a multiple of h, L a multiple of h):
 * frame j is centred on sample j h + h / 2 (zero padding at both ends), so there are L / h frames.
 * Returns [B, L / h, n / 2 + 1], differentiable (framing by reshapes and slices, the DFT as a matmul).
 */
export function stftMagnitude(wave: tf.Tensor, n: number, h: number): tf.Tensor {
  return tf.tidy(() => {
    const [B, L] = wave.shape as [number, number];
    const m = n / h;
    const N = L / h;
    const padL = ((m - 1) * h) / 2;
    const xp = tf.pad(wave, [
      [0, 0],
      [Math.floor(padL), (m - 1) * h - Math.floor(padL)],
    ]); // [B, (N + m - 1) h]
    const chunks = xp.reshape([B, N + m - 1, h]);
    const frames =
      m === 1
        ? chunks
        : tf.concat(
            Array.from({ length: m }, (_, i) => chunks.slice([0, i, 0], [B, N, h])),
            2,
          ); // [B, N, n]
    const F = n / 2 + 1;
    const spec = tf.matMul(frames.reshape([B * N, n]), dftMatrix(n)); // [B N, 2F]
    const re = spec.slice([0, 0], [B * N, F]);
    const im = spec.slice([0, F], [B * N, F]);
    return re.square().add(im.square()).add(1e-12).sqrt().reshape([B, N, F]);
  });
}

/**
 * Multi-resolution STFT loss (Yamamoto et al. 2020, Parallel WaveGAN eq. 4-6), mean over the
 * windows of ||S - S^||_F / ||S||_F + mean |log(S + eps) - log(S^ + eps)|, eps = 1e-4 (-80 dB of
 * full scale, so pauses must be silent). pred, target [B, L].
 */
export function multiResolutionStftLoss(pred: tf.Tensor, target: tf.Tensor, sizes: readonly number[]): tf.Scalar {
  return tf.tidy(() => {
    const terms = sizes.map((n) => {
      const S = stopGradient(stftMagnitude(target, n, n / 4));
      const P = stftMagnitude(pred, n, n / 4);
      const sc = P.sub(S).square().sum().sqrt().div(S.square().sum().sqrt().add(1e-7));
      const mag = P.add(1e-4).log().sub(S.add(1e-4).log()).abs().mean();
      return sc.add(mag);
    });
    return tf.addN(terms).div(sizes.length) as tf.Scalar;
  });
}

/**
 * Linear interpolation of controls c [B, N, C], control j at the centre of subframe j (sample
 * j h + (h - 1) / 2), to every sample:
 * [B, N h, C] (held flat before the first and after the last control). Differentiable.
 */
export function upsampleLinear(c: tf.Tensor, h: number): tf.Tensor {
  return tf.tidy(() => {
    const [B, N, C] = c.shape as [number, number, number];
    const cp = tf.concat([c.slice([0, 0, 0], [B, 1, C]), c, c.slice([0, N - 1, 0], [B, 1, C])], 1); // [B, N + 2, C]
    const lo = cp.slice([0, 0, 0], [B, N + 1, C]).expandDims(2); // [B, N + 1, 1, C], control at j h - h / 2
    const hi = cp.slice([0, 1, 0], [B, N + 1, C]).expandDims(2);
    const a = tf.tensor1d(Array.from({ length: h }, (_, i) => (i + 0.5) / h)).reshape([1, 1, h, 1]); // [1, 1, h, 1]
    const y = lo
      .mul(tf.sub(1, a))
      .add(hi.mul(a))
      .reshape([B, (N + 1) * h, C]); // samples from -h / 2
    return y.slice([0, Math.floor(h / 2), 0], [B, N * h, C]);
  });
}

/** The host version of upsampleLinear for one signal: values [N] -> [N h]. */
export function upsampleLinearHost(v: ArrayLike<number>, h: number): Float32Array {
  const N = v.length;
  const out = new Float32Array(N * h);
  const off = Math.floor(h / 2);
  for (let n = 0; n < N * h; n++) {
    const s = n + off; // sample index counted from -h / 2
    const j = Math.floor(s / h); // between padded controls j and j + 1
    const a = (s - j * h + 0.5) / h;
    const lo = v[Math.min(N - 1, Math.max(0, j - 1))]!;
    const hi = v[Math.min(N - 1, Math.max(0, j))]!;
    out[n] = lo * (1 - a) + hi * a;
  }
  return out;
}

/**
 * The oscillator's basis sin(2 pi k phi[n]) for k = 1..H, phi[n] = sum_{m <= n} f0[m] / sr, from
 * per-sample pitch f0 [B][L] (Hz; host arrays): [B, L, H] float32, harmonics with k f0 >= 0.9 Nyquist
 * set to 0 (as the tone synthesiser). No gradient: the pitch is trained by its own loss.
 */
export function harmonicBasis(f0: readonly Float32Array[], H: number, sampleRate: number): tf.Tensor3D {
  const B = f0.length;
  const L = f0[0]?.length ?? 0;
  const out = new Float32Array(B * L * H);
  const cap = 0.45 * sampleRate;
  for (let b = 0; b < B; b++) {
    const f = f0[b]!;
    if (f.length !== L) throw new Error(`harmonicBasis: every row needs ${L} samples, row ${b} has ${f.length}`);
    let phi = 0;
    for (let n = 0; n < L; n++) {
      const hz = f[n]!;
      phi += hz / sampleRate;
      phi -= Math.floor(phi);
      const base = (b * L + n) * H;
      for (let k = 1; k <= H && k * hz < cap; k++) out[base + k - 1] = Math.sin(2 * Math.PI * k * phi);
    }
  }
  return tf.tensor3d(out, [B, L, H]);
}

// ---------------------------------------------------------------------------------------------
// The codec

/** Reference pitch of the f0 control: f0 = F0_REF 2^c0. */
export const F0_REF_HZ = 150;

class Encoder extends Module {
  readonly conv_in: Conv1d;
  readonly sub: ModuleList<ResBlock>;
  readonly down: Down;
  readonly blocks: ModuleList<ResBlock>;
  readonly conv_out: Conv1d;
  constructor(c: SpeechCodecConfig, rng: Rng) {
    super();
    const F = c.fftSize / 2 + 1;
    this.conv_in = this.module('conv_in', new Conv1d(F, c.channels, 3, rng));
    this.sub = this.module(
      'sub',
      new ModuleList(Array.from({ length: c.subframeBlocks }, () => new ResBlock(c.channels, c.kernelSize, 1, rng))),
    );
    this.down = this.module('down', new Down(c.channels, c.subframes, c.channels, rng));
    this.blocks = this.module('blocks', new ModuleList(c.dilations.map((d) => new ResBlock(c.channels, c.kernelSize, d, rng))));
    this.conv_out = this.module('conv_out', new Conv1d(c.channels, c.dim, 1, rng));
  }
  forward(logmag: tf.Tensor /* [B, N, F] */): tf.Tensor /* [B, T, D] */ {
    return tf.tidy(() => {
      let h = this.conv_in.forward(logmag);
      for (const b of this.sub) h = b.forward(h);
      h = this.down.forward(silu(h));
      for (const b of this.blocks) h = b.forward(h);
      return this.conv_out.forward(silu(h));
    });
  }
}

class Decoder extends Module {
  readonly conv_in: Conv1d;
  readonly blocks: ModuleList<ResBlock>;
  readonly up: Up;
  readonly sub: ModuleList<ResBlock>;
  readonly conv_out: Conv1d;
  constructor(c: SpeechCodecConfig, rng: Rng) {
    super();
    this.conv_in = this.module('conv_in', new Conv1d(c.dim, c.channels, c.kernelSize, rng));
    this.blocks = this.module('blocks', new ModuleList(c.dilations.map((d) => new ResBlock(c.channels, c.kernelSize, d, rng))));
    this.up = this.module('up', new Up(c.channels, c.subframes, c.channels, rng));
    this.sub = this.module(
      'sub',
      new ModuleList(Array.from({ length: c.subframeBlocks }, () => new ResBlock(c.channels, c.kernelSize, 1, rng))),
    );
    this.conv_out = this.module('conv_out', new Conv1d(c.channels, 2 + c.harmonics, 1, rng));
  }
  forward(zq: tf.Tensor /* [B, T, D] */): tf.Tensor /* [B, N, 2 + H] */ {
    return tf.tidy(() => {
      let h = this.conv_in.forward(zq);
      for (const b of this.blocks) h = b.forward(h);
      h = this.up.forward(silu(h));
      for (const b of this.sub) h = b.forward(h);
      return this.conv_out.forward(silu(h));
    });
  }
}

/**
 * The 'codes' content head: log p(word | z) = log sum_k p(k | z) p(word | k), with p(k | z) =
 * softmax_k(-||z - e_k||^2 / tau) over the level-1 codes e_k and p(word | k) = softmax(`logits`[k]).
 * Its gradient pulls z towards the level-1 codes that stand for the frame's word, so the hard
 * level-1 assignment itself becomes word-pure (a Linear head on the level-1 vector only asks that
 * z be linearly separable by word, which measured weaker: README).
 */
export class CodeClassifier extends Module {
  readonly logits: tf.Variable; // [K, classes]
  constructor(K: number, classes: number) {
    super();
    this.logits = this.param('logits', tf.zeros([K, classes]));
  }
  forward(z: tf.Tensor /* [B, T, D] */, codebook: tf.Tensor2D /* [K, D] */, tau: number): tf.Tensor /* [B, T, classes] log-probs */ {
    return tf.tidy(() => {
      const [B, T, D] = z.shape as [number, number, number];
      const K = codebook.shape[0];
      const flat = z.reshape([B * T, D]);
      const d2 = flat
        .square()
        .sum(1, true)
        .add(codebook.square().sum(1).reshape([1, K]))
        .sub(tf.matMul(flat, codebook, false, true).mul(2)); // [BT, K]
      const logPk = tf.logSoftmax(d2.div(-tau)); // [BT, K]
      const logPw = tf.logSoftmax(this.logits); // [K, classes]
      const joint = logPk.expandDims(2).add(logPw.expandDims(0)); // [BT, K, classes]
      return tf.logSumExp(joint, 1).reshape([B, T, -1]);
    });
  }
}

/** The decoder's controls at the subframe rate. */
export interface CodecControls {
  /** Pitch in Hz. [B, N] */
  f0: tf.Tensor2D;
  /** Amplitude a times harmonic distribution h_k. [B, N, H] */
  harmonicAmps: tf.Tensor3D;
}

/** Quantizer output with the per-level parts the losses and metrics need. */
export interface CodecQuantized {
  /** Straight-through sum of the levels. [B, T, D] */
  zq: tf.Tensor3D;
  /** Level-1 vector, straight-through to z (the content head's input). [B, T, D] */
  level1: tf.Tensor3D;
  /** int32 [B, T, Lq] */
  indices: tf.Tensor3D;
  /** Sum over levels of each level's VQ loss. */
  vqLoss: tf.Scalar;
  /** Fraction of the K codes each level used in this batch. [Lq] */
  usage: tf.Tensor1D;
}

/** A training batch: waveforms plus the content and pitch targets. */
export interface CodecBatch {
  /** [B, L], L = T hop. */
  wave: tf.Tensor2D;
  /** Word class of each frame, CODEC_IGNORE in pauses; int32 [B, T]. */
  labels: tf.Tensor2D;
  /** Target pitch per subframe in Hz, 0 where unvoiced (no f0 loss there). [B][N] host arrays. */
  f0: readonly Float32Array[];
}

export interface CodecLossParts {
  loss: tf.Scalar;
  spectral: tf.Scalar;
  /** Mean |12 log2(f0^ / f0)| over voiced subframes (semitones). */
  f0: tf.Scalar;
  content: tf.Scalar;
  vq: tf.Scalar;
  /** Per-frame accuracy of the level-1 head on labelled frames. */
  contentAcc: tf.Scalar;
  usage: tf.Tensor1D;
}

/** Codes of one utterance, [Lq][T]: what MultimodalTokenizer takes as a speech segment's `levels`. */
export type SpeechCodes = number[][];

export class SpeechCodec extends Module {
  readonly config: SpeechCodecConfig;
  readonly encoder: Encoder;
  readonly quantizer: ResidualVQ;
  readonly content: Linear | CodeClassifier;
  readonly decoder: Decoder;
  private readonly dropoutRng: Rng;

  constructor(input: SpeechCodecConfigInput | SpeechCodecConfig = {}) {
    super();
    this.config = speechCodecConfig(input);
    const c = this.config;
    const rng = new Rng(c.seed);
    this.encoder = this.module('encoder', new Encoder(c, rng.fork('encoder')));
    const vq: VectorQuantizerOptions = {
      beta: c.beta,
      kmeansInit: c.kmeansInit,
      deadCodeSteps: c.deadCodeSteps,
      rng: this.rngStream('quantizer', rng.fork('quantizer')), // k-means and dead-code draws, checkpointed by trainLoop
      ...(c.emaDecay !== null ? { emaDecay: c.emaDecay } : {}),
    };
    this.quantizer = this.module('quantizer', new ResidualVQ(c.levels, c.codebookSize, c.dim, vq));
    this.dropoutRng = this.rngStream('quantizerDropout', rng.fork('quantizerDropout')); // checkpointed by trainLoop
    this.content = this.module(
      'content',
      c.contentHead === 'linear'
        ? new Linear(c.dim, c.numClasses, { rng: rng.fork('content') })
        : new CodeClassifier(c.codebookSize, c.numClasses),
    );
    this.decoder = this.module('decoder', new Decoder(c, rng.fork('decoder')));
  }

  /** Samples per code frame. */
  get hop(): number {
    return this.config.hop;
  }
  /** Code frames per second. */
  get frameRate(): number {
    return this.config.sampleRate / this.config.hop;
  }
  /** Samples per decoder control. */
  get subHop(): number {
    return this.config.hop / this.config.subframes;
  }

  private checkWave(who: string, wave: tf.Tensor): [number, number] {
    if (wave.rank !== 2 || wave.dtype !== 'float32')
      throw new Error(`SpeechCodec.${who}: wave must be float32 [B, L], got ${wave.dtype} [${wave.shape}]`);
    const [B, L] = wave.shape as [number, number];
    if (L < this.hop || L % this.hop !== 0)
      throw new Error(
        `SpeechCodec.${who}: wave length must be a positive multiple of the hop ${this.hop} samples, got ${L} (pad to ${Math.max(1, Math.ceil(L / this.hop)) * this.hop})`,
      );
    return [B, L];
  }

  /** Encoder: wave [B, L] -> z [B, T, D], T = L / hop (before quantization). */
  encodeLatents(wave: tf.Tensor): tf.Tensor3D {
    this.checkWave('encodeLatents', wave);
    return tf.tidy(() => {
      const mag = stftMagnitude(stopGradient(wave), this.config.fftSize, this.subHop); // [B, N, F]
      const x = mag.add(1e-5).log().add(5).div(3); // roughly zero-mean, unit-range log magnitude
      const z = this.encoder.forward(x);
      if (!this.config.latentNorm) return z as tf.Tensor3D;
      const zc = z.sub(z.mean(-1, true));
      return zc.mul(tf.rsqrt(zc.square().mean(-1, true).add(1e-5))) as tf.Tensor3D;
    });
  }

  /**
   * Residual VQ of z [B, T, D] through core's ResidualVQ levels, as ResidualVQ.forward (each level's
   * output detached before it is subtracted, one straight-through estimator for the sum), keeping
   * the level-1 vector and each level's usage. In training mode the levels apply their k-means
   * init, EMA and dead-code updates.
   */
  quantize(z: tf.Tensor3D, keepLevels?: readonly number[]): CodecQuantized {
    const [B] = z.shape;
    if (keepLevels && (keepLevels.length !== B || keepLevels.some((n) => !Number.isInteger(n) || n < 1 || n > this.config.levels)))
      throw new Error(
        `SpeechCodec.quantize: keepLevels must be ${B} integers in [1, ${this.config.levels}], got [${keepLevels.join(', ')}]`,
      );
    return tf.tidy(() => {
      let residual: tf.Tensor = z;
      let total: tf.Tensor = tf.zerosLike(z);
      let vqLoss: tf.Tensor = tf.scalar(0);
      let level1: tf.Tensor | null = null;
      const idx: tf.Tensor[] = [];
      const usage: tf.Tensor[] = [];
      let l = 0;
      for (const q of this.quantizer.layers) {
        const o = q.forward(residual);
        if (!level1) level1 = o.zq;
        const qi = stopGradient(o.zq);
        // quantizer dropout: example b's reconstruction sums its first keepLevels[b] levels only
        const lvl = l++;
        total = total.add(
          keepLevels
            ? qi.mul(
                tf.tensor3d(
                  keepLevels.map((n) => (lvl < n ? 1 : 0)),
                  [B, 1, 1],
                ),
              )
            : qi,
        );
        residual = residual.sub(qi);
        vqLoss = vqLoss.add(o.loss);
        idx.push(o.indices);
        usage.push(o.usage);
      }
      return {
        zq: z.add(stopGradient(total.sub(z))) as tf.Tensor3D,
        level1: level1 as tf.Tensor3D,
        indices: tf.stack(idx, -1) as tf.Tensor3D,
        vqLoss: vqLoss as tf.Scalar,
        usage: tf.stack(usage) as tf.Tensor1D,
      };
    });
  }

  /** Decoder: quantized z [B, T, D] -> controls at the subframe rate. */
  controls(zq: tf.Tensor): CodecControls {
    return tf.tidy(() => {
      const [B, T] = zq.shape as [number, number, number];
      const N = T * this.config.subframes;
      const H = this.config.harmonics;
      const c = this.decoder.forward(zq); // [B, N, 2 + H]
      const f0 = tf
        .pow(2, c.slice([0, 0, 0], [B, N, 1]))
        .mul(F0_REF_HZ)
        .reshape([B, N]) as tf.Tensor2D;
      // DDSP's exp_sigmoid: 2 sigmoid(x)^ln(10) + 1e-7
      const amp = tf
        .sigmoid(c.slice([0, 0, 1], [B, N, 1]))
        .pow(Math.log(10))
        .mul(2)
        .add(1e-7); // [B, N, 1]
      const harm = tf.softmax(c.slice([0, 0, 2], [B, N, H])); // [B, N, H]
      return { f0, harmonicAmps: harm.mul(amp) as tf.Tensor3D };
    });
  }

  /**
   * The oscillator: controls -> wave [B, N subHop]. The phase follows `f0Override` (per subframe,
   * Hz; teacher forcing in training) when given, else the predicted pitch.
   */
  synthesize(ctl: CodecControls, f0Override?: readonly Float32Array[]): tf.Tensor2D {
    const [B, N] = ctl.f0.shape;
    const rows = f0Override ?? unstackRows(ctl.f0);
    if (rows.length !== B || rows.some((r) => r.length !== N))
      throw new Error(
        `SpeechCodec.synthesize: pitch must be ${B} rows of ${N} subframes, got ${rows.length} rows of [${rows.map((r) => r.length)}]`,
      );
    const h = this.subHop;
    return tf.tidy(() => {
      const basis = harmonicBasis(
        rows.map((r) => upsampleLinearHost(r, h)),
        this.config.harmonics,
        this.config.sampleRate,
      ); // [B, L, H]
      return upsampleLinear(ctl.harmonicAmps, h).mul(basis).sum(-1) as tf.Tensor2D; // [B, L]
    });
  }

  /**
   * Every loss term of one batch (SpeechTokenizer's objective with our substitutions, see the file
   * comment): reconstruction through the oscillator at the target pitch, pitch L1 in semitones on
   * voiced subframes, level-1 content CE on labelled frames, and the VQ losses.
   */
  losses(batch: CodecBatch): CodecLossParts {
    const [B, L] = this.checkWave('losses', batch.wave);
    const T = L / this.hop;
    const N = T * this.config.subframes;
    if (batch.labels.rank !== 2 || batch.labels.shape[0] !== B || batch.labels.shape[1] !== T || batch.labels.dtype !== 'int32')
      throw new Error(
        `SpeechCodec.losses: labels must be int32 [${B}, ${T}] (one per frame), got ${batch.labels.dtype} [${batch.labels.shape}]`,
      );
    if (batch.f0.length !== B || batch.f0.some((r) => r.length !== N))
      throw new Error(
        `SpeechCodec.losses: f0 must be ${B} rows of ${N} subframes (${this.config.subframes} per frame), got ${batch.f0.length} rows of [${batch.f0.map((r) => r.length)}]`,
      );
    // voiced mask and the teacher-forcing pitch (unvoiced subframes take the nearest voiced pitch)
    const voiced = new Float32Array(B * N);
    const teacher = batch.f0.map((row, b) => {
      const out = Float32Array.from(row);
      for (let n = 0; n < N; n++) voiced[b * N + n] = row[n]! > 0 ? 1 : 0;
      fillUnvoiced(out);
      return out;
    });
    const f0Target = Float32Array.from(teacher.flatMap((r) => Array.from(r)));
    return tf.tidy(() => {
      const z = this.encodeLatents(batch.wave);
      const c = this.config;
      const keep =
        this.training && c.quantizerDropout > 0
          ? Array.from({ length: B }, () =>
              this.dropoutRng.uniform() < c.quantizerDropout ? this.dropoutRng.int(1, c.levels + 1) : c.levels,
            )
          : undefined;
      const zq = this.quantize(z, keep);
      const logits =
        this.content instanceof CodeClassifier
          ? this.content.forward(z, this.quantizer.layers.at(0).codebook(), this.config.contentTemperature)
          : this.content.forward(zq.level1); // [B, T, classes]
      const content = crossEntropy(logits, batch.labels, { ignoreIndex: CODEC_IGNORE });
      const mask = tf.notEqual(batch.labels, CODEC_IGNORE).toFloat();
      const hit = tf.equal(logits.argMax(-1), batch.labels).toFloat().mul(mask);
      const contentAcc = hit.sum().div(tf.maximum(mask.sum(), 1)) as tf.Scalar;
      const ctl = this.controls(zq.zq);
      const vmask = tf.tensor2d(voiced, [B, N]);
      const st = ctl.f0
        .log()
        .sub(tf.tensor2d(f0Target, [B, N]).log())
        .abs()
        .mul(12 / Math.LN2); // [B, N] semitones
      const f0 = st.mul(vmask).sum().div(tf.maximum(vmask.sum(), 1)) as tf.Scalar;
      const wave = this.synthesize(ctl, teacher);
      const spectral = multiResolutionStftLoss(wave, batch.wave, this.config.stftSizes);
      const loss = spectral.add(f0.mul(c.f0Weight)).add(content.mul(c.contentWeight)).add(zq.vqLoss.mul(c.vqWeight)) as tf.Scalar;
      return { loss, spectral, f0, content, vq: zq.vqLoss, contentAcc, usage: zq.usage };
    });
  }

  /** Codes of a batch: wave [B, L] -> int32 [B, T, Lq] (nearest codes level by level; no codebook updates). */
  encodeIndices(wave: tf.Tensor): tf.Tensor3D {
    this.checkWave('encodeIndices', wave);
    return tf.tidy(() => {
      const z = this.encodeLatents(wave);
      const [B, T, D] = z.shape;
      let residual = z.reshape([B * T, D]) as tf.Tensor2D;
      const idx: tf.Tensor[] = [];
      for (const q of this.quantizer.layers) {
        const i = q.nearest(residual);
        residual = residual.sub(tf.gather(q.codebook(), i)) as tf.Tensor2D;
        idx.push(i);
      }
      return tf.stack(idx, -1).reshape([B, T, this.config.levels]) as tf.Tensor3D;
    });
  }

  /** Waveforms of codes int32 [B, T, Lq] -> [B, T hop], the oscillator at the predicted pitch. */
  decodeIndices(indices: tf.Tensor): tf.Tensor2D {
    const Lq = this.config.levels;
    if (indices.rank !== 3 || indices.shape[2] !== Lq || indices.dtype !== 'int32')
      throw new Error(
        `SpeechCodec.decodeIndices: codes must be int32 [B, T, ${Lq}] (${Lq} levels), got ${indices.dtype} [${indices.shape}]`,
      );
    const zq = this.quantizer.decode(indices); // checks each code's range
    try {
      const ctl = this.controls(zq);
      try {
        return this.synthesize(ctl);
      } finally {
        ctl.f0.dispose();
        ctl.harmonicAmps.dispose();
      }
    } finally {
      zq.dispose();
    }
  }

  /**
   * Codes of one utterance: samples at `sampleRate` (checked against the config) -> [Lq][T], the
   * layout MultimodalTokenizer takes (`{ type: 'speech', levels }`; input speech keeps `[levels[0]]`).
   * The end is zero-padded to a whole frame: T = ceil(length / hop).
   */
  encode(samples: ArrayLike<number>, opts: { sampleRate?: number } = {}): SpeechCodes {
    const sr = opts.sampleRate ?? this.config.sampleRate;
    if (sr !== this.config.sampleRate)
      throw new Error(`SpeechCodec.encode: sample rate ${sr} Hz, expected ${this.config.sampleRate} Hz (resample first)`);
    if (!samples || samples.length === 0) throw new Error('SpeechCodec.encode: expected at least one sample, got 0');
    const T = Math.ceil(samples.length / this.hop);
    const x = new Float32Array(T * this.hop);
    x.set(samples as ArrayLike<number>);
    const wave = tf.tensor2d(x, [1, x.length]);
    const idx = this.encodeIndices(wave);
    const flat = idx.dataSync() as Int32Array;
    tf.dispose([wave, idx]);
    const Lq = this.config.levels;
    return Array.from({ length: Lq }, (_, l) => Array.from({ length: T }, (_, t) => flat[t * Lq + l]!));
  }

  /** The waveform of codes [Lq][T] (all Lq levels, equal lengths, each code in [0, K)): T hop samples. */
  decode(codes: SpeechCodes): Float32Array {
    const { levels: Lq, codebookSize: K } = this.config;
    if (!Array.isArray(codes) || codes.length !== Lq)
      throw new Error(
        `SpeechCodec.decode: expected ${Lq} code levels [${Lq}][T], got ${Array.isArray(codes) ? codes.length : typeof codes}${Array.isArray(codes) && codes.length === 1 ? ' (input speech carries the content level only; decoding needs every level)' : ''}`,
      );
    const T = codes[0]?.length ?? 0;
    if (T === 0) throw new Error('SpeechCodec.decode: expected at least one frame, got 0');
    const lengths = codes.map((l) => (Array.isArray(l) ? l.length : -1));
    if (lengths.some((n) => n !== T))
      throw new Error(`SpeechCodec.decode: expected ${Lq} levels of equal length, got lengths [${lengths.join(', ')}]`);
    const flat = new Int32Array(T * Lq);
    codes.forEach((level, l) =>
      level.forEach((c, t) => {
        if (!Number.isInteger(c) || c < 0 || c >= K)
          throw new Error(`SpeechCodec.decode: level ${l} frame ${t}: code ${c} is outside [0, ${K})`);
        flat[t * Lq + l] = c;
      }),
    );
    const idx = tf.tensor3d(flat, [1, T, Lq], 'int32');
    const wave = this.decodeIndices(idx);
    const out = wave.dataSync() as Float32Array;
    tf.dispose([idx, wave]);
    return Float32Array.from(out);
  }
}

function unstackRows(x: tf.Tensor2D): Float32Array[] {
  const [B, N] = x.shape;
  const v = x.dataSync() as Float32Array;
  return Array.from({ length: B }, (_, b) => v.slice(b * N, (b + 1) * N));
}

/** In place: every entry <= 0 takes the value of the nearest positive entry (the left one on ties; F0_REF_HZ when none is positive). */
export function fillUnvoiced(f: Float32Array): Float32Array {
  const n = f.length;
  const src = Float32Array.from(f);
  const nearest = new Int32Array(n).fill(-1); // index of the nearest positive entry
  let last = -1;
  for (let i = 0; i < n; i++) {
    if (src[i]! > 0) last = i;
    nearest[i] = last;
  }
  last = -1;
  for (let i = n - 1; i >= 0; i--) {
    if (src[i]! > 0) last = i;
    const l = nearest[i]!;
    if (last >= 0 && (l < 0 || last - i < i - l)) nearest[i] = last;
  }
  for (let i = 0; i < n; i++) f[i] = nearest[i]! >= 0 ? src[nearest[i]!]! : F0_REF_HZ;
  return f;
}
