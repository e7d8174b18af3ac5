/**
 * The decoder runs of the README's "Speech layout: the recipe" (exploratory, seed 0): trains
 * mio.speech-layout's arm on TTS + ASR pairs (half each) with a codec trained by
 * speech-recipe-codec.ts, and evaluates as the experiment does on 32 seen + 32 held-out utterances.
 *
 *   MMLM_WASM_THREADS=1 npx tsx --conditions=@mmlm/source packages/mio/scripts/speech-recipe-tts.ts <tag> '<codec overrides JSON>' <steps> <lr> '<lm JSON>' <arm> <seqLen> <evalSteps,...> [trainUtterances=1000]
 *   e.g. h640 '{"hop":640,"subframes":16}' 3000 1e-3 '{"dim":128,"numLayers":2,"numHeads":4}' sequential 128 1000,2000,3000 16000
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, loadModule, TransformerDecoder } from '@mmlm/core';
import { TONE_VOCAB, WordTokenizer } from '@mmlm/data';
import {
  evaluateSpeechLayoutArm,
  SPEECH_LAYOUT_ARMS,
  SPEECH_LAYOUT_SETTINGS,
  speechLayoutSample,
  speechLayoutSplit,
  speechLayoutTaskData,
} from '../src/experiments/index.js';
import { codecPreset, MultimodalTokenizer, PromptsSchema, schedule as parseSchedule, runSchedule, SpeechCodec } from '../src/index.js';

await initBackend({ log: false });
const [tag, ov, stepsS, lrS, lmS, armS, seqS, evalS] = process.argv.slice(2);
const steps = Number(stepsS ?? 2000);
const lr = Number(lrS ?? 1e-3);
const lm = JSON.parse(lmS ?? '{"dim":128,"numLayers":2,"numHeads":4}');
const arm = SPEECH_LAYOUT_ARMS.find((a) => a.name === (armS ?? 'sequential'))!;
const seqLen = Number(seqS ?? 256);
const nTrain = Number(process.argv[10] ?? 1000);
const evalSteps = (evalS ?? String(steps)).split(',').map(Number);
const st = SPEECH_LAYOUT_SETTINGS.small;
const codecCfg = { ...codecPreset('small'), seed: 0, ...JSON.parse(ov!) };
const split = speechLayoutSplit({ ...st.speech, train: nTrain, test: 32, seed: 0, sampleRate: codecCfg.sampleRate });
const codec = new SpeechCodec(codecCfg);
await loadModule(join(process.env.MIO_SCRATCH ?? join(tmpdir(), 'mio-speech-recipe'), `codec-${tag}.safetensors`), codec);
codec.eval();
const code = (us: typeof split.train) =>
  us.map((u) => ({ levels: codec.encode(u.samples, { sampleRate: u.sampleRate }), words: u.words, text: u.words.join(' ') }));
const train = code(split.train);
const test = { Seen: code(split.seen), HeldOut: code(split.heldOut) };
const prompts = PromptsSchema.parse({});
const words = WordTokenizer.fromText([prompts.asr, prompts.tts.replace('{text}', ''), ...TONE_VOCAB.map((w) => w.word)], {
  specialTokens: ['<pad>', '<bos>', '<eos>', '<unk>'],
});
const eosId = words.specialId('<eos>');
const tok = new MultimodalTokenizer(words, {
  textVocabSize: words.vocabSize,
  imageCodes: 1,
  tokensPerImage: 1,
  speechCodebookSize: codecCfg.codebookSize,
  speechLevels: codecCfg.levels,
  speechLayout: arm.ttsLayout,
});
const maxT = Math.max(...train.map((u) => u.levels[0]!.length));
const longest = Math.max(...train.map((u) => speechLayoutSample('tts', u, arm, tok, { prompts, eosId }).ids.length));
console.log(`${tag} ${arm.name}: maxT ${maxT}, longest tts ${longest}, steps ${steps}, lr ${lr}, lm ${JSON.stringify(lm)}`);
const sch = parseSchedule({
  stages: [
    {
      name: 'S',
      steps,
      gpus: 1,
      batchPerGpu: 16,
      slots: { tts: 8, asr: 8 },
      seqLen,
      lr: { peak: lr, min: lr / 10, warmupRatio: 0.03, gradClip: 1 },
    },
  ],
});
const model = new TransformerDecoder({ vocabSize: tok.size, ...lm, maxSeqLen: seqLen, seed: 0 });
const kit = { tok, words, eosId, prompts, codec, test, maxFrames: Math.ceil(1.5 * maxT), wordsPerUtterance: 2, rowLength: seqLen };
const t0 = performance.now();
let rows = 0;
await runSchedule({
  schedule: sch,
  model,
  data: speechLayoutTaskData(arm, tok, { train, validation: test.Seen }, { prompts, eosId }),
  dir: mkdtempSync(join(tmpdir(), 'tts-')),
  seed: 0,
  valSamplesPerTask: 8,
  progress: 'none',
  log: () => {},
  onStep: async (e) => {
    rows += e.rows;
    if (e.globalStep % 250 === 0)
      console.log(
        `step ${e.globalStep} loss ${e.loss.toFixed(3)} ${((performance.now() - t0) / 1000).toFixed(0)} s, rows/step ${(rows / e.globalStep).toFixed(2)}`,
      );
    if (evalSteps.includes(e.globalStep)) {
      const ev = evaluateSpeechLayoutArm(model, kit, arm, e.globalStep);
      console.log(
        `EVAL ${tag} ${arm.name} step ${e.globalStep}`,
        JSON.stringify(ev.sets),
        JSON.stringify(ev.example),
        `eval ${ev.seconds.toFixed(0)} s`,
      );
    }
  },
});
