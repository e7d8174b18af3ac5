export * from './backends.js';
export * from './gradcheck.js';
