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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setNativeBlasEnabled } from '../../src/backend/kernels/native_blas.js';
import { SimdGemm, WasmJs } from '../../src/backend/kernels/simd_gemm.js';
import {
  setWinogradTile,
  WINOGRAD_F4,
  WinogradConv,
  type WinogradTileSetting,
  winogradEligible,
  winogradFilter,
  winogradFilter4,
  winogradFilterGrad,
  winogradFilterGrad4,
  winogradTile,
} from '../../src/backend/kernels/winograd.js';
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
  { B: 2, H: 6, W: 6, Cin: 3, Cout: 16, pad: [1, 1, 1, 1] }, // RGB in: channels zero-padded to 4
  { B: 2, H: 6, W: 6, Cin: 16, Cout: 3, pad: [1, 1, 1, 1] }, // RGB out
  { B: 2, H: 5, W: 7, Cin: 5, Cout: 6, pad: [1, 1, 0, 2] }, // both padded, odd outputs
];

describe('Winograd F(2x2, 3x3)', () => {
  let tileWas: WinogradTileSetting;
  beforeAll(() => {
    tileWas = setWinogradTile(2);
  });
  afterAll(() => {
    setWinogradTile(tileWas);
  });
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
        let allocs = 0;
        const wg = new WinogradConv(
          memory,
          (n) => {
            allocs++;
            return malloc(n);
          },
          (p) => freed.push(p),
        );
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
        expect(freed.length).toBe(allocs); // every scratch buffer handed back
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
        let allocs = 0;
        const wg = new WinogradConv(
          memory,
          (n) => {
            allocs++;
            return malloc(n);
          },
          (p) => freed.push(p),
        );
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
        expect(freed.length).toBe(allocs);
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

  it('takes any channel counts and outputs >= 1, and names a bad shape', () => {
    expect(winogradEligible({ Cin: 3, Cout: 32, OH: 8, OW: 8 })).toBe(true);
    expect(winogradEligible({ Cin: 32, Cout: 6, OH: 8, OW: 8 })).toBe(true);
    expect(winogradEligible({ Cin: 32, Cout: 32, OH: 0, OW: 8 })).toBe(false);
    expect(winogradEligible({ Cin: 0, Cout: 32, OH: 8, OW: 8 })).toBe(false);
    const { memory, malloc } = heap();
    const wg = new WinogradConv(memory, malloc, () => {});
    expect(() =>
      wg.conv(new SimdGemm(memory, malloc), { B: 1, H: 4, W: 4, Cin: 0, Cout: 4, top: 1, left: 1, OH: 4, OW: 4 }, 0, 0, 0),
    ).toThrow(/channels and outputs must be >= 1 and the padding >= 0, got Cin 0, Cout 4, 4 x 4/);
  });
});

/**
 * F(4x4, 3x3), forced (setWinogradTile(4)) on outputs whose sides are multiples of 4, against float64
 * direct sums. Tolerance: the rounding-error bound of a bilinear algorithm evaluated in floating point
 * (each computed entry is exact for inputs perturbed by at most gamma_n = n u / (1 - n u) relatively,
 * u = 2^-24, along a chain of n roundings), so |y - y_ref| <= gamma_n times the same computation on
 * absolute values: |A^T| [ (|G| |g| |G|^T) .* (|B^T| |d| |B|) ] |A| summed over input channels, with
 * n = Cin + 20 (at most 8 roundings in each 2-D transform, 1 for the float64 filter transform's
 * rounding, 1 for the product, Cin for the GEMM's sum); for the filter gradient the sum runs over the
 * tiles and n = tiles + 20 (|A| |dY| |A^T| and |B^T| |d| |B|, then |G|^T dU_abs |G|).
 */
describe('Winograd F(4x4, 3x3)', () => {
  let tileWas: WinogradTileSetting;
  beforeAll(() => {
    tileWas = setWinogradTile(4);
  });
  afterAll(() => {
    setWinogradTile(tileWas);
  });
  const { BT, G, AT } = WINOGRAD_F4;
  const abs = (m: readonly (readonly number[])[]) => m.map((r) => r.map(Math.abs));
  const aBT = abs(BT);
  const aG = abs(G);
  const aAT = abs(AT);
  /** L [p, q] x R^T for L [a, p] and R [b, q] given as rows: [a, b]. */
  const sandwich = (L: number[][], X: Float64Array, p: number, q: number, R: number[][]) => {
    const a = L.length;
    const b = R.length;
    const t = new Float64Array(a * q);
    for (let i = 0; i < a; i++)
      for (let k = 0; k < p; k++) {
        const l = (L[i] as number[])[k] as number;
        if (l !== 0) for (let j = 0; j < q; j++) t[i * q + j] += l * (X[k * q + j] as number);
      }
    const out = new Float64Array(a * b);
    for (let i = 0; i < a; i++)
      for (let j = 0; j < b; j++) {
        let s = 0;
        for (let k = 0; k < q; k++) s += (t[i * q + k] as number) * ((R[j] as number[])[k] as number);
        out[i * b + j] = s;
      }
    return out;
  };
  const u = 2 ** -24;
  const gamma = (n: number) => (n * u) / (1 - n * u);

  const CASES4: Case[] = [
    { B: 2, H: 8, W: 8, Cin: 32, Cout: 32, pad: [1, 1, 1, 1] }, // 'same', 8 x 8
    { B: 2, H: 10, W: 6, Cin: 4, Cout: 8, pad: [0, 0, 0, 0] }, // 'valid': 8 x 4
    { B: 3, H: 12, W: 16, Cin: 8, Cout: 4, pad: [1, 1, 1, 1] }, // 12 x 16
    { B: 2, H: 7, W: 6, Cin: 4, Cout: 12, pad: [2, 1, 0, 0] }, // asymmetric: 8 x 4
    { B: 4, H: 8, W: 8, Cin: 128, Cout: 4, pad: [1, 1, 1, 1] }, // 12 tiles a chunk, 4 an image: chunks cross images
    { B: 2, H: 8, W: 8, Cin: 3, Cout: 16, pad: [1, 1, 1, 1] }, // RGB in: channels zero-padded to 4
    { B: 2, H: 8, W: 8, Cin: 16, Cout: 3, pad: [1, 1, 1, 1] }, // RGB out
    { B: 1, H: 10, W: 6, Cin: 5, Cout: 7, pad: [0, 0, 0, 0] }, // both padded: 8 x 4
  ];
  const pixel = (x: Float32Array, c: Case, b: number, r: number, q: number, d: number) => {
    const xr = r - c.pad[0];
    const xc = q - c.pad[2];
    return xr < 0 || xr >= c.H || xc < 0 || xc >= c.W ? 0 : (x[((b * c.H + xr) * c.W + xc) * c.Cin + d] as number);
  };

  for (const c of CASES4)
    it(`x [${c.B},${c.H},${c.W},${c.Cin}] -> ${c.Cout}, padding ${c.pad}: within the float32 bound of a float64 direct convolution, writes only the output`, () => {
      const was = setNativeBlasEnabled(false);
      try {
        const { B, H, W, Cin, Cout } = c;
        const [top, bottom, left, right] = c.pad;
        const OH = H + top + bottom - 2;
        const OW = W + left + right - 2;
        expect(winogradTile({ OH, OW })).toBe(4);
        const { memory, malloc } = heap();
        const g = new SimdGemm(memory, malloc);
        const freed: number[] = [];
        let allocs = 0;
        const wg = new WinogradConv(
          memory,
          (n) => {
            allocs++;
            return malloc(n);
          },
          (p) => freed.push(p),
        );
        const x = randn(H * 10 + W + 2, B * H * W * Cin);
        const w = randn(Cin + Cout + 2, 9 * Cin * Cout);
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
        expect(freed.length).toBe(allocs);
        // |G| |g| |G|^T per channel pair
        const Uabs: Float64Array[] = [];
        for (let d = 0; d < Cin; d++)
          for (let o = 0; o < Cout; o++) {
            const gAbs = new Float64Array(9);
            for (let k = 0; k < 9; k++) gAbs[k] = Math.abs(w[(k * Cin + d) * Cout + o] as number);
            Uabs.push(sandwich(aG, gAbs, 3, 3, aG));
          }
        let worst = 0;
        for (let b = 0; b < B; b++)
          for (let ty = 0; ty < OH; ty += 4)
            for (let tx = 0; tx < OW; tx += 4) {
              const Vabs: Float64Array[] = [];
              for (let d = 0; d < Cin; d++) {
                const dAbs = new Float64Array(36);
                for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) dAbs[6 * i + j] = Math.abs(pixel(x, c, b, ty + i, tx + j, d));
                Vabs.push(sandwich(aBT, dAbs, 6, 6, aBT));
              }
              for (let o = 0; o < Cout; o++) {
                const Mabs = new Float64Array(36);
                for (let d = 0; d < Cin; d++) {
                  const U = Uabs[d * Cout + o] as Float64Array;
                  const V = Vabs[d] as Float64Array;
                  for (let e = 0; e < 36; e++) Mabs[e] += (U[e] as number) * (V[e] as number);
                }
                const Yabs = sandwich(aAT, Mabs, 6, 6, aAT);
                for (let i = 0; i < 4; i++)
                  for (let j = 0; j < 4; j++) {
                    let s = 0;
                    for (let a = 0; a < 3; a++)
                      for (let q = 0; q < 3; q++)
                        for (let d = 0; d < Cin; d++)
                          s += pixel(x, c, b, ty + i + a, tx + j + q, d) * (w[((a * 3 + q) * Cin + d) * Cout + o] as number);
                    const got = out[yPtr / 4 + ((b * OH + ty + i) * OW + tx + j) * Cout + o] as number;
                    const tol = gamma(Cin + 20) * (Yabs[4 * i + j] as number);
                    worst = Math.max(worst, Math.abs(got - s) / tol);
                    expect(Math.abs(got - s), `y[${b},${ty + i},${tx + j},${o}]`).toBeLessThanOrEqual(tol);
                  }
              }
            }
        expect(worst).toBeGreaterThan(0); // the check compared real errors, not only zeros
      } finally {
        setNativeBlasEnabled(was);
      }
    });

  for (const c of CASES4)
    it(`filter gradient, x [${c.B},${c.H},${c.W},${c.Cin}] -> ${c.Cout}, padding ${c.pad}: within the float32 bound of a float64 direct weight gradient, writes only dW`, () => {
      const was = setNativeBlasEnabled(false);
      try {
        const { B, H, W, Cin, Cout } = c;
        const [top, bottom, left, right] = c.pad;
        const OH = H + top + bottom - 2;
        const OW = W + left + right - 2;
        const { memory, malloc } = heap();
        const g = new SimdGemm(memory, malloc);
        const freed: number[] = [];
        let allocs = 0;
        const wg = new WinogradConv(
          memory,
          (n) => {
            allocs++;
            return malloc(n);
          },
          (p) => freed.push(p),
        );
        const x = randn(H * 10 + W + 3, B * H * W * Cin);
        const dy = randn(Cin + Cout + 3, B * OH * OW * Cout);
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
        expect(freed.length).toBe(allocs);
        expect(Array.from(out.subarray(xPtr / 4, xPtr / 4 + x.length))).toEqual(Array.from(x));
        expect(Array.from(out.subarray(dyPtr / 4, dyPtr / 4 + dy.length))).toEqual(Array.from(dy));
        // dU_abs [36, Cin, Cout] = sum over tiles of |B^T| |d| |B| .* |A| |dY| |A|^T
        const aA = (aAT[0] as number[]).map((_, i) => aAT.map((r) => r[i] as number)); // |A| [6, 4] as rows
        const dUabs = new Float64Array(36 * Cin * Cout);
        let tiles = 0;
        for (let b = 0; b < B; b++)
          for (let ty = 0; ty < OH; ty += 4)
            for (let tx = 0; tx < OW; tx += 4) {
              tiles++;
              const Vabs: Float64Array[] = [];
              for (let d = 0; d < Cin; d++) {
                const dAbs = new Float64Array(36);
                for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) dAbs[6 * i + j] = Math.abs(pixel(x, c, b, ty + i, tx + j, d));
                Vabs.push(sandwich(aBT, dAbs, 6, 6, aBT));
              }
              for (let o = 0; o < Cout; o++) {
                const yAbs = new Float64Array(16);
                for (let i = 0; i < 4; i++)
                  for (let j = 0; j < 4; j++) yAbs[4 * i + j] = Math.abs(dy[((b * OH + ty + i) * OW + tx + j) * Cout + o] as number);
                const Zabs = sandwich(aA, yAbs, 4, 4, aA);
                for (let d = 0; d < Cin; d++) {
                  const V = Vabs[d] as Float64Array;
                  for (let e = 0; e < 36; e++) dUabs[(e * Cin + d) * Cout + o] += (V[e] as number) * (Zabs[e] as number);
                }
              }
            }
        const aGT = (aG[0] as number[]).map((_, i) => aG.map((r) => r[i] as number)); // |G|^T [3, 6] as rows
        let worst = 0;
        for (let d = 0; d < Cin; d++)
          for (let o = 0; o < Cout; o++) {
            const du = new Float64Array(36);
            for (let e = 0; e < 36; e++) du[e] = dUabs[(e * Cin + d) * Cout + o] as number;
            const dWabs = sandwich(aGT, du, 6, 6, aGT);
            for (let a = 0; a < 3; a++)
              for (let q = 0; q < 3; q++) {
                let s = 0;
                for (let b = 0; b < B; b++)
                  for (let r = 0; r < OH; r++)
                    for (let cc = 0; cc < OW; cc++)
                      s += pixel(x, c, b, r + a, cc + q, d) * (dy[((b * OH + r) * OW + cc) * Cout + o] as number);
                const got = out[dwPtr / 4 + ((a * 3 + q) * Cin + d) * Cout + o] as number;
                const tol = gamma(tiles + 20) * (dWabs[3 * a + q] as number);
                worst = Math.max(worst, Math.abs(got - s) / tol);
                expect(Math.abs(got - s), `dW[${a},${q},${d},${o}]`).toBeLessThanOrEqual(tol);
              }
          }
        expect(worst).toBeGreaterThan(0);
      } finally {
        setNativeBlasEnabled(was);
      }
    });

  it('the transforms compute the correlation: A^T [(G g) .* (B^T d)] = d (*) g in one dimension, exactly in float64', () => {
    // 1-D F(4, 3) from the matrices alone: a check of WINOGRAD_F4 that the kernels' factored forms follow
    const d = [0.3, -1.2, 2.5, 0.7, -0.4, 1.9];
    const g = [0.8, -0.6, 1.3];
    const Gg = G.map((r) => r.reduce((a, v, k) => a + v * (g[k] as number), 0));
    const Bd = BT.map((r) => r.reduce((a, v, k) => a + v * (d[k] as number), 0));
    const y = AT.map((r) => r.reduce((a, v, k) => a + v * (Gg[k] as number) * (Bd[k] as number), 0));
    for (let i = 0; i < 4; i++)
      expect(y[i]).toBeCloseTo((d[i] as number) * g[0]! + (d[i + 1] as number) * g[1]! + (d[i + 2] as number) * g[2]!, 12);
  });

  it('the filter transform is G g G^T and its gradient G^T dU G (the adjoint), and both name wrong sizes', () => {
    const Cin = 3;
    const Cout = 2;
    const n = Cin * Cout;
    const w = randn(6, 9 * n);
    const U = new Float32Array(36 * n);
    winogradFilter4(w, Cin, Cout, U);
    for (let j = 0; j < n; j++) {
      const gj = new Float64Array(9);
      for (let k = 0; k < 9; k++) gj[k] = w[k * n + j] as number;
      const ref = sandwich(G as number[][], gj, 3, 3, G as number[][]);
      for (let e = 0; e < 36; e++)
        expect(Math.abs((U[e * n + j] as number) - (ref[e] as number))).toBeLessThanOrEqual(Math.abs(ref[e] as number) * 2 ** -23);
    }
    const dU = randn(9, 36 * n);
    const dW = new Float32Array(9 * n);
    winogradFilterGrad4(dU, Cin, Cout, dW);
    for (let j = 0; j < n; j++) {
      const du = new Float64Array(36);
      for (let e = 0; e < 36; e++) du[e] = dU[e * n + j] as number;
      const GT = (G[0] as number[]).map((_, i) => G.map((r) => r[i] as number));
      const ref = sandwich(GT, du, 6, 6, GT);
      for (let k = 0; k < 9; k++)
        expect(Math.abs((dW[k * n + j] as number) - (ref[k] as number))).toBeLessThanOrEqual(Math.abs(ref[k] as number) * 2 ** -23 + 1e-12);
    }
    expect(() => winogradFilter4(w.subarray(1), Cin, Cout, U)).toThrow(/filter has 53 floats, expected 9 x 3 x 2 = 54/);
    expect(() => winogradFilter4(w, Cin, Cout, U.subarray(1))).toThrow(/out has 215 floats, expected 216/);
    expect(() => winogradFilterGrad4(dU.subarray(1), Cin, Cout, dW)).toThrow(/dU has 215 floats, expected 36 x 3 x 2 = 216/);
    expect(() => winogradFilterGrad4(dU, Cin, Cout, dW.subarray(1))).toThrow(/out has 53 floats, expected 54/);
  });

  it('picks the tile by output size (auto: multiples of 4 and at least 16 x 16), and rejects unknown settings', () => {
    setWinogradTile('auto');
    expect(winogradTile({ OH: 32, OW: 32 })).toBe(4);
    expect(winogradTile({ OH: 16, OW: 16 })).toBe(4);
    expect(winogradTile({ OH: 8, OW: 8 })).toBe(2);
    expect(winogradTile({ OH: 30, OW: 32 })).toBe(2);
    setWinogradTile(2);
    expect(winogradTile({ OH: 32, OW: 32 })).toBe(2);
    setWinogradTile(4);
    expect(winogradTile({ OH: 8, OW: 4 })).toBe(4);
    expect(winogradTile({ OH: 6, OW: 8 })).toBe(2);
    expect(() => setWinogradTile(3 as 2)).toThrow(/expected 'auto', 2 or 4, got 3/);
  });
});
