/**
 * The experiments' settings tables are parsed through zod schemas whose defaults come from the
 * LatentLM config presets (issue 13, item 5): the parsed values equal the tables they replaced, and
 * a misspelt or out-of-range field fails, naming the table, the preset and the field. (The former
 * image table's helper also copied `headSteps` into `lm.train`, a field LatentLMConfig does not
 * have; the parsed table no longer carries that stray copy.)
 */
import { parsePresets } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { type LatentLMConfig, PRESETS } from '../src/config.js';
import { CLASS_DATA, IMAGE_PRESETS, imageSettingsSchema } from '../src/experiments/images.js';
import { MIXED_PRESETS } from '../src/experiments/mixed.js';
import { TTS_PRESETS, ttsSettingsSchema } from '../src/experiments/tts.js';

/** `base` with fields of its sections replaced (what the former tables built by hand). */
function replaced(
  base: LatentLMConfig,
  o: {
    model?: Partial<LatentLMConfig['model']>;
    train?: Partial<LatentLMConfig['train']>;
    diffusion?: Partial<LatentLMConfig['diffusion']>;
  },
): LatentLMConfig {
  const c = structuredClone(base);
  return { model: { ...c.model, ...o.model }, diffusion: { ...c.diffusion, ...o.diffusion }, train: { ...c.train, ...o.train } };
}

const imageTiny = {
  data: CLASS_DATA,
  vae: { patchSize: 8, latentDim: 4, dim: 16, depth: 1, numHeads: 2, steps: 3, batch: 4, lr: 2e-3 },
  sigmaKlWeight: 1e-2,
  cSigma: 0.75,
  gaussianKlWeight: 1e-4,
  lm: replaced(PRESETS.tiny, { train: { steps: 3, batchSize: 4 }, diffusion: { headSteps: 2 } }),
  imagePositions: false,
  headTemperature: 1,
  trainImages: 16,
  evalImages: 4,
  cfgScales: [1, 2],
  radii: [0, 1],
  headSteps: [1, 2],
};
const imageSmall = {
  data: CLASS_DATA,
  vae: { patchSize: 8, latentDim: 16, dim: 64, depth: 2, numHeads: 4, steps: 2000, batch: 32, lr: 2e-3 },
  sigmaKlWeight: 1e-4,
  cSigma: 0.75,
  gaussianKlWeight: 1e-6,
  lm: replaced(PRESETS.small, {
    train: { steps: 2000, batchSize: 32, lr: 1e-3 },
    diffusion: { headSteps: 10, predictionType: 'v_prediction' },
  }),
  imagePositions: false,
  headTemperature: 1,
  trainImages: 4000,
  evalImages: 256,
  cfgScales: [1, 2, 3],
  radii: [0, 0.25, 0.5, 1, 2],
  headSteps: [1, 2, 5, 10, 20],
};

// small with the lab arm's backbone recipe and C_sigma 0.1
const imageSmallArm = {
  ...imageSmall,
  cSigma: 0.1,
  lm: replaced(PRESETS.small, {
    model: { dropout: 0.1 },
    train: { steps: 3000, batchSize: 32, lr: 3e-3, weightDecay: 0.1 },
    diffusion: { headSteps: 10, predictionType: 'v_prediction' },
  }),
  headTemperature: 0.5,
};

// small-arm with the lab arm's tokenizer width
const imageSmallArmWide = { ...imageSmallArm, vae: { ...imageSmallArm.vae, dim: 128 } };

// small-arm-wide with 4,500 backbone steps
const imageSmallArmLong = {
  ...imageSmallArmWide,
  lm: { ...imageSmallArmWide.lm, train: { ...imageSmallArmWide.lm.train, steps: 4500 } },
};

describe('experiment settings', () => {
  it('parse to the former tables (fields the config preset has come from it)', () => {
    expect(IMAGE_PRESETS).toEqual({
      tiny: imageTiny,
      small: imageSmall,
      'small-arm': imageSmallArm,
      'small-arm-wide': imageSmallArmWide,
      'small-arm-long': imageSmallArmLong,
    });
    expect(MIXED_PRESETS).toEqual({
      tiny: {
        image: imageTiny,
        lm: replaced(PRESETS.tiny, {
          model: { dim: 32, numLayers: 1, numHeads: 2 },
          train: { steps: 3, batchSize: 4, lr: 1e-3 },
          diffusion: { headSteps: 2, cfgScale: 2 },
        }),
        textLines: 50,
        maxTextTokens: 24,
        evalText: 4,
        textOnlyBaseline: true,
      },
      small: {
        image: imageSmall,
        lm: replaced(PRESETS.small, {
          model: { dim: 96, numLayers: 3, numHeads: 4 },
          train: { steps: 3000, batchSize: 32, lr: 1e-3 },
          diffusion: { headSteps: 10, cfgScale: 2 },
        }),
        textLines: 20000,
        maxTextTokens: 32,
        evalText: 500,
        textOnlyBaseline: true,
      },
      // small with the lab arm's recipe: the wide arm tokenizer, image positions, 4,500 steps
      'small-arm': {
        image: { ...imageSmallArmWide, imagePositions: true },
        lm: replaced(PRESETS.small, {
          model: { dim: 96, numLayers: 3, numHeads: 4, dropout: 0.1 },
          train: { steps: 4500, batchSize: 32, lr: 3e-3, weightDecay: 0.1 },
          diffusion: { headSteps: 10, cfgScale: 2, predictionType: 'v_prediction' },
        }),
        textLines: 20000,
        maxTextTokens: 32,
        evalText: 500,
        textOnlyBaseline: true,
      },
    });
    const ttsSmallLm = (steps: number) =>
      replaced(PRESETS.small, {
        model: { dim: 96, numLayers: 3, numHeads: 4, diffusionDepth: 3 },
        train: { steps, batchSize: 12, lr: 1e-3 },
        diffusion: { headSteps: 10, cfgScale: 3, predictionType: 'v_prediction' },
      });
    const ttsSmall = {
      rates: [
        { strides: [2, 2], latentDim: 8 },
        { strides: [2, 2, 2], latentDim: 16 },
        { strides: [2, 2, 2, 2], latentDim: 32 },
      ],
      numSpeakers: 8,
      trainUtterances: 800,
      testUtterances: 40,
      vaeSteps: 800,
      vaeBatch: 16,
      vaeChannels: 64,
      lm: ttsSmallLm(1200),
      glIters: 32,
      headTemperatures: [1],
      examples: 3,
    };
    expect(TTS_PRESETS).toEqual({
      tiny: {
        rates: [
          { strides: [2, 2], latentDim: 4 },
          { strides: [2, 2, 2], latentDim: 8 },
        ],
        numSpeakers: 2,
        trainUtterances: 4,
        testUtterances: 2,
        vaeSteps: 3,
        vaeBatch: 2,
        vaeChannels: 8,
        lm: replaced(PRESETS.tiny, {
          model: { dim: 32, numLayers: 1, numHeads: 2, diffusionDepth: 3 },
          train: { steps: 3, batchSize: 2, lr: 1e-3 },
          diffusion: { headSteps: 2, cfgScale: 2 },
        }),
        glIters: 2,
        headTemperatures: [1, 0.5],
        examples: 1,
      },
      small: ttsSmall,
      long: { ...ttsSmall, rates: [{ strides: [2, 2, 2], latentDim: 16 }], lm: ttsSmallLm(4800) },
      'long-tau': {
        ...ttsSmall,
        rates: [{ strides: [2, 2, 2], latentDim: 16 }],
        lm: ttsSmallLm(4800),
        headTemperatures: [1, 0.7, 0.5],
      },
      'long-6x': {
        ...ttsSmall,
        rates: [{ strides: [2, 2, 2], latentDim: 16 }],
        lm: ttsSmallLm(7200),
        headTemperatures: [1, 0.5],
      },
      'rates-6x': { ...ttsSmall, lm: ttsSmallLm(7200), headTemperatures: [1, 0.5] },
    });
  });

  it('fail on a misspelt or out-of-range field, naming the table, the preset and the field', () => {
    const tts = (lm: unknown) =>
      parsePresets('latentlm.tts-frame-rate settings', { tiny: { ...TTS_PRESETS.tiny, lm } }, () => ttsSettingsSchema(PRESETS.tiny));
    expect(() => tts({ step: 3 })).toThrow(/latentlm\.tts-frame-rate settings \[tiny\] config: lm: Unrecognized key: "step"/);
    expect(() => tts({ headSteps: 0 })).toThrow(/\[tiny\] config: lm\.headSteps: .*\(got 0\)/);
    const image = (vae: unknown) =>
      parsePresets('latentlm image settings', { small: { ...imageSmall, lm: {}, vae } }, () => imageSettingsSchema(PRESETS.small));
    expect(() => image({ ...imageSmall.vae, batch: 2.5 })).toThrow(/\[small\] config: vae\.batch: .*\(got 2\.5\)/);
    expect(image({ ...imageSmall.vae, latentDim: undefined }).small.vae.latentDim).toBe(PRESETS.small.model.latentDim);
  });
});
