/**
 * `node node_modules/tsx/dist/cli.mjs --conditions=@mmlm/source bench/conv_filter.ts` (from
 * packages/core): the wasm Conv2DBackpropFilter kernel alone at the conv tokenizers' shapes (batch
 * 16, 3x3 'same', stride 1), one thread, the addon off: median of 15 calls after 3 warm-up calls,
 * GFLOP/s of the convolution's own multiply-adds (2 B H W Cin Cout 9; the shifted GEMMs also multiply
 * the zero padding), and a hash of the output's bits so that two versions of the kernel can be
 * checked to give the same result, bit for bit.
 */
import { setNativeBlasEnabled, setWasmGemmThreads } from '../src/backend/kernels/index.js';
import { initBackend, tf } from '../src/index.js';

await initBackend({ backend: 'wasm', log: false });
setNativeBlasEnabled(false);
setWasmGemmThreads(1);
const SHAPES: { x: [number, number, number, number]; cout: number }[] = [
  { x: [16, 32, 32, 3], cout: 32 },
  { x: [16, 32, 32, 32], cout: 32 },
  { x: [16, 32, 32, 32], cout: 3 },
  { x: [16, 16, 16, 32], cout: 32 },
  { x: [16, 16, 16, 16], cout: 16 },
  { x: [16, 8, 8, 32], cout: 32 },
];
for (const { x: xs, cout } of SHAPES) {
  const [B, H, W, Cin] = xs;
  const x = tf.randomNormal(xs, 0, 1, 'float32', 1) as tf.Tensor4D;
  const dy = tf.randomNormal([B, H, W, cout], 0, 1, 'float32', 2) as tf.Tensor4D;
  const run = () =>
    tf
      .engine()
      .runKernel(
        'Conv2DBackpropFilter',
        { x, dy },
        { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, Cin, cout] },
      ) as tf.Tensor;
  for (let i = 0; i < 3; i++) run().dispose();
  const times: number[] = [];
  let hash = 0;
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    const o = run();
    const d = o.dataSync() as Float32Array;
    times.push(performance.now() - t0);
    if (i === 0) for (const v of new Int32Array(d.buffer, d.byteOffset, d.length)) hash = (Math.imul(hash, 31) + v) | 0;
    o.dispose();
  }
  times.sort((a, b) => a - b);
  const ms = times[7]!;
  const flop = 2 * B * H * W * cout * 9 * Cin;
  console.log(`x [${xs}] -> ${cout} channels: ${ms.toFixed(2)} ms, ${(flop / ms / 1e6).toFixed(1)} GFLOP/s, output hash ${hash}`);
  x.dispose();
  dy.dispose();
}
