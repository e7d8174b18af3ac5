/**
 * Progress: a cli-progress bar per sub-run on a terminal, plain lines otherwise. The one progress
 * reporter of the project: the lab's runs, the inline context and core's trainLoop use it.
 * cli-progress comes through `#platform` (null in a browser bundle, where only lines are written).
 */
import { cliProgress } from '#platform';
import type { ProgressMode } from '../train/loop.js';
import type { ProgressHandle } from './types.js';

export type { ProgressMode };

function formatInfo(info?: Record<string, number>): string {
  if (!info) return '';
  return Object.entries(info)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`)
    .join('  ');
}

/**
 * A progress reporter factory: `bar` (cli-progress, on `stream`), `lines` (about ten lines per
 * sub-run through `write`, at least one every 30 s), `none`, or `auto` (a bar when `stream` is a
 * terminal outside CI, else lines).
 */
export function makeProgress(
  mode: ProgressMode,
  write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  stream: NodeJS.WriteStream = process.stdout,
) {
  const useBar = cliProgress !== null && (mode === 'bar' || (mode === 'auto' && stream.isTTY === true && !process.env.CI));
  return (name: string, total: number): ProgressHandle => {
    if (mode === 'none') return { tick: () => {}, done: () => {} };
    if (useBar && cliProgress) {
      const bar = new cliProgress.SingleBar(
        {
          format: `${name.padEnd(24).slice(0, 24)} [{bar}] {value}/{total} | {info} | ETA {eta_formatted}`,
          hideCursor: true,
          etaBuffer: 20,
          stream,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { info: '' });
      return { tick: (step, info) => bar.update(step, { info: formatInfo(info) }), done: () => bar.stop() };
    }
    const t0 = Date.now();
    let lastPrint = 0;
    let last = 0;
    /** Steps done before this reporter's first tick (a resumed run starts past 1). */
    let before: number | undefined;
    return {
      tick: (step, info) => {
        last = step;
        before ??= step - 1;
        const now = Date.now();
        // about ten lines per sub-run, and at least one every 30 s
        if (step === before + 1 || step === total || step % Math.max(1, Math.round(total / 10)) === 0 || now - lastPrint > 30_000) {
          lastPrint = now;
          const el = (now - t0) / 1000;
          const ran = step - before;
          const eta = ran > 0 ? (el / ran) * (total - step) : 0;
          write(`${name}: step ${step}/${total}  ${formatInfo(info)}  (${el.toFixed(0)} s, eta ${eta.toFixed(0)} s)`);
        }
      },
      done: () => {
        if (before === undefined) write(`${name}: no step left to run (0 of ${total} here)`);
        else if (last !== total) write(`${name}: done at ${last}/${total}`);
      },
    };
  };
}
