/**
 * Mixed-sequence routing on hand-built sequences: positions whose target lies inside
 * <BOD> ... <EOD> get the diffusion loss only, every other position cross-entropy only.
 */
import { initBackend, Rng, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildMixedBatch,
  IGNORE_INDEX,
  LatentLM,
  latentLMLoss,
  type MixedSequence,
  NoiseSchedule,
  PRESETS,
  validateMixedSequence,
} from '../src/index.js';
import { drawDiffusionTargets } from '../src/train.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

const cfg = PRESETS.tiny.model; // vocab 16: <BOD> 12, <EOD> 13, <LAT> 14, <PAD> 15; C = 4
const [BOD, EOD, LAT, PAD] = [12, 13, 14, 15];
const X = -100;
const lat = (n: number, base: number) => Float32Array.from({ length: n * 4 }, (_, i) => base + i / 10);

// text, a 3-latent span, text
const seqA: MixedSequence = { tokens: [1, 2, BOD, LAT, LAT, LAT, EOD, 3, 4], latents: lat(3, 1) };
// a shorter row: padded
const seqB: MixedSequence = { tokens: [5, BOD, LAT, EOD], latents: lat(1, -1) };

describe('span grammar', () => {
  it('counts latents and open spans', () => {
    expect(cfg.bodId).toBe(BOD);
    expect(cfg.padId).toBe(PAD);
    expect(validateMixedSequence(seqA, cfg)).toEqual({ numLatents: 3, openSpan: false, openSpanLength: 0 });
    expect(validateMixedSequence({ tokens: [1, BOD, LAT], latents: lat(1, 0) }, cfg, { allowOpenSpan: true })).toEqual({
      numLatents: 1,
      openSpan: true,
      openSpanLength: 1,
    });
  });

  it('bad sequences name the position and the problem', () => {
    expect(() => validateMixedSequence({ tokens: [1, LAT, 2], latents: lat(1, 0) }, cfg)).toThrow(
      /<LAT> \(14\) at position 1 is outside a <BOD> ... <EOD> span/,
    );
    expect(() => validateMixedSequence({ tokens: [BOD, LAT, 3, EOD], latents: lat(1, 0) }, cfg)).toThrow(
      /token 2 \(id 3\) inside the span opened by <BOD> at 0/,
    );
    expect(() => validateMixedSequence({ tokens: [1, EOD] }, cfg)).toThrow(/<EOD> \(13\) at position 1 closes no span/);
    expect(() => validateMixedSequence({ tokens: [1, BOD, LAT], latents: lat(1, 0) }, cfg)).toThrow(
      /span opened by <BOD> at position 1 has no <EOD>/,
    );
    expect(() => validateMixedSequence({ tokens: [BOD, LAT, LAT, EOD], latents: lat(1, 0) }, cfg)).toThrow(
      /2 <LAT> positions need 8 latent values \(latent dim 4\), got 4/,
    );
    expect(() => validateMixedSequence({ tokens: [1, 16] }, cfg)).toThrow(/token 1 must be an integer id in \[0, 16\), got 16/);
    expect(() => validateMixedSequence({ tokens: [1, 2], lossMask: [1] }, cfg)).toThrow(
      /lossMask must have one entry per token \(2\), got 1/,
    );
  });
});

describe('teacher-forcing batch routing', () => {
  it('targets inside a span go to diffusion only, all others to cross-entropy only', () => {
    const b = buildMixedBatch([seqA, seqB], cfg);
    expect([b.B, b.T, b.C]).toEqual([2, 8, 4]);
    expect(Array.from(b.ids)).toEqual([1, 2, BOD, LAT, LAT, LAT, EOD, 3, 5, BOD, LAT, PAD, PAD, PAD, PAD, PAD]);
    // row A: targets 2, <BOD>, z1, z2, z3, <EOD>, 3, 4 ; row B: <BOD>, z1, <EOD>
    expect(Array.from(b.ceTargets)).toEqual([2, BOD, X, X, X, EOD, 3, 4, BOD, X, EOD, X, X, X, X, X]);
    expect(Array.from(b.diffIndex)).toEqual([2, 3, 4, 9]);
    expect(Array.from(b.diffTargets)).toEqual([...lat(3, 1), ...lat(1, -1)]);
    // every position is routed to at most one loss
    const diff = new Set(b.diffIndex);
    for (let p = 0; p < b.B * b.T; p++) expect(diff.has(p) && b.ceTargets[p] !== IGNORE_INDEX).toBe(false);
    // input latents sit at <LAT> inputs only (z1, z2 of A; z1 of B)
    expect(Array.from(b.latents.subarray(3 * 4, 6 * 4))).toEqual(Array.from(lat(3, 1)));
    expect(Array.from(b.latents.subarray(10 * 4, 11 * 4))).toEqual(Array.from(lat(1, -1)));
    expect(b.latents.subarray(0, 3 * 4).every((v) => v === 0)).toBe(true);
  });

  it('spanStop also trains the softmax head towards <LAT> where the target is a latent', () => {
    const b = buildMixedBatch([seqA], cfg, { spanStop: true });
    expect(Array.from(b.ceTargets)).toEqual([2, BOD, LAT, LAT, LAT, EOD, 3, 4]);
    expect(Array.from(b.diffIndex)).toEqual([2, 3, 4]);
  });

  it('lossMask removes targets from both losses', () => {
    const b = buildMixedBatch([{ ...seqA, lossMask: [1, 0, 0, 1, 0, 1, 1, 0, 1] }], cfg);
    expect(Array.from(b.ceTargets)).toEqual([X, X, X, X, X, EOD, X, 4]);
    expect(Array.from(b.diffIndex)).toEqual([2, 4]);
  });

  it('bad batches', () => {
    expect(() => buildMixedBatch([], cfg)).toThrow(/at least one sequence/);
    expect(() => buildMixedBatch([{ tokens: [1] }], cfg)).toThrow(/sequence 0 needs at least 2 tokens, got 1/);
    expect(() => buildMixedBatch([seqA, { tokens: [1, LAT, 2], latents: lat(1, 0) }], cfg)).toThrow(
      /sequence 1: <LAT> \(14\) at position 1/,
    );
  });
});

describe('loss routing', () => {
  const schedule = new NoiseSchedule();
  const diffusion = { alpha: 5, batchMul: 4, predictionType: 'epsilon' as const };

  function model(): LatentLM {
    const m = new LatentLM(cfg);
    const rng = new Rng(4);
    // a non-zero head so the diffusion loss depends on everything
    for (const [, v] of m.diffusion.namedParameters()) v.assign(rng.randn(v.shape, 0, 0.2));
    return m;
  }

  it('L_LM is the CE over non-span targets and L_Diff the MSE over span targets (manual recomputation)', () => {
    const m = model();
    const batch = buildMixedBatch([seqA, seqB], cfg);
    const parts = latentLMLoss(m, batch, { schedule, diffusion, rng: new Rng(11) });
    // manual CE from the logits
    const h = m.forwardHidden(tf.tensor2d(batch.ids, [2, 8], 'int32'), tf.tensor3d(batch.latents, [2, 8, 4]));
    const logp = tf.logSoftmax(m.lmLogits(h), -1).arraySync() as number[][][];
    const ceRows: [number, number, number][] = [
      [0, 0, 2],
      [0, 1, BOD],
      [0, 5, EOD],
      [0, 6, 3],
      [0, 7, 4],
      [1, 0, BOD],
      [1, 2, EOD],
    ];
    const ce = -ceRows.reduce((a, [b, j, y]) => a + logp[b]![j]![y]!, 0) / ceRows.length;
    expect(parts.lm.dataSync()[0]).toBeCloseTo(ce, 5);
    // manual diffusion loss: same draws (same seed), head called directly on each (position, copy)
    const { rows, t, eps } = drawDiffusionTargets(4, 4, 4, schedule, new Rng(11));
    const cond = m.condition(h).reshape([16, 32]).arraySync() as number[][];
    const epsA = eps.arraySync() as number[][];
    const positions = [2, 3, 4, 9];
    let sq = 0;
    for (let i = 0; i < rows.length; i++) {
      const n = rows[i]!;
      const x0 = Array.from(batch.diffTargets.subarray(n * 4, n * 4 + 4));
      const ab = schedule.alphasCumprod[t[i]!] as number;
      const xt = x0.map((v, c) => Math.sqrt(ab) * v + Math.sqrt(1 - ab) * epsA[i]![c]!);
      const pred = m.diffusion.forward(tf.tensor2d([xt]), tf.tensor1d([t[i]!]), tf.tensor2d([cond[positions[n]!]!])).dataSync();
      for (let c = 0; c < 4; c++) sq += (pred[c]! - epsA[i]![c]!) ** 2;
    }
    expect(parts.diff.dataSync()[0]).toBeCloseTo(sq / (16 * 4), 5);
    expect(parts.loss.dataSync()[0]).toBeCloseTo(ce + 5 * (sq / 64), 4);
    m.dispose();
  });

  it('changing span targets moves only L_Diff; changing text targets moves only L_LM', () => {
    const m = model();
    const run = (b: ReturnType<typeof buildMixedBatch>) => {
      const p = latentLMLoss(m, b, { schedule, diffusion, rng: new Rng(2) });
      return [p.lm.dataSync()[0]!, p.diff.dataSync()[0]!];
    };
    const base = run(buildMixedBatch([seqA], cfg));
    // the diffusion targets (not the inputs) moved
    const moved = buildMixedBatch([seqA], cfg);
    moved.diffTargets.fill(7, 8);
    const a = run(moved);
    expect(a[0]).toBe(base[0]);
    expect(a[1]).not.toBe(base[1]);
    // the last text token is only a target: changing it moves L_LM only
    const b = run(buildMixedBatch([{ ...seqA, tokens: [1, 2, BOD, LAT, LAT, LAT, EOD, 3, 9] }], cfg));
    expect(b[0]).not.toBe(base[0]);
    expect(b[1]).toBe(base[1]);
    m.dispose();
  });

  it('no span: L_Diff = 0; only a span: L_LM over <BOD>/<EOD> targets; no leaks', () => {
    const m = model();
    const text = latentLMLoss(m, buildMixedBatch([{ tokens: [1, 2, 3] }], cfg), { schedule, diffusion, rng: new Rng(0) });
    expect(text.diff.dataSync()[0]).toBe(0);
    const before = tf.memory().numTensors;
    const p = latentLMLoss(m, buildMixedBatch([seqB], cfg), { schedule, diffusion, rng: new Rng(0) });
    expect(tf.memory().numTensors).toBe(before + 3);
    tf.dispose([p.loss, p.lm, p.diff]);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});
