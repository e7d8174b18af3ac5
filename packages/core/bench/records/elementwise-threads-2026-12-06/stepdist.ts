// Per-step time distribution of one workload (p10 / p50 / p90 / min / max over N steps after 5 warm-up steps).
// usage (packages/core): W=<workload> LABEL=<name> N=60 node --import tsx --conditions=@mmlm/source bench/records/elementwise-threads-2026-12-06/stepdist.ts
import { initBackend } from '../../../src/index.js';
import { makeWorkload } from '../../workloads.js';

await initBackend({ backend: 'wasm' } as never);
const w = await makeWorkload(process.env.W ?? 'liquid-vq-tokenizer-32px');
for (let i = 0; i < 5; i++) w.step();
const ts: number[] = [];
for (let i = 0; i < Number(process.env.N ?? 60); i++) {
  const t = performance.now();
  w.step();
  ts.push(performance.now() - t);
}
ts.sort((a, b) => a - b);
const q = (p: number) => ts[Math.floor(p * (ts.length - 1))]!.toFixed(1);
console.log(`${process.env.LABEL}: p10 ${q(0.1)} p50 ${q(0.5)} p90 ${q(0.9)} min ${q(0)} max ${q(1)}`);
