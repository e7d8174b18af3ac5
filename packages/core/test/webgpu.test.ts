/**
 * The opt-in webgpu backend (issue 18, part 2) against the cpu backend: kernels (matMul NN / NT /
 * TN / batched, softmax, conv2d), a TransformerDecoder forward and backward, the model contract,
 * gradcheck, cross-entropy on GPU-resident targets, safetensors encoding and sampling with async reads.
 *
 * Runs where a WebGPU adapter can be created (in Node: the `webgpu` package and a Vulkan driver);
 * skips with the reason otherwise, unless MMLM_BACKEND=webgpu asks for it, when the reason fails
 * the file. On a machine with no Vulkan driver installed but Debian's chromium package present, it
 * points VK_ICD_FILENAMES at Chromium's SwiftShader (a software Vulkan driver), so CI checks
 * correctness on it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BackendChoice,
  clipGradNorm,
  crossEntropy,
  decodeSafetensors,
  encodeSafetensors,
  encodeSafetensorsAsync,
  hostValuesIfReady,
  initBackend,
  Rng,
  sample,
  sampleAsync,
  TransformerDecoder,
  type TransformerDecoderConfig,
  tf,
} from '../src/index.js';
import { checkGradients, checkGradientsAsync, runModelContract, useBackend } from '../src/testing/index.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const SYSTEM_ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

function hasSystemVulkanDriver(): boolean {
  return SYSTEM_ICD_DIRS.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
}
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && !hasSystemVulkanDriver() && existsSync(SWIFTSHADER_ICD))
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;

const logs: string[] = [];
let choice: BackendChoice | null = null;
let reason = '';
try {
  choice = await initBackend({ backend: 'webgpu', log: (l) => logs.push(l) });
} catch (e) {
  reason = (e as Error).message;
}
// tfjs-backend-webgpu runs small ops on host data on the CPU (WEBGPU_CPU_FORWARD); off here, so
// every kernel below runs on the GPU and every result is GPU data.
if (choice) tf.env().set('WEBGPU_CPU_FORWARD', false);
const required = process.env.MMLM_BACKEND?.trim().toLowerCase() === 'webgpu';
if (!choice && !required) console.warn(`[webgpu.test] skipped: no WebGPU adapter could be created here.\n${reason}`);

/** Relative agreement: max |a - b| over max |reference| (1 where the reference is all ~0). */
function relDiff(ref: ArrayLike<number>, got: ArrayLike<number>): number {
  expect(got.length).toBe(ref.length);
  let d = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs((ref[i] as number) - (got[i] as number)));
    scale = Math.max(scale, Math.abs(ref[i] as number));
  }
  return d / Math.max(scale, 1);
}

/** Run `f` on cpu, then on webgpu (same host inputs, made inside `f`), reading the results asynchronously. */
async function onBoth(f: () => tf.Tensor | tf.Tensor[]): Promise<{ cpu: Float32Array[]; gpu: Float32Array[] }> {
  const run = async (backend: 'cpu' | 'webgpu') => {
    await useBackend(backend);
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const values = await Promise.all(list.map(async (t) => Float32Array.from((await t.data()) as Float32Array)));
    tf.dispose(list);
    return values;
  };
  const cpu = await run('cpu');
  const gpu = await run('webgpu');
  return { cpu, gpu };
}

async function expectAgree(f: () => tf.Tensor | tf.Tensor[], tol = 1e-5): Promise<void> {
  const { cpu, gpu } = await onBoth(f);
  for (let i = 0; i < cpu.length; i++) expect(relDiff(cpu[i]!, gpu[i]!), `output ${i}`).toBeLessThanOrEqual(tol);
}

const randn = (shape: number[], seed: number) => {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => r.normal()),
    shape,
    'float32',
  );
};

const tiny: TransformerDecoderConfig = { vocabSize: 11, dim: 16, numLayers: 2, numHeads: 4, maxSeqLen: 12, seed: 1 };
const ids = () =>
  tf.tensor2d(
    [
      [1, 5, 3, 7, 2, 9, 4, 0],
      [2, 2, 8, 1, 6, 3, 10, 5],
    ],
    undefined,
    'int32',
  );

describe.runIf(choice || required)('webgpu backend vs cpu', () => {
  afterAll(async () => useBackend('cpu'));

  it('starts, and its log names the adapter', () => {
    if (!choice) throw new Error(`MMLM_BACKEND=webgpu, but the webgpu backend could not start: ${reason}`);
    expect(choice.backend).toBe('webgpu');
    expect(logs.join('\n')).toMatch(/\[mmlm\] backend: webgpu \(.*adapter /);
    console.info(logs.join('\n'));
  });

  it('matMul NN / NT / TN / batched agree to 1e-5', async () => {
    await expectAgree(() => [
      tf.matMul(randn([33, 47], 1), randn([47, 29], 2)),
      tf.matMul(randn([33, 47], 3), randn([29, 47], 4), false, true),
      tf.matMul(randn([47, 33], 5), randn([47, 29], 6), true, false),
      tf.matMul(randn([3, 17, 24], 7), randn([3, 24, 9], 8)),
      tf.matMul(randn([2, 64, 64], 9), randn([2, 64, 64], 10), false, true),
    ]);
  });

  it('softmax and conv2d agree to 1e-5', async () => {
    await expectAgree(() => [
      tf.softmax(randn([8, 101], 11).mul(4)),
      tf.conv2d(randn([2, 9, 9, 3], 12) as tf.Tensor4D, randn([3, 3, 3, 5], 13) as tf.Tensor4D, 1, 'same'),
      tf.conv2d(randn([1, 12, 12, 4], 14) as tf.Tensor4D, randn([5, 5, 4, 6], 15) as tf.Tensor4D, 2, 'valid'),
    ]);
  });

  it('a TransformerDecoder forward and backward agree to 1e-5', async () => {
    await expectAgree(() => {
      const m = new TransformerDecoder({ ...tiny, norm: 'rmsnorm', mlp: 'swiglu', pos: 'rope', numKvHeads: 2 });
      const x = ids();
      const params = m.namedTrainableParameters();
      const { value, grads } = tf.variableGrads(
        () =>
          crossEntropy(
            m.forward(x),
            tf.tensor2d(
              [
                [5, 3, 7, 2, 9, 4, 0, 1],
                [2, 8, 1, 6, 3, 10, 5, 5],
              ],
              undefined,
              'int32',
            ),
          ),
        params.map(([, v]) => v),
      );
      const out = [m.forward(x), value, ...params.map(([, v]) => grads[v.name]!)];
      m.dispose();
      return out;
    });
  });

  it('clipGradNorm over 20 gradients (more AddN inputs than WebGPU binds at once) agrees to 1e-5', async () => {
    // tfjs-backend-webgpu's AddN binds every input as a storage buffer and does not split a long
    // list: with more than maxStorageBuffersPerShaderStage - 1 inputs its pipeline is invalid and
    // the norm came out wrong; core sums such lists in chunks on webgpu
    await expectAgree(() => {
      const grads = new Map(Array.from({ length: 20 }, (_, i) => [`g${i}`, randn([3 + i, 5], 40 + i)] as const));
      const norm = clipGradNorm(grads, 1);
      return [norm, ...grads.values()];
    });
  });

  it('passes the model contract on cpu and webgpu', async () => {
    const report = await runModelContract({
      name: 'TransformerDecoder (tiny)',
      make: (seed) => new TransformerDecoder({ ...tiny, seed }),
      inputs: () => [ids()],
      forward: (m, [x]) => m.forward(x!),
      expectedShape: [2, 8, 11],
      backends: ['cpu', 'webgpu'],
      crossBackendTol: 1e-5,
    });
    expect(report.backends).toEqual(['cpu', 'webgpu']);
  });

  it('checkGradientsAsync runs on webgpu; the sync checkGradients says to use it', async () => {
    await useBackend('webgpu');
    const f = ([x]: tf.Tensor[]) => x!.square().sum().mul(0.5) as tf.Scalar;
    const x = tf.tidy(() => randn([5], 16).add(0)); // on the GPU
    const res = await checkGradientsAsync(f, [x], { eps: 1e-2 });
    expect(res.checked).toBe(5);
    expect(() => checkGradients(f, [x])).toThrow(/checkGradients reads tensor values synchronously.*checkGradientsAsync/);
    x.dispose();
  });

  it('crossEntropy on GPU-resident targets equals the cpu loss; dataSync says what to use', async () => {
    const logits = () => randn([6, 13], 17);
    const targets = () => tf.tensor1d([1, 12, -100, 0, 7, 3], 'int32');
    await expectAgree(() => crossEntropy(logits(), targets().add(tf.zerosLike(targets()))));
    await useBackend('webgpu');
    const t = tf.tidy(() => targets().add(tf.zerosLike(targets())));
    expect(hostValuesIfReady(t)).toBeNull(); // the device-side target indices were used above
    t.dispose();
    const onGpu = tf.tidy(() => randn([4, 4], 18).add(1));
    expect(() => onGpu.dataSync()).toThrow(/cannot be read synchronously in Node.*await tensor.data\(\)/);
    onGpu.dispose();
  });

  it('encodeSafetensorsAsync and sampleAsync read GPU data; the sync versions name them', async () => {
    await useBackend('webgpu');
    // (an async read caches the values on the host, after which sync reads work: sync first)
    const w = tf.tidy(() => randn([3, 4], 19).mul(2));
    expect(() => encodeSafetensors({ w })).toThrow(/encodeSafetensorsAsync/);
    const bytes = await encodeSafetensorsAsync({ w });
    const back = decodeSafetensors(bytes).tensors.w!;
    expect(relDiff(await w.data(), await back.data())).toBe(0);
    const logits = tf.tidy(() => randn([2, 7], 20).mul(3));
    expect(() => sample(logits, { temperature: 0 })).toThrow(/sampleAsync/);
    const got = await sampleAsync(logits, { temperature: 0 });
    const host = await logits.data();
    const argmax = (r: number) => {
      let b = 0;
      for (let i = 1; i < 7; i++) if ((host[r * 7 + i] as number) > (host[r * 7 + b] as number)) b = i;
      return b;
    };
    expect(Array.from(got)).toEqual([argmax(0), argmax(1)]);
    tf.dispose([w, back, logits]);
  });
});

if (!choice && !required)
  describe('webgpu backend', () => {
    it.skip(`skipped: no WebGPU adapter could be created (${reason.split('\n')[0]})`, () => {});
  });
