/**
 * Per-phase timings of mio.speech-layout at a preset's shapes, for the preset's time estimate: a few
 * codec training steps, a few decoder steps of each arm (through the staged runner, as the experiment
 * trains), one evaluation of each arm on a few test utterances with an untrained decoder (which runs
 * every generation to its longest length: an upper bound), and the data synthesis and coding per
 * utterance. Prints the measured times and the extrapolation to the whole preset.
 *
 *   MMLM_WASM_THREADS=1 npx tsx --conditions=@mmlm/source packages/mio/scripts/speech-layout-time.ts --preset small
 *
 * Options: --preset tiny|small (default small), --steps N decoder steps timed per arm (default 6, the
 * first one left out as warm-up), --codec-steps N (default 6), --eval N test utterances per set (default 8).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentBackend, initBackend, TransformerDecoder } from '@mmlm/core';
import { TONE_VOCAB, WordTokenizer } from '@mmlm/data';
import {
  type CodedUtterance,
  evaluateSpeechLayoutArm,
  SPEECH_LAYOUT_ARMS,
  SPEECH_LAYOUT_SETTINGS,
  speechLayoutSchedule,
  speechLayoutSplit,
  speechLayoutTaskData,
  toneCodecExample,
} from '../src/experiments/index.js';
import { codecPreset, MultimodalTokenizer, PromptsSchema, runSchedule, SpeechCodec, trainSpeechCodec } from '../src/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const presetName = arg('preset', 'small') as 'tiny' | 'small';
const st = SPEECH_LAYOUT_SETTINGS[presetName];
if (!st) throw new Error(`speech-layout-time: unknown preset "${presetName}"; expected tiny or small`);
const lmSteps = Number(arg('steps', '6'));
const codecSteps = Number(arg('codec-steps', '6'));
const evalN = Number(arg('eval', '8'));

await initBackend({ log: false });
const out: Record<string, number> = {};
const now = () => performance.now() / 1000;

// ---- data: synthesis and coding per utterance
const codecCfg = { ...codecPreset(st.codec), seed: 0 };
const nTrain = Math.min(st.speech.train, 64);
let t = now();
const split = speechLayoutSplit({ ...st.speech, train: nTrain, test: evalN, seed: 0, sampleRate: codecCfg.sampleRate });
out['synthesis s / utterance'] = (now() - t) / (nTrain + 2 * evalN);

// ---- codec training steps (the first left out)
const codec = new SpeechCodec(codecCfg);
const examples = split.train.map((u) => toneCodecExample(u, codec.config));
await trainSpeechCodec(codec, examples, { train: { ...st.codecTrain, steps: 1 }, progress: 'none', log: () => {} }); // warm-up, k-means init
const cN = await trainSpeechCodec(codec, examples, { train: { ...st.codecTrain, steps: codecSteps }, progress: 'none', log: () => {} });
out['codec train s / step'] = cN.seconds / codecSteps;
codec.eval();
t = now();
const code = (us: typeof split.train): CodedUtterance[] =>
  us.map((u) => ({ levels: codec.encode(u.samples, { sampleRate: u.sampleRate }), words: u.words, text: u.words.join(' ') }));
const train = code(split.train);
const test = { Seen: code(split.seen), HeldOut: code(split.heldOut) };
out['codec encode s / utterance'] = (now() - t) / (nTrain + 2 * evalN);
out['mean frames / utterance'] = train.reduce((a, u) => a + u.levels[0]!.length, 0) / train.length;

// ---- decoder steps of each arm, and one evaluation of each arm
const prompts = PromptsSchema.parse({});
const words = WordTokenizer.fromText([prompts.asr, prompts.tts.replace('{text}', ''), ...TONE_VOCAB.map((w) => w.word)], {
  specialTokens: ['<pad>', '<bos>', '<eos>', '<unk>'],
});
const eosId = words.specialId('<eos>');
const vocab = {
  textVocabSize: words.vocabSize,
  imageCodes: 1,
  tokensPerImage: 1,
  speechCodebookSize: codecCfg.codebookSize,
  speechLevels: codecCfg.levels,
};
const maxT = Math.max(...train.map((u) => u.levels[0]!.length));
const ttsPromptLen = words.encode(prompts.tts.replace('{text}', train[0]!.text)).length + 1;
const maxFrames = Math.max(
  1,
  Math.min(Math.ceil(st.maxFramesFactor * maxT), Math.floor((st.train.seqLen - ttsPromptLen - 1) / codecCfg.levels)),
);
const root = mkdtempSync(join(tmpdir(), 'mio-speech-layout-time-'));
try {
  for (const arm of SPEECH_LAYOUT_ARMS) {
    const tok = new MultimodalTokenizer(words, { ...vocab, speechLayout: arm.ttsLayout });
    const model = new TransformerDecoder({ vocabSize: tok.size, ...st.lm, maxSeqLen: st.train.seqLen, seed: 0 });
    const times: number[] = [];
    let rows = 0;
    let last = now();
    await runSchedule({
      schedule: speechLayoutSchedule({ ...st, train: { ...st.train, steps: lmSteps }, evalSteps: [lmSteps] }),
      model,
      data: speechLayoutTaskData(arm, tok, { train, validation: test.Seen }, { prompts, eosId }),
      dir: join(root, arm.name),
      seed: 0,
      valSamplesPerTask: 1,
      checkpointEvery: lmSteps,
      progress: 'none',
      log: () => {},
      onStep: (e) => {
        const x = now();
        if (e.step > 1) {
          times.push(x - last);
          rows += e.rows;
        }
        last = x;
      },
    });
    out[`${arm.name}: LM s / step`] = times.reduce((a, b) => a + b, 0) / times.length;
    out[`${arm.name}: packed rows / step`] = rows / times.length;
    const ev = evaluateSpeechLayoutArm(
      model,
      { tok, words, eosId, prompts, codec, test, maxFrames, wordsPerUtterance: st.speech.wordsPerUtterance, rowLength: st.train.seqLen },
      arm,
      lmSteps,
    );
    out[`${arm.name}: eval s / test utterance (untrained: longest generations)`] = ev.seconds / (2 * evalN);
    model.dispose();
  }
} finally {
  rmSync(root, { recursive: true, force: true });
  codec.dispose();
}

// ---- extrapolation to the preset
const utterances = st.speech.train + 2 * st.speech.test;
const perArm = SPEECH_LAYOUT_ARMS.map((a) => {
  const trainS = out[`${a.name}: LM s / step`]! * st.train.steps;
  const evalS = out[`${a.name}: eval s / test utterance (untrained: longest generations)`]! * 2 * st.speech.test * st.evalSteps.length;
  return { arm: a.name, trainS, evalS };
});
const dataS = (out['synthesis s / utterance']! + out['codec encode s / utterance']!) * utterances;
const codecS = out['codec train s / step']! * st.codecTrain.steps;
const total = dataS + codecS + perArm.reduce((a, x) => a + x.trainS + x.evalS, 0);
console.log(`backend ${currentBackend()?.backend}, preset ${presetName}: measured`);
for (const [k, v] of Object.entries(out)) console.log(`  ${k}: ${v.toFixed(4)}`);
console.log('extrapolated to the preset:');
console.log(`  data (${utterances} utterances: synthesis + coding): ${dataS.toFixed(0)} s`);
console.log(`  codec (${st.codecTrain.steps} steps): ${codecS.toFixed(0)} s`);
for (const x of perArm)
  console.log(`  ${x.arm}: ${st.train.steps} steps ${x.trainS.toFixed(0)} s + ${st.evalSteps.length} evaluations ${x.evalS.toFixed(0)} s`);
console.log(`  total: ${total.toFixed(0)} s = ${(total / 60).toFixed(1)} min per seed`);
