/**
 * The experiment contract shared by paper packages (which register experiments) and the lab app
 * (which runs them and writes reports): `{ id, paper, claim, presets, run(ctx) }`.
 */

export interface PresetInfo {
  /** One line: what this preset trains and measures. */
  description: string;
  /** Expected wall time on a 2-core CPU with the default backend, in minutes. */
  expectedMinutes: number;
}

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number | boolean | null)[][];
  /** Markdown shown under the table (e.g. the paper's numbers and how to read ours). */
  note?: string;
}

export interface Figure {
  title: string;
  /** Path relative to the run's output folder (PNG). */
  path: string;
  caption?: string;
}

export interface ExperimentResult {
  /** Headline numbers (flat): what index pages and comparisons read. */
  metrics: Record<string, number | string | boolean | null>;
  tables?: Table[];
  figures?: Figure[];
  /** Markdown: what was found, in words, including where the paper's claim did or did not reproduce. */
  summary?: string;
}

export interface ProgressHandle {
  /** Report progress: step (1-based) of total, with a few numbers to show (loss, ...). */
  tick(step: number, info?: Record<string, number>): void;
  done(): void;
}

export interface ExperimentContext {
  experimentId: string;
  preset: string;
  seed: number;
  /** Active backend name (initBackend already ran). */
  backend: string;
  /** This run's output folder (exists). */
  outDir: string;
  /** Optional user data path (--data), e.g. a local text file. */
  dataPath?: string;
  /** A human-readable line (plain output). */
  log(line: string): void;
  /** A progress reporter for one sub-run (bar on a TTY, plain lines otherwise). */
  progress(name: string, total: number): ProgressHandle;
  /** Append one record to metrics.jsonl (step metrics, eval results). */
  metric(record: Record<string, unknown>): void;
  /**
   * A resumable sub-run: if `name` finished in an earlier run of this folder, its saved JSON result
   * is returned without running `fn`; otherwise `fn(dir)` runs with a folder for its checkpoints
   * (to resume an interrupted run) and its result is saved.
   */
  subrun<T>(name: string, fn: (dir: string) => Promise<T>): Promise<T>;
}

export interface Experiment {
  /** Stable id, e.g. 'maskllm.ladder'. */
  id: string;
  /** Paper short name, e.g. 'MaskLLM'. */
  paper: string;
  /** The paper's claim this experiment tests, in one sentence. */
  claim: string;
  /** Presets by name ('tiny' always exists and runs in seconds, for tests). */
  presets: Record<string, PresetInfo>;
  run(ctx: ExperimentContext): Promise<ExperimentResult>;
}

/**
 * The lab's discrete-vs-continuous image-token comparison (issue: "Image tokens: discrete vs
 * continuous"). Each paper package with an image tokenizer exports an `ImageTokenArmFactory` from its
 * experiments subpath; the lab gives every arm the same data, backbone size and budget, then measures
 * all arms with the same evaluators from @mmlm/data. Images are HWC Float32Array in [0, 1].
 */
export interface ImageTextData {
  /** Side S of the square RGB images: each image is a Float32Array of S * S * 3 values in [0, 1]. */
  imageSize: number;
  /** Training pairs (captions in lowercase words). */
  train: { images: Float32Array[]; captions: string[] };
  /** Every caption the arm will be asked to generate from (for building the word vocabulary). */
  evalCaptions: string[];
}

export interface ImageTokenArmOptions {
  data: ImageTextData;
  /** The autoregressive backbone, identical across arms. */
  backbone: { dim: number; numLayers: number; numHeads: number };
  /** Tokenizer (VQ / sigma-VAE) training steps, then backbone training steps, batch size. */
  tokenizerSteps: number;
  backboneSteps: number;
  batchSize: number;
  /** Fraction of backbone examples that are image-to-text (captioning); the rest are text-to-image. */
  captionFraction: number;
  seed: number;
  /** Folder for this arm's checkpoints / caches. */
  dir: string;
  progress?: (name: string, total: number) => ProgressHandle;
  log?: (line: string) => void;
}

export interface ImageTokenArm {
  /** e.g. 'liquid-vq' or 'latentlm-sigma-vae'. */
  name: string;
  /** Tokens (codes or latent vectors) per image, and a one-line description of the tokenizer. */
  tokensPerImage: number;
  description: string;
  parameterCounts: { tokenizer: number; backbone: number; head: number };
  /** Tokenizer round trip (encode then decode) of each image. */
  reconstruct(images: Float32Array[]): Promise<Float32Array[]>;
  /** Text-to-image. `backboneSteps` / `headEvals` are per image (forward passes of the backbone and of the head). */
  generate(
    captions: string[],
    opts: { seed: number; cfgScale?: number },
  ): Promise<{ images: Float32Array[]; backboneStepsPerImage: number; headEvalsPerImage: number }>;
  /** Image-to-text (greedy). */
  caption(images: Float32Array[], opts: { seed: number }): Promise<string[]>;
  dispose(): void;
}

export type ImageTokenArmFactory = (opts: ImageTokenArmOptions) => Promise<ImageTokenArm>;
