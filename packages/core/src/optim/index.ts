/** Optimizers (AdamW with parameter groups), gradient helpers, learning-rate schedules, weight EMA. */
export * from './adamw.js';
export * from './ema.js';
export * from './grads.js';
export * from './schedule.js';
