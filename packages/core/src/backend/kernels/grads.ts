/**
 * Gradients core registers in place of tfjs-core's, for speed with the same values:
 * - Sum and Mean: tfjs-core writes dx = reshape(dy, kept dims) * ones(x.shape) (/ n for Mean); the
 *   ones are a host-side JavaScript array of x's full size, filled and uploaded at every backward
 *   pass (about 6% of a small decoder's step on wasm). Here the ones come from the backend's Fill
 *   kernel (no host array); the product is the same, element for element. (broadcastTo would skip
 *   the product but runs wasm's Tile kernel, which measured 5x slower than the host ones.)
 */
import { tf } from '../../tf.js';

let registered = false;
const stock = new Map<string, tf.GradConfig>();
const ours: tf.GradConfig[] = [];

/** Reshape of dy [reduced shape] to x's rank with 1 on the reduced axes. */
function expanded(dy: tf.Tensor, x: tf.Tensor, axis: number | number[]): tf.Tensor {
  const shape = x.shape.slice();
  for (const a of tf.util.parseAxisParam(axis, x.shape)) shape[a] = 1;
  return tf.reshape(dy, shape);
}

export function registerCoreGradients(): void {
  if (registered) return;
  registered = true;
  for (const name of ['Sum', 'Mean']) {
    const g = tf.getGradient(name);
    if (g) stock.set(name, g);
  }
  ours.push({
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tf.Tensor];
      const { axis } = attrs as unknown as { axis: number | number[] };
      return { x: () => tf.mul(expanded(dy as tf.Tensor, x, axis), tf.fill(x.shape, 1, 'float32')) };
    },
  });
  ours.push({
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tf.Tensor];
      const { axis } = attrs as unknown as { axis: number | number[] };
      const axes = tf.util.parseAxisParam(axis, x.shape);
      const n = axes.reduce((p, a) => p * (x.shape[a] as number), 1);
      return { x: () => tf.div(tf.mul(expanded(dy as tf.Tensor, x, axis), tf.fill(x.shape, 1, 'float32')), n) };
    },
  });
  for (const g of ours) tf.registerGradient(g);
}

/** Switch between these gradients (default) and tfjs-core's, for A/B benchmarks. */
export function useStockGradients(useStock: boolean): void {
  for (const g of ours) tf.registerGradient(useStock ? (stock.get(g.kernelName) ?? g) : g);
}
