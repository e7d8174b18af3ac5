/**
 * The experiments' settings tables are parsed through zod schemas whose defaults come from the
 * config presets (issue 13, item 5): the parsed values equal the literal tables they replaced, and a
 * misspelt or out-of-range field fails, naming the table, the preset and the field.
 */
import { parsePresets } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { CFG_SETTINGS, CfgSettingsSchema } from '../src/experiments/cfg.js';
import { INIT_SETTINGS, initSettingsSchema } from '../src/experiments/init.js';
import { liquidArmRecipe } from '../src/experiments/recipe.js';
import { SYNERGY_SETTINGS } from '../src/experiments/synergy.js';
import { TRADEOFF_SETTINGS, tradeoffSettingsSchema } from '../src/experiments/tradeoff.js';

const tinySizes = (evalPrompts: number) => ({ images: { train: 48, evalPrompts }, textChars: 6000, textEvalWindows: 4 });
const smallSizes = { images: { train: 2000, evalPrompts: 256 }, textChars: 200_000, textEvalWindows: 64 };

describe('experiment settings', () => {
  it('parse to the former literal tables (fields the config preset has come from it)', () => {
    expect(CFG_SETTINGS).toEqual({
      tiny: { sizes: tinySizes(6), scales: [1, 2, 3, 5, 7] },
      small: { sizes: smallSizes, scales: [1, 2, 3, 5, 7] },
      'small-pos': {
        base: 'small',
        tokenizerSteps: 2000,
        tokenizerCh: 32,
        sizes: smallSizes,
        scales: [1, 2, 3, 5, 7],
        recipe: liquidArmRecipe({ backbone: { imagePositions: true } }),
      },
    });
    expect(INIT_SETTINGS).toEqual({
      tiny: { sizes: tinySizes(4), steps: 4, evalEvery: 2, evalScale: 3, target: 0.5 },
      small: { sizes: smallSizes, steps: 600, evalEvery: 100, evalScale: 3, target: 0.5 },
      'small-pos': {
        base: 'small',
        tokenizerSteps: 2000,
        tokenizerCh: 32,
        sizes: smallSizes,
        steps: 3000,
        evalEvery: 500,
        evalScale: 3,
        target: 0.5,
        recipe: liquidArmRecipe({ backbone: { imagePositions: true } }),
      },
    });
    expect(SYNERGY_SETTINGS).toEqual({
      tiny: { sizes: tinySizes(4), steps: 3, batchSize: 4, evalScale: 3 },
      small: { sizes: smallSizes, steps: 450, batchSize: 16, evalScale: 3 },
      'small-pos': {
        base: 'small',
        tokenizerSteps: 2000,
        tokenizerCh: 32,
        sizes: smallSizes,
        steps: 2250,
        batchSize: 16,
        evalScale: 3,
        recipe: liquidArmRecipe({ backbone: { imagePositions: true } }),
      },
    });
    expect(TRADEOFF_SETTINGS).toEqual({
      tiny: {
        sizes: tinySizes(4),
        widths: [16, 24, 32],
        numHeads: 2,
        numLayers: 1,
        textSteps: 2,
        steps: 2,
        batchSize: 4,
        mixedStepsFactor: 1,
        evalScale: 3,
      },
      small: {
        sizes: smallSizes,
        widths: [32, 64, 128],
        numHeads: 4,
        numLayers: 2,
        textSteps: 100,
        steps: 150,
        batchSize: 16,
        mixedStepsFactor: 1,
        evalScale: 3,
      },
      'small-pos': {
        base: 'small',
        tokenizerSteps: 2000,
        tokenizerCh: 32,
        sizes: { ...smallSizes, textChars: 5_000_000 },
        widths: [32, 64, 128],
        numHeads: 4,
        numLayers: 3,
        textSteps: 300,
        steps: 2000,
        batchSize: 16,
        mixedStepsFactor: 1,
        evalScale: 3,
        recipe: liquidArmRecipe({ backbone: { imagePositions: true } }),
      },
    });
  });

  it('fail on a misspelt or out-of-range field, naming the table, the preset and the field', () => {
    const tiny = { sizes: tinySizes(4), evalEvery: 2, evalScale: 3, target: 0.5 };
    expect(() => parsePresets('liquid.init settings', { tiny: { ...tiny, evalEvry: 2 } }, initSettingsSchema)).toThrow(
      /liquid\.init settings \[tiny\] config: .*evalEvry/,
    );
    expect(() => parsePresets('liquid.init settings', { tiny: { ...tiny, steps: 0 } }, initSettingsSchema)).toThrow(
      /liquid\.init settings \[tiny\] config: steps: .*\(got 0\)/,
    );
    expect(() =>
      parsePresets('liquid.cfg-sweep settings', { small: { sizes: { ...smallSizes, textChar: 1 }, scales: [1] } }, () => CfgSettingsSchema),
    ).toThrow(/\[small\] config: sizes: .*textChar/);
    expect(() =>
      parsePresets('liquid.tradeoff settings', { small: { ...TRADEOFF_SETTINGS.small, widths: [] } }, tradeoffSettingsSchema),
    ).toThrow(/\[small\] config: widths: /);
  });
});
