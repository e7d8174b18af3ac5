/**
 * A checkpoint written by the CLI, loaded in the tab: `pnpm lab run core.tiny-gpt` saves its model as
 * a decoder file (`model.safetensors`: weights + config, core's encodeDecoderFile) with the corpus
 * settings and the character vocabulary under `mmlm.tiny-gpt`. The page rebuilds the model from the
 * bytes (decodeDecoderFile, strict), measures the validation bits per character exactly as the CLI
 * did (the same corpus, split and windows) so the two figures can be compared, and continues a
 * prompt greedily.
 */
import { crossEntropy, decodeDecoderFile, type TransformerDecoder, tf } from '@mmlm/core';
import { CharTokenizer, grammarCorpus, inputsAndTargets, sequentialWindows, splitText } from '@mmlm/data';
import type { RunHooks, RunResult } from './experiments.js';

/** Metadata key of the tiny GPT's settings (apps/lab's TINY_GPT_META). */
export const TINY_GPT_META = 'mmlm.tiny-gpt';

/** Decoder files larger than this are refused before parsing (the tiny GPT's are well under 10 MB). */
export const MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024;

export interface TinyGptMeta {
  grammar: 'shapes';
  seed: number;
  chars: number;
  block: number;
  batch: number;
  vocab: string[];
  valBitsPerChar: number;
  backend?: string;
}

function fail(name: string, msg: string): never {
  throw new Error(`checkpoint ${name}: ${msg}`);
}

function checkMeta(name: string, text: string | undefined, vocabSize: number): TinyGptMeta {
  if (text === undefined) fail(name, `no ${TINY_GPT_META} metadata: this decoder file was not written by core.tiny-gpt`);
  let m: Partial<TinyGptMeta>;
  try {
    m = JSON.parse(text) as Partial<TinyGptMeta>;
  } catch (e) {
    fail(name, `${TINY_GPT_META} is not JSON (${(e as Error).message})`);
  }
  if (m.grammar !== 'shapes') fail(name, `${TINY_GPT_META}.grammar must be "shapes", got ${JSON.stringify(m.grammar)}`);
  for (const k of ['seed', 'chars', 'block', 'batch'] as const)
    if (!Number.isInteger(m[k]) || (m[k] as number) < (k === 'seed' ? 0 : 1))
      fail(name, `${TINY_GPT_META}.${k} must be a ${k === 'seed' ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(m[k])}`);
  if ((m.chars as number) > 10_000_000) fail(name, `${TINY_GPT_META}.chars must be at most 10,000,000, got ${m.chars}`);
  if (!Array.isArray(m.vocab) || m.vocab.length !== vocabSize)
    fail(
      name,
      `${TINY_GPT_META}.vocab must list the model's ${vocabSize} characters, got ${Array.isArray(m.vocab) ? m.vocab.length : typeof m.vocab}`,
    );
  return m as TinyGptMeta;
}

/** The model, its tokenizer and settings from a decoder file's bytes (errors name the file and what is wrong). */
export function loadTinyGpt(bytes: Uint8Array, name: string): { model: TransformerDecoder; tok: CharTokenizer; meta: TinyGptMeta } {
  if (bytes.length > MAX_CHECKPOINT_BYTES) fail(name, `${bytes.length} bytes is over the page's limit of ${MAX_CHECKPOINT_BYTES}`);
  const { model, metadata } = decodeDecoderFile(bytes, { name });
  try {
    const meta = checkMeta(name, metadata[TINY_GPT_META], model.config.vocabSize);
    return { model, tok: new CharTokenizer(meta.vocab, { specialTokens: [] }), meta };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Validation bits per character as core.tiny-gpt measures it: the first 20 batches of the val split. */
export function valBitsPerChar(model: TransformerDecoder, tok: CharTokenizer, meta: TinyGptMeta): number {
  const text = grammarCorpus({ grammar: meta.grammar, seed: meta.seed, chars: meta.chars });
  const { val } = splitText(text, { valFraction: 0.1 });
  const valIds = tok.encode(val);
  let sum = 0;
  let n = 0;
  for (const b of sequentialWindows(valIds.slice(0, 20 * meta.block * meta.batch), { batchSize: meta.batch, blockSize: meta.block })) {
    const { inputs, targets, shape } = inputsAndTargets(b);
    const l = tf.tidy(
      () => crossEntropy(model.forward(tf.tensor2d(inputs, shape, 'int32')), tf.tensor2d(targets, shape, 'int32')).dataSync()[0]!,
    );
    sum += l * shape[0] * shape[1];
    n += shape[0] * shape[1];
  }
  return sum / n / Math.LN2;
}

/** Greedy continuation of `prompt` by `n` characters (context: the model's last maxSeqLen ids). */
export function greedyText(model: TransformerDecoder, tok: CharTokenizer, prompt: string, n: number): string {
  const ids = [...tok.encode(prompt)];
  const T = model.config.maxSeqLen;
  for (let i = 0; i < n; i++) {
    const ctx = ids.slice(-T);
    const next = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(ctx, [1, ctx.length], 'int32')); // [1, t, V]
      return logits
        .slice([0, ctx.length - 1, 0], [1, 1, -1])
        .argMax(-1)
        .dataSync()[0]!;
    });
    ids.push(next);
  }
  return tok.decode(ids.slice(-n));
}

/** Load a tiny-GPT decoder file and report what the page measures beside what the CLI recorded. */
export async function runCheckpoint(bytes: Uint8Array, name: string, hooks: RunHooks): Promise<RunResult> {
  const { model, tok, meta } = loadTinyGpt(bytes, name);
  try {
    hooks.log(
      `${name}: ${model.numParameters().toLocaleString('en-US')} parameters, ${model.config.numLayers} layers x ${model.config.dim}, vocabulary ${tok.vocabSize}; written on ${meta.backend ?? 'an unrecorded backend'}`,
    );
    await hooks.yieldToPage();
    const bpc = valBitsPerChar(model, tok, meta);
    await hooks.yieldToPage();
    const prompt = 'a ';
    const sample = greedyText(model, tok, prompt, 80);
    const diff = bpc - meta.valBitsPerChar;
    return {
      metrics: { valBitsPerChar: bpc, cliValBitsPerChar: meta.valBitsPerChar, difference: diff, parameters: model.numParameters() },
      tables: [
        {
          title: 'Checkpoint',
          columns: ['measure', 'value'],
          rows: [
            ['validation bits/char, measured here', bpc],
            ['validation bits/char, recorded by the CLI', meta.valBitsPerChar],
            ['difference', diff],
            ['parameters', model.numParameters()],
          ],
          note: `The same corpus (grammar "${meta.grammar}", seed ${meta.seed}, ${meta.chars} characters), split and windows as core.tiny-gpt; on the backend that wrote the file the two figures agree to float rounding.`,
        },
        { title: 'Greedy continuation', columns: ['prompt', 'continuation'], rows: [[prompt, sample]] },
      ],
      summary: `Loaded ${name}: validation ${bpc.toFixed(4)} bits/char here against ${meta.valBitsPerChar.toFixed(4)} recorded by the CLI (difference ${diff.toExponential(2)}).`,
    };
  } finally {
    model.dispose();
  }
}
