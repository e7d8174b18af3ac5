/**
 * The codec-level ablation of the README's "Speech layout: the recipe" (exploratory, seed 0): trains a
 * SpeechCodec on mio.speech-layout's small split (1,000 utterances) with config overrides, then decodes
 * the 64 seen test utterances from their first 1, 2 or 3 levels, and with levels 2-4 replaced by
 * random or most-frequent codes, and prints the tone decoder's WER of each.
 *
 *   MMLM_WASM_THREADS=1 npx tsx --conditions=@mmlm/source packages/mio/scripts/speech-recipe-codec.ts <tag> '<overrides JSON>' [steps=800] [cropFrames=50]
 *   e.g. small-12.5hz: h640qd '{"hop":640,"subframes":16,"quantizerDropout":0.5}' 2000 12
 *
 * The trained codec is kept as <dir>/codec-<tag>.safetensors (dir: $MIO_SCRATCH or the OS temp dir)
 * for speech-recipe-tts.ts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, loadModule, Rng, saveModule, tf } from '@mmlm/core';
import { corpusWer, decodeTone } from '@mmlm/data';
import { SPEECH_LAYOUT_SETTINGS, speechLayoutSplit, toneCodecExample } from '../src/experiments/index.js';
import { codecPreset, SpeechCodec, trainSpeechCodec } from '../src/index.js';

await initBackend({ log: false });
const tag = process.argv[2] ?? 'qd05';
const overrides = JSON.parse(process.argv[3] ?? '{"quantizerDropout":0.5}');
const steps = Number(process.argv[4] ?? 800);
const crop = Number(process.argv[5] ?? 50);
const st = SPEECH_LAYOUT_SETTINGS.small;
const codecCfg = { ...codecPreset('small'), seed: 0, ...overrides };
// the exploration ran on the first small recipe's 1,000 training utterances
const split = speechLayoutSplit({ ...st.speech, train: 1000, seed: 0, sampleRate: codecCfg.sampleRate });
const codec = new SpeechCodec(codecCfg);
const file = join(process.env.MIO_SCRATCH ?? join(tmpdir(), 'mio-speech-recipe'), `codec-${tag}.safetensors`);
if (existsSync(file)) await loadModule(file, codec);
else {
  mkdirSync(join(file, '..'), { recursive: true });
  const t0 = performance.now();
  await trainSpeechCodec(
    codec,
    split.train.map((u) => toneCodecExample(u, codec.config)),
    { train: { ...st.codecTrain, steps, cropFrames: crop, seed: 0 }, progress: 'none', log: () => {} },
  );
  await saveModule(file, codec);
  console.log(tag, 'codec trained', (performance.now() - t0) / 1000, 's');
}
codec.eval();
const sr = codecCfg.sampleRate;
const test = split.seen;
const coded = test.map((u) => codec.encode(u.samples, { sampleRate: u.sampleRate }));
const refs = test.map((u) => u.words);
const decodeN = (levels: number[][], n: number) =>
  tf.tidy(() => {
    const T = levels[0]!.length;
    let zq: tf.Tensor = tf.zeros([1, T, codec.config.dim]);
    for (let l = 0; l < n; l++)
      zq = zq.add(tf.gather(codec.quantizer.layers.at(l).codebook(), tf.tensor1d(levels[l]!, 'int32')).expandDims(0));
    const ctl = codec.controls(zq);
    return codec.synthesize(ctl).dataSync() as Float32Array;
  });
const wer = (ls: number[][][], n = 4) =>
  corpusWer(
    refs,
    ls.map((l) => decodeTone(n === 4 ? codec.decode(l) : decodeN(l, n), { sampleRate: sr }).words),
  ).wer;
const rng = new Rng(1);
const mode = (xs: number[]) => {
  const m = new Map<number, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => b[1] - a[1])[0]![0];
};
const modes = [1, 2, 3].map((l) => mode(coded.flatMap((c) => c[l]!)));
console.log(
  tag,
  JSON.stringify({
    resynth: wer(coded),
    L1only: wer(coded, 1),
    L12only: wer(coded, 2),
    L123only: wer(coded, 3),
    meanFrames: coded.reduce((a, c) => a + c[0]!.length, 0) / coded.length,
    L1trueRest_random: wer(coded.map((c) => [c[0]!, ...[1, 2, 3].map(() => c[0]!.map(() => rng.int(0, 16)))])),
    L1trueRest_mode: wer(coded.map((c) => [c[0]!, ...modes.map((m) => c[0]!.map(() => m))])),
    L12trueRest_random: wer(coded.map((c) => [c[0]!, c[1]!, ...[2, 3].map(() => c[0]!.map(() => rng.int(0, 16)))])),
  }),
);
for (let i = 0; i < 2; i++) {
  console.log(test[i]!.words.join(' '));
  for (const l of coded[i]!) console.log('  ', l.join(','));
}
