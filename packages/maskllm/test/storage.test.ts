/** Mask files: safetensors round trips, compact sizes, loading into a dense model, and clear errors. */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensorsHost, initBackend, parseSafetensors, TransformerDecoder } from '@mmlm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyMaskFile,
  blockLinears,
  decodeMaskFile,
  densify,
  encodeMaskFile,
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

/** A safetensors file built by hand (independent of core's writer): one U8 tensor and metadata. */
function handWrittenU8(name: string, data: Uint8Array, metadata: Record<string, string>): Uint8Array {
  let json = JSON.stringify({ __metadata__: metadata, [name]: { dtype: 'U8', shape: [data.length], data_offsets: [0, data.length] } });
  while (json.length % 8) json += ' ';
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  out.set(data, 8 + json.length);
  return out;
}

/** The packed bytes of one layer's stream as stored in a mask file (a U8 tensor). */
function streamBytes(file: Uint8Array, name: string): Uint8Array {
  const e = parseSafetensors(file).entries.find((x) => x.name === name)!;
  expect(e.dtype).toBe('U8');
  return Uint8Array.from(e.data);
}

describe('mask storage', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: false });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const encoding of ['index', 'bitmask'] as const)
    it(`${encoding}: save, load and apply equals the densified model`, async () => {
      const a = make();
      sparsify(a, { seed: 4, initStd: 1 });
      const masks = hardMasks(a);
      const path = join(dir, `m-${encoding}.safetensors`);
      const size = await saveMasks(path, { n: 2, m: 4, encoding, layers: withShapes(a, masks) });
      expect(statSync(path).size).toBe(size);
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
    const idx = streamBytes(encodeMaskFile({ n: 2, m: 4, encoding: 'index', layers }), 'blocks.0.mlp.fc1.mask');
    expect(idx.length).toBe(6); // 16 groups x 3 bits = 6 bytes
    expect(Array.from(idx)).toEqual(new Array(6).fill(0)); // every group is candidate 0 (1100)
    const mixed = new Map([['l', { shape: [1, 8] as [number, number], mask: new Uint8Array([0, 0, 1, 1, 1, 0, 1, 0]) }]]);
    // candidates 5 (0011) and 1 (1010), 3 bits each LSB-first: 101 then 100 -> bits 0..5 = 1,0,1,1,0,0 -> 0b001101
    expect(Array.from(streamBytes(encodeMaskFile({ n: 2, m: 4, encoding: 'index', layers: mixed }), 'l.mask'))).toEqual([0b001101]);
    const bm = streamBytes(encodeMaskFile({ n: 2, m: 4, encoding: 'bitmask', layers }), 'blocks.0.mlp.fc1.mask');
    expect(bm.length).toBe(8);
    expect(Array.from(bm)).toEqual(new Array(8).fill(0b11001100));
    expect(Array.from(maskToIndices(new Uint8Array([0, 0, 1, 1, 1, 0, 1, 0]), 2, 4))).toEqual([5, 1]);
  });

  it('reads files of earlier versions, which stored each stream as int32 words', () => {
    const layers = new Map([
      ['l', { shape: [2, 8] as [number, number], mask: new Uint8Array([0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1]) }],
    ]);
    const now = encodeMaskFile({ n: 2, m: 4, encoding: 'index', layers });
    const stream = streamBytes(now, 'l.mask'); // 4 groups x 3 bits -> 2 bytes
    const padded = new Uint8Array(4);
    padded.set(stream);
    const meta = parseSafetensors(now).metadata;
    const old = encodeSafetensorsHost({ 'l.mask': { dtype: 'I32', shape: [1], data: new Int32Array(padded.buffer) } }, meta);
    expect(Array.from(decodeMaskFile(old).layers.get('l')!.mask)).toEqual(Array.from(layers.get('l')!.mask));
    expect(Array.from(decodeMaskFile(now).layers.get('l')!.mask)).toEqual(Array.from(layers.get('l')!.mask));
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

  it('reads a layer stored as U8 bytes (numpy-style packed bits) written without core', () => {
    const meta = { format: 'mmlm-maskllm-masks/1', n: '2', m: '4', encoding: 'bitmask', shapes: JSON.stringify({ l: [2, 8] }) };
    const file = decodeMaskFile(handWrittenU8('l.mask', new Uint8Array([0b11000011, 0b01011010]), meta));
    expect(Array.from(file.layers.get('l')!.mask)).toEqual([1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0]);
  });

  it('invalid masks and corrupt files', () => {
    const bad = new Map([['x', { shape: [1, 4] as [number, number], mask: new Uint8Array([1, 1, 1, 0]) }]]);
    expect(() => encodeMaskFile({ n: 2, m: 4, encoding: 'index', layers: bad })).toThrow(/group 0 is \[1,1,1,0\], not a valid 2:4 pattern/);
    expect(() =>
      encodeMaskFile({ n: 2, m: 4, encoding: 'index', layers: new Map([['x', { shape: [1, 6], mask: new Uint8Array(6) }]]) }),
    ).toThrow(/layer x input dimension 6 is not divisible by M=4/);
    expect(() => encodeMaskFile({ n: 4, m: 4, encoding: 'index', layers: new Map() })).toThrow(
      /expected integers with 1 <= N < M, got N=4, M=4/,
    );
    expect(() => decodeMaskFile(new Uint8Array(4), 'f.safetensors')).toThrow(/f\.safetensors/);
    const good = encodeMaskFile({
      n: 2,
      m: 4,
      encoding: 'index',
      layers: new Map([['x', { shape: [1, 4], mask: new Uint8Array([1, 1, 0, 0]) }]]),
    });
    expect(() => decodeMaskFile(good.subarray(0, good.length - 1))).toThrow();
    const meta = { format: 'mmlm-maskllm-masks/1', n: '2', m: '4', encoding: 'bitmask', shapes: JSON.stringify({ l: [4, 8] }) };
    expect(() => decodeMaskFile(handWrittenU8('l.mask', new Uint8Array(2), meta))).toThrow(/layer l \[4,8\] needs 4 bytes, got 2/);
    expect(() => decodeMaskFile(handWrittenU8('other.mask', new Uint8Array(4), meta))).toThrow(
      /layer l is listed but its tensor "l\.mask" is missing/,
    );
    expect(() => decodeMaskFile(handWrittenU8('l.mask', new Uint8Array(4), { ...meta, m: '3', n: '3' }))).toThrow(
      /1 <= N < M, got N=3, M=3/,
    );
    expect(() => decodeMaskFile(encodeSafetensorsHost({ a: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }))).toThrow(
      /format must be "mmlm-maskllm-masks\/1", got "\(none\)"/,
    );
    expect(() => loadMasks(join(dir, 'nope.safetensors'))).toThrow(/loadMasks: cannot read .*nope\.safetensors \(ENOENT\)/);
  });
});
