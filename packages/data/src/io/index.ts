export { DecodeError, type DecodeErrorKind, type DecodeFormat, IdxError, PngError, WavError } from './errors.js';
export * from './fft.js';
export * from './idx.js';
export * from './png.js';
export * from './spectrogram.js';
export * from './wav.js';
