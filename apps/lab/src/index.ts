export {
  type AggregateRecord,
  aggregateMetrics,
  aggregateTable,
  findAggregates,
  type MetricAggregate,
  renderAggregateMarkdown,
} from './aggregate.js';
export { checkRunArgs, main, parseCli, parseSeeds, USAGE, UsageError } from './cli.js';
export { barChartSpec, lineChartSpec, renderPng } from './plot.js';
export { allExperiments, QUICKSTART, resolveTargets } from './registry.js';
export { buildIndex, findRuns, renderReportMarkdown, tableMarkdown } from './report.js';
export {
  canonicalJson,
  dataHash,
  dataKey,
  lossPoints,
  pruneUnfinishedMetrics,
  type RunIdentity,
  RunLockedError,
  RunMismatchError,
  type RunOptions,
  type RunRecord,
  runDir,
  runExperiment,
  settingsFingerprint,
} from './runner.js';
export { aggregateDir, runSeeds, type SeedsRunOptions } from './seeds.js';
