/**
 * The matmul variants of one gpt-bench step (shared/peer/GPT_BENCH.md: B 16, T 128, D 256, H 4),
 * as core's Linear (x W^T) and attention call them and as their gradients do.
 */
import { tf } from '../src/index.js';

export interface MatMulCase {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
  /** 2 * batch * M * N * K */
  flops: number;
}

function mk(name: string, a: number[], b: number[], transposeA: boolean, transposeB: boolean): MatMulCase {
  const ar = a.length;
  const br = b.length;
  const M = a[transposeA ? ar - 1 : ar - 2] as number;
  const K = a[transposeA ? ar - 2 : ar - 1] as number;
  const N = b[transposeB ? br - 2 : br - 1] as number;
  const batch = a.slice(0, -2).reduce((x, y) => x * y, 1);
  return { name, a, b, transposeA, transposeB, flops: 2 * batch * M * N * K };
}

export const MATMUL_CASES: MatMulCase[] = [
  mk('matmul NN [2048,256]x[256,1024]', [2048, 256], [256, 1024], false, false),
  mk('matmul NT [2048,256]x[1024,256]^T (Linear fc)', [2048, 256], [1024, 256], false, true),
  mk('matmul NT [2048,1024]x[256,1024]^T (Linear out)', [2048, 1024], [256, 1024], false, true),
  mk('matmul NN [2048,1024]x[1024,256] (dX)', [2048, 1024], [1024, 256], false, false),
  mk('matmul TN [2048,1024]^Tx[2048,256] (dW)', [2048, 1024], [2048, 256], true, false),
  mk('matmul batched NT [16,4,128,64]x[16,4,128,64]^T (q k^T)', [16, 4, 128, 64], [16, 4, 128, 64], false, true),
  mk('matmul batched NN [16,4,128,128]x[16,4,128,64] (att v)', [16, 4, 128, 128], [16, 4, 128, 64], false, false),
  mk('matmul batched TN [16,4,128,128]^Tx[16,4,128,64] (dV)', [16, 4, 128, 128], [16, 4, 128, 64], true, false),
];

/**
 * Times (ms) of `reps` calls after `warmup` calls. cpu, wasm and tensorflow run kernels
 * synchronously, so the time excludes reading the result back.
 */
export function timeMatMul(c: MatMulCase, warmup: number, reps: number): number[] {
  const a = tf.randomNormal(c.a, 0, 1, 'float32', 1);
  const b = tf.randomNormal(c.b, 0, 1, 'float32', 2);
  const run = () => {
    const t0 = performance.now();
    const y = tf.matMul(a, b, c.transposeA, c.transposeB);
    const ms = performance.now() - t0;
    y.dispose();
    return ms;
  };
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(run());
  a.dispose();
  b.dispose();
  return times;
}
