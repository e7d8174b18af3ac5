/** Liquid's claims as runnable experiments (registered with the lab app) and the lab's image-token arm. */
import type { Experiment } from '@mmlm/core/experiment';
import { cfgSweepExperiment } from './cfg.js';
import { initExperiment } from './init.js';
import { synergyExperiment } from './synergy.js';
import { tradeoffExperiment } from './tradeoff.js';

export { cfgSweepExperiment, initExperiment, synergyExperiment, tradeoffExperiment };
export const experiments: Experiment[] = [cfgSweepExperiment, tradeoffExperiment, synergyExperiment, initExperiment];
export {
  armTokenizerConfig,
  imageTokenArm,
  type LiquidArmRecipe,
  type LiquidArmRecipeInput,
  LiquidArmRecipeSchema,
  liquidArmRecipe,
} from './arm.js';
