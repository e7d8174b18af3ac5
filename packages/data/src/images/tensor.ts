/**
 * Conversions between the plain images of @mmlm/data (Float32Array HWC in [0, 1]) and tfjs tensors
 * ([H, W, C] or [B, H, W, C]), and between the [0, 1] and [-1, 1] value ranges.
 */
import { type Tensor3D, type Tensor4D, tf } from '@mmlm/core';

function checkLength(what: string, img: ArrayLike<number>, height: number, width: number, channels: number): void {
  if (img.length !== height * width * channels)
    throw new Error(`${what}: expected ${height * width * channels} values for [${height}, ${width}, ${channels}], got ${img.length}`);
}

/** One image [H * W * C] -> tensor [H, W, C] (float32). */
export function imageToTensor(img: Float32Array, height: number, width = height, channels = 3): Tensor3D {
  checkLength('imageToTensor', img, height, width, channels);
  return tf.tensor3d(img, [height, width, channels], 'float32');
}

/** Images (each [H * W * C]) or one stacked array [B * H * W * C] -> tensor [B, H, W, C]. */
export function imagesToTensor(images: Float32Array[] | Float32Array, height: number, width = height, channels = 3): Tensor4D {
  const stacked = Array.isArray(images) ? stackImages(images, height * width * channels) : images;
  const per = height * width * channels;
  if (stacked.length % per !== 0 || stacked.length === 0)
    throw new Error(
      `imagesToTensor: expected a positive multiple of ${per} values ([B, ${height}, ${width}, ${channels}]), got ${stacked.length}`,
    );
  return tf.tensor4d(stacked, [stacked.length / per, height, width, channels], 'float32');
}

/** Tensor [H, W, C] or [B, H, W, C] -> one Float32Array [H * W * C] per image. */
export function tensorToImages(t: tf.Tensor): Float32Array[] {
  if (t.rank !== 3 && t.rank !== 4) throw new Error(`tensorToImages: expected a tensor of rank 3 or 4, got shape [${t.shape.join(', ')}]`);
  const data = t.dataSync() as Float32Array;
  const B = t.rank === 4 ? t.shape[0]! : 1;
  const per = data.length / Math.max(1, B);
  return Array.from({ length: B }, (_, b) => Float32Array.from(data.subarray(b * per, (b + 1) * per)));
}

/** Concatenates images of `per` values each into one array [B * per]. */
export function stackImages(images: Float32Array[], per = images[0]?.length ?? 0): Float32Array {
  const out = new Float32Array(images.length * per);
  images.forEach((img, i) => {
    if (img.length !== per) throw new Error(`stackImages: image ${i} has ${img.length} values, expected ${per}`);
    out.set(img, i * per);
  });
  return out;
}

/** [0, 1] -> [-1, 1] (x * 2 - 1), a new array. */
export function toSigned(img: Float32Array): Float32Array {
  const out = new Float32Array(img.length);
  for (let i = 0; i < img.length; i++) out[i] = img[i]! * 2 - 1;
  return out;
}

/** [-1, 1] -> [0, 1] ((x + 1) / 2, clipped), a new array. */
export function fromSigned(img: Float32Array): Float32Array {
  const out = new Float32Array(img.length);
  for (let i = 0; i < img.length; i++) {
    const v = (img[i]! + 1) / 2;
    out[i] = v < 0 ? 0 : Math.min(v, 1);
  }
  return out;
}
