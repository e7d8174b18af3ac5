/**
 * `node node_modules/tsx/dist/cli.mjs --conditions=@mmlm/source bench/conv_ab.ts [SHAPES]` (from
 * packages/core): the wasm backend's 3x3 stride-1 'same' convolution per shape, direct against
 * Winograd F(2x2, 3x3), forward (`Conv2D`: XNNPACK's kernel vs winograd.ts) and filter gradient
 * (`Conv2DBackpropFilter`: the per-tap shifted GEMMs vs Winograd's), one thread, the addon off.
 * The variants alternate call by call (31 rounds), so a machine that drifts slows both alike; prints
 * the 25th percentile of each in ms. SHAPES: a JSON list of [B, H, W, Cin, Cout] (default: the conv
 * tokenizers' layers and the smaller channel counts behind winogradPays's rule).
 */
import { setNativeBlasEnabled, setWasmGemmThreads } from '../src/backend/kernels/index.js';
import { setConvFilterGradVariant, setConvForwardVariant } from '../src/backend/kernels/wasm_gaps.js';
import { initBackend, tf } from '../src/index.js';

const DEFAULT: number[][] = [
  [16, 32, 32, 32, 32],
  [16, 16, 16, 32, 32],
  [16, 8, 8, 32, 32],
  [16, 16, 16, 16, 16],
  [16, 8, 8, 16, 16],
  [16, 4, 4, 16, 16],
  [16, 16, 16, 8, 8],
  [16, 16, 16, 4, 4],
  [1, 4, 4, 16, 16],
];

function parseShapes(arg: string | undefined): number[][] {
  if (arg === undefined) return DEFAULT;
  let v: unknown;
  try {
    v = JSON.parse(arg);
  } catch {
    throw new Error(`conv_ab: SHAPES must be JSON, e.g. '[[16,32,32,32,32]]', got ${arg}`);
  }
  if (!Array.isArray(v) || v.some((s) => !Array.isArray(s) || s.length !== 5 || s.some((d) => !Number.isInteger(d) || d < 1)))
    throw new Error(`conv_ab: SHAPES must be a list of [B, H, W, Cin, Cout] with positive integers, got ${arg}`);
  return v as number[][];
}

const shapes = parseShapes(process.argv[2]);
await initBackend({ backend: 'wasm', log: false });
setNativeBlasEnabled(false);
setWasmGemmThreads(1);
const fwdWas = setConvForwardVariant('stock');
const fgWas = setConvFilterGradVariant('shifted');
for (const [B, H, W, C, O] of shapes as [number, number, number, number, number][]) {
  const x = tf.randomNormal([B, H, W, C], 0, 1, 'float32', 1) as tf.Tensor4D;
  const f = tf.randomNormal([3, 3, C, O], 0, 1, 'float32', 2) as tf.Tensor4D;
  const dy = tf.randomNormal([B, H, W, O], 0, 1, 'float32', 3) as tf.Tensor4D;
  const fwd = () => tf.conv2d(x, f, 1, 'same');
  const grad = () =>
    tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: 1,
      pad: 'same',
      dataFormat: 'NHWC',
      filterShape: [3, 3, C, O],
    } as never) as tf.Tensor;
  const t: Record<string, number[]> = { fd: [], fw: [], gd: [], gw: [] };
  const time = (k: string, fn: () => tf.Tensor) => {
    const t0 = performance.now();
    const y = fn();
    t[k]?.push(performance.now() - t0);
    y.dispose();
  };
  for (let r = 0; r < 31; r++) {
    setConvForwardVariant('stock');
    time('fd', fwd);
    setConvForwardVariant('winograd');
    time('fw', fwd);
    setConvFilterGradVariant('shifted');
    time('gd', grad);
    setConvFilterGradVariant('winograd');
    time('gw', grad);
  }
  const q = (a: number[] | undefined) => [...(a ?? [])].sort((p, r) => p - r)[7]?.toFixed(3);
  console.log(
    `[${B},${H},${W},${C}] -> ${O}: forward direct ${q(t.fd)} / Winograd ${q(t.fw)} ms; filter gradient direct ${q(t.gd)} / Winograd ${q(t.gw)} ms`,
  );
  tf.dispose([x, f, dy]);
}
setConvForwardVariant(fwdWas);
setConvFilterGradVariant(fgWas);
