/**
 * Kernels the stock wasm backend (tfjs-backend-wasm 4.22) lacks and training needs, with the cpu
 * backend's semantics (tfjs-backend-cpu kernels of the same names are the reference):
 * - UnsortedSegmentSum: the gradient of gather (embeddings, codebooks).
 * - Conv2DBackpropFilter: the conv2d weight gradient, as im2col + GEMM (Chellapilla et al.,
 *   "High Performance Convolutional Neural Networks for Document Processing", 2006):
 *   dW[(r, c, d1), d2] = sum over output pixels p of col[p, (r, c, d1)] dy[p, d2].
 * - DepthwiseConv2dNativeBackpropFilter / BackpropInput: the depthwise conv gradients.
 *
 * Geometry comes from tfjs-core's computeConv2DInfo (strides, 'same' / 'valid' / explicit
 * padding, dimRoundingMode, NHWC or NCHW). Input pixel (xR, xC) of filter tap (wR, wC) at output
 * pixel (yR, yC) is xR = yR strideH + wR dilationH - padTop (and likewise for columns). For
 * dilation 1, the only case tfjs' conv gradients allow, this is exactly the cpu kernels' indexing;
 * the cpu kernels apply dilation only to the output size, these apply it to the taps too (the true
 * gradient of a dilated convolution).
 */
import { env } from '../../runtime.js';
import { tf } from '../../tf.js';
import { nativeBlas, nativeConv } from './native_blas.js';
import { SimdGemm } from './simd_gemm.js';
import { gemmFor, type WasmBackendInternals } from './wasm_matmul.js';
import { WinogradConv, winogradEligible, winogradPays } from './winograd.js';

interface Backend extends WasmBackendInternals {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  wasm: WasmBackendInternals['wasm'] & { _free(ptr: number): void; HEAPF32: Float32Array };
}

export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Upper bound of one im2col buffer of Conv2DBackpropFilter (bytes). */
const COL_BYTES = 32 * 2 ** 20;

/** UnsortedSegmentSum: out[ids[i], ...] += x[i, ...]; ids may have rank > 1 (a prefix of x's shape); ids outside [0, numSegments) are dropped. */
function unsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backend as Backend;
  const x = inputs.x as tf.TensorInfo;
  const segmentIds = inputs.segmentIds as tf.TensorInfo;
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const idsRank = segmentIds.shape.length;
  if (!segmentIds.shape.every((d, i) => d === x.shape[i]))
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
  const innerShape = x.shape.slice(idsRank);
  const inner = size(innerShape);
  const out = be.makeOutput([numSegments, ...innerShape], x.dtype);
  const ov = be.typedArrayFromHeap(out);
  const xv = be.typedArrayFromHeap(x);
  const ids = be.typedArrayFromHeap(segmentIds);
  ov.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i] as number;
    if (s < 0 || s >= numSegments) continue;
    const o = s * inner;
    const xi = i * inner;
    for (let j = 0; j < inner; j++) ov[o + j] += xv[xi + j] as number;
  }
  return out;
}

type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

/** Strides (elements) of a 4-D activation in NHWC or NCHW: [batch, row, col, channel]. */
function actStrides(info: ConvInfo, h: number, w: number, c: number): [number, number, number, number] {
  return info.dataFormat === 'channelsLast' ? [h * w * c, w * c, c, 1] : [c * h * w, w, 1, h * w];
}

/**
 * Run one NHWC float32 convolution with the native addon's conv2d (im2col + cblas_sgemm over chunks
 * of output pixels, in C; mode 0 forward, 1 filter gradient, 2 input gradient): the tensors are
 * offsets into the wasm heap, which the addon reads and writes in place. False when the addon has
 * no conv2d or MMLM_NATIVE_CONV=0 (the callers then run their GEMM paths).
 */
function runNativeConv(be: Backend, mode: 0 | 1 | 2, info: ConvInfo, xPtr: number, wPtr: number, yPtr: number): boolean {
  const nc = nativeConv();
  if (!nc || info.dataFormat !== 'channelsLast') return false;
  nc.conv2d(
    be.wasm.HEAPF32.buffer as ArrayBuffer,
    mode,
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.outChannels,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.dilationHeight,
    info.dilationWidth,
    info.padInfo.top,
    info.padInfo.left,
    xPtr,
    wPtr,
    yPtr,
  );
  return true;
}

function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backend as Backend;
  const x = inputs.x as tf.TensorInfo;
  const dy = inputs.dy as tf.TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  if (x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`Conv2DBackpropFilter (wasm): only float32 is supported, got x ${x.dtype} and dy ${dy.dtype}`);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC'),
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const expectDy =
    info.dataFormat === 'channelsLast' ? [batchSize, outHeight, outWidth, outChannels] : [batchSize, outChannels, outHeight, outWidth];
  if (dy.shape.join() !== expectDy.join())
    throw new Error(
      `Conv2DBackpropFilter (wasm): dy has shape [${dy.shape}], expected [${expectDy}] for x [${x.shape}] and filter [${filterShape}]`,
    );
  const out = be.makeOutput([filterHeight, filterWidth, inChannels, outChannels], 'float32');
  const taps = filterHeight * filterWidth * inChannels; // rows of dW
  const P = outHeight * outWidth; // output pixels per image
  const outPtr = be.dataIdMap.get(out.dataId).memoryOffset;
  if (taps * outChannels === 0) return out;
  if (P * batchSize === 0) {
    (be.typedArrayFromHeap(out) as Float32Array).fill(0);
    return out;
  }
  if (runNativeConv(be, 1, info, be.dataIdMap.get(x.dataId).memoryOffset, outPtr, be.dataIdMap.get(dy.dataId).memoryOffset)) return out;
  if (
    info.dataFormat === 'channelsLast' &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    outHeight === inHeight + info.padInfo.top + info.padInfo.bottom - filterHeight + 1 &&
    outWidth === inWidth + info.padInfo.left + info.padInfo.right - filterWidth + 1
  ) {
    const { top, left } = info.padInfo;
    const shape = { B: batchSize, H: inHeight, W: inWidth, Cin: inChannels, Cout: outChannels, top, left, OH: outHeight, OW: outWidth };
    const fg = convFilterGradVariant();
    if (
      filterHeight === 3 &&
      filterWidth === 3 &&
      winogradEligible(shape) &&
      !nativeBlas() &&
      (fg === 'winograd' || (fg === 'auto' && winogradPays(shape)))
    ) {
      // Winograd's filter gradient (winograd.ts): 16 or 36 GEMMs over the tiles
      winogradFor(be).filterGrad(
        gemmFor(be),
        shape,
        be.dataIdMap.get(x.dataId).memoryOffset,
        be.dataIdMap.get(dy.dataId).memoryOffset,
        outPtr,
      );
      return out;
    }
    filterGradShifted(be, x, dy, info, outPtr);
    return out;
  }
  const [xsB, xsR, xsC, xsD] = actStrides(info, inHeight, inWidth, inChannels);
  const [dsB, , dsC, dsD] = actStrides(info, outHeight, outWidth, outChannels); // pixel p = yR OW + yC has stride dsC
  // NHWC: dy's pixels of consecutive images are consecutive rows (dsB = P dsC), so the images of a
  // chunk stack into one col [chunk P, taps] and one GEMM with K = chunk P (fewer, larger GEMMs);
  // a chunk's col is capped at COL_BYTES. NCHW: one GEMM per image.
  const perChunk = info.dataFormat === 'channelsLast' ? Math.max(1, Math.min(batchSize, Math.floor(COL_BYTES / (4 * P * taps)))) : 1;
  const colPtr = be.wasm._malloc(4 * perChunk * P * taps) >>> 0;
  try {
    const { top, left } = info.padInfo;
    const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
    const xPtr = be.dataIdMap.get(x.dataId).memoryOffset;
    const dyPtr = be.dataIdMap.get(dy.dataId).memoryOffset;
    const g = gemmFor(be);
    for (let b0 = 0; b0 < batchSize; b0 += perChunk) {
      const nb = Math.min(perChunk, batchSize - b0);
      const heap = be.wasm.HEAPF32; // re-read: a malloc may have grown the heap
      for (let bi = 0; bi < nb; bi++) {
        const xb = (xPtr >>> 2) + (b0 + bi) * xsB;
        let o = (colPtr >>> 2) + bi * P * taps;
        for (let yR = 0; yR < outHeight; yR++) {
          for (let yC = 0; yC < outWidth; yC++) {
            for (let wR = 0; wR < filterHeight; wR++) {
              const xR = yR * sh + wR * dh - top;
              for (let wC = 0; wC < filterWidth; wC++) {
                const xC = yC * sw + wC * dw - left;
                if (xR < 0 || xR >= inHeight || xC < 0 || xC >= inWidth) {
                  heap.fill(0, o, o + inChannels);
                } else {
                  const xi = xb + xR * xsR + xC * xsC;
                  if (xsD === 1 && inChannels >= 16)
                    heap.copyWithin(o, xi, xi + inChannels); // a call pays from ~16 floats
                  else for (let d1 = 0; d1 < inChannels; d1++) heap[o + d1] = heap[xi + d1 * xsD] as number;
                }
                o += inChannels;
              }
            }
          }
        }
      }
      // dW[taps, Cout] (+)= col[nb P, taps]^T dy_chunk[nb P, Cout]
      g.gemm(
        taps,
        outChannels,
        nb * P,
        { ptr: colPtr, rs: 1, cs: taps },
        { ptr: dyPtr + 4 * b0 * dsB, rs: dsC, cs: dsD },
        outPtr,
        outChannels,
        b0 > 0,
      );
    }
  } finally {
    be.wasm._free(colPtr);
  }
  return out;
}

/**
 * Zero xp (xpFloats floats, heap offsets in floats) and copy x [B, H, W, Cin] into it as
 * [B, Hp, Wp, Cin] with its top-left corner at (top, left): the zero-padded input both shifted-GEMM
 * convolutions read at constant offsets (the zeros past the last image are their tail).
 */
function padInputOnHeap(heap: Float32Array, xs: number, xp: number, xpFloats: number, info: ConvInfo): void {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: Cin } = info;
  const { top, left, bottom, right } = info.padInfo;
  const Hp = H + top + bottom;
  const Wp = W + left + right;
  heap.fill(0, xp, xp + xpFloats);
  for (let b = 0; b < B; b++)
    for (let r = 0; r < H; r++) {
      const from = xs + (b * H + r) * W * Cin;
      heap.copyWithin(xp + ((b * Hp + r + top) * Wp + left) * Cin, from, from + W * Cin);
    }
}

/**
 * The weight gradient of a stride-1, dilation-1 NHWC convolution without an im2col buffer: one GEMM
 * per filter tap on shifted views of the zero-padded input. With x padded to xp [B, Hp, Wp, Cin]
 * (plus a zero tail) and dy written into dyp [B, Hp, Wp, Cout] (zero outside its OH x OW corner), the
 * output pixel (b, yR, yC) is row k = (b Hp + yR) Wp + yC of dyp, and tap (wR, wC) reads row
 * k + wR Wp + wC of xp, which is x[yR + wR - top, yC + wC - left] or padding; rows of dyp outside the
 * corner are zero and add nothing. So for every tap
 *   dW[wR, wC] [Cin, Cout] = xp[k + wR Wp + wC]^T dyp[k]   summed over k < B Hp Wp,
 * a GEMM whose A operand is xp at a constant offset (row stride Cin). This is the im2col GEMM with
 * the im2col matrix never written (it holds every input pixel kh kw times, 19 MB for a 3x3 conv over
 * [16, 32, 32, 32]); the padding rows cost (Hp Wp) / (OH OW) more multiply-adds (1.13x at 32 x 32).
 * The taps' GEMMs run as one SimdGemm.gemmShiftedA, which packs xp once and each block of dyp once
 * for all of them, bit for bit the per-tap GEMMs (9.7 -> 7.7 ms at [16, 32, 32, 32] -> 32, one thread).
 */
function filterGradShifted(be: Backend, x: tf.TensorInfo, dy: tf.TensorInfo, info: ConvInfo, outPtr: number): void {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: Cin, outHeight: OH, outWidth: OW, outChannels: Cout } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const { top, left, bottom, right } = info.padInfo;
  const Hp = H + top + bottom;
  const Wp = W + left + right;
  const K = B * Hp * Wp; // rows of dyp
  const tail = (kh - 1) * Wp + (kw - 1); // xp rows read past the last image by the last taps
  const xpFloats = (K + tail) * Cin;
  // a narrow output runs transposed GEMMs (filterGradShiftedNarrow), which read dyp with its
  // channels zero-padded to a multiple of 4
  const narrow = Cout < 8 && Cin >= 8 && !nativeBlas();
  const dS = narrow ? (Cout + 3) & ~3 : Cout; // dyp's row stride (floats)
  const dypFloats = K * dS;
  const xpPtr = be.wasm._malloc(4 * xpFloats) >>> 0;
  const dypPtr = be.wasm._malloc(4 * dypFloats) >>> 0;
  let packedPtr = 0;
  try {
    const heap = be.wasm.HEAPF32; // after the mallocs, which may grow the heap
    const xs = be.dataIdMap.get(x.dataId).memoryOffset >>> 2;
    const dys = be.dataIdMap.get(dy.dataId).memoryOffset >>> 2;
    const xp = xpPtr >>> 2;
    const dp = dypPtr >>> 2;
    padInputOnHeap(heap, xs, xp, xpFloats, info);
    heap.fill(0, dp, dp + dypFloats);
    for (let b = 0; b < B; b++) {
      for (let r = 0; r < OH; r++) {
        const from = dys + (b * OH + r) * OW * Cout;
        const to = dp + (b * Hp + r) * Wp * dS;
        if (dS === Cout) heap.copyWithin(to, from, from + OW * Cout);
        else for (let yC = 0; yC < OW; yC++) for (let c = 0; c < Cout; c++) heap[to + yC * dS + c] = heap[from + yC * Cout + c] as number;
      }
    }
    const g = gemmFor(be);
    if (narrow) {
      filterGradShiftedNarrow(be, g, info, xpPtr, dypPtr, dS, K, Wp, outPtr);
      return;
    }
    // dW[t] [Cin, Cout] = A_t [Cin, K] B [K, Cout], A_t(m, k) = xp[(k + wR Wp + wC) Cin + m] for tap
    // t = wR kw + wC: one GEMM per tap that packs xp and each block of dyp once for all the taps
    const shifts: number[] = [];
    for (let wR = 0; wR < kh; wR++) for (let wC = 0; wC < kw; wC++) shifts.push(wR * Wp + wC);
    packedPtr = be.wasm._malloc(SimdGemm.shiftedSourceBytes(Cin, K + tail) + 16) >>> 0;
    g.gemmShiftedA(
      Cin,
      Cout,
      K,
      xpPtr,
      K + tail,
      shifts,
      { ptr: dypPtr, rs: Cout, cs: 1 },
      outPtr,
      Cin * Cout,
      Cout,
      (packedPtr + 15) & ~15,
    );
  } finally {
    if (packedPtr) be.wasm._free(packedPtr);
    be.wasm._free(dypPtr);
    be.wasm._free(xpPtr);
  }
}

/**
 * filterGradShifted's GEMMs for a narrow output (Cout < 8, e.g. a decoder's RGB conv_out), transposed:
 * the SIMD GEMM's column strips are 8 wide, so dW[t] [Cin, Cout] as C = A B fills 3 of 8 lanes, while
 * dW[t]^T [Cout, Cin] = dyp^T xp[k + wR Wp + wC] fills its rows of 4 (dyp [K, CoutP] holds its channels
 * zero-padded to CoutP, a multiple of 4, whose extra rows of dW^T are dropped) and its strips fully.
 * Every entry is the same sum of the same products (a b = b a exactly) over the same K blocks in the
 * same order, so the result is bit for bit that of the untransposed GEMMs (tested in gaps.test.ts).
 */
function filterGradShiftedNarrow(
  be: Backend,
  g: ReturnType<typeof gemmFor>,
  info: ConvInfo,
  xpPtr: number,
  dypPtr: number,
  CoutP: number,
  K: number,
  Wp: number,
  outPtr: number,
): void {
  const { inChannels: Cin, outChannels: Cout, filterHeight: kh, filterWidth: kw } = info;
  const tPtr = be.wasm._malloc(4 * CoutP * Cin) >>> 0;
  try {
    const tp = tPtr >>> 2;
    const o0 = outPtr >>> 2;
    for (let wR = 0; wR < kh; wR++)
      for (let wC = 0; wC < kw; wC++) {
        const t = wR * kw + wC;
        // dW[t]^T [CoutP, Cin] = A [CoutP, K] B [K, Cin], A(m, k) = dyp[k CoutP + m], B(k, n) = xp[(k + wR Wp + wC) Cin + n]
        g.gemm(
          CoutP,
          Cin,
          K,
          { ptr: dypPtr, rs: 1, cs: CoutP },
          { ptr: xpPtr + 4 * (wR * Wp + wC) * Cin, rs: Cin, cs: 1 },
          tPtr,
          Cin,
          false,
        );
        const heap = be.wasm.HEAPF32; // after the malloc above, which may have grown the heap
        const o = o0 + t * Cin * Cout;
        for (let ci = 0; ci < Cin; ci++) for (let co = 0; co < Cout; co++) heap[o + ci * Cout + co] = heap[tp + co * Cin + ci] as number;
      }
  } finally {
    be.wasm._free(tPtr);
  }
}

/** Conv2D-family attributes as the kernels receive them. */
interface ConvAttrs {
  strides: [number, number] | number;
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** tfjs-core's geometry of an NHWC, dilation-1 convolution of x [inputShape] with a filter. */
function nhwcConvInfo(inputShape: number[], filterShape: number[], a: ConvAttrs): ConvInfo {
  return tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/**
 * Conv2DBackpropInput (conv2d's input gradient) as GEMM + col2im, for NHWC float32: the column
 * gradient dcol[p, (r, c, d1)] = sum_d2 dy[p, d2] W[r, c, d1, d2] (one GEMM per chunk of images),
 * then each column entry is added back to the input pixel it was read from (the transpose of the
 * im2col above). The stock wasm kernel is a direct loop, about 5x slower at the strided convs of
 * the VQ tokenizers; `fallback` (the stock kernel) takes NCHW and other dtypes.
 */
export function conv2DBackpropInputGemm(args: KernelArgs, fallback: (a: KernelArgs) => tf.TensorInfo): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const be = backend as Backend;
  const dy = inputs.dy as tf.TensorInfo;
  const filter = inputs.filter as tf.TensorInfo;
  const a = attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  const { inputShape } = a;
  if ((a.dataFormat ?? 'NHWC') !== 'NHWC' || dy.dtype !== 'float32' || filter.dtype !== 'float32') return fallback(args);
  const info = nhwcConvInfo(inputShape, filter.shape, a);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const expectDy = [batchSize, outHeight, outWidth, outChannels];
  if (dy.shape.join() !== expectDy.join())
    throw new Error(
      `Conv2DBackpropInput (wasm): dy has shape [${dy.shape}], expected [${expectDy}] for input [${inputShape}] and filter [${filter.shape}]`,
    );
  const out = be.makeOutput([...inputShape], 'float32');
  const dx = be.typedArrayFromHeap(out) as Float32Array;
  if (
    dx.length > 0 &&
    runNativeConv(
      be,
      2,
      info,
      be.dataIdMap.get(out.dataId).memoryOffset,
      be.dataIdMap.get(filter.dataId).memoryOffset,
      be.dataIdMap.get(dy.dataId).memoryOffset,
    )
  )
    return out;
  dx.fill(0);
  const taps = filterHeight * filterWidth * inChannels; // columns of dcol
  const P = outHeight * outWidth; // output pixels per image
  if (dx.length === 0 || P * outChannels === 0) return out;
  const perChunk = Math.max(1, Math.min(batchSize, Math.floor(COL_BYTES / (4 * P * taps))));
  const colPtr = be.wasm._malloc(4 * perChunk * P * taps) >>> 0;
  try {
    const { top, left } = info.padInfo;
    const { strideHeight: sh, strideWidth: sw } = info;
    const dyPtr = be.dataIdMap.get(dy.dataId).memoryOffset;
    const wPtr = be.dataIdMap.get(filter.dataId).memoryOffset;
    const outPtr = be.dataIdMap.get(out.dataId).memoryOffset;
    const g = gemmFor(be);
    const imgX = inHeight * inWidth * inChannels;
    const rowX = inWidth * inChannels;
    for (let b0 = 0; b0 < batchSize; b0 += perChunk) {
      const nb = Math.min(perChunk, batchSize - b0);
      // dcol[nb P, taps] = dy_chunk[nb P, Cout] W[taps, Cout]^T
      g.gemm(
        nb * P,
        taps,
        outChannels,
        { ptr: dyPtr + 4 * b0 * P * outChannels, rs: outChannels, cs: 1 },
        { ptr: wPtr, rs: 1, cs: outChannels },
        colPtr,
        taps,
        false,
      );
      const heap = be.wasm.HEAPF32; // re-read: the GEMM may have grown the heap
      let o = colPtr >>> 2;
      for (let bi = 0; bi < nb; bi++) {
        const xb = (outPtr >>> 2) + (b0 + bi) * imgX;
        for (let yR = 0; yR < outHeight; yR++) {
          for (let yC = 0; yC < outWidth; yC++) {
            for (let wR = 0; wR < filterHeight; wR++) {
              const xR = yR * sh + wR - top;
              for (let wC = 0; wC < filterWidth; wC++) {
                const xC = yC * sw + wC - left;
                if (xR >= 0 && xR < inHeight && xC >= 0 && xC < inWidth) {
                  const xi = xb + xR * rowX + xC * inChannels;
                  for (let d1 = 0; d1 < inChannels; d1++) heap[xi + d1] = (heap[xi + d1] as number) + (heap[o + d1] as number);
                }
                o += inChannels;
              }
            }
          }
        }
      }
    }
  } finally {
    be.wasm._free(colPtr);
  }
  return out;
}

interface DepthwiseAttrs {
  strides: [number, number] | number;
  dilations: [number, number] | number;
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function depthwiseInfo(inShape: number[], filterShape: number[], a: DepthwiseAttrs): ConvInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true,
  );
}

/** dW[wR, wC, d1, m] = sum_{b, yR, yC} x[b, xR, xC, d1] dy[b, yR, yC, d1 chMul + m] (NHWC). */
function depthwiseConv2dNativeBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backend as Backend;
  const x = inputs.x as tf.TensorInfo;
  const dy = inputs.dy as tf.TensorInfo;
  const a = attrs as unknown as DepthwiseAttrs & { filterShape: [number, number, number, number] };
  if (x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`DepthwiseConv2dNativeBackpropFilter (wasm): only float32 is supported, got x ${x.dtype} and dy ${dy.dtype}`);
  const info = depthwiseInfo(x.shape, a.filterShape, a);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  if (dy.shape.join() !== [batchSize, outHeight, outWidth, outChannels].join())
    throw new Error(
      `DepthwiseConv2dNativeBackpropFilter (wasm): dy has shape [${dy.shape}], expected [${[batchSize, outHeight, outWidth, outChannels]}]`,
    );
  const chMul = outChannels / inChannels;
  const out = be.makeOutput(info.filterShape, 'float32');
  const dw = be.typedArrayFromHeap(out) as Float32Array;
  const xv = be.typedArrayFromHeap(x) as Float32Array;
  const dyv = be.typedArrayFromHeap(dy) as Float32Array;
  dw.fill(0);
  const { top, left } = info.padInfo;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dwid } = info;
  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      for (let yC = 0; yC < outWidth; yC++) {
        const dyo = ((b * outHeight + yR) * outWidth + yC) * outChannels;
        for (let wR = 0; wR < filterHeight; wR++) {
          const xR = yR * sh + wR * dh - top;
          if (xR < 0 || xR >= inHeight) continue;
          for (let wC = 0; wC < filterWidth; wC++) {
            const xC = yC * sw + wC * dwid - left;
            if (xC < 0 || xC >= inWidth) continue;
            const xo = ((b * inHeight + xR) * inWidth + xC) * inChannels;
            const wo = (wR * filterWidth + wC) * outChannels; // [wR, wC, d1, m] flattened: d1 * chMul + m = d2
            for (let d2 = 0; d2 < outChannels; d2++) dw[wo + d2] += (xv[xo + ((d2 / chMul) | 0)] as number) * (dyv[dyo + d2] as number);
          }
        }
      }
    }
  }
  return out;
}

/** dx[b, xR, xC, d1] = sum over taps hitting (xR, xC) and m of dy[b, yR, yC, d1 chMul + m] w[wR, wC, d1, m] (NHWC). */
function depthwiseConv2dNativeBackpropInput({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backend as Backend;
  const dy = inputs.dy as tf.TensorInfo;
  const filter = inputs.filter as tf.TensorInfo;
  const a = attrs as unknown as DepthwiseAttrs & { inputShape: [number, number, number, number] };
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32')
    throw new Error(`DepthwiseConv2dNativeBackpropInput (wasm): only float32 is supported, got dy ${dy.dtype} and filter ${filter.dtype}`);
  const info = depthwiseInfo(a.inputShape, filter.shape, a);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  if (dy.shape.join() !== [batchSize, outHeight, outWidth, outChannels].join())
    throw new Error(
      `DepthwiseConv2dNativeBackpropInput (wasm): dy has shape [${dy.shape}], expected [${[batchSize, outHeight, outWidth, outChannels]}]`,
    );
  const chMul = outChannels / inChannels;
  const out = be.makeOutput(info.inShape, 'float32');
  const dx = be.typedArrayFromHeap(out) as Float32Array;
  const wv = be.typedArrayFromHeap(filter) as Float32Array;
  const dyv = be.typedArrayFromHeap(dy) as Float32Array;
  dx.fill(0);
  const { top, left } = info.padInfo;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dwid } = info;
  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      for (let yC = 0; yC < outWidth; yC++) {
        const dyo = ((b * outHeight + yR) * outWidth + yC) * outChannels;
        for (let wR = 0; wR < filterHeight; wR++) {
          const xR = yR * sh + wR * dh - top;
          if (xR < 0 || xR >= inHeight) continue;
          for (let wC = 0; wC < filterWidth; wC++) {
            const xC = yC * sw + wC * dwid - left;
            if (xC < 0 || xC >= inWidth) continue;
            const xo = ((b * inHeight + xR) * inWidth + xC) * inChannels;
            const wo = (wR * filterWidth + wC) * outChannels;
            for (let d2 = 0; d2 < outChannels; d2++) dx[xo + ((d2 / chMul) | 0)] += (dyv[dyo + d2] as number) * (wv[wo + d2] as number);
          }
        }
      }
    }
  }
  return out;
}

const winograds = new WeakMap<object, WinogradConv>();

/** The Winograd transforms on the backend's heap (one instance per backend). */
function winogradFor(be: Backend): WinogradConv {
  let w = winograds.get(be);
  if (!w) {
    w = new WinogradConv(
      be.wasm.asm.memory,
      (n) => be.wasm._malloc(n) >>> 0,
      (p) => be.wasm._free(p),
    );
    winograds.set(be, w);
  }
  return w;
}

/**
 * Which stride-1 filter gradient Conv2DBackpropFilter runs without the native GEMM: 'auto' (Winograd
 * where it applies and pays, winograd.ts winogradPays), 'winograd' (wherever it applies: 3x3,
 * channels in fours) or 'shifted' (the per-tap GEMMs).
 */
export type ConvFilterGradVariant = 'auto' | 'shifted' | 'winograd';
const CONV_FILTER_GRAD_VARIANTS: readonly ConvFilterGradVariant[] = ['auto', 'shifted', 'winograd'];
let convFilterGrad: ConvFilterGradVariant | null = null;

/** The variant in force: setConvFilterGradVariant's, else MMLM_CONV_FILTER_GRAD, else 'auto'. */
function convFilterGradVariant(): ConvFilterGradVariant {
  if (convFilterGrad === null) {
    const v = env('MMLM_CONV_FILTER_GRAD') ?? 'auto';
    if (!CONV_FILTER_GRAD_VARIANTS.includes(v as ConvFilterGradVariant))
      throw new Error(`MMLM_CONV_FILTER_GRAD: expected one of ${CONV_FILTER_GRAD_VARIANTS.join(', ')}, got "${v}"`);
    convFilterGrad = v as ConvFilterGradVariant;
  }
  return convFilterGrad;
}

/** Benchmarks and tests: force one filter-gradient variant (returns the previous one). */
export function setConvFilterGradVariant(v: ConvFilterGradVariant): ConvFilterGradVariant {
  if (!CONV_FILTER_GRAD_VARIANTS.includes(v)) throw new Error(`setConvFilterGradVariant: unknown variant "${v}"`);
  const was = convFilterGradVariant();
  convFilterGrad = v;
  return was;
}

/** Which forward convolution conv2DForwardGemm runs; 'auto' is the measured choice (README, issue 17). */
export type ConvForwardVariant = 'auto' | 'shifted' | 'winograd' | 'stock';
const CONV_FORWARD_VARIANTS: readonly ConvForwardVariant[] = ['auto', 'shifted', 'winograd', 'stock'];
let convForward: ConvForwardVariant | null = null;

/** The variant in force: setConvForwardVariant's, else MMLM_CONV_FORWARD (A/B benchmarks), else 'auto'. */
function convForwardVariant(): ConvForwardVariant {
  if (convForward === null) {
    const v = env('MMLM_CONV_FORWARD') ?? 'auto';
    if (!CONV_FORWARD_VARIANTS.includes(v as ConvForwardVariant))
      throw new Error(`MMLM_CONV_FORWARD: expected one of ${CONV_FORWARD_VARIANTS.join(', ')}, got "${v}"`);
    convForward = v as ConvForwardVariant;
  }
  return convForward;
}

/** Benchmarks and tests: force one forward-convolution variant (returns the previous one). */
export function setConvForwardVariant(v: ConvForwardVariant): ConvForwardVariant {
  if (!CONV_FORWARD_VARIANTS.includes(v)) throw new Error(`setConvForwardVariant: unknown variant "${v}"`);
  const was = convForwardVariant();
  convForward = v;
  return was;
}

/**
 * Conv2D (forward) of a stride-1, dilation-1 NHWC float32 convolution as GEMMs, the transpose of
 * filterGradShifted above; `fallback` (the stock XNNPACK kernel) takes everything else. x is copied
 * into xp [B, Hp, Wp, Cin] (zero border and tail); output row k = (b Hp + yR) Wp + yC of
 * yp [B Hp Wp, Cout] is
 *   yp[k] = sum over taps (wR, wC) of xp[k + wR Wp + wC] W[wR, wC]     (W[wR, wC]: [Cin, Cout]),
 * one accumulating GEMM per tap whose A operand is xp at a constant offset; then the OH x OW corner
 * of each image is copied out. No im2col buffer; (Hp Wp) / (OH OW) more multiply-adds.
 * 'auto' (the default) runs it while the native GEMM (the optional OpenBLAS addon) is active. On
 * core's WebAssembly SIMD GEMM it is slower than XNNPACK's convolution (as was an im2col + GEMM
 * variant, on both GEMMs; README, issue 17), so there 'auto' runs a 3x3 stride-1 convolution whose
 * channel counts are multiples of 4 by Winograd F(2x2, 3x3) (winograd.ts: 16 GEMMs of 16/36 of the
 * multiply-adds; 8.6 -> 5.0 ms at [16, 32, 32, 32] -> 32 on one thread) and everything else by the
 * stock kernel. The float32 sums of both run in another order than XNNPACK's, so results differ from
 * the stock kernel in the last bits (tests: against the cpu backend and a float64 direct
 * convolution). MMLM_CONV_FORWARD (auto | shifted | winograd | stock) forces a variant for A/B
 * benchmarks; `stock` gives the results of core before Winograd (2026-12-07) bit for bit.
 */
export function conv2DForwardGemm(args: KernelArgs, fallback: (a: KernelArgs) => tf.TensorInfo): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const be = backend as Backend;
  const x = inputs.x as tf.TensorInfo;
  const filter = inputs.filter as tf.TensorInfo;
  const a = attrs as unknown as ConvAttrs;
  const dil = typeof a.dilations === 'number' ? [a.dilations, a.dilations] : (a.dilations ?? [1, 1]);
  const chosen = convForwardVariant();
  if (
    chosen === 'stock' ||
    (a.dataFormat ?? 'NHWC') !== 'NHWC' ||
    x.dtype !== 'float32' ||
    filter.dtype !== 'float32' ||
    x.shape.length !== 4 ||
    filter.shape.length !== 4 ||
    dil[0] !== 1 ||
    dil[1] !== 1
  )
    return fallback(args);
  const info = nhwcConvInfo(x.shape, filter.shape, a);
  if (chosen === 'auto' && nativeConv()) {
    const y = be.makeOutput([info.batchSize, info.outHeight, info.outWidth, info.outChannels], 'float32');
    const yPtr = be.dataIdMap.get(y.dataId).memoryOffset;
    runNativeConv(be, 0, info, be.dataIdMap.get(x.dataId).memoryOffset, be.dataIdMap.get(filter.dataId).memoryOffset, yPtr);
    return y;
  }
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: Cin, outHeight: OH, outWidth: OW, outChannels: Cout } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const { top, left, bottom, right } = info.padInfo;
  const Hp = H + top + bottom;
  const Wp = W + left + right;
  const shiftable = info.strideHeight === 1 && info.strideWidth === 1 && OH === Hp - kh + 1 && OW === Wp - kw + 1;
  if (!shiftable) return fallback(args);
  if (chosen === 'winograd' || (chosen === 'auto' && !nativeBlas())) {
    // 3 x 3: Winograd (F(2x2, 3x3) or F(4x4, 3x3), channels zero-padded to whole vectors of 4) on
    // core's SIMD GEMM (winograd.ts), in 'auto' where it pays (winogradPays); everything else (other
    // kernel sizes, small narrow layers) XNNPACK's
    const shape = { B, H, W, Cin, Cout, top, left, OH, OW };
    if (kh !== 3 || kw !== 3 || !winogradEligible(shape) || (chosen === 'auto' && !winogradPays(shape))) return fallback(args);
    const out = be.makeOutput([B, OH, OW, Cout], 'float32');
    if (B === 0) return out;
    const wg = winogradFor(be);
    wg.conv(
      gemmFor(be),
      shape,
      be.dataIdMap.get(x.dataId).memoryOffset,
      be.dataIdMap.get(filter.dataId).memoryOffset,
      be.dataIdMap.get(out.dataId).memoryOffset,
    );
    return out;
  }
  const out = be.makeOutput([B, OH, OW, Cout], 'float32');
  const P = OH * OW;
  if (B * P * Cout === 0) return out;
  if (Cin * kh * kw === 0) {
    (be.typedArrayFromHeap(out) as Float32Array).fill(0);
    return out;
  }
  const xPtr = be.dataIdMap.get(x.dataId).memoryOffset;
  const wPtr = be.dataIdMap.get(filter.dataId).memoryOffset;
  const outPtr = be.dataIdMap.get(out.dataId).memoryOffset;
  const g = gemmFor(be);
  const M = B * Hp * Wp; // rows of yp
  const tail = (kh - 1) * Wp + (kw - 1); // xp rows read past the last image by the last taps
  const xpFloats = (M + tail) * Cin;
  const xpPtr = be.wasm._malloc(4 * xpFloats) >>> 0;
  const ypPtr = be.wasm._malloc(4 * M * Cout) >>> 0;
  try {
    let heap = be.wasm.HEAPF32; // after the mallocs, which may grow the heap
    const xs = xPtr >>> 2;
    const xp = xpPtr >>> 2;
    padInputOnHeap(heap, xs, xp, xpFloats, info);
    for (let wR = 0; wR < kh; wR++)
      for (let wC = 0; wC < kw; wC++) {
        const t = wR * kw + wC;
        // yp [M, Cout] (+)= A [M, Cin] W[t] [Cin, Cout], A(k, m) = xp[(k + wR Wp + wC) Cin + m]
        g.gemm(
          M,
          Cout,
          Cin,
          { ptr: xpPtr + 4 * (wR * Wp + wC) * Cin, rs: Cin, cs: 1 },
          { ptr: wPtr + 4 * t * Cin * Cout, rs: Cout, cs: 1 },
          ypPtr,
          Cout,
          t > 0,
        );
      }
    heap = be.wasm.HEAPF32; // re-read: the GEMM may have grown the heap
    const yp = ypPtr >>> 2;
    const os = outPtr >>> 2;
    for (let b = 0; b < B; b++)
      for (let r = 0; r < OH; r++) {
        const from = yp + (b * Hp + r) * Wp * Cout;
        heap.copyWithin(os + (b * OH + r) * OW * Cout, from, from + OW * Cout);
      }
  } finally {
    be.wasm._free(ypPtr);
    be.wasm._free(xpPtr);
  }
  return out;
}

export const wasmGapKernels: tf.KernelConfig[] = [
  { kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc },
  { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    backendName: 'wasm',
    kernelFunc: depthwiseConv2dNativeBackpropFilter as unknown as tf.KernelFunc,
  },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    backendName: 'wasm',
    kernelFunc: depthwiseConv2dNativeBackpropInput as unknown as tf.KernelFunc,
  },
];

/** Register the gap kernels for wasm (only those the backend does not already have). */
export function registerWasmGapKernels(): void {
  for (const k of wasmGapKernels) if (!tf.getKernel(k.kernelName, 'wasm')) tf.registerKernel(k);
}
