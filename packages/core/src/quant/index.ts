export * from './fsq.js';
export * from './vq.js';
