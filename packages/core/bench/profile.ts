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

export class KernelProfiler {
  private readonly originals: tf.KernelConfig[] = [];
  private readonly times = new Map<string, { calls: number; ms: number }>();

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
          entry.ms += performance.now() - t0;
          entry.calls++;
          return r;
        },
      });
    }
  }

  reset(): void {
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
