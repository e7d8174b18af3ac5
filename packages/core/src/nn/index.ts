export * from './init.js';
export * from './linear.js';
export * from './module.js';
