/**
 * Per-phase timings of mio.any-to-any at a preset's shapes, for the preset's time estimate: the world
 * built at a fraction of its size (time per item), a few ImageCodes steps, a few decoder steps through
 * the staged runner (the first left out as warm-up), and one evaluation on a few items per set with an
 * untrained decoder (every generation runs to its longest length: an upper bound). Prints the measured
 * times, the longest training sample, and the extrapolation to the whole preset.
 *
 *   MMLM_WASM_THREADS=1 npx tsx --conditions=@mmlm/source packages/mio/scripts/any-to-any-time.ts --preset small
 *
 * Options: --preset tiny|small (default small), --steps N decoder steps (default 6), --image-steps N
 * (default 6), --fraction F of the world built (default 0.1), --eval N items per set (default 8).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentBackend, initBackend, Rng, TransformerDecoder } from '@mmlm/core';
import {
  ANY_TO_ANY_SETTINGS,
  ANY_TO_ANY_TASKS,
  type AnyToAnySettings,
  anyToAnySetup,
  anyToAnyWorld,
  evaluateAnyToAny,
} from '../src/experiments/index.js';
import { ImageCodes, runSchedule, trainImageCodes } from '../src/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const presetName = arg('preset', 'small') as 'tiny' | 'small';
const full = ANY_TO_ANY_SETTINGS[presetName];
if (!full) throw new Error(`any-to-any-time: unknown preset "${presetName}"; expected tiny or small`);
const lmSteps = Number(arg('steps', '6'));
const imageSteps = Number(arg('image-steps', '6'));
const fraction = Number(arg('fraction', '0.1'));
const evalN = Number(arg('eval', '8'));

await initBackend({ log: false });
const out: Record<string, number> = {};
const now = () => performance.now() / 1000;
const w = full.world;
const scale = (n: number) => Math.max(3, Math.round(n * fraction));
const st: AnyToAnySettings = {
  ...full,
  world: {
    ...w,
    trainImages: scale(w.trainImages),
    trainEdits: scale(w.trainEdits),
    trainStories: scale(w.trainStories),
    trainClips: scale(w.trainClips),
    evalImages: Math.min(w.evalImages, evalN),
    evalEdits: Math.min(w.evalEdits, evalN),
    evalStories: Math.min(w.evalStories, evalN),
    evalClips: Math.min(w.evalClips, evalN),
  },
};

// ---- world: seconds per item at the fraction (images, edits, stories, clips weighted alike)
let t = now();
const world = anyToAnyWorld(0, st.world);
const items = (x: typeof st.world) =>
  x.trainImages + 2 * x.evalImages + x.trainEdits + 2 * x.evalEdits + x.trainStories + 2 * x.evalStories + x.trainClips + 2 * x.evalClips;
out['world s / item'] = (now() - t) / items(st.world);

// ---- image codes steps (the first left out)
const imageCodes = new ImageCodes({ ...st.imageCodes, seed: 0 });
const pictures = [
  ...world.sets.train.map((s) => s.image),
  ...world.edits.train.flatMap((e) => [e.sourceImage, e.targetImage]),
  ...world.stories.train.flatMap((s) => s.images),
  ...world.clips.train.flatMap((c) => c.frames),
];
trainImageCodes(imageCodes, pictures, { ...st.imageTrain, steps: 1, initImages: Math.min(512, pictures.length) });
t = now();
trainImageCodes(imageCodes, pictures, { ...st.imageTrain, steps: imageSteps });
out['image codes s / step'] = (now() - t) / imageSteps;
imageCodes.eval();

// ---- setup (encoding the corpus), longest training sample
t = now();
const { sch, tok, data, kit } = anyToAnySetup(world, imageCodes, st);
out['setup s / item'] = (now() - t) / items(st.world);
let longest = 0;
for (const task of ANY_TO_ANY_TASKS)
  for (let i = 0; i < 200; i++) {
    const s = data[task]!(i, new Rng(7).fork(`${task}/${i}`), { task, split: 'train', index: i, stage: sch.stages[0]!, step: 1 });
    longest = Math.max(longest, s.ids.length);
  }
out['longest sample tokens'] = longest;

// ---- decoder steps through the runner (the first left out)
const dir = mkdtempSync(join(tmpdir(), 'mio-any-to-any-time-'));
const model = new TransformerDecoder({ vocabSize: tok.size, ...st.lm, maxSeqLen: st.train.seqLen, seed: 0 });
const stamps: number[] = [];
const rows: number[] = [];
await runSchedule({
  schedule: { stages: [{ ...sch.stages[0]!, steps: lmSteps + 1 }] },
  model,
  data,
  dir,
  seed: 0,
  valSamplesPerTask: 1,
  progress: 'none',
  log: () => {},
  onStep: (e) => {
    stamps.push(now());
    rows.push(e.rows);
  },
});
out['decoder s / step'] = (stamps[stamps.length - 1]! - stamps[0]!) / lmSteps;
out['packed rows / step'] = rows.slice(1).reduce((a, b) => a + b, 0) / lmSteps;

// ---- evaluation with the untrained decoder (an upper bound: every generation at its longest)
const ev = evaluateAnyToAny(model, kit);
out['eval s / item'] = ev.seconds / (2 * (st.world.evalEdits + st.world.evalStories + st.world.evalClips));
model.dispose();
imageCodes.dispose();
rmSync(dir, { recursive: true, force: true });

const total = {
  world: out['world s / item']! * items(full.world),
  imageCodes: out['image codes s / step']! * full.imageTrain.steps,
  setup: out['setup s / item']! * items(full.world),
  decoder: out['decoder s / step']! * full.train.steps,
  eval: out['eval s / item']! * 2 * (w.evalEdits + w.evalStories + w.evalClips),
};
const sum = Object.values(total).reduce((a, b) => a + b, 0);
console.log(
  `mio.any-to-any ${presetName} timings (backend ${currentBackend()?.backend}, MMLM_WASM_THREADS=${process.env.MMLM_WASM_THREADS ?? 'unset'}):`,
);
for (const [k, v] of Object.entries(out)) console.log(`  ${k}: ${v.toFixed(4)}`);
console.log('extrapolated to the preset (seconds):');
for (const [k, v] of Object.entries(total)) console.log(`  ${k}: ${v.toFixed(0)}`);
console.log(`  total: ${sum.toFixed(0)} s = ${(sum / 60).toFixed(1)} min`);
