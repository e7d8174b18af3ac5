/**
 * @mmlm/core/experiment: the experiment contract paper packages register with the lab
 * (`Experiment`, `ExperimentContext`), the in-process runner and a package's own command line
 * (`runExperimentInline`, `runExperimentCli` and the checks it shares with the lab), settings tables
 * (`parsePresets`), the plain training loop (`runSteps`), resumable sub-runs, seed statistics
 * (`meanStd`, `compareSeeds`) and the markdown helpers reports use.
 */
export {
  checkDataFile,
  checkPreset,
  describeFsError,
  ensureOutDir,
  hasPreset,
  MAX_SEED,
  parseSeedList,
  parseSeedText,
  quoteArg,
  repeatedOptions,
  UsageError,
} from './args.js';
export {
  type ExperimentCliOptions,
  formatCell,
  formatFixed,
  markdownText,
  runExperimentCli,
  tableToMarkdown,
  warningText,
} from './cli.js';
export {
  type InlineRunOptions,
  inlineContext,
  runExperimentInline,
} from './inline.js';
export { makeProgress, type ProgressMode } from './progress.js';
export { parsePresets } from './settings.js';
export {
  compareSeeds,
  formatMeanStd,
  type MeanStd,
  meanStd,
  type SeedComparison,
  type SeedVerdict,
  seedCell,
  seedsHeader,
  seedValues,
  seedVerdict,
} from './stats.js';
export {
  type RunStepsOptions,
  runSteps,
  type StepOutput,
  type StepsSummary,
  type StepValues,
} from './steps.js';
export {
  claimSubruns,
  makeSubrun,
  parseResult,
  type SubrunClaim,
  type SubrunHost,
  stringifyResult,
  subrunClaimPath,
  subrunDir,
  subrunFolderName,
} from './subrun.js';
export type {
  Experiment,
  ExperimentContext,
  ExperimentResult,
  Figure,
  ImageTextData,
  ImageTokenArm,
  ImageTokenArmFactory,
  ImageTokenArmOptions,
  PresetInfo,
  ProgressHandle,
  SubrunContext,
  SubrunOptions,
  Table,
} from './types.js';
