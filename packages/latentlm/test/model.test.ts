/**
 * LatentLM model contract, KV-cache equivalence, generation, parameter counts and bad inputs.
 */
import { AdamW, initBackend, paddingMask, paramGroups, Rng, tf } from '@mmlm/core';
import { runModelContract } from '@mmlm/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildMixedBatch,
  generate,
  LatentLM,
  latentLMLoss,
  latentlmConfig,
  type MixedSequence,
  NoiseSchedule,
  PAPER_SIZES,
  PRESETS,
  paperConfig,
  parameterCount,
  preset,
  resolveModelConfig,
  sampleLatents,
  trainStep,
} from '../src/index.js';

const cfg = PRESETS.tiny.model; // V 16, C 4, D 32; <BOD> 12 <EOD> 13 <LAT> 14 <PAD> 15
const [BOD, EOD, LAT] = [12, 13, 14];
const schedule = new NoiseSchedule();
const diffusion = { alpha: 5, batchMul: 4, predictionType: 'epsilon' as const };
const lat = (n: number, seed: number) => Float32Array.from(new Rng(seed).randn([n * 4]).dataSync());

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});
afterAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

/** A tiny model whose head is not at its zero init. */
function randomHeadModel(seed = 5): LatentLM {
  const m = new LatentLM(cfg);
  const rng = new Rng(seed);
  for (const [, v] of m.diffusion.namedParameters()) v.assign(rng.randn(v.shape, 0, 0.2));
  return m;
}

describe('model contract', () => {
  it('LatentLM (tiny) on cpu and wasm', async () => {
    const seqs: MixedSequence[] = [
      { tokens: [1, 2, BOD, LAT, LAT, EOD, 3], latents: lat(2, 1) },
      { tokens: [4, BOD, LAT, LAT, LAT, EOD, 5], latents: lat(3, 2) },
    ];
    const batch = buildMixedBatch(seqs, cfg);
    const report = await runModelContract<LatentLM>({
      name: 'LatentLM tiny',
      make: (seed) => new LatentLM({ ...cfg, seed }),
      inputs: () => [tf.tensor2d(batch.ids, [2, 6], 'int32'), tf.tensor3d(batch.latents, [2, 6, 4])],
      forward: (m, [ids, l]) => m.lmLogits(m.forwardHidden(ids!, l!)),
      expectedShape: [2, 6, 16],
      loss: (m) => latentLMLoss(m, batch, { schedule, diffusion, rng: new Rng(7) }).loss,
      // the leak check runs the package's own step (AdamW, L_LM + alpha L_Diff, clipping)
      trainStep: (m) => {
        const opt = new AdamW(paramGroups(m), { beta1: 0.9, beta2: 0.98, weightDecay: 0.01 });
        const rng = new Rng(8);
        return {
          step: () => void trainStep(m, opt, batch, { schedule, diffusion, rng, lr: 1e-3, gradClip: 1 }),
          dispose: () => opt.dispose(),
        };
      },
      // adaLN-Zero: at init only the head's final linear receives gradient
      zeroGradOk: (p) => (p.startsWith('diffusion.') && p !== 'diffusion.final_layer.linear.weight') || p.startsWith('condition_layer.'),
    });
    expect(report.numParameters).toBe(parameterCount(resolveModelConfig(cfg)).total);
  });
});

describe('KV cache', () => {
  it('step-by-step decoding with the cache equals the parallel forward (hidden, logits, head condition)', () => {
    const m = randomHeadModel();
    const seqs: MixedSequence[] = [
      { tokens: [1, 2, BOD, LAT, LAT, LAT, EOD, 3], latents: lat(3, 3) },
      { tokens: [4, 5, 6, BOD, LAT, EOD, 7, 8], latents: lat(1, 4) },
    ];
    const b = buildMixedBatch(seqs, cfg);
    const ids = tf.tensor2d(b.ids, [2, 7], 'int32');
    const l = tf.tensor3d(b.latents, [2, 7, 4]);
    const hPar = m.forwardHidden(ids, l);
    const cache = m.newCache();
    const steps: tf.Tensor[] = [];
    for (let j = 0; j < 7; j++) steps.push(m.forwardHidden(ids.slice([0, j], [2, 1]), l.slice([0, j, 0], [2, 1, 4]), { cache }));
    const hSeq = tf.concat(steps, 1);
    expect(hSeq.sub(hPar).abs().max().dataSync()[0]).toBeLessThan(1e-5);
    expect(m.lmLogits(hSeq).sub(m.lmLogits(hPar)).abs().max().dataSync()[0]).toBeLessThan(1e-5);
    expect(m.condition(hSeq).sub(m.condition(hPar)).abs().max().dataSync()[0]).toBeLessThan(1e-5);
    cache.dispose();
    tf.dispose([ids, l, hPar, hSeq, ...steps]);
    m.dispose();
  });

  it('left padding with the mask leaves the real positions unchanged', () => {
    const m = randomHeadModel();
    const short: MixedSequence = { tokens: [3, BOD, LAT, LAT], latents: lat(2, 8) };
    const alone = m.forwardHidden(
      tf.tensor2d([[3, BOD, LAT, LAT]], [1, 4], 'int32'),
      tf.tensor3d([[[0, 0, 0, 0], [0, 0, 0, 0], ...chunk(short.latents!)]]),
    );
    const padded = m.forwardHidden(
      tf.tensor2d([[15, 15, 3, BOD, LAT, LAT]], [1, 6], 'int32'),
      tf.tensor3d([[[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], ...chunk(short.latents!)]]),
      { mask: paddingMask(tf.tensor2d([[0, 0, 1, 1, 1, 1]])) },
    );
    expect(padded.slice([0, 2, 0], [1, 4, 32]).sub(alone).abs().max().dataSync()[0]).toBeLessThan(1e-5);
    m.dispose();
  });
});

function chunk(a: Float32Array): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += 4) out.push(Array.from(a.subarray(i, i + 4)));
  return out;
}

describe('generation', () => {
  it('each sampled latent equals head sampling on the parallel forward of the sequence so far (CFG on)', () => {
    const m = randomHeadModel(6);
    const prompts: MixedSequence[] = [{ tokens: [1, 2, BOD] }, { tokens: [3, BOD] }];
    const uncond: MixedSequence[] = [{ tokens: [0, BOD] }, { tokens: [0, BOD] }];
    const res = generate(m, {
      prompts,
      uncondPrompts: uncond,
      schedule,
      headSteps: 3,
      cfgScale: 2,
      spanLength: 3,
      maxNewTokens: 8,
      stopAfterSpan: true,
      seed: 42,
    });
    expect(res.outputs.map((o) => Array.from(o.tokens))).toEqual([
      [LAT, LAT, LAT, EOD],
      [LAT, LAT, LAT, EOD],
    ]);
    expect(res.spans.map((s) => s.map((x) => x.length))).toEqual([[12], [12]]);
    // the prompt's forward gives latent 1, two fed-back latents give 2 and 3; the last one is not fed back
    expect(res.steps).toBe(2);
    // manual: parallel forward of each (left-padded) prefix, condition at the last position, same rng stream
    const rng = new Rng(42);
    const seqs = [...prompts, ...uncond].map((p) => ({ tokens: Array.from(p.tokens), latents: [] as number[] }));
    for (let k = 0; k < 3; k++) {
      const P = Math.max(...seqs.map((s) => s.tokens.length));
      const ids: number[][] = [];
      const lt: number[][][] = [];
      const keep: number[][] = [];
      for (const s of seqs) {
        const off = P - s.tokens.length;
        ids.push([...Array(off).fill(15), ...s.tokens]);
        keep.push([...Array(off).fill(0), ...Array(s.tokens.length).fill(1)]);
        const rows: number[][] = Array.from({ length: P }, () => [0, 0, 0, 0]);
        let q = 0;
        s.tokens.forEach((t, j) => {
          if (t === LAT) rows[off + j] = s.latents.slice(q * 4, ++q * 4);
        });
        lt.push(rows);
      }
      const h = m.forwardHidden(tf.tensor2d(ids, [4, P], 'int32'), tf.tensor3d(lt), { mask: paddingMask(tf.tensor2d(keep)) });
      const c = m.condition(h.slice([0, P - 1, 0], [4, 1, 32]).reshape([4, 32]));
      const z = sampleLatents(m, c.slice([0, 0], [2, 32]), c.slice([2, 0], [2, 32]), {
        schedule,
        headSteps: 3,
        cfgScale: 2,
        rng,
      }).arraySync();
      for (let r = 0; r < 2; r++) {
        expect(Math.max(...z[r]!.map((v, i) => Math.abs(v - res.spans[r]![0]![k * 4 + i]!)))).toBeLessThan(1e-4);
        for (const s of [seqs[r]!, seqs[r + 2]!]) {
          s.tokens.push(LAT);
          s.latents.push(...z[r]!);
        }
      }
    }
    m.dispose();
  });

  it('head temperature: noiseScale 1 is the default; as tau -> 0 draws from different noise meet; bad values throw', () => {
    const m = randomHeadModel();
    const cond = tf.randomNormal([3, m.config.dim], 0, 1, 'float32', 5);
    const draw = (seed: number, noiseScale?: number) =>
      sampleLatents(m, cond, null, {
        schedule,
        headSteps: 2,
        lambdaMinClipped: -3, // start where alpha is not ~5e-5 (no 2e4-fold amplification of the head's error)
        rng: new Rng(seed),
        ...(noiseScale === undefined ? {} : { noiseScale }),
      });
    const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]!);
    const [base, one] = [draw(9), draw(9, 1)];
    expect(Array.from(one.dataSync())).toEqual(Array.from(base.dataSync()));
    // x_T = tau * n: two noise draws give samples that differ at tau = 1 and nearly coincide at tau = 1e-6 (a random head is very steep)
    const [hotA, hotB, coldA, coldB] = [draw(9, 1), draw(10, 1), draw(9, 1e-6), draw(10, 1e-6)];
    expect(maxDiff(coldA, coldB)).toBeLessThan(maxDiff(hotA, hotB) / 100);
    expect(() => draw(9, 0)).toThrow(/noiseScale must be a finite number > 0, got 0/);
    expect(() => draw(9, Number.NaN)).toThrow(/noiseScale must be a finite number > 0, got NaN/);
    tf.dispose([cond, base, one, hotA, hotB, coldA, coldB]);
    m.dispose();
  });

  it('same seed, same output; no tensor leak', () => {
    const m = randomHeadModel();
    const opts = { prompts: [{ tokens: [1, BOD] }], schedule, headSteps: 2, spanLength: 2, maxNewTokens: 4, seed: 3 };
    const a = generate(m, opts);
    const before = tf.memory().numTensors;
    const b = generate(m, opts);
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(b.outputs[0]!.latents!)).toEqual(Array.from(a.outputs[0]!.latents!));
    m.dispose();
  });

  it('text positions sample the softmax head; a <BOD> opens a span; stop ids end a row', () => {
    const m = randomHeadModel();
    const res = generate(m, {
      prompts: [{ tokens: [1] }],
      schedule,
      headSteps: 2,
      spanLength: 2,
      maxNewTokens: 4,
      allowedIds: [BOD],
      seed: 0,
    });
    expect(Array.from(res.outputs[0]!.tokens)).toEqual([BOD, LAT, LAT, EOD]);
    expect(res.spans[0]!.length).toBe(1);
    const stop = generate(m, {
      prompts: [{ tokens: [1] }, { tokens: [2, 3] }],
      schedule,
      headSteps: 2,
      maxNewTokens: 4,
      allowedIds: [5, 6],
      stopIds: [5, 6],
      seed: 0,
    });
    expect(stop.outputs.map((o) => o.tokens.length)).toEqual([1, 1]);
    expect(stop.steps).toBe(0);
    m.dispose();
  });

  it('bad inputs: unclosed span at the limit, CFG without unconditional prompts, bad prompt', () => {
    const m = randomHeadModel();
    const base = { schedule, headSteps: 2, seed: 0 };
    expect(() => generate(m, { ...base, prompts: [{ tokens: [1, BOD] }], spanLength: 10, maxNewTokens: 3 })).toThrow(
      /row 0 reached the generation limit \(3 new positions; maxNewTokens 3, maxSeqLen 32\) inside a span without <EOD> after 2 latents/,
    );
    const forced = generate(m, { ...base, prompts: [{ tokens: [1, BOD] }], spanLength: 10, maxNewTokens: 3, onUnclosedSpan: 'close' });
    expect(forced.forcedClose).toEqual([true]);
    expect(Array.from(forced.outputs[0]!.tokens)).toEqual([LAT, LAT, EOD]);
    expect(() => generate(m, { ...base, prompts: [{ tokens: [1, BOD] }], cfgScale: 3, maxNewTokens: 3 })).toThrow(
      /cfgScale 3 needs one unconditional prompt per prompt \(1\), got 0/,
    );
    expect(() => generate(m, { ...base, prompts: [{ tokens: [1, LAT] }], maxNewTokens: 3 })).toThrow(
      /prompt 0: <LAT> \(14\) at position 1/,
    );
    expect(() => generate(m, { ...base, prompts: [], maxNewTokens: 3 })).toThrow(/at least one prompt/);
    expect(() => generate(m, { ...base, prompts: [{ tokens: [1] }], maxNewTokens: 0 })).toThrow(
      /maxNewTokens must be a positive integer, got 0/,
    );
    m.dispose();
  });
});

describe('latent dim and shapes', () => {
  it('latent dim mismatch names the expected and actual shapes', () => {
    const m = new LatentLM(cfg);
    expect(() => m.forwardHidden(tf.tensor2d([[1, LAT]], [1, 2], 'int32'), tf.zeros([1, 2, 5]))).toThrow(
      /latents must be \[1, 2, 4\] \(batch, time, latent dim\), got shape \[1,2,5\]/,
    );
    expect(() => m.diffusion.forward(tf.zeros([3, 5]), tf.zeros([3]), tf.zeros([3, 32]))).toThrow(
      /x_t must be \[N, 4\] \(latent dim\), got shape \[3,5\]/,
    );
    expect(() => m.diffusion.forward(tf.zeros([3, 4]), tf.zeros([2]), tf.zeros([3, 32]))).toThrow(/t must be \[3\], got shape \[2\]/);
    expect(() => m.diffusion.forward(tf.zeros([3, 4]), tf.zeros([3]), tf.zeros([3, 16]))).toThrow(
      /condition must be \[3, 32\], got shape \[3,16\]/,
    );
    const b = buildMixedBatch([{ tokens: [1, BOD, LAT, EOD], latents: lat(1, 0) }], cfg);
    expect(() => latentLMLoss(new LatentLM({ ...cfg, latentDim: 8 }), b, { schedule, diffusion, rng: new Rng(0) })).toThrow(
      /batch latent dim 4 does not match the model's latentDim 8/,
    );
    m.dispose();
  });

  it('latent standardisation round-trips and is stored in the state dict', () => {
    const m = new LatentLM(cfg);
    const n0 = tf.memory().numTensors;
    m.setLatentStats({ shift: -0.5, scale: 2 });
    expect(tf.memory().numTensors).toBe(n0);
    const z = tf.tensor1d([0.5, 1.5]);
    expect(Array.from(m.normalizeLatents(z).dataSync())).toEqual([0, 2]);
    expect(Array.from(m.denormalizeLatents(m.normalizeLatents(z)).dataSync())).toEqual([0.5, 1.5]);
    const m2 = new LatentLM(cfg);
    m2.loadStateDict(m.stateDict());
    expect(m2.latentStats()).toEqual({ shift: -0.5, scale: 2 });
    expect(() => m.setLatentStats({ shift: 0, scale: 0 })).toThrow(/positive scale/);
    m.dispose();
    m2.dispose();
  });
});

describe('training step', () => {
  it('lowers the loss on a fixed batch and leaks no tensors', () => {
    const m = new LatentLM(cfg);
    const opt = new AdamW(paramGroups(m), { beta1: 0.9, beta2: 0.98, weightDecay: 0.01 });
    const batch = buildMixedBatch([{ tokens: [1, 2, BOD, LAT, LAT, EOD, 3], latents: lat(2, 1) }], cfg);
    const opts = { schedule, diffusion, lr: 3e-3, gradClip: 1 };
    const first = trainStep(m, opt, batch, { ...opts, rng: new Rng(0) });
    const before = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 30; i++) last = trainStep(m, opt, batch, { ...opts, rng: new Rng(0) });
    expect(tf.memory().numTensors).toBe(before);
    expect(last.loss).toBeLessThan(first.loss);
    expect(last.lm).toBeLessThan(first.lm);
    opt.dispose();
    m.dispose();
  });
});

describe('config and parameter counts', () => {
  it('parameterCount matches the built model (GQA, tied embeddings, explicit FFN)', () => {
    for (const c of [
      cfg,
      resolveModelConfig({ ...cfg, numHeads: 4, numKvHeads: 2 }),
      resolveModelConfig({ ...cfg, tieEmbeddings: true, mlpHidden: 96, diffusionDepth: 3 }),
    ]) {
      const m = new LatentLM(c);
      expect(m.numParameters()).toBe(parameterCount(c).total);
      m.dispose();
    }
  });

  it('paper L: the reference code structure counted by hand, plus our RMSNorm gains and 4 special ids', () => {
    // reference Transformer_L: 32 x (qkv 1024*3072 + proj 1024^2 + SwiGLU 3*1024*2688)
    //   + 8 x (SwiGLU 3*1024*2688 + adaLN 1024*3072) + final (adaLN 1024*2048 + 1024*16)
    //   + condition 1024^2 + t_embedder (256*1024 + 1024^2) + labels 1001*1024 + x/noisy embedders 2*16*1024
    const ref =
      32 * (1024 * 3072 + 1024 * 1024 + 3 * 1024 * 2688) +
      8 * (3 * 1024 * 2688 + 1024 * 3072) +
      (1024 * 2048 + 1024 * 16) +
      1024 * 1024 +
      (256 * 1024 + 1024 * 1024) +
      1001 * 1024 +
      2 * 16 * 1024;
    expect(ref).toBe(495_215_616);
    const ours = parameterCount(paperConfig('L').model).total;
    expect(ours).toBe(ref + 65 * 1024 + 4 * 1024);
    expect(preset('paper').model.dim).toBe(1024);
    // the revision's L (6-layer head, FFN 2730): about 477M vs the paper's 479M
    const rev = parameterCount(paperConfig('L-rev').model).total;
    expect(rev).toBeGreaterThan(476e6);
    expect(rev).toBeLessThan(479e6);
    expect(Object.keys(PAPER_SIZES)).toEqual(['B', 'L', 'H', 'L-rev']);
  });

  it('bad configs name the field and the value', () => {
    expect(() => latentlmConfig({ model: { dim: 30, numHeads: 4 } })).toThrow(/dim \(30\) must be divisible by numHeads \(4\)/);
    expect(() => latentlmConfig({ model: { vocabSize: 16, bodId: 20 } })).toThrow(/bodId must be < vocabSize 16, got 20/);
    expect(() => latentlmConfig({ model: { bodId: 1, eodId: 1 } })).toThrow(/must be distinct/);
    expect(() => latentlmConfig({ diffusion: { predictionType: 'sample' as 'epsilon' } })).toThrow(/diffusion.predictionType/);
    expect(() => latentlmConfig({ model: { latentDim: 0 } })).toThrow(/model.latentDim: .*\(got 0\)/);
    expect(() => preset('huge')).toThrow(/unknown preset "huge"; expected one of tiny, small, paper/);
  });
});
