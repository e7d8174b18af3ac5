/**
 * gpt-bench (shared/peer/GPT_BENCH.md): one fp32 AdamW training step of a 4-layer, 256-wide,
 * 4-head pre-norm GPT (context 128, batch 16, GELU-tanh MLP, learned positions, untied head
 * without bias; 3,323,392 parameters) on random tokens, built from core's TransformerDecoder,
 * crossEntropy and AdamW (torch.optim.AdamW semantics, weight decay 0.01 on every parameter as the
 * PyTorch peer's AdamW(m.parameters())) as the peer scripts build it from torch.nn / raw tfjs.
 */
import { AdamW, crossEntropy, Rng, TransformerDecoder, type tf, valueAndGrads } from '../src/index.js';

export const GPT_BENCH = { V: 256, D: 256, L: 4, H: 4, T: 128, B: 16 } as const;
export const GPT_BENCH_PARAMS = 3_323_392;

/** FLOPs of one step: 6 N P for the weights (forward 2, backward 4) plus attention's 12 L B T^2 D. */
export function gptBenchFlops(params: number): number {
  const { L, T, B, D } = GPT_BENCH;
  return 6 * params * B * T + 12 * L * B * T * T * D;
}

export interface GptBench {
  model: TransformerDecoder;
  params: number;
  /** One training step; returns the loss (read synchronously: cpu, wasm, tensorflow). */
  step(): number;
  /** The same step, the loss read with `await data()` (every backend, webgpu included). */
  stepAsync(): Promise<number>;
  dispose(): void;
}

/** Build the gpt-bench model, optimizer and a fixed random batch on the current backend. */
export function makeGptBench(seed = 0): GptBench {
  const { V, D, L, H, T, B } = GPT_BENCH;
  const model = new TransformerDecoder({
    vocabSize: V,
    dim: D,
    numLayers: L,
    numHeads: H,
    maxSeqLen: T,
    mlp: 'gelu',
    activation: 'gelu_tanh',
    norm: 'layernorm',
    normEps: 1e-5,
    bias: true,
    pos: 'learned',
    tieEmbeddings: false,
    seed,
  });
  const params = model.numParameters();
  if (params !== GPT_BENCH_PARAMS) throw new Error(`gpt-bench: model has ${params} parameters, expected ${GPT_BENCH_PARAMS}`);
  const opt = new AdamW(model, { lr: 3e-4 });
  const rng = new Rng(seed + 1);
  const x = rng.randint([B, T], 0, V); // [B, T] int32
  const y = rng.randint([B, T], 0, V);
  // the step without its read-back: returns the loss tensor
  const run = (): tf.Scalar => {
    const { loss, grads } = valueAndGrads(model, () => crossEntropy(model.forward(x), y) as tf.Scalar);
    opt.step(grads);
    for (const g of grads.values()) g.dispose();
    return loss;
  };
  const step = (): number => {
    const loss = run();
    const value = loss.dataSync()[0] as number;
    loss.dispose();
    return value;
  };
  const stepAsync = async (): Promise<number> => {
    const loss = run();
    const value = (await loss.data())[0] as number;
    loss.dispose();
    return value;
  };
  return {
    model,
    params,
    step,
    stepAsync,
    dispose: () => {
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    },
  };
}
