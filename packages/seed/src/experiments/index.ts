/**
 * SEED's claims as runnable experiments (registered with the lab app). Empty for now: the
 * reproductions (brief 1.8: the mask check, the toy tokenizer's embeddings-vs-codes retrieval gap
 * and code usage, the toy SEED-LLaMA) come next, on top of the tokenizer in '@mmlm/seed'.
 */
import type { Experiment } from '@mmlm/core/experiment';

export const experiments: Experiment[] = [];
