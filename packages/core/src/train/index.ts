export * from './loop.js';
export * from './optimizer.js';
