export { main, parseCli, USAGE } from './cli.js';
export { barChartSpec, lineChartSpec, renderPng } from './plot.js';
export { allExperiments, QUICKSTART, resolveTargets } from './registry.js';
export { buildIndex, findRuns, renderReportMarkdown, tableMarkdown } from './report.js';
export { type RunOptions, type RunRecord, runExperiment } from './runner.js';
