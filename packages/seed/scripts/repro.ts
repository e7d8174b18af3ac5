/**
 * Run one @mmlm/seed experiment in-process and print its tables as markdown: the package's own
 * runner, for when the lab app (`pnpm lab run <id> --preset small`, same experiment code, plus
 * progress bars and an HTML report) is not installed.
 *   pnpm --filter @mmlm/seed repro seed.retrieval --preset small [--out dir] [--seed n]
 */
import { runExperimentCli } from '@mmlm/core/experiment';
import { experiments } from '../src/experiments/index.js';

const { code } = await runExperimentCli(experiments, { name: '@mmlm/seed' });
process.exitCode = code;
