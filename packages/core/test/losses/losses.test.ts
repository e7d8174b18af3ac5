/**
 * Golden values: closed forms written out in the comments, or float64 NumPy evaluations of the
 * reference formulas (torch.nn.CrossEntropyLoss with label_smoothing; BLIP's symmetric ITC loss),
 * pasted as literals. Gradients against central differences.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cosineLoss, crossEntropy, infoNCE, mse, tf } from '../../src/index.js';
import { checkGradients, TEST_BACKENDS, useBackend } from '../../src/testing/index.js';

const val = (t: tf.Tensor): number[] => Array.from(t.dataSync());
const NI = Number.NEGATIVE_INFINITY;

for (const backend of TEST_BACKENDS) {
  describe(`losses on ${backend}`, () => {
    beforeAll(async () => useBackend(backend));

    const logits = () =>
      tf.tensor2d([
        [1, 2, 3],
        [0, 0, 0],
        [5, 1, -1],
      ]);
    const y = () => tf.tensor1d([2, -100, 0], 'int32');

    it('cross-entropy: HF causal-LM mean over non-ignored targets, sum, none', () => {
      // row 0: log(e + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2) = 0.4076059644; row 2: log(1 + e^-4 + e^-6) = 0.0205811389
      expect(Math.log(1 + Math.exp(-1) + Math.exp(-2))).toBeCloseTo(0.4076059644, 9);
      expect(val(crossEntropy(logits(), y()))[0]).toBeCloseTo(0.2140935517, 6);
      expect(val(crossEntropy(logits(), y(), { reduction: 'sum' }))[0]).toBeCloseTo(0.4281871034, 6);
      const none = val(crossEntropy(logits(), y(), { reduction: 'none' }));
      expect(none[0]).toBeCloseTo(0.4076059644, 6);
      expect(none[1]).toBe(0);
      expect(none[2]).toBeCloseTo(0.0205811389, 6);
      expect(val(crossEntropy(logits(), tf.tensor1d([-100, -100, -100], 'int32')))).toEqual([0]); // not NaN
      expect(val(crossEntropy(logits(), tf.tensor1d([7, 7, 7], 'int32'), { ignoreIndex: 7 }))).toEqual([0]);
    });

    it('cross-entropy: z-loss and label smoothing (torch rule) golden values', () => {
      // + 1e-2 * (log Z)^2 per target, mean over targets 0 and 2
      expect(val(crossEntropy(logits(), y(), { zLoss: 1e-2 }))[0]).toBeCloseTo(0.3981836186, 6);
      // (1 - 0.1) nll + 0.1 (log Z - mean x)
      expect(val(crossEntropy(logits(), y(), { labelSmoothing: 0.1 }))[0]).toBeCloseTo(0.4307602184, 6);
    });

    it('cross-entropy on [B, T, V] with ignored positions', () => {
      const l = tf.tensor3d([
        [
          [0.5, -1, 2, 0],
          [1, 1, 1, 1],
        ],
        [
          [3, 0, -2, 1],
          [-1, 0.25, 0.5, 2],
        ],
      ]);
      const t = tf.tensor2d(
        [
          [2, -100],
          [0, 3],
        ],
        undefined,
        'int32',
      );
      expect(val(crossEntropy(l, t))[0]).toBeCloseTo(0.2957146478, 6);
      expect(crossEntropy(l, t, { reduction: 'none' }).shape).toEqual([2, 2]);
    });

    it('cross-entropy: numerically stable for large logits, and -Infinity logits (masked vocabulary) stay finite', () => {
      // log(1 + e^-1) for logits [100, 99]: a naive exp overflows float32 (e^100 > 3.4e38)
      expect(val(crossEntropy(tf.tensor2d([[100, 99]]), tf.tensor1d([0], 'int32')))[0]).toBeCloseTo(Math.log(1 + Math.exp(-1)), 4);
      const masked = tf.tensor2d([[0, NI, 0]]);
      const t = tf.tensor1d([0], 'int32');
      expect(val(crossEntropy(masked, t))[0]).toBeCloseTo(Math.LN2, 6);
      const g = val(tf.grad((x: tf.Tensor) => crossEntropy(x, t))(masked));
      expect(g).toEqual([expect.closeTo(-0.5, 6), 0, expect.closeTo(0.5, 6)]); // softmax - onehot
    });

    it('cross-entropy gradients match finite differences (with z-loss and smoothing)', () => {
      const l = tf.tensor2d([
        [0.3, -0.2, 0.9, 0.1],
        [1.2, 0.4, -0.7, 0.05],
        [-0.5, 0.5, 0.2, 0.8],
      ]);
      const t = tf.tensor1d([2, 0, -100], 'int32');
      checkGradients(([x]) => crossEntropy(x!, t, { zLoss: 1e-2, labelSmoothing: 0.1 }), [l], { atol: 1e-3 });
      checkGradients(([x]) => crossEntropy(x!, t, { reduction: 'sum' }), [l], { atol: 1e-3 });
    });

    it('cross-entropy value and gradient leave no tensors behind', () => {
      const l = tf.tensor2d([
        [0.3, -0.2, 0.9],
        [1.2, 0.4, -0.7],
      ]);
      const t = tf.tensor1d([2, 0], 'int32');
      const run = () =>
        tf.tidy(() =>
          tf
            .grad((x: tf.Tensor) => crossEntropy(x, t, { zLoss: 1e-3 }))(l)
            .sum()
            .dataSync(),
        );
      run();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) run();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([l, t]);
    });

    it('cross-entropy: bad input names the thing, the expected and the actual value', () => {
      expect(() => crossEntropy(logits(), tf.tensor1d([0, 1, 2]))).toThrow(/targets must be int32, got float32/);
      expect(() => crossEntropy(logits(), tf.tensor1d([0, 1], 'int32'))).toThrow(/logits \[3,3\] must be targets \[2\] plus a class axis/);
      expect(() => crossEntropy(logits().toInt(), y())).toThrow(/logits must be float32, got int32/);
      expect(() => crossEntropy(logits(), tf.tensor1d([0, 3, 1], 'int32'))).toThrow(
        /target 3 at flat index 1 must be in \[0, 3\) or be ignoreIndex -100/,
      );
      expect(() => crossEntropy(logits(), tf.tensor1d([0, -1, 1], 'int32'))).toThrow(/target -1 at flat index 1/);
      expect(() => crossEntropy(logits(), y(), { labelSmoothing: 1 })).toThrow(/labelSmoothing must be in \[0, 1\), got 1/);
      expect(() => crossEntropy(logits(), y(), { zLoss: -1 })).toThrow(/zLoss must be a finite number >= 0, got -1/);
      expect(() => crossEntropy(logits(), y(), { ignoreIndex: 0.5 })).toThrow(/ignoreIndex must be an integer, got 0.5/);
      expect(() => crossEntropy(logits(), y(), { reduction: 'avg' as 'mean' })).toThrow(
        /reduction must be one of mean, sum, none, got avg/,
      );
    });

    it('no tensors leak', () => {
      const [l, t] = [logits(), y()];
      crossEntropy(l, t).dispose();
      const n = tf.memory().numTensors;
      crossEntropy(l, t, { zLoss: 1e-4, labelSmoothing: 0.1 }).dispose();
      infoNCE(tf.keep(tf.ones([2, 2])), tf.keep(tf.eye(2)), { labelSmoothing: 0.1 }).dispose();
      expect(tf.memory().numTensors).toBe(n + 2);
    });

    it('mse and cosine loss', () => {
      const a = tf.tensor2d([
        [1, 2],
        [3, 4],
      ]);
      const b = tf.tensor2d([
        [0, 0],
        [3, 6],
      ]);
      // squared errors [1, 4, 0, 4]
      expect(val(mse(a, b))[0]).toBeCloseTo(2.25, 6);
      expect(val(mse(a, b, { reduction: 'sum' }))[0]).toBeCloseTo(9, 6);
      expect(val(mse(a, b, { reduction: 'none' }))).toEqual([1, 4, 0, 4]);
      // cos([1,0],[1,1]) = 1/sqrt2; cos([0,1],[0,-2]) = -1
      const u = tf.tensor2d([
        [1, 0],
        [0, 1],
      ]);
      const v = tf.tensor2d([
        [1, 1],
        [0, -2],
      ]);
      expect(val(cosineLoss(u, v, { reduction: 'none' }))).toEqual([expect.closeTo(1 - Math.SQRT1_2, 6), expect.closeTo(2, 6)]);
      expect(val(cosineLoss(u, v))[0]).toBeCloseTo((3 - Math.SQRT1_2) / 2, 6);
      // a zero vector: cos = 0 (clamped norm), finite gradient
      const z = tf.tensor2d([[0, 0]]);
      expect(val(cosineLoss(z, tf.tensor2d([[1, 2]])))[0]).toBeCloseTo(1, 6);
      expect(val(tf.grad((x: tf.Tensor) => cosineLoss(x, tf.tensor2d([[1, 2]])))(z)).every(Number.isFinite)).toBe(true);
      const p = tf.tensor2d([
        [0.3, -1.2, 0.5],
        [0.9, 0.1, -0.4],
      ]);
      const q = tf.tensor2d([
        [1.1, 0.2, -0.3],
        [-0.6, 0.8, 0.7],
      ]);
      checkGradients(([x, w]) => cosineLoss(x!, w!), [p, q], { atol: 1e-3 });
      checkGradients(([x, w]) => mse(x!, w!), [p, q], { atol: 1e-3 });
      expect(() => mse(a, tf.zeros([2]))).toThrow(/mse: shapes differ: \[2,2\] vs \[2\]/);
      expect(() => cosineLoss(a, tf.zeros([2, 3]))).toThrow(/cosineLoss: shapes differ: \[2,2\] vs \[2,3\]/);
      expect(() => mse(a.toInt(), b.toInt())).toThrow(/mse: inputs must be float32, got int32 and int32/);
    });

    it('InfoNCE 2x2 by hand: identity features, tau 1 -> log(1 + e^-1); smoothing 0.1 adds 0.1 * 0.5', () => {
      // s = I: each row's -log p = [log(1 + e^-1), 1 + log(1 + e^-1)]; both directions equal.
      // smoothing: 0.9 * 0.313262 + 0.1 * mean(0.313262, 1.313262) = 0.313262 + 0.05
      const e = tf.eye(2);
      expect(val(infoNCE(e, e, { temperature: 1 }))[0]).toBeCloseTo(0.3132616875, 6);
      expect(val(infoNCE(e, e, { temperature: 1, labelSmoothing: 0.1 }))[0]).toBeCloseTo(0.3632616875, 6);
      expect(val(infoNCE(e, e, { logitScale: 1 }))[0]).toBeCloseTo(0.3132616875, 6);
    });

    it('InfoNCE 3x2 golden values (BLIP symmetric CE; float64 reference), scaling invariance, logitScale', () => {
      const a = tf.tensor2d([
        [1, 0],
        [0, 1],
        [1, 1],
      ]);
      const b = tf.tensor2d([
        [1, 0],
        [1, 1],
        [0, 1],
      ]);
      expect(val(infoNCE(a, b, { temperature: 0.5 }))[0]).toBeCloseTo(0.990555606, 5);
      expect(val(infoNCE(a, b, { temperature: 0.5, labelSmoothing: 0.1 }))[0]).toBeCloseTo(1.0219825741, 5);
      expect(val(infoNCE(a.mul(3), b.mul(0.2), { temperature: 0.5 }))[0]).toBeCloseTo(0.990555606, 5); // rows are normalised
      expect(val(infoNCE(a, b, { logitScale: 2 }))[0]).toBeCloseTo(0.990555606, 5);
      expect(val(infoNCE(a, b, { temperature: tf.scalar(0.5) }))[0]).toBeCloseTo(0.990555606, 5);
    });

    it('InfoNCE gradients (features and a learnable temperature) match finite differences', () => {
      const a = tf.tensor2d([
        [0.3, -1.2, 0.5],
        [0.9, 0.1, -0.4],
        [-0.2, 0.6, 0.8],
      ]);
      const b = tf.tensor2d([
        [1.1, 0.2, -0.3],
        [-0.6, 0.8, 0.7],
        [0.4, -0.5, 0.9],
      ]);
      const tau = tf.scalar(0.5);
      checkGradients(([x, w, t]) => infoNCE(x!, w!, { temperature: t!, labelSmoothing: 0.1 }), [a, b, tau], { atol: 1e-3 });
      const tv = tf.variable(tf.scalar(0.07));
      const { grads } = tf.variableGrads(() => infoNCE(a, b, { temperature: tv }), [tv]);
      expect(Number.isFinite(val(grads[tv.name]!)[0]!)).toBe(true);
    });

    it('InfoNCE bad input', () => {
      const a = tf.ones([2, 3]);
      expect(() => infoNCE(a, tf.ones([3, 3]))).toThrow(/a and b must both be \[B, D\] with the same shape, got \[2,3\] and \[3,3\]/);
      expect(() => infoNCE(tf.ones([2]), tf.ones([2]))).toThrow(/must both be \[B, D\]/);
      expect(() => infoNCE(a, a, { temperature: 0 })).toThrow(/temperature must be a finite number > 0, got 0/);
      expect(() => infoNCE(a, a, { temperature: tf.ones([2]) })).toThrow(/temperature must be a float32 scalar tensor, got float32 \[2\]/);
      expect(() => infoNCE(a, a, { temperature: 0.1, logitScale: 10 })).toThrow(/give temperature or logitScale, not both/);
      expect(() => infoNCE(a, a, { labelSmoothing: -0.1 })).toThrow(/labelSmoothing must be in \[0, 1\), got -0.1/);
    });
  });
}
