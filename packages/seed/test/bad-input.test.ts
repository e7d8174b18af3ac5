/** Bad input names the thing, the expected value and the actual value. */
import { AdamW, initBackend, Rng, tf } from '@mmlm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CausalQFormer,
  extendedAttentionMask,
  PRESETS,
  SeedTokenizer,
  seedConfig,
  stage1Step,
  stage2Loss,
  stage2Step,
} from '../src/index.js';

let m: SeedTokenizer;
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
  m = new SeedTokenizer(PRESETS.tiny);
});
afterAll(() => m.dispose());

describe('bad input', () => {
  it('wrong image size or layout', () => {
    expect(() => m.encodeCodes(tf.zeros([1, 8, 8, 3]))).toThrow('images must be [B, 16, 16, 3] (NHWC), got shape [1,8,8,3]');
    expect(() => m.causalEmbeddings(tf.zeros([1, 3, 16, 16]))).toThrow('images must be [B, 16, 16, 3] (NHWC), got shape [1,3,16,16]');
    expect(() => m.visual_encoder.forward(tf.zeros([16, 16, 3]))).toThrow(/VisionTransformer.forward: images must be \[B, 16, 16, 3\]/);
    expect(() => m.encodeCodes(tf.zeros([1, 16, 16, 3], 'int32'))).toThrow('images must be float32, got int32');
  });

  it('query count or width mismatch', () => {
    const qf = m.Qformer;
    const image = tf.zeros([1, 17, 16]);
    expect(() => qf.forwardQueries(tf.zeros([1, 3, 16]), image)).toThrow(
      'CausalQFormer: query embeddings must be [1, 4, 16] (numQueries 4), got shape [1,3,16]',
    );
    expect(() => qf.forward(tf.zeros([1, 17, 12]))).toThrow('CausalQFormer: image tokens must be [B, N, 16], got shape [1,17,12]');
    // a checkpoint with another query count does not load
    const other = new CausalQFormer(seedConfig({ qformer: { ...PRESETS.tiny.qformer, numQueries: 6 } }).qformer, 16, new Rng(0));
    expect(() => qf.loadStateDict(other.stateDict())).toThrow(/query_tokens expected \[1,4,16\] got \[1,6,16\]/);
    other.dispose();
    expect(() => m.detokenize(tf.zeros([1, 5, 4]))).toThrow('SeedTokenizer.detokenize: codes must be [B, 4, 4], got shape [1,5,4]');
  });

  it('codes out of range or of the wrong count', () => {
    expect(() => m.decodeCodes([0, 1, 2, 16])).toThrow('index 16 at flat position 3 is out of range [0, 16)');
    expect(() => m.decodeCodes([0, 1, -1, 2])).toThrow('index -1 at flat position 2 is out of range [0, 16)');
    expect(() => m.decodeCodes([0, 1, 2])).toThrow('expected N x 4 codes (numQueries 4), got 3');
  });

  it('text ids, masks, targets and stages', () => {
    const images = tf.zeros([2, 16, 16, 3]);
    expect(() => m.textFeature(tf.tensor2d([[1, 32]], [1, 2], 'int32'))).toThrow('token id 32 at flat index 1 is out of range [0, 32)');
    expect(() => m.textFeature(tf.zeros([1, 9], 'int32'))).toThrow('ids must be int32 [B, L] with 1 <= L <= 8, got int32 [1,9]');
    expect(() => m.textFeature(tf.zeros([1, 3]))).toThrow('got float32 [1,3]');
    expect(() => m.textFeature(tf.zeros([1, 3], 'int32'), tf.ones([1, 2]))).toThrow('keep mask must be [1,3] like the ids, got [1,2]');
    expect(() => stage2Loss(m, { images, target: tf.zeros([2, 5]) })).toThrow(
      'stage2Loss: target must be [2, 8] (genDim 8), got shape [2,5]',
    );
    const opt = new AdamW(m);
    expect(() => stage2Step(m, opt, { images, target: tf.zeros([2, 8]) })).toThrow('the model is in stage 1, expected 2');
    expect(() => stage1Step(m, opt, { images, textIds: tf.zeros([3, 2], 'int32') })).toThrow(
      'textIds must have one row per image (2), got shape [3,2]',
    );
    opt.dispose();
    expect(() => m.setStage(3 as 1)).toThrow('stage must be 1 or 2, got 3');
    expect(() => extendedAttentionMask(tf.ones([4]), true)).toThrow('keep must be [B, S], got shape [4]');
  });
});
