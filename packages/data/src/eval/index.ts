export * from './analyzer.js';
export * from './analyzer-benchmark.js';
export * from './frechet.js';
export * from './generation.js';
export * from './seen.js';
export * from './text.js';
