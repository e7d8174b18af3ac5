/**
 * A minimal WebAssembly binary assembler (WebAssembly Core Specification 2.0, section 5 "Binary
 * Format", plus the fixed-width SIMD proposal merged into 2.0), enough to write the SIMD kernels of
 * simd_gemm.ts in folded (S-expression) style without a build step or a text-format toolchain.
 *
 * Every instruction helper returns its bytes with its operands' bytes first, so `i32.add(a, b)`
 * reads like the folded text form `(i32.add a b)`.
 */

export type Code = number[];
export type ValType = 'i32' | 'f32' | 'v128';

const VALTYPE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };

export function uleb(n: number): Code {
  const out: Code = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export function sleb(n: number): Code {
  const out: Code = [];
  let v = n | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function str(s: string): Code {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

function vec(items: Code[]): Code {
  return [...uleb(items.length), ...items.flat()];
}

const cat = (...parts: Code[]): Code => parts.flat();

/** A local variable (or parameter) of the function being built. */
export interface Local {
  readonly index: number;
  readonly type: ValType;
}

/** Memory access immediates: alignment as log2 bytes, byte offset. */
const memarg = (align: number, offset: number): Code => [...uleb(align), ...uleb(offset)];

const simd = (op: number, ...imm: Code[]): Code => [0xfd, ...uleb(op), ...imm.flat()];

export const get = (l: Local): Code => [0x20, ...uleb(l.index)];
export const set = (l: Local, v: Code): Code => [...v, 0x21, ...uleb(l.index)];
export const tee = (l: Local, v: Code): Code => [...v, 0x22, ...uleb(l.index)];

export const i32 = {
  const: (n: number): Code => [0x41, ...sleb(n)],
  load: (addr: Code, offset = 0): Code => [...addr, 0x28, ...memarg(2, offset)],
  store: (addr: Code, v: Code, offset = 0): Code => [...addr, ...v, 0x36, ...memarg(2, offset)],
  eqz: (a: Code): Code => [...a, 0x45],
  eq: (a: Code, b: Code): Code => [...a, ...b, 0x46],
  ne: (a: Code, b: Code): Code => [...a, ...b, 0x47],
  lt_u: (a: Code, b: Code): Code => [...a, ...b, 0x49],
  gt_u: (a: Code, b: Code): Code => [...a, ...b, 0x4b],
  le_u: (a: Code, b: Code): Code => [...a, ...b, 0x4d],
  ge_s: (a: Code, b: Code): Code => [...a, ...b, 0x4e],
  ge_u: (a: Code, b: Code): Code => [...a, ...b, 0x4f],
  add: (a: Code, b: Code): Code => [...a, ...b, 0x6a],
  sub: (a: Code, b: Code): Code => [...a, ...b, 0x6b],
  mul: (a: Code, b: Code): Code => [...a, ...b, 0x6c],
  div_u: (a: Code, b: Code): Code => [...a, ...b, 0x6e],
  and: (a: Code, b: Code): Code => [...a, ...b, 0x71],
  or: (a: Code, b: Code): Code => [...a, ...b, 0x72],
  shl: (a: Code, b: Code): Code => [...a, ...b, 0x74],
  shr_u: (a: Code, b: Code): Code => [...a, ...b, 0x76],
};

export const f32 = {
  const: (x: number): Code => {
    const b = new Uint8Array(new Float32Array([x]).buffer);
    return [0x43, ...b];
  },
  load: (addr: Code, offset = 0): Code => [...addr, 0x2a, ...memarg(2, offset)],
  store: (addr: Code, v: Code, offset = 0): Code => [...addr, ...v, 0x38, ...memarg(2, offset)],
  add: (a: Code, b: Code): Code => [...a, ...b, 0x92],
  sub: (a: Code, b: Code): Code => [...a, ...b, 0x93],
  mul: (a: Code, b: Code): Code => [...a, ...b, 0x94],
  div: (a: Code, b: Code): Code => [...a, ...b, 0x95],
  sqrt: (a: Code): Code => [...a, 0x91],
  neg: (a: Code): Code => [...a, 0x8c],
  /** i32 read as unsigned, to the nearest f32. */
  convert_i32_u: (a: Code): Code => [...a, 0xb3],
};

export const v128 = {
  load: (addr: Code, offset = 0): Code => [...addr, ...simd(0x00, memarg(0, offset))],
  load32_splat: (addr: Code, offset = 0): Code => [...addr, ...simd(0x09, memarg(2, offset))],
  store: (addr: Code, v: Code, offset = 0): Code => [...addr, ...v, ...simd(0x0b, memarg(0, offset))],
  zero: (): Code => simd(0x0c, new Array(16).fill(0)),
};

const un =
  (op: number) =>
  (a: Code): Code => [...a, ...simd(op)];
const bin =
  (op: number) =>
  (a: Code, b: Code): Code => [...a, ...b, ...simd(op)];

export const f32x4 = {
  splat: (x: Code): Code => [...x, ...simd(0x13)],
  extract_lane: (v: Code, lane: number): Code => [...v, ...simd(0x1f, [lane])],
  lt: bin(0x43),
  gt: bin(0x44),
  abs: un(0xe0),
  neg: un(0xe1),
  sqrt: un(0xe3),
  nearest: un(0x6a),
  add: bin(0xe4),
  sub: bin(0xe5),
  mul: bin(0xe6),
  div: bin(0xe7),
  min: bin(0xe8),
  max: bin(0xe9),
  /** b < a ? b : a (minps; NaN in a passes through) */
  pmin: bin(0xea),
  /** a < b ? b : a (maxps; NaN in a passes through) */
  pmax: bin(0xeb),
  convert_i32x4_s: un(0xfa),
  /** [f32(a0), f32(a1), 0, 0] from a f64x2 (round to nearest). */
  demote_f64x2_zero: un(0x5e),
};

export const f64x2 = {
  add: bin(0xf0),
  sub: bin(0xf1),
  mul: bin(0xf2),
  /** [f64(a0), f64(a1)] from the low two lanes of an f32x4 (exact). */
  promote_low_f32x4: un(0x5f),
};

export const i8x16 = {
  /** Bytes of the 32-byte concatenation a ++ b at the 16 given indices (each < 32). */
  shuffle: (a: Code, b: Code, lanes: number[]): Code => {
    if (lanes.length !== 16 || lanes.some((l) => l < 0 || l > 31))
      throw new Error(`i8x16.shuffle: 16 lane indices in [0, 31], got [${lanes}]`);
    return [...a, ...b, ...simd(0x0d, lanes)];
  },
};

/** Relaxed SIMD (WebAssembly 3.0): a * b + c, fused or not at the engine's choice. */
export const relaxed = {
  f32x4_madd: (a: Code, b: Code, c: Code): Code => [...a, ...b, ...c, ...simd(0x105)],
};

export const i32x4 = {
  splat: (x: Code): Code => [...x, ...simd(0x11)],
  trunc_sat_f32x4_s: un(0xf8),
  shl: (a: Code, n: Code): Code => [...a, ...n, ...simd(0xab)],
  /** Arithmetic (sign-filling) shift right of each lane. */
  shr_s: (a: Code, n: Code): Code => [...a, ...n, ...simd(0xac)],
  shr_u: (a: Code, n: Code): Code => [...a, ...n, ...simd(0xad)],
  add: bin(0xae),
  sub: bin(0xb1),
  /** Low 32 bits of each lane's product (Math.imul per lane). */
  mul: bin(0xb5),
  /** All ones in each lane where a >= b as unsigned integers. */
  ge_u: bin(0x40),
  /** All ones in each lane where a >= b as signed integers. */
  ge_s: bin(0x3f),
};

export const v128ops = {
  and: bin(0x4e),
  or: bin(0x50),
  xor: bin(0x51),
  /** Bits of a where mask is 1, of b where it is 0. */
  bitselect: (a: Code, b: Code, mask: Code): Code => [...a, ...b, ...mask, ...simd(0x52)],
  /** A v128 with the same f32 in every lane. */
  f32: (x: number): Code => {
    const b = new Uint8Array(new Float32Array([x, x, x, x]).buffer);
    return simd(0x0c, [...b]);
  },
  i32: (x: number): Code => {
    const b = new Uint8Array(new Int32Array([x, x, x, x]).buffer);
    return simd(0x0c, [...b]);
  },
  /** A v128 of four given i32 lanes. */
  i32x4: (lanes: [number, number, number, number]): Code => simd(0x0c, [...new Uint8Array(new Int32Array(lanes).buffer)]),
};

const EMPTY_BLOCK = 0x40;
/** Structured control: `loop` (branch target = its start) and `block` (target = its end). */
export const loop = (...body: Code[]): Code => [0x03, EMPTY_BLOCK, ...body.flat(), 0x0b];
export const block = (...body: Code[]): Code => [0x02, EMPTY_BLOCK, ...body.flat(), 0x0b];
export const if_ = (cond: Code, then: Code[], else_: Code[] = []): Code => [
  ...cond,
  0x04,
  EMPTY_BLOCK,
  ...then.flat(),
  ...(else_.length ? [0x05, ...else_.flat()] : []),
  0x0b,
];
/** Branch to the `depth`-th enclosing label (0 = innermost). */
export const br = (depth: number): Code => [0x0c, ...uleb(depth)];
export const br_if = (depth: number, cond: Code): Code => [...cond, 0x0d, ...uleb(depth)];
/** Call the function at `index` in the module's function list (no imported functions precede it). */
export const call = (index: number, ...args: Code[]): Code => [...args.flat(), 0x10, ...uleb(index)];
export const seq = (...parts: Code[]): Code => cat(...parts);
/** `cond ? a : b` (both operands evaluated). */
export const select = (a: Code, b: Code, cond: Code): Code => [...a, ...b, ...cond, 0x1b];

/** `while (cond) { body }` as block/loop. */
export const whileLoop = (cond: Code, ...body: Code[]): Code => block(loop(br_if(1, i32.eqz(cond)), ...body, br(0)));
/** l += by (i32). */
export const inc = (l: Local, by: Code): Code => set(l, i32.add(get(l), by));

/** Builds one exported function: parameters first, then locals, then the body. */
export class FuncBuilder {
  readonly params: Local[] = [];
  private readonly locals: Local[] = [];
  private next = 0;
  body: Code = [];

  constructor(
    readonly name: string,
    paramTypes: ValType[],
  ) {
    for (const t of paramTypes) this.params.push({ index: this.next++, type: t });
  }

  local(type: ValType): Local {
    const l = { index: this.next++, type };
    this.locals.push(l);
    return l;
  }

  typeBytes(): Code {
    return [0x60, ...vec(this.params.map((p) => [VALTYPE[p.type]])), ...vec([])];
  }

  codeBytes(): Code {
    const decls = vec(this.locals.map((l) => [...uleb(1), VALTYPE[l.type]]));
    const fn = [...decls, ...this.body, 0x0b];
    return [...uleb(fn.length), ...fn];
  }
}

function section(id: number, content: Code): Code {
  return [id, ...uleb(content.length), ...content];
}

/**
 * A module that imports its memory as `env.memory` (so it runs on another module's heap, or on a
 * shared memory with `sharedMemory`) and exports the given functions (all `void`).
 */
export function assembleModule(funcs: FuncBuilder[], opts: { sharedMemory?: boolean } = {}): Uint8Array {
  const types = section(1, vec(funcs.map((f) => f.typeBytes())));
  // limits: 0x00 min (any non-shared memory), or 0x03 min max for a shared memory (which must declare a maximum)
  const limits = opts.sharedMemory ? [0x03, ...uleb(1), ...uleb(65536)] : [0x00, ...uleb(1)];
  const imports = section(2, vec([[...str('env'), ...str('memory'), 0x02, ...limits]]));
  const functions = section(3, vec(funcs.map((_, i) => uleb(i))));
  const exports = section(7, vec(funcs.map((f, i) => [...str(f.name), 0x00, ...uleb(i)])));
  const code = section(10, vec(funcs.map((f) => f.codeBytes())));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...functions, ...exports, ...code]);
}
