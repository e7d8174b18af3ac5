/**
 * Per-kernel wall time on one backend: wraps every registered kernel of the backend with a timer
 * (the backends measured here run kernels synchronously, so wall time is kernel time).
 */
import { tf } from '../src/index.js';

export interface KernelTime {
  kernel: string;
  calls: number;
  ms: number;
}

/** Time of one matmul shape: BatchMatMul / _FusedMatMul calls with equal shapes and transposes. */
export interface MatmulShapeTime {
  /** e.g. "[512,128] x [128,384]^T" (^T: that operand transposed). */
  shape: string;
  calls: number;
  ms: number;
  /** 2 * batch * M * N * K per call. */
  flops: number;
  gflops: number;
}

const MATMULS = new Set(['BatchMatMul', '_FusedMatMul']);

export class KernelProfiler {
  private readonly originals: tf.KernelConfig[] = [];
  private readonly times = new Map<string, { calls: number; ms: number }>();
  private readonly matmuls = new Map<string, { calls: number; ms: number; flops: number }>();

  constructor(private readonly backend: string) {}

  start(): void {
    for (const k of tf.getKernelsForBackend(this.backend)) {
      this.originals.push(k);
      const inner = k.kernelFunc;
      const entry = { calls: 0, ms: 0 };
      this.times.set(k.kernelName, entry);
      tf.unregisterKernel(k.kernelName, this.backend);
      tf.registerKernel({
        ...k,
        kernelFunc: (args) => {
          const t0 = performance.now();
          const r = inner(args);
          const dt = performance.now() - t0;
          entry.ms += dt;
          entry.calls++;
          if (MATMULS.has(k.kernelName)) this.recordMatmul(args, dt);
          return r;
        },
      });
    }
  }

  private recordMatmul(args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap }, ms: number): void {
    const a = args.inputs.a?.shape;
    const b = args.inputs.b?.shape;
    if (!a || !b) return;
    const tA = Boolean(args.attrs?.transposeA);
    const tB = Boolean(args.attrs?.transposeB);
    const M = a[a.length - (tA ? 1 : 2)] as number;
    const K = a[a.length - (tA ? 2 : 1)] as number;
    const N = b[b.length - (tB ? 2 : 1)] as number;
    const batch = Math.max(
      a.slice(0, -2).reduce((x, y) => x * y, 1),
      b.slice(0, -2).reduce((x, y) => x * y, 1),
    );
    const key = `[${a}]${tA ? '^T' : ''} x [${b}]${tB ? '^T' : ''}`;
    const e = this.matmuls.get(key) ?? { calls: 0, ms: 0, flops: 0 };
    e.calls++;
    e.ms += ms;
    e.flops += 2 * batch * M * N * K;
    this.matmuls.set(key, e);
  }

  /** Matmul time by shape since start (or reset), slowest first. */
  matmulShapes(): MatmulShapeTime[] {
    return [...this.matmuls.entries()]
      .map(([shape, e]) => ({ shape, calls: e.calls, ms: e.ms, flops: e.flops / e.calls, gflops: e.flops / e.ms / 1e6 }))
      .sort((x, y) => y.ms - x.ms);
  }

  reset(): void {
    this.matmuls.clear();
    for (const e of this.times.values()) {
      e.calls = 0;
      e.ms = 0;
    }
  }

  stop(): KernelTime[] {
    for (const k of this.originals) {
      tf.unregisterKernel(k.kernelName, this.backend);
      tf.registerKernel(k);
    }
    this.originals.length = 0;
    return [...this.times.entries()]
      .filter(([, e]) => e.calls > 0)
      .map(([kernel, e]) => ({ kernel, calls: e.calls, ms: e.ms }))
      .sort((a, b) => b.ms - a.ms);
  }
}
