/**
 * Kernels the stock wasm backend lacks and training needs (see anchors: UnsortedSegmentSum is the
 * gather/embedding gradient; Conv2DBackpropFilter is the conv weight gradient).
 */
import { tf } from '../../tf.js';

interface WasmBackendLike {
  readSync(dataId: object): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** UnsortedSegmentSum: out[ids[i], ...] += x[i, ...]; ids outside [0, numSegments) are dropped. */
function unsortedSegmentSum({
  inputs,
  backend,
  attrs,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const be = backend as WasmBackendLike;
  const x = inputs.x as tf.TensorInfo;
  const segmentIds = inputs.segmentIds as tf.TensorInfo;
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const xv = be.readSync(x.dataId);
  const ids = be.readSync(segmentIds.dataId);
  // ids may have rank > 1 (a prefix of x's shape); the segment axis is the flattened prefix.
  const outer = ids.length;
  const inner = x.shape.slice(segmentIds.shape.length).reduce((a, b) => a * b, 1);
  const out = be.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
  const ov = be.typedArrayFromHeap(out);
  ov.fill(0);
  for (let i = 0; i < outer; i++) {
    const s = ids[i] as number;
    if (s < 0 || s >= numSegments) continue;
    const o = s * inner;
    const xi = i * inner;
    for (let j = 0; j < inner; j++) ov[o + j] += xv[xi + j] as number;
  }
  return out;
}

export function registerWasmGapKernels(): void {
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc });
}
