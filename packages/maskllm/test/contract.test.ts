/**
 * The model contract of DESIGN.md for MaskLLM's model (a core decoder whose block Linears are
 * MaskedLinears with learnable 2:4 gates): shape, same seed same output, save/load, finite non-zero
 * gradients into every gate, and no tensor leak over the package's own mask training step.
 */
import { TransformerDecoder as Decoder, initBackend, Rng, type TransformerDecoder, tf } from '@mmlm/core';
import { runModelContract } from '@mmlm/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  clearSampledMasks,
  lmLoss,
  maskedLinears,
  maskllmConfig,
  maskOptimizer,
  maskTrainStep,
  sampleMasks,
  sparsify,
} from '../src/index.js';

const decoderConfig = { vocabSize: 11, dim: 16, numLayers: 2, numHeads: 2, maxSeqLen: 8 };
const cfg = maskllmConfig({ train: { steps: 10, batchSize: 2, lr: 1e-2, lrMin: 1e-3, lrMult: 1 } });

/** A sparsified decoder; `seed` drives the dense weights and the mask gates' init and noise. */
function masked(seed: number): TransformerDecoder {
  const d = new Decoder({ ...decoderConfig, seed });
  sparsify(d, { seed: seed + 100 });
  return d;
}

describe('MaskLLM model contract', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });

  it('sparsified decoder: hard-mask output, gate gradients, save/load, no leak over maskTrainStep (cpu and wasm)', async () => {
    const ids = new Rng(3).randint([2, 9], 0, 11);
    const idsData = ids.dataSync().slice();
    ids.dispose();
    const r = await runModelContract<TransformerDecoder>({
      name: 'maskllm sparsified decoder',
      make: masked,
      inputs: () => [tf.tensor2d(idsData, [2, 9], 'int32')],
      // evaluation: the hard 2:4 masks (argmax of the gates), deterministic
      forward: (m, [x]) => {
        m.eval();
        return m.forward(x!.slice([0, 0], [2, 8]));
      },
      expectedShape: [2, 8, 11],
      // training: one Gumbel-softmax mask sample per layer, the LM loss; gradients reach the gates only
      loss: (m, [x]) => {
        m.train();
        sampleMasks(m);
        try {
          return lmLoss(m, x!);
        } finally {
          clearSampledMasks(m);
        }
      },
      trainStep: (m) => {
        const opt = maskOptimizer(m, cfg.train);
        m.train();
        return { step: ([x], t) => void maskTrainStep(m, opt, x!, t, cfg), dispose: () => opt.dispose() };
      },
    });
    // the trainable parameters are the gates: 6 candidates per group of 4 inputs of every block Linear
    const m = masked(1);
    const gates = maskedLinears(m).reduce((s, [, l]) => s + l.diff_mask.gate.size, 0);
    expect(m.namedTrainableParameters().reduce((s, [, v]) => s + v.size, 0)).toBe(gates);
    expect(r.numParameters).toBe(m.numParameters());
    m.dispose();
  });
});
