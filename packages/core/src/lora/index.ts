export * from './lora.js';
