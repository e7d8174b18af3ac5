/**
 * Figures for the README from a finished `latentlm.tts-frame-rate` run: spectrograms of the first
 * held-out references and of the generated speech at each frame rate (512-sample window, 32-sample
 * hop, up to 2 kHz, where the tone harmonics are), and a markdown table of what the tone decoder
 * hears in each file.
 *   pnpm --filter @mmlm/latentlm tts-figures <run dir> <out dir>
 *   (e.g. "$PWD/runs/latentlm.tts-frame-rate/small-seed0" "$PWD/packages/latentlm/docs")
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeTone, readWav, writeSpectrogramPng } from '@mmlm/data';

const [runArg, outArg] = process.argv.slice(2);
if (!runArg || !outArg) {
  console.error('usage: tts-figures <run dir of latentlm.tts-frame-rate> <out dir>');
  process.exit(2);
}
const run = resolve(runArg);
const out = resolve(outArg);
const subruns = join(run, 'subruns');
if (!existsSync(subruns)) {
  console.error(`tts-figures: ${subruns} not found; run \`pnpm lab run latentlm.tts-frame-rate --preset small\` first`);
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const rates = readdirSync(subruns)
  .filter((d) => d.startsWith('rate-') && existsSync(join(subruns, d, 'result.json')))
  .sort((a, b) => a.length - b.length);
const spec = { frameSize: 512, hop: 32, sampleRate: 8000, maxFreqHz: 2000, colormap: 'heat' as const };
const rows: string[] = [];
for (let i = 0; ; i++) {
  const refPath = join(subruns, rates[0]!, `ref-${i}.wav`);
  if (!existsSync(refPath)) break;
  const ref = readWav(refPath).samples;
  writeSpectrogramPng(join(out, `tts-ref-${i}.png`), ref, spec);
  const cells = [`ref: ${decodeTone(ref, { sampleRate: 8000 }).words.join(' ')} ![](docs/tts-ref-${i}.png)`];
  for (const r of rates) {
    const w = readWav(join(subruns, r, `tts-${i}.wav`)).samples;
    const name = `tts-${r}-${i}.png`;
    if (w.length >= 512) writeSpectrogramPng(join(out, name), w, spec);
    const heard = decodeTone(w, { sampleRate: 8000 }).words.join(' ') || '(nothing)';
    cells.push(`${heard} ${w.length >= 512 ? `![](docs/${name})` : ''}`.trim());
  }
  rows.push(`| ${cells.join(' | ')} |`);
}
console.log(`| reference (decoded) | ${rates.map((r) => `TTS, ${r.slice(5)} strides (decoded)`).join(' | ')} |`);
console.log(`| ${['x', ...rates].map(() => '---').join(' | ')} |`);
for (const r of rows) console.log(r);
