import { describe, expect, it } from 'vitest';
import { parsePresets } from '../../src/experiment/index.js';
import type { SafeParseSchema } from '../../src/index.js';

/** A hand-written schema (core has no zod): { steps: positive integer, default `steps` }, no other keys. */
function stepsSchema(defaultSteps: number): SafeParseSchema<{ steps: number }> {
  return {
    safeParse(input: unknown) {
      const o = input as Record<string, unknown>;
      const extra = Object.keys(o).filter((k) => k !== 'steps');
      if (extra.length) return { success: false, error: { issues: [{ path: [], message: `Unrecognized key: "${extra[0]}"` }] } };
      const steps = o.steps ?? defaultSteps;
      if (typeof steps !== 'number' || !Number.isInteger(steps) || steps <= 0)
        return { success: false, error: { issues: [{ path: ['steps'], message: 'expected a positive integer' }] } };
      return { success: true, data: { steps } };
    },
  };
}

describe('parsePresets', () => {
  const defaults = { tiny: 4, small: 1000 };

  it('parses every preset with its own schema (defaults per preset)', () => {
    const s = parsePresets('toy.exp settings', { tiny: {}, small: { steps: 600 } }, (name) => stepsSchema(defaults[name]));
    expect(s).toEqual({ tiny: { steps: 4 }, small: { steps: 600 } });
  });

  it('names the table, the preset, the field, the expectation and the value', () => {
    expect(() => parsePresets('toy.exp settings', { tiny: {}, small: { steps: 0 } }, (name) => stepsSchema(defaults[name]))).toThrow(
      'toy.exp settings [small] config: steps: expected a positive integer (got 0)',
    );
    expect(() => parsePresets('toy.exp settings', { tiny: { step: 3 }, small: {} }, (name) => stepsSchema(defaults[name]))).toThrow(
      'toy.exp settings [tiny] config: (root): Unrecognized key: "step"',
    );
  });
});
