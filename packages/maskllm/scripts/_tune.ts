import { initBackend, inlineContext } from '@mmlm/core';
import { grammarCorpus } from '@mmlm/data';
import { calibration, charCorpora, configFor, runMaskLLM, runOneShot } from '../src/experiments/common.js';
import { ladderExperiment } from '../src/experiments/index.js';
await initBackend({ backend: 'wasm', log: false });
const { tokenizer, corpora } = charCorpora([{ name: 'A', text: grammarCorpus({ grammar: 'shapes', seed: 0, chars: 400000 }) }]);
const A = corpora[0]!;
const cfg = configFor('small', tokenizer.vocabSize);
const densePath = '/tmp/mb/ladder1/subruns/dense/dense.safetensors';
const calib = calibration(A.train, 64, 64, 1);
const prior = runOneShot(cfg, densePath, 'sparsegpt', false, calib, [], { evalWindows: 300 }).masks;
const ctx = inlineContext(ladderExperiment, { preset: 'small', seed: 0, outDir: '/tmp/mb/tune' });
const variants: [string, any][] = JSON.parse(process.argv[2]!);
for (const [name, s] of variants) {
  const t0 = performance.now();
  const r = await runMaskLLM(ctx, name, cfg, densePath, A.train, [A], () => prior, { evalWindows: 300, ...s });
  console.log(name, JSON.stringify(s), 'ppl', Math.exp(r.val.A!).toFixed(4), 'init', Math.exp(r.initialVal).toFixed(3), 'changed', r.changed.toFixed(3), 'reg', r.finalReg.toFixed(0), 'sec', ((performance.now() - t0) / 1000).toFixed(0));
}
