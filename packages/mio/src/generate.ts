/**
 * Greedy decoding with structural constraints, for MIO's evaluations: captions and transcripts
 * (text ids until an end token), images (exactly N image codes, then `</image>`), speech (content
 * codes, then levels 2..L of the same length: the `sequential` layout, so every generated block
 * passes `check_speech_completeness`). The constraints fix only the block structure; every code and
 * word is the model's argmax among the allowed ids. Prompts of equal length run as one batch through
 * core's KV cache.
 */
import { type TransformerDecoder, tf } from '@mmlm/core';
import type { MioVocab } from './vocab.js';

/** Allowed next ids as half-open ranges [lo, hi); null allows every id. */
export type AllowedRanges = readonly (readonly [number, number])[] | null;

export interface GenerateOptions {
  /** Most new tokens per prompt (also capped by the model's maxSeqLen). */
  maxNewTokens: number;
  /** The ids allowed next, given the ids generated so far for that prompt. Default: all. */
  allowed?: (generated: readonly number[]) => AllowedRanges;
  /** A prompt is done once this returns true for its generated ids (checked after each token). */
  done?: (generated: readonly number[]) => boolean;
  /** Prompts per forward batch (default 64). */
  batchSize?: number;
}

/**
 * Greedy continuations of `prompts` (ids): for each prompt the generated ids (without the prompt).
 * The model runs in eval mode and is put back in its mode after.
 */
export function greedyGenerate(model: TransformerDecoder, prompts: readonly (readonly number[])[], opts: GenerateOptions): number[][] {
  const V = model.config.vocabSize;
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1)
    throw new Error(`greedyGenerate: maxNewTokens must be an integer >= 1, got ${opts.maxNewTokens}`);
  prompts.forEach((p, i) => {
    if (!Array.isArray(p) || p.length === 0) throw new Error(`greedyGenerate: prompt ${i} is empty; expected at least one id`);
    if (p.length >= model.config.maxSeqLen)
      throw new Error(
        `greedyGenerate: prompt ${i} has ${p.length} ids, expected fewer than the model's maxSeqLen ${model.config.maxSeqLen}`,
      );
    p.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= V)
        throw new Error(`greedyGenerate: prompt ${i}: id ${id} at position ${t} is outside [0, ${V})`);
    });
  });
  const out: number[][] = prompts.map(() => []);
  const byLength = new Map<number, number[]>();
  prompts.forEach((p, i) => {
    byLength.set(p.length, [...(byLength.get(p.length) ?? []), i]);
  });
  const wasTraining = model.training;
  model.eval();
  const B = opts.batchSize ?? 64;
  try {
    for (const [P, rows] of byLength)
      for (let s = 0; s < rows.length; s += B) generateGroup(model, prompts, rows.slice(s, s + B), P, opts, out);
  } finally {
    model.train(wasTraining);
  }
  return out;
}

function generateGroup(
  model: TransformerDecoder,
  prompts: readonly (readonly number[])[],
  rows: number[],
  P: number,
  opts: GenerateOptions,
  out: number[][],
): void {
  const V = model.config.vocabSize;
  const n = rows.length;
  const steps = Math.min(opts.maxNewTokens, model.config.maxSeqLen - P);
  const cache = model.newCache();
  const active = rows.map(() => true);
  try {
    let input = tf.tensor2d(
      rows.flatMap((r) => [...prompts[r]!]),
      [n, P],
      'int32',
    );
    for (let t = 0; t < steps && active.some((a) => a); t++) {
      const last = tf.tidy(() => {
        const logits = model.forward(input, { cache }); // [n, T, V]
        const T = logits.shape[1] as number;
        return logits.slice([0, T - 1, 0], [n, 1, V]).reshape([n, V]); // [n, V]
      });
      input.dispose();
      const v = last.dataSync() as Float32Array;
      last.dispose();
      const next = new Int32Array(n);
      rows.forEach((r, b) => {
        if (!active[b]) return;
        const gen = out[r]!;
        const allowed = opts.allowed?.(gen) ?? null;
        let best = -1;
        let bestV = Number.NEGATIVE_INFINITY;
        const scan = (lo: number, hi: number) => {
          for (let k = Math.max(0, lo); k < Math.min(V, hi); k++) {
            const x = v[b * V + k]!;
            if (x > bestV) {
              bestV = x;
              best = k;
            }
          }
        };
        if (allowed === null) scan(0, V);
        else for (const [lo, hi] of allowed) scan(lo, hi);
        if (best < 0) {
          active[b] = false;
          return;
        }
        gen.push(best);
        next[b] = best;
        if (opts.done?.(gen)) active[b] = false;
      });
      input = tf.tensor2d(next, [n, 1], 'int32');
    }
    input.dispose();
  } finally {
    cache.dispose();
  }
}

/** Constraints of one generated image block: exactly N image codes, then `</image>`. Start after `<image>`. */
export function imageBlockConstraint(v: MioVocab): Pick<GenerateOptions, 'allowed' | 'done' | 'maxNewTokens'> {
  const N = v.config.tokensPerImage;
  if (N < 1) throw new Error('imageBlockConstraint: the vocabulary needs a fixed tokensPerImage >= 1');
  const close = v.specials['</image>'];
  return {
    maxNewTokens: N + 1,
    allowed: (g) => (g.length < N ? [[v.imageOffset, v.imageOffset + v.config.imageCodes]] : [[close, close + 1]]),
    done: (g) => g.length === N + 1,
  };
}

/**
 * Constraints of one generated output-speech block in the sequential layout, started after `<spch>`:
 * level-0 codes until the model emits a level-1 code (at most `maxFrames`; the level-1 switch is
 * allowed after `minFrames`), which fixes T; then T codes of level 1, T of level 2, ..., then `</spch>`.
 */
export function speechBlockConstraint(
  v: MioVocab,
  maxFrames: number,
  minFrames = 1,
): Pick<GenerateOptions, 'allowed' | 'done' | 'maxNewTokens'> {
  const { speechLevels: L, speechCodebookSize: C } = v.config;
  const lvl = (l: number): readonly [number, number] => [v.speechOffset + l * C, v.speechOffset + (l + 1) * C];
  const close = v.specials['</spch>'];
  const levelOf = (id: number) => Math.floor((id - v.speechOffset) / C);
  const frames = (g: readonly number[]) => {
    const k = g.findIndex((id) => levelOf(id) !== 0);
    return k < 0 ? null : k;
  };
  return {
    maxNewTokens: maxFrames * L + 1,
    allowed: (g) => {
      const T = frames(g);
      if (T === null) {
        if (L === 1) return g.length >= maxFrames ? [[close, close + 1]] : g.length >= minFrames ? [lvl(0), [close, close + 1]] : [lvl(0)];
        if (g.length >= maxFrames) return [lvl(1)];
        return g.length >= minFrames ? [lvl(0), lvl(1)] : [lvl(0)];
      }
      if (g.length >= L * T) return [[close, close + 1]];
      return [lvl(Math.floor(g.length / T))];
    },
    done: (g) => g[g.length - 1] === close,
  };
}
