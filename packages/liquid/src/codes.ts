/**
 * Frozen-tokenizer code extraction (Liquid pre-extracts every image's VQ codes once, offline:
 * `data_process/extract_vqcodes.sh`), a code cache on disk (safetensors, I32 [N, tokensPerImage],
 * with the codebook size and a tokenizer fingerprint in the metadata) and tokenizer statistics
 * (reconstruction error and codebook usage over a data set). Module weights go in and out through
 * core's `saveModule` / `loadModule`.
 */
import { readSafetensors, saveSafetensors, tf } from '@mmlm/core';
import { checkCodeRange, fromModelRange, toModelRange, type VQTokenizer } from './model.js';

/** Images (host, [N, S, S, C] row-major, pixels in [0, 1]) -> codes [N * tokensPerImage] in raster order. */
export function extractCodes(vq: VQTokenizer, images: Float32Array, batchSize = 64): Int32Array {
  const { imageSize: S, inChannels: C } = vq.config;
  const per = S * S * C;
  if (images.length % per !== 0)
    throw new Error(`extractCodes: images must hold N x ${S} x ${S} x ${C} values, got ${images.length} (not a multiple of ${per})`);
  const N = images.length / per;
  const out = new Int32Array(N * vq.tokensPerImage);
  for (let i = 0; i < N; i += batchSize) {
    const n = Math.min(batchSize, N - i);
    const codes = tf.tidy(() => vq.tokenize(toModelRange(tf.tensor4d(images.subarray(i * per, (i + n) * per), [n, S, S, C]))));
    out.set(codes.dataSync() as Int32Array, i * vq.tokensPerImage);
    codes.dispose();
  }
  return out;
}

/** Codes [N * tokensPerImage] -> images [N, S, S, C] in [0, 1] (host). */
export function decodeCodesToImages(vq: VQTokenizer, codes: Int32Array, batchSize = 64): Float32Array {
  const L = vq.tokensPerImage;
  if (codes.length % L !== 0) throw new Error(`decodeCodesToImages: codes must hold N x ${L} values, got ${codes.length}`);
  const N = codes.length / L;
  const { imageSize: S, inChannels: C } = vq.config;
  const out = new Float32Array(N * S * S * C);
  for (let i = 0; i < N; i += batchSize) {
    const n = Math.min(batchSize, N - i);
    const x = tf.tidy(() => fromModelRange(vq.decodeCodes(tf.tensor2d(codes.subarray(i * L, (i + n) * L), [n, L], 'int32'))));
    out.set(x.dataSync() as Float32Array, i * S * S * C);
    x.dispose();
  }
  return out;
}

export interface TokenizerStats {
  /** Mean squared error of the reconstruction in [0, 1] pixels (after clamping). */
  mse: number;
  /** 10 log10(1 / mse). */
  psnr: number;
  /** Fraction of the K codes used at least once over the set. */
  usage: number;
  /** exp(entropy) of the code histogram over the set. */
  perplexity: number;
  codes: Int32Array;
}

/** Reconstruction error and codebook usage of a tokenizer over images [N, S, S, C] in [0, 1]. */
export function tokenizerStats(vq: VQTokenizer, images: Float32Array, batchSize = 64): TokenizerStats {
  const codes = extractCodes(vq, images, batchSize);
  const rec = decodeCodesToImages(vq, codes, batchSize);
  let se = 0;
  for (let i = 0; i < images.length; i++) se += ((images[i] as number) - (rec[i] as number)) ** 2;
  const mse = se / images.length;
  const counts = new Float64Array(vq.numCodes);
  for (const c of codes) counts[c] = (counts[c] as number) + 1;
  let used = 0;
  let h = 0;
  for (const n of counts) {
    if (n === 0) continue;
    used++;
    const p = n / codes.length;
    h -= p * Math.log(p);
  }
  return { mse, psnr: 10 * Math.log10(1 / Math.max(mse, 1e-12)), usage: used / vq.numCodes, perplexity: Math.exp(h), codes };
}

export interface CodeCache {
  /** [numImages * tokensPerImage]. */
  codes: Int32Array;
  numImages: number;
  tokensPerImage: number;
  numCodes: number;
  /** Free-form strings saved beside the codes (e.g. the tokenizer fingerprint). */
  metadata: Record<string, string>;
}

/** Write a code cache (safetensors `codes` I32 [N, L]; numCodes and metadata in the header), atomically. */
export async function saveCodeCache(path: string, cache: Omit<CodeCache, 'numImages'>): Promise<void> {
  const { codes, tokensPerImage: L, numCodes } = cache;
  if (codes.length % L !== 0) throw new Error(`saveCodeCache: codes must hold N x ${L} values, got ${codes.length}`);
  checkCodeRange('saveCodeCache', codes, numCodes);
  const t = tf.tensor2d(codes, [codes.length / L, L], 'int32');
  try {
    await saveSafetensors(path, { codes: t }, { ...cache.metadata, numCodes: String(numCodes) });
  } finally {
    t.dispose();
  }
}

/** Read a code cache, checked against the expected layout when given. */
export async function loadCodeCache(path: string, expect: { tokensPerImage?: number; numCodes?: number } = {}): Promise<CodeCache> {
  const { entries, metadata } = await readSafetensors(path);
  const e = entries.find((x) => x.name === 'codes');
  if (e?.tfDtype !== 'int32' || e.shape.length !== 2)
    throw new Error(`loadCodeCache ${path}: expected an int32 tensor "codes" [N, L], got ${e ? `${e.dtype} [${e.shape}]` : 'none'}`);
  const [N, L] = e.shape as [number, number];
  const numCodes = Number(metadata.numCodes);
  if (!Number.isInteger(numCodes) || numCodes < 1)
    throw new Error(`loadCodeCache ${path}: metadata numCodes must be a positive integer, got ${metadata.numCodes}`);
  if (expect.tokensPerImage !== undefined && L !== expect.tokensPerImage)
    throw new Error(`loadCodeCache ${path}: expected ${expect.tokensPerImage} codes per image, got ${L}`);
  if (expect.numCodes !== undefined && numCodes !== expect.numCodes)
    throw new Error(`loadCodeCache ${path}: expected a codebook of ${expect.numCodes}, got ${numCodes}`);
  const codes = e.data as Int32Array;
  checkCodeRange(`loadCodeCache ${path}`, codes, numCodes);
  const { numCodes: _n, ...rest } = metadata;
  return { codes, numImages: N, tokensPerImage: L, numCodes, metadata: rest };
}
