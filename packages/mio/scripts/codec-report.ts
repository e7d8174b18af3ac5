/**
 * Trains the speech codec on tone speech and measures it (issue 16): resynthesis read-back WER with
 * the tone decoder (and the decoder's WER on the original audio, the ceiling), the word probe from
 * level-1 codes against levels 2-4, codebook usage per level, training time. Resumable: a second run
 * with the same --out continues from the newest checkpoint (or only evaluates when training is done).
 *
 *   MMLM_WASM_THREADS=1 npx tsx --conditions=@mmlm/source packages/mio/scripts/codec-report.ts --preset small --seed 0
 *
 * Writes <out>/result.json and <out>/train.jsonl and prints the README table (default out:
 * runs/mio-codec/<preset>-seed<seed>).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentBackend, initBackend } from '@mmlm/core';
import { evaluateToneCodec, toneCodecExample, toneUtterances } from '../src/experiments/index.js';
import { CODEC_TRAIN_PRESETS, codecPreset, SpeechCodec, trainSpeechCodec } from '../src/index.js';

const PRESETS = {
  tiny: { codec: 'tiny', train: 'tiny', trainUtterances: 4, probeUtterances: 4, testUtterances: 2 },
  small: { codec: 'small', train: 'small', trainUtterances: 800, probeUtterances: 200, testUtterances: 100 },
} as const;

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const presetName = arg('preset', 'small');
if (!Object.hasOwn(PRESETS, presetName))
  throw new Error(`codec-report: unknown preset "${presetName}"; expected one of ${Object.keys(PRESETS).join(', ')}`);
const p = PRESETS[presetName as keyof typeof PRESETS];
const seed = Number(arg('seed', '0'));
if (!Number.isInteger(seed)) throw new Error(`codec-report: --seed must be an integer, got ${arg('seed', '0')}`);
const out = arg('out', join('runs', 'mio-codec', `${presetName}-seed${seed}`));
mkdirSync(out, { recursive: true });

await initBackend({});
const codec = new SpeechCodec({ ...codecPreset(p.codec), seed });
const sr = codec.config.sampleRate;
const t0 = performance.now();
// one ToneSpeechDataset (8 speakers, sentences): training utterances [0, n), test utterances after them
const train = toneUtterances({ seed, start: 0, count: p.trainUtterances, sampleRate: sr });
const test = toneUtterances({ seed, start: p.trainUtterances, count: p.testUtterances, sampleRate: sr });
const examples = train.map((u) => toneCodecExample(u, codec.config));
const dataSeconds = (performance.now() - t0) / 1000;
console.log(
  `data: ${train.length} train / ${test.length} test utterances in ${dataSeconds.toFixed(1)} s; codec ${codec.numParameters()} parameters`,
);

const trainCfg = { ...CODEC_TRAIN_PRESETS[p.train], seed };
const run = await trainSpeechCodec(codec, examples, {
  train: trainCfg,
  checkpointDir: join(out, 'checkpoints'),
  resume: true,
  metricsPath: join(out, 'train.jsonl'),
});
const ev = evaluateToneCodec(codec, train.slice(0, p.probeUtterances), test);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const result = {
  preset: presetName,
  seed,
  backend: currentBackend()?.backend,
  codec: codec.config,
  train: trainCfg,
  parameters: codec.numParameters(),
  trainSeconds: run.seconds,
  resumedFrom: run.loop.resumedFrom,
  lastRecord: run.records.at(-1) ?? null,
  ...ev,
};
writeFileSync(join(out, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
const rest = `levels 2-${codec.config.levels}`;
console.log(
  [
    '',
    `| measure (${ev.utterances} held-out utterances, ${ev.words} words) | value |`,
    '| --- | --- |',
    `| resynthesis WER, tone decoder on decode(encode(x)) | ${pct(ev.resynthWer)} |`,
    `| tone decoder WER on the original audio (ceiling) | ${pct(ev.originalWer)} |`,
    `| word probe, level 1 alone: per frame / per word | ${pct(ev.probeLevel1.frameAccuracy)} / ${pct(ev.probeLevel1.wordAccuracy)} |`,
    `| word probe, ${rest} alone: per frame / per word | ${pct(ev.probeRest.frameAccuracy)} / ${pct(ev.probeRest.wordAccuracy)} |`,
    `| word probe, each level alone: per frame | ${ev.probePerLevel.map((r) => pct(r.frameAccuracy)).join(' / ')} |`,
    `| word probe, each level alone: per word | ${ev.probePerLevel.map((r) => pct(r.wordAccuracy)).join(' / ')} |`,
    `| majority word (chance), per frame | ${pct(ev.probeRest.chanceFrameAccuracy)} |`,
    `| codes used per level (of ${codec.config.codebookSize}) | ${ev.usage.map((u) => pct(u.used)).join(' / ')} |`,
    `| code perplexity per level | ${ev.usage.map((u) => u.perplexity.toFixed(1)).join(' / ')} |`,
    `| training | ${trainCfg.steps} steps x ${trainCfg.batchSize} crops of ${trainCfg.cropFrames} frames, ${run.seconds.toFixed(0)} s${run.loop.resumedFrom !== null ? ` (this call, resumed from step ${run.loop.resumedFrom})` : ''} |`,
    `| evaluation | ${ev.seconds.toFixed(0)} s |`,
    '',
    ...ev.examples.map((e) => `- "${e.ref}" -> original "${e.original}", resynthesis "${e.resynth}"`),
  ].join('\n'),
);
