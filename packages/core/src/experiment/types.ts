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
   * is returned without running `fn`; otherwise `fn(dir, sub)` runs with a folder for its checkpoints
   * (to resume an interrupted run) and its result is saved. `sub.metric()` tags each record with
   * `subrun: name`, so the loss figure draws one curve per sub-run; `fn(dir)` alone also works.
   * `opts.shared`: later sub-runs need its result (a shared tokenizer, a pre-trained model); a
   * parallel worker (the lab's `--jobs`) that finds it taken waits for it instead of skipping it.
   */
  subrun<T>(name: string, fn: (dir: string, sub: SubrunContext) => Promise<T>, opts?: SubrunOptions): Promise<T>;
}

/** Options of `ctx.subrun`. */
export interface SubrunOptions {
  /**
   * A prerequisite of later sub-runs: under parallel workers, one trains it and the others wait for
   * its result (default false: the others skip it and take the next sub-run).
   */
  shared?: boolean;
}

/** What a sub-run's body gets beside its folder (`ctx.subrun(name, (dir, sub) => ...)`). */
export interface SubrunContext {
  /** The sub-run's full name: nested sub-runs join their names with '/' ('arm-a/tokenizer'). */
  name: string;
  /** The sub-run's folder (exists); the same as the body's first argument. */
  dir: string;
  /** A human-readable line (the run's log). */
  log(line: string): void;
  /** A progress reporter (the run's). */
  progress(name: string, total: number): ProgressHandle;
  /**
   * Append one record to the run's metrics.jsonl with `subrun` set to this sub-run's full name
   * (it replaces a `subrun` key of the record).
   */
  metric(record: Record<string, unknown>): void;
  /**
   * A nested resumable sub-run named `<name>/<child>`, its folder under this one's `subruns/`.
   * It is reused while this sub-run is unfinished (this sub-run's saved result covers it after).
   */
  subrun<T>(name: string, fn: (dir: string, sub: SubrunContext) => Promise<T>, opts?: SubrunOptions): Promise<T>;
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
  /**
   * Set when the experiment reads a user data file (`--data PATH`, `ctx.dataPath`): what the file
   * is and what it replaces. Runners refuse `--data` for experiments without it, so a run is never
   * recorded with a data file it did not read.
   */
  data?: { description: string };
  /**
   * Set when every training phase of the experiment is inside a top-level `ctx.subrun` and those
   * sub-runs are independent (each depends on the seed and its inputs, not on another's result or
   * on state another left): the lab's `run --jobs N` may then run them in N worker processes on the
   * same folder (`claimSubruns`) before finishing the run in one process. Experiments without it
   * run in one process whatever `--jobs` says.
   */
  parallelSubruns?: boolean;
  run(ctx: ExperimentContext): Promise<ExperimentResult>;
  /**
   * Optional: the resolved settings of a preset (plain JSON data: sizes, steps, recipe, with their
   * defaults filled in). The lab fingerprints them into a run folder's run.json and refuses to
   * resume or reuse a folder whose run was made with other settings (a preset changed since), so
   * results of two recipes never mix under one preset name.
   */
  settings?(preset: string): unknown;
  /**
   * Optional: combine the results of several seeds (`pnpm lab run <id> --seeds 0,1,2`) into tables
   * and a summary of the experiment's own, e.g. a claim table with mean ± std per arm and a verdict
   * from `compareSeeds` (a difference is called only beyond two standard errors). `results[i]` is
   * the result of seed `seeds[i]`, seeds ascending; a run reused from an earlier invocation gives its
   * saved result (read back from JSON: NaN there is `null`). The lab writes the generic table (every
   * numeric headline metric, mean ± sample std and each seed's value) first, then these tables and
   * this summary, into the aggregate's report.md, the index and the docs page. Called with one seed
   * too (then no standard error exists); keep it pure and quick: the lab calls it on every
   * `--seeds` invocation, also when all seeds were reused.
   */
  aggregate?(results: ExperimentResult[], seeds: number[]): { tables?: Table[]; summary?: string };
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
  /**
   * Batch size of the backbone phase when it differs from the tokenizer's (`batchSize`); unset: the
   * backbone trains at `batchSize` too.
   */
  backboneBatchSize?: number;
  /** Fraction of backbone examples that are image-to-text (captioning); the rest are text-to-image. */
  captionFraction: number;
  /**
   * The arm's own recipe overrides (codebook init, regularisation, learning rates, sampling), parsed
   * and validated by the arm's schema; unset fields take the arm's documented defaults.
   */
  recipe?: unknown;
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
  /**
   * Optional: wall seconds the arm's training phases took over every call that built them (a phase
   * resumed from a checkpoint, or finished in an earlier call and reused, counts its earlier seconds
   * too: trainLoop's `trainSeconds`, kept with the phase). `null` when a phase's seconds were not
   * recorded (made by an older version). Without it the lab times the factory call.
   */
  trainSeconds?: number | null;
  /** Tokenizer round trip (encode then decode) of each image. */
  reconstruct(images: Float32Array[]): Promise<Float32Array[]>;
  /** Text-to-image. `backboneSteps` / `headEvals` are per image (forward passes of the backbone and of the head). */
  generate(
    captions: string[],
    /** cfgScale / temperature default to the arm's recipe. */
    opts: { seed: number; cfgScale?: number; temperature?: number },
  ): Promise<{ images: Float32Array[]; backboneStepsPerImage: number; headEvalsPerImage: number }>;
  /** Image-to-text (greedy). */
  caption(images: Float32Array[], opts: { seed: number }): Promise<string[]>;
  dispose(): void;
}

export type ImageTokenArmFactory = (opts: ImageTokenArmOptions) => Promise<ImageTokenArm>;
