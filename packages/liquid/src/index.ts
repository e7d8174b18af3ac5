/**
 * @mmlm/liquid: Liquid (Wu et al. 2024), one language model over text and VQ image codes: the
 * config and presets, the VQ image tokenizer and its conv layers, the unified vocabulary and LM,
 * the collator's sequence formats, training steps, CFG sampling, and the code cache. Experiments:
 * '@mmlm/liquid/experiments'. Module weights are saved and loaded with core's saveModule / loadModule.
 */
export {
  type CodeCache,
  decodeCodesToImages,
  extractCodes,
  loadCodeCache,
  saveCodeCache,
  type TokenizerStats,
  tokenizerStats,
} from './codes.js';
export {
  type Batch,
  collate,
  drawKind,
  type Example,
  type ExampleKind,
  IGNORE_INDEX,
  i2tExample,
  LiquidCollator,
  type TextTokenizerLike,
  t2iExample,
  textExample,
} from './collate.js';
export {
  CAPTION_INSTRUCTION,
  type CollatorConfig,
  CollatorConfigSchema,
  downsampleFactor,
  EVAL_T2I_SUFFIX,
  extendedVocabSize,
  type ImageTokenizerConfig,
  type ImageTokenizerConfigInput,
  imageTokenizerConfig,
  type LiquidConfig,
  type LiquidConfigInput,
  type LMConfig,
  type LMConfigInput,
  liquidConfig,
  lmConfig,
  type Mix,
  type ParameterCount,
  PRESETS,
  type PresetName,
  parameterCount,
  preset,
  type SamplingConfig,
  T2I_SUFFIXES,
  type TrainPhase,
  TrainPhaseSchema,
  tokensPerImage,
} from './config.js';
export {
  Conv2d,
  type Conv2dOptions,
  conv2dSame,
  Downsample,
  GroupNorm,
  groupsFor,
  ResnetBlock,
  Upsample,
  upsampleNearest2x,
} from './conv.js';
export {
  armTokenizerConfig,
  type LiquidArmRecipe,
  type LiquidArmRecipeInput,
  LiquidArmRecipeSchema,
  liquidArmRecipe,
} from './experiments/recipe.js';
export {
  buildImagePositionLM,
  buildLM,
  type ExtendOptions,
  extendVocabulary,
  fromModelRange,
  headWeight,
  ImagePositionLM,
  type LiquidVocab,
  liquidVocab,
  type TokenizerOutput,
  toModelRange,
  toUint8,
  type VocabSpec,
  VQTokenizer,
} from './model.js';
export {
  type CaptionOptions,
  type CfgLayout,
  captionImages,
  cfgLayout,
  generateImageCodes,
  type ImageSamplingOptions,
  imageTokenLogits,
  textLoss,
} from './sample.js';
export {
  causalLMLoss,
  lmTrainStep,
  lrAt,
  makeOptimizer,
  type StepResult,
  type TokenizerStepResult,
  tokenizerTrainStep,
} from './train.js';
