/**
 * bench/gpu.ts times the awaited steps of gpt-bench and of core's workloads (what a GPU backend
 * runs); `pnpm bench` times their synchronous steps. Both must be the same computation: from equal
 * fresh builds, two steps of each give bit-identical values, and neither leaks tensors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeGptBench } from '../bench/gpt.js';
import { makeWorkload } from '../bench/workloads.js';
import { tf } from '../src/index.js';
import { useBackend } from '../src/testing/index.js';

describe('bench workloads: the awaited step equals the synchronous one', () => {
  beforeAll(async () => useBackend('wasm'));
  afterAll(async () => useBackend('cpu'));

  for (const name of ['lm-2x64-T20', 'gen-2x64-cfg']) {
    it(name, async () => {
      const before = tf.memory().numTensors;
      const a = await makeWorkload(name);
      const sync = [a.step(), a.step()];
      a.dispose();
      const b = await makeWorkload(name);
      expect(b.stepAsync).toBeTypeOf('function');
      const awaited = [await b.stepAsync!(), await b.stepAsync!()];
      b.dispose();
      expect(awaited).toEqual(sync);
      expect(Number.isFinite(sync[0])).toBe(true);
      expect(tf.memory().numTensors).toBe(before);
    }, 60_000);
  }

  it('gpt-bench', async () => {
    const before = tf.memory().numTensors;
    const a = makeGptBench(0);
    const sync = a.step();
    a.dispose();
    const b = makeGptBench(0);
    const awaited = await b.stepAsync();
    b.dispose();
    expect(awaited).toBe(sync);
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);
});
