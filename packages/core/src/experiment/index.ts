export * from './cli.js';
export * from './inline.js';
export * from './types.js';
