/**
 * Speed and memory of the compressed 2:4 format (src/sparse.ts) against dense weights at the
 * `small` preset's linear shapes (width 128: qkv [384, 128], proj [128, 128], fc1 [512, 128],
 * fc2 [128, 512]), for a batch of tokens (evaluation: 16 windows x 64) and for one token
 * (generation). Compared: tfjs matMul on the active backend with the dense masked weight, a plain
 * JavaScript dense loop (the same code shape as the sparse kernel, all M weights per group), and
 * sparseMatMul over the compressed weight (N of M weights plus 2-bit positions).
 *   pnpm --filter @mmlm/maskllm bench [--tokens 1024] [--reps 20]
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { currentBackend, initBackend, Rng, tf } from '@mmlm/core';
import { blockLinearShapes, compressedBytes, compressNM, magnitudeMask, PRESETS, sparseMatMul } from '../src/index.js';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '1024' }, reps: { type: 'string', default: '20' } } });
const reps = Number(values.reps);
await initBackend();

/**
 * Median wall times (ms) of each function over `reps` rounds after two warm-up rounds; every round
 * runs all of them in turn, so a shared machine's load falls on each alike.
 */
function time(fns: (() => void)[]): number[] {
  for (let w = 0; w < 2; w++) for (const f of fns) f();
  const ts = fns.map((): number[] => []);
  for (let i = 0; i < reps; i++)
    fns.forEach((f, k) => {
      const t0 = performance.now();
      f();
      ts[k]!.push(performance.now() - t0);
    });
  return ts.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)] as number);
}

/** y = x W^T, dense, plain JavaScript (the sparse kernel's loop with every weight). */
function denseJs(x: Float32Array, T: number, W: Float32Array, rows: number, cols: number, y: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const wOff = r * cols;
    for (let t = 0; t < T; t++) {
      const xOff = t * cols;
      let acc = 0;
      for (let k = 0; k < cols; k++) acc += (W[wOff + k] as number) * (x[xOff + k] as number);
      y[t * rows + r] = acc;
    }
  }
}

const cfg = PRESETS.small;
const shapes = blockLinearShapes(cfg.model);
const names = ['attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2'];
const rng = new Rng(0);
const rows: string[] = [];
let totDense = 0;
let totComp = 0;
const sums = new Map<number, { tf: number; js: number; sp: number }>();
for (const T of [Number(values.tokens), 1]) {
  const sum = { tf: 0, js: 0, sp: 0 };
  shapes.forEach(([out, inF], i) => {
    const Wt = rng.randn([out, inF]);
    const Wraw = Wt.dataSync() as Float32Array;
    Wt.dispose();
    const mask = magnitudeMask(Wraw, out, inF);
    const W = Wraw.map((v, j) => (mask[j] ? v : 0));
    const c = compressNM(W, out, inF, 2, 4, mask);
    const xT = rng.randn([T, inF]);
    const x = xT.dataSync() as Float32Array;
    const Wtf = tf.tensor2d(W, [out, inF]);
    const y = new Float32Array(T * out);
    const check = sparseMatMul(x, T, c);
    const ref = tf.tidy(() => tf.matMul(xT, Wtf, false, true).dataSync());
    let err = 0;
    for (let j = 0; j < ref.length; j++) err = Math.max(err, Math.abs((ref[j] as number) - (check[j] as number)));
    if (err > 1e-3) throw new Error(`bench: sparse and dense results differ by ${err} on ${names[i]}`);
    const [tTf, tJs, tSp] = time([
      () => tf.tidy(() => tf.matMul(xT, Wtf, false, true).dataSync()),
      () => denseJs(x, T, W, out, inF, y),
      () => sparseMatMul(x, T, c, y),
    ]) as [number, number, number];
    sum.tf += tTf;
    sum.js += tJs;
    sum.sp += tSp;
    const b = compressedBytes(c);
    if (T !== 1) {
      totDense += b.dense;
      totComp += b.compressed;
    }
    rows.push(
      `| ${names[i]} [${out}, ${inF}] | ${T} | ${tTf.toFixed(3)} | ${tJs.toFixed(3)} | ${tSp.toFixed(3)} | ${(tTf / tSp).toFixed(2)}x | ${(tJs / tSp).toFixed(2)}x | ${(b.dense / 1024).toFixed(1)} / ${(b.compressed / 1024).toFixed(1)} |`,
    );
    xT.dispose();
    Wtf.dispose();
  });
  sums.set(T, sum);
}
const b = currentBackend();
console.log(
  `Backend ${b?.backend}, ${cpus().length} cores (load average ${loadavg()
    .map((v) => v.toFixed(1))
    .join(' ')}), median of ${reps} runs, times in ms.\n`,
);
console.log(
  '| Layer [out, in] | Tokens | tfjs dense matMul | JS dense loop | JS 2:4 sparseMatMul | tfjs / sparse | JS dense / sparse | KiB dense / compressed |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
for (const [T, s] of sums)
  console.log(
    `| one block, all four | ${T} | ${s.tf.toFixed(3)} | ${s.js.toFixed(3)} | ${s.sp.toFixed(3)} | ${(s.tf / s.sp).toFixed(2)}x | ${(s.js / s.sp).toFixed(2)}x | ${(totDense / 1024).toFixed(1)} / ${(totComp / 1024).toFixed(1)} |`,
  );
console.log(`\nWeight bytes of one block: dense fp32 ${totDense}, compressed ${totComp} (${((100 * totComp) / totDense).toFixed(2)}%).`);
