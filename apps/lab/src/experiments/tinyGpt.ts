/**
 * The smallest end-to-end check of the stack: a character-level GPT (core's TransformerDecoder)
 * trained on the procedural shapes grammar (@mmlm/data), reporting training loss and validation
 * bits per character against the grammar's exact entropy rate (the floor no model can beat).
 */
import { join } from 'node:path';
import {
  AdamW,
  crossEntropy,
  encodeDecoderFile,
  paramGroups,
  TransformerDecoder,
  tf,
  valueAndGrads,
  warmupCosine,
  writeFileAtomicSync,
} from '@mmlm/core';
import type { Experiment, PresetInfo } from '@mmlm/core/experiment';
import {
  CharTokenizer,
  GRAMMARS,
  grammarCorpus,
  grammarEntropy,
  inputsAndTargets,
  sequentialWindows,
  splitText,
  WindowBatcher,
} from '@mmlm/data';
import { presetSettings } from '../util.js';

interface TinyGptPreset extends PresetInfo {
  chars: number;
  dim: number;
  layers: number;
  heads: number;
  block: number;
  batch: number;
  steps: number;
  lr: number;
  evalEvery: number;
}

const PRESETS: Record<string, TinyGptPreset> = {
  tiny: {
    description: '20 steps of a 2-layer, 32-wide model (tests)',
    expectedMinutes: 0.05,
    chars: 20_000,
    dim: 32,
    layers: 2,
    heads: 2,
    block: 32,
    batch: 8,
    steps: 20,
    lr: 3e-3,
    evalEvery: 10,
  },
  quick: {
    description: 'about a minute: 4 layers, 64 wide, context 64',
    expectedMinutes: 0.7,
    chars: 300_000,
    dim: 64,
    layers: 4,
    heads: 4,
    block: 64,
    batch: 16,
    steps: 600,
    lr: 3e-3,
    evalEvery: 100,
  },
  small: {
    description: 'a few minutes: 4 layers, 128 wide, context 128',
    expectedMinutes: 3,
    chars: 1_000_000,
    dim: 128,
    layers: 4,
    heads: 4,
    block: 128,
    batch: 16,
    steps: 600,
    lr: 1e-3,
    evalEvery: 100,
  },
};

/** Metadata key of the tiny GPT's corpus settings and vocabulary in model.safetensors. */
export const TINY_GPT_META = 'mmlm.tiny-gpt';

/** Mean cross-entropy in nats of logits [B, T, V] against targets [B, T]. */
function meanCE(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return crossEntropy(logits, targets) as tf.Scalar;
}

export const tinyGpt: Experiment = {
  id: 'core.tiny-gpt',
  settings: (preset: string) => presetSettings(PRESETS[preset]),
  paper: 'core',
  claim: 'A small char-level GPT built from @mmlm/core learns the procedural grammar: loss goes down towards the grammar entropy.',
  presets: PRESETS,
  async run(ctx) {
    const p = PRESETS[ctx.preset]!;
    const text = grammarCorpus({ grammar: 'shapes', seed: ctx.seed, chars: p.chars });
    const { train, val } = splitText(text, { valFraction: 0.1 });
    const tok = CharTokenizer.fromText(text, { specialTokens: [] });
    const trainIds = tok.encode(train);
    const valIds = tok.encode(val);
    const entropy = grammarEntropy(GRAMMARS.shapes).bitsPerChar;
    const model = new TransformerDecoder({
      vocabSize: tok.vocabSize,
      dim: p.dim,
      numLayers: p.layers,
      numHeads: p.heads,
      maxSeqLen: p.block,
      seed: ctx.seed,
    });
    ctx.log(
      `tiny GPT: ${model.numParameters().toLocaleString()} parameters, vocabulary ${tok.vocabSize}, ${trainIds.length.toLocaleString()} training characters`,
    );
    const opt = new AdamW(paramGroups(model), { lr: p.lr, weightDecay: 0.1, beta2: 0.99 });
    const lr = warmupCosine({ peak: p.lr, min: p.lr / 10, warmup: Math.ceil(p.steps / 20), total: p.steps });
    const batcher = new WindowBatcher(trainIds, { batchSize: p.batch, blockSize: p.block, seed: ctx.seed });
    const evalBpc = (): number => {
      let sum = 0;
      let n = 0;
      for (const b of sequentialWindows(valIds.slice(0, 20 * p.block * p.batch), { batchSize: p.batch, blockSize: p.block })) {
        const { inputs, targets, shape } = inputsAndTargets(b);
        const l = tf.tidy(
          () => meanCE(model.forward(tf.tensor2d(inputs, shape, 'int32')), tf.tensor2d(targets, shape, 'int32')).dataSync()[0]!,
        );
        sum += l * shape[0] * shape[1];
        n += shape[0] * shape[1];
      }
      return sum / n / Math.LN2;
    };
    const bar = ctx.progress('tiny-gpt', p.steps);
    const t0 = performance.now();
    let first = Number.NaN;
    let last = Number.NaN;
    const curve: [number, number, number][] = [];
    for (let step = 1; step <= p.steps; step++) {
      const { inputs, targets, shape } = inputsAndTargets(batcher.next());
      const loss = tf.tidy(() => {
        const x = tf.tensor2d(inputs, shape, 'int32');
        const y = tf.tensor2d(targets, shape, 'int32');
        opt.setLr(lr(step - 1));
        const { loss: l, grads } = valueAndGrads(model, () => meanCE(model.forward(x), y));
        opt.step(grads);
        return l.dataSync()[0]!;
      });
      if (step === 1) first = loss;
      last = loss;
      const rec: Record<string, number | string> = { subrun: 'train', step, loss };
      if (step % p.evalEvery === 0 || step === p.steps) {
        const bpc = evalBpc();
        rec.valBitsPerChar = bpc;
        curve.push([step, loss, bpc]);
        ctx.log(`step ${step}: train loss ${loss.toFixed(3)} nats, val ${bpc.toFixed(3)} bits/char`);
      }
      ctx.metric(rec);
      bar.tick(step, { loss });
    }
    bar.done();
    const seconds = (performance.now() - t0) / 1000;
    const valBpc = curve[curve.length - 1]![2];
    // the trained model as one self-describing file; the web page (apps/web) loads it and measures
    // the same validation bits/char from the corpus settings below
    const checkpoint = {
      grammar: 'shapes',
      seed: ctx.seed,
      chars: p.chars,
      block: p.block,
      batch: p.batch,
      vocab: tok.chars,
      valBitsPerChar: valBpc,
      backend: ctx.backend,
    };
    writeFileAtomicSync(
      join(ctx.outDir, 'model.safetensors'),
      await encodeDecoderFile(model, { [TINY_GPT_META]: JSON.stringify(checkpoint) }),
    );
    opt.dispose();
    model.dispose();
    return {
      metrics: {
        firstLoss: first,
        finalLoss: last,
        valBitsPerChar: valBpc,
        grammarEntropyBitsPerChar: entropy,
        trainSeconds: seconds,
        tokensPerSecond: (p.steps * p.batch * p.block) / seconds,
      },
      tables: [
        {
          title: 'Validation bits per character during training',
          columns: ['step', 'train loss (nats)', 'val bits/char'],
          rows: curve.map(([s, l, b]) => [s, l, b]),
          note: `The grammar's exact entropy rate is ${entropy.toFixed(3)} bits/char: a perfect model reaches it, none goes below. A uniform guess over the ${tok.vocabSize} characters costs ${Math.log2(tok.vocabSize).toFixed(2)} bits/char.`,
        },
      ],
      summary: `Training loss went from ${first.toFixed(3)} to ${last.toFixed(3)} nats in ${p.steps} steps (${seconds.toFixed(1)} s on ${ctx.backend}); validation ${valBpc.toFixed(3)} bits/char against the grammar's floor of ${entropy.toFixed(3)}. The model is in model.safetensors (the web page loads it).`,
    };
  },
};
