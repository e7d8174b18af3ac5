/**
 * Run one Liquid experiment in-process and print its tables as markdown (until the lab CLI runs
 * it: `pnpm lab run <id> --preset small`).
 *   pnpm --filter @mmlm/liquid repro liquid.cfg-sweep small [--out runs/x] [--seed 0]
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { currentBackend, initBackend, runExperimentInline } from '@mmlm/core';
import { experiments } from '../src/experiments/index.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string' }, seed: { type: 'string', default: '0' } },
});
const [id, presetName = 'small'] = positionals;
const exp = experiments.find((e) => e.id === id);
if (!exp) {
  console.error(
    `usage: repro <experiment-id> [tiny|small] [--out dir] [--seed n]; experiments: ${experiments.map((e) => e.id).join(', ')}`,
  );
  process.exit(2);
}
const seed = Number(values.seed);
const outDir = resolve(values.out ?? join('runs', `${exp.id}-${presetName}-seed${seed}`));
await initBackend();
const t0 = performance.now();
const result = await runExperimentInline(exp, {
  preset: presetName,
  seed,
  outDir,
  log: (line) => console.error(line),
});
const minutes = (performance.now() - t0) / 60000;
writeFileSync(
  join(outDir, 'result.json'),
  JSON.stringify({ id: exp.id, preset: presetName, seed, backend: currentBackend()?.backend, minutes, ...result }, null, 2),
);
for (const t of result.tables ?? []) {
  console.log(`\n### ${t.title}\n`);
  console.log(`| ${t.columns.join(' | ')} |`);
  console.log(`|${t.columns.map(() => '---').join('|')}|`);
  for (const r of t.rows) console.log(`| ${r.map((v) => String(v)).join(' | ')} |`);
  if (t.note) console.log(`\n${t.note}`);
}
console.log(`\n${result.summary ?? ''}`);
console.log(
  `\n(${exp.id} ${presetName}, seed ${seed}, backend ${currentBackend()?.backend}, ${minutes.toFixed(1)} min; output in ${outDir})`,
);
