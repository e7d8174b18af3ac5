/**
 * Windows of token ids for next-token training (nanoGPT's `get_batch`): each batch row is T + 1
 * consecutive ids starting at a random offset, so inputs are row[0..T) and targets row[1..T].
 * Random offsets come from a seeded stream, so a seed fixes the whole sequence of batches and the
 * batcher's state can be saved with a checkpoint and restored.
 */
import { Rng, type RngState, tf } from '@mmlm/core';

export interface WindowBatch {
  /** Row-major ids, shape [B, T + 1]. */
  data: Int32Array;
  shape: [number, number];
  /** Start offset of each row in the id sequence. */
  offsets: Int32Array;
}

export interface WindowBatcherOptions {
  batchSize: number;
  /** T: the context length; each row holds T + 1 ids. */
  blockSize: number;
  seed: number;
}

function checkIds(who: string, ids: ArrayLike<number>, batchSize: number, blockSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`${who}: batchSize must be an integer >= 1, got ${batchSize}`);
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`${who}: blockSize must be an integer >= 1, got ${blockSize}`);
  if (ids.length < blockSize + 1) throw new Error(`${who}: need at least blockSize + 1 = ${blockSize + 1} ids, got ${ids.length}`);
}

function gather(ids: ArrayLike<number>, offsets: Int32Array, width: number): Int32Array {
  const out = new Int32Array(offsets.length * width);
  for (let b = 0; b < offsets.length; b++) for (let t = 0; t < width; t++) out[b * width + t] = ids[offsets[b]! + t]!;
  return out;
}

/** Random [B, T + 1] windows, deterministic by seed; iterate it or call `next()`. */
export class WindowBatcher implements Iterable<WindowBatch> {
  readonly batchSize: number;
  readonly blockSize: number;
  private readonly ids: ArrayLike<number>;
  private rng: Rng;

  constructor(ids: ArrayLike<number>, opts: WindowBatcherOptions) {
    checkIds('WindowBatcher', ids, opts.batchSize, opts.blockSize);
    if (!Number.isFinite(opts.seed)) throw new Error(`WindowBatcher: seed must be a finite number, got ${opts.seed}`);
    this.ids = ids;
    this.batchSize = opts.batchSize;
    this.blockSize = opts.blockSize;
    this.rng = new Rng(opts.seed);
  }

  next(): WindowBatch {
    const width = this.blockSize + 1;
    const offsets = new Int32Array(this.batchSize);
    for (let b = 0; b < this.batchSize; b++) offsets[b] = this.rng.int(0, this.ids.length - width + 1);
    return { data: gather(this.ids, offsets, width), shape: [this.batchSize, width], offsets };
  }

  *[Symbol.iterator](): Iterator<WindowBatch> {
    for (;;) yield this.next();
  }

  getState(): RngState {
    return this.rng.getState();
  }

  setState(state: RngState): void {
    this.rng.setState(state);
  }
}

/**
 * Non-overlapping windows covering the ids in order, for evaluation: every id except the first is a
 * target exactly once in windows starting at 0, T, 2T, ...; the last batch may have fewer rows, and
 * a final stretch shorter than T + 1 ids is dropped.
 */
export function* sequentialWindows(ids: ArrayLike<number>, opts: { batchSize: number; blockSize: number }): Generator<WindowBatch> {
  checkIds('sequentialWindows', ids, opts.batchSize, opts.blockSize);
  const width = opts.blockSize + 1;
  const starts: number[] = [];
  for (let s = 0; s + width <= ids.length; s += opts.blockSize) starts.push(s);
  for (let i = 0; i < starts.length; i += opts.batchSize) {
    const offsets = Int32Array.from(starts.slice(i, i + opts.batchSize));
    yield { data: gather(ids, offsets, width), shape: [offsets.length, width], offsets };
  }
}

/** Inputs row[0..T) and targets row[1..T] of a batch, each [B, T]. */
export function inputsAndTargets(batch: WindowBatch): { inputs: Int32Array; targets: Int32Array; shape: [number, number] } {
  const [B, W] = batch.shape;
  const T = W - 1;
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    inputs.set(batch.data.subarray(b * W, b * W + T), b * T);
    targets.set(batch.data.subarray(b * W + 1, b * W + W), b * T);
  }
  return { inputs, targets, shape: [B, T] };
}

/** The batch as int32 tensors x [B, T] and y [B, T]; the caller disposes them. */
export function batchToTensors(batch: WindowBatch): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const { inputs, targets, shape } = inputsAndTargets(batch);
  return { x: tf.tensor2d(inputs, shape, 'int32'), y: tf.tensor2d(targets, shape, 'int32') };
}
