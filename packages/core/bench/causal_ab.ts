/**
 * Causal attention with and without core's skipped GEMM blocks (setCausalStripRows), alternating in
 * one process: the attention forward and forward + backward alone at gpt-bench's and the small
 * discrete arm's shapes, then whole training steps of gpt-bench and decoder workloads (their losses
 * printed: the same bits either way). One thread, the native GEMM off.
 *   node node_modules/tsx/dist/cli.mjs --conditions=@mmlm/source bench/causal_ab.ts [ROWS=0,16] [STEPS=8]
 * ROWS: comma-separated strip heights (0: the full GEMMs); W: the step workloads (default
 * gpt,lm-4x128-T80-b32,lm-4x128-T60).
 */
import { setCausalStripRows, setNativeBlasEnabled, setWasmGemmThreads } from '../src/backend/kernels/index.js';
import { initBackend, scaledDotProductAttention, tf } from '../src/index.js';
import { makeGptBench } from './gpt.js';
import { makeWorkload } from './workloads.js';

await initBackend({ backend: 'wasm', log: false });
setNativeBlasEnabled(false);
setWasmGemmThreads(1);
const settings = (process.env.ROWS ?? '0,16').split(',').map(Number);
const steps = Number(process.env.STEPS ?? 8);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1] as number;

for (const [B, H, T, hs] of [
  [16, 4, 128, 64],
  [32, 4, 80, 32],
] as [number, number, number, number][]) {
  const [q, k, v, dy] = [0, 1, 2, 3].map((i) => tf.randomNormal([B, H, T, hs], 0, 1, 'float32', i));
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => scaledDotProductAttention(a, b, c, { causal: true }).mul(dy!).sum());
  const fwd = new Map<number, number[]>(settings.map((s) => [s, []]));
  const all = new Map<number, number[]>(settings.map((s) => [s, []]));
  for (let i = 0; i < 25; i++)
    for (const s of settings) {
      setCausalStripRows(s);
      let t0 = performance.now();
      scaledDotProductAttention(q!, k!, v!, { causal: true }).dispose();
      fwd.get(s)!.push(performance.now() - t0);
      t0 = performance.now();
      tf.dispose(g([q!, k!, v!]));
      all.get(s)!.push(performance.now() - t0);
    }
  for (const s of settings)
    console.log(
      `attention [${B}, ${H}, ${T}, ${hs}] strips of ${s}: forward ${med(fwd.get(s)!).toFixed(2)} ms, forward + backward ${med(all.get(s)!).toFixed(2)} ms`,
    );
  tf.dispose([q!, k!, v!, dy!]);
}

for (const name of (process.env.W ?? 'gpt,lm-4x128-T80-b32,lm-4x128-T60').split(',')) {
  // one model per setting, so each trains the same trajectory; steps alternate between them
  const ws = new Map<number, { step(): number; dispose?: () => void }>();
  for (const s of settings) ws.set(s, name === 'gpt' ? makeGptBench() : await makeWorkload(name));
  const times = new Map<number, number[]>(settings.map((s) => [s, []]));
  const losses = new Map<number, number[]>(settings.map((s) => [s, []]));
  for (let i = 0; i <= steps; i++)
    for (const s of settings) {
      setCausalStripRows(s);
      const t0 = performance.now();
      const l = ws.get(s)!.step();
      if (i > 0) times.get(s)!.push(performance.now() - t0); // step 0 warms up
      losses.get(s)!.push(l);
    }
  for (const s of settings)
    console.log(
      `${name} strips of ${s}: ${med(times.get(s)!).toFixed(1)} ms a step (min ${Math.min(...times.get(s)!).toFixed(1)}), losses ${losses
        .get(s)!
        .slice(0, 4)
        .map((x) => x.toPrecision(9))
        .join(' ')}`,
    );
  for (const w of ws.values()) w.dispose?.();
}
setCausalStripRows(16);
