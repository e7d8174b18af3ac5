export {
  type AggregateRecord,
  aggregateMetrics,
  aggregateTable,
  findAggregates,
  type MetricAggregate,
  renderAggregateMarkdown,
} from './aggregate.js';
export { main, parseCli, parseSeeds, USAGE } from './cli.js';
export { barChartSpec, lineChartSpec, renderPng } from './plot.js';
export { allExperiments, QUICKSTART, resolveTargets } from './registry.js';
export { buildIndex, findRuns, renderReportMarkdown, tableMarkdown } from './report.js';
export { lossPoints, type RunOptions, type RunRecord, runExperiment } from './runner.js';
export { aggregateDir, runSeeds, type SeedsRunOptions } from './seeds.js';
