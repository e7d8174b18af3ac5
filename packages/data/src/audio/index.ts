export * from './benchmark.js';
export * from './decoder.js';
export * from './pitch.js';
export * from './speaker.js';
export * from './tone.js';
export * from './wer.js';
