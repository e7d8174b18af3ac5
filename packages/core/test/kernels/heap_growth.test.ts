/**
 * Kernels whose output allocation grows the wasm heap: growing a WebAssembly.Memory detaches every
 * typed-array view taken before it, so a kernel that reads through such a view afterwards reads
 * nothing (this once made the first gpt-bench step's embedding lookup return garbage). Each case
 * makes an output larger than the whole current heap, so the allocation must grow it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';

afterAll(async () => useBackend('cpu'));

const heapBytes = () =>
  (tf.backend() as unknown as { wasm: { asm: { memory: { buffer: ArrayBuffer } } } }).wasm.asm.memory.buffer.byteLength;

describe('wasm kernels across heap growth', () => {
  it('GatherV2', async () => {
    await useBackend('wasm');
    const before = heapBytes();
    const width = 1024;
    const n = Math.ceil(before / (4 * width)) + 64;
    const table = tf.tensor2d(
      Array.from({ length: 3 * width }, (_, i) => i),
      [3, width],
    );
    const ids = tf.tensor1d(
      Array.from({ length: n }, (_, i) => (i * 7) % 3),
      'int32',
    );
    const y = tf.gather(table, ids);
    expect(heapBytes()).toBeGreaterThan(before);
    const v = y.dataSync();
    for (const i of [0, 1, 2, n - 1]) expect(v[i * width + 5]).toBe(((i * 7) % 3) * width + 5);
    tf.dispose([table, ids, y]);
  });

  it('Slice', async () => {
    await useBackend('wasm');
    const before = heapBytes();
    const cols = Math.ceil(before / 4 / 2) + 16;
    const x = tf.fill([3, cols], 2.5);
    const y = tf.slice(x, [1, 0], [2, cols]);
    expect(heapBytes()).toBeGreaterThan(before);
    const v = y.dataSync();
    expect([v[0], v[cols], v[2 * cols - 1]]).toEqual([2.5, 2.5, 2.5]);
    tf.dispose([x, y]);
  });

  it('BatchMatMul', async () => {
    await useBackend('wasm');
    const before = heapBytes();
    const n = Math.ceil(Math.sqrt(before / 4)) + 16;
    const a = tf.fill([n, 1], 2);
    const b = tf.fill([1, n], 3);
    const y = tf.matMul(a, b);
    expect(heapBytes()).toBeGreaterThan(before);
    const v = y.dataSync();
    expect([v[0], v[n * n - 1]]).toEqual([6, 6]);
    tf.dispose([a, b, y]);
  });
});
