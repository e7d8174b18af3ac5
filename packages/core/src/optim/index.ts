export * from './adamw.js';
export * from './ema.js';
export * from './grads.js';
export * from './schedule.js';
