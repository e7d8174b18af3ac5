/**
 * Winograd F(2x2, 3x3) against F(4x4, 3x3) (src/backend/kernels/winograd.ts) on one thread, forward
 * and filter gradient, at the experiments' 'same' 3x3 layers: median of 31 calls (the 9th fastest),
 * twice per tile, alternating. The figures behind winogradTile's rule.
 *   node --import tsx bench/winograd_tile.ts ['[[B,H,C],...]']   (from packages/core)
 */
import { SimdGemm, WasmJs } from '../src/backend/kernels/simd_gemm.js';
import { setWinogradTile, WinogradConv } from '../src/backend/kernels/winograd.js';

const memory = new WasmJs.Memory({ initial: 8192 });
let top = 64;
const malloc = (n: number) => {
  const p = top;
  top += (n + 63) & ~63;
  return p;
};
const g = new SimdGemm(memory, malloc);
const wg = new WinogradConv(memory, malloc, () => {});
const shapes = JSON.parse(process.argv[2] ?? '[[16,32,32],[16,16,32],[16,8,32],[16,16,16],[16,4,16]]') as number[][];
const time = (fn: () => void) => {
  const ts: number[] = [];
  for (let i = 0; i < 31; i++) {
    const m = top;
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
    top = m;
  }
  ts.sort((a, b) => a - b);
  return ts[8] as number;
};
for (const [B, H, C] of shapes as [number, number, number][]) {
  const s = { B, H, W: H, Cin: C, Cout: C, top: 1, left: 1, OH: H, OW: H };
  const base = top;
  const x = malloc(4 * B * H * H * C);
  const w = malloc(4 * 9 * C * C);
  const y = malloc(4 * B * H * H * C);
  const dw = malloc(4 * 9 * C * C);
  const h = new Float32Array(memory.buffer);
  for (let i = 0; i < B * H * H * C; i++) h[x / 4 + i] = Math.sin(i);
  for (let i = 0; i < 9 * C * C; i++) h[w / 4 + i] = Math.cos(i);
  const r: string[] = [];
  for (let rep = 0; rep < 2; rep++)
    for (const t of [2, 4] as const) {
      setWinogradTile(t);
      r.push(`F${t}: conv ${time(() => wg.conv(g, s, x, w, y)).toFixed(3)} dW ${time(() => wg.filterGrad(g, s, x, y, dw)).toFixed(3)}`);
    }
  console.log(`[${B},${H},${H},${C}]: ${r.join(' | ')} ms`);
  top = base;
}
