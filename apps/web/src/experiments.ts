/**
 * The page's experiments, written against the packages' browser-safe main entries only (the CLI
 * experiment runners in packages/*\/src/experiments write files; these keep everything in memory).
 * No DOM here: a run reports through `RunHooks` and returns the CLI's result tables.
 */
import { AdamW, crossEntropy, paramGroups, type StateDict, TransformerDecoder, tf, valueAndGrads, warmupCosine } from '@mmlm/core';
import {
  CharTokenizer,
  GRAMMARS,
  grammarCorpus,
  grammarEntropy,
  inputsAndTargets,
  sequentialWindows,
  splitText,
  WindowBatcher,
} from '@mmlm/data';
import {
  applyMaskFile,
  blockLinears,
  buildDecoder,
  decodeMaskFile,
  denseOptimizer,
  denseTrainStep,
  encodeMaskFile,
  evaluatePerplexity,
  hardMasks,
  injectPrior,
  invalidGroups,
  LADDER_LABELS,
  LADDER_PRESET_INPUTS,
  type LadderPresetInput,
  type MaskLLMConfig,
  maskOptimizer,
  maskTrainStep,
  type OneShotMethod,
  oneShotPrune,
  PAPER_TABLE1,
  preset,
  sparsify,
  withShapes,
} from '@mmlm/maskllm';
import { imageTokens } from './imageTokens.js';

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number | null)[][];
  note?: string;
}

/** One image of a grid, with the lines written under it (as apps/lab's labelled sample grids). */
export interface GridCell {
  /** [size * size * 3] HWC RGB in [0, 1]. */
  image: Float32Array;
  size: number;
  /** Text lines under the image (prompt, verdict). */
  lines: string[];
  /** Frame colour: green when true, red when false, none when undefined. */
  ok?: boolean;
}

/** A titled grid of small images (generated samples, reconstructions) the page draws on canvases. */
export interface ImageGrid {
  title: string;
  cols: number;
  cells: GridCell[];
}

export interface RunResult {
  tables: Table[];
  summary: string;
  /** Headline numbers (the test reads these from the page as well as the tables). */
  metrics: Record<string, number>;
  /** Image grids drawn under the tables (optional). */
  grids?: ImageGrid[];
}

export interface RunHooks {
  /** One training step of series `series` (a curve on the chart) took `ms` milliseconds. */
  step(series: string, step: number, total: number, loss: number, ms: number): void;
  log(line: string): void;
  /** Resolves when the page has had a chance to repaint (and to stop the run). */
  yieldToPage(): Promise<void>;
}

export interface PageExperiment {
  id: string;
  title: string;
  claim: string;
  presets: Record<string, string>;
  /** `steps` overrides the preset's training steps (a quick smoke run, e.g. on a software GPU). */
  run(preset: string, seed: number, hooks: RunHooks, overrides?: { steps?: number }): Promise<RunResult>;
}

// ---------------------------------------------------------------------------------------------
// core's tiny char-level GPT on the shapes grammar (apps/lab/src/experiments/tinyGpt.ts)

interface GptPreset {
  chars: number;
  dim: number;
  layers: number;
  heads: number;
  block: number;
  batch: number;
  steps: number;
  lr: number;
  evalEvery: number;
}

/** The CLI's tiny and quick presets of core.tiny-gpt. */
const GPT_PRESETS: Record<string, GptPreset & { description: string }> = {
  tiny: {
    description: '20 steps of a 2-layer, 32-wide model (seconds)',
    chars: 20_000,
    dim: 32,
    layers: 2,
    heads: 2,
    block: 32,
    batch: 8,
    steps: 20,
    lr: 3e-3,
    evalEvery: 10,
  },
  quick: {
    description: '600 steps of a 4-layer, 64-wide model, context 64 (a minute or more)',
    chars: 300_000,
    dim: 64,
    layers: 4,
    heads: 4,
    block: 64,
    batch: 16,
    steps: 600,
    lr: 3e-3,
    evalEvery: 100,
  },
};

/** A scalar's value read asynchronously (a GPU backend never blocks the page on it), then disposed. */
async function readScalar(t: tf.Tensor): Promise<number> {
  try {
    return (await t.data())[0] as number;
  } finally {
    t.dispose();
  }
}

export const tinyGpt: PageExperiment = {
  id: 'core.tiny-gpt',
  title: "core's tiny char-level GPT",
  claim: 'A small char-level GPT built from @mmlm/core learns the procedural grammar: loss goes down towards the grammar entropy.',
  presets: Object.fromEntries(Object.entries(GPT_PRESETS).map(([k, v]) => [k, v.description])),
  async run(presetName, seed, hooks, overrides = {}) {
    const base = GPT_PRESETS[presetName];
    if (!base) throw new Error(`core.tiny-gpt: unknown preset "${presetName}"; expected ${Object.keys(GPT_PRESETS).join(', ')}`);
    const p = { ...base, steps: overrides.steps ?? base.steps };
    const text = grammarCorpus({ grammar: 'shapes', seed, chars: p.chars });
    const { train, val } = splitText(text, { valFraction: 0.1 });
    const tok = CharTokenizer.fromText(text, { specialTokens: [] });
    const trainIds = tok.encode(train);
    const valIds = tok.encode(val);
    const entropy = grammarEntropy(GRAMMARS.shapes).bitsPerChar;
    const model = new TransformerDecoder({
      vocabSize: tok.vocabSize,
      dim: p.dim,
      numLayers: p.layers,
      numHeads: p.heads,
      maxSeqLen: p.block,
      seed,
    });
    hooks.log(
      `tiny GPT: ${model.numParameters().toLocaleString('en-US')} parameters, vocabulary ${tok.vocabSize}, ${trainIds.length.toLocaleString('en-US')} training characters`,
    );
    const opt = new AdamW(paramGroups(model), { lr: p.lr, weightDecay: 0.1, beta2: 0.99 });
    const lr = warmupCosine({ peak: p.lr, min: p.lr / 10, warmup: Math.ceil(p.steps / 20), total: p.steps });
    const batcher = new WindowBatcher(trainIds, { batchSize: p.batch, blockSize: p.block, seed });
    const evalBpc = async (): Promise<number> => {
      let sum = 0;
      let n = 0;
      for (const b of sequentialWindows(valIds.slice(0, 20 * p.block * p.batch), { batchSize: p.batch, blockSize: p.block })) {
        const { inputs, targets, shape } = inputsAndTargets(b);
        const l = await readScalar(
          tf.tidy(() => crossEntropy(model.forward(tf.tensor2d(inputs, shape, 'int32')), tf.tensor2d(targets, shape, 'int32'))),
        );
        sum += l * shape[0] * shape[1];
        n += shape[0] * shape[1];
      }
      return sum / n / Math.LN2;
    };
    const t0 = performance.now();
    let first = Number.NaN;
    let last = Number.NaN;
    const curve: [number, number, number][] = [];
    try {
      for (let step = 1; step <= p.steps; step++) {
        const s0 = performance.now();
        const { inputs, targets, shape } = inputsAndTargets(batcher.next());
        const lossT = tf.tidy(() => {
          const x = tf.tensor2d(inputs, shape, 'int32');
          const y = tf.tensor2d(targets, shape, 'int32');
          opt.setLr(lr(step - 1));
          const { loss: l, grads } = valueAndGrads(model, () => crossEntropy(model.forward(x), y) as tf.Scalar);
          opt.step(grads);
          return l;
        });
        const loss = await readScalar(lossT);
        if (step === 1) first = loss;
        last = loss;
        hooks.step('train loss', step, p.steps, loss, performance.now() - s0);
        if (step % p.evalEvery === 0 || step === p.steps) {
          const bpc = await evalBpc();
          curve.push([step, loss, bpc]);
          hooks.log(`step ${step}: train loss ${loss.toFixed(3)} nats, val ${bpc.toFixed(3)} bits/char`);
        }
        await hooks.yieldToPage();
      }
    } finally {
      opt.dispose();
      model.dispose();
    }
    const seconds = (performance.now() - t0) / 1000;
    const valBpc = curve[curve.length - 1]![2];
    return {
      metrics: {
        firstLoss: first,
        finalLoss: last,
        finalPerplexity: Math.exp(last),
        valBitsPerChar: valBpc,
        grammarEntropyBitsPerChar: entropy,
        trainSeconds: seconds,
        tokensPerSecond: (p.steps * p.batch * p.block) / seconds,
      },
      tables: [
        {
          title: 'Result',
          columns: ['metric', 'value'],
          rows: [
            ['first train loss (nats)', first],
            ['final train loss (nats)', last],
            ['final train perplexity', Math.exp(last)],
            ['val bits/char', valBpc],
            ['grammar entropy (bits/char)', entropy],
            ['tokens / s', (p.steps * p.batch * p.block) / seconds],
          ],
        },
        {
          title: 'Validation bits per character during training',
          columns: ['step', 'train loss (nats)', 'val bits/char'],
          rows: curve.map(([s, l, b]) => [s, l, b]),
          note: `The grammar's exact entropy rate is ${entropy.toFixed(3)} bits/char: a perfect model reaches it, none goes below. A uniform guess over the ${tok.vocabSize} characters costs ${Math.log2(tok.vocabSize).toFixed(2)} bits/char.`,
        },
      ],
      summary: `Training loss went from ${first.toFixed(3)} to ${last.toFixed(3)} nats in ${p.steps} steps (${seconds.toFixed(1)} s); validation ${valBpc.toFixed(3)} bits/char against the grammar's floor of ${entropy.toFixed(3)}.`,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// MaskLLM's sparsity ladder (packages/maskllm/src/experiments/ladder.ts), in memory

/** The CLI ladder's tiny and quick settings (shared with maskllm.ladder through @mmlm/maskllm), with the page's descriptions. */
const LADDER_PRESETS: Record<string, LadderPresetInput & { model: 'tiny' | 'quick'; description: string }> = {
  tiny: { ...LADDER_PRESET_INPUTS.tiny, model: 'tiny', description: 'width-16 decoder, 30 dense steps, 4 mask steps (seconds)' },
  quick: {
    ...LADDER_PRESET_INPUTS.quick,
    model: 'quick',
    description: 'width-64 decoder, 400 dense steps, 150 mask steps per prior (minutes)',
  },
};

/** [B, T+1] windows of the training ids. */
function windows(ids: Int32Array, batchSize: number, T: number, seed: number): () => tf.Tensor2D {
  const b = new WindowBatcher(ids, { batchSize, blockSize: T, seed });
  return () => {
    const w = b.next();
    return tf.tensor2d(w.data, w.shape, 'int32');
  };
}

export const ladder: PageExperiment = {
  id: 'maskllm.ladder',
  title: "MaskLLM's 2:4 sparsity ladder",
  claim: 'Learned 2:4 masks (MaskLLM) keep a lower validation perplexity than one-shot magnitude, Wanda and SparseGPT masks (Table 1).',
  presets: Object.fromEntries(Object.entries(LADDER_PRESETS).map(([k, v]) => [k, v.description])),
  async run(presetName, seed, hooks, overrides = {}) {
    const base = LADDER_PRESETS[presetName];
    if (!base) throw new Error(`maskllm.ladder: unknown preset "${presetName}"; expected ${Object.keys(LADDER_PRESETS).join(', ')}`);
    const S = { ...base, dense: { ...base.dense, steps: overrides.steps ?? base.dense.steps } };
    const text = grammarCorpus({ grammar: 'shapes', seed, chars: S.chars });
    const tok = CharTokenizer.fromText(text);
    const split = splitText(text, { valFraction: 0.1, atLineBreak: true });
    const train = Int32Array.from(tok.encode(split.train));
    const val = Int32Array.from(tok.encode(split.val));
    const cfg: MaskLLMConfig = preset(S.model);
    cfg.model.vocabSize = tok.vocabSize;
    const T = cfg.model.maxSeqLen;
    const evalLoss = (dec: TransformerDecoder) => evaluatePerplexity(dec, val, { seqLen: T, maxWindows: S.maskllm.evalWindows }).loss;
    hooks.log(
      `maskllm.ladder: shapes grammar, ${S.chars} characters; vocabulary ${tok.vocabSize}; ${train.length} train / ${val.length} val tokens`,
    );

    // 1. the dense model, trained from scratch; its weights kept in memory as the "checkpoint"
    const t0 = performance.now();
    const dec = buildDecoder(cfg, seed);
    const opt = denseOptimizer(dec, S.dense.weightDecay);
    const nextDense = windows(train, S.dense.batchSize, T, seed + 1000);
    for (let t = 0; t < S.dense.steps; t++) {
      const s0 = performance.now();
      const ids = nextDense();
      const loss = denseTrainStep(dec, opt, ids, t, { ...S.dense, gradClip: 1 });
      ids.dispose();
      hooks.step('dense', t + 1, S.dense.steps, loss, performance.now() - s0);
      await hooks.yieldToPage();
    }
    opt.dispose();
    const dense: StateDict = Object.fromEntries(Object.entries(dec.stateDict()).map(([k, v]) => [k, v.clone()]));
    const loss: Record<string, number> = { dense: evalLoss(dec) };
    dec.dispose();
    const denseSeconds = (performance.now() - t0) / 1000;
    const fresh = () => {
      const d = buildDecoder(cfg, seed);
      d.loadStateDict(dense);
      return d;
    };

    // 2. one-shot baselines on calibration windows
    const calib = windows(train, S.calib, T - 1, seed + 1)();
    const oneShotMasks = new Map<string, Map<string, Uint8Array>>();
    const oneShot = async (key: string, method: OneShotMethod, update: boolean) => {
      const d = fresh();
      try {
        oneShotMasks.set(key, oneShotPrune(d, method, method === 'magnitude' ? null : calib, { n: cfg.mask.n, m: cfg.mask.m, update }));
        loss[key] = evalLoss(d);
        hooks.log(`${LADDER_LABELS[key]}: val PPL ${Math.exp(loss[key]!).toFixed(3)}`);
      } finally {
        d.dispose();
      }
      await hooks.yieldToPage();
    };
    const changed: Record<string, number> = {};
    let invalid = 0;
    try {
      await oneShot('magnitude', 'magnitude', false);
      await oneShot('wanda', 'wanda', false);
      await oneShot('sparsegpt', 'sparsegpt', false);
      await oneShot('sparsegpt_update', 'sparsegpt', true);

      // 3. MaskLLM: learn the masks of a frozen copy from each prior, export them as a mask file
      //    (bytes), load it into a fresh dense copy, check every group is exactly N:M, evaluate.
      for (const p of S.priors) {
        const key = `maskllm_${p}`;
        const d = fresh();
        const mask = cfg.mask;
        sparsify(d, { n: mask.n, m: mask.m, initStd: mask.gateInitStd, hard: mask.hard, seed: seed + 7 });
        if (p !== 'none') injectPrior(d, oneShotMasks.get(p)!, mask.priorStrength);
        const initial = hardMasks(d);
        const mopt = maskOptimizer(d, cfg.train);
        const nextMask = windows(train, cfg.train.batchSize, T, seed + 2000);
        for (let t = 0; t < cfg.train.steps; t++) {
          const s0 = performance.now();
          const ids = nextMask();
          const r = maskTrainStep(d, mopt, ids, t, { mask, train: cfg.train });
          ids.dispose();
          hooks.step(LADDER_LABELS[key]!, t + 1, cfg.train.steps, r.lm, performance.now() - s0);
          await hooks.yieldToPage();
        }
        mopt.dispose();
        const final = hardMasks(d);
        let diff = 0;
        let groups = 0;
        for (const [path, m] of final) {
          const a = initial.get(path)!;
          for (let g = 0; g < m.length / mask.m; g++, groups++)
            for (let j = 0; j < mask.m; j++)
              if (m[g * mask.m + j] !== a[g * mask.m + j]) {
                diff++;
                break;
              }
        }
        changed[p] = diff / groups;
        const bytes = encodeMaskFile({ n: mask.n, m: mask.m, encoding: 'index', layers: withShapes(d, final) });
        d.dispose();
        const exported = fresh();
        try {
          applyMaskFile(exported, decodeMaskFile(bytes, `${key} masks`));
          for (const [, l] of blockLinears(exported)) invalid += invalidGroups(await l.weight.data(), mask.n, mask.m);
          loss[key] = evalLoss(exported);
        } finally {
          exported.dispose();
        }
        hooks.log(
          `${LADDER_LABELS[key]}: val PPL ${Math.exp(loss[key]!).toFixed(3)} (${bytes.length} bytes of masks, ${(100 * changed[p]!).toFixed(1)}% of groups changed)`,
        );
      }
    } finally {
      calib.dispose();
      Object.values(dense).forEach((t) => t.dispose());
    }

    const metrics: Record<string, number> = { dense_seconds: denseSeconds, invalid_groups: invalid };
    for (const [k, v] of Object.entries(loss)) {
      metrics[`${k}_ppl`] = Math.exp(v);
      metrics[`${k}_bpc`] = v / Math.LN2;
    }
    const sparse = Object.keys(loss).filter((k) => k !== 'dense');
    const best = sparse.reduce((a, b) => (loss[a]! <= loss[b]! ? a : b));
    return {
      metrics,
      tables: [
        {
          title: 'Table 1: 2:4 sparsity, frozen weights (validation perplexity)',
          columns: ['Method', 'Ours: val PPL', 'Ours: bits/char', 'Paper LLaMA-2 7B PPL', 'Paper GPT-3 843M PPL'],
          rows: Object.keys(loss).map((k) => [
            LADDER_LABELS[k]!,
            Math.exp(loss[k]!),
            loss[k]! / Math.LN2,
            PAPER_TABLE1[k]?.llama7b ?? null,
            PAPER_TABLE1[k]?.gpt843m ?? null,
          ]),
          note: `Exported models: the MaskLLM masks went through the mask file (bytes) into a fresh dense copy; ${invalid} groups are not exactly ${cfg.mask.n}:${cfg.mask.m}. One seed (${seed}): no difference is judged.`,
        },
        {
          title: 'Learned masks',
          columns: ['Prior', 'groups changed from the prior'],
          rows: S.priors.map((p) => [p, changed[p]!]),
        },
      ],
      summary: `Dense val PPL ${Math.exp(loss.dense!).toFixed(3)}; best 2:4 model: ${LADDER_LABELS[best]} at ${Math.exp(loss[best]!).toFixed(3)}.`,
    };
  },
};

export const EXPERIMENTS: PageExperiment[] = [tinyGpt, ladder, imageTokens];
