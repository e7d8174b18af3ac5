/**
 * The minimal WebAssembly assembler (src/backend/kernels/wasm_asm.ts): LEB128 encodings against the
 * worked examples of the DWARF 4 specification (section 7.6, also used in the WebAssembly binary
 * format) and hand-computed values, and a small assembled module run on its imported memory.
 */
import { describe, expect, it } from 'vitest';
import { WasmJs } from '../../src/backend/kernels/simd_gemm.js';
import {
  assembleModule,
  br_if,
  FuncBuilder,
  f32,
  f32x4,
  get,
  i32,
  type Local,
  loop,
  seq,
  set,
  sleb,
  tee,
  uleb,
  v128,
} from '../../src/backend/kernels/wasm_asm.js';

describe('wasm_asm', () => {
  it('encodes unsigned and signed LEB128', () => {
    expect(uleb(0)).toEqual([0x00]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(0)).toEqual([0x00]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-65)).toEqual([0xbf, 0x7f]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
  });

  it('assembles a module whose scalar and SIMD code runs on the imported memory', () => {
    // axpy(n, a, x, y): y[i] += a x[i] over n (a multiple of 4) floats with f32x4, then y[n] = -a / 2.
    const f = new FuncBuilder('axpy', ['i32', 'f32', 'i32', 'i32']);
    const [n, a, x, y] = f.params as [Local, Local, Local, Local];
    const av = f.local('v128');
    f.body = seq(
      set(av, f32x4.splat(get(a))),
      loop(
        v128.store(get(y), f32x4.add(v128.load(get(y)), f32x4.mul(get(av), v128.load(get(x))))),
        set(x, i32.add(get(x), i32.const(16))),
        set(y, i32.add(get(y), i32.const(16))),
        br_if(0, tee(n, i32.sub(get(n), i32.const(4)))),
      ),
      f32.store(get(y), f32.mul(get(a), f32.const(-0.5))),
    );
    const memory = new WasmJs.Memory({ initial: 1 });
    const inst = new WasmJs.Instance(new WasmJs.Module(assembleModule([f])), { env: { memory } });
    const h = new Float32Array(memory.buffer);
    for (let i = 0; i < 8; i++) {
      h[i] = i;
      h[16 + i] = 100 * i;
    }
    (inst.exports as { axpy(n: number, a: number, x: number, y: number): void }).axpy(8, 2, 0, 64);
    expect(Array.from(h.slice(16, 25))).toEqual([0, 102, 204, 306, 408, 510, 612, 714, -1]);
  });

  it('rejects malformed code at compile time', () => {
    const f = new FuncBuilder('bad', []);
    f.body = i32.add(i32.const(1), f32.const(2));
    expect(() => new WasmJs.Module(assembleModule([f]))).toThrow();
  });
});
