export * from './batch.js';
export * from './corpus.js';
export * from './grammar.js';
export * from './grammars.js';
export * from './read.js';
export * from './split.js';
