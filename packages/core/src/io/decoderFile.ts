/**
 * A self-describing decoder file: one safetensors file holding a TransformerDecoder's weights (its
 * stateDict names) and, in the header's metadata, its config (`mmlm.decoder.config`, JSON) next to
 * the caller's own metadata (e.g. a tokenizer's vocabulary). Bytes in, bytes out: no file system,
 * so a model trained by the Node CLI loads in a browser tab from a file input (apps/web) and the
 * other way round. Reading checks the config (an object with positive integer sizes), then every
 * parameter name and shape (`loadStateDict`, strict): a file is never loaded silently wrong.
 */
import { TransformerDecoder, type TransformerDecoderConfig } from '../nn/transformer.js';
import type { tf } from '../tf.js';
import { decodeSafetensors, encodeSafetensorsAsync, type SafetensorsOptions } from './safetensors.js';

/** The metadata key of the decoder's config. */
export const DECODER_CONFIG_KEY = 'mmlm.decoder.config';

/** Encode `model`'s weights and config (plus `metadata`, string values) as safetensors bytes. */
export async function encodeDecoderFile(model: TransformerDecoder, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  if (!(model instanceof TransformerDecoder)) throw new Error('encodeDecoderFile: model must be a TransformerDecoder');
  if (DECODER_CONFIG_KEY in metadata)
    throw new Error(`encodeDecoderFile: metadata must not set ${DECODER_CONFIG_KEY} (it holds the model's config)`);
  for (const [k, v] of Object.entries(metadata))
    if (typeof v !== 'string') throw new Error(`encodeDecoderFile: metadata["${k}"] must be a string, got ${typeof v}`);
  return encodeSafetensorsAsync(model.stateDict(), { ...metadata, [DECODER_CONFIG_KEY]: JSON.stringify(model.config) });
}

function checkConfig(c: unknown, source: string): TransformerDecoderConfig {
  if (typeof c !== 'object' || c === null || Array.isArray(c))
    throw new Error(`decodeDecoderFile (${source}): ${DECODER_CONFIG_KEY} must be a JSON object, got ${JSON.stringify(c)?.slice(0, 80)}`);
  const o = c as Record<string, unknown>;
  for (const k of ['vocabSize', 'dim', 'numLayers', 'numHeads', 'maxSeqLen'] as const) {
    const v = o[k];
    const ok = typeof v === 'number' && Number.isInteger(v) && (k === 'vocabSize' ? v >= 0 : v >= 1) && v <= 1 << 24;
    if (!ok)
      throw new Error(
        `decodeDecoderFile (${source}): config.${k} must be an integer in [${k === 'vocabSize' ? 0 : 1}, 2^24], got ${JSON.stringify(v)}`,
      );
  }
  return o as unknown as TransformerDecoderConfig;
}

/**
 * Build the decoder a file describes and load its weights (strict: a missing, extra or misshapen
 * tensor is an error naming it). Returns the model (the caller disposes it) and the other metadata.
 */
export function decodeDecoderFile(
  bytes: Uint8Array,
  opts: SafetensorsOptions = {},
): { model: TransformerDecoder; metadata: Record<string, string> } {
  const source = opts.name ?? 'decoder file';
  const { tensors, metadata } = decodeSafetensors(bytes, opts);
  const dispose = () => {
    for (const t of Object.values(tensors) as tf.Tensor[]) t.dispose();
  };
  let model: TransformerDecoder | null = null;
  try {
    const text = metadata[DECODER_CONFIG_KEY];
    if (text === undefined)
      throw new Error(
        `decodeDecoderFile (${source}): the safetensors metadata has no ${DECODER_CONFIG_KEY}, so this is not a decoder file written by encodeDecoderFile (metadata keys: ${Object.keys(metadata).join(', ') || 'none'})`,
      );
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new Error(`decodeDecoderFile (${source}): ${DECODER_CONFIG_KEY} is not JSON (${(e as Error).message})`);
    }
    model = new TransformerDecoder(checkConfig(parsed, source));
    model.loadStateDict(tensors);
    const { [DECODER_CONFIG_KEY]: _c, ...rest } = metadata;
    return { model, metadata: rest };
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    dispose();
  }
}
