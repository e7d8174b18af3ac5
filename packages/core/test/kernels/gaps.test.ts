/**
 * The kernels core adds to the wasm backend (src/backend/kernels/wasm_gaps.ts) against the cpu
 * backend: UnsortedSegmentSum (gather's gradient), Conv2DBackpropFilter (conv2d's weight gradient),
 * Conv2DBackpropInput (conv2d's input gradient; replaces the stock direct loop: GEMM + col2im)
 * and DepthwiseConv2dNativeBackpropFilter / Input (depthwiseConv2d's gradients), through tf.grads
 * and as raw kernels, on random inputs with odd sizes, strides, and 'same' / 'valid' / numeric /
 * explicit padding; dilated taps against a naive host convolution.
 *
 * Tolerance: norm-wise relative error 1e-5 (filter gradients sum B * OH * OW float32 products; the
 * cpu kernels accumulate in float64).
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  nativeBlasInfo,
  replacedKernels,
  setNativeBlasEnabled,
  setNativeBlasThreads,
  setNativeConvEnabled,
  setNativeConvThreads,
} from '../../src/backend/kernels/index.js';
import { NATIVE_GEMM_THREAD_MIN, nativeBlas, nativeConv } from '../../src/backend/kernels/native_blas.js';
import { setConvFilterGradVariant, setConvForwardVariant } from '../../src/backend/kernels/wasm_gaps.js';
import { tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { on, randn, relErr, size } from './helpers.js';

const TOL = 1e-5;
afterAll(async () => useBackend('cpu'));

/**
 * Whether this machine's OpenBLAS gives a row of a GEMM the same bits however the GEMM is split: on
 * 2 threads as on 1 ([96, 256] x [256, 300], OpenBLAS deciding the threads), and the first 40 rows
 * alone as within the whole (the native convolution's thread split hands OpenBLAS such row blocks).
 * True with the Intel machines' OpenBLAS; not with OpenBLAS 0.3.21 on a Zen 4 EPYC (2026-12-08).
 * Needs the wasm backend active and the addon built.
 */
function openBlasSplitsKeepBits(): boolean {
  const blas = nativeBlas();
  if (!blas?.setGemmThreadMin) return true;
  const bitsOf = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).buffer));
  const run = (rows: number) =>
    tf.tidy(() => {
      const a = tf.tensor2d(randn(91, 96 * 256), [96, 256]).slice([0, 0], [rows, 256]);
      const b = tf.tensor2d(randn(92, 256 * 300), [256, 300]);
      return bitsOf(tf.matMul(a, b));
    });
  try {
    blas.setGemmThreadMin(0);
    setNativeBlasThreads(1);
    const one = run(96);
    const part = run(40);
    setNativeBlasThreads(2);
    const two = run(96);
    return one.every((v, i) => v === two[i]) && part.every((v, i) => v === one[i]);
  } finally {
    setNativeBlasThreads(1);
    blas.setGemmThreadMin(NATIVE_GEMM_THREAD_MIN);
  }
}

async function both<T>(fn: () => T): Promise<[T, T]> {
  return [await on('wasm', fn), await on('cpu', fn)];
}

const arr = (t: tf.Tensor) => Float32Array.from(t.dataSync());

describe('wasm UnsortedSegmentSum', () => {
  const cases: { x: number[]; ids: number[]; idsShape: number[]; n: number }[] = [
    { x: [6, 3], ids: [0, 2, 2, 1, 0, 4], idsShape: [6], n: 5 },
    { x: [2, 3, 4], ids: [1, 0, 1, 3, 3, 1], idsShape: [2, 3], n: 4 }, // ids of rank 2
    { x: [5, 2], ids: [0, -1, 7, 2, 2], idsShape: [5], n: 3 }, // negative and out-of-range ids are dropped
    { x: [4], ids: [3, 3, 0, 1], idsShape: [4], n: 6 },
  ];
  for (const c of cases) {
    it(`x [${c.x}] ids [${c.ids}] numSegments ${c.n}`, async () => {
      const x = randn(size(c.x), size(c.x));
      const w = await on('wasm', () =>
        tf.tidy(() => {
          const ids: tf.Tensor = tf.tensor(c.ids, c.idsShape, 'int32');
          const y = tf.unsortedSegmentSum(tf.tensor(x, c.x), ids as tf.Tensor1D, c.n);
          return [arr(y), y.shape] as const;
        }),
      );
      // TensorFlow semantics for ids of rank r: the first r axes of x are one segment axis. The cpu
      // kernel only takes rank-1 ids, so it gets the flattened equivalent.
      const inner = c.x.slice(c.idsShape.length);
      const cpu = await on('cpu', () =>
        tf.tidy(() => {
          const y = tf.unsortedSegmentSum(tf.tensor(x, [c.ids.length, ...inner]), tf.tensor1d(c.ids, 'int32'), c.n);
          return [arr(y), y.shape] as const;
        }),
      );
      expect(w[1]).toEqual(cpu[1]);
      expect(relErr(w[0], cpu[0])).toBeLessThanOrEqual(TOL);
    });
  }

  it('is the gradient of gather (an embedding lookup with repeated ids)', async () => {
    const table = randn(1, 7 * 5);
    const ids = [3, 1, 3, 0, 6, 6, 6, 2];
    const up = randn(2, 8 * 5);
    const [w, c] = await both(() =>
      tf.tidy(() =>
        arr(
          tf.grad((t: tf.Tensor) =>
            tf
              .gather(t, tf.tensor2d(ids, [2, 4], 'int32'))
              .mul(tf.tensor(up, [2, 4, 5]))
              .sum(),
          )(tf.tensor(table, [7, 5])),
        ),
      ),
    );
    expect(relErr(w, c)).toBeLessThanOrEqual(TOL);
  });

  it('rejects ids whose shape is not a prefix of x', async () => {
    await useBackend('wasm');
    const k = tf.getKernel('UnsortedSegmentSum', 'wasm')!;
    const x = tf.ones([3, 2]);
    const ids = tf.tensor1d([0, 1], 'int32');
    expect(() => k.kernelFunc({ inputs: { x, segmentIds: ids }, backend: tf.backend(), attrs: { numSegments: 2 } } as never)).toThrow(
      /segmentIds shape \[2\] must be a prefix of x shape \[3,2\]/,
    );
    tf.dispose([x, ids]);
  });
});

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

describe('wasm Conv2DBackpropFilter', () => {
  const cases: { x: number[]; f: number[]; strides: [number, number]; pad: Pad; round?: 'floor' | 'ceil' | 'round' }[] = [
    { x: [2, 7, 5, 3], f: [3, 2, 3, 4], strides: [1, 1], pad: 'same' },
    { x: [2, 7, 5, 3], f: [3, 2, 3, 4], strides: [2, 1], pad: 'valid' },
    { x: [1, 9, 8, 2], f: [3, 3, 2, 5], strides: [2, 2], pad: 'same' },
    {
      x: [3, 6, 7, 1],
      f: [2, 3, 1, 3],
      strides: [1, 2],
      pad: [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    },
    { x: [2, 5, 5, 4], f: [3, 3, 4, 2], strides: [2, 2], pad: 1, round: 'floor' },
    { x: [1, 4, 6, 3], f: [1, 1, 3, 7], strides: [1, 1], pad: 'valid' },
    // 20 images of 2.0 MB im2col each: the 32 MB column buffer splits the batch into two GEMM chunks
    // (a stride of 2: stride 1 takes the shifted-GEMM path below, which has no column buffer)
    { x: [20, 24, 44, 96], f: [3, 3, 96, 1], strides: [2, 1], pad: 'same' },
    // stride 1, dilation 1 (the shifted-GEMM weight gradient): the 32 px tokenizer's 3x3 conv, a
    // large one, a 5x5, 'valid', and asymmetric explicit padding
    { x: [2, 32, 32, 32], f: [3, 3, 32, 32], strides: [1, 1], pad: 'same' },
    { x: [20, 24, 24, 96], f: [3, 3, 96, 1], strides: [1, 1], pad: 'same' },
    { x: [2, 9, 7, 3], f: [5, 5, 3, 4], strides: [1, 1], pad: 'same' },
    { x: [2, 8, 9, 5], f: [3, 2, 5, 3], strides: [1, 1], pad: 'valid' },
    {
      x: [3, 6, 5, 2],
      f: [2, 3, 2, 3],
      strides: [1, 1],
      pad: [
        [0, 0],
        [2, 0],
        [0, 3],
        [0, 0],
      ],
    }, // 3x3 stride 1 with channels in whole vectors of 4 (the forward's Winograd path): odd sizes,
    // 'valid', asymmetric explicit padding, an image smaller than a tile
    { x: [2, 7, 5, 4], f: [3, 3, 4, 8], strides: [1, 1], pad: 'same' },
    { x: [3, 9, 6, 8], f: [3, 3, 8, 4], strides: [1, 1], pad: 'valid' },
    {
      x: [2, 6, 7, 4],
      f: [3, 3, 4, 12],
      strides: [1, 1],
      pad: [
        [0, 0],
        [2, 0],
        [0, 1],
        [0, 0],
      ],
    },
    { x: [3, 1, 2, 4], f: [3, 3, 4, 4], strides: [1, 1], pad: 'same' },
  ];
  it("core's Conv2DBackpropInput replaces the stock one on wasm (the gradients below go through it)", async () => {
    await on('wasm', () => null);
    expect(replacedKernels('wasm')).toContain('Conv2DBackpropInput');
  });

  /** [y, dL/dx, dL/dW] of L = sum(conv2d(x, f) * up), up ~ N(0, 1) from `upSeed`, on the current backend. */
  const convAndGrads = (c: (typeof cases)[number], x: Float32Array, f: Float32Array, upSeed: number) =>
    tf.tidy(() => {
      const conv = (a: tf.Tensor, b: tf.Tensor) =>
        tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad as 'same', 'NHWC', 1, c.round);
      const tx = tf.tensor(x, c.x);
      const tw = tf.tensor(f, c.f);
      const y = conv(tx, tw);
      const up = tf.tensor(randn(upSeed, y.size), y.shape);
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).mul(up).sum())([tx, tw]);
      return [arr(y), arr(gx as tf.Tensor), arr(gw as tf.Tensor)];
    });

  for (const c of cases) {
    it(`conv2d x [${c.x}] filter [${c.f}] strides [${c.strides}] pad ${JSON.stringify(c.pad)}: output and gradients match cpu`, async () => {
      const x = randn(size(c.x), size(c.x));
      const f = randn(size(c.f) + 1, size(c.f));
      const [w, cpu] = await both(() => convAndGrads(c, x, f, 7));
      for (let i = 0; i < 3; i++) expect(relErr(w[i] as Float32Array, cpu[i] as Float32Array)).toBeLessThanOrEqual(TOL);
    });
  }

  // the filter gradient without the native GEMM: above it ran as chosen ('auto': Winograd's for a 3x3
  // with channels in fours, the per-tap shifted GEMMs for the other stride-1 cases)
  for (const variant of ['shifted', 'winograd'] as const)
    it(`Conv2DBackpropFilter, variant ${variant} forced (Winograd: where it applies), matches cpu in every case above`, async () => {
      const wasNative = setNativeBlasEnabled(false);
      const was = setConvFilterGradVariant(variant);
      try {
        for (const c of cases) {
          const x = randn(size(c.x) + 5, size(c.x));
          const f = randn(size(c.f) + 6, size(c.f));
          const [w, cpu] = await both(() => convAndGrads(c, x, f, 9));
          expect(relErr(w[2] as Float32Array, cpu[2] as Float32Array), `x [${c.x}] f [${c.f}]`).toBeLessThanOrEqual(TOL);
        }
      } finally {
        setConvFilterGradVariant(was);
        setNativeBlasEnabled(wasNative);
      }
    });
  it("the filter gradient's 'auto' is Winograd's from 16 channels each side and 8,192 tiles x channels, the per-tap GEMMs below", async () => {
    await useBackend('wasm');
    const wasNative = setNativeBlasEnabled(false);
    const run = (xs: [number, number, number, number], cout: number, v: 'auto' | 'shifted' | 'winograd') => {
      const was = setConvFilterGradVariant(v);
      try {
        return tf.tidy(() => {
          const x = tf.tensor(randn(71, size(xs)), xs);
          const dy = tf.tensor(randn(72, xs[0] * xs[1] * xs[2] * cout), [xs[0], xs[1], xs[2], cout]);
          const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, xs[3], cout] };
          return Array.from(
            new Uint32Array(arr(tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs as never) as tf.Tensor).buffer),
          );
        });
      } finally {
        setConvFilterGradVariant(was);
      }
    };
    try {
      expect(run([2, 6, 5, 32], 32, 'auto')).toEqual(run([2, 6, 5, 32], 32, 'winograd'));
      expect(run([2, 6, 5, 32], 32, 'auto')).not.toEqual(run([2, 6, 5, 32], 32, 'shifted'));
      expect(run([2, 6, 5, 16], 16, 'auto')).toEqual(run([2, 6, 5, 16], 16, 'shifted')); // 18 tiles x 256 < 8,192
      expect(run([2, 6, 5, 16], 16, 'winograd')).not.toEqual(run([2, 6, 5, 16], 16, 'shifted'));
      expect(run([4, 8, 8, 16], 16, 'auto')).toEqual(run([4, 8, 8, 16], 16, 'winograd')); // 64 tiles x 256
      expect(run([4, 8, 8, 8], 8, 'auto')).toEqual(run([4, 8, 8, 8], 8, 'shifted'));
      expect(run([4, 8, 8, 8], 8, 'winograd')).not.toEqual(run([4, 8, 8, 8], 8, 'shifted'));
    } finally {
      setNativeBlasEnabled(wasNative);
    }
  });
  it('setConvFilterGradVariant names an unknown variant', () => {
    expect(() => setConvFilterGradVariant('direct' as never)).toThrow(/unknown variant "direct"/);
  });

  // the forward Conv2D (core's GEMM kernel on wasm, wasm_gaps.ts conv2DForwardGemm) in each of its
  // variants: above it ran as chosen ('auto': the shifted GEMMs at stride 1 on the native GEMM, else
  // Winograd F(2x2, 3x3) where it applies and XNNPACK otherwise)
  it("core's Conv2D replaces the stock one on wasm", async () => {
    await on('wasm', () => null);
    expect(replacedKernels('wasm')).toContain('Conv2D');
  });
  for (const variant of ['shifted', 'winograd', 'stock'] as const)
    it(`conv2d forward, variant ${variant} forced, matches cpu in every case above`, async () => {
      const was = setConvForwardVariant(variant);
      try {
        for (const c of cases) {
          const x = randn(size(c.x) + 3, size(c.x));
          const f = randn(size(c.f) + 4, size(c.f));
          const [w, cpu] = await both(() =>
            tf.tidy(() => {
              const tx: tf.Tensor = tf.tensor(x, c.x);
              const tw: tf.Tensor = tf.tensor(f, c.f);
              const y = tf.conv2d(tx as tf.Tensor4D, tw as tf.Tensor4D, c.strides, c.pad as 'same', 'NHWC', 1, c.round);
              return [arr(y), y.shape.join()] as const;
            }),
          );
          expect(w[1]).toEqual(cpu[1]);
          expect(relErr(w[0], cpu[0]), `x [${c.x}] f [${c.f}]`).toBeLessThanOrEqual(TOL);
        }
      } finally {
        setConvForwardVariant(was);
      }
    });

  it("'auto' is Winograd (3x3, stride 1, where winogradPays: >= 16 channels each side and enough tiles, or RGB layers of >= 4,096 output pixels) or else the stock kernel on the SIMD GEMM, and the shifted GEMMs on the native one (stride 1)", async () => {
    await useBackend('wasm');
    const xs: [number, number, number, number] = [2, 9, 7, 5];
    const fs: [number, number, number, number] = [3, 3, 5, 6];
    const x = randn(61, size(xs));
    const f = randn(62, size(fs));
    const run = (v: 'auto' | 'shifted' | 'winograd' | 'stock', strides: 1 | 2) => {
      const was = setConvForwardVariant(v);
      try {
        return tf.tidy(() => arr(tf.conv2d(tf.tensor(x, xs) as tf.Tensor4D, tf.tensor(f, fs) as tf.Tensor4D, strides, 'same')));
      } finally {
        setConvForwardVariant(was);
      }
    };
    const runOn = (
      xs2: [number, number, number, number],
      fs2: [number, number, number, number],
      v: 'auto' | 'winograd' | 'stock',
      strides: 1 | 2 = 1,
    ) => {
      const was = setConvForwardVariant(v);
      try {
        return tf.tidy(() =>
          arr(
            tf.conv2d(
              tf.tensor(randn(63, size(xs2)), xs2) as tf.Tensor4D,
              tf.tensor(randn(64, size(fs2)), fs2) as tf.Tensor4D,
              strides,
              'same',
            ),
          ),
        );
      } finally {
        setConvForwardVariant(was);
      }
    };
    const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer));
    const nativeWas = setNativeBlasEnabled(false);
    try {
      // 5 -> 6 channels on 2 small images: Winograd would take them zero-padded to 8 (forced) but does
      // not pay, so 'auto' keeps XNNPACK's
      expect(bits(run('auto', 1))).toEqual(bits(run('stock', 1)));
      expect(bits(run('auto', 1))).not.toEqual(bits(run('shifted', 1))); // the two orders differ in the last bits
      expect(bits(run('winograd', 1))).not.toEqual(bits(run('stock', 1))); // forced, it takes them
      // an RGB layer of 16 images of 16 x 16 (3 -> 16 channels): Winograd's in 'auto' (winogradPays's narrow rule)
      expect(bits(runOn([16, 16, 16, 3], [3, 3, 3, 16], 'auto'))).toEqual(bits(runOn([16, 16, 16, 3], [3, 3, 3, 16], 'winograd')));
      expect(bits(runOn([16, 16, 16, 3], [3, 3, 3, 16], 'auto'))).not.toEqual(bits(runOn([16, 16, 16, 3], [3, 3, 3, 16], 'stock')));
      expect(bits(runOn([2, 16, 16, 3], [3, 3, 3, 16], 'auto'))).toEqual(bits(runOn([2, 16, 16, 3], [3, 3, 3, 16], 'stock'))); // 2 images: not
      // 3x3, 32 -> 36 channels: Winograd's, whose sums differ from XNNPACK's in the last bits
      expect(bits(runOn([2, 9, 7, 32], [3, 3, 32, 36], 'auto'))).toEqual(bits(runOn([2, 9, 7, 32], [3, 3, 32, 36], 'winograd')));
      expect(bits(runOn([2, 9, 7, 32], [3, 3, 32, 36], 'auto'))).not.toEqual(bits(runOn([2, 9, 7, 32], [3, 3, 32, 36], 'stock')));
      // 8 -> 12 channels: Winograd applies (forced) but does not pay, so 'auto' keeps XNNPACK's
      expect(bits(runOn([2, 9, 7, 8], [3, 3, 8, 12], 'auto'))).toEqual(bits(runOn([2, 9, 7, 8], [3, 3, 8, 12], 'stock')));
      expect(bits(runOn([2, 9, 7, 8], [3, 3, 8, 12], 'winograd'))).not.toEqual(bits(runOn([2, 9, 7, 8], [3, 3, 8, 12], 'stock')));
      // a 5x5 or a stride of 2 with 32 channels: XNNPACK's
      expect(bits(runOn([2, 9, 7, 32], [5, 5, 32, 36], 'auto'))).toEqual(bits(runOn([2, 9, 7, 32], [5, 5, 32, 36], 'stock')));
      expect(bits(runOn([2, 9, 7, 32], [3, 3, 32, 36], 'auto', 2))).toEqual(bits(runOn([2, 9, 7, 32], [3, 3, 32, 36], 'stock', 2)));
    } finally {
      setNativeBlasEnabled(nativeWas);
    }
    if (nativeBlasInfo().available && nativeWas) {
      const convWas = setNativeConvEnabled(false);
      try {
        expect(bits(run('auto', 1))).toEqual(bits(run('shifted', 1)));
        expect(bits(run('auto', 2))).toEqual(bits(run('stock', 2)));
      } finally {
        setNativeConvEnabled(convWas);
      }
    }
  });

  // The addon's conv2d (im2col + cblas_sgemm in C, wasm_gaps.ts runNativeConv): forward and both
  // gradients at every stride and padding above, against cpu, and proof that it ran (its float32
  // order differs from the GEMM paths'). Needs the addon built with conv2d.
  const hasNativeConv = (() => {
    const nb = nativeBlas();
    return nb !== null && typeof nb.conv2d === 'function';
  })();
  it.skipIf(!hasNativeConv)(
    'native conv2d (OpenBLAS addon; skipped when it is not built): forward, input and filter gradients match cpu in every case above',
    async () => {
      const was = setNativeConvEnabled(true);
      try {
        for (const c of cases) {
          const x = randn(size(c.x) + 11, size(c.x));
          const f = randn(size(c.f) + 12, size(c.f));
          const [w, cpu] = await both(() => convAndGrads(c, x, f, 13));
          for (let i = 0; i < 3; i++)
            expect(relErr(w[i] as Float32Array, cpu[i] as Float32Array), `x [${c.x}] f [${c.f}] output ${i}`).toBeLessThanOrEqual(TOL);
        }
      } finally {
        setNativeConvEnabled(was);
      }
    },
  );

  it.skipIf(!hasNativeConv)(
    'native conv2d runs when on (its sums differ in the last bits from the GEMM path) and not when off',
    async () => {
      await useBackend('wasm');
      const xs: [number, number, number, number] = [2, 8, 8, 32];
      const fs: [number, number, number, number] = [3, 3, 32, 32];
      const x = randn(71, size(xs));
      const f = randn(72, size(fs));
      const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer));
      const run = (on: boolean) => {
        const was = setNativeConvEnabled(on);
        try {
          return tf.tidy(() => {
            const tx = tf.tensor(x, xs);
            const tw = tf.tensor(f, fs);
            const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
              tf
                .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')
                .square()
                .sum(),
            )([tx, tw]);
            return [tf.conv2d(tx as tf.Tensor4D, tw as tf.Tensor4D, 1, 'same'), gx as tf.Tensor, gw as tf.Tensor].map((t) => bits(arr(t)));
          });
        } finally {
          setNativeConvEnabled(was);
        }
      };
      const [onY, onGx, onGw] = run(true);
      const [offY, offGx, offGw] = run(false);
      expect(nativeConv()).not.toBeNull();
      expect(onY).not.toEqual(offY);
      expect(onGx).not.toEqual(offGx);
      expect(onGw).not.toEqual(offGw);
      expect(run(true)).toEqual([onY, onGx, onGw]); // deterministic
    },
  );

  it.skipIf(!hasNativeConv)(
    "native conv2d gives the same bits whatever the thread count (OpenBLAS' threads in one convolution, or the convolution split over 1, 2, 3 and 5 threads; forward, input and filter gradients)",
    async (ctx) => {
      await useBackend('wasm');
      const shapes: (typeof cases)[number][] = [
        { x: [3, 9, 8, 32], f: [3, 3, 32, 32], strides: [1, 1], pad: 'same' }, // K = 288: the tokenizer layer, chunks across images
        { x: [2, 17, 17, 16], f: [3, 3, 16, 8], strides: [2, 2], pad: 'valid' }, // stride 2
        { x: [5, 6, 6, 7], f: [1, 1, 7, 5], strides: [1, 1], pad: 'same' }, // 1x1: one tap, the filter gradient on one thread
        { x: [4, 40, 40, 3], f: [3, 3, 3, 8], strides: [1, 1], pad: 'same' }, // 1,600 pixels an image: several chunks in each image
        { x: [2, 12, 12, 4], f: [2, 3, 4, 6], strides: [1, 1], pad: 'same' }, // 6 taps over 5 threads: a row of taps split
      ];
      const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer));
      if (!openBlasSplitsKeepBits()) {
        // the property rests on OpenBLAS: nothing of ours to check on this machine
        console.warn(
          'native conv2d thread test skipped: this OpenBLAS gives a GEMM row other bits when the GEMM is split (threads or row blocks), so the convolution cannot keep them',
        );
        ctx.skip();
        return;
      }
      for (const c of shapes) {
        const x = randn(size(c.x) + 81, size(c.x));
        const f = randn(size(c.f) + 82, size(c.f));
        const run = (blasThreads: number, convThreads: number) => {
          setNativeBlasThreads(blasThreads);
          setNativeConvThreads(convThreads, 0); // split every convolution, however small
          return convAndGrads(c, x, f, 83).map((a) => bits(a as Float32Array));
        };
        try {
          const one = run(1, 1);
          for (const [b, t] of [
            [2, 1],
            [3, 1],
            [1, 2],
            [2, 2],
            [1, 3],
            [1, 5],
          ] as const)
            expect(run(b, t), `x [${c.x}] f [${c.f}], OpenBLAS ${b} threads, convolution ${t}`).toEqual(one);
        } finally {
          setNativeBlasThreads(1); // vitest's default (native_blas.ts)
          setNativeConvThreads(0);
        }
      }
    },
  );

  it.skipIf(!hasNativeConv)('native conv2d split over threads matches cpu (forward, input and filter gradients)', async () => {
    const split: (typeof cases)[number][] = [
      { x: [3, 9, 8, 32], f: [3, 3, 32, 32], strides: [1, 1], pad: 'same' },
      { x: [2, 11, 13, 5], f: [3, 3, 5, 4], strides: [2, 2], pad: 'valid' },
      { x: [4, 40, 40, 3], f: [3, 3, 3, 8], strides: [1, 1], pad: 'same' },
    ];
    setNativeConvThreads(3, 0); // split every convolution, however small
    try {
      for (const c of split) {
        const x = randn(size(c.x) + 91, size(c.x));
        const f = randn(size(c.f) + 92, size(c.f));
        const [w, cpu] = await both(() => convAndGrads(c, x, f, 93));
        for (let i = 0; i < 3; i++)
          expect(relErr(w[i] as Float32Array, cpu[i] as Float32Array), `x [${c.x}] f [${c.f}] output ${i}`).toBeLessThanOrEqual(TOL);
      }
    } finally {
      setNativeConvThreads(0);
    }
    expect(() => setNativeConvThreads(65)).toThrow(/threads must be an integer in 0..64, got 65/);
    expect(() => setNativeConvThreads(1, -1)).toThrow(/minMultiplyAdds must be >= 0, got -1/);
    const nc = nativeConv();
    if (!nc?.setConvThreads) throw new Error('setConvThreads expected in this build');
    expect(() => nc.setConvThreads?.(-1, 0)).toThrow(/expected \(threads 0..64, minMultiplyAdds >= 0\)/);
  });

  it.skipIf(!hasNativeConv)('native conv2d rejects tensors outside the heap, bad modes and bad sizes', async () => {
    await useBackend('wasm');
    const nc = nativeConv();
    if (!nc) throw new Error('native conv2d expected');
    const heap = new ArrayBuffer(4096);
    // x [1, 4, 4, 2] at 0, w [3, 3, 2, 2] at 128, y [1, 4, 4, 2] at 512: fits
    const ok = [0, 1, 4, 4, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 0, 128, 512];
    expect(() => nc.conv2d(heap, ...(ok as Parameters<typeof nc.conv2d> extends [ArrayBuffer, ...infer R] ? R : never))).not.toThrow();
    const bad = (i: number, v: number) => {
      const a = ok.slice();
      a[i] = v;
      return () => nc.conv2d(heap, ...(a as Parameters<typeof nc.conv2d> extends [ArrayBuffer, ...infer R] ? R : never));
    };
    expect(bad(18, 4090)).toThrow(/outside the heap or is misaligned/); // y past the end
    expect(bad(16, 2)).toThrow(/outside the heap or is misaligned/); // misaligned x
    expect(bad(17, -4)).toThrow(/outside the heap or is misaligned/);
    expect(bad(0, 3)).toThrow(/mode must be 0, 1 or 2/);
    expect(bad(10, 0)).toThrow(/strides and dilations >= 1/);
    expect(bad(1, 1.5)).toThrow(/not a non-negative 32-bit integer/);
    expect(bad(4, 1e12)).toThrow(/not a non-negative 32-bit integer/);
    expect(() => (nc.conv2d as unknown as (...a: unknown[]) => void)(heap, 0, 1)).toThrow(/expected 20 arguments/);
    // strides of 2^31 - 1: every tap past the first pixel falls outside x (64-bit index arithmetic,
    // no overflow into the image): output pixel (0, 1) reads only zeros
    const y = new Float32Array(heap, 512, 2 * 2 * 2);
    y.fill(Number.NaN);
    const huge = [0, 1, 4, 4, 2, 2, 2, 2, 3, 3, 2147483647, 2147483647, 1, 1, 0, 0, 0, 128, 512];
    nc.conv2d(heap, ...(huge as Parameters<typeof nc.conv2d> extends [ArrayBuffer, ...infer R] ? R : never));
    expect(Array.from(y.subarray(2, 8))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('conv2d forward against a float64 direct convolution (3x3 same, 32 channels: the tokenizer layer)', async () => {
    const [B, H, W, C, O] = [2, 8, 8, 32, 32];
    const x = randn(51, B * H * W * C);
    const f = randn(52, 9 * C * O);
    const y = await on('wasm', () =>
      tf.tidy(() => arr(tf.conv2d(tf.tensor(x, [B, H, W, C]) as tf.Tensor4D, tf.tensor(f, [3, 3, C, O]) as tf.Tensor4D, 1, 'same'))),
    );
    const ref = new Float64Array(B * H * W * O);
    for (let b = 0; b < B; b++)
      for (let r = 0; r < H; r++)
        for (let c = 0; c < W; c++)
          for (let o = 0; o < O; o++) {
            let acc = 0;
            for (let i = 0; i < 3; i++)
              for (let j = 0; j < 3; j++) {
                const rr = r + i - 1;
                const cc = c + j - 1;
                if (rr < 0 || rr >= H || cc < 0 || cc >= W) continue;
                for (let d = 0; d < C; d++) acc += x[((b * H + rr) * W + cc) * C + d]! * f[((i * 3 + j) * C + d) * O + o]!;
              }
            ref[((b * H + r) * W + c) * O + o] = acc;
          }
    expect(relErr(y, ref)).toBeLessThanOrEqual(1e-6);
  });

  it('a dilated conv2d forward matches cpu', async () => {
    const xs: [number, number, number, number] = [2, 9, 8, 3];
    const fs: [number, number, number, number] = [3, 2, 3, 5];
    const x = randn(41, size(xs));
    const f = randn(42, size(fs));
    const [w, cpu] = await both(() =>
      tf.tidy(() => [arr(tf.conv2d(tf.tensor(x, xs) as tf.Tensor4D, tf.tensor(f, fs) as tf.Tensor4D, 1, 'same', 'NHWC', [2, 3]))]),
    );
    expect(relErr(w[0] as Float32Array, cpu[0] as Float32Array)).toBeLessThanOrEqual(TOL);
  });

  it('NCHW as a raw kernel matches cpu', async () => {
    const xs = [2, 3, 7, 6];
    const fs: [number, number, number, number] = [3, 2, 3, 4];
    const x = randn(31, size(xs));
    const attrs = { strides: [2, 1], pad: 'same', dataFormat: 'NCHW', filterShape: fs };
    const info = tf.backend_util.computeConv2DInfo(
      xs as [number, number, number, number],
      fs,
      [2, 1],
      1,
      'same',
      undefined,
      false,
      'channelsFirst',
    );
    const dy = randn(32, size(info.outShape));
    const [w, cpu] = await both(() =>
      tf.tidy(() =>
        arr(
          tf
            .engine()
            .runKernel('Conv2DBackpropFilter', { x: tf.tensor(x, xs), dy: tf.tensor(dy, info.outShape) }, attrs as never) as tf.Tensor,
        ),
      ),
    );
    expect(relErr(w, cpu)).toBeLessThanOrEqual(TOL);
  });

  it('a narrow output (Cout < 8: transposed GEMMs) gives bit for bit the first columns of the same gradient at 8 output channels', async () => {
    // the 8-channel gradient runs the untransposed per-tap GEMMs, whose output columns are independent
    // sums, so its first Cout columns are what the untransposed GEMMs give at Cout: the narrow path
    // must reproduce them exactly, not just within rounding (the 8-channel gradient forced onto the
    // per-tap GEMMs: 'auto' would take Winograd's, whose sums differ)
    await useBackend('wasm');
    const wasNative = setNativeBlasEnabled(false);
    const wasVariant = setConvFilterGradVariant('shifted');
    try {
      for (const [xs, cout, pad] of [
        [[2, 12, 10, 32], 3, 'same'],
        [[3, 7, 9, 8], 1, 'same'],
        [[2, 9, 8, 16], 5, 'valid'],
      ] as [number[], number, 'same' | 'valid'][]) {
        const x = tf.tensor(randn(cout + 11, size(xs)), xs);
        const info = tf.backend_util.computeConv2DInfo(xs as [number, number, number, number], [3, 3, xs[3]!, cout], 1, 1, pad);
        const dy = tf.tensor(randn(cout + 12, size(info.outShape)), info.outShape);
        const dy8 = tf.concat([dy, tf.zeros([...info.outShape.slice(0, 3), 8 - cout])], 3);
        const grad = (d: tf.Tensor, co: number) =>
          tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: d }, {
            strides: 1,
            pad,
            dataFormat: 'NHWC',
            filterShape: [3, 3, xs[3]!, co],
          } as never) as tf.Tensor;
        const narrow = grad(dy, cout);
        const wide = grad(dy8, 8);
        const first = wide.slice([0, 0, 0, 0], [3, 3, xs[3]!, cout]);
        expect(Array.from(narrow.dataSync())).toEqual(Array.from(first.dataSync()));
        tf.dispose([x, dy, dy8, narrow, wide, first]);
      }
    } finally {
      setConvFilterGradVariant(wasVariant);
      setNativeBlasEnabled(wasNative);
    }
  });

  it('rejects a dy of the wrong shape', async () => {
    await useBackend('wasm');
    const x = tf.ones([1, 4, 4, 1]);
    const dy = tf.ones([1, 3, 3, 1]);
    expect(() =>
      tf
        .engine()
        .runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [2, 2, 1, 1] } as never),
    ).toThrow(/dy has shape \[1,3,3,1\], expected \[1,4,4,1\]/);
    tf.dispose([x, dy]);
  });
});

/** Naive depthwise conv (NHWC, dilated taps) and its gradients on host arrays, in float64. */
function hostDepthwise(
  x: Float32Array,
  xs: number[],
  w: Float32Array,
  fs: number[],
  s: [number, number],
  d: [number, number],
  top: number,
  left: number,
  oh: number,
  ow: number,
) {
  const [B, H, W, C] = xs as [number, number, number, number];
  const [fh, fw, , m] = fs as [number, number, number, number];
  const y = new Float64Array(B * oh * ow * C * m);
  const forEach = (fn: (yi: number, xi: number, wi: number) => void) => {
    for (let b = 0; b < B; b++)
      for (let r = 0; r < oh; r++)
        for (let c = 0; c < ow; c++)
          for (let i = 0; i < fh; i++)
            for (let j = 0; j < fw; j++) {
              const xr = r * s[0] + i * d[0] - top;
              const xc = c * s[1] + j * d[1] - left;
              if (xr < 0 || xr >= H || xc < 0 || xc >= W) continue;
              for (let ch = 0; ch < C; ch++)
                for (let k = 0; k < m; k++)
                  fn((((b * oh + r) * ow + c) * C + ch) * m + k, ((b * H + xr) * W + xc) * C + ch, ((i * fw + j) * C + ch) * m + k);
            }
  };
  forEach((yi, xi, wi) => {
    y[yi] = (y[yi] as number) + (x[xi] as number) * (w[wi] as number);
  });
  return { y, forEach };
}

describe('wasm DepthwiseConv2dNativeBackpropFilter / BackpropInput', () => {
  const cases: { x: number[]; f: number[]; strides: [number, number]; pad: Pad }[] = [
    { x: [2, 7, 5, 3], f: [3, 2, 3, 1], strides: [1, 1], pad: 'same' },
    { x: [2, 7, 5, 3], f: [3, 2, 3, 2], strides: [2, 1], pad: 'valid' },
    { x: [1, 8, 9, 2], f: [3, 3, 2, 3], strides: [2, 2], pad: 'same' },
    {
      x: [3, 6, 5, 4],
      f: [2, 3, 4, 1],
      strides: [1, 2],
      pad: [
        [0, 0],
        [1, 0],
        [2, 1],
        [0, 0],
      ],
    },
    { x: [2, 5, 6, 1], f: [3, 3, 1, 2], strides: [1, 1], pad: 1 },
  ];
  for (const c of cases) {
    it(`depthwiseConv2d x [${c.x}] filter [${c.f}] strides [${c.strides}] pad ${JSON.stringify(c.pad)}: gradients match cpu`, async () => {
      const x = randn(size(c.x) + 5, size(c.x));
      const f = randn(size(c.f) + 6, size(c.f));
      const [w, cpu] = await both(() =>
        tf.tidy(() => {
          const conv = (a: tf.Tensor, b: tf.Tensor) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad as 'same');
          const tx = tf.tensor(x, c.x);
          const tw = tf.tensor(f, c.f);
          const y = conv(tx, tw);
          const up = tf.tensor(randn(8, y.size), y.shape);
          const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).mul(up).sum())([tx, tw]);
          return [arr(gx as tf.Tensor), arr(gw as tf.Tensor), arr(y)];
        }),
      );
      expect(relErr(w[0] as Float32Array, cpu[0] as Float32Array)).toBeLessThanOrEqual(TOL);
      expect(relErr(w[1] as Float32Array, cpu[1] as Float32Array)).toBeLessThanOrEqual(TOL);
      expect(relErr(w[2] as Float32Array, cpu[2] as Float32Array)).toBeLessThanOrEqual(TOL);
    });
  }

  it('with dilations, the raw kernels give the gradients of a naive dilated depthwise conv', async () => {
    await useBackend('wasm');
    const xs = [2, 9, 8, 2];
    const fs = [3, 2, 2, 2];
    const strides: [number, number] = [1, 2];
    const dil: [number, number] = [2, 3];
    const info = tf.backend_util.computeConv2DInfo(
      xs as [number, number, number, number],
      fs as [number, number, number, number],
      strides,
      dil,
      'same',
      undefined,
      true,
    );
    const x = randn(41, size(xs));
    const f = randn(42, size(fs));
    const dy = randn(43, size(info.outShape));
    const { forEach } = hostDepthwise(x, xs, f, fs, strides, dil, info.padInfo.top, info.padInfo.left, info.outHeight, info.outWidth);
    const dxRef = new Float64Array(x.length);
    const dwRef = new Float64Array(f.length);
    forEach((yi, xi, wi) => {
      dxRef[xi] = (dxRef[xi] as number) + (dy[yi] as number) * (f[wi] as number);
      dwRef[wi] = (dwRef[wi] as number) + (dy[yi] as number) * (x[xi] as number);
    });
    const attrs = { strides, dilations: dil, pad: 'same' };
    const dw = tf.tidy(() =>
      arr(
        tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: tf.tensor(x, xs), dy: tf.tensor(dy, info.outShape) }, {
          ...attrs,
          filterShape: fs,
        } as never) as tf.Tensor,
      ),
    );
    const dx = tf.tidy(() =>
      arr(
        tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: tf.tensor(dy, info.outShape), filter: tf.tensor(f, fs) }, {
          ...attrs,
          inputShape: xs,
        } as never) as tf.Tensor,
      ),
    );
    expect(relErr(dw, dwRef)).toBeLessThanOrEqual(TOL);
    expect(relErr(dx, dxRef)).toBeLessThanOrEqual(TOL);
  });

  it('leaves no tensors behind over a conv training step', async () => {
    await useBackend('wasm');
    const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 1);
    const w = tf.variable(tf.randomNormal([3, 3, 3, 2], 0, 1, 'float32', 2));
    const dw = tf.variable(tf.randomNormal([3, 3, 2, 2], 0, 1, 'float32', 3));
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    for (let i = 0; i < 2; i++) {
      const { value, grads } = tf.variableGrads(
        () =>
          tf
            .depthwiseConv2d(tf.conv2d(x as tf.Tensor4D, w as unknown as tf.Tensor4D, 1, 'same'), dw as unknown as tf.Tensor4D, 2, 'same')
            .square()
            .sum() as tf.Scalar,
      );
      value.dispose();
      tf.dispose(Object.values(grads));
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
    tf.dispose([x, w, dw]);
  });
});
