/**
 * Measures a saved SpeechCodec (a `.safetensors` written by speech-recipe-codec.ts or by an
 * experiment's `speech-codec` sub-run): resynthesis WER with the tone decoder, and the word probe
 * per level (softmax regression on one-hot codes, fitted on the codes of 400 utterances of
 * ToneSpeechDataset seed 0, tested on 100 others, utterances 30,000-30,099), as codec-report.ts
 * measures a codec it trains itself.
 *
 *   MMLM_WASM_THREADS=1 npx tsx --conditions=@mmlm/source packages/mio/scripts/codec-probe.ts <codec.safetensors> '<config overrides JSON>'
 *   e.g. a small-12.5hz-k64 codec: codec-probe.ts codec-cb64.safetensors '{"codebookSize":64}'
 *
 * The config is the `small-12.5hz` preset (hop 640, 16 subframes, quantizer dropout 0.5) with the
 * overrides; it must be the one the file was trained with (loading checks every shape).
 */
import { initBackend, loadModule } from '@mmlm/core';
import { evaluateToneCodec, toneUtterances } from '../src/experiments/index.js';
import { codecPreset, SpeechCodec } from '../src/index.js';

const [file, ov] = process.argv.slice(2);
if (!file) throw new Error('codec-probe: usage: codec-probe.ts <codec.safetensors> [<config overrides JSON>]');
await initBackend({ log: false });
const codec = new SpeechCodec({ ...codecPreset('small-12.5hz'), seed: 0, ...JSON.parse(ov ?? '{}') });
await loadModule(file, codec);
codec.eval();
const sr = codec.config.sampleRate;
const probe = toneUtterances({ seed: 0, start: 0, count: 400, sampleRate: sr });
const test = toneUtterances({ seed: 0, start: 30000, count: 100, sampleRate: sr });
const ev = evaluateToneCodec(codec, probe, test);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(
  [
    `resynthesis WER ${pct(ev.resynthWer)} (${ev.utterances} utterances, ${ev.words} words)`,
    `word probe per frame / per word: level 1 ${pct(ev.probeLevel1.frameAccuracy)} / ${pct(ev.probeLevel1.wordAccuracy)}, levels 2-${codec.config.levels} ${pct(ev.probeRest.frameAccuracy)} / ${pct(ev.probeRest.wordAccuracy)}`,
    `word probe per word, each level: ${ev.probePerLevel.map((r) => pct(r.wordAccuracy)).join(' / ')} (chance per frame ${pct(ev.probeRest.chanceFrameAccuracy)})`,
    `code perplexity per level (of ${codec.config.codebookSize}): ${ev.usage.map((u) => u.perplexity.toFixed(1)).join(' / ')}`,
  ].join('\n'),
);
codec.dispose();
