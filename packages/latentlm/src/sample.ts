/**
 * Generation with LatentLM (Sun et al. 2024, §2.2 "Inference"; reference `sample_with_cfg`): per
 * position, one backbone step on the previous element with the KV cache; a discrete position
 * samples the softmax head; a continuous position (inside <BOD> ... <EOD>) runs the diffusion head
 * from fresh noise with DPM-Solver++ for `headSteps` steps, with classifier-free guidance in eps
 * space eps = eps_u + w (eps_c - eps_u) against an unconditional prompt run in the same batch. The
 * sampled latent is fed back through the input projection (the conditional result is fed to both
 * halves, as the reference). Prompts of different lengths are left-padded and masked.
 */
import { cfgLogits, paddingMask, Rng, tf } from '@mmlm/core';
import type { LatentLM } from './model.js';
import { DPMSolverMultistep, type NoiseSchedule, type PredictionType } from './schedule.js';
import { type MixedSequence, validateMixedSequence } from './train.js';

export interface HeadSampleOptions {
  schedule: NoiseSchedule;
  headSteps: number;
  predictionType?: PredictionType;
  /** Guidance scale w; 1 disables guidance. */
  cfgScale?: number;
  /** diffusers' lambda_min_clipped for the solver's timestep grid (default -Infinity). */
  lambdaMinClipped?: number;
  /**
   * Temperature tau of the head: x_T ~ N(0, tau^2 I) (default 1, the reference). DPM-Solver++ is
   * deterministic given x_T, so tau < 1 draws nearer the mode of each latent's distribution, the role
   * MAR's diffusion-head temperature plays (Li et al. 2024, sec. 3.4; there it scales the DDPM noise).
   * Not in LatentLM's reference code.
   */
  noiseScale?: number;
  rng: Rng;
}

/**
 * Samples one latent per condition with the diffusion head: x_T ~ N(0, I), then DPM-Solver++(2M).
 * cond [N, D]; uncond [N, D] (required when cfgScale != 1). Returns [N, C].
 */
export function sampleLatents(model: LatentLM, cond: tf.Tensor, uncond: tf.Tensor | null, opts: HeadSampleOptions): tf.Tensor2D {
  const w = opts.cfgScale ?? 1;
  const N = cond.shape[0] as number;
  if (w !== 1 && !uncond) throw new Error(`sampleLatents: cfgScale ${w} needs unconditional conditions, got none`);
  if (uncond && uncond.shape.join(',') !== cond.shape.join(','))
    throw new Error(`sampleLatents: unconditional conditions must match [${cond.shape}], got [${uncond.shape}]`);
  const solver = new DPMSolverMultistep(opts.schedule, {
    numInferenceSteps: opts.headSteps,
    predictionType: opts.predictionType,
    lambdaMinClipped: opts.lambdaMinClipped,
  });
  const guided = w !== 1 && uncond !== null;
  const both = guided ? tf.concat([cond, uncond], 0) : null; // [2N, D]
  const denoise = (x: tf.Tensor, t: number) =>
    tf.tidy(() => {
      if (!guided) return model.diffusion.forward(x, tf.fill([N], t), cond);
      const out = model.diffusion.forward(tf.concat([x, x], 0), tf.fill([2 * N], t), both!); // [2N, C]
      const [c, u] = tf.split(out, 2, 0);
      return cfgLogits(c!, u!, w); // eps_u + w (eps_c - eps_u)
    });
  const tau = opts.noiseScale ?? 1;
  if (!(tau > 0 && Number.isFinite(tau))) throw new Error(`sampleLatents: noiseScale must be a finite number > 0, got ${tau}`);
  const xT = tf.tidy(() => {
    const n = opts.rng.randn([N, model.config.latentDim]);
    return tau === 1 ? n : n.mul(tau);
  });
  const x0 = solver.sample(denoise, xT) as tf.Tensor2D;
  xT.dispose();
  both?.dispose();
  return x0;
}

export interface GenerateOptions {
  /** Conditional prompts; a prompt ending inside a span (e.g. with <BOD>) continues it. */
  prompts: readonly MixedSequence[];
  /** Unconditional prompts for guidance, one per prompt (needed when cfgScale != 1). */
  uncondPrompts?: readonly MixedSequence[];
  schedule: NoiseSchedule;
  headSteps: number;
  predictionType?: PredictionType;
  cfgScale?: number;
  /** diffusers' lambda_min_clipped for the head solver (default -Infinity). */
  lambdaMinClipped?: number;
  /** Head temperature tau: x_T ~ N(0, tau^2 I) (default 1; see HeadSampleOptions.noiseScale). */
  noiseScale?: number;
  /** Latents per span; undefined lets the softmax head choose <EOD> vs <LAT> (models trained with spanStop). */
  spanLength?: number;
  /** Generation limit (new elements per row; also bounded by maxSeqLen). */
  maxNewTokens: number;
  /** A row stops after emitting one of these tokens. */
  stopIds?: readonly number[];
  /** A row stops right after its first span closes (image or speech generation). */
  stopAfterSpan?: boolean;
  /** Discrete sampling temperature; 0 = greedy (default). */
  temperature?: number;
  /** Discrete positions may only emit these ids (default: any id but <LAT> and <PAD>). */
  allowedIds?: readonly number[];
  /** A span still open at the limit: throw (default) or close it. */
  onUnclosedSpan?: 'error' | 'close';
  seed: number;
}

export interface GenerateResult {
  /** Per row: the generated continuation (tokens with <LAT> placeholders and their latents). */
  outputs: MixedSequence[];
  /** Per row: the latents [n * C] of each span closed during generation (a prompt's open span included). */
  spans: Float32Array[][];
  /**
   * Backbone steps taken after the prompt (one per fed-back element; with `spanLength` and
   * `stopAfterSpan` the last latent of the span is not fed back, as nothing follows it).
   */
  steps: number;
  /** Per row: whether a span was force-closed at the limit. */
  forcedClose: boolean[];
}

interface RowState {
  inSpan: boolean;
  spanLatents: number[];
  done: boolean;
  tokens: number[];
  latents: number[];
  spans: Float32Array[];
  forcedClose: boolean;
}

function pickToken(logits: Float32Array, allowed: readonly number[], temperature: number, rng: Rng): number {
  if (temperature <= 0) {
    let best = allowed[0]!;
    for (const id of allowed) if ((logits[id] as number) > (logits[best] as number)) best = id;
    return best;
  }
  const mx = Math.max(...allowed.map((id) => logits[id] as number));
  const p = allowed.map((id) => Math.exp(((logits[id] as number) - mx) / temperature));
  const Z = p.reduce((a, b) => a + b, 0);
  let u = rng.uniform() * Z;
  for (let i = 0; i < allowed.length; i++) {
    u -= p[i]!;
    if (u <= 0) return allowed[i]!;
  }
  return allowed[allowed.length - 1]!;
}

/** Left-padded prompt tensors: ids [R, P], latents [R, P, C], keep [R, P]. */
function packPrompts(model: LatentLM, rows: readonly MixedSequence[]): { ids: Int32Array; lat: Float32Array; keep: number[][]; P: number } {
  const { padId, latId, latentDim: C } = model.config;
  const P = Math.max(...rows.map((r) => r.tokens.length));
  const R = rows.length;
  const ids = new Int32Array(R * P).fill(padId);
  const lat = new Float32Array(R * P * C);
  const keep: number[][] = [];
  rows.forEach((r, b) => {
    const off = P - r.tokens.length;
    keep.push(Array.from({ length: P }, (_, j) => (j >= off ? 1 : 0)));
    let k = 0;
    for (let j = 0; j < r.tokens.length; j++) {
      const id = r.tokens[j] as number;
      ids[b * P + off + j] = id;
      if (id === latId) {
        lat.set(r.latents!.subarray(k * C, (k + 1) * C), (b * P + off + j) * C);
        k++;
      }
    }
  });
  return { ids, lat, keep, P };
}

/** Autoregressive generation over mixed sequences with the KV cache (see the file comment). */
export function generate(model: LatentLM, opts: GenerateOptions): GenerateResult {
  const cfg = model.config;
  const C = cfg.latentDim;
  const B = opts.prompts.length;
  if (B === 0) throw new Error('generate: need at least one prompt, got 0');
  const w = opts.cfgScale ?? 1;
  const guided = w !== 1;
  if (guided && (!opts.uncondPrompts || opts.uncondPrompts.length !== B))
    throw new Error(`generate: cfgScale ${w} needs one unconditional prompt per prompt (${B}), got ${opts.uncondPrompts?.length ?? 0}`);
  if (opts.spanLength !== undefined && (!Number.isInteger(opts.spanLength) || opts.spanLength < 1))
    throw new Error(`generate: spanLength must be a positive integer, got ${opts.spanLength}`);
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1)
    throw new Error(`generate: maxNewTokens must be a positive integer, got ${opts.maxNewTokens}`);
  const infos = opts.prompts.map((p, b) => validateMixedSequence(p, cfg, { allowOpenSpan: true, what: `generate: prompt ${b}` }));
  const uncondInfos = guided
    ? opts.uncondPrompts!.map((p, b) => validateMixedSequence(p, cfg, { allowOpenSpan: true, what: `generate: unconditional prompt ${b}` }))
    : [];
  uncondInfos.forEach((u, b) => {
    if (u.openSpan !== infos[b]!.openSpan)
      throw new Error(`generate: prompt ${b} and its unconditional prompt must both end inside a span or both outside`);
  });
  const rows = guided ? [...opts.prompts, ...opts.uncondPrompts!] : [...opts.prompts];
  const R = rows.length;
  const allowed = opts.allowedIds ?? Array.from({ length: cfg.vocabSize }, (_, i) => i).filter((i) => i !== cfg.latId && i !== cfg.padId);
  const stop = new Set(opts.stopIds ?? []);
  const rng = new Rng(opts.seed);
  const { ids, lat, keep, P } = packPrompts(model, rows);
  const limit = Math.min(opts.maxNewTokens, cfg.maxSeqLen - P + 1);
  if (limit < 1) throw new Error(`generate: prompt of ${P} positions leaves no room under maxSeqLen ${cfg.maxSeqLen}`);
  const state: RowState[] = opts.prompts.map((p, b) => {
    const info = infos[b]!;
    const open: number[] = [];
    if (info.openSpan && info.openSpanLength > 0) {
      const all = p.latents!;
      open.push(...all.subarray(all.length - info.openSpanLength * C));
    }
    return { inSpan: info.openSpan, spanLatents: open, done: false, tokens: [], latents: [], spans: [], forcedClose: false };
  });

  const cache = model.newCache();
  let h: tf.Tensor = tf.tidy(() => {
    const mask = paddingMask(tf.tensor2d(keep));
    const hidden = model.forwardHidden(tf.tensor2d(ids, [R, P], 'int32'), tf.tensor3d(lat, [R, P, C]), { cache, mask }); // [R, P, D]
    return hidden.slice([0, P - 1, 0], [R, 1, cfg.dim]).reshape([R, cfg.dim]); // [R, D]
  });
  let steps = 0;
  try {
    for (let s = 0; s < limit; s++) {
      const active = state.map((r) => !r.done);
      if (!active.some(Boolean)) break;
      const logits = tf.tidy(() =>
        model
          .lmLogits(h.slice([0, 0], [B, cfg.dim]).expandDims(1))
          .reshape([B, cfg.vocabSize])
          .dataSync(),
      ) as Float32Array;
      const lastStep = s === limit - 1;
      // decide each row's next element: a token id, or <LAT> (a latent to sample)
      const next = new Int32Array(B).fill(cfg.padId);
      for (let b = 0; b < B; b++) {
        const r = state[b]!;
        if (r.done) continue;
        const row = logits.subarray(b * cfg.vocabSize, (b + 1) * cfg.vocabSize);
        if (r.inSpan) {
          const n = r.spanLatents.length / C;
          let close = opts.spanLength !== undefined ? n >= opts.spanLength : (row[cfg.eodId] as number) > (row[cfg.latId] as number);
          if (!close && lastStep) {
            if ((opts.onUnclosedSpan ?? 'error') === 'error')
              throw new Error(
                `generate: row ${b} reached the generation limit (${limit} new positions; maxNewTokens ${opts.maxNewTokens}, maxSeqLen ${cfg.maxSeqLen}) inside a span without <EOD> after ${n} latents`,
              );
            close = true;
            r.forcedClose = true;
          }
          next[b] = close ? cfg.eodId : cfg.latId;
        } else next[b] = pickToken(row, allowed, opts.temperature ?? 0, rng);
      }
      // sample latents for rows that need one
      const latRows = Array.from({ length: B }, (_, b) => b).filter((b) => next[b] === cfg.latId);
      let sampled: Float32Array = new Float32Array(0);
      if (latRows.length > 0) {
        sampled = tf.tidy(() => {
          const hc = model.condition(h); // [R, D]
          const cond = tf.gather(hc, tf.tensor1d(latRows, 'int32'));
          const uncond = guided
            ? tf.gather(
                hc,
                tf.tensor1d(
                  latRows.map((b) => b + B),
                  'int32',
                ),
              )
            : null;
          return sampleLatents(model, cond, uncond, {
            schedule: opts.schedule,
            headSteps: opts.headSteps,
            predictionType: opts.predictionType,
            cfgScale: w,
            lambdaMinClipped: opts.lambdaMinClipped,
            noiseScale: opts.noiseScale,
            rng,
          }).dataSync() as Float32Array;
        });
      }
      // record, then feed back
      const inIds = new Int32Array(R).fill(cfg.padId);
      const inLat = new Float32Array(R * C);
      const stepKeep: number[] = new Array(R).fill(1);
      for (let b = 0; b < B; b++) {
        const r = state[b]!;
        if (r.done) {
          stepKeep[b] = 0;
          if (guided) stepKeep[b + B] = 0;
          continue;
        }
        const id = next[b]!;
        r.tokens.push(id);
        inIds[b] = id;
        if (guided) inIds[b + B] = id;
        if (id === cfg.latId) {
          const k = latRows.indexOf(b);
          const v = sampled.subarray(k * C, (k + 1) * C);
          r.latents.push(...v);
          r.spanLatents.push(...v);
          inLat.set(v, b * C);
          if (guided) inLat.set(v, (b + B) * C);
          if (opts.stopAfterSpan && opts.spanLength !== undefined && r.spanLatents.length >= opts.spanLength * C) {
            // the span is complete and nothing follows it: close it without another backbone step
            r.tokens.push(cfg.eodId);
            r.spans.push(Float32Array.from(r.spanLatents));
            r.spanLatents = [];
            r.inSpan = false;
            r.done = true;
          }
        } else if (id === cfg.eodId) {
          r.spans.push(Float32Array.from(r.spanLatents));
          r.spanLatents = [];
          r.inSpan = false;
          if (opts.stopAfterSpan) r.done = true;
        } else if (id === cfg.bodId) {
          r.inSpan = true;
          r.spanLatents = [];
        }
        if (stop.has(id)) r.done = true;
      }
      if (state.every((r) => r.done) || lastStep) break;
      keep.forEach((k, i) => k.push(stepKeep[i]!));
      const hNext = tf.tidy(() => {
        const mask = paddingMask(tf.tensor2d(keep));
        const hidden = model.forwardHidden(tf.tensor2d(inIds, [R, 1], 'int32'), tf.tensor3d(inLat, [R, 1, C]), { cache, mask }); // [R, 1, D]
        return hidden.reshape([R, cfg.dim]);
      });
      h.dispose();
      h = hNext;
      steps++;
    }
  } finally {
    h.dispose();
    cache.dispose();
  }
  return {
    outputs: state.map((r) => ({ tokens: r.tokens, latents: Float32Array.from(r.latents) })),
    spans: state.map((r) => r.spans),
    steps,
    forcedClose: state.map((r) => r.forcedClose),
  };
}
