/**
 * 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast
 * Algorithms for Convolutional Neural Networks", CVPR 2016, section 4): each 2x2 block of outputs
 * ("tile") of one channel pair is
 *   Y = A^T [ (G g G^T) .* (B^T d B) ] A
 * over the tile's 4x4 input patch d and the 3x3 filter g, with
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * Summed over input channels, the 16 elementwise products become 16 GEMMs
 *   M_e [tiles, Cout] = V_e [tiles, Cin] U_e [Cin, Cout],  e = 0 .. 15,
 * (U = G g G^T per channel pair, V = B^T d B per tile and input channel), 16 multiply-adds per tile
 * and channel pair instead of the direct convolution's 36. The input and output transforms (adds and
 * subtracts only) run here in WebAssembly SIMD over four channels at a time (NHWC keeps a pixel's
 * channels adjacent); the GEMMs run on core's SIMD GEMM (simd_gemm.ts). Tiles go through in chunks
 * whose V and M blocks stay in the L2 cache. The filter gradient is the adjoint through the same
 * transforms: dU_e = sum over tiles of V_e^T (A dY A^T)_e (16 GEMMs [Cin, tiles] x [tiles, Cout]),
 * then dW = G^T dU G.
 *
 * Written by hand because nothing on npm provides it for a WebAssembly heap: XNNPACK (inside
 * tfjs-backend-wasm) has no Winograd path and convolves by indirect GEMM at about 36 GFLOP/s here.
 * The sums run in another order than a direct convolution's, so results differ from it in the last
 * bits (tests: against the cpu backend and a float64 direct convolution, within the float32 bound).
 */

import type { SimdGemm, WasmMemory } from './simd_gemm.js';
import { WasmJs } from './simd_gemm.js';
import { assembleModule, type Code, FuncBuilder, f32x4, get, i32, if_, inc, type Local, seq, set, v128, whileLoop } from './wasm_asm.js';

/**
 * The transforms' walk over nt tiles in row-major order from tile (tx, ty): `perTile` for tile i,
 * then the pointer p moves `step` bytes (two pixels); after TW tiles rowDelta more (to the next tile
 * row), after TH tile rows imgDelta more (to the next image).
 */
function tileWalk(
  v: { i: Local; nt: Local; p: Local; tx: Local; ty: Local; TW: Local; TH: Local; rowDelta: Local; imgDelta: Local },
  step: Code,
  perTile: Code[],
): Code {
  return whileLoop(
    i32.lt_u(get(v.i), get(v.nt)),
    ...perTile,
    inc(v.i, i32.const(1)),
    inc(v.p, step),
    inc(v.tx, i32.const(1)),
    if_(i32.eq(get(v.tx), get(v.TW)), [
      set(v.tx, i32.const(0)),
      inc(v.p, get(v.rowDelta)),
      inc(v.ty, i32.const(1)),
      if_(i32.eq(get(v.ty), get(v.TH)), [set(v.ty, i32.const(0)), inc(v.p, get(v.imgDelta))]),
    ]),
  );
}

/** rOk = 2 ty + 1 < OH, cOk = 2 tx + 1 < OW: whether the tile's second output row / column exists. */
function tileEdges(rOk: Local, cOk: Local, tx: Local, ty: Local, OH: Local, OW: Local): Code[] {
  return [
    set(rOk, i32.lt_u(i32.add(i32.shl(get(ty), i32.const(1)), i32.const(1)), get(OH))),
    set(cOk, i32.lt_u(i32.add(i32.shl(get(tx), i32.const(1)), i32.const(1)), get(OW))),
  ];
}

/**
 * inTransform(p, rowBytes, pixBytes, cvecs, TW, TH, tx, ty, nt, V, eStride, rowDelta, imgDelta):
 * for nt tiles from tile (tx, ty) whose 4x4 patch starts at byte p of the padded input (rows
 * rowBytes apart, pixels pixBytes apart, cvecs vectors of 4 channels), writes V_e = B^T d B of tile i
 * and channel vector c to V + e eStride + i pixBytes + 16 c. After a tile p moves 2 pixels; after TW
 * tiles, rowDelta more bytes (to the next tile row); after TH tile rows, imgDelta (to the next image).
 */
function inTransform(): FuncBuilder {
  const f = new FuncBuilder('inTransform', new Array<'i32'>(13).fill('i32'));
  const [p, rowBytes, pixBytes, cvecs, TW, TH, tx, ty, nt, V, eStride, rowDelta, imgDelta] = f.params as [
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
  ];
  const i = f.local('i32');
  const c = f.local('i32');
  const a = f.local('i32'); // address of row r, column 0 of the current channel vector
  const w = f.local('i32'); // address of the tile's V_0 entry of the current channel vector
  const vt = f.local('i32'); // V + i pixBytes
  const pb2 = f.local('i32');
  const pb3 = f.local('i32');
  const d = Array.from({ length: 16 }, () => f.local('v128')); // d[4 r + col]
  const t = Array.from({ length: 16 }, () => f.local('v128')); // (B^T d)[4 r + col]
  const D = (r: number, col: number) => get(d[4 * r + col] as Local);
  const T = (r: number, col: number) => get(t[4 * r + col] as Local);
  const loads: Code[] = [set(a, i32.add(get(p), i32.shl(get(c), i32.const(4))))];
  for (let r = 0; r < 4; r++) {
    if (r > 0) loads.push(inc(a, get(rowBytes)));
    loads.push(
      set(d[4 * r] as Local, v128.load(get(a))),
      set(d[4 * r + 1] as Local, v128.load(i32.add(get(a), get(pixBytes)))),
      set(d[4 * r + 2] as Local, v128.load(i32.add(get(a), get(pb2)))),
      set(d[4 * r + 3] as Local, v128.load(i32.add(get(a), get(pb3)))),
    );
  }
  const rows: Code[] = [];
  for (let col = 0; col < 4; col++)
    rows.push(
      set(t[col] as Local, f32x4.sub(D(0, col), D(2, col))),
      set(t[4 + col] as Local, f32x4.add(D(1, col), D(2, col))),
      set(t[8 + col] as Local, f32x4.sub(D(2, col), D(1, col))),
      set(t[12 + col] as Local, f32x4.sub(D(1, col), D(3, col))),
    );
  const stores: Code[] = [set(w, i32.add(get(vt), i32.shl(get(c), i32.const(4))))];
  for (let r = 0; r < 4; r++) {
    const v = [f32x4.sub(T(r, 0), T(r, 2)), f32x4.add(T(r, 1), T(r, 2)), f32x4.sub(T(r, 2), T(r, 1)), f32x4.sub(T(r, 1), T(r, 3))];
    for (let col = 0; col < 4; col++) {
      if (r > 0 || col > 0) stores.push(inc(w, get(eStride)));
      stores.push(v128.store(get(w), v[col] as Code));
    }
  }
  f.body = seq(
    set(pb2, i32.shl(get(pixBytes), i32.const(1))),
    set(pb3, i32.add(get(pb2), get(pixBytes))),
    set(vt, get(V)),
    tileWalk({ i, nt, p, tx, ty, TW, TH, rowDelta, imgDelta }, get(pb2), [
      set(c, i32.const(0)),
      whileLoop(i32.lt_u(get(c), get(cvecs)), ...loads, ...rows, ...stores, inc(c, i32.const(1))),
      inc(vt, get(pixBytes)),
    ]),
  );
  return f;
}

/**
 * outTransform(M, eStride, coutBytes, cvecs, nt, q, rowBytes, TW, TH, tx, ty, OH, OW, rowDelta,
 * imgDelta): for nt tiles from tile (tx, ty), Y = A^T m A of the 16 GEMM outputs m_e of tile i and
 * channel vector c (at M + e eStride + i coutBytes + 16 c) to the tile's 2x2 outputs at byte q of y
 * (rows rowBytes apart, pixels coutBytes apart), the second row and column only where 2 ty + 1 < OH,
 * 2 tx + 1 < OW. q moves as inTransform's p.
 */
function outTransform(): FuncBuilder {
  const f = new FuncBuilder('outTransform', new Array<'i32'>(15).fill('i32'));
  const [M, eStride, coutBytes, cvecs, nt, q, rowBytes, TW, TH, tx, ty, OH, OW, rowDelta, imgDelta] = f.params as [
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
  ];
  const i = f.local('i32');
  const c = f.local('i32');
  const a = f.local('i32');
  const mt = f.local('i32');
  const o = f.local('i32');
  const rOk = f.local('i32');
  const cOk = f.local('i32');
  const m = Array.from({ length: 16 }, () => f.local('v128'));
  const s = Array.from({ length: 8 }, () => f.local('v128')); // (A^T m)[4 r + col], r < 2
  const Mv = (r: number, col: number) => get(m[4 * r + col] as Local);
  const S = (r: number, col: number) => get(s[4 * r + col] as Local);
  const loads: Code[] = [set(a, i32.add(get(mt), i32.shl(get(c), i32.const(4))))];
  for (let e = 0; e < 16; e++) {
    if (e > 0) loads.push(inc(a, get(eStride)));
    loads.push(set(m[e] as Local, v128.load(get(a))));
  }
  const rows: Code[] = [];
  for (let col = 0; col < 4; col++)
    rows.push(
      set(s[col] as Local, f32x4.add(f32x4.add(Mv(0, col), Mv(1, col)), Mv(2, col))),
      set(s[4 + col] as Local, f32x4.sub(f32x4.sub(Mv(1, col), Mv(2, col)), Mv(3, col))),
    );
  const y0 = (r: number) => f32x4.add(f32x4.add(S(r, 0), S(r, 1)), S(r, 2));
  const y1 = (r: number) => f32x4.sub(f32x4.sub(S(r, 1), S(r, 2)), S(r, 3));
  const stores: Code[] = [
    set(o, i32.add(get(q), i32.shl(get(c), i32.const(4)))),
    v128.store(get(o), y0(0)),
    if_(get(cOk), [v128.store(i32.add(get(o), get(coutBytes)), y1(0))]),
    if_(get(rOk), [inc(o, get(rowBytes)), v128.store(get(o), y0(1)), if_(get(cOk), [v128.store(i32.add(get(o), get(coutBytes)), y1(1))])]),
  ];
  f.body = seq(
    set(mt, get(M)),
    tileWalk({ i, nt, p: q, tx, ty, TW, TH, rowDelta, imgDelta }, i32.shl(get(coutBytes), i32.const(1)), [
      ...tileEdges(rOk, cOk, tx, ty, OH, OW),
      set(c, i32.const(0)),
      whileLoop(i32.lt_u(get(c), get(cvecs)), ...loads, ...rows, ...stores, inc(c, i32.const(1))),
      inc(mt, get(coutBytes)),
    ]),
  );
  return f;
}

/**
 * dyTransform(eStride, coutBytes, cvecs, nt, q, rowBytes, TW, TH, tx, ty, OH, OW, rowDelta,
 * imgDelta, Z): the filter gradient's transform of the output gradient, Z = A dY A^T (4 x 4 from the
 * tile's 2 x 2 dY, its entries outside OH x OW taken as 0), for nt tiles from tile (tx, ty) of dy at
 * byte q (moving as outTransform's q), to Z + e eStride + i coutBytes + 16 c.
 */
function dyTransform(): FuncBuilder {
  const f = new FuncBuilder('dyTransform', new Array<'i32'>(15).fill('i32'));
  const [eStride, coutBytes, cvecs, nt, q, rowBytes, TW, TH, tx, ty, OH, OW, rowDelta, imgDelta, Z] = f.params as [
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
    Local,
  ];
  const i = f.local('i32');
  const c = f.local('i32');
  const o = f.local('i32');
  const w = f.local('i32');
  const zt = f.local('i32');
  const rOk = f.local('i32');
  const cOk = f.local('i32');
  const y = Array.from({ length: 4 }, () => f.local('v128')); // dY[2 r + col]
  const s = Array.from({ length: 8 }, () => f.local('v128')); // (A dY)[2 r + col], r < 4
  const Y = (r: number, col: number) => get(y[2 * r + col] as Local);
  const S = (r: number, col: number) => get(s[2 * r + col] as Local);
  const loads: Code[] = [
    set(o, i32.add(get(q), i32.shl(get(c), i32.const(4)))),
    set(y[0] as Local, v128.load(get(o))),
    set(y[1] as Local, v128.zero()),
    if_(get(cOk), [set(y[1] as Local, v128.load(i32.add(get(o), get(coutBytes))))]),
    set(y[2] as Local, v128.zero()),
    set(y[3] as Local, v128.zero()),
    if_(get(rOk), [
      inc(o, get(rowBytes)),
      set(y[2] as Local, v128.load(get(o))),
      if_(get(cOk), [set(y[3] as Local, v128.load(i32.add(get(o), get(coutBytes))))]),
    ]),
  ];
  const rows: Code[] = [];
  for (let col = 0; col < 2; col++)
    rows.push(
      set(s[col] as Local, Y(0, col)),
      set(s[2 + col] as Local, f32x4.add(Y(0, col), Y(1, col))),
      set(s[4 + col] as Local, f32x4.sub(Y(0, col), Y(1, col))),
      set(s[6 + col] as Local, f32x4.neg(Y(1, col))),
    );
  const stores: Code[] = [set(w, i32.add(get(zt), i32.shl(get(c), i32.const(4))))];
  for (let r = 0; r < 4; r++) {
    const z = [S(r, 0), f32x4.add(S(r, 0), S(r, 1)), f32x4.sub(S(r, 0), S(r, 1)), f32x4.neg(S(r, 1))];
    for (let col = 0; col < 4; col++) {
      if (r > 0 || col > 0) stores.push(inc(w, get(eStride)));
      stores.push(v128.store(get(w), z[col] as Code));
    }
  }
  f.body = seq(
    set(zt, get(Z)),
    tileWalk({ i, nt, p: q, tx, ty, TW, TH, rowDelta, imgDelta }, i32.shl(get(coutBytes), i32.const(1)), [
      ...tileEdges(rOk, cOk, tx, ty, OH, OW),
      set(c, i32.const(0)),
      whileLoop(i32.lt_u(get(c), get(cvecs)), ...loads, ...rows, ...stores, inc(c, i32.const(1))),
      inc(zt, get(coutBytes)),
    ]),
  );
  return f;
}

let module: object | null = null;

interface Exports {
  inTransform(...args: number[]): void;
  outTransform(...args: number[]): void;
  dyTransform(...args: number[]): void;
}

/** A 3x3 stride-1 NHWC convolution's geometry: x [B, H, W, Cin] zero-padded by top / left (and bottom / right). */
export interface WinogradConvShape {
  B: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  top: number;
  left: number;
  /** Output size: H + top + bottom - 2, W + left + right - 2 (both >= 1). */
  OH: number;
  OW: number;
}

/**
 * Whether Winograd pays over the direct kernels (XNNPACK's forward, the shifted GEMMs' filter
 * gradient), for the 'auto' variants: at least 16 input and output channels and 8,192 tiles x Cin x
 * Cout. Measured on one thread (AMD EPYC, 2026-12-07, batch 16 unless named; ms direct / Winograd,
 * forward then filter gradient): 32 -> 32 channels at 32 x 32 9.96 / 5.29, 10.0 / 5.23; at 16 x 16
 * 2.70 / 1.43, 2.88 / 1.46; at 8 x 8 0.67 / 0.40, 0.84 / 0.38; 16 -> 16 at 16 x 16 0.57 / 0.38,
 * 0.56 / 0.38; at 8 x 8 0.14 / 0.08, 0.18 / 0.10; at 4 x 4 0.039 / 0.032, 0.060 / 0.031; 8 -> 8 at
 * 16 x 16 0.37 / 0.31, 0.27 / 0.27 (even); 4 -> 4 0.23 / 0.26, 0.20 / 0.25 (slower); one image of
 * 4 x 4 x 16 -> 16 (1,024 tiles x channels) 0.016 / 0.026 (slower: the fixed cost of the transforms).
 * Near the threshold, 1-8 images of 8 x 8 (8,192-32,768 tiles x channels), either is within 0.05 ms
 * of the other (the forward slower by up to 0.05, the filter gradient faster by up to 0.02: `bench/
 * conv_ab.ts '[[2,8,8,16,16],[4,8,8,16,16],[2,8,8,32,32]]'`); the rule is set by the batch-16 layers
 * of the experiments. `bench/conv_ab.ts` (packages/core) reruns every figure here.
 */
export function winogradPays(s: { B: number; Cin: number; Cout: number; OH: number; OW: number }): boolean {
  const tiles = s.B * Math.ceil(s.OH / 2) * Math.ceil(s.OW / 2);
  return s.Cin >= 16 && s.Cout >= 16 && tiles * s.Cin * s.Cout >= 8192;
}

/** Whether the Winograd path takes a convolution: channel counts that are multiples of 4 (whole vectors). */
export function winogradEligible(s: { Cin: number; Cout: number; OH: number; OW: number }): boolean {
  return s.Cin > 0 && s.Cout > 0 && s.Cin % 4 === 0 && s.Cout % 4 === 0 && s.OH >= 1 && s.OW >= 1;
}

/**
 * U [16, Cin, Cout] = G g G^T for each channel pair of a [3, 3, Cin, Cout] filter, in float64 and
 * rounded once to float32.
 */
export function winogradFilter(w: Float32Array, Cin: number, Cout: number, out: Float32Array): void {
  const n = Cin * Cout;
  if (w.length !== 9 * n) throw new Error(`winogradFilter: filter has ${w.length} floats, expected 9 x ${Cin} x ${Cout} = ${9 * n}`);
  if (out.length !== 16 * n) throw new Error(`winogradFilter: out has ${out.length} floats, expected ${16 * n}`);
  const gg = new Float64Array(12); // G g: [4, 3]
  for (let j = 0; j < n; j++) {
    for (let col = 0; col < 3; col++) {
      const g0 = w[col * n + j] as number;
      const g1 = w[(3 + col) * n + j] as number;
      const g2 = w[(6 + col) * n + j] as number;
      gg[col] = g0;
      gg[3 + col] = (g0 + g1 + g2) / 2;
      gg[6 + col] = (g0 - g1 + g2) / 2;
      gg[9 + col] = g2;
    }
    for (let r = 0; r < 4; r++) {
      const a = gg[3 * r] as number;
      const b = gg[3 * r + 1] as number;
      const c = gg[3 * r + 2] as number;
      out[4 * r * n + j] = a;
      out[(4 * r + 1) * n + j] = (a + b + c) / 2;
      out[(4 * r + 2) * n + j] = (a - b + c) / 2;
      out[(4 * r + 3) * n + j] = c;
    }
  }
}

/**
 * dW [3, 3, Cin, Cout] = G^T dU G for each channel pair of dU [16, Cin, Cout] (the gradient of the
 * transformed filter U = G g G^T, so that dW is the gradient of g), in float64 and rounded once.
 */
export function winogradFilterGrad(dU: Float32Array, Cin: number, Cout: number, out: Float32Array): void {
  const n = Cin * Cout;
  if (dU.length !== 16 * n) throw new Error(`winogradFilterGrad: dU has ${dU.length} floats, expected 16 x ${Cin} x ${Cout} = ${16 * n}`);
  if (out.length !== 9 * n) throw new Error(`winogradFilterGrad: out has ${out.length} floats, expected ${9 * n}`);
  const h = new Float64Array(12); // G^T dU: [3, 4]
  for (let j = 0; j < n; j++) {
    for (let col = 0; col < 4; col++) {
      const d0 = dU[col * n + j] as number;
      const d1 = dU[(4 + col) * n + j] as number;
      const d2 = dU[(8 + col) * n + j] as number;
      const d3 = dU[(12 + col) * n + j] as number;
      h[col] = d0 + (d1 + d2) / 2;
      h[4 + col] = (d1 - d2) / 2;
      h[8 + col] = (d1 + d2) / 2 + d3;
    }
    for (let r = 0; r < 3; r++) {
      const a = h[4 * r] as number;
      const b = h[4 * r + 1] as number;
      const c = h[4 * r + 2] as number;
      const d = h[4 * r + 3] as number;
      out[3 * r * n + j] = a + (b + c) / 2;
      out[(3 * r + 1) * n + j] = (b - c) / 2;
      out[(3 * r + 2) * n + j] = (b + c) / 2 + d;
    }
  }
}

/** Tiles, padded input and chunk size of a convolution. */
function geometry(s: WinogradConvShape) {
  const TH = Math.ceil(s.OH / 2);
  const TW = Math.ceil(s.OW / 2);
  const Hx = 2 * TH + 2; // padded input rows: every tile's 4 x 4 patch lies inside
  const Wx = 2 * TW + 2;
  const tiles = s.B * TH * TW;
  // chunk: blocks of 16 x nt x C floats of about 256 KB each, so that a chunk's stay in the L2 cache
  const nt = Math.max(4, Math.min(tiles, (Math.floor(4096 / Math.max(s.Cin, s.Cout)) >> 2) << 2));
  // the 16 planes of a chunk's V (or Z, M) lie planeIn (planeOut) floats apart: nt C plus 16, so that
  // the transforms' 16 streams of stores (loads) are not a multiple of 4 KB apart, where they would
  // share L1 sets and alias
  return { TH, TW, Hx, Wx, tiles, nt, xpFloats: s.B * Hx * Wx * s.Cin, planeIn: nt * s.Cin + 16, planeOut: nt * s.Cout + 16 };
}

/**
 * xp [B, Hx, Wx, Cin] (byte offset xp) = x at (top, left), zeros elsewhere (rows or columns of x past
 * Hx / Wx are never read by a tile: they would only feed outputs past OH / OW).
 */
function padInput(heap: Float32Array, s: WinogradConvShape, xPtr: number, xp: number): void {
  const { B, H, W, Cin, top, left } = s;
  const { Hx, Wx, xpFloats } = geometry(s);
  heap.fill(0, xp >>> 2, (xp >>> 2) + xpFloats);
  const rows = Math.min(H, Hx - top);
  const cols = Math.min(W, Wx - left);
  if (cols > 0)
    for (let b = 0; b < B; b++)
      for (let r = 0; r < rows; r++) {
        const from = (xPtr >>> 2) + (b * H + r) * W * Cin;
        heap.copyWithin((xp >>> 2) + ((b * Hx + r + top) * Wx + left) * Cin, from, from + cols * Cin);
      }
}

/** The transforms bound to one heap; `conv` runs a whole convolution with a SimdGemm on the same heap. */
export class WinogradConv {
  private readonly x: Exports;

  constructor(
    private readonly memory: WasmMemory,
    private readonly malloc: (bytes: number) => number,
    private readonly free: (ptr: number) => void,
  ) {
    module ??= new WasmJs.Module(assembleModule([inTransform(), outTransform(), dyTransform()]));
    this.x = new WasmJs.Instance(module, { env: { memory } }).exports as unknown as Exports;
  }

  /** V_e of tiles t0 .. t0 + n - 1 (a chunk of at most nt) from the padded input xp. */
  private inTransform(s: WinogradConvShape, xp: number, t0: number, n: number, V: number): void {
    const { TH, TW, Hx, Wx, planeIn } = geometry(s);
    const pixIn = 4 * s.Cin;
    const rowIn = Wx * pixIn;
    const b = Math.floor(t0 / (TH * TW));
    const ty = Math.floor((t0 % (TH * TW)) / TW);
    const tx = t0 % TW;
    this.x.inTransform(
      xp + (b * Hx + 2 * ty) * rowIn + 2 * tx * pixIn,
      rowIn,
      pixIn,
      s.Cin / 4,
      TW,
      TH,
      tx,
      ty,
      n,
      V,
      4 * planeIn,
      2 * rowIn - 2 * TW * pixIn,
      (Hx - 2 * TH) * rowIn,
    );
  }

  /**
   * dW [3, 3, Cin, Cout] (byte offset dwPtr) = the filter gradient of conv (below) for x (xPtr) and
   * the output gradient dy [B, OH, OW, Cout] (dyPtr), through the same transforms: the gradient of
   * U_e is dU_e = sum over tiles of V_e^T Z_e with Z = A dY A^T (16 GEMMs [Cin, tiles] x [tiles,
   * Cout], accumulated chunk by chunk), and dW = G^T dU G. Exact in real arithmetic (Winograd's Y
   * is the convolution, so its gradient is the convolution's); float32 sums in another order than
   * a direct weight gradient's.
   */
  filterGrad(g: SimdGemm, s: WinogradConvShape, xPtr: number, dyPtr: number, dwPtr: number): void {
    const { Cin, Cout, OH, OW } = s;
    if (!winogradEligible(s) || s.top < 0 || s.left < 0)
      throw new Error(
        `WinogradConv: channels must be multiples of 4 and outputs >= 1, got Cin ${Cin}, Cout ${Cout}, ${OH} x ${OW} (padding ${s.top}, ${s.left})`,
      );
    const { TH, TW, tiles, nt, xpFloats, planeIn, planeOut } = geometry(s);
    const ptrs: number[] = [];
    const alloc = (floats: number) => {
      const p = this.malloc(4 * floats + 16);
      ptrs.push(p);
      return (p + 15) & ~15;
    };
    try {
      const xp = alloc(xpFloats);
      const V = alloc(16 * planeIn);
      const Z = alloc(16 * planeOut);
      const dU = alloc(16 * Cin * Cout);
      padInput(new Float32Array(this.memory.buffer), s, xPtr, xp);
      const pixOut = 4 * Cout;
      const rowOut = OW * pixOut;
      for (let t0 = 0; t0 < tiles; t0 += nt) {
        const n = Math.min(nt, tiles - t0);
        const b = Math.floor(t0 / (TH * TW));
        const ty = Math.floor((t0 % (TH * TW)) / TW);
        const tx = t0 % TW;
        this.inTransform(s, xp, t0, n, V);
        this.x.dyTransform(
          4 * planeOut,
          pixOut,
          Cout / 4,
          n,
          dyPtr + (b * OH + 2 * ty) * rowOut + 2 * tx * pixOut,
          rowOut,
          TW,
          TH,
          tx,
          ty,
          OH,
          OW,
          2 * rowOut - 2 * TW * pixOut,
          (OH - 2 * TH) * rowOut,
          Z,
        );
        // dU_e [Cin, Cout] (+)= V_e^T [Cin, n] Z_e [n, Cout]
        for (let e = 0; e < 16; e++)
          g.gemm(
            Cin,
            Cout,
            n,
            { ptr: V + 4 * e * planeIn, rs: 1, cs: Cin },
            { ptr: Z + 4 * e * planeOut, rs: Cout, cs: 1 },
            dU + 4 * e * Cin * Cout,
            Cout,
            t0 > 0,
          );
      }
      const heap = new Float32Array(this.memory.buffer);
      winogradFilterGrad(
        heap.subarray(dU >>> 2, (dU >>> 2) + 16 * Cin * Cout),
        Cin,
        Cout,
        heap.subarray(dwPtr >>> 2, (dwPtr >>> 2) + 9 * Cin * Cout),
      );
    } finally {
      for (const p of ptrs) this.free(p);
    }
  }

  /**
   * y [B, OH, OW, Cout] (byte offset yPtr) = the 3x3 stride-1 convolution of x [B, H, W, Cin] (xPtr)
   * zero-padded by (top, left), with filter [3, 3, Cin, Cout] (wPtr). Needs winogradEligible.
   */
  conv(g: SimdGemm, s: WinogradConvShape, xPtr: number, wPtr: number, yPtr: number): void {
    const { Cin, Cout, OH, OW } = s;
    if (!winogradEligible(s) || s.top < 0 || s.left < 0)
      throw new Error(
        `WinogradConv: channels must be multiples of 4 and outputs >= 1, got Cin ${Cin}, Cout ${Cout}, ${OH} x ${OW} (padding ${s.top}, ${s.left})`,
      );
    const { TH, TW, tiles, nt, xpFloats, planeIn, planeOut } = geometry(s);
    const ptrs: number[] = [];
    const alloc = (floats: number) => {
      const p = this.malloc(4 * floats + 16);
      ptrs.push(p);
      return (p + 15) & ~15;
    };
    try {
      const xp = alloc(xpFloats);
      const U = alloc(16 * Cin * Cout);
      const V = alloc(16 * planeIn);
      const Mb = alloc(16 * planeOut);
      const heap = new Float32Array(this.memory.buffer); // after the mallocs, which may grow the heap
      padInput(heap, s, xPtr, xp);
      winogradFilter(
        heap.subarray(wPtr >>> 2, (wPtr >>> 2) + 9 * Cin * Cout),
        Cin,
        Cout,
        heap.subarray(U >>> 2, (U >>> 2) + 16 * Cin * Cout),
      );
      const pixOut = 4 * Cout;
      const rowOut = OW * pixOut;
      for (let t0 = 0; t0 < tiles; t0 += nt) {
        const n = Math.min(nt, tiles - t0);
        const b = Math.floor(t0 / (TH * TW));
        const ty = Math.floor((t0 % (TH * TW)) / TW);
        const tx = t0 % TW;
        this.inTransform(s, xp, t0, n, V);
        for (let e = 0; e < 16; e++)
          g.gemm(
            n,
            Cout,
            Cin,
            { ptr: V + 4 * e * planeIn, rs: Cin, cs: 1 },
            { ptr: U + 4 * e * Cin * Cout, rs: Cout, cs: 1 },
            Mb + 4 * e * planeOut,
            Cout,
          );
        this.x.outTransform(
          Mb,
          4 * planeOut,
          pixOut,
          Cout / 4,
          n,
          yPtr + (b * OH + 2 * ty) * rowOut + 2 * tx * pixOut,
          rowOut,
          TW,
          TH,
          tx,
          ty,
          OH,
          OW,
          2 * rowOut - 2 * TW * pixOut,
          (OH - 2 * TH) * rowOut,
        );
      }
    } finally {
      for (const p of ptrs) this.free(p);
    }
  }
}
