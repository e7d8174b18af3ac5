import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatFixed } from '../../src/experiment/index.js';
import { loadModule, StateDictError, saveModule, TransformerDecoder, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

describe('saveModule / loadModule', () => {
  beforeAll(async () => useBackend('cpu'));

  it('round-trips a module with metadata, strictly, without leaking', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmlm-module-io-'));
    const cfg = { vocabSize: 7, dim: 8, numLayers: 1, numHeads: 2, maxSeqLen: 4 };
    const a = new TransformerDecoder({ ...cfg, seed: 1 });
    const b = new TransformerDecoder({ ...cfg, seed: 2 });
    const path = join(dir, 'm.safetensors');
    await saveModule(path, a, { config: '{"x":1}' });
    const n0 = tf.memory().numTensors;
    expect(await loadModule(path, b)).toEqual({ config: '{"x":1}' });
    expect(tf.memory().numTensors).toBe(n0);
    const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    expect(Array.from(b.forward(ids).dataSync())).toEqual(Array.from(a.forward(ids).dataSync()));
    const other = new TransformerDecoder({ ...cfg, numLayers: 2, seed: 3 });
    await expect(loadModule(path, other)).rejects.toThrow(StateDictError);
    for (const m of [a, b, other]) m.dispose();
  });

  it('formatFixed: decimals, and n/a for missing or non-finite values', () => {
    expect([0.12345, 2, null, undefined, Number.NaN, Number.POSITIVE_INFINITY].map((x) => formatFixed(x))).toEqual([
      '0.123',
      '2.000',
      'n/a',
      'n/a',
      'n/a',
      'n/a',
    ]);
    expect(formatFixed(1.5, 1, '—')).toBe('1.5');
    expect(formatFixed(null, 1, '—')).toBe('—');
  });
});
