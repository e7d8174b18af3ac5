/**
 * The experiments' settings tables are parsed through zod schemas (issue 13, item 5): the parsed
 * values equal the literal tables they replaced (`model` now defaults to the config preset of the
 * same name; mask / train overrides stay overrides, no defaults filled in), and a misspelt or
 * out-of-range field fails, naming the table, the preset and the field.
 */
import { parsePresets } from '@mmlm/core/experiment';
import { describe, expect, it } from 'vitest';
import { ABLATION_SETTINGS } from '../src/experiments/ablations.js';
import { LADDER_SETTINGS, ladderSettingsSchema } from '../src/experiments/ladder.js';
import { TRANSFER_SETTINGS, transferSettingsSchema } from '../src/experiments/transfer.js';

const tinyDense = { steps: 30, batchSize: 4, lr: 3e-3, lrMin: 3e-4, weightDecay: 0.1, evalWindows: 4 };
const smallDense = { steps: 1000, batchSize: 16, lr: 2e-3, lrMin: 2e-4, weightDecay: 0.1, evalWindows: 300 };

describe('experiment settings', () => {
  it('parse to the former literal tables', () => {
    expect(LADDER_SETTINGS).toEqual({
      tiny: {
        model: 'tiny',
        chars: 6000,
        maxDataChars: 6000,
        dense: tinyDense,
        calib: 4,
        maskllm: { evalWindows: 4 },
        priors: ['none', 'magnitude', 'sparsegpt'],
      },
      quick: {
        model: 'quick',
        chars: 150_000,
        maxDataChars: 300_000,
        dense: { steps: 400, batchSize: 16, lr: 3e-3, lrMin: 3e-4, weightDecay: 0.1, evalWindows: 100 },
        calib: 32,
        maskllm: { evalWindows: 100 },
        priors: ['none', 'magnitude', 'sparsegpt'],
      },
      small: {
        model: 'small',
        chars: 400_000,
        maxDataChars: 1_200_000,
        dense: smallDense,
        calib: 64,
        maskllm: { evalWindows: 300 },
        priors: ['none', 'magnitude', 'wanda', 'sparsegpt'],
      },
    });
    expect(ABLATION_SETTINGS).toEqual({
      tiny: { model: 'tiny', chars: 6000, maxDataChars: 6000, dense: tinyDense, calib: 4, maskllm: { evalWindows: 4 } },
      small: { model: 'small', chars: 400_000, maxDataChars: 1_200_000, dense: smallDense, calib: 64, maskllm: { evalWindows: 300 } },
    });
    expect(TRANSFER_SETTINGS).toEqual({
      tiny: {
        model: 'tiny',
        chars: 6000,
        dense: tinyDense,
        calib: 4,
        general: { evalWindows: 4 },
        refine: { evalWindows: 4, train: { steps: 3 } },
      },
      small: {
        model: 'small',
        chars: 300_000,
        dense: { ...smallDense, steps: 1200 },
        calib: 64,
        general: { evalWindows: 300 },
        refine: { evalWindows: 300, train: { steps: 100 } },
      },
    });
  });

  it('fail on a misspelt or out-of-range field, naming the table, the preset and the field', () => {
    const base = { chars: 6000, dense: tinyDense, calib: 4, general: { evalWindows: 4 }, refine: { evalWindows: 4 } };
    const parse = (tiny: unknown) => parsePresets('maskllm.transfer settings', { tiny }, transferSettingsSchema);
    expect(() => parse({ ...base, refine: { evalWindows: 4, train: { step: 3 } } })).toThrow(
      /maskllm\.transfer settings \[tiny\] config: refine\.train: Unrecognized key: "step"/,
    );
    expect(() => parse({ ...base, refine: { evalWindows: 4, mask: { tauEnd: -1 } } })).toThrow(
      /\[tiny\] config: refine\.mask\.tauEnd: .*\(got -1\)/,
    );
    expect(() => parse({ ...base, dense: { ...tinyDense, lr: 0 } })).toThrow(/\[tiny\] config: dense\.lr: .*\(got 0\)/);
    expect(() => parse({ ...base, model: 'quick' })).toThrow(/\[tiny\] config: model: .*\(got "quick"\)/);
    expect(() =>
      parsePresets('maskllm.ladder settings', { small: { ...LADDER_SETTINGS.small, priors: ['sparse-gpt'] } }, ladderSettingsSchema),
    ).toThrow(/\[small\] config: priors\.0: .*\(got "sparse-gpt"\)/);
  });
});
