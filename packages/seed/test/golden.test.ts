/** Golden values of brief sec. 1.9, computed independently here in float64. */
import { initBackend, Rng, tf } from '@mmlm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { contrastiveLoss, extendedAttentionMask, MASK_VALUE, PRESETS, SeedTokenizer, stage1Loss, stage2Losses } from '../src/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

const rows = (t: tf.Tensor): number[][] => t.arraySync() as number[][];

/** BLIP-style symmetric CE with label smoothing on L2-normalised rows, float64. */
function itc64(a: number[][], b: number[][], tau: number, eps: number): number {
  const norm = (r: number[]) => {
    const n = Math.max(Math.sqrt(r.reduce((s, x) => s + x * x, 0)), 1e-12);
    return r.map((x) => x / n);
  };
  const an = a.map(norm);
  const bn = b.map(norm);
  const B = a.length;
  const s = an.map((ra) => bn.map((rb) => ra.reduce((acc, x, k) => acc + x * rb[k]!, 0) / tau));
  const ce = (m: number[][]) => {
    let total = 0;
    for (let i = 0; i < B; i++) {
      const row = m[i]!;
      const mx = Math.max(...row);
      const logZ = mx + Math.log(row.reduce((acc, x) => acc + Math.exp(x - mx), 0));
      const nll = logZ - row[i]!;
      const smooth = logZ - row.reduce((acc, x) => acc + x, 0) / B;
      total += (1 - eps) * nll + eps * smooth;
    }
    return total / B;
  };
  const sT = s[0]!.map((_, j) => s.map((r) => r[j]!));
  return (ce(s) + ce(sT)) / 2;
}

describe('golden values', () => {
  it('causal extended mask: 0 on and below the diagonal, -1e4 above, [B, 1, 32, 32]', () => {
    const m = extendedAttentionMask(tf.ones([2, 32]), true);
    expect(m.shape).toEqual([2, 1, 32, 32]);
    const v = m.arraySync() as number[][][][];
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 32; i++) for (let j = 0; j < 32; j++) expect(v[b]![0]![i]![j]).toBe(j <= i ? 0 : MASK_VALUE);
    expect(MASK_VALUE).toBe(-10000);
    m.dispose();
  });

  it('extended mask with padding: masked keys get -1e4 in every row; non-causal is [B, 1, 1, S]', () => {
    const keep = tf.tensor2d([[1, 1, 0]]);
    const c = extendedAttentionMask(keep, true).arraySync() as number[][][][];
    expect(c[0]![0]).toEqual([
      [0, MASK_VALUE, MASK_VALUE],
      [0, 0, MASK_VALUE],
      [0, 0, MASK_VALUE],
    ]);
    const p = extendedAttentionMask(keep, false);
    expect(p.shape).toEqual([1, 1, 1, 3]);
    expect(Array.from(p.dataSync())).toEqual([0, 0, MASK_VALUE]);
    p.dispose();
    keep.dispose();
  });

  it('contrastive loss on fixed features matches symmetric CE with label smoothing 0.1 (float64)', () => {
    const a = [
      [0.3, -1.2, 0.5],
      [1.1, 0.4, -0.2],
      [-0.7, 0.9, 1.3],
      [0.2, 0.1, -0.9],
    ];
    const b = [
      [0.1, -0.8, 0.9],
      [1.4, 0.2, 0.3],
      [-0.2, 1.1, 0.6],
      [0.5, -0.4, -1.0],
    ];
    for (const tau of [0.07, 0.5]) {
      const got = contrastiveLoss(tf.tensor2d(a), tf.tensor2d(b), tau, 0.1);
      expect(got.dataSync()[0]).toBeCloseTo(itc64(a, b, tau, 0.1), 4);
      got.dispose();
    }
    // with a tensor temperature (the learnable `temp`)
    const t = tf.scalar(0.07);
    const got = contrastiveLoss(tf.tensor2d(a), tf.tensor2d(b), t);
    expect(got.dataSync()[0]).toBeCloseTo(itc64(a, b, 0.07, 0.1), 4);
  });

  it('stage1Loss = ITC of vision_proj(last query) against text_proj(text CLS), tau = temp (init 0.07)', () => {
    const m = new SeedTokenizer(PRESETS.tiny);
    expect(m.temp.dataSync()[0]).toBeCloseTo(0.07, 7);
    const images = new Rng(3).rand([3, 16, 16, 3]);
    const textIds = tf.tensor2d(
      [
        [1, 4, 5, 0],
        [1, 6, 7, 8],
        [1, 9, 0, 0],
      ],
      [3, 4],
      'int32',
    );
    const textKeep = tf.tensor2d([
      [1, 1, 1, 0],
      [1, 1, 1, 1],
      [1, 1, 0, 0],
    ]);
    const q = m.causalEmbeddings(images); // [3, Q, H]
    const Q = m.numQueries;
    const H = PRESETS.tiny.qformer.hiddenSize;
    const last = q.slice([0, Q - 1, 0], [3, 1, H]).reshape([3, H]);
    const v = rows(m.vision_proj.forward(last));
    const hText = m.Qformer.encodeText(textIds, textKeep);
    const t = rows(m.text_proj.forward(hText.slice([0, 0, 0], [3, 1, H]).reshape([3, H])));
    const loss = stage1Loss(m, { images, textIds, textKeep });
    expect(loss.dataSync()[0]).toBeCloseTo(itc64(v, t, 0.07, 0.1), 4);
    // padding: a padded position's token does not change the text feature
    const other = tf.tensor2d([[1, 4, 5, 9]], [1, 4], 'int32');
    const f1 = m.textFeature(textIds.slice([0, 0], [1, 4]), textKeep.slice([0, 0], [1, 4]));
    const f2 = m.textFeature(other, textKeep.slice([0, 0], [1, 4]));
    expect(Math.max(...Array.from(f1.sub(f2).abs().dataSync()))).toBeLessThan(1e-6);
    m.dispose();
  });

  it('stage2: L = 5 vq + 2 rec + 0.5 gen with legacy VQ (commit + 0.25 codebook) and 1 - cos, by hand', () => {
    const m = new SeedTokenizer(PRESETS.tiny).setStage(2);
    m.eval();
    const images = new Rng(4).rand([2, 16, 16, 3]);
    const target = new Rng(5).randn([2, PRESETS.tiny.decoder.genDim]);
    const q = m.causalEmbeddings(images);
    const z = rows(m.encode_task_layer.forward(q).reshape([-1, PRESETS.tiny.quantizer.codeDim]));
    const e = rows(m.quantize.embedding.weight);
    // nearest code by brute force, float64
    let sq = 0;
    const idx = z.map((r) => {
      let best = 0;
      let bestD = Number.POSITIVE_INFINITY;
      e.forEach((c, k) => {
        const d = r.reduce((s, x, j) => s + (x - c[j]!) ** 2, 0);
        if (d < bestD) {
          bestD = d;
          best = k;
        }
      });
      sq += bestD;
      return best;
    });
    const mse64 = sq / (z.length * z[0]!.length);
    const codes = m.encodeCodes(images);
    expect(Array.from(codes)).toEqual(idx);
    const { causal, gen } = m.decodeCodes(codes);
    const qr = q.arraySync() as number[][][];
    const cr = causal.arraySync() as number[][][];
    let rec = 0;
    let n = 0;
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < m.numQueries; i++) {
        const x = cr[b]![i]!;
        const y = qr[b]![i]!;
        const dot = x.reduce((s, v, k) => s + v * y[k]!, 0);
        const nx = Math.sqrt(x.reduce((s, v) => s + v * v, 0));
        const ny = Math.sqrt(y.reduce((s, v) => s + v * v, 0));
        rec += 1 - dot / (nx * ny);
        n++;
      }
    rec /= n;
    const g = rows(gen);
    const tg = rows(target);
    let gm = 0;
    g.forEach((r, b) => r.forEach((v, k) => (gm += (v - tg[b]![k]!) ** 2)));
    gm /= g.length * g[0]!.length;
    const out = stage2Losses(m, { images, target });
    expect(out.vq.dataSync()[0]).toBeCloseTo(1.25 * mse64, 5);
    expect(out.rec.dataSync()[0]).toBeCloseTo(rec, 5);
    expect(out.gen.dataSync()[0]).toBeCloseTo(gm, 5);
    expect(out.loss.dataSync()[0]).toBeCloseTo(5 * 1.25 * mse64 + 2 * rec + 0.5 * gm, 4);
    expect(m.quantize.lossWeights).toEqual([1, 0.25]);
    m.dispose();
  });
});
