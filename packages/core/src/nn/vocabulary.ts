/**
 * Vocabulary extension of a decoder LM: Hugging Face's `resize_token_embeddings` for core's
 * TransformerDecoder, as Liquid (a text LM grown by the VQ codes), SEED-LLaMA (by the codes and
 * `<img>` / `</img>`) and MIO (Yi-6B grown by image and speech codes) do it. One implementation here
 * because those papers' packages need the same operation and may not import each other.
 */
import { loraLayers } from '../lora/lora.js';
import { Rng } from '../rng/index.js';
import { tf } from '../tf.js';
import type { StateDict } from './module.js';
import { TransformerDecoder } from './transformer.js';

/** How the new rows of the embedding and the head are initialised. */
export type NewRowInit = 'normal' | 'mean';

export interface ExtendVocabularyOptions {
  /**
   * 'normal': N(0, std) (default; what `_init_weights` gives resized rows in the transformers versions
   * SEED-LLaMA used); 'mean': every new row is the mean of the old rows (Liquid; the mean part of
   * newer transformers' `mean_resizing`).
   */
  init?: NewRowInit;
  /** Std of 'normal' (default: the model's initStd, else 0.02). */
  std?: number;
  /** Stream of the new rows (default: a fork 'extend-vocabulary' of the model's seed). */
  rng?: Rng;
}

function newRows(old: tf.Tensor2D /* [V, D] */, n: number, init: NewRowInit, std: number, rng: Rng): tf.Tensor2D /* [n, D] */ {
  return tf.tidy(() => {
    const D = old.shape[1];
    if (init === 'mean') return old.mean(0, true).tile([n, 1]) as tf.Tensor2D;
    return rng.randn([n, D], 0, std) as tf.Tensor2D;
  });
}

/**
 * A new decoder of `newVocabSize` ids with every parameter copied: token embedding and head rows
 * [0, V) bit-identical, rows [V, newVocabSize) as `init`; trainable flags, train/eval mode and the
 * random streams' states carried over. With tied embeddings only the embedding grows. The old model is
 * left as it is (dispose it). Errors: a vocabulary not larger than the current one, LoRA layers not
 * yet merged (`mergeAndUnloadLoRA` first), an unknown init, std <= 0.
 */
export function extendDecoderVocabulary(
  model: TransformerDecoder,
  newVocabSize: number,
  opts: ExtendVocabularyOptions = {},
): TransformerDecoder {
  if (!(model instanceof TransformerDecoder)) throw new Error('extendDecoderVocabulary: model must be a TransformerDecoder');
  const V = model.config.vocabSize;
  if (V < 1 || !model.tok_embed) throw new Error('extendDecoderVocabulary: the model has no token embedding (vocabSize 0)');
  if (!Number.isInteger(newVocabSize) || newVocabSize <= V)
    throw new Error(`extendDecoderVocabulary: newVocabSize must be an integer > the current vocabulary of ${V}, got ${newVocabSize}`);
  const wrapped = loraLayers(model);
  if (wrapped.length > 0)
    throw new Error(
      `extendDecoderVocabulary: merge the LoRA layers first (mergeAndUnloadLoRA); found ${wrapped.length} LoRALinear, e.g. ${wrapped[0]?.[0]}`,
    );
  const init = opts.init ?? 'normal';
  if (init !== 'normal' && init !== 'mean')
    throw new Error(`extendDecoderVocabulary: init must be 'normal' or 'mean', got ${JSON.stringify(init)}`);
  const std = opts.std ?? model.config.initStd ?? 0.02;
  if (!(std > 0)) throw new Error(`extendDecoderVocabulary: std must be > 0, got ${std}`);
  const rng = opts.rng ?? new Rng(model.config.seed ?? 0).fork('extend-vocabulary');
  const n = newVocabSize - V;
  const grown = new TransformerDecoder({ ...model.config, vocabSize: newVocabSize });
  const sd: StateDict = {};
  const temps: tf.Tensor[] = [];
  try {
    const flags = new Map(model.namedParameters().map(([k, p]) => [k, p.trainable]));
    for (const [k, t] of Object.entries(model.stateDict())) {
      if (k === 'tok_embed.weight' || k === 'head.weight') {
        const rows = newRows(t as tf.Tensor2D, n, init, std, rng);
        const cat = tf.concat([t, rows], 0); // [V + n, D]
        temps.push(rows, cat);
        sd[k] = cat;
      } else sd[k] = t;
    }
    grown.loadStateDict(sd);
    for (const [k, p] of grown.namedParameters()) p.trainable = flags.get(k) ?? true;
    const streams = new Map(model.namedRngs());
    for (const [k, r] of grown.namedRngs()) {
      const s = streams.get(k);
      if (s) r.setState(s.getState());
    }
    grown.train(model.training);
  } catch (e) {
    grown.dispose();
    throw e;
  } finally {
    tf.dispose(temps);
  }
  return grown;
}
