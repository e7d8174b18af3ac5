/** Small file helpers shared by the runner and the lab's experiments. */
import { writeFileAtomicSync } from '@mmlm/core';
import type { PresetInfo } from '@mmlm/core/experiment';

/** Write through a temporary file (flushed) and rename, so a crash never leaves a half-written file (core's writeFileAtomicSync). */
export const writeAtomic: (path: string, data: string | Uint8Array) => void = writeFileAtomicSync;

/** A preset's settings without its description and expected minutes (what `Experiment.settings` fingerprints). */
export function presetSettings(p: PresetInfo | undefined): unknown {
  if (!p) return null;
  const { description: _d, expectedMinutes: _m, ...rest } = p as PresetInfo & Record<string, unknown>;
  return rest;
}
