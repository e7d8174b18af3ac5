/**
 * Softmax attention's core on wasm (MmlmAttention / MmlmAttentionGrad: scores, scale, causal mask,
 * softmax, weighted sum in one kernel call each way): output and the gradients of q, k and v bit for
 * bit equal to tfjs's autodiff of the composite (attentionComposite) on the same backend and GEMM,
 * causal or not, T = S and T != S (cross attention, a KV-cache step, T > S), widths with and without a tail
 * of 4; without a tape the forward alone, the same bits; an extra mask keeps the composite; the
 * gradients against float64 finite differences; no leak; bad input to the kernels.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ATTENTION_GRAD_KERNEL, ATTENTION_KERNEL } from '../../src/backend/kernels/fused.js';
import { nativeBlasInfo, setNativeBlasEnabled, setWasmGemmThreads } from '../../src/backend/kernels/index.js';
import { attentionComposite, Rng, type SdpaOptions, scaledDotProductAttention, tf } from '../../src/index.js';
import { useBackend } from '../../src/testing/index.js';
import { bits, kernelsOf } from '../kernels/helpers.js';

afterAll(async () => {
  setNativeBlasEnabled(true);
  setWasmGemmThreads(1, 1 << 26);
  await useBackend('cpu');
});

/** o and the gradients of sum(o dy) with respect to q, k, v. */
function oAndGrads(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  dy: tf.Tensor,
  f: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor,
): tf.Tensor[] {
  let o: tf.Tensor | undefined;
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
    o = tf.keep(f(a, b, c));
    return o.mul(dy).sum();
  });
  const grads = g([q, k, v]);
  return [o!, ...grads];
}

const GEMMS = ['simd', 'simd-2-threads', ...(nativeBlasInfo().available ? ['native'] : [])];

describe('attention kernels (wasm)', () => {
  for (const gemm of GEMMS)
    it(`give the composite autodiff bits on the ${gemm} GEMM: o, dq, dk, dv`, async () => {
      await useBackend('wasm');
      setNativeBlasEnabled(gemm === 'native');
      setWasmGemmThreads(gemm === 'simd-2-threads' ? 2 : 1, gemm === 'simd-2-threads' ? 0 : 1 << 26);
      const rng = new Rng(31);
      const n0 = tf.memory().numTensors;
      // the kernels' own temporaries (scores, ve, the Pow output) are freed too: the backend's buffers stay level
      const ids0 = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
      let cases = 0;
      for (const [B, H, T, S, hs] of [
        [2, 3, 5, 5, 8],
        [2, 2, 7, 7, 6],
        [4, 4, 16, 16, 32],
        [2, 2, 3, 7, 4],
        [2, 2, 1, 9, 8],
        [1, 2, 6, 3, 4],
        // causal GEMMs in strips of 16 rows: T = S over several strips with a partial one, a KV-cache
        // offset (S > T), and T > 256 (the GEMM's KC): 'kStart' keeps the full GEMM's K blocks
        [1, 2, 40, 40, 8],
        [2, 1, 37, 45, 5],
        [1, 1, 300, 300, 4],
      ] as [number, number, number, number, number][]) {
        for (const causal of [false, true]) {
          for (const scaleUp of [1, 30]) {
            const q = tf.tidy(() => rng.randn([B, H, T, hs]).mul(scaleUp));
            const k = rng.randn([B, H, S, hs]);
            const v = rng.randn([B, H, S, hs]);
            const dy = rng.randn([B, H, T, hs]);
            const opts: SdpaOptions = { causal };
            const fused = oAndGrads(q, k, v, dy, (a, b, c) => scaledDotProductAttention(a, b, c, opts));
            const ref = oAndGrads(q, k, v, dy, (a, b, c) => attentionComposite(a, b, c, opts));
            const what = `${gemm} [${B}, ${H}, ${T}, ${S}, ${hs}] causal ${causal} x${scaleUp}`;
            fused.forEach((t, i) => {
              expect(bits(t), `${what} output ${i}`).toEqual(bits(ref[i]!));
            });
            // no tape: the forward alone gives the same bits
            const inf = scaledDotProductAttention(q, k, v, opts);
            expect(bits(inf), `${what} inference`).toEqual(bits(ref[0]!));
            tf.dispose([...fused, ...ref, inf, q, k, v, dy]);
            cases++;
          }
        }
      }
      expect(cases).toBe(36);
      expect(tf.memory().numTensors).toBe(n0);
      expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(ids0);
    });

  it('run as one kernel each way; an extra mask keeps the composite', async () => {
    await useBackend('wasm');
    const q = tf.randomNormal([1, 2, 4, 8], 0, 1, 'float32', 1);
    const run = (opts: SdpaOptions) =>
      kernelsOf(() => {
        const g = tf.grads((a: tf.Tensor) => scaledDotProductAttention(a, q, q, opts).sum());
        tf.dispose(g([q]));
      });
    const fused = run({ causal: true });
    expect(fused.has(ATTENTION_KERNEL) && fused.has(ATTENTION_GRAD_KERNEL)).toBe(true);
    expect(fused.has('Softmax')).toBe(false);
    const mask = tf.zeros([1, 1, 1, 4]);
    const masked = run({ causal: true, mask });
    expect(masked.has(ATTENTION_KERNEL)).toBe(false);
    expect(masked.has('Softmax')).toBe(true);
    tf.dispose([q, mask]);
  });

  it('gradients match float64 central differences', async () => {
    await useBackend('wasm');
    const rng = new Rng(8);
    const [T, S, hs] = [3, 4, 2];
    const q0 = Array.from(rng.randn([1, 1, T, hs]).dataSync());
    const k0 = Array.from(rng.randn([1, 1, S, hs]).dataSync());
    const v0 = Array.from(rng.randn([1, 1, S, hs]).dataSync());
    const dy = Array.from(rng.randn([1, 1, T, hs]).dataSync());
    const sc = 1 / Math.sqrt(hs);
    const loss = (qs: number[], ks: number[], vs: number[]) => {
      let total = 0;
      for (let i = 0; i < T; i++) {
        const lim = i + S - T;
        const z = Array.from({ length: S }, (_, j) =>
          j <= lim ? (qs[i * hs]! * ks[j * hs]! + qs[i * hs + 1]! * ks[j * hs + 1]!) * sc : -1e9,
        );
        const m = Math.max(...z);
        const e = z.map((x) => Math.exp(x - m));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < hs; d++) total += e.reduce((a, w, j) => a + (w / sum) * vs[j * hs + d]!, 0) * dy[i * hs + d]!;
      }
      return total;
    };
    const t = (a: number[], s: number[]) => tf.tensor4d(a, s as [number, number, number, number]);
    const [, gq, gk, gv] = oAndGrads(t(q0, [1, 1, T, hs]), t(k0, [1, 1, S, hs]), t(v0, [1, 1, S, hs]), t(dy, [1, 1, T, hs]), (a, b, c) =>
      scaledDotProductAttention(a, b, c, { causal: true }),
    );
    const h = 1e-6;
    const fd = (f: (d: number) => number) => (f(h) - f(-h)) / (2 * h);
    const bump = (a: number[], i: number, d: number) => a.map((x, j) => (j === i ? x + d : x));
    const close = (got: ArrayLike<number>, want: number[]) =>
      want.forEach((w, i) => {
        expect(Math.abs((got[i] as number) - w)).toBeLessThan(1e-4 * (1 + Math.abs(w)));
      });
    close(
      gq!.dataSync(),
      q0.map((_, i) => fd((d) => loss(bump(q0, i, d), k0, v0))),
    );
    close(
      gk!.dataSync(),
      k0.map((_, i) => fd((d) => loss(q0, bump(k0, i, d), v0))),
    );
    close(
      gv!.dataSync(),
      v0.map((_, i) => fd((d) => loss(q0, k0, bump(v0, i, d)))),
    );
  });

  it('the kernels name bad input', async () => {
    await useBackend('wasm');
    const run = (name: string, inputs: tf.NamedTensorMap, scale = 0.5) =>
      tf.tidy(() => tf.engine().runKernel(name, inputs, { scale, causal: false } as unknown as tf.NamedAttrMap));
    const q = tf.ones([1, 2, 3, 4]);
    const kv = tf.ones([1, 2, 5, 4]);
    expect(() => run(ATTENTION_KERNEL, { q, k: tf.ones([1, 2, 5, 3]), v: kv })).toThrow(
      /MmlmAttention \(wasm\): expected float32 q \[B, H, T, hs\], k and v \[B, H, S, hs\] and a finite scale, got q float32 \[1,2,3,4\], k float32 \[1,2,5,3\], v float32 \[1,2,5,4\], scale 0.5/,
    );
    expect(() => run(ATTENTION_KERNEL, { q: tf.ones([2, 3, 4]), k: kv, v: kv })).toThrow(/q float32 \[2,3,4\]/);
    expect(() => run(ATTENTION_KERNEL, { q, k: kv, v: kv }, Number.NaN)).toThrow(/scale NaN/);
    expect(() => run(ATTENTION_GRAD_KERNEL, { dy: q, q, k: kv, v: kv, p: tf.ones([1, 2, 3, 4]) })).toThrow(
      /MmlmAttentionGrad \(wasm\): .*p float32 \[1,2,3,4\]/,
    );
    expect(() => scaledDotProductAttention(tf.ones([2, 3]), kv, kv)).toThrow(/q, k, v must be \[B, H, T\|S, hs\], got \[2,3\]/);
    expect(() => scaledDotProductAttention(q, kv, kv, { scale: Number.NaN })).toThrow(/scale must be a finite number, got NaN/);
    // k and v shared by every head (broadcast over H): the composite, as matMul broadcasts
    const kv1 = tf.randomNormal([1, 1, 5, 4], 0, 1, 'float32', 3);
    const qq = tf.randomNormal([1, 2, 3, 4], 0, 1, 'float32', 4);
    const b = scaledDotProductAttention(qq, kv1, kv1);
    const ref = attentionComposite(qq, kv1, kv1);
    expect(bits(b)).toEqual(bits(ref));
    tf.dispose([kv1, qq, b, ref]);
    tf.dispose([q, kv]);
  });
});
