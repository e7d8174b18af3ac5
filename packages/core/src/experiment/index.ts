export * from './args.js';
export * from './cli.js';
export * from './inline.js';
export * from './settings.js';
export * from './steps.js';
export * from './subrun.js';
export * from './types.js';
