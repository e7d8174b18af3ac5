import { initBackend, tf } from '@mmlm/core';
import { geluErf, geluErfComposite } from '../../packages/core/src/backend/kernels/fused.ts';
import { geluTanh } from '../../packages/core/src/nn/activations.ts';
await initBackend({ backend: 'wasm' });
const x = tf.randomNormal([256, 512]);
const w = tf.randomNormal([256, 512]);
const variants = { composite: geluErfComposite, fused: geluErf, tanhFused: geluTanh } as Record<string, (t: tf.Tensor) => tf.Tensor>;
const best: Record<string, number[]> = {};
for (let r = 0; r < 30; r++) for (const [n, g] of Object.entries(variants)) {
  const run = () => tf.tidy(() => { const dx = tf.grad((u: tf.Tensor) => g(u).mul(w).sum())(x); dx.dataSync(); });
  run();
  const t0 = performance.now(); for (let i = 0; i < 5; i++) run(); (best[n] ??= []).push((performance.now() - t0) / 5);
}
for (const [n, a] of Object.entries(best)) { a.sort((p, q) => p - q); console.log(n, 'min', a[0]!.toFixed(3), 'median', a[15]!.toFixed(3), 'ms per fwd+bwd of [256, 512] (+ mul, sum)'); }
