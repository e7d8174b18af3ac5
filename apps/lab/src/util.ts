/** Small file helpers shared by the runner and the lab's experiments. */
import { renameSync, writeFileSync } from 'node:fs';

/** Write through a temporary file and rename, so a crash never leaves a half-written file. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}
