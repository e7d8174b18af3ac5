export * from './fsq.js';
export * from './kmeans.js';
export * from './rvq.js';
export * from './vq.js';
