import { initBackend, Rng, tf } from '@mmlm/core';
const backend = (process.argv[2] ?? 'wasm') as 'wasm' | 'cpu';
await initBackend({ backend, log: false });
const x = new Rng(1).rand([32, 32, 32, 64], -1, 1) as tf.Tensor4D;
const w = tf.variable(new Rng(2).rand([3, 3, 64, 64], -0.1, 0.1)) as tf.Variable<tf.Rank.R4>;
for (const name of ['fwd', 'grad'] as const) {
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    if (name === 'fwd') tf.tidy(() => tf.conv2d(x, w, 1, 'same').dataSync());
    else tf.tidy(() => { const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').sum())([x, w]); g.forEach(t => t.dataSync()); });
    console.log(backend, name, (performance.now() - t0).toFixed(0), 'ms');
  }
}
const p = await tf.profile(() => tf.tidy(() => { const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').sum())([x, w]); g.forEach(t => t.dataSync()); }));
console.log(p.kernels.map(k => `${k.name} ${k.kernelTimeMs}`).join('\n'));
