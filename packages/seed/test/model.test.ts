/** The model contract of DESIGN.md for the ViT encoder, the Causal Q-Former and the tokenizer in both stages (cpu and wasm). */
import { AdamW, initBackend, Rng, tf } from '@mmlm/core';
import { runModelContract } from '@mmlm/core/testing';
import { describe, expect, it } from 'vitest';
import {
  CausalQFormer,
  PRESETS,
  SeedTokenizer,
  seedConfig,
  stage1Loss,
  stage1Step,
  stage2Loss,
  stage2Losses,
  stage2Step,
  VisionTransformer,
} from '../src/index.js';

const tiny = PRESETS.tiny;
const B = 2;
const images = () => new Rng(7).rand([B, 16, 16, 3]);
const textIds = () => tf.tensor2d([1, 4, 5, 6, 1, 7, 8, 0], [B, 4], 'int32');
const textKeep = () => tf.tensor2d([1, 1, 1, 1, 1, 1, 1, 0], [B, 4]);

describe('model contract', () => {
  it('VisionTransformer (the EVA-CLIP stand-in)', async () => {
    const r = await runModelContract({
      name: 'seed VisionTransformer',
      make: (seed) => new VisionTransformer(tiny.vit, new Rng(seed)),
      inputs: () => [images()],
      forward: (m, [x]) => m.forward(x!),
      expectedShape: [B, 17, tiny.vit.width],
    });
    expect(r.backends).toEqual(['cpu', 'wasm']);
  });

  it('CausalQFormer (query and text branches)', async () => {
    const N = 17;
    await runModelContract({
      name: 'seed CausalQFormer',
      make: (seed) => new CausalQFormer(tiny.qformer, tiny.vit.width, new Rng(seed)),
      inputs: () => [new Rng(8).randn([B, N, tiny.vit.width]), textIds(), textKeep()],
      forward: (m, [img]) => m.forward(img!),
      expectedShape: [B, tiny.qformer.numQueries, tiny.qformer.hiddenSize],
      // the text FFN and the text embeddings are trained only through the text branch
      loss: (m, [img, ids, keep]) =>
        tf.tidy(() => m.forward(img!).square().mean().add(m.encodeText(ids!, keep!).square().mean()) as tf.Scalar),
    });
  });

  it('SeedTokenizer stage I (ITC, learnable temperature; the ViT frozen)', async () => {
    await runModelContract({
      name: 'seed tokenizer stage I',
      make: (seed) => new SeedTokenizer({ ...tiny, seed }),
      inputs: () => [images(), textIds(), textKeep()],
      forward: (m, [x]) => m.imageFeature(m.causalEmbeddings(x!)),
      expectedShape: [B, tiny.contrastive.embedDim],
      loss: (m, [x, ids, keep]) => stage1Loss(m, { images: x!, textIds: ids!, textKeep: keep! }),
      trainStep: (m) => {
        const opt = new AdamW(m, { lr: 1e-3 });
        return {
          step: ([x, ids, keep]) => void stage1Step(m, opt, { images: x!, textIds: ids!, textKeep: keep! }),
          dispose: () => opt.dispose(),
        };
      },
    });
  });

  it('SeedTokenizer stage II (VQ, de-tokenizer, generation head; the Q-Former frozen)', async () => {
    await runModelContract({
      name: 'seed tokenizer stage II',
      make: (seed) => new SeedTokenizer({ ...tiny, seed }).setStage(2),
      inputs: () => [images(), new Rng(9).randn([B, tiny.decoder.genDim])],
      forward: (m, [x]) => {
        const vq = m.quantizeEmbeddings(m.causalEmbeddings(x!));
        return m.detokenize(vq.zq).gen;
      },
      expectedShape: [B, tiny.decoder.genDim],
      loss: (m, [x, target]) => stage2Loss(m, { images: x!, target: target! }),
      trainStep: (m) => {
        const opt = new AdamW(m, { lr: 1e-3 });
        return { step: ([x, target]) => void stage2Step(m, opt, { images: x!, target: target! }), dispose: () => opt.dispose() };
      },
    });
  });
});

describe('stages', () => {
  it('stage I trains ln_vision, the Q-Former, the projections and temp; stage II only the stage-II parts', async () => {
    await initBackend({ backend: 'cpu', log: false });
    const m = new SeedTokenizer(tiny);
    const tops = (pred: boolean) => [
      ...new Set(
        m
          .namedParameters()
          .filter(([, v]) => v.trainable === pred)
          .map(([p]) => p.split('.')[0]),
      ),
    ];
    expect(tops(true).sort()).toEqual(['Qformer', 'ln_vision', 'temp', 'text_proj', 'vision_proj']);
    m.setStage(2);
    expect(tops(true).sort()).toEqual(
      [
        'blocks',
        'blocks_image',
        'decode_task_layer',
        'distill_image_proj',
        'encode_task_layer',
        'image_down',
        'pos_embed',
        'pos_embed_image',
        'quantize',
      ].sort(),
    );
    expect(tops(false)).toContain('visual_encoder');
    expect(m.namedParameters().map(([p]) => p)).toContain('Qformer.layer.0.crossattention.self.kv.weight');
    expect(m.namedParameters().map(([p]) => p)).not.toContain('Qformer.layer.1.crossattention.self.kv.weight');
    expect(m.namedParameters().map(([p]) => p)).toContain('quantize.embedding.weight');
    m.dispose();
  });

  it('no tensor leak over train steps with k-means init, EMA and dead-code restarts; stage I clamps temp', async () => {
    await initBackend({ backend: 'cpu', log: false });
    const m = new SeedTokenizer(seedConfig({ ...tiny, quantizer: { ...tiny.quantizer, kmeansInit: true, deadCodeSteps: 1 } }));
    const x = images();
    const ids = textIds();
    const target = new Rng(9).randn([B, tiny.decoder.genDim]);
    let opt = new AdamW(m, { lr: 1e-3 });
    m.temp.assign(tf.scalar(0.9));
    stage1Step(m, opt, { images: x, textIds: ids });
    expect(m.temp.dataSync()[0]).toBeLessThanOrEqual(0.5 + 1e-3);
    let before = tf.memory().numTensors;
    stage1Step(m, opt, { images: x, textIds: ids });
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    m.setStage(2);
    opt = new AdamW(m, { lr: 1e-3 });
    expect(m.quantize.needsInit).toBe(true);
    stage2Step(m, opt, { images: x, target });
    expect(m.quantize.needsInit).toBe(false);
    before = tf.memory().numTensors;
    const { loss } = stage2Step(m, opt, { images: x, target });
    expect(tf.memory().numTensors).toBe(before);
    expect(Number.isFinite(loss)).toBe(true);
    opt.dispose();
    const em = new SeedTokenizer(seedConfig({ ...tiny, quantizer: { ...tiny.quantizer, emaDecay: 0.9 } })).setStage(2);
    opt = new AdamW(em, { lr: 1e-3 });
    stage2Step(em, opt, { images: x, target });
    before = tf.memory().numTensors;
    stage2Step(em, opt, { images: x, target });
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    em.dispose();
    m.dispose();
  });

  it('a few stage-II steps lower the loss; codes are in range and the encoder is deterministic', async () => {
    await initBackend({ backend: 'cpu', log: false });
    const m = new SeedTokenizer(tiny).setStage(2);
    const x = images();
    const target = new Rng(9).randn([B, tiny.decoder.genDim]);
    const opt = new AdamW(m, { lr: 3e-3 });
    const first = stage2Step(m, opt, { images: x, target }).loss;
    let last = first;
    for (let i = 0; i < 15; i++) last = stage2Step(m, opt, { images: x, target }).loss;
    expect(last).toBeLessThan(first);
    const codes = m.encodeCodes(x);
    expect(codes.length).toBe(B * tiny.qformer.numQueries);
    expect(codes.every((k) => k >= 0 && k < tiny.quantizer.numCodes)).toBe(true);
    expect(Array.from(m.encodeCodes(x))).toEqual(Array.from(codes));
    const parts = stage2Losses(m, { images: x, target });
    expect(parts.usage.dataSync()[0]).toBeGreaterThan(0);
    opt.dispose();
    m.dispose();
  });
});
