export * from './bpe.js';
export * from './byte.js';
export * from './char.js';
export * from './serialize.js';
export * from './special.js';
export * from './utf8.js';
export * from './word.js';
