/** Mask files: safetensors round trips, compact sizes, loading into a dense model, and clear errors. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, TransformerDecoder } from '@mmlm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyMaskFile,
  blockLinears,
  decodeMaskFile,
  decodeSafetensors,
  densify,
  encodeMaskFile,
  encodeSafetensors,
  hardMasks,
  indexBits,
  loadMasks,
  maskToIndices,
  saveMasks,
  sparsify,
  withShapes,
} from '../src/index.js';

const make = (dim = 16, seed = 1) => new TransformerDecoder({ vocabSize: 9, dim, numLayers: 2, numHeads: 2, maxSeqLen: 6, seed });
const dir = mkdtempSync(join(tmpdir(), 'maskllm-storage-'));

describe('mask storage', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('safetensors container: header layout and round trip', () => {
    const bytes = encodeSafetensors(
      {
        a: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
        b: { dtype: 'F32', shape: [2], data: new Float32Array([0.5, -2]) },
      },
      { k: 'v' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.a).toEqual({ dtype: 'U8', shape: [3], data_offsets: [0, 3] });
    expect(header.b).toEqual({ dtype: 'F32', shape: [2], data_offsets: [3, 11] });
    expect(header.__metadata__).toEqual({ k: 'v' });
    const back = decodeSafetensors(bytes);
    expect(Array.from(back.tensors.a!.data)).toEqual([1, 2, 3]);
    expect(Array.from(back.tensors.b!.data)).toEqual([0.5, -2]);
  });

  for (const encoding of ['index', 'bitmask'] as const)
    it(`${encoding}: save, load and apply equals the densified model`, () => {
      const a = make();
      sparsify(a, { seed: 4, initStd: 1 });
      const masks = hardMasks(a);
      const path = join(dir, `m-${encoding}.safetensors`);
      saveMasks(path, { n: 2, m: 4, encoding, layers: withShapes(a, masks) });
      const file = loadMasks(path);
      expect(file.encoding).toBe(encoding);
      for (const [p, m] of masks) expect(Array.from(file.layers.get(p)!.mask), p).toEqual(Array.from(m));
      densify(a);
      const b = make();
      applyMaskFile(b, file);
      for (const [p, l] of blockLinears(a)) {
        const lb = blockLinears(b).find(([q]) => q === p)![1];
        expect(Array.from(lb.weight.dataSync()), p).toEqual(Array.from(l.weight.dataSync()));
      }
      a.dispose();
      b.dispose();
    });

  it('index encoding: 3 bits per group of 4 (0.75 bits per weight); bitmask: 1 bit per weight, np.packbits order', () => {
    expect(indexBits(2, 4)).toBe(3);
    expect(indexBits(1, 4)).toBe(2);
    const layers = new Map([
      ['blocks.0.mlp.fc1', { shape: [4, 16] as [number, number], mask: new Uint8Array(64).map((_, i) => (i % 4 < 2 ? 1 : 0)) }],
    ]);
    const idx = decodeSafetensors(encodeMaskFile({ n: 2, m: 4, encoding: 'index', layers })).tensors['blocks.0.mlp.fc1.mask']!;
    expect(idx.data.length).toBe((16 * 3) / 8); // 16 groups x 3 bits
    expect(Array.from(idx.data)).toEqual(new Array(6).fill(0)); // every group is candidate 0 (1100)
    const bm = decodeSafetensors(encodeMaskFile({ n: 2, m: 4, encoding: 'bitmask', layers })).tensors['blocks.0.mlp.fc1.mask']!;
    expect(bm.data.length).toBe(8);
    expect(Array.from(bm.data)).toEqual(new Array(8).fill(0b11001100));
    expect(Array.from(maskToIndices(new Uint8Array([0, 0, 1, 1, 1, 0, 1, 0]), 2, 4))).toEqual([5, 1]);
  });

  it('a mask file for a different model shape is rejected with every mismatch named', () => {
    const a = make(16);
    const file = decodeMaskFile(
      encodeMaskFile({
        n: 2,
        m: 4,
        encoding: 'index',
        layers: withShapes(
          a,
          new Map(blockLinears(a).map(([p, l]) => [p, new Uint8Array(l.inFeatures * l.outFeatures).map((_, i) => (i % 4 < 2 ? 1 : 0))])),
        ),
      }),
    );
    const b = make(32);
    expect(() => applyMaskFile(b, file)).toThrow(
      /layer blocks\.0\.attn\.qkv: the model's weight is \[96, 32\], the file's mask is \[48,16\]/,
    );
    const c = new TransformerDecoder({ vocabSize: 9, dim: 16, numLayers: 3, numHeads: 2, maxSeqLen: 6, seed: 1 });
    expect(() => applyMaskFile(c, file)).toThrow(/missing layer blocks\.2\.attn\.qkv \[48, 16\]/);
    const d = new TransformerDecoder({ vocabSize: 9, dim: 16, numLayers: 1, numHeads: 2, maxSeqLen: 6, seed: 1 });
    expect(() => applyMaskFile(d, file)).toThrow(/unexpected layer blocks\.1\.attn\.qkv/);
    [a, b, c, d].forEach((m) => m.dispose());
  });

  it('invalid masks and corrupt files', () => {
    const bad = new Map([['x', { shape: [1, 4] as [number, number], mask: new Uint8Array([1, 1, 1, 0]) }]]);
    expect(() => encodeMaskFile({ n: 2, m: 4, encoding: 'index', layers: bad })).toThrow(/group 0 is \[1,1,1,0\], not a valid 2:4 pattern/);
    expect(() => decodeSafetensors(new Uint8Array(4))).toThrow(/file too short \(4 bytes/);
    const bytes = encodeSafetensors({ a: { dtype: 'U8', shape: [3], data: new Uint8Array(3) } });
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 1))).toThrow(/tensor a ends at byte \d+, past the end of the file/);
    const big = new Uint8Array(bytes);
    new DataView(big.buffer).setBigUint64(0, 10_000n, true);
    expect(() => decodeSafetensors(big)).toThrow(/header length 10000 exceeds the file/);
    expect(() => decodeMaskFile(bytes)).toThrow(/format must be "mmlm-maskllm-masks\/1", got "\(none\)"/);
  });
});
