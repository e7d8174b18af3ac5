/**
 * Winograd F(2x2, 3x3) (winograd.ts) on a standalone WebAssembly.Memory against a float64 direct
 * convolution: odd output sizes (tiles whose second row or column lies outside), 'valid' and
 * asymmetric padding, chunks of tiles that cross image boundaries, and guard floats around the
 * output that must stay untouched (a transform writing past a row or the tensor would change them).
 * The filter transform against G g G^T computed as matrix products.
 *
 * Tolerance: |y - y_ref| <= 2e-5 * sum |x w| per output (the transforms add at most 4 terms before
 * and after the GEMM, so the float32 error stays within a small multiple of the direct sum's bound);
 * the filter gradient's, 1e-5 times the sum over tiles of (sum |x| over the tile's 4 x 4 patch) x
 * (sum |dy| over its 2 x 2 block), the products its transforms combine.
 */
import { describe, expect, it } from 'vitest';
import { setNativeBlasEnabled } from '../../src/backend/kernels/native_blas.js';
import { SimdGemm, WasmJs } from '../../src/backend/kernels/simd_gemm.js';
import { WinogradConv, winogradEligible, winogradFilter, winogradFilterGrad } from '../../src/backend/kernels/winograd.js';
import { randn } from './helpers.js';

function heap() {
  const memory = new WasmJs.Memory({ initial: 256 });
  let top = 64;
  const malloc = (n: number) => {
    const p = top;
    top += (n + 15) & ~15;
    return p;
  };
  return { memory, malloc };
}

interface Case {
  B: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  pad: [number, number, number, number]; // top, bottom, left, right
}

const CASES: Case[] = [
  { B: 2, H: 8, W: 8, Cin: 32, Cout: 32, pad: [1, 1, 1, 1] }, // the tokenizer's layer, 'same'
  { B: 2, H: 7, W: 5, Cin: 4, Cout: 8, pad: [1, 1, 1, 1] }, // odd outputs
  { B: 2, H: 6, W: 5, Cin: 4, Cout: 4, pad: [1, 1, 1, 1] }, // odd width only: the last tile's (1, 1) output lies past the tensor
  { B: 2, H: 5, W: 6, Cin: 4, Cout: 4, pad: [1, 1, 1, 1] }, // odd height only
  { B: 3, H: 9, W: 6, Cin: 8, Cout: 4, pad: [0, 0, 0, 0] }, // 'valid': 7 x 4
  { B: 2, H: 6, W: 7, Cin: 4, Cout: 12, pad: [2, 0, 0, 1] }, // asymmetric: 6 x 6
  { B: 3, H: 9, W: 9, Cin: 128, Cout: 4, pad: [1, 1, 1, 1] }, // 32 tiles a chunk, 25 an image: chunks cross images
  { B: 1, H: 1, W: 2, Cin: 4, Cout: 4, pad: [1, 1, 1, 1] }, // smaller than a tile
];

describe('Winograd F(2x2, 3x3)', () => {
  for (const c of CASES)
    it(`x [${c.B},${c.H},${c.W},${c.Cin}] -> ${c.Cout}, padding ${c.pad}: matches a float64 direct convolution, writes only the output`, () => {
      const was = setNativeBlasEnabled(false);
      try {
        const { B, H, W, Cin, Cout } = c;
        const [top, bottom, left, right] = c.pad;
        const OH = H + top + bottom - 2;
        const OW = W + left + right - 2;
        expect(winogradEligible({ Cin, Cout, OH, OW })).toBe(true);
        const { memory, malloc } = heap();
        const g = new SimdGemm(memory, malloc);
        const freed: number[] = [];
        const wg = new WinogradConv(memory, malloc, (p) => freed.push(p));
        const x = randn(H * 10 + W, B * H * W * Cin);
        const w = randn(Cin + Cout, 9 * Cin * Cout);
        const guard = 16;
        const xPtr = malloc(4 * x.length);
        const wPtr = malloc(4 * w.length);
        const yFloats = B * OH * OW * Cout;
        const region = malloc(4 * (yFloats + 2 * guard));
        const yPtr = region + 4 * guard;
        const h = new Float32Array(memory.buffer);
        h.set(x, xPtr / 4);
        h.set(w, wPtr / 4);
        h.fill(-7.5, region / 4, region / 4 + yFloats + 2 * guard);
        wg.conv(g, { B, H, W, Cin, Cout, top, left, OH, OW }, xPtr, wPtr, yPtr);
        const out = new Float32Array(memory.buffer);
        for (let i = 0; i < guard; i++) {
          expect(out[region / 4 + i]).toBe(-7.5);
          expect(out[yPtr / 4 + yFloats + i]).toBe(-7.5);
        }
        expect(freed.length).toBe(4); // every scratch buffer handed back
        for (let b = 0; b < B; b++)
          for (let r = 0; r < OH; r++)
            for (let q = 0; q < OW; q++)
              for (let o = 0; o < Cout; o++) {
                let s = 0;
                let mag = 0;
                for (let i = 0; i < 3; i++)
                  for (let j = 0; j < 3; j++) {
                    const xr = r + i - top;
                    const xc = q + j - left;
                    if (xr < 0 || xr >= H || xc < 0 || xc >= W) continue;
                    for (let d = 0; d < Cin; d++) {
                      const t = (x[((b * H + xr) * W + xc) * Cin + d] as number) * (w[((i * 3 + j) * Cin + d) * Cout + o] as number);
                      s += t;
                      mag += Math.abs(t);
                    }
                  }
                const got = out[yPtr / 4 + ((b * OH + r) * OW + q) * Cout + o] as number;
                expect(Math.abs(got - s), `y[${b},${r},${q},${o}]`).toBeLessThanOrEqual(2e-5 * mag + 1e-30);
              }
      } finally {
        setNativeBlasEnabled(was);
      }
    });

  for (const c of CASES)
    it(`filter gradient, x [${c.B},${c.H},${c.W},${c.Cin}] -> ${c.Cout}, padding ${c.pad}: matches a float64 direct weight gradient, writes only dW`, () => {
      const was = setNativeBlasEnabled(false);
      try {
        const { B, H, W, Cin, Cout } = c;
        const [top, bottom, left, right] = c.pad;
        const OH = H + top + bottom - 2;
        const OW = W + left + right - 2;
        const { memory, malloc } = heap();
        const g = new SimdGemm(memory, malloc);
        const freed: number[] = [];
        const wg = new WinogradConv(memory, malloc, (p) => freed.push(p));
        const x = randn(H * 10 + W + 1, B * H * W * Cin);
        const dy = randn(Cin + Cout + 1, B * OH * OW * Cout);
        const guard = 16;
        const xPtr = malloc(4 * x.length);
        const dyPtr = malloc(4 * dy.length);
        const wFloats = 9 * Cin * Cout;
        const region = malloc(4 * (wFloats + 2 * guard));
        const dwPtr = region + 4 * guard;
        const h = new Float32Array(memory.buffer);
        h.set(x, xPtr / 4);
        h.set(dy, dyPtr / 4);
        h.fill(-7.5, region / 4, region / 4 + wFloats + 2 * guard);
        wg.filterGrad(g, { B, H, W, Cin, Cout, top, left, OH, OW }, xPtr, dyPtr, dwPtr);
        const out = new Float32Array(memory.buffer);
        for (let i = 0; i < guard; i++) {
          expect(out[region / 4 + i]).toBe(-7.5);
          expect(out[dwPtr / 4 + wFloats + i]).toBe(-7.5);
        }
        expect(freed.length).toBe(4);
        // x and dy unchanged (the transforms read them only)
        expect(Array.from(out.subarray(xPtr / 4, xPtr / 4 + x.length))).toEqual(Array.from(x));
        expect(Array.from(out.subarray(dyPtr / 4, dyPtr / 4 + dy.length))).toEqual(Array.from(dy));
        // magnitude of a weight gradient's float32 sums: Winograd's combine every input of a tile's
        // 4 x 4 patch with every output gradient of its 2 x 2 block (in the transforms) before the
        // GEMM sums over tiles, so the bound is in terms of those products, not only the direct ones
        const wide = new Float64Array(Cin * Cout);
        for (let b = 0; b < B; b++)
          for (let ty = 0; ty < OH; ty += 2)
            for (let tx = 0; tx < OW; tx += 2)
              for (let d = 0; d < Cin; d++) {
                let sx = 0;
                for (let i = 0; i < 4; i++)
                  for (let j = 0; j < 4; j++) {
                    const xr = ty + i - top;
                    const xc = tx + j - left;
                    if (xr >= 0 && xr < H && xc >= 0 && xc < W) sx += Math.abs(x[((b * H + xr) * W + xc) * Cin + d] as number);
                  }
                for (let o = 0; o < Cout; o++) {
                  let sd = 0;
                  for (let i = 0; i < 2; i++)
                    for (let j = 0; j < 2; j++)
                      if (ty + i < OH && tx + j < OW) sd += Math.abs(dy[((b * OH + ty + i) * OW + tx + j) * Cout + o] as number);
                  wide[d * Cout + o] += sx * sd;
                }
              }
        for (let i = 0; i < 3; i++)
          for (let j = 0; j < 3; j++)
            for (let d = 0; d < Cin; d++)
              for (let o = 0; o < Cout; o++) {
                let s = 0;
                let mag = 0;
                for (let b = 0; b < B; b++)
                  for (let r = 0; r < OH; r++)
                    for (let q = 0; q < OW; q++) {
                      const xr = r + i - top;
                      const xc = q + j - left;
                      if (xr < 0 || xr >= H || xc < 0 || xc >= W) continue;
                      const t = (x[((b * H + xr) * W + xc) * Cin + d] as number) * (dy[((b * OH + r) * OW + q) * Cout + o] as number);
                      s += t;
                      mag += Math.abs(t);
                    }
                const got = out[dwPtr / 4 + ((i * 3 + j) * Cin + d) * Cout + o] as number;
                expect(Math.abs(got - s), `dW[${i},${j},${d},${o}]`).toBeLessThanOrEqual(1e-5 * (wide[d * Cout + o] as number) + 1e-30);
                expect(mag).toBeLessThanOrEqual(wide[d * Cout + o] as number); // the wide bound contains the direct one
              }
      } finally {
        setNativeBlasEnabled(was);
      }
    });

  it('the filter-gradient transform is G^T dU G for every channel pair (the adjoint of G g G^T), and names wrong sizes', () => {
    const Cin = 2;
    const Cout = 3;
    const n = Cin * Cout;
    const dU = randn(8, 16 * n);
    const dW = new Float32Array(9 * n);
    winogradFilterGrad(dU, Cin, Cout, dW);
    // adjoint: <G g G^T, dU> = <g, G^T dU G> for any g, so with g = one-hot filters the entries match
    const w = new Float32Array(9 * n);
    const U = new Float32Array(16 * n);
    for (let k = 0; k < 9; k++) {
      w.fill(0);
      for (let j = 0; j < n; j++) w[k * n + j] = 1;
      winogradFilter(w, Cin, Cout, U);
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let e = 0; e < 16; e++) s += (U[e * n + j] as number) * (dU[e * n + j] as number);
        expect(dW[k * n + j]).toBe(Math.fround(s));
      }
    }
    expect(() => winogradFilterGrad(dU.subarray(1), Cin, Cout, dW)).toThrow(/dU has 95 floats, expected 16 x 2 x 3 = 96/);
    expect(() => winogradFilterGrad(dU, Cin, Cout, dW.subarray(1))).toThrow(/out has 53 floats, expected 54/);
  });

  it('the filter transform is G g G^T for every channel pair, and names wrong sizes', () => {
    const Cin = 3;
    const Cout = 2;
    const n = Cin * Cout;
    const w = randn(5, 9 * n);
    const U = new Float32Array(16 * n);
    winogradFilter(w, Cin, Cout, U);
    const G = [
      [1, 0, 0],
      [0.5, 0.5, 0.5],
      [0.5, -0.5, 0.5],
      [0, 0, 1],
    ];
    for (let j = 0; j < n; j++)
      for (let a = 0; a < 4; a++)
        for (let b = 0; b < 4; b++) {
          let s = 0;
          for (let r = 0; r < 3; r++)
            for (let q = 0; q < 3; q++) s += (G[a]![r] as number) * (w[(r * 3 + q) * n + j] as number) * (G[b]![q] as number);
          expect(U[(4 * a + b) * n + j]).toBe(Math.fround(s));
        }
    expect(() => winogradFilter(w.subarray(1), Cin, Cout, U)).toThrow(/filter has 53 floats, expected 9 x 3 x 2 = 54/);
    expect(() => winogradFilter(w, Cin, Cout, U.subarray(1))).toThrow(/out has 95 floats, expected 96/);
  });

  it('declines channel counts that are not whole vectors of 4', () => {
    expect(winogradEligible({ Cin: 3, Cout: 32, OH: 8, OW: 8 })).toBe(false);
    expect(winogradEligible({ Cin: 32, Cout: 6, OH: 8, OW: 8 })).toBe(false);
    expect(winogradEligible({ Cin: 32, Cout: 32, OH: 0, OW: 8 })).toBe(false);
    const { memory, malloc } = heap();
    const wg = new WinogradConv(memory, malloc, () => {});
    expect(() =>
      wg.conv(new SimdGemm(memory, malloc), { B: 1, H: 4, W: 4, Cin: 3, Cout: 4, top: 1, left: 1, OH: 4, OW: 4 }, 0, 0, 0),
    ).toThrow(/channels must be multiples of 4 and outputs >= 1, got Cin 3, Cout 4, 4 x 4/);
  });
});
