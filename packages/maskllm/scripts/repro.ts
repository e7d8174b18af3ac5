/**
 * Run one MaskLLM experiment in-process and print its tables as markdown (until the lab CLI runs
 * it: `pnpm lab run <id> --preset small`).
 *   pnpm --filter @mmlm/maskllm repro maskllm.ladder small [--data ../shared/data/tinyshakespeare.txt] [--out runs/x] [--seed 0]
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { currentBackend, initBackend, runExperimentInline } from '@mmlm/core';
import { experiments } from '../src/experiments/index.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { data: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string', default: '0' } },
});
const [id, presetName = 'small'] = positionals;
const exp = experiments.find((e) => e.id === id);
if (!exp) {
  console.error(
    `usage: repro <experiment-id> [tiny|small] [--data file] [--out dir] [--seed n]; experiments: ${experiments.map((e) => e.id).join(', ')}`,
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
  dataPath: values.data ? resolve(values.data) : undefined,
  log: (line) => console.error(line),
});
const minutes = (performance.now() - t0) / 60000;
const cpu = process.cpuUsage();
const cpuMinutes = (cpu.user + cpu.system) / 60e6; // this process's CPU time: the wall time on an idle core
writeFileSync(
  join(outDir, 'result.json'),
  JSON.stringify({ id: exp.id, preset: presetName, seed, backend: currentBackend()?.backend, minutes, cpuMinutes, ...result }, null, 2),
);
console.log(result.summary ?? '');
console.log(
  `\n(${exp.id} ${presetName}, seed ${seed}, backend ${currentBackend()?.backend}, ${minutes.toFixed(1)} min wall, ${cpuMinutes.toFixed(1)} min CPU; output in ${outDir})`,
);
