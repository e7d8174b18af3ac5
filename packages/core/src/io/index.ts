export * from './checkpoint.js';
export * from './decoderFile.js';
export * from './safetensors.js';
