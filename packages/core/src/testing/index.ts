export * from './backends.js';
export * from './contract.js';
export * from './gradcheck.js';
