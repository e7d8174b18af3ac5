/** Small file helpers shared by the runner and the lab's experiments. */
import { writeFileAtomicSync } from '@mmlm/core';

/** Write through a temporary file (flushed) and rename, so a crash never leaves a half-written file (core's writeFileAtomicSync). */
export const writeAtomic: (path: string, data: string | Uint8Array) => void = writeFileAtomicSync;
