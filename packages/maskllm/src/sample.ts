/**
 * Inference with a (sparsified) decoder: validation perplexity as MaskLLM reports it (Wikitext-2
 * PPL in Table 1, `eval_llama_ppl.py`: exp of the mean token cross-entropy over consecutive
 * windows, with the hard masks S[argmax pi] in eval mode) and temperature sampling.
 */
import { type Rng, type TransformerDecoder, tf } from '@mmlm/core';
import { lmLoss } from './train.js';

export interface EvalOptions {
  /** Tokens per window (<= maxSeqLen). */
  seqLen: number;
  /** Windows per forward. Default 16. */
  batchSize?: number;
  /** Evaluate at most this many windows (from the start). Default all. */
  maxWindows?: number;
}

export interface EvalResult {
  /** Mean cross-entropy, nats per token. */
  loss: number;
  /** exp(loss). */
  ppl: number;
  /** loss / ln 2 (bits per token; bits per character for character models). */
  bpt: number;
  tokens: number;
}

/**
 * Perplexity over non-overlapping windows of `seqLen` predicted tokens (each window also reads
 * the token before it). Runs in eval mode (hard masks) and restores the previous mode.
 */
export function evaluatePerplexity(decoder: TransformerDecoder, tokens: Int32Array, opts: EvalOptions): EvalResult {
  const T = opts.seqLen;
  if (!Number.isInteger(T) || T < 1 || T > decoder.config.maxSeqLen)
    throw new Error(`evaluatePerplexity: seqLen must be an integer in [1, ${decoder.config.maxSeqLen}] (maxSeqLen), got ${T}`);
  let windows = Math.floor((tokens.length - 1) / T);
  if (opts.maxWindows !== undefined) windows = Math.min(windows, opts.maxWindows);
  if (windows < 1) throw new Error(`evaluatePerplexity: need at least ${T + 1} tokens for one window of ${T}, got ${tokens.length}`);
  const wasTraining = decoder.training;
  decoder.eval();
  const bs = opts.batchSize ?? 16;
  let sum = 0;
  try {
    for (let w0 = 0; w0 < windows; w0 += bs) {
      const b = Math.min(bs, windows - w0);
      const buf = new Int32Array(b * (T + 1));
      for (let i = 0; i < b; i++) buf.set(tokens.subarray((w0 + i) * T, (w0 + i) * T + T + 1), i * (T + 1));
      sum += tf.tidy(() => lmLoss(decoder, tf.tensor2d(buf, [b, T + 1], 'int32')).dataSync()[0] as number) * b * T;
    }
  } finally {
    decoder.train(wasTraining);
  }
  const loss = sum / (windows * T);
  return { loss, ppl: Math.exp(loss), bpt: loss / Math.LN2, tokens: windows * T };
}

export interface GenerateOptions {
  /** New tokens to draw. */
  steps: number;
  /** Softmax temperature; 0 means greedy. Default 1. */
  temperature?: number;
  rng: Rng;
}

/** Continue `prompt` (token ids) by sampling; the context is truncated to maxSeqLen. Eval mode (hard masks). */
export function generate(decoder: TransformerDecoder, prompt: number[], opts: GenerateOptions): number[] {
  if (!prompt.length) throw new Error('generate: prompt must hold at least one token');
  const temp = opts.temperature ?? 1;
  const out = [...prompt];
  const wasTraining = decoder.training;
  decoder.eval();
  try {
    for (let s = 0; s < opts.steps; s++) {
      const ctx = out.slice(-decoder.config.maxSeqLen);
      const probs = tf.tidy(() => {
        const logits = decoder.forward(tf.tensor2d([ctx], [1, ctx.length], 'int32')); // [1, T, V]
        const last = logits.slice([0, ctx.length - 1, 0], [1, 1, -1]).reshape([-1]); // [V]
        return temp === 0 ? last.dataSync() : tf.softmax(last.div(temp)).dataSync();
      });
      let next = 0;
      if (temp === 0) {
        for (let i = 1; i < probs.length; i++) if ((probs[i] as number) > (probs[next] as number)) next = i;
      } else {
        let u = opts.rng.uniform();
        next = probs.length - 1;
        for (let i = 0; i < probs.length; i++) {
          u -= probs[i] as number;
          if (u < 0) {
            next = i;
            break;
          }
        }
      }
      out.push(next);
    }
  } finally {
    decoder.train(wasTraining);
  }
  return out;
}
