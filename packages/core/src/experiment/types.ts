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
