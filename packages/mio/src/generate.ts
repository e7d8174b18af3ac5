/**
 * Greedy decoding with structural constraints, for MIO's evaluations: captions and transcripts
 * (text ids until an end token), images (exactly N image codes, then `</image>`), speech in either
 * output layout: `sequential` (content codes, then levels 2..L of the same length) or `alternating`
 * (whole frames a1 b1 c1 d1 a2 ...), so every generated block passes `check_speech_completeness`
 * (`splitSpeechLevels`). The constraints fix only the block structure; every code and word is the
 * model's argmax among the allowed ids. `speechSpanConstraint` leaves the structure free (any speech
 * code, `</spch>` whenever the model picks it), and `speechSpanLevels` says whether such a span
 * decodes. Prompts of equal length run as one batch through core's KV cache.
 */
import { type TransformerDecoder, tf } from '@mmlm/core';
import { type MioVocab, type SpeechLayout, SpeechLayoutSchema, splitSpeechLevels } from './vocab.js';

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
 * Constraints of one generated output-speech block, started after `<spch>`, in `layout` (default
 * the vocabulary's `speechLayout`):
 *   sequential   level-0 codes until the model emits a level-1 code (at most `maxFrames`; the
 *                level-1 switch is allowed after `minFrames`), which fixes T; then T codes of level 1,
 *                T of level 2, ..., then `</spch>`;
 *   alternating  whole frames, one code of each level 0..L-1 in order; at a frame boundary after
 *                `minFrames` frames the model may emit `</spch>` instead of the next level-0 code,
 *                which fixes T; after `maxFrames` frames `</spch>` is forced.
 * Either way the model decides T once (sequential: by switching level, alternating: by closing).
 */
export function speechBlockConstraint(
  v: MioVocab,
  maxFrames: number,
  minFrames = 1,
  layout: SpeechLayout = v.config.speechLayout,
): Pick<GenerateOptions, 'allowed' | 'done' | 'maxNewTokens'> {
  if (!Number.isInteger(maxFrames) || maxFrames < 1)
    throw new Error(`speechBlockConstraint: maxFrames must be an integer >= 1, got ${maxFrames}`);
  if (!Number.isInteger(minFrames) || minFrames < 1 || minFrames > maxFrames)
    throw new Error(`speechBlockConstraint: minFrames must be an integer in [1, maxFrames = ${maxFrames}], got ${minFrames}`);
  if (!SpeechLayoutSchema.safeParse(layout).success)
    throw new Error(`speechBlockConstraint: layout must be one of ${SpeechLayoutSchema.options.join(', ')}, got ${JSON.stringify(layout)}`);
  const { speechLevels: L, speechCodebookSize: C } = v.config;
  const lvl = (l: number): readonly [number, number] => [v.speechOffset + l * C, v.speechOffset + (l + 1) * C];
  const close = v.specials['</spch>'];
  const done = (g: readonly number[]) => g[g.length - 1] === close;
  if (layout === 'alternating')
    return {
      maxNewTokens: maxFrames * L + 1,
      allowed: (g) => {
        if (g.length % L !== 0) return [lvl(g.length % L)];
        const frames = g.length / L;
        if (frames >= maxFrames) return [[close, close + 1]];
        return frames >= minFrames ? [lvl(0), [close, close + 1]] : [lvl(0)];
      },
      done,
    };
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
    done,
  };
}

/**
 * A speech block with its structure left to the model, started after `<spch>`: any speech code of
 * any level, and `</spch>` once at least one code is out; at most `maxCodes` codes (a span cut there
 * has no `</spch>` and does not decode). For measuring how often a model's own spans decode.
 */
export function speechSpanConstraint(v: MioVocab, maxCodes: number): Pick<GenerateOptions, 'allowed' | 'done' | 'maxNewTokens'> {
  if (!Number.isInteger(maxCodes) || maxCodes < 1)
    throw new Error(`speechSpanConstraint: maxCodes must be an integer >= 1, got ${maxCodes}`);
  const { speechLevels: L, speechCodebookSize: C } = v.config;
  const codes = [v.speechOffset, v.speechOffset + L * C] as const;
  const close = v.specials['</spch>'];
  return {
    maxNewTokens: maxCodes + 1,
    allowed: (g) => (g.length === 0 ? [codes] : [codes, [close, close + 1]]),
    done: (g) => g[g.length - 1] === close,
  };
}

/**
 * The levels [L][T] of a generated output-speech block: `generated` are the ids after `<spch>`, up to
 * and including `</spch>` (ids after it are ignored). Throws, naming expected and actual, when the
 * block has no `</spch>`, holds an id that is no speech code, carries the content level only (input
 * speech, not output), or breaks `layout` (default the vocabulary's): MIO's decoder would refuse it.
 */
export function speechSpanLevels(v: MioVocab, generated: readonly number[], layout: SpeechLayout = v.config.speechLayout): number[][] {
  const { speechLevels: L, speechCodebookSize: C } = v.config;
  const close = v.specials['</spch>'];
  const end = generated.indexOf(close);
  if (end < 0)
    throw new Error(`speechSpanLevels: expected the block to end with </spch> (id ${close}), got ${generated.length} ids without it`);
  const nums = generated.slice(0, end).map((id, i) => {
    if (!Number.isInteger(id) || id < v.speechOffset || id >= v.speechOffset + L * C)
      throw new Error(
        `speechSpanLevels: position ${i}: expected a speech code id in [${v.speechOffset}, ${v.speechOffset + L * C}), got ${id}`,
      );
    return id - v.speechOffset;
  });
  const levels = splitSpeechLevels(nums, C, L, layout);
  if (levels.length !== L)
    throw new Error(
      `speechSpanLevels: expected output speech with ${L} levels, got ${levels.length} (content codes only: ${nums.length} codes of level 0)`,
    );
  return levels;
}
