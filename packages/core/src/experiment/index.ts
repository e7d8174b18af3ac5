export * from './inline.js';
export * from './types.js';
