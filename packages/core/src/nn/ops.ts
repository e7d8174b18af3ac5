/** Small differentiable helpers tfjs lacks. */
import { tf } from '../tf.js';

const STOP_GRADIENT = 'MmlmStopGradient';
let gradientRegistered = false;

/**
 * A kernel that forwards like Identity and has a zero gradient. (tf.customGrad would do, but it
 * leaks one tensor per backward pass in tfjs 4.22.) The forward reuses each backend's own
 * Identity kernel, registered on first use for the active backend.
 */
function ensureStopGradientKernel(): void {
  const backend = tf.getBackend();
  if (!tf.getKernel(STOP_GRADIENT, backend)) {
    const identity = tf.getKernel('Identity', backend);
    if (!identity) throw new Error(`stopGradient: backend "${backend}" has no Identity kernel`);
    tf.registerKernel({ kernelName: STOP_GRADIENT, backendName: backend, kernelFunc: identity.kernelFunc });
  }
  if (!gradientRegistered) {
    tf.registerGradient({ kernelName: STOP_GRADIENT, inputsToSave: [], gradFunc: (dy) => ({ x: () => tf.zerosLike(dy as tf.Tensor) }) });
    gradientRegistered = true;
  }
}

/** Identity in the forward pass, zero gradient (PyTorch's .detach() / JAX stop_gradient). */
export function stopGradient(x: tf.Tensor): tf.Tensor {
  ensureStopGradientKernel();
  return tf.engine().runKernel(STOP_GRADIENT, { x }, {}) as tf.Tensor;
}

/** Straight-through estimator: forward value of `hard`, gradient of `soft` (soft + sg(hard - soft)). */
export function straightThrough(soft: tf.Tensor, hard: tf.Tensor): tf.Tensor {
  return tf.tidy(() => soft.add(stopGradient(hard.sub(soft))));
}

function checkPatchGrid(who: string, H: number, W: number, ph: number, pw: number): void {
  for (const [n, v] of [
    ['patch height', ph],
    ['patch width', pw],
  ] as const)
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`${who}: ${n} must be a positive integer, got ${v}`);
  if (H % ph !== 0 || W % pw !== 0)
    throw new Error(`${who}: image ${H}x${W} is not a whole number of ${ph}x${pw} patches (height and width must be multiples)`);
}

/**
 * Images [B, H, W, C] (NHWC) -> patches [B, (H/ph)(W/pw), ph*pw*C]: raster order of patches (row of
 * patches first), each patch flattened as (py, px, c), the layout of a stride-p Conv2d patch
 * embedding read as a Linear (ViT, BLIP-2, LatentLM's VAE).
 */
export function patchify(images: tf.Tensor, ph: number, pw = ph): tf.Tensor3D {
  if (images.rank !== 4) throw new Error(`patchify: images must be [B, H, W, C] (NHWC), got shape [${images.shape}]`);
  const [B, H, W, C] = images.shape as [number, number, number, number];
  checkPatchGrid('patchify', H, W, ph, pw);
  const gh = H / ph;
  const gw = W / pw;
  return tf.tidy(
    () =>
      images
        .reshape([B * gh, ph, gw, pw * C]) // [B gh, py, gx, px C]
        .transpose([0, 2, 1, 3]) // [B gh, gx, py, px C]
        .reshape([B, gh * gw, ph * pw * C]) as tf.Tensor3D,
  );
}

/** The inverse of patchify: patches [B, (H/ph)(W/pw), ph*pw*C] -> images [B, H, W, C]. */
export function unpatchify(patches: tf.Tensor, H: number, W: number, C: number, ph: number, pw = ph): tf.Tensor4D {
  checkPatchGrid('unpatchify', H, W, ph, pw);
  const gh = H / ph;
  const gw = W / pw;
  if (patches.rank !== 3 || patches.shape[1] !== gh * gw || patches.shape[2] !== ph * pw * C)
    throw new Error(
      `unpatchify: patches must be [B, ${gh * gw}, ${ph * pw * C}] for ${H}x${W}x${C} in ${ph}x${pw} patches, got shape [${patches.shape}]`,
    );
  const B = patches.shape[0] as number;
  return tf.tidy(
    () =>
      patches
        .reshape([B * gh, gw, ph, pw * C]) // [B gh, gx, py, px C]
        .transpose([0, 2, 1, 3]) // [B gh, py, gx, px C]
        .reshape([B, H, W, C]) as tf.Tensor4D,
  );
}
