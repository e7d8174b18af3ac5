export * from './config.js';
export * from './dataset.js';
export * from './language.js';
export * from './render.js';
export * from './scene.js';
export * from './tensor.js';
export * from './vocab.js';
