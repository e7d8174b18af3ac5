// Shared vitest settings for every workspace project. Workspace packages resolve to their
// TypeScript sources through the "@mmlm/source" export condition, so tests need no build.
import { defineConfig } from 'vitest/config';

// MMLM_BACKEND=webgpu runs code that picks the default backend (the README example) on WebGPU, in
// CI on a software Vulkan driver (SwiftShader), several times slower than wasm: a longer timeout.
const timeout = process.env.MMLM_BACKEND?.trim().toLowerCase() === 'webgpu' ? 600_000 : 120_000;

export const shared = defineConfig({
  resolve: { conditions: ['@mmlm/source', 'import', 'module', 'node', 'default'] },
  ssr: { resolve: { conditions: ['@mmlm/source', 'import', 'module', 'node', 'default'] } },
  test: {
    pool: 'forks',
    testTimeout: timeout,
    hookTimeout: timeout,
    // tfjs is CPU-bound; two cores, two workers.
    maxWorkers: 2,
  },
});
