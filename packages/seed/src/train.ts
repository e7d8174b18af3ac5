/**
 * Pre-training of the ViT stand-in. SEED's image encoder is BLIP-2's EVA-CLIP ViT-g/14, trained
 * elsewhere (CLIP pre-training on billions of pairs) and frozen throughout SEED (brief 1.2). At toy
 * scale there is no such encoder to download, so the `VisionTransformer` is first trained here as an
 * **attribute classifier**: one linear head per attribute (e.g. Shapes' shape, colour and size) on
 * the mean of its output tokens, summed cross-entropies. After this phase its weights are frozen
 * again (`SeedTokenizer.setStage` never trains `visual_encoder`) and stages I and II run on top of
 * it, as SEED's run on top of EVA-CLIP.
 *
 * A random frozen ViT (brief 1.8's suggestion) also works for stage I when the Q-Former is wide
 * enough; the classifier makes the features semantic, as CLIP's are, at a fraction of the steps.
 */
import { type AdamW, crossEntropy, Linear, Module, ModuleList, Rng, tf, valueAndGrads } from '@mmlm/core';
import { CLIP_MEAN, CLIP_STD, type VisionTransformer } from './tokenizer.js';

/** A ViT (shared, not owned) with one linear head per attribute on its mean-pooled tokens. */
export class VitAttributeClassifier extends Module {
  readonly heads: ModuleList<Linear>;

  /**
   * `vit` is held by reference (the tokenizer's `visual_encoder`), registered as child `vit` so its
   * parameters train here; `classes[a]` is the class count of attribute a.
   */
  constructor(
    readonly vit: VisionTransformer,
    readonly classes: readonly number[],
    rng: Rng = new Rng(0),
  ) {
    super();
    if (classes.length === 0 || classes.some((c) => !Number.isInteger(c) || c < 2))
      throw new Error(`VitAttributeClassifier: classes must be a non-empty list of integers >= 2, got [${classes}]`);
    this.module('vit', vit);
    const D = vit.numFeatures;
    this.heads = this.module('heads', new ModuleList(classes.map((c) => new Linear(D, c, { rng }))));
  }

  /** Logits of each attribute for pixels in [0, 1] [B, S, S, C] (CLIP-normalised here): [B, classes[a]] each. */
  forward(images: tf.Tensor): tf.Tensor2D[] {
    return tf.tidy(() => {
      const C = this.vit.config.inChannels;
      const mean = C === 3 ? tf.tensor1d(CLIP_MEAN as number[]) : tf.scalar(0.5);
      const std = C === 3 ? tf.tensor1d(CLIP_STD as number[]) : tf.scalar(0.5);
      const pooled = this.vit.forward(images.sub(mean).div(std)).mean(1); // [B, D]
      return [...this.heads].map((h) => h.forward(pooled) as tf.Tensor2D);
    });
  }

  /** Sum over attributes of the mean cross-entropy; labels[a] is int32 [B]. */
  loss(images: tf.Tensor, labels: readonly tf.Tensor[]): tf.Scalar {
    if (labels.length !== this.classes.length)
      throw new Error(
        `VitAttributeClassifier.loss: expected ${this.classes.length} label tensors (one per attribute), got ${labels.length}`,
      );
    return tf.tidy(() => {
      const logits = this.forward(images);
      return logits.reduce((s, l, a) => s.add(crossEntropy(l, labels[a] as tf.Tensor)), tf.scalar(0)) as tf.Scalar;
    });
  }

  /** Per-attribute accuracy (host numbers) of a batch. */
  accuracy(images: tf.Tensor, labels: readonly tf.Tensor[]): number[] {
    return tf.tidy(() =>
      this.forward(images).map(
        (l, a) =>
          tf
            .equal(l.argMax(1), (labels[a] as tf.Tensor).toInt())
            .mean()
            .dataSync()[0] as number,
      ),
    );
  }

  /** Dispose the heads only: the ViT belongs to the tokenizer. */
  override dispose(): void {
    this.heads.dispose();
  }
}

/** One pre-training update of the ViT and the heads (every parameter of the classifier trains). */
export function vitPretrainStep(clf: VitAttributeClassifier, opt: AdamW, images: tf.Tensor, labels: readonly tf.Tensor[]): number {
  const { loss, grads } = valueAndGrads(clf, () => clf.loss(images, labels));
  try {
    opt.step(grads);
    return loss.dataSync()[0] as number;
  } finally {
    loss.dispose();
    for (const g of grads.values()) g.dispose();
  }
}
