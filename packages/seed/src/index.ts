/**
 * @mmlm/seed: SEED (Ge et al. 2023, arXiv 2307.08041), the causal Q-Former image tokenizer: the
 * config and presets, the ViT stand-in for EVA-CLIP, the Causal Q-Former with its causal extended
 * mask, the stage-I contrastive loss, the stage-II quantizer, de-tokenizer and losses, and code
 * extraction, and the conditional image decoder that turns codes back into pixels (the SD-unCLIP
 * stand-in: `ImageDecoder`, `imageFromCodes`, `reconstruct`). Experiments: '@mmlm/seed/experiments'.
 * Module weights are saved and loaded with core's saveModule / loadModule.
 */
export {
  CAUSAL_MASK_MODES,
  type CausalMaskMode,
  type ContrastiveConfig,
  crossAttentionLayers,
  type DecoderConfig,
  type LossWeights,
  numVisionTokens,
  type ParameterCount,
  PRESETS,
  type PresetName,
  parameterCount,
  preset,
  type QFormerConfig,
  type QFormerConfigInput,
  type QuantizerConfig,
  queryMaskIsCausal,
  REFERENCE_CAUSAL_QUERIES,
  type SeedConfig,
  type SeedConfigInput,
  seedConfig,
  type VitConfig,
  type VitConfigInput,
} from './config.js';
export {
  type DecoderBatch,
  type DecoderLossOptions,
  decoderLoss,
  decoderStep,
  IMAGE_DECODER_PRESETS,
  ImageDecoder,
  type ImageDecoderConfig,
  type ImageDecoderConfigInput,
  type ImageDecoderPresetName,
  imageDecoderConfig,
  imageDecoderPreset,
  imageFromCodes,
  pixelError,
  reconstruct,
} from './decoder.js';
export {
  Block,
  CausalQFormer,
  CLIP_MEAN,
  CLIP_STD,
  clampTemperature,
  contrastiveLoss,
  type Detokenized,
  extendedAttentionMask,
  LinearStack,
  MASK_VALUE,
  SeedTokenizer,
  type Stage,
  type Stage1Batch,
  type Stage2Batch,
  type Stage2Losses,
  type StepResult,
  stage1Loss,
  stage1Step,
  stage2Loss,
  stage2Losses,
  stage2Step,
  VisionTransformer,
} from './tokenizer.js';
export { VitAttributeClassifier, vitPretrainStep } from './train.js';
