/**
 * Measures the tone-speech evaluators and prints the README's tables:
 *   pnpm --filter @mmlm/data tone-report [--utterances 400] [--json out.json] [--spectrogram out.png]
 * Decoder word accuracy on clean generated speech (sentences, 8 speakers; random word strings, 20
 * speakers), under white noise from 20 to -5 dB SNR, and speaker-embedding separation.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchmarkSpeakerSimilarity, benchmarkToneDecoder, makeToneSpeakers, synthesizeTone } from '../src/audio/index.js';
import { writeSpectrogramPng } from '../src/io/index.js';

const { values } = parseArgs({
  options: { utterances: { type: 'string', default: '400' }, json: { type: 'string' }, spectrogram: { type: 'string' } },
});
const n = Number(values.utterances);
if (!Number.isInteger(n) || n < 1) throw new Error(`tone-report: --utterances must be a positive integer, got ${values.utterances}`);

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const timed = <T>(f: () => T): [T, number] => {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
};

const decoder: Record<string, unknown>[] = [];
console.log('## Tone decoder word accuracy\n');
console.log('| condition | utterances | words | word accuracy | WER (S/D/I) | exact utterances | seconds |');
console.log('|---|---|---|---|---|---|---|');
const conditions: {
  name: string;
  seed: number;
  text?: 'sentences' | 'random';
  numSpeakers: number;
  noiseSnrDb?: number;
  utterances: number;
}[] = [
  { name: 'clean, sentences, 8 speakers', seed: 1, numSpeakers: 8, utterances: n },
  { name: 'clean, random words, 20 speakers', seed: 2, text: 'random', numSpeakers: 20, utterances: n },
  ...[20, 10, 5, 0, -5].map((snr) => ({
    name: `white noise ${snr} dB SNR, 8 speakers`,
    seed: 4,
    numSpeakers: 8,
    noiseSnrDb: snr,
    utterances: Math.ceil(n / 2),
  })),
];
for (const c of conditions) {
  const [r, s] = timed(() => benchmarkToneDecoder(c));
  decoder.push({ ...c, ...r });
  console.log(
    `| ${c.name} | ${r.utterances} | ${r.refWords} | ${pct(r.wordAccuracy)} | ${pct(r.wer)} (${r.substitutions}/${r.deletions}/${r.insertions}) | ${r.exactUtterances} | ${s.toFixed(1)} |`,
  );
}

const speaker: Record<string, unknown>[] = [];
console.log('\n## Speaker similarity (cosine of the timbre embedding)\n');
console.log('| condition | same pairs | different pairs | min same | mean same | max different | mean different | EER |');
console.log('|---|---|---|---|---|---|---|---|');
const spk: { name: string; seed: number; numSpeakers: number; utterancesPerSpeaker: number; noiseSnrDb?: number }[] = [
  { name: 'clean, 8 speakers x 4', seed: 5, numSpeakers: 8, utterancesPerSpeaker: 4 },
  { name: 'clean, 30 speakers x 4', seed: 5, numSpeakers: 30, utterancesPerSpeaker: 4 },
  { name: '10 dB SNR, 8 speakers x 4', seed: 5, numSpeakers: 8, utterancesPerSpeaker: 4, noiseSnrDb: 10 },
  { name: '0 dB SNR, 8 speakers x 4', seed: 5, numSpeakers: 8, utterancesPerSpeaker: 4, noiseSnrDb: 0 },
];
for (const c of spk) {
  const r = benchmarkSpeakerSimilarity(c);
  speaker.push({ ...c, ...r });
  const f = (x: number) => x.toFixed(3);
  console.log(
    `| ${c.name} | ${r.samePairs} | ${r.differentPairs} | ${f(r.minSame)} | ${f(r.meanSame)} | ${f(r.maxDifferent)} | ${f(r.meanDifferent)} | ${pct(r.eer)} |`,
  );
}
if (values.json) writeFileSync(values.json, `${JSON.stringify({ decoder, speaker }, null, 1)}\n`);
if (values.spectrogram) {
  const u = synthesizeTone('white square moves left', makeToneSpeakers(1, 2)[0]!, { seed: 1 });
  const { width, height } = writeSpectrogramPng(values.spectrogram, u.samples, {
    sampleRate: u.sampleRate,
    frameSize: 1024,
    hop: 128,
    maxFreqHz: 2500,
    dbRange: 70,
    colormap: 'heat',
  });
  console.log(
    `\nwrote ${values.spectrogram} (${width} x ${height}): "${u.text}", speaker base pitch ${u.speaker.basePitchHz.toFixed(0)} Hz`,
  );
}
