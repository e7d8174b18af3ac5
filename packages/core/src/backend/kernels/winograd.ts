/**
 * 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3), and F(4x4, 3x3) where the
 * outputs are whole 4x4 tiles and large enough to pay (winogradTile; its transforms are described at
 * inTransform4 below) (Lavin & Gray, "Fast
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
import {
  assembleModule,
  type Code,
  FuncBuilder,
  f32,
  f32x4,
  get,
  i32,
  if_,
  inc,
  type Local,
  seq,
  set,
  v128,
  whileLoop,
} from './wasm_asm.js';

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

/**
 * F(4x4, 3x3) (Lavin & Gray, section 5; interpolation points 0, +-1, +-2, infinity): each 4x4 block of
 * outputs is Y = A^T [ (G g G^T) .* (B^T d B) ] A over its 6x6 input patch, with
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
 *   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]:
 * 36 GEMMs, 2.25 multiply-adds per output and channel pair (F(2x2, 3x3): 4, direct: 9). These
 * transforms run only where OH and OW are multiples of 4 (no partial tiles, so no edge tests).
 */
const BT4: number[][] = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];
const G4: number[][] = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];
const AT4: number[][] = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 0],
  [0, 1, 1, 4, 4, 0],
  [0, 1, -1, 8, -8, 1],
];
/** The transform matrices of F(m x m, 3x3), for the float64 filter transforms and the tests. */
export const WINOGRAD_F4 = { BT: BT4, G: G4, AT: AT4 } as const;

/** Splatted constants 2, 4, 5, 8 as v128 locals of a function, set once at its start. */
function constants(f: FuncBuilder): { init: Code[]; k: (x: 2 | 4 | 5 | 8) => Code } {
  const locals = new Map<number, Local>();
  const init: Code[] = [];
  for (const x of [2, 4, 5, 8]) {
    const l = f.local('v128');
    locals.set(x, l);
    init.push(set(l, f32x4.splat(f32.const(x))));
  }
  return { init, k: (x) => get(locals.get(x) as Local) };
}

/** B^T x for a 6-vector x (factored: 12 adds and 4 multiplies instead of the matrix's 20 terms). */
function bt6(x: (i: number) => Code, k: (c: 2 | 4 | 5 | 8) => Code): Code[] {
  return [
    f32x4.add(f32x4.sub(f32x4.mul(k(4), x(0)), f32x4.mul(k(5), x(2))), x(4)),
    f32x4.sub(f32x4.add(x(3), x(4)), f32x4.mul(k(4), f32x4.add(x(1), x(2)))),
    f32x4.add(f32x4.sub(x(4), x(3)), f32x4.mul(k(4), f32x4.sub(x(1), x(2)))),
    f32x4.add(f32x4.sub(x(4), x(2)), f32x4.mul(k(2), f32x4.sub(x(3), x(1)))),
    f32x4.sub(f32x4.sub(x(4), x(2)), f32x4.mul(k(2), f32x4.sub(x(3), x(1)))),
    f32x4.add(f32x4.sub(f32x4.mul(k(4), x(1)), f32x4.mul(k(5), x(3))), x(5)),
  ];
}

/** A^T x for a 6-vector x. */
function at6(x: (i: number) => Code, k: (c: 2 | 4 | 5 | 8) => Code): Code[] {
  const p12 = () => f32x4.add(x(1), x(2));
  const m12 = () => f32x4.sub(x(1), x(2));
  const p34 = () => f32x4.add(x(3), x(4));
  const m34 = () => f32x4.sub(x(3), x(4));
  return [
    f32x4.add(f32x4.add(x(0), p12()), p34()),
    f32x4.add(m12(), f32x4.mul(k(2), m34())),
    f32x4.add(p12(), f32x4.mul(k(4), p34())),
    f32x4.add(f32x4.add(m12(), f32x4.mul(k(8), m34())), x(5)),
  ];
}

/** A y for a 4-vector y (the adjoint of A^T: 6 entries). */
function a4(y: (i: number) => Code, k: (c: 2 | 4 | 5 | 8) => Code): Code[] {
  return [
    y(0),
    f32x4.add(f32x4.add(y(0), y(1)), f32x4.add(y(2), y(3))),
    f32x4.sub(f32x4.add(y(0), y(2)), f32x4.add(y(1), y(3))),
    f32x4.add(f32x4.add(y(0), f32x4.mul(k(2), y(1))), f32x4.add(f32x4.mul(k(4), y(2)), f32x4.mul(k(8), y(3)))),
    f32x4.sub(f32x4.add(y(0), f32x4.mul(k(4), y(2))), f32x4.add(f32x4.mul(k(2), y(1)), f32x4.mul(k(8), y(3)))),
    y(3),
  ];
}

/** inTransform's F(4x4) twin (same parameters): V_e = B^T d B over 6x6 patches, 36 planes; p moves 4 pixels a tile. */
function inTransform4(): FuncBuilder {
  const f = new FuncBuilder('inTransform4', new Array<'i32'>(13).fill('i32'));
  const [p, rowBytes, pixBytes, cvecs, TW, TH, tx, ty, nt, V, eStride, rowDelta, imgDelta] = f.params as Local[] as [
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
  const w = f.local('i32');
  const vt = f.local('i32');
  const pb = Array.from({ length: 6 }, () => f.local('i32')); // k pixBytes
  const { init, k } = constants(f);
  const d = Array.from({ length: 6 }, () => f.local('v128'));
  const t = Array.from({ length: 36 }, () => f.local('v128')); // (d B)[6 r + col]
  const body: Code[] = [set(a, i32.add(get(p), i32.shl(get(c), i32.const(4))))];
  for (let r = 0; r < 6; r++) {
    if (r > 0) body.push(inc(a, get(rowBytes)));
    for (let j = 0; j < 6; j++) body.push(set(d[j] as Local, v128.load(j === 0 ? get(a) : i32.add(get(a), get(pb[j] as Local)))));
    const row = bt6((j) => get(d[j] as Local), k);
    for (let j = 0; j < 6; j++) body.push(set(t[6 * r + j] as Local, row[j] as Code));
  }
  body.push(set(w, i32.add(get(vt), i32.shl(get(c), i32.const(4)))));
  // column j of (d B) through B^T: V[6 r + j]
  const cols = Array.from({ length: 6 }, (_, j) => bt6((r) => get(t[6 * r + j] as Local), k));
  for (let r = 0; r < 6; r++)
    for (let j = 0; j < 6; j++) {
      if (r > 0 || j > 0) body.push(inc(w, get(eStride)));
      body.push(v128.store(get(w), (cols[j] as Code[])[r] as Code));
    }
  const pbInit: Code[] = [];
  for (let j = 1; j < 6; j++) pbInit.push(set(pb[j] as Local, i32.mul(get(pixBytes), i32.const(j))));
  f.body = seq(
    ...init,
    ...pbInit,
    set(vt, get(V)),
    tileWalk({ i, nt, p, tx, ty, TW, TH, rowDelta, imgDelta }, i32.shl(get(pixBytes), i32.const(2)), [
      set(c, i32.const(0)),
      whileLoop(i32.lt_u(get(c), get(cvecs)), ...body, inc(c, i32.const(1))),
      inc(vt, get(pixBytes)),
    ]),
  );
  return f;
}

/** outTransform's F(4x4) twin (same parameters; OH, OW unused: whole tiles only): Y = A^T m A. */
function outTransform4(): FuncBuilder {
  const f = new FuncBuilder('outTransform4', new Array<'i32'>(15).fill('i32'));
  const [M, eStride, coutBytes, cvecs, nt, q, rowBytes, TW, TH, tx, ty, , , rowDelta, imgDelta] = f.params as Local[] as [
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
  const { init, k } = constants(f);
  const m = Array.from({ length: 6 }, () => f.local('v128'));
  const s = Array.from({ length: 24 }, () => f.local('v128')); // (A^T m)[6 r + col], r < 4
  const body: Code[] = [set(a, i32.add(get(mt), i32.shl(get(c), i32.const(4))))];
  // column by column: load m[0..5][col] (planes 6 r + col), A^T over rows
  for (let col = 0; col < 6; col++) {
    for (let r = 0; r < 6; r++) body.push(set(m[r] as Local, v128.load(i32.add(get(a), i32.mul(get(eStride), i32.const(6 * r + col))))));
    const out = at6((r) => get(m[r] as Local), k);
    for (let r = 0; r < 4; r++) body.push(set(s[6 * r + col] as Local, out[r] as Code));
  }
  body.push(set(o, i32.add(get(q), i32.shl(get(c), i32.const(4)))));
  for (let r = 0; r < 4; r++) {
    if (r > 0) body.push(inc(o, get(rowBytes)));
    const y = at6((col) => get(s[6 * r + col] as Local), k);
    for (let j = 0; j < 4; j++)
      body.push(v128.store(j === 0 ? get(o) : i32.add(get(o), i32.mul(get(coutBytes), i32.const(j))), y[j] as Code));
  }
  f.body = seq(
    ...init,
    set(mt, get(M)),
    tileWalk({ i, nt, p: q, tx, ty, TW, TH, rowDelta, imgDelta }, i32.shl(get(coutBytes), i32.const(2)), [
      set(c, i32.const(0)),
      whileLoop(i32.lt_u(get(c), get(cvecs)), ...body, inc(c, i32.const(1))),
      inc(mt, get(coutBytes)),
    ]),
  );
  return f;
}

/** dyTransform's F(4x4) twin (same parameters; whole tiles only): Z = A dY A^T, 36 planes. */
function dyTransform4(): FuncBuilder {
  const f = new FuncBuilder('dyTransform4', new Array<'i32'>(15).fill('i32'));
  const [eStride, coutBytes, cvecs, nt, q, rowBytes, TW, TH, tx, ty, , , rowDelta, imgDelta, Z] = f.params as Local[] as [
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
  const { init, k } = constants(f);
  const y = Array.from({ length: 16 }, () => f.local('v128')); // dY[4 r + col]
  const s = Array.from({ length: 24 }, () => f.local('v128')); // (A dY)[4 r + col], r < 6
  const body: Code[] = [set(o, i32.add(get(q), i32.shl(get(c), i32.const(4))))];
  for (let r = 0; r < 4; r++) {
    if (r > 0) body.push(inc(o, get(rowBytes)));
    for (let j = 0; j < 4; j++)
      body.push(set(y[4 * r + j] as Local, v128.load(j === 0 ? get(o) : i32.add(get(o), i32.mul(get(coutBytes), i32.const(j))))));
  }
  for (let col = 0; col < 4; col++) {
    const z = a4((r) => get(y[4 * r + col] as Local), k);
    for (let r = 0; r < 6; r++) body.push(set(s[4 * r + col] as Local, z[r] as Code));
  }
  body.push(set(w, i32.add(get(zt), i32.shl(get(c), i32.const(4)))));
  for (let r = 0; r < 6; r++) {
    const z = a4((col) => get(s[4 * r + col] as Local), k);
    for (let j = 0; j < 6; j++) {
      if (r > 0 || j > 0) body.push(inc(w, get(eStride)));
      body.push(v128.store(get(w), z[j] as Code));
    }
  }
  f.body = seq(
    ...init,
    set(zt, get(Z)),
    tileWalk({ i, nt, p: q, tx, ty, TW, TH, rowDelta, imgDelta }, i32.shl(get(coutBytes), i32.const(2)), [
      set(c, i32.const(0)),
      whileLoop(i32.lt_u(get(c), get(cvecs)), ...body, inc(c, i32.const(1))),
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
  inTransform4(...args: number[]): void;
  outTransform4(...args: number[]): void;
  dyTransform4(...args: number[]): void;
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
  if (s.Cin >= 16 && s.Cout >= 16) return tiles * s.Cin * s.Cout >= 8192;
  // narrow layers (the RGB convolutions in and out), their channels zero-padded to 4: ms direct /
  // Winograd, forward then filter gradient (AMD EPYC, 2026-12-08, `bench/conv_ab.ts`): 32 -> 3 at
  // 16 x 32 x 32 2.10 / 1.30, 1.62 / 1.25; 3 -> 32 0.88 / 0.70, 1.08 / 0.64; 16 -> 3 at 16 x 16 x 16
  // 0.273 / 0.192, 0.212 / 0.194; 3 -> 16 0.120 / 0.139, 0.161 / 0.109 (together a gain); at
  // 16 x 8 x 8 and below, or one image of 16 x 16, within 0.03 ms either way or slower
  return Math.max(s.Cin, s.Cout) >= 16 && s.B * s.OH * s.OW >= 4096;
}

/**
 * Whether the Winograd path takes a convolution: any channel counts (those that are not whole vectors
 * of 4 run zero-padded to the next multiple of 4: the transforms and GEMMs work on 4 channels a
 * vector) and outputs of at least 1 x 1.
 */
export function winogradEligible(s: { Cin: number; Cout: number; OH: number; OW: number }): boolean {
  return s.Cin > 0 && s.Cout > 0 && s.OH >= 1 && s.OW >= 1;
}

/** n rounded up to a whole vector of 4 channels. */
const vec4 = (n: number) => (n + 3) & ~3;

/** Copies `ch` floats of each of `pixels` pixels from a stride of `from` floats to one of `to` (from src to dst, float indices). */
function copyChannels(heap: Float32Array, src: number, from: number, dst: number, to: number, ch: number, pixels: number): void {
  for (let i = 0; i < pixels; i++) {
    const a = src + i * from;
    const b = dst + i * to;
    for (let c = 0; c < ch; c++) heap[b + c] = heap[a + c] as number;
  }
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

/**
 * G x for a 3-vector x (G of F(4x4, 3x3), unrolled): [x0/4, -(x0+x1+x2)/6, -(x0-x1+x2)/6,
 * (x0/4 + x1/2 + x2)/6, (x0/4 - x1/2 + x2)/6, x2], in float64.
 */
function g3(x0: number, x1: number, x2: number, out: Float32Array | Float64Array, o: number, stride: number): void {
  const p = x0 + x2;
  const q = x0 / 4 + x2;
  out[o] = x0 / 4;
  out[o + stride] = -(p + x1) / 6;
  out[o + 2 * stride] = -(p - x1) / 6;
  out[o + 3 * stride] = (q + x1 / 2) / 6;
  out[o + 4 * stride] = (q - x1 / 2) / 6;
  out[o + 5 * stride] = x2;
}

/** G^T y for a 6-vector y at y[o + k stride] (the adjoint of g3), in float64: its 3 entries to r. */
function gT6(y: Float64Array | Float32Array, o: number, stride: number, r: Float64Array, ro: number, rstride: number): void {
  const y0 = y[o] as number;
  const y1 = y[o + stride] as number;
  const y2 = y[o + 2 * stride] as number;
  const y3 = y[o + 3 * stride] as number;
  const y4 = y[o + 4 * stride] as number;
  const y5 = y[o + 5 * stride] as number;
  const a = -(y1 + y2) / 6;
  const b = (y3 + y4) / 6;
  r[ro] = y0 / 4 + a + b / 4;
  r[ro + rstride] = -(y1 - y2) / 6 + (y3 - y4) / 12;
  r[ro + 2 * rstride] = a + b + y5;
}

/** The filter transforms of F(4x4, 3x3) in float64, rounded once: U = G g G^T. */
export function winogradFilter4(w: Float32Array, Cin: number, Cout: number, out: Float32Array): void {
  const n = Cin * Cout;
  if (w.length !== 9 * n) throw new Error(`winogradFilter4: filter has ${w.length} floats, expected 9 x ${Cin} x ${Cout} = ${9 * n}`);
  if (out.length !== 36 * n) throw new Error(`winogradFilter4: out has ${out.length} floats, expected ${36 * n}`);
  const gg = new Float64Array(18); // G g: [6, 3]
  // blocks of J channel pairs through a [36, J] buffer, then 36 contiguous copies: storing each pair's
  // 36 entries n floats apart straight into out thrashed the L1 cache (n = 1,024: every store 4 KB
  // from the last, one cache set; 0.29 ms against 0.05 for F(2x2)'s 16 at Cin = Cout = 32)
  const J = 64;
  const blk = new Float32Array(36 * J);
  for (let j0 = 0; j0 < n; j0 += J) {
    const nj = Math.min(J, n - j0);
    for (let jj = 0; jj < nj; jj++) {
      const j = j0 + jj;
      for (let col = 0; col < 3; col++)
        g3(w[col * n + j] as number, w[(3 + col) * n + j] as number, w[(6 + col) * n + j] as number, gg, col, 3);
      // (G g G^T)[r, :] = G (G g)[r, :]^T, rounded once to float32 in blk
      for (let r = 0; r < 6; r++) g3(gg[3 * r] as number, gg[3 * r + 1] as number, gg[3 * r + 2] as number, blk, 6 * r * J + jj, J);
    }
    for (let e = 0; e < 36; e++) out.set(blk.subarray(e * J, e * J + nj), e * n + j0);
  }
}

/** dW [3, 3, Cin, Cout] = G^T dU G of F(4x4, 3x3) for dU [36, Cin, Cout], in float64, rounded once. */
export function winogradFilterGrad4(dU: Float32Array, Cin: number, Cout: number, out: Float32Array): void {
  const n = Cin * Cout;
  if (dU.length !== 36 * n) throw new Error(`winogradFilterGrad4: dU has ${dU.length} floats, expected 36 x ${Cin} x ${Cout} = ${36 * n}`);
  if (out.length !== 9 * n) throw new Error(`winogradFilterGrad4: out has ${out.length} floats, expected ${9 * n}`);
  const h = new Float64Array(18); // G^T dU: [3, 6]
  const r3 = new Float64Array(3);
  // blocks of J channel pairs: 36 contiguous copies into a [36, J] buffer first (reading each pair's 36
  // entries n floats apart hits one cache set, as in winogradFilter4)
  const J = 64;
  const blk = new Float32Array(36 * J);
  for (let j0 = 0; j0 < n; j0 += J) {
    const nj = Math.min(J, n - j0);
    for (let e = 0; e < 36; e++) blk.set(dU.subarray(e * n + j0, e * n + j0 + nj), e * J);
    for (let jj = 0; jj < nj; jj++) {
      for (let col = 0; col < 6; col++) gT6(blk, col * J + jj, 6 * J, h, col, 6);
      for (let r = 0; r < 3; r++) {
        gT6(h, 6 * r, 1, r3, 0, 1);
        for (let col = 0; col < 3; col++) out[(3 * r + col) * n + j0 + jj] = r3[col] as number;
      }
    }
  }
}

/**
 * The output tile of a convolution: 4 (F(4x4, 3x3)) where OH and OW are multiples of 4 and the
 * setting allows it, else 2 (F(2x2, 3x3), which also takes partial tiles).
 */
export type WinogradTileSetting = 'auto' | 2 | 4;
let tileSetting: WinogradTileSetting | null = null;

/** Forces the tile (2: F(2x2) everywhere; 4: F(4x4) wherever it applies; 'auto'); returns the previous setting. */
export function setWinogradTile(t: WinogradTileSetting): WinogradTileSetting {
  if (t !== 'auto' && t !== 2 && t !== 4) throw new Error(`setWinogradTile: expected 'auto', 2 or 4, got ${String(t)}`);
  const was = winogradTileSetting();
  tileSetting = t;
  return was;
}

/** setWinogradTile's setting, else MMLM_WINOGRAD_TILE ('auto', '2' or '4'), else 'auto'. */
export function winogradTileSetting(): WinogradTileSetting {
  if (tileSetting !== null) return tileSetting;
  const v = typeof process !== 'undefined' ? process.env?.MMLM_WINOGRAD_TILE : undefined;
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === '2' || v === '4') return Number(v) as 2 | 4;
  throw new Error(`MMLM_WINOGRAD_TILE: expected auto, 2 or 4, got "${v}"`);
}

/**
 * The tile a convolution of this output size runs with: under 'auto', 4 where OH and OW are multiples
 * of 4 and OH x OW >= 256. Measured on one thread (AMD EPYC, 2026-12-08, batch 16, ms F(2x2) / F(4x4),
 * forward then filter gradient; `node --import tsx bench/winograd_tile.ts` reruns them): 32 -> 32
 * channels at 32 x 32 2.08 / 1.67-1.72, 2.11 / 1.70-1.76; at 16 x 16 0.54 / 0.45,
 * 0.54 / 0.48; at 8 x 8 0.177 / 0.167, 0.162 / 0.194 (the filter gradient slower); 16 -> 16 at 16 x 16
 * 0.178 / 0.166, 0.183 / 0.177; at 4 x 4 0.020 / 0.033, 0.021 / 0.039 (slower: one tile an image, the
 * transforms' fixed costs). Forced 4 (setWinogradTile(4)) takes every size that is a multiple of 4.
 */
export function winogradTile(s: { OH: number; OW: number }): 2 | 4 {
  const t = winogradTileSetting();
  if (t === 2 || s.OH % 4 !== 0 || s.OW % 4 !== 0) return 2;
  return t === 4 || s.OH * s.OW >= 256 ? 4 : 2;
}

/** Tiles, padded input and chunk size of a convolution with output tiles of m x m. */
function geometry(s: WinogradConvShape, m: 2 | 4) {
  const TH = Math.ceil(s.OH / m);
  const TW = Math.ceil(s.OW / m);
  const Hx = m * TH + 2; // padded input rows: every tile's (m + 2) x (m + 2) patch lies inside
  const Wx = m * TW + 2;
  const tiles = s.B * TH * TW;
  const E = (m + 2) * (m + 2); // transformed planes
  // chunk: blocks of E x nt x C floats of about 256 KB each, so that a chunk's stay in the L2 cache
  const nt = Math.max(4, Math.min(tiles, (Math.floor(65536 / (E * Math.max(s.Cin, s.Cout))) >> 2) << 2));
  // the E planes of a chunk's V (or Z, M) lie planeIn (planeOut) floats apart: nt C plus 16, so that
  // the transforms' E streams of stores (loads) are not a multiple of 4 KB apart, where they would
  // share L1 sets and alias
  return { m, E, TH, TW, Hx, Wx, tiles, nt, xpFloats: s.B * Hx * Wx * s.Cin, planeIn: nt * s.Cin + 16, planeOut: nt * s.Cout + 16 };
}
type Geometry = ReturnType<typeof geometry>;

/**
 * xp [B, Hx, Wx, Cin] (byte offset xp) = x at (top, left), zeros elsewhere (rows or columns of x past
 * Hx / Wx are never read by a tile: they would only feed outputs past OH / OW).
 */
function padInput(heap: Float32Array, s: WinogradConvShape, gm: Geometry, xPtr: number, xp: number, srcCin: number): void {
  const { B, H, W, Cin, top, left } = s;
  const { Hx, Wx, xpFloats } = gm;
  heap.fill(0, xp >>> 2, (xp >>> 2) + xpFloats);
  const rows = Math.min(H, Hx - top);
  const cols = Math.min(W, Wx - left);
  if (cols > 0)
    for (let b = 0; b < B; b++)
      for (let r = 0; r < rows; r++) {
        const from = (xPtr >>> 2) + (b * H + r) * W * srcCin;
        const to = (xp >>> 2) + ((b * Hx + r + top) * Wx + left) * Cin;
        if (srcCin === Cin) heap.copyWithin(to, from, from + cols * Cin);
        else copyChannels(heap, from, srcCin, to, Cin, srcCin, cols); // x's channels, then zeros up to Cin
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
    module ??= new WasmJs.Module(
      assembleModule([inTransform(), outTransform(), dyTransform(), inTransform4(), outTransform4(), dyTransform4()]),
    );
    this.x = new WasmJs.Instance(module, { env: { memory } }).exports as unknown as Exports;
  }

  /** V_e of tiles t0 .. t0 + n - 1 (a chunk of at most nt) from the padded input xp. */
  private inTransform(s: WinogradConvShape, gm: Geometry, xp: number, t0: number, n: number, V: number): void {
    const { m, TH, TW, Hx, Wx, planeIn } = gm;
    const pixIn = 4 * s.Cin;
    const rowIn = Wx * pixIn;
    const b = Math.floor(t0 / (TH * TW));
    const ty = Math.floor((t0 % (TH * TW)) / TW);
    const tx = t0 % TW;
    (m === 4 ? this.x.inTransform4 : this.x.inTransform)(
      xp + (b * Hx + m * ty) * rowIn + m * tx * pixIn,
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
      m * rowIn - m * TW * pixIn,
      (Hx - m * TH) * rowIn,
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
    this.check(s);
    const { B, Cin, Cout, OH, OW } = s;
    const s4 = { ...s, Cin: vec4(Cin), Cout: vec4(Cout) };
    if (s4.Cin === Cin && s4.Cout === Cout) {
      this.filterGradWhole(g, s, xPtr, Cin, dyPtr, dwPtr);
      return;
    }
    // channels zero-padded to whole vectors: dy to [B, OH, OW, Cout4], dW computed as [3, 3, Cin4, Cout4]
    const ptrs: number[] = [];
    try {
      let dy4 = dyPtr;
      if (s4.Cout !== Cout) {
        dy4 = this.alloc(ptrs, B * OH * OW * s4.Cout);
        const heap = new Float32Array(this.memory.buffer);
        heap.fill(0, dy4 >>> 2, (dy4 >>> 2) + B * OH * OW * s4.Cout);
        copyChannels(heap, dyPtr >>> 2, Cout, dy4 >>> 2, s4.Cout, Cout, B * OH * OW);
      }
      const dw4 = this.alloc(ptrs, 9 * s4.Cin * s4.Cout);
      this.filterGradWhole(g, s4, xPtr, Cin, dy4, dw4);
      // dW [t, c, :] = dW4 [t, c, :Cout] for the 9 taps t and the Cin real input channels c
      const heap = new Float32Array(this.memory.buffer);
      for (let t = 0; t < 9; t++)
        copyChannels(heap, (dw4 >>> 2) + t * s4.Cin * s4.Cout, s4.Cout, (dwPtr >>> 2) + t * Cin * Cout, Cout, Cout, Cin);
    } finally {
      for (const p of ptrs) this.free(p);
    }
  }

  /** Whole vectors of channels: s.Cin and s.Cout multiples of 4; x has srcCin <= s.Cin channels a pixel. */
  private filterGradWhole(g: SimdGemm, s: WinogradConvShape, xPtr: number, srcCin: number, dyPtr: number, dwPtr: number): void {
    const { Cin, Cout, OH, OW } = s;
    const gm = geometry(s, winogradTile(s));
    const { m, E, TH, TW, tiles, nt, xpFloats, planeIn, planeOut } = gm;
    const ptrs: number[] = [];
    const alloc = (floats: number) => {
      const p = this.malloc(4 * floats + 16);
      ptrs.push(p);
      return (p + 15) & ~15;
    };
    try {
      const xp = alloc(xpFloats);
      const V = alloc(E * planeIn);
      const Z = alloc(E * planeOut);
      const dU = alloc(E * Cin * Cout);
      padInput(new Float32Array(this.memory.buffer), s, gm, xPtr, xp, srcCin);
      const pixOut = 4 * Cout;
      const rowOut = OW * pixOut;
      for (let t0 = 0; t0 < tiles; t0 += nt) {
        const n = Math.min(nt, tiles - t0);
        const b = Math.floor(t0 / (TH * TW));
        const ty = Math.floor((t0 % (TH * TW)) / TW);
        const tx = t0 % TW;
        this.inTransform(s, gm, xp, t0, n, V);
        (m === 4 ? this.x.dyTransform4 : this.x.dyTransform)(
          4 * planeOut,
          pixOut,
          Cout / 4,
          n,
          dyPtr + (b * OH + m * ty) * rowOut + m * tx * pixOut,
          rowOut,
          TW,
          TH,
          tx,
          ty,
          OH,
          OW,
          m * rowOut - m * TW * pixOut,
          (OH - m * TH) * rowOut,
          Z,
        );
        // dU_e [Cin, Cout] (+)= V_e^T [Cin, n] Z_e [n, Cout]
        for (let e = 0; e < E; e++)
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
      (m === 4 ? winogradFilterGrad4 : winogradFilterGrad)(
        heap.subarray(dU >>> 2, (dU >>> 2) + E * Cin * Cout),
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
    this.check(s);
    const { B, Cin, Cout, OH, OW } = s;
    const s4 = { ...s, Cin: vec4(Cin), Cout: vec4(Cout) };
    if (s4.Cin === Cin && s4.Cout === Cout) {
      this.convWhole(g, s, xPtr, Cin, wPtr, yPtr);
      return;
    }
    // channels zero-padded to whole vectors: the filter to [3, 3, Cin4, Cout4], y computed as
    // [B, OH, OW, Cout4] and its first Cout channels kept
    const ptrs: number[] = [];
    try {
      const w4 = this.alloc(ptrs, 9 * s4.Cin * s4.Cout);
      const y4 = s4.Cout === Cout ? yPtr : this.alloc(ptrs, B * OH * OW * s4.Cout);
      let heap = new Float32Array(this.memory.buffer);
      heap.fill(0, w4 >>> 2, (w4 >>> 2) + 9 * s4.Cin * s4.Cout);
      for (let t = 0; t < 9; t++)
        copyChannels(heap, (wPtr >>> 2) + t * Cin * Cout, Cout, (w4 >>> 2) + t * s4.Cin * s4.Cout, s4.Cout, Cout, Cin);
      this.convWhole(g, s4, xPtr, Cin, w4, y4);
      heap = new Float32Array(this.memory.buffer);
      if (y4 !== yPtr) copyChannels(heap, y4 >>> 2, s4.Cout, yPtr >>> 2, Cout, Cout, B * OH * OW);
    } finally {
      for (const p of ptrs) this.free(p);
    }
  }

  private check(s: WinogradConvShape): void {
    if (!winogradEligible(s) || s.top < 0 || s.left < 0)
      throw new Error(
        `WinogradConv: channels and outputs must be >= 1 and the padding >= 0, got Cin ${s.Cin}, Cout ${s.Cout}, ${s.OH} x ${s.OW} (padding ${s.top}, ${s.left})`,
      );
  }

  /** A 16-byte aligned block of `floats` floats, its malloc pointer recorded in ptrs. */
  private alloc(ptrs: number[], floats: number): number {
    const p = this.malloc(4 * floats + 16);
    ptrs.push(p);
    return (p + 15) & ~15;
  }

  /** Whole vectors of channels: s.Cin and s.Cout multiples of 4; x has srcCin <= s.Cin channels a pixel. */
  private convWhole(g: SimdGemm, s: WinogradConvShape, xPtr: number, srcCin: number, wPtr: number, yPtr: number): void {
    const { Cin, Cout, OH, OW } = s;
    const gm = geometry(s, winogradTile(s));
    const { m, E, TH, TW, tiles, nt, xpFloats, planeIn, planeOut } = gm;
    const ptrs: number[] = [];
    const alloc = (floats: number) => {
      const p = this.malloc(4 * floats + 16);
      ptrs.push(p);
      return (p + 15) & ~15;
    };
    try {
      const xp = alloc(xpFloats);
      const U = alloc(E * Cin * Cout);
      const V = alloc(E * planeIn);
      const Mb = alloc(E * planeOut);
      const heap = new Float32Array(this.memory.buffer); // after the mallocs, which may grow the heap
      padInput(heap, s, gm, xPtr, xp, srcCin);
      (m === 4 ? winogradFilter4 : winogradFilter)(
        heap.subarray(wPtr >>> 2, (wPtr >>> 2) + 9 * Cin * Cout),
        Cin,
        Cout,
        heap.subarray(U >>> 2, (U >>> 2) + E * Cin * Cout),
      );
      const pixOut = 4 * Cout;
      const rowOut = OW * pixOut;
      for (let t0 = 0; t0 < tiles; t0 += nt) {
        const n = Math.min(nt, tiles - t0);
        const b = Math.floor(t0 / (TH * TW));
        const ty = Math.floor((t0 % (TH * TW)) / TW);
        const tx = t0 % TW;
        this.inTransform(s, gm, xp, t0, n, V);
        for (let e = 0; e < E; e++)
          g.gemm(
            n,
            Cout,
            Cin,
            { ptr: V + 4 * e * planeIn, rs: Cin, cs: 1 },
            { ptr: U + 4 * e * Cin * Cout, rs: Cout, cs: 1 },
            Mb + 4 * e * planeOut,
            Cout,
          );
        (m === 4 ? this.x.outTransform4 : this.x.outTransform)(
          Mb,
          4 * planeOut,
          pixOut,
          Cout / 4,
          n,
          yPtr + (b * OH + m * ty) * rowOut + m * tx * pixOut,
          rowOut,
          TW,
          TH,
          tx,
          ty,
          OH,
          OW,
          m * rowOut - m * TW * pixOut,
          (OH - m * TH) * rowOut,
        );
      }
    } finally {
      for (const p of ptrs) this.free(p);
    }
  }
}
